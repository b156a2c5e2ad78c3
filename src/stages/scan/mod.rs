//! Run-finding kernels: where do two equally long buffers start and stop differing.
//!
//! Both page codecs ([`crate::stages::delta`] and [`crate::stages::xbzrle`]) describe a page as alternating runs of
//! unchanged and changed bytes, so their speed is the speed of finding run boundaries. This module
//! provides that search with one implementation per instruction set, in the style of zlib-rs and
//! BLAKE3: [`generic`](self) (portable, 8 bytes at a time in `u64` words), `avx2` and `avx512`
//! (x86_64 only, compiled with `#[target_feature]`, chosen at run time).
//!
//! Every kernel reduces 64 bytes of two buffers to a 64-bit *difference mask* (bit `i` set when byte
//! `i` differs); the crate-internal run walker `for_each_run` turns a stream of masks into runs with
//! `trailing_zeros`, so a 4 KiB page costs 64 mask computations however many runs it has.
//!
//! The public API is safe: [`first_difference`], [`first_equal`] and [`runs`] use the best instruction
//! set of this CPU (detected once and cached); the `*_with` variants take a forced [`Isa`] so tests and
//! benchmarks can compare every path ([`available`] lists the ones this CPU can run).

use std::sync::atomic::{AtomicU8, Ordering};

mod generic;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// An implementation of the scan kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, 8 bytes at a time.
    Generic,
    /// x86_64 AVX2, 32 bytes per compare.
    Avx2,
    /// x86_64 AVX-512BW, 64 bytes per compare into a mask register.
    Avx512,
}

impl Isa {
    /// Every implementation, available on this CPU or not, slowest first.
    pub const ALL: [Isa; 3] = [Isa::Generic, Isa::Avx2, Isa::Avx512];

    /// A short lower-case name (`generic`, `avx2`, `avx512`).
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Generic => "generic",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run this implementation.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Generic => true,
            // Miri cannot run the vector intrinsics: only the generic path exists there.
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            Isa::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
            }
            #[cfg(not(all(target_arch = "x86_64", not(miri))))]
            _ => false,
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The implementations this CPU can run, slowest first (always starts with [`Isa::Generic`]).
pub fn available() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
}

const UNKNOWN: u8 = u8::MAX;
static BEST: AtomicU8 = AtomicU8::new(UNKNOWN);

/// The fastest implementation this CPU can run (detected on first use, then cached).
pub fn best() -> Isa {
    match BEST.load(Ordering::Relaxed) {
        0 => Isa::Generic,
        1 => Isa::Avx2,
        2 => Isa::Avx512,
        _ => {
            let isa = *available().last().unwrap_or(&Isa::Generic);
            // Racing first calls all compute the same value, so a plain store is enough.
            BEST.store(isa as u8, Ordering::Relaxed);
            isa
        }
    }
}

/// One scan implementation: reduces 64 bytes of two buffers to a difference mask.
///
/// Implemented by zero-sized marker types; code generic over `K: Kernel` is instantiated once per
/// instruction set inside a `#[target_feature]` trampoline (see [`Job`] and [`dispatch`]), so the
/// kernels inline into the codec loops.
pub(crate) trait Kernel {
    /// Bit `i` of the result is set iff `*a.add(i) != *b.add(i)`, for `i` in `0..64`.
    ///
    /// # Safety
    /// `a` and `b` must be valid for reads of 64 bytes, and the CPU must support this kernel's
    /// instruction set.
    unsafe fn mask64(a: *const u8, b: *const u8) -> u64;

    /// As [`Kernel::mask64`] for the first `len` bytes only (`len < 64`); bits `len..64` are 0.
    ///
    /// # Safety
    /// `a` and `b` must be valid for reads of `len` bytes, `len < 64`, and the CPU must support
    /// this kernel's instruction set.
    #[inline(always)]
    unsafe fn mask_tail(a: *const u8, b: *const u8, len: usize) -> u64 {
        // SAFETY: forwarded contract (valid for `len` bytes).
        unsafe { generic::mask_partial(a, b, len) }
    }
}

/// A computation that is generic over the scan kernel, run by [`dispatch`] under the right
/// `#[target_feature]` so that the kernels inline into it.
pub(crate) trait Job {
    type Output;
    /// # Safety
    /// The CPU must support `K`'s instruction set.
    unsafe fn run<K: Kernel>(self) -> Self::Output;
}

