//! The reference decoder against the library on genuine frames (entropy on and off) and on
//! hand-made entropy-coded payloads that probe the corners of FORMAT.md, "Entropy-coded payload".

use fgbi::frame;
use fgbi::{Config, Decoder, Encoder, Stages};
use fgbi_fuzz::{epoch1_frame, initial_state, reference_apply, reference_unentropy, BS, PAGES, PS};
use std::collections::HashSet;
use std::sync::OnceLock;

/// Both decoders on one payload of an epoch-1 frame over the fuzz target's start state: the
/// library's verdict (error text) and replica, and the reference's replica.
fn both(flags: u32, op_count: u32, payload: &[u8]) -> (Result<Vec<u8>, String>, Option<Vec<u8>>) {
    static INIT: OnceLock<(Config, u64, Vec<u8>, Vec<u8>)> = OnceLock::new();
    let (cfg, stream, genuine, mem0) = INIT.get_or_init(initial_state);
    let (cfg, stream) = (*cfg, *stream);
    let mut dec = Decoder::new(cfg).unwrap();
    let mut mem = vec![0u8; mem0.len()];
    dec.apply_flat(genuine, &mut mem).unwrap();
    let f = epoch1_frame(flags, op_count, stream, payload);
    let known: HashSet<u64> = (0..PAGES as u64).collect();
    let reference = reference_apply(
        payload,
        op_count,
        flags & frame::FLAG_RESYNC != 0,
        flags & frame::FLAG_ENTROPY != 0,
        &known,
        &mem,
    );
    let before = mem.clone();
    let lib = match dec.apply_flat(&f, &mut mem) {
        Ok(_) => Ok(mem),
        Err(e) => {
            assert!(mem == before, "a refused frame wrote to the replica");
            Err(e.to_string())
        }
    };
    (lib, reference)
}

/// Asserts the two decoders agree; returns the library's verdict.
fn agree(flags: u32, op_count: u32, payload: &[u8]) -> Result<(), String> {
    let (lib, reference) = both(flags, op_count, payload);
    match (&lib, &reference) {
        (Ok(a), Some(b)) => assert!(a == b, "replicas differ"),
        (Err(_), None) => {}
        _ => panic!(
            "disagree on {payload:02x?}: library {:?}, reference {}",
            lib.as_ref().map(|_| "accepts"),
            if reference.is_some() {
                "accepts"
            } else {
                "refuses"
            }
        ),
    }
    lib.map(|_| ())
}

const E: u32 = frame::FLAG_ENTROPY;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Six STORED streams.
fn stored(streams: [&[u8]; 6]) -> Vec<u8> {
    let mut p = Vec::new();
    for s in streams {
        p.push(0);
        varint(s.len() as u64, &mut p);
        p.extend_from_slice(s);
    }
    p
}

/// A HUFFMAN stream (128-byte table) from code lengths, symbol count and coded bytes.
fn huffman(lengths: &[(u8, u8)], len: u64, coded: &[u8]) -> Vec<u8> {
    let mut table = [0u8; 128];
    for &(v, l) in lengths {
        table[v as usize / 2] |= l << (4 * (v % 2));
    }
    let mut p = vec![1];
    varint(len, &mut p);
    p.extend_from_slice(&table);
    varint(coded.len() as u64, &mut p);
    p.extend_from_slice(coded);
    p
}

/// Five empty STORED streams around `s` at position `at`.
fn with_stream(at: usize, s: Vec<u8>) -> Vec<u8> {
    let mut p = Vec::new();
    for k in 0..6 {
        if k == at {
            p.extend_from_slice(&s);
        } else {
            p.extend_from_slice(&[0, 0]);
        }
    }
    p
}

