//! The frame checksum summed while the frame is written, from pieces.
//!
//! xxh3-64 of an input longer than 240 bytes keeps eight 64-bit accumulators. Each 64-byte stripe
//! adds to them a term that depends only on the stripe's bytes and its place in its 1 KiB block;
//! after each full block the accumulators are scrambled. The terms of a block can therefore be
//! summed as soon as the block's bytes are known, whatever comes before it; only the chain of
//! block sums and scrambles waits for the end. The encoder writes a frame's header last, into its
//! first 56 bytes: the frame's first stripe is the one term left to the end.
//!
//! [`Ahead`] is fed a frame's bytes in order, in pieces of any length (the encoder's buffer
//! between pages it sends in place, and those pages, each as soon as it is written), and keeps
//! each full block's sum; [`Ahead::finish`] then needs only the frame's first stripe and its last
//! bytes (at most a block and a stripe) to give xxh3-64 of the whole, the value of hashing it in
//! one go (tested against xxhash-rust for every length class and many ways of cutting it). A page
//! is so hashed while it is still in the processor's cache from the encoder's zero test, not read
//! from memory a second time when the frame closes.

use super::DEFAULT_SECRET;

/// Bytes of a stripe.
const STRIPE: usize = 64;
/// Stripes of a block with the default secret: (192 - 64) / 8.
const STRIPES_PER_BLOCK: usize = 16;
/// Bytes of a block.
pub(crate) const BLOCK: usize = STRIPE * STRIPES_PER_BLOCK;
/// Inputs up to this long are hashed by xxh3's short-input paths (no blocks).
const MIDSIZE_MAX: usize = 240;
/// Where in the secret the scramble key, the last stripe's key and the merge keys start.
const SCRAMBLE_KEY: usize = 192 - STRIPE;
const LAST_STRIPE_KEY: usize = 192 - STRIPE - 7;
const MERGE_KEY: usize = 11;

const PRIME32_1: u64 = 0x9E37_79B1;
const PRIME32_2: u64 = 0x85EB_CA77;
const PRIME32_3: u64 = 0xC2B2_AE3D;
const PRIME64_1: u64 = 0x9E37_79B1_85EB_CA87;
const PRIME64_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const PRIME64_3: u64 = 0x1656_67B1_9E37_79F9;
const PRIME64_4: u64 = 0x85EB_CA77_C2B2_AE63;
const PRIME64_5: u64 = 0x27D4_EB2F_1656_67C5;

/// The accumulators before the first stripe.
const INIT: [u64; 8] = [
    PRIME32_3, PRIME64_1, PRIME64_2, PRIME64_3, PRIME64_4, PRIME32_2, PRIME64_5, PRIME32_1,
];

type Lanes = [u64; 8];

