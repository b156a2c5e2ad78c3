//! End to end: the whole `Encoder` and `Decoder` on steady-state epochs of realistic workloads,
//! next to per-page baselines in the same run.
//!
//! Guest: 64 MiB (16384 pages); every epoch dirties the same 8192 pages (32 MiB, a fixed random
//! half, in address order). Default `Config` (256 B blocks, 64 MiB page cache + 8 MiB hashes, lz4).
//! Epoch 0 (the whole guest) and one steady-state epoch warm every encoder and cache outside the
//! measurement. Each measured iteration is one epoch: the workload's writes are made to the guest
//! (not timed), then the dirty pages are encoded (timed); the decoder functions encode untimed
//! and time only the decode. Throughput is bytes of dirty pages (input for encoders, output for
//! decoders). Bytes sent per dirty byte are printed per workload to stderr (`ratio ...`).
//!
//! Peers, each with its own guest and state so each sees consecutive epochs:
//! - `zlib1_per_page`: each page deflated alone at level 1 (miniz_oxide), raw when it does not
//!   pay (QEMU multifd zlib); `lz4_per_page`: the same with lz4_flex;
//! - `xbzrle_cache`: a direct-mapped cache of last-sent pages with the byte budget of fgbi's page
//!   cache (64 MiB); on a hit `fgbi::xbzrle::encode` (QEMU's format), raw on a miss or overflow;
//! - decode peers: `lz4_per_page_decode`, `zlib1_per_page_decode`, `xbzrle_cache_decode`;
//! - `zero_raw` / `zero_raw_decode`: zero pages flagged, the others copied whole into a 1 MiB
//!   send buffer, and copied back into the replica: the peer of `fgbi_100g_encode` /
//!   `fgbi_100g_decode`, libfgbi adapted to a 100 Gbit/s link (a link as fast as memory here)
//!   with epochs in 1 MiB parts, where the ratio of the two is what the checksum, the op format
//!   and the encoder's bookkeeping cost over the bare copy; `fgbi_100g_in_place_encode` the same
//!   with its RAW pages left in the guest (`Encoder::add_page_in_place`), each part's pieces
//!   then written to a send buffer (not timed, as a vectored send's copy into the socket is not
//!   the encoder's; zero+raw's copy into its buffer is timed, so this one's margin over it is an
//!   upper bound on what a zero-copy zero+raw would leave).
//!
//! Run: `cargo bench --bench epoch -- --warm-up-time 1 --measurement-time 5`
//! (FGBI_BENCH_WORKLOADS=sparse,random runs only those; FGBI_BENCH_PEERS=0 skips the peers.)

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use fgbi::compress::{decompress, Codec, Compressor, Deflate, Scratch};
use fgbi::{xbzrle, Config, Decoder, Encoder};
use std::hint::black_box;
use std::time::{Duration, Instant};

const PAGE: usize = 4096;
const GUEST_PAGES: usize = 16384;
const DIRTY_PAGES: usize = 8192;

mod common;
use common::Rng;

impl Rng {
    /// A word as heap memory holds them: zero, small integers, pointers, text.
    fn word(&mut self) -> u64 {
        let r = self.next();
        match r % 10 {
            0..=3 => 0,
            4..=6 => (r >> 40) & 0xffff,
            7 | 8 => 0x7f00_0000_0000 | ((r >> 20) & 0xff_fff8),
            _ => u64::from_le_bytes(*b"memory  ") ^ ((r >> 8) & 0x0707_0707_0707_0707),
        }
    }
    fn structured(&mut self, page: &mut [u8]) {
        for w in page.chunks_exact_mut(8) {
            w.copy_from_slice(&self.word().to_le_bytes());
        }
    }
}

#[derive(Clone, Copy)]
enum Workload {
    /// 4 words rewritten per dirty page.
    Sparse,
    /// 30% of the words rewritten.
    Dense,
    /// Each dirty page rebuilt from four 1 KiB pieces of clean pages.
    Duplicate,
    /// Every dirty page filled with random bytes.
    Random,
    /// 3 in 4 dirty pages zeroed, the others new structured content.
    ZeroHeavy,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Sparse => "sparse",
            Workload::Dense => "dense",
            Workload::Duplicate => "duplicate",
            Workload::Random => "random",
            Workload::ZeroHeavy => "zero_heavy",
        }
    }
}

