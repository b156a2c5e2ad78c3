//! Encode and decode speed on a real trace, without the rest of `fgbi eval` around it: the dirty
//! pages of every epoch are read into memory first, then a fresh encoder (the default
//! configuration, or the one the options below give) encodes all epochs, `--rounds` times; prints
//! the best round's bytes sent, encode GB/s over the dirty bytes and time per stage (with
//! `--adapt-gbps` the rounds may send different bytes: the gates follow timings). Then the first
//! round's frames are applied by a fresh decoder to a zeroed replica, `--decode-rounds` times
//! (default `--rounds`), and the best round's decode GB/s (over the
//! same dirty bytes) is printed; the first decode round checks the replica against every image,
//! so a speed-up that breaks the format does not go unnoticed.
//!
//! ```text
//! cargo run --release --example speed -- TRACE_DIR [--rounds R] [--decode-rounds D] [--epochs N] [--no-check] [--stages LIST] [--no-fallback] [--adapt-gbps G] [--frame-bytes B] [--frames FILE] [--in-place] [--parts] [--pollute] [--per-epoch]
//! ```
//!
//! `--frames FILE` keeps the first round's frames in FILE: written when FILE does not exist, read
//! (and the encoding skipped) when it does, so two builds decode the very same frames (the
//! adaptive gates follow timings, so two encodings may differ).
//!
//! `--in-place` reads each dirty page where it lies in its epoch's image (scattered, mostly not
//! in the processor's cache, as a hypervisor reads guest memory and as `fgbi eval` does) instead
//! of from a packed copy of the epoch's dirty pages. `--parts` also adds them with
//! `add_page_in_place` and takes the frames as parts, as `fgbi eval` does (the parts kept for
//! decoding are copied out untimed).
//!
//! Besides the best round, the sum over epochs of each epoch's fastest round is printed: with
//! `--pollute` and a fresh encoder each round it moves less between runs than the best round
//! (a preempted epoch spoils one epoch's sample, not the round). `--per-epoch` prints one row per
//! epoch of the best round: its encoding time beside its bytes' time on the link (with
//! `--adapt-gbps`: where the adaptive encoder was ahead of the link or behind it) and its ops.
//!
//! `--no-check` skips decoding (for profiling the encoder alone; `--decode-rounds` is then
//! ignored); `--decode-rounds` sets the
//! decode rounds apart from the encode rounds (for profiling the decoder: `--rounds 1`);
//! `--stages` (as `fgbi eval --stages`), `--no-fallback`, `--adapt-gbps` (a link rate in
//! Gbit/s for the adaptive stages) and `--frame-bytes` (epochs sent in parts of that
//! payload size) change the configuration.
//!
//! Speeds on a shared machine move between runs; the best of several rounds moves least.

#[path = "common/mod.rs"]
mod common;

use fgbi::{Config, Decoder, Encoder};
use std::time::Instant;

