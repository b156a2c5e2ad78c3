//! Context-modelled literals: the encoder's contexts match the definition, frames with
//! dictionaries round trip when the decoder reads the same dictionaries, and damaged or lying
//! context streams are refused without a panic.

#[cfg(all(target_arch = "x86_64", not(miri)))]
use super::cluster::assign_avx2;
use super::cluster::{assign, assign_in};
use super::tables::{map_bits, map_len};
use super::*;
use crate::entropy::container::get_listed;
use crate::entropy::{
    EntropyDecoder, EntropyEncoder, EntropyError, Stream, MODE_CONTEXT, MODE_HUFFMAN,
    MODE_HUFFMAN_LISTED, MODE_STORED, STREAMS,
};
use crate::format::op;
use crate::format::varint;
use crate::lz4::PageLz;
use crate::stages::scan::tests::Rng;
use std::collections::HashMap;

const PS: usize = 4096;
const BS: usize = 256;

/// Heap-like content: 48-byte records (a fixed header, a counter, two pointer-like words, a few
/// small fields), so lz4 finds matches at the record stride with literals between them.
fn heap(rng: &mut Rng, buf: &mut [u8]) {
    for (i, r) in buf.chunks_mut(48).enumerate() {
        let mut rec = [0u8; 48];
        rec[..8].copy_from_slice(&0x0000_7f3a_1c00_0001u64.to_le_bytes());
        rec[8..12].copy_from_slice(&(i as u32 * 3).to_le_bytes());
        let ptr = 0x7f3a_1c00_0000u64 + (rng.below(1 << 20) as u64) * 8;
        rec[16..24].copy_from_slice(&ptr.to_le_bytes());
        rec[24..32].copy_from_slice(&(ptr + 48 * rng.below(4) as u64).to_le_bytes());
        for b in &mut rec[32..40] {
            *b = rng.below(16) as u8;
        }
        let n = r.len();
        r.copy_from_slice(&rec[..n]);
    }
}

/// `page` with a few records rewritten and a run moved.
fn edit(rng: &mut Rng, page: &mut [u8]) {
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(PS - 200);
        let n = 1 + rng.below(199);
        heap(rng, &mut page[at..at + n]);
    }
    if rng.below(2) == 0 {
        let (a, b) = (rng.below(PS / 2), rng.below(PS / 2));
        page.copy_within(a..a + PS / 4, b);
    }
}

/// A payload of DICT, COMPRESSED (lz4), BLOCKS (lz4 literals) and RAW ops over consecutive pages,
/// the contexts of its lz4 literals, and the dictionaries of its DICT ops by page number.
fn ctx_payload(rng: &mut Rng, ops: usize) -> (Vec<u8>, Vec<u16>, HashMap<u64, Vec<u8>>) {
    let mut lz = PageLz::new();
    let (mut p, mut ctx, mut dicts) = (Vec::new(), Vec::new(), HashMap::new());
    let mut block = vec![0u8; 2 * PS];
    for idx in 0..ops as u64 {
        let mut page = vec![0u8; PS];
        heap(rng, &mut page);
        let kind = match rng.below(8) {
            0 => op::RAW,
            1 => op::BLOCKS,
            2 | 3 => op::COMPRESSED,
            _ => op::DICT,
        };
        let tag = match kind {
            op::COMPRESSED | op::BLOCKS => kind | 1 << 4, // lz4
            k => k,
        };
        p.push(tag);
        varint::put(&mut p, 0); // the next page
        match kind {
            op::RAW => p.extend_from_slice(&page),
            op::DICT => {
                let old = page.clone();
                edit(rng, &mut page);
                let n = lz.compress_with_dict(&page, &old, &mut block).unwrap();
                varint::put(&mut p, n as u64);
                p.extend_from_slice(&block[..n]);
                lz4_literal_contexts(&block[..n], &old, &page, &mut ctx);
                dicts.insert(idx, old);
            }
            _ => {
                if kind == op::BLOCKS {
                    p.extend_from_slice(&[0xff; PS / BS / 4]); // every block a literal
                }
                let n = lz.compress(&page, &mut block).unwrap();
                varint::put(&mut p, n as u64);
                p.extend_from_slice(&block[..n]);
                lz4_literal_contexts(&block[..n], &[], &page, &mut ctx);
            }
        }
    }
    (p, ctx, dicts)
}

/// The mode byte of each stream of an entropy-coded payload.
fn modes(coded: &[u8]) -> [u8; STREAMS] {
    starts(coded).map(|at| coded[at])
}

/// Where each stream of an entropy-coded payload starts (its mode byte).
fn starts(coded: &[u8]) -> [usize; STREAMS] {
    let mut pos = 0;
    let mut m = [0usize; STREAMS];
    for (si, at) in m.iter_mut().enumerate() {
        *at = pos;
        let mode = coded[pos];
        pos += 1;
        let n = varint::get(coded, &mut pos).unwrap() as usize;
        match mode {
            MODE_STORED => {
                pos += n;
                continue;
            }
            MODE_HUFFMAN => pos += crate::entropy::huffman::TABLE_BYTES,
            MODE_HUFFMAN_LISTED => pos += get_listed(coded, pos).unwrap().1,
            MODE_CONTEXT => {
                ContextTables::default().read(coded, &mut pos).unwrap();
                if si == crate::entropy::Stream::Literals as usize {
                    // the first string's length (0: one string)
                    varint::get(coded, &mut pos).unwrap();
                }
            }
            _ => unreachable!(),
        }
        if mode != MODE_CONTEXT && n >= crate::entropy::huffman::PARTS_MIN_SYMBOLS {
            // the coded bytes of the first three parts
            for _ in 0..3 {
                varint::get(coded, &mut pos).unwrap();
            }
        }
        pos += varint::get(coded, &mut pos).unwrap() as usize;
    }
    assert_eq!(pos, coded.len());
    m
}

fn loader(dicts: &HashMap<u64, Vec<u8>>) -> impl FnMut(u64, &mut [u8]) -> bool + '_ {
    |idx, buf| match dicts.get(&idx) {
        Some(d) => {
            buf.copy_from_slice(d);
            true
        }
        None => false,
    }
}

/// The definition, on a decoded window: a literal's context is the byte its block's last match
/// offset points at (the dictionary's byte at its position before the first match, none
/// without a dictionary).
fn reference_contexts(block: &[u8], dict: &[u8], out: &[u8]) -> Vec<u16> {
    let window: Vec<u8> = dict.iter().chain(out).copied().collect();
    let mut ctx = Vec::new();
    let mut rep = if dict.is_empty() {
        None
    } else {
        Some(dict.len())
    };
    let (mut i, mut p) = (0, 0);
    let ext = |i: &mut usize| {
        let mut n = 0;
        loop {
            let b = block[*i];
            *i += 1;
            n += b as usize;
            if b != 255 {
                return n;
            }
        }
    };
    loop {
        let t = block[i];
        i += 1;
        let mut l = (t >> 4) as usize;
        if l == 15 {
            l += ext(&mut i);
        }
        for _ in 0..l {
            ctx.push(rep.map_or(NO_CONTEXT, |d| window[dict.len() + p - d] as u16));
            p += 1;
        }
        i += l;
        if i == block.len() {
            return ctx;
        }
        let d = block[i] as usize | (block[i + 1] as usize) << 8;
        i += 2;
        let mut m = (t & 15) as usize + 4;
        if t & 15 == 15 {
            m += ext(&mut i);
        }
        rep = Some(d);
        p += m;
    }
}

