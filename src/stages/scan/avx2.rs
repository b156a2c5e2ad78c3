//! AVX2 kernel: two 32-byte compares per 64-byte mask.

use super::{Job, Kernel};
use core::arch::x86_64::{__m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8};

/// The AVX2 kernel.
pub(crate) struct Avx2;

impl Kernel for Avx2 {
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn mask64(a: *const u8, b: *const u8) -> u64 {
        // SAFETY: the caller guarantees 64 readable bytes at a and b (loadu has no alignment
        // requirement) and AVX2 support, enabled on this function.
        unsafe {
            let a0 = _mm256_loadu_si256(a.cast::<__m256i>());
            let a1 = _mm256_loadu_si256(a.add(32).cast::<__m256i>());
            let b0 = _mm256_loadu_si256(b.cast::<__m256i>());
            let b1 = _mm256_loadu_si256(b.add(32).cast::<__m256i>());
            let lo = _mm256_movemask_epi8(_mm256_cmpeq_epi8(a0, b0)) as u32 as u64;
            let hi = _mm256_movemask_epi8(_mm256_cmpeq_epi8(a1, b1)) as u32 as u64;
            !(lo | (hi << 32))
        }
    }
}

/// Runs `job` with the AVX2 kernel, compiled with AVX2 enabled so the kernel inlines into it.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn run<J: Job>(job: J) -> J::Output {
    // SAFETY: the caller guarantees AVX2 support.
    unsafe { job.run::<Avx2>() }
}
