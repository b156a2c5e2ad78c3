//! Property: every malformed frame is refused with its specific error, the replica stays
//! byte-identical, and the decoder's state does not move (the genuine frame still applies).

use fgbi::frame::{self, op, Header, HEADER_LEN};
use fgbi::{varint, Config, Decoder, Encoder, Error};

const PAGES: usize = 16;
const PS: usize = 4096;

/// A primary that has sent epochs 0 and 1; `next` is the genuine frame of epoch 2.
struct Setup {
    dec: Decoder,
    replica: Vec<u8>,
    next: Vec<u8>,
    primary_after_next: Vec<u8>,
}

fn setup() -> Setup {
    let cfg = Config {
        cache_bytes: 1 << 20,
        ..Config::default()
    };
    let mut enc = Encoder::new(cfg).unwrap();
    // every setup() is the same stream, so a frame made from one applies to another
    enc.set_stream_id(0x5eed);
    let mut dec = Decoder::new(cfg).unwrap();
    let mut mem: Vec<u8> = (0..PAGES * PS)
        .map(|i| ((i / 7) as u8).wrapping_mul(i as u8 | 1))
        .collect();
    mem[3 * PS..4 * PS].fill(0);
    let mut replica = vec![0u8; mem.len()];
    let mut sent = vec![0xffu8; mem.len()];
    for epoch in 0..3u64 {
        enc.begin_epoch(epoch).unwrap();
        for p in 0..PAGES {
            let r = p * PS..(p + 1) * PS;
            if mem[r.clone()] != sent[r.clone()] {
                enc.add_page((p * PS) as u64, &mem[r]).unwrap();
            }
        }
        sent.copy_from_slice(&mem);
        let f = enc.end_epoch().unwrap().to_vec();
        if epoch == 2 {
            return Setup {
                dec,
                replica,
                next: f,
                primary_after_next: mem,
            };
        }
        dec.apply_flat(&f, &mut replica).unwrap();
        assert!(replica == mem, "setup: replica differs after epoch {epoch}");
        // change a few bytes of some pages and copy a block across pages for the next epoch
        for p in (0..PAGES).filter(|p| p % 3 != epoch as usize) {
            mem[p * PS + 40 + epoch as usize] ^= 0x5a;
        }
        let blk = mem[PS..PS + 256].to_vec();
        mem[8 * PS + 1024..8 * PS + 1280].copy_from_slice(&blk);
    }
    unreachable!()
}

/// Applies `bad`, expects `check(err)`, then proves nothing moved: the replica is unchanged and
/// the genuine next frame still applies and yields the primary.
fn refused(bad: &[u8], check: impl Fn(&Error) -> bool) {
    let mut s = setup();
    let before = s.replica.clone();
    let err = s
        .dec
        .apply_flat(bad, &mut s.replica)
        .expect_err("malformed frame was accepted");
    assert!(check(&err), "unexpected error: {err:?}");
    assert!(
        s.replica == before,
        "replica written by a rejected frame ({err})"
    );
    s.dec
        .apply_flat(&s.next, &mut s.replica)
        .expect("genuine frame refused after a rejected one");
    assert!(s.replica == s.primary_after_next);
}

/// Rewrites a header field and recomputes the checksum, so the field's own check is reached.
fn resealed(f: &[u8], edit: impl Fn(&mut Header)) -> Vec<u8> {
    let (mut h, payload) = frame::open(f).unwrap();
    edit(&mut h);
    let mut buf = vec![0u8; HEADER_LEN];
    buf.extend_from_slice(payload);
    let declared = h.payload_len;
    frame::seal(&mut buf, h);
    // seal recomputes payload_len; keep a deliberately wrong one if the edit set it
    if declared != payload.len() as u64 {
        buf[40..48].copy_from_slice(&declared.to_le_bytes());
        let body = buf.len() - 8;
        let sum = xxhash_rust::xxh3::xxh3_64(&buf[..body]);
        buf[body..].copy_from_slice(&sum.to_le_bytes());
    }
    buf
}