/// A guest and its workload: the guest's memory, its dirty set and clean set.
struct Guest {
    mem: Vec<u8>,
    dirty: Vec<usize>,
    clean: Vec<usize>,
    rng: Rng,
    workload: Workload,
}

impl Guest {
    fn new(workload: Workload) -> Guest {
        let mut rng = Rng(0x6eed);
        let mut mem = vec![0u8; GUEST_PAGES * PAGE];
        for p in mem.chunks_exact_mut(PAGE) {
            rng.structured(p);
        }
        let mut is_dirty = vec![false; GUEST_PAGES];
        let mut n = 0;
        while n < DIRTY_PAGES {
            let i = rng.below(GUEST_PAGES);
            if !is_dirty[i] {
                is_dirty[i] = true;
                n += 1;
            }
        }
        let dirty = (0..GUEST_PAGES).filter(|&i| is_dirty[i]).collect();
        let clean = (0..GUEST_PAGES).filter(|&i| !is_dirty[i]).collect();
        Guest {
            mem,
            dirty,
            clean,
            rng,
            workload,
        }
    }

    /// The guest runs for one epoch: writes to its dirty pages.
    fn run(&mut self) {
        let rng = &mut self.rng;
        for &p in &self.dirty {
            match self.workload {
                Workload::Sparse => {
                    let page = &mut self.mem[p * PAGE..][..PAGE];
                    for _ in 0..4 {
                        let i = rng.below(PAGE / 8) * 8;
                        page[i..i + 8].copy_from_slice(&(rng.next() | 1).to_le_bytes());
                    }
                }
                Workload::Dense => {
                    let page = &mut self.mem[p * PAGE..][..PAGE];
                    for w in page.chunks_exact_mut(8) {
                        if rng.below(10) < 3 {
                            w.copy_from_slice(&rng.word().wrapping_add(1).to_le_bytes());
                        }
                    }
                }
                Workload::Duplicate => {
                    for piece in 0..4 {
                        let src =
                            self.clean[rng.below(self.clean.len())] * PAGE + rng.below(4) * 1024;
                        self.mem
                            .copy_within(src..src + 1024, p * PAGE + piece * 1024);
                    }
                }
                Workload::Random => rng.fill(&mut self.mem[p * PAGE..][..PAGE]),
                Workload::ZeroHeavy => {
                    let page = &mut self.mem[p * PAGE..][..PAGE];
                    if rng.below(4) == 0 {
                        rng.structured(page);
                    } else {
                        page.fill(0);
                    }
                }
            }
        }
    }
}

/// Encoder and decoder side by side, warmed up.
struct Fgbi {
    guest: Guest,
    enc: Encoder,
    dec: Decoder,
    replica: Vec<u8>,
    epoch: u64,
    last_frame: usize,
    /// Pages are added in place and frames taken as pieces, written to `sent`.
    in_place: bool,
    sent: Vec<u8>,
}

