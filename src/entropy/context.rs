//! Context modelling: bytes of a stream coded with one of up to [`MAX_TABLES`] Huffman tables,
//! chosen per byte by a *context* that the decoder knows when it reaches that byte.
//!
//! - **Literals** of an lz4 block, by their *match byte*. After a match at offset `d` ends, the
//!   bytes that follow in the source are usually close to the bytes that followed the match's
//!   source: the same field of the next object of a heap, the next row of a table. Where lz4 had
//!   to emit literals, the byte at distance `d` still predicts them well (LZMA codes its first
//!   literal after a match this way). The context of a literal at position `p` of a block's
//!   output: before the block's first match, the dictionary's byte at `p` (same position in the
//!   old page) for a block with a dictionary, else [`NO_CONTEXT`]; after a match at offset `d`,
//!   the byte at `p - d` of the dictionary followed by the output. Literals outside lz4 blocks
//!   (raw pages, delta runs, raw literal blocks) have [`NO_CONTEXT`].
//! - **Tokens** and **low offset bytes**, by the stream's previous byte (0 for the first).
//! - **High offset bytes**, by the low byte of the same offset.
//!
//! The contexts of a stream are clustered per frame ([`Model::cluster`]); a context map sends
//! each to its table, so the decoder stays a table lookup per byte. On the Java heap trace this
//! takes 23% off the frames (order-0 estimates: literals 81 -> 59 MB, tokens 21 -> 15 MB, low
//! offset bytes 19 -> 16 MB).

use super::{
    get_listed, listed_table_len, put_listed, EntropyError, EntropyError::Container, MODE_HUFFMAN,
    MODE_HUFFMAN_LISTED, TABLE_BYTES,
};
use crate::entropy::huffman::{self, Lengths};

/// Number of contexts: the 256 match byte values and [`NO_CONTEXT`].
pub const CONTEXTS: usize = 257;
/// The context of literals with no match byte.
pub const NO_CONTEXT: u16 = 256;
/// Most Huffman tables one context-modelled stream may carry.
pub const MAX_TABLES: usize = 255;

/// Room past the contexts [`lz4_literal_contexts_into`] needs in its output: it writes short
/// runs 16 at a time.
pub const CONTEXT_SLACK: usize = 16;

/// Appends to `ctx` the context of every literal of `block`, an lz4 block that decodes to `out`
/// with `dict` as its dictionary (empty for none). The block is the encoder's own: it is trusted
/// to be well formed and to decode to `out`.
///
/// ```
/// use fgbi::entropy::context::{lz4_literal_contexts, NO_CONTEXT};
/// let block = [0x20, b'h', b'i']; // two literals, no match, no dictionary
/// let mut ctx = vec![];
/// lz4_literal_contexts(&block, &[], b"hi", &mut ctx);
/// assert_eq!(ctx, [NO_CONTEXT, NO_CONTEXT]);
/// ```
pub fn lz4_literal_contexts(block: &[u8], dict: &[u8], out: &[u8], ctx: &mut Vec<u16>) {
    let base = ctx.len();
    ctx.resize(base + out.len() + CONTEXT_SLACK, 0);
    let n = lz4_literal_contexts_into(block, dict, out, &mut ctx[base..]);
    ctx.truncate(base + n);
}

