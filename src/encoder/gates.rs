//! Adaptive stages: with a link rate configured ([`Config::link_rate`](crate::Config)), the
//! encoder skips a costly stage where the time it takes is more than the time the bytes it saves
//! would take on the link.
//!
//! Each gated stage (the analysis of a non-zero page, in two gates: pages whose last-sent copy
//! the cache holds and the others; its block work; dictionary compression; fallback
//! compression; entropy coding) keeps a moving average of its cost (nanoseconds per use) and of
//! what it saved (bytes per use, against what would have been sent without it). A use is worth
//! it when `saved bytes / link rate > cost`. While a gate is closed the stage still runs on one
//! use in [`PROBE_EVERY`] (per page; [`FRAME_PROBE_EVERY`] for entropy coding, used once per
//! frame), times the whole number of times its cost exceeds what it saves (at most
//! [`MAX_BACKOFF`]), so the averages follow the workload (memory that turns compressible again,
//! a link that got faster); the back-off applies to the entropy gate too, at most
//! [`FRAME_MAX_BACKOFF`] times (up to 64 frames between probes). The encoder measures entropy
//! coding of a frame on its first 256 KiB of ops as soon as the frame holds 1 MiB, scaled to
//! the frame ([`Verdict::Measure`]), and codes the whole frame only if that says it pays (or
//! the encoder's lead over the link covers it): the first frame (all of memory) is not coded
//! just to learn that coding does not pay on a fast link, and a frame that is not going to be
//! coded stops working out what coding it would need (the literal contexts).
//!
//! The encoder asks the page gates at a link rate of its own (the configured one, or a multiple
//! of it while its encoding is behind the link), and a page that runs a stage only to measure it
//! (a warm-up use or a probe, [`Verdict::Measure`]) is no sample of the analysis gates.
//!
//! With its analysis gate closed a page is sent compressed whole (where the compressor's gate
//! lets it) or RAW, as a per-page sender would; what that costs ([`ShedCost`]) is what the
//! analysis and the compressor are credited beyond. The page cache still learns such a page
//! while the analysis of cached pages runs and sending and storing it keep up with the link
//! ([`StoreCost`]); otherwise one page in [`PROBE_EVERY`], so probes can find the deltas of a
//! workload that turns delta-friendly.
//!
//! ```
//! use fgbi::adapt::Gate;
//! // a 1 GB/s link: one byte costs 1 ns on the wire
//! let mut g = Gate::default();
//! for _ in 0..64 {
//!     if g.open(1_000_000_000) {
//!         g.record(5_000, 100); // 5 us to save 100 bytes (100 ns of link time): not worth it
//!     }
//! }
//! assert!(!g.worth_it(1_000_000_000));
//! assert!(g.skipped() > 0);
//! ```

/// Uses a per-page gate always lets through before it trusts its averages.
pub const WARMUP: u64 = 16;
/// A closed per-page gate lets one use in this many through, to keep measuring.
pub const PROBE_EVERY: u64 = 32;
/// Uses (frames) the entropy gate lets through before it trusts its averages.
pub const FRAME_WARMUP: u64 = 2;
/// A closed entropy gate codes one frame in this many, to keep measuring.
pub const FRAME_PROBE_EVERY: u64 = 8;

/// A closed gate probes at most this many times less often than its `probe_every` (see
/// [`Gate::verdict`]): a per-page stage far from paying is probed once in 1024 pages. A probe
/// of the analysis or of compression costs 5-10 us, a page sent RAW about 0.3 us, so probes
/// then cost under 3% of the encoder's time on a link where every page goes RAW.
pub const MAX_BACKOFF: u64 = 32;

/// The entropy gate's [`MAX_BACKOFF`]: its probe is a sample of a frame, and a frame stands for
/// many pages, so it backs off less (a workload that turns compressible is found within 64
/// frames).
pub const FRAME_MAX_BACKOFF: u64 = 8;

