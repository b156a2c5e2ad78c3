//! How the encoder chooses stages. Adaptive stages (`Config::link_rate`): on a link so slow that
//! every saved byte is worth any time, the encoder does exactly what it does without a link rate;
//! on a link so fast that no compression can pay, it stops compressing (but for probes) and the
//! replica is still exact. No wall-clock time is asserted: the two extremes decide the same way on
//! any machine. Exhaustive mode (`Encoder::set_exhaustive`): trying every encoding on every page
//! never sends more than the cheap per-page choice.

use fgbi::{Config, Decoder, Encoder, EncoderStats};

const PS: usize = 4096;
const PAGES: usize = 256;

/// Compressible, changing memory: text-like pages that move and change a little every epoch.
fn epochs() -> Vec<Vec<u8>> {
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let words: Vec<&[u8]> = vec![
        b"session", b"user", b"\"id\":", b"{", b"}", b"expires", b"42",
    ];
    let mut mem = Vec::with_capacity(PAGES * PS);
    while mem.len() < PAGES * PS {
        mem.extend_from_slice(words[next() as usize % words.len()]);
    }
    mem.truncate(PAGES * PS);
    let mut out = vec![mem.clone()];
    for _ in 0..5 {
        for _ in 0..PAGES {
            let p = next() as usize % PAGES;
            let at = p * PS + next() as usize % (PS - 64);
            let from = next() as usize % (PAGES * PS - 64);
            mem.copy_within(from..from + 64, at);
        }
        out.push(mem.clone());
    }
    out
}

/// Runs every epoch through an encoder with `link_rate` and a decoder; returns the frames and
/// the encoder's counters, after checking the replica after each frame.
fn run(link_rate: u64) -> (Vec<Vec<u8>>, EncoderStats) {
    run_with(link_rate, false)
}

fn run_with(link_rate: u64, exhaustive: bool) -> (Vec<Vec<u8>>, EncoderStats) {
    run_config(link_rate, exhaustive, fgbi::Stages::ALL)
}

fn run_stages(link_rate: u64, stages: fgbi::Stages) -> (Vec<Vec<u8>>, EncoderStats) {
    run_config(link_rate, false, stages)
}

fn run_config(
    link_rate: u64,
    exhaustive: bool,
    stages: fgbi::Stages,
) -> (Vec<Vec<u8>>, EncoderStats) {
    let cfg = Config {
        link_rate,
        stages,
        ..Config::default()
    };
    let mut enc = Encoder::new(cfg).unwrap();
    enc.set_stream_id(7);
    enc.set_exhaustive(exhaustive);
    let mut dec = Decoder::new(cfg).unwrap();
    let mut replica = vec![0u8; PAGES * PS];
    let mut frames = Vec::new();
    let mut prev: Option<Vec<u8>> = None;
    for (e, mem) in epochs().into_iter().enumerate() {
        enc.begin_epoch(e as u64).unwrap();
        for p in 0..PAGES {
            let page = &mem[p * PS..(p + 1) * PS];
            if prev
                .as_ref()
                .is_none_or(|old| &old[p * PS..(p + 1) * PS] != page)
            {
                enc.add_page((p * PS) as u64, page).unwrap();
            }
        }
        let f = enc.end_epoch().unwrap().to_vec();
        dec.apply_flat(&f, &mut replica).unwrap();
        assert!(replica == mem, "epoch {e}: replica differs");
        frames.push(f);
        prev = Some(mem);
    }
    (frames, enc.stats())
}

/// On a 1 byte/s link a saved byte is worth a second of encoding: a gate could close only on a
/// stage that has not saved a single byte in its warm-up, which this workload never does, so the
/// frames are the same as without a link rate (this does not depend on the machine's speed).
#[test]
fn a_slow_link_changes_nothing() {
    let (plain, s0) = run(0);
    let (slow, s1) = run(1);
    assert_eq!(
        s1.skipped_analysis + s1.skipped_dict + s1.skipped_compress + s1.skipped_entropy,
        0
    );
    assert!(plain == slow, "same frames byte for byte");
    assert!(s0.dict.pages + s0.compressed.pages > 0 && s0.entropy_frames > 0);
}