#[test]
fn the_encoders_contexts_are_the_match_bytes() {
    let mut rng = Rng(91);
    let mut lz = PageLz::new();
    let mut block = vec![0u8; 2 * PS];
    let rounds = if cfg!(miri) { 4 } else { 200 };
    for round in 0..rounds {
        let mut old = vec![0u8; PS];
        heap(&mut rng, &mut old);
        let mut page = old.clone();
        edit(&mut rng, &mut page);
        if round % 2 == 1 {
            // long literal runs, some of them (after a match into the old page) read partly
            // from the old page and partly from the new one
            rng.fill(&mut page);
            for _ in 0..8 {
                let (from, to) = (rng.below(PS - 64), rng.below(PS - 64));
                let len = 8 + rng.below(56);
                page[to..to + len].copy_from_slice(&old[from..from + len]);
            }
        }
        for dict in [&old[..], &[]] {
            let n = lz.compress_with_dict(&page, dict, &mut block).unwrap();
            let mut ctx = vec![7]; // appended to, not replaced
            lz4_literal_contexts(&block[..n], dict, &page, &mut ctx);
            assert_eq!(ctx[0], 7);
            let want = reference_contexts(&block[..n], dict, &page);
            assert_eq!(ctx[1..], want);
            // the slice form, over a buffer holding garbage, writes the same at its start
            let mut buf = vec![0xabcd; PS + CONTEXT_SLACK];
            let k = lz4_literal_contexts_into(&block[..n], dict, &page, &mut buf);
            assert_eq!(buf[..k], want);
        }
    }
}

#[test]
fn context_modelled_payloads_round_trip_with_their_dictionaries() {
    let mut rng = Rng(92);
    let mut ee = EntropyEncoder::default();
    let mut ed = EntropyDecoder::default();
    let rounds = if cfg!(miri) { 1 } else { 8 };
    for _ in 0..rounds {
        let (p, ctx, dicts) = ctx_payload(&mut rng, 40);
        let mut coded = Vec::new();
        ee.encode(&p, PS, BS, Some(&ctx), &mut coded).unwrap();
        assert_eq!(modes(&coded)[Stream::Literals as usize], MODE_CONTEXT);
        let mut plain = Vec::new();
        ee.encode(&p, PS, BS, None, &mut plain).unwrap();
        assert!(
            coded.len() < plain.len(),
            "contexts {} vs one table {}",
            coded.len(),
            plain.len()
        );
        let mut back = Vec::new();
        ed.decode(&coded, PS, BS, &mut back, &mut loader(&dicts))
            .unwrap();
        assert!(back == p);
        // the same decoder then reads a one-table payload
        ed.decode(&plain, PS, BS, &mut back, &mut loader(&dicts))
            .unwrap();
        assert!(back == p);
    }
}

/// The plain form codes every stream with one table (or stores it) where `encode` models the
/// literals, and decodes to the same payload, smaller than the payload and larger than the
/// modelled form.
#[test]
fn plain_coding_uses_one_table_a_stream_and_round_trips() {
    let mut rng = Rng(94);
    let mut ee = EntropyEncoder::default();
    let mut ed = EntropyDecoder::default();
    for _ in 0..if cfg!(miri) { 1 } else { 4 } {
        let (p, ctx, dicts) = ctx_payload(&mut rng, 40);
        let (mut full, mut plain) = (Vec::new(), Vec::new());
        ee.encode(&p, PS, BS, Some(&ctx), &mut full).unwrap();
        ee.encode_plain(&p, PS, BS, &mut plain).unwrap();
        assert_eq!(modes(&full)[Stream::Literals as usize], MODE_CONTEXT);
        assert!(
            !modes(&plain).contains(&MODE_CONTEXT),
            "{:?}",
            modes(&plain)
        );
        assert!(full.len() < plain.len() && plain.len() < p.len());
        let mut back = Vec::new();
        ed.decode(&plain, PS, BS, &mut back, &mut loader(&dicts))
            .unwrap();
        assert!(back == p);
    }
}

#[test]
fn contexts_that_do_not_match_the_payload_are_not_used() {
    let mut rng = Rng(93);
    let (p, mut ctx, dicts) = ctx_payload(&mut rng, 40);
    let mut ee = EntropyEncoder::default();
    let mut coded = Vec::new();
    ee.encode(&p, PS, BS, Some(&ctx), &mut coded).unwrap();
    assert_eq!(modes(&coded)[Stream::Literals as usize], MODE_CONTEXT);
    // one context short, one too many: coded with one table, and still a valid payload
    let extra = ctx[0];
    for change in [0, 1] {
        if change == 0 {
            ctx.pop();
        } else {
            ctx.extend([extra, extra]);
        }
        coded.clear();
        ee.encode(&p, PS, BS, Some(&ctx), &mut coded).unwrap();
        assert_ne!(modes(&coded)[Stream::Literals as usize], MODE_CONTEXT);
        let mut back = Vec::new();
        EntropyDecoder::default()
            .decode(&coded, PS, BS, &mut back, &mut loader(&dicts))
            .unwrap();
        assert!(back == p);
    }
}

#[test]
fn another_dictionary_gives_another_payload_or_an_error_never_a_panic() {
    let mut rng = Rng(94);
    // enough literals for several tables, so that contexts decide which table reads the bits
    let (p, ctx, dicts) = ctx_payload(&mut rng, if cfg!(miri) { 40 } else { 400 });
    let mut coded = Vec::new();
    EntropyEncoder::default()
        .encode(&p, PS, BS, Some(&ctx), &mut coded)
        .unwrap();
    assert_eq!(modes(&coded)[Stream::Literals as usize], MODE_CONTEXT);
    let mut back = Vec::new();
    let mut ed = EntropyDecoder::default();
    // no dictionary (zeros), and dictionaries with one byte changed
    let r = ed.decode(&coded, PS, BS, &mut back, &mut |_, _| false);
    assert!(cfg!(miri) || r.is_err() || back != p);
    let mut other = dicts.clone();
    for d in other.values_mut() {
        d[0] ^= 0xff;
        d[PS - 1] ^= 0xff;
    }
    let r = ed.decode(&coded, PS, BS, &mut back, &mut loader(&other));
    assert!(cfg!(miri) || r.is_err() || back != p);
    ed.decode(&coded, PS, BS, &mut back, &mut loader(&dicts))
        .unwrap();
    assert!(back == p);
}

