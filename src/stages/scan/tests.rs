//! Tests of the scan kernels against trivial byte loops, on every available ISA.
//! Also home of the small deterministic PRNG and page-pair generators the codec tests share.
//!
//! The per-byte loops of the generators and references are `while` loops over slices with the
//! length read once: under Miri (see [`scaled`]) a `for` loop over a range costs several times more
//! per step, and every call that takes the buffer (`len()`, indexing a `Vec` rather than a slice)
//! reborrows all of it, which Miri's borrow tracking pays for byte by byte.

use super::*;

/// SplitMix64: tiny deterministic PRNG for tests (no dependency, reproducible failures).
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0), slightly biased, fine for tests.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Fills `buf` with the little-endian bytes of successive draws, 8 bytes per draw.
    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        let n = buf.len();
        let mut i = 0;
        while i < n {
            let mut w = self.next_u64();
            let end = (i + 8).min(n);
            while i < end {
                buf[i] = w as u8;
                w >>= 8;
                i += 1;
            }
        }
    }
}

/// `native` normally, `miri` under Miri, which interprets every step (and tracks every borrow)
/// and is thousands of times slower: for iteration counts and sizes that are scaled down there.
pub(crate) const fn scaled(native: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        native
    }
}

/// `n`, or at most 1 KiB under Miri for the change patterns of [`mutate`] that cut a page into
/// hundreds of short runs (kinds 3 and 6): each run costs the codecs a reborrow of the whole page,
/// which Miri's borrow tracking pays for byte by byte, so thousands of runs on a 4 KiB page cost it
/// minutes. The other patterns keep their page size.
pub(crate) fn page_len(n: usize, kind: usize) -> usize {
    if cfg!(miri) && matches!(kind % 8, 3 | 6) {
        n.min(1024)
    } else {
        n
    }
}

/// Non-zero bytes to XOR into a page (never a no-op), eight per draw.
#[derive(Default)]
struct Flips {
    word: u64,
    left: u32,
}

impl Flips {
    fn next(&mut self, rng: &mut Rng) -> u8 {
        if self.left == 0 {
            self.word = rng.next_u64();
            self.left = 8;
        }
        let b = self.word as u8;
        self.word >>= 8;
        self.left -= 1;
        b % 255 + 1
    }
}

/// XORs a non-zero byte into `new[i]` for `i` in `start..end` step `step`.
fn flip_every(new: &mut [u8], start: usize, end: usize, step: usize, x: &mut Flips, rng: &mut Rng) {
    let mut i = start;
    while i < end {
        new[i] ^= x.next(rng);
        i += step;
    }
}

/// Pages that differ from `old` (at least 96 bytes long) in one changed run of every length from
/// 1 to 80 bytes (every 9th length under Miri), placed early in the page, at its end and 8 bytes
/// before it, after a one-byte run at byte 20: `(length, start, new page)`. The page codecs'
/// writers move runs of different lengths in different ways; each must give the exact bytes.
pub(crate) fn single_runs(old: &[u8]) -> impl Iterator<Item = (usize, usize, Vec<u8>)> + '_ {
    let n = old.len();
    let step = if cfg!(miri) { 9 } else { 1 };
    (1..=80usize).step_by(step).flat_map(move |len| {
        [100, n - len, n - len - 8].into_iter().map(move |at| {
            let mut new = old.to_vec();
            for b in &mut new[at..at + len] {
                *b ^= 0x5a;
            }
            new[20] ^= 1;
            (len, at, new)
        })
    })
}

