//! Writes the golden frames of `tests/golden/` (run from the repository root):
//!
//! ```text
//! cargo run --example golden -- tests/golden
//! ```
//!
//! Each case is a stream of genuine frames from a seeded encoder ([`Encoder::with_seed`]) over a
//! small memory that changes the way programs change theirs: zero pages, text-like pages edited
//! in place, content moved within a page, blocks copied between pages, random pages, and a
//! resync in the middle. The workloads are chosen so that, over all cases, every op kind, every
//! codec, every block code and every stream mode of the entropy stage occurs; `tests/golden.rs`
//! checks that they do, and that the library's decoder and the reference decoder written from
//! FORMAT.md rebuild the memory after every frame.
//!
//! Regenerate when the format version changes (see `tests/golden/README.md`).

use fgbi::{Config, Encoder, Fallback, Stages};
use std::fmt::Write as _;
use std::path::Path;
use xxhash_rust::xxh3::xxh3_64;

const PAGES: usize = 48;

/// A small deterministic pseudo-random generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Fills `buf` with JSON-like records: keys and values from a small vocabulary, numbers.
fn text(rng: &mut Rng, buf: &mut [u8]) {
    const WORDS: [&str; 12] = [
        "session", "user", "expires", "token", "cart", "items", "price", "count", "name", "city",
        "active", "true",
    ];
    let mut s = Vec::with_capacity(buf.len() + 64);
    while s.len() < buf.len() {
        let (k, v) = (WORDS[rng.below(WORDS.len())], WORDS[rng.below(WORDS.len())]);
        let n = rng.below(100_000);
        s.extend_from_slice(format!("{{\"{k}\":\"{v}\",\"id\":{n}}},").as_bytes());
    }
    buf.copy_from_slice(&s[..buf.len()]);
}

/// Fills `buf` with records of 288 bytes (fewer in small pages), each a copy of one of the four before it with a few
/// fields changed (an array of similar objects): the matches' offsets follow each other in a
/// pattern, and each offset's low byte tells its high byte, which the entropy stage's offset
/// models exploit.
fn records(rng: &mut Rng, buf: &mut [u8]) {
    let r = 288.min(buf.len() / 8);
    for b in &mut buf[..4 * r] {
        *b = b"abcdefghijklmnopqrstuvwxyz012345"[rng.below(32)];
    }
    for i in 4..buf.len() / r {
        let from = (i - 1 - i % 4) * r;
        buf.copy_within(from..from + r, i * r);
        for _ in 0..16 {
            let at = i * r + rng.below(r);
            buf[at] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"[rng.below(26)];
        }
    }
}

struct Case {
    name: &'static str,
    cfg: Config,
}

fn cases() -> Vec<Case> {
    let base = Config {
        page_size: 4096,
        block_size: 256,
        ..Config::default()
    };
    let plain = Stages {
        entropy: false,
        ..Stages::default()
    };
    vec![
        Case {
            name: "lz4-plain",
            cfg: Config {
                stages: plain,
                fallback: Fallback::Lz4,
                ..base
            },
        },
        Case {
            name: "deflate-plain",
            cfg: Config {
                stages: plain,
                fallback: Fallback::Deflate(1),
                ..base
            },
        },
        Case {
            name: "lz4-entropy",
            cfg: Config {
                fallback: Fallback::Lz4,
                ..base
            },
        },
        Case {
            name: "deflate-entropy",
            cfg: Config {
                fallback: Fallback::Deflate(1),
                ..base
            },
        },
        Case {
            // the default stages with epochs sent in parts of about 3 KB
            name: "parts",
            cfg: Config {
                frame_bytes: 3000,
                ..base
            },
        },
        Case {
            // new content sent raw and entropy coded: a literal stream of whole pages, long
            // enough to be Huffman coded in parts (format version 3)
            name: "raw-entropy",
            cfg: Config {
                fallback: Fallback::None,
                ..base
            },
        },
        Case {
            name: "small-pages",
            cfg: Config {
                page_size: 512,
                block_size: 64,
                cache_bytes: 16 << 10,
                hash_bytes: 4 << 10,
                ..Config::default()
            },
        },
    ]
}

