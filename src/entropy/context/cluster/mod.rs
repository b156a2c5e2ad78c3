//! Clustering: grouping a stream's contexts into at most [`MAX_TABLES`] tables by k-means over
//! their byte distributions. The inner loop, [`assign`], is in `portable.rs`, and compiled for
//! AVX2 in `avx2.rs`.

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod avx2;
mod portable;

#[cfg(all(target_arch = "x86_64", not(miri)))]
pub(crate) use avx2::assign_avx2;
pub(crate) use portable::assign_in;

use super::{Model, CONTEXTS, MAX_TABLES};
use crate::entropy::huffman;

/// Rounds of k-means at most.
const ROUNDS: usize = 4;

impl Model {
    /// Groups the counted contexts into at most `k` tables (k-means over the contexts' byte
    /// distributions, seeded with the most frequent contexts, at most four rounds) and sets
    /// `map`, `tables` and `bits`. The costs are `f32` (the platform's `log2`), so on another
    /// platform a context near a tie may choose another table: the map is in the frame, so any
    /// choice decodes.
    pub fn cluster(&mut self, k: usize) {
        let k = self.seed(k.clamp(1, MAX_TABLES));
        self.refine(k);
        self.build_tables(k);
    }

    /// Ranks the contexts that occur by their byte counts and seeds `k` clusters (fewer when
    /// fewer contexts occur; returns how many): the largest contexts alone, the rest with the
    /// largest. Sizes the scratch for [`refine`](Self::refine).
    fn seed(&mut self, k: usize) -> usize {
        // before any count: no context occurs
        self.counts.resize(CONTEXTS, [0; 256]);
        self.totals.resize(CONTEXTS, 0);
        let counts = &self.counts;
        let totals = &self.totals;
        self.active.clear();
        self.active
            .extend((0..CONTEXTS as u16).filter(|&c| totals[c as usize] > 0));
        self.active
            .sort_unstable_by_key(|&c| std::cmp::Reverse(totals[c as usize]));
        let map = &mut self.map;
        *map = [0; CONTEXTS];
        let k = k.min(self.active.len()).max(1);
        for (j, &c) in self.active.iter().enumerate().take(k) {
            map[c as usize] = j as u8;
        }
        self.sums.resize(k, [0; 256]);
        self.cost.resize(k, [0.0; 256]);
        self.choice.resize(self.active.len(), 0);
        self.fcounts.resize(self.active.len(), [0.0; 256]);
        for (f, &c) in self.fcounts.iter_mut().zip(&self.active) {
            for (x, &n) in f.iter_mut().zip(&counts[c as usize]) {
                *x = n as f32;
            }
        }
        k
    }

