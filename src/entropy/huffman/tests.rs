//! Huffman coder: round trips on every shape of distribution, the length limit, the decoder's
//! refusals.

use super::*;
use crate::stages::scan::tests::Rng;

fn round_trip(data: &[u8]) -> Vec<u8> {
    let lens = code_lengths(&histogram(data));
    let mut coded = Vec::new();
    encode(data, &lens, &mut coded);
    assert_eq!(
        coded.len() as u64,
        coded_bits(&histogram(data), &lens).div_ceil(8),
        "encode writes exactly ceil(bits / 8) bytes"
    );
    let packed = pack_lengths(&lens);
    assert_eq!(unpack_lengths(&packed), lens);
    let mut back = vec![0u8; data.len()];
    if !data.is_empty() {
        Decoder::new(&lens)
            .unwrap()
            .decode(&coded, &mut back)
            .unwrap();
    }
    assert!(back == data);
    coded
}

/// Kraft sum of the lengths in units of 2^-MAX_BITS.
fn kraft(lens: &Lengths) -> u32 {
    lens.iter()
        .filter(|&&l| l > 0)
        .map(|&l| 1u32 << (MAX_BITS - l as u32))
        .sum()
}

/// `n` bytes below `alphabet`, each the least of `1 + skew` draws: flat for skew 0, ever more
/// skewed toward 0 above.
fn skewed_bytes(rng: &mut Rng, n: usize, alphabet: usize, skew: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            let mut v = rng.below(alphabet);
            for _ in 0..skew {
                v = v.min(rng.below(alphabet));
            }
            v as u8
        })
        .collect()
}

#[test]
fn lengths_form_a_complete_code_within_the_limit() {
    let mut rng = Rng(71);
    for it in 0..300 {
        let mut counts = [0u32; 256];
        let used = 2 + rng.below(255);
        for _ in 0..used {
            counts[rng.below(256)] = match it % 3 {
                0 => 1 + rng.below(10) as u32,
                1 => 1 + rng.below(1_000_000) as u32,
                _ => 1u32 << rng.below(31),
            };
        }
        let lens = code_lengths(&counts);
        for s in 0..256 {
            assert_eq!(
                counts[s] > 0,
                lens[s] > 0,
                "exactly the occurring values have codes"
            );
            assert!(lens[s] as u32 <= MAX_BITS);
        }
        let occurring = counts.iter().filter(|&&c| c > 0).count();
        if occurring >= 2 {
            assert_eq!(kraft(&lens), 1 << MAX_BITS, "complete code, it {it}");
        }
    }
}

#[test]
fn fibonacci_counts_are_limited_to_max_bits() {
    // Fibonacci weights give the deepest Huffman tree: unlimited, 40 symbols would need 39 bits.
    let mut counts = [0u32; 256];
    let (mut a, mut b) = (1u32, 1u32);
    for c in counts.iter_mut().take(40) {
        *c = a;
        (a, b) = (b, a.saturating_add(b));
    }
    let lens = code_lengths(&counts);
    assert_eq!(lens.iter().map(|&l| l as u32).max(), Some(MAX_BITS));
    assert_eq!(kraft(&lens), 1 << MAX_BITS);
    let data: Vec<u8> = (0..40u8)
        .flat_map(|s| std::iter::repeat_n(s, counts[s as usize].min(5000) as usize))
        .collect();
    round_trip(&data);
}

#[test]
fn huffman_is_optimal_on_a_small_known_case() {
    // counts 1,1,2,4: optimal lengths 3,3,2,1
    let mut counts = [0u32; 256];
    counts[b'a' as usize] = 1;
    counts[b'b' as usize] = 1;
    counts[b'c' as usize] = 2;
    counts[b'd' as usize] = 4;
    let lens = code_lengths(&counts);
    assert_eq!(
        (
            lens[b'a' as usize],
            lens[b'b' as usize],
            lens[b'c' as usize],
            lens[b'd' as usize]
        ),
        (3, 3, 2, 1)
    );
    assert_eq!(round_trip(b"abccdddd").len(), 2, "14 bits");
}

