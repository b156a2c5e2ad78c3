//! # libfgbi
//!
//! Fine-grained block identification (FGBI) for VM live migration and checkpoint replication.
//! Once per epoch the hypervisor hands the [`Encoder`] the pages that were dirtied; it returns one
//! compact, checksummed frame; the backup's [`Decoder`] validates the whole frame and applies it
//! to its replica of the memory, bit for bit.
//!
//! Every dirty page goes through composable stages, each a module usable on its own:
//! [`zero`] detection, block [`hash`]ing (xxh3), the [`share`] table of identical blocks, the page
//! [`cache`] of last-sent versions with an XOR+RLE [`delta`] codec, a QEMU-compatible [`xbzrle`]
//! codec, and general-purpose fallback [`compress`]ion. The [`frame`] format is documented byte by
//! byte in `FORMAT.md`.
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

pub mod adapt;
pub mod bitmap;
pub mod cache;
pub mod channels;
pub mod compress;
pub mod config;
pub mod decoder;
pub mod delta;
pub mod encoder;
pub mod entropy;
pub mod error;
pub mod frame;
pub mod hash;
pub mod huffman;
pub mod lz;
pub mod scan;
pub mod share;
pub mod stats;
pub mod varint;
pub mod xbzrle;
pub mod zero;

pub use config::{Config, Fallback, Stages};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
pub use decoder::{Applied, Decoder, Regions, Replica};
pub use encoder::Encoder;
pub use error::Error;
pub use stats::{DecoderStats, EncoderStats};

#[cfg(feature = "capi")]
pub mod ffi;
