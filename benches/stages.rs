//! Per-stage throughput, each stage next to its peer in the same run, over working sets larger
//! than the caches (64 MiB of pages by default; the compressors, which are compute bound and slow,
//! use 8 MiB so one iteration stays short).
//!
//! Run: `cargo bench --bench stages -- --warm-up-time 1 --measurement-time 3`
//! (FGBI_BENCH_MIB sets the working set in MiB).
//!
//! Groups:
//! - `hash`: `BlockHasher::hashes` at block sizes 64..4096; peers `xxh3_page` (xxh3-64 of whole
//!   4 KiB pages) and `memcpy` (copying the same bytes: the memory-bandwidth reference).
//! - `zero/{zero,nonzero_last}`: `zero::is_zero` vs a naive byte loop, on zero pages and on pages
//!   whose only non-zero byte is the last (the worst case for a "no").
//! - `share`: `ShareTable` insert and lookup (ops/s) vs `HashMap<u64, u64>` of the same capacity.
//! - `delta/{1,16,64,512}B`: `delta::encode` / `delta::decode` vs `xbzrle::encode_scalar_reference`
//!   (QEMU-style scalar XBZRLE encoder), on pages with that many changed bytes.
//! - `compress/{text,random}`: `Lz4` (libfgbi's matcher, `fgbi::lz`), `greedy` (libfgbi's
//!   greedy parse, `fgbi::lz::Greedy`), their peers lz4_flex's compressor (a greedy parse) and
//!   `Deflate::new(1)`, and a raw copy, per 4 KiB page.
//! - `compress_runs/text`: runs of 16 neighbouring pages compressed as one block (a RUN op)
//!   against the same pages one by one, libfgbi's matcher (`fgbi::lz::PageLz`) and its peer
//!   lz4_flex; both print their size ratio.
//! - `compress_dict/heap`: `Lz4::compress_with_dict` vs lz4_flex's `compress_into_with_dict` on
//!   heap-like pages against their previous version (an object moved, words rewritten, fresh
//!   bytes); both print their size ratio.
//! - `entropy`: the entropy stage (`EntropyEncoder::encode`, `EntropyDecoder::decode`) on the
//!   payload of a real encoder epoch over text pages (lz4 and dictionary ops), vs deflate-1
//!   (miniz_oxide) of the same payload as one buffer; GB/s of payload. `entropy/frames_160KiB`:
//!   the same, frame by frame, on the frames of 160 KiB that memory is sent in with
//!   `frame_bytes` set so (the costs per frame and stream show there);
//!   `FGBI_BENCH_TRACE=DIR` takes the memory from a real trace's first image instead. The group
//!   codes each frame with models (`encode`) and plain (`encode_plain`: one table a stream) and
//!   decodes both (`decode`, `decode_plain`), peers deflate-1's encode and decode of each frame.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fgbi::compress::{Compressor, Deflate, Lz4};
use fgbi::{delta, hash, share, xbzrle, zero};
use std::collections::HashMap;
use std::hint::black_box;

const PAGE: usize = 4096;

mod common;
use common::Rng;

fn working_set() -> usize {
    std::env::var("FGBI_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(64)
        << 20
}

fn random_pages(bytes: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; bytes];
    Rng(seed).fill(&mut v);
    v
}

/// Text-like pages: words from a small vocabulary, spaces and newlines.
fn text_pages(bytes: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "page",
        "memory",
        "of",
        "a",
        "virtual",
        "machine",
        "is",
        "dirty",
        "epoch",
        "block",
        "hash",
        "frame",
        "replica",
        "backup",
        "primary",
        "migration",
        "and",
        "to",
        "in",
        "0x7f3a",
        "error",
        "ok",
        "value",
        "count",
        "=",
        "{",
        "}",
        "return",
        "if",
        "else",
        "struct",
    ];
    let mut rng = Rng(seed);
    let mut v = Vec::with_capacity(bytes + 64);
    while v.len() < bytes {
        let r = rng.next();
        v.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize].as_bytes());
        v.push(if r >> 60 == 0 { b'\n' } else { b' ' });
        if (r >> 32).is_multiple_of(7) {
            v.extend_from_slice(format!("{}", (r >> 40) % 100_000).as_bytes());
            v.push(b' ');
        }
    }
    v.truncate(bytes);
    v
}