#[test]
fn round_trips_on_every_shape_and_length() {
    let mut rng = Rng(72);
    round_trip(b"");
    round_trip(b"x");
    round_trip(&[7u8; 1000]);
    let all: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    assert!(round_trip(&all).len() == 4096, "uniform bytes: 8 bits each");
    for it in 0..400 {
        let n = match it % 4 {
            0 => rng.below(20),
            1 => rng.below(5000),
            2 => 4096,
            _ => 65536,
        };
        let alphabet = 1 + rng.below(256);
        let skew = rng.below(4);
        let data = skewed_bytes(&mut rng, n, alphabet, skew);
        round_trip(&data);
    }
}

#[test]
fn one_symbol_costs_one_bit() {
    let coded = round_trip(&[0xabu8; 800]);
    assert_eq!(coded.len(), 100);
}

#[test]
fn decoder_refuses_bad_tables() {
    let mut lens = [0u8; 256];
    assert_eq!(Decoder::new(&lens).err(), Some(HuffmanError::Empty));
    lens[0] = 12;
    assert_eq!(Decoder::new(&lens).err(), Some(HuffmanError::LengthTooLong));
    lens = [0u8; 256];
    (lens[0], lens[1], lens[2]) = (1, 1, 1);
    assert_eq!(
        Decoder::new(&lens).err(),
        Some(HuffmanError::Oversubscribed)
    );
    lens = [8u8; 256];
    lens[9] = 7;
    assert_eq!(
        Decoder::new(&lens).err(),
        Some(HuffmanError::Oversubscribed)
    );
    // incomplete is fine
    lens = [0u8; 256];
    (lens[0], lens[1]) = (1, 2);
    assert!(Decoder::new(&lens).is_ok());
}

#[test]
fn decoder_refuses_unused_codes_and_wrong_lengths() {
    // incomplete code: 'a' = 0 (1 bit), 'b' = 10 (2 bits), 11 is no code
    let mut lens = [0u8; 256];
    (lens[b'a' as usize], lens[b'b' as usize]) = (1, 2);
    let d = Decoder::new(&lens).unwrap();
    let mut out = [0u8; 4];
    // bits LSB first: 0, 01 (reversed 10), then 11 -> bad
    assert_eq!(
        d.decode(&[0b0001_1010], &mut out),
        Err(HuffmanError::BadCode)
    );
    let mut coded = Vec::new();
    encode(b"abba", &lens, &mut coded);
    d.decode(&coded, &mut out).unwrap();
    assert_eq!(&out, b"abba");
    // a trailing byte too many, or one too few
    let mut longer = coded.clone();
    longer.push(0);
    assert_eq!(
        d.decode(&longer, &mut out),
        Err(HuffmanError::LengthMismatch)
    );
    // more symbols than the bits hold
    let mut out8 = [0u8; 8];
    assert_eq!(
        d.decode(&coded, &mut out8),
        Err(HuffmanError::LengthMismatch)
    );
    let mut out2 = [0u8; 2];
    assert_eq!(
        d.decode(&coded, &mut out2),
        Err(HuffmanError::LengthMismatch)
    );
}

#[test]
fn decoder_survives_random_garbage() {
    let mut rng = Rng(73);
    for _ in 0..3000 {
        let mut packed = [0u8; TABLE_BYTES];
        rng.fill(&mut packed);
        // a valid-looking table now and then
        if rng.below(2) == 0 {
            let alphabet = 1 + rng.below(255);
            let data: Vec<u8> = (0..200).map(|_| rng.below(alphabet) as u8).collect();
            packed = pack_lengths(&code_lengths(&histogram(&data)));
        }
        let Ok(d) = Decoder::new(&unpack_lengths(&packed)) else {
            continue;
        };
        let mut src = vec![0u8; rng.below(64)];
        rng.fill(&mut src);
        let mut out = vec![0u8; rng.below(600)];
        let _ = d.decode(&src, &mut out);
    }
}