/// On a link as fast as memory nothing beats sending the page: after the warm-ups only the
/// analysis gate's probes analyse a page, the rest go out as zero or RAW ops (or compressed on
/// the compressor gate's probes), and the frames are not entropy coded but for the entropy
/// gate's probes.
#[test]
fn a_link_faster_than_any_analysis_sends_zero_and_raw_pages_but_for_probes() {
    let (plain, _) = run(0);
    let (fast, s) = run(u64::MAX);
    let (bytes_plain, bytes_fast): (usize, usize) = (
        plain.iter().map(Vec::len).sum(),
        fast.iter().map(Vec::len).sum(),
    );
    assert!(bytes_fast > bytes_plain, "{bytes_fast} vs {bytes_plain}");
    // analysed: the analysis gate's warm-up samples, the pages that measured one of the three
    // gated stages inside the analysis (blocks, dictionary, compressor) in its warm-up (such a
    // page is no sample of the analysis gate), and the probes
    let analysed = s.pages_in - s.zero.pages - s.skipped_analysis;
    assert!(
        analysed <= 4 * fgbi::adapt::WARMUP + s.pages_in / fgbi::adapt::PROBE_EVERY + 1,
        "{analysed} of {} pages analysed",
        s.pages_in
    );
    // a page not analysed goes out RAW, or compressed whole on the compressor gate's probes
    assert!(
        s.raw.pages + s.compressed.pages >= s.skipped_analysis,
        "{s:?}"
    );
    assert!(
        s.compressed.pages <= fgbi::adapt::WARMUP + s.pages_in / fgbi::adapt::PROBE_EVERY + 1,
        "{s:?}"
    );
    // frames of RAW pages are not worth entropy coding
    let frames = s.epochs;
    assert!(
        s.entropy_frames <= fgbi::adapt::FRAME_WARMUP + frames / fgbi::adapt::FRAME_PROBE_EVERY + 1
    );
}

/// Without the stages that analyse a page (delta, blocks), the pages go to the compressor, and
/// on a link faster than any compressor it stops compressing but for its probes.
#[test]
fn a_link_faster_than_any_compressor_stops_compression_but_for_probes() {
    let stages = fgbi::Stages {
        delta: false,
        blocks: false,
        sharing: false,
        dict: false,
        ..fgbi::Stages::ALL
    };
    let (plain, _) = run_stages(0, stages);
    let (fast, s) = run_stages(u64::MAX, stages);
    let (bytes_plain, bytes_fast): (usize, usize) = (
        plain.iter().map(Vec::len).sum(),
        fast.iter().map(Vec::len).sum(),
    );
    assert!(bytes_fast > bytes_plain, "{bytes_fast} vs {bytes_plain}");
    assert_eq!(s.skipped_analysis, 0, "nothing to shed but the compressor");
    assert!(s.skipped_compress > 0, "{s:?}");
    // after the warm-up, at most one use in PROBE_EVERY gets through the gate
    assert!(
        s.skipped_compress > s.compressed.pages,
        "skipped {} vs ran {}",
        s.skipped_compress,
        s.compressed.pages
    );
}

/// The exhaustive encoder keeps the smallest of every candidate op per page: its ops never
/// take more bytes than the cheap choice's (up to sharing-table slot collisions, which depend on
/// each encoder's random hash seed), it tries the dictionary on more pages, and its frames
/// decode exactly (checked in `run_with`). Both without runs: the exhaustive encoder codes
/// each page on its own, and a run codes several together.
#[test]
fn exhaustive_mode_never_sends_more_ops_bytes() {
    let per_page = fgbi::Stages {
        runs: false,
        ..fgbi::Stages::ALL
    };
    let (_, cheap) = run_config(0, false, per_page);
    let (_, best) = run_config(0, true, per_page);
    let (c, b) = (cheap.op_bytes(), best.op_bytes());
    assert!(b * 1000 <= c * 1001, "exhaustive {b} vs cheap {c}");
    assert!(best.nanos.dict > 0 && best.dict.pages + best.delta.pages > 0);
}

