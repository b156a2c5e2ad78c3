//! The per-page choice: what the backup holds at the page decides which ops are tried, and the
//! smallest one found is sent.

use super::blocks::mark_delta_blocks;
use super::gates::Verdict;
use super::run::Offer;
use super::tick::Tick;
use super::{Kind, Lap, Lead, Outcome, Work, DICT_MIN_DIVISOR, SMALL_DELTA_DIVISOR};
use crate::compress::{self, Codec};
use crate::config::Fallback;
use crate::format::{op, varint};
use crate::stages::cache::PageCache;
use crate::stages::delta;

/// Link rate (bytes per second) from which the fallback compressor uses its greedy parse when the
/// encoder is not far ahead of the link: 10 MB/s (80 Mbit/s). Below it a page's time on the link
/// dwarfs any parse's time, and libfgbi's matcher runs on every page, the first pages of an epoch
/// too (before the encoder knows how far ahead it is). From it, libfgbi's matcher runs only far
/// ahead of the link: the encoder's time matters more than the last few percent of bytes
/// (proc-node at 1 Gbit/s: 1.33 -> 1.03 times the ship time of per-page lz4; QEMU's multifd
/// channels at 62.5 MiB/s each: half the source's CPU time for 1% more bytes).
const GREEDY_FROM: u64 = 10_000_000;

/// Where the XOR delta is the only stage left to run on a cached page, it is taken when it is at
/// least this many bytes shorter than the page (a RAW op's body). (At 10 Gbit/s on proc-node,
/// about 24k of 28.6k cached pages changed too much for a half-page delta and went RAW, where
/// QEMU's XBZRLE sends such pages in about 3 KiB.)
const DELTA_BELOW_RAW: usize = 16;