/// With a complete code (the fast path), decoding a symbol count other than the coded one is
/// refused unless the difference hides in the last byte's padding: fewer symbols whose bits end
/// in the same byte (the rest then fails the zero-padding check unless it is zero bits), or up to
/// 7 more symbols read from zero padding bits. Either way the symbols decoded agree with the data.
#[test]
fn complete_codes_refuse_wrong_symbol_counts() {
    let mut rng = Rng(74);
    let data: Vec<u8> = (0..300)
        .map(|_| rng.below(4).min(rng.below(4)) as u8)
        .collect();
    let lens = code_lengths(&histogram(&data));
    assert_eq!(kraft(&lens), 1 << MAX_BITS, "complete");
    let mut coded = Vec::new();
    encode(&data, &lens, &mut coded);
    let d = Decoder::new(&lens).unwrap();
    let mut accepted = 0;
    for n in 0..data.len() * 2 {
        let mut out = vec![0u8; n];
        let r = d.decode(&coded, &mut out);
        if n == data.len() {
            r.unwrap();
            assert!(out == data);
        } else if r.is_ok() {
            accepted += 1;
            let m = n.min(data.len());
            assert!(out[..m] == data[..m], "n {n}");
            assert!(n + 8 > data.len() && n < data.len() + 8, "n {n}");
        }
    }
    assert!(accepted <= 14);
}

/// Decoding two streams at once gives exactly what decoding each alone gives: the same symbols
/// and the same verdict, on valid streams of every length mix and on damaged ones.
#[test]
fn decode_pair_equals_two_single_decodes() {
    let mut rng = Rng(75);
    for it in 0..600 {
        let make = |rng: &mut Rng| {
            let n = match rng.below(3) {
                0 => rng.below(12),
                1 => rng.below(300),
                _ => 2000 + rng.below(3000),
            };
            let alphabet = 1 + rng.below(200);
            let data: Vec<u8> = (0..n)
                .map(|_| rng.below(alphabet).min(rng.below(alphabet)) as u8)
                .collect();
            let lens = if data.is_empty() {
                let mut l = [0u8; 256];
                l[0] = 1;
                l
            } else {
                code_lengths(&histogram(&data))
            };
            let mut coded = Vec::new();
            encode(&data, &lens, &mut coded);
            // damage one in three: a flipped bit, a byte short, or one symbol too many asked
            let mut want = data.len();
            match rng.below(6) {
                0 if !coded.is_empty() => {
                    let i = rng.below(coded.len());
                    coded[i] ^= 1 << rng.below(8);
                }
                1 if !coded.is_empty() => {
                    coded.pop();
                }
                2 => want += 1,
                _ => {}
            }
            (Decoder::new(&lens).unwrap(), coded, want)
        };
        let (da, ca, na) = make(&mut rng);
        let (db, cb, nb) = make(&mut rng);
        let (mut oa, mut ob) = (vec![0u8; na], vec![0u8; nb]);
        let (ra, rb) = decode_pair((&da, &ca, &mut oa), (&db, &cb, &mut ob));
        let (mut sa, mut sb) = (vec![0u8; na], vec![0u8; nb]);
        assert_eq!(ra, da.decode(&ca, &mut sa), "it {it}");
        assert_eq!(rb, db.decode(&cb, &mut sb), "it {it}");
        if ra.is_ok() {
            assert!(oa == sa);
        }
        if rb.is_ok() {
            assert!(ob == sb);
        }
    }
}

/// The coded bits, written one at a time: what [`encode`] must write, byte for byte.
fn encode_bit_by_bit(data: &[u8], lens: &Lengths) -> Vec<u8> {
    let codes = canonical_codes(lens);
    let mut out = Vec::new();
    let mut nbits = 0usize;
    for &s in data {
        for b in 0..lens[s as usize] {
            if nbits.is_multiple_of(8) {
                out.push(0);
            }
            out[nbits / 8] |= ((codes[s as usize] >> b) as u8 & 1) << (nbits % 8);
            nbits += 1;
        }
    }
    out
}

