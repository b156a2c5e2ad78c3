//! [`Model`]: the per-context counts of one stream, and the buffers its clustering and coding
//! reuse from frame to frame.

use super::contexts::{Beside, ContextAt, Contexts, Given, Previous};
use super::CONTEXTS;
use crate::entropy::huffman::Lengths;

/// The model of one context-modelled stream of a frame (literals, tokens or offset bytes):
/// per-context counts, their clustering into tables (which table each context uses, and each
/// table's code lengths) and the cost of the stream under it. Holds its buffers from frame to
/// frame, so a steady stream of frames allocates nothing.
#[derive(Clone)]
pub struct Model {
    /// Byte counts per context ([`CONTEXTS`] rows once used; see [`counts`](Self::counts)).
    pub(super) counts: Vec<[u32; 256]>,
    /// Table of each context (contexts without literals use table 0).
    pub map: [u8; CONTEXTS],
    /// Code lengths of each table.
    pub tables: Vec<Lengths>,
    /// Bits of the coded stream.
    pub bits: u64,
    // scratch
    /// Counts of every other byte while counting (see [`count_with`]); all zeros between
    /// counts unless `dirty`.
    pub(super) counts_odd: Vec<[u32; 256]>,
    /// Whether a count stopped (a panic) before it emptied `counts_odd` and summed its rows.
    pub(super) dirty: bool,
    /// Bytes counted per context (the sums of `counts` rows: a row other than zeros has a
    /// total other than zero).
    pub(super) totals: Vec<u64>,
    pub(super) active: Vec<u16>,
    /// Byte counts of each cluster (the sum of its contexts' counts).
    pub(super) sums: Vec<[u32; 256]>,
    pub(super) cost: Vec<[f32; 256]>,
    /// Clusters whose sums changed since their costs and bits were last computed.
    pub(super) stale: Vec<bool>,
    /// `counts` of the active contexts as floats, in `active` order.
    pub(super) fcounts: Vec<[f32; 256]>,
    /// Bits of each active context (row, `active` order) under each cluster's costs (column).
    pub(super) dots: Vec<f32>,
    /// The table each active context chose in the last round.
    pub(super) choice: Vec<u8>,
    pub(super) kept: Vec<[u32; 256]>,
    pub(super) codes: Vec<[u32; 256]>,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            counts: Vec::new(),
            counts_odd: Vec::new(),
            dirty: false,
            map: [0; CONTEXTS],
            tables: Vec::new(),
            bits: 0,
            totals: Vec::new(),
            active: Vec::new(),
            sums: Vec::new(),
            cost: Vec::new(),
            stale: Vec::new(),
            fcounts: Vec::new(),
            dots: Vec::new(),
            choice: Vec::new(),
            kept: Vec::new(),
            codes: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("tables", &self.tables.len())
            .field("bits", &self.bits)
            .finish()
    }
}

impl Model {
    /// Counts `lits` by their contexts (`ctx[i]` for `lits[i]`), replacing earlier counts.
    pub fn count(&mut self, lits: &[u8], ctx: &[u16]) {
        self.count_by(lits, Contexts::Given(ctx));
    }

    /// Counts the bytes of `s` by their contexts, replacing earlier counts.
    ///
    /// # Panics
    /// If `ctx` gives fewer contexts than `s` has bytes or a context of [`CONTEXTS`] or more, or
    /// `s` has 2^32 bytes or more.
    pub fn count_by(&mut self, s: &[u8], ctx: Contexts<'_>) {
        ctx.check(s);
        assert!(
            u32::try_from(s.len()).is_ok(),
            "a stream of {} bytes",
            s.len()
        );
        self.counts.resize(CONTEXTS, [0; 256]);
        self.counts_odd.resize(CONTEXTS, [0; 256]);
        if self.dirty {
            for row in self.counts.iter_mut().chain(self.counts_odd.iter_mut()) {
                row.fill(0);
            }
        } else {
            for (row, &total) in self.counts.iter_mut().zip(&self.totals) {
                if total > 0 {
                    row.fill(0);
                }
            }
        }
        self.dirty = true;
        let (even, odd) = (&mut self.counts[..], &mut self.counts_odd[..]);
        let mut seen = [false; CONTEXTS];
        match ctx {
            Contexts::Given(c) => count_with(even, odd, &mut seen, s, Given(c)),
            Contexts::Previous => count_with(even, odd, &mut seen, s, Previous(s)),
            Contexts::Beside(o) => count_with(even, odd, &mut seen, s, Beside(o)),
        }
        // one pass over the rows in use joins the halves, empties `counts_odd` for the next
        // count and sums the rows
        self.totals.clear();
        self.totals.resize(CONTEXTS, 0);
        for c in (0..CONTEXTS).filter(|&c| seen[c]) {
            let mut total = 0u32;
            for (a, b) in even[c].iter_mut().zip(odd[c].iter_mut()) {
                *a += *b;
                *b = 0;
                total += *a;
            }
            self.totals[c] = total as u64;
        }
        self.dirty = false;
    }

    /// Byte counts per context of the last count ([`CONTEXTS`] rows; none before the first).
    pub fn counts(&self) -> &[[u32; 256]] {
        &self.counts
    }

    /// Bytes of buffers held.
    pub fn memory_bytes(&self) -> usize {
        let rows = self.counts.capacity()
            + self.counts_odd.capacity()
            + self.kept.capacity()
            + self.codes.capacity();
        rows * 1024
            + self.sums.capacity() * 1024
            + self.cost.capacity() * 1024
            + self.fcounts.capacity() * 1024
            + self.choice.capacity()
            + self.stale.capacity()
            + self.dots.capacity() * 4
            + self.tables.capacity() * 256
            + self.totals.capacity() * 8
            + self.active.capacity() * 2
    }
}

/// Adds the bytes of `s` at even positions to `even` and the others to `odd` (each
/// [`CONTEXTS`] rows), and marks the contexts that occur in `seen`: runs of equal bytes in
/// equal contexts then increment two counters in turn instead of one, whose every increment
/// would wait for the one before.
fn count_with<C: ContextAt>(
    even: &mut [[u32; 256]],
    odd: &mut [[u32; 256]],
    seen: &mut [bool; CONTEXTS],
    s: &[u8],
    ctx: C,
) {
    let (even, odd) = (&mut even[..CONTEXTS], &mut odd[..CONTEXTS]);
    let pairs = s.chunks_exact(2);
    let last = pairs.remainder();
    for (j, pair) in pairs.enumerate() {
        let (c0, c1) = (ctx.at(2 * j), ctx.at(2 * j + 1));
        even[c0][pair[0] as usize] += 1;
        odd[c1][pair[1] as usize] += 1;
        seen[c0] = true;
        seen[c1] = true;
    }
    if let [b] = last {
        let c = ctx.at(s.len() - 1);
        even[c][*b as usize] += 1;
        seen[c] = true;
    }
}
