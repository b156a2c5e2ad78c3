//! Writes seed corpora for the fuzz targets in `fuzz/` (run from the repository root):
//!
//! ```text
//! cargo run --example gen_fuzz_corpus -- fuzz/corpus
//! ```
//!
//! Seeds are genuine encoder output, so the fuzzers start from inputs that reach every op kind
//! instead of spending their time on the header.

use fgbi::compress::{Compressor, Deflate, Lz4};
use fgbi::{Config, Encoder, Fallback, Stages};
use std::path::Path;

const PS: usize = 512;
const BS: usize = 64;
const PAGES: usize = 16;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("create corpus directory");
    std::fs::write(d.join(name), bytes).expect("write seed");
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `b[*pos..]`, copying its bytes to `out`.
fn copy_varint(b: &[u8], pos: &mut usize, out: &mut Vec<u8>) -> u64 {
    let mut v = 0u64;
    for i in 0.. {
        let byte = b[*pos];
        *pos += 1;
        out.push(byte);
        v |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            break;
        }
    }
    v
}

/// Stream numbers of an entropy-coded payload (FORMAT.md, "Entropy-coded payload").
const CTRL: usize = 0;
const TOKENS: usize = 1;
const LITERALS: usize = 2;
const OFFSET_LOW: usize = 3;
const OFFSET_HIGH: usize = 4;
const OPAQUE: usize = 5;

/// Sends the bytes of the lz4 block `lz` to the streams they belong to.
fn split_lz4(lz: &[u8], s: &mut [Vec<u8>; 6]) {
    let mut i = 0;
    loop {
        let t = lz[i];
        s[TOKENS].push(t);
        i += 1;
        let mut lit = (t >> 4) as usize;
        if lit == 15 {
            loop {
                s[CTRL].push(lz[i]);
                lit += lz[i] as usize;
                i += 1;
                if lz[i - 1] != 255 {
                    break;
                }
            }
        }
        s[LITERALS].extend_from_slice(&lz[i..i + lit]);
        i += lit;
        if i == lz.len() {
            return;
        }
        s[OFFSET_LOW].push(lz[i]);
        s[OFFSET_HIGH].push(lz[i + 1]);
        i += 2;
        if t & 15 == 15 {
            loop {
                s[CTRL].push(lz[i]);
                i += 1;
                if lz[i - 1] != 255 {
                    break;
                }
            }
        }
    }
}

/// The six streams of a (valid, plain) payload of ops, each holding its bytes in payload order.
fn split_streams(payload: &[u8], ps: usize, bs: usize) -> [Vec<u8>; 6] {
    let mut s: [Vec<u8>; 6] = Default::default();
    let mut pos = 0;
    while pos < payload.len() {
        let tag = payload[pos];
        pos += 1;
        s[CTRL].push(tag);
        copy_varint(payload, &mut pos, &mut s[CTRL]); // address
        let (kind, codec) = (tag & 15, tag >> 4);
        let body = |pos: &mut usize, s: &mut [Vec<u8>; 6], lz4: bool| {
            let len = copy_varint(payload, pos, &mut s[CTRL]) as usize;
            let b = &payload[*pos..*pos + len];
            if lz4 {
                split_lz4(b, s);
            } else {
                s[OPAQUE].extend_from_slice(b);
            }
            *pos += len;
        };
        match kind {
            0 => {}
            1 => {
                s[LITERALS].extend_from_slice(&payload[pos..pos + ps]);
                pos += ps;
            }
            2 => body(&mut pos, &mut s, codec == 1),
            3 => {
                let len = copy_varint(payload, &mut pos, &mut s[CTRL]) as usize;
                let end = pos + len;
                while pos < end {
                    copy_varint(payload, &mut pos, &mut s[CTRL]); // skip
                    let run = copy_varint(payload, &mut pos, &mut s[CTRL]) as usize;
                    s[LITERALS].extend_from_slice(&payload[pos..pos + run]);
                    pos += run;
                }
            }
            4 => body(&mut pos, &mut s, true),
            6 => {
                // RUN: count and gaps, then one lz4 block
                let count = copy_varint(payload, &mut pos, &mut s[CTRL]);
                for _ in 1..count {
                    copy_varint(payload, &mut pos, &mut s[CTRL]);
                }
                body(&mut pos, &mut s, true);
            }
            _ => {
                let nb = ps / bs;
                let map = &payload[pos..pos + nb.div_ceil(4)];
                s[CTRL].extend_from_slice(map);
                pos += map.len();
                let code = |i: usize| (map[i / 4] >> (2 * (i % 4))) & 3;
                for _ in (0..nb).filter(|&i| code(i) == 2) {
                    copy_varint(payload, &mut pos, &mut s[CTRL]);
                    copy_varint(payload, &mut pos, &mut s[CTRL]);
                }
                let lits = (0..nb).filter(|&i| code(i) == 3).count();
                match (lits, codec) {
                    (0, _) => {}
                    (_, 0) => {
                        s[LITERALS].extend_from_slice(&payload[pos..pos + lits * bs]);
                        pos += lits * bs;
                    }
                    (_, c) => body(&mut pos, &mut s, c == 1),
                }
            }
        }
    }
    s
}