/// A random `new` page derived from `old` by one of several change patterns chosen by `kind`:
/// nothing, few scattered bytes, clustered bursts, about half of the bytes, everything random,
/// every byte, every 2nd to 5th byte, random 8-byte words.
pub(crate) fn mutate(rng: &mut Rng, old: &[u8], kind: usize) -> Vec<u8> {
    let n = old.len();
    let mut page = old.to_vec();
    let new = &mut page[..];
    if n == 0 {
        return page;
    }
    let x = &mut Flips::default();
    match kind % 8 {
        0 => {}
        1 => {
            for _ in 0..1 + rng.below(20) {
                let i = rng.below(n);
                new[i] ^= x.next(rng);
            }
        }
        2 => {
            for _ in 0..1 + rng.below(6) {
                let s = rng.below(n);
                let e = (s + 1 + rng.below(300)).min(n);
                flip_every(new, s, e, 1, x, rng);
            }
        }
        3 => {
            // One coin per byte, 64 coins per draw.
            let mut i = 0;
            while i < n {
                let mut coins = rng.next_u64();
                let end = (i + 64).min(n);
                while i < end {
                    if coins & 1 == 0 {
                        new[i] ^= x.next(rng);
                    }
                    coins >>= 1;
                    i += 1;
                }
            }
        }
        4 => rng.fill(new),
        5 => flip_every(new, 0, n, 1, x, rng),
        6 => {
            let step = 2 + rng.below(4);
            let start = rng.below(2);
            flip_every(new, start, n, step, x, rng);
        }
        _ => {
            let mut w = 0;
            while w < n {
                if rng.below(10) == 0 {
                    flip_every(new, w, (w + 8).min(n), 1, x, rng);
                }
                w += 8;
            }
        }
    }
    page
}

fn ref_first_difference(a: &[u8], b: &[u8], from: usize) -> usize {
    let n = a.len();
    let mut i = from;
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i.min(n)
}

fn ref_first_equal(a: &[u8], b: &[u8], from: usize) -> usize {
    let n = a.len();
    let mut i = from;
    while i < n && a[i] != b[i] {
        i += 1;
    }
    i.min(n)
}

/// Maximal changed runs by a byte loop, then gaps of at most `merge_gap` joined.
fn ref_runs(a: &[u8], b: &[u8], merge_gap: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let n = a.len();
    let mut i = 0;
    while i < n {
        if a[i] == b[i] {
            i += 1;
            continue;
        }
        let s = i;
        while i < n && a[i] != b[i] {
            i += 1;
        }
        match out.last_mut() {
            Some(last) if s - last.1 <= merge_gap => last.1 = i,
            _ => out.push((s, i)),
        }
    }
    out
}

fn isas() -> Vec<Isa> {
    available()
}

#[test]
fn available_starts_with_generic_and_contains_best() {
    let av = available();
    assert_eq!(av[0], Isa::Generic);
    assert!(av.contains(&best()));
    assert_eq!(best(), *av.last().unwrap());
}

#[test]
fn nonzero_bytes_marks_exactly_the_nonzero_bytes() {
    let mut rng = Rng(1);
    let special = [0u8, 1, 0x7f, 0x80, 0x81, 0xfe, 0xff];
    for _ in 0..scaled(20_000, 200) {
        let mut bytes = [0u8; 8];
        for b in &mut bytes {
            *b = match rng.below(3) {
                0 => special[rng.below(special.len())],
                _ => rng.next_u64() as u8,
            };
        }
        let want = bytes
            .iter()
            .enumerate()
            .fold(0u64, |m, (i, &b)| m | ((b != 0) as u64) << i);
        assert_eq!(
            generic::nonzero_bytes(u64::from_le_bytes(bytes)),
            want,
            "{bytes:?}"
        );
    }
}