/// Weight of a new sample in the moving averages (1/16).
const ALPHA: f64 = 1.0 / 16.0;

/// Past the warm-up, a gate takes a use's cost as at most this many times its average.
pub const OUTLIER: f64 = 8.0;

/// What a [`Gate`] says of the next use of its stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Run it: no link limit, or it pays on this link.
    Open,
    /// Skip it: it costs more time than the bytes it saves take on the link.
    Closed,
    /// Run it (or a sample of it) and record what it cost and saved: warm-up or probe.
    Measure,
}

/// The decision state of one stage.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    cost_ns: f64,
    saved: f64,
    uses: u64,
    since_probe: u64,
    skipped: u64,
    warmup: u64,
    probe_every: u64,
    max_backoff: u64,
}

impl Default for Gate {
    /// A per-page gate ([`WARMUP`], [`PROBE_EVERY`]).
    fn default() -> Self {
        Gate::new(WARMUP, PROBE_EVERY)
    }
}

impl Gate {
    /// A gate that trusts its averages after `warmup` uses and, closed, lets one use in
    /// `probe_every` through.
    pub fn new(warmup: u64, probe_every: u64) -> Gate {
        Gate {
            cost_ns: 0.0,
            saved: 0.0,
            uses: 0,
            since_probe: 0,
            skipped: 0,
            warmup,
            probe_every: probe_every.max(1),
            max_backoff: MAX_BACKOFF,
        }
    }

    /// The same gate, its probes backing off at most `max_backoff` times (at least 1; see
    /// [`verdict`](Self::verdict)) instead of [`MAX_BACKOFF`].
    pub fn with_max_backoff(mut self, max_backoff: u64) -> Gate {
        self.max_backoff = max_backoff.max(1);
        self
    }

    /// Whether the stage should run on the next use, for a link of `link_rate` bytes per second
    /// (0: no link limit given, always run). Counts a skip when it says no.
    pub fn open(&mut self, link_rate: u64) -> bool {
        self.verdict(link_rate) != Verdict::Closed
    }

    /// What to do on the next use, for a link of `link_rate` bytes per second: run the stage
    /// ([`Verdict::Open`]: no link limit, or the averages say it pays), skip it
    /// ([`Verdict::Closed`], counted as a skip), or run it to measure ([`Verdict::Measure`]: in
    /// the warm-up, and on a closed gate's probes). A caller that can measure a use more cheaply
    /// than by making it (on a sample) does so on `Measure` and then asks
    /// [`worth_it`](Self::worth_it); [`open`](Self::open) takes `Measure` as run.
    ///
    /// ```
    /// use fgbi::adapt::{Gate, Verdict};
    /// let mut g = Gate::new(1, 4);
    /// assert_eq!(g.verdict(0), Verdict::Open); // no link limit
    /// assert_eq!(g.verdict(1_000_000_000), Verdict::Measure); // warm-up
    /// g.record(150, 100); // 150 ns to save 100 ns of link time
    /// let v: Vec<Verdict> = (0..4).map(|_| g.verdict(1_000_000_000)).collect();
    /// assert_eq!(v[..3], [Verdict::Closed; 3]);
    /// assert_eq!(v[3], Verdict::Measure); // the probe
    /// ```
    pub fn verdict(&mut self, link_rate: u64) -> Verdict {
        let v = self.peek(link_rate);
        match v {
            Verdict::Closed => {
                self.since_probe += 1;
                self.skipped += 1;
            }
            // a probe (a warm-up use counts nothing)
            Verdict::Measure if self.uses >= self.warmup => self.since_probe = 0,
            _ => {}
        }
        v
    }

