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
    /// Byte counts per context ([`CONTEXTS`] rows once used).
    pub counts: Vec<[u32; 256]>,
    /// Table of each context (contexts without literals use table 0).
    pub map: [u8; CONTEXTS],
    /// Code lengths of each table.
    pub tables: Vec<Lengths>,
    /// Bits of the coded stream.
    pub bits: u64,
    // scratch
    /// Counts of every other byte while counting (see [`count_with`]).
    pub(super) counts_odd: Vec<[u32; 256]>,
    pub(super) totals: Vec<u64>,
    pub(super) active: Vec<u16>,
    pub(super) sums: Vec<[u64; 256]>,
    pub(super) cost: Vec<[f32; 256]>,
    /// `counts` of the active contexts as floats, in `active` order.
    pub(super) fcounts: Vec<[f32; 256]>,
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
            map: [0; CONTEXTS],
            tables: Vec::new(),
            bits: 0,
            totals: Vec::new(),
            active: Vec::new(),
            sums: Vec::new(),
            cost: Vec::new(),
            fcounts: Vec::new(),
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
    /// If `ctx` gives fewer contexts than `s` has bytes.
    pub fn count_by(&mut self, s: &[u8], ctx: Contexts<'_>) {
        ctx.check(s);
        for rows in [&mut self.counts, &mut self.counts_odd] {
            rows.resize(CONTEXTS, [0; 256]);
            for row in rows.iter_mut() {
                row.fill(0);
            }
        }
        let (even, odd) = (&mut self.counts[..], &mut self.counts_odd[..]);
        match ctx {
            Contexts::Given(c) => count_with(even, odd, s, Given(c)),
            Contexts::Previous => count_with(even, odd, s, Previous(s)),
            Contexts::Beside(o) => count_with(even, odd, s, Beside(o)),
        }
        for (e, o) in even.iter_mut().zip(odd.iter()) {
            for (a, &b) in e.iter_mut().zip(o) {
                *a += b;
            }
        }
    }

    /// Bytes of buffers held.
    pub fn memory_bytes(&self) -> usize {
        let rows = self.counts.capacity()
            + self.counts_odd.capacity()
            + self.kept.capacity()
            + self.codes.capacity();
        rows * 1024
            + self.sums.capacity() * 2048
            + self.cost.capacity() * 1024
            + self.fcounts.capacity() * 1024
            + self.choice.capacity()
            + self.tables.capacity() * 256
            + self.totals.capacity() * 8
            + self.active.capacity() * 2
    }
}

/// Adds the bytes of `s` at even positions to `even` and the others to `odd` (each
/// [`CONTEXTS`] rows): runs of equal bytes in equal contexts then increment two counters in
/// turn instead of one, whose every increment would wait for the one before.
fn count_with<C: ContextAt>(even: &mut [[u32; 256]], odd: &mut [[u32; 256]], s: &[u8], ctx: C) {
    let (even, odd) = (&mut even[..CONTEXTS], &mut odd[..CONTEXTS]);
    let pairs = s.chunks_exact(2);
    let last = pairs.remainder();
    for (j, pair) in pairs.enumerate() {
        even[ctx.at(2 * j)][pair[0] as usize] += 1;
        odd[ctx.at(2 * j + 1)][pair[1] as usize] += 1;
    }
    if let [b] = last {
        even[ctx.at(s.len() - 1)][*b as usize] += 1;
    }
}