#[inline(always)]
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// Adds to `sum` the terms of the `stripes` stripes of `data`, the first keyed at `key` of the
/// secret and each next one 8 bytes further (portable kernel).
fn sum_stripes_generic(sum: &mut Lanes, data: &[u8], key: usize, stripes: usize) {
    for s in 0..stripes {
        let stripe = &data[s * STRIPE..(s + 1) * STRIPE];
        let k = key + 8 * s;
        for i in 0..8 {
            let v = u64_at(stripe, 8 * i);
            let dk = v ^ u64_at(&DEFAULT_SECRET, k + 8 * i);
            sum[i ^ 1] = sum[i ^ 1].wrapping_add(v);
            sum[i] = sum[i].wrapping_add((dk & 0xFFFF_FFFF).wrapping_mul(dk >> 32));
        }
    }
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod avx2 {
    use super::{by_block, Lanes, DEFAULT_SECRET, STRIPE};
    use core::arch::x86_64::{
        __m256i, _mm256_add_epi64, _mm256_loadu_si256, _mm256_mul_epu32, _mm256_shuffle_epi32,
        _mm256_srli_epi64, _mm256_storeu_si256, _mm256_xor_si256,
    };

    /// [`super::sum_stripes_generic`] with AVX2: a stripe is two 32-byte vectors of four lanes.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sum_stripes(sum: &mut Lanes, data: &[u8], key: usize, stripes: usize) {
        // bounds checked here, once: the loads below stay inside these two slices
        let data = &data[..stripes * STRIPE];
        let secret = &DEFAULT_SECRET[key..key + 8 * stripes.saturating_sub(1) + STRIPE];
        // SAFETY: AVX2 is available (the caller's guarantee). Every load reads 32 bytes at
        // `data[s * 64 + h * 32..]` or `secret[s * 8 + h * 32..]` for `s < stripes`, `h < 2`,
        // inside the slices cut above; loadu and storeu take unaligned addresses, and the stores
        // write `sum`'s 64 bytes.
        unsafe {
            let p = sum.as_mut_ptr().cast::<__m256i>();
            let mut acc = [_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1))];
            for s in 0..stripes {
                for (h, a) in acc.iter_mut().enumerate() {
                    let v = _mm256_loadu_si256(data.as_ptr().add(s * STRIPE + h * 32).cast());
                    let k = _mm256_loadu_si256(secret.as_ptr().add(s * 8 + h * 32).cast());
                    let dk = _mm256_xor_si256(v, k);
                    // low half of each lane times its high half
                    let prod = _mm256_mul_epu32(dk, _mm256_srli_epi64::<32>(dk));
                    // each lane's bytes go to its neighbour in the pair (lane i to i ^ 1)
                    let swapped = _mm256_shuffle_epi32::<0b01_00_11_10>(v);
                    *a = _mm256_add_epi64(*a, _mm256_add_epi64(swapped, prod));
                }
            }
            _mm256_storeu_si256(p, acc[0]);
            _mm256_storeu_si256(p.add(1), acc[1]);
        }
    }

    /// [`super::sum_run_generic`] with AVX2: the stripe loop inlined, one call for a whole run.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sum_run(
        open: &mut Lanes,
        sums: &mut Vec<Lanes>,
        data: &[u8],
        first: usize,
    ) {
        // SAFETY: AVX2 is available (the caller's guarantee); each call's `data` holds `n`
        // stripes (see `by_block`)
        by_block(open, sums, data, first, |sum, data, key, n| unsafe {
            sum_stripes(sum, data, key, n)
        });
    }
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod avx512 {
    use super::{by_block, Lanes, DEFAULT_SECRET, STRIPE};
    use core::arch::x86_64::{
        _mm512_add_epi64, _mm512_loadu_si512, _mm512_mul_epu32, _mm512_setzero_si512,
        _mm512_shuffle_epi32, _mm512_srli_epi64, _mm512_storeu_si512, _mm512_xor_si512,
        _MM_PERM_BADC,
    };

    /// [`super::sum_stripes_generic`] with AVX-512: a stripe is one 64-byte vector of the
    /// eight lanes, half the instructions of the AVX2 kernel's two.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sum_stripes(sum: &mut Lanes, data: &[u8], key: usize, n: usize) {
        if n == 0 {
            return;
        }
        // bounds checked here, once: the loads below stay inside these two slices
        let run = &data[..n * STRIPE];
        let secret = &DEFAULT_SECRET[key..key + 8 * (n - 1) + STRIPE];
        // SAFETY: AVX-512F is available (the caller's guarantee). The first load and the store
        // read and write `sum`'s 64 bytes; every other load reads 64 bytes at `run[s * 64..]` or
        // `secret[s * 8..]` for `s < n`, inside the slices cut above; loadu and storeu take
        // unaligned addresses.
        unsafe {
            let p = sum.as_mut_ptr().cast();
            let term = |s: usize| {
                let v = _mm512_loadu_si512(run.as_ptr().add(s * STRIPE).cast());
                let k = _mm512_loadu_si512(secret.as_ptr().add(s * 8).cast());
                let dk = _mm512_xor_si512(v, k);
                // low half of each lane times its high half
                let prod = _mm512_mul_epu32(dk, _mm512_srli_epi64::<32>(dk));
                // each lane's bytes go to its neighbour in the pair (lane i to i ^ 1)
                let swapped = _mm512_shuffle_epi32::<_MM_PERM_BADC>(v);
                _mm512_add_epi64(swapped, prod)
            };
            // two sums, of the even and the odd stripes, so that each stripe's terms do
            // not wait for the last one's
            let (mut even, mut odd) = (_mm512_loadu_si512(p), _mm512_setzero_si512());
            for s in (0..n - 1).step_by(2) {
                even = _mm512_add_epi64(even, term(s));
                odd = _mm512_add_epi64(odd, term(s + 1));
            }
            if n % 2 == 1 {
                even = _mm512_add_epi64(even, term(n - 1));
            }
            _mm512_storeu_si512(p, _mm512_add_epi64(even, odd));
        }
    }

    /// [`super::sum_run_generic`] with AVX-512, one call for a whole run.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sum_run(
        open: &mut Lanes,
        sums: &mut Vec<Lanes>,
        data: &[u8],
        first: usize,
    ) {
        // SAFETY: AVX-512F is available (the caller's guarantee); each call's `data` holds `n`
        // stripes (see `by_block`)
        by_block(open, sums, data, first, |sum, data, key, n| unsafe {
            sum_stripes(sum, data, key, n)
        });
    }
}