/// Runs `job` with the kernels of `isa`.
///
/// # Panics
/// If `isa` is not available on this CPU (see [`Isa::is_available`]).
#[inline]
pub(crate) fn dispatch<J: Job>(isa: Isa, job: J) -> J::Output {
    assert!(
        isa.is_available(),
        "scan ISA {isa} is not available on this CPU"
    );
    match isa {
        // SAFETY: the generic kernel needs no CPU feature.
        Isa::Generic => unsafe { job.run::<generic::Generic>() },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: checked just above that the CPU supports AVX2.
        Isa::Avx2 => unsafe { avx2::run(job) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: checked just above that the CPU supports AVX-512F and AVX-512BW.
        Isa::Avx512 => unsafe { avx512::run(job) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("non-x86 ISAs are never available"),
    }
}

/// Index of the first byte at or after `from` where `a` and `b` differ, or `a.len()` if none
/// (also when `from >= a.len()`).
///
/// # Panics
/// If `a.len() != b.len()`.
#[inline]
pub fn first_difference(a: &[u8], b: &[u8], from: usize) -> usize {
    first_difference_with(best(), a, b, from)
}

/// Index of the first byte at or after `from` where `a` and `b` are equal, or `a.len()` if none
/// (also when `from >= a.len()`).
///
/// # Panics
/// If `a.len() != b.len()`.
#[inline]
pub fn first_equal(a: &[u8], b: &[u8], from: usize) -> usize {
    first_equal_with(best(), a, b, from)
}

/// [`first_difference`] with a forced implementation.
///
/// # Panics
/// If `a.len() != b.len()` or `isa` is not available on this CPU.
pub fn first_difference_with(isa: Isa, a: &[u8], b: &[u8], from: usize) -> usize {
    assert_eq!(a.len(), b.len(), "scan buffers must have equal lengths");
    struct J<'a>(&'a [u8], &'a [u8], usize);
    impl Job for J<'_> {
        type Output = usize;
        #[inline(always)]
        unsafe fn run<K: Kernel>(self) -> usize {
            // SAFETY: lengths are equal (asserted above); the CPU supports K (our contract).
            unsafe { scan_k::<K, false>(self.0, self.1, self.2) }
        }
    }
    dispatch(isa, J(a, b, from))
}

/// [`first_equal`] with a forced implementation.
///
/// # Panics
/// If `a.len() != b.len()` or `isa` is not available on this CPU.
pub fn first_equal_with(isa: Isa, a: &[u8], b: &[u8], from: usize) -> usize {
    assert_eq!(a.len(), b.len(), "scan buffers must have equal lengths");
    struct J<'a>(&'a [u8], &'a [u8], usize);
    impl Job for J<'_> {
        type Output = usize;
        #[inline(always)]
        unsafe fn run<K: Kernel>(self) -> usize {
            // SAFETY: lengths are equal (asserted above); the CPU supports K (our contract).
            unsafe { scan_k::<K, true>(self.0, self.1, self.2) }
        }
    }
    dispatch(isa, J(a, b, from))
}

/// The changed runs of `new` against `old` as `(start, end)` byte ranges, in order, where runs
/// separated by at most `merge_gap` unchanged bytes are joined into one (0 = maximal runs exactly).
///
/// # Panics
/// If `old.len() != new.len()` or `merge_gap > MAX_MERGE_GAP`.
pub fn runs(old: &[u8], new: &[u8], merge_gap: usize) -> Vec<(usize, usize)> {
    runs_with(best(), old, new, merge_gap)
}

/// [`runs`] with a forced implementation.
///
/// # Panics
/// If `old.len() != new.len()`, `merge_gap > MAX_MERGE_GAP` or `isa` is not available on this
/// CPU.
pub fn runs_with(isa: Isa, old: &[u8], new: &[u8], merge_gap: usize) -> Vec<(usize, usize)> {
    assert_eq!(old.len(), new.len(), "scan buffers must have equal lengths");
    assert!(
        merge_gap <= MAX_MERGE_GAP,
        "merge_gap must be at most {MAX_MERGE_GAP}"
    );
    struct J<'a>(&'a [u8], &'a [u8], usize);
    impl Job for J<'_> {
        type Output = Vec<(usize, usize)>;
        #[inline(always)]
        unsafe fn run<K: Kernel>(self) -> Self::Output {
            let mut v = Vec::new();
            let mut push = |s, e| {
                v.push((s, e));
                true
            };
            // SAFETY: lengths are equal (asserted above); the CPU supports K (our contract).
            unsafe {
                match self.2 {
                    0 => for_each_run::<K, 0, true, _>(self.0, self.1, &mut push),
                    1 => for_each_run::<K, 1, true, _>(self.0, self.1, &mut push),
                    _ => for_each_run::<K, 2, true, _>(self.0, self.1, &mut push),
                }
            };
            v
        }
    }
    dispatch(isa, J(old, new, merge_gap))
}

