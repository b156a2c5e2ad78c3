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

mod blocks;
mod choose;
mod contention;
pub mod gates;
mod in_place;
mod run;
mod stopwatch;
mod tick;
mod writer;

pub use in_place::FrameParts;

use crate::compress::{Engine, Lz4};
use crate::config::{Config, Fallback};
use crate::error::Error;
use crate::format::{self, op, varint, HEADER_LEN};
use crate::stages::bitmap::{BlockBitmap, PageSet};
use crate::stages::cache::{Cached, PageCache, Policy};
use crate::stages::share::{self, ShareTable};
use crate::stages::{self, delta, hash, zero};
use crate::stats::{EncoderStats, OpCount};
use blocks::BlockCounts;
use choose::Held;
use gates::{Gates, Verdict};
use run::Offer;
use std::time::Instant;
use tick::Tick;
use writer::{FrameWriter, Part};

/// Largest guest address the encoder accepts (exclusive): 2^60 bytes.
pub const MAX_GUEST_ADDR: u64 = 1 << 60;

/// A delta at most this fraction of the page (1/N) is sent without trying anything else.
const SMALL_DELTA_DIVISOR: usize = 32;

/// Dictionary compression is tried only when the best op so far exceeds this fraction of the page
/// (1/N): when XOR and changed blocks already do very well, the dictionary pass (an lz4 run over
/// the old and the new page) costs more than it could save. Deltas of 128-512 bytes still go
/// through it: lz4 with the old page codes them smaller where new values repeat across the page
/// (LRU clocks, counters); at 1/32 the cheap choice stays within 0.1% of trying everything
/// (`fgbi eval --exhaustive`, Redis trace).
const DICT_MIN_DIVISOR: usize = 32;

/// The zero test is timed on one page in this many and its time counter scaled by as much: two
/// clock reads cost about what the test costs on a page that is not zero.
const ZERO_TIMED_EVERY: u64 = 16;

/// With a link rate, whether the encoder is ahead of the link is asked again every this many
/// pages (it changes slowly; a clock read per page would be a tenth of a RAW page's cost).
const AHEAD_CHECKED_EVERY: u64 = 8;

/// Ahead of the link the block work on a cached page is forced only where it pays at this
/// fraction (1/N) of the link rate: the lead makes time cheaper, not free. Forced wherever it
/// cost under a RAW page's link time, block work on cached pages that saved nothing beyond
/// their deltas took the lead it found and left the encoder behind (proc-node at 10 Gbit/s,
/// 7-9% later in one round of three or four). Not on new pages: there the block work also
/// spares the page's compression, which its gate is not credited with (mariadb-oltp at 1
/// Gbit/s shipped 8% later with the rule on every page, 5% with it on cached pages only).
const AHEAD_DISCOUNT: u64 = 4;

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
    /// Try every encoding on every page (see [`Encoder::set_exhaustive`]).
    exhaustive: bool,
    hasher: hash::BlockHasher,
    /// Blocks the backup holds, by hash (the sharing stage).
    share: ShareTable,
    /// Pages the backup holds as all zeros (sent as ZERO since the last resync).
    zero_pages: PageSet,
    /// The fallback compressor, and lz4 with the old page as dictionary.
    engine: Engine,
    dict_lz4: Lz4,
    /// Decisions of the adaptive stages (with a link rate).
    gates: Gates,
    /// How far the epoch's encoding so far is ahead of its frames so far on the link (see
    /// [`Epochs::lead`]): ahead, the link decides when the frames arrive, so stages may spend
    /// the encoder's spare time, the cheapest per byte saved first.
    lead: Lead,
    /// The link rate the page gates (analysis, blocks, dictionary, compressor) judge their
    /// stages at: the link's own while the encoder is ahead of it or no epoch is open; behind
    /// it, the link's times `(encoding time / link time)^`[`GATE_RATE_EXPONENT`] of the epoch
    /// so far, at most [`GATE_RATE_MAX_FACTOR`] times the link's. Encoding and sending overlap,
    /// so what the epoch waits for is the longer of the two: behind the link, a stage must save
    /// that factor more link time than it costs, so the stages that save little per nanosecond
    /// (a page compressed whole at 10 Gbit/s) go first and the XOR delta against a cached copy
    /// stays while it saves enough.
    gate_rate: u64,
    /// Whether the page being encoded gets its block work (hashing, BLOCKS ops, sharing): the
    /// blocks stage is on and, with a link rate, its gate lets it.
    blocks_open: bool,
    /// Whether a gated stage inside the analysis (block work, dictionary, compressor) ran on
    /// the page being encoded only to be measured (its warm-up or a probe of its closed gate).
    /// Such a page is not a sample of the analysis gate: the probe's cost and saving are the
    /// probed stage's, and charged to the analysis they would hold it shut (a 5-15 us probe
    /// per 32 pages doubled the 1.4 us of a delta against a cached copy at 10 Gbit/s).
    probing: bool,
    /// Whether the page being encoded was given by [`Encoder::add_page_in_place`]: sent RAW, it
    /// may stay where the caller holds it.
    page_in_place: bool,
    epochs: Epochs,
    /// The calling thread's waits for a core, read at each epoch's start and end (with a link
    /// rate): whether the machine is busy ([`Epochs::busy`]).
    run_queue: contention::RunQueue,
    page: Scratch,
    /// Pages waiting to be compressed together ([`run`]).
    run: run::Run,
    out: FrameWriter,
    stats: EncoderStats,
    /// `stats` when the current (or last) epoch began.
    epoch_start: EncoderStats,
    /// When the page's last timed step ended: the clock read that ends one step begins the
    /// next (a small delta costs three reads, not six; at 10 Gbit/s they were a tenth of the
    /// encoder's time).
    clock: Tick,
}

/// How far the encoder is ahead of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Lead {
    /// Behind (or no link rate): each stage must pay for itself (the gates, at a rate raised by
    /// the factor the encoder is behind; see [`Work::gate_rate`]).
    Behind,
    /// Ahead: the analysis, the block work and the compressor run wherever their average cost
    /// is at most a RAW page's link time (see [`Work::lead_forces`]), elsewhere as their gates
    /// say at the link's rate, as does the dictionary; entropy coding runs when the slack left
    /// covers it (see `entropy_fits_slack`).
    Ahead,
    /// More than twice as fast as the link so far, counting the time the open frame's entropy
    /// coding will take as spent: every stage runs. (Entropy coding saves far more bytes per
    /// nanosecond than what only far ahead runs, libfgbi's own lz4 parse: 25-30% of a frame
    /// against 3-6%; the lead goes to it first.)
    FarAhead,
}

/// The most the page gates' link rate exceeds the link's while the encoder is behind it (see
/// [`Work::gate_rate`]), reached 1.59 times behind (`16^(1/GATE_RATE_EXPONENT)`): farther
/// behind, the probes of closed gates still find a stage that pays at 16 times the link's rate.
const GATE_RATE_MAX_FACTOR: f64 = 16.0;

/// The power of `encoding time / link time` by which the page gates' link rate exceeds the
/// link's while the encoder is behind it (see [`Work::gate_rate`]). A stage whose saving is `r`
/// times its cost in link time keeps running until the encoder is `r^(1/GATE_RATE_EXPONENT)`
/// times behind, so the steeper the power, the nearer the link's pace the encoder settles: a
/// compressor that saves twice its cost (whole pages at 2.5 Gbit/s) runs until the encoder is
/// 12% behind at the sixth power, 41% at the square (ship times: docs/performance.md).
const GATE_RATE_EXPONENT: i32 = 6;

/// Where the encoder is in its sequence of epochs.
#[derive(Debug, Clone, Copy)]
struct Epochs {
    /// When the open epoch began (with a link rate).
    started: Option<Instant>,
    /// The caller's time since then between a part of the epoch closing and the next frame
    /// starting (sending the part, or waiting for the link): not the encoder's, in ns.
    away_ns: f64,
    /// When the last part of the open epoch closed, until the next frame starts.
    closed_at: Option<Instant>,
    /// The epoch open now.
    epoch: Option<u64>,
    /// The last epoch ended.
    last: Option<u64>,
    /// The next frame is a resync frame.
    resync_pending: bool,
    /// Whether the thread waited for a core a large share of its recent epochs
    /// ([`contention::RunQueue::busy`]): its lead on the link is then not spent (see
    /// [`lead`](Self::lead)).
    busy: bool,
}

impl Epochs {
    /// The open epoch's encoding time so far and the time `payload` bytes (its frames so far)
    /// take on a link of `link_rate` bytes per second, in nanoseconds; `None` without an open
    /// epoch or a link rate.
    fn spent_and_link_ns(&self, payload: usize, link_rate: u64) -> Option<(f64, f64)> {
        let t = self.started.filter(|_| link_rate > 0)?;
        let spent = t.elapsed().as_nanos() as f64 - self.away_ns;
        Some((spent, payload as f64 * 1e9 / link_rate as f64))
    }

    /// A part of the open epoch closed: the caller's time from now on, until the next frame
    /// starts ([`resumed`](Self::resumed)), is not the encoder's.
    fn part_closed(&mut self) {
        if self.started.is_some() {
            self.closed_at = Some(Instant::now());
        }
    }

    /// The next frame of the open epoch starts: the time since its part closed was the caller's.
    fn resumed(&mut self) {
        if let Some(t) = self.closed_at.take() {
            self.away_ns += t.elapsed().as_nanos() as f64;
        }
    }

    /// How the open epoch's encoding time so far compares with the time `payload` bytes (its
    /// frames so far) take on a link of `link_rate` bytes per second. Encoding and sending
    /// overlap, so while the encoder is ahead of the link a stage's time costs nothing and its
    /// saved bytes arrive sooner; behind it, each stage must pay for itself (the gates).
    /// `keep_ns` is time kept for the open frame's entropy coding: counted as spent when judging
    /// [`Lead::FarAhead`], not the others.
    /// Also returns the link rate the page gates judge at (see [`Work::gate_rate`]): behind,
    /// `link_rate * (encoding time / link time)^`[`GATE_RATE_EXPONENT`], at most
    /// [`GATE_RATE_MAX_FACTOR`] times `link_rate`; `link_rate` ahead or without an open epoch.
    /// On a busy machine (`busy`) the encoder is never [`Lead::FarAhead`]: its spare time is
    /// other threads' (see [`contention`]).
    fn lead(&self, payload: usize, link_rate: u64, keep_ns: f64) -> (Lead, u64) {
        match self.spent_and_link_ns(payload, link_rate) {
            Some((spent, link)) if 2.0 * (spent + keep_ns) < link && !self.busy => {
                (Lead::FarAhead, link_rate)
            }
            Some((spent, link)) if spent < link => (Lead::Ahead, link_rate),
            Some((spent, link)) => {
                let behind = spent / link.max(1.0);
                // at least 1: a gate rate of 0 would mean no link limit
                let factor = behind
                    .powi(GATE_RATE_EXPONENT)
                    .clamp(1.0, GATE_RATE_MAX_FACTOR);
                (Lead::Behind, (link_rate as f64 * factor) as u64)
            }
            None => (Lead::Behind, link_rate),
        }
    }

    /// Whether `extra_ns` more of encoding still leaves the open epoch's encoding done before
    /// its frames so far (`payload` bytes) are through a link of `link_rate` bytes per second:
    /// encoding and sending overlap, so such work delays nothing. Never on a busy machine
    /// (`busy`): there it delays the threads the encoder's thread waits for.
    fn slack_covers(&self, payload: usize, link_rate: u64, extra_ns: f64) -> bool {
        !self.busy
            && self
                .spent_and_link_ns(payload, link_rate)
                .is_some_and(|(spent, link)| spent + extra_ns <= link)
    }
}

