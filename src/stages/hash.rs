//! Block hashing: xxh3-64 of every fixed-size block of a page.
//!
//! Hashes drive change detection in the hashes-only cache tier and lookups in the sharing table.
//! Each encoder hashes with its own random seed, so guest contents cannot be crafted to collide
//! with a block the encoder has already seen. The seed is expanded once into an xxh3 secret
//! ([`BlockHasher`]); hashing a block then costs no per-call key derivation.

use xxhash_rust::const_xxh3::const_custom_default_secret;
use xxhash_rust::xxh3::xxh3_64_with_secret;

/// xxh3-64 keyed by a seed, with the secret derived once.
///
/// ```
/// let h = fgbi::hash::BlockHasher::new(7);
/// assert_eq!(h.hash(b"block"), fgbi::hash::block_hash(b"block", 7));
/// ```
#[derive(Clone)]
pub struct BlockHasher {
    secret: [u8; 192],
}

impl std::fmt::Debug for BlockHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockHasher")
    }
}

impl BlockHasher {
    /// A hasher for `seed`.
    pub fn new(seed: u64) -> BlockHasher {
        BlockHasher {
            secret: const_custom_default_secret(seed),
        }
    }

    /// The hash of one block.
    #[inline]
    pub fn hash(&self, block: &[u8]) -> u64 {
        xxh3_64_with_secret(block, &self.secret)
    }

    /// The hash of each `block_size` block of `buf`, into `out` (see [`block_hashes`]).
    pub fn hashes(&self, buf: &[u8], block_size: usize, out: &mut [u64]) {
        assert!(
            block_size > 0 && buf.len().is_multiple_of(block_size),
            "buffer is not whole blocks"
        );
        assert_eq!(
            out.len(),
            buf.len() / block_size,
            "output slice has the wrong length"
        );
        for (h, block) in out.iter_mut().zip(buf.chunks_exact(block_size)) {
            *h = self.hash(block);
        }
    }
}

/// Smallest block size the format allows.
pub const MIN_BLOCK_SIZE: usize = 64;
/// Largest block size the format allows.
pub const MAX_BLOCK_SIZE: usize = 4096;

/// xxh3-64 of one block keyed by `seed` (derives the key each call: for many blocks use
/// [`BlockHasher`]).
///
/// ```
/// let h = fgbi::hash::block_hash(&[7u8; 256], 1);
/// assert_eq!(h, fgbi::hash::block_hash(&[7u8; 256], 1));
/// assert_ne!(h, fgbi::hash::block_hash(&[7u8; 256], 2));
/// ```
pub fn block_hash(block: &[u8], seed: u64) -> u64 {
    BlockHasher::new(seed).hash(block)
}

/// Writes the hash of each `block_size` block of `buf` into `out`.
///
/// `buf.len()` must be a multiple of `block_size` and `out` must hold `buf.len() / block_size`
/// entries; otherwise this panics (a caller bug, not an input error).
///
/// ```
/// let page = vec![0u8; 4096];
/// let mut hashes = [0u64; 16];
/// fgbi::hash::block_hashes(&page, 256, 0, &mut hashes);
/// assert!(hashes.iter().all(|&h| h == hashes[0]));
/// ```
pub fn block_hashes(buf: &[u8], block_size: usize, seed: u64, out: &mut [u64]) {
    BlockHasher::new(seed).hashes(buf, block_size, out)
}

/// A fresh random seed (from the standard library's per-process random keys).
pub fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_the_one_shot_hash_of_each_block() {
        let buf: Vec<u8> = (0..4096u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for bs in [64usize, 128, 256, 512, 1024, 2048, 4096] {
            let mut out = vec![0; buf.len() / bs];
            block_hashes(&buf, bs, 42, &mut out);
            for (i, h) in out.iter().enumerate() {
                assert_eq!(*h, block_hash(&buf[i * bs..(i + 1) * bs], 42));
            }
        }
    }

    #[test]
    fn one_flipped_bit_changes_the_hash_of_its_block_only() {
        let mut buf = vec![0x55u8; 1024];
        let mut before = [0u64; 4];
        block_hashes(&buf, 256, 9, &mut before);
        buf[600] ^= 0x01;
        let mut after = [0u64; 4];
        block_hashes(&buf, 256, 9, &mut after);
        assert_eq!(before[0], after[0]);
        assert_eq!(before[1], after[1]);
        assert_ne!(before[2], after[2]);
        assert_eq!(before[3], after[3]);
    }

    #[test]
    fn random_seeds_differ() {
        assert_ne!(random_seed(), random_seed());
    }
}