#[test]
fn damaged_context_streams_are_refused_or_rebuild_something_never_panic() {
    let mut rng = Rng(95);
    let (p, ctx, dicts) = ctx_payload(&mut rng, 40);
    let mut coded = Vec::new();
    EntropyEncoder::default()
        .encode(&p, PS, BS, Some(&ctx), &mut coded)
        .unwrap();
    assert_eq!(modes(&coded)[Stream::Literals as usize], MODE_CONTEXT);
    let mut ed = EntropyDecoder::default();
    let mut out = Vec::new();
    for n in 0..coded.len() {
        if cfg!(miri) && n % 97 != 0 {
            continue;
        }
        assert!(
            ed.decode(&coded[..n], PS, BS, &mut out, &mut loader(&dicts))
                .is_err(),
            "truncated at {n}"
        );
    }
    let mut refused = 0;
    let rounds = if cfg!(miri) { 10 } else { 3000 };
    for _ in 0..rounds {
        let mut c = coded.clone();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(c.len());
            c[i] ^= 1 << rng.below(8);
        }
        match ed.decode(&c, PS, BS, &mut out, &mut loader(&dicts)) {
            Err(_) => refused += 1,
            Ok(()) => assert!(out.len() <= 8 * c.len()),
        }
    }
    assert!(refused * 2 > rounds, "only {refused} of {rounds} refused");
}

#[test]
fn a_context_header_that_lies_is_refused() {
    let mut rng = Rng(96);
    let (p, ctx, dicts) = ctx_payload(&mut rng, 120);
    let mut coded = Vec::new();
    EntropyEncoder::default()
        .encode(&p, PS, BS, Some(&ctx), &mut coded)
        .unwrap();
    let mut ed = EntropyDecoder::default();
    let mut out = Vec::new();
    let mut dec = |c: &[u8]| ed.decode(c, PS, BS, &mut out, &mut loader(&dicts));
    let mut seen = 0;
    for (s, at) in starts(&coded).into_iter().enumerate() {
        if coded[at] != MODE_CONTEXT {
            continue;
        }
        seen |= 1 << s;
        let at_len = at + 1;
        let mut len_pos = at_len;
        let n = varint::get(&coded, &mut len_pos).unwrap();
        let k_at = len_pos;
        // no tables (more than MAX_TABLES = 255 cannot be written)
        let mut c = coded.clone();
        c[k_at] = 0;
        assert!(
            matches!(dec(&c), Err(EntropyError::Container(_))),
            "stream {s}: no tables"
        );
        // a context mapped to a table that is not there (when the map's bits can say so), and
        // non-zero padding after the map
        let k = coded[k_at] as usize;
        if !k.is_power_of_two() {
            let mut c = coded.clone();
            c[k_at + 1] |= (1 << map_bits(k)) - 1;
            assert!(matches!(dec(&c), Err(EntropyError::Container(_))));
        }
        let mut c = coded.clone();
        c[k_at + map_len(k)] |= 0x80;
        assert!(matches!(dec(&c), Err(EntropyError::Container(_))));
        // one byte more or fewer than the bits hold
        for m in [n - 1, n + 1] {
            let mut c = coded[..at_len].to_vec();
            varint::put(&mut c, m);
            c.extend_from_slice(&coded[k_at..]);
            assert!(dec(&c).is_err(), "stream {s}: {m} declared, {n} coded");
        }
    }
    // all four context-modelled streams were damaged above
    let want = 1 << Stream::Tokens as usize
        | 1 << Stream::Literals as usize
        | 1 << Stream::OffsetLow as usize
        | 1 << Stream::OffsetHigh as usize;
    assert_eq!(seen & want, want, "streams with contexts: {seen:#b}");
    dec(&coded).unwrap();
    assert!(out == p);
}

#[test]
fn clustering_gives_every_context_a_table_that_codes_its_bytes() {
    let mut rng = Rng(97);
    let mut m = Model::default();
    let mut lits = Vec::new();
    let mut ctx = Vec::new();
    for _ in 0..20_000 {
        let c = rng.below(CONTEXTS) as u16;
        // bytes near the context value, as match bytes predict
        let b = (c as usize + rng.below(8)).min(255) as u8;
        lits.push(b);
        ctx.push(c);
    }
    for k in [1, 2, 8, MAX_TABLES, 1000] {
        m.count(&lits, &ctx);
        m.cluster(k);
        assert!(!m.tables.is_empty() && m.tables.len() <= k.min(MAX_TABLES));
        let mut bits = 0u64;
        for (&b, &c) in lits.iter().zip(&ctx) {
            let len = m.tables[m.map[c as usize] as usize][b as usize];
            assert!(len > 0, "byte {b} of context {c} has no code (k = {k})");
            bits += len as u64;
        }
        assert_eq!(bits, m.bits);
    }
    // with contexts that predict their bytes, more tables code them in fewer bits
    m.cluster(1);
    let one = m.bits;
    m.cluster(MAX_TABLES);
    assert!(m.bits * 10 < one * 8, "{} vs {one}", m.bits);
}

#[test]
fn encoder_frames_use_contexts_and_replicate_exactly() {
    use crate::{format, Config, Decoder, Encoder};
    let cfg = Config::default();
    let mut enc = Encoder::new(cfg).unwrap();
    let mut dec = Decoder::new(cfg).unwrap();
    let mut rng = Rng(98);
    let pages = if cfg!(miri) { 24 } else { 96 };
    let mut mem = vec![0u8; pages * PS];
    heap(&mut rng, &mut mem);
    let mut backup = vec![0u8; mem.len()];
    let mut with_contexts = 0;
    let epochs = if cfg!(miri) { 2 } else { 6 };
    for epoch in 0..epochs {
        let dirty: Vec<usize> = if epoch == 0 {
            (0..pages).collect()
        } else {
            (0..pages).filter(|_| rng.below(4) != 0).collect()
        };
        for &p in &dirty {
            if epoch == 0 {
                continue;
            }
            match p % 9 {
                // zeroed every other epoch: the next epoch compresses it against zeros
                0 if epoch % 2 == 1 => mem[p * PS..(p + 1) * PS].fill(0),
                // two blocks copied from another page and one rewritten: a BLOCKS op with
                // references and an lz4-coded literal block
                1 => {
                    let q = (p + 5) % pages;
                    mem.copy_within(q * PS..q * PS + 512, p * PS + 1024);
                    heap(&mut rng, &mut mem[p * PS + 2560..p * PS + 2816]);
                }
                // rewritten enough that the dictionary stage, not a delta, takes the page
                _ => {
                    for _ in 0..4 {
                        edit(&mut rng, &mut mem[p * PS..(p + 1) * PS]);
                    }
                }
            }
        }
        enc.begin_epoch(epoch).unwrap();
        for &p in &dirty {
            enc.add_page((p * PS) as u64, &mem[p * PS..(p + 1) * PS])
                .unwrap();
        }
        let f = enc.end_epoch().unwrap().to_vec();
        let (h, payload) = format::open(&f).unwrap();
        if h.flags & format::FLAG_ENTROPY != 0
            && modes(payload)[Stream::Literals as usize] == MODE_CONTEXT
        {
            with_contexts += 1;
        }
        if epoch > 0 {
            assert!(
                enc.epoch_stats().dict.pages > 0,
                "DICT ops in epoch {epoch}"
            );
        }
        dec.apply_flat(&f, &mut backup).unwrap();
        assert!(backup == mem, "epoch {epoch}");
    }
    let s = enc.stats();
    assert!(s.shared_blocks > 0 && s.zero.pages > 0, "{s:?}");
    assert!(
        with_contexts * 2 >= epochs,
        "{with_contexts} of {epochs} frames context modelled"
    );
}

