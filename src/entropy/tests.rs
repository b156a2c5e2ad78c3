//! Entropy stage: split and join are inverse on every payload the encoder writes; malformed
//! containers and streams are refused with an error, never a panic.

use super::huffman::TABLE_BYTES;
use super::join::{Backup, Join};
use super::route::{route, Route};
use super::split::{Split, GAP};
use super::*;
use crate::format::{op, varint};
use crate::stages::scan::tests::Rng;
use crate::{Config, Encoder, Fallback, Stages};

/// Payloads of real encoder output (all ops kinds, both codecs) over a few epochs.
fn payloads(cfg: Config) -> Vec<Vec<u8>> {
    let cfg = Config {
        stages: Stages {
            entropy: false,
            ..cfg.stages
        },
        ..cfg
    };
    let ps = cfg.page_size;
    let mut enc = Encoder::new(cfg).unwrap();
    let mut rng = Rng(81);
    let pages = 48;
    // heap-like: JSON-ish text from a skewed alphabet, some zero pages, one random page
    let text = |rng: &mut Rng, buf: &mut [u8]| {
        const A: &[u8] = b"\"session\":{\"id\":1234567890,\"user\":\"abcdef\",\"ttl\":[]}, ";
        for b in buf {
            *b = A[rng.below(A.len()).min(rng.below(A.len()))];
        }
    };
    let mut mem = vec![0u8; pages * ps];
    for p in (0..pages).filter(|p| p % 5 != 0) {
        text(&mut rng, &mut mem[p * ps..(p + 1) * ps]);
    }
    rng.fill(&mut mem[7 * ps..8 * ps]);
    let mut out = Vec::new();
    for epoch in 0..5u64 {
        if epoch > 0 {
            for _ in 0..40 {
                let p = rng.below(pages);
                match rng.below(4) {
                    0 => mem[p * ps + rng.below(ps)] ^= 0x55,
                    1 => {
                        let (a, b) = (rng.below(pages), rng.below(pages));
                        mem.copy_within(a * ps..a * ps + ps / 2, b * ps + ps / 4);
                    }
                    2 => text(&mut rng, &mut mem[p * ps + 100..p * ps + 700]),
                    _ => mem[p * ps..(p + 1) * ps].fill(0),
                }
            }
        }
        enc.begin_epoch(epoch).unwrap();
        for p in 0..pages {
            enc.add_page((p * ps) as u64, &mem[p * ps..(p + 1) * ps])
                .unwrap();
        }
        let f = enc.end_epoch().unwrap();
        out.push(f[crate::format::HEADER_LEN..f.len() - crate::format::TRAILER_LEN].to_vec());
    }
    out
}

fn configs() -> Vec<Config> {
    let mut v = Vec::new();
    for fallback in [Fallback::Lz4, Fallback::Deflate(1), Fallback::None] {
        for (stages, bs) in [(Stages::ALL, 256), (Stages::NONE, 256), (Stages::ALL, 64)] {
            v.push(Config {
                block_size: bs,
                stages,
                fallback,
                ..Config::default()
            });
        }
    }
    v
}

#[test]
fn join_rebuilds_exactly_the_payload_the_split_took_apart() {
    let mut ee = EntropyEncoder::default();
    let mut ed = EntropyDecoder::default();
    let mut kinds = [false; 8];
    for cfg in configs() {
        for p in payloads(cfg) {
            // record which op kinds this covers
            for (i, s) in [
                op::ZERO,
                op::RAW,
                op::COMPRESSED,
                op::DELTA,
                op::DICT,
                op::BLOCKS,
                op::RUN,
            ]
            .iter()
            .enumerate()
            {
                kinds[i] |= p.first().is_some_and(|&t| t & 15 == *s) || p.contains(s);
            }
            let mut coded = Vec::new();
            ee.encode(&p, cfg.page_size, cfg.block_size, None, &mut coded)
                .unwrap();
            let mut back = Vec::new();
            ed.decode(
                &coded,
                cfg.page_size,
                cfg.block_size,
                &mut back,
                &mut |_, _| false,
            )
            .unwrap();
            assert!(back == p, "{cfg:?}");
        }
    }
}

