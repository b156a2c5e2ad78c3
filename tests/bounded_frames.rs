//! Epochs sent in parts (`Config::frame_bytes`): every part is a frame the decoder applies on
//! arrival, a part is never much larger than the limit, the replica is exact after each epoch's
//! last part, misuse of the part protocol is refused without losing the encoder's place, and the
//! decoder refuses parts missing, repeated or out of order while accepting a resync that
//! abandons an open epoch.

use fgbi::format::{self, HEADER_LEN, TRAILER_LEN};
use fgbi::{Config, Decoder, Encoder, Error};

const PS: usize = 4096;
const PAGES: usize = 192;

/// Memory that changes every epoch: zero pages, text-like pages, noise, moved content.
fn epochs(n: usize) -> Vec<Vec<u8>> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut mem = vec![0u8; PAGES * PS];
    for p in 0..PAGES {
        let page = &mut mem[p * PS..(p + 1) * PS];
        match p % 4 {
            0 => {}
            1 => page.iter_mut().for_each(|b| *b = next() as u8),
            _ => {
                for (i, b) in page.iter_mut().enumerate() {
                    *b = b"key=value;"[i % 10] ^ (p as u8 & 3);
                }
            }
        }
    }
    let mut out = vec![mem.clone()];
    for _ in 1..n {
        for _ in 0..PAGES / 2 {
            let p = next() as usize % PAGES;
            let at = p * PS + next() as usize % (PS - 64);
            let from = next() as usize % (PAGES * PS - 64);
            mem.copy_within(from..from + 64, at);
        }
        // and some pages of new random content (sent raw: a part fills quickly)
        for _ in 0..PAGES / 8 {
            let p = next() as usize % PAGES;
            mem[p * PS..(p + 1) * PS]
                .iter_mut()
                .for_each(|b| *b = next() as u8);
        }
        out.push(mem.clone());
    }
    out
}

fn header(frame: &[u8]) -> format::Header {
    format::open(frame).expect("a frame of the encoder's own").0
}

/// Encodes `image` as epoch `e` (every page, as after a resync, or the pages that differ from
/// `prev`) and returns the epoch's frames in order.
fn encode_epoch(enc: &mut Encoder, e: u64, prev: Option<&[u8]>, image: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    enc.begin_epoch(e).unwrap();
    for (i, page) in image.chunks(PS).enumerate() {
        if prev.is_some_and(|p| &p[i * PS..(i + 1) * PS] == page) {
            continue;
        }
        enc.add_page((i * PS) as u64, page).unwrap();
        if let Some(f) = enc.take_frame() {
            frames.push(f.to_vec());
        }
        assert!(enc.take_frame().is_none(), "a part is taken once");
    }
    frames.push(enc.end_epoch().unwrap().to_vec());
    frames
}

#[test]
fn parts_stay_near_the_limit_and_rebuild_every_epoch() {
    for limit in [1, 8 << 10, 64 << 10] {
        let cfg = Config {
            frame_bytes: limit,
            ..Config::default()
        };
        let mut enc = Encoder::with_seed(cfg, 7).unwrap();
        let mut dec = Decoder::new(cfg).unwrap();
        let mut replica = vec![0u8; PAGES * PS];
        let images = epochs(4);
        let mut prev: Option<&[u8]> = None;
        for (e, image) in images.iter().enumerate() {
            let frames = encode_epoch(&mut enc, e as u64, prev, image);
            assert!(frames.len() > 1, "limit {limit}: epoch {e} in one frame");
            for (i, f) in frames.iter().enumerate() {
                let h = header(f);
                let last = i + 1 == frames.len();
                assert_eq!((h.epoch, h.part), (e as u64, i as u64));
                assert_eq!(
                    h.is_partial(),
                    !last,
                    "limit {limit}: part {i} of epoch {e}"
                );
                assert_eq!(h.is_resync(), e == 0 && i == 0);
                // the op that crossed the limit is at most a RAW page with its tag and address
                let payload = f.len() - HEADER_LEN - TRAILER_LEN;
                assert!(payload < limit + PS + 16, "part of {payload} bytes");
                let applied = dec.apply_flat(f, &mut replica).unwrap();
                assert_eq!(applied.partial, !last);
                assert_eq!(dec.epoch_open(), !last);
            }
            assert!(replica == *image, "limit {limit}: epoch {e}");
            prev = Some(image);
        }
        let s = enc.stats();
        assert_eq!(s.epochs, 4);
        assert!(s.frames > 8);
        assert_eq!(s.resyncs, 1);
    }
}