/// An epoch of random (incompressible) pages goes out as RAW ops and is not entropy coded (the
/// stage would only spend time); an epoch of text-like pages is.
#[test]
fn incompressible_epochs_skip_the_entropy_stage() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = vec![0u8; 64 * PS];
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let text = &epochs()[0][..64 * PS];
    for (mem, coded) in [(&random[..], false), (text, true)] {
        let mut enc = Encoder::new(Config::default()).unwrap();
        enc.begin_epoch(0).unwrap();
        for p in 0..64 {
            enc.add_page((p * PS) as u64, &mem[p * PS..(p + 1) * PS])
                .unwrap();
        }
        let f = enc.end_epoch().unwrap().to_vec();
        let flags = u32::from_le_bytes(f[8..12].try_into().unwrap());
        assert_eq!(flags & fgbi::frame::FLAG_ENTROPY != 0, coded);
        let mut replica = vec![0u8; 64 * PS];
        Decoder::new(Config::default())
            .unwrap()
            .apply_flat(&f, &mut replica)
            .unwrap();
        assert!(replica == mem);
    }
}

/// A page whose changed blocks are new random bytes, beside blocks that did not change: the
/// unchanged blocks are kept (a block op with the random literals as they are), not sent again
/// with the page raw. Without the XOR delta stage, the block op is the only candidate besides
/// raw: the dictionary pass and the compressor skip random-looking content.
#[test]
fn random_blocks_beside_unchanged_ones_keep_the_unchanged() {
    let cfg = Config {
        stages: fgbi::Stages {
            delta: false,
            ..fgbi::Stages::ALL
        },
        ..Config::default()
    };
    let old: Vec<u8> = (0..PS).map(|i| b"kept text "[i % 10]).collect();
    let mut new = old.clone();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in &mut new[..PS / 2] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut enc = Encoder::new(cfg).unwrap();
    let mut dec = Decoder::new(cfg).unwrap();
    let mut replica = vec![0u8; PS];
    for (e, page) in [&old, &new].into_iter().enumerate() {
        enc.begin_epoch(e as u64).unwrap();
        enc.add_page(0, page).unwrap();
        let f = enc.end_epoch().unwrap();
        dec.apply_flat(f, &mut replica).unwrap();
        assert!(&replica == page, "epoch {e}: replica differs");
    }
    let s = enc.epoch_stats();
    assert_eq!((s.raw.pages, s.blocks.pages), (0, 1), "{s:?}");
    assert_eq!(s.kept_blocks, (PS / 2 / cfg.block_size) as u64);
    // the random half as literals, the frame's header and checksum, the op's tag, address and map
    let envelope = fgbi::format::HEADER_LEN + fgbi::format::TRAILER_LEN;
    assert!(
        s.bytes_out < (PS / 2 + envelope + 16) as u64,
        "{} bytes",
        s.bytes_out
    );
}

/// `pages` pages of text-like content (compressible: the entropy stage saves bytes on it).
fn text_pages(pages: usize) -> Vec<u8> {
    let words: [&[u8]; 5] = [b"alpha ", b"beta ", b"gamma ", b"delta ", b"epsilon "];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut mem = Vec::with_capacity(pages * PS);
    while mem.len() < pages * PS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        mem.extend_from_slice(words[x as usize % 5]);
        mem.extend_from_slice(&(x as u16).to_le_bytes());
    }
    mem.truncate(pages * PS);
    mem
}

