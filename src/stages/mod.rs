//! The per-page stages, in the order a dirty page meets them.
//!
//! Each stage is usable on its own; the [`Encoder`](crate::Encoder) runs the enabled ones and
//! keeps the cheapest op they offer:
//!
//! | stage | module | what it finds |
//! |---|---|---|
//! | zero detection | [`zero`] | pages and blocks of zeros |
//! | block hashing | [`hash`] | xxh3-64 of every block, which drives sharing and the changed-block map |
//! | sharing | [`share`] | blocks identical to content the backup already holds |
//! | page cache | [`cache`] | the last-sent copy (or only its block hashes) of each page |
//! | XOR delta | [`delta`] | the runs of bytes that changed since the cached copy |
//! | QEMU's XBZRLE | [`xbzrle`] | the same runs in QEMU's wire format (a drop-in codec, not used by the encoder) |
//!
//! [`scan`] holds the run-finding kernels (portable, AVX2, AVX-512) that the two XOR codecs share,
//! and [`bitmap`] the page and block bitmaps the stages keep.
//!
//! New content that no stage describes goes on to the general-purpose codecs
//! ([`compress`](crate::compress), [`lz4`](crate::lz4)) and the [`entropy`](crate::entropy) stage.

pub mod bitmap;
pub mod cache;
pub mod delta;
pub mod hash;
pub mod scan;
pub mod share;
pub mod xbzrle;
pub mod zero;
