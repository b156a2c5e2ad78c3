//! Encode -> decode round trip driven by arbitrary epoch scripts: after every epoch the replica
//! equals the primary, whatever the stages, block size, cache budget and frame size in bytes or
//! pages (an epoch in one frame or in parts applied as they come), and whatever pages reached the
//! backup by another path between epochs (zeroed, carried or lost there, the encoder told so),
//! and whether the pages are copied into the frames or left in place (`add_page_in_place`, the
//! frames then taken as parts or whole).
#![no_main]
use fgbi::{Config, Decoder, Encoder, Fallback, Stages};
use libfuzzer_sys::fuzz_target;

const PS: usize = 512;
const PAGES: usize = 12;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let s = data[0];
    let stages = Stages {
        zero: s & 1 != 0,
        blocks: s & 2 != 0,
        sharing: s & 4 != 0,
        delta: s & 8 != 0,
        dict: s & 16 != 0,
        entropy: s & 32 != 0,
        runs: s & 64 != 0,
    };
    let cfg = Config {
        page_size: PS,
        block_size: [64, 128, 256, 512][(data[1] & 3) as usize],
        cache_bytes: [0, 3 * 700, 8 * 700, 1 << 16][((data[1] >> 2) & 3) as usize],
        hash_bytes: [0, 2 * 120, 1 << 12, 0][((data[1] >> 4) & 3) as usize],
        stages,
        fallback: [
            Fallback::Lz4,
            Fallback::Deflate(1),
            Fallback::None,
            Fallback::Lz4,
        ][((data[1] >> 6) & 3) as usize],
        // adaptive stages: off, or a link no compressor can keep up with (gates close)
        link_rate: if s & 64 != 0 { u64::MAX } else { 0 },
        frame_bytes: [0, 1, 600, 2048][(data[2] & 3) as usize],
        frame_pages: [0, 1, 3, 0][((data[2] >> 2) & 3) as usize],
    };
    // 0: pages copied; 1: left in place, frames taken as parts; 2: in place, frames taken whole
    let in_place = (data[2] >> 4) % 3;
    let mut enc = Encoder::new(cfg).unwrap();
    // every candidate op on every page instead of the cheap choice
    enc.set_exhaustive(s & 128 != 0);
    let mut dec = Decoder::new(cfg).unwrap();
    let mut mem = vec![0u8; PS * PAGES];
    let mut replica = vec![0u8; PS * PAGES];
    let mut epoch = 0u64;
    // each epoch: a count byte, then that many 4-byte commands (op, page, offset, value)
    let mut rest = &data[3..];
    let mut first = true;
    while !rest.is_empty() || first {
        let n = rest.first().copied().unwrap_or(0) as usize % 16;
        rest = rest.get(1..).unwrap_or(&[]);
        let mut dirty = [first; PAGES];
        for cmd in rest.chunks(4).take(n) {
            let [op, page, off, val] = [
                cmd[0],
                *cmd.get(1).unwrap_or(&0),
                *cmd.get(2).unwrap_or(&0),
                *cmd.get(3).unwrap_or(&0),
            ];
            let p = page as usize % PAGES;
            let at = p * PS + (off as usize * 2) % PS;
            match op % 8 {
                // another path, between frames: zeroes the page on both sides
                5 => {
                    mem[p * PS..(p + 1) * PS].fill(0);
                    replica[p * PS..(p + 1) * PS].fill(0);
                    enc.note_zero((p * PS) as u64, PS as u64).unwrap();
                    continue;
                }
                // carries a new version of the page to the backup
                6 => {
                    mem[at] = val;
                    replica[p * PS..(p + 1) * PS].copy_from_slice(&mem[p * PS..(p + 1) * PS]);
                    enc.note_page((p * PS) as u64, &mem[p * PS..(p + 1) * PS])
                        .unwrap();
                    continue;
                }
                // loses the backup's copy: it must be sent again
                7 => {
                    replica[p * PS..(p + 1) * PS].fill(val ^ 0xa5);
                    enc.forget((p * PS) as u64, PS as u64).unwrap();
                }
                0 => mem[at] = val,
                1 => mem[p * PS..(p + 1) * PS].fill(0),
                2 => {
                    let q = val as usize % PAGES;
                    let len = 64 * (1 + op as usize / 5 % 4);
                    let src = q * PS + (val as usize * 64) % (PS - len + 1);
                    let dst = p * PS + (off as usize * 64) % (PS - len + 1);
                    mem.copy_within(src..src + len, dst);
                }
                3 => mem[p * PS..(p + 1) * PS]
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, b)| *b = (i as u8).wrapping_mul(val)),
                _ => mem[at..(at + 16).min((p + 1) * PS)].fill(val),
            }
            dirty[p] = true;
        }
        rest = rest.get(4 * n..).unwrap_or(&[]);
        enc.begin_epoch(epoch).unwrap();
        let mut sent = Vec::new();
        for p in (0..PAGES).filter(|&p| dirty[p]) {
            let (addr, page) = ((p * PS) as u64, &mem[p * PS..(p + 1) * PS]);
            if in_place == 0 {
                enc.add_page(addr, page).unwrap();
            } else {
                // SAFETY: `mem` changes only after the epoch's frames are applied
                unsafe { enc.add_page_in_place(addr, page) }.unwrap();
            }
            if in_place == 1 {
                if let Some(parts) = enc.take_frame_parts() {
                    parts.copy_to(&mut sent);
                    dec.apply_flat(&sent, &mut replica)
                        .expect("own part refused");
                }
            } else if let Some(part) = enc.take_frame() {
                dec.apply_flat(part, &mut replica)
                    .expect("own part refused");
            }
        }
        if in_place == 1 {
            enc.end_epoch_parts().unwrap().copy_to(&mut sent);
        } else {
            sent = enc.end_epoch().unwrap().to_vec();
        }
        dec.apply_flat(&sent, &mut replica)
            .expect("own frame refused");
        assert!(replica == mem, "replica differs after epoch {epoch}");
        epoch += 1;
        first = false;
    }
});