    /// What [`verdict`](Self::verdict) will say next, without counting anything: a caller that
    /// prepares work for a stage (the entropy stage's literal contexts) leaves it undone when
    /// the stage is going to be skipped. The gate changes only when it is asked for a verdict
    /// or [`record`](Self::record)s a use.
    pub fn peek(&self, link_rate: u64) -> Verdict {
        if link_rate == 0 {
            return Verdict::Open;
        }
        if self.uses < self.warmup {
            return Verdict::Measure;
        }
        if self.worth_it(link_rate) {
            return Verdict::Open;
        }
        // a closed gate waits at least `probe_every` uses whatever its back-off, which is worked
        // out (a division) only past them: this runs for every page, on every gate it asks
        let waited = self.since_probe + 1;
        if waited >= self.probe_every
            && waited >= self.probe_every.saturating_mul(self.backoff(link_rate))
        {
            Verdict::Measure
        } else {
            Verdict::Closed
        }
    }

    /// Whether the averages say the stage pays on this link: the link time of the bytes it
    /// saves (`saved / link_rate`) exceeds its cost, compared without a division.
    pub fn worth_it(&self, link_rate: u64) -> bool {
        link_rate == 0 || self.saved * 1e9 > self.cost_ns * link_rate as f64
    }

    /// How many times `probe_every` a closed gate waits between probes: the whole number of
    /// times the stage's cost exceeds the link time it saves, from 1 to the gate's maximum
    /// ([`MAX_BACKOFF`] unless [`with_max_backoff`](Self::with_max_backoff)). A stage that nearly
    /// pays is probed as often as ever; one that costs many times what it saves (compression on a
    /// 10 Gbit/s link) is probed up to that many times less often, so its probes stop costing a
    /// noticeable share of the encoder's time.
    fn backoff(&self, link_rate: u64) -> u64 {
        // cost / saved_ns with saved_ns = saved * 1e9 / link_rate; one division, none at the cap
        let cost = self.cost_ns * link_rate as f64;
        let saved = self.saved * 1e9;
        let max = self.max_backoff as f64;
        if cost >= saved * max {
            self.max_backoff
        } else {
            (cost / saved).clamp(1.0, max) as u64
        }
    }

    /// Records one use: its cost and the bytes it saved (0 when it did not win). Past the
    /// warm-up a cost is taken as at most [`OUTLIER`] times the average: a use the thread was
    /// preempted in (milliseconds on a shared machine) would otherwise hold the gate shut for
    /// thousands of uses.
    pub fn record(&mut self, cost_ns: u64, saved_bytes: u64) {
        let (mut c, s) = (cost_ns as f64, saved_bytes as f64);
        if self.uses >= self.warmup {
            c = c.min(OUTLIER * self.cost_ns.max(1.0));
        }
        if self.uses == 0 {
            (self.cost_ns, self.saved) = (c, s);
        } else {
            self.cost_ns += ALPHA * (c - self.cost_ns);
            self.saved += ALPHA * (s - self.saved);
        }
        self.uses += 1;
    }

    /// Uses skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The average cost of a use, in nanoseconds (0 before the first).
    pub(crate) fn cost_ns(&self) -> f64 {
        self.cost_ns
    }

    /// The average bytes a use saved (0 before the first).
    pub(crate) fn saved_bytes(&self) -> f64 {
        self.saved
    }

    /// Uses recorded so far.
    #[cfg(test)]
    pub(crate) fn uses(&self) -> u64 {
        self.uses
    }
}

/// What keeping the page cache up to date costs on pages sent RAW without analysis: kept while
/// a page sent RAW and stored still takes less time than the page takes on the link (the encoder
/// then keeps up with the link while the cache learns), so that on a link about as fast as
/// memory the cache is given up too (pages then go out as zero or RAW alone). Given up, it still
/// stores one page in [`PROBE_EVERY`] to keep measuring, fewer where a store costs several
/// pages' link time (see [`probe_due`](Self::probe_due)).
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreCost {
    time: Nanos,
    since_probe: u64,
}

impl StoreCost {
    /// Whether to store the next page of `page_size` bytes on a link of `link_rate` bytes per
    /// second, when sending a page RAW takes `shed_ns`: during the warm-up, while the two take
    /// less than the page's time on the link, and as a probe.
    pub fn affordable(&mut self, link_rate: u64, page_size: usize, shed_ns: u64) -> bool {
        self.kept(link_rate, page_size, shed_ns) || self.probe_due(link_rate, page_size, shed_ns)
    }