/// A frame with a hand-written payload, continuing the stream of `setup()`'s next frame.
fn crafted(template: &[u8], op_count: u32, payload: &[u8]) -> Vec<u8> {
    let (mut h, _) = frame::open(template).unwrap();
    h.op_count = op_count;
    let mut buf = vec![0u8; HEADER_LEN];
    buf.extend_from_slice(payload);
    frame::seal(&mut buf, h);
    buf
}

#[test]
fn truncated_at_every_offset() {
    let s = setup();
    for len in 0..s.next.len() {
        refused(&s.next[..len], |e| matches!(e, Error::Truncated { .. }));
    }
}

#[test]
fn one_bit_flipped_anywhere() {
    let s = setup();
    // every bit of the header and trailer, and a spread of payload bits
    let n = s.next.len() * 8;
    let bits = (0..(HEADER_LEN * 8))
        .chain((HEADER_LEN * 8..n).step_by(13))
        .chain(n - 64..n);
    for bit in bits {
        let mut bad = s.next.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        refused(&bad, |e| {
            matches!(
                e,
                Error::ChecksumMismatch { .. }
                    | Error::BadMagic
                    | Error::UnsupportedVersion(_)
                    | Error::BadHeader
                    | Error::Truncated { .. }
                    | Error::TrailingBytes { .. }
            )
        });
    }
}

#[test]
fn wrong_magic_version_and_header_length() {
    let s = setup();
    let mut bad = s.next.clone();
    bad[0] = b'X';
    refused(&bad, |e| *e == Error::BadMagic);
    let mut bad = s.next.clone();
    bad[4..6].copy_from_slice(&6u16.to_le_bytes());
    refused(&bad, |e| *e == Error::UnsupportedVersion(6));
    let mut bad = s.next.clone();
    bad[6..8].copy_from_slice(&40u16.to_le_bytes());
    refused(&bad, |e| *e == Error::BadHeader);
}

#[test]
fn wrong_page_or_block_size() {
    let s = setup();
    refused(&resealed(&s.next, |h| h.page_size = 8192), |e| {
        *e == Error::PageSizeMismatch {
            frame: 8192,
            config: 4096,
        }
    });
    refused(&resealed(&s.next, |h| h.block_size = 64), |e| {
        *e == Error::BlockSizeMismatch {
            frame: 64,
            config: 256,
        }
    });
}

#[test]
fn epoch_replayed_skipped_or_from_another_stream() {
    let s = setup();
    refused(&resealed(&s.next, |h| h.epoch = 1), |e| {
        *e == Error::EpochReplayed { last: 1, got: 1 }
    });
    refused(&resealed(&s.next, |h| h.epoch = 0), |e| {
        *e == Error::EpochReplayed { last: 1, got: 0 }
    });
    refused(&resealed(&s.next, |h| h.epoch = 3), |e| {
        *e == Error::EpochGap {
            expected: 2,
            got: 3,
        }
    });
    refused(&resealed(&s.next, |h| h.stream_id ^= 1), |e| {
        matches!(e, Error::ForeignStream { .. })
    });
    refused(&resealed(&s.next, |h| h.flags |= 0x80), |e| {
        *e == Error::UnknownFlags(0x80)
    });
}

#[test]
fn lengths_that_overflow() {
    let s = setup();
    refused(&resealed(&s.next, |h| h.payload_len = u64::MAX - 10), |e| {
        matches!(e, Error::Truncated { .. })
    });
    refused(&resealed(&s.next, |h| h.op_count += 1), |e| {
        matches!(e, Error::OpCountMismatch { .. })
    });
    refused(&resealed(&s.next, |h| h.op_count -= 1), |e| {
        matches!(e, Error::OpCountMismatch { .. })
    });
    // a compressed page declaring a length of 2^64 - 1
    let mut p = vec![op::COMPRESSED | 1 << 4, 0];
    varint::put(&mut p, u64::MAX);
    p.extend_from_slice(&[0; 16]);
    refused(&crafted(&s.next, 1, &p), |e| {
        matches!(e, Error::CorruptOp { op: 0, .. })
    });
    // a delta whose run reaches past the page
    let mut p = vec![op::DELTA, 0];
    let mut d = Vec::new();
    varint::put(&mut d, 4090);
    varint::put(&mut d, 10);
    d.extend_from_slice(&[7; 10]);
    varint::put(&mut p, d.len() as u64);
    p.extend_from_slice(&d);
    refused(&crafted(&s.next, 1, &p), |e| {
        matches!(e, Error::CorruptOp { op: 0, .. })
    });
    // a page address delta that wraps the 64-bit page index
    let mut p = vec![op::ZERO];
    varint::put(&mut p, varint::zigzag(i64::MIN));
    refused(&crafted(&s.next, 1, &p), |e| {
        matches!(e, Error::OutOfBounds { .. })
    });
}