#[test]
fn genuine_frames_agree_entropy_on_and_off() {
    let (_, _, _, base) = initial_state();
    let mut seen_entropy = 0;
    let mut seen_plain = 0;
    for entropy in [true, false] {
        for stages in [
            Stages::ALL,
            Stages {
                delta: false,
                ..Stages::ALL
            },
            Stages {
                blocks: false,
                ..Stages::ALL
            },
            Stages::NONE,
        ] {
            for fallback in [
                fgbi::Fallback::Lz4,
                fgbi::Fallback::Deflate(6),
                fgbi::Fallback::None,
            ] {
                let cfg = Config {
                    page_size: PS,
                    block_size: BS,
                    stages: Stages { entropy, ..stages },
                    fallback,
                    ..Config::default()
                };
                let mut enc = Encoder::new(cfg).unwrap();
                let mut dec = Decoder::new(cfg).unwrap();
                let mut replica = vec![0u8; base.len()];
                let mut mem = base.clone();
                // what the backup should hold: the pages sent so far
                let mut expect = vec![0u8; base.len()];
                let mut known = HashSet::new();
                for epoch in 0..6u64 {
                    // a mix of edits that reaches every op kind
                    let e = epoch as usize;
                    mem[(e * 3 % PAGES) * PS + 17 * e] ^= 0x5a;
                    mem.copy_within(
                        ((e + 2) % PAGES) * PS..((e + 2) % PAGES) * PS + 200,
                        ((e + 5) % PAGES) * PS + 30,
                    );
                    mem[((e + 7) % PAGES) * PS..((e + 8) % PAGES).max((e + 7) % PAGES + 1) * PS]
                        .fill(0);
                    for (i, b) in mem[((e + 9) % PAGES) * PS..((e + 9) % PAGES + 1) * PS]
                        .iter_mut()
                        .enumerate()
                    {
                        *b = (i * (i + e)) as u8 ^ (i / 7) as u8;
                    }
                    mem.copy_within(BS..3 * BS, ((e + 11) % PAGES) * PS + 4 * BS);
                    enc.begin_epoch(epoch).unwrap();
                    for p in 0..PAGES {
                        if epoch == 0 || !(p + e).is_multiple_of(3) {
                            enc.add_page((p * PS) as u64, &mem[p * PS..(p + 1) * PS])
                                .unwrap();
                            expect[p * PS..(p + 1) * PS]
                                .copy_from_slice(&mem[p * PS..(p + 1) * PS]);
                        }
                    }
                    let f = enc.end_epoch().unwrap().to_vec();
                    let (h, payload) = frame::open(&f).unwrap();
                    if h.flags & E != 0 {
                        seen_entropy += 1;
                        assert!(entropy, "ENTROPY frame with the stage off");
                    } else {
                        seen_plain += 1;
                    }
                    let want = reference_apply(
                        payload,
                        h.op_count,
                        h.is_resync(),
                        h.flags & E != 0,
                        &known,
                        &replica,
                    )
                    .expect("reference refuses a genuine frame");
                    dec.apply_flat(&f, &mut replica).unwrap();
                    assert!(
                        replica == expect,
                        "epoch {epoch}: library replica differs ({cfg:?}, flags {})",
                        h.flags
                    );
                    assert!(
                        want == expect,
                        "epoch {epoch}: reference replica differs ({cfg:?}, flags {})",
                        h.flags
                    );
                    if h.is_resync() {
                        known.clear();
                    }
                    known.extend(
                        (0..PAGES as u64)
                            .filter(|p| epoch == 0 || !(*p as usize + e).is_multiple_of(3)),
                    );
                }
            }
        }
    }
    assert!(
        seen_entropy > 10 && seen_plain > 10,
        "{seen_entropy} entropy, {seen_plain} plain frames"
    );
}