/// One page's candidate ops and what they found, allocated once.
struct Scratch {
    /// Block hashes of the page (of its changed blocks, when it was compared with a copy).
    hashes: Vec<u64>,
    /// Blocks that differ from what the backup holds.
    changed: BlockBitmap,
    /// The BLOCKS op being built.
    block_op: Vec<u8>,
    /// The smallest op so far: tag byte, then body.
    best: Vec<u8>,
    /// The literal blocks of `block_op`, gathered (empty when every block is one).
    literals: Vec<u8>,
    /// Output of a codec, before it becomes a candidate's body.
    body: Vec<u8>,
    /// What the blocks of `block_op` are.
    blocks: BlockCounts,
    /// Whether the literals of `block_op` looked incompressible.
    literals_random: bool,
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

/// A stopwatch whose laps are charged to the stages' time counters ([`EncoderStats::nanos`]); it
/// starts from the encoder's last clock read ([`Work::clock`]) rather than reading the clock.
struct Lap(Tick);

impl Lap {
    /// Adds the time since the last lap to `counter` and starts the next lap.
    fn to(&mut self, counter: &mut u64) {
        let now = Tick::now();
        *counter += now.ns_since(self.0);
        self.0 = now;
    }
}

fn count(c: &mut OpCount, bytes: u64) {
    c.pages += 1;
    c.bytes += bytes;
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("config", &self.w.cfg)
            .field("stream_id", &format_args!("{:#x}", self.w.out.stream_id))
            .field("epoch", &self.w.epochs.epoch)
            .field("last_epoch", &self.w.epochs.last)
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
        // the pages' clock is calibrated before the first page is timed
        tick::calibrate();
        let (full_pages, share_entries) = full_tier_pages(&cfg);
        let hash_pages = if cfg.stages.blocks {
            cfg.hash_bytes / PageCache::hash_cost(cfg.page_size, cfg.block_size)
        } else {
            0
        };
        let nblocks = cfg.blocks_per_page();
        let ps = cfg.page_size;
        let cache = PageCache::new(ps, cfg.block_size, full_pages, hash_pages, policy, seed)?;
        let mut out = FrameWriter::new(stream_id, cfg.stages.entropy, ps);
        // epochs in parts: the frame buffers are bounded, so they are reserved now
        out.reserve(cfg.frame_payload_limit().unwrap_or(0), cfg.stages.entropy)?;
        Ok(Encoder {
            cache,
            zeros: vec![0; ps],
            w: Work {
                cfg,
                exhaustive: false,
                hasher: hash::BlockHasher::new(seed),
                share: ShareTable::try_with_capacity(share_entries)?,
                zero_pages: PageSet::default(),
                engine: Engine::with_input_len(cfg.fallback, ps.max(format::MAX_RUN_BYTES)),
                dict_lz4: Lz4::with_input_len(ps),
                gates: Gates::default(),
                lead: Lead::Behind,
                gate_rate: cfg.link_rate,
                blocks_open: cfg.stages.blocks,
                probing: false,
                page_in_place: false,
                epochs: Epochs {
                    started: None,
                    away_ns: 0.0,
                    closed_at: None,
                    epoch: None,
                    last: None,
                    resync_pending: true,
                    busy: false,
                },
                page: Scratch {
                    hashes: vec![0; nblocks],
                    changed: BlockBitmap::zeros(nblocks),
                    block_op: Vec::with_capacity(2 * ps + 64),
                    best: Vec::with_capacity(2 * ps + 64),
                    literals: Vec::with_capacity(ps),
                    body: vec![0; delta::max_encoded_len(ps).max(ps)],
                    blocks: BlockCounts::default(),
                    literals_random: false,
                },
                run: run::Run::new(&cfg)?,
                out,
                stats: EncoderStats::default(),
                epoch_start: EncoderStats::default(),
                clock: Tick::now(),
                run_queue: contention::RunQueue::default(),
            },
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.w.cfg
    }

    /// The stream id written in every frame (random per encoder).
    pub fn stream_id(&self) -> u64 {
        self.w.out.stream_id
    }

    /// Sets the stream id (e.g. to number parallel channels). Takes effect from the next frame.
    pub fn set_stream_id(&mut self, id: u64) {
        self.w.out.stream_id = id;
    }

    /// The last epoch ended, if any.
    pub fn last_epoch(&self) -> Option<u64> {
        self.w.epochs.last
    }

    /// Starts epoch `epoch`. After creation or [`resync`](Self::resync) any epoch above the last
    /// one is accepted; otherwise it must be the last epoch plus one.
    pub fn begin_epoch(&mut self, epoch: u64) -> Result<(), Error> {
        let w = &mut self.w;
        if w.epochs.epoch.is_some() {
            return Err(Error::State("begin_epoch while an epoch is open"));
        }
        if let Some(last) = w.epochs.last {
            let ok = if w.epochs.resync_pending {
                epoch > last
            } else {
                Some(epoch) == last.checked_add(1)
            };
            if !ok {
                return Err(Error::EpochOrder { last, got: epoch });
            }
        }
        w.epochs.epoch = Some(epoch);
        if w.cfg.link_rate > 0 {
            w.run_queue.begin();
        }
        w.epochs.busy = w.run_queue.busy();
        w.epochs.started = (w.cfg.link_rate > 0).then(Instant::now);
        w.epochs.away_ns = 0.0;
        w.epochs.closed_at = None;
        w.start_frame();
        w.out.epoch_bytes_closed = 0;
        w.out.parts_closed = 0;
        w.lead = Lead::Behind;
        w.gate_rate = w.cfg.link_rate;
        self.w.epoch_start = self.stats();
        Ok(())
    }

    /// Adds the dirty page at guest address `addr` (a multiple of the page size). The same page
    /// may be added more than once in an epoch; the backup ends with the last version. With
    /// [`Config::frame_bytes`] or [`Config::frame_pages`] the page may close a part of the epoch:
    /// take it with
    /// [`take_frame`](Self::take_frame) before the next call (until then this returns
    /// [`Error::State`] and adds nothing).
    pub fn add_page(&mut self, addr: u64, page: &[u8]) -> Result<(), Error> {
        let w = &self.w;
        if w.epochs.epoch.is_none() {
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
                op: w.out.op_count,
                addr,
            });
        }
        match w.out.part {
            Part::Open => {}
            Part::Waiting => {
                return Err(Error::State("add_page before the finished frame was taken"))
            }
            Part::Taken => {
                self.w.epochs.resumed();
                self.w.start_frame()
            }
        }
        if self.w.out.op_count == u32::MAX {
            return Err(Error::State("too many ops in one frame"));
        }
        self.w.out.room_for_op(ps)?;
        self.encode_page(addr / ps as u64, page);
        let w = &mut self.w;
        if w.early_measure_due() {
            w.measure_early();
        }
        w.out.pages_in_frame += 1;
        let (bytes, pages) = (w.cfg.frame_bytes, w.cfg.frame_pages);
        // a pending run is written before its pages at RAW size could take the payload past
        // `frame_bytes` (so a part stays under `frame_bytes` plus one RAW op)
        if bytes > 0 && w.out.len() - HEADER_LEN + w.run.raw_bytes(ps) >= bytes {
            w.flush_run(true);
        }
        if (bytes > 0 && w.out.len() - HEADER_LEN >= bytes)
            || (pages > 0 && w.out.pages_in_frame >= pages)
        {
            let epoch = w.epochs.epoch.expect("checked above");
            w.close_frame(epoch, true);
            w.out.part = Part::Waiting;
            w.epochs.part_closed();
        }
        Ok(())
    }

    /// [`add_page`](Self::add_page) for a sender whose pages stay put until their frame is sent
    /// (a checkpoint's staged copy of the dirty pages, a paused guest): a page the encoder sends
    /// RAW is not copied into the frame but left where `page` lies, and the frame refers to it.
    /// [`take_frame_parts`](Self::take_frame_parts) and
    /// [`end_epoch_parts`](Self::end_epoch_parts) hand the frame out as pieces for a vectored send
    /// (the encoder's buffer between such pages, and the pages); [`take_frame`](Self::take_frame)
    /// and [`end_epoch`](Self::end_epoch) copy the pages in and return the frame whole. Pages are
    /// not left in place in frames the entropy stage is going to code (without a link rate, or
    /// where coding pays; a frame coded after all has them copied in first); a page sent any
    /// other way is read during the call, as `add_page` reads it. Where the link is as fast as memory, the copy this saves
    /// is most of the encoder's time (at 100 Gbit/s on the real traces, about a quarter of it).
    ///
    /// The frame's bytes are the same whichever way its pages were added.
    ///
    /// # Safety
    /// The `page_size` bytes at `page` must stay valid and unchanged until the frame they went
    /// into has been handed out and sent: until the call on the encoder that follows the
    /// `take_frame*` or `end_epoch*` call returning that frame (or until the encoder is dropped).
    /// The encoder reads them again when it closes the frame (for its checksum) and while the
    /// caller reads the frame's pieces. A page that changes in between makes the frame's checksum
    /// wrong (the backup refuses the frame); one that is freed is a use after free.
    pub unsafe fn add_page_in_place(&mut self, addr: u64, page: &[u8]) -> Result<(), Error> {
        self.w.page_in_place = true;
        let r = self.add_page(addr, page);
        self.w.page_in_place = false;
        r
    }

    /// The part of the epoch the last [`add_page`](Self::add_page) closed, if one waits: with
    /// [`Config::frame_bytes`] set, call it after every `add_page` and send the frame before the
    /// next call on the encoder (it is valid until then). The frame carries the epoch's number and
    /// says that the epoch goes on; the frame [`end_epoch`](Self::end_epoch) returns ends it. A
    /// decoder applies the parts in order as they arrive. Pages added in place are copied into
    /// the frame first.
    pub fn take_frame(&mut self) -> Option<&[u8]> {
        let out = &mut self.w.out;
        // (room for the copy is made when a page is left in place: no error here)
        if out.part != Part::Waiting || out.gather().is_err() {
            return None;
        }
        out.part = Part::Taken;
        Some(&out.frame)
    }