/// First index `>= from` where the bytes differ (`EQUAL == false`) or are equal (`EQUAL == true`),
/// or `len`.
///
/// # Safety
/// `a.len() == b.len()`; the CPU supports `K`.
#[inline(always)]
pub(crate) unsafe fn scan_k<K: Kernel, const EQUAL: bool>(
    a: &[u8],
    b: &[u8],
    from: usize,
) -> usize {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = from.min(n);
    while n - i >= 64 {
        // SAFETY: i + 64 <= n = a.len() = b.len(), so 64 bytes at offset i are in bounds;
        // the CPU supports K (caller's contract).
        let m = unsafe { K::mask64(pa.add(i), pb.add(i)) };
        let m = if EQUAL { !m } else { m };
        if m != 0 {
            return i + m.trailing_zeros() as usize;
        }
        i += 64;
    }
    if i < n {
        let len = n - i;
        // SAFETY: len < 64 bytes at offset i are in bounds; the CPU supports K.
        let m = unsafe { K::mask_tail(pa.add(i), pb.add(i), len) };
        let m = if EQUAL { !m & ((1u64 << len) - 1) } else { m };
        if m != 0 {
            return i + m.trailing_zeros() as usize;
        }
    }
    n
}

/// Receiver of the runs found by [`for_each_run`]. Implemented by the codecs' output writers with
/// an `#[inline(always)]` method, so the writer is inlined into the walker (a closure body called
/// from several sites is not reliably inlined).
pub(crate) trait RunSink {
    /// Takes changed run `[start, end)`; returns `false` to stop the walk.
    fn run(&mut self, start: usize, end: usize) -> bool;
}

impl<F: FnMut(usize, usize) -> bool> RunSink for F {
    #[inline(always)]
    fn run(&mut self, start: usize, end: usize) -> bool {
        self(start, end)
    }
}

/// Software prefetch distance in bytes for the walker's callers that ask for it (`AHEAD`): the
/// encoder's XOR delta, whose walks run beside the page's other stages (measured on 64 MiB of
/// page pairs: 512 beat 0, 256 and 1024 by a few percent; on proc-node at 2.5 Gbit/s the delta
/// stage alone ran 1-4% slower without it).
#[cfg_attr(not(all(target_arch = "x86_64", not(miri))), allow(dead_code))]
const PREFETCH_AHEAD: usize = 512;

/// Hints the cache lines `PREFETCH_AHEAD` bytes past `base` in both buffers (clamped to the
/// last byte). A hint only: it never faults and changes no state visible to the program.
#[inline(always)]
fn prefetch(pa: *const u8, pb: *const u8, n: usize, base: usize) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let off = (base + PREFETCH_AHEAD).min(n.saturating_sub(1));
        // SAFETY: prefetch is a hint that performs no architectural memory access (it cannot
        // fault) and SSE is part of the x86_64 baseline; the addresses are computed with
        // wrapping_add and are in bounds anyway (off < n, or n == 0 where off == 0 is never used
        // because the walker does not run on empty input).
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(pa.wrapping_add(off).cast());
            _mm_prefetch::<_MM_HINT_T0>(pb.wrapping_add(off).cast());
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = (pa, pb, n, base);
}

/// Largest gap [`runs`] and the run walker can absorb.
pub const MAX_MERGE_GAP: usize = 2;