#[test]
fn a_page_added_twice_in_an_epoch_replicates_exactly() {
    // the second op's dictionary is the first op's result, which the decoder cannot read before
    // the frame: such a frame must not rely on it for its literal contexts
    use crate::{Config, Decoder, Encoder};
    let cfg = Config::default();
    let mut enc = Encoder::new(cfg).unwrap();
    let mut dec = Decoder::new(cfg).unwrap();
    let mut rng = Rng(99);
    let pages = if cfg!(miri) { 8 } else { 64 };
    let mut mem = vec![0u8; pages * PS];
    heap(&mut rng, &mut mem);
    let mut backup = vec![0u8; mem.len()];
    for epoch in 0..3 {
        enc.begin_epoch(epoch).unwrap();
        for round in 0..2 {
            for p in 0..pages {
                if epoch + round > 0 {
                    for _ in 0..4 {
                        edit(&mut rng, &mut mem[p * PS..(p + 1) * PS]);
                    }
                }
                enc.add_page((p * PS) as u64, &mem[p * PS..(p + 1) * PS])
                    .unwrap();
            }
        }
        let f = enc.end_epoch().unwrap().to_vec();
        // the second round's pages went as DICT ops on pages of this frame; the frame is still
        // entropy coded, its literals without contexts
        assert!(enc.epoch_stats().dict.pages > 0, "epoch {epoch}");
        let (h, payload) = crate::format::open(&f).unwrap();
        assert!(h.flags & crate::format::FLAG_ENTROPY != 0);
        assert_ne!(modes(payload)[Stream::Literals as usize], MODE_CONTEXT);
        dec.apply_flat(&f, &mut backup).unwrap();
        assert!(backup == mem, "epoch {epoch}");
    }
}

#[test]
fn context_table_headers_are_checked() {
    let mut t = ContextTables::default();
    let listed_one = |out: &mut Vec<u8>| {
        // a listed table: values 0 and 1, one bit each
        out.push(MODE_HUFFMAN_LISTED);
        let mut bitmap = [0u8; 32];
        bitmap[0] = 0b11;
        out.extend_from_slice(&bitmap);
        out.push(0x11);
    };
    // k = 3: two bits per context, 257 contexts: 65 bytes, the last holding one entry
    let good = |map: &[u8]| {
        let mut c = vec![3u8];
        c.extend_from_slice(map);
        for _ in 0..3 {
            listed_one(&mut c);
        }
        c
    };
    let mut map = vec![0u8; 65];
    map[0] = 0b10_01_00; // contexts 0, 1, 2 use tables 0, 1, 2
    let mut pos = 0;
    t.read(&good(&map), &mut pos).unwrap();
    assert_eq!(pos, good(&map).len());
    assert_eq!(&t.map[..4], &[0, 1, 2, 0]);
    // table 3 of 3
    let mut bad = map.clone();
    bad[1] = 0b11;
    assert!(t.read(&good(&bad), &mut 0).is_err());
    // padding bits after the last entry
    let mut bad = map.clone();
    bad[64] = 0b100;
    assert!(t.read(&good(&bad), &mut 0).is_err());
    // no table (more than 255 cannot be written), a table form that does not exist, truncations
    let mut c = good(&map);
    c[0] = 0;
    assert!(t.read(&c, &mut 0).is_err(), "no tables");
    let mut c = good(&map);
    c[66] = 7;
    assert!(t.read(&c, &mut 0).is_err());
    let c = good(&map);
    for n in 0..c.len() {
        assert!(t.read(&c[..n], &mut 0).is_err(), "truncated at {n}");
    }
}

/// A decoding table takes the entries its longest code needs, not 2^MAX_BITS: three tables of
/// one-bit codes hold a few bytes, and a stream decodes through tables of different sizes
/// exactly as it was coded.
#[test]
fn each_decoding_table_is_as_long_as_its_longest_code_needs() {
    let mut c = vec![3u8];
    let mut map = vec![0u8; 65];
    map[0] = 0b10_01_00; // contexts 0, 1, 2 use tables 0, 1, 2
    c.extend_from_slice(&map);
    for _ in 0..3 {
        c.push(MODE_HUFFMAN_LISTED);
        let mut bitmap = [0u8; 32];
        bitmap[0] = 0b11;
        c.extend_from_slice(&bitmap);
        c.push(0x11);
    }
    let mut t = ContextTables::default();
    t.read(&c, &mut 0).unwrap();
    assert!(t.memory_bytes() <= 64, "{} bytes", t.memory_bytes());
    // previous-byte streams: tables of short and of long codes side by side
    let mut rng = Rng(0x7ab1e5);
    for n in [100, 5_000, 70_000] {
        let (s, bits, tables) = previous_byte_stream(&mut rng, n);
        let mut out = vec![0u8; n + 1];
        let mut r = LiteralReader::new(&tables, &bits, n);
        r.run(&mut out, 1, n, Some(1)).unwrap();
        r.finish().unwrap();
        assert_eq!(&out[1..], &s[..], "{n} bytes");
    }
}

/// A CONTEXT stream of `n` bytes, one table (values 0 and 1, one bit each), all bits zero.
fn zeros_in_context_mode(n: usize) -> Vec<u8> {
    let mut c = vec![MODE_CONTEXT];
    varint::put(&mut c, n as u64);
    c.push(1); // one table: the map takes no bits
    c.push(MODE_HUFFMAN_LISTED);
    let mut bitmap = [0u8; 32];
    bitmap[0] = 0b11;
    c.extend_from_slice(&bitmap);
    c.push(0x11);
    varint::put(&mut c, n.div_ceil(8) as u64);
    c.extend(std::iter::repeat_n(0, n.div_ceil(8)));
    c
}

#[test]
fn context_mode_is_refused_where_no_context_is_defined_and_offsets_must_pair_up() {
    let stored = |b: &[u8]| {
        let mut c = vec![MODE_STORED];
        varint::put(&mut c, b.len() as u64);
        c.extend_from_slice(b);
        c
    };
    let container = |streams: [Vec<u8>; STREAMS]| streams.concat();
    let mut out = Vec::new();
    let mut dec =
        |c: &[u8]| EntropyDecoder::default().decode(c, PS, BS, &mut out, &mut |_, _| false);
    // one ZERO op; CONTEXT for the control stream or the deflate stream is refused
    let ok = || {
        [
            stored(&[op::ZERO, 0]),
            stored(&[]),
            stored(&[]),
            stored(&[]),
            stored(&[]),
            stored(&[]),
        ]
    };
    dec(&container(ok())).unwrap();
    for s in [Stream::Ctrl as usize, Stream::Opaque as usize] {
        let mut c = ok();
        c[s] = zeros_in_context_mode(2);
        assert!(
            matches!(dec(&container(c)), Err(EntropyError::Container(_))),
            "stream {s}"
        );
    }
    // high offset bytes in CONTEXT mode need as many low bytes
    let mut c = ok();
    c[Stream::OffsetLow as usize] = stored(&[0x10]);
    c[Stream::OffsetHigh as usize] = zeros_in_context_mode(2);
    assert_eq!(
        dec(&container(c)),
        Err(EntropyError::Streams("the offset streams differ in length"))
    );
}

