//! `fgbi eval`: libfgbi and the baselines on the same dirty pages of a trace.

use crate::baselines::{self, Method};
use crate::opts::{fallback_string, stages_string, ConfigArgs};
use crate::plot;
use crate::progress;
use crate::trace::{Trace, PAGE};
use clap::Args;
use fgbi::cache::Policy;
use fgbi::{Decoder, Encoder, EncoderStats};
use serde::Serialize;
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
    /// Link speed in Gbit/s for the "effective GB/s" column.
    #[arg(long, default_value_t = 10.0)]
    pub link_gbps: f64,
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

/// libfgbi in exhaustive mode: its own encoder, decoder and replica.
struct Exhaustive {
    enc: Encoder,
    dec: Decoder,
    replica: Vec<u8>,
    totals: MethodTotals,
    verified: bool,
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
/// (timed; the backup's previous pages are put in place first for methods that need them), then
/// check the decoded pages against the image (not timed). Returns the stream bytes.
fn run_baseline(
    m: &mut dyn Method,
    t: &mut MethodTotals,
    dirty: &[u64],
    prev: Option<&[u8]>,
    cur: &[u8],
    out: &mut Vec<u8>,
    dec: &mut [u8],
) -> Result<u64, String> {
    let mut bytes = 0u64;
    for batch in dirty.chunks(BATCH) {
        out.clear();
        let t0 = Instant::now();
        for &p in batch {
            let off = p as usize * PAGE;
            m.encode(p, &cur[off..off + PAGE], out);
        }
        t.encode_seconds += t0.elapsed().as_secs_f64();
        bytes += out.len() as u64;
        if m.needs_old() {
            for (i, &p) in batch.iter().enumerate() {
                let slot = &mut dec[i * PAGE..(i + 1) * PAGE];
                match prev {
                    Some(prev) => slot.copy_from_slice(&prev[p as usize * PAGE..][..PAGE]),
                    None => slot.fill(0),
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
            let slot = &mut dec[i * PAGE..(i + 1) * PAGE];
            let got = m.decode(out, &mut pos, slot)?;
            debug_assert_eq!(got, idx);
            i += 1;
        }
        t.decode_seconds += t0.elapsed().as_secs_f64();
        for (i, &p) in batch.iter().enumerate() {
            let off = p as usize * PAGE;
            if dec[i * PAGE..(i + 1) * PAGE] != cur[off..off + PAGE] {
                return Err(format!(
                    "{}: page {p} decoded wrongly (baseline bug)",
                    m.name()
                ));
            }
        }
    }
    Ok(bytes)
}

pub fn run(a: &EvalArgs) -> Result<bool, String> {
    let cfg = a.cfg.config()?;
    let trace = Trace::open(&a.trace)?;
    let pages = trace.pages();
    let mut baselines = if a.no_baselines {
        Vec::new()
    } else {
        baselines::all(cfg.cache_bytes)
    };
    let mut totals: Vec<MethodTotals> = vec![MethodTotals::default(); baselines.len()];
    let mut ft = MethodTotals::default();
    let mut enc = Encoder::with_policy(cfg, a.policy).map_err(|e| e.to_string())?;
    let mut decoder = Decoder::new(cfg).map_err(|e| e.to_string())?;
    let mut exh = if a.exhaustive {
        let mut enc = Encoder::with_policy(cfg, a.policy).map_err(|e| e.to_string())?;
        enc.set_exhaustive(true);
        Some(Exhaustive {
            enc,
            dec: Decoder::new(cfg).map_err(|e| e.to_string())?,
            replica: vec![0u8; trace.image_bytes],
            totals: MethodTotals::default(),
            verified: true,
        })
    } else {
        None
    };
    let mut replica = vec![0u8; trace.image_bytes];
    // Fault the replica in now: epoch 0 writes every page of it anyway, and first-touch page
    // faults of a fresh allocation would otherwise be charged to libfgbi's decode time.
    for p in replica.chunks_mut(PAGE) {
        // SAFETY: p is a valid, exclusively borrowed, non-empty slice.
        unsafe { std::ptr::write_volatile(p.as_mut_ptr(), 0) };
    }
    let mut out = Vec::with_capacity(BATCH * (PAGE + 16));
    let mut dec = vec![0u8; BATCH * PAGE];
    let mut verified = true;
    let mut rejected = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut resync_next = false;
    let mut dirty_pages_total = 0u64;
    let mut per_epoch_stats: Vec<(usize, EncoderStats)> = Vec::new();

    let bar = progress::bar(trace.epochs() as u64, "epochs");
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
        let dirty_bytes = (dirty.len() * PAGE) as u64;
        dirty_pages_total += dirty.len() as u64;

        // libfgbi: encode, decode onto the replica, verify
        bar.set_message(format!("epoch {e}: fgbi, {} dirty pages", dirty.len()));
        let all_pages: Vec<u64>;
        let fg_pages: &[u64] = if resync_next {
            all_pages = (0..pages as u64).collect();
            &all_pages
        } else {
            &dirty
        };
        resync_next = false;
        let t0 = Instant::now();
        enc.begin_epoch(e as u64).map_err(|x| x.to_string())?;
        for &p in fg_pages {
            let off = p as usize * PAGE;
            enc.add_page(p * PAGE as u64, &cur[off..off + PAGE])
                .map_err(|x| x.to_string())?;
        }
        let frame = enc.end_epoch().map_err(|x| x.to_string())?;
        ft.encode_seconds += t0.elapsed().as_secs_f64();
        ft.add_epoch(e, frame.len() as u64, dirty_bytes);
        // the frame is decoded straight from the encoder's buffer; copied only to be tampered with
        let tampered: Vec<u8>;
        let frame: &[u8] = if a.tamper_epoch == Some(e as u64) {
            let mut f = frame.to_vec();
            let i = f.len() / 2;
            f[i] ^= 0x10;
            tampered = f;
            &tampered
        } else {
            frame
        };
        let t0 = Instant::now();
        let applied = decoder.apply_flat(frame, &mut replica);
        ft.decode_seconds += t0.elapsed().as_secs_f64();
        match applied {
            Ok(_) => {
                if replica[..] != cur[..] {
                    verified = false;
                    let first = replica
                        .chunks(PAGE)
                        .zip(cur.chunks(PAGE))
                        .position(|(x, y)| x != y)
                        .unwrap_or(0);
                    failures.push(format!(
                        "epoch {e}: replica differs from the image (first at page {first})"
                    ));
                }
            }
            Err(err) => {
                verified = false;
                rejected.push(e as u64);
                failures.push(format!(
                    "epoch {e}: fgbi frame rejected by the decoder: {err}; resynchronising"
                ));
                enc.resync();
                resync_next = true;
            }
        }
        per_epoch_stats.push((dirty.len(), enc.epoch_stats()));

        if let Some(x) = &mut exh {
            bar.set_message(format!("epoch {e}: fgbi exhaustive"));
            let t0 = Instant::now();
            x.enc.begin_epoch(e as u64).map_err(|x| x.to_string())?;
            for &p in &dirty {
                let off = p as usize * PAGE;
                x.enc
                    .add_page(p * PAGE as u64, &cur[off..off + PAGE])
                    .map_err(|x| x.to_string())?;
            }
            let frame = x.enc.end_epoch().map_err(|x| x.to_string())?;
            x.totals.encode_seconds += t0.elapsed().as_secs_f64();
            x.totals.add_epoch(e, frame.len() as u64, dirty_bytes);
            let t0 = Instant::now();
            let ok = x.dec.apply_flat(frame, &mut x.replica).is_ok();
            x.totals.decode_seconds += t0.elapsed().as_secs_f64();
            if !ok || x.replica[..] != cur[..] {
                x.verified = false;
                failures.push(format!("epoch {e}: exhaustive fgbi's replica differs"));
            }
        }

        for (m, t) in baselines.iter_mut().zip(totals.iter_mut()) {
            bar.set_message(format!(
                "epoch {e}: {}, {} dirty pages",
                m.name(),
                dirty.len()
            ));
            let b = run_baseline(m.as_mut(), t, &dirty, prev, cur, &mut out, &mut dec)?;
            t.add_epoch(e, b, dirty_bytes);
        }
        drop(prev_map.take());
        prev_map = Some(cur_map);
        bar.inc(1);
    }
    bar.finish_and_clear();
    drop(prev_map);

    let stats = enc.stats();
    let names: Vec<&'static str> = baselines.iter().map(|m| m.name()).collect();

    if let Some(path) = &a.plot {
        let mut series: Vec<(&str, &[u64])> = names
            .iter()
            .zip(&totals)
            .map(|(n, t)| (*n, &t.per_epoch_bytes[..]))
            .collect();
        series.push(("fgbi", &ft.per_epoch_bytes));
        let svg = plot::svg(
            &format!("bytes sent per epoch: {}", trace.dir.display()),
            &series,
        );
        std::fs::write(path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
    }

    if a.json {
        let mut obj = serde_json::Map::new();
        obj.insert("trace".into(), trace.dir.display().to_string().into());
        obj.insert("epochs".into(), trace.epochs().into());
        obj.insert("image_bytes".into(), trace.image_bytes.into());
        obj.insert("dirty_pages".into(), dirty_pages_total.into());
        obj.insert(
            "meta".into(),
            trace.meta.clone().unwrap_or(serde_json::Value::Null),
        );
        obj.insert("link_gbps".into(), a.link_gbps.into());
        obj.insert(
            "config".into(),
            serde_json::json!({
                "page_size": cfg.page_size,
                "block_size": cfg.block_size,
                "cache_bytes": cfg.cache_bytes,
                "hash_bytes": cfg.hash_bytes,
                "stages": stages_string(&cfg.stages),
                "fallback": fallback_string(&cfg.fallback),
                "link_rate": cfg.link_rate,
            }),
        );
        for (n, t) in names.iter().zip(&totals) {
            obj.insert((*n).into(), serde_json::to_value(t).unwrap());
        }
        let f = FgbiJson {
            totals: ft.clone(),
            verified,
            rejected_epochs: rejected.clone(),
            stages: stages_json(&stats),
        };
        obj.insert("fgbi".into(), serde_json::to_value(f).unwrap());
        if let Some(x) = &exh {
            let j = ExhaustiveJson {
                totals: x.totals.clone(),
                verified: x.verified,
                op_bytes: x.enc.stats().op_bytes(),
            };
            obj.insert("fgbi_exhaustive".into(), serde_json::to_value(j).unwrap());
        }
        obj.insert("failures".into(), failures.clone().into());
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::Value::Object(obj)).unwrap()
        );
    } else {
        print_tables(
            a,
            &trace,
            &cfg,
            dirty_pages_total,
            &names,
            &totals,
            &ft,
            &stats,
            verified,
            &per_epoch_stats,
        );
        if let Some(x) = &exh {
            let (ob, xb) = (stats.op_bytes(), x.enc.stats().op_bytes());
            println!();
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
                x.totals.bytes_sent,
                (ft.bytes_sent as f64 / x.totals.bytes_sent as f64 - 1.0) * 100.0,
                x.totals.dirty_bytes as f64 / x.totals.encode_seconds / 1e9
            );
            let xs = x.enc.stats();
            println!(
                "  pages (bytes) per op, choice vs exhaustive: delta {} ({}) vs {} ({}), dict {} ({}) vs {} ({}), blocks {} ({}) vs {} ({}), compressed {} ({}) vs {} ({})",
                stats.delta.pages, stats.delta.bytes, xs.delta.pages, xs.delta.bytes,
                stats.dict.pages, stats.dict.bytes, xs.dict.pages, xs.dict.bytes,
                stats.blocks.pages, stats.blocks.bytes, xs.blocks.pages, xs.blocks.bytes,
                stats.compressed.pages, stats.compressed.bytes, xs.compressed.pages, xs.compressed.bytes
            );
        }
    }
    for f in &failures {
        eprintln!("fgbi eval: {f}");
    }
    Ok(failures.is_empty())
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

#[allow(clippy::too_many_arguments)]
fn print_tables(
    a: &EvalArgs,
    trace: &Trace,
    cfg: &fgbi::Config,
    dirty_pages: u64,
    names: &[&str],
    totals: &[MethodTotals],
    ft: &MethodTotals,
    s: &EncoderStats,
    verified: bool,
    per_epoch: &[(usize, EncoderStats)],
) {
    println!(
        "trace {}: {} epochs of {:.1} MiB images, {} dirty pages ({:.1} MiB)",
        trace.dir.display(),
        trace.epochs(),
        mib(trace.image_bytes as u64),
        dirty_pages,
        mib(dirty_pages * PAGE as u64)
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
    println!();
    println!(
        "{:<9} {:>14} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9}",
        "method", "bytes sent", "MiB", "MiB >e0", "ratio", "enc GB/s", "dec GB/s", "eff GB/s"
    );
    // raw's bytes (8-byte header + page per dirty page), also without the baselines
    let raw = ft.dirty_bytes.div_ceil(PAGE as u64).max(1) as f64 * (PAGE + 8) as f64;
    let link = a.link_gbps * 1e9 / 8.0;
    let row = |n: &str, t: &MethodTotals| {
        let gbs = |s: f64| {
            if s > 0.0 {
                t.dirty_bytes as f64 / s / 1e9
            } else {
                f64::INFINITY
            }
        };
        let eff = t.dirty_bytes as f64 / t.encode_seconds.max(t.bytes_sent as f64 / link) / 1e9;
        println!(
            "{:<9} {:>14} {:>9.1} {:>9.1} {:>7.3} {:>9.2} {:>9.2} {:>9.2}",
            n,
            t.bytes_sent,
            mib(t.bytes_sent),
            mib(t.bytes_sent_after_epoch0),
            t.bytes_sent as f64 / raw,
            gbs(t.encode_seconds),
            gbs(t.decode_seconds),
            eff
        );
    };
    for (n, t) in names.iter().zip(totals) {
        row(n, t);
    }
    row("fgbi", ft);
    println!(
        "fgbi replica check: {}",
        if verified {
            "every epoch identical to its image"
        } else {
            "FAILED"
        }
    );
    println!();
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
    if s.skipped_dict + s.skipped_compress + s.skipped_entropy > 0 {
        println!(
            "adaptive stages skipped: dict on {} pages, {} compressions, entropy on {} frames",
            s.skipped_dict, s.skipped_compress, s.skipped_entropy
        );
    }
    let n = s.nanos;
    println!(
        "stage time ms: zero {:.1}, delta {:.1}, blocks {:.1}, dict {:.1}, compress {:.1}, update {:.1}, entropy {:.1}; encoder memory {:.1} MiB",
        n.zero as f64 / 1e6, n.delta as f64 / 1e6, n.blocks as f64 / 1e6,
        n.dict as f64 / 1e6, n.compress as f64 / 1e6, n.update as f64 / 1e6,
        n.entropy as f64 / 1e6, mib(s.memory_bytes)
    );
    if a.verbose {
        println!();
        print!("{:>5} {:>8}", "epoch", "dirty");
        for n in names.iter().chain(std::iter::once(&"fgbi")) {
            print!(" {:>11}", n);
        }
        println!(
            " {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
            "unch", "zero", "delta", "dict", "blocks", "comp", "raw"
        );
        for (e, (d, st)) in per_epoch.iter().enumerate() {
            print!("{:>5} {:>8}", e, d);
            for t in totals.iter().chain(std::iter::once(ft)) {
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
}