    /// Whether to store the next page as a probe where the cache is not kept up: one in
    /// [`PROBE_EVERY`] times the whole number of page link times that a store and a RAW page
    /// take (1 to [`MAX_BACKOFF`], as a closed [`Gate`] backs off): on a link as fast as memory
    /// a probe costs several pages' link time, and is made that many times less often.
    pub fn probe_due(&mut self, link_rate: u64, page_size: usize, shed_ns: u64) -> bool {
        self.since_probe += 1;
        if self.since_probe >= PROBE_EVERY
            && self.since_probe >= PROBE_EVERY * self.backoff(link_rate, page_size, shed_ns)
        {
            self.since_probe = 0;
            return true;
        }
        false
    }

    /// How many times [`PROBE_EVERY`] a probe waits: the store and RAW page's time over the
    /// page's link time, 1 to [`MAX_BACKOFF`] (1 before the warm-up has measured a store).
    fn backoff(&self, link_rate: u64, page_size: usize, shed_ns: u64) -> u64 {
        if self.time.uses < WARMUP {
            return 1;
        }
        let link_ns = page_size as f64 * 1e9 / link_rate.max(1) as f64;
        ((self.time.ns + shed_ns as f64) / link_ns).clamp(1.0, MAX_BACKOFF as f64) as u64
    }

    /// Records the time one store took.
    pub fn record(&mut self, ns: u64) {
        self.time.record(ns);
    }

    /// The time the shed path spends storing a page, on average, on a link of `link_rate` bytes
    /// per second when sending it RAW takes `shed_ns`: the time of one store where the cache is
    /// kept up ([`affordable`](Self::affordable) apart from its probes), else 0. An analysed
    /// page is stored too, so the analysis gates are charged only their time beyond this and
    /// the RAW page's.
    pub fn shed_share_ns(&self, link_rate: u64, page_size: usize, shed_ns: u64) -> u64 {
        if self.kept(link_rate, page_size, shed_ns) {
            self.time.ns as u64
        } else {
            0
        }
    }

    /// Whether the cache is kept up (every shed page stored): during the warm-up, and while a
    /// store and a RAW page take less than the page's time on the link.
    fn kept(&self, link_rate: u64, page_size: usize, shed_ns: u64) -> bool {
        let link_ns = page_size as f64 * 1e9 / link_rate.max(1) as f64;
        self.time.uses < WARMUP || self.time.ns + (shed_ns as f64) < link_ns
    }
}

/// A moving average of a time in nanoseconds (new samples weigh [`ALPHA`]) and how many
/// samples it has seen.
#[derive(Debug, Clone, Copy, Default)]
struct Nanos {
    ns: f64,
    uses: u64,
}

impl Nanos {
    fn record(&mut self, ns: u64) {
        let ns = ns as f64;
        self.ns = if self.uses == 0 {
            ns
        } else {
            self.ns + ALPHA * (ns - self.ns)
        };
        self.uses += 1;
    }
}

/// What sending a page RAW without analysis costs (the cache's upkeep apart: [`StoreCost`]),
/// timed on one shed page in [`SHED_TIMED_EVERY`]. The analysis gates are charged only their
/// cost beyond it (beyond the store too, where the shed path stores, and for pages the cache
/// lacks beyond the compressor's, where the shed path compresses): the first read of a page
/// that is not in the processor's cache is paid by whichever path reads it, and sending it RAW
/// reads it too.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShedCost(Nanos);

/// The shed path is timed on one page in this many.
pub const SHED_TIMED_EVERY: u64 = 16;

impl ShedCost {
    /// Records the time one shed page took.
    pub fn record(&mut self, ns: u64) {
        self.0.record(ns);
    }