/// Calls `f.run(start, end)` for each run of changed bytes of `new` against `old`, in order. Runs
/// separated by at most `GAP` (0, 1 or 2) unchanged bytes are reported as one run that includes
/// the gap. Stops early and returns `false` as soon as `f` returns `false`; returns `true`
/// otherwise.
///
/// Every run has `start < end`; consecutive runs are separated by more than `GAP` unchanged
/// bytes; bytes outside all runs are unchanged.
///
/// How: each 64-byte block becomes a difference mask `m`; gaps of at most `GAP` zero bits between
/// set bits are filled with shifts (using 2 bits of the neighbouring blocks' masks), then run
/// starts are `filled & !(filled << 1)` and run ends `!filled & (filled << 1)` (with the previous
/// block's top bit shifted in), consumed with `trailing_zeros` without per-byte branches.
///
/// With `AHEAD` the walker hints the cache lines [`PREFETCH_AHEAD`] bytes past each block with
/// changes. The XBZRLE encoder walks without: there the hints made sparse pages read from memory
/// 5-15% slower (`bench/qemu-xbzrle`) for no gain on real dirty pairs, the hardware prefetchers
/// following the walker's reads within a page.
///
/// # Safety
/// `old.len() == new.len()`; the CPU supports `K`.
#[inline(always)]
pub(crate) unsafe fn for_each_run<K: Kernel, const GAP: usize, const AHEAD: bool, S: RunSink>(
    old: &[u8],
    new: &[u8],
    f: &mut S,
) -> bool {
    const { assert!(GAP <= MAX_MERGE_GAP) };
    debug_assert_eq!(old.len(), new.len());
    let n = old.len();
    let (pa, pb) = (old.as_ptr(), new.as_ptr());
    let mask_at = |base: usize| -> u64 {
        if n - base >= 64 {
            // SAFETY: base + 64 <= n: 64 bytes at `base` are in bounds of both slices (equal
            // lengths by contract); the CPU supports K (our contract).
            unsafe { K::mask64(pa.add(base), pb.add(base)) }
        } else {
            // SAFETY: n - base < 64 bytes at `base` are in bounds; the CPU supports K.
            unsafe { K::mask_tail(pa.add(base), pb.add(base), n - base) }
        }
    };
    // Original mask of the previous block (for gap filling across the boundary), and bit 63 of
    // the previous block's filled mask: 1 iff a run is open at `base`.
    let mut prev_m = 0u64;
    let mut prev_top = 0u64;
    let mut start = 0usize;
    let mut base = 0usize;
    let mut m = if n > 0 { mask_at(0) } else { 0 };
    while base < n {
        // Fast path: no change and no open run (filling cannot set bits when m == 0). Skip
        // unchanged blocks in a loop of its own that holds nothing but the kernel (inside the
        // main loop the walker's state crowds the registers: measured 2.5x slower per block).
        if m == 0 && prev_top == 0 {
            prev_m = 0;
            base += 64;
            // No software prefetch here, even with AHEAD: the hardware prefetchers follow this
            // plain sequential scan, and the hints cost more than they gained (measured with
            // bench/qemu-xbzrle: 16 changed bytes per page, 10-25% faster without).
            while n.saturating_sub(base) >= 64 {
                // SAFETY: base + 64 <= n: in bounds of both slices (equal lengths by contract);
                // the CPU supports K (our contract).
                m = unsafe { K::mask64(pa.add(base), pb.add(base)) };
                if m != 0 {
                    break;
                }
                base += 64;
            }
            if base >= n {
                break;
            }
            if n - base < 64 {
                m = mask_at(base);
            }
            if m == 0 {
                // An unchanged tail block: the loop ends on the next round.
                continue;
            }
        }
        let next_base = base + 64;
        if AHEAD {
            prefetch(pa, pb, n, base);
        }
        // Gap filling looks 2 bits into the next block.
        let next_m = if GAP > 0 && next_base < n {
            mask_at(next_base)
        } else {
            0
        };
        let filled = match GAP {
            0 => m,
            _ => {
                let shl1 = (m << 1) | (prev_m >> 63);
                let shr1 = (m >> 1) | (next_m << 63);
                let mut fill = shl1 & shr1;
                if GAP >= 2 {
                    let shl2 = (m << 2) | (prev_m >> 62);
                    let shr2 = (m >> 2) | (next_m << 62);
                    fill |= (shl1 & shr2) | (shl2 & shr1);
                }
                m | fill
            }
        };
        // Bits past the end of a tail block are 0 ("equal"), so a run reaching the end of the
        // page gets its end at exactly n.
        let shifted = (filled << 1) | prev_top;
        let mut starts = filled & !shifted;
        let mut ends = !filled & shifted;
        if prev_top != 0 && ends != 0 {
            let t = ends.trailing_zeros() as usize;
            ends &= ends - 1;
            if !f.run(start, base + t) {
                return false;
            }
        }
        while starts != 0 {
            start = base + starts.trailing_zeros() as usize;
            starts &= starts - 1;
            if ends == 0 {
                // The run continues into the next block.
                break;
            }
            let t = ends.trailing_zeros() as usize;
            ends &= ends - 1;
            if !f.run(start, base + t) {
                return false;
            }
        }
        prev_top = filled >> 63;
        prev_m = m;
        base = next_base;
        m = if GAP > 0 {
            next_m
        } else if base < n {
            mask_at(base)
        } else {
            0
        };
    }
    if prev_top != 0 {
        // The last block was full and its last byte is in a run.
        return f.run(start, n);
    }
    true
}

#[cfg(test)]
pub(crate) mod tests;
