//! An lz4 block compressor made for pages, alone or against their last-sent version.
//!
//! The output is the standard lz4 block format (any lz4 block decoder reads it, with the same
//! preset dictionary), so the frame format does not depend on it; what differs from lz4_flex's
//! compressor is how hard it looks for matches. For each position it tries, in this order:
//!
//! 1. the same position in the dictionary (the old page): offset = the dictionary's length;
//! 2. the last offset it used (runs of equal distance: arrays of same-shaped objects, a moved
//!    object interrupted by a changed field);
//! 3. a hash table over 5-byte prefixes, filled from every dictionary position and every input
//!    position it probes;
//!
//! keeps the longest candidate, extends it backwards over the pending literals, and, when the
//! match is short, looks one byte ahead before taking it (lazy matching). On inputs where nothing
//! matches it speeds up the way lz4 does, probing sparser the longer the literal run.
//!
//! Measured on the dictionary-compressed pages of the real traces (pages that changed since they
//! were last sent): about 270 sequences per 4 KiB page with ~12-byte matches, of which only ~15
//! are at the same position — changed heap pages mostly hold new objects shaped like the old
//! ones, not old bytes. The extra candidates and the lazy step make lz4 blocks 5-10% smaller than
//! lz4_flex's greedy parse and the frames 3-6% smaller after entropy coding, at about 60% of its
//! speed (docs/performance.md, "The lz4 matcher").
//!
//! The hash table is never cleared between calls: a stale entry is only a candidate, checked
//! byte for byte against the current window before use, and candidates are always behind the
//! current position, so stale entries cost a miss and never a wrong match.
//!
//! ```
//! use fgbi::lz4::PageLz;
//! let old: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
//! let mut new = old.clone();
//! new.copy_within(0..1000, 24); // content moved by 24 bytes
//! new[3000] ^= 0xff;
//! let mut lz = PageLz::new();
//! let mut out = vec![0u8; 4096];
//! let n = lz.compress_with_dict(&new, &old, &mut out).unwrap();
//! assert!(n < 64);
//! let mut back = vec![0u8; 4096];
//! fgbi::compress::lz4_dict_decompress(&out[..n], &old, &mut back).unwrap();
//! assert_eq!(back, new);
//! ```

//!
//! [`PageLz`] is the matcher (`matcher.rs`); [`Greedy`] (`greedy.rs`) the encoder's fastest
//! compressor, a greedy parse of a page without dictionary; [`decompress`] and [`validate`]
//! (`decode.rs`) read any lz4 block, with or without a preset dictionary, and refuse malformed
//! ones with an [`Error`].

mod decode;
pub mod greedy;
mod matcher;
mod sink;

pub(crate) use decode::copy_match;
pub use decode::{decompress, validate};
pub use greedy::Greedy;
pub use matcher::PageLz;

/// Shortest match the lz4 format codes.
pub const MIN_MATCH: usize = 4;
/// lz4 format rule: the last bytes of a block are literals.
const LAST_LITERALS: usize = 5;
/// lz4 format rule: the last match starts at least this many bytes before the end.
const MFLIMIT: usize = 12;
/// Largest lz4 match offset.
const MAX_OFFSET: usize = 65535;

/// Why [`decompress`] or [`validate`] refused a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The block is malformed: it ends inside a sequence, refers before the start of the
    /// dictionary, has a zero offset or would write past the output.
    Corrupt,
    /// The block decodes to fewer bytes than the output holds.
    WrongLength,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Corrupt => f.write_str("lz4 block is malformed"),
            Error::WrongLength => f.write_str("lz4 block does not fill the expected length"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests;