impl Fgbi {
    fn new(workload: Workload) -> Fgbi {
        Fgbi::with_config(workload, Config::default())
    }
    fn with_config(workload: Workload, cfg: Config) -> Fgbi {
        let mut s = Fgbi {
            guest: Guest::new(workload),
            enc: Encoder::new(cfg).unwrap(),
            dec: Decoder::new(cfg).unwrap(),
            replica: vec![0u8; GUEST_PAGES * PAGE],
            epoch: 0,
            last_frame: 0,
            in_place: false,
            sent: Vec::new(),
        };
        // epoch 0: the whole guest
        s.enc.begin_epoch(0).unwrap();
        for (i, p) in s.guest.mem.chunks_exact(PAGE).enumerate() {
            s.enc.add_page((i * PAGE) as u64, p).unwrap();
            if let Some(part) = s.enc.take_frame() {
                s.dec.apply_flat(part, &mut s.replica).unwrap();
            }
        }
        let f = s.enc.end_epoch().unwrap();
        s.dec.apply_flat(f, &mut s.replica).unwrap();
        s.guest.run();
        s.epoch();
        s
    }
    /// Encodes the dirty pages as one epoch and applies its frame (or each part as it comes,
    /// with `Config::frame_bytes`) to the replica; returns the time each side took.
    fn epoch(&mut self) -> (Duration, Duration) {
        self.epoch += 1;
        let mut decode = Duration::ZERO;
        self.last_frame = 0;
        if self.in_place {
            return self.epoch_in_place();
        }
        let t = Instant::now();
        self.enc.begin_epoch(self.epoch).unwrap();
        for &p in &self.guest.dirty {
            self.enc
                .add_page((p * PAGE) as u64, &self.guest.mem[p * PAGE..][..PAGE])
                .unwrap();
            if let Some(part) = self.enc.take_frame() {
                let t1 = Instant::now();
                self.last_frame += part.len();
                self.dec.apply_flat(part, &mut self.replica).unwrap();
                decode += t1.elapsed();
            }
        }
        let frame = self.enc.end_epoch().unwrap();
        let t1 = Instant::now();
        self.last_frame += frame.len();
        self.dec.apply_flat(frame, &mut self.replica).unwrap();
        let t2 = Instant::now();
        (t1 - t - decode, decode + (t2 - t1))
    }

    /// [`epoch`](Self::epoch) with the pages added in place and each frame's pieces written to
    /// `sent` (not timed) before it is applied.
    fn epoch_in_place(&mut self) -> (Duration, Duration) {
        let (mut encode, mut decode) = (Duration::ZERO, Duration::ZERO);
        let mut t = Instant::now();
        self.enc.begin_epoch(self.epoch).unwrap();
        for &p in &self.guest.dirty {
            let page = &self.guest.mem[p * PAGE..][..PAGE];
            // SAFETY: the guest does not change until the epoch's frames are sent below
            unsafe { self.enc.add_page_in_place((p * PAGE) as u64, page) }.unwrap();
            if let Some(part) = self.enc.take_frame_parts() {
                encode += t.elapsed();
                part.copy_to(&mut self.sent);
                self.last_frame += self.sent.len();
                let t1 = Instant::now();
                self.dec.apply_flat(&self.sent, &mut self.replica).unwrap();
                decode += t1.elapsed();
                t = Instant::now();
            }
        }
        let frame = self.enc.end_epoch_parts().unwrap();
        encode += t.elapsed();
        frame.copy_to(&mut self.sent);
        self.last_frame += self.sent.len();
        let t1 = Instant::now();
        self.dec.apply_flat(&self.sent, &mut self.replica).unwrap();
        (encode, decode + t1.elapsed())
    }
}

/// zero+raw pages of `batch` into `out`: per page an 8-byte header (page index, zero flag), then
/// the page unless it is all zeros.
fn zero_raw_encode(guest: &Guest, batch: &[usize], out: &mut Vec<u8>) {
    for &p in batch {
        let page = &guest.mem[p * PAGE..][..PAGE];
        let zero = fgbi::zero::is_zero(page);
        out.extend_from_slice(&((p as u64) << 1 | zero as u64).to_le_bytes());
        if !zero {
            out.extend_from_slice(page);
        }
    }
}

/// Applies [`zero_raw_encode`]'s records to `mem`.
fn zero_raw_decode(stream: &[u8], mem: &mut [u8]) {
    let mut at = 0;
    while at < stream.len() {
        let h = u64::from_le_bytes(stream[at..at + 8].try_into().unwrap());
        at += 8;
        let dst = &mut mem[(h >> 1) as usize * PAGE..][..PAGE];
        if h & 1 == 1 {
            dst.fill(0);
        } else {
            dst.copy_from_slice(&stream[at..at + PAGE]);
            at += PAGE;
        }
    }
}

