//! `fgbi eval`: libfgbi and the baselines on the same dirty pages of a trace, and the time each
//! takes to ship them over links of several rates.

#[path = "ship.rs"]
mod ship;

use crate::baselines::{self, Method};
use crate::opts::{fallback_string, stages_string, ConfigArgs};
use crate::plot;
use crate::progress;
use crate::trace::{Trace, PAGE};
use clap::Args;
use fgbi::cache::Policy;
use fgbi::{Config, Decoder, Encoder, EncoderStats};
use indicatif::ProgressBar;
use serde::Serialize;
use serde_json::{json, Value};
use ship::{Cost, Links, Row};
use std::path::PathBuf;
use std::time::Instant;

/// Pages encoded per timed batch of a baseline (its stream is then decoded and checked).
const BATCH: usize = 256;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Trace directory (epoch-NNNN.img files).
    pub trace: PathBuf,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Write an SVG chart of bytes sent per epoch for each method.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub cfg: ConfigArgs,
    /// Link speed in Gbit/s for the "eff GB/s" column of the method table (the ship-time model
    /// at one link, libfgbi as configured).
    #[arg(long, value_name = "G", value_parser = ship::parse_link, default_value_t = 10.0)]
    pub link_gbps: f64,
    /// Link rates in Gbit/s for the ship-time table, comma-separated, or `none`. libfgbi runs
    /// once more for each, its encoder adapted to that link (as with --adapt-gbps).
    #[arg(long, value_name = "LIST", value_parser = ship::parse_links,
          default_value = ship::DEFAULT_LINKS, allow_hyphen_values = true)]
    pub links: Links,
    /// Payload size of the frames of the ship-time runs (K/M/G suffixes): each epoch goes out in
    /// parts of about this size, as a streaming sender sends them (0: one frame per epoch). The
    /// run as configured uses --frame-bytes.
    #[arg(long, value_name = "B", value_parser = crate::opts::parse_bytes, default_value = "1M")]
    pub ship_frame_bytes: usize,
    /// Write an SVG chart (log-log) of effective rate against link rate for each method.
    #[arg(long, value_name = "FILE.svg")]
    pub plot_ship: Option<PathBuf>,
    /// Timed rounds of the ship-time runs (the baselines and libfgbi adapted to each link), run
    /// one after another: each baseline reports its median encode and decode seconds, each link
    /// the adapted run of median ship time. One round's times move by a fifth or more on a busy
    /// machine; the median of 3 or 5 is what to compare.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=99))]
    pub rounds: u32,
    /// Per-epoch detail.
    #[arg(long, short)]
    pub verbose: bool,
    /// Eviction policy of libfgbi's full-page cache: clock (libfgbi's, with admission) or direct
    /// (QEMU XBZRLE's direct-mapped cache).
    #[arg(long, value_parser = parse_policy, default_value = "clock")]
    pub policy: Policy,
    /// Run libfgbi only, without the baselines (for sweeps of libfgbi's own options).
    #[arg(long)]
    pub no_baselines: bool,
    /// Also run libfgbi trying every encoding on every page and keeping the smallest
    /// (`Encoder::set_exhaustive`), and report how far the normal per-page choice is from it.
    #[arg(long)]
    pub exhaustive: bool,
    /// Copy the pages libfgbi sends RAW into its frames (`Encoder::add_page`) instead of
    /// leaving them in the trace's memory for the sender's vectored write
    /// (`Encoder::add_page_in_place`: the trace's images do not change while their frames are
    /// out, as a checkpoint's staged pages do not). The frames are the same bytes either way.
    #[arg(long)]
    pub copy_pages: bool,
    /// Testing aid: flip one bit of libfgbi's frame of this epoch before decoding it. The decoder
    /// must reject it; eval reports the rejection, resynchronises and exits with status 1.
    #[arg(long, hide = true)]
    pub tamper_epoch: Option<u64>,
}

fn parse_policy(s: &str) -> Result<Policy, String> {
    match s {
        "clock" => Ok(Policy::Clock),
        "direct" => Ok(Policy::DirectMapped),
        _ => Err(format!("unknown policy {s:?} (clock, direct)")),
    }
}

#[derive(Debug, Serialize)]
struct ExhaustiveJson {
    #[serde(flatten)]
    totals: MethodTotals,
    verified: bool,
    op_bytes: u64,
}

/// Totals of one method.
#[derive(Debug, Default, Clone, Serialize)]
pub struct MethodTotals {
    pub bytes_sent: u64,
    pub bytes_sent_after_epoch0: u64,
    pub dirty_bytes: u64,
    pub encode_seconds: f64,
    pub decode_seconds: f64,
    pub per_epoch_bytes: Vec<u64>,
    /// Each round's encode seconds when `--rounds` is above 1 (`encode_seconds` is their median).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub encode_seconds_rounds: Vec<f64>,
    /// Each round's decode seconds when `--rounds` is above 1 (`decode_seconds` is their median).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decode_seconds_rounds: Vec<f64>,
}

impl MethodTotals {
    fn add_epoch(&mut self, epoch: usize, bytes: u64, dirty: u64) {
        self.bytes_sent += bytes;
        if epoch > 0 {
            self.bytes_sent_after_epoch0 += bytes;
        }
        self.dirty_bytes += dirty;
        self.per_epoch_bytes.push(bytes);
    }
}

#[derive(Debug, Serialize)]
struct OpJson {
    pages: u64,
    bytes: u64,
}