fn bench_hash(c: &mut Criterion) {
    let ws = working_set();
    let buf = random_pages(ws, 1);
    let mut dst = vec![0u8; ws];
    let hasher = hash::BlockHasher::new(0x1234);
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Bytes(ws as u64));
    g.sample_size(10);
    for bs in [64usize, 128, 256, 512, 1024, 2048, 4096] {
        let mut out = vec![0u64; PAGE / bs];
        g.bench_function(BenchmarkId::new("block_hasher", bs), |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for page in buf.chunks_exact(PAGE) {
                    hasher.hashes(page, bs, &mut out);
                    acc ^= out[0];
                }
                black_box(acc)
            })
        });
    }
    g.bench_function("xxh3_page", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for page in buf.chunks_exact(PAGE) {
                acc ^= xxhash_rust::xxh3::xxh3_64(page);
            }
            black_box(acc)
        })
    });
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(&buf);
            black_box(dst[ws / 2])
        })
    });
    g.finish();
}

fn bench_zero(c: &mut Criterion) {
    let ws = working_set();
    // written, so the pages are real memory and not the kernel's shared zero page
    let mut zeros = vec![1u8; ws];
    zeros.fill(0);
    let mut last = vec![1u8; ws];
    last.fill(0);
    for p in last.chunks_exact_mut(PAGE) {
        p[PAGE - 1] = 1;
    }
    for (name, buf) in [("zero", &zeros), ("nonzero_last", &last)] {
        let mut g = c.benchmark_group(format!("zero/{name}"));
        g.throughput(Throughput::Bytes(ws as u64));
        g.sample_size(10);
        g.bench_function("is_zero", |b| {
            b.iter(|| {
                buf.chunks_exact(PAGE)
                    .filter(|p| zero::is_zero(black_box(p)))
                    .count()
            })
        });
        g.bench_function("naive_byte_loop", |b| {
            b.iter(|| {
                buf.chunks_exact(PAGE)
                    .filter(|p| black_box(p).iter().all(|&b| b == 0))
                    .count()
            })
        });
        g.finish();
    }
}

fn bench_share(c: &mut Criterion) {
    // as many entries as a 64 MiB table holds (the encoder's default budget): 8 Mi entries
    let cap = (working_set() / share::ENTRY_BYTES).max(1024);
    let ops = 1usize << 20;
    let mut rng = Rng(7);
    let keys: Vec<u64> = (0..ops).map(|_| rng.next()).collect();
    let mut g = c.benchmark_group("share");
    g.throughput(Throughput::Elements(ops as u64));
    g.sample_size(10);

    let mut t = share::ShareTable::with_capacity(cap);
    g.bench_function("share_table_insert", |b| {
        b.iter(|| {
            for (i, &k) in keys.iter().enumerate() {
                t.insert(k, i as u64, i & 15);
            }
        })
    });
    g.bench_function("share_table_lookup", |b| {
        b.iter(|| {
            let mut hits = 0usize;
            for &k in &keys {
                hits += t.lookup(k).is_some() as usize;
            }
            black_box(hits)
        })
    });
    let mut m: HashMap<u64, u64> = HashMap::with_capacity(cap);
    g.bench_function("hashmap_insert", |b| {
        b.iter(|| {
            for (i, &k) in keys.iter().enumerate() {
                m.insert(k, i as u64);
            }
        })
    });
    g.bench_function("hashmap_lookup", |b| {
        b.iter(|| {
            let mut hits = 0usize;
            for k in &keys {
                hits += m.contains_key(k) as usize;
            }
            black_box(hits)
        })
    });
    g.finish();
}