#[test]
fn stored_streams_rebuild_the_plain_payload() {
    // ZERO page 2, RAW page 3, DELTA page 4 (one run of 3 at 10), COMPRESSED lz4 page 5
    let page: Vec<u8> = (0..PS).map(|i| i as u8).collect();
    let lz = lz4_flex::block::compress(&[7u8; PS]);
    let mut plain = vec![0x00, 0x04, 0x01, 0x00];
    plain.extend_from_slice(&page);
    plain.extend_from_slice(&[0x03, 0x00, 5, 10, 3, 1, 2, 3]);
    plain.extend_from_slice(&[0x12, 0x00]);
    varint(lz.len() as u64, &mut plain);
    plain.extend_from_slice(&lz);
    // split by hand: lz4 block of a constant page is token, literal, offset, match ext, last token
    // and literals; read it sequence by sequence as the spec says
    let mut s: [Vec<u8>; 6] = Default::default();
    s[0].extend_from_slice(&[0x00, 0x04, 0x01, 0x00]);
    s[2].extend_from_slice(&page);
    s[0].extend_from_slice(&[0x03, 0x00, 5, 10, 3]);
    s[2].extend_from_slice(&[1, 2, 3]);
    s[0].extend_from_slice(&[0x12, 0x00]);
    varint(lz.len() as u64, &mut s[0]);
    let mut i = 0;
    loop {
        let t = lz[i];
        s[1].push(t);
        i += 1;
        let mut lit = (t >> 4) as usize;
        if lit == 15 {
            loop {
                s[0].push(lz[i]);
                lit += lz[i] as usize;
                i += 1;
                if lz[i - 1] != 255 {
                    break;
                }
            }
        }
        s[2].extend_from_slice(&lz[i..i + lit]);
        i += lit;
        if i == lz.len() {
            break;
        }
        s[3].push(lz[i]);
        s[4].push(lz[i + 1]);
        i += 2;
        if t & 15 == 15 {
            loop {
                s[0].push(lz[i]);
                i += 1;
                if lz[i - 1] != 255 {
                    break;
                }
            }
        }
    }
    let p = stored([&s[0], &s[1], &s[2], &s[3], &s[4], &s[5]]);
    assert_eq!(reference_unentropy(&p).unwrap(), plain);
    assert_eq!(agree(E, 4, &p), Ok(()));
    assert_eq!(agree(0, 4, &plain), Ok(()));
    // one op too few or too many
    assert!(agree(E, 3, &p).is_err());
    assert!(agree(E, 5, &p).is_err());
    // a byte left in the OPAQUE stream
    let p2 = stored([&s[0], &s[1], &s[2], &s[3], &s[4], &[9]]);
    assert!(agree(E, 4, &p2).is_err());
    // trailing byte after the six streams
    let mut p3 = p.clone();
    p3.push(0);
    assert!(agree(E, 4, &p3).is_err());
}

#[test]
fn huffman_streams() {
    // CTRL holds "ZERO page 0, ZERO page 1" = 00 00 00 00: one symbol, code length 1 (code 0)
    let ok = with_stream(0, huffman(&[(0, 1)], 4, &[0x00]));
    assert_eq!(reference_unentropy(&ok).unwrap(), vec![0, 0, 0, 0]);
    assert_eq!(agree(E, 2, &ok), Ok(()));
    // the bit pattern 1 is no code of that incomplete code
    assert!(agree(E, 2, &with_stream(0, huffman(&[(0, 1)], 4, &[0x08]))).is_err());
    // bits after the last symbol must be 0
    assert!(agree(E, 2, &with_stream(0, huffman(&[(0, 1)], 4, &[0x10]))).is_err());
    // no byte beyond the one holding the last bit
    assert!(agree(E, 2, &with_stream(0, huffman(&[(0, 1)], 4, &[0x00, 0x00]))).is_err());
    // too few bytes: 9 symbols of 1 bit do not fit in one byte (len <= 8 x coded)
    assert!(agree(E, 2, &with_stream(0, huffman(&[(0, 1)], 9, &[0x00]))).is_err());
    // two symbols: 0 -> code 0 (len 1), 1 -> code 10 (len 2), 2 -> code 11 (len 2)
    // CTRL 00 02 | 00 00: tag ZERO, address zigzag(+1) = 2 => page 1; then page 2
    // bits: 0 | 1 1 | 0 | 0  -> LSB first: b0=0 b1=1 b2=1 b3=0 b4=0 = 0x06
    let two = with_stream(0, huffman(&[(0, 1), (1, 2), (2, 2)], 4, &[0x06]));
    assert_eq!(reference_unentropy(&two).unwrap(), vec![0, 2, 0, 0]);
    assert_eq!(agree(E, 2, &two), Ok(()));
    // oversubscribed: three codes of length 1
    assert!(agree(
        E,
        2,
        &with_stream(0, huffman(&[(0, 1), (1, 1), (2, 1)], 4, &[0x00]))
    )
    .is_err());
    // a code length above 11
    assert!(agree(
        E,
        2,
        &with_stream(0, huffman(&[(0, 1), (1, 12)], 4, &[0x00]))
    )
    .is_err());
    // a length-11 code, complete code of 2^11 ... only check lengths up to 11 are fine
    let long = with_stream(0, huffman(&[(0, 1), (1, 11)], 4, &[0x00]));
    assert_eq!(agree(E, 2, &long), Ok(()));
}

