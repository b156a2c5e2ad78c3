//! The main job: a primary and a backup replicate a guest memory over TCP on 127.0.0.1.
//!
//! The primary thread owns an embedded default guest memory (256 MiB) and, every epoch, mutates it
//! the way a running guest does: sparse word writes to heap objects, counters, memcpy'd buffers,
//! freed (zeroed) and newly allocated pages, page-cache-like copies of file data, and a little
//! random data. Like a hypervisor it logs the dirty pages in a bitmap, hands them to the encoder and
//! sends the frame. The backup thread applies each frame to its replica. At the end the two
//! memories are compared byte for byte.
//!
//! ```text
//! cargo run --release --example replicate -- [--epochs 20] [--mem-mib 256] [--block-size 256]
//!     [--cache-mib 64] [--hash-mib 8] [--fallback lz4|deflate[:LEVEL]|none]
//!     [--stages zero,blocks,sharing,delta,dict,entropy | all | none] [--seed N] [--channels N]
//!     [--policy clock|direct]
//!
//! With `--channels N` memory is split into N channels (2 MiB chunks dealt round robin), each
//! with its own encoder thread on the primary and decoder thread on the backup, as QEMU's multifd.
//! ```

use fgbi::bitmap::DirtyBitmap;
use fgbi::cache::Policy;
use fgbi::{channels, Config, EncoderStats, Fallback};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const PS: usize = 4096;

struct Args {
    channels: usize,
    policy: Policy,
    epochs: u64,
    mem_mib: usize,
    cfg: Config,
    seed: u64,
}