    /// The average, in nanoseconds (0 before the first page is timed).
    pub fn ns(&self) -> u64 {
        self.0.ns as u64
    }
}

/// The gates of an encoder's costly stages.
#[derive(Debug, Clone, Copy)]
pub struct Gates {
    /// Everything done to a non-zero page whose last-sent copy the cache holds, beyond sending
    /// it RAW: the XOR delta, block hashing, sharing and the page cache (and the stages below,
    /// which have gates of their own).
    pub analysis: Gate,
    /// The same for any other page (only block hashes known, or nothing): block work and
    /// compression, which save far less per nanosecond than a delta against a copy.
    pub analysis_uncached: Gate,
    /// The page cache's upkeep while the analysis gate is closed.
    pub cache_store: StoreCost,
    /// What a page sent RAW without analysis costs.
    pub shed: ShedCost,
    /// Block work on a page the analysis runs on against its cached copy (or the zero page):
    /// comparing and hashing its changed blocks, the BLOCKS op with zero and shared blocks, the
    /// sharing table's upkeep, credited with what it saves beyond the best op found before it
    /// (the XOR delta, or the dictionary's op where that ran first). Closed, the analysis is the
    /// XOR delta against the cached copy (and the compressors, under their own gates), as
    /// QEMU's XBZRLE: what pays on a link where hashing does not.
    pub blocks: Gate,
    /// Block work on a page whose last-sent copy the cache lacks (new to the backup, or known
    /// by its block hashes only), where zero and shared blocks are all the saving there is
    /// besides compression. With one gate for both kinds, block work that paid on new pages
    /// held the gate open for cached pages on which it saved nothing beyond their deltas
    /// (proc-node at 10 Gbit/s).
    pub blocks_uncached: Gate,
    /// lz4 with the page's last-sent version as dictionary.
    pub dict: Gate,
    /// The fallback compressor (whole pages and block literals).
    pub compress: Gate,
    /// The fallback compressor's uses on whole pages only: what the shed path sends and spends
    /// where it compresses a page (literal sections are shorter and save less). Only its
    /// averages are read; it is never asked for a verdict.
    pub compress_whole: Gate,
    /// A XOR delta longer than half a page, on a cached page where no other stage runs (block
    /// work, dictionary and compressor shut): finished and sent instead of the RAW page. Its
    /// use costs the whole delta's encoding and saves the difference to a RAW op.
    pub long_delta: Gate,
    /// Entropy coding of the frame's payload (one use per frame).
    pub entropy: Gate,
}

impl Gates {
    /// The analysis gate of a page whose last-sent copy is `cached` (or not).
    pub fn analysis_gate(&mut self, cached: bool) -> &mut Gate {
        if cached {
            &mut self.analysis
        } else {
            &mut self.analysis_uncached
        }
    }

    /// The block work's gate of a page whose last-sent copy is `cached` (or not).
    pub fn blocks_gate(&mut self, cached: bool) -> &mut Gate {
        if cached {
            &mut self.blocks
        } else {
            &mut self.blocks_uncached
        }
    }
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            analysis: Gate::default(),
            analysis_uncached: Gate::default(),
            cache_store: StoreCost::default(),
            shed: ShedCost::default(),
            blocks: Gate::default(),
            blocks_uncached: Gate::default(),
            dict: Gate::default(),
            compress: Gate::default(),
            compress_whole: Gate::default(),
            long_delta: Gate::default(),
            entropy: Gate::new(FRAME_WARMUP, FRAME_PROBE_EVERY).with_max_backoff(FRAME_MAX_BACKOFF),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With no link rate the gate never closes, whatever the stage costs.
    #[test]
    fn no_link_rate_never_skips() {
        let mut g = Gate::default();
        for _ in 0..1000 {
            assert!(g.open(0));
            g.record(1_000_000, 0);
        }
        assert_eq!(g.skipped(), 0);
    }