/// [`lz4_literal_contexts`] into a slice of at least `out.len() + CONTEXT_SLACK` elements;
/// returns how many contexts it wrote at its start (the elements after them are overwritten
/// too). For an encoder that keeps one buffer for a frame's contexts without clearing it.
pub fn lz4_literal_contexts_into(block: &[u8], dict: &[u8], out: &[u8], ctx: &mut [u16]) -> usize {
    assert!(
        ctx.len() >= out.len() + CONTEXT_SLACK,
        "room for the contexts"
    );
    let dl = dict.len();
    let mut rep: Option<usize> = (dl > 0).then_some(dl);
    let (mut i, mut p, mut k) = (0usize, 0usize, 0usize);
    let ext = |i: &mut usize, mut n: usize| loop {
        let b = block[*i];
        *i += 1;
        n += b as usize;
        if b != 255 {
            return n;
        }
    };
    loop {
        let token = block[i];
        i += 1;
        let mut l = (token >> 4) as usize;
        if l == 15 {
            l = ext(&mut i, l);
        }
        // k + l <= p + l <= out.len(): the 16-wide writes stay inside `ctx`
        match rep {
            Some(d) => {
                // the window bytes from + 0..l (dictionary, then output), widened
                let from = dl + p - d;
                let src = if from + l <= dl {
                    dict.get(from..from + 16)
                } else if from >= dl {
                    out.get(from - dl..from - dl + 16)
                } else {
                    None
                };
                match src {
                    Some(src) if l <= 16 => {
                        let dst: &mut [u16; 16] =
                            (&mut ctx[k..k + 16]).try_into().expect("16 elements");
                        for (c, &b) in dst.iter_mut().zip(src) {
                            *c = b as u16;
                        }
                    }
                    _ => {
                        // the part in the dictionary, then the part in the output
                        let in_dict = dl.saturating_sub(from).min(l);
                        let (d, o) = ctx[k..k + l].split_at_mut(in_dict);
                        for (c, &b) in d.iter_mut().zip(&dict[from.min(dl)..]) {
                            *c = b as u16;
                        }
                        let o_from = (from + in_dict).saturating_sub(dl); // 0 when `o` is empty
                        for (c, &b) in o.iter_mut().zip(&out[o_from..]) {
                            *c = b as u16;
                        }
                    }
                }
            }
            None if l <= 16 => ctx[k..k + 16].fill(NO_CONTEXT),
            None => ctx[k..k + l].fill(NO_CONTEXT),
        }
        k += l;
        i += l;
        p += l;
        if i >= block.len() {
            debug_assert_eq!(p, out.len(), "the block decodes to `out`");
            return k;
        }
        let d = u16::from_le_bytes([block[i], block[i + 1]]) as usize;
        i += 2;
        let mut m = (token & 15) as usize + crate::lz4::MIN_MATCH;
        if token & 15 == 15 {
            m = ext(&mut i, m);
        }
        rep = Some(d);
        p += m;
    }
}

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
    counts_odd: Vec<[u32; 256]>,
    totals: Vec<u64>,
    active: Vec<u16>,
    sums: Vec<[u64; 256]>,
    cost: Vec<[f32; 256]>,
    /// `counts` of the active contexts as floats, in `active` order.
    fcounts: Vec<[f32; 256]>,
    /// The table each active context chose in the last round.
    choice: Vec<u8>,
    kept: Vec<[u32; 256]>,
    codes: Vec<[u32; 256]>,
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

    /// Groups the counted contexts into at most `k` tables (k-means over the contexts' byte
    /// distributions, seeded with the most frequent contexts, at most four rounds) and sets
    /// `map`, `tables` and `bits`. The costs are `f32` (the platform's `log2`), so on another
    /// platform a context near a tie may choose another table: the map is in the frame, so any
    /// choice decodes.
    pub fn cluster(&mut self, k: usize) {
        let k = k.clamp(1, MAX_TABLES);
        self.counts.resize(CONTEXTS, [0; 256]);
        let counts = &self.counts;
        self.totals.clear();
        self.totals.extend(
            counts
                .iter()
                .map(|c| c.iter().map(|&x| x as u64).sum::<u64>()),
        );
        let totals = &self.totals;
        self.active.clear();
        self.active
            .extend((0..CONTEXTS as u16).filter(|&c| totals[c as usize] > 0));
        self.active
            .sort_unstable_by_key(|&c| std::cmp::Reverse(totals[c as usize]));
        let map = &mut self.map;
        *map = [0; CONTEXTS];
        let k = k.min(self.active.len()).max(1);
        // seed: the k largest contexts alone, the rest with the largest
        for (j, &c) in self.active.iter().enumerate().take(k) {
            map[c as usize] = j as u8;
        }
        self.sums.resize(k, [0; 256]);
        self.cost.resize(k, [0.0; 256]);
        self.choice.resize(self.active.len(), 0);
        self.fcounts.clear();
        self.fcounts.extend(
            self.active
                .iter()
                .map(|&c| counts[c as usize].map(|x| x as f32)),
        );
        for _round in 0..4 {
            for s in &mut self.sums[..k] {
                s.fill(0);
            }
            for &c in &self.active {
                let s = &mut self.sums[map[c as usize] as usize];
                for (a, &b) in s.iter_mut().zip(&counts[c as usize]) {
                    *a += b as u64;
                }
            }
            // cost of a byte in each table: -log2 of its smoothed share, in bits
            for (s, cost) in self.sums[..k].iter().zip(&mut self.cost[..k]) {
                let n: u64 = s.iter().sum();
                let denom = (n + 256) as f32;
                for (x, &f) in cost.iter_mut().zip(s) {
                    *x = -((f as f32 + 1.0) / denom).log2();
                }
            }
            assign(&self.fcounts, &self.cost[..k], &mut self.choice);
            let mut moved = false;
            for (&c, &j) in self.active.iter().zip(&self.choice) {
                moved |= j != map[c as usize];
                map[c as usize] = j;
            }
            if !moved {
                break;
            }
        }
        // tables no context chose are dropped; the others renumbered in order
        self.kept.clear();
        let mut renumber = [0u8; MAX_TABLES];
        for (j, slot) in renumber.iter_mut().enumerate().take(k) {
            let mut sum = [0u32; 256];
            let mut any = false;
            for &c in self
                .active
                .iter()
                .filter(|&&c| map[c as usize] as usize == j)
            {
                for (a, &b) in sum.iter_mut().zip(&counts[c as usize]) {
                    *a += b;
                }
                any = true;
            }
            if any {
                *slot = self.kept.len() as u8;
                self.kept.push(sum);
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
        self.tables
            .extend(self.kept.iter().map(huffman::code_lengths));
        self.bits = self
            .kept
            .iter()
            .zip(&self.tables)
            .map(|(s, l)| huffman::coded_bits(s, l))
            .sum();
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

    /// Bytes of the tables part of a context-modelled stream: the table count, the context map
    /// and each table (a form byte, then full or listed).
    pub fn tables_len(&self) -> usize {
        1 + map_len(self.tables.len()) + self.tables.iter().map(|t| 1 + table_len(t)).sum::<usize>()
    }

    /// Writes the tables part: the number of tables `k`, the context map (each context's table in
    /// `ceil(log2 k)` bits, least significant bit first, padded with zero bits to a byte), then
    /// each table as a form byte ([`MODE_HUFFMAN`] full, [`MODE_HUFFMAN_LISTED`] listed) and its
    /// bytes.
    pub fn put_tables(&self, out: &mut Vec<u8>) {
        let k = self.tables.len();
        out.push(k as u8);
        let w = map_bits(k);
        let (mut acc, mut n) = (0u32, 0);
        for &t in &self.map {
            acc |= (t as u32) << n;
            n += w;
            while n >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                n -= 8;
            }
        }
        if n > 0 {
            out.push(acc as u8);
        }
        for t in &self.tables {
            if table_len(t) == TABLE_BYTES {
                out.push(MODE_HUFFMAN);
                out.extend_from_slice(&huffman::pack_lengths(t));
            } else {
                out.push(MODE_HUFFMAN_LISTED);
                put_listed(t, out);
            }
        }
    }

    /// Appends `lits` coded with the table of each one's context (`ctx[i]` for `lits[i]`): exactly
    /// `bytes` bytes, `c.bits` bits padded with zero bits. Every literal must have a code in its
    /// table (the tables were built from these literals' counts).
    pub fn put_bits(&mut self, lits: &[u8], ctx: &[u16], bytes: usize, out: &mut Vec<u8>) {
        self.put_bits_by(lits, Contexts::Given(ctx), bytes, out);
    }

    /// [`put_bits`](Self::put_bits) with the contexts taken from `ctx`.
    ///
    /// # Panics
    /// If `ctx` gives fewer contexts than `s` has bytes.
    pub fn put_bits_by(&mut self, s: &[u8], ctx: Contexts<'_>, bytes: usize, out: &mut Vec<u8>) {
        ctx.check(s);
        // per table and byte: code << 8 | length
        self.codes.clear();
        self.codes.extend(self.tables.iter().map(|t| {
            let codes = huffman::canonical_codes(t);
            std::array::from_fn(|s| (codes[s] as u32) << 8 | t[s] as u32)
        }));
        let start = out.len();
        out.resize(start + bytes + 8, 0);
        let buf = &mut out[start..];
        let (codes, map) = (&self.codes[..], &self.map);
        let pos = match ctx {
            Contexts::Given(c) => put_with(codes, map, s, Given(c), buf),
            Contexts::Previous => put_with(codes, map, s, Previous(s), buf),
            Contexts::Beside(o) => put_with(codes, map, s, Beside(o), buf),
        };
        debug_assert_eq!(pos, bytes, "coded length");
        out.truncate(start + pos);
    }
}

/// Where the contexts of a stream's bytes come from.
///
/// ```
/// use fgbi::entropy::context::{Contexts, Model};
/// // eight values in turn: one table needs 3 bits a byte, but given the previous byte each
/// // value has a single successor, and a table per context codes it in 1 bit (Huffman's least)
/// let s: Vec<u8> = (0..20_000u32).map(|i| (i % 8 * 17) as u8).collect();
/// let mut m = Model::default();
/// m.count_by(&s, Contexts::Previous);
/// m.cluster(8);
/// let bytes = m.bits.div_ceil(8) as usize;
/// assert_eq!(bytes, s.len() / 8);
/// let mut out = Vec::new();
/// m.put_bits_by(&s, Contexts::Previous, bytes, &mut out);
/// assert_eq!(out.len(), bytes);
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Contexts<'a> {
    /// One per byte, given (`ctx[i]` for byte `i`; as long as the stream).
    Given(&'a [u16]),
    /// The stream's previous byte (0 for the first): tokens, low offset bytes.
    Previous,
    /// The byte at the same index of another stream as long as this one: a high offset byte's
    /// low byte.
    Beside(&'a [u8]),
}

impl Contexts<'_> {
    /// Panics unless there is a context for every byte of `s`.
    fn check(&self, s: &[u8]) {
        let given = match self {
            Contexts::Given(c) => c.len(),
            Contexts::Previous => s.len(),
            Contexts::Beside(o) => o.len(),
        };
        assert!(given >= s.len(), "{given} contexts for {} bytes", s.len());
    }
}

/// The context of byte `i`, for the counting and coding loops (one copy of each per kind).
trait ContextAt {
    fn at(&self, i: usize) -> usize;
}

struct Given<'a>(&'a [u16]);
struct Previous<'a>(&'a [u8]);
struct Beside<'a>(&'a [u8]);