#[test]
fn heap_like_payloads_shrink() {
    let cfg = Config::default();
    let mut ee = EntropyEncoder::default();
    let p = &payloads(cfg)[0];
    let mut coded = Vec::new();
    ee.encode(p, cfg.page_size, cfg.block_size, None, &mut coded)
        .unwrap();
    assert!(
        coded.len() * 10 < p.len() * 9,
        "{} -> {}: expected at least 10% saved on skewed bytes",
        p.len(),
        coded.len()
    );
}

#[test]
fn every_stream_is_stored_when_coding_would_not_pay() {
    // one RAW op of random bytes: the literal stream is incompressible
    let mut rng = Rng(82);
    let mut p = vec![op::RAW, 0];
    let mut page = vec![0u8; 4096];
    rng.fill(&mut page);
    p.extend_from_slice(&page);
    let mut coded = Vec::new();
    EntropyEncoder::default()
        .encode(&p, 4096, 256, None, &mut coded)
        .unwrap();
    // six stored streams: mode + length each, plus the bytes
    assert_eq!(
        coded.len(),
        p.len() + 6 + 7,
        "mode and length of each stream"
    );
    assert!(coded.chunks(1).next() == Some(&[MODE_STORED][..]));
}

#[test]
fn split_refuses_what_is_not_a_payload() {
    let mut ee = EntropyEncoder::default();
    let mut out = Vec::new();
    for bad in [
        &[0x0f, 0x00][..],                   // unknown kind
        &[op::RAW, 0x00, 1, 2, 3],           // raw page cut short
        &[op::DICT, 0x00, 0x00],             // zero length
        &[op::DICT, 0x00, 0x03, 0x10, 0x41], // literal run past the block
        &[op::ZERO, 0x80],                   // address varint cut short
        &[op::COMPRESSED, 0x00, 0x01, 0x00], // codec 0
    ] {
        assert!(
            ee.encode(bad, 4096, 256, None, &mut out).is_err(),
            "{bad:x?}"
        );
    }
}

/// A valid coded payload to damage.
fn sample() -> (Vec<u8>, Vec<u8>) {
    let cfg = Config::default();
    let p = payloads(cfg).swap_remove(1);
    let mut coded = Vec::new();
    EntropyEncoder::default()
        .encode(&p, cfg.page_size, cfg.block_size, None, &mut coded)
        .unwrap();
    assert_ne!(coded[0], MODE_STORED, "the control stream is coded");
    (p, coded)
}

#[test]
fn container_errors_are_reported() {
    let (_, coded) = sample();
    let mut ed = EntropyDecoder::default();
    let mut out = Vec::new();
    let mut dec = |c: &[u8]| ed.decode(c, 4096, 256, &mut out, &mut |_, _| false);
    assert!(matches!(dec(&[]), Err(EntropyError::Container(_))));
    assert!(
        matches!(dec(&[7, 0]), Err(EntropyError::Container(_))),
        "unknown mode"
    );
    // a stored stream longer than what follows
    assert!(matches!(
        dec(&[0, 5, 1, 2]),
        Err(EntropyError::Container(_))
    ));
    // a declared length past the limit allocates nothing and is refused
    let mut huge = vec![0u8];
    varint::put(&mut huge, MAX_PLAIN_BYTES as u64 + 1);
    assert!(matches!(dec(&huge), Err(EntropyError::Container(_))));
    // a Huffman stream declaring more symbols than its bits can hold
    let mut over = vec![MODE_HUFFMAN];
    varint::put(&mut over, 1000);
    over.extend_from_slice(&[0x11; TABLE_BYTES]);
    over.extend_from_slice(&[1, 0]);
    assert!(matches!(dec(&over), Err(EntropyError::Container(_))));
    // trailing bytes
    let mut longer = coded.clone();
    longer.push(0);
    assert!(matches!(dec(&longer), Err(EntropyError::Container(_))));
    // every truncation
    for n in 0..coded.len() {
        assert!(dec(&coded[..n]).is_err(), "truncated at {n}");
    }
}