#[test]
fn listed_tables() {
    // HUFFMAN_LISTED: bitmap with value 0 present, its length 1
    let listed = |bitmap_bits: &[u8], nibbles: &[u8], len: u64, coded: &[u8]| {
        let mut p = vec![2];
        varint(len, &mut p);
        let mut bm = [0u8; 32];
        for &v in bitmap_bits {
            bm[v as usize / 8] |= 1 << (v % 8);
        }
        p.extend_from_slice(&bm);
        p.extend_from_slice(nibbles);
        varint(coded.len() as u64, &mut p);
        p.extend_from_slice(coded);
        with_stream(0, p)
    };
    assert_eq!(agree(E, 2, &listed(&[0], &[0x01], 4, &[0x00])), Ok(()));
    // high nibble of a last, odd length must be 0
    assert!(agree(E, 2, &listed(&[0], &[0x21], 4, &[0x00])).is_err());
    // a present value of length 0
    assert!(agree(E, 2, &listed(&[0, 1], &[0x01], 4, &[0x00])).is_err());
    // two values 0 and 2, lengths 1 and 1: CTRL 00 02 00 00, bits 0 1 0 0
    assert_eq!(agree(E, 2, &listed(&[0, 2], &[0x11], 4, &[0x02])), Ok(()));
}

/// Corners the spec text decides only by careful reading: printed so a run shows both verdicts.
#[test]
fn corners() {
    let cases: Vec<(&str, u32, Vec<u8>)> = vec![
        ("no streams at all, 0 ops", 0, vec![]),
        ("six empty STORED streams, 0 ops", 0, stored([&[]; 6])),
        (
            "empty HUFFMAN stream, empty table, coded 0",
            0,
            with_stream(3, huffman(&[], 0, &[])),
        ),
        (
            "empty HUFFMAN stream, coded 1 byte 00",
            0,
            with_stream(3, huffman(&[], 0, &[0])),
        ),
        (
            "empty HUFFMAN stream, oversubscribed table",
            0,
            with_stream(3, huffman(&[(0, 1), (1, 1), (2, 1)], 0, &[])),
        ),
        (
            "empty HUFFMAN stream, a length 13",
            0,
            with_stream(3, huffman(&[(0, 13)], 0, &[])),
        ),
        (
            "empty LISTED stream, empty bitmap",
            0,
            with_stream(3, {
                let mut p = vec![2, 0];
                p.extend_from_slice(&[0u8; 32]);
                p.push(0);
                p
            }),
        ),
        ("unknown mode 3, len 0", 0, with_stream(3, vec![3, 0])),
        (
            "3 ZERO ops, op count 2",
            2,
            stored([&[0, 0, 0, 0, 0, 0], &[], &[], &[], &[], &[]]),
        ),
        (
            "2 ZERO ops, op count 3",
            3,
            stored([&[0, 0, 0, 0], &[], &[], &[], &[], &[]]),
        ),
        (
            "ZERO with codec 1",
            1,
            stored([&[0x10, 0], &[], &[], &[], &[], &[]]),
        ),
        (
            "BLOCKS codec 1 no literals",
            1,
            stored([&[0x15, 0, 0x55, 0x55], &[], &[], &[], &[], &[]]),
        ),
        ("kind 6", 1, stored([&[0x06, 0], &[], &[], &[], &[], &[]])),
        (
            "COMPRESSED codec 0",
            1,
            stored([&[0x02, 0, 1], &[], &[], &[], &[], &[9]]),
        ),
        (
            "COMPRESSED codec 3",
            1,
            stored([&[0x32, 0, 1], &[], &[], &[], &[], &[9]]),
        ),
        (
            "RAW codec 1",
            1,
            stored([&[0x11, 0], &[], &[7u8; 512], &[], &[], &[]]),
        ),
        (
            "DELTA codec 2",
            1,
            stored([&[0x23, 0, 3, 0, 1], &[], &[7], &[], &[], &[]]),
        ),
        (
            "DELTA len 0",
            1,
            stored([&[0x03, 0, 0], &[], &[], &[], &[], &[]]),
        ),
        (
            "DICT codec 1 (lz4 body)",
            1,
            stored([&[0x14, 0, 2], &[0x10], &[7], &[], &[], &[]]),
        ),
        (
            "DICT codec 2 (deflate body?)",
            1,
            stored([&[0x24, 0, 1], &[], &[], &[], &[], &[9]]),
        ),
        (
            "BLOCKS codec 3 literals",
            1,
            stored([&[0x35, 0, 0xff, 0xff, 1], &[], &[], &[], &[], &[9]]),
        ),
        (
            "DELTA run 0 len",
            1,
            stored([&[0x03, 0, 2, 0, 0], &[], &[], &[], &[], &[]]),
        ),
        (
            "COMPRESSED len 1025",
            1,
            stored([&[0x22, 0, 0x81, 0x08], &[], &[], &[], &[], &[9u8; 1025]]),
        ),
        (
            "address 11-byte varint",
            1,
            stored([
                &[
                    0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
                ],
                &[],
                &[],
                &[],
                &[],
                &[],
            ]),
        ),
        (
            "address 10th byte 2",
            1,
            stored([
                &[
                    0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
                ],
                &[],
                &[],
                &[],
                &[],
                &[],
            ]),
        ),
        (
            "len0 coded2",
            0,
            with_stream(3, huffman(&[(0, 1)], 0, &[0, 0])),
        ),
        (
            "len0 coded0 table sym0 len1",
            0,
            with_stream(3, huffman(&[(0, 1)], 0, &[])),
        ),
        (
            "len1 coded2",
            0,
            with_stream(3, huffman(&[(0, 1)], 1, &[0, 0])),
        ),
        (
            "ctrl len8 coded1",
            4,
            with_stream(0, huffman(&[(0, 1)], 8, &[0])),
        ),
        (
            "ctrl len8 coded2",
            4,
            with_stream(0, huffman(&[(0, 1)], 8, &[0, 0])),
        ),
        (
            "ctrl len4 trailing bit",
            2,
            with_stream(0, huffman(&[(0, 1)], 4, &[0x80])),
        ),
        (
            "ctrl len4 table len 15 unused",
            2,
            with_stream(0, huffman(&[(0, 1), (9, 15)], 4, &[0x00])),
        ),
    ];
    let mut disagreements = Vec::new();
    for (name, ops, p) in cases {
        let (lib, reference) = both(E, ops, &p);
        println!(
            "{name}: library {:?}, reference {}",
            lib.as_ref().map(|_| "accepts"),
            if reference.is_some() {
                "accepts"
            } else {
                "refuses"
            }
        );
        if lib.is_ok() != reference.is_some() {
            disagreements.push(name);
        }
    }
    assert!(disagreements.is_empty(), "disagree on {disagreements:?}");
}