#[derive(Debug, Serialize)]
struct StagesJson {
    unchanged_pages: u64,
    zero: OpJson,
    raw: OpJson,
    compressed: OpJson,
    delta: OpJson,
    dict: OpJson,
    blocks: OpJson,
    zero_blocks: u64,
    shared_blocks: u64,
    kept_blocks: u64,
    literal_blocks: u64,
    cache_hits: u64,
    cache_hash_hits: u64,
    cache_misses: u64,
    cache_evictions: u64,
    resyncs: u64,
    entropy_frames: u64,
    entropy_saved_bytes: u64,
    skipped_analysis: u64,
    skipped_blocks: u64,
    skipped_dict: u64,
    skipped_compress: u64,
    skipped_entropy: u64,
    memory_bytes: u64,
    stage_seconds: StageSeconds,
}

#[derive(Debug, Serialize)]
struct StageSeconds {
    zero: f64,
    delta: f64,
    blocks: f64,
    dict: f64,
    compress: f64,
    update: f64,
    entropy: f64,
}

#[derive(Debug, Serialize)]
struct FgbiJson {
    #[serde(flatten)]
    totals: MethodTotals,
    verified: bool,
    rejected_epochs: Vec<u64>,
    stages: StagesJson,
}

fn stages_json(s: &EncoderStats) -> StagesJson {
    let op = |c: fgbi::stats::OpCount| OpJson {
        pages: c.pages,
        bytes: c.bytes,
    };
    let n = s.nanos;
    StagesJson {
        unchanged_pages: s.unchanged,
        zero: op(s.zero),
        raw: op(s.raw),
        compressed: op(s.compressed),
        delta: op(s.delta),
        dict: op(s.dict),
        blocks: op(s.blocks),
        zero_blocks: s.zero_blocks,
        shared_blocks: s.shared_blocks,
        kept_blocks: s.kept_blocks,
        literal_blocks: s.literal_blocks,
        cache_hits: s.cache.hits,
        cache_hash_hits: s.cache.hash_hits,
        cache_misses: s.cache.misses,
        cache_evictions: s.cache.evictions,
        resyncs: s.resyncs,
        entropy_frames: s.entropy_frames,
        entropy_saved_bytes: s.entropy_saved,
        skipped_analysis: s.skipped_analysis,
        skipped_blocks: s.skipped_blocks,
        skipped_dict: s.skipped_dict,
        skipped_compress: s.skipped_compress,
        skipped_entropy: s.skipped_entropy,
        memory_bytes: s.memory_bytes,
        stage_seconds: StageSeconds {
            zero: n.zero as f64 * 1e-9,
            delta: n.delta as f64 * 1e-9,
            blocks: n.blocks as f64 * 1e-9,
            dict: n.dict as f64 * 1e-9,
            compress: n.compress as f64 * 1e-9,
            update: n.update as f64 * 1e-9,
            entropy: n.entropy as f64 * 1e-9,
        },
    }
}

/// Runs a baseline over one epoch's dirty pages in batches: encode a batch (timed), decode it
/// into `rep`, a replica of the whole image as libfgbi's decoder writes (timed; for methods that
/// need the backup's previous pages, those are put back in place first, untimed, since `rep` is
/// shared by all methods), then check the decoded pages against the image (not timed). Returns
/// the stream bytes.
fn run_baseline(
    m: &mut dyn Method,
    t: &mut MethodTotals,
    dirty: &[u64],
    prev: Option<&[u8]>,
    cur: &[u8],
    out: &mut Vec<u8>,
    rep: &mut [u8],
) -> Result<u64, String> {
    let mut bytes = 0u64;
    let page = |p: u64| p as usize * PAGE..(p as usize + 1) * PAGE;
    for batch in dirty.chunks(BATCH) {
        out.clear();
        let t0 = Instant::now();
        for &p in batch {
            m.encode(p, &cur[page(p)], out);
        }
        t.encode_seconds += t0.elapsed().as_secs_f64();
        bytes += out.len() as u64;
        if m.needs_old() {
            for &p in batch {
                match prev {
                    Some(prev) => rep[page(p)].copy_from_slice(&prev[page(p)]),
                    None => rep[page(p)].fill(0),
                }
            }
        }
        let t0 = Instant::now();
        let mut pos = 0;
        let mut i = 0;
        while pos < out.len() {
            // records come in page order; a page without a record kept its previous content
            let h = out.get(pos..pos + 8).ok_or("truncated stream")?;
            let idx = u64::from_le_bytes(h.try_into().unwrap()) >> 16;
            while i < batch.len() && batch[i] != idx {
                i += 1;
            }
            if i == batch.len() {
                return Err(format!("{}: record for page {idx} out of order", m.name()));
            }
            let got = m.decode(out, &mut pos, &mut rep[page(idx)])?;
            debug_assert_eq!(got, idx);
            i += 1;
        }
        t.decode_seconds += t0.elapsed().as_secs_f64();
        for &p in batch {
            if rep[page(p)] != cur[page(p)] {
                return Err(format!(
                    "{}: page {p} decoded wrongly (baseline bug)",
                    m.name()
                ));
            }
        }
    }
    Ok(bytes)
}

/// One run of libfgbi's encoder over the trace, every frame decoded onto a replica and checked.
struct FgbiRun {
    totals: MethodTotals,
    verified: bool,
    rejected: Vec<u64>,
    failures: Vec<String>,
    stats: EncoderStats,
    per_epoch: Vec<(usize, EncoderStats)>,
    /// The ship seconds of each round of an adapted run at its link (this run is the median).
    ship_seconds_rounds: Vec<f64>,
}