/// Adds to `sum` the terms of `stripes` stripes of `data` keyed from `key` on, with the best
/// kernel of this CPU.
fn sum_stripes(sum: &mut Lanes, data: &[u8], key: usize, stripes: usize) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        return unsafe { avx2::sum_stripes(sum, data, key, stripes) };
    }
    sum_stripes_generic(sum, data, key, stripes)
}

/// Adds the whole stripes of `data` to `open`, the first of them stripe `first` of its block
/// (keyed by its place); each block completed is pushed onto `sums` and the next begun from
/// zero (portable kernel).
fn sum_run_generic(open: &mut Lanes, sums: &mut Vec<Lanes>, data: &[u8], first: usize) {
    by_block(open, sums, data, first, sum_stripes_generic);
}

/// The walk of every `sum_run`: the whole stripes of `data`, the first of them stripe `first`
/// of its block, given to `add` (lanes, data, the first stripe's key, stripe count) a block's
/// part at a time (`data` holds that many stripes); each block completed is pushed onto `sums`
/// and the next begun from zero. Inlined into each kernel's `sum_run`, so the kernel's stripe
/// loop is compiled with its instruction set.
#[inline(always)]
fn by_block(
    open: &mut Lanes,
    sums: &mut Vec<Lanes>,
    mut data: &[u8],
    mut first: usize,
    mut add: impl FnMut(&mut Lanes, &[u8], usize, usize),
) {
    while data.len() >= STRIPE {
        let n = (data.len() / STRIPE).min(STRIPES_PER_BLOCK - first);
        add(open, data, first * 8, n);
        data = &data[n * STRIPE..];
        first += n;
        if first == STRIPES_PER_BLOCK {
            sums.push(std::mem::take(open));
            first = 0;
        }
    }
}

/// The kernel that sums a run of stripes, chosen once per [`Ahead`]: a page fed in place is a
/// run of four or five blocks, summed in one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Portable,
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    Avx2,
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    Avx512,
}