    /// A stage that saves more link time than it costs stays open; one that does not closes
    /// after the warm-up and is then probed once in PROBE_EVERY uses.
    #[test]
    fn closes_exactly_when_the_link_time_saved_is_less_than_the_cost() {
        // 1 GB/s: a byte is 1 ns
        let mut pays = Gate::default();
        let mut costs = Gate::default();
        let (mut ran_pays, mut ran_costs) = (0, 0);
        for _ in 0..WARMUP + 10 * PROBE_EVERY {
            if pays.open(1_000_000_000) {
                ran_pays += 1;
                pays.record(1_000, 2_000); // 1 us for 2 us of link time
            }
            if costs.open(1_000_000_000) {
                ran_costs += 1;
                costs.record(3_000, 2_000); // 3 us for 2 us of link time
            }
        }
        assert_eq!(ran_pays, WARMUP + 10 * PROBE_EVERY);
        assert_eq!(pays.skipped(), 0);
        assert_eq!(
            ran_costs,
            WARMUP + 10,
            "warm-up, then one probe per PROBE_EVERY"
        );
        // the same costly stage pays on a link 2x slower
        assert!(costs.worth_it(500_000_000 - 1));
        assert!(!costs.worth_it(1_000_000_000));
    }

    /// A closed gate whose stage costs many times what it saves is probed up to MAX_BACKOFF
    /// times less often; one that nearly pays (above: 1.5x) as often as ever.
    #[test]
    fn probes_back_off_with_how_far_the_stage_is_from_paying() {
        let uses = WARMUP + 100 * PROBE_EVERY * MAX_BACKOFF;
        let probes = |cost_ns: u64| {
            let mut g = Gate::default();
            let mut ran = 0;
            for _ in 0..uses {
                if g.open(1_000_000_000) {
                    ran += 1;
                    g.record(cost_ns, 1_000); // saves 1 us of link time
                }
            }
            ran - WARMUP
        };
        assert_eq!(probes(1_500), 100 * MAX_BACKOFF);
        assert_eq!(probes(3_500), 100 * MAX_BACKOFF / 3);
        assert_eq!(probes(100_000), 100);
    }

    /// The entropy gate (one use per frame) backs off at most FRAME_MAX_BACKOFF times, less
    /// than the per-page gates.
    #[test]
    fn the_entropy_gate_backs_off_less() {
        let mut g = Gates::default().entropy;
        let (mut ran, uses) = (0, FRAME_WARMUP + 10 * FRAME_PROBE_EVERY * FRAME_MAX_BACKOFF);
        for _ in 0..uses {
            if g.open(1_000_000_000) {
                ran += 1;
                g.record(1_000_000, 1_000); // a thousand times what it saves
            }
        }
        const { assert!(FRAME_MAX_BACKOFF < MAX_BACKOFF) };
        assert_eq!(ran - FRAME_WARMUP, 10);
    }

    /// One use that took a thousand times the usual (the thread was preempted) moves the
    /// average by at most OUTLIER times the usual cost over 16, and the gate stays open.
    #[test]
    fn one_preempted_use_does_not_shut_the_gate() {
        let mut g = Gate::default();
        for _ in 0..WARMUP {
            g.record(1_000, 2_000); // 1 us for 2 us of link time at 1 GB/s
        }
        g.record(1_000_000, 2_000);
        assert!(g.worth_it(1_000_000_000));
        assert!(g.cost_ns < 1_000.0 + OUTLIER * 1_000.0 / 16.0 + 1.0);
    }

