//! Shared pieces of the fuzz targets: a reference decoder written straight from FORMAT.md (one
//! pass, applying to a copy, no validation machinery), used as the oracle for the real decoder;
//! and the fixed setup the frame target starts from.

use std::collections::HashSet;

/// Page and block size of the fuzzed stream: small, so the fuzzer reaches every op kind quickly.
pub const PS: usize = 512;
/// Block size of the fuzzed stream.
pub const BS: usize = 64;
/// Pages in the fuzzed replica.
pub const PAGES: usize = 16;

fn leb(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        if i == 9 && byte > 1 {
            return None;
        }
        v |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn unzigzag(v: u64) -> u64 {
    ((v >> 1) as i64 ^ -((v & 1) as i64)) as u64
}

fn take<'a>(b: &'a [u8], pos: &mut usize, n: usize) -> Option<&'a [u8]> {
    let end = pos.checked_add(n)?;
    let s = b.get(*pos..end)?;
    *pos = end;
    Some(s)
}

fn decompress(codec: u8, data: &[u8], out_len: usize) -> Option<Vec<u8>> {
    match codec {
        1 => {
            let mut out = vec![0u8; out_len];
            (lz4_flex::block::decompress_into(data, &mut out).ok()? == out_len).then_some(out)
        }
        2 => {
            use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
            // all of the input, exactly out_len bytes of output
            let mut out = vec![0u8; out_len];
            let mut state = DecompressorOxide::new();
            let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
            let (status, used, written) = decompress(&mut state, data, &mut out, 0, flags);
            (status == miniz_oxide::inflate::TINFLStatus::Done && used == data.len() && written == out_len)
                .then_some(out)
        }
        _ => None,
    }
}

/// Applies the ops of a frame payload to `mem` the plain way. `known` holds the pages the backup
/// was sent before this frame (ignored for a resync frame). Returns the new memory, or `None` for
/// any malformed op.
pub fn reference_apply(
    payload: &[u8],
    op_count: u32,
    resync: bool,
    known: &HashSet<u64>,
    mem: &[u8],
) -> Option<Vec<u8>> {
    let nb = PS / BS;
    let mut known: HashSet<u64> = if resync { HashSet::new() } else { known.clone() };
    let mut out = mem.to_vec();
    let mut pos = 0usize;
    let mut prev = u64::MAX;
    let mut n = 0u32;
    let in_mem = |idx: u64| -> Option<usize> {
        let addr = idx.checked_mul(PS as u64)?;
        let a = usize::try_from(addr).ok()?;
        (a.checked_add(PS)? <= mem.len()).then_some(a)
    };
    while pos < payload.len() {
        if n == op_count {
            return None;
        }
        let tag = payload[pos];
        pos += 1;
        let (kind, codec) = (tag & 15, tag >> 4);
        let idx = prev.wrapping_add(1).wrapping_add(unzigzag(leb(payload, &mut pos)?));
        prev = idx;
        let at = in_mem(idx)?;
        let len_field = |pos: &mut usize| -> Option<usize> {
            let l = leb(payload, pos)?;
            (l >= 1 && l <= 2 * PS as u64).then_some(l as usize)
        };
        match kind {
            0 if codec == 0 => out[at..at + PS].fill(0),
            1 if codec == 0 => out[at..at + PS].copy_from_slice(take(payload, &mut pos, PS)?),
            2 if codec == 1 || codec == 2 => {
                let l = len_field(&mut pos)?;
                let page = decompress(codec, take(payload, &mut pos, l)?, PS)?;
                out[at..at + PS].copy_from_slice(&page);
            }
            3 if codec == 0 => {
                if !known.contains(&idx) {
                    return None;
                }
                let l = len_field(&mut pos)?;
                let d = take(payload, &mut pos, l)?;
                let (mut p, mut off, mut first) = (0usize, 0usize, true);
                while p < d.len() {
                    let skip = leb(d, &mut p)? as usize;
                    let run = leb(d, &mut p)? as usize;
                    if (skip == 0 && !first) || run == 0 {
                        return None;
                    }
                    off = off.checked_add(skip)?;
                    let end = off.checked_add(run)?;
                    if end > PS {
                        return None;
                    }
                    out[at + off..at + end].copy_from_slice(take(d, &mut p, run)?);
                    off = end;
                    first = false;
                }
            }
            4 if codec == 0 => {
                if !known.contains(&idx) {
                    return None;
                }
                let l = len_field(&mut pos)?;
                let data = take(payload, &mut pos, l)?;
                let dict = out[at..at + PS].to_vec();
                let mut page = vec![0u8; PS];
                if lz4_flex::block::decompress_into_with_dict(data, &mut page, &dict).ok()? != PS {
                    return None;
                }
                out[at..at + PS].copy_from_slice(&page);
            }
            5 => {
                let map = take(payload, &mut pos, nb.div_ceil(4))?;
                let code = |i: usize| (map[i / 4] >> (2 * (i % 4))) & 3;
                if nb % 4 != 0 && map[map.len() - 1] >> (2 * (nb % 4)) != 0 {
                    return None;
                }
                let before = out.clone();
                let mut lits = 0;
                let mut refs = Vec::new();
                for i in 0..nb {
                    match code(i) {
                        0 if !known.contains(&idx) => return None,
                        2 => {
                            let src = idx.wrapping_add(unzigzag(leb(payload, &mut pos)?));
                            let blk = leb(payload, &mut pos)?;
                            if blk >= nb as u64 || !known.contains(&src) {
                                return None;
                            }
                            let s = in_mem(src)? + blk as usize * BS;
                            refs.push(before[s..s + BS].to_vec());
                        }
                        3 => lits += 1,
                        _ => {}
                    }
                }
                let lit_bytes = match (lits, codec) {
                    (0, 0) => Vec::new(),
                    (0, _) => return None,
                    (_, 0) => take(payload, &mut pos, lits * BS)?.to_vec(),
                    (_, c) => {
                        let l = len_field(&mut pos)?;
                        decompress(c, take(payload, &mut pos, l)?, lits * BS)?
                    }
                };
                let (mut r, mut l) = (0, 0);
                for i in 0..nb {
                    let dst = &mut out[at + i * BS..at + (i + 1) * BS];
                    match code(i) {
                        1 => dst.fill(0),
                        2 => {
                            dst.copy_from_slice(&refs[r]);
                            r += 1;
                        }
                        3 => {
                            dst.copy_from_slice(&lit_bytes[l * BS..(l + 1) * BS]);
                            l += 1;
                        }
                        _ => {}
                    }
                }
            }
            _ => return None,
        }
        known.insert(idx);
        n += 1;
    }
    (n == op_count).then_some(out)
}

/// A deterministic replica and the genuine resync frame that produced it, for a decoder to start
/// from: every page is known afterwards.
pub fn initial_state() -> (fgbi::Config, u64, Vec<u8>, Vec<u8>) {
    let cfg = fgbi::Config { page_size: PS, block_size: BS, ..fgbi::Config::default() };
    let mem: Vec<u8> = (0..PS * PAGES).map(|i| if (i / PS) % 5 == 0 { 0 } else { (i * 7 / 3) as u8 }).collect();
    let mut enc = fgbi::Encoder::new(cfg).expect("config");
    enc.set_stream_id(0xf022);
    enc.begin_epoch(0).expect("epoch");
    for (i, page) in mem.chunks(PS).enumerate() {
        enc.add_page((i * PS) as u64, page).expect("page");
    }
    let frame = enc.end_epoch().expect("frame").to_vec();
    (cfg, 0xf022, frame, mem)
}