fn bench_delta(c: &mut Criterion) {
    let ws = working_set();
    let pages = ws / PAGE;
    let old = random_pages(ws, 3);
    let mut ddst = vec![0u8; delta::max_encoded_len(PAGE)];
    let mut xdst = vec![0u8; PAGE];
    for changed in [1usize, 16, 64, 512] {
        let mut rng = Rng(changed as u64);
        let mut new = old.clone();
        for p in new.chunks_exact_mut(PAGE) {
            for _ in 0..changed {
                let i = (rng.next() % PAGE as u64) as usize;
                p[i] ^= (rng.next() % 255 + 1) as u8;
            }
        }
        let pairs = || old.chunks_exact(PAGE).zip(new.chunks_exact(PAGE));
        let mut g = c.benchmark_group(format!("delta/{changed}B"));
        g.throughput(Throughput::Bytes(ws as u64));
        g.sample_size(10);
        g.bench_function("delta_encode", |b| {
            b.iter(|| {
                let mut total = 0usize;
                for (o, n) in pairs() {
                    total += delta::encode(o, n, &mut ddst).unwrap();
                }
                black_box(total)
            })
        });
        g.bench_function("xbzrle_scalar_reference", |b| {
            b.iter(|| {
                let mut total = 0usize;
                for (o, n) in pairs() {
                    total += xbzrle::encode_scalar_reference(o, n, &mut xdst).unwrap_or(PAGE);
                }
                black_box(total)
            })
        });
        // decode: patch a copy of the old pages (idempotent: every iteration does the same work)
        let mut enc = Vec::with_capacity(pages);
        for (o, n) in pairs() {
            let len = delta::encode(o, n, &mut ddst).unwrap();
            enc.push(ddst[..len].to_vec());
        }
        let mut replica = old.clone();
        g.bench_function("delta_decode", |b| {
            b.iter(|| {
                for (e, p) in enc.iter().zip(replica.chunks_exact_mut(PAGE)) {
                    delta::decode(e, p).unwrap();
                }
            })
        });
        g.finish();
    }
}

fn bench_compress(c: &mut Criterion) {
    let ws = (working_set() / 8).max(PAGE);
    for (name, buf) in [("text", text_pages(ws, 4)), ("random", random_pages(ws, 5))] {
        let mut out = vec![0u8; PAGE - 1];
        let mut dst = vec![0u8; ws];
        let mut g = c.benchmark_group(format!("compress/{name}"));
        g.throughput(Throughput::Bytes(ws as u64));
        g.sample_size(10);
        let mut sizes = Vec::new();
        let mut lz4 = Lz4::default();
        let mut flex = Lz4Flex;
        let mut greedy = GreedyLz4(fgbi::lz::Greedy::new());
        let mut deflate = Deflate::new(1);
        for (cname, comp) in [
            ("lz4", &mut lz4 as &mut dyn Compressor),
            ("greedy", &mut greedy as &mut dyn Compressor),
            ("lz4_flex", &mut flex as &mut dyn Compressor),
            ("deflate1", &mut deflate as &mut dyn Compressor),
        ] {
            let total: usize = buf
                .chunks_exact(PAGE)
                .map(|p| comp.compress(p, &mut out).unwrap_or(PAGE))
                .sum();
            sizes.push(format!("{cname} {:.3}", total as f64 / ws as f64));
            g.bench_function(cname, |b| {
                b.iter(|| {
                    let mut total = 0usize;
                    for p in buf.chunks_exact(PAGE) {
                        total += comp.compress(p, &mut out).unwrap_or(PAGE);
                    }
                    black_box(total)
                })
            });
        }
        g.bench_function("raw_copy", |b| {
            b.iter(|| {
                for (s, d) in buf.chunks_exact(PAGE).zip(dst.chunks_exact_mut(PAGE)) {
                    d.copy_from_slice(s);
                }
                black_box(dst[0])
            })
        });
        eprintln!("compress/{name} size ratio: {}", sizes.join(", "));
        g.finish();
    }
}

