//! Zero detection: is a page, or a block of it, all zero bytes?
//!
//! The scan reads eight `u64` words at a time and ORs them together, so the compiler emits wide
//! vector loads and the loop leaves at the first non-zero 64-byte chunk. Dirty pages that are not
//! zero usually have a non-zero word near their start, so the common "no" answer is cheap.

/// True when every byte of `buf` is zero.
///
/// ```
/// let mut page = vec![0u8; 4096];
/// assert!(fgbi::zero::is_zero(&page));
/// page[4095] = 1;
/// assert!(!fgbi::zero::is_zero(&page));
/// ```
#[inline]
pub fn is_zero(buf: &[u8]) -> bool {
    let mut chunks = buf.chunks_exact(64);
    for chunk in &mut chunks {
        let mut acc = 0u64;
        for w in chunk.chunks_exact(8) {
            acc |= u64::from_ne_bytes(w.try_into().expect("8-byte chunk"));
        }
        if acc != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| b == 0)
}

/// Calls `f(i)` for the index of every all-zero block of `page` (blocks of `block_size` bytes;
/// a short last block is checked as it is).
///
/// ```
/// let mut page = vec![1u8; 1024];
/// page[256..512].fill(0);
/// let mut zero = Vec::new();
/// fgbi::zero::for_each_zero_block(&page, 256, |i| zero.push(i));
/// assert_eq!(zero, [1]);
/// ```
pub fn for_each_zero_block(page: &[u8], block_size: usize, mut f: impl FnMut(usize)) {
    for (i, block) in page.chunks(block_size.max(1)).enumerate() {
        if is_zero(block) {
            f(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_set_bit_anywhere_makes_a_buffer_non_zero() {
        for len in [0usize, 1, 7, 8, 63, 64, 65, 100, 4096] {
            let buf = vec![0u8; len];
            assert!(is_zero(&buf), "len {len}");
            for i in 0..len {
                let mut b = buf.clone();
                b[i] = 0x10;
                assert!(!is_zero(&b), "len {len} byte {i}");
            }
        }
    }

    #[test]
    fn zero_blocks_are_reported_by_index() {
        let mut page = vec![0u8; 4096];
        page[64 * 3 + 5] = 9;
        page[4095] = 1;
        let mut zero = Vec::new();
        for_each_zero_block(&page, 64, |i| zero.push(i));
        let expected: Vec<usize> = (0..64).filter(|&i| i != 3 && i != 63).collect();
        assert_eq!(zero, expected);
    }
}