#[test]
fn encode_writes_the_bits_of_a_bit_by_bit_writer() {
    let mut rng = Rng(73);
    // Fibonacci counts: codes of every length up to MAX_BITS, so that runs of the longest codes
    // fill the writer's 64-bit accumulator as far as it goes
    let mut fib = [0u32; 256];
    let (mut a, mut b) = (1u32, 1u32);
    for c in fib.iter_mut().take(40) {
        *c = a;
        (a, b) = (b, a.saturating_add(b));
    }
    let fib_lens = code_lengths(&fib);
    assert!((0..5).all(|s| fib_lens[s] as u32 >= MAX_BITS - 1));
    for it in 0..300 {
        let n = rng.below(if it % 2 == 0 { 40 } else { 3000 });
        let data: Vec<u8> = match it % 3 {
            0 => (0..n).map(|_| rng.below(40) as u8).collect(),
            1 => (0..n).map(|_| (rng.below(40) as u8).min(4)).collect(),
            _ => (0..n).map(|_| rng.below(1 + it) as u8).collect(),
        };
        let mut lens = code_lengths(&histogram(&data));
        if it % 3 < 2 {
            lens = fib_lens;
        }
        let mut coded = vec![0xee]; // appended after what is there
        encode(&data, &lens, &mut coded);
        assert_eq!(coded[0], 0xee);
        assert!(coded[1..] == encode_bit_by_bit(&data, &lens), "it {it}");
    }
}

#[test]
#[should_panic(expected = "byte 0x62 has no code")]
fn encode_panics_on_a_byte_without_a_code() {
    let lens = code_lengths(&histogram(b"aaac"));
    encode(b"aaabc", &lens, &mut Vec::new());
}

/// The two-symbol table decodes exactly what the one-symbol table decodes: the same symbols and
/// the same verdict, on valid streams of every length around the fast path's margins and on
/// damaged ones, for skewed and flat codes (pairs are common in the first, rare in the second).
#[test]
fn the_two_symbol_table_decodes_what_the_one_symbol_table_decodes() {
    let mut rng = Rng(76);
    for it in 0..800 {
        let n = match rng.below(3) {
            0 => 1 + rng.below(40),
            1 => 1 + rng.below(2000),
            _ => 8000 + rng.below(12000),
        };
        let alphabet = 2 + rng.below(255);
        let skew = rng.below(4);
        let data = skewed_bytes(&mut rng, n, alphabet, skew);
        let lens = code_lengths(&histogram(&data));
        let mut coded = Vec::new();
        encode(&data, &lens, &mut coded);
        let mut want = data.len();
        let damage = rng.below(6);
        match damage {
            0 => {
                let i = rng.below(coded.len());
                coded[i] ^= 1 << rng.below(8);
            }
            1 => {
                coded.pop();
            }
            2 => want += 1 + rng.below(3),
            3 => want -= 1.min(want - 1),
            _ => {}
        }
        let mut paired = Decoder::new(&lens).unwrap();
        paired.set_for(&lens, usize::MAX).unwrap();
        let mut single = Decoder::new(&lens).unwrap();
        single.set_for(&lens, 0).unwrap();
        assert!(!single.paired);
        assert_eq!(paired.paired, paired.complete, "it {it}");
        let (mut a, mut b) = (vec![0u8; want], vec![0u8; want]);
        let (ra, rb) = (paired.decode(&coded, &mut a), single.decode(&coded, &mut b));
        assert_eq!(ra, rb, "it {it}");
        if ra.is_ok() {
            assert!(a == b, "it {it}");
            if damage > 3 {
                assert!(a == data, "it {it}");
            }
        }
    }
}