    /// [`take_frame`](Self::take_frame) as the pieces of a vectored send: the pages added with
    /// [`add_page_in_place`](Self::add_page_in_place) and sent RAW are pieces of their own, where
    /// the caller holds them (nothing is copied).
    pub fn take_frame_parts(&mut self) -> Option<FrameParts<'_>> {
        let out = &mut self.w.out;
        if out.part != Part::Waiting {
            return None;
        }
        out.part = Part::Taken;
        Some(out.parts())
    }

    /// Ends the epoch and returns its frame, valid until the next call on the encoder. Pages
    /// added in place are copied into the frame first.
    pub fn end_epoch(&mut self) -> Result<&[u8], Error> {
        self.close_epoch()?;
        let out = &mut self.w.out;
        // (room for the copy is made when a page is left in place: no error here)
        out.gather()?;
        Ok(&out.frame)
    }

    /// [`end_epoch`](Self::end_epoch) as the pieces of a vectored send (see
    /// [`take_frame_parts`](Self::take_frame_parts)).
    pub fn end_epoch_parts(&mut self) -> Result<FrameParts<'_>, Error> {
        self.close_epoch()?;
        Ok(self.w.out.parts())
    }

    /// Ends the open epoch with its last frame.
    fn close_epoch(&mut self) -> Result<(), Error> {
        let w = &mut self.w;
        let Some(epoch) = w.epochs.epoch else {
            return Err(Error::State("end_epoch without begin_epoch"));
        };
        match w.out.part {
            Part::Open => {}
            Part::Waiting => {
                return Err(Error::State(
                    "end_epoch before the finished frame was taken",
                ))
            }
            Part::Taken => {
                w.epochs.resumed();
                w.start_frame()
            }
        }
        w.epochs.epoch = None;
        w.close_frame(epoch, false);
        if w.cfg.link_rate > 0 {
            w.run_queue.end();
        }
        w.epochs.last = Some(epoch);
        w.stats.epochs += 1;
        Ok(())
    }

    /// The frame of the last ended epoch (the one [`end_epoch`](Self::end_epoch) returned), until
    /// the next epoch begins; empty before the first, while an epoch is open, and when the
    /// epoch ended with [`end_epoch_parts`](Self::end_epoch_parts) leaving pages in place (see
    /// [`last_frame_parts`](Self::last_frame_parts)).
    pub fn last_frame(&self) -> &[u8] {
        let parts = self.last_frame_parts();
        match parts.clone().next() {
            Some(whole) if whole.len() == parts.len() => whole,
            _ => &[],
        }
    }

    /// The frame of the last ended epoch as the pieces of a vectored send, whichever way it was
    /// handed out (see [`last_frame`](Self::last_frame)); no pieces where that has none.
    pub fn last_frame_parts(&self) -> FrameParts<'_> {
        if self.w.epochs.epoch.is_some() || self.w.epochs.last.is_none() {
            return self.w.out.no_parts();
        }
        self.w.out.parts()
    }

    /// Forgets everything the encoder knows of the backup (caches, sharing table, zero pages):
    /// the next frame is a resync frame that depends on nothing the backup held, and may carry
    /// any epoch number above the last. Call it when the backup is replaced or a frame was lost,
    /// then add every page of memory in the next epoch. An epoch in progress is abandoned.
    pub fn resync(&mut self) {
        self.cache.clear();
        self.w.share.clear();
        self.w.zero_pages.clear();
        let e = &mut self.w.epochs;
        if let Some(open) = e.epoch.take() {
            if self.w.out.parts_closed > 0 {
                // parts of it went out: the backup may have applied them, so the resync frame
                // must carry a later epoch
                e.last = Some(open);
            }
        }
        e.resync_pending = true;
        self.w.out.part = Part::Open;
        self.w.run.clear();
        // the abandoned frame's pages in place are the caller's again
        self.w.out.drop_pages_in_place();
    }

    /// The backup now holds zeros in the `len` bytes from `addr`, written there by another path
    /// than this encoder's frames (zero pages a hypervisor sends itself, a region reset to zeros).
    /// The encoder then sends nothing for those pages while they stay zero, and deltas their next
    /// content against zeros. `addr` and `len` are multiples of the page size.
    ///
    /// A note on a page this encoder has not sent since the last resync (or no longer holds in
    /// its caches) only makes it forget the page: the decoder accepts an op that depends on a page
    /// only when that page came in its own stream.
    ///
    /// A note takes effect between frames: call it outside an epoch, or right after
    /// [`begin_epoch`](Self::begin_epoch) or [`take_frame`](Self::take_frame) before the next
    /// page. The backup must apply the change after every frame taken before the note and before
    /// any frame taken after it ([`Error::State`] mid-frame, nothing changed).
    pub fn note_zero(&mut self, addr: u64, len: u64) -> Result<(), Error> {
        let pages = self.note_range(addr, len)?;
        for p in pages {
            let sent = self.sent(p);
            self.cache.remove(p);
            if sent && self.w.cfg.stages.zero {
                // unrecorded (no memory for the set to grow), the page is sent when added
                self.w.zero_pages.try_insert(p);
            }
        }
        Ok(())
    }

    /// Whether the encoder knows page `p` as sent in this stream since the last resync (in a
    /// cache tier or as a zero page): the decoder accepts ops that depend on such pages only.
    fn sent(&self, p: u64) -> bool {
        self.cache.holds(p) || self.w.zero_pages.contains(p)
    }

    /// The backup may no longer hold what this encoder sent for the `len` bytes from `addr` (a
    /// discarded region, memory the backup reset or wrote by another path with content the
    /// encoder does not know): their next versions are sent without reference to any old content,
    /// and no other page refers to their blocks. The same rules as for
    /// [`note_zero`](Self::note_zero).
    pub fn forget(&mut self, addr: u64, len: u64) -> Result<(), Error> {
        let pages = self.note_range(addr, len)?;
        for p in pages {
            self.cache.remove(p);
            self.w.zero_pages.remove(p);
        }
        Ok(())
    }

    /// The backup now holds `page` at `addr`, sent there by another path: the encoder keeps a copy
    /// (within its cache budget) and deltas the page's next version against it. The same rules as
    /// for [`note_zero`](Self::note_zero).
    pub fn note_page(&mut self, addr: u64, page: &[u8]) -> Result<(), Error> {
        let ps = self.w.cfg.page_size;
        if page.len() != ps {
            return Err(Error::PageLength {
                expected: ps,
                got: page.len(),
            });
        }
        if self.w.cfg.stages.zero && zero::is_zero(page) {
            return self.note_zero(addr, ps as u64);
        }
        let mut pages = self.note_range(addr, ps as u64)?;
        let p = pages.next().expect("one page");
        let sent = self.sent(p);
        self.w.zero_pages.remove(p);
        if sent && self.cache.full_capacity() > 0 {
            self.cache.store_copy(p, page);
        } else {
            self.cache.remove(p);
        }
        Ok(())
    }

    /// The page indices of a noted range, once the range and the moment are checked.
    fn note_range(&self, addr: u64, len: u64) -> Result<std::ops::Range<u64>, Error> {
        let w = &self.w;
        let mid_frame = w.epochs.epoch.is_some()
            && match w.out.part {
                // (a page waiting in the run is an op to come)
                Part::Open => w.out.op_count > 0 || !w.run.is_empty(),
                Part::Waiting => true,
                Part::Taken => false,
            };
        if mid_frame {
            return Err(Error::State(
                "a note on the backup's content between ops of a frame (note between frames)",
            ));
        }
        let ps = w.cfg.page_size as u64;
        if !addr.is_multiple_of(ps) {
            return Err(Error::Unaligned(addr));
        }
        if !len.is_multiple_of(ps) {
            return Err(Error::RangeLength(len));
        }
        match addr.checked_add(len) {
            Some(end) if end <= MAX_GUEST_ADDR => Ok(addr / ps..end / ps),
            _ => Err(Error::OutOfBounds {
                op: w.out.op_count,
                addr: addr.saturating_add(len),
            }),
        }
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
        s.memory_bytes =
            (caches + self.w.zero_pages.memory_bytes() + self.w.out.memory_bytes()) as u64;
        s
    }

    /// Counters of the current epoch, or of the last one once it has ended.
    pub fn epoch_stats(&self) -> EncoderStats {
        self.stats().since(&self.w.epoch_start)
    }

    fn encode_page(&mut self, page_idx: u64, page: &[u8]) {
        let w = &mut self.w;
        let ps = w.cfg.page_size;
        w.run.page_began();
        w.stats.pages_in += 1;
        w.stats.bytes_in += ps as u64;
        let t = w
            .stats
            .pages_in
            .is_multiple_of(ZERO_TIMED_EVERY)
            .then(Tick::now);
        let zero_time = |t: Option<Tick>| t.map_or(0, |t| t.elapsed_ns() * ZERO_TIMED_EVERY);

        // the cache is asked about the page after the zero test, and dirty pages often come in
        // runs: the next page's lookup is started now too
        self.cache.prefetch(page_idx);
        self.cache.prefetch(page_idx + 1);
        // every path reads the whole page, and scattered dirty pages defeat the hardware
        // prefetcher at each page boundary: all its lines are asked for at once (at 100 Gbit/s,
        // zero test and checksum only, 6.0 -> 8.0 GB/s on py-sqlite)
        stages::prefetch(page);
        if w.cfg.stages.zero && zero::is_zero(page) {
            w.stats.nanos.zero += zero_time(t);
            if w.zero_pages.contains(page_idx) {
                w.stats.unchanged += 1;
                return;
            }
            // a ZERO op may go before the pending run unless the run holds its page
            if w.run.holds(page_idx) {
                w.flush_run(true);
            }
            let start = w.out.begin_op(op::ZERO, page_idx);
            let n = w.out.finish_op(start);
            count(&mut w.stats.zero, n);
            self.cache.remove(page_idx);
            // unrecorded (no memory for the set to grow), the page is just sent again next time
            w.zero_pages.try_insert(page_idx);
            return;
        }
        let was_zero = w.cfg.stages.zero && w.zero_pages.contains(page_idx);
        if was_zero {
            w.zero_pages.remove(page_idx);
        }
        w.stats.nanos.zero += zero_time(t);

        // With a link rate, the analysis of the page (delta, blocks, sharing) runs only while
        // what it saves takes longer on the link than it costs (at the gates' rate, which the
        // encoder's deficit on the link raises), or while the encoder is ahead of the link
        if w.cfg.link_rate > 0 && w.stats.pages_in.is_multiple_of(AHEAD_CHECKED_EVERY) {
            let payload = w.out.epoch_bytes_closed + w.out.len() - HEADER_LEN;
            let keep = if w.cfg.stages.entropy {
                w.out.plain_allowance_ns()
            } else {
                0.0
            };
            (w.lead, w.gate_rate) = w.epochs.lead(payload, w.cfg.link_rate, keep);
        }
        let gated = w.cfg.link_rate > 0 && (w.cfg.stages.delta || w.cfg.stages.blocks);
        // a page whose last-sent copy the cache holds costs a delta; any other page, block work
        // or compression: two gates, as what each saves per nanosecond differs by far
        let cached = gated && (was_zero || self.cache.peek_full(page_idx).is_some());
        let forced = w.analysis_forced(cached);
        if gated && !forced && !w.gates.analysis_gate(cached).open(w.gate_rate) {
            self.send_unanalysed(page_idx, page);
            return;
        }
        let w = &mut self.w;
        // the analysis is measured where its gate lets it run, its cost that of the stages whose
        // own gates let them run
        let now = Tick::now();
        w.clock = now;
        let analysis_start = (gated && !forced).then_some((now, w.out.len(), cached));
        // (`cached` is the test `against_copy` is chosen by below)
        let blocks = w.blocks_verdict(cached);
        w.blocks_open = blocks != Verdict::Closed;
        w.probing = blocks == Verdict::Measure;
        w.stats.skipped_blocks += (w.cfg.stages.blocks && !w.blocks_open) as u64;

        // What does the backup hold at this page?
        let entry = self.cache.touch(page_idx);
        let cache = &self.cache;
        // against_copy leaves `clock` at the end of its last step; the other paths do not
        let (outcome, clocked) = match cache.view(entry) {
            Cached::Full(old) => {
                stages::prefetch(old);
                (w.against_copy(page_idx, page, Held::Sent(old), cache), true)
            }
            Cached::Miss if was_zero => {
                let zeros = Held::Zeros(&self.zeros);
                (w.against_copy(page_idx, page, zeros, cache), true)
            }
            Cached::Hashes(old) if w.blocks_open => {
                (w.against_hashes(page_idx, page, old, cache), false)
            }
            Cached::Hashes(_) | Cached::Miss => (w.fresh(page_idx, page, cache), false),
        };
        let t = if clocked { w.clock } else { Tick::now() };
        if let Outcome::Unchanged = outcome {
            w.stats.unchanged += 1;
            w.record_analysis(analysis_start, t);
            return;
        }
        // record what the backup now holds (block hashes only for the block work)
        if w.blocks_open {
            self.cache.store(page_idx, page);
        } else {
            self.cache.store_copy(page_idx, page);
        }
        let w = &mut self.w;
        if w.cfg.stages.sharing && w.cfg.stages.blocks && w.share.capacity() > 0 {
            let bs = w.cfg.block_size;
            for i in w.page.changed.iter_ones() {
                let blk = &page[i * bs..(i + 1) * bs];
                if !zero::is_zero(blk) {
                    w.share.insert(w.page.hashes[i], page_idx, i);
                }
            }
        }
        let end = Tick::now();
        w.stats.nanos.update += end.ns_since(t);
        w.record_analysis(analysis_start, end);
    }

    /// Sends a page without analysis: compressed whole where the compressor's own gate says that
    /// pays (as a per-page compressor sends it), else RAW. The cache still learns the page (a
    /// copy, no hashing) while it is kept up ([`Work::cache_kept`]), else it forgets it but for
    /// one page in [`gates::PROBE_EVERY`], so that the analysis gates' probes find deltas again.
    fn send_unanalysed(&mut self, page_idx: u64, page: &[u8]) {
        let w = &mut self.w;
        w.stats.skipped_analysis += 1;
        let timed = w
            .stats
            .skipped_analysis
            .is_multiple_of(gates::SHED_TIMED_EVERY);
        let t0 = timed.then(Tick::now);
        // sent first, so the store that follows reads the page from the processor's cache
        w.page.best.clear();
        let offer = w.offer_run(page_idx, page, true, true);
        let whole = match offer {
            Offer::Taken | Offer::Raw => false,
            Offer::Alone => w.whole_page_gated(page, false),
            Offer::Off => w.cfg.fallback != Fallback::None && w.whole_page(page),
        };
        if whole {
            w.emit(page_idx, Kind::Whole, page, &[]);
        } else if offer != Offer::Taken {
            w.emit_raw(page_idx, page);
            if let Some(t0) = t0 {
                let ns = t0.elapsed_ns();
                w.gates.shed.record(ns.saturating_sub(w.run.flushed_ns));
            }
        }
        let shed_ns = w.gates.shed.ns();
        let store = if w.cache_kept() {
            w.gates
                .cache_store
                .affordable(w.cfg.link_rate, w.cfg.page_size, shed_ns)
        } else {
            w.gates
                .cache_store
                .probe_due(w.cfg.link_rate, w.cfg.page_size, shed_ns)
        };
        if store {
            let t = Tick::now();
            self.cache.store_copy(page_idx, page);
            w.gates.cache_store.record(t.elapsed_ns());
        } else {
            self.cache.remove(page_idx);
        }
    }
}

