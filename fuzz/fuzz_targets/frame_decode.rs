//! The frame decoder applied to a replica: it either does exactly what the reference decoder
//! (written from FORMAT.md) says, or refuses and leaves the replica untouched.
//!
//! Input: byte 0 picks the mode. Even: the rest is a payload, framed with a valid header for the
//! decoder's stream (flags from byte 1: bit 0 `RESYNC`, bit 1 `ENTROPY`; op count from bytes 2-3)
//! and a valid checksum, so the fuzzer works on the ops (or on the entropy-coded streams). Odd: the
//! rest is taken as a whole frame, as it came off the wire.
#![no_main]
use fgbi::frame;
use fgbi_fuzz::{initial_state, reference_apply, PAGES};
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::sync::OnceLock;

static INIT: OnceLock<(fgbi::Config, u64, Vec<u8>, Vec<u8>)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (cfg, stream, genuine, mem0) = INIT.get_or_init(initial_state);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut dec = fgbi::Decoder::new(*cfg).unwrap();
    let mut mem = vec![0u8; mem0.len()];
    dec.apply_flat(genuine, &mut mem).unwrap();
    assert!(&mem == mem0);

    let (frame, expected) = if mode % 2 == 0 && rest.len() >= 3 {
        let resync = rest[0] & 1 != 0;
        let entropy = rest[0] & 2 != 0;
        let op_count = u16::from_le_bytes([rest[1], rest[2]]) as u32;
        let payload = &rest[3..];
        let flags = (if resync { frame::FLAG_RESYNC } else { 0 })
            | (if entropy { frame::FLAG_ENTROPY } else { 0 });
        let f = fgbi_fuzz::epoch1_frame(flags, op_count, *stream, payload);
        let known: HashSet<u64> = (0..PAGES as u64).collect();
        (
            f,
            Some(reference_apply(
                payload, op_count, resync, entropy, &known, &mem,
            )),
        )
    } else {
        (rest.to_vec(), None)
    };

    let before = mem.clone();
    match dec.apply_flat(&frame, &mut mem) {
        Ok(_) => {
            if let Some(expected) = expected {
                let expected = expected.expect("decoder accepted a frame the reference refuses");
                assert!(
                    mem == expected,
                    "decoder and reference disagree on the replica"
                );
            }
        }
        Err(_) => {
            assert!(mem == before, "a refused frame wrote to the replica");
            if let Some(Some(_)) = expected {
                panic!("decoder refused a frame the reference accepts");
            }
        }
    }
});
