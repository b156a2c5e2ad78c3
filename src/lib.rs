//! # libfgbi
//!
//! Fine-grained block identification (FGBI) for VM live migration and checkpoint replication.
//! Once per epoch the hypervisor hands the [`Encoder`] the pages that were dirtied; it returns one
//! compact, checksummed frame; the backup's [`Decoder`] validates the whole frame and applies it
//! to its replica of the memory, bit for bit.
//!
//! The modules follow the data path:
//!
//! ```text
//! dirty page ─► stages ─────────► codecs ─────────► encoder ──► frame ──► decoder ──► replica
//!               zero, hash,        compress, lz4,    per-page    format    validate,
//!               share, cache,      entropy           choice,               then apply
//!               delta (scan)                         gates
//! ```
//!
//! - [`stages`]: the per-page stages, each usable on its own ([`stages::zero`],
//!   [`stages::hash`], [`stages::share`], [`stages::cache`], [`stages::delta`], and QEMU's
//!   [`stages::xbzrle`] format), with their SIMD kernels in [`stages::scan`].
//! - [`compress`] and [`lz4`]: general-purpose compression of new content; [`entropy`]: the
//!   frame-wide Huffman stage with context modelling.
//! - [`encoder`]: the epoch API and the choice of op per page; [`format`](mod@format): the frame on the wire,
//!   byte by byte in `FORMAT.md`; [`decoder`]: validation of a whole frame, then its application.
//! - [`channels`]: one stream split across N encoders and decoders by address; [`config`],
//!   [`error`], [`stats`]; `ffi` (feature `capi`): the C ABI of `include/libfgbi.h`.
//!
//! ```
//! use fgbi::{Config, Decoder, Encoder};
//! let cfg = Config::default();
//! let (mut enc, mut dec) = (Encoder::new(cfg).unwrap(), Decoder::new(cfg).unwrap());
//! let primary = vec![0x42u8; 8 * 4096];
//! let mut backup = vec![0u8; 8 * 4096];
//! enc.begin_epoch(0).unwrap();
//! for (i, page) in primary.chunks(4096).enumerate() {
//!     enc.add_page(i as u64 * 4096, page).unwrap();
//! }
//! let frame = enc.end_epoch().unwrap();
//! dec.apply_flat(frame, &mut backup).unwrap();
//! assert_eq!(primary, backup);
//! ```
#![warn(missing_docs)]

mod budget;
pub mod channels;
pub mod compress;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod entropy;
pub mod error;
pub mod format;
pub mod lz4;
#[cfg(test)]
mod noise;
pub mod stages;
pub mod stats;

#[cfg(feature = "capi")]
pub mod ffi;

pub use config::{Config, Fallback, Stages};
pub use decoder::{Applied, Decoder, Regions, Replica};
pub use encoder::{Encoder, FrameParts};
pub use error::Error;
pub use stats::{DecoderStats, EncoderStats};

// Shorter module paths that name the same items as their homes above (kept for code written
// against them; the documentation uses the homes).
#[doc(hidden)]
pub use encoder::gates as adapt;
#[doc(hidden)]
pub use entropy::huffman;
#[doc(hidden)]
pub use format as frame;
#[doc(hidden)]
pub use format::varint;
#[doc(hidden)]
pub use lz4 as lz;
#[doc(hidden)]
pub use stages::{bitmap, cache, delta, hash, scan, share, xbzrle, zero};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