impl Work {
    /// Whether pages sent without analysis keep the cache up: only while the analysis of cached
    /// pages runs (its gate not shut), as the cache is there for it. Behind the link with that
    /// analysis shut, a store is time the link waits for and buys nothing (on proc-node at 2.5
    /// Gbit/s, zero detection and the compressor alone shipped 0.90 times lz4's time, all stages
    /// with the cache kept up 1.06).
    pub(super) fn cache_kept(&self) -> bool {
        self.gates.analysis.peek(self.gate_rate) != Verdict::Closed
    }

    /// Whether the encoder's lead on the link runs a gated stage on this page whatever its gate
    /// says: far ahead of the link always; ahead of it where the stage's average cost per use
    /// (`cost_ns`) is at most the link time of a page sent RAW. Such a use then costs no more
    /// than the link time of the page it works on, so the lead it spends is bounded and comes
    /// back with the next pages; a dearer stage (a page compressed whole at 10 Gbit/s) would
    /// spend more on each page than the link gives back and leave the encoder behind.
    pub(super) fn lead_forces(&self, cost_ns: f64) -> bool {
        match self.lead {
            Lead::FarAhead => true,
            Lead::Ahead => cost_ns * self.cfg.link_rate as f64 <= self.cfg.page_size as f64 * 1e9,
            Lead::Behind => false,
        }
    }

    /// Whether the block work runs on a page whose last-sent copy the cache holds (`cached`) or
    /// not, each kind by its own gate: forced by the lead where it costs at most a RAW page's
    /// link time (and, on a cached page, pays at [`AHEAD_DISCOUNT`] of the link rate), else as
    /// the gate says.
    pub(super) fn blocks_verdict(&mut self, cached: bool) -> Verdict {
        if !self.cfg.stages.blocks {
            return Verdict::Closed;
        }
        let g = self.gates.blocks_gate(cached);
        let cost = g.cost_ns();
        // (far ahead of the link every stage runs)
        let pays = !cached
            || self.lead == Lead::FarAhead
            || g.worth_it(self.cfg.link_rate / AHEAD_DISCOUNT);
        if self.exhaustive || (pays && self.lead_forces(cost)) {
            return Verdict::Open;
        }
        let rate = self.gate_rate;
        self.gates.blocks_gate(cached).verdict(rate)
    }

    /// Whether the encoder's lead runs the analysis of a page (whose last-sent copy the cache
    /// holds, or not) whatever its gate says: far ahead of the link, and ahead of it where the
    /// analysis of such pages costs on average at most a RAW page's link time (see
    /// [`lead_forces`](Self::lead_forces)). Elsewhere the analysis gate decides, and measures
    /// the pages it lets through: just ahead of a fast link, analysing every page would spend
    /// more than the link gives back (proc-node at 25 Gbit/s: 44-47 ms of encoding against
    /// 43-44 ms on the link, 1.02-1.06 of zero+raw's ship time; gated, 28-31 ms and 0.99).
    pub(super) fn analysis_forced(&mut self, cached: bool) -> bool {
        let cost = self.gates.analysis_gate(cached).cost_ns();
        self.lead_forces(cost)
    }

    /// Credits the analysis gate of a page analysed from `start` (time, frame length, whether
    /// its copy was cached) with its cost beyond the shed path's and the bytes its op saved
    /// against what that path sends. The shed path sends the page RAW (or compressed whole) and,
    /// where it keeps the cache up, stores it; an analysed page is stored too.
    ///
    /// A page the cache lacks is judged against what the shed path now sends: compressed whole
    /// where the compressor pays ([`Work::shed_compresses`]; its average cost and saving are
    /// then the shed path's too), else RAW. Its analysis is block work and that same
    /// compression, so against RAW alone it would be credited with what the compressor saves,
    /// which shedding it saves as well (proc-node and java-hashmap at 2.5 Gbit/s: 3% of the
    /// encoding time). A cached page is judged against RAW: shutting its gate also gives up
    /// keeping the cache ([`Work::cache_kept`]), and with it the deltas of the next epochs, which
    /// one page's saving does not show (judged against the compressor, py-sqlite at 2.5 Gbit/s
    /// lost its deltas within three epochs and shipped 9% later).
    /// A page on which a stage inside the analysis was probed is not recorded (see
    /// [`Work::probing`]).
    fn record_analysis(&mut self, start: Option<(Tick, usize, bool)>, end: Tick) {
        self.record_analysis_ns(start.map(|(t, len, cached)| (end.ns_since(t), len, cached)));
    }

    /// [`record_analysis`](Self::record_analysis) of a page whose analysis began when the
    /// frame was `len` bytes long and took `ns` nanoseconds: `Some((ns, len, cached))`.
    fn record_analysis_ns(&mut self, analysis: Option<(u64, usize, bool)>) {
        if self.probing {
            return;
        }
        if let Some((ns, len, cached)) = analysis {
            // a run written meanwhile is not this page's
            let elapsed = ns.saturating_sub(self.run.flushed_ns);
            if self.run.took_page {
                // its op and its compression come when the run is written
                self.run.defer_analysis(elapsed, cached);
                return;
            }
            let op_len = self.out.len() - len - self.run.flushed_bytes;
            self.analysis_sample(elapsed, op_len, cached);
        }
    }

    /// Records a sample of the analysis gate of a page whose analysis took `elapsed` ns and
    /// whose op took `op_len` bytes.
    pub(super) fn analysis_sample(&mut self, elapsed: u64, op_len: usize, cached: bool) {
        let (shed_op, compress_ns) = if !cached && self.shed_compresses() {
            (
                self.compressed_op_len(),
                self.gates.compress_whole.cost_ns() as u64,
            )
        } else {
            (self.cfg.page_size + 2, 0)
        };
        let saved = shed_op.saturating_sub(op_len) as u64;
        let shed = self.gates.shed.ns();
        // where the shed path does not keep the cache up, an analysed page's store is the
        // analysis's cost (whether it stores is judged on a page sent RAW, as that path does)
        let store = if self.cache_kept() {
            self.gates
                .cache_store
                .shed_share_ns(self.cfg.link_rate, self.cfg.page_size, shed)
        } else {
            0
        };
        let cost = elapsed.saturating_sub(shed + compress_ns + store);
        self.gates.analysis_gate(cached).record(cost, saved);
    }

    /// Whether a page sent without analysis now goes out compressed whole rather than RAW, by
    /// the compressor's averages or the lead (probes aside).
    pub(super) fn shed_compresses(&self) -> bool {
        self.cfg.fallback != Fallback::None
            && (self.gates.compress.worth_it(self.gate_rate)
                || self.lead_forces(self.gates.compress.cost_ns()))
    }

    /// The op a page takes sent without analysis, on average: compressed whole where the
    /// compressor pays (a COMPRESSED op of the page less the compressor's average saving on
    /// whole pages), else RAW. What a stage whose output the compressor would otherwise match
    /// saves is measured from it.
    pub(super) fn shed_op_len(&self) -> usize {
        if self.shed_compresses() {
            self.compressed_op_len()
        } else {
            self.cfg.page_size + 2
        }
    }