fn usage(msg: &str) -> ! {
    eprintln!("replicate: {msg}");
    eprintln!(
        "usage: replicate [--epochs N] [--mem-mib N] [--block-size N] [--cache-mib N] [--hash-mib N] \
         [--fallback lz4|deflate[:LEVEL]|none] [--stages zero,blocks,sharing,delta,dict,entropy|all|none] [--seed N] [--channels N] [--policy clock|direct]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        channels: 1,
        policy: Policy::Clock,
        epochs: 20,
        mem_mib: 256,
        cfg: Config::default(),
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let num = |v: String| {
            v.parse::<u64>()
                .unwrap_or_else(|_| usage(&format!("not a number: {v}")))
        };
        match flag.as_str() {
            "--epochs" => a.epochs = num(value()),
            "--mem-mib" => a.mem_mib = num(value()) as usize,
            "--block-size" => a.cfg.block_size = num(value()) as usize,
            "--cache-mib" => a.cfg.cache_bytes = (num(value()) as usize) << 20,
            "--hash-mib" => a.cfg.hash_bytes = (num(value()) as usize) << 20,
            "--seed" => a.seed = num(value()),
            "--channels" => a.channels = (num(value()) as usize).clamp(1, 64),
            "--policy" => {
                a.policy = match value().as_str() {
                    "clock" => Policy::Clock,
                    "direct" => Policy::DirectMapped,
                    other => usage(&format!("unknown cache policy {other}")),
                }
            }
            "--fallback" => {
                let v = value();
                a.cfg.fallback = match v.split_once(':') {
                    _ if v == "lz4" => Fallback::Lz4,
                    _ if v == "none" => Fallback::None,
                    _ if v == "deflate" => Fallback::Deflate(1),
                    Some(("deflate", l)) => Fallback::Deflate(num(l.to_string()) as u8),
                    _ => usage(&format!("unknown fallback {v}")),
                }
            }
            "--stages" => {
                let v = value();
                a.cfg.stages = v.parse().unwrap_or_else(|e: String| usage(&e));
            }
            "-h" | "--help" => usage("replicates a guest memory over TCP and verifies it"),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if a.mem_mib < 16 {
        usage("--mem-mib must be at least 16");
    }
    if let Err(e) = a.cfg.validate() {
        usage(&e.to_string());
    }
    a
}

/// splitmix64: a small deterministic generator, so every run mutates the same way.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// The guest: memory, dirty log, and the layout of its regions (in pages).
struct Guest {
    mem: Vec<u8>,
    dirty: DirtyBitmap,
    rng: Rng,
    heap: std::ops::Range<usize>,
    cache: std::ops::Range<usize>,
    buffers: std::ops::Range<usize>,
    free: std::ops::Range<usize>,
    random: std::ops::Range<usize>,
}

const WORDS: [&str; 16] = [
    "session",
    "user",
    "expires",
    "token",
    "cart",
    "item",
    "price",
    "count",
    "GET /api/v1/",
    "200 OK",
    "region",
    "eu-west",
    "null",
    "true",
    "false",
    "timestamp",
];

impl Guest {
    fn new(mem_mib: usize, seed: u64) -> Guest {
        let pages = mem_mib << 20 >> 12;
        let split = |pct: usize| pages * pct / 100;
        let (h, c, b, f) = (split(30), split(25), split(10), split(30));
        let mut g = Guest {
            mem: vec![0; pages * PS],
            dirty: DirtyBitmap::new(pages),
            rng: Rng(seed),
            heap: 0..h,
            cache: h..h + c,
            buffers: h + c..h + c + b,
            free: h + c + b..h + c + b + f,
            random: h + c + b + f..pages,
        };
        // heap: records of text and integers; page cache: text; buffers: structured binary;
        // free: zeros with some allocated pages; random: compressed or encrypted data
        for p in g.heap.clone() {
            g.write_records(p);
        }
        for p in g.cache.clone() {
            g.write_text(p);
        }
        for p in g.buffers.clone() {
            let page = &mut g.mem[p * PS..(p + 1) * PS];
            for (i, w) in page.chunks_mut(8).enumerate() {
                w.copy_from_slice(&((p * 512 + i) as u64 * 0x10001).to_le_bytes());
            }
        }
        for p in g.free.clone().step_by(4) {
            g.write_records(p);
        }
        for p in g.random.clone() {
            let (rng, mem) = (&mut g.rng, &mut g.mem);
            rng.fill(&mut mem[p * PS..(p + 1) * PS]);
        }
        // the first pass of a migration sends all of memory
        for p in 0..pages {
            g.dirty.set(p);
        }
        g
    }

    fn pages(&self) -> usize {
        self.mem.len() / PS
    }

    fn write_records(&mut self, p: usize) {
        let mut at = p * PS;
        let end = at + PS;
        while at + 64 <= end {
            let rec = &mut self.mem[at..at + 64];
            let id = self.rng.next();
            rec[..8].copy_from_slice(&id.to_le_bytes());
            rec[8..16].copy_from_slice(&(id % 10_000).to_le_bytes());
            let w = WORDS[(id >> 20) as usize % WORDS.len()].as_bytes();
            let n = w.len().min(40);
            rec[16..16 + n].copy_from_slice(&w[..n]);
            rec[56..64].copy_from_slice(&(at as u64).to_le_bytes());
            at += 64;
        }
        self.dirty.set(p);
    }

    fn write_text(&mut self, p: usize) {
        let mut at = p * PS;
        let end = at + PS;
        while at < end {
            let w = WORDS[self.rng.below(WORDS.len())].as_bytes();
            let n = w.len().min(end - at);
            self.mem[at..at + n].copy_from_slice(&w[..n]);
            at += n;
            if at < end {
                self.mem[at] = b' ';
                at += 1;
            }
        }
        self.dirty.set(p);
    }

    fn mark(&mut self, start: usize, len: usize) {
        for p in start / PS..(start + len).div_ceil(PS) {
            self.dirty.set(p);
        }
    }

    fn page_in(&mut self, r: &std::ops::Range<usize>) -> usize {
        r.start + self.rng.below(r.len())
    }

    /// One epoch of guest activity, scaled to memory size.
    fn run_epoch(&mut self) {
        let scale = self.pages() / 65536 + 1; // per 256 MiB
                                              // sparse word writes: object fields, pointers, reference counts
        for _ in 0..6000 * scale {
            let p = self.page_in(&self.heap.clone());
            let at = p * PS + self.rng.below(PS / 8) * 8;
            let v = self.rng.next() % 100_000;
            self.mem[at..at + 8].copy_from_slice(&v.to_le_bytes());
            self.dirty.set(p);
        }
        // counters: a few hot pages incremented everywhere
        for c in 0..16 * scale {
            let p = self.heap.start + c * 7;
            for i in (0..PS).step_by(256) {
                let at = p * PS + i;
                let v =
                    u64::from_le_bytes(self.mem[at..at + 8].try_into().unwrap()).wrapping_add(1);
                self.mem[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            self.dirty.set(p);
        }
        // memcpy'd buffers: 64 KiB moved inside the buffer region to an unaligned place
        for _ in 0..4 * scale {
            let len = 64 << 10;
            let span = self.buffers.len() * PS - len;
            let src = self.buffers.start * PS + self.rng.below(span);
            let dst = self.buffers.start * PS + self.rng.below(span);
            self.mem.copy_within(src..src + len, dst);
            self.mark(dst, len);
        }
        // page-cache-like copies: file pages read into other page-cache pages
        for _ in 0..200 * scale {
            let src = self.page_in(&self.cache.clone());
            let dst = self.page_in(&self.cache.clone());
            self.mem.copy_within(src * PS..(src + 1) * PS, dst * PS);
            self.dirty.set(dst);
        }
        // freed pages (zeroed) and newly allocated ones
        for _ in 0..300 * scale {
            let p = self.page_in(&self.free.clone());
            self.mem[p * PS..(p + 1) * PS].fill(0);
            self.dirty.set(p);
        }
        for _ in 0..150 * scale {
            let p = self.page_in(&self.free.clone());
            self.write_records(p);
        }
        // a little new random data (compressed or encrypted content)
        for _ in 0..40 * scale {
            let p = self.page_in(&self.random.clone());
            let (rng, mem) = (&mut self.rng, &mut self.mem);
            rng.fill(&mut mem[p * PS..(p + 1) * PS]);
            self.dirty.set(p);
        }
    }
}

fn write_frame(s: &mut TcpStream, frame: &[u8]) -> std::io::Result<()> {
    s.write_all(&(frame.len() as u64).to_le_bytes())?;
    s.write_all(frame)
}

fn read_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut len = [0u8; 8];
    s.read_exact(&mut len).expect("read length");
    let len = u64::from_le_bytes(len) as usize;
    buf.resize(len, 0);
    s.read_exact(buf).expect("read frame");
    len > 0
}

/// Reads each epoch's frames (one per channel) and applies them, one decoder thread per channel;
/// returns the replica and the wall time spent applying, per epoch.
fn backup(
    listener: TcpListener,
    cfg: Config,
    n: usize,
    mem_len: usize,
) -> (Vec<u8>, Vec<Duration>) {
    let (mut s, _) = listener.accept().expect("accept");
    let mut decs = channels::decoders(cfg, n).expect("decoder");
    let mut replica = vec![0u8; mem_len];
    let mut views = channels::split_flat(&mut replica, n);
    let mut times = Vec::new();
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); n];
    'epochs: loop {
        for buf in bufs.iter_mut() {
            if !read_frame(&mut s, buf) {
                break 'epochs;
            }
        }
        let t = Instant::now();
        std::thread::scope(|sc| {
            for ((dec, view), buf) in decs.iter_mut().zip(views.iter_mut()).zip(&bufs) {
                let mut apply = move || {
                    if let Err(e) = dec.apply(buf, view) {
                        eprintln!("backup: frame refused: {e}");
                        std::process::exit(1);
                    }
                };
                if n == 1 {
                    apply();
                } else {
                    sc.spawn(apply);
                }
            }
        });
        times.push(t.elapsed());
        s.write_all(&[1]).expect("ack");
    }
    drop(views);
    (replica, times)
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64().max(1e-9) / 1e9
}