    /// The k-means rounds: each cluster's costs from the sum of its contexts' counts, then each
    /// context to the cluster that codes it smallest, until no context moves (at most
    /// [`ROUNDS`]). A round redoes only what the last one's moves changed: the sums of the
    /// clusters a context left or joined, their costs, and the contexts' bits under them.
    fn refine(&mut self, k: usize) {
        let (counts, map, sums) = (&self.counts, &mut self.map, &mut self.sums);
        for s in &mut sums[..k] {
            s.fill(0);
        }
        for &c in &self.active {
            add_row(&mut sums[map[c as usize] as usize], &counts[c as usize]);
        }
        self.stale.clear();
        self.stale.resize(k, true);
        self.dots.clear();
        self.dots.resize(self.active.len() * k, 0.0);
        for _round in 0..ROUNDS {
            // cost of a byte in each table: -log2 of its smoothed share, in bits
            for j in (0..k).filter(|&j| self.stale[j]) {
                let s = &sums[j];
                let n: u64 = s.iter().map(|&x| x as u64).sum();
                let denom = (n + 256) as f32;
                for (x, &f) in self.cost[j].iter_mut().zip(s) {
                    *x = -((f as f32 + 1.0) / denom).log2();
                }
            }
            assign(
                &self.fcounts,
                &self.cost[..k],
                &self.stale,
                &mut self.dots,
                &mut self.choice,
            );
            self.stale.fill(false);
            let mut moved = false;
            for (&c, &j) in self.active.iter().zip(&self.choice) {
                let was = map[c as usize];
                if j != was {
                    let row = &counts[c as usize];
                    sub_row(&mut sums[was as usize], row);
                    add_row(&mut sums[j as usize], row);
                    self.stale[was as usize] = true;
                    self.stale[j as usize] = true;
                    map[c as usize] = j;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// Drops the clusters no context chose and renumbers the others in order, then sets each
    /// table's code lengths and the stream's cost in bits.
    fn build_tables(&mut self, k: usize) {
        let (totals, map) = (&self.totals, &mut self.map);
        self.kept.clear();
        let mut renumber = [0u8; MAX_TABLES];
        for (slot, sum) in renumber.iter_mut().zip(&self.sums[..k]) {
            // every context in a cluster occurs, so a chosen cluster's sum is not all zeros
            if sum.iter().any(|&x| x > 0) {
                *slot = self.kept.len() as u8;
                self.kept.push(*sum);
            }
        }
        if self.kept.is_empty() {
            // no literal at all: one table of one symbol keeps the stream well formed
            let mut one = [0u32; 256];
            one[0] = 1;
            self.kept.push(one);
        }
        for (c, m) in map.iter_mut().enumerate() {
            *m = if totals[c] > 0 {
                renumber[*m as usize]
            } else {
                0
            };
        }
        self.tables.clear();
        self.tables.extend(self.kept.iter().map(table_lengths));
        self.bits = self
            .kept
            .iter()
            .zip(&self.tables)
            .map(|(s, l)| huffman::coded_bits(s, l))
            .sum();
    }
}

/// Longest code a context table is cut down to where that costs it little: a decoding table
/// has an entry for every pattern of its longest code's bits, and a frame's tables of 9 bits
/// (1 KiB each) stay in the first-level cache where tables of 11 bits (4 KiB) do not.
pub(crate) const SHORT_BITS: u32 = 9;

/// The most a table's code is allowed to grow, in parts per thousand of its bits, to be cut down
/// toward [`SHORT_BITS`]. Measured on the five traces' default frames (`examples/speed`): 0.35 to
/// 0.55% more bytes, decoding 5 to 15% faster (java-hashmap, whose many short literal runs make
/// the literal tables' lookups its decoding's critical path, gained most).
pub(crate) const SHORT_COST_PERMILLE: u64 = 20;

/// The code lengths of a table with these counts: the optimal code limited to
/// [`huffman::MAX_BITS`], cut down to the fewest bits from [`SHORT_BITS`] up whose code costs at
/// most [`SHORT_COST_PERMILLE`] more.
pub(crate) fn table_lengths(counts: &[u32; 256]) -> huffman::Lengths {
    let lens = huffman::code_lengths(counts);
    let longest = huffman::longest(&lens);
    if longest <= SHORT_BITS {
        return lens;
    }
    let bits = huffman::coded_bits(counts, &lens);
    let allowed = bits + bits * SHORT_COST_PERMILLE / 1000;
    // the fewest bits first: most tables either take it or keep their code
    for limit in SHORT_BITS..longest {
        let short = huffman::code_lengths_within(counts, limit);
        if huffman::coded_bits(counts, &short) <= allowed {
            return short;
        }
    }
    lens
}

/// For each context `i` (its byte counts as floats in `fcounts[i]`): the bits it takes under
/// each table `j` whose costs (`costs[j]`, bits per byte value) are `stale` into
/// `dots[i * k + j]` (`k` tables; the other entries are kept from the last call), then the
/// table that codes it in the fewest bits into `choice[i]`; ties go to the lower table.
///
/// The clustering's main cost (up to 257 x 255 dot products of 256 per round), so compiled for
/// AVX2 too and run so where the CPU has it (`tests::assignment_is_the_same_with_avx2` checks
/// that both give the same tables).
pub(crate) fn assign(
    fcounts: &[[f32; 256]],
    costs: &[[f32; 256]],
    stale: &[bool],
    dots: &mut [f32],
    choice: &mut [u8],
) {
    assert!(stale.len() == costs.len() && dots.len() == fcounts.len() * costs.len());
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above), the one requirement for calling a
        // function compiled with `#[target_feature(enable = "avx2")]`.
        return unsafe { assign_avx2(fcounts, costs, stale, dots, choice) };
    }
    assign_in(fcounts, costs, stale, dots, choice)
}

/// Adds a context's counts to a cluster's sum (which cannot overflow: a stream has fewer than
/// 2^32 bytes, see [`Model::count_by`]).
fn add_row(sum: &mut [u32; 256], row: &[u32; 256]) {
    for (a, &b) in sum.iter_mut().zip(row) {
        *a += b;
    }
}

/// Takes a context's counts out of a cluster's sum that holds them.
fn sub_row(sum: &mut [u32; 256], row: &[u32; 256]) {
    for (a, &b) in sum.iter_mut().zip(row) {
        *a -= b;
    }
}

/// Tables worth trying for `n` literals: about one per 16 KiB of them, at least 2, at most
/// [`MAX_TABLES`] (each table costs up to 160 bytes and its share of clustering time).
pub fn tables_for(n: usize) -> usize {
    (n / 16384).clamp(2, MAX_TABLES)
}