/// Runs of 16 neighbouring pages compressed as one lz4 block (a RUN op) against the same pages
/// compressed one by one, with libfgbi's matcher and with lz4_flex (peer) over the same bytes.
fn bench_compress_runs(c: &mut Criterion) {
    const RUN: usize = 16 * PAGE;
    let ws = (working_set() / 8).max(RUN) / RUN * RUN;
    let buf = text_pages(ws, 7);
    let mut out = vec![0u8; lz4_flex::block::get_maximum_output_size(RUN)];
    let mut g = c.benchmark_group("compress_runs/text");
    g.throughput(Throughput::Bytes(ws as u64));
    g.sample_size(10);
    let mut lz = fgbi::lz::PageLz::new();
    let mut sizes = Vec::new();
    for (name, chunk) in [("lz4_page", PAGE), ("lz4_run16", RUN)] {
        let mut run = |out: &mut [u8]| -> usize {
            buf.chunks_exact(chunk)
                .map(|p| lz.compress(p, out).unwrap_or(chunk))
                .sum()
        };
        sizes.push(format!("{name} {:.3}", run(&mut out) as f64 / ws as f64));
        g.bench_function(name, |b| b.iter(|| black_box(run(&mut out))));
    }
    for (name, chunk) in [("lz4_flex_page", PAGE), ("lz4_flex_run16", RUN)] {
        let run = |out: &mut [u8]| -> usize {
            buf.chunks_exact(chunk)
                .map(|p| lz4_flex::block::compress_into(p, out).unwrap_or(chunk))
                .sum()
        };
        sizes.push(format!("{name} {:.3}", run(&mut out) as f64 / ws as f64));
        g.bench_function(name, |b| b.iter(|| black_box(run(&mut out))));
    }
    eprintln!("compress_runs/text size ratio: {}", sizes.join(", "));
    g.finish();
}

/// libfgbi's greedy parse (`fgbi::lz::Greedy`, the encoder's fastest compressor), whose peer
/// is lz4_flex's compressor (the same parse).
struct GreedyLz4(fgbi::lz::Greedy);

impl Compressor for GreedyLz4 {
    fn codec(&self) -> fgbi::compress::Codec {
        fgbi::compress::Codec::Lz4
    }
    fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        self.0.compress(input, out)
    }
}

/// The peer: lz4_flex's own block compressor (greedy parse).
struct Lz4Flex;

impl Compressor for Lz4Flex {
    fn codec(&self) -> fgbi::compress::Codec {
        fgbi::compress::Codec::Lz4
    }
    fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        let mut big = [0u8; lz4_flex::block::get_maximum_output_size(PAGE)];
        let n = lz4_flex::block::compress_into(input, &mut big).ok()?;
        out.get_mut(..n)?.copy_from_slice(&big[..n]);
        Some(n)
    }
}

/// Heap-like pages (8-byte words: zeros, small integers, pointers, random) and, for each, a
/// new version with an object moved, words rewritten and a run of fresh words: what the
/// dictionary stage gets.
fn heap_page_pairs(bytes: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng(seed);
    let mut old = vec![0u8; bytes];
    for w in old.chunks_exact_mut(8) {
        let r = rng.next();
        let v = match r % 4 {
            0 => 0,
            1 => r >> 56,
            2 => 0x7f00_0000_0000 + ((r >> 20) % 4096) * 8,
            _ => rng.next(),
        };
        w.copy_from_slice(&v.to_le_bytes());
    }
    let mut new = old.clone();
    for p in new.chunks_exact_mut(PAGE) {
        let from = rng.below(PAGE / 2) & !7;
        let to = rng.below(PAGE / 2) & !7;
        p.copy_within(from..from + PAGE / 4, to);
        for _ in 0..16 {
            let at = rng.below(PAGE / 8) * 8;
            p[at..at + 8].copy_from_slice(&rng.next().to_le_bytes());
        }
        let at = rng.below(PAGE - 256);
        rng.fill(&mut p[at..at + 256]);
    }
    (old, new)
}