impl ContextAt for Given<'_> {
    #[inline(always)]
    fn at(&self, i: usize) -> usize {
        self.0[i] as usize
    }
}

impl ContextAt for Previous<'_> {
    #[inline(always)]
    fn at(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.0[i - 1] as usize
        }
    }
}

impl ContextAt for Beside<'_> {
    #[inline(always)]
    fn at(&self, i: usize) -> usize {
        self.0[i] as usize
    }
}

/// Adds the bytes of `s` at even positions to `even` and the others to `odd` (each
/// [`CONTEXTS`] rows): runs of equal bytes in equal contexts then increment two counters in
/// turn instead of one, whose every increment would wait for the one before (entropy stage
/// -2% on the JVM trace, -7% on proc-node).
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

/// Codes `s` into `buf` (room for the coded bytes plus 8); returns the coded length in bytes.
fn put_with<C: ContextAt>(
    codes: &[[u32; 256]],
    map: &[u8; CONTEXTS],
    s: &[u8],
    ctx: C,
    buf: &mut [u8],
) -> usize {
    let (mut acc, mut nbits, mut pos) = (0u64, 0u64, 0usize);
    let put = |acc: &mut u64, nbits: &mut u64, i: usize| {
        let e = codes[map[ctx.at(i)] as usize][s[i] as usize];
        *acc |= ((e >> 8) as u64) << *nbits;
        *nbits += (e & 0xff) as u64;
    };
    let whole = s.len() / 5 * 5;
    let mut i = 0;
    while i < whole {
        // at most 7 + 5 * 11 = 62 bits pending
        for j in i..i + 5 {
            put(&mut acc, &mut nbits, j);
        }
        buf[pos..pos + 8].copy_from_slice(&acc.to_le_bytes());
        pos += (nbits / 8) as usize;
        acc >>= nbits & !7;
        nbits &= 7;
        i += 5;
    }
    for j in whole..s.len() {
        put(&mut acc, &mut nbits, j);
    }
    buf[pos..pos + 8].copy_from_slice(&acc.to_le_bytes());
    pos + nbits.div_ceil(8) as usize
}