fn main() {
    let args = parse_args();
    let cfg = args.cfg;
    println!(
        "libfgbi replicate: {} MiB guest, {} epochs, block {} B, cache {} MiB + hashes {} MiB, fallback {:?}, stages {:?}",
        args.mem_mib,
        args.epochs,
        cfg.block_size,
        cfg.cache_bytes >> 20,
        cfg.hash_bytes >> 20,
        cfg.fallback,
        cfg.stages
    );
    let t0 = Instant::now();
    let mut guest = Guest::new(args.mem_mib, args.seed);
    println!("guest memory built in {:.1} s", t0.elapsed().as_secs_f64());

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = listener.local_addr().unwrap();
    let mem_len = guest.mem.len();
    let n = args.channels;
    let backup_thread = std::thread::spawn(move || backup(listener, cfg, n, mem_len));
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).ok();

    let mut encs = channels::encoders_with_policy(cfg, n, args.policy).expect("encoder");
    let mut rows: Vec<(u64, u64, Duration, EncoderStats)> = Vec::new();
    let mut ack = [0u8; 1];
    let mut per: Vec<Vec<usize>> = vec![Vec::new(); n];
    for epoch in 0..=args.epochs {
        if epoch > 0 {
            guest.run_epoch();
        }
        // like a hypervisor: collect and clear the dirty log, then encode those pages
        per.iter_mut().for_each(Vec::clear);
        let mut dirty = 0;
        for p in guest.dirty.iter() {
            per[channels::channel_of((p * PS) as u64, n)].push(p);
            dirty += 1;
        }
        guest.dirty.clear();
        let mem = &guest.mem;
        let t = Instant::now();
        std::thread::scope(|sc| {
            for (enc, pages) in encs.iter_mut().zip(&per) {
                let mut encode = move || {
                    enc.begin_epoch(epoch).expect("begin_epoch");
                    for &p in pages {
                        enc.add_page((p * PS) as u64, &mem[p * PS..(p + 1) * PS])
                            .expect("add_page");
                    }
                    enc.end_epoch().expect("end_epoch");
                };
                if n == 1 {
                    encode();
                } else {
                    sc.spawn(encode);
                }
            }
        });
        let took = t.elapsed();
        let mut sent = 0;
        let mut st = EncoderStats::default();
        // each frame stays in its encoder until the next epoch begins
        for enc in &encs {
            st = st.merged(&enc.epoch_stats());
            sent += enc.last_frame().len() as u64;
            write_frame(&mut s, enc.last_frame()).expect("send frame");
        }
        s.read_exact(&mut ack).expect("ack");
        rows.push(((dirty * PS) as u64, sent, took, st));
    }
    write_frame(&mut s, &[]).expect("send end");
    let (replica, dec_times) = backup_thread.join().expect("backup thread");

    println!();
    println!(
        "{:>5} {:>7} {:>9} {:>10} {:>7} {:>8} {:>8} | {:>5} {:>5} {:>5} {:>6} {:>5} {:>5} {:>5} {:>6}",
        "epoch", "pages", "dirty MB", "sent KB", "ratio%", "enc GB/s", "dec GB/s", "same", "zero", "delta", "blocks",
        "dict", "compr", "raw", "shared"
    );
    let mut tot = (0u64, 0u64, Duration::ZERO, Duration::ZERO);
    let mut steady = (0u64, 0u64, Duration::ZERO);
    for (i, (dirty, sent, took, st)) in rows.iter().enumerate() {
        let pages = st.pages_in.max(1);
        println!(
            "{:>5} {:>7} {:>9.1} {:>10.1} {:>7.2} {:>8.2} {:>8.2} | {:>5.1} {:>5.1} {:>5.1} {:>6.1} {:>5.1} {:>5.1} {:>5.1} {:>6}",
            i,
            st.pages_in,
            *dirty as f64 / 1e6,
            *sent as f64 / 1e3,
            pct(*sent, *dirty),
            gbps(*dirty, *took),
            gbps(*dirty, dec_times[i]),
            pct(st.unchanged, pages),
            pct(st.zero.pages, pages),
            pct(st.delta.pages, pages),
            pct(st.blocks.pages, pages),
            pct(st.dict.pages, pages),
            pct(st.compressed.pages, pages),
            pct(st.raw.pages, pages),
            st.shared_blocks,
        );
        tot = (
            tot.0 + dirty,
            tot.1 + sent,
            tot.2 + *took,
            tot.3 + dec_times[i],
        );
        if i > 0 {
            steady = (steady.0 + dirty, steady.1 + sent, steady.2 + *took);
        }
    }
    let all = encs
        .iter()
        .fold(EncoderStats::default(), |a, e| a.merged(&e.stats()));
    println!(
        "total {:>7} {:>9.1} {:>10.1} {:>7.2} {:>8.2} {:>8.2}",
        all.pages_in,
        tot.0 as f64 / 1e6,
        tot.1 as f64 / 1e3,
        pct(tot.1, tot.0),
        gbps(tot.0, tot.2),
        gbps(tot.0, tot.3)
    );
    println!(
        "after epoch 0: {:.1} MB dirty, {:.1} KB sent, ratio {:.2}%, encode {:.2} GB/s",
        steady.0 as f64 / 1e6,
        steady.1 as f64 / 1e3,
        pct(steady.1, steady.0),
        gbps(steady.0, steady.2)
    );
    println!(
        "cache: {} hits, {} hash-tier hits, {} misses, {} evictions; sharing: {} blocks; encoder state {:.1} MiB ({:.1} bytes per guest page)",
        all.cache.hits,
        all.cache.hash_hits,
        all.cache.misses,
        all.cache.evictions,
        all.shared_blocks,
        all.memory_bytes as f64 / (1 << 20) as f64,
        all.memory_bytes as f64 / guest.pages() as f64
    );
    println!(
        "encoder time by stage (ms): {} ({} frames recoded, {:.1} KB saved)",
        all.nanos,
        all.entropy_frames,
        all.entropy_saved as f64 / 1e3
    );
    if replica == guest.mem {
        println!(
            "replica verified: {} bytes identical to the primary",
            replica.len()
        );
    } else {
        let first = replica
            .iter()
            .zip(&guest.mem)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        eprintln!("replica DIFFERS from the primary (first difference at byte {first:#x})");
        std::process::exit(1);
    }
}