/// Per-page stateless baseline (lz4 or deflate-1), with its decode.
#[derive(Clone, Copy, PartialEq)]
enum PerPage {
    Lz4,
    Zlib1,
}

/// One epoch of a per-page compressor: (sizes, payload) of the dirty pages.
struct PerPageOut {
    lens: Vec<u32>,
    data: Vec<u8>,
}

fn per_page_encode(
    kind: PerPage,
    deflate: &mut Deflate,
    guest: &Guest,
    out: &mut PerPageOut,
) -> usize {
    out.lens.clear();
    out.data.clear();
    let mut tmp = [0u8; PAGE - 1];
    for &p in &guest.dirty {
        let page = &guest.mem[p * PAGE..][..PAGE];
        let n = match kind {
            PerPage::Lz4 => {
                let mut big = [0u8; lz4_flex::block::get_maximum_output_size(PAGE)];
                match lz4_flex::block::compress_into(page, &mut big) {
                    Ok(n) if n < PAGE => {
                        out.data.extend_from_slice(&big[..n]);
                        Some(n)
                    }
                    _ => None,
                }
            }
            PerPage::Zlib1 => deflate
                .compress(page, &mut tmp)
                .inspect(|&n| out.data.extend_from_slice(&tmp[..n])),
        };
        match n {
            Some(n) => out.lens.push(n as u32),
            None => {
                out.data.extend_from_slice(page);
                out.lens.push(PAGE as u32);
            }
        }
    }
    // 8 bytes of address + 4 of length per page, as a stream would carry
    out.data.len() + 12 * guest.dirty.len()
}

fn per_page_decode(
    kind: PerPage,
    scratch: &mut Scratch,
    dirty: &[usize],
    enc: &PerPageOut,
    mem: &mut [u8],
) {
    let mut at = 0;
    for (&p, &n) in dirty.iter().zip(&enc.lens) {
        let n = n as usize;
        let src = &enc.data[at..at + n];
        at += n;
        let dst = &mut mem[p * PAGE..][..PAGE];
        let codec = match (n, kind) {
            (PAGE, _) => Codec::Raw,
            (_, PerPage::Lz4) => Codec::Lz4,
            (_, PerPage::Zlib1) => Codec::Deflate,
        };
        decompress(codec, src, dst, scratch).unwrap();
    }
}

/// QEMU-style XBZRLE: a direct-mapped cache of last-sent pages (tag + copy per slot).
struct Xbzrle {
    tags: Vec<u64>,
    data: Vec<u8>,
}

impl Xbzrle {
    fn with_budget(bytes: usize) -> Xbzrle {
        let slots = bytes / (PAGE + 8);
        Xbzrle {
            tags: vec![u64::MAX; slots],
            data: vec![0u8; slots * PAGE],
        }
    }
    /// Encodes one epoch; returns bytes sent. `out` receives (page, kind, payload).
    fn encode(&mut self, guest: &Guest, out: &mut PerPageOut) -> usize {
        out.lens.clear();
        out.data.clear();
        let mut dst = [0u8; PAGE];
        let slots = self.tags.len();
        for &p in &guest.dirty {
            let page = &guest.mem[p * PAGE..][..PAGE];
            let s = p % slots;
            let cached = &mut self.data[s * PAGE..][..PAGE];
            let hit = self.tags[s] == p as u64;
            let n = if hit {
                match xbzrle::encode(cached, page, &mut dst) {
                    Ok(n) => {
                        out.data.extend_from_slice(&dst[..n]);
                        Some(n)
                    }
                    Err(_) => None,
                }
            } else {
                None
            };
            match n {
                Some(n) => out.lens.push(n as u32),
                None => {
                    out.data.extend_from_slice(page);
                    out.lens.push(PAGE as u32);
                }
            }
            self.tags[s] = p as u64;
            cached.copy_from_slice(page);
        }
        out.data.len() + 12 * guest.dirty.len()
    }
}