/// For each context (its byte counts as floats in `fcounts`), the table whose costs (`costs[j]`,
/// bits per byte value) code it in the fewest bits, into `choice`; ties go to the lower table.
///
/// The clustering's main cost (up to 257 x 255 dot products of 256 per round): with AVX2 where
/// the CPU has it, which halves it (`tests::assignment_is_the_same_with_avx2` checks that both
/// give the same tables).
pub(crate) fn assign(fcounts: &[[f32; 256]], costs: &[[f32; 256]], choice: &mut [u8]) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above), the one requirement for calling a
        // function compiled with `#[target_feature(enable = "avx2")]`.
        return unsafe { assign_avx2(fcounts, costs, choice) };
    }
    assign_in(fcounts, costs, choice)
}

/// [`assign`] compiled for AVX2 (the same code: the compiler vectorises [`dot`] 8 lanes wide).
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[target_feature(enable = "avx2")]
pub(crate) fn assign_avx2(fcounts: &[[f32; 256]], costs: &[[f32; 256]], choice: &mut [u8]) {
    assign_in(fcounts, costs, choice)
}

/// [`assign`] for whatever instruction set the caller was compiled for.
#[inline(always)]
pub(crate) fn assign_in(fcounts: &[[f32; 256]], costs: &[[f32; 256]], choice: &mut [u8]) {
    for (h, out) in fcounts.iter().zip(choice.iter_mut()) {
        let mut best = (f32::INFINITY, 0u8);
        for (j, cost) in costs.iter().enumerate() {
            let bits = dot(h, cost);
            if bits < best.0 {
                best = (bits, j as u8);
            }
        }
        *out = best.1;
    }
}

