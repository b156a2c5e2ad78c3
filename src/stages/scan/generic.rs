//! Portable kernel: 8 bytes at a time in `u64` words.

use super::Kernel;

/// The portable kernel.
pub(crate) struct Generic;

const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HI: u64 = 0x8080_8080_8080_8080;
/// Multiplier that gathers bit 8k (k = 0..8) of a word into bit 56 + k.
const GATHER: u64 = 0x0102_0408_1020_4080;

/// Reads 8 bytes at `p` as a little-endian word (byte `i` of memory in bits `8i..8i+8`).
///
/// # Safety
/// `p` must be valid for reads of 8 bytes.
#[inline(always)]
unsafe fn load(p: *const u8) -> u64 {
    // SAFETY: the caller guarantees 8 readable bytes; read_unaligned has no alignment requirement.
    u64::from_le(unsafe { p.cast::<u64>().read_unaligned() })
}

/// One bit per byte of `x` (bit `i` set iff byte `i` of `x` is non-zero), in the low 8 bits.
#[inline(always)]
pub(crate) fn nonzero_bytes(x: u64) -> u64 {
    // High bit of each byte set iff the byte is non-zero: adding 0x7f to the low 7 bits carries
    // into bit 7 iff they are non-zero; OR-ing x adds bytes whose own bit 7 is set. No carry
    // crosses a byte because the low 7 bits plus 0x7f is at most 0xfe.
    let t = (((x & LO7) + LO7) | x) & HI;
    // The gathered bits land in distinct positions (no carries), see GATHER.
    (t >> 7).wrapping_mul(GATHER) >> 56
}

/// Difference mask of `len < 64` bytes, word by word then byte by byte.
///
/// # Safety
/// `a` and `b` must be valid for reads of `len` bytes.
#[inline(always)]
pub(crate) unsafe fn mask_partial(a: *const u8, b: *const u8, len: usize) -> u64 {
    debug_assert!(len < 64);
    let mut m = 0u64;
    let mut i = 0;
    while i + 8 <= len {
        // SAFETY: i + 8 <= len bytes are readable.
        let x = unsafe { load(a.add(i)) ^ load(b.add(i)) };
        m |= nonzero_bytes(x) << i;
        i += 8;
    }
    while i < len {
        // SAFETY: i < len bytes are readable.
        let ne = unsafe { *a.add(i) != *b.add(i) };
        m |= (ne as u64) << i;
        i += 1;
    }
    m
}

impl Kernel for Generic {
    #[inline(always)]
    unsafe fn mask64(a: *const u8, b: *const u8) -> u64 {
        let mut m = 0u64;
        for w in 0..8 {
            // SAFETY: the caller guarantees 64 readable bytes; w * 8 + 8 <= 64.
            let x = unsafe { load(a.add(w * 8)) ^ load(b.add(w * 8)) };
            m |= nonzero_bytes(x) << (w * 8);
        }
        m
    }
}