#[test]
fn a_stream_with_bytes_left_over_is_refused() {
    // a payload of one ZERO op, with an extra literal byte in the literal stream
    let mut c = vec![MODE_STORED, 2, op::ZERO, 0]; // ctrl
    c.extend_from_slice(&[MODE_STORED, 0]); // tokens
    c.extend_from_slice(&[MODE_STORED, 1, 0xaa]); // literals: one byte too many
    for _ in 3..STREAMS {
        c.extend_from_slice(&[MODE_STORED, 0]);
    }
    let mut out = Vec::new();
    assert!(matches!(
        EntropyDecoder::default().decode(&c, 4096, 256, &mut out, &mut |_, _| false),
        Err(EntropyError::Streams(_))
    ));
    c[7] = 0; // literal stream empty, drop its byte
    c.remove(8);
    EntropyDecoder::default()
        .decode(&c, 4096, 256, &mut out, &mut |_, _| false)
        .unwrap();
    assert_eq!(out, [op::ZERO, 0]);
}

#[test]
fn damaged_containers_never_panic() {
    let (p, coded) = sample();
    let mut rng = Rng(83);
    let mut ed = EntropyDecoder::default();
    let mut out = Vec::new();
    let mut refused = 0;
    let rounds = if cfg!(miri) { 20 } else { 2000 };
    for _ in 0..rounds {
        let mut c = coded.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(c.len());
            c[i] ^= 1 << rng.below(8);
        }
        match ed.decode(&c, 4096, 256, &mut out, &mut |_, _| false) {
            Err(_) => refused += 1,
            // the rebuilt payload may differ; the frame's checksum and the op validation catch it
            Ok(()) => assert!(out.len() <= 8 * c.len()),
        }
    }
    // flips inside literal bytes rebuild another valid-looking payload; flips in lengths,
    // tables and codes are refused here
    assert!(refused > rounds / 4, "{refused} of {rounds} refused");
    ed.decode(&coded, 4096, 256, &mut out, &mut |_, _| false)
        .unwrap();
    assert!(out == p);
}

/// The generic walk over a [`Split`] or a [`Join`], without their fast lz4 paths.
struct Generic<R>(R);

impl<R: Route> Route for Generic<R> {
    fn more(&self) -> bool {
        self.0.more()
    }
    fn byte(&mut self, s: Stream) -> Result<u8, &'static str> {
        self.0.byte(s)
    }
    fn bytes(&mut self, s: Stream, n: usize) -> Result<(), &'static str> {
        self.0.bytes(s, n)
    }
}