    /// `peek` foretells the next `verdict` exactly and changes nothing, through warm-up, open,
    /// closed, probe and back-off states and with no link rate.
    #[test]
    fn peek_foretells_the_next_verdict_without_counting() {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        for link in [0, 1_000_000, 1_000_000_000] {
            let mut g = Gate::new(3, 8);
            for _ in 0..5_000 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let before = (g.skipped, g.since_probe, g.uses);
                let peeked = g.peek(link);
                assert_eq!(
                    (g.skipped, g.since_probe, g.uses),
                    before,
                    "peek changed the gate"
                );
                assert_eq!(peeked, g.peek(link));
                let v = g.verdict(link);
                assert_eq!(peeked, v);
                if v != Verdict::Closed {
                    // costs from far below to far above what the saving is worth
                    g.record(rng % 8_000, 1_000 + (rng >> 32) % 1_000);
                }
            }
            if link == 1_000_000_000 {
                assert!(g.skipped() > 0, "the walk never closed the gate");
            }
        }
    }

    /// Probes let the gate reopen when the workload changes.
    #[test]
    fn reopens_when_savings_come_back() {
        let mut g = Gate::default();
        for _ in 0..200 {
            if g.open(1_000_000_000) {
                g.record(3_000, 0);
            }
        }
        assert!(!g.worth_it(1_000_000_000));
        let mut reopened_after = None;
        for i in 0..10_000 {
            if g.open(1_000_000_000) {
                g.record(3_000, 4_000);
            }
            if g.worth_it(1_000_000_000) {
                reopened_after = Some(i);
                break;
            }
        }
        assert!(reopened_after.is_some(), "a probe measured the new savings");
    }

    /// The cache is kept up while a store and a RAW page take less than the page's link time:
    /// 100 ns and 1 us against 4 KiB at 1 GB/s (4 us) keeps it; the same against a link as fast
    /// as memory (4 KiB in 100 ns) gives it up once the warm-up has measured it, but for probes
    /// that find it cheap again when it is.
    #[test]
    fn the_cache_is_given_up_only_where_storing_would_fall_behind_the_link() {
        let mut c = StoreCost::default();
        for _ in 0..WARMUP {
            assert!(
                c.affordable(40_000_000_000, 4096, 1_000),
                "kept during the warm-up"
            );
            c.record(100);
        }
        assert!(c.affordable(1_000_000_000, 4096, 1_000));
        assert!(
            !c.affordable(1_000_000_000, 4096, 4_000),
            "with the RAW page, over 4 us"
        );
        assert!(!c.affordable(40_000_000_000, 4096, 1_000));
        // given up, it still stores one page in PROBE_EVERY times the page link times a store
        // and a RAW page take (1.1 us against 102.4 ns: 10), whose time it records
        let probes = (0..100 * PROBE_EVERY)
            .filter(|_| c.affordable(40_000_000_000, 4096, 1_000))
            .count();
        assert_eq!(probes as u64, 10);
        // where the two take less than two page link times (1.1 us against 0.82 us at 5 GB/s),
        // one page in PROBE_EVERY
        let probes = (0..10 * PROBE_EVERY)
            .filter(|_| c.affordable(5_000_000_000, 4096, 1_000))
            .count();
        assert_eq!(probes as u64, 10);
        // cheap again (the first stores paid for touching fresh memory): kept again
        for _ in 0..64 {
            c.record(10);
        }
        assert!(c.affordable(40_000_000_000, 4096, 50));
    }

    /// The shed path's store is what an analysed page's store replaces: where the cache is kept
    /// up it counts the average store (10 ns here), where it is given up nothing (its probes
    /// aside, the shed path stores nothing).
    #[test]
    fn the_store_is_the_shed_paths_share_only_where_the_cache_is_kept() {
        let mut c = StoreCost::default();
        for _ in 0..WARMUP {
            c.record(10);
        }
        assert_eq!(c.shed_share_ns(1_000_000_000, 4096, 1_000), 10);
        assert_eq!(c.shed_share_ns(1_000_000_000, 4096, 5_000), 0);
        assert_eq!(c.shed_share_ns(400_000_000_000, 4096, 1_000), 0);
        // and it agrees with what the shed path does
        for (rate, shed) in [(1_000_000_000, 1_000), (1_000_000_000, 5_000)] {
            let share = c.shed_share_ns(rate, 4096, shed);
            assert_eq!(share > 0, c.affordable(rate, 4096, shed), "{rate} {shed}");
        }
    }
}