/// How the memory changes before epoch `e` (epoch 0: its first content).
fn mutate(rng: &mut Rng, mem: &mut [u8], ps: usize, e: usize) -> Vec<usize> {
    let bs = ps / 16;
    let page = |p: usize| p * ps..(p + 1) * ps;
    let mut dirty = Vec::new();
    if e == 0 {
        for p in 8..PAGES {
            text(rng, &mut mem[page(p)]);
        }
        for p in 24..40 {
            records(rng, &mut mem[page(p)]);
        }
        for p in 40..44 {
            for b in &mut mem[page(p)] {
                *b = rng.next() as u8;
            }
        }
        // pages with zero blocks and blocks copied from other pages
        for p in 44..PAGES {
            mem[p * ps + 2 * bs..p * ps + 4 * bs].fill(0);
            let src = (8 + p) * ps % (40 * ps);
            mem.copy_within(src..src + 3 * bs, p * ps + 8 * bs);
        }
        return (0..PAGES).collect();
    }
    // small edits in place: counters and short fields
    for p in 8..16 {
        for _ in 0..3 {
            let at = p * ps + rng.below(ps - 8);
            mem[at..at + 4].copy_from_slice(&(rng.next() as u32).to_le_bytes());
        }
        dirty.push(p);
    }
    // content moved within the page (an allocator compacting, a buffer shifted)
    for p in 16..20 {
        let shift = 8 + rng.below(40);
        mem.copy_within(p * ps..(p + 1) * ps - shift, p * ps + shift);
        dirty.push(p);
    }
    // some blocks rewritten, one zeroed, one copied from a page sent earlier
    for p in 20..24 {
        for k in [1, 5, 9] {
            text(rng, &mut mem[p * ps + k * bs..p * ps + (k + 1) * bs]);
        }
        mem[p * ps + 12 * bs..p * ps + 13 * bs].fill(0);
        let src = (p + 10 + e) * ps + 4 * bs;
        mem.copy_within(src..src + bs, p * ps + 14 * bs);
        dirty.push(p);
    }
    // pages that become zero, and zero pages that get content
    let z = 24 + e % 4;
    mem[page(z)].fill(0);
    dirty.push(z);
    let fill = e % 8;
    text(rng, &mut mem[page(fill)]);
    dirty.push(fill);
    // new content on a page never seen before this epoch, and random content
    text(rng, &mut mem[page(30 + e % 8)]);
    dirty.push(30 + e % 8);
    for b in &mut mem[page(40 + e % 4)] {
        *b = rng.next() as u8;
    }
    dirty.push(40 + e % 4);
    dirty.sort_unstable();
    dirty.dedup();
    dirty
}

/// Encodes one case: its frames (each behind a u32 length) and its expectations file.
fn encode(case: &Case) -> (Vec<u8>, String) {
    let cfg = case.cfg;
    let ps = cfg.page_size;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut enc = Encoder::with_seed(cfg, 1).expect("config");
    let mut mem = vec![0u8; PAGES * ps];
    // the memory as of the last epoch's end, which the backup holds until a part changes it
    let mut mem_before = mem.clone();
    let mut frames = Vec::new();
    let mut expect = String::new();
    writeln!(
        expect,
        "# geometry: page size, block size, pages of the replica"
    )
    .unwrap();
    writeln!(expect, "geometry {} {} {PAGES}", ps, cfg.block_size).unwrap();
    writeln!(
        expect,
        "# frame: epoch, flags, xxh3-64 of the replica after it"
    )
    .unwrap();
    // epochs 0-3, then a resync (epoch 10: all of memory again), then 11-12
    for (i, epoch) in [0u64, 1, 2, 3, 10, 11, 12].into_iter().enumerate() {
        let mut dirty = mutate(&mut rng, &mut mem, ps, i);
        if epoch == 10 {
            enc.resync();
            dirty = (0..PAGES).collect();
        }
        enc.begin_epoch(epoch).expect("epoch order");
        // the replica after a part: the pages added so far at their new content
        let mut replica_after = mem_before.clone();
        for &p in &dirty {
            enc.add_page((p * ps) as u64, &mem[p * ps..(p + 1) * ps])
                .expect("page");
            replica_after[p * ps..(p + 1) * ps].copy_from_slice(&mem[p * ps..(p + 1) * ps]);
            if let Some(part) = enc.take_frame() {
                put(&mut frames, &mut expect, epoch, part, &replica_after);
            }
        }
        let frame = enc.end_epoch().expect("frame");
        put(&mut frames, &mut expect, epoch, frame, &mem);
        mem_before.copy_from_slice(&mem);
    }
    (frames, expect)
}

/// Appends `frame` to the stream and its line to the expectations.
fn put(frames: &mut Vec<u8>, expect: &mut String, epoch: u64, frame: &[u8], replica: &[u8]) {
    let flags = u32::from_le_bytes(frame[8..12].try_into().unwrap());
    frames.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    frames.extend_from_slice(frame);
    writeln!(expect, "frame {epoch} {flags} {:016x}", xxh3_64(replica)).unwrap();
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/golden".into());
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).expect("create the golden directory");
    for case in cases() {
        let (frames, expect) = encode(&case);
        std::fs::write(dir.join(format!("{}.frames", case.name)), &frames).expect("write");
        std::fs::write(dir.join(format!("{}.expect", case.name)), expect).expect("write");
        println!("{}: {} bytes of frames", case.name, frames.len());
    }
}