/// How a libfgbi run differs from the others besides its configuration.
struct FgbiPass<'a> {
    /// Names the run in progress messages and failures.
    label: &'a str,
    policy: Policy,
    exhaustive: bool,
    tamper: Option<u64>,
    /// Pages are added in place (see `EvalArgs::copy_pages`).
    in_place: bool,
}

/// An image-sized buffer for libfgbi's decoder, faulted in now: epoch 0 writes every page of it
/// anyway, and first-touch page faults of a fresh allocation would otherwise be charged to
/// libfgbi's decode time.
fn fresh_replica(bytes: usize) -> Vec<u8> {
    let mut replica = vec![0u8; bytes];
    for p in replica.chunks_mut(PAGE) {
        // SAFETY: p is a valid, exclusively borrowed, non-empty slice.
        unsafe { std::ptr::write_volatile(p.as_mut_ptr(), 0) };
    }
    replica
}

/// Memory read between methods (untimed) so that every method starts an epoch with the
/// processor's caches holding none of the trace: each reads its epoch's dirty pages from memory and
/// writes its replica through to memory, as a hypervisor reads guest memory dirtied since its last
/// pass, whatever method ran before it. (Without it a method gets the pages the previous method
/// just read from the last-level cache: zero+raw, which runs after raw, encoded py-sqlite's epochs
/// in about half of raw's time with the same work.)
struct ColdCaches {
    junk: Vec<u8>,
}

impl ColdCaches {
    /// Twice the last-level cache (sysfs), at least 64 MiB.
    fn new() -> Self {
        let llc = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index3/size")
            .ok()
            .and_then(|s| parse_cache_size(s.trim()))
            .unwrap_or(0);
        ColdCaches {
            // written, so that every line is backed by its own memory (an untouched allocation
            // reads the one zero page)
            junk: vec![1u8; (2 * llc).max(64 << 20)],
        }
    }

    /// Reads a byte of every cache line of the junk buffer: the trace's lines are evicted.
    fn evict(&self) {
        let mut acc = 0u8;
        for line in self.junk.chunks(64) {
            acc = acc.wrapping_add(line[0]);
        }
        std::hint::black_box(acc);
    }
}

/// A sysfs cache size ("32768K", "1M", "512") in bytes.
fn parse_cache_size(s: &str) -> Option<usize> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let n: usize = digits.parse().ok()?;
    let mult = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Calls `f(epoch, previous image, image, dirty pages)` for every epoch in order, with at most
/// two images mapped at a time, and advances `bar`.
fn for_each_epoch(
    trace: &Trace,
    bar: &ProgressBar,
    mut f: impl FnMut(usize, Option<&[u8]>, &[u8], &[u64]) -> Result<(), String>,
) -> Result<(), String> {
    let mut prev_map: Option<memmap2::Mmap> = None;
    for e in 0..trace.epochs() {
        let cur_map = trace.map(e)?;
        let cur: &[u8] = &cur_map;
        let prev: Option<&[u8]> = prev_map.as_deref();
        if prev.is_none() {
            // fault the image in before anything is timed, as the comparison does for later epochs
            let mut acc = 0u8;
            for p in cur.chunks(PAGE) {
                acc ^= p[0];
            }
            std::hint::black_box(acc);
        }
        let dirty = trace.dirty_pages(prev, cur);
        f(e, prev, cur, &dirty)?;
        drop(prev_map.take());
        prev_map = Some(cur_map);
        bar.inc(1);
    }
    Ok(())
}

/// The first page where the replica differs from the image.
fn first_difference(replica: &[u8], image: &[u8]) -> Option<usize> {
    if replica == image {
        return None;
    }
    replica
        .chunks(PAGE)
        .zip(image.chunks(PAGE))
        .position(|(x, y)| x != y)
        .or(Some(0))
}

