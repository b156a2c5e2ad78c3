//! AVX-512BW kernel: one 64-byte compare straight into a mask register.

use super::{Job, Kernel};
use core::arch::x86_64::{_mm512_cmpneq_epi8_mask, _mm512_loadu_si512, _mm512_maskz_loadu_epi8};

/// The AVX-512BW kernel.
pub(crate) struct Avx512;

impl Kernel for Avx512 {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn mask64(a: *const u8, b: *const u8) -> u64 {
        // SAFETY: the caller guarantees 64 readable bytes at a and b (loadu has no alignment
        // requirement) and AVX-512F/BW support, enabled on this function.
        unsafe {
            let va = _mm512_loadu_si512(a.cast());
            let vb = _mm512_loadu_si512(b.cast());
            _mm512_cmpneq_epi8_mask(va, vb)
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn mask_tail(a: *const u8, b: *const u8, len: usize) -> u64 {
        debug_assert!(len < 64);
        let k = (1u64 << len) - 1;
        // SAFETY: masked loads read only the `len` lanes selected by k (the others are not
        // accessed and cannot fault), which the caller guarantees readable; AVX-512F/BW support
        // is guaranteed by the caller and enabled on this function.
        unsafe {
            let va = _mm512_maskz_loadu_epi8(k, a.cast());
            let vb = _mm512_maskz_loadu_epi8(k, b.cast());
            _mm512_cmpneq_epi8_mask(va, vb)
        }
    }
}

/// Runs `job` with the AVX-512 kernel, compiled with AVX-512F/BW enabled so the kernel inlines
/// into it.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512BW.
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) unsafe fn run<J: Job>(job: J) -> J::Output {
    // SAFETY: the caller guarantees AVX-512F/BW support.
    unsafe { job.run::<Avx512>() }
}