/// `bytes` as a CONTEXT stream (mode 3) of two tables chosen by the context's parity (context
/// 256: the first), both the same fixed-length code over the values present: the bytes read back
/// whatever their contexts, and the fuzzer's changes to either table or to the map make the
/// contexts matter. `literals`: the `LITERALS` stream (format version 5), coded in two bit
/// strings (the bytes at even positions, then those at odd positions).
fn context_stream(bytes: &[u8], literals: bool) -> Vec<u8> {
    let mut present = [false; 256];
    for &b in bytes {
        present[b as usize] = true;
    }
    let values: Vec<usize> = (0..256).filter(|&v| present[v]).collect();
    let bits = (1..=8).find(|&l| 1usize << l >= values.len()).unwrap();
    let mut out = vec![3];
    varint(bytes.len() as u64, &mut out);
    out.push(2); // tables
    out.extend_from_slice(&[0xaa; 32]); // contexts 0 ..= 255: 1 bit each, the context's parity
    out.push(0); // context 256, then padding
    for _ in 0..2 {
        out.push(2); // listed
        let mut bitmap = [0u8; 32];
        for &v in &values {
            bitmap[v / 8] |= 1 << (v % 8);
        }
        out.extend_from_slice(&bitmap);
        out.extend(std::iter::repeat_n(bits as u8 * 0x11, values.len() / 2));
        if values.len() % 2 == 1 {
            out.push(bits as u8);
        }
    }
    // canonical code of the i-th present value: i on `bits` bits, most significant bit first,
    // packed least significant bit first
    let strings = if literals { 2 } else { 1 };
    let mut coded = vec![Vec::new(); strings];
    let mut at = vec![0usize; strings];
    for (k, &b) in bytes.iter().enumerate() {
        let code = values.iter().position(|&v| v == b as usize).unwrap();
        let (c, at) = (&mut coded[k % strings], &mut at[k % strings]);
        for i in (0..bits).rev() {
            if at.is_multiple_of(8) {
                c.push(0);
            }
            *c.last_mut().unwrap() |= (((code >> i) & 1) as u8) << (*at % 8);
            *at += 1;
        }
    }
    if literals {
        varint(coded[0].len() as u64, &mut out); // first
    }
    let coded = coded.concat();
    varint(coded.len() as u64, &mut out);
    out.extend_from_slice(&coded);
    out
}