/// One epoch of `mem`'s pages encoded without a fallback compressor (so the frame is RAW pages,
/// never taken for "incompressible" unmeasured) with `link_rate`: the frame (checked to decode)
/// and the encoder's counters.
fn one_large_frame(mem: &[u8], link_rate: u64) -> (Vec<u8>, EncoderStats) {
    one_large_frame_with(mem, link_rate, fgbi::Fallback::None)
}

fn one_large_frame_with(
    mem: &[u8],
    link_rate: u64,
    fallback: fgbi::Fallback,
) -> (Vec<u8>, EncoderStats) {
    let cfg = Config {
        link_rate,
        fallback,
        ..Config::default()
    };
    let mut enc = Encoder::new(cfg).unwrap();
    enc.set_stream_id(9);
    enc.begin_epoch(0).unwrap();
    for (p, page) in mem.chunks_exact(PS).enumerate() {
        enc.add_page((p * PS) as u64, page).unwrap();
    }
    let f = enc.end_epoch().unwrap().to_vec();
    let mut replica = vec![0u8; mem.len()];
    Decoder::new(cfg)
        .unwrap()
        .apply_flat(&f, &mut replica)
        .unwrap();
    assert!(replica == mem, "replica differs");
    (f, enc.stats())
}

/// A frame of 1 MiB or more that the entropy gate has to measure (its warm-up) is measured on
/// its first ops, not coded whole: on a link faster than any coder the frame goes out uncoded,
/// and the gate counts a skip; on a slow link the sample says coding pays and the frame is coded
/// exactly as without a link rate. A 4.4 MB frame and a 1.6 MB one.
#[test]
fn a_large_frame_is_measured_on_a_sample() {
    for pages in [1100, 400] {
        let mem = text_pages(pages);
        let (plain, s0) = one_large_frame(&mem, 0);
        assert_eq!(
            s0.entropy_frames, 1,
            "the entropy stage pays on this content"
        );
        let (fast, s) = one_large_frame(&mem, u64::MAX);
        assert_eq!(
            (s.entropy_frames, s.skipped_entropy),
            (0, 1),
            "{pages}: {s:?}"
        );
        assert!(
            fast.len() > plain.len() * 5 / 4,
            "{} vs {}",
            fast.len(),
            plain.len()
        );
        let (slow, s) = one_large_frame(&mem, 1);
        assert_eq!(
            (s.entropy_frames, s.skipped_entropy),
            (1, 0),
            "{pages}: {s:?}"
        );
        assert!(slow == plain, "{pages}: same frame byte for byte");
    }
}

/// The same on a slow link with lz4 ops, whose literals are context-modelled: the sample
/// carries the literal contexts of its own ops (the encoder's debug builds check that their
/// count matches the sample's literals) and the frame is coded as without a link rate. (On a
/// fast link the compression gate closes first and the frame of RAW pages skips the entropy
/// stage unmeasured.)
#[test]
fn a_large_frame_of_lz4_ops_is_measured_on_a_sample() {
    let mem = text_pages(2000);
    let (plain, s0) = one_large_frame_with(&mem, 0, fgbi::Fallback::Lz4);
    assert_eq!(s0.compressed.pages, 2000, "{s0:?}");
    assert!(
        plain.len() > 1 << 20,
        "a frame with a sample: {}",
        plain.len()
    );
    assert_eq!(s0.entropy_frames, 1);
    let (slow, s) = one_large_frame_with(&mem, 1, fgbi::Fallback::Lz4);
    assert_eq!((s.entropy_frames, s.skipped_entropy), (1, 0), "{s:?}");
    assert!(slow == plain, "same frame byte for byte");
}