/// Split's own lz4 walk moves exactly the bytes the generic walk moves, to the same places, and
/// fails where it fails.
#[test]
fn split_lz4_equals_generic_route() {
    let mut checked = 0;
    let mut rng = Rng(84);
    for cfg in configs() {
        for p in payloads(cfg) {
            let mut variants = vec![p.clone()];
            // damaged copies: both walks must agree on failing or on every byte
            for _ in 0..20 {
                let mut d = p.clone();
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
                variants.push(d);
            }
            for v in variants {
                let (ps, bs) = (cfg.page_size, cfg.block_size);
                let mut fast = Split::counting(&v);
                let mut gen = Generic(Split::counting(&v));
                let (rf, rg) = (route(&mut fast, ps, bs), route(&mut gen, ps, bs));
                assert_eq!(rf.is_ok(), rg.is_ok());
                if rf.is_err() {
                    continue;
                }
                assert_eq!(fast.at, gen.0.at);
                let lens = fast.at;
                // regions with the gap the encoder leaves after each
                let mut start = [0usize; STREAMS + 1];
                for s in 0..STREAMS {
                    start[s + 1] = start[s] + lens[s] + GAP;
                }
                let mut out_fast = vec![0u8; start[STREAMS]];
                let mut out_gen = vec![0u8; start[STREAMS]];
                let at: [usize; STREAMS] = std::array::from_fn(|s| start[s]);
                let mut fast = Split::moving(&v, at, &mut out_fast);
                route(&mut fast, ps, bs).unwrap();
                let mut gen = Generic(Split::moving(&v, at, &mut out_gen));
                route(&mut gen, ps, bs).unwrap();
                for s in 0..STREAMS {
                    let r = start[s]..start[s] + lens[s];
                    assert!(out_fast[r.clone()] == out_gen[r], "stream {s}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 50);
}

/// The streams of payload `p`, split by the generic walk.
fn streams_of(p: &[u8], ps: usize, bs: usize) -> Vec<Vec<u8>> {
    let mut count = Split::counting(p);
    route(&mut count, ps, bs).unwrap();
    let mut start = [0usize; STREAMS + 1];
    for s in 0..STREAMS {
        start[s + 1] = start[s] + count.at[s];
    }
    let mut buf = vec![0u8; p.len()];
    let at: [usize; STREAMS] = std::array::from_fn(|s| start[s]);
    route(&mut Generic(Split::moving(p, at, &mut buf)), ps, bs).unwrap();
    (0..STREAMS)
        .map(|s| buf[start[s]..start[s + 1]].to_vec())
        .collect()
}

/// One byte of one stream changed, removed or inserted.
fn damage(rng: &mut Rng, streams: &mut [Vec<u8>]) {
    let s = rng.below(STREAMS);
    let v = &mut streams[s];
    match rng.below(3) {
        _ if v.is_empty() => v.push(rng.below(256) as u8),
        0 => {
            let i = rng.below(v.len());
            v[i] = rng.below(256) as u8;
        }
        1 => {
            v.remove(rng.below(v.len()));
        }
        _ => v.insert(rng.below(v.len()), rng.below(256) as u8),
    }
}

/// Join's own lz4 walk rebuilds exactly what the generic walk rebuilds, from the same stream
/// positions, and fails where it fails: on real streams and on streams with bytes changed,
/// dropped or added.
#[test]
fn join_lz4_equals_generic_route() {
    let mut checked = (0, 0);
    damaged_streams(85, |p, ps, bs, round, refs| {
        let total: usize = refs.iter().map(|s| s.len()).sum();
        let (mut out_f, mut out_g) = (vec![0u8; total], vec![0u8; total]);
        let mut f = Join::new(refs, &mut out_f, None);
        let rf = route(&mut f, ps, bs);
        let (pos_f, o_f) = (f.pos, f.o);
        let mut g = Generic(Join::new(refs, &mut out_g, None));
        let rg = route(&mut g, ps, bs);
        let (pos_g, o_g) = (g.0.pos, g.0.o);
        assert_eq!(rf.is_ok(), rg.is_ok(), "round {round}");
        if rf.is_ok() {
            assert_eq!((pos_f, o_f), (pos_g, o_g));
            assert!(out_f[..o_f] == out_g[..o_g]);
            checked.0 += 1;
        } else {
            checked.1 += 1;
        }
        if round == 0 {
            assert!(out_f[..o_f] == p[..]);
        }
    });
    assert!(checked.0 > 50 && checked.1 > 50, "{checked:?}");
}

/// Calls `f(payload, ps, bs, round, streams)` for the streams of every test payload: round 0
/// as split, rounds 1 to 29 each with one byte changed, dropped or added.
fn damaged_streams(seed: u64, mut f: impl FnMut(&[u8], usize, usize, usize, [&[u8]; STREAMS])) {
    let mut rng = Rng(seed);
    for cfg in configs() {
        let (ps, bs) = (cfg.page_size, cfg.block_size);
        for p in payloads(cfg) {
            let clean = streams_of(&p, ps, bs);
            for round in 0..30 {
                let mut streams = clean.clone();
                if round > 0 {
                    damage(&mut rng, &mut streams);
                }
                f(&p, ps, bs, round, std::array::from_fn(|s| &streams[s][..]));
            }
        }
    }
}

/// A staging area without a size limit that records what it is given.
#[derive(Default)]
struct Kept {
    /// Each slot: its output length, whether it has a dictionary, and its bytes.
    slots: Vec<(usize, bool, Vec<u8>)>,
    closed: bool,
    /// Whether the join may leave the blocks kept here out of the payload.
    skip: bool,
}

impl Staging for Kept {
    fn slot(&mut self, len: usize, dict: bool) -> Option<&mut [u8]> {
        if self.closed {
            return None;
        }
        self.slots.push((len, dict, vec![0xee; len]));
        self.slots.last_mut().map(|s| &mut s.2[..])
    }
    fn skip_body(&mut self) -> bool {
        self.skip
    }
    fn drop_last(&mut self) {
        self.slots.pop();
        self.closed = true;
    }
    fn close(&mut self) {
        self.closed = true;
    }
}

/// The dictionary the tests' backup holds for page `idx`: bytes that do not repeat.
fn backup_page(idx: u64, buf: &mut [u8]) -> bool {
    let mut x = idx.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x >> 24) as u8;
    }
    true
}

/// The coded bodies of a payload in op order, as the route announces them: codec, output
/// length, whether the backup's page is the dictionary, the op's page, the body.
struct Bodies<'p> {
    src: &'p [u8],
    pos: usize,
    prev: u64,
    next: (u8, usize, bool),
    found: Vec<(u8, usize, bool, u64, &'p [u8])>,
}

impl Route for Bodies<'_> {
    fn more(&self) -> bool {
        self.pos < self.src.len()
    }
    fn byte(&mut self, _: Stream) -> Result<u8, &'static str> {
        let b = *self.src.get(self.pos).ok_or("past the payload")?;
        self.pos += 1;
        Ok(b)
    }
    fn bytes(&mut self, s: Stream, n: usize) -> Result<(), &'static str> {
        if s == Stream::Opaque {
            let (codec, out, dict) = self.next;
            self.found.push((
                codec,
                out,
                dict,
                self.prev,
                &self.src[self.pos..self.pos + n],
            ));
        }
        self.pos += n;
        Ok(())
    }
    fn op(&mut self, _: u8, rel: u64) {
        self.prev = self
            .prev
            .wrapping_add(1)
            .wrapping_add(varint::unzigzag(rel) as u64);
    }
    fn run_end(&mut self, pages_on: u64) {
        self.prev = self.prev.wrapping_add(pages_on);
    }
    fn coded(&mut self, codec: u8, out: usize, dict: bool) {
        self.next = (codec, out, dict);
    }
    fn lz4(&mut self, len: usize) -> Result<(), &'static str> {
        let (codec, out, dict) = self.next;
        let body = self
            .src
            .get(self.pos..self.pos + len)
            .ok_or("past the payload")?;
        self.found.push((codec, out, dict, self.prev, body));
        self.pos += len;
        Ok(())
    }
}