#[test]
fn lz4_block_must_end_with_literals() {
    // COMPRESSED lz4 page 0: 1 literal 'A', then a match of 511 at offset 1; no final literals.
    // lz4_flex may or may not accept such a block in a plain payload; an entropy-coded payload
    // cannot carry it (the spec's rebuild refuses a block ending after a match).
    // token 0x1F: 1 literal, match len 15+4+ext; 511 = 4 + 15 + 255 + 237
    let block = [0x1f, b'A', 0x01, 0x00, 255, 237];
    let mut s: [Vec<u8>; 6] = Default::default();
    s[0].extend_from_slice(&[0x12, 0x00, block.len() as u8]);
    s[1].push(0x1f);
    s[2].push(b'A');
    s[3].push(1);
    s[4].push(0);
    s[0].extend_from_slice(&[255, 237]);
    let p = stored([&s[0], &s[1], &s[2], &s[3], &s[4], &s[5]]);
    assert!(reference_unentropy(&p).is_none());
    let (lib, _) = both(E, 1, &p);
    assert!(
        lib.is_err(),
        "library accepts an lz4 block ending with a match in an ENTROPY frame"
    );
    let mut plain = vec![0x12, 0x00, block.len() as u8];
    plain.extend_from_slice(&block);
    let (lib, reference) = both(0, 1, &plain);
    println!(
        "plain lz4 block ending with a match: library {:?}, reference {}",
        lib.map(|_| ()),
        reference.is_some()
    );
}