/// Byte counts of skewed, clustered shapes (as real contexts have), as floats.
fn float_rows(rng: &mut Rng, n: usize) -> Vec<[f32; 256]> {
    (0..n)
        .map(|_| {
            let centre = rng.below(256);
            let width = 1 + rng.below(64);
            let mut row = [0f32; 256];
            for _ in 0..rng.below(2000) {
                let b = (centre + rng.below(width)) % 256;
                row[b] += 1.0;
            }
            row
        })
        .collect()
}

#[test]
#[cfg(all(target_arch = "x86_64", not(miri)))]
fn assignment_is_the_same_with_avx2() {
    if !std::arch::is_x86_feature_detected!("avx2") {
        eprintln!("no AVX2 on this CPU: nothing to compare");
        return;
    }
    let mut rng = Rng(98);
    for (contexts, tables) in [(1, 1), (257, 2), (257, 255), (40, 17)] {
        let counts = float_rows(&mut rng, contexts);
        let costs: Vec<[f32; 256]> = float_rows(&mut rng, tables)
            .iter()
            .map(|row| {
                let n: f32 = row.iter().sum();
                row.map(|f| -((f + 1.0) / (n + 256.0)).log2())
            })
            .collect();
        let (mut plain, mut wide) = (vec![0u8; contexts], vec![0u8; contexts]);
        let stale = vec![true; tables];
        let mut dots = vec![0f32; contexts * tables];
        assign_in(&counts, &costs, &stale, &mut dots, &mut plain);
        let mut wide_dots = vec![0f32; contexts * tables];
        // SAFETY: AVX2 was detected above.
        unsafe { assign_avx2(&counts, &costs, &stale, &mut wide_dots, &mut wide) };
        assert_eq!(plain, wide, "{contexts} contexts, {tables} tables");
        assert!(dots == wide_dots, "{contexts} contexts, {tables} tables");
        let mut picked = vec![0u8; contexts];
        assign(
            &counts,
            &costs,
            &stale,
            &mut vec![0f32; contexts * tables],
            &mut picked,
        );
        assert_eq!(picked, plain, "the dispatcher");
        // and each choice is a cheapest table
        for (row, &j) in counts.iter().zip(&plain) {
            let bits = |t: &[f32; 256]| row.iter().zip(t).map(|(a, b)| a * b).sum::<f32>();
            let best = costs.iter().map(bits).fold(f32::INFINITY, f32::min);
            assert!(bits(&costs[j as usize]) <= best * 1.0001 + 1e-3);
        }
    }
}

#[test]
fn derived_contexts_count_and_code_as_if_given() {
    // Contexts::Previous and ::Beside are shorthands for contexts the caller could list; the
    // model must count and code exactly as with the listed ones.
    let mut rng = Rng(99);
    let mut s = vec![0u8; 30_000];
    let mut other = vec![0u8; 30_000];
    for i in 0..s.len() {
        other[i] = rng.below(16) as u8;
        s[i] = if i > 0 && rng.below(3) > 0 {
            s[i - 1].wrapping_add(other[i])
        } else {
            rng.below(256) as u8
        };
    }
    let prev: Vec<u16> = std::iter::once(0)
        .chain(s[..s.len() - 1].iter().map(|&b| b as u16))
        .collect();
    let beside: Vec<u16> = other.iter().map(|&b| b as u16).collect();
    for (by, listed) in [
        (Contexts::Previous, &prev),
        (Contexts::Beside(&other), &beside),
    ] {
        let (mut a, mut b) = (Model::default(), Model::default());
        a.count_by(&s, by);
        b.count(&s, listed);
        assert!(a.counts == b.counts, "{by:?}");
        a.cluster(8);
        b.cluster(8);
        let bytes = a.bits.div_ceil(8) as usize;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        a.put_bits_by(&s, by, bytes, &mut x);
        b.put_bits(&s, listed, bytes, &mut y);
        assert_eq!(x, y);
        assert_eq!(x.len(), bytes);
    }
}

#[test]
fn assignment_recomputes_only_the_stale_tables_and_chooses_as_if_all_were() {
    let mut rng = Rng(100);
    let (contexts, tables) = (60, 9);
    let counts = float_rows(&mut rng, contexts);
    let cost_rows = |rng: &mut Rng| -> Vec<[f32; 256]> {
        float_rows(rng, tables)
            .iter()
            .map(|row| {
                let n: f32 = row.iter().sum();
                row.map(|f| -((f + 1.0) / (n + 256.0)).log2())
            })
            .collect()
    };
    let mut costs = cost_rows(&mut rng);
    let mut kept = vec![0f32; contexts * tables];
    let mut choice = vec![0u8; contexts];
    assign(&counts, &costs, &[true; 9], &mut kept, &mut choice);
    let fresh = cost_rows(&mut rng);
    for round in 0..4 {
        // some tables change (and are marked stale), the others keep their costs
        let stale: Vec<bool> = (0..tables).map(|j| (j + round) % 3 == 0).collect();
        for j in (0..tables).filter(|&j| stale[j]) {
            costs[j] = fresh[(j + round) % tables];
        }
        assign(&counts, &costs, &stale, &mut kept, &mut choice);
        let (mut all, mut all_choice) = (vec![0f32; contexts * tables], vec![0u8; contexts]);
        assign(&counts, &costs, &[true; 9], &mut all, &mut all_choice);
        assert!(kept == all, "round {round}: bits");
        assert_eq!(choice, all_choice, "round {round}: choices");
    }
}