/// For every ISA, every alignment (0..64) and every length 0..=200 (plus a few page sizes),
/// first_difference/first_equal from every start offset equal the byte-loop reference.
/// Under Miri: the lengths around the 8-byte word and 64-byte block boundaries and the page sizes,
/// still at every alignment, and every start offset only up to length 17.
#[test]
fn first_difference_and_first_equal_match_reference_all_alignments_lengths() {
    let mut rng = Rng(2);
    let lens: Vec<usize> = if cfg!(miri) {
        let mut v: Vec<usize> = (0..=17).collect();
        v.extend([31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 191, 192, 193]);
        v.extend([4095, 4096, 4097]);
        v
    } else {
        (0..=200).chain([4095, 4096, 4097]).collect()
    };
    let mut backing_a = vec![0u8; 4097 + 64];
    let mut backing_b = vec![0u8; 4097 + 64];
    for isa in isas() {
        for (li, &len) in lens.iter().enumerate() {
            for kind in 0..8 {
                // Every alignment 0..64 recurs, and not tied to the kind (li shifts it).
                let align = (li * 9 + kind) % 64;
                rng.fill(&mut backing_a[align..align + len]);
                let a = &backing_a[align..align + len];
                let new = mutate(&mut rng, a, kind);
                backing_b[align..align + len].copy_from_slice(&new);
                let b = &backing_b[align..align + len];
                let froms: Vec<usize> = if len <= scaled(200, 17) {
                    (0..=len + 1).collect()
                } else {
                    let random = (0..scaled(40, 6)).map(|_| rng.below(len + 2));
                    [0, len - 1, len].into_iter().chain(random).collect()
                };
                for from in froms {
                    assert_eq!(
                        first_difference_with(isa, a, b, from),
                        ref_first_difference(a, b, from),
                        "{isa} len {len} align {align} from {from} kind {kind}"
                    );
                    assert_eq!(
                        first_equal_with(isa, a, b, from),
                        ref_first_equal(a, b, from),
                        "{isa} len {len} align {align} from {from} kind {kind}"
                    );
                }
            }
        }
    }
}

/// For every ISA, the run walker reports exactly the reference runs (maximal runs with gaps of
/// at most merge_gap joined), on random patterns, alignments and lengths.
#[test]
fn runs_match_reference_for_every_merge_gap() {
    let mut rng = Rng(3);
    let mut backing = vec![0u8; 5000 + 64];
    for isa in isas() {
        for it in 0..scaled(3000, 32) {
            let len = match it % 4 {
                0 => rng.below(200),
                1 => 4096,
                2 => rng.below(scaled(5000, 700)),
                _ => 64 * rng.below(10),
            };
            let align = rng.below(64);
            rng.fill(&mut backing[align..align + len]);
            let a = &backing[align..align + len];
            // it / 4: every length class meets every change pattern.
            let b = mutate(&mut rng, a, it / 4);
            for gap in [0, 1, 2] {
                assert_eq!(
                    runs_with(isa, a, &b, gap),
                    ref_runs(a, &b, gap),
                    "{isa} len {len} gap {gap} it {it}"
                );
            }
        }
    }
}

/// Every SIMD path agrees with the generic path on the same inputs (redundant with the reference
/// tests, but pins the paths to each other directly on larger, page-sized inputs).
#[test]
// Under Miri only the generic path exists (the SIMD kernels are compiled out), so there is
// nothing to compare.
#[cfg_attr(miri, ignore)]
fn simd_paths_equal_generic_path() {
    let mut rng = Rng(4);
    let mut a = vec![0u8; 16384];
    for it in 0..400 {
        rng.fill(&mut a);
        let b = mutate(&mut rng, &a, it);
        let from = rng.below(a.len());
        let want = (
            first_difference_with(Isa::Generic, &a, &b, from),
            first_equal_with(Isa::Generic, &a, &b, from),
            runs_with(Isa::Generic, &a, &b, 2),
        );
        for isa in isas() {
            let got = (
                first_difference_with(isa, &a, &b, from),
                first_equal_with(isa, &a, &b, from),
                runs_with(isa, &a, &b, 2),
            );
            assert_eq!(got, want, "{isa} it {it}");
        }
    }
}

#[test]
fn from_past_end_returns_len() {
    let a = [1u8, 2, 3];
    let b = [1u8, 9, 3];
    for isa in isas() {
        assert_eq!(first_difference_with(isa, &a, &b, 3), 3);
        assert_eq!(first_difference_with(isa, &a, &b, 100), 3);
        assert_eq!(first_equal_with(isa, &a, &b, usize::MAX), 3);
    }
}

#[test]
#[should_panic(expected = "equal lengths")]
fn unequal_lengths_panic() {
    first_difference(&[0u8; 3], &[0u8; 4], 0);
}