/// Runs libfgbi over the trace: per epoch `begin_epoch`, `add_page` for each dirty page,
/// `end_epoch` (encode time); `Decoder::apply_flat` of the frame onto `replica` (decode time);
/// then, untimed, the replica is compared with the image. After a rejected frame the encoder
/// resynchronises and the next epoch carries every page.
fn run_fgbi(
    trace: &Trace,
    cfg: Config,
    pass: &FgbiPass,
    replica: &mut [u8],
) -> Result<FgbiRun, String> {
    let mut enc = Encoder::with_policy(cfg, pass.policy).map_err(|e| e.to_string())?;
    if pass.exhaustive {
        enc.set_exhaustive(true);
    }
    let mut dec = Decoder::new(cfg).map_err(|e| e.to_string())?;
    // a stale replica from an earlier run must not hide a page the decoder failed to write
    replica.fill(0);
    let mut r = FgbiRun {
        totals: MethodTotals::default(),
        verified: true,
        rejected: Vec::new(),
        failures: Vec::new(),
        stats: EncoderStats::default(),
        per_epoch: Vec::new(),
        ship_seconds_rounds: Vec::new(),
    };
    let label = pass.label;
    let mut resync_next = false;
    let cold = ColdCaches::new();
    let all_pages: Vec<u64> = (0..trace.pages() as u64).collect();
    // the copies of an epoch's parts, reused from epoch to epoch
    let mut parts: Vec<Vec<u8>> = Vec::new();
    // where each part is decoded from (see below)
    let mut received: Vec<u8> = Vec::new();
    // the epoch's last frame, as the sender wrote it
    let mut last_frame: Vec<u8> = Vec::new();
    let bar = progress::bar(trace.epochs() as u64, "epochs");
    for_each_epoch(trace, &bar, |e, _, cur, dirty| {
        bar.set_message(format!("{label}: epoch {e}, {} dirty pages", dirty.len()));
        let pages = if std::mem::take(&mut resync_next) {
            &all_pages[..]
        } else {
            dirty
        };
        // parts of the epoch (with --frame-bytes) are copied out as a sender would send them
        // (the copies are not timed) and decoded after the epoch's last page, in order: the
        // encoder's lead over the link is measured on its own clock, which must hold only its
        // own work
        let mut epoch_bytes = 0u64;
        let mut nparts = 0;
        let mut copying = 0.0;
        cold.evict();
        let t0 = Instant::now();
        enc.begin_epoch(e as u64).map_err(|x| x.to_string())?;
        for &p in pages {
            let off = p as usize * PAGE;
            let page = &cur[off..off + PAGE];
            let added = if pass.in_place {
                // SAFETY: the epoch's image is mapped and unchanged until the epoch's frames are
                // copied out below (a part as soon as it is taken, the last frame after
                // end_epoch_parts)
                unsafe { enc.add_page_in_place(p * PAGE as u64, page) }
            } else {
                enc.add_page(p * PAGE as u64, page)
            };
            added.map_err(|x| x.to_string())?;
            if let Some(part) = enc.take_frame_parts() {
                // the sender's write: the part's pieces into the socket (here, a buffer)
                let t1 = Instant::now();
                if nparts == parts.len() {
                    parts.push(Vec::new());
                }
                part.copy_to(&mut parts[nparts]);
                nparts += 1;
                copying += t1.elapsed().as_secs_f64();
            }
        }
        let last = enc.end_epoch_parts().map_err(|x| x.to_string())?;
        let t1 = Instant::now();
        last.copy_to(&mut last_frame);
        copying += t1.elapsed().as_secs_f64();
        r.totals.encode_seconds += t0.elapsed().as_secs_f64() - copying;
        let frame = &last_frame[..];
        let mut part_error = None;
        for part in &parts[..nparts] {
            epoch_bytes += part.len() as u64;
            // a receiver decodes a frame it has just read from its socket: each part is first
            // copied (untimed) into the receive buffer, as the baselines decode the batch they
            // have just written
            received.clear();
            received.extend_from_slice(part);
            let t1 = Instant::now();
            let applied = dec.apply_flat(&received, replica);
            r.totals.decode_seconds += t1.elapsed().as_secs_f64();
            if let Err(err) = applied {
                part_error = Some(err);
                break;
            }
        }
        epoch_bytes += frame.len() as u64;
        r.totals
            .add_epoch(e, epoch_bytes, (dirty.len() * PAGE) as u64);
        // the frame is decoded from the sender's copy; copied again only to be tampered with
        let tampered: Vec<u8>;
        let frame: &[u8] = if pass.tamper == Some(e as u64) {
            let mut f = frame.to_vec();
            let i = f.len() / 2;
            f[i] ^= 0x10;
            tampered = f;
            &tampered
        } else {
            frame
        };
        let t0 = Instant::now();
        let applied = match part_error {
            Some(err) => Err(err),
            None => dec.apply_flat(frame, replica),
        };
        r.totals.decode_seconds += t0.elapsed().as_secs_f64();
        match applied {
            Ok(_) => {
                if let Some(first) = first_difference(replica, cur) {
                    r.verified = false;
                    r.failures.push(format!(
                        "epoch {e}: {label}'s replica differs from the image (first at page {first})"
                    ));
                }
            }
            Err(err) => {
                r.verified = false;
                r.rejected.push(e as u64);
                r.failures.push(format!(
                    "epoch {e}: {label} frame rejected by the decoder: {err}; resynchronising"
                ));
                enc.resync();
                resync_next = true;
            }
        }
        r.per_epoch.push((dirty.len(), enc.epoch_stats()));
        Ok(())
    })?;
    bar.finish_and_clear();
    r.stats = enc.stats();
    Ok(r)
}

