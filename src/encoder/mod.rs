//! The epoch encoder: dirty pages in, one frame out.
//!
//! For each page, in the order added, the encoder picks the cheapest op its enabled stages offer:
//!
//! 1. all zeros: a `ZERO` op (nothing at all when the backup already holds zeros there);
//! 2. the full cache holds the last-sent copy: XOR+RLE `DELTA` against it (nothing when identical);
//!    when the delta is not small, also the changed blocks alone (`BLOCKS`, with zero blocks and
//!    references to shared content), lz4 with the copy as dictionary (`DICT`), and whole-page
//!    compression, keeping the smallest;
//! 3. the hashes tier holds the last-sent block hashes: `BLOCKS` with unchanged blocks kept;
//! 4. nothing known: `BLOCKS` when zero or shared blocks are found, else the page compressed
//!    (`COMPRESSED`) or `RAW` when compression does not pay.
//!
//! Then the cache and the sharing table record what the backup holds. Because the decoder applies
//! ops strictly in order, the encoder always knows the backup's content.

pub mod gates;

use crate::compress::{self, Codec, Engine, Lz4};
use crate::config::{Config, Fallback};
use crate::entropy::{context, EntropyEncoder};
use crate::error::Error;
use crate::format::varint;
use crate::format::{self, block, op, Header, HEADER_LEN};
use crate::stages::bitmap::{BlockBitmap, PageSet};
use crate::stages::cache::{Cached, PageCache, Policy};
use crate::stages::share::{self, ShareTable};
use crate::stages::{delta, hash, zero};
use crate::stats::{EncoderStats, OpCount};
use gates::{Gates, Verdict};
use std::time::Instant;

/// Largest guest address the encoder accepts (exclusive): 2^60 bytes.
pub const MAX_GUEST_ADDR: u64 = 1 << 60;

/// A delta at most this fraction of the page (1/N) is sent without trying anything else.
const SMALL_DELTA_DIVISOR: usize = 32;

/// Dictionary compression is tried only when the best op so far exceeds this fraction of the page
/// (1/N): when XOR and changed blocks already do very well, the dictionary pass (an lz4 run over
/// the old and the new page) costs more than it could save. It was 1/8 until `fgbi eval
/// --exhaustive` showed, on the Redis trace, deltas of 128-512 bytes that lz4 with the old page
/// codes 4% smaller in total (new values repeated across the page: LRU clocks, counters); at 1/32
/// the cheap choice is within 0.1% of trying everything there.
const DICT_MIN_DIVISOR: usize = 32;

/// With a link rate, the entropy gate measures a frame on its first ops when it needs a
/// measurement (warm-up, probes), instead of coding it whole: on a fast link the first frame, a
/// full transfer of memory, would otherwise be coded only to learn that coding does not pay (on
/// the JVM trace at 25 Gbit/s that was a third of the encoding time). The sample is the largest
/// of these sizes (payload bytes, whole ops) that is at most a quarter of the frame's payload;
/// smaller frames are measured whole.
const ENTROPY_SAMPLES: [usize; 2] = [256 << 10, 1 << 20];

/// Where a frame's first ops of one of [`ENTROPY_SAMPLES`] bytes end (0: not yet) and how many
/// literal contexts they have (`None` when the frame's contexts were already given up).
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    end: usize,
    lit_ctx: Option<usize>,
}

/// Stateful encoder of one replication stream. See the module documentation.
///
/// ```
/// use fgbi::{Config, Decoder, Encoder};
/// let cfg = Config::default();
/// let mut enc = Encoder::new(cfg).unwrap();
/// let mut dec = Decoder::new(cfg).unwrap();
/// let mut primary = vec![0u8; 16 * 4096];
/// let mut backup = vec![0u8; 16 * 4096];
///
/// // epoch 0: a full transfer
/// enc.begin_epoch(0).unwrap();
/// for (i, page) in primary.chunks(4096).enumerate() {
///     enc.add_page(i as u64 * 4096, page).unwrap();
/// }
/// let frame = enc.end_epoch().unwrap().to_vec();
/// dec.apply_flat(&frame, &mut backup).unwrap();
///
/// // epoch 1: one page dirtied
/// primary[5 * 4096 + 100..5 * 4096 + 108].copy_from_slice(b"changed!");
/// enc.begin_epoch(1).unwrap();
/// enc.add_page(5 * 4096, &primary[5 * 4096..6 * 4096]).unwrap();
/// let frame = enc.end_epoch().unwrap();
/// assert!(frame.len() < 100);
/// dec.apply_flat(frame, &mut backup).unwrap();
/// assert_eq!(primary, backup);
/// ```
pub struct Encoder {
    cache: PageCache,
    /// A zero page, the known content of pages sent as ZERO.
    zeros: Vec<u8>,
    w: Work,
}