/// Canonical codes of `lengths` (value -> (code, length)), as the spec defines them; the test's own
/// encoder.
fn canonical(lengths: &[u8; 256]) -> Vec<(u32, u8)> {
    let mut count = [0u32; 12];
    for &l in lengths.iter().filter(|&&l| l > 0) {
        count[l as usize] += 1;
    }
    let mut next = [0u32; 12];
    let mut code = 0;
    for bits in 1..12 {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    let mut out = vec![(0, 0); 256];
    for v in 0..256 {
        let l = lengths[v] as usize;
        if l > 0 {
            out[v] = (next[l], l as u8);
            next[l] += 1;
        }
    }
    out
}

/// Writes codes most significant bit first into a least-significant-bit-first byte string.
fn encode(codes: &[(u32, u8)], symbols: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bit = 0usize;
    for &s in symbols {
        let (c, l) = codes[s as usize];
        for i in (0..l).rev() {
            if bit.is_multiple_of(8) {
                out.push(0);
            }
            *out.last_mut().unwrap() |= (((c >> i) & 1) as u8) << (bit % 8);
            bit += 1;
        }
    }
    out
}

/// Random code tables (full and listed), random pages coded with them into LITERALS under RAW ops,
/// then random damage to the coded bytes, the table or the lengths: the two decoders agree on
/// every one.
#[test]
fn random_huffman_literals_agree() {
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let (mut accepted, mut refused) = (0, 0);
    // (fewer rounds without optimisation: the library's debug build is slow)
    let rounds = if cfg!(debug_assertions) { 800 } else { 5000 };
    for round in 0..rounds {
        // a random prefix code: lengths 1..=11 for a random set of values, fixed up to satisfy Kraft
        let mut lengths = [0u8; 256];
        let present = 1 + rnd(256) as usize;
        for _ in 0..present {
            lengths[rnd(256) as usize] = 1 + rnd(11) as u8;
        }
        loop {
            let kraft: u32 = lengths
                .iter()
                .filter(|&&l| l > 0)
                .map(|&l| 1u32 << (11 - l))
                .sum();
            if kraft <= 1 << 11 {
                break;
            }
            let v = rnd(256) as usize;
            if lengths[v] > 0 && lengths[v] < 11 {
                lengths[v] += 1;
            }
        }
        let alphabet: Vec<u8> = (0..=255u8).filter(|&v| lengths[v as usize] > 0).collect();
        let pages = 1 + rnd(3) as usize;
        let symbols: Vec<u8> = (0..pages * PS)
            .map(|_| alphabet[rnd(alphabet.len() as u64) as usize])
            .collect();
        let codes = canonical(&lengths);
        let mut coded = encode(&codes, &symbols);
        let mut len = symbols.len() as u64;
        let mut lengths_w = lengths;
        // damage, most of the time
        match rnd(8) {
            0 => {}
            1 => {
                let i = rnd(coded.len() as u64) as usize;
                coded[i] ^= 1 << rnd(8);
            }
            2 => {
                coded.pop();
            }
            3 => coded.push(rnd(2) as u8),
            4 => len -= 1 + rnd(3),
            5 => len += 1 + rnd(3),
            6 => {
                let v = rnd(256) as usize;
                lengths_w[v] = rnd(13) as u8;
            }
            _ => {
                let last = coded.len() - 1;
                coded[last] |= 0x80;
            }
        }
        let mut lit = Vec::new();
        if round % 2 == 0 {
            lit.push(1);
            varint(len, &mut lit);
            let mut table = [0u8; 128];
            for v in 0..256 {
                table[v / 2] |= lengths_w[v] << (4 * (v % 2));
            }
            lit.extend_from_slice(&table);
        } else {
            // listed: the values with a nonzero length (a damaged length 0 drops the value)
            lit.push(2);
            varint(len, &mut lit);
            let listed: Vec<usize> = (0..256).filter(|&v| lengths_w[v] > 0).collect();
            let mut bm = [0u8; 32];
            for &v in &listed {
                bm[v / 8] |= 1 << (v % 8);
            }
            lit.extend_from_slice(&bm);
            let mut nib = vec![0u8; listed.len().div_ceil(2)];
            for (i, &v) in listed.iter().enumerate() {
                nib[i / 2] |= lengths_w[v] << (4 * (i % 2));
            }
            lit.extend_from_slice(&nib);
        }
        varint(coded.len() as u64, &mut lit);
        lit.extend_from_slice(&coded);
        // CTRL: RAW ops on pages 0, 1, 2
        let ctrl: Vec<u8> = (0..pages).flat_map(|_| [0x01, 0x00]).collect();
        let mut p = vec![0];
        varint(ctrl.len() as u64, &mut p);
        p.extend_from_slice(&ctrl);
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&lit);
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        match agree(E, pages as u32, &p) {
            Ok(()) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(
        accepted > rounds / 10 && refused > rounds / 10,
        "{accepted} accepted, {refused} refused"
    );
}
