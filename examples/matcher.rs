//! Compares libfgbi's lz4 matcher (`fgbi::lz::PageLz`) with lz4_flex's compressor on the pages of
//! a real trace that the dictionary stage sees: every page that changed between two consecutive
//! epochs and is not zero in either, compressed with its previous version as dictionary. Prints
//! the lz4 bytes, the speed of each, and the shape of libfgbi's blocks (sequences, literal bytes
//! and same-position matches per page). Both outputs are decoded and checked. Then the greedy
//! parses without a dictionary, as the encoder's fastest path compresses a page whole:
//! libfgbi's (`fgbi::lz::Greedy`) against lz4_flex's `compress_into`, on the same new pages.
//! Last, the pages a RUN op gathers: the non-zero pages of the first epoch (every page new),
//! compressed in runs of 1, 2, 4, 8 and 16 neighbours (consecutive non-zero pages, as the encoder
//! joins them) by each compressor, a run as one block.
//!
//! ```text
//! cargo run --release --example matcher -- TRACE_DIR [--epochs N] [--rounds R]
//! ```
//!
//! `--epochs N` uses the first N epoch transitions (default 3); speeds are the best of R rounds
//! (default 3) over the pages held in memory.

#[path = "common/mod.rs"]
mod common;

use fgbi::lz::PageLz;
use std::time::Instant;

const PS: usize = 4096;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let (mut epochs, mut rounds) = (3usize, 3usize);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--epochs" => {
                epochs = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--epochs N")
            }
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--rounds R")
            }
            _ => dir = Some(a),
        }
    }
    let dir = dir.expect("usage: matcher TRACE_DIR [--epochs N] [--rounds R]");
    let names = common::epoch_images(&dir);
    let read = |n: &String| std::fs::read(format!("{dir}/{n}")).expect("epoch image");

    // (old, new) page pairs, stored back to back.
    let mut pairs = Vec::new();
    let mut prev = read(&names[0]);
    for name in names.iter().skip(1).take(epochs) {
        let cur = read(name);
        for (off, new) in cur.chunks_exact(PS).enumerate() {
            let Some(old) = prev.get(off * PS..off * PS + PS) else {
                continue;
            };
            let zero = |p: &[u8]| p.iter().all(|&b| b == 0);
            if old != new && !zero(old) && !zero(new) {
                pairs.extend_from_slice(old);
                pairs.extend_from_slice(new);
            }
        }
        prev = cur;
    }
    let n = pairs.len() / (2 * PS);
    assert!(n > 0, "no changed pages in the first {epochs} transitions");
    let pages = || pairs.chunks_exact(2 * PS).map(|c| c.split_at(PS));

    let mut out = vec![0u8; lz4_flex::block::get_maximum_output_size(PS)];
    let mut back = vec![0u8; PS];
    let mut lz = PageLz::new();
    let (mut best_ours, mut best_flex) = (f64::MAX, f64::MAX);
    let (mut ours, mut flex) = (0usize, 0usize);
    for _ in 0..rounds {
        let t = Instant::now();
        ours = pages()
            .map(|(old, new)| lz.compress_with_dict(new, old, &mut out).expect("fits"))
            .sum();
        best_ours = best_ours.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        flex = pages()
            .map(|(old, new)| {
                lz4_flex::block::compress_into_with_dict(new, &mut out, old).expect("fits")
            })
            .sum();
        best_flex = best_flex.min(t.elapsed().as_secs_f64());
    }

    // Shape of libfgbi's blocks, and both decoded back.
    let (mut seqs, mut lits, mut same) = (0usize, 0usize, 0usize);
    let mut reps = [0usize; 3];
    for (old, new) in pages() {
        let k = lz4_flex::block::compress_into_with_dict(new, &mut out, old).unwrap();
        fgbi::compress::lz4_dict_decompress(&out[..k], old, &mut back).expect("lz4_flex block");
        assert_eq!(back, new);
        let k = lz.compress_with_dict(new, old, &mut out).unwrap();
        fgbi::compress::lz4_dict_decompress(&out[..k], old, &mut back).expect("PageLz block");
        assert_eq!(back, new);
        let (s, l, m, r) = shape(&out[..k]);
        for (a, b) in reps.iter_mut().zip(r) {
            *a += b;
        }
        seqs += s;
        lits += l;
        same += m;
    }
    let gb = (n * PS) as f64 / 1e9;
    let per = |x: usize| x as f64 / n as f64;
    println!("{n} changed pages over {epochs} epoch transitions of {dir}");
    print_pair("PageLz", (ours, best_ours), (flex, best_flex), gb);
    println!(
        "PageLz blocks: {:.1} sequences, {:.1} literal bytes, {:.1} same-position matches per page",
        per(seqs),
        per(lits),
        per(same)
    );
    println!(
        "matches at the last offset {:.1}, the one before {:.1}, the third {:.1} per page",
        per(reps[0]),
        per(reps[1]),
        per(reps[2])
    );

    // The greedy parses, each page alone.
    let mut greedy = fgbi::lz::Greedy::new();
    let (mut best_greedy, mut best_flex) = (f64::MAX, f64::MAX);
    let (mut ours, mut flex) = (0usize, 0usize);
    for _ in 0..rounds {
        let t = Instant::now();
        ours = pages()
            .map(|(_, new)| greedy.compress(new, &mut out).expect("fits"))
            .sum();
        best_greedy = best_greedy.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        flex = pages()
            .map(|(_, new)| lz4_flex::block::compress_into(new, &mut out).expect("fits"))
            .sum();
        best_flex = best_flex.min(t.elapsed().as_secs_f64());
    }
    for (_, new) in pages() {
        let k = greedy.compress(new, &mut out).unwrap();
        fgbi::lz::decompress(&out[..k], &[], &mut back).expect("Greedy block");
        assert_eq!(back, new);
    }
    println!("without a dictionary:");
    print_pair("Greedy", (ours, best_greedy), (flex, best_flex), gb);
    runs(&read(&names[0]), rounds);
}