/// Each two-symbol entry holds the symbols a bit-by-bit reading of the canonical code finds
/// at the start of its pattern: the first, and the second when its code ends within the
/// pattern's bits.
#[test]
fn two_symbol_entries_hold_what_a_bit_by_bit_reading_finds() {
    let mut rng = Rng(77);
    let mut pairs_seen = 0;
    for _ in 0..40 {
        // some values far more common than others: codes of 1 to 11 bits
        let alphabet = 2 + rng.below(255);
        let counts: [u32; 256] =
            std::array::from_fn(|s| if s < alphabet { 1 << rng.below(16) } else { 0 });
        let lens = code_lengths(&counts);
        let Ok(d) = Decoder::new(&lens) else { continue };
        if !d.complete {
            continue;
        }
        // the canonical codes as bit strings, first bit first
        let codes = canonical_codes(&lens);
        let read = |bits: &[u8]| -> Option<(u8, usize)> {
            (0..256).find_map(|s| {
                let l = lens[s] as usize;
                let hit = l > 0
                    && l <= bits.len()
                    && (0..l).all(|k| (codes[s] >> k) as u8 & 1 == bits[k]);
                hit.then_some((s as u8, l))
            })
        };
        for p in (0..1usize << MAX_BITS).step_by(7) {
            let bits: Vec<u8> = (0..MAX_BITS).map(|k| (p >> k) as u8 & 1).collect();
            let (s1, l1) = read(&bits).expect("a complete code decodes every pattern");
            let e = d.pairs[p];
            assert_eq!(e as u8, s1);
            match read(&bits[l1..]) {
                Some((s2, l2)) => {
                    pairs_seen += 1;
                    assert_eq!((e >> 8) as u8, s2);
                    assert_eq!((e >> 16 & 0xff, e >> 24), ((l1 + l2) as u32, 2));
                }
                None => assert_eq!((e >> 16 & 0xff, e >> 24), (l1 as u32, 1)),
            }
        }
    }
    assert!(pairs_seen > 1000);
}

/// A stream coded in parts is, part for part, what `encode` writes for each part alone;
/// `part_bytes` gives each part's length exactly, and the parts' counts add up to the stream's.
#[test]
fn each_part_is_the_part_coded_alone() {
    let mut rng = Rng(78);
    for it in 0..60 {
        let n = PARTS_MIN_SYMBOLS + rng.below(3 * PARTS_MIN_SYMBOLS);
        let alphabet = 1 + rng.below(256);
        let data: Vec<u8> = (0..n)
            .map(|_| rng.below(alphabet).min(rng.below(alphabet)) as u8)
            .collect();
        let counts = histogram(&data);
        let lens = code_lengths(&counts);
        let hists = part_histograms(&data);
        let sum: [u32; 256] = std::array::from_fn(|v| hists.iter().map(|h| h[v]).sum());
        assert_eq!(sum, counts);
        let bytes = part_bytes(&hists, &lens);
        let mut coded = vec![0xee; 3]; // appended after what is there
        encode_parts(&data, &lens, bytes, &mut coded);
        assert_eq!(&coded[..3], &[0xee; 3]);
        let (mut at, mut sym) = (3, 0);
        for (k, m) in part_lens(n).into_iter().enumerate() {
            assert!(m > 0);
            let mut alone = Vec::new();
            encode(&data[sym..sym + m], &lens, &mut alone);
            assert_eq!(bytes[k], alone.len(), "it {it} part {k}");
            assert!(coded[at..at + bytes[k]] == alone[..], "it {it} part {k}");
            (at, sym) = (at + bytes[k], sym + m);
        }
        assert_eq!((at, sym), (coded.len(), n));
    }
}