/// What the backup holds at a page [`Work::against_copy`] encodes.
pub(super) enum Held<'a> {
    /// The page as it was last sent (a copy the cache keeps).
    Sent(&'a [u8]),
    /// The zero page: the page was zero when last sent.
    Zeros(&'a [u8]),
}

/// What the XOR delta found.
enum Delta {
    /// The page equals what the backup holds.
    Unchanged,
    /// Small enough to send at once: it is in `best`.
    Small,
    /// In `best`, as the first candidate.
    Candidate,
    /// Larger than half a page, or than a RAW page where nothing else runs: no candidate.
    TooLarge,
}

impl Work {
    /// Encodes against the backup's known content `old`; appends the winning op.
    ///
    /// The XOR delta comes first: nothing changed, or a small delta, ends the page there. Else
    /// the changed blocks are found by comparison and hashed, and the candidates are built in
    /// order of cost: the BLOCKS op, lz4 with `old` as dictionary, the page compressed whole;
    /// the smallest is sent. Against a page sent before, where the dictionary pass runs, the
    /// block work waits for it and is done only if it does not win.
    pub(super) fn against_copy(
        &mut self,
        page_idx: u64,
        page: &[u8],
        old: Held<'_>,
        cache: &PageCache,
    ) -> Outcome {
        let (old, was_sent) = match old {
            Held::Sent(old) => (old, true),
            Held::Zeros(zeros) => (zeros, false),
        };
        let stages = self.cfg.stages;
        let blocks_on = self.blocks_open;
        let mut lap = Lap(self.clock);
        self.page.best.clear();
        let mut best = None;
        if stages.delta {
            match self.delta_candidate(page, old) {
                Delta::Unchanged => {
                    lap.to(&mut self.stats.nanos.delta);
                    self.clock = lap.0;
                    return Outcome::Unchanged;
                }
                Delta::Small => {
                    lap.to(&mut self.stats.nanos.delta);
                    self.emit(page_idx, Kind::Delta, page, old);
                    self.clock = lap.0;
                    return Outcome::Sent;
                }
                Delta::Candidate => best = Some(Kind::Delta),
                Delta::TooLarge => {}
            }
        } else if page == old {
            lap.to(&mut self.stats.nanos.delta);
            self.clock = lap.0;
            return Outcome::Unchanged;
        }
        lap.to(&mut self.stats.nanos.delta);

        let blocks_start = (lap.0, self.unaided_len());
        // the dictionary pass below sees the old page, so it covers kept blocks as matches and
        // nearly always beats a block op made only of kept blocks and literals compressed with
        // the same lz4: when it is going to run, such a block op is left out (and made after all
        // if the dictionary pass does not win). Not with deflate, which may well beat it.
        let dict_planned = stages.dict
            && !self.exhaustive
            && self.cfg.fallback == Fallback::Lz4
            && (self.lead == Lead::FarAhead || self.gates.dict.worth_it(self.gate_rate));
        // Against the page's last-sent version the dictionary pass also beats the blocks it
        // would find shared with other pages, but for a few hundredths of a percent of the bytes
        // (the five traces, default configuration): there the block work (hashing the changed
        // blocks, looking them up) waits until that pass has not won. Against the zero page
        // (no dictionary worth the name) it is done first, as for a page the backup lacks.
        let blocks_late = blocks_on && dict_planned && was_sent;
        let blocks_now = blocks_on && !blocks_late;
        if blocks_now {
            self.hash_changed_blocks(page, old);
        } else {
            self.page.changed.fill(false); // nothing hashed: nothing for the sharing table
        }
        // the most a block op left out takes (its literals uncompressed); MAX: none left out
        let mut deferred_bound = usize::MAX;
        let mut deferred = false;
        if blocks_now {
            self.classify_blocks(page_idx, page, cache);
            let n = self.page.blocks;
            // left out: only kept and literal blocks, unless the literals look random beside
            // kept blocks (then the op with the literals as they are is cheap and beats raw)
            deferred = dict_planned
                && n.zero + n.shared == 0
                && (self.lits_whole() || !self.page.literals_random);
            if deferred {
                deferred_bound = self.block_op_bound(n.literal as usize);
            } else {
                self.take_block_op(page, &mut best);
            }
            let (t, before) = blocks_start;
            let saved = before.saturating_sub(self.best_len_or_raw(self.cfg.page_size));
            self.gates.blocks.record(t.elapsed_ns(), saved as u64);
        } else if blocks_late {
            let bs = self.cfg.block_size;
            let changed = old
                .chunks_exact(bs)
                .zip(page.chunks_exact(bs))
                .filter(|(a, b)| a != b)
                .count();
            deferred_bound = self.block_op_bound(changed);
        }
        lap.to(&mut self.stats.nanos.blocks);

        // random-looking content (encrypted, compressed) gains nothing from a dictionary or a
        // compressor either, unless it moved: that case is given up for speed. The probe is
        // left out where neither can run (their gates then only count the skip)
        let random = if self.exhaustive {
            false
        } else if deferred || blocks_now && self.lits_whole() {
            self.page.literals_random // probed (on the whole page, or on literals beside kept ones)
        } else {
            self.compressing_may_run() && compress::looks_incompressible(page)
        };
        if !random {
            self.dict_candidate(page, old, deferred_bound, &mut best);
        }
        lap.to(&mut self.stats.nanos.dict);
        let dict_won = best == Some(Kind::Dict) && self.page.best.len() <= deferred_bound;
        if deferred && !random && !self.lits_whole() && !dict_won {
            // the dictionary pass did not win, or not by enough to be sure it beats the left-out
            // block op: that op after all (a page of new blocks only is compressed whole below);
            // `block_op` still holds its map and references
            self.take_block_op(page, &mut best);
            lap.to(&mut self.stats.nanos.blocks);
        } else if blocks_late
            && !(best == Some(Kind::Dict) && 2 * self.page.best.len() <= deferred_bound)
        {
            // the dictionary pass did not code the changed blocks in half their size: some may
            // be copies of other pages' blocks, which a block op refers to in a few bytes. The
            // block work after all; a page of new blocks only is compressed whole below. A use
            // of the block work's gate, credited with what it saves beyond the dictionary
            let (t, before) = (Tick::now(), self.best_len_or_raw(self.cfg.page_size));
            self.hash_changed_blocks(page, old);
            self.classify_blocks(page_idx, page, cache);
            if !self.lits_whole() {
                self.take_block_op(page, &mut best);
            }
            let saved = before.saturating_sub(self.best_len_or_raw(self.cfg.page_size));
            self.gates.blocks.record(t.elapsed_ns(), saved as u64);
            lap.to(&mut self.stats.nanos.blocks);
        }

        // without blocks (or with nothing found yet), the page compressed whole is the remaining
        // candidate
        if (!blocks_on || best.is_none() || self.exhaustive) && !random && self.whole_page(page) {
            best = Some(Kind::Whole);
        }
        match best {
            // every block a literal and none compressed: RAW says the same without a block map
            Some(Kind::Blocks) if self.page.best[0] >> 4 == 0 && self.lits_whole() => {
                self.emit_raw(page_idx, page)
            }
            Some(kind) => self.emit(page_idx, kind, page, old),
            None => self.emit_raw(page_idx, page),
        }
        lap.to(&mut self.stats.nanos.compress);
        self.clock = lap.0;
        Outcome::Sent
    }

    /// The XOR delta of `page` against `old`, put in `best` when it is a candidate. A small one
    /// is sent without trying anything else: the blocks it touches are marked changed and
    /// hashed for the sharing table.
    fn delta_candidate(&mut self, page: &[u8], old: &[u8]) -> Delta {
        let (ps, bs) = (self.cfg.page_size, self.cfg.block_size);
        // A delta over half a page loses to the dictionary and is not finished where that may
        // run. With the compressors shut (adaptive) its own gate decides whether finishing it
        // pays; it then competes with the RAW page and, where the block work runs, with the
        // block op, whose gate is credited only with what it saves beyond the delta. (Limited
        // to half a page wherever the block work ran, one epoch of block work on new pages
        // kept the next epochs' changed pages from their deltas: 2,700 of proc-node's 3,400
        // pages a 10 Gbit/s epoch went RAW, 17% more bytes.)
        let long = if self.cfg.link_rate > 0 && !self.exhaustive && !self.compressing_may_run() {
            self.gate_long_delta()
        } else {
            Verdict::Closed
        };
        let limit = if long == Verdict::Closed {
            ps / 2
        } else {
            ps - DELTA_BELOW_RAW
        };
        let t = (long != Verdict::Closed).then(Tick::now);
        let n = delta::encode(old, page, &mut self.page.body[..limit]);
        if n == Some(0) {
            return Delta::Unchanged;
        }
        // a use of the long delta: one that ran past half a page (a RAW op's body is the page; a
        // delta's, its length, 2 bytes here, and the delta); only such a page is its sample
        if let Some(t) = t.filter(|_| n.is_none_or(|n| n > ps / 2)) {
            let saved = n.map_or(0, |n| ps.saturating_sub(n + 2));
            self.gates.long_delta.record(t.elapsed_ns(), saved as u64);
            self.probing |= long == Verdict::Measure;
        }
        let Some(n) = n else {
            return Delta::TooLarge;
        };
        let p = &mut self.page;
        p.best.push(op::DELTA);
        varint::put(&mut p.best, n as u64);
        p.best.extend_from_slice(&p.body[..n]);
        if n > ps / SMALL_DELTA_DIVISOR || self.exhaustive {
            return Delta::Candidate;
        }
        if !self.blocks_open {
            p.changed.fill(false); // nothing hashed: nothing for the sharing table
            return Delta::Small;
        }
        mark_delta_blocks(&p.body[..n], bs, &mut p.changed);
        for i in p.changed.iter_ones() {
            p.hashes[i] = self.hasher.hash(&page[i * bs..(i + 1) * bs]);
        }
        Delta::Small
    }

    /// Marks the blocks of `page` that differ from `old` and hashes only those.
    fn hash_changed_blocks(&mut self, page: &[u8], old: &[u8]) {
        let bs = self.cfg.block_size;
        let p = &mut self.page;
        for (i, (a, b)) in old.chunks_exact(bs).zip(page.chunks_exact(bs)).enumerate() {
            let ch = a != b;
            p.changed.set(i, ch);
            if ch {
                p.hashes[i] = self.hasher.hash(b);
            }
        }
    }

    /// Completes the BLOCKS op `classify_blocks` began and makes it `best` if it is smaller.
    fn take_block_op(&mut self, page: &[u8], best: &mut Option<Kind>) {
        self.pack_literals(page);
        let p = &mut self.page;
        if best.is_none() || p.block_op.len() < p.best.len() {
            std::mem::swap(&mut p.block_op, &mut p.best);
            *best = Some(Kind::Blocks);
        }
    }

    /// lz4 with `old` as dictionary, put in `best` when the gate lets it run and the ops so far
    /// leave room to save (or every encoding is tried); the gate is credited only with what it
    /// saves beyond `deferred_bound`, the left-out block op's bound.
    fn dict_candidate(
        &mut self,
        page: &[u8],
        old: &[u8],
        deferred_bound: usize,
        best: &mut Option<Kind>,
    ) {
        let ps = self.cfg.page_size;
        if !(self.cfg.stages.dict
            && (best.is_none() || self.page.best.len() > ps / DICT_MIN_DIVISOR || self.exhaustive)
            && self.gate_dict())
        {
            return;
        }
        let t = Tick::now();
        let limit = self.best_budget(ps);
        let before = self.unaided_len().min(deferred_bound);
        let mut saved = 0;
        let p = &mut self.page;
        if let Some(n) = self
            .dict_lz4
            .compress_with_dict(page, old, &mut p.body[..limit])
        {
            p.best.clear();
            p.best.push(op::DICT);
            varint::put(&mut p.best, n as u64);
            p.best.extend_from_slice(&p.body[..n]);
            *best = Some(Kind::Dict);
            saved = before.saturating_sub(p.best.len());
        }
        self.gates.dict.record(t.elapsed_ns(), saved as u64);
    }

    /// Encodes a page whose last-sent block hashes are `old`: only changed blocks are sent.
    pub(super) fn against_hashes(
        &mut self,
        page_idx: u64,
        page: &[u8],
        old: &[u64],
        cache: &PageCache,
    ) -> Outcome {
        let t = Tick::now();
        self.hasher
            .hashes(page, self.cfg.block_size, &mut self.page.hashes);
        let mut any = false;
        for (i, (a, b)) in old.iter().zip(&self.page.hashes).enumerate() {
            self.page.changed.set(i, a != b);
            any |= a != b;
        }
        if !any {
            self.stats.nanos.blocks += t.elapsed_ns();
            return Outcome::Unchanged;
        }
        self.encode_blocks(page_idx, page, cache);
        std::mem::swap(&mut self.page.block_op, &mut self.page.best);
        self.stats.nanos.blocks += t.elapsed_ns();
        self.emit(page_idx, Kind::Blocks, page, &[]);
        Outcome::Sent
    }

    /// Encodes a page whose content on the backup is unknown.
    pub(super) fn fresh(&mut self, page_idx: u64, page: &[u8], cache: &PageCache) -> Outcome {
        let t = Tick::now();
        self.page.best.clear();
        self.page.changed.fill(true);
        if self.blocks_open {
            self.hasher
                .hashes(page, self.cfg.block_size, &mut self.page.hashes);
            self.classify_blocks(page_idx, page, cache);
            let b = self.page.blocks;
            let special = b.zero + b.shared > 0;
            if !special && !self.page.literals_random {
                // a page of new blocks only is compressed whole: with its neighbours, in a run
                let offer = self.offer_run(page_idx, page, true, false);
                if offer != Offer::Off {
                    if offer == Offer::Raw {
                        self.emit_raw(page_idx, page);
                    }
                    // the block work found nothing: a sample of its gate that saved nothing
                    // (for a page in the run, completed with its share of the compression when
                    // the run is written, as the literals compressed inside the block work are)
                    let ns = t.elapsed_ns().saturating_sub(self.run.flushed_ns);
                    self.stats.nanos.blocks += ns;
                    if offer == Offer::Taken {
                        self.run.defer_blocks(ns);
                    } else {
                        self.gates.blocks_uncached.record(ns, 0);
                    }
                    return Outcome::Sent;
                }
            }
            self.pack_literals(page);
            let ns = t.elapsed_ns();
            self.stats.nanos.blocks += ns;
            // what zero and shared blocks saved beyond what the page takes without them
            // (compressing the literals is the compressor's saving)
            let saved = if special {
                self.unaided_len().saturating_sub(self.page.block_op.len())
            } else {
                0
            };
            self.gates.blocks_uncached.record(ns, saved as u64);
            if special {
                std::mem::swap(&mut self.page.block_op, &mut self.page.best);
                self.emit(page_idx, Kind::Blocks, page, &[]);
            } else {
                // every block is a literal: the literal section is the whole page, compressed
                // (or raw); send it as such rather than compress the page a second time
                let codec = self.page.block_op[0] >> 4;
                let body = 1 + self.cfg.blocks_per_page().div_ceil(4);
                if codec == 0 {
                    self.emit_raw(page_idx, page);
                } else {
                    self.page.best.clear();
                    self.page.best.push(op::COMPRESSED | codec << 4);
                    self.page
                        .best
                        .extend_from_slice(&self.page.block_op[body..]);
                    self.emit(page_idx, Kind::Whole, page, &[]);
                }
            }
            return Outcome::Sent;
        }
        self.page.changed.fill(false); // nothing hashed: nothing to index
        let t1 = Tick::now();
        match self.offer_run(page_idx, page, false, true) {
            Offer::Taken => {}
            Offer::Raw => self.emit_raw(page_idx, page),
            offer => {
                // (`Alone`: the gate has let the page through already)
                if self.whole_page_gated(page, offer == Offer::Off) {
                    self.emit(page_idx, Kind::Whole, page, &[]);
                } else {
                    self.emit_raw(page_idx, page);
                }
            }
        }
        self.stats.nanos.compress += t1.elapsed_ns();
        Outcome::Sent
    }

    /// Room a new candidate has to beat the best so far (and raw).
    pub(super) fn best_budget(&self, ps: usize) -> usize {
        let best = if self.page.best.is_empty() {
            ps
        } else {
            self.page.best.len().min(ps)
        };
        best.saturating_sub(varint::MAX_LEN + 1).max(1)
    }

    /// What the page would take without the stage about to run: the best op so far, or what
    /// the compressor alone would send ([`Work::shed_op_len`]; RAW where it does not pay). The
    /// block work and the dictionary are credited with what they save beyond it, not with the
    /// compression their ops contain, which the compressor alone would do as well.
    pub(super) fn unaided_len(&self) -> usize {
        self.best_len_or_raw(self.cfg.page_size)
            .min(self.shed_op_len())
    }

    /// Bytes of the best op so far, or of a RAW op when there is none.
    pub(super) fn best_len_or_raw(&self, ps: usize) -> usize {
        if self.page.best.is_empty() {
            ps + 2
        } else {
            self.page.best.len()
        }
    }

    /// Whether the dictionary or the fallback compressor may run on this page: a stage that
    /// is on, and that its gate or the encoder's lead on the link would let run (it may still
    /// find the page not worth trying).
    pub(super) fn compressing_may_run(&self) -> bool {
        let dict = self.cfg.stages.dict
            && (self.lead == Lead::FarAhead
                || self.gates.dict.peek(self.gate_rate) != Verdict::Closed);
        let compress = self.cfg.fallback != Fallback::None
            && (self.lead_forces(self.gates.compress.cost_ns())
                || self.gates.compress.peek(self.gate_rate) != Verdict::Closed);
        dict || compress
    }

    /// Whether to finish a delta over half a page where it is the only stage left (adaptive
    /// stages): its gate, or the lead where the gate's average cost fits a RAW page's link time
    /// (`Open`). `Measure` (a warm-up or a probe) makes the page a probe of this stage only if
    /// its delta does run past half a page.
    fn gate_long_delta(&mut self) -> Verdict {
        if self.lead_forces(self.gates.long_delta.cost_ns()) {
            return Verdict::Open;
        }
        self.gates.long_delta.verdict(self.gate_rate)
    }

    /// Whether to try dictionary compression on this page (adaptive stages).
    pub(super) fn gate_dict(&mut self) -> bool {
        if self.lead == Lead::FarAhead {
            return true;
        }
        let v = self.gates.dict.verdict(self.gate_rate);
        self.stats.skipped_dict += (v == Verdict::Closed) as u64;
        self.probing |= v == Verdict::Measure;
        v != Verdict::Closed
    }

    /// The fallback compressor on `src` into `tmp[..limit]`, unless the adaptive gate says the
    /// link is faster than compressing; records its cost and saving against sending `src` raw.
    pub(super) fn compress_gated(
        &mut self,
        src_is_lits: bool,
        page: &[u8],
        limit: usize,
    ) -> Option<(Codec, usize)> {
        if !self.compress_verdict() {
            return None;
        }
        self.compress_let_through(src_is_lits, page, limit)
    }

    /// [`compress_gated`](Self::compress_gated) once the gate has let the page through.
    fn compress_let_through(
        &mut self,
        src_is_lits: bool,
        page: &[u8],
        limit: usize,
    ) -> Option<(Codec, usize)> {
        let t = Tick::now();
        let src: &[u8] = if src_is_lits {
            &self.page.literals
        } else {
            page
        };
        // without a link rate, on a very slow one or far ahead of the link, bytes are what
        // matters: libfgbi's matcher; else the greedy parse, twice as fast for a few percent
        // more bytes, which the gate measures
        let greedy = self.greedy_now();
        let out = &mut self.page.body[..limit];
        if !greedy {
            return self.engine.compress(src, out);
        }
        let r = self.engine.compress_fast(src, out);
        let saved = r.map_or(0, |(_, n)| src.len().saturating_sub(n));
        // compressed output is written instead of the input: its cost beyond sending that RAW
        let cost = t.elapsed_ns().saturating_sub(self.gates.shed.ns());
        self.gates.compress.record(cost, saved as u64);
        if !src_is_lits {
            self.gates.compress_whole.record(cost, saved as u64);
        }
        r
    }

    /// Whether the compressor may run on the page being encoded: the encoder's lead on the link
    /// forces it, or its gate lets it (a probe of a closed gate makes the page a probe).
    pub(super) fn compress_verdict(&mut self) -> bool {
        if !self.lead_forces(self.gates.compress.cost_ns()) {
            match self.gates.compress.verdict(self.gate_rate) {
                Verdict::Closed => {
                    self.stats.skipped_compress += 1;
                    return false;
                }
                Verdict::Measure => self.probing = true,
                Verdict::Open => {}
            }
        }
        true
    }

    /// Whether the compressor uses its greedy parse now: with a link rate from
    /// [`GREEDY_FROM`], unless the encoder is far ahead of the link (then bytes are what
    /// matters: libfgbi's matcher).
    pub(super) fn greedy_now(&self) -> bool {
        self.cfg.link_rate >= GREEDY_FROM && self.lead != Lead::FarAhead
    }

    /// Puts the whole page compressed in `best` if that beats what `best` holds; true if it did.
    pub(super) fn whole_page(&mut self, page: &[u8]) -> bool {
        self.whole_page_gated(page, true)
    }

    /// [`whole_page`](Self::whole_page), asking the compressor's gate first (`ask`) or not (it
    /// has let the page through already).
    pub(super) fn whole_page_gated(&mut self, page: &[u8], ask: bool) -> bool {
        let limit = self.best_budget(page.len());
        let packed = if ask {
            self.compress_gated(false, page, limit)
        } else {
            self.compress_let_through(false, page, limit)
        };
        match packed {
            Some((codec, n)) => {
                self.page.best.clear();
                self.page.best.push(op::COMPRESSED | (codec as u8) << 4);
                varint::put(&mut self.page.best, n as u64);
                self.page.best.extend_from_slice(&self.page.body[..n]);
                true
            }
            None => false,
        }
    }
}