#[test]
fn op_pointing_outside_memory() {
    let s = setup();
    // page index PAGES is one past the replica
    let mut p = vec![op::ZERO];
    varint::put(&mut p, varint::zigzag(PAGES as i64));
    refused(&crafted(&s.next, 1, &p), |e| {
        *e == Error::OutOfBounds {
            op: 0,
            addr: (PAGES * PS) as u64,
        }
    });
    // a valid op first, so a partial write would show
    let mut p = vec![op::ZERO, 0, op::ZERO];
    varint::put(&mut p, varint::zigzag(1000));
    refused(&crafted(&s.next, 2, &p), |e| {
        matches!(e, Error::OutOfBounds { op: 1, .. })
    });
    // a genuine frame applied to a replica too small for it
    let mut s2 = setup();
    let mut small = s2.replica[..PS * 4].to_vec();
    let before = small.clone();
    let err = s2.dec.apply_flat(&s2.next, &mut small).unwrap_err();
    assert!(matches!(err, Error::OutOfBounds { .. }), "{err:?}");
    assert!(small == before);
}

#[test]
fn reference_to_a_location_never_sent() {
    // a fresh decoder has been sent nothing: a resync frame depending on old content is refused
    let cfg = Config::default();
    let mut dec = Decoder::new(cfg).unwrap();
    let mut mem = vec![0x11u8; PAGES * PS];
    let before = mem.clone();
    let frame_with = |payload: &[u8], ops: u32| {
        let h = Header {
            flags: frame::FLAG_RESYNC,
            page_size: 4096,
            block_size: 256,
            op_count: ops,
            stream_id: 7,
            epoch: 0,
            payload_len: 0,
            part: 0,
        };
        let mut buf = vec![0u8; HEADER_LEN];
        buf.extend_from_slice(payload);
        frame::seal(&mut buf, h);
        buf
    };
    // DELTA on page 3, never sent
    let p = [op::DELTA, varint::zigzag(3) as u8, 3, 0, 1, 0xee];
    assert_eq!(
        dec.apply_flat(&frame_with(&p, 1), &mut mem),
        Err(Error::UnknownPage {
            op: 0,
            addr: 3 * 4096
        })
    );
    // BLOCKS on page 0: block 0 references block 2 of page 5; the rest are zero blocks
    let mut p = vec![op::BLOCKS, 0];
    p.push(block_map(&[2, 1, 1, 1]));
    p.extend_from_slice(&[0x55; 3]);
    varint::put(&mut p, varint::zigzag(5));
    varint::put(&mut p, 2);
    assert_eq!(
        dec.apply_flat(&frame_with(&p, 1), &mut mem),
        Err(Error::UnknownPage {
            op: 0,
            addr: 5 * 4096
        })
    );
    // the same reference after page 5 was sent in the same frame is fine
    let mut ok = vec![op::ZERO, varint::zigzag(5) as u8];
    ok.extend_from_slice(&[op::BLOCKS, varint::zigzag(-6) as u8]);
    ok.extend_from_slice(&p[2..]);
    assert!(mem == before);
    dec.apply_flat(&frame_with(&ok, 2), &mut mem).unwrap();
    assert!(mem[..PS].iter().all(|&b| b == 0));
    // a frame that is not a resync frame is refused by a fresh decoder
    let mut fresh = Decoder::new(cfg).unwrap();
    let mut f = frame_with(&[op::ZERO, 0], 1);
    f[8] = 0;
    let body = f.len() - 8;
    let sum = xxhash_rust::xxh3::xxh3_64(&f[..body]);
    f[body..].copy_from_slice(&sum.to_le_bytes());
    assert_eq!(
        fresh.apply_flat(&f, &mut mem),
        Err(Error::NotSynchronized { epoch: 0 })
    );
}

