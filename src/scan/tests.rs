//! Tests of the scan kernels against trivial byte loops, on every available ISA.
//! Also home of the small deterministic PRNG and page-pair generators the codec tests share.

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
    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_u64() as u8;
        }
    }
}

/// A random `new` page derived from `old` by one of several change patterns chosen by `kind`:
/// few scattered bytes, clustered bursts, random words, dense, everything, nothing, alternating.
pub(crate) fn mutate(rng: &mut Rng, old: &[u8], kind: usize) -> Vec<u8> {
    let n = old.len();
    let mut new = old.to_vec();
    if n == 0 {
        return new;
    }
    let flip = |new: &mut Vec<u8>, i: usize, rng: &mut Rng| {
        // Never a no-op: XOR with a non-zero value.
        new[i] ^= (rng.below(255) + 1) as u8;
    };
    match kind % 8 {
        0 => {}
        1 => {
            for _ in 0..1 + rng.below(20) {
                let i = rng.below(n);
                flip(&mut new, i, rng);
            }
        }
        2 => {
            for _ in 0..1 + rng.below(6) {
                let s = rng.below(n);
                let l = 1 + rng.below(300);
                for i in s..(s + l).min(n) {
                    flip(&mut new, i, rng);
                }
            }
        }
        3 => {
            for i in 0..n {
                if rng.below(2) == 0 {
                    flip(&mut new, i, rng);
                }
            }
        }
        4 => rng.fill(&mut new),
        5 => {
            for i in 0..n {
                flip(&mut new, i, rng);
            }
        }
        6 => {
            let step = 2 + rng.below(4);
            for i in (rng.below(2)..n).step_by(step) {
                flip(&mut new, i, rng);
            }
        }
        _ => {
            for w in 0..n.div_ceil(8) {
                if rng.below(10) == 0 {
                    for i in w * 8..(w * 8 + 8).min(n) {
                        flip(&mut new, i, rng);
                    }
                }
            }
        }
    }
    new
}

fn ref_first_difference(a: &[u8], b: &[u8], from: usize) -> usize {
    (from..a.len()).find(|&i| a[i] != b[i]).unwrap_or(a.len())
}

fn ref_first_equal(a: &[u8], b: &[u8], from: usize) -> usize {
    (from..a.len()).find(|&i| a[i] == b[i]).unwrap_or(a.len())
}

/// Maximal changed runs by a byte loop, then gaps of at most `merge_gap` joined.
fn ref_runs(a: &[u8], b: &[u8], merge_gap: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < a.len() {
        if a[i] == b[i] {
            i += 1;
            continue;
        }
        let s = i;
        while i < a.len() && a[i] != b[i] {
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
    for _ in 0..if cfg!(miri) { 200 } else { 20_000 } {
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
#[test]
fn first_difference_and_first_equal_match_reference_all_alignments_lengths() {
    let mut rng = Rng(2);
    let lens: Vec<usize> = if cfg!(miri) {
        vec![0, 1, 7, 8, 9, 63, 64, 65, 130]
    } else {
        (0..=200).chain([4095, 4096, 4097]).collect()
    };
    let mut backing_a = vec![0u8; 4097 + 64];
    let mut backing_b = vec![0u8; 4097 + 64];
    for isa in isas() {
        for &len in &lens {
            for kind in 0..8 {
                let align = rng.below(64);
                rng.fill(&mut backing_a);
                let a = &backing_a[align..align + len];
                let new = mutate(&mut rng, a, kind);
                backing_b[align..align + len].copy_from_slice(&new);
                let b = &backing_b[align..align + len];
                let froms: Vec<usize> = if len <= 200 {
                    (0..=len + 1).collect()
                } else {
                    (0..40).map(|_| rng.below(len + 2)).collect()
                };
                for from in froms {
                    assert_eq!(
                        first_difference_with(isa, a, b, from),
                        ref_first_difference(a, b, from),
                        "{isa} len {len} from {from} kind {kind}"
                    );
                    assert_eq!(
                        first_equal_with(isa, a, b, from),
                        ref_first_equal(a, b, from),
                        "{isa} len {len} from {from} kind {kind}"
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
    let iters = if cfg!(miri) { 40 } else { 3000 };
    let mut backing = vec![0u8; 5000 + 64];
    for isa in isas() {
        for it in 0..iters {
            let len = match it % 4 {
                0 => rng.below(200),
                1 => 4096,
                2 => rng.below(5000),
                _ => 64 * rng.below(10),
            };
            let len = if cfg!(miri) { len.min(300) } else { len };
            let align = rng.below(64);
            rng.fill(&mut backing);
            let a = &backing[align..align + len];
            let b = mutate(&mut rng, a, it);
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