/// The coded bodies of `payload` (one the join rebuilt: well formed as far as the route sees).
fn bodies(payload: &[u8], ps: usize, bs: usize) -> Vec<(u8, usize, bool, u64, &[u8])> {
    let mut b = Bodies {
        src: payload,
        pos: 0,
        prev: u64::MAX,
        next: (0, 0, false),
        found: Vec::new(),
    };
    route(&mut b, ps, bs).unwrap();
    b.found
}

/// What the staging area must hold after a join of `payload`: the output of each coded body,
/// as [`lz4::decompress`](crate::lz4::decompress) gives it, up to the first body that is not
/// an lz4 block decoding to its length.
fn expected_stage(payload: &[u8], ps: usize, bs: usize) -> Vec<(usize, bool, Vec<u8>)> {
    let mut want = Vec::new();
    for (codec, out, dict, idx, body) in bodies(payload, ps, bs) {
        let mut d = vec![0u8; if dict { ps } else { 0 }];
        backup_page(idx, &mut d);
        let mut o = vec![0u8; out];
        if codec != 1 || crate::lz4::decompress(body, &d, &mut o).is_err() {
            break;
        }
        want.push((out, dict, o));
    }
    want
}

/// The payload a join with the tests' backup and an unbounded staging area rebuilds from
/// `streams`, and what it staged.
fn staged_join(
    streams: [&[u8]; STREAMS],
    ps: usize,
    bs: usize,
) -> Result<(Vec<u8>, Kept), &'static str> {
    staged_join_skipping(streams, ps, bs, false)
}