/// A plain payload entropy coded by hand: `CTRL` and `OPAQUE` stored, the other four streams
/// CONTEXT coded (stored when empty: a CONTEXT stream holds at least one byte).
fn context_coded(payload: &[u8], ps: usize, bs: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, s) in split_streams(payload, ps, bs).iter().enumerate() {
        if s.is_empty() || k == CTRL || k == OPAQUE {
            out.push(0);
            varint(s.len() as u64, &mut out);
            out.extend_from_slice(s);
        } else {
            out.extend_from_slice(&context_stream(s, k == LITERALS));
        }
    }
    out
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus".to_string());
    let out = Path::new(&out);
    let mut count = 0;

    // frame_decode: payloads of epoch-1 frames over a 16-page replica, one per stage mix
    let base: Vec<u8> = (0..PS * PAGES)
        .map(|i| {
            if (i / PS).is_multiple_of(5) {
                0
            } else {
                (i * 7 / 3) as u8
            }
        })
        .collect();
    let mixes = [
        Stages::ALL,
        Stages {
            delta: false,
            ..Stages::ALL
        },
        Stages {
            delta: false,
            blocks: false,
            ..Stages::ALL
        },
        Stages {
            dict: true,
            ..Stages::NONE
        },
        Stages::NONE,
    ];
    for (m, stages) in mixes.iter().enumerate() {
        let cfg = Config {
            page_size: PS,
            block_size: BS,
            stages: *stages,
            ..Config::default()
        };
        let mut enc = Encoder::new(cfg).expect("config");
        enc.begin_epoch(0).unwrap();
        for (i, p) in base.chunks(PS).enumerate() {
            enc.add_page((i * PS) as u64, p).unwrap();
        }
        let first = enc.end_epoch().unwrap().to_vec();
        let mut mem = base.clone();
        // sparse writes, a moved run, a zeroed page, a copied block, new data
        mem[PS + 10] ^= 0xff;
        mem.copy_within(3 * PS..3 * PS + 300, 3 * PS + 40);
        mem[6 * PS..7 * PS].fill(0);
        mem.copy_within(2 * PS..2 * PS + BS, 8 * PS + 2 * BS);
        mem[9 * PS..10 * PS]
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i * i) as u8);
        enc.begin_epoch(1).unwrap();
        for p in [1, 3, 6, 8, 9, 0] {
            enc.add_page((p * PS) as u64, &mem[p * PS..(p + 1) * PS])
                .unwrap();
        }
        let f = enc.end_epoch().unwrap();
        for (k, frame) in [&first[..], f].into_iter().enumerate() {
            let (h, payload) = fgbi::frame::open(frame).unwrap();
            let mut seed = vec![0u8, (h.flags & 3) as u8];
            seed.extend_from_slice(&(h.op_count as u16).to_le_bytes());
            seed.extend_from_slice(payload);
            write(out, "frame_decode", &format!("mix{m}-epoch{k}"), &seed);
            let mut raw = vec![1u8];
            raw.extend_from_slice(frame);
            write(out, "frame_decode", &format!("mix{m}-epoch{k}-wire"), &raw);
            count += 2;
            // the same ops with their lz4 tokens, literals and offsets CONTEXT coded
            if h.flags & fgbi::frame::FLAG_ENTROPY == 0 && !payload.is_empty() {
                let mut seed = vec![0u8, (h.flags & 3) as u8 | 2];
                seed.extend_from_slice(&(h.op_count as u16).to_le_bytes());
                seed.extend_from_slice(&context_coded(payload, PS, BS));
                write(
                    out,
                    "frame_decode",
                    &format!("mix{m}-epoch{k}-context"),
                    &seed,
                );
                count += 1;
            }
        }
    }

    // frame_decode, text pages: skewed byte statistics, so the encoder entropy codes the later
    // epochs too (every op kind then reaches the six streams); the same script with the entropy
    // stage off gives the plain twin of each frame
    let text = |seed: usize, len: usize| -> Vec<u8> {
        const WORDS: [&str; 12] = [
            "page ", "frame ", "the ", "backup ", "of ", "epoch ", "stream ", "and ", "dirty ",
            "replica ", "to ", "block ",
        ];
        let mut x = seed as u64 * 0x9e37_79b9_7f4a_7c15 + 1;
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(WORDS[(x % 12) as usize].as_bytes());
        }
        out.truncate(len);
        out
    };
    let text_mixes = [
        ("text-lz4", Stages::ALL, Fallback::Lz4),
        ("text-deflate", Stages::ALL, Fallback::Deflate(6)),
        (
            "text-noblocks",
            Stages {
                blocks: false,
                ..Stages::ALL
            },
            Fallback::Lz4,
        ),
        (
            "text-plain",
            Stages {
                entropy: false,
                ..Stages::ALL
            },
            Fallback::Lz4,
        ),
    ];
    for (name, stages, fallback) in text_mixes {
        let cfg = Config {
            page_size: PS,
            block_size: BS,
            stages,
            fallback,
            ..Config::default()
        };
        let mut enc = Encoder::new(cfg).expect("config");
        let mut mem = text(1, PS * PAGES);
        for e in 0..3usize {
            if e > 0 {
                // sparse edits (DELTA), rewritten text (DICT or COMPRESSED), moved and zeroed
                // blocks (BLOCKS), a fresh page
                for k in 0..6 {
                    mem[(e + k) % PAGES * PS + 37 * k + e] = b'#';
                }
                let fresh = text(10 + e, PS);
                mem[(e + 4) * PS..(e + 5) * PS].copy_from_slice(&fresh);
                let half = text(20 + e, PS / 2);
                mem[(e + 6) * PS + 100..(e + 6) * PS + 100 + PS / 2].copy_from_slice(&half);
                mem.copy_within(2 * BS..5 * BS, (e + 9) * PS + 3 * BS);
                mem[(e + 11) * PS + BS..(e + 11) * PS + 3 * BS].fill(0);
                mem[(e + 12) * PS..(e + 13) * PS].fill(0);
                // bytes of most values, small ones far more often: a full 128-byte code table
                let mut x = 0x2545_f491_4f6c_dd1du64 + e as u64;
                for b in &mut mem[(e + 1) * PS..(e + 3) * PS] {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let u = (x >> 40) as f64 / (1u64 << 24) as f64;
                    *b = (256.0 * u * u * u) as u8;
                }
            }
            enc.begin_epoch(e as u64).unwrap();
            for (i, p) in mem.chunks(PS).enumerate() {
                enc.add_page((i * PS) as u64, p).unwrap();
            }
            let frame = enc.end_epoch().unwrap();
            let (h, payload) = fgbi::frame::open(frame).unwrap();
            let mut seed = vec![0u8, (h.flags & 3) as u8];
            seed.extend_from_slice(&(h.op_count as u16).to_le_bytes());
            seed.extend_from_slice(payload);
            write(out, "frame_decode", &format!("{name}-epoch{e}"), &seed);
            let mut raw = vec![1u8];
            raw.extend_from_slice(frame);
            write(out, "frame_decode", &format!("{name}-epoch{e}-wire"), &raw);
            count += 2;
        }
    }

    // frame_decode: every page of the replica sent RAW and entropy coded: a literal stream of
    // 8192 bytes, Huffman coded in four parts (format version 3)
    {
        let mut payload = Vec::new();
        for p in 0..PAGES {
            payload.extend_from_slice(&[fgbi::frame::op::RAW, 0]);
            payload.extend_from_slice(&text(p + 40, PS));
        }
        let mut coded = Vec::new();
        fgbi::entropy::EntropyEncoder::default()
            .encode_plain(&payload, PS, BS, &mut coded)
            .expect("a valid payload");
        let mut seed = vec![0u8, 2];
        seed.extend_from_slice(&(PAGES as u16).to_le_bytes());
        seed.extend_from_slice(&coded);
        write(out, "frame_decode", "raw-pages-literals-in-parts", &seed);
        count += 1;
    }

    // delta_decode: a selector byte, then a delta stream
    for (k, changes) in [1usize, 5, 40, 300].into_iter().enumerate() {
        let old: Vec<u8> = (0..4096).map(|i| (i / 5) as u8).collect();
        let mut new = old.clone();
        for c in 0..changes {
            new[(c * 97) % 4096] ^= 0x21;
        }
        let mut d = vec![0u8; fgbi::delta::max_encoded_len(4096)];
        let n = fgbi::delta::encode(&old, &new, &mut d).unwrap();
        let mut seed = vec![2u8];
        seed.extend_from_slice(&d[..n]);
        write(out, "delta_decode", &format!("changes{k}"), &seed);
        count += 1;
    }

    // decompress: codec byte, output length, compressed data
    let page: Vec<u8> = (0..4096).map(|i| b"fgbi seed corpus "[i % 17]).collect();
    let mut buf = vec![0u8; 8192];
    let lz = Lz4::default().compress(&page, &mut buf).unwrap();
    let mut seed = vec![0u8, 0x00, 0x10];
    seed.extend_from_slice(&buf[..lz]);
    write(out, "decompress", "lz4", &seed);
    let df = Deflate::new(1).compress(&page, &mut buf).unwrap();
    let mut seed = vec![1u8, 0x00, 0x10];
    seed.extend_from_slice(&buf[..df]);
    write(out, "decompress", "deflate", &seed);
    count += 2;

    // roundtrip: stage bits, config bits, frame size, then epochs of 4-byte commands
    for (k, cfg) in [0xffu8, 0x1f, 0x03, 0x08].into_iter().enumerate() {
        let mut seed = vec![cfg, (k as u8) * 0x55, k as u8, 3];
        seed.extend_from_slice(&[0, 1, 5, 9, 2, 3, 1, 7, 4, 2, 0, 0x41]);
        seed.extend_from_slice(&[2, 3, 4, 1, 1, 9, 2, 2, 8, 8]);
        write(out, "roundtrip", &format!("script{k}"), &seed);
        count += 1;
    }
    // roundtrip with notes: epochs whose commands zero (5), carry (6) and lose (7) pages by
    // another path between frames
    for (k, cfg) in [0xffu8, 0x0b, 0x3f].into_iter().enumerate() {
        let mut seed = vec![cfg, 0x55, k as u8, 2];
        seed.extend_from_slice(&[0, 1, 5, 9, 3, 2, 0, 0x41]);
        seed.extend_from_slice(&[3, 5, 1, 0, 0, 6, 2, 8, 0x33, 7, 3, 0, 0x10]);
        seed.extend_from_slice(&[2, 0, 1, 9, 0x22, 6, 1, 4, 0x44]);
        write(out, "roundtrip", &format!("notes{k}"), &seed);
        count += 1;
    }
    println!("wrote {count} seeds under {}", out.display());
}
