//! Runs: pages the encoder compresses whole without a dictionary, gathered while their addresses
//! climb with small gaps and compressed together as one RUN op (format version 4).
//!
//! lz4 on one page finds only the repeats inside that page; neighbouring pages of a heap hold
//! objects of the same shapes, so one block over up to 64 KiB of them finds repeats across the
//! pages as well. Where bytes come first (the compressor uses libfgbi's matcher), a page joins
//! the pending run where it would be compressed whole: a page the backup does not hold (no block
//! of it zero or shared), or a page sent without analysis. The
//! run is compressed and written when it is full, when a page does not follow it, before any
//! other op (but a ZERO op on a page outside the run: the two write different pages and depend
//! on nothing) and when the frame closes. A run of one page is the COMPRESSED op it would have
//! been; a block that is not shorter than its pages sent RAW is sent as those RAW ops.

use super::tick::Tick;
use super::{count, Work};
use crate::budget;
use crate::compress::{self, Codec};
use crate::config::{Config, Fallback};
use crate::error::Error;
use crate::format::{self, op, varint};

/// The most pages between two pages of a run that are not in it (each costs a gap byte, and
/// pages apart share less).
const MAX_GAP: u64 = 2;

/// The pending run.
#[derive(Default)]
pub(super) struct Run {
    /// Whether runs are written (their stage on, lz4 as the fallback compressor, two pages in
    /// 64 KiB).
    on: bool,
    /// The pages' contents, back to back.
    data: Vec<u8>,
    /// Their page indexes, increasing.
    pages: Vec<u64>,
    /// The compressed block.
    block: Vec<u8>,
    /// The most pages a run holds.
    most: usize,
    /// What writing runs added to the frame and took, since the page being encoded began
    /// ([`Run::page_began`]): the page's own gates leave it out.
    pub(super) flushed_bytes: usize,
    pub(super) flushed_ns: u64,
    /// Whether the page being encoded joined the run (it has no op of its own yet).
    pub(super) took_page: bool,
    /// Gate samples of the pending pages, completed when the run is written (with each page's
    /// share of the compression's time and of the op): the block work's time, and the
    /// analysis's time and whether the page was cached, where those gates took a sample.
    blocks_ns: Vec<Option<u64>>,
    analysis: Vec<Option<(u64, bool)>>,
}

/// What became of a page offered to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Offer {
    /// It is in the run.
    Taken,
    /// The compressor's gate is shut: send it RAW.
    Raw,
    /// Runs are off (or the encoder is exhaustive): compress it on its own.
    Off,
    /// It looks incompressible: compress it on its own (the gate has let it through already),
    /// so that it goes out RAW where it lies if that fails.
    Alone,
}

impl Run {
    /// The run buffers of configuration `cfg`, allocated now; runs are off unless their stage
    /// is on, the fallback compressor is lz4 and two pages fit in a run.
    pub(super) fn new(cfg: &Config) -> Result<Run, Error> {
        let ps = cfg.page_size;
        let most = format::max_run_pages(ps);
        if !cfg.stages.runs || cfg.fallback != Fallback::Lz4 || most < 2 {
            return Ok(Run::default());
        }
        let bytes = most * ps;
        let mut pages = Vec::new();
        budget::grow(&mut pages, most, "the pending run")?;
        let (mut blocks_ns, mut analysis) = (Vec::new(), Vec::new());
        budget::grow(&mut blocks_ns, most, "the pending run")?;
        budget::grow(&mut analysis, most, "the pending run")?;
        Ok(Run {
            on: true,
            data: budget::filled(bytes, 0, "the pending run")?,
            pages,
            block: budget::filled(bytes, 0, "the pending run")?,
            most,
            blocks_ns,
            analysis,
            ..Run::default()
        })
    }

    /// Bytes the pending pages take sent RAW (what writing the run may add to the frame, at
    /// most).
    pub(super) fn raw_bytes(&self, ps: usize) -> usize {
        self.pages.len() * format::max_op_len(ps)
    }

    /// Whether no page is pending.
    pub(super) fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Whether page `idx` is pending.
    pub(super) fn holds(&self, idx: u64) -> bool {
        self.pages.contains(&idx)
    }

    /// A page begins: nothing written or taken for it yet.
    pub(super) fn page_began(&mut self) {
        (self.flushed_bytes, self.flushed_ns, self.took_page) = (0, 0, false);
    }

    /// Forgets the pending pages (an abandoned frame).
    pub(super) fn clear(&mut self) {
        self.pages.clear();
        self.blocks_ns.clear();
        self.analysis.clear();
    }

    /// The page that just joined the run took `ns` of block work (a sample of the blocks gate
    /// that saved nothing, its compression still to come).
    pub(super) fn defer_blocks(&mut self, ns: u64) {
        if let Some(last) = self.blocks_ns.last_mut() {
            *last = Some(ns);
        }
    }

    /// The page that just joined the run took `ns` of analysis (`cached`: against a copy the
    /// cache held), its compression and op still to come.
    pub(super) fn defer_analysis(&mut self, ns: u64, cached: bool) {
        if let Some(last) = self.analysis.last_mut() {
            *last = Some((ns, cached));
        }
    }

    /// Whether page `idx` may join the pending pages (it follows the last within [`MAX_GAP`]).
    fn follows(&self, idx: u64) -> bool {
        match self.pages.last() {
            None => true,
            Some(&last) => idx > last && idx - last - 1 <= MAX_GAP && self.pages.len() < self.most,
        }
    }
}