/// [`staged_join`] with a staging area that lets the join leave the blocks it keeps out of the
/// payload (`skip`); the payload's bytes start as zeros.
fn staged_join_skipping(
    streams: [&[u8]; STREAMS],
    ps: usize,
    bs: usize,
    skip: bool,
) -> Result<(Vec<u8>, Kept), &'static str> {
    let mut out = vec![0u8; streams.iter().map(|s| s.len()).sum()];
    let mut kept = Kept {
        skip,
        ..Kept::default()
    };
    let mut window = vec![0u8; 2 * ps];
    let mut load = backup_page;
    let backup = Backup::new(&mut load, Some(&mut kept), &mut window, ps);
    let mut j = Join::new(streams, &mut out, Some(backup));
    route(&mut j, ps, bs)?;
    let o = j.o;
    out.truncate(o);
    Ok((out, kept))
}

/// The join decodes each lz4 block into the staging area exactly as `lz4::decompress` does, and
/// keeps a block exactly when it decodes to its length and every coded body before it was kept:
/// on the encoder's payloads and on streams damaged so that blocks break.
#[test]
fn the_join_stages_what_lz4_decodes() {
    let (mut kept_blocks, mut cut) = (0, 0);
    damaged_streams(86, |_, ps, bs, round, refs| {
        let Ok((out, kept)) = staged_join(refs, ps, bs) else {
            return;
        };
        let want = expected_stage(&out, ps, bs);
        assert!(kept.slots == want, "round {round}");
        kept_blocks += want.len();
        cut += (want.len() < bodies(&out, ps, bs).len()) as usize;
    });
    // (runs of pages make few blocks of many pages: fewer blocks than pages)
    assert!(kept_blocks > 400 && cut > 50, "{kept_blocks} {cut}");
}

/// A join that may leave the blocks it stages out of the payload stages the same blocks and
/// writes every other byte of the payload as a join that may not (a block that does not
/// decode to its slot included: the frame decoder reads it to say what is wrong), and refuses
/// the same streams.
#[test]
fn a_join_that_leaves_staged_blocks_out_writes_every_other_byte() {
    let (mut left_out, mut broken) = (0, 0);
    damaged_streams(87, |_, ps, bs, round, refs| {
        let full = staged_join(refs, ps, bs);
        let skipping = staged_join_skipping(refs, ps, bs, true);
        let ((out, kept), (out_s, kept_s)) = match (full, skipping) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(a), Err(b)) => return assert_eq!(a, b, "round {round}"),
            (a, b) => panic!("round {round}: {:?} against {:?}", a.err(), b.err()),
        };
        assert!(kept_s.slots == kept.slots, "round {round}");
        let all = bodies(&out, ps, bs);
        let mut want = out.clone();
        for (_, _, _, _, body) in &all[..kept.slots.len()] {
            let at = body.as_ptr() as usize - out.as_ptr() as usize;
            want[at..at + body.len()].fill(0);
            left_out += 1;
        }
        broken += (kept.slots.len() < all.len()) as usize;
        assert!(out_s == want, "round {round}");
    });
    assert!(left_out > 400 && broken > 50, "{left_out} {broken}");
}

/// An lz4 block decoding to `ps` bytes: `lead` literals, a 4-byte match at offset `off`, then
/// literals to the end.
fn one_match_block(ps: usize, lead: usize, off: usize) -> Vec<u8> {
    let length = |b: &mut Vec<u8>, mut n: usize| {
        while n >= 255 {
            b.push(255);
            n -= 255;
        }
        b.push(n as u8);
    };
    let mut b = vec![(lead as u8) << 4];
    b.extend((0..lead).map(|i| b'a' + i as u8));
    b.extend_from_slice(&(off as u16).to_le_bytes());
    let tail = ps - lead - 4;
    b.push(0xf0);
    length(&mut b, tail - 15);
    b.extend((0..tail).map(|i| (i * 13) as u8));
    b
}