/// Everything but the cache, so a cached copy can be read while the rest is written.
struct Work {
    cfg: Config,
    hasher: hash::BlockHasher,
    stream_id: u64,
    share: ShareTable,
    /// Pages the backup holds as all zeros (sent as ZERO since the last resync).
    zero_pages: PageSet,
    engine: Engine,
    dict_lz4: Lz4,
    frame: Vec<u8>,
    /// The entropy stage and the frame it codes (swapped with `frame` when smaller).
    entropy: EntropyEncoder,
    /// The context of every literal of the frame's lz4 blocks, in frame order, for the entropy
    /// stage's literal model: the first `lit_ctx_len` elements (the buffer only grows, so
    /// nothing is cleared or refilled per op).
    lit_ctx: Vec<u16>,
    lit_ctx_len: usize,
    /// Pages with an op in this frame so far. A DICT op on one of them has a dictionary the
    /// decoder cannot see before the frame (the earlier op's result), so `lit_ctx` is then not
    /// used for the frame.
    in_frame: PageSet,
    /// Whether `lit_ctx` may be used for this frame.
    lit_ctx_ok: bool,
    coded: Vec<u8>,
    /// Decisions of the adaptive stages (with a link rate).
    gates: Gates,
    /// Where the frame's first ops of each of [`ENTROPY_SAMPLES`] bytes or more end, once they do.
    samples: [Sample; ENTROPY_SAMPLES.len()],
    /// Try every encoding on every page (see [`Encoder::set_exhaustive`]).
    exhaustive: bool,
    epoch: Option<u64>,
    last_epoch: Option<u64>,
    resync_pending: bool,
    prev_page: u64,
    op_count: u32,
    // per-page scratch, allocated once
    hashes: Vec<u64>,
    changed: BlockBitmap,
    cand: Vec<u8>,
    best: Vec<u8>,
    lits: Vec<u8>,
    tmp: Vec<u8>,
    pending_blocks: BlockCounts,
    /// Whether the literals of the last `encode_blocks` looked incompressible.
    lits_random: bool,
    stats: EncoderStats,
    epoch_start: EncoderStats,
}

#[derive(Debug, Clone, Copy, Default)]
struct BlockCounts {
    zero: u64,
    shared: u64,
    kept: u64,
    literal: u64,
}

/// Which op `best` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Delta,
    Dict,
    Whole,
    Blocks,
}

/// What happened to a page.
enum Outcome {
    /// Identical to what the backup holds: nothing sent.
    Unchanged,
    /// An op was appended; `changed` and `hashes` describe the blocks that changed.
    Sent,
}

fn count(c: &mut OpCount, bytes: u64) {
    c.pages += 1;
    c.bytes += bytes;
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("config", &self.w.cfg)
            .field("stream_id", &format_args!("{:#x}", self.w.stream_id))
            .field("epoch", &self.w.epoch)
            .field("last_epoch", &self.w.last_epoch)
            .finish_non_exhaustive()
    }
}

/// How the full-tier budget divides into page copies and sharing-table entries.
fn full_tier_pages(cfg: &Config) -> (usize, usize) {
    let st = cfg.stages;
    if !(st.delta || st.dict || st.blocks || st.sharing) {
        // no enabled stage reads a page copy: keeping them would only cost copies and memory
        return (0, 0);
    }
    let per_page_entries = if cfg.stages.sharing && cfg.stages.blocks {
        cfg.blocks_per_page()
    } else {
        0
    };
    let cost = PageCache::full_cost(cfg.page_size) + per_page_entries * share::ENTRY_BYTES;
    let pages = cfg.cache_bytes / cost;
    (pages, pages * per_page_entries)
}

impl Encoder {
    /// An encoder with a fresh random stream id; its first frame is a resync frame.
    pub fn new(cfg: Config) -> Result<Encoder, Error> {
        Self::with_policy(cfg, Policy::Clock)
    }

    /// An encoder whose full cache uses the given eviction policy (for comparing policies).
    pub fn with_policy(cfg: Config, policy: Policy) -> Result<Encoder, Error> {
        Self::build(cfg, policy, hash::random_seed(), hash::random_seed())
    }

    /// An encoder whose block-hash seed and stream id are derived from `seed` instead of drawn at
    /// random, so that the same pages give the same frames byte for byte: for comparing frame
    /// streams across builds and for reproducible tests. Not for production streams: a random
    /// stream id is what lets a decoder tell two streams apart, and a secret hash seed is what
    /// keeps an adversary from crafting colliding blocks.
    pub fn with_seed(cfg: Config, seed: u64) -> Result<Encoder, Error> {
        let stream_id = xxhash_rust::xxh3::xxh3_64_with_seed(b"fgbi stream id", seed);
        Self::build(cfg, Policy::Clock, seed, stream_id)
    }

