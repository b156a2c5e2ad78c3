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

/// Asks the processor for every cache line `items` occupies, without waiting for them: the
/// reads that follow (after other work, or side by side) then do not wait on memory one line
/// after another. A hint only: it changes no value and cannot fault.
#[inline(always)]
pub(crate) fn prefetch<T>(items: &[T]) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = items.as_ptr().cast::<u8>();
        for offset in (0..std::mem::size_of_val(items)).step_by(64) {
            // SAFETY: a prefetch is a hint that reads nothing the program can see and cannot
            // fault, whatever the address (here inside `items`, `offset` below its size); SSE
            // is part of the x86_64 baseline. (Miri cannot run it; there the reads that follow
            // run without the hint.)
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(offset).cast()) };
        }
    }
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    let _ = items;
}