/// The clustering as k-means is written down: every round sums each cluster's contexts afresh,
/// computes every cluster's costs and every context's bits under every table.
fn k_means_from_scratch(counts: &[[u32; 256]], k: usize) -> ([u8; CONTEXTS], u64) {
    let totals: Vec<u64> = counts
        .iter()
        .map(|c| c.iter().map(|&x| x as u64).sum())
        .collect();
    let mut active: Vec<u16> = (0..CONTEXTS as u16)
        .filter(|&c| totals[c as usize] > 0)
        .collect();
    // the encoder's order of contexts with equal counts (its seeds)
    active.sort_unstable_by_key(|&c| std::cmp::Reverse(totals[c as usize]));
    let k = k.clamp(1, MAX_TABLES).min(active.len()).max(1);
    let mut map = [0u8; CONTEXTS];
    for (j, &c) in active.iter().enumerate().take(k) {
        map[c as usize] = j as u8;
    }
    let fcounts: Vec<[f32; 256]> = active
        .iter()
        .map(|&c| counts[c as usize].map(|x| x as f32))
        .collect();
    let sums_of = |map: &[u8; CONTEXTS]| {
        let mut sums = vec![[0u64; 256]; k];
        for &c in &active {
            for (a, &b) in sums[map[c as usize] as usize]
                .iter_mut()
                .zip(&counts[c as usize])
            {
                *a += b as u64;
            }
        }
        sums
    };
    for _ in 0..4 {
        let costs: Vec<[f32; 256]> = sums_of(&map)
            .iter()
            .map(|s| {
                let denom = (s.iter().sum::<u64>() + 256) as f32;
                s.map(|f| -((f as f32 + 1.0) / denom).log2())
            })
            .collect();
        let mut choice = vec![0u8; active.len()];
        let mut dots = vec![0f32; active.len() * k];
        assign_in(&fcounts, &costs, &vec![true; k], &mut dots, &mut choice);
        let moved = active
            .iter()
            .zip(&choice)
            .any(|(&c, &j)| map[c as usize] != j);
        for (&c, &j) in active.iter().zip(&choice) {
            map[c as usize] = j;
        }
        if !moved {
            break;
        }
    }
    // renumber the chosen clusters in order; contexts that do not occur use table 0
    let sums = sums_of(&map);
    let mut renumber = vec![0u8; k];
    let mut tables = Vec::new();
    for j in 0..k {
        if sums[j].iter().any(|&x| x > 0) {
            renumber[j] = tables.len() as u8;
            tables.push(sums[j].map(|x| x as u32));
        }
    }
    for (c, m) in map.iter_mut().enumerate() {
        *m = if totals[c] > 0 {
            renumber[*m as usize]
        } else {
            0
        };
    }
    let bits = tables
        .iter()
        .map(|s| crate::entropy::huffman::coded_bits(s, &super::cluster::table_lengths(s)))
        .sum::<u64>();
    (map, bits)
}

/// A table's code is the optimal one cut down to the fewest bits from `SHORT_BITS` up whose
/// code costs at most `SHORT_COST_PERMILLE` more than the optimal code within `MAX_BITS`: no
/// dearer than that, optimal for its own longest length, and one bit fewer would cost more.
#[test]
fn tables_are_cut_down_to_the_fewest_bits_that_cost_little_more() {
    use super::cluster::{table_lengths, SHORT_BITS, SHORT_COST_PERMILLE};
    use crate::entropy::huffman::{code_lengths, code_lengths_within, coded_bits, MAX_BITS};
    let longest = |l: &[u8; 256]| *l.iter().max().unwrap() as u32;
    let mut rng = Rng(103);
    let (mut short, mut dear) = (0, 0);
    for it in 0..600 {
        let mut counts = [0u32; 256];
        for _ in 0..2 + rng.below(255) {
            counts[rng.below(256)] = match it % 4 {
                0 => 1 + (rng.below(1 << 16) as u32 >> rng.below(16)),
                1 => 1u32 << rng.below(14),
                2 => 1 + rng.below(40) as u32,
                // many rare values beside two or three that take nearly all: the rare ones'
                // room comes out of the frequent ones' codes, which costs much
                _ => 1 + rng.below(8) as u32,
            };
        }
        if it % 4 == 3 {
            for _ in 0..2 + rng.below(2) {
                counts[rng.below(256)] = 1 << 20;
            }
        }
        let full = code_lengths(&counts);
        let lens = table_lengths(&counts);
        let (bits, base) = (coded_bits(&counts, &lens), coded_bits(&counts, &full));
        assert!(
            bits * 1000 <= base * (1000 + SHORT_COST_PERMILLE),
            "it {it}: {bits} against {base}"
        );
        let l = longest(&lens);
        assert_eq!(
            bits,
            coded_bits(&counts, &code_lengths_within(&counts, l)),
            "it {it}"
        );
        if longest(&full) <= SHORT_BITS {
            assert_eq!(lens, full, "it {it}: a short code is kept");
        } else if l > SHORT_BITS {
            let fewer = code_lengths_within(&counts, l - 1);
            let dearer = coded_bits(&counts, &fewer) * 1000 > base * (1000 + SHORT_COST_PERMILLE);
            assert!(
                dearer || longest(&fewer) == l,
                "it {it}: {l} bits where {} would do",
                l - 1
            );
        }
        if longest(&full) > SHORT_BITS && l <= SHORT_BITS {
            short += 1;
        } else if l > SHORT_BITS {
            assert!(l <= MAX_BITS);
            dear += 1;
        }
    }
    assert!(
        short > 50 && dear > 20,
        "{short} codes cut down to the short length, {dear} where that was too dear"
    );
}

#[test]
fn clustering_gives_the_tables_of_k_means_done_from_scratch() {
    let mut rng = Rng(101);
    let mut m = Model::default();
    for trial in 0..12 {
        // contexts in groups of similar distributions, with noise, so contexts move between
        // clusters over several rounds
        let n = 2_000 + rng.below(60_000);
        let groups = 1 + rng.below(12);
        let mut lits = Vec::with_capacity(n);
        let mut ctx = Vec::with_capacity(n);
        for _ in 0..n {
            let c = rng.below(CONTEXTS);
            let g = c % groups;
            let b = if rng.below(5) == 0 {
                rng.below(256)
            } else {
                (g * 37 + rng.below(4 + 4 * g)) % 256
            };
            lits.push(b as u8);
            ctx.push(c as u16);
        }
        for k in [1, 2, 5, 16, MAX_TABLES] {
            m.count(&lits, &ctx);
            m.cluster(k);
            let (map, bits) = k_means_from_scratch(&m.counts, k);
            assert!(m.map == map, "trial {trial}, k = {k}: context map");
            assert_eq!(m.bits, bits, "trial {trial}, k = {k}");
        }
    }
}

/// A model that counted other streams before counts a stream as a fresh one does: the rows the
/// earlier counts used are emptied, whichever contexts the new stream has.
#[test]
fn a_reused_model_counts_as_a_fresh_one() {
    let mut rng = Rng(102);
    let mut reused = Model::default();
    for round in 0..6 {
        let n = 1 + rng.below(20_000);
        // each stream in its own few contexts, so rows used before go unused
        let base = rng.below(CONTEXTS - 8);
        let s: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
        let ctx: Vec<u16> = (0..n).map(|_| (base + rng.below(8)) as u16).collect();
        reused.count(&s, &ctx);
        let mut fresh = Model::default();
        fresh.count(&s, &ctx);
        assert!(reused.counts() == fresh.counts(), "round {round}");
        reused.cluster(4);
        fresh.cluster(4);
        assert_eq!(reused.bits, fresh.bits, "round {round}");
    }
}