/// Every page of `old` (epoch 0), then of `new` (epoch 1), through an encoder and a decoder
/// with `cfg`, the replica checked after each frame; the encoder's counters of epoch 1.
fn two_epochs(cfg: Config, old: &[u8], new: &[u8]) -> EncoderStats {
    let mut enc = Encoder::new(cfg).unwrap();
    let mut dec = Decoder::new(cfg).unwrap();
    let mut replica = vec![0u8; old.len()];
    for (e, mem) in [old, new].into_iter().enumerate() {
        enc.begin_epoch(e as u64).unwrap();
        for (p, page) in mem.chunks_exact(PS).enumerate() {
            enc.add_page((p * PS) as u64, page).unwrap();
        }
        let f = enc.end_epoch().unwrap();
        dec.apply_flat(f, &mut replica).unwrap();
        assert!(replica == mem, "epoch {e}: replica differs");
    }
    enc.epoch_stats()
}

/// Ops bytes for 64 text-like pages whose first `changed` eighths are rewritten in epoch 1
/// (so the XOR delta is not small and the unchanged blocks are kept), with `fallback` and with
/// or without the dictionary stage; the frames are checked to decode.
fn half_changed(fallback: fgbi::Fallback, dict: bool, changed: usize) -> u64 {
    let cfg = Config {
        fallback,
        stages: fgbi::Stages {
            dict,
            entropy: false,
            ..fgbi::Stages::ALL
        },
        ..Config::default()
    };
    let pages = 64;
    let old = text_pages(pages);
    let mut new = old.clone();
    let mut x = 0x0123_4567_89ab_cdefu64;
    for page in new.chunks_exact_mut(PS) {
        for (i, b) in page[..PS * changed / 8].iter_mut().enumerate() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = b"0123456789 abcdef"[(x % 17) as usize] ^ (i as u8 & 1);
        }
    }
    two_epochs(cfg, &old, &new).op_bytes()
}

/// Turning the dictionary stage on never costs bytes on pages with kept blocks: with deflate the
/// block op (kept blocks and deflated literals) is still made and kept when smaller than the
/// dictionary pass's lz4; with lz4, where the block op is left out when the dictionary pass runs,
/// it is made after all when that pass does not win.
#[test]
fn the_dictionary_stage_never_costs_bytes_beside_kept_blocks() {
    for changed in [2, 4, 6] {
        for fallback in [fgbi::Fallback::Deflate(6), fgbi::Fallback::Lz4] {
            let off = half_changed(fallback, false, changed);
            let on = half_changed(fallback, true, changed);
            assert!(
                on * 1000 <= off * 1001,
                "{fallback:?}, {changed}/8: {on} vs {off}"
            );
        }
    }
}

/// Against a page's last-sent copy, where the dictionary pass runs, the block work waits for it
/// and runs only where that pass leaves the changed blocks at more than half their size: pages
/// whose text moved are coded by the dictionary without a look into the sharing table, and a
/// page that took two blocks from another page (content its own old version lacks) still
/// refers to them in a BLOCKS op.
#[test]
fn the_block_work_waits_for_the_dictionary_against_a_sent_copy() {
    let cfg = Config::default();
    let pages = 32;
    let mut old = text_pages(pages);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in &mut old[3 * PS..4 * PS] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut new = old.clone();
    let last = pages - 1;
    for p in (0..last).filter(|&p| p != 3) {
        // the text moved by three bytes: too large a XOR delta, a few bytes of dictionary op
        new.copy_within(p * PS..(p + 1) * PS - 3, p * PS + 3);
    }
    // blocks 4 and 5 of the last page: page 3's first two (random) blocks
    new.copy_within(3 * PS..3 * PS + 512, last * PS + 1024);
    let s = two_epochs(cfg, &old, &new);
    assert_eq!(s.dict.pages, pages as u64 - 2, "{s:?}");
    assert_eq!((s.blocks.pages, s.shared_blocks), (1, 2), "{s:?}");
    // the last page's changed blocks only (before: every changed block of every moved page)
    assert!(s.share.lookups <= 2, "{} lookups", s.share.lookups);
}