/// The first epoch's non-zero pages compressed in runs of neighbours (see the module's
/// documentation): bytes as a share of the input and speed, for each compressor and run length.
fn runs(image: &[u8], rounds: usize) {
    let fresh: Vec<u8> = image
        .chunks_exact(PS)
        .filter(|p| p.iter().any(|&b| b != 0))
        .flatten()
        .copied()
        .collect();
    let gb = fresh.len() as f64 / 1e9;
    println!(
        "runs of neighbouring pages, first epoch ({} non-zero pages): share of the input, GB/s",
        fresh.len() / PS
    );
    let mut out = vec![0u8; lz4_flex::block::get_maximum_output_size(16 * PS)];
    let mut back = vec![0u8; 16 * PS];
    let (mut lz, mut greedy) = (PageLz::new(), fgbi::lz::Greedy::new());
    println!("pages a run  PageLz           Greedy           lz4_flex");
    for run in [1, 2, 4, 8, 16] {
        let mut line = format!("{run:>11}");
        for which in 0..3 {
            let (mut bytes, mut best) = (0usize, f64::MAX);
            for _ in 0..rounds {
                let t = Instant::now();
                bytes = 0;
                for chunk in fresh.chunks(run * PS) {
                    bytes += match which {
                        0 => lz.compress(chunk, &mut out),
                        1 => greedy.compress(chunk, &mut out),
                        _ => lz4_flex::block::compress_into(chunk, &mut out).ok(),
                    }
                    .expect("fits");
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            line += &format!(
                "  {:.4} {:>6.3}   ",
                bytes as f64 / fresh.len() as f64,
                gb / best
            );
        }
        println!("{line}");
        // each run decodes back
        for chunk in fresh.chunks(run * PS) {
            let k = lz.compress(chunk, &mut out).expect("fits");
            fgbi::lz::decompress(&out[..k], &[], &mut back[..chunk.len()]).expect("PageLz run");
            assert_eq!(&back[..chunk.len()], chunk);
        }
    }
}

/// Prints lz4_flex's bytes and speed, then libfgbi's compressor's `name`, each as (bytes, best
/// seconds) over `gb` GB of pages.
fn print_pair(name: &str, (ours, ours_s): (usize, f64), (flex, flex_s): (usize, f64), gb: f64) {
    println!("lz4_flex  {flex:>11} bytes  {:.3} GB/s", gb / flex_s);
    println!(
        "{name:<9} {ours:>11} bytes  {:.3} GB/s  ({:.1}% of lz4_flex's bytes)",
        gb / ours_s,
        100.0 * ours as f64 / flex as f64
    );
}

/// (sequences, literal bytes, matches at offset 4096, matches repeating one of the last three
/// offsets) of one lz4 block.
fn shape(block: &[u8]) -> (usize, usize, usize, [usize; 3]) {
    let (mut i, mut seqs, mut lits, mut same) = (0, 0, 0, 0);
    let mut last = [0usize; 3];
    let mut reps = [0usize; 3];
    let ext = |i: &mut usize, mut n: usize| loop {
        let b = block[*i];
        *i += 1;
        n += b as usize;
        if b != 255 {
            return n;
        }
    };
    loop {
        let token = block[i];
        i += 1;
        let mut l = (token >> 4) as usize;
        if l == 15 {
            l = ext(&mut i, l);
        }
        i += l;
        lits += l;
        seqs += 1;
        if i >= block.len() {
            return (seqs, lits, same, reps);
        }
        let off = u16::from_le_bytes([block[i], block[i + 1]]) as usize;
        if off == PS {
            same += 1;
        }
        match last.iter().position(|&o| o == off) {
            Some(k) => {
                reps[k] += 1;
                last[..=k].rotate_right(1);
            }
            None => {
                last.rotate_right(1);
                last[0] = off;
            }
        }
        i += 2;
        if token & 15 == 15 {
            ext(&mut i, 15);
        }
    }
}