/// A stream of `n` bytes whose next byte depends on the one before, coded by its previous-byte
/// model: the coded bits and the tables as a decoder reads them.
fn previous_byte_stream(rng: &mut Rng, n: usize) -> (Vec<u8>, Vec<u8>, ContextTables) {
    let mut s = vec![0u8; n];
    for i in 0..n {
        let prev = if i == 0 { 0 } else { s[i - 1] };
        s[i] = if rng.below(4) > 0 {
            prev.wrapping_mul(5).wrapping_add(rng.below(6) as u8)
        } else {
            rng.below(256) as u8
        };
    }
    let mut m = Model::default();
    m.count_by(&s, Contexts::Previous);
    m.cluster(tables_for(n));
    let mut head = Vec::new();
    m.put_tables(&mut head);
    let mut tables = ContextTables::default();
    let mut pos = 0;
    tables.read(&head, &mut pos).unwrap();
    assert_eq!(pos, head.len());
    let mut bits = Vec::new();
    // (an empty stream has no bits; the encoder never models one)
    if n > 0 {
        m.put_bits_by(
            &s,
            Contexts::Previous,
            m.bits.div_ceil(8) as usize,
            &mut bits,
        );
    }
    (s, bits, tables)
}

/// A stream of bytes that follow `by` (one each), coded in the context of the byte of `by` beside
/// it (as the high offset bytes are, by their low byte): the coded bits and the tables.
fn beside_stream(rng: &mut Rng, by: &[u8]) -> (Vec<u8>, Vec<u8>, ContextTables) {
    let s: Vec<u8> = by
        .iter()
        .map(|&b| {
            if rng.below(3) > 0 {
                b >> 5
            } else {
                rng.below(256) as u8
            }
        })
        .collect();
    let mut m = Model::default();
    m.count_by(&s, Contexts::Beside(by));
    m.cluster(tables_for(s.len().max(1)));
    let mut head = Vec::new();
    m.put_tables(&mut head);
    let mut tables = ContextTables::default();
    let mut pos = 0;
    tables.read(&head, &mut pos).unwrap();
    let mut bits = Vec::new();
    m.put_bits_by(
        &s,
        Contexts::Beside(by),
        m.bits.div_ceil(8) as usize,
        &mut bits,
    );
    (s, bits, tables)
}

/// Decodes `n` previous-byte literals of `bits` alone, as the decoder did before the pair.
fn run_alone(
    t: &ContextTables,
    bits: &[u8],
    n: usize,
    declared: usize,
) -> (Vec<u8>, Result<(), &'static str>) {
    let mut buf = vec![0u8; n + 1];
    let mut r = LiteralReader::new(t, bits, declared);
    let res = r.run(&mut buf, 1, n, Some(1)).and_then(|()| r.finish());
    (buf, res)
}

#[test]
fn token_and_offset_streams_side_by_side_decode_as_each_alone() {
    // the side-by-side decode is the lone decodes interleaved: the same bytes, and on damaged
    // bits, too many bytes asked or streams of any lengths, the same results as each alone (the
    // third stream, in the context of the second's bytes, decoded after it)
    let mut rng = Rng(4242);
    for case in 0..400 {
        let (na, nb) = match case % 5 {
            0 => (0, 1 + rng.below(50)),
            1 => (1 + rng.below(7), 3000 + rng.below(20_000)),
            _ => (1 + rng.below(30_000), 1 + rng.below(30_000)),
        };
        let (sa, mut ba, ta) = previous_byte_stream(&mut rng, na);
        let (sb, mut bb, tb) = previous_byte_stream(&mut rng, nb);
        let (sc, mut bc, tc) = beside_stream(&mut rng, &sb);
        // some cases damage the bits, cut them short, or declare fewer bytes than asked
        let (mut da, mut db, mut dc) = (na, nb, nb);
        let mut intact = [true; 3];
        match case % 11 {
            3 if !ba.is_empty() => {
                let i = rng.below(ba.len());
                ba[i] ^= 1 << rng.below(8);
                intact[0] = false;
            }
            4 if !bb.is_empty() => {
                let i = rng.below(bb.len());
                bb.truncate(i);
                intact[1] = false;
            }
            5 => da = na.saturating_sub(1),
            6 => db = nb.saturating_sub(3),
            7 if !bc.is_empty() => {
                let i = rng.below(bc.len());
                bc[i] ^= 1 << rng.below(8);
                intact[2] = false;
            }
            8 => dc = nb.saturating_sub(2),
            _ => {}
        }
        // the third stream's contexts are the second's bytes as decoded
        intact[2] &= intact[1];
        let with_c = case % 3 != 0;
        let (want_a, res_a) = run_alone(&ta, &ba, na, da);
        let (want_b, res_b) = run_alone(&tb, &bb, nb, db);
        let mut want_c = vec![0u8; nb];
        let res_c = if with_c && res_b.is_ok() {
            let mut r = LiteralReader::new(&tc, &bc, dc);
            r.run_by(&want_b[1..], &mut want_c)
                .and_then(|()| r.finish())
        } else {
            Ok(())
        };
        let (mut wa, mut wb, mut wc) = (vec![0u8; na + 1], vec![0u8; nb + 1], vec![0u8; nb]);
        let mut ra = LiteralReader::new(&ta, &ba, da);
        let mut rb = LiteralReader::new(&tb, &bb, db);
        let mut rc = LiteralReader::new(&tc, &bc, dc);
        let c = with_c.then_some((&mut rc, &mut wc[..]));
        let [x, y, z] = LiteralReader::run_side_by_side((&mut ra, &mut wa), (&mut rb, &mut wb), c);
        let (x, y) = (x.and_then(|()| ra.finish()), y.and_then(|()| rb.finish()));
        let z = if with_c && y.is_ok() {
            z.and_then(|()| rc.finish())
        } else {
            z
        };
        assert_eq!(
            (x, y, z),
            (res_a, res_b, res_c),
            "case {case}: {na} and {nb} bytes"
        );
        // (damaged bits may still decode, to other bytes)
        if res_a.is_ok() {
            assert!(wa == want_a, "case {case}");
            assert!(!intact[0] || wa[1..] == sa[..], "case {case}");
        }
        if res_b.is_ok() {
            assert!(wb == want_b, "case {case}");
            assert!(!intact[1] || wb[1..] == sb[..], "case {case}");
        }
        if with_c && res_b.is_ok() && res_c.is_ok() {
            assert!(wc == want_c, "case {case}");
            assert!(!intact[2] || wc == sc, "case {case}");
        }
    }
}

/// Literals whose context is the byte `n` before them in the window (as a DICT op's literals
/// before its first match have the old page's byte), coded in two strings: the literals, the
/// window's first half (their contexts), the tables, the first string's length and both strings.
fn two_strings(rng: &mut Rng, n: usize) -> (Vec<u8>, Vec<u8>, ContextTables, usize, Vec<u8>) {
    let by: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
    let s: Vec<u8> = by
        .iter()
        .map(|&c| match rng.below(4) {
            0 => rng.below(256) as u8,
            _ => c.wrapping_add(rng.below(3) as u8),
        })
        .collect();
    let ctx: Vec<u16> = by.iter().map(|&c| c as u16).collect();
    let mut m = Model::default();
    m.count_by(&s, Contexts::Given(&ctx));
    m.cluster(tables_for(n));
    let mut head = Vec::new();
    m.put_tables(&mut head);
    let mut tables = ContextTables::default();
    tables.read(&head, &mut 0).unwrap();
    let mut out = Vec::new();
    m.put_bits_pair(&s, &ctx, &mut out);
    let mut pos = 0;
    let first = varint::get(&out, &mut pos).unwrap() as usize;
    let coded = varint::get(&out, &mut pos).unwrap() as usize;
    assert_eq!(out.len() - pos, coded, "the coded length field");
    assert!(first <= coded);
    (s, by, tables, first, out[pos..].to_vec())
}