/// `a . b` in 16 independent lanes (which the compiler vectorises; a plain float sum cannot be
/// reordered, so it would not be). The same lanes and order on every instruction set, so the
/// result is too.
#[inline(always)]
fn dot(a: &[f32; 256], b: &[f32; 256]) -> f32 {
    let mut lanes = [0f32; 16];
    for (x, y) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        for i in 0..16 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum()
}

/// Tables worth trying for `n` literals: about one per 16 KiB of them, at least 2, at most
/// [`MAX_TABLES`] (each table costs up to 160 bytes and its share of clustering time).
pub fn tables_for(n: usize) -> usize {
    (n / 16384).clamp(2, MAX_TABLES)
}

/// 64 bits of `src` from bit `bitpos` on (zeros past its end).
#[inline(always)]
fn bits_at(src: &[u8], bitpos: u64) -> u64 {
    let byte = (bitpos / 8) as usize;
    match src.get(byte..byte + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().expect("8 bytes")) >> (bitpos % 8),
        None => huffman::peek(src, bitpos),
    }
}

/// Bits of one context map entry with `k` tables.
fn map_bits(k: usize) -> u32 {
    usize::BITS - (k.max(1) - 1).leading_zeros()
}

/// Bytes of the context map with `k` tables.
fn map_len(k: usize) -> usize {
    (CONTEXTS * map_bits(k) as usize).div_ceil(8)
}

fn table_len(t: &Lengths) -> usize {
    let k = t.iter().filter(|&&l| l > 0).count();
    TABLE_BYTES.min(listed_table_len(k))
}

/// The decoder's side: the context map and one decoding table per table of a stream.
pub struct ContextTables {
    map: [u8; CONTEXTS],
    /// The tables' decoding entries back to back (`2^MAX_BITS` each), and where each context's
    /// table starts in it.
    flat: Vec<u16>,
    start: [u32; CONTEXTS],
}

impl Default for ContextTables {
    fn default() -> Self {
        ContextTables {
            map: [0; CONTEXTS],
            flat: Vec::new(),
            start: [0; CONTEXTS],
        }
    }
}