/// The join keeps a block whose match reaches exactly to the start of what it may refer to
/// (the output, or the dictionary before it) and not one whose match reaches a byte further.
#[test]
fn the_join_stages_a_block_up_to_the_edge_of_its_window() {
    let (ps, bs) = (4096, 256);
    for (kind, lead, off, whole) in [
        (op::COMPRESSED | 1 << 4, 4, 4, true),
        (op::COMPRESSED | 1 << 4, 4, 5, false),
        (op::DICT, 0, ps, true),
        (op::DICT, 0, ps + 1, false),
        (op::DICT, 3, ps + 3, true),
        (op::DICT, 3, ps + 4, false),
    ] {
        let block = one_match_block(ps, lead, off);
        let mut p = vec![kind, 0];
        varint::put(&mut p, block.len() as u64);
        p.extend_from_slice(&block);
        let streams = streams_of(&p, ps, bs);
        let (out, kept) = staged_join(std::array::from_fn(|s| &streams[s][..]), ps, bs).unwrap();
        assert!(out == p);
        assert!(kept.slots == expected_stage(&p, ps, bs));
        assert_eq!(kept.slots.len(), whole as usize, "{kind} {lead} {off}");
    }
}

/// A payload of DICT and COMPRESSED ops over the tests' backup pages, each page changed in runs
/// that move every byte by one or two: literals the byte at their position in the old page
/// predicts, so coding them in their contexts pays.
fn predictable_payload(ps: usize) -> Vec<u8> {
    let mut lz = crate::lz4::PageLz::new();
    let (mut p, mut buf) = (Vec::new(), vec![0u8; 2 * ps]);
    for idx in 0..24u64 {
        let mut old = vec![0u8; ps];
        backup_page(idx, &mut old);
        let new: Vec<u8> = old
            .iter()
            .enumerate()
            .map(|(i, &b)| match (i / 64 + idx as usize) % 3 {
                0 => b,
                k => b.wrapping_add(k as u8),
            })
            .collect();
        let (tag, dict) = match idx % 4 {
            3 => (op::COMPRESSED | 1 << 4, &[][..]),
            _ => (op::DICT, &old[..]),
        };
        let n = lz.compress_with_dict(&new, dict, &mut buf).unwrap();
        p.push(tag);
        varint::put(&mut p, 0); // the page after the last
        varint::put(&mut p, n as u64);
        p.extend_from_slice(&buf[..n]);
    }
    p
}

/// The same through the entropy decoder, with the literals coded with one table and in their
/// contexts (the join that decodes them one by one), on the encoder's payloads and one whose
/// literals are worth coding in their contexts.
#[test]
fn the_entropy_decoder_stages_what_lz4_decodes() {
    let (mut ee, mut ed) = (EntropyEncoder::default(), EntropyDecoder::default());
    let (mut kept_blocks, mut by_context) = (0, 0);
    for cfg in configs() {
        let (ps, bs) = (cfg.page_size, cfg.block_size);
        let mut all = payloads(cfg);
        all.push(predictable_payload(ps));
        for p in all {
            // contexts of the lz4 literals as the encoder would find them with this backup
            let mut ctx = Vec::new();
            for (codec, out, dict, idx, body) in bodies(&p, ps, bs) {
                if codec == 1 {
                    let mut d = vec![0u8; if dict { ps } else { 0 }];
                    backup_page(idx, &mut d);
                    let mut o = vec![0u8; out];
                    crate::lz4::decompress(body, &d, &mut o).unwrap();
                    context::lz4_literal_contexts(body, &d, &o, &mut ctx);
                }
            }
            let want = expected_stage(&p, ps, bs);
            for contexts in [false, true] {
                let mut coded = Vec::new();
                if contexts {
                    ee.encode(&p, ps, bs, Some(&ctx), &mut coded).unwrap();
                } else {
                    ee.encode_plain(&p, ps, bs, &mut coded).unwrap();
                }
                let (mut back, mut kept) = (Vec::new(), Kept::default());
                ed.decode_staged(
                    crate::format::VERSION,
                    &coded,
                    ps,
                    bs,
                    &mut back,
                    &mut backup_page,
                    Some(&mut kept),
                )
                .unwrap();
                assert!(back == p);
                assert!(kept.slots == want, "{cfg:?} contexts {contexts}");
                kept_blocks += want.len();
                let mut tables: [context::ContextTables; STREAMS] = Default::default();
                let (at, _) =
                    container::parse(&coded, &mut tables, crate::format::VERSION).unwrap();
                by_context += at[Stream::Literals as usize].context as usize;
            }
        }
    }
    assert!(
        kept_blocks > 500 && by_context > 5,
        "{kept_blocks} {by_context}"
    );
}