/// Decodes the `n` literals of [`two_strings`] in pieces of random lengths, each piece a run
/// ([`LiteralReader::run`], the join's call), a literal at a time ([`LiteralReader::next`]) or
/// by given contexts ([`LiteralReader::run_by`]); the window's first half holds the contexts.
fn decode_in_pieces(
    rng: &mut Rng,
    t: &ContextTables,
    by: &[u8],
    first: usize,
    bits: &[u8],
) -> Result<Vec<u8>, &'static str> {
    let n = by.len();
    let mut win = [by, &vec![0u8; n]].concat();
    let mut r = LiteralReader::new_pair(t, bits, first, n);
    let mut q = 0;
    while q < n {
        let k = (1 + rng.below(40)).min(n - q);
        match rng.below(3) {
            0 => r.run(&mut win, n + q, k, Some(n))?,
            1 => {
                for i in q..q + k {
                    win[n + i] = r.next(by[i] as u16)?;
                }
            }
            _ => {
                let (head, tail) = win.split_at_mut(n);
                r.run_by(&head[q..q + k], &mut tail[q..q + k])?;
            }
        }
        q += k;
    }
    r.finish()?;
    Ok(win[n..].to_vec())
}

#[test]
fn literals_in_two_strings_decode_as_written_whatever_the_pieces_they_are_read_in() {
    let mut rng = Rng(0x2_57ab);
    let sizes: &[usize] = if cfg!(miri) {
        &[1, 2, 3, 11]
    } else {
        &[1, 2, 3, 4, 11, 100, 4097, 60_000]
    };
    for &n in sizes {
        let (s, by, tables, first, bits) = two_strings(&mut rng, n);
        for _ in 0..4 {
            let back = decode_in_pieces(&mut rng, &tables, &by, first, &bits);
            assert_eq!(back.as_deref(), Ok(&s[..]), "{n} literals");
        }
    }
}

#[test]
fn a_first_string_length_that_lies_is_refused() {
    let mut rng = Rng(0xf1257);
    for n in [2, 3, 40, 5000] {
        let (_, by, tables, first, bits) = two_strings(&mut rng, n);
        for lie in [first - 1, first + 1] {
            if lie == 0 || lie > bits.len() {
                continue;
            }
            // the first string then ends a byte off where its last literal's bits end
            let back = decode_in_pieces(&mut rng, &tables, &by, lie, &bits);
            assert!(
                back.is_err(),
                "{n} literals, first {lie} instead of {first}"
            );
        }
    }
}

/// A payload of DICT ops on consecutive pages, each page its old version with `edit` applied,
/// the contexts of its literals and the dictionaries by page number.
fn dict_payload(
    rng: &mut Rng,
    ops: usize,
    edit: fn(&mut Rng, &mut [u8]),
) -> (Vec<u8>, Vec<u16>, HashMap<u64, Vec<u8>>) {
    let mut lz = PageLz::new();
    let (mut p, mut ctx, mut dicts) = (Vec::new(), Vec::new(), HashMap::new());
    let mut block = vec![0u8; 2 * PS];
    for idx in 0..ops as u64 {
        let mut old = vec![0u8; PS];
        heap(rng, &mut old);
        let mut page = old.clone();
        edit(rng, &mut page);
        p.push(op::DICT);
        varint::put(&mut p, 0); // the next page
        let n = lz.compress_with_dict(&page, &old, &mut block).unwrap();
        varint::put(&mut p, n as u64);
        p.extend_from_slice(&block[..n]);
        lz4_literal_contexts(&block[..n], &old, &page, &mut ctx);
        dicts.insert(idx, old);
    }
    (p, ctx, dicts)
}

/// Rows of a table page updated: runs of 20-60 bytes here and there each a little above its old
/// value, as a database's changed pages have (long literal runs between matches against the old
/// page, each literal close to its context, the old byte).
fn rows(rng: &mut Rng, page: &mut [u8]) {
    for _ in 0..20 {
        let n = 20 + rng.below(41);
        let at = rng.below(PS - n);
        for b in &mut page[at..at + n] {
            *b = b.wrapping_add(1 + rng.below(3) as u8);
        }
    }
}

#[test]
fn literals_in_long_runs_are_coded_in_two_strings_and_short_runs_in_one() {
    let mut rng = Rng(0x10_9a1);
    let (mut ee, mut ed) = (EntropyEncoder::default(), EntropyDecoder::default());
    // (enough pages for 4096 literals, the fewest a model is made for: heap edits leave about 60
    // a page)
    let ops = if cfg!(miri) { 8 } else { 24 };
    let long = dict_payload(&mut rng, ops, rows);
    let short = dict_payload(&mut rng, 12 * ops, edit);
    for ((p, ctx, dicts), strings) in [(long, 2), (short, 1)] {
        let mut coded = Vec::new();
        ee.encode(&p, PS, BS, Some(&ctx), &mut coded).unwrap();
        let mut tables: [ContextTables; STREAMS] = Default::default();
        let (at, _) =
            crate::entropy::container::parse(&coded, &mut tables, crate::format::VERSION).unwrap();
        let lits = at[Stream::Literals as usize];
        assert!(
            lits.context,
            "context-modelled literals ({} of them)",
            lits.len
        );
        assert_eq!(
            1 + (lits.first > 0) as usize,
            strings,
            "{} literals",
            lits.len
        );
        let mut back = Vec::new();
        ed.decode(&coded, PS, BS, &mut back, &mut loader(&dicts))
            .unwrap();
        assert!(back == p, "{strings} string(s) round trip");
    }
}

#[test]
fn two_strings_take_no_more_room_than_one_string_and_the_two_length_fields() {
    let mut rng = Rng(0x5_7219);
    for n in [1, 2, 7, 1000, 30_000] {
        let (s, by, _, _, _) = two_strings(&mut rng, n);
        let ctx: Vec<u16> = by.iter().map(|&c| c as u16).collect();
        let mut m = Model::default();
        m.count_by(&s, Contexts::Given(&ctx));
        m.cluster(tables_for(n));
        // one string's room (its coded bytes and 8 a write may touch), two length fields, one
        // byte more for the second string's padding
        let room = m.bits.div_ceil(8) as usize + 8 + 2 * varint::MAX_LEN + 1;
        let mut out = Vec::with_capacity(room);
        let capacity = out.capacity();
        m.put_bits_pair(&s, &ctx, &mut out);
        assert_eq!(out.capacity(), capacity, "{n} literals: the output grew");
    }
}