#[test]
fn without_a_limit_an_epoch_is_one_frame_and_take_frame_gives_nothing() {
    let mut enc = Encoder::with_seed(Config::default(), 7).unwrap();
    let images = epochs(2);
    let frames = encode_epoch(&mut enc, 0, None, &images[0]);
    assert_eq!(frames.len(), 1);
    assert!(!header(&frames[0]).is_partial());
}

#[test]
fn the_part_protocol_is_enforced_without_losing_the_encoders_place() {
    let cfg = Config {
        frame_bytes: 1,
        ..Config::default()
    };
    let images = epochs(1);
    let mut enc = Encoder::with_seed(cfg, 3).unwrap();
    enc.begin_epoch(0).unwrap();
    enc.add_page(PS as u64, &images[0][PS..2 * PS]).unwrap();
    // the page's op closed a part: nothing more until it is taken
    assert!(matches!(
        enc.add_page(0, &images[0][..PS]),
        Err(Error::State(_))
    ));
    assert!(matches!(enc.end_epoch(), Err(Error::State(_))));
    let part = enc.take_frame().unwrap().to_vec();
    enc.add_page(0, &images[0][..PS]).unwrap();
    let part2 = enc.take_frame().unwrap().to_vec();
    let last = enc.end_epoch().unwrap().to_vec();
    assert_eq!(header(&last).op_count, 0, "both pages went in parts");
    let mut dec = Decoder::new(cfg).unwrap();
    let mut replica = vec![0u8; 2 * PS];
    for f in [&part, &part2, &last] {
        dec.apply_flat(f, &mut replica).unwrap();
    }
    assert!(replica[..] == images[0][..2 * PS]);
}

#[test]
fn the_decoder_takes_parts_only_in_order() {
    let cfg = Config {
        frame_bytes: 16 << 10,
        ..Config::default()
    };
    let images = epochs(3);
    let mut enc = Encoder::with_seed(cfg, 11).unwrap();
    let e0 = encode_epoch(&mut enc, 0, None, &images[0]);
    let e1 = encode_epoch(&mut enc, 1, Some(&images[0]), &images[1]);
    assert!(e0.len() >= 3 && e1.len() >= 2);
    let mut dec = Decoder::new(cfg).unwrap();
    let mut replica = vec![0u8; PAGES * PS];
    dec.apply_flat(&e0[0], &mut replica).unwrap();
    // skipping a part of the open epoch, or starting the next epoch: a gap
    let before = replica.clone();
    assert_eq!(
        dec.apply_flat(&e1[0], &mut replica).unwrap_err(),
        Error::EpochGap {
            expected: 0,
            got: 1
        }
    );
    // a part skipped, or applied twice
    assert_eq!(
        dec.apply_flat(&e0[2], &mut replica).unwrap_err(),
        Error::PartOutOfOrder {
            epoch: 0,
            expected: 1,
            got: 2
        }
    );
    assert!(replica == before);
    dec.apply_flat(&e0[1], &mut replica).unwrap();
    let before2 = replica.clone();
    assert_eq!(
        dec.apply_flat(&e0[1], &mut replica).unwrap_err(),
        Error::PartOutOfOrder {
            epoch: 0,
            expected: 2,
            got: 1
        }
    );
    assert!(replica == before2 && replica != before);
    for f in &e0[2..] {
        dec.apply_flat(f, &mut replica).unwrap();
    }
    assert!(!dec.epoch_open());
    // a closed epoch's last frame again: replayed
    assert_eq!(
        dec.apply_flat(e0.last().unwrap(), &mut replica)
            .unwrap_err(),
        Error::EpochReplayed { last: 0, got: 0 }
    );
    for f in &e1 {
        dec.apply_flat(f, &mut replica).unwrap();
    }
    assert!(replica == images[1]);
}