fn bench_compress_dict(c: &mut Criterion) {
    let ws = (working_set() / 8).max(PAGE);
    let (old, new) = heap_page_pairs(ws, 6);
    let mut out = vec![0u8; PAGE - 1];
    let mut big = vec![0u8; lz4_flex::block::get_maximum_output_size(PAGE)];
    let mut lz4 = Lz4::default();
    let mut g = c.benchmark_group("compress_dict/heap");
    g.throughput(Throughput::Bytes(ws as u64));
    g.sample_size(10);
    let mut ours = |out: &mut [u8]| -> usize {
        let mut total = 0;
        for (o, n) in old.chunks_exact(PAGE).zip(new.chunks_exact(PAGE)) {
            total += lz4.compress_with_dict(n, o, out).unwrap_or(PAGE);
        }
        total
    };
    let ours_size = ours(&mut out);
    g.bench_function("lz4", |b| b.iter(|| black_box(ours(&mut out))));
    let flex = |big: &mut [u8]| -> usize {
        let mut total = 0;
        for (o, n) in old.chunks_exact(PAGE).zip(new.chunks_exact(PAGE)) {
            total += lz4_flex::block::compress_into_with_dict(n, big, o).unwrap();
        }
        total
    };
    let flex_size = flex(&mut big);
    g.bench_function("lz4_flex", |b| b.iter(|| black_box(flex(&mut big))));
    eprintln!(
        "compress_dict/heap size ratio: lz4 {:.3}, lz4_flex {:.3}",
        ours_size as f64 / ws as f64,
        flex_size as f64 / ws as f64
    );
    g.finish();
}

