// Interleaved A/B timing of the encoders (development aid; criterion is the real bench).
use fgbi::{delta, scan, xbzrle};
use std::time::Instant;
fn main() {
    let pages: usize = std::env::args().nth(1).map_or(64, |s| s.parse().unwrap());
    let nchg: usize = std::env::args().nth(2).map_or(16, |s| s.parse().unwrap());
    let mut x = 12345u64;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let old: Vec<u8> = (0..pages * 4096).map(|_| rnd() as u8).collect();
    let mut new = old.clone();
    for p in 0..pages {
        for _ in 0..nchg {
            let i = (rnd() % 4096) as usize;
            new[p * 4096 + i] ^= (rnd() % 255 + 1) as u8;
        }
    }
    let mut dst = vec![0u8; 8192];
    let names = [
        "merge/avx512",
        "exact/avx512",
        "merge/generic",
        "scalar_ref",
        "scalar_words",
        "delta",
    ];
    let mut best = [f64::MAX; 6];
    for _round in 0..15 {
        for (k, _) in names.iter().enumerate() {
            let t = Instant::now();
            let mut tot = 0usize;
            for _ in 0..(4096 / pages).max(1) {
                for (o, n) in old.chunks_exact(4096).zip(new.chunks_exact(4096)) {
                    tot += match k {
                        0 => xbzrle::encode_with(scan::best(), o, n, &mut dst).unwrap_or(0),
                        1 => xbzrle::encode_exact_with(scan::best(), o, n, &mut dst).unwrap_or(0),
                        2 => xbzrle::encode_with(scan::Isa::Generic, o, n, &mut dst).unwrap_or(0),
                        3 => xbzrle::encode_scalar_reference(o, n, &mut dst).unwrap_or(0),
                        4 => xbzrle::encode_scalar_words(o, n, &mut dst).unwrap_or(0),
                        _ => delta::encode(o, n, &mut dst).unwrap_or(0),
                    };
                }
            }
            std::hint::black_box(tot);
            let gbs = ((4096 / pages).max(1) * pages * 4096) as f64 / t.elapsed().as_nanos() as f64;
            best[k] = best[k].min(1.0 / gbs);
        }
    }
    for (k, n) in names.iter().enumerate() {
        println!("{n:16} {:.2} GB/s", 1.0 / best[k]);
    }
}