/// Block map bytes for 16 blocks, given codes for the first four; the rest are zero blocks.
fn block_map(first: &[u8; 4]) -> u8 {
    first
        .iter()
        .enumerate()
        .fold(0u8, |acc, (i, c)| acc | c << (2 * i))
}

#[test]
fn unknown_op_kind_and_codec() {
    let s = setup();
    refused(&crafted(&s.next, 1, &[0x0f, 0]), |e| {
        matches!(e, Error::CorruptOp { op: 0, .. })
    });
    refused(
        &crafted(&s.next, 1, &[op::COMPRESSED | 7 << 4, 0, 1, 0]),
        |e| matches!(e, Error::CorruptOp { .. }),
    );
    refused(&crafted(&s.next, 1, &[op::ZERO | 1 << 4, 0]), |e| {
        matches!(e, Error::CorruptOp { .. })
    });
    // garbage in a compressed page with a valid checksum
    refused(
        &crafted(
            &s.next,
            1,
            &[op::COMPRESSED | 1 << 4, 0, 4, 0xff, 0xff, 0xff, 0xff],
        ),
        |e| matches!(e, Error::CorruptOp { .. }),
    );
}

/// Entropy-coded payloads (flag ENTROPY) that do not decode are refused with `Entropy` before
/// anything is written, each with a valid checksum so the container's own checks are reached:
/// the flag on a plain payload, the coded payload cut short at every length, a stream mode that
/// does not exist, and a stream longer than the bytes present.
#[test]
fn entropy_coded_payloads_that_do_not_decode() {
    let mut s = setup();
    let (h, plain) = frame::open(&s.next).unwrap();
    let plain = plain.to_vec();
    let h = if h.flags & frame::FLAG_ENTROPY != 0 {
        h
    } else {
        // the genuine next frame, entropy coded by hand (the encoder found it too small to pay)
        let mut coded = Vec::new();
        fgbi::entropy::EntropyEncoder::default()
            .encode(&plain, PS, Config::default().block_size, None, &mut coded)
            .unwrap();
        let f = crafted(&s.next, h.op_count, &coded);
        s.next = resealed(&f, |h| h.flags |= frame::FLAG_ENTROPY);
        frame::open(&s.next).unwrap().0
    };
    let payload = frame::open(&s.next).unwrap().1.to_vec();
    let next = s.next.clone();
    // it applies, and every refusal below leaves room for it (see `refused`)
    s.dec.apply_flat(&next, &mut s.replica).unwrap();
    assert!(s.replica == s.primary_after_next);
    let entropy = |e: &Error| matches!(e, Error::Entropy(_));
    let with = |payload: &[u8], flags: u32| {
        let f = crafted(&next, h.op_count, payload);
        resealed(&f, |h| h.flags = flags)
    };
    // a plain payload (ZERO op on page 0) that claims to be entropy coded
    refused(&with(&[op::ZERO, 0], h.flags), entropy);
    for n in (0..payload.len()).step_by(7) {
        refused(&with(&payload[..n], h.flags), |e| {
            entropy(e) || matches!(e, Error::OpCountMismatch { .. })
        });
    }
    let mut bad_mode = payload.clone();
    bad_mode[0] = 9;
    refused(&with(&bad_mode, h.flags), entropy);
    let mut long = vec![0u8]; // stored CTRL stream declaring 1 GiB
    varint::put(&mut long, 1 << 30);
    refused(&with(&long, h.flags), entropy);
    // the genuine payload without the flag is not a valid plain payload either
    refused(&with(&payload, h.flags & !frame::FLAG_ENTROPY), |e| {
        matches!(
            e,
            Error::CorruptOp { .. }
                | Error::OutOfBounds { .. }
                | Error::UnknownPage { .. }
                | Error::OpCountMismatch { .. }
        )
    });
}