struct Epoch {
    /// Page indexes of the dirty pages.
    pages: Vec<u64>,
    /// Their contents, back to back.
    data: Vec<u8>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let (mut rounds, mut max_epochs, mut check_first) = (3usize, usize::MAX, true);
    let mut decode_rounds = None;
    let mut frames_file: Option<String> = None;
    let mut in_place = false;
    let mut parts_in_place = false;
    let mut pollute = false;
    let mut per_epoch = false;
    let mut junk = vec![1u8; 128 << 20];
    let mut cfg = Config::default();
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> usize {
            args.next()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{what} needs a number"))
        };
        match a.as_str() {
            "--rounds" => rounds = num("--rounds").max(1),
            "--decode-rounds" => decode_rounds = Some(num("--decode-rounds").max(1)),
            "--epochs" => max_epochs = num("--epochs"),
            "--no-check" => check_first = false,
            "--in-place" => in_place = true,
            "--parts" => (in_place, parts_in_place) = (true, true),
            "--pollute" => pollute = true,
            "--per-epoch" => per_epoch = true,
            "--stages" => {
                let v = args.next().expect("--stages needs a list");
                cfg.stages = v
                    .parse()
                    .expect("--stages: zero,blocks,sharing,delta,dict,entropy");
            }
            "--no-fallback" => cfg.fallback = fgbi::Fallback::None,
            "--adapt-gbps" => {
                let v = args.next().expect("--adapt-gbps needs a rate");
                let gbps: f64 = v.parse().expect("--adapt-gbps: Gbit/s, e.g. 0.5");
                cfg.link_rate = (gbps * 125e6) as u64;
            }
            "--frame-bytes" => cfg.frame_bytes = num("--frame-bytes"),
            "--frames" => frames_file = Some(args.next().expect("--frames needs a file")),
            _ if a.starts_with('-') => panic!("unknown option {a}"),
            _ => dir = Some(a),
        }
    }
    let dir = dir.expect(
        "usage: speed TRACE_DIR [--rounds R] [--decode-rounds D] [--epochs N] [--no-check] [--stages LIST] [--no-fallback] [--adapt-gbps G] [--frame-bytes B] [--frames FILE] [--in-place] [--parts] [--pollute] [--per-epoch]",
    );
    let mut names = common::epoch_images(&dir);
    names.truncate(max_epochs);
    let ps = cfg.page_size;

    let mut epochs = Vec::new();
    let mut images = Vec::new();
    let mut prev: Option<Vec<u8>> = None;
    for name in &names {
        let cur = std::fs::read(format!("{dir}/{name}")).expect("epoch image");
        assert!(
            cur.len() % ps == 0
                && images
                    .first()
                    .is_none_or(|i: &Vec<u8>| i.len() == cur.len()),
            "{name}: every image must be the same whole number of pages"
        );
        let mut e = Epoch {
            pages: Vec::new(),
            data: Vec::new(),
        };
        for (i, page) in cur.chunks_exact(ps).enumerate() {
            let dirty = match &prev {
                None => true,
                Some(p) => &p[i * ps..(i + 1) * ps] != page,
            };
            if dirty {
                e.pages.push(i as u64);
                e.data.extend_from_slice(page);
            }
        }
        epochs.push(e);
        images.push(cur.clone());
        prev = Some(cur);
    }
    let dirty: usize = epochs.iter().map(|e| e.data.len()).sum();
    let image_bytes = images.first().map_or(0, |i| i.len());

    let mut best: Option<(f64, fgbi::EncoderStats)> = None;
    // the frames of each epoch (its parts, then its last frame), from the first round
    let mut frames: Vec<Vec<Vec<u8>>> = Vec::new();
    let cached = frames_file
        .as_deref()
        .and_then(|f| std::fs::read(f).ok())
        .map(|b| read_frames(&b));
    let rounds = if cached.is_some() { 0 } else { rounds };
    // each epoch's fastest encoding over the rounds
    let mut epoch_best = vec![f64::MAX; epochs.len()];
    // --per-epoch: each epoch's encoding seconds and what the encoder counted in it, best round
    let mut rows_best: Vec<(f64, fgbi::EncoderStats)> = Vec::new();
    for round in 0..rounds {
        let mut enc = Encoder::new(cfg).expect("encoder");
        let mut secs = 0.0;
        let mut rows = Vec::new();
        for (n, e) in epochs.iter().enumerate() {
            if pollute {
                // what runs between two epochs (the guest) leaves nothing of the encoder's
                // memory in the processor's caches
                junk.iter_mut()
                    .step_by(64)
                    .for_each(|b| *b = b.wrapping_add(1));
            }
            let t = Instant::now();
            let keep = round == 0 && check_first;
            let mut parts = Vec::new();
            // copying the parts kept for decoding is not the encoder's time
            let mut copying = 0.0;
            enc.begin_epoch(n as u64).expect("begin");
            for (i, &p) in e.pages.iter().enumerate() {
                let page = if in_place {
                    &images[n][p as usize * ps..][..ps]
                } else {
                    &e.data[i * ps..][..ps]
                };
                let addr = (p as usize * ps) as u64;
                if parts_in_place {
                    // SAFETY: the images are not changed while the program runs
                    unsafe { enc.add_page_in_place(addr, page) }.expect("add");
                    if let Some(part) = enc.take_frame_parts() {
                        if keep {
                            let c = Instant::now();
                            let mut v = Vec::new();
                            part.copy_to(&mut v);
                            parts.push(v);
                            copying += c.elapsed().as_secs_f64();
                        }
                    }
                    continue;
                }
                enc.add_page(addr, page).expect("add");
                if let Some(part) = enc.take_frame() {
                    if keep {
                        let c = Instant::now();
                        parts.push(part.to_vec());
                        copying += c.elapsed().as_secs_f64();
                    }
                }
            }
            let last = if parts_in_place {
                let part = enc.end_epoch_parts().expect("end");
                let c = Instant::now();
                let mut v = Vec::new();
                if keep {
                    part.copy_to(&mut v);
                }
                copying += c.elapsed().as_secs_f64();
                v
            } else {
                let frame = enc.end_epoch().expect("end");
                let c = Instant::now();
                let v = if keep { frame.to_vec() } else { Vec::new() };
                copying += c.elapsed().as_secs_f64();
                v
            };
            let epoch_secs = t.elapsed().as_secs_f64() - copying;
            secs += epoch_secs;
            if per_epoch {
                rows.push((epoch_secs, enc.epoch_stats()));
            }
            epoch_best[n] = epoch_best[n].min(epoch_secs);
            if keep {
                parts.push(last);
                frames.push(parts);
            }
        }
        if best.as_ref().is_none_or(|(s, _)| secs < *s) {
            best = Some((secs, enc.stats()));
            rows_best = rows;
        }
    }
    if let Some(c) = cached {
        assert_eq!(c.len(), epochs.len(), "--frames: the frames of every epoch");
        frames = c;
    } else if let (Some(f), false) = (&frames_file, frames.is_empty()) {
        std::fs::write(f, write_frames(&frames)).expect("--frames: write");
    }
    let mut best_decode: Option<(f64, fgbi::DecoderStats)> = None;
    let mut replica = vec![0u8; image_bytes];
    let decode_rounds = if frames.is_empty() {
        0
    } else {
        decode_rounds.unwrap_or(rounds)
    };
    for round in 0..decode_rounds {
        let mut dec = Decoder::new(cfg).expect("decoder");
        replica.fill(0); // and resident, as a backup's replica is
        let mut secs = 0.0;
        for (n, parts) in frames.iter().enumerate() {
            let t = Instant::now();
            for frame in parts {
                dec.apply_flat(frame, &mut replica).expect("frame decodes");
            }
            secs += t.elapsed().as_secs_f64();
            if round == 0 {
                assert!(replica[..] == images[n][..], "epoch {n}: replica differs");
            }
        }
        if best_decode.as_ref().is_none_or(|(b, _)| secs < *b) {
            best_decode = Some((secs, dec.stats()));
        }
    }
    if let Some((secs, stats)) = best {
        print_encode(&dir, epochs.len(), dirty, rounds, secs, &stats);
        let sum: f64 = epoch_best.iter().sum();
        println!(
            "each epoch's fastest round, summed: {:.2} ms, {:.3} GB/s",
            sum * 1e3,
            dirty as f64 / sum / 1e9
        );
        if cfg.link_rate > 0 {
            println!(
                "gates skipped: analysis {} pages, block work {}, dict {}, compress {}, entropy \
                 {} frames (of {})",
                stats.skipped_analysis,
                stats.skipped_blocks,
                stats.skipped_dict,
                stats.skipped_compress,
                stats.skipped_entropy,
                stats.frames
            );
        }
        if per_epoch {
            print_per_epoch(&rows_best, cfg.link_rate);
        }
    } else {
        if per_epoch {
            println!("--per-epoch: nothing encoded (the frames were read from --frames)");
        }
        let sent: usize = frames.iter().flatten().map(|f| f.len()).sum();
        println!(
            "{dir}: {} epochs, {:.1} MiB dirty, {:.2} MiB sent ({sent} bytes), frames read from file",
            epochs.len(),
            dirty as f64 / (1 << 20) as f64,
            sent as f64 / (1 << 20) as f64
        );
    }
    if let Some((secs, s)) = best_decode {
        println!(
            "decode, best of {decode_rounds}: {secs:.3} s, {:.3} GB/s (every epoch checked; \
             validate {:.1} ms, apply {:.1} ms; decoder memory {:.1} MiB)",
            dirty as f64 / secs / 1e9,
            s.validate_nanos as f64 / 1e6,
            s.apply_nanos as f64 / 1e6,
            s.memory_bytes as f64 / (1 << 20) as f64
        );
    }
}