/// Decoding four parts side by side gives what decoding each part alone gives: the same symbols
/// and the same verdict, on valid parts and on damaged ones (a flipped bit, a byte short or too
/// many, in any part).
///
/// Half the decoders have no two-symbol table, so both forms of the unchecked batch steps run;
/// under Miri (which checks those steps' loads and stores) a few streams of the shortest
/// lengths.
#[test]
fn decode_parts_equals_each_part_decoded_alone() {
    let mut rng = Rng(79);
    let (its, spread) = if cfg!(miri) {
        (4, 64)
    } else {
        (300, 2 * PARTS_MIN_SYMBOLS)
    };
    for it in 0..its {
        let n = PARTS_MIN_SYMBOLS + rng.below(spread);
        let alphabet = 1 + rng.below(256);
        let skew = rng.below(3);
        let data = skewed_bytes(&mut rng, n, alphabet, skew);
        let counts = histogram(&data);
        let lens = code_lengths(&counts);
        let bytes = part_bytes(&part_histograms(&data), &lens);
        let mut coded = Vec::new();
        encode_parts(&data, &lens, bytes, &mut coded);
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut at = 0;
        for b in bytes {
            parts.push(coded[at..at + b].to_vec());
            at += b;
        }
        let k = rng.below(PARTS);
        let damaged = rng.below(2) == 0;
        if damaged {
            match rng.below(3) {
                0 => {
                    let i = rng.below(parts[k].len());
                    parts[k][i] ^= 1 << rng.below(8);
                }
                1 => {
                    parts[k].pop();
                }
                _ => parts[k].push(rng.below(256) as u8),
            }
        }
        let mut d = Decoder::new(&lens).unwrap();
        if it % 2 == 1 {
            // one symbol a lookup
            d.set_for(&lens, 0).unwrap();
        }
        let mut out = vec![0u8; n];
        let r = decode_parts(&d, std::array::from_fn(|k| &parts[k][..]), &mut out);
        // each part alone, in order; the first refusal is the verdict
        let mut alone = vec![0u8; n];
        let mut want = Ok(());
        let mut sym = 0;
        for (k, m) in part_lens(n).into_iter().enumerate() {
            let rk = d.decode(&parts[k], &mut alone[sym..sym + m]);
            if want.is_ok() {
                want = rk;
            }
            sym += m;
        }
        assert_eq!(r, want, "it {it}");
        if r.is_ok() {
            assert!(out == alone, "it {it}");
            if !damaged {
                assert!(out == data, "it {it}");
            }
        }
    }
}

/// `steps_within` counts the steps, each taken at its largest (`STEP_BITS` bits,
/// `STEP_SYMBOLS` symbols), whose 8-byte load lies inside the coded bytes and whose writes lie
/// inside the output, and not one more: the batches of unchecked steps rely on it.
#[test]
fn steps_within_counts_the_steps_that_stay_inside_and_no_more() {
    use super::parts::{steps_within, STEP_BITS, STEP_SYMBOLS};
    let inside = |src_len: usize, out_len: usize, bitpos: u64, done: usize| {
        (bitpos / 8) as usize + 8 <= src_len && done + STEP_SYMBOLS <= out_len
    };
    let mut rng = Rng(80);
    for _ in 0..if cfg!(miri) { 500 } else { 20_000 } {
        let src_len = rng.below(200);
        let out_len = rng.below(300);
        let bitpos = rng.below(8 * (src_len + 2)) as u64;
        let done = rng.below(out_len + 12);
        let c = super::Cursor { bitpos, done };
        let steps = steps_within(src_len, out_len, c);
        for i in 0..=steps {
            let (b, d) = (bitpos + i as u64 * STEP_BITS, done + i * STEP_SYMBOLS);
            assert_eq!(
                inside(src_len, out_len, b, d),
                i < steps,
                "{src_len} bytes, {out_len} symbols, from bit {bitpos} and symbol {done}: step {i} of {steps}"
            );
        }
    }
}

/// Counts of 2 to 256 byte values (fewer where a value is drawn twice), steep (deep optimal
/// trees) or gentle by `shape % 4`.
fn random_counts(rng: &mut Rng, shape: usize) -> [u32; 256] {
    let used = 2 + rng.below(255);
    let mut counts = [0u32; 256];
    for _ in 0..used {
        counts[rng.below(256)] = match shape % 4 {
            0 => 1u32 << rng.below(28),
            1 => 1 + (rng.below(1 << 20) as u32 >> rng.below(20)),
            2 => 1 + rng.below(50) as u32,
            _ => 1 + (rng.below(1000) * rng.below(1000) * rng.below(1000)) as u32,
        };
    }
    counts
}

/// Lengths limited by halving the counts until the optimal code fits (the naive method): the
/// reference the limited code is measured against.
fn lengths_by_halving(counts: &[u32; 256]) -> Lengths {
    let mut freq: Vec<u64> = counts.iter().map(|&c| c as u64).collect();
    loop {
        let mut syms: Vec<u64> = (0..256)
            .filter(|&s| freq[s] > 0)
            .map(|s| freq[s] << 8 | s as u64)
            .collect();
        syms.sort_unstable();
        let depth = leaf_depths(&syms);
        if depth[..syms.len()].iter().all(|&d| d <= MAX_BITS) {
            let mut lens = [0u8; 256];
            for (s, &d) in syms.iter().zip(&depth) {
                lens[(s & 0xff) as usize] = d as u8;
            }
            return lens;
        }
        for f in freq.iter_mut().filter(|f| **f > 0) {
            *f = (*f >> 1) | 1;
        }
    }
}