impl Kernel {
    /// The kernels this CPU can run, slowest first (the portable one always).
    fn available() -> Vec<Kernel> {
        let mut k = vec![Kernel::Portable];
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                k.push(Kernel::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                k.push(Kernel::Avx512);
            }
        }
        k
    }

    /// The best kernel of this CPU. A 4 KiB page in the processor's cache took 52 ns with
    /// AVX-512, 68 ns with AVX2 and 290 ns portable here; the encoder at 100 Gbit/s, where most
    /// of its time is the zero test and this sum, 5% less on py-sqlite.
    fn best() -> Kernel {
        *Kernel::available().last().expect("the portable kernel")
    }

    /// [`sum_run_generic`] with this kernel.
    fn sum_run(self, open: &mut Lanes, sums: &mut Vec<Lanes>, data: &[u8], first: usize) {
        match self {
            Kernel::Portable => sum_run_generic(open, sums, data, first),
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            // SAFETY: `Avx2` is chosen only where AVX2 was detected.
            Kernel::Avx2 => unsafe { avx2::sum_run(open, sums, data, first) },
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            // SAFETY: `Avx512` is chosen only where AVX-512F was detected.
            Kernel::Avx512 => unsafe { avx512::sum_run(open, sums, data, first) },
        }
    }
}

fn scramble(acc: &mut Lanes) {
    for (i, a) in acc.iter_mut().enumerate() {
        let mut x = *a;
        x ^= x >> 47;
        x ^= u64_at(&DEFAULT_SECRET, SCRAMBLE_KEY + 8 * i);
        *a = x.wrapping_mul(PRIME32_1);
    }
}

fn fold(a: u64, b: u64) -> u64 {
    let p = a as u128 * b as u128;
    (p as u64) ^ ((p >> 64) as u64)
}

fn merge(acc: &Lanes, len: usize) -> u64 {
    let mut h = (len as u64).wrapping_mul(PRIME64_1);
    for i in 0..4 {
        let k = MERGE_KEY + 16 * i;
        h = h.wrapping_add(fold(
            acc[2 * i] ^ u64_at(&DEFAULT_SECRET, k),
            acc[2 * i + 1] ^ u64_at(&DEFAULT_SECRET, k + 8),
        ));
    }
    h ^= h >> 37;
    h = h.wrapping_mul(0x1656_6791_9E37_79F9);
    h ^ (h >> 32)
}

/// The sums of the full blocks of a frame fed so far (see the module's documentation).
#[derive(Debug, Clone)]
pub(crate) struct Ahead {
    /// Sum of block `k`'s stripe terms (without the first stripe for block 0).
    sums: Vec<Lanes>,
    /// The stripe terms of the block being fed so far.
    open: Lanes,
    /// Bytes fed.
    fed: usize,
    /// The bytes of a stripe begun but not complete (`fed % STRIPE` of them) at its start; two
    /// stripes long, so that completing it copies a whole stripe (a fixed-size copy) whatever
    /// the part missing.
    carry: [u8; 2 * STRIPE],
    kernel: Kernel,
}

impl Default for Ahead {
    fn default() -> Self {
        Ahead {
            sums: Vec::new(),
            open: [0; 8],
            fed: 0,
            carry: [0; 2 * STRIPE],
            kernel: Kernel::best(),
        }
    }
}

impl Ahead {
    /// Forgets what was fed: a new frame begins.
    pub(crate) fn reset(&mut self) {
        self.sums.clear();
        self.open = [0; 8];
        self.fed = 0;
    }

    /// Bytes fed since the last [`reset`](Self::reset).
    pub(crate) fn fed(&self) -> usize {
        self.fed
    }

    /// Makes room for the sums of a frame of `len` bytes, so that feeding it does not allocate;
    /// false when the memory cannot be had.
    pub(crate) fn reserve(&mut self, len: usize) -> bool {
        let more = (len / BLOCK + 1).saturating_sub(self.sums.len());
        self.sums.try_reserve(more).is_ok()
    }