impl ContextTables {
    /// Reads a tables part at `*pos` of `coded` (everything checked: table count, map entries,
    /// each table's form and code), advancing `*pos` past it.
    pub fn read(&mut self, coded: &[u8], pos: &mut usize) -> Result<(), EntropyError> {
        let k = *coded
            .get(*pos)
            .ok_or(Container("ends inside a context header"))? as usize;
        if k == 0 || k > MAX_TABLES {
            return Err(Container("bad number of context tables"));
        }
        let packed = coded
            .get(*pos + 1..*pos + 1 + map_len(k))
            .ok_or(Container("context map runs past the payload"))?;
        let w = map_bits(k);
        let (mut acc, mut n, mut bytes) = (0u32, 0, packed.iter());
        for t in self.map.iter_mut() {
            while n < w {
                acc |= (*bytes.next().expect("map_len bytes") as u32) << n;
                n += 8;
            }
            *t = (acc & ((1 << w) - 1)) as u8;
            acc >>= w;
            n -= w;
            if *t as usize >= k {
                return Err(Container("context map names a table that is not there"));
            }
        }
        if acc != 0 {
            return Err(Container("non-zero padding after the context map"));
        }
        *pos += 1 + map_len(k);
        const N: usize = 1 << huffman::MAX_BITS;
        self.flat.resize(k * N, 0);
        for t in self.flat.chunks_exact_mut(N) {
            let form = *coded
                .get(*pos)
                .ok_or(Container("ends inside a context table"))?;
            *pos += 1;
            let lens = match form {
                MODE_HUFFMAN => {
                    let table: &[u8; TABLE_BYTES] = coded
                        .get(*pos..*pos + TABLE_BYTES)
                        .ok_or(Container("code table runs past the payload"))?
                        .try_into()
                        .expect("TABLE_BYTES bytes");
                    *pos += TABLE_BYTES;
                    huffman::unpack_lengths(table)
                }
                MODE_HUFFMAN_LISTED => {
                    let (lens, n) = get_listed(coded, *pos)?;
                    *pos += n;
                    lens
                }
                _ => return Err(Container("unknown context table form")),
            };
            let t: &mut [u16; N] = t.try_into().expect("N entries");
            huffman::fill_table(&lens, t).map_err(EntropyError::Huffman)?;
        }
        for (s, &t) in self.start.iter_mut().zip(&self.map) {
            *s = t as u32 * N as u32;
        }
        Ok(())
    }

    /// The entry of context `ctx`'s table for the next [`huffman::MAX_BITS`] bits of `w`.
    #[inline(always)]
    fn entry(&self, ctx: usize, w: u64) -> u16 {
        self.flat[self.start[ctx] as usize + (w & ((1 << huffman::MAX_BITS) - 1)) as usize]
    }

    /// Bytes of decoding tables held.
    pub fn memory_bytes(&self) -> usize {
        2 * self.flat.capacity()
    }
}

/// Reads context-modelled literals one at a time, each with the table of its context; refuses
/// bits that are no code, more literals than the stream declared, and reading past the bits.
pub struct LiteralReader<'a> {
    tables: &'a ContextTables,
    src: &'a [u8],
    bitpos: u64,
    left: usize,
}

impl<'a> LiteralReader<'a> {
    /// A reader of `n` literals coded in `src` with `tables`.
    pub fn new(tables: &'a ContextTables, src: &'a [u8], n: usize) -> Self {
        LiteralReader {
            tables,
            src,
            bitpos: 0,
            left: n,
        }
    }