/// A RUN op (format version 4): two pages and a gap, then an op whose address counts from the
/// run's last page, applies as written; a run of fewer than two pages or more than 64 KiB of
/// them, a page past the replica, a codec other than lz4, a block that does not decode to its
/// pages, and a RUN op in a version 3 frame are each refused with nothing written.
#[test]
fn run_ops_apply_and_malformed_ones_are_refused() {
    let s = setup();
    let pages: Vec<u8> = (0..2 * PS).map(|i| (i % 251) as u8).collect();
    let lz = |input: &[u8]| {
        let mut out = vec![0u8; input.len() + 64];
        let n = fgbi::lz::PageLz::new().compress(input, &mut out).unwrap();
        out.truncate(n);
        out
    };
    let block = lz(&pages);
    // a RUN of pages 5 and 7, then a ZERO op on page 8 (address 0: the one after the run's last)
    let run = |count: u64, gap: u64, first: i64, block: &[u8], tag: u8| {
        let mut p = vec![tag];
        varint::put(&mut p, varint::zigzag(first));
        varint::put(&mut p, count);
        for _ in 1..count {
            varint::put(&mut p, gap);
        }
        varint::put(&mut p, block.len() as u64);
        p.extend_from_slice(block);
        p
    };
    let lz4 = op::RUN | 1 << 4;
    let mut p = run(2, 1, 5, &block, lz4);
    p.extend_from_slice(&[op::ZERO, 0]);
    let mut good = setup();
    let pages_before = good.dec.stats().pages;
    let applied = good
        .dec
        .apply_flat(&crafted(&s.next, 2, &p), &mut good.replica)
        .unwrap();
    assert_eq!(applied.ops, 2);
    assert!(good.replica[5 * PS..6 * PS] == pages[..PS]);
    assert!(good.replica[7 * PS..8 * PS] == pages[PS..]);
    assert!(good.replica[8 * PS..9 * PS].iter().all(|&b| b == 0));
    assert!(good.replica[6 * PS..7 * PS] == s.replica[6 * PS..7 * PS]);
    assert_eq!(good.dec.stats().pages - pages_before, 3);

    let corrupt = |e: &Error| matches!(e, Error::CorruptOp { op: 0, .. });
    // one page, and more than 64 KiB of pages
    refused(&crafted(&s.next, 1, &run(1, 0, 5, &block, lz4)), corrupt);
    let big = lz(&vec![0u8; 17 * PS]);
    refused(&crafted(&s.next, 1, &run(17, 0, 0, &big, lz4)), corrupt);
    // a page past the replica: the second page, 20 pages on
    refused(&crafted(&s.next, 1, &run(2, 19, 0, &block, lz4)), |e| {
        *e == Error::OutOfBounds {
            op: 0,
            addr: (20 * PS) as u64,
        }
    });
    // deflate and raw codecs
    refused(
        &crafted(&s.next, 1, &run(2, 0, 5, &block, op::RUN | 2 << 4)),
        corrupt,
    );
    refused(
        &crafted(&s.next, 1, &run(2, 0, 5, &block, op::RUN)),
        corrupt,
    );
    // the block is the pages of a run of two: as a run of three it is short
    refused(&crafted(&s.next, 1, &run(3, 0, 5, &block, lz4)), corrupt);
    // a version 3 frame has no RUN op
    let v3 = resealed(&crafted(&s.next, 1, &run(2, 0, 5, &block, lz4)), |_| {});
    let mut v3 = v3;
    v3[4..6].copy_from_slice(&3u16.to_le_bytes());
    let body = v3.len() - 8;
    let sum = xxhash_rust::xxh3::xxh3_64(&v3[..body]);
    v3[body..].copy_from_slice(&sum.to_le_bytes());
    refused(&v3, |e| {
        *e == Error::CorruptOp {
            op: 0,
            what: "unknown op kind",
        }
    });
}