/// A payload of three RAW pages of skewed bytes: a literal stream long enough to be coded in
/// parts, and its entropy-coded form, with where the literal stream's header starts.
fn parted_sample() -> (Vec<u8>, Vec<u8>, usize) {
    let mut rng = Rng(83);
    let mut p = Vec::new();
    for _ in 0..3 {
        p.extend_from_slice(&[op::RAW, 0]);
        p.extend((0..4096).map(|_| (rng.below(40).min(rng.below(40)) + b'a' as usize) as u8));
    }
    let mut coded = Vec::new();
    EntropyEncoder::default()
        .encode_plain(&p, 4096, 256, &mut coded)
        .unwrap();
    // CTRL and TOKENS are short: find LITERALS after them
    let mut pos = 0;
    for _ in 0..Stream::Literals as usize {
        assert_eq!(coded[pos], MODE_STORED);
        pos += 1;
        let n = varint::get(&coded, &mut pos).unwrap() as usize;
        pos += n;
    }
    (p, coded, pos)
}

/// Version 3 codes a long Huffman stream in parts; the payload decodes as version 3 and is
/// refused as version 2 (which has no parts), and part lengths that do not fit the coded bytes
/// are refused.
#[test]
fn long_streams_are_coded_in_parts_from_version_3_on() {
    let (p, coded, lit) = parted_sample();
    assert_eq!(coded[lit], MODE_HUFFMAN_LISTED);
    let mut pos = lit + 1;
    assert_eq!(varint::get(&coded, &mut pos), Some(3 * 4096));
    pos += container::listed_table_len(40);
    let table_end = pos;
    let first: Vec<u64> = (0..3)
        .map(|_| varint::get(&coded, &mut pos).unwrap())
        .collect();
    let parts_end = pos;
    let total = varint::get(&coded, &mut pos).unwrap();
    assert!(first.iter().all(|&b| b > 0) && first.iter().sum::<u64>() < total);
    let mut ed = EntropyDecoder::default();
    let mut out = Vec::new();
    let mut load = |_: u64, _: &mut [u8]| false;
    ed.decode_version(
        crate::format::VERSION_3,
        &coded,
        4096,
        256,
        &mut out,
        &mut load,
    )
    .unwrap();
    assert!(out == p);
    assert!(ed
        .decode_version(
            crate::format::VERSION_2,
            &coded,
            4096,
            256,
            &mut out,
            &mut load
        )
        .is_err());
    // part lengths rewritten: a part of no bytes, parts as long as all the coded bytes
    for parts in [
        [0, first[1], first[2]],
        [first[0], total, 1],
        [total / 3; 3],
    ] {
        let mut bad = coded[..table_end].to_vec();
        for b in parts {
            varint::put(&mut bad, b);
        }
        bad.extend_from_slice(&coded[parts_end..]);
        let r = ed.decode_version(
            crate::format::VERSION_3,
            &bad,
            4096,
            256,
            &mut out,
            &mut load,
        );
        assert!(r.is_err(), "{parts:?}");
    }
}
