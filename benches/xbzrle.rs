//! XBZRLE and delta page-codec throughput over a working set larger than the caches.
//!
//! For each change pattern, 8192 (old, new) pairs of 4 KiB pages (64 MiB of new pages plus 64 MiB
//! of old pages) are encoded per iteration; throughput is bytes of page input (4096 per page).
//! Run: `cargo bench --bench xbzrle -- --warm-up-time 1 --measurement-time 3`
//! (set FGBI_BENCH_PAGES to change the number of pages).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fgbi::{delta, scan, xbzrle};
use std::hint::black_box;

const PAGE: usize = 4096;

mod common;
use common::Rng;

#[derive(Clone, Copy)]
enum Pattern {
    Bytes(usize),
    WordsPercent(u64),
    Random,
}

impl Pattern {
    fn name(self) -> String {
        match self {
            Pattern::Bytes(n) => format!("{n}B"),
            Pattern::WordsPercent(p) => format!("{p}pct_words"),
            Pattern::Random => "random".into(),
        }
    }
}

fn make_pages(pattern: Pattern, pages: usize) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng(0x5eed ^ pages as u64);
    let mut old = vec![0u8; pages * PAGE];
    rng.fill(&mut old);
    let mut new = old.clone();
    for p in 0..pages {
        let page = &mut new[p * PAGE..(p + 1) * PAGE];
        match pattern {
            Pattern::Bytes(n) => {
                for _ in 0..n {
                    let i = (rng.next() % PAGE as u64) as usize;
                    page[i] ^= (rng.next() % 255 + 1) as u8;
                }
            }
            Pattern::WordsPercent(pct) => {
                for w in page.chunks_mut(8) {
                    if rng.next() % 100 < pct {
                        w.copy_from_slice(&rng.next().to_le_bytes());
                    }
                }
            }
            Pattern::Random => rng.fill(page),
        }
    }
    (old, new)
}

fn bench(c: &mut Criterion) {
    let pages: usize = std::env::var("FGBI_BENCH_PAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8192);
    let patterns = [
        Pattern::Bytes(1),
        Pattern::Bytes(16),
        Pattern::Bytes(64),
        Pattern::Bytes(256),
        Pattern::WordsPercent(1),
        Pattern::WordsPercent(10),
        Pattern::WordsPercent(50),
        Pattern::Random,
    ];
    let mut dst = vec![0u8; PAGE];
    let mut ddst = vec![0u8; delta::max_encoded_len(PAGE)];
    for pattern in patterns {
        let (old, new) = make_pages(pattern, pages);
        let pairs = || old.chunks_exact(PAGE).zip(new.chunks_exact(PAGE));
        let mut g = c.benchmark_group(format!("codec/{}", pattern.name()));
        g.throughput(Throughput::Bytes((pages * PAGE) as u64));
        g.sample_size(10);

        if matches!(pattern, Pattern::Bytes(1)) {
            g.bench_function("baseline_memcmp", |b| {
                b.iter(|| pairs().filter(|(o, n)| o == n).count())
            });
        }
        for isa in scan::available() {
            g.bench_function(BenchmarkId::new("xbzrle_encode", isa.name()), |b| {
                b.iter(|| {
                    let mut total = 0usize;
                    for (o, n) in pairs() {
                        total += xbzrle::encode_with(isa, o, n, &mut dst).unwrap_or(PAGE);
                    }
                    black_box(total)
                })
            });
        }
        g.bench_function("xbzrle_encode_exact", |b| {
            b.iter(|| {
                let mut total = 0usize;
                for (o, n) in pairs() {
                    total += xbzrle::encode_exact(o, n, &mut dst).unwrap_or(PAGE);
                }
                black_box(total)
            })
        });
        g.bench_function("xbzrle_scalar_reference", |b| {
            b.iter(|| {
                let mut total = 0usize;
                for (o, n) in pairs() {
                    total += xbzrle::encode_scalar_reference(o, n, &mut dst).unwrap_or(PAGE);
                }
                black_box(total)
            })
        });
        g.bench_function("xbzrle_scalar_words", |b| {
            b.iter(|| {
                let mut total = 0usize;
                for (o, n) in pairs() {
                    total += xbzrle::encode_scalar_words(o, n, &mut dst).unwrap_or(PAGE);
                }
                black_box(total)
            })
        });
        g.bench_function("delta_encode", |b| {
            b.iter(|| {
                let mut total = 0usize;
                for (o, n) in pairs() {
                    total += delta::encode(o, n, &mut ddst).unwrap();
                }
                black_box(total)
            })
        });

        // Decoders: pre-encode every page, then patch a copy of the old pages (idempotent, so
        // every iteration does the same work). Pages that do not fit XBZRLE are skipped there.
        let mut xenc: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut denc: Vec<Vec<u8>> = Vec::new();
        let mut xsize = 0usize;
        let mut dsize = 0usize;
        for (p, (o, n)) in pairs().enumerate() {
            if let Ok(len) = xbzrle::encode(o, n, &mut dst) {
                xenc.push((p, dst[..len].to_vec()));
                xsize += len;
            } else {
                xsize += PAGE;
            }
            let len = delta::encode(o, n, &mut ddst).unwrap();
            denc.push(ddst[..len].to_vec());
            dsize += len;
        }
        eprintln!(
            "pattern {}: xbzrle {:.4} of input ({} pages overflow), delta {:.4}",
            pattern.name(),
            xsize as f64 / (pages * PAGE) as f64,
            pages - xenc.len(),
            dsize as f64 / (pages * PAGE) as f64
        );
        let mut replica = old.clone();
        g.bench_function("xbzrle_decode", |b| {
            b.iter(|| {
                for (p, e) in &xenc {
                    xbzrle::decode(e, &mut replica[p * PAGE..(p + 1) * PAGE]).unwrap();
                }
            })
        });
        let mut replica = old.clone();
        g.bench_function("delta_decode", |b| {
            b.iter(|| {
                for (p, e) in denc.iter().enumerate() {
                    delta::decode(e, &mut replica[p * PAGE..(p + 1) * PAGE]).unwrap();
                }
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