fn xbzrle_decode(dirty: &[usize], enc: &PerPageOut, mem: &mut [u8]) {
    let mut at = 0;
    for (&p, &n) in dirty.iter().zip(&enc.lens) {
        let n = n as usize;
        let src = &enc.data[at..at + n];
        at += n;
        let dst = &mut mem[p * PAGE..][..PAGE];
        if n == PAGE {
            dst.copy_from_slice(src);
        } else {
            xbzrle::decode(src, dst).unwrap();
        }
    }
}

/// `{name}_encode` and `{name}_decode`: one epoch of the workload per iteration through `f`'s
/// encoder, and through its decoder; the replica is checked after both.
fn bench_fgbi(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, f: &mut Fgbi) {
    for (side, decode) in [("encode", false), ("decode", true)] {
        g.bench_function(format!("{name}_{side}"), |b| {
            b.iter_custom(|iters| {
                let mut t = Duration::ZERO;
                for _ in 0..iters {
                    f.guest.run();
                    let (enc, dec) = f.epoch();
                    t += if decode { dec } else { enc };
                }
                t
            })
        });
    }
    assert!(f.replica == f.guest.mem, "{name}: replica differs");
}

fn bench(c: &mut Criterion) {
    let workloads = [
        Workload::Sparse,
        Workload::Dense,
        Workload::Duplicate,
        Workload::Random,
        Workload::ZeroHeavy,
    ];
    let budget = Config::default().cache_bytes;
    // for profiling: FGBI_BENCH_WORKLOADS=random,dense keeps those; FGBI_BENCH_PEERS=0 skips
    // the peers (their setup runs outside criterion's filter)
    let only = std::env::var("FGBI_BENCH_WORKLOADS").ok();
    let peers = std::env::var("FGBI_BENCH_PEERS").map_or(true, |v| v != "0");
    for w in workloads {
        if let Some(only) = &only {
            if !only.split(',').any(|o| o == w.name()) {
                continue;
            }
        }
        let mut g = c.benchmark_group(format!("epoch/{}", w.name()));
        let dirty_bytes = (DIRTY_PAGES * PAGE) as u64;
        g.throughput(Throughput::Bytes(dirty_bytes));
        g.sample_size(10);
        let mut ratios: Vec<(String, f64)> = Vec::new();

        // fgbi encoder and decoder, as configured by default
        {
            let mut f = Fgbi::new(w);
            bench_fgbi(&mut g, "fgbi", &mut f);
            ratios.push(("fgbi".into(), f.last_frame as f64 / dirty_bytes as f64));
            let st = f.enc.epoch_stats();
            eprintln!(
                "epoch/{} fgbi last epoch: pages zero {} delta {} blocks {} dict {} compressed {} raw {} unchanged {}",
                w.name(),
                st.zero.pages,
                st.delta.pages,
                st.blocks.pages,
                st.dict.pages,
                st.compressed.pages,
                st.raw.pages,
                st.unchanged
            );
        }
        // at a link as fast as memory (100 Gbit/s), epochs in 1 MiB parts: the floor, next to
        // zero+raw pages (zero test, then the page copied into a 1 MiB send buffer)
        {
            let cfg = Config {
                link_rate: 12_500_000_000,
                frame_bytes: 1 << 20,
                ..Config::default()
            };
            let mut f = Fgbi::with_config(w, cfg);
            bench_fgbi(&mut g, "fgbi_100g", &mut f);
            ratios.push(("fgbi_100g".into(), f.last_frame as f64 / dirty_bytes as f64));
            let mut f = Fgbi::with_config(w, cfg);
            f.in_place = true;
            bench_fgbi(&mut g, "fgbi_100g_in_place", &mut f);
        }
        if peers {
            let mut guest = Guest::new(w);
            let mut replica = guest.mem.clone();
            let mut out = Vec::with_capacity(256 * (PAGE + 16));
            guest.run();
            g.bench_function("zero_raw", |b| {
                b.iter_custom(|iters| {
                    let mut t = Duration::ZERO;
                    for _ in 0..iters {
                        guest.run();
                        let s = Instant::now();
                        for batch in guest.dirty.chunks(256) {
                            out.clear();
                            zero_raw_encode(&guest, batch, &mut out);
                            black_box(out.len());
                        }
                        t += s.elapsed();
                    }
                    t
                })
            });
            g.bench_function("zero_raw_decode", |b| {
                b.iter_custom(|iters| {
                    let mut t = Duration::ZERO;
                    for _ in 0..iters {
                        guest.run();
                        for batch in guest.dirty.chunks(256) {
                            out.clear();
                            zero_raw_encode(&guest, batch, &mut out);
                            let s = Instant::now();
                            zero_raw_decode(&out, &mut replica);
                            t += s.elapsed();
                        }
                    }
                    t
                })
            });
            assert!(replica == guest.mem, "zero+raw replica differs");
        }

        if !peers {
            g.finish();
            eprintln!(
                "ratio epoch/{} (sent/dirty): fgbi {:.4}",
                w.name(),
                ratios[0].1
            );
            continue;
        }
        // per-page compressors
        for (kind, name) in [
            (PerPage::Zlib1, "zlib1_per_page"),
            (PerPage::Lz4, "lz4_per_page"),
        ] {
            let mut guest = Guest::new(w);
            let mut replica = guest.mem.clone();
            let mut deflate = Deflate::new(1);
            let mut scratch = Scratch::default();
            let mut out = PerPageOut {
                lens: Vec::new(),
                data: Vec::new(),
            };
            guest.run();
            let mut sent = per_page_encode(kind, &mut deflate, &guest, &mut out);
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut t = Duration::ZERO;
                    for _ in 0..iters {
                        guest.run();
                        let s = Instant::now();
                        sent = per_page_encode(kind, &mut deflate, &guest, &mut out);
                        t += s.elapsed();
                    }
                    t
                })
            });
            ratios.push((name.into(), sent as f64 / dirty_bytes as f64));
            g.bench_function(format!("{name}_decode"), |b| {
                b.iter(|| {
                    per_page_decode(kind, &mut scratch, &guest.dirty, &out, &mut replica);
                    black_box(replica[0])
                })
            });
            for &p in &guest.dirty {
                assert!(replica[p * PAGE..][..PAGE] == guest.mem[p * PAGE..][..PAGE]);
            }
        }

        // XBZRLE with a direct-mapped cache of the same byte budget
        {
            let mut guest = Guest::new(w);
            let mut x = Xbzrle::with_budget(budget);
            let mut out = PerPageOut {
                lens: Vec::new(),
                data: Vec::new(),
            };
            // warm: epoch 0 (all pages) then one steady-state epoch
            for p in 0..GUEST_PAGES {
                let s = p % x.tags.len();
                x.tags[s] = p as u64;
                x.data[s * PAGE..][..PAGE].copy_from_slice(&guest.mem[p * PAGE..][..PAGE]);
            }
            guest.run();
            let mut sent = x.encode(&guest, &mut out);
            g.bench_function("xbzrle_cache", |b| {
                b.iter_custom(|iters| {
                    let mut t = Duration::ZERO;
                    for _ in 0..iters {
                        guest.run();
                        let s = Instant::now();
                        sent = x.encode(&guest, &mut out);
                        t += s.elapsed();
                    }
                    t
                })
            });
            ratios.push(("xbzrle_cache".into(), sent as f64 / dirty_bytes as f64));
            // one more epoch, untimed, whose output the decoder applies to the memory before it
            let mut replica = guest.mem.clone();
            guest.run();
            x.encode(&guest, &mut out);
            // applying it again is idempotent (runs of new bytes overwrite, zero runs skip), so
            // each iteration does the same work
            g.bench_function("xbzrle_cache_decode", |b| {
                b.iter(|| {
                    xbzrle_decode(&guest.dirty, &out, &mut replica);
                    black_box(replica[0])
                })
            });
            assert!(replica == guest.mem, "xbzrle replica differs");
        }
        g.finish();
        let line: Vec<String> = ratios
            .iter()
            .map(|(n, r)| format!("{n} {:.4}", r))
            .collect();
        eprintln!("ratio epoch/{} (sent/dirty): {}", w.name(), line.join(", "));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