#[test]
fn a_resync_abandons_an_epoch_whose_parts_went_out() {
    let cfg = Config {
        frame_bytes: 16 << 10,
        ..Config::default()
    };
    let images = epochs(3);
    let mut enc = Encoder::with_seed(cfg, 5).unwrap();
    let mut dec = Decoder::new(cfg).unwrap();
    let mut replica = vec![0u8; PAGES * PS];
    for f in encode_epoch(&mut enc, 0, None, &images[0]) {
        dec.apply_flat(&f, &mut replica).unwrap();
    }
    // epoch 1: one part reaches the backup, then the link fails and the primary resyncs
    enc.begin_epoch(1).unwrap();
    let mut sent = None;
    for (i, page) in images[1].chunks(PS).enumerate() {
        enc.add_page((i * PS) as u64, page).unwrap();
        if let Some(f) = enc.take_frame() {
            sent = Some(f.to_vec());
            break;
        }
    }
    dec.apply_flat(&sent.unwrap(), &mut replica).unwrap();
    assert!(dec.epoch_open());
    enc.resync();
    // the epoch whose part was applied cannot be reused
    assert!(matches!(
        enc.begin_epoch(1),
        Err(Error::EpochOrder { last: 1, got: 1 })
    ));
    let frames = encode_epoch(&mut enc, 2, None, &images[2]);
    assert!(header(&frames[0]).is_resync());
    for f in &frames {
        dec.apply_flat(f, &mut replica).unwrap();
    }
    assert!(replica == images[2]);
}

/// `Config::frame_pages` closes a part after that many pages added (unchanged ones too), and with
/// `frame_bytes` as well a part ends at whichever limit it reaches first; a decoder with the same
/// configuration applies them all, and one with a smaller page limit refuses a part that holds
/// more than its limit of RAW ops.
#[test]
fn parts_of_a_number_of_pages_close_at_that_count_or_the_byte_limit() {
    let images = epochs(2);
    for (frame_pages, frame_bytes) in [(7, 0), (7, 2 * PS), (1, 0)] {
        let cfg = Config {
            frame_pages,
            frame_bytes,
            ..Config::default()
        };
        let mut enc = Encoder::with_seed(cfg, 8).unwrap();
        let mut dec = Decoder::new(cfg).unwrap();
        let mut replica = vec![0u8; PAGES * PS];
        for (e, image) in images.iter().enumerate() {
            enc.begin_epoch(e as u64).unwrap();
            let mut since = 0;
            for (i, page) in image.chunks(PS).enumerate() {
                enc.add_page((i * PS) as u64, page).unwrap();
                since += 1;
                if let Some(part) = enc.take_frame() {
                    let payload = part.len() - HEADER_LEN - TRAILER_LEN;
                    let by_bytes = frame_bytes > 0 && payload >= frame_bytes;
                    assert!(
                        since == frame_pages || by_bytes,
                        "a part after {since} pages, {payload} bytes"
                    );
                    since = 0;
                    dec.apply_flat(part, &mut replica).unwrap();
                }
                assert!(since < frame_pages, "no part after {since} pages");
            }
            dec.apply_flat(enc.end_epoch().unwrap(), &mut replica)
                .unwrap();
            assert!(&replica == image, "epoch {e}");
        }
    }
    // a decoder whose limit is one RAW op refuses a part of seven noise pages
    let cfg = Config {
        frame_pages: 7,
        ..Config::default()
    };
    let mut enc = Encoder::with_seed(cfg, 8).unwrap();
    enc.begin_epoch(0).unwrap();
    let noise = &images[0];
    let mut part = None;
    for (i, page) in noise
        .chunks(PS)
        .enumerate()
        .filter(|(i, _)| i % 4 == 1)
        .take(7)
    {
        enc.add_page((i * PS) as u64, page).unwrap();
        part = enc.take_frame().map(<[u8]>::to_vec);
    }
    let part = part.expect("a part after seven pages");
    let mut strict = Decoder::new(Config {
        frame_pages: 1,
        ..Config::default()
    })
    .unwrap();
    let mut replica = vec![0u8; PAGES * PS];
    assert!(matches!(
        strict.apply_flat(&part, &mut replica),
        Err(Error::FrameTooLarge { .. })
    ));
    assert!(replica.iter().all(|&b| b == 0));
}