/// The frames of every epoch back to back, each after its length (8 bytes, little endian).
fn write_frames(epochs: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in epochs.iter().flatten() {
        out.extend_from_slice(&(f.len() as u64).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// [`write_frames`]'s output back into epochs: an epoch's frames end with one that is not
/// partial.
fn read_frames(mut b: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut epochs = Vec::new();
    let mut parts = Vec::new();
    while !b.is_empty() {
        let (len, rest) = b.split_at(8);
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes")) as usize;
        let frame = rest[..len].to_vec();
        b = &rest[len..];
        let (h, _) = fgbi::format::open(&frame).expect("--frames: a frame");
        parts.push(frame);
        if !h.is_partial() {
            epochs.push(std::mem::take(&mut parts));
        }
    }
    epochs
}

/// `--per-epoch`: for each epoch of the best round, its encoding time, its bytes' time on the link
/// (with `--adapt-gbps`), pages per op and pages the gates sent without analysis.
fn print_per_epoch(rows: &[(f64, fgbi::EncoderStats)], link_rate: u64) {
    println!(
        "{:>5} {:>7} {:>9} {:>8} {:>8} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "epoch",
        "pages",
        "bytes",
        "enc ms",
        "link ms",
        "zero",
        "delta",
        "dict",
        "blocks",
        "comp",
        "raw",
        "unch",
        "shed"
    );
    for (e, (secs, s)) in rows.iter().enumerate() {
        let link = if link_rate > 0 {
            format!("{:.2}", s.bytes_out as f64 * 1e3 / link_rate as f64)
        } else {
            "-".to_string()
        };
        println!(
            "{:>5} {:>7} {:>9} {:>8.2} {:>8} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
            e,
            s.pages_in,
            s.bytes_out,
            secs * 1e3,
            link,
            s.zero.pages,
            s.delta.pages,
            s.dict.pages,
            s.blocks.pages,
            s.compressed.pages,
            s.raw.pages,
            s.unchanged,
            s.skipped_analysis
        );
    }
}

fn print_encode(
    dir: &str,
    nepochs: usize,
    dirty: usize,
    rounds: usize,
    secs: f64,
    stats: &fgbi::EncoderStats,
) {
    let sent = stats.bytes_out;
    println!(
        "{dir}: {} epochs, {:.1} MiB dirty, {:.2} MiB sent ({sent} bytes), best of {rounds}: \
         {secs:.3} s, {:.3} GB/s",
        nepochs,
        dirty as f64 / (1 << 20) as f64,
        sent as f64 / (1 << 20) as f64,
        dirty as f64 / secs / 1e9
    );
    println!("stage ms: {}", stats.nanos);
}