    /// The op of a page compressed whole by the compressor's average saving on whole pages: tag
    /// and page address as a RAW op's (`page_size + 2`), then the body's length and body.
    fn compressed_op_len(&self) -> usize {
        let n =
            (self.cfg.page_size).saturating_sub(self.gates.compress_whole.saved_bytes() as usize);
        2 + varint::len(n as u64) + n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gates::Gate;
    use writer::ENTROPY_SAMPLE;

    /// Encodes every page of `mem` as epoch `epoch`, applies the frame to `replica` and checks
    /// it against `mem`; returns what the encoder counted in that epoch.
    fn epoch_applied(
        enc: &mut Encoder,
        dec: &mut crate::Decoder,
        epoch: u64,
        mem: &[u8],
        replica: &mut [u8],
    ) -> EncoderStats {
        let ps = enc.w.cfg.page_size;
        let before = enc.stats();
        enc.begin_epoch(epoch).unwrap();
        for (p, page) in mem.chunks(ps).enumerate() {
            enc.add_page((p * ps) as u64, page).unwrap();
        }
        let frame = enc.end_epoch().unwrap();
        dec.apply_flat(frame, replica).unwrap();
        assert!(replica == mem, "epoch {epoch}: the replica differs");
        enc.stats().since(&before)
    }

    /// The default configuration with a link so fast that the encoder is never ahead of it
    /// (which would open every gate): the gates decide, and the tests set them by hand.
    fn never_ahead() -> Config {
        Config {
            link_rate: 1 << 62,
            ..Config::default()
        }
    }

    /// Ahead of the link a gated stage is forced on a page only while its average cost is at
    /// most a RAW page's link time (4096 ns for 4 KiB pages at 1 GB/s); far ahead, whatever it
    /// costs; behind, never.
    #[test]
    fn the_lead_forces_only_stages_that_cost_at_most_a_raw_pages_link_time() {
        let cfg = Config {
            link_rate: 1_000_000_000,
            ..Config::default()
        };
        assert_eq!(cfg.page_size, 4096);
        let mut enc = Encoder::with_seed(cfg, 5).unwrap();
        let w = &mut enc.w;
        w.lead = Lead::Ahead;
        assert!(w.lead_forces(0.0) && w.lead_forces(4096.0));
        assert!(!w.lead_forces(4097.0));
        w.lead = Lead::FarAhead;
        assert!(w.lead_forces(1e12));
        w.lead = Lead::Behind;
        assert!(!w.lead_forces(0.0));
    }

    /// Ahead of the link the analysis is forced only where its gate's average cost is at most a
    /// RAW page's link time (4096 ns for 4 KiB pages at 1 GB/s), each kind of page by its own
    /// gate; far ahead always; behind never.
    #[test]
    fn the_lead_forces_the_analysis_only_where_it_costs_at_most_a_raw_pages_link_time() {
        let cfg = Config {
            link_rate: 1_000_000_000,
            ..Config::default()
        };
        let mut enc = Encoder::with_seed(cfg, 7).unwrap();
        let w = &mut enc.w;
        for _ in 0..gates::WARMUP {
            w.gates.analysis.record(1_000, 4_000); // a delta: 1 us
            w.gates.analysis_uncached.record(20_000, 3_000); // block work and compression: 20 us
        }
        w.lead = Lead::Ahead;
        assert!(w.analysis_forced(true));
        assert!(!w.analysis_forced(false));
        w.lead = Lead::FarAhead;
        assert!(w.analysis_forced(true) && w.analysis_forced(false));
        w.lead = Lead::Behind;
        assert!(!w.analysis_forced(true) && !w.analysis_forced(false));
    }

    /// Ahead of the link the block work is forced only where it costs at most a RAW page's link
    /// time (4096 ns for 4 KiB pages at 1 GB/s) and, on cached pages, pays at a quarter of the
    /// link rate: there block work that saves nothing is not forced however cheap. Far ahead it
    /// always runs. Each kind of page has its own gate; behind the link the gate decides.
    #[test]
    fn the_lead_forces_the_block_work_on_cached_pages_only_where_it_saves() {
        let cfg = Config {
            link_rate: 1_000_000_000,
            ..Config::default()
        };
        // (cost ns, saved bytes) of a use: pays at 1 GB/s, only at 250 MB/s, not even there,
        // saves nothing, dearer than a RAW page's link time; forced on cached pages, on new ones
        let cases = [
            ((1_000, 2_000), true, true),
            ((1_000, 500), true, true),
            ((1_000, 200), false, true),
            ((1_000, 0), false, true),
            ((5_000, 4_000), false, false),
        ];
        for ((cost, saved), forced_cached, forced_new) in cases {
            for cached in [true, false] {
                let forced = if cached { forced_cached } else { forced_new };
                let mut enc = Encoder::with_seed(cfg, 7).unwrap();
                let w = &mut enc.w;
                for _ in 0..gates::WARMUP {
                    w.gates.blocks_gate(cached).record(cost, saved);
                    // the other kind of page never pays
                    w.gates.blocks_gate(!cached).record(1 << 30, 0);
                }
                w.lead = Lead::Ahead;
                // behind the link's own rate, as the gates judge there
                w.gate_rate = cfg.link_rate;
                let ahead = w.blocks_verdict(cached);
                assert_eq!(
                    ahead == Verdict::Open,
                    forced,
                    "{cost} ns, {saved} B, {cached}"
                );
                assert_ne!(w.blocks_verdict(!cached), Verdict::Open, "the other gate");
                w.lead = Lead::FarAhead;
                assert_eq!(w.blocks_verdict(cached), Verdict::Open, "far ahead");
                w.lead = Lead::Behind;
                let pays = saved * 1_000_000_000 > cost * cfg.link_rate;
                assert_eq!(w.blocks_verdict(cached) == Verdict::Open, pays);
            }
        }
    }

    /// The dictionary or the compressor may run on a page while either's gate is not closed
    /// (its warm-up, a probe, or it pays) or the lead forces the compressor; with both gates
    /// closed behind the link neither can, so the page is not probed for random content.
    #[test]
    fn compressing_may_run_only_where_a_gate_or_the_lead_lets_it() {
        let cfg = never_ahead();
        let mut enc = Encoder::with_seed(cfg, 6).unwrap();
        let w = &mut enc.w;
        w.lead = Lead::Behind;
        assert!(w.compressing_may_run(), "warm-up");
        for _ in 0..gates::WARMUP {
            w.gates.dict.record(1 << 30, 0);
            w.gates.compress.record(1 << 30, 0);
        }
        assert!(!w.compressing_may_run(), "both closed");
        w.lead = Lead::FarAhead;
        assert!(w.compressing_may_run(), "far ahead: every stage");
        w.lead = Lead::Ahead;
        assert!(
            !w.compressing_may_run(),
            "ahead, a compressor dearer than a page's link time"
        );
        w.lead = Lead::Behind;
        w.gates.compress = gates::Gate::default();
        for _ in 0..gates::WARMUP {
            w.gates.compress.record(0, 1 << 20); // saves bytes for no time
        }
        assert!(w.compressing_may_run(), "the compressor pays");
    }

    /// With the blocks gate closed and the analysis gate open, a page with a few changed bytes
    /// still goes out as a XOR delta, a new page as RAW or compressed, never as a BLOCKS op, and
    /// nothing is hashed into the sharing table; the replica is exact. The gates are set by hand,
    /// so no timing decides.
    #[test]
    fn a_closed_blocks_gate_leaves_the_delta_and_skips_the_block_work() {
        use crate::Decoder;
        let cfg = never_ahead();
        let mut enc = Encoder::with_seed(cfg, 9).unwrap();
        let mut dec = Decoder::new(cfg).unwrap();
        let ps = cfg.page_size;
        let mut mem: Vec<u8> = (0..4 * ps).map(|i| (i * 7 / 5) as u8).collect();
        let mut replica = vec![0u8; mem.len()];
        for epoch in 0..3u64 {
            if epoch > 0 {
                for p in 0..3 {
                    mem[p * ps + 100 + epoch as usize] ^= 0x55;
                }
            }
            // analysis pays (a large saving for no time), block work never does
            let g = &mut enc.w.gates;
            for _ in 0..gates::WARMUP {
                g.analysis.record(0, 1 << 50);
                g.analysis_uncached.record(0, 1 << 50);
                g.blocks.record(1 << 30, 0);
                g.blocks_uncached.record(1 << 30, 0);
            }
            let s = epoch_applied(&mut enc, &mut dec, epoch, &mem, &mut replica);
            assert_eq!(s.blocks.pages, 0, "epoch {epoch}: a BLOCKS op");
            assert!(s.skipped_blocks > 0 && s.skipped_analysis == 0);
            assert_eq!(s.share.inserts, 0, "epoch {epoch}: blocks hashed");
            if epoch > 0 {
                assert_eq!(
                    s.delta.pages, 3,
                    "epoch {epoch}: the small changes as deltas"
                );
            }
        }
    }

    /// The block work is judged apart on pages the backup holds a copy of and on pages new to
    /// it: with it paying on new pages and not on cached ones, new pages with zero blocks go
    /// out as BLOCKS ops and the same pages, changed next epoch, as XOR deltas without block
    /// work (and the other way round). The gates are set by hand, so no timing decides; the
    /// replica is exact.
    #[test]
    fn block_work_on_cached_pages_and_on_new_pages_has_a_gate_each() {
        use crate::Decoder;
        let cfg = never_ahead();
        let ps = cfg.page_size;
        let bs = cfg.block_size;
        for new_pays in [true, false] {
            let mut enc = Encoder::with_seed(cfg, 10).unwrap();
            let mut dec = Decoder::new(cfg).unwrap();
            // varied bytes, with every fourth block zero
            let mut mem: Vec<u8> = (0..4 * ps)
                .map(|i| {
                    if i / bs % 4 == 1 {
                        0
                    } else {
                        (i * 7 / 5 + i / 91) as u8
                    }
                })
                .collect();
            let mut replica = vec![0u8; mem.len()];
            for epoch in 0..2u64 {
                if epoch == 1 {
                    for p in 0..4 {
                        mem[p * ps + 3000] ^= 0x5a;
                    }
                }
                let g = &mut enc.w.gates;
                let (pays, never) = ((0, 1u64 << 50), (1u64 << 30, 0));
                for _ in 0..gates::WARMUP {
                    g.analysis.record(0, 1 << 50);
                    g.analysis_uncached.record(0, 1 << 50);
                    let (new, cached) = if new_pays {
                        (pays, never)
                    } else {
                        (never, pays)
                    };
                    g.blocks_uncached.record(new.0, new.1);
                    g.blocks.record(cached.0, cached.1);
                }
                let s = epoch_applied(&mut enc, &mut dec, epoch, &mem, &mut replica);
                let ran = s.skipped_blocks == 0;
                if epoch == 0 {
                    assert_eq!(ran, new_pays, "new pages, paying {new_pays}: {s:?}");
                    assert_eq!(s.blocks.pages > 0, new_pays, "{s:?}");
                } else {
                    assert_eq!(ran, !new_pays, "cached pages, paying {}: {s:?}", !new_pays);
                    assert_eq!(s.delta.pages, 4, "the small changes as deltas");
                }
            }
        }
    }

    /// Adaptive, with the dictionary and the compressor shut, a cached page changed too much for
    /// a half-page delta still goes out as a delta when that is shorter than the page, not RAW,
    /// and, where the block work runs, shorter than its block op; with the dictionary's gate
    /// open the delta is limited to half a page, so the page goes to the dictionary. The gates
    /// are set by hand, so no timing decides; the replica is exact.
    #[test]
    fn a_delta_over_half_a_page_beats_raw_and_block_ops_where_no_compressor_runs() {
        use crate::Decoder;
        let cfg = never_ahead();
        let ps = cfg.page_size;
        let run = |dict_pays: bool, long_pays: bool, blocks_pay: bool| {
            let mut enc = Encoder::with_seed(cfg, 12).unwrap();
            let mut dec = Decoder::new(cfg).unwrap();
            // repeats every 64 bytes, before and after the change: lz4 codes it in little
            let mut mem: Vec<u8> = (0..3 * ps).map(|i| (i % 64 * 3 + 1) as u8).collect();
            let mut replica = vec![0u8; mem.len()];
            let mut last = EncoderStats::default();
            for epoch in 0..2u64 {
                if epoch == 1 {
                    // 8 bytes changed in every 16: a delta of about 3/4 of the page
                    for (i, b) in mem.iter_mut().enumerate() {
                        if i % 16 < 8 {
                            *b ^= 0xa5;
                        }
                    }
                }
                let g = &mut enc.w.gates;
                for _ in 0..gates::WARMUP {
                    g.analysis.record(0, 1 << 50);
                    g.analysis_uncached.record(0, 1 << 50);
                    if blocks_pay {
                        g.blocks.record(0, 1 << 50);
                        g.blocks_uncached.record(0, 1 << 50);
                    } else {
                        g.blocks.record(1 << 30, 0);
                        g.blocks_uncached.record(1 << 30, 0);
                    }
                    g.compress.record(1 << 30, 0);
                    if dict_pays {
                        g.dict.record(0, 1 << 50);
                    } else {
                        g.dict.record(1 << 30, 0);
                    }
                    if long_pays {
                        g.long_delta.record(0, 1 << 50);
                    } else {
                        g.long_delta.record(1 << 30, 0);
                    }
                }
                last = epoch_applied(&mut enc, &mut dec, epoch, &mem, &mut replica);
            }
            last
        };
        let alone = run(false, true, false);
        assert_eq!(alone.delta.pages, 3, "deltas where nothing else runs");
        assert_eq!(alone.raw.pages, 0);
        let avg = alone.delta.bytes / 3;
        assert!(
            avg > ps as u64 / 2 && avg < ps as u64,
            "a delta of {avg} bytes: over half a page, under a page"
        );
        let long_shut = run(false, false, false);
        assert_eq!(long_shut.delta.pages, 0, "the long delta's gate shut");
        assert_eq!(long_shut.raw.pages, 3);
        let with_dict = run(true, true, false);
        assert_eq!(with_dict.delta.pages, 0, "the dictionary's gate open");
        assert_eq!(with_dict.dict.pages, 3);
        // the block work finds every block of the first page changed and new: its op of
        // literals is longer than the delta. The other two pages are the same bytes as the
        // first, so their block ops refer to its blocks and are shorter still
        let with_blocks = run(false, true, true);
        assert_eq!(with_blocks.delta.pages, 1, "the block work open");
        assert_eq!(with_blocks.delta.bytes, alone.delta.bytes / 3);
        assert_eq!(with_blocks.blocks.pages, 2);
        assert_eq!(with_blocks.raw.pages, 0);
    }

    /// The default configuration on a 1 GB/s link.
    fn gbps_1() -> Config {
        Config {
            link_rate: 1_000_000_000,
            ..Config::default()
        }
    }

    /// An encoder behind the link (no lead to spend), its page gates judging at the link's rate.
    fn behind_the_link(cfg: Config) -> Encoder {
        let mut enc = Encoder::with_seed(cfg, 8).unwrap();
        (enc.w.lead, enc.w.gate_rate) = (Lead::Behind, cfg.link_rate);
        enc
    }

    /// A whole-page compressor measured as taking `cost` ns to save `saved` bytes a page.
    fn compressor_measured(w: &mut Work, cost: u64, saved: u64) {
        w.gates.compress.record(cost, saved);
        w.gates.compress_whole.record(cost, saved);
    }

    /// The analysis gate of pages the cache lacks is credited with what an analysed page saved
    /// and cost beyond what the shed path would have sent and spent: a RAW page while the
    /// compressor does not pay; the compressor's average output and cost on whole pages where it
    /// does, as the shed path then compresses the page whole. The gate of cached pages is
    /// credited against a RAW page whatever the compressor does (its shut gate gives up the
    /// cache too). Both are charged beyond the shed path's RAW page (300 ns here) and, where that
    /// path keeps the cache up, its store (200 ns), which it judges on the RAW page alone.
    #[test]
    fn the_analysis_is_credited_only_beyond_what_the_shed_path_sends() {
        let raw_op = gbps_1().page_size + 2;
        // one analysed page whose op took `op_len` bytes and `ns` nanoseconds: what its analysis
        // gate then averages (its first sample, so the sample itself)
        let credited = |cached: bool, compress: Option<(u64, u64)>, op_len: usize, ns: u64| {
            let mut enc = behind_the_link(gbps_1());
            let w = &mut enc.w;
            w.gates.shed.record(300);
            for _ in 0..gates::WARMUP {
                w.gates.cache_store.record(200);
            }
            if let Some((cost, saved)) = compress {
                compressor_measured(w, cost, saved);
            }
            let len = w.out.len();
            w.out.frame.extend(std::iter::repeat_n(7u8, op_len));
            w.record_analysis_ns(Some((ns, len, cached)));
            let g = w.gates.analysis_gate(cached);
            (g.cost_ns(), g.saved_bytes())
        };
        let against_raw = (4_500.0, (raw_op - 100) as f64);
        // no compressor measured, or one that does not pay (5 us to save 1000 B, 1 us on the
        // link): against a RAW page
        for compress in [None, Some((5_000, 1_000))] {
            assert_eq!(credited(false, compress, 100, 5_000), against_raw);
        }
        // a compressor that pays (3.8 us to save 3900 B, 3.9 us on the link): against its op
        // (page address, length and 196 bytes: 200), beyond its cost; the store is still the
        // shed path's, as a RAW page and a store take less than the page's link time
        let pays = Some((3_800, 3_900));
        assert_eq!(credited(false, pays, 100, 5_000), (700.0, 100.0));
        // an analysis that sent no less than the compressor would have saved nothing
        assert_eq!(credited(false, pays, 300, 6_000), (1_700.0, 0.0));
        // a cached page: against RAW
        assert_eq!(credited(true, pays, 100, 5_000), against_raw);
    }

    /// The block work and the dictionary are credited from what the page takes without them:
    /// the best op found so far, or what the compressor alone sends where it pays (the op of a
    /// page compressed by its average saving on whole pages), else a RAW op.
    #[test]
    fn stages_inside_the_analysis_are_credited_beyond_what_the_compressor_alone_sends() {
        let raw_op = gbps_1().page_size + 2;
        let mut enc = behind_the_link(gbps_1());
        let w = &mut enc.w;
        w.page.best.clear();
        assert_eq!(w.unaided_len(), raw_op, "no compressor measured");
        compressor_measured(w, 5_000, 1_000); // 5 us to save 1000 B (1 us): does not pay
        assert_eq!(w.unaided_len(), raw_op);
        let mut enc = behind_the_link(gbps_1());
        let w = &mut enc.w;
        w.page.best.clear();
        compressor_measured(w, 1_000, 3_000); // 1 us to save 3000 B (3 us): pays
        let compressed_op = 2 + 2 + (4096 - 3_000); // address, length, body
        assert_eq!(w.unaided_len(), compressed_op);
        w.page.best.extend_from_slice(&[0; 500]); // a 500-byte delta found before
        assert_eq!(w.unaided_len(), 500);
        w.page.best.resize(2_000, 0); // a delta longer than the compressor's output
        assert_eq!(w.unaided_len(), compressed_op);
        // only whole pages make the shed path's op: the compressor's saving on literal sections
        // moves its gate, not that op
        w.gates.compress.record(1_000, 100);
        assert_eq!(w.unaided_len(), compressed_op);
    }

    /// The block work on a page the cache lacks is credited with what its zero blocks save
    /// beyond the compressor alone: on a page of zeros and random bytes a BLOCKS op saves half
    /// the page against RAW, but about nothing against lz4 of the whole page, which codes the
    /// zeros in a few bytes too.
    #[test]
    fn the_block_work_on_a_new_page_is_credited_beyond_the_compressor() {
        let ps = gbps_1().page_size;
        let mut page = vec![0u8; ps];
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        for b in &mut page[ps / 2..] {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            *b = rng as u8;
        }
        let blocks_saved = |compressor: bool| {
            let mut enc = behind_the_link(gbps_1());
            enc.begin_epoch(0).unwrap();
            let Encoder { w, cache, .. } = &mut enc;
            if compressor {
                // lz4 of this page: its zeros in a few bytes, its random half as it is
                compressor_measured(w, 100, (ps / 2 - 24) as u64);
            }
            w.blocks_open = true;
            w.fresh(0, &page, cache);
            w.gates.blocks_uncached.saved_bytes()
        };
        let against_raw = blocks_saved(false);
        let beyond_compressor = blocks_saved(true);
        assert!(against_raw > (ps / 2 - 64) as f64, "{against_raw}");
        assert!(beyond_compressor < 64.0, "{beyond_compressor}");
    }

    /// A page on which a gated stage inside the analysis runs only to be measured (here the
    /// block work's warm-up) is not a sample of the analysis gate; once that stage's gate has
    /// decided, every analysed page is one. The gates are set by hand, so no timing decides.
    #[test]
    fn pages_probing_a_stage_are_no_samples_of_the_analysis_gate() {
        let cfg = never_ahead();
        let mut enc = Encoder::with_seed(cfg, 4).unwrap();
        let ps = cfg.page_size;
        let pages = gates::WARMUP as usize;
        let mut mem: Vec<u8> = (0..pages * ps).map(|i| (i * 11 / 3) as u8).collect();
        for _ in 0..gates::WARMUP {
            enc.w.gates.analysis.record(0, 1 << 50);
            enc.w.gates.analysis_uncached.record(0, 1 << 50);
        }
        let uses = |e: &Encoder| e.w.gates.analysis.uses() + e.w.gates.analysis_uncached.uses();
        let epoch = |enc: &mut Encoder, mem: &[u8], e: u64| {
            enc.begin_epoch(e).unwrap();
            for (p, page) in mem.chunks(ps).enumerate() {
                enc.add_page((p * ps) as u64, page).unwrap();
            }
            enc.end_epoch().unwrap();
        };
        // new pages: each is one of the warm-up uses of the block work on new pages
        let before = uses(&enc);
        epoch(&mut enc, &mem, 0);
        assert_eq!(enc.w.gates.blocks_uncached.uses(), gates::WARMUP);
        assert_eq!(enc.w.gates.blocks.uses(), 0);
        assert_eq!(uses(&enc), before, "warm-up pages were analysis samples");
        // the block work on cached pages is then open (it ran for no time here, as far as its
        // gate knows), and every page with a change is a sample
        for _ in 0..gates::WARMUP {
            enc.w.gates.blocks.record(0, 1 << 50);
        }
        for p in 0..pages {
            mem[p * ps + 200] ^= 0x11;
        }
        let before = uses(&enc);
        epoch(&mut enc, &mem, 1);
        assert_eq!(uses(&enc) - before, pages as u64);
    }

    /// The clock reads a page's steps share still charge every step: pages with small deltas
    /// and unchanged pages add to the delta and update times, and each analysed page is one use
    /// of the analysis gate.
    #[test]
    fn shared_clock_reads_charge_every_step_and_every_analysed_page() {
        let cfg = never_ahead();
        let mut enc = Encoder::with_seed(cfg, 3).unwrap();
        let ps = cfg.page_size;
        let mut mem: Vec<u8> = (0..16 * ps).map(|i| (i * 13 / 7) as u8).collect();
        for epoch in 0..4u64 {
            // analysis always pays here, so every page is analysed; the block work on cached
            // pages never does (no page of epochs 1-3 is one of its warm-up uses)
            for _ in 0..gates::WARMUP {
                enc.w.gates.analysis.record(0, 1 << 50);
                enc.w.gates.analysis_uncached.record(0, 1 << 50);
                enc.w.gates.blocks.record(1 << 30, 0);
            }
            if epoch > 0 {
                for p in 0..8 {
                    mem[p * ps + 64 + epoch as usize] ^= 0x5a; // half the pages: small deltas
                }
            }
            let uses = enc.w.gates.analysis.uses();
            let before = enc.stats();
            enc.begin_epoch(epoch).unwrap();
            for (p, page) in mem.chunks(ps).enumerate() {
                enc.add_page((p * ps) as u64, page).unwrap();
            }
            enc.end_epoch().unwrap();
            let s = enc.stats().since(&before);
            if epoch > 0 {
                assert_eq!(s.delta.pages, 8, "epoch {epoch}");
                assert_eq!(s.unchanged, 8, "epoch {epoch}");
                assert_eq!(
                    enc.w.gates.analysis.uses() - uses,
                    16,
                    "epoch {epoch}: one use a page"
                );
                assert!(
                    s.nanos.delta > 0 && s.nanos.update > 0,
                    "epoch {epoch}: {:?}",
                    s.nanos
                );
            }
        }
    }

    /// Rewrites a quarter of `mem`'s bytes, at random, with text-like ones (few distinct
    /// bytes, short repeats: lz4 blocks with literals), from the xorshift state `rng`.
    fn scribble_text(mem: &mut [u8], rng: &mut u64) {
        for b in mem.iter_mut() {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            if rng.is_multiple_of(4) {
                *b = b"abcdefgh "[(*rng >> 8) as usize % 9];
            }
        }
    }

    /// A frame the entropy gate is going to skip gets no literal contexts worked out, and one it
    /// codes gets them; the replica is exact either way. The gate is set by hand (a stage that
    /// never pays, or always does), so no timing decides; compressible new pages give lz4
    /// blocks with literals.
    #[test]
    fn literal_contexts_are_worked_out_only_for_frames_the_entropy_gate_codes() {
        use crate::Decoder;
        for pays in [false, true] {
            let cfg = never_ahead();
            let mut enc = Encoder::with_seed(cfg, 5).unwrap();
            let mut dec = Decoder::new(cfg).unwrap();
            let ps = cfg.page_size;
            let mut rng = 0x1234_5678_u64;
            let mut mem = vec![0u8; 8 * ps];
            let mut replica = vec![0u8; mem.len()];
            for epoch in 0..3u64 {
                scribble_text(&mut mem, &mut rng);
                let g = &mut enc.w.gates.entropy;
                for _ in 0..gates::FRAME_WARMUP {
                    if pays {
                        g.record(0, 1 << 40);
                    } else {
                        g.record(1 << 40, 0);
                    }
                }
                let closed = enc.w.gates.entropy.peek(cfg.link_rate) == gates::Verdict::Closed;
                assert_eq!(closed, !pays);
                enc.begin_epoch(epoch).unwrap();
                for (p, page) in mem.chunks(ps).enumerate() {
                    enc.add_page((p * ps) as u64, page).unwrap();
                }
                let frame = enc.end_epoch().unwrap();
                dec.apply_flat(frame, &mut replica).unwrap();
                // (read once the frame is closed: a pending run's contexts are worked out
                // when it is written)
                let contexts = enc.w.out.contexts_noted();
                assert!(replica == mem, "pays {pays}, epoch {epoch}");
                if pays {
                    assert!(
                        contexts > 0,
                        "epoch {epoch}: a coded frame without contexts"
                    );
                } else {
                    assert_eq!(contexts, 0, "epoch {epoch}: contexts for a skipped frame");
                }
            }
        }
    }

    /// A frame the entropy gate measures (its warm-up) is measured on its first ops once it
    /// holds four samples' worth, not when it closes, the plain tier first: on a link where
    /// coding cannot pay (a stage cost of any nanoseconds outweighs what it saves) the plain
    /// tier's sample says so, the models are not measured at all, and the frame works out no
    /// literal contexts after that and goes out uncoded; on a 1 B/s link coding pays, the models
    /// are measured, the contexts are worked out to the end and the frame is coded. The page
    /// gates are held open by hand so that the frame is of lz4 ops (with literals) whatever
    /// they cost; the replica is exact.
    #[test]
    fn a_measured_frame_stops_its_literal_contexts_when_its_sample_says_coding_does_not_pay() {
        use crate::Decoder;
        let mut paying = Gate::default();
        for _ in 0..gates::WARMUP {
            paying.record(0, 1 << 40);
        }
        for (link_rate, pays) in [(1u64 << 62, false), (1, true)] {
            let cfg = Config {
                link_rate,
                ..Config::default()
            };
            let ps = cfg.page_size;
            let mut enc = Encoder::with_seed(cfg, 5).unwrap();
            let mut rng = 0x1234_5678_u64;
            let mut mem = vec![0u8; 1200 * ps];
            scribble_text(&mut mem, &mut rng);
            enc.begin_epoch(0).unwrap();
            let (mut at_measure, mut payload_at_measure) = (None, 0);
            for (p, page) in mem.chunks(ps).enumerate() {
                let g = &mut enc.w.gates;
                (g.analysis_uncached, g.compress) = (paying, paying);
                enc.add_page((p * ps) as u64, page).unwrap();
                let out = &enc.w.out;
                if at_measure.is_none() && out.plain_floor().is_some() {
                    assert_eq!(out.measured_early(), pays, "models measured early");
                    at_measure = Some(out.contexts_noted());
                    payload_at_measure = out.frame.len() - HEADER_LEN;
                }
            }
            let out = &enc.w.out;
            let (contexts, payload) = (out.contexts_noted(), out.frame.len() - HEADER_LEN);
            let at_measure = at_measure.expect("the frame was measured early");
            // (a frame grows by whole runs of pages)
            let run = crate::format::max_add_len(ps);
            assert!(
                (4 * ENTROPY_SAMPLE..4 * ENTROPY_SAMPLE + run + ps).contains(&payload_at_measure),
                "measured at {payload_at_measure} bytes"
            );
            assert!(
                payload > 2 * payload_at_measure,
                "a frame of {payload} bytes"
            );
            assert!(at_measure > 0, "the sample had literals");
            if pays {
                assert!(contexts > at_measure, "contexts stopped on a paying frame");
            } else {
                assert_eq!(contexts, at_measure, "contexts after a verdict of no");
            }
            let frame = enc.end_epoch().unwrap();
            let coded = crate::format::open(frame).unwrap().0.flags & crate::format::FLAG_ENTROPY;
            assert_eq!(coded != 0, pays);
            let mut replica = vec![0u8; mem.len()];
            Decoder::new(cfg)
                .unwrap()
                .apply_flat(frame, &mut replica)
                .unwrap();
            assert!(replica == mem, "link rate {link_rate}");
        }
    }

    /// After a frame of mostly RAW pages (which the entropy gate is never asked about, so that
    /// it stays in its warm-up), a frame is neither measured early nor given literal contexts;
    /// after a frame of other ops it is measured early again. A frame of lz4 ops after a RAW
    /// one is still judged at its close, and every replica is exact. (The link, 1 MB/s, is one
    /// where coding can pay: on a faster one the gate may stop measuring, see
    /// `where_coding_cannot_pay_the_entropy_stage_measures_itself_only_at_the_longest_interval`.)
    #[test]
    fn a_frame_after_a_mostly_raw_one_prepares_nothing_for_coding() {
        use crate::Decoder;
        let mut paying = Gate::default();
        for _ in 0..gates::WARMUP {
            paying.record(0, 1 << 40);
        }
        let cfg = Config {
            link_rate: 1_000_000,
            ..Config::default()
        };
        let ps = cfg.page_size;
        let mut enc = Encoder::with_seed(cfg, 5).unwrap();
        let mut dec = Decoder::new(cfg).unwrap();
        let n = 1200;
        let random = crate::noise::bytes(n * ps, 7);
        let (mut text, mut text2) = (vec![0u8; n * ps], vec![0u8; n * ps]);
        scribble_text(&mut text, &mut 0x1234_5678_u64);
        scribble_text(&mut text2, &mut 0x8765_4321_u64);
        let mut replica = vec![0u8; n * ps];
        // (epoch contents, measured early?)
        for (epoch, (mem, measured)) in [(&random, false), (&text, false), (&text2, true)]
            .into_iter()
            .enumerate()
        {
            enc.begin_epoch(epoch as u64).unwrap();
            let mut seen_early = false;
            for (p, page) in mem.chunks(ps).enumerate() {
                let g = &mut enc.w.gates;
                (g.analysis, g.analysis_uncached, g.compress) = (paying, paying, paying);
                enc.add_page((p * ps) as u64, page).unwrap();
                seen_early |= enc.w.out.measured_early();
            }
            // (the gate records its first use when the second frame closes)
            if epoch < 2 {
                assert_eq!(enc.w.gates.entropy.uses(), 0, "epoch {epoch}: gate used");
            }
            assert_eq!(seen_early, measured, "epoch {epoch}: measured early");
            if epoch == 1 {
                assert_eq!(enc.w.out.contexts_noted(), 0, "contexts after a RAW frame");
            }
            dec.apply_flat(enc.end_epoch().unwrap(), &mut replica)
                .unwrap();
            assert!(replica == *mem, "epoch {epoch}");
        }
    }

    /// Pages sent without analysis keep the cache up while the analysis of cached pages runs,
    /// and while its gate is shut only one in PROBE_EVERY is stored (the cache is there for that
    /// analysis alone). The gate is set by hand; on a 1 MB/s link a store always fits a page's
    /// link time (4 ms), so only the gate decides.
    #[test]
    fn pages_sent_without_analysis_are_cached_only_while_cached_pages_are_analysed() {
        for runs in [true, false] {
            let cfg = Config {
                link_rate: 1_000_000,
                ..Config::default()
            };
            let mut enc = Encoder::with_seed(cfg, 5).unwrap();
            let mut g = Gate::default();
            for _ in 0..gates::WARMUP {
                if runs {
                    g.record(0, 1 << 40);
                } else {
                    g.record(1 << 40, 0);
                }
            }
            enc.w.gates.analysis = g;
            assert_eq!(enc.w.cache_kept(), runs);
            enc.begin_epoch(0).unwrap();
            let n = 10 * gates::PROBE_EVERY;
            let mut page = vec![0u8; cfg.page_size];
            for i in 0..n {
                page[..8].copy_from_slice(&(i + 1).to_le_bytes());
                enc.send_unanalysed(i, &page);
            }
            let cached = (0..n).filter(|&i| enc.cache.peek_full(i).is_some()).count();
            assert_eq!(cached as u64, if runs { n } else { 10 }, "runs {runs}");
        }
    }

    /// An encoder and its decoder on a 1 kB/s link (a coding cost of 1 ns a byte fits the
    /// slack of such a link, one of 10^12 does not) over `pages` pages of memory.
    struct SlowLink {
        enc: Encoder,
        dec: crate::Decoder,
        mem: Vec<u8>,
        replica: Vec<u8>,
        rng: u64,
    }

    impl SlowLink {
        fn new(pages: usize) -> SlowLink {
            let cfg = Config {
                link_rate: 1_000,
                ..Config::default()
            };
            SlowLink {
                enc: Encoder::with_seed(cfg, 5).unwrap(),
                dec: crate::Decoder::new(cfg).unwrap(),
                mem: vec![0u8; pages * cfg.page_size],
                replica: vec![0u8; pages * cfg.page_size],
                rng: 0x9e37_79b9,
            }
        }

        /// Closes the models' gate by hand: a stage that never pays, its warm-up done and no
        /// probe due (a fresh gate).
        fn close_entropy_gate(&mut self) {
            let mut g = Gates::default().entropy;
            for _ in 0..gates::FRAME_WARMUP {
                g.record(1 << 40, 0);
            }
            assert_eq!(g.peek(1_000), gates::Verdict::Closed);
            self.enc.w.gates.entropy = g;
        }

        /// New text on every page, sent as `epoch` and applied (the replica checked): whether
        /// the frame was entropy coded.
        fn epoch(&mut self, epoch: u64) -> bool {
            scribble_text(&mut self.mem, &mut self.rng);
            let ps = self.enc.config().page_size;
            self.enc.begin_epoch(epoch).unwrap();
            for (p, page) in self.mem.chunks(ps).enumerate() {
                self.enc.add_page((p * ps) as u64, page).unwrap();
            }
            let frame = self.enc.end_epoch().unwrap();
            let coded =
                crate::format::open(frame).unwrap().0.flags & crate::format::FLAG_ENTROPY != 0;
            self.dec.apply_flat(frame, &mut self.replica).unwrap();
            assert!(self.replica == self.mem, "epoch {epoch}");
            coded
        }
    }

    /// On a link the encoder is far ahead of, with the models' gate closed: a frame is coded
    /// with the models where their measured cost fits the slack, else with one table a stream
    /// where that one's cost fits, else not at all. The gate and the costs are set by hand, so
    /// no timing decides; the replica is exact in each case.
    #[test]
    fn frames_are_coded_plain_where_only_the_plain_cost_fits_the_slack() {
        let (cheap, dear) = (1.0, 1e12);
        for (models_ns, plain_ns) in [(dear, cheap), (dear, dear), (cheap, cheap)] {
            let mut link = SlowLink::new(8);
            for epoch in 0..3u64 {
                link.close_entropy_gate();
                link.enc.w.out.set_entropy_costs(models_ns, plain_ns);
                let coded_before = link.enc.stats().entropy_frames;
                let coded = link.epoch(epoch);
                // the tier that ran has a measured cost in place of the one set
                let ran = link
                    .enc
                    .w
                    .out
                    .entropy_costs()
                    .map(|ns| ns != cheap && ns != dear);
                let case = format!("models {models_ns}, plain {plain_ns}, epoch {epoch}");
                let expect = [models_ns == cheap, models_ns == dear && plain_ns == cheap];
                assert_eq!(ran, expect, "{case}: the tiers that ran");
                assert_eq!(coded, expect.contains(&true), "{case}");
                assert_eq!(link.enc.stats().entropy_frames - coded_before, coded as u64);
            }
        }
    }

    /// Behind the link (a link of 10^15 B/s: no slack), with the models' gate closed, a frame is
    /// coded with one table a stream where that tier's measured saving takes longer on the link
    /// than its measured cost (30% of the payload for 10^-9 ns a byte, set by hand), and left
    /// uncoded where it saves nothing; the replica is exact in each case.
    #[test]
    fn behind_the_link_the_plain_tier_codes_a_frame_where_its_own_measurements_say_it_pays() {
        for (saved, expect) in [(0.3, true), (0.0, false)] {
            let mut link = SlowLink::new(8);
            link.enc.w.cfg.link_rate = 1_000_000_000_000_000;
            for epoch in 0..3u64 {
                link.close_entropy_gate();
                link.enc.w.out.set_entropy_costs(1e12, 1e-9);
                link.enc.w.out.set_entropy_saved(saved, saved);
                let coded = link.epoch(epoch);
                assert_eq!(coded, expect, "saved {saved}, epoch {epoch}");
            }
        }
    }

    /// On a link the encoder is far ahead of (1000 B/s), with the models' gate closed and the
    /// plain tier's measured cost set by hand to 0.8 of the slack (the link time of the frame,
    /// less the encoding: its cost fits, not [`writer::SLACK_MARGIN`] times it), the frame is
    /// left uncoded, and the next one is coded as the plain tier's probe, not after
    /// `PLAIN_PROBE_FIRST` frames; where the cost is 1.6 times the link time (no near miss),
    /// the next frame is not coded either. The replica is exact in each case.
    #[test]
    fn a_frame_that_missed_the_slack_only_by_the_margin_has_the_plain_tier_probe_the_next() {
        for (plain_ns, second_coded) in [(0.8e6, true), (1.6e6, false)] {
            let mut link = SlowLink::new(8);
            let mut coded = Vec::new();
            for epoch in 0..2u64 {
                link.close_entropy_gate();
                if epoch == 0 {
                    link.enc.w.out.set_entropy_costs(1e12, plain_ns);
                    link.enc.w.out.set_entropy_saved(0.3, 0.3);
                }
                coded.push(link.epoch(epoch));
            }
            assert_eq!(
                coded,
                [false, second_coded],
                "plain cost {plain_ns} ns a byte"
            );
        }
    }

    /// With the models' gate open but the models no better buy than the plain tier (the same
    /// share saved for more time, set by hand, and neither tier fitting the slack), each frame
    /// is coded with one table a stream, its literal contexts not worked out; once
    /// `MODELS_HELD_MAX` frames have been held back from them, the models code one frame, with
    /// its contexts, to measure themselves again, and are then held back as before. The replica
    /// is exact throughout.
    #[test]
    fn an_open_models_gate_defers_to_the_plain_tier_where_it_is_the_better_buy() {
        let dear = 1e12;
        let mut link = SlowLink::new(2);
        let mut models_ran = Vec::new();
        let held = writer::MODELS_HELD_MAX as u64;
        for epoch in 0..held + 3 {
            let mut g = Gates::default().entropy;
            for _ in 0..gates::FRAME_WARMUP {
                g.record(1, 1 << 20);
            }
            assert_eq!(g.peek(1_000), gates::Verdict::Open);
            link.enc.w.gates.entropy = g;
            link.enc.w.out.set_entropy_costs(dear + 1.0, dear);
            link.enc.w.out.set_entropy_saved(0.3, 0.3);
            assert!(link.epoch(epoch), "epoch {epoch}: coded");
            // the tier that ran has its measured cost in place of the one set
            let ran = link.enc.w.out.entropy_costs().map(|ns| ns < dear);
            let contexts = link.enc.w.out.contexts_noted();
            if ran[0] {
                models_ran.push(epoch);
                assert!(
                    contexts > 0,
                    "epoch {epoch}: the models ran without contexts"
                );
            } else {
                assert!(ran[1], "epoch {epoch}: coded by neither tier");
                assert_eq!(contexts, 0, "epoch {epoch}: contexts worked out for plain");
            }
        }
        assert_eq!(
            models_ran,
            [held],
            "the models ran once, after {held} frames held back"
        );
    }

    /// Where neither tier fits the slack by the rates known (both set by hand to cost 10^12 ns
    /// a byte, the models' gate closed), the plain tier still codes the first frame, as it
    /// never ran (the models' rate is no measure of it), and then one frame after
    /// `PLAIN_PROBE_FIRST` frames left uncoded, after twice as many the next time, and so on up
    /// to `PLAIN_PROBE_EVERY`; after a frame where it fits, from `PLAIN_PROBE_FIRST` again.
    /// The replica is exact throughout.
    #[test]
    fn the_plain_tier_probes_at_growing_intervals() {
        let dear = 1e12;
        let mut link = SlowLink::new(2);
        let (first, every) = (writer::PLAIN_PROBE_FIRST, writer::PLAIN_PROBE_EVERY);
        let mut expect = vec![0u64];
        let mut gap = first;
        while expect.len() < 7 {
            expect.push(expect.last().unwrap() + gap as u64 + 1);
            gap = (gap * 2).min(every);
        }
        let mut coded = Vec::new();
        for epoch in 0..=*expect.last().unwrap() {
            link.close_entropy_gate();
            if epoch == 0 {
                link.enc.w.out.set_models_cost_only(dear);
            } else {
                link.enc.w.out.set_entropy_costs(dear, dear);
            }
            if link.epoch(epoch) {
                coded.push(epoch);
            }
        }
        assert_eq!(coded, expect);
        // the gaps reached the longest interval and stayed there
        assert_eq!(expect[6] - expect[5], every as u64 + 1);
        // a frame whose plain cost fits the slack is coded, and the probes start over
        let mut epoch = expect[6] + 1;
        link.close_entropy_gate();
        link.enc.w.out.set_entropy_costs(dear, 1.0);
        assert!(link.epoch(epoch), "a plain tier that fits codes the frame");
        coded.clear();
        for _ in 0..=first {
            epoch += 1;
            link.close_entropy_gate();
            link.enc.w.out.set_entropy_costs(dear, dear);
            if link.epoch(epoch) {
                coded.push(epoch);
            }
        }
        assert_eq!(
            coded,
            [epoch],
            "probed again after PLAIN_PROBE_FIRST frames"
        );
    }

    /// Where entropy coding cannot pay (the plain tier's cheapest coding of a large payload, set
    /// by hand to 10^6 ns a byte, takes longer than the 1000 B/s link takes to carry the byte):
    /// the models, their gate fresh (warming up), are never measured and work out no literal
    /// contexts, and the plain tier measures itself only after `PLAIN_PROBE_EVERY` frames left
    /// uncoded each time, not at intervals growing from `PLAIN_PROBE_FIRST`. Costs are set by
    /// hand, so no timing decides; the replica is exact throughout.
    #[test]
    fn where_coding_cannot_pay_the_entropy_stage_measures_itself_only_at_the_longest_interval() {
        let dear = 1e12;
        let mut link = SlowLink::new(2);
        let every = writer::PLAIN_PROBE_EVERY as u64;
        link.enc.w.out.set_plain_floor(1e6);
        let mut coded = Vec::new();
        for epoch in 0..3 * (every + 1) {
            link.enc.w.gates.entropy = Gates::default().entropy;
            assert_eq!(
                link.enc.w.gates.entropy.peek(1_000),
                gates::Verdict::Measure
            );
            link.enc.w.out.set_entropy_costs(dear, dear);
            if link.epoch(epoch) {
                coded.push(epoch);
            }
            assert_eq!(
                link.enc.w.out.entropy_costs()[0],
                dear,
                "epoch {epoch}: the models were measured"
            );
            assert_eq!(
                link.enc.w.out.contexts_noted(),
                0,
                "epoch {epoch}: literal contexts worked out"
            );
        }
        assert_eq!(coded, [every, 2 * every + 1, 3 * every + 2]);
    }

    /// Where entropy coding cannot pay and no slack covers it (the plain tier's floor, set by
    /// hand to 10^6 ns a byte, its rate never measured), the plain tier does not code a frame
    /// to learn its rate: it probes after `PLAIN_PROBE_EVERY` frames left uncoded, as where its
    /// rate is known (then measured at its real cost, which this link's slack covers, it codes
    /// the frames after). The replica is exact throughout.
    #[test]
    fn where_coding_cannot_pay_the_plain_tier_waits_to_learn_its_rate() {
        let mut link = SlowLink::new(2);
        let every = writer::PLAIN_PROBE_EVERY as u64;
        link.enc.w.out.set_plain_floor(1e6);
        let mut coded = Vec::new();
        for epoch in 0..every + 2 {
            link.enc.w.gates.entropy = Gates::default().entropy;
            if link.epoch(epoch) {
                coded.push(epoch);
            }
        }
        assert_eq!(coded, [every, every + 1]);
    }

    fn open_for_a_millisecond() -> Epochs {
        open_for(std::time::Duration::from_millis(1))
    }

    /// An epoch opened `d` ago.
    fn open_for(d: std::time::Duration) -> Epochs {
        Epochs {
            started: Some(Instant::now() - d),
            away_ns: 0.0,
            closed_at: None,
            epoch: Some(0),
            last: None,
            resync_pending: true,
            busy: false,
        }
    }

    /// The encoder is ahead of the link while its time so far is below its output's link time,
    /// far ahead below half of it: 1 ms of encoding against 10 MB on a 1 MB/s link (10 s) is far
    /// ahead, against the same bytes on a link a million times faster (10 us) it is behind, and
    /// without an open epoch it is never ahead. The page gates judge at the link's rate when
    /// ahead and without an open epoch; behind, at it times `(encoding time / link
    /// time)^GATE_RATE_EXPONENT` (at most [`GATE_RATE_MAX_FACTOR`] times it).
    #[test]
    fn ahead_of_the_link_while_encoding_took_less_than_sending() {
        let e = open_for_a_millisecond();
        assert_eq!(
            e.lead(10_000_000, 1_000_000, 0.0),
            (Lead::FarAhead, 1_000_000)
        );
        let fast = 1_000_000_000_000;
        // 100 times behind: the factor's cap
        assert_eq!(e.lead(10_000_000, fast, 0.0), (Lead::Behind, 16 * fast));
        assert_eq!(e.lead(0, 1_000_000, 0.0), (Lead::Behind, 16_000_000));
        // 1 ms spent (and a little more by now) against 1.5 ms of link time: ahead, not far;
        // the gates judge at the link's rate
        let e = open_for_a_millisecond();
        assert_eq!(
            e.lead(1_500_000, 1_000_000_000, 0.0),
            (Lead::Ahead, 1_000_000_000)
        );
        // 1 s spent (and a little more by now: the bounds allow a stall of a tenth of a second)
        // against 0.8 s of link time: behind by about 1.25, the gates judge at about 1.25^6 =
        // 3.8 times the link's rate; 1 s against 0.95 s: about 1.36 times it; against 0.5 s
        // (about 2 behind, 64 to the power): the cap
        let slow = open_for(std::time::Duration::from_secs(1));
        let (lead, rate) = slow.lead(800_000_000, 1_000_000_000, 0.0);
        assert_eq!(lead, Lead::Behind);
        assert!((3_800_000_000..7_000_000_000).contains(&rate), "{rate}");
        let (lead, rate) = slow.lead(950_000_000, 1_000_000_000, 0.0);
        assert_eq!(lead, Lead::Behind);
        assert!((1_350_000_000..2_500_000_000).contains(&rate), "{rate}");
        assert_eq!(
            slow.lead(500_000_000, 1_000_000_000, 0.0),
            (Lead::Behind, 16_000_000_000)
        );
        let idle = Epochs { started: None, ..e };
        assert_eq!(
            idle.lead(10_000_000, 1_000_000, 0.0),
            (Lead::Behind, 1_000_000)
        );
    }

    /// Far ahead counts the time kept for entropy coding as spent: 1 ms spent against 100 ms of
    /// link time is far ahead with 30 ms kept (2 x 31 ms), only ahead with 60 ms kept (2 x 61 ms
    /// is over 100), and what is kept never makes the encoder behind (500 ms kept).
    #[test]
    fn time_kept_for_entropy_coding_counts_against_far_ahead() {
        let e = open_for_a_millisecond();
        let rate = 1_000_000_000;
        assert_eq!(e.lead(100_000_000, rate, 30e6), (Lead::FarAhead, rate));
        assert_eq!(e.lead(100_000_000, rate, 60e6), (Lead::Ahead, rate));
        assert_eq!(e.lead(100_000_000, rate, 500e6), (Lead::Ahead, rate));
    }

    /// Work fits the epoch's slack while the time spent so far plus the work stays within the
    /// link time of the epoch's bytes: 1 ms spent and 10 ms more against 10 MB on a 100 MB/s
    /// link (100 ms) fits; 200 ms more does not, nor does anything on a link a million times
    /// faster, without a link rate, or without an open epoch.
    #[test]
    fn slack_covers_work_that_ends_before_the_link_does() {
        let e = open_for_a_millisecond();
        assert!(e.slack_covers(10_000_000, 100_000_000, 10e6));
        assert!(!e.slack_covers(10_000_000, 100_000_000, 200e6));
        assert!(!e.slack_covers(10_000_000, 100_000_000_000_000, 0.0));
        assert!(!e.slack_covers(10_000_000, 0, 0.0));
        let idle = Epochs { started: None, ..e };
        assert!(!idle.slack_covers(10_000_000, 100_000_000, 0.0));
    }

    /// On a busy machine the encoder's spare time is other threads': 1 ms into an epoch whose
    /// 10 MB take 100 ms on the link, it is far ahead with a core to itself, only ahead on a
    /// busy machine (the stages the lead forces there cost at most a RAW page's link time), and
    /// no slack covers work there; behind the link it is behind either way.
    #[test]
    fn on_a_busy_machine_the_lead_is_not_spent() {
        let free = open_for_a_millisecond();
        let busy = Epochs { busy: true, ..free };
        let rate = 100_000_000;
        assert_eq!(free.lead(10_000_000, rate, 0.0), (Lead::FarAhead, rate));
        assert_eq!(busy.lead(10_000_000, rate, 0.0), (Lead::Ahead, rate));
        assert!(free.slack_covers(10_000_000, rate, 10e6));
        assert!(!busy.slack_covers(10_000_000, rate, 10e6));
        let fast = 100_000_000_000_000;
        assert_eq!(
            busy.lead(10_000_000, fast, 0.0),
            free.lead(10_000_000, fast, 0.0)
        );
    }

    /// A busy machine as the encoder measures it at its epochs' starts ([`RunQueue`] set by
    /// hand): a frame the models' measured cost fits the slack of is coded on a machine with
    /// cores to spare, and not on a busy one (the models' gate closed, the plain tier's cost
    /// unknown but for its probe of the first frame, which it has made). The replica is exact.
    ///
    /// [`RunQueue`]: contention::RunQueue
    #[test]
    fn on_a_busy_machine_the_slack_codes_no_frame() {
        for busy in [false, true] {
            let mut link = SlowLink::new(8);
            link.enc.w.run_queue.set_share(if busy { 1.0 } else { 0.0 });
            let mut coded = Vec::new();
            for epoch in 0..3u64 {
                link.close_entropy_gate();
                link.enc.w.out.set_entropy_costs(1.0, 1e12);
                link.enc.w.out.set_entropy_saved(0.3, 0.3);
                coded.push(link.epoch(epoch));
            }
            assert_eq!(coded, [!busy; 3], "busy {busy}");
        }
    }

    /// The caller's time between a part of the epoch closing and the next frame starting
    /// (sending the part) is not the encoder's: 10 ms into the epoch, 7 of them spent away, the
    /// encoder is ahead of 5 ms of link time, where counting them it would be behind.
    #[test]
    fn time_away_between_parts_is_not_the_encoders() {
        let ms = std::time::Duration::from_millis;
        let now = Instant::now();
        let mut e = Epochs {
            started: Some(now - ms(10)),
            ..open_for_a_millisecond()
        };
        let rate = 1_000_000_000; // 5 MB: 5 ms
        assert_eq!(e.lead(5_000_000, rate, 0.0).0, Lead::Behind);
        e.closed_at = Some(now - ms(7));
        e.resumed();
        assert!(e.closed_at.is_none() && e.away_ns >= 7e6);
        assert_eq!(e.lead(5_000_000, rate, 0.0).0, Lead::Ahead);
        // without a link rate nothing is timed
        let mut idle = Epochs {
            started: None,
            ..open_for_a_millisecond()
        };
        idle.part_closed();
        assert!(idle.closed_at.is_none());
    }
}