fn bench_entropy(c: &mut Criterion) {
    use fgbi::entropy::{EntropyDecoder, EntropyEncoder};
    use fgbi::frame::{HEADER_LEN, TRAILER_LEN};
    // payload of a second epoch: text pages with moved and rewritten pieces (DICT and BLOCKS ops)
    let bytes = (working_set() / 8).max(64 * PAGE);
    let mut mem = text_pages(bytes, 6);
    let cfg = fgbi::Config {
        stages: fgbi::Stages {
            entropy: false,
            ..fgbi::Stages::ALL
        },
        ..fgbi::Config::default()
    };
    let mut enc = fgbi::Encoder::new(cfg).unwrap();
    let mut rng = Rng(7);
    let mut payload = Vec::new();
    for epoch in 0..2 {
        if epoch == 1 {
            for p in 0..bytes / PAGE {
                let (from, at) = (rng.below(bytes - 512), p * PAGE + rng.below(PAGE - 512));
                mem.copy_within(from..from + 300, at);
            }
        }
        enc.begin_epoch(epoch).unwrap();
        for (i, p) in mem.chunks_exact(PAGE).enumerate() {
            enc.add_page((i * PAGE) as u64, p).unwrap();
        }
        let f = enc.end_epoch().unwrap();
        payload = f[HEADER_LEN..f.len() - TRAILER_LEN].to_vec();
    }
    let mut ee = EntropyEncoder::default();
    let mut ed = EntropyDecoder::default();
    let mut coded = Vec::new();
    ee.encode(&payload, PAGE, cfg.block_size, None, &mut coded)
        .unwrap();
    let mut plain = Vec::new();
    let deflated = miniz_oxide::deflate::compress_to_vec(&payload, 1);
    eprintln!(
        "entropy: payload {} bytes -> entropy {} ({:.3}), deflate-1 {} ({:.3})",
        payload.len(),
        coded.len(),
        coded.len() as f64 / payload.len() as f64,
        deflated.len(),
        deflated.len() as f64 / payload.len() as f64
    );
    let mut g = c.benchmark_group("entropy");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.sample_size(10);
    g.bench_function("encode", |b| {
        b.iter(|| {
            coded.clear();
            ee.encode(&payload, PAGE, cfg.block_size, None, &mut coded)
                .unwrap();
            black_box(coded.len())
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            ed.decode(&coded, PAGE, cfg.block_size, &mut plain, &mut |_, _| false)
                .unwrap();
            black_box(plain.len())
        })
    });
    g.bench_function("deflate1_encode", |b| {
        b.iter(|| black_box(miniz_oxide::deflate::compress_to_vec(&payload, 1).len()))
    });
    g.bench_function("deflate1_decode", |b| {
        b.iter(|| {
            black_box(
                miniz_oxide::inflate::decompress_to_vec(&deflated)
                    .unwrap()
                    .len(),
            )
        })
    });
    g.finish();

    // the same memory sent as frames of 160 KiB (a QEMU multifd packet's frame is about that):
    // each frame's entropy coding has costs per stream (counting and clustering contexts,
    // building tables) that a long payload spreads thin
    // (FGBI_BENCH_TRACE=DIR: the first 16 MiB of DIR/epoch-0000.img, a real memory image,
    // instead of the text pages)
    let small = fgbi::Config {
        frame_bytes: 160 << 10,
        ..cfg
    };
    if let Ok(dir) = std::env::var("FGBI_BENCH_TRACE") {
        let img = std::fs::read(format!("{dir}/epoch-0000.img")).expect("FGBI_BENCH_TRACE");
        mem = img[..img.len().min(16 << 20) / PAGE * PAGE].to_vec();
    }
    let mut enc = fgbi::Encoder::new(small).unwrap();
    let mut payloads = Vec::new();
    enc.begin_epoch(0).unwrap();
    for (i, p) in mem.chunks_exact(PAGE).enumerate() {
        enc.add_page((i * PAGE) as u64, p).unwrap();
        if let Some(f) = enc.take_frame() {
            payloads.push(f[HEADER_LEN..f.len() - TRAILER_LEN].to_vec());
        }
    }
    let f = enc.end_epoch().unwrap();
    payloads.push(f[HEADER_LEN..f.len() - TRAILER_LEN].to_vec());
    let total: usize = payloads.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("entropy/frames_160KiB");
    g.throughput(Throughput::Bytes(total as u64));
    g.sample_size(10);
    for (name, plain) in [("encode", false), ("encode_plain", true)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0;
                for p in &payloads {
                    coded.clear();
                    if plain {
                        ee.encode_plain(p, PAGE, cfg.block_size, &mut coded)
                    } else {
                        ee.encode(p, PAGE, cfg.block_size, None, &mut coded)
                    }
                    .unwrap();
                    n += coded.len();
                }
                black_box(n)
            })
        });
    }
    g.bench_function("deflate1_encode", |b| {
        b.iter(|| {
            let n: usize = payloads
                .iter()
                .map(|p| miniz_oxide::deflate::compress_to_vec(p, 1).len())
                .sum();
            black_box(n)
        })
    });
    // each frame coded both ways and with deflate-1, for the decoders
    let code = |plain: bool| -> Vec<Vec<u8>> {
        let mut ee = EntropyEncoder::default();
        payloads
            .iter()
            .map(|p| {
                let mut out = Vec::new();
                if plain {
                    ee.encode_plain(p, PAGE, cfg.block_size, &mut out).unwrap();
                } else {
                    ee.encode(p, PAGE, cfg.block_size, None, &mut out).unwrap();
                }
                out
            })
            .collect()
    };
    let (with_models, plain_coded) = (code(false), code(true));
    let deflated: Vec<Vec<u8>> = payloads
        .iter()
        .map(|p| miniz_oxide::deflate::compress_to_vec(p, 1))
        .collect();
    let sizes = |v: &[Vec<u8>]| v.iter().map(Vec::len).sum::<usize>() as f64 / total as f64;
    eprintln!(
        "entropy/frames_160KiB: {} frames, {total} payload bytes; coded with models {:.3}, plain {:.3}, deflate-1 {:.3}",
        payloads.len(),
        sizes(&with_models),
        sizes(&plain_coded),
        sizes(&deflated)
    );
    for (name, frames) in [("decode", &with_models), ("decode_plain", &plain_coded)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0;
                for f in frames.iter() {
                    ed.decode(f, PAGE, cfg.block_size, &mut plain, &mut |_, _| false)
                        .unwrap();
                    n += plain.len();
                }
                black_box(n)
            })
        });
    }
    g.bench_function("deflate1_decode", |b| {
        b.iter(|| {
            let n: usize = deflated
                .iter()
                .map(|f| miniz_oxide::inflate::decompress_to_vec(f).unwrap().len())
                .sum();
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_hash,
    bench_zero,
    bench_share,
    bench_delta,
    bench_compress,
    bench_compress_runs,
    bench_compress_dict,
    bench_entropy
);
criterion_main!(benches);
