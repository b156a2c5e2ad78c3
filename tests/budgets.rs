//! Memory by configuration: a budget that cannot be had is an error when the encoder is made, not
//! an abort later; a decoder given a frame size refuses frames larger than that size plus one op
//! (plain or entropy coded) before it writes or allocates anything, and applies every frame of an
//! encoder with the same frame size.

mod common;

use common::Rng;
use fgbi::format::{self, HEADER_LEN, TRAILER_LEN};
use fgbi::{Config, Decoder, Encoder, Error};

const PS: usize = 4096;

#[test]
fn a_cache_budget_beyond_the_address_space_is_an_error_at_creation() {
    // 2^50 bytes of page copies: no allocator can give it, whatever the overcommit policy
    let cfg = Config {
        cache_bytes: 1 << 50,
        ..Config::default()
    };
    match Encoder::new(cfg) {
        Err(Error::OutOfMemory { what, bytes }) => {
            assert!(
                what.contains("page copies") && bytes > 1 << 49,
                "{what} {bytes}"
            )
        }
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    let cfg = Config {
        cache_bytes: 0,
        hash_bytes: 1 << 52,
        ..Config::default()
    };
    assert!(matches!(Encoder::new(cfg), Err(Error::OutOfMemory { .. })));
}

/// Pages that compress well but not to nothing: text with a counter.
fn text_pages(n: usize) -> Vec<u8> {
    let mut mem = vec![0u8; n * PS];
    for (i, line) in mem.chunks_mut(32).enumerate() {
        let s = format!("row {:>9} value {:>10};\n", i, i * 7 % 1000);
        line.copy_from_slice(&s.as_bytes()[..32]);
    }
    mem
}

/// Random pages: sent RAW.
fn noise_pages(n: usize) -> Vec<u8> {
    Rng(0x2545_f491_4f6c_dd1d).bytes(n * PS)
}

/// Sends `mem` as epoch `epoch`, every page, applying the parts as they come.
fn send_epoch(enc: &mut Encoder, dec: &mut Decoder, mem: &[u8], replica: &mut [u8], epoch: u64) {
    enc.begin_epoch(epoch).unwrap();
    for (i, page) in mem.chunks(PS).enumerate() {
        enc.add_page((i * PS) as u64, page).unwrap();
        if let Some(part) = enc.take_frame() {
            dec.apply_flat(part, replica).unwrap();
        }
    }
    dec.apply_flat(enc.end_epoch().unwrap(), replica).unwrap();
}

fn one_frame(cfg: Config, mem: &[u8]) -> Vec<u8> {
    let mut enc = Encoder::with_seed(cfg, 11).unwrap();
    enc.begin_epoch(0).unwrap();
    for (i, page) in mem.chunks(PS).enumerate() {
        enc.add_page((i * PS) as u64, page).unwrap();
    }
    enc.end_epoch().unwrap().to_vec()
}

#[test]
fn a_decoder_with_a_frame_size_refuses_a_larger_plain_frame_and_changes_nothing() {
    let mem = noise_pages(8);
    let frame = one_frame(Config::default(), &mem);
    let bounded = Config {
        frame_bytes: 8192,
        ..Config::default()
    };
    let mut dec = Decoder::new(bounded).unwrap();
    let mut replica = vec![0x77u8; mem.len()];
    let err = dec.apply_flat(&frame, &mut replica).unwrap_err();
    let limit = 8192 + format::max_op_len(PS);
    assert_eq!(
        err,
        Error::FrameTooLarge {
            payload: frame.len() - HEADER_LEN - TRAILER_LEN,
            limit
        }
    );
    assert!(replica.iter().all(|&b| b == 0x77));
    assert_eq!(dec.position(), None);
    // an unbounded decoder takes it
    let mut dec = Decoder::new(Config::default()).unwrap();
    dec.apply_flat(&frame, &mut replica).unwrap();
    assert_eq!(replica, mem);
}

#[test]
fn a_small_entropy_coded_frame_that_rebuilds_beyond_the_limit_is_refused() {
    let mem = text_pages(64);
    let frame = one_frame(Config::default(), &mem);
    let h = format::open(&frame).unwrap().0;
    assert!(
        h.flags & format::FLAG_ENTROPY != 0,
        "the frame is entropy coded"
    );
    let payload = frame.len() - HEADER_LEN - TRAILER_LEN;
    // a frame size whose limit the coded payload fits and the rebuilt one does not
    let bounded = Config {
        frame_bytes: payload + 1 - format::max_op_len(PS).min(payload),
        ..Config::default()
    };
    let mut dec = Decoder::new(bounded).unwrap();
    let mut replica = vec![0u8; mem.len()];
    match dec.apply_flat(&frame, &mut replica) {
        Err(Error::FrameTooLarge {
            payload: rebuilt,
            limit,
        }) => {
            assert!(
                rebuilt > limit && payload <= limit,
                "{rebuilt} {limit} {payload}"
            )
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    assert!(replica.iter().all(|&b| b == 0));
}

#[test]
fn a_decoder_with_the_encoders_frame_size_applies_every_part() {
    for frame_bytes in [1, 4096, 65536] {
        let cfg = Config {
            frame_bytes,
            ..Config::default()
        };
        let mut mem = text_pages(48);
        mem.extend(noise_pages(16));
        let mut enc = Encoder::with_seed(cfg, 2).unwrap();
        let mut dec = Decoder::new(cfg).unwrap();
        let mut replica = vec![0u8; mem.len()];
        for epoch in 0..3u64 {
            mem[epoch as usize * 100..][..8].copy_from_slice(b"changed!");
            send_epoch(&mut enc, &mut dec, &mem, &mut replica, epoch);
            assert!(replica == mem, "frame_bytes {frame_bytes}, epoch {epoch}");
        }
    }
}

/// The decoder's memory with a frame size is what it reserved when made, whatever frames it
/// applied since, but for its page sets and the entropy stage's code tables (sized by the format,
/// not by frames): far below one epoch's frame.
#[test]
fn a_bounded_decoders_buffers_do_not_grow_with_the_epoch() {
    let cfg = Config {
        frame_bytes: 16 << 10,
        ..Config::default()
    };
    let mut dec = Decoder::new(cfg).unwrap();
    let reserved = dec.stats().memory_bytes;
    let mut enc = Encoder::with_seed(cfg, 4).unwrap();
    let mut mem = text_pages(256);
    mem.extend(noise_pages(256));
    let mut replica = vec![0u8; mem.len()];
    send_epoch(&mut enc, &mut dec, &mem, &mut replica, 0);
    assert!(replica == mem);
    let after = dec.stats().memory_bytes;
    assert!(
        after <= reserved + (64 << 10),
        "decoder memory {reserved} -> {after} bytes"
    );
    assert!(
        after < mem.len() as u64 / 4,
        "{after} bytes for 2 MiB of pages"
    );
}