/// Where the optimal code is deeper than the limit, the limited code is complete, within the
/// limit, costs at least the unlimited optimum, and costs no more than limiting by halving the
/// counts (which is what the encoder did before); where it is not deeper, it is the optimal one.
#[test]
fn limited_lengths_cost_no_more_than_halving_the_counts() {
    let mut rng = Rng(80);
    let (mut limited, mut better) = (0, 0);
    for it in 0..400 {
        let counts = random_counts(&mut rng, it);
        let lens = code_lengths(&counts);
        let naive = lengths_by_halving(&counts);
        let mut syms: Vec<u64> = (0..256)
            .filter(|&s| counts[s] > 0)
            .map(|s| (counts[s] as u64) << 8 | s as u64)
            .collect();
        syms.sort_unstable();
        let depth = leaf_depths(&syms);
        let optimum: u64 = syms
            .iter()
            .zip(&depth)
            .map(|(s, &d)| (s >> 8) * d as u64)
            .sum();
        let bits = coded_bits(&counts, &lens);
        if depth[..syms.len()].iter().any(|&d| d > MAX_BITS) {
            limited += 1;
            assert!(lens.iter().all(|&l| l as u32 <= MAX_BITS));
            if syms.len() >= 2 {
                assert_eq!(kraft(&lens), 1 << MAX_BITS, "complete, it {it}");
            }
            assert!(bits >= optimum, "it {it}");
            let naive_bits = coded_bits(&counts, &naive);
            assert!(bits <= naive_bits, "it {it}: {bits} > {naive_bits}");
            better += (bits < naive_bits) as usize;
        } else {
            assert_eq!(lens, naive, "it {it}: the optimal code");
            assert_eq!(bits, optimum);
        }
    }
    assert!(
        limited > 100 && better > 10,
        "{limited} limited, {better} better"
    );
}

/// Huffman depths by building the tree node by node (two queues: the sorted leaves and the nodes
/// in the order made, a leaf first on ties) and walking parent links: the reference for the
/// in-place `leaf_depths`.
fn leaf_depths_by_tree(syms: &[u64]) -> Vec<u32> {
    let n = syms.len();
    let mut weight: Vec<u64> = syms.iter().map(|s| s >> 8).collect();
    let mut parent = vec![usize::MAX; 2 * n];
    let (mut leaf, mut inner) = (0, n);
    for _ in 1..n {
        let mut pick = |weight: &Vec<u64>| {
            if leaf < n && (inner >= weight.len() || weight[leaf] <= weight[inner]) {
                leaf += 1;
                leaf - 1
            } else {
                inner += 1;
                inner - 1
            }
        };
        let a = pick(&weight);
        let b = pick(&weight);
        weight.push(weight[a] + weight[b]);
        parent[a] = weight.len() - 1;
        parent[b] = weight.len() - 1;
    }
    let mut depth = vec![0u32; weight.len()];
    for i in (0..weight.len().saturating_sub(1)).rev() {
        depth[i] = depth[parent[i]] + 1;
    }
    depth.truncate(n);
    depth
}

/// Package-merge with every list kept whole (items as (weight, is a leaf)): the reference for
/// `limited_depths`' buffers and leaf bits.
fn limited_depths_by_lists(syms: &[u64], limit: u32) -> Vec<u32> {
    let n = syms.len();
    let leaves: Vec<u64> = syms.iter().map(|s| s >> 8).collect();
    let mut lists: Vec<Vec<(u64, bool)>> = vec![leaves.iter().map(|&w| (w, true)).collect()];
    for _ in 1..limit {
        let prev = lists.last().unwrap();
        let packages: Vec<u64> = prev.chunks_exact(2).map(|p| p[0].0 + p[1].0).collect();
        let mut cur = Vec::new();
        let (mut a, mut b) = (0, 0);
        while a < n || b < packages.len() {
            if b == packages.len() || (a < n && leaves[a] <= packages[b]) {
                cur.push((leaves[a], true));
                a += 1;
            } else {
                cur.push((packages[b], false));
                b += 1;
            }
        }
        lists.push(cur);
    }
    let mut depth = vec![0u32; n];
    let mut take = 2 * n - 2;
    for list in lists.iter().rev() {
        let leaves = list[..take].iter().filter(|i| i.1).count();
        for d in &mut depth[..leaves] {
            *d += 1;
        }
        take = 2 * (take - leaves);
    }
    depth
}