    /// The next literal, whose context is `ctx` (below [`CONTEXTS`]).
    #[inline]
    pub fn next(&mut self, ctx: u16) -> Result<u8, &'static str> {
        if self.left == 0 {
            return Err("more literals than the literal stream holds");
        }
        self.left -= 1;
        let e = self
            .tables
            .entry(ctx as usize, huffman::peek(self.src, self.bitpos));
        let l = (e & 0xff) as u64;
        if l == 0 {
            return Err("literal bits that are no code");
        }
        self.bitpos += l;
        if self.bitpos > self.src.len() as u64 * 8 {
            return Err("literal bits run past their stream");
        }
        Ok((e >> 8) as u8)
    }

    /// Decodes `n` literals into `win[at..at + n]`, the context of each being the byte `d`
    /// before it in `win` (`d` at most `at`), or [`NO_CONTEXT`] without `d`.
    pub fn run(
        &mut self,
        win: &mut [u8],
        at: usize,
        n: usize,
        d: Option<usize>,
    ) -> Result<(), &'static str> {
        if n > self.left {
            return Err("more literals than the literal stream holds");
        }
        if at + n > win.len() || d.is_some_and(|d| d == 0 || d > at) {
            return Err("literals past their window");
        }
        let t = self.tables;
        let src = self.src;
        let mut bitpos = self.bitpos;
        let (mut q, end) = (at, at + n);
        if d == Some(1) {
            // each byte in the context of the one before: kept in a register
            let mut prev = win[at - 1] as usize;
            while q < end {
                let mut w = bits_at(src, bitpos);
                let stop = end.min(q + 5);
                while q < stop {
                    let e = t.entry(prev, w);
                    let l = e & 0xff;
                    if l == 0 {
                        return Err("literal bits that are no code");
                    }
                    w >>= l;
                    bitpos += l as u64;
                    prev = (e >> 8) as usize;
                    win[q] = prev as u8;
                    q += 1;
                }
            }
        }
        while q < end {
            // one load serves five codes (at least 57 of its bits are the stream's)
            let mut w = bits_at(src, bitpos);
            let stop = end.min(q + 5);
            while q < stop {
                let ctx = match d {
                    Some(d) => win[q - d] as usize,
                    None => NO_CONTEXT as usize,
                };
                let e = t.entry(ctx, w);
                let l = e & 0xff;
                if l == 0 {
                    return Err("literal bits that are no code");
                }
                w >>= l;
                bitpos += l as u64;
                win[q] = (e >> 8) as u8;
                q += 1;
            }
        }
        if bitpos > src.len() as u64 * 8 {
            return Err("literal bits run past their stream");
        }
        self.bitpos = bitpos;
        self.left -= n;
        Ok(())
    }

    /// Decodes `dst.len()` bytes into `dst`, the context of `dst[i]` being `ctx[i]` (as long as
    /// `dst`).
    pub fn run_by(&mut self, ctx: &[u8], dst: &mut [u8]) -> Result<(), &'static str> {
        if ctx.len() != dst.len() {
            return Err("a context stream of another length");
        }
        self.decode_into(dst, |i| ctx[i] as usize)
    }

    /// Decodes `dst.len()` literals of context [`NO_CONTEXT`] into `dst`.
    pub fn run_plain(&mut self, dst: &mut [u8]) -> Result<(), &'static str> {
        self.decode_into(dst, |_| NO_CONTEXT as usize)
    }

    /// Decodes `dst.len()` bytes into `dst`, the context of `dst[i]` being `ctx(i)`, known before
    /// any byte is decoded.
    #[inline(always)]
    fn decode_into(
        &mut self,
        dst: &mut [u8],
        ctx: impl Fn(usize) -> usize,
    ) -> Result<(), &'static str> {
        if dst.len() > self.left {
            return Err("more literals than the literal stream holds");
        }
        let t = self.tables;
        let src = self.src;
        let mut bitpos = self.bitpos;
        for (k, five) in dst.chunks_mut(5).enumerate() {
            // one load serves five codes (at least 57 of its bits are the stream's)
            let mut w = bits_at(src, bitpos);
            for (i, o) in five.iter_mut().enumerate() {
                let e = t.entry(ctx(5 * k + i), w);
                let l = e & 0xff;
                if l == 0 {
                    return Err("literal bits that are no code");
                }
                w >>= l;
                bitpos += l as u64;
                *o = (e >> 8) as u8;
            }
        }
        if bitpos > src.len() as u64 * 8 {
            return Err("literal bits run past their stream");
        }
        self.bitpos = bitpos;
        self.left -= dst.len();
        Ok(())
    }

    /// Checks that every literal was read and the bits end there (zero padding, no extra byte).
    pub fn finish(&self) -> Result<(), &'static str> {
        if self.left != 0 {
            return Err("bytes left in a stream after the last op");
        }
        if self.bitpos.div_ceil(8) != self.src.len() as u64 {
            return Err("literal bits do not end with the last literal");
        }
        if !self.bitpos.is_multiple_of(8) && self.src[self.src.len() - 1] >> (self.bitpos % 8) != 0
        {
            return Err("non-zero padding after the last literal");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