    fn build(cfg: Config, policy: Policy, seed: u64, stream_id: u64) -> Result<Encoder, Error> {
        cfg.validate()?;
        let (full_pages, share_entries) = full_tier_pages(&cfg);
        let hash_pages = if cfg.stages.blocks {
            cfg.hash_bytes / PageCache::hash_cost(cfg.page_size, cfg.block_size)
        } else {
            0
        };
        let nblocks = cfg.blocks_per_page();
        let ps = cfg.page_size;
        Ok(Encoder {
            cache: PageCache::new(ps, cfg.block_size, full_pages, hash_pages, policy, seed),
            zeros: vec![0; ps],
            w: Work {
                cfg,
                hasher: hash::BlockHasher::new(seed),
                stream_id,
                share: ShareTable::with_capacity(share_entries),
                zero_pages: PageSet::default(),
                engine: Engine::with_input_len(cfg.fallback, ps),
                dict_lz4: Lz4::with_input_len(ps),
                frame: Vec::new(),
                entropy: EntropyEncoder::default(),
                lit_ctx: Vec::new(),
                lit_ctx_len: 0,
                in_frame: PageSet::default(),
                lit_ctx_ok: true,
                coded: Vec::new(),
                gates: Gates::default(),
                samples: Default::default(),
                exhaustive: false,
                epoch: None,
                last_epoch: None,
                resync_pending: true,
                prev_page: u64::MAX,
                op_count: 0,
                hashes: vec![0; nblocks],
                changed: BlockBitmap::repeat(false, nblocks),
                cand: Vec::with_capacity(2 * ps + 64),
                best: Vec::with_capacity(2 * ps + 64),
                lits: Vec::with_capacity(ps),
                tmp: vec![0; delta::max_encoded_len(ps).max(ps)],
                pending_blocks: BlockCounts::default(),
                lits_random: false,
                stats: EncoderStats::default(),
                epoch_start: EncoderStats::default(),
            },
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.w.cfg
    }

    /// The stream id written in every frame (random per encoder).
    pub fn stream_id(&self) -> u64 {
        self.w.stream_id
    }

    /// Sets the stream id (e.g. to number parallel channels). Takes effect from the next frame.
    pub fn set_stream_id(&mut self, id: u64) {
        self.w.stream_id = id;
    }

    /// The last epoch ended, if any.
    pub fn last_epoch(&self) -> Option<u64> {
        self.w.last_epoch
    }

    /// Starts epoch `epoch`. After creation or [`resync`](Self::resync) any epoch above the last
    /// one is accepted; otherwise it must be the last epoch plus one.
    pub fn begin_epoch(&mut self, epoch: u64) -> Result<(), Error> {
        let w = &mut self.w;
        if w.epoch.is_some() {
            return Err(Error::State("begin_epoch while an epoch is open"));
        }
        if let Some(last) = w.last_epoch {
            let ok = if w.resync_pending {
                epoch > last
            } else {
                Some(epoch) == last.checked_add(1)
            };
            if !ok {
                return Err(Error::EpochOrder { last, got: epoch });
            }
        }
        w.epoch = Some(epoch);
        w.frame.clear();
        w.frame.resize(HEADER_LEN, 0);
        w.lit_ctx_len = 0;
        w.samples = Default::default();
        w.in_frame.clear();
        w.lit_ctx_ok = true;
        w.prev_page = u64::MAX;
        w.op_count = 0;
        self.w.epoch_start = self.stats();
        Ok(())
    }

    /// Adds the dirty page at guest address `addr` (a multiple of the page size). The same page
    /// may be added more than once in an epoch; the backup ends with the last version.
    pub fn add_page(&mut self, addr: u64, page: &[u8]) -> Result<(), Error> {
        let w = &self.w;
        if w.epoch.is_none() {
            return Err(Error::State("add_page outside an epoch"));
        }
        let ps = w.cfg.page_size;
        if page.len() != ps {
            return Err(Error::PageLength {
                expected: ps,
                got: page.len(),
            });
        }
        if !addr.is_multiple_of(ps as u64) {
            return Err(Error::Unaligned(addr));
        }
        if addr >= MAX_GUEST_ADDR {
            return Err(Error::OutOfBounds {
                op: w.op_count,
                addr,
            });
        }
        if w.op_count == u32::MAX {
            return Err(Error::State("too many ops in one epoch"));
        }
        self.encode_page(addr / ps as u64, page);
        Ok(())
    }

    /// Ends the epoch and returns its frame, valid until the next call on the encoder.
    pub fn end_epoch(&mut self) -> Result<&[u8], Error> {
        let w = &mut self.w;
        let Some(epoch) = w.epoch.take() else {
            return Err(Error::State("end_epoch without begin_epoch"));
        };
        let mut flags = if w.resync_pending {
            format::FLAG_RESYNC
        } else {
            0
        };
        // with a compressor, pages sent RAW were found incompressible; a payload made of little
        // else is not worth coding (without one, RAW pages may well be compressible)
        let payload = (w.frame.len() - HEADER_LEN) as u64;
        let raw = w.stats.raw.bytes - w.epoch_start.raw.bytes;
        let incompressible = w.cfg.fallback != Fallback::None && raw * 8 >= payload * 7;
        let entropy = w.cfg.stages.entropy && payload > 0 && !incompressible;
        let code = entropy
            && match w.gates.entropy.verdict(w.cfg.link_rate) {
                Verdict::Open => true,
                Verdict::Closed => false,
                // a large frame is measured on its first ops: coding it whole to learn that it
                // does not pay would cost what the gate is there to save
                Verdict::Measure => match w.sample_for(payload) {
                    None => true,
                    Some(Sample { end, lit_ctx }) => {
                        let t = Instant::now();
                        let coded = w.entropy_code(end, lit_ctx);
                        let saved = coded.map_or(0, |n| end.saturating_sub(n)) as u64;
                        let ns = t.elapsed().as_nanos() as u64;
                        w.stats.nanos.entropy += ns;
                        // scaled to the whole frame; kept as the gate's measurement only if the
                        // frame is not coded (coded, the whole frame's measurement replaces it)
                        let scale = payload as f64 / (end - HEADER_LEN) as f64;
                        let mut measured = w.gates.entropy;
                        measured.record((ns as f64 * scale) as u64, (saved as f64 * scale) as u64);
                        let pays = measured.worth_it(w.cfg.link_rate);
                        if !pays {
                            w.gates.entropy = measured;
                        }
                        pays
                    }
                },
            };
        if entropy && !code {
            w.stats.skipped_entropy += 1;
        } else if code {
            let t = Instant::now();
            let ctx = w.lit_ctx_ok.then_some(w.lit_ctx_len);
            let coded = w.entropy_code(w.frame.len(), ctx);
            let saved = coded.map_or(0, |n| w.frame.len().saturating_sub(n)) as u64;
            if saved > 0 {
                w.stats.entropy_frames += 1;
                w.stats.entropy_saved += saved;
                std::mem::swap(&mut w.frame, &mut w.coded);
                flags |= format::FLAG_ENTROPY;
            }
            let ns = t.elapsed().as_nanos() as u64;
            w.stats.nanos.entropy += ns;
            w.gates.entropy.record(ns, saved);
        }
        let header = Header {
            flags,
            page_size: w.cfg.page_size as u32,
            block_size: w.cfg.block_size as u32,
            op_count: w.op_count,
            stream_id: w.stream_id,
            epoch,
            payload_len: 0,
        };
        format::seal(&mut w.frame, header);
        if w.resync_pending {
            w.stats.resyncs += 1;
        }
        w.resync_pending = false;
        w.last_epoch = Some(epoch);
        w.stats.epochs += 1;
        w.stats.bytes_out += w.frame.len() as u64;
        Ok(&w.frame)
    }

    /// The frame of the last ended epoch (the one [`end_epoch`](Self::end_epoch) returned), until
    /// the next epoch begins; empty before the first and while an epoch is open.
    pub fn last_frame(&self) -> &[u8] {
        if self.w.epoch.is_some() || self.w.last_epoch.is_none() {
            return &[];
        }
        &self.w.frame
    }

    /// Forgets everything the encoder knows of the backup (caches, sharing table, zero pages):
    /// the next frame is a resync frame that depends on nothing the backup held, and may carry
    /// any epoch number above the last. Call it when the backup is replaced or a frame was lost,
    /// then add every page of memory in the next epoch. An epoch in progress is abandoned.
    pub fn resync(&mut self) {
        self.cache.clear();
        self.w.share.clear();
        self.w.zero_pages.clear();
        self.w.resync_pending = true;
        self.w.epoch = None;
    }

    /// With `true`, every page known to the cache is encoded every way the enabled stages allow
    /// (XOR delta, changed blocks, lz4 with the old page as dictionary, the page compressed whole)
    /// and the smallest op is sent, instead of the encoder's cheap per-page choice (small deltas
    /// at once, no dictionary pass on small or random-looking changes, no whole-page compression
    /// when blocks found something). Slower; for measuring how far the cheap choice is from the
    /// best of all (`fgbi eval --exhaustive`). Frames stay valid either way.
    pub fn set_exhaustive(&mut self, on: bool) {
        self.w.exhaustive = on;
    }

    /// Counters since creation.
    pub fn stats(&self) -> EncoderStats {
        let mut s = self.w.stats;
        s.cache = self.cache.stats();
        s.share = self.w.share.stats();
        let caches = self.cache.memory_bytes() + self.w.share.memory_bytes();
        s.cache_memory_bytes = caches as u64;
        s.memory_bytes = (caches
            + self.w.zero_pages.memory_bytes()
            + self.w.entropy.memory_bytes()
            + 2 * self.w.lit_ctx.capacity()) as u64;
        s
    }

    /// Counters of the current epoch, or of the last one once it has ended.
    pub fn epoch_stats(&self) -> EncoderStats {
        self.stats().since(&self.w.epoch_start)
    }

    fn encode_page(&mut self, page_idx: u64, page: &[u8]) {
        let w = &mut self.w;
        let ps = w.cfg.page_size;
        w.stats.pages_in += 1;
        w.stats.bytes_in += ps as u64;
        let t = Instant::now();

        if w.cfg.stages.zero && zero::is_zero(page) {
            w.stats.nanos.zero += t.elapsed().as_nanos() as u64;
            if w.zero_pages.contains(page_idx) {
                w.stats.unchanged += 1;
                return;
            }
            let start = w.begin_op(op::ZERO, page_idx);
            let n = w.finish_op(start);
            count(&mut w.stats.zero, n);
            self.cache.remove(page_idx);
            w.zero_pages.insert(page_idx);
            return;
        }
        let was_zero = w.cfg.stages.zero && w.zero_pages.contains(page_idx);
        if was_zero {
            w.zero_pages.remove(page_idx);
        }
        w.stats.nanos.zero += t.elapsed().as_nanos() as u64;

        // What does the backup hold at this page?
        let entry = self.cache.touch(page_idx);
        let cache = &self.cache;
        let outcome = match cache.view(entry) {
            Cached::Full(old) => w.against_copy(page_idx, page, old, cache),
            Cached::Miss if was_zero => w.against_copy(page_idx, page, &self.zeros, cache),
            Cached::Hashes(old) if w.cfg.stages.blocks => {
                w.against_hashes(page_idx, page, old, cache)
            }
            Cached::Hashes(_) | Cached::Miss => w.fresh(page_idx, page, cache),
        };
        if let Outcome::Unchanged = outcome {
            w.stats.unchanged += 1;
            return;
        }
        // record what the backup now holds
        let t = Instant::now();
        self.cache.store(page_idx, page);
        let w = &mut self.w;
        if w.cfg.stages.sharing && w.cfg.stages.blocks && w.share.capacity() > 0 {
            let bs = w.cfg.block_size;
            for i in w.changed.iter_ones() {
                let blk = &page[i * bs..(i + 1) * bs];
                if !zero::is_zero(blk) {
                    w.share.insert(w.hashes[i], page_idx, i);
                }
            }
        }
        w.stats.nanos.update += t.elapsed().as_nanos() as u64;
    }
}

impl Work {
    /// Encodes against the backup's known content `old`; appends the winning op.
    fn against_copy(
        &mut self,
        page_idx: u64,
        page: &[u8],
        old: &[u8],
        cache: &PageCache,
    ) -> Outcome {
        let ps = self.cfg.page_size;
        let bs = self.cfg.block_size;
        let stages = self.cfg.stages;
        let t = Instant::now();
        self.best.clear();
        let mut best_kind = None;
        if stages.delta {
            match delta::encode(old, page, &mut self.tmp[..ps / 2]) {
                Some(0) => {
                    self.stats.nanos.delta += t.elapsed().as_nanos() as u64;
                    return Outcome::Unchanged;
                }
                Some(n) => {
                    self.best.push(op::DELTA);
                    varint::put(&mut self.best, n as u64);
                    self.best.extend_from_slice(&self.tmp[..n]);
                    best_kind = Some(Kind::Delta);
                    if n <= ps / SMALL_DELTA_DIVISOR && !self.exhaustive {
                        // small: send it; the blocks it touched are the changed ones
                        mark_delta_blocks(&self.tmp[..n], bs, &mut self.changed);
                        for i in self.changed.iter_ones() {
                            self.hashes[i] = self.hasher.hash(&page[i * bs..(i + 1) * bs]);
                        }
                        self.stats.nanos.delta += t.elapsed().as_nanos() as u64;
                        self.emit(page_idx, Kind::Delta, page, old);
                        return Outcome::Sent;
                    }
                }
                None => {}
            }
        } else if page == old {
            return Outcome::Unchanged;
        }
        let t1 = Instant::now();
        self.stats.nanos.delta += (t1 - t).as_nanos() as u64;

        // changed blocks by direct comparison; hash only those
        for (i, (a, b)) in old.chunks_exact(bs).zip(page.chunks_exact(bs)).enumerate() {
            let ch = a != b;
            self.changed.set(i, ch);
            if ch {
                self.hashes[i] = self.hasher.hash(b);
            }
        }
        // the dictionary pass below sees the old page, so it covers kept blocks as matches and
        // nearly always beats a block op made only of kept blocks and literals compressed with
        // the same lz4: when it is going to run, such a block op is left out (and made after all
        // if the dictionary pass does not win). Not with deflate, which may well beat it.
        let dict_planned = stages.dict
            && !self.exhaustive
            && self.cfg.fallback == Fallback::Lz4
            && self.gates.dict.worth_it(self.cfg.link_rate);
        let mut deferred = false;
        if stages.blocks {
            self.classify_blocks(page_idx, page, cache);
            let n = self.pending_blocks;
            // left out: only kept and literal blocks, unless the literals look random beside
            // kept blocks (then the op with the literals as they are is cheap and beats raw)
            deferred =
                dict_planned && n.zero + n.shared == 0 && (self.lits_whole() || !self.lits_random);
            if !deferred {
                self.pack_literals(page);
                if best_kind.is_none() || self.cand.len() < self.best.len() {
                    std::mem::swap(&mut self.cand, &mut self.best);
                    best_kind = Some(Kind::Blocks);
                }
            }
        }
        let t2 = Instant::now();
        self.stats.nanos.blocks += (t2 - t1).as_nanos() as u64;

        // random-looking content (encrypted, compressed) gains nothing from a dictionary or a
        // compressor either, unless it moved: that case is given up for speed
        // the most the left-out block op would take (its literals uncompressed)
        let deferred_bound = if deferred {
            let lits = self.pending_blocks.literal as usize * self.cfg.block_size;
            1 + self.cfg.blocks_per_page().div_ceil(4) + lits
        } else {
            usize::MAX
        };
        let random = if self.exhaustive {
            false
        } else if deferred || stages.blocks && self.lits_whole() {
            self.lits_random // already probed (on the whole page, or on literals beside kept ones)
        } else {
            compress::looks_incompressible(page)
        };
        if stages.dict
            && !random
            && (best_kind.is_none() || self.best.len() > ps / DICT_MIN_DIVISOR || self.exhaustive)
            && self.gate_dict()
        {
            let limit = self.best_budget(ps);
            // credited only with what it saves beyond the left-out block op's bound
            let before = self.best_len_or_raw(ps).min(deferred_bound);
            let mut saved = 0;
            if let Some(n) = self
                .dict_lz4
                .compress_with_dict(page, old, &mut self.tmp[..limit])
            {
                self.best.clear();
                self.best.push(op::DICT);
                varint::put(&mut self.best, n as u64);
                self.best.extend_from_slice(&self.tmp[..n]);
                best_kind = Some(Kind::Dict);
                saved = before.saturating_sub(self.best.len());
            }
            let ns = t2.elapsed().as_nanos() as u64;
            self.gates.dict.record(ns, saved as u64);
        }
        let mut t3 = Instant::now();
        self.stats.nanos.dict += (t3 - t2).as_nanos() as u64;
        let dict_won = best_kind == Some(Kind::Dict) && self.best.len() <= deferred_bound;
        if deferred && !random && !self.lits_whole() && !dict_won {
            // the dictionary pass did not win, or not by enough to be sure it beats the left-out
            // block op: that op after all (a page of new blocks only is compressed whole below);
            // `cand` still holds its map and references
            self.pack_literals(page);
            if best_kind.is_none() || self.cand.len() < self.best.len() {
                std::mem::swap(&mut self.cand, &mut self.best);
                best_kind = Some(Kind::Blocks);
            }
            let t = Instant::now();
            self.stats.nanos.blocks += (t - t3).as_nanos() as u64;
            t3 = t;
        }

        // without blocks (or with nothing found yet), the page compressed whole is the remaining
        // candidate
        if (!stages.blocks || best_kind.is_none() || self.exhaustive)
            && !random
            && self.whole_page(page)
        {
            best_kind = Some(Kind::Whole);
        }
        match best_kind {
            // every block a literal and none compressed: RAW says the same without a block map
            Some(Kind::Blocks) if self.best[0] >> 4 == 0 && self.lits_whole() => {
                self.emit_raw(page_idx, page)
            }
            Some(kind) => self.emit(page_idx, kind, page, old),
            None => self.emit_raw(page_idx, page),
        }
        self.stats.nanos.compress += t3.elapsed().as_nanos() as u64;
        Outcome::Sent
    }

    /// Encodes a page whose last-sent block hashes are `old`: only changed blocks are sent.
    fn against_hashes(
        &mut self,
        page_idx: u64,
        page: &[u8],
        old: &[u64],
        cache: &PageCache,
    ) -> Outcome {
        let t = Instant::now();
        self.hasher
            .hashes(page, self.cfg.block_size, &mut self.hashes);
        let mut any = false;
        for (i, (a, b)) in old.iter().zip(&self.hashes).enumerate() {
            self.changed.set(i, a != b);
            any |= a != b;
        }
        if !any {
            self.stats.nanos.blocks += t.elapsed().as_nanos() as u64;
            return Outcome::Unchanged;
        }
        self.encode_blocks(page_idx, page, cache);
        std::mem::swap(&mut self.cand, &mut self.best);
        self.stats.nanos.blocks += t.elapsed().as_nanos() as u64;
        self.emit(page_idx, Kind::Blocks, page, &[]);
        Outcome::Sent
    }

    /// Encodes a page whose content on the backup is unknown.
    fn fresh(&mut self, page_idx: u64, page: &[u8], cache: &PageCache) -> Outcome {
        let t = Instant::now();
        self.best.clear();
        self.changed.fill(true);
        if self.cfg.stages.blocks {
            self.hasher
                .hashes(page, self.cfg.block_size, &mut self.hashes);
            let special = self.encode_blocks(page_idx, page, cache);
            self.stats.nanos.blocks += t.elapsed().as_nanos() as u64;
            if special {
                std::mem::swap(&mut self.cand, &mut self.best);
                self.emit(page_idx, Kind::Blocks, page, &[]);
            } else {
                // every block is a literal: the literal section is the whole page, compressed
                // (or raw); send it as such rather than compress the page a second time
                let codec = self.cand[0] >> 4;
                let body = 1 + self.cfg.blocks_per_page().div_ceil(4);
                if codec == 0 {
                    self.emit_raw(page_idx, page);
                } else {
                    self.best.clear();
                    self.best.push(op::COMPRESSED | codec << 4);
                    self.best.extend_from_slice(&self.cand[body..]);
                    self.emit(page_idx, Kind::Whole, page, &[]);
                }
            }
            return Outcome::Sent;
        }
        self.changed.fill(false); // nothing hashed: nothing to index
        let t1 = Instant::now();
        if self.whole_page(page) {
            self.emit(page_idx, Kind::Whole, page, &[]);
        } else {
            self.emit_raw(page_idx, page);
        }
        self.stats.nanos.compress += t1.elapsed().as_nanos() as u64;
        Outcome::Sent
    }

    /// Room a new candidate has to beat the best so far (and raw).
    fn best_budget(&self, ps: usize) -> usize {
        let best = if self.best.is_empty() {
            ps
        } else {
            self.best.len().min(ps)
        };
        best.saturating_sub(varint::MAX_LEN + 1).max(1)
    }

    /// Bytes of the best op so far, or of a RAW op when there is none.
    fn best_len_or_raw(&self, ps: usize) -> usize {
        if self.best.is_empty() {
            ps + 2
        } else {
            self.best.len()
        }
    }

    /// Whether to try dictionary compression on this page (adaptive stages).
    fn gate_dict(&mut self) -> bool {
        let open = self.gates.dict.open(self.cfg.link_rate);
        self.stats.skipped_dict += !open as u64;
        open
    }

    /// The fallback compressor on `src` into `tmp[..limit]`, unless the adaptive gate says the
    /// link is faster than compressing; records its cost and saving against sending `src` raw.
    fn compress_gated(
        &mut self,
        src_is_lits: bool,
        page: &[u8],
        limit: usize,
    ) -> Option<(Codec, usize)> {
        if !self.gates.compress.open(self.cfg.link_rate) {
            self.stats.skipped_compress += 1;
            return None;
        }
        let t = Instant::now();
        let src: &[u8] = if src_is_lits { &self.lits } else { page };
        let r = self.engine.compress(src, &mut self.tmp[..limit]);
        let saved = r.map_or(0, |(_, n)| src.len().saturating_sub(n));
        self.gates
            .compress
            .record(t.elapsed().as_nanos() as u64, saved as u64);
        r
    }

    /// Puts the whole page compressed in `best` if that beats what `best` holds; true if it did.
    fn whole_page(&mut self, page: &[u8]) -> bool {
        let limit = self.best_budget(page.len());
        match self.compress_gated(false, page, limit) {
            Some((codec, n)) => {
                self.best.clear();
                self.best.push(op::COMPRESSED | (codec as u8) << 4);
                varint::put(&mut self.best, n as u64);
                self.best.extend_from_slice(&self.tmp[..n]);
                true
            }
            None => false,
        }
    }

    /// Builds a BLOCKS op (tag, block map, references, literals) in `cand` for the blocks marked
    /// in `changed` (the others are kept); `hashes` holds the hashes of the changed blocks.
    /// Returns true if any block is zero or shared (so the op may beat plain compression).
    fn encode_blocks(&mut self, page_idx: u64, page: &[u8], cache: &PageCache) -> bool {
        self.classify_blocks(page_idx, page, cache);
        self.pack_literals(page);
        let n = self.pending_blocks;
        n.zero + n.shared > 0
    }

    /// The first part of a BLOCKS op: tag, block map and references in `cand`, the counts in
    /// `pending_blocks`, the literal blocks gathered in `lits` (left empty when every block is
    /// one: the page is then the literal section) and probed for randomness (`lits_random`).
    fn classify_blocks(&mut self, page_idx: u64, page: &[u8], cache: &PageCache) {
        let bs = self.cfg.block_size;
        let nblocks = self.cfg.blocks_per_page();
        let zero_stage = self.cfg.stages.zero;
        self.cand.clear();
        self.lits.clear();
        self.lits_random = false;
        self.cand.push(op::BLOCKS); // codec added by pack_literals
        let map_at = self.cand.len();
        self.cand.resize(map_at + nblocks.div_ceil(4), 0);
        let mut n = BlockCounts::default();
        for i in 0..nblocks {
            let blk = &page[i * bs..(i + 1) * bs];
            let code = if !self.changed[i] {
                n.kept += 1;
                block::KEEP
            } else if zero_stage && zero::is_zero(blk) {
                n.zero += 1;
                block::ZERO
            } else if let Some((src_page, src_blk)) = self.find_shared(self.hashes[i], blk, cache) {
                let rel = src_page.wrapping_sub(page_idx) as i64;
                varint::put(&mut self.cand, varint::zigzag(rel));
                varint::put(&mut self.cand, src_blk as u64);
                n.shared += 1;
                block::REF
            } else {
                n.literal += 1;
                block::LITERAL
            };
            self.cand[map_at + i / 4] |= code << (2 * (i % 4));
        }
        self.pending_blocks = n;
        // the literal section: the page itself when every block is a literal (most new pages:
        // no staging copy), else the literal blocks gathered
        let whole = self.lits_whole();
        if !whole && n.literal > 0 {
            for i in 0..nblocks {
                if (self.cand[map_at + i / 4] >> (2 * (i % 4))) & 3 == block::LITERAL {
                    self.lits.extend_from_slice(&page[i * bs..(i + 1) * bs]);
                }
            }
        }
        if n.literal > 0 {
            let lits = if whole { page } else { &self.lits[..] };
            self.lits_random = compress::looks_incompressible(lits);
        }
    }

    /// Completes the BLOCKS op `classify_blocks` began in `cand` with its literal section:
    /// compressed, or as it is when random-looking or not compressible.
    fn pack_literals(&mut self, page: &[u8]) {
        let n = self.pending_blocks;
        if n.literal == 0 {
            return;
        }
        let whole = self.lits_whole();
        let len = n.literal as usize * self.cfg.block_size;
        let limit = len.saturating_sub(varint::MAX_LEN + 1).max(1);
        let packed = if self.lits_random {
            None
        } else {
            self.compress_gated(!whole, page, limit)
        };
        match packed {
            Some((codec, len)) => {
                self.cand[0] |= (codec as u8) << 4;
                varint::put(&mut self.cand, len as u64);
                self.cand.extend_from_slice(&self.tmp[..len]);
            }
            None if whole => self.cand.extend_from_slice(page),
            None => self.cand.extend_from_slice(&self.lits),
        }
    }

    /// Whether every block of the last `encode_blocks` was a literal: then `lits` is left empty
    /// and the page itself is the literal section.
    fn lits_whole(&self) -> bool {
        self.pending_blocks.literal as usize == self.cfg.blocks_per_page()
    }

    /// A location the backup holds with exactly `blk`'s content, confirmed byte for byte against
    /// the cached copy; a stale table entry is dropped.
    fn find_shared(&mut self, h: u64, blk: &[u8], cache: &PageCache) -> Option<(u64, usize)> {
        if !self.cfg.stages.sharing {
            return None;
        }
        let bs = self.cfg.block_size;
        let (src_page, src_blk) = self.share.lookup(h)?;
        match cache.peek_full(src_page) {
            Some(src) if &src[src_blk * bs..(src_blk + 1) * bs] == blk => Some((src_page, src_blk)),
            _ => {
                self.share.invalidate(h, src_page, src_blk);
                None
            }
        }
    }

    /// Appends an op's tag and page address to the frame; returns where it starts.
    fn begin_op(&mut self, tag: u8, page_idx: u64) -> usize {
        let start = self.frame.len();
        if self.cfg.stages.entropy {
            self.in_frame.insert(page_idx);
        }
        self.frame.push(tag);
        let rel = page_idx.wrapping_sub(self.prev_page.wrapping_add(1)) as i64;
        varint::put(&mut self.frame, varint::zigzag(rel));
        self.prev_page = page_idx;
        start
    }

    fn finish_op(&mut self, start: usize) -> u64 {
        self.op_count += 1;
        let len = self.frame.len();
        for (sample, &size) in self.samples.iter_mut().zip(&ENTROPY_SAMPLES) {
            if sample.end == 0 && len - HEADER_LEN >= size {
                *sample = Sample {
                    end: len,
                    lit_ctx: self.lit_ctx_ok.then_some(self.lit_ctx_len),
                };
            }
        }
        (len - start) as u64
    }

    /// The sample the entropy gate measures a frame of `payload` bytes on, if it is large enough
    /// to have one (see [`ENTROPY_SAMPLES`]).
    fn sample_for(&self, payload: u64) -> Option<Sample> {
        self.samples
            .iter()
            .zip(&ENTROPY_SAMPLES)
            .rev()
            .find(|(s, &size)| s.end > 0 && payload >= 4 * size as u64)
            .map(|(s, _)| *s)
    }

    /// Entropy-codes the frame's ops up to `end` (with the first `lit_ctx` literal contexts, if
    /// any) into `coded` after a header's room; the length of `coded`, or `None` when the ops
    /// do not route (never for the encoder's own).
    fn entropy_code(&mut self, end: usize, lit_ctx: Option<usize>) -> Option<usize> {
        self.coded.clear();
        self.coded.resize(HEADER_LEN, 0);
        let r = self.entropy.encode(
            &self.frame[HEADER_LEN..end],
            self.cfg.page_size,
            self.cfg.block_size,
            lit_ctx.map(|n| &self.lit_ctx[..n]),
            &mut self.coded,
        );
        debug_assert_eq!(r, Ok(()), "the encoder's own payload routes");
        debug_assert!(
            !self.entropy.contexts_mismatched(),
            "the encoder's literal contexts match its ops"
        );
        r.ok().map(|()| self.coded.len())
    }

    /// Appends the op held in `best` (tag byte, then body) for `page_idx`, whose content is
    /// `page` and (for a DICT op) whose dictionary is `old`; notes the contexts of its lz4
    /// literals.
    fn emit(&mut self, page_idx: u64, kind: Kind, page: &[u8], old: &[u8]) {
        if self.cfg.stages.entropy {
            self.note_contexts(page_idx, kind, page, old);
        }
        let start = self.begin_op(self.best[0], page_idx);
        self.frame.extend_from_slice(&self.best[1..]);
        let n = self.finish_op(start);
        let s = &mut self.stats;
        match kind {
            Kind::Delta => count(&mut s.delta, n),
            Kind::Dict => count(&mut s.dict, n),
            Kind::Whole => count(&mut s.compressed, n),
            Kind::Blocks => {
                count(&mut s.blocks, n);
                let b = self.pending_blocks;
                s.zero_blocks += b.zero;
                s.shared_blocks += b.shared;
                s.kept_blocks += b.kept;
                s.literal_blocks += b.literal;
            }
        }
    }

    /// Appends to `lit_ctx` the contexts of the literals of the lz4 block `best` holds, if any.
    fn note_contexts(&mut self, page_idx: u64, kind: Kind, page: &[u8], old: &[u8]) {
        if !self.lit_ctx_ok {
            return;
        }
        let codec = self.best[0] >> 4;
        let mut pos = 1;
        let (dict, out): (&[u8], &[u8]) = match kind {
            Kind::Dict if self.in_frame.contains(page_idx) => {
                self.lit_ctx_ok = false;
                return;
            }
            Kind::Dict => (old, page),
            Kind::Whole if codec == Codec::Lz4 as u8 => (&[], page),
            Kind::Blocks if codec == Codec::Lz4 as u8 => {
                // skip the block map and the references
                let nblocks = self.cfg.blocks_per_page();
                pos += nblocks.div_ceil(4);
                let refs = self.pending_blocks.shared;
                for _ in 0..2 * refs {
                    varint::get(&self.best, &mut pos);
                }
                (
                    &[],
                    if self.lits_whole() {
                        page
                    } else {
                        &self.lits[..]
                    },
                )
            }
            _ => return,
        };
        let Some(n) = varint::get(&self.best, &mut pos) else {
            debug_assert!(false, "an op of our own has its body length");
            return;
        };
        let block = &self.best[pos..pos + n as usize];
        let need = self.lit_ctx_len + out.len() + context::CONTEXT_SLACK;
        if self.lit_ctx.len() < need {
            self.lit_ctx.resize(need.max(2 * self.lit_ctx.len()), 0);
        }
        self.lit_ctx_len += context::lz4_literal_contexts_into(
            block,
            dict,
            out,
            &mut self.lit_ctx[self.lit_ctx_len..],
        );
    }

    fn emit_raw(&mut self, page_idx: u64, page: &[u8]) {
        let start = self.begin_op(op::RAW, page_idx);
        self.frame.extend_from_slice(page);
        let n = self.finish_op(start);
        count(&mut self.stats.raw, n);
    }
}

/// Marks in `changed` the blocks a delta stream writes to.
fn mark_delta_blocks(stream: &[u8], bs: usize, changed: &mut BlockBitmap) {
    changed.fill(false);
    let mut pos = 0;
    let mut at = 0usize;
    while pos < stream.len() {
        let (Some(skip), Some(len)) =
            (varint::get(stream, &mut pos), varint::get(stream, &mut pos))
        else {
            break;
        };
        at += skip as usize;
        let end = at + len as usize;
        for b in at / bs..end.div_ceil(bs) {
            changed.set(b, true);
        }
        pos += len as usize;
        at = end;
    }
}