impl Work {
    /// Offers `page` (index `idx`), which the encoder would compress whole, to the run; a run
    /// it writes is charged as [`Work::flush_run`] says. With `probe`, a page that looks
    /// incompressible stays out (the caller has not probed it).
    pub(super) fn offer_run(&mut self, idx: u64, page: &[u8], charge: bool, probe: bool) -> Offer {
        // runs where bytes come first: no link rate, a very slow one, far ahead of the link
        // (where the compressor uses libfgbi's matcher); where the gates weigh each page's time
        // they bought nothing on the whole (docs/performance.md, "Runs")
        if !self.run.on || self.exhaustive || self.greedy_now() {
            return Offer::Off;
        }
        if !self.compress_verdict() {
            return Offer::Raw;
        }
        if probe && compress::looks_incompressible(page) {
            return Offer::Alone;
        }
        if !self.run.follows(idx) {
            self.flush_run(charge);
        }
        let ps = page.len();
        let at = self.run.pages.len() * ps;
        self.run.data[at..at + ps].copy_from_slice(page);
        self.run.pages.push(idx);
        self.run.blocks_ns.push(None);
        self.run.analysis.push(None);
        // (a full run is written by the next page or op, once this page's gate samples are in)
        self.run.took_page = true;
        Offer::Taken
    }

    /// Writes the pending run, if any: one RUN op, or the COMPRESSED op of a single page, or
    /// RAW ops where compression does not pay. Its time goes to the compressor's stage counter
    /// with `charge`; without, the caller's own lap counts it (the op that flushed it).
    pub(super) fn flush_run(&mut self, charge: bool) {
        let n = self.run.pages.len();
        if n == 0 {
            return;
        }
        let (t, len0) = (Tick::now(), self.out.len());
        // (taken out while written: the ops written here do not flush it again)
        let mut run = std::mem::take(&mut self.run);
        let ps = self.cfg.page_size;
        let input = &run.data[..n * ps];
        // the run's pages are the encoder's copies, never the caller's memory
        let in_place = std::mem::replace(&mut self.page_in_place, false);
        // a RUN op is written only when shorter than its pages sent RAW
        let raw: usize = n * (1 + ps) + 1;
        let head = 1 + 2 * varint::MAX_LEN + varint::MAX_LEN * n;
        let limit = raw.saturating_sub(head).clamp(1, run.block.len());
        let t1 = Tick::now();
        let packed = self.compress_counted(input, &mut run.block[..limit], n);
        let per_page_ns = t1.elapsed_ns() / n as u64;
        match packed {
            Some(len) => self.emit_run(&run.pages, input, &run.block[..len]),
            None => {
                for (i, &idx) in run.pages.iter().enumerate() {
                    self.emit_raw(idx, &run.data[i * ps..(i + 1) * ps]);
                }
            }
        }
        self.page_in_place = in_place;
        // the gates' samples of the run's pages, each with its share of the compression and
        // of the bytes written, as if it had been compressed alone
        let per_page_len = (self.out.len() - len0) / n;
        for (blocks, analysis) in run.blocks_ns.drain(..).zip(run.analysis.drain(..)) {
            if let Some(ns) = blocks {
                self.gates.blocks_uncached.record(ns + per_page_ns, 0);
            }
            if let Some((ns, cached)) = analysis {
                self.analysis_sample(ns + per_page_ns, per_page_len, cached);
            }
        }
        run.pages.clear();
        self.run = run;
        let ns = t.elapsed_ns();
        if charge {
            self.stats.nanos.compress += ns;
        }
        self.run.flushed_ns += ns;
        self.run.flushed_bytes += self.out.len() - len0;
    }

    /// The compressor on the `pages` pages of `input` into `out`, as [`Work::compress_gated`]
    /// runs it once its gate has let the pages through: its cost and saving recorded per page.
    fn compress_counted(&mut self, input: &[u8], out: &mut [u8], pages: usize) -> Option<usize> {
        let t = Tick::now();
        if !self.greedy_now() {
            return self.engine.compress(input, out).map(|(_, n)| n);
        }
        let r = self.engine.compress_fast(input, out).map(|(_, n)| n);
        let saved = r.map_or(0, |n| input.len().saturating_sub(n)) / pages;
        let cost = (t.elapsed_ns() / pages as u64).saturating_sub(self.gates.shed.ns());
        for _ in 0..pages {
            self.gates.compress.record(cost, saved as u64);
            self.gates.compress_whole.record(cost, saved as u64);
        }
        r
    }

    /// Appends the op of `pages`, whose contents are `input`, compressed to `block`: a RUN op,
    /// or the COMPRESSED op of a single page. (Written here, not through [`Work::emit`]: a run
    /// is flushed while `best` holds the op of the page that flushed it.)
    fn emit_run(&mut self, pages: &[u64], input: &[u8], block: &[u8]) {
        if self.cfg.stages.entropy {
            self.out.note_block_contexts(block, &[], input);
        }
        let lz4 = (Codec::Lz4 as u8) << 4;
        if pages.len() == 1 {
            let start = self.out.begin_op(op::COMPRESSED | lz4, pages[0]);
            varint::put(&mut self.out.frame, block.len() as u64);
            self.out.frame.extend_from_slice(block);
            let n = self.out.finish_op(start);
            count(&mut self.stats.compressed, n);
            return;
        }
        let start = self.out.begin_op(op::RUN | lz4, pages[0]);
        varint::put(&mut self.out.frame, pages.len() as u64);
        for w in pages.windows(2) {
            varint::put(&mut self.out.frame, w[1] - w[0] - 1);
            self.out.named(w[1]);
        }
        self.out.set_prev_page(pages[pages.len() - 1]);
        varint::put(&mut self.out.frame, block.len() as u64);
        self.out.frame.extend_from_slice(block);
        let n = self.out.finish_op(start);
        count(&mut self.stats.compressed, n);
        self.stats.compressed.pages += pages.len() as u64 - 1;
    }
}