/// Sorted leaves (weight << 8 | value) with many equal weights, flat and steep.
fn random_leaves(rng: &mut Rng, it: usize) -> Vec<u64> {
    let n = 2 + rng.below(255);
    let mut syms: Vec<u64> = (0..n)
        .map(|s| {
            let w = match it % 4 {
                0 => 1 + rng.below(4) as u64,
                1 => 1u64 << rng.below(30),
                2 => 1 + rng.below(1000) as u64,
                _ => 1 + (rng.below(1 << 20) as u64 >> rng.below(20)),
            };
            w << 8 | s as u64
        })
        .collect();
    syms.sort_unstable();
    syms
}

/// The in-place depths are those of the tree built node by node, leaf for leaf (ties included),
/// so the codes and the frames they make do not depend on which is used.
#[test]
fn in_place_depths_equal_the_tree_built_node_by_node() {
    let mut rng = Rng(81);
    for it in 0..2000 {
        let syms = random_leaves(&mut rng, it);
        let want = leaf_depths_by_tree(&syms);
        assert_eq!(&leaf_depths(&syms)[..syms.len()], &want[..], "it {it}");
    }
}

/// The package-merge over two buffers and leaf bits gives, leaf for leaf, the lengths of the
/// package-merge that keeps every list whole, at every limit from the fewest bits the leaves
/// need to [`MAX_BITS`].
#[test]
fn limited_depths_equal_package_merge_over_whole_lists() {
    let mut rng = Rng(82);
    let mut deep = 0;
    for it in 0..2000 {
        let syms = random_leaves(&mut rng, it);
        let fewest = syms.len().next_power_of_two().trailing_zeros().max(1);
        let limit = if it % 2 == 0 {
            MAX_BITS
        } else {
            fewest + rng.below((MAX_BITS - fewest + 1) as usize) as u32
        };
        deep += leaf_depths(&syms)[..syms.len()].iter().any(|&d| d > limit) as usize;
        let want = limited_depths_by_lists(&syms, limit);
        assert_eq!(
            &limited_depths(&syms, limit)[..syms.len()],
            &want[..],
            "it {it} limit {limit}"
        );
    }
    assert!(deep > 400, "{deep} trees deeper than their limit");
}

/// A code limited to `limit` bits is complete, no longer than the limit (or than the fewest
/// bits the occurring values need, where the limit is fewer), costs no less than the code
/// limited to one bit more, and at `MAX_BITS` is the code of `code_lengths`.
#[test]
fn codes_within_a_limit_are_complete_and_cost_more_the_lower_the_limit() {
    let mut rng = Rng(83);
    for it in 0..300 {
        let counts = random_counts(&mut rng, it);
        let values = counts.iter().filter(|&&c| c > 0).count();
        let fewest = values.next_power_of_two().trailing_zeros();
        assert_eq!(
            code_lengths_within(&counts, MAX_BITS),
            code_lengths(&counts)
        );
        let mut above = u64::MAX;
        for limit in (1..=MAX_BITS).rev() {
            let lens = code_lengths_within(&counts, limit);
            assert_eq!(
                kraft(&lens),
                1 << MAX_BITS,
                "it {it} limit {limit}: complete"
            );
            assert!(
                longest(&lens) <= limit.max(fewest),
                "it {it} limit {limit}: {} bits",
                longest(&lens)
            );
            let bits = coded_bits(&counts, &lens);
            if limit >= fewest && limit < MAX_BITS {
                assert!(bits >= above, "it {it} limit {limit}: {bits} < {above}");
            }
            above = bits;
        }
    }
}