    /// Bytes of memory held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.sums.capacity() * std::mem::size_of::<Lanes>()
    }

    /// Feeds the frame's next bytes. Bytes 0 to 64 (the header's stripe) may still change;
    /// those after them may not. Needs the room [`reserve`](Self::reserve) makes for the frame.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        let at = self.fed % STRIPE;
        if at > 0 {
            // complete the stripe begun
            let n = (STRIPE - at).min(bytes.len());
            if bytes.len() >= STRIPE {
                self.carry[at..at + STRIPE].copy_from_slice(&bytes[..STRIPE]);
            } else {
                self.carry[at..at + n].copy_from_slice(&bytes[..n]);
            }
            self.fed += n;
            bytes = &bytes[n..];
            if at + n < STRIPE {
                return;
            }
            let stripe = self.carry;
            self.run(self.fed - STRIPE, &stripe[..STRIPE]);
        }
        let whole = bytes.len() - bytes.len() % STRIPE;
        if whole > 0 {
            self.run(self.fed, &bytes[..whole]);
            self.fed += whole;
        }
        let rest = &bytes[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.fed += rest.len();
    }

    /// Sums the whole stripes of `data`, which begins `start` bytes into the frame (a whole
    /// number of stripes); the frame's first stripe is left to [`finish`](Self::finish).
    fn run(&mut self, start: usize, mut data: &[u8]) {
        let mut first = start % BLOCK / STRIPE;
        if start == 0 {
            data = &data[STRIPE..];
            first = 1;
        }
        self.kernel
            .sum_run(&mut self.open, &mut self.sums, data, first);
    }

    /// xxh3-64 (seed 0) of the frame fed, `len` bytes (all of them fed), given its first
    /// `min(len, 64)` bytes as they are now (`head`, the header written) and its last bytes from
    /// [`tail_from`](Self::tail_from) on (`tail`).
    pub(crate) fn finish(&self, head: &[u8], tail: &[u8], len: usize) -> u64 {
        debug_assert_eq!(self.fed, len);
        debug_assert!(len > MIDSIZE_MAX, "short frames are hashed whole");
        let blocks = (len - 1) / BLOCK;
        let mut acc = INIT;
        for (k, sum) in self.sums[..blocks].iter().enumerate() {
            for (a, s) in acc.iter_mut().zip(sum) {
                *a = a.wrapping_add(*s);
            }
            if k == 0 {
                sum_stripes(&mut acc, head, 0, 1);
            }
            scramble(&mut acc);
        }
        // the last block's stripes but the last, as the others are keyed (not scrambled), then
        // the frame's last 64 bytes with their own key
        let from = Self::tail_from(len);
        let last = &tail[blocks * BLOCK - from..];
        let stripes = (last.len() - 1) / STRIPE;
        if blocks == 0 && stripes > 0 {
            // the first stripe is the header's
            sum_stripes(&mut acc, head, 0, 1);
            sum_stripes(&mut acc, &last[STRIPE..], 8, stripes - 1);
        } else {
            sum_stripes(&mut acc, last, 0, stripes);
        }
        sum_stripes(&mut acc, &tail[tail.len() - STRIPE..], LAST_STRIPE_KEY, 1);
        merge(&acc, len)
    }

    /// Where the bytes [`finish`](Self::finish) needs at the end of a frame of `len` bytes
    /// begin: the last block's, or the last 64 if they begin earlier.
    pub(crate) fn tail_from(len: usize) -> usize {
        let blocks = (len - 1) / BLOCK;
        (blocks * BLOCK).min(len - STRIPE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::bytes as data;

    /// Frames fed in pieces of every kind of length (1 byte, less than a stripe, stripes and
    /// blocks and beyond, crossing stripe and block edges anywhere), of every length class past
    /// the short inputs and at block edges, their first 56 bytes fed as zeros and given only at
    /// the end: `finish` equals xxh3-64 of the whole, with every kernel this CPU runs.
    #[test]
    fn the_sums_of_a_frame_fed_in_pieces_give_xxh3_of_the_whole() {
        let lens: Vec<usize> = if cfg!(miri) {
            vec![241, 1024, 1025, 1089, 2049, 5000]
        } else {
            let mut v: Vec<usize> = (241..=1200).step_by(7).collect();
            for edge in [1, 2, 3, 4, 7, 8] {
                let e = edge * BLOCK;
                v.extend([
                    e - 65,
                    e - 64,
                    e - 63,
                    e - 1,
                    e,
                    e + 1,
                    e + 63,
                    e + 64,
                    e + 65,
                ]);
            }
            v.extend([5000, 9000, 40_000, 70_001]);
            v
        };
        // the last two as the encoder feeds pages in place: an op's few bytes, then the page
        let cuts: [&[usize]; 7] = [
            &[1],
            &[3, 61, 4099],
            &[64],
            &[4096, 2, 3],
            &[100_000],
            &[5, 4096],
            &[11, 4096, 3, 4096],
        ];
        let kernels = Kernel::available();
        for (n, &len) in lens.iter().enumerate() {
            let whole = data(len, n as u64 + 1);
            let want = xxhash_rust::xxh3::xxh3_64(&whole);
            let mut fed = whole.clone();
            fed[..56].fill(0);
            for (cut, &kernel) in cuts
                .iter()
                .flat_map(|c| kernels.iter().map(move |k| (c, k)))
            {
                let mut a = Ahead {
                    kernel,
                    ..Ahead::default()
                };
                assert!(a.reserve(len));
                let (mut at, mut i) = (0, 0);
                while at < len {
                    let k = cut[i % cut.len()].min(len - at);
                    a.feed(&fed[at..at + k]);
                    at += k;
                    i += 1;
                }
                let head = &whole[..STRIPE];
                let tail = &whole[Ahead::tail_from(len)..];
                assert_eq!(
                    a.finish(head, tail, len),
                    want,
                    "len {len}, cuts {cut:?}, {kernel:?}"
                );
            }
        }
    }

    /// Every vector kernel this CPU runs sums a run of stripes as the portable one does,
    /// whether the run starts at a block's edge or inside it, crosses block edges, ends inside a
    /// block, has an odd or even count of stripes in each block, or is empty.
    #[test]
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    fn every_vector_kernel_sums_runs_as_the_portable_one() {
        let d = data(6 * BLOCK, 11);
        for kernel in Kernel::available().into_iter().skip(1) {
            for first in 0..STRIPES_PER_BLOCK {
                for stripes in [0, 1, 2, 3, 15, 16, 17, 33, 64, 65, 80] {
                    let len = stripes * STRIPE;
                    let (mut a, mut b) = ([7u64; 8], [7u64; 8]);
                    let (mut sa, mut sb) = (vec![[1u64; 8]], vec![[1u64; 8]]);
                    sum_run_generic(&mut a, &mut sa, &d[..len], first);
                    kernel.sum_run(&mut b, &mut sb, &d[..len], first);
                    assert_eq!(
                        (a, &sa),
                        (b, &sb),
                        "{kernel:?}: first {first}, {stripes} stripes"
                    );
                }
            }
        }
    }

    /// The vector kernels' stripe sums equal the portable one's, for every key a block's
    /// stripes take, the last stripe's key, and every count of stripes a block holds.
    #[test]
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    fn the_vector_kernels_sum_stripes_as_the_portable_one() {
        let d = data(BLOCK, 9);
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        let cases = (0..STRIPES_PER_BLOCK)
            .flat_map(|first| (0..=STRIPES_PER_BLOCK - first).map(move |n| (8 * first, n)))
            .chain([(LAST_STRIPE_KEY, 1)]);
        for (key, stripes) in cases {
            let mut want = [7u64; 8];
            sum_stripes_generic(&mut want, &d, key, stripes);
            if avx2 {
                let mut got = [7u64; 8];
                // SAFETY: AVX2 was detected above.
                unsafe { avx2::sum_stripes(&mut got, &d, key, stripes) };
                assert_eq!(got, want, "avx2: key {key}, stripes {stripes}");
            }
            if avx512 {
                let mut got = [7u64; 8];
                // SAFETY: AVX-512F was detected above.
                unsafe { avx512::sum_stripes(&mut got, &d, key, stripes) };
                assert_eq!(got, want, "avx512: key {key}, stripes {stripes}");
            }
        }
    }
}