/// The baselines over the trace, in table order: (name, totals).
fn run_baselines(trace: &Trace, cfg: &Config) -> Result<Vec<(&'static str, MethodTotals)>, String> {
    let mut methods = baselines::all(cfg.cache_bytes);
    let mut totals = vec![MethodTotals::default(); methods.len()];
    let mut out = Vec::with_capacity(BATCH * (PAGE + 16));
    // written before it is read, and resident as a backup's replica is
    let mut rep = vec![0u8; trace.image_bytes];
    rep.fill(1);
    let cold = ColdCaches::new();
    let bar = progress::bar(trace.epochs() as u64, "epochs");
    for_each_epoch(trace, &bar, |e, prev, cur, dirty| {
        for (m, t) in methods.iter_mut().zip(totals.iter_mut()) {
            bar.set_message(format!(
                "{}: epoch {e}, {} dirty pages",
                m.name(),
                dirty.len()
            ));
            cold.evict();
            let b = run_baseline(m.as_mut(), t, dirty, prev, cur, &mut out, &mut rep)?;
            t.add_epoch(e, b, (dirty.len() * PAGE) as u64);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(methods.iter().map(|m| m.name()).zip(totals).collect())
}

/// libfgbi once per link rate of `--links`, its encoder adapted to it (`Config::link_rate`).
fn run_adapted(
    trace: &Trace,
    cfg: Config,
    a: &EvalArgs,
    replica: &mut [u8],
) -> Result<Vec<FgbiRun>, String> {
    let mut runs = Vec::new();
    for &l in &a.links.0 {
        let cfg = Config {
            link_rate: ship::bytes_per_second(l) as u64,
            frame_bytes: a.ship_frame_bytes,
            ..cfg
        };
        cfg.validate().map_err(|e| e.to_string())?;
        let label = format!("fgbi adapted to {l} Gbit/s");
        let pass = FgbiPass {
            label: &label,
            policy: a.policy,
            exhaustive: false,
            tamper: None,
            in_place: !a.copy_pages,
        };
        runs.push(run_fgbi(trace, cfg, &pass, replica)?);
    }
    Ok(runs)
}

/// The median of `v` (of an even count, the lower of the middle two); `v` is not empty.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

/// The baselines of several rounds as one: each method's bytes of the first round (a baseline's
/// output does not depend on time) with the median of its encode and of its decode seconds.
fn median_baselines(
    rounds: Vec<Vec<(&'static str, MethodTotals)>>,
) -> Vec<(&'static str, MethodTotals)> {
    if rounds.len() < 2 {
        return rounds.into_iter().next().unwrap_or_default();
    }
    let mut out = rounds[0].clone();
    for (i, (_, t)) in out.iter_mut().enumerate() {
        t.encode_seconds_rounds = rounds.iter().map(|r| r[i].1.encode_seconds).collect();
        t.decode_seconds_rounds = rounds.iter().map(|r| r[i].1.decode_seconds).collect();
        t.encode_seconds = median(t.encode_seconds_rounds.clone());
        t.decode_seconds = median(t.decode_seconds_rounds.clone());
    }
    out
}

/// The adapted runs of several rounds as one per link: the round of median ship time at that
/// link (its bytes, times and statistics belong together, as the encoder's choices depend on its
/// timing). It carries the failures of every round, and is verified only if every round was.
fn median_adapted(rounds: Vec<Vec<FgbiRun>>, links: &[f64]) -> Vec<FgbiRun> {
    let mut per_link: Vec<Vec<FgbiRun>> = links.iter().map(|_| Vec::new()).collect();
    for round in rounds {
        for (j, run) in round.into_iter().enumerate() {
            per_link[j].push(run);
        }
    }
    per_link
        .into_iter()
        .zip(links)
        .map(|(mut runs, &l)| {
            let ship = |r: &FgbiRun| Cost::from(&r.totals).ship(l).0;
            let seconds: Vec<f64> = runs.iter().map(ship).collect();
            runs.sort_by(|x, y| ship(x).total_cmp(&ship(y)));
            let mut chosen = runs.remove((runs.len() - 1) / 2);
            for other in runs {
                chosen.verified &= other.verified;
                chosen.failures.extend(other.failures);
            }
            chosen.ship_seconds_rounds = seconds;
            chosen
        })
        .collect()
}

/// Everything one `eval` measured.
struct Results {
    cfg: Config,
    trace: Trace,
    /// libfgbi with the configuration of the command line.
    fgbi: FgbiRun,
    exhaustive: Option<FgbiRun>,
    baselines: Vec<(&'static str, MethodTotals)>,
    /// libfgbi adapted to each link of `--links`, in that order.
    adapted: Vec<FgbiRun>,
    /// The ship-time rows, one per link of `--links`.
    ship: Vec<Row>,
}

impl Results {
    fn dirty_bytes(&self) -> u64 {
        self.fgbi.totals.dirty_bytes
    }

    /// Every failure of every libfgbi run.
    fn failures(&self) -> Vec<String> {
        let runs = std::iter::once(&self.fgbi)
            .chain(&self.exhaustive)
            .chain(&self.adapted);
        runs.flat_map(|r| r.failures.iter().cloned()).collect()
    }
}

/// The ship-time table's name of libfgbi as configured on the command line.
fn default_name(a: &EvalArgs, cfg: &Config) -> String {
    if cfg.link_rate == 0 {
        "fgbi-default".into()
    } else {
        format!("fgbi-fixed-{}", a.cfg.adapt_gbps)
    }
}

/// The ship-time rows: at each link every baseline, libfgbi as configured, libfgbi adapted.
fn ship_rows(a: &EvalArgs, r: &Results) -> Vec<Row> {
    let mut methods: Vec<(String, Cost)> = r
        .baselines
        .iter()
        .map(|(n, t)| (n.to_string(), Cost::from(t)))
        .collect();
    methods.push((default_name(a, &r.cfg), Cost::from(&r.fgbi.totals)));
    a.links
        .0
        .iter()
        .zip(&r.adapted)
        .map(|(&l, ad)| {
            let mut m = methods.clone();
            m.push((ship::ADAPTED.into(), Cost::from(&ad.totals)));
            Row::new(l, &m)
        })
        .collect()
}

pub fn run(a: &EvalArgs) -> Result<bool, String> {
    let cfg = a.cfg.config()?;
    let trace = Trace::open(&a.trace)?;
    let mut replica = fresh_replica(trace.image_bytes);
    let main = FgbiPass {
        label: "fgbi",
        policy: a.policy,
        exhaustive: false,
        tamper: a.tamper_epoch,
        in_place: !a.copy_pages,
    };
    let fgbi = run_fgbi(&trace, cfg, &main, &mut replica)?;
    let exhaustive = if a.exhaustive {
        let pass = FgbiPass {
            label: "exhaustive fgbi",
            exhaustive: true,
            tamper: None,
            in_place: !a.copy_pages,
            ..main
        };
        Some(run_fgbi(&trace, cfg, &pass, &mut replica)?)
    } else {
        None
    };
    // the timed rounds alternate baselines and adapted runs, so that a slow spell of the machine
    // falls on both
    let mut baseline_rounds = Vec::new();
    let mut adapted_rounds = Vec::new();
    for _ in 0..a.rounds {
        if !a.no_baselines {
            baseline_rounds.push(run_baselines(&trace, &cfg)?);
        }
        adapted_rounds.push(run_adapted(&trace, cfg, a, &mut replica)?);
    }
    let baselines = median_baselines(baseline_rounds);
    let adapted = median_adapted(adapted_rounds, &a.links.0);
    drop(replica);
    let mut r = Results {
        cfg,
        trace,
        fgbi,
        exhaustive,
        baselines,
        adapted,
        ship: Vec::new(),
    };
    r.ship = ship_rows(a, &r);
    write_plots(a, &r)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&to_json(a, &r)).unwrap());
    } else {
        print_tables(a, &r);
    }
    let failures = r.failures();
    for f in &failures {
        eprintln!("fgbi eval: {f}");
    }
    Ok(failures.is_empty())
}

/// `--plot` and `--plot-ship`.
/// The trace's directory name, for chart titles.
fn trace_name(r: &Results) -> String {
    let dir = &r.trace.dir;
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn write_plots(a: &EvalArgs, r: &Results) -> Result<(), String> {
    let write = |path: &PathBuf, svg: String| {
        std::fs::write(path, svg).map_err(|e| format!("{}: {e}", path.display()))
    };
    if let Some(path) = &a.plot {
        let mut series: Vec<(&str, &[u64])> = r
            .baselines
            .iter()
            .map(|(n, t)| (*n, &t.per_epoch_bytes[..]))
            .collect();
        series.push(("fgbi", &r.fgbi.totals.per_epoch_bytes));
        let title = format!("bytes sent per epoch: {}", trace_name(r));
        write(path, plot::svg(&title, &series))?;
    }
    if let Some(path) = &a.plot_ship {
        if r.ship.is_empty() {
            return Err("--plot-ship needs link rates (--links)".into());
        }
        let series: Vec<(String, Vec<f64>)> = r.ship[0]
            .cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let eff = r
                    .ship
                    .iter()
                    .map(|row| ship::effective_gbps(r.dirty_bytes(), row.cells[i].seconds));
                (c.method.clone(), eff.collect())
            })
            .collect();
        let title = format!(
            "effective rate over the link, one core a side: {}",
            trace_name(r)
        );
        write(path, plot::ship_svg(&title, &a.links.0, &series))?;
    }
    Ok(())
}

/// The JSON of a libfgbi run adapted to a link, for its ship row.
fn adapted_json(run: &FgbiRun, link_rate: u64) -> Value {
    let mut v = serde_json::to_value(&run.totals).unwrap();
    let s = &run.stats;
    v["verified"] = run.verified.into();
    v["link_rate"] = link_rate.into();
    v["skipped_analysis"] = s.skipped_analysis.into();
    v["frames"] = s.frames.into();
    v["skipped_blocks"] = s.skipped_blocks.into();
    v["skipped_dict"] = s.skipped_dict.into();
    v["skipped_compress"] = s.skipped_compress.into();
    v["skipped_entropy"] = s.skipped_entropy.into();
    if run.ship_seconds_rounds.len() > 1 {
        v["ship_seconds_rounds"] = run.ship_seconds_rounds.clone().into();
    }
    v
}

fn to_json(a: &EvalArgs, r: &Results) -> Value {
    let cfg = &r.cfg;
    let trace = &r.trace;
    let mut obj = serde_json::Map::new();
    obj.insert("trace".into(), trace.dir.display().to_string().into());
    obj.insert("epochs".into(), trace.epochs().into());
    obj.insert("image_bytes".into(), trace.image_bytes.into());
    obj.insert("dirty_pages".into(), (r.dirty_bytes() / PAGE as u64).into());
    obj.insert("meta".into(), trace.meta.clone().unwrap_or(Value::Null));
    obj.insert("link_gbps".into(), a.link_gbps.into());
    obj.insert("rounds".into(), a.rounds.into());
    obj.insert(
        "config".into(),
        json!({
            "page_size": cfg.page_size,
            "block_size": cfg.block_size,
            "cache_bytes": cfg.cache_bytes,
            "hash_bytes": cfg.hash_bytes,
            "stages": stages_string(&cfg.stages),
            "fallback": fallback_string(&cfg.fallback),
            "link_rate": cfg.link_rate,
        }),
    );
    for (n, t) in &r.baselines {
        obj.insert((*n).into(), serde_json::to_value(t).unwrap());
    }
    let f = FgbiJson {
        totals: r.fgbi.totals.clone(),
        verified: r.fgbi.verified,
        rejected_epochs: r.fgbi.rejected.clone(),
        stages: stages_json(&r.fgbi.stats),
    };
    obj.insert("fgbi".into(), serde_json::to_value(f).unwrap());
    if let Some(x) = &r.exhaustive {
        let j = ExhaustiveJson {
            totals: x.totals.clone(),
            verified: x.verified,
            op_bytes: x.stats.op_bytes(),
        };
        obj.insert("fgbi_exhaustive".into(), serde_json::to_value(j).unwrap());
    }
    obj.insert("links_gbps".into(), a.links.0.clone().into());
    obj.insert(
        "ship_model".into(),
        "max(encode_seconds, bytes_sent / link rate, decode_seconds)".into(),
    );
    let name = default_name(a, cfg);
    let ship: Vec<Value> = r
        .ship
        .iter()
        .zip(&r.adapted)
        .map(|(row, ad)| {
            let rate = ship::bytes_per_second(row.link_gbps) as u64;
            ship::row_json(row, r.dirty_bytes(), &name, adapted_json(ad, rate))
        })
        .collect();
    obj.insert("ship".into(), ship.into());
    obj.insert("failures".into(), r.failures().into());
    Value::Object(obj)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

fn print_tables(a: &EvalArgs, r: &Results) {
    print_header(a, r);
    println!();
    print_methods(a, r);
    println!();
    print_stages(&r.fgbi.stats);
    if a.verbose {
        println!();
        print_per_epoch(r);
    }
    if let Some(x) = &r.exhaustive {
        println!();
        print_exhaustive(&r.fgbi, x);
    }
    if !r.ship.is_empty() {
        println!();
        ship::print(&r.ship, r.dirty_bytes(), &default_name(a, &r.cfg));
        println!();
        print_adapted(a, r);
    }
}

/// The trace, its workload and libfgbi's configuration.
fn print_header(a: &EvalArgs, r: &Results) {
    let (trace, cfg) = (&r.trace, &r.cfg);
    println!(
        "trace {}: {} epochs of {:.1} MiB images, {} dirty pages ({:.1} MiB)",
        trace.dir.display(),
        trace.epochs(),
        mib(trace.image_bytes as u64),
        r.dirty_bytes() / PAGE as u64,
        mib(r.dirty_bytes())
    );
    if let Some(w) = trace
        .meta
        .as_ref()
        .and_then(|m| m.get("workload"))
        .and_then(|w| w.as_str())
        .filter(|w| !w.is_empty())
    {
        println!("workload: {w}");
    }
    println!(
        "fgbi config: block {} B, cache {:.0} MiB, hash cache {:.0} MiB, stages {}, fallback {}; link {} Gbit/s",
        cfg.block_size,
        mib(cfg.cache_bytes as u64),
        mib(cfg.hash_bytes as u64),
        stages_string(&cfg.stages),
        fallback_string(&cfg.fallback),
        a.link_gbps
    );
    if a.rounds > 1 {
        println!(
            "ship times: medians of {} rounds (baselines' encode and decode seconds; libfgbi adapted, the round of median ship time)",
            a.rounds
        );
    }
}

/// One row per method: bytes, ratio, speeds, effective rate at `--link-gbps`.
fn print_methods(a: &EvalArgs, r: &Results) {
    println!(
        "{:<9} {:>14} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9}",
        "method", "bytes sent", "MiB", "MiB >e0", "ratio", "enc GB/s", "dec GB/s", "eff GB/s"
    );
    let ft = &r.fgbi.totals;
    // raw's bytes (8-byte header + page per dirty page), also without the baselines
    let raw = ft.dirty_bytes.div_ceil(PAGE as u64).max(1) as f64 * (PAGE + 8) as f64;
    let row = |n: &str, t: &MethodTotals| {
        let gbs = |s: f64| {
            if s > 0.0 {
                t.dirty_bytes as f64 / s / 1e9
            } else {
                f64::INFINITY
            }
        };
        let (ship, _) = Cost::from(t).ship(a.link_gbps);
        println!(
            "{:<9} {:>14} {:>9.1} {:>9.1} {:>7.3} {:>9.2} {:>9.2} {:>9.2}",
            n,
            t.bytes_sent,
            mib(t.bytes_sent),
            mib(t.bytes_sent_after_epoch0),
            t.bytes_sent as f64 / raw,
            gbs(t.encode_seconds),
            gbs(t.decode_seconds),
            gbs(ship)
        );
    };
    for (n, t) in &r.baselines {
        row(n, t);
    }
    row("fgbi", ft);
    println!(
        "fgbi replica check: {}",
        if r.fgbi.verified {
            "every epoch identical to its image"
        } else {
            "FAILED"
        }
    );
}

/// libfgbi's counters over the whole run.
fn print_stages(s: &EncoderStats) {
    println!("{:<22} {:>10} {:>14}", "fgbi stage / op", "pages", "bytes");
    println!(
        "{:<22} {:>10} {:>14}",
        "unchanged (nothing)", s.unchanged, 0
    );
    for (n, c) in [
        ("zero", s.zero),
        ("delta (xor+rle)", s.delta),
        ("dict (lz4+old page)", s.dict),
        ("blocks", s.blocks),
        ("compressed (fallback)", s.compressed),
        ("raw", s.raw),
    ] {
        println!("{:<22} {:>10} {:>14}", n, c.pages, c.bytes);
    }
    println!(
        "blocks inside block ops: {} zero, {} shared, {} kept, {} literal",
        s.zero_blocks, s.shared_blocks, s.kept_blocks, s.literal_blocks
    );
    println!(
        "cache: {} hits, {} hash-tier hits, {} misses, {} evictions; sharing: {} lookups, {} candidates, {} stale",
        s.cache.hits, s.cache.hash_hits, s.cache.misses, s.cache.evictions,
        s.share.lookups, s.share.candidates, s.share.stale
    );
    println!(
        "entropy stage (op bytes above are before it): {} of {} frames recoded, {} bytes saved",
        s.entropy_frames, s.epochs, s.entropy_saved
    );
    let skipped = s.skipped_analysis + s.skipped_blocks + s.skipped_dict;
    if skipped + s.skipped_compress + s.skipped_entropy > 0 {
        println!(
            "adaptive stages skipped: analysis on {} pages (sent raw), block work on {} pages, dict on {} pages, {} compressions, entropy on {} frames",
            s.skipped_analysis, s.skipped_blocks, s.skipped_dict, s.skipped_compress, s.skipped_entropy
        );
    }
    println!(
        "stage time ms: {}; encoder memory {:.1} MiB",
        s.nanos,
        mib(s.memory_bytes)
    );
}

/// `--verbose`: one row per epoch.
fn print_per_epoch(r: &Results) {
    print!("{:>5} {:>8}", "epoch", "dirty");
    for (n, _) in &r.baselines {
        print!(" {:>11}", n);
    }
    print!(" {:>11}", "fgbi");
    println!(
        " {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "unch", "zero", "delta", "dict", "blocks", "comp", "raw"
    );
    let totals = r.baselines.iter().map(|(_, t)| t);
    let totals: Vec<&MethodTotals> = totals.chain(std::iter::once(&r.fgbi.totals)).collect();
    for (e, (d, st)) in r.fgbi.per_epoch.iter().enumerate() {
        print!("{:>5} {:>8}", e, d);
        for t in &totals {
            print!(" {:>11}", t.per_epoch_bytes[e]);
        }
        println!(
            " {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
            st.unchanged,
            st.zero.pages,
            st.delta.pages,
            st.dict.pages,
            st.blocks.pages,
            st.compressed.pages,
            st.raw.pages
        );
    }
}

/// `--exhaustive`: the per-page choice against the best of all encodings.
fn print_exhaustive(f: &FgbiRun, x: &FgbiRun) {
    let (stats, xs) = (&f.stats, &x.stats);
    let (ob, xb) = (stats.op_bytes(), xs.op_bytes());
    let (ft, xt) = (&f.totals, &x.totals);
    println!(
        "per-page choice vs the best of all encodings per page (--exhaustive, replica {}):",
        if x.verified {
            "verified"
        } else {
            "NOT verified"
        }
    );
    println!(
        "  ops before entropy: {} vs {} bytes ({:+.1}%); frames: {} vs {} bytes ({:+.1}%); exhaustive encode {:.2} GB/s",
        ob,
        xb,
        (ob as f64 / xb as f64 - 1.0) * 100.0,
        ft.bytes_sent,
        xt.bytes_sent,
        (ft.bytes_sent as f64 / xt.bytes_sent as f64 - 1.0) * 100.0,
        xt.dirty_bytes as f64 / xt.encode_seconds / 1e9
    );
    println!(
        "  pages (bytes) per op, choice vs exhaustive: delta {} ({}) vs {} ({}), dict {} ({}) vs {} ({}), blocks {} ({}) vs {} ({}), compressed {} ({}) vs {} ({})",
        stats.delta.pages, stats.delta.bytes, xs.delta.pages, xs.delta.bytes,
        stats.dict.pages, stats.dict.bytes, xs.dict.pages, xs.dict.bytes,
        stats.blocks.pages, stats.blocks.bytes, xs.blocks.pages, xs.blocks.bytes,
        stats.compressed.pages, stats.compressed.bytes, xs.compressed.pages, xs.compressed.bytes
    );
}

/// libfgbi adapted to each link: what it sent, how fast it ran, what its gates skipped.
fn print_adapted(a: &EvalArgs, r: &Results) {
    println!("fgbi adapted to each link (--adapt-gbps L):");
    println!(
        "{:>6} {:>9} {:>7} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}  replica",
        "Gbit/s",
        "MiB",
        "ratio",
        "enc GB/s",
        "dec GB/s",
        "skip anal",
        "skip blck",
        "skip dict",
        "skip comp",
        "skip entr"
    );
    let raw = r.dirty_bytes().div_ceil(PAGE as u64).max(1) as f64 * (PAGE + 8) as f64;
    for (&l, ad) in a.links.0.iter().zip(&r.adapted) {
        let t = &ad.totals;
        let s = &ad.stats;
        println!(
            "{:>6} {:>9.1} {:>7.3} {:>9.2} {:>9.2} {:>10} {:>10} {:>10} {:>10} {:>10}  {}",
            l,
            mib(t.bytes_sent),
            t.bytes_sent as f64 / raw,
            t.dirty_bytes as f64 / t.encode_seconds / 1e9,
            t.dirty_bytes as f64 / t.decode_seconds / 1e9,
            s.skipped_analysis,
            s.skipped_blocks,
            s.skipped_dict,
            s.skipped_compress,
            s.skipped_entropy,
            if ad.verified { "verified" } else { "FAILED" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_cache_sizes_parse_with_their_units_and_nonsense_does_not() {
        assert_eq!(parse_cache_size("32768K"), Some(32 << 20));
        assert_eq!(parse_cache_size("1M"), Some(1 << 20));
        assert_eq!(parse_cache_size("512"), Some(512));
        assert_eq!(parse_cache_size("2G"), Some(2 << 30));
        for bad in ["", "K", "12Q", "1.5M", "99999999999999999999999G"] {
            assert_eq!(parse_cache_size(bad), None, "{bad:?}");
        }
    }
}
