//! Long streams coded in [`PARTS`] parts (format version 3): the stream's symbols cut into four
//! runs of `ceil(len / 4)` (the last the rest), each coded on its own bit string with the one
//! table. One bit string is decoded a lookup at a time, each lookup waiting for the one before to
//! say where the next code starts; four are decoded side by side, their lookups overlapping, and
//! written the same way.

use super::{Cursor, Decoder, HuffmanError, Lengths, MAX_BITS};

/// Parts of a stream coded in parts.
pub const PARTS: usize = 4;

/// Streams of at least this many symbols are coded in [`PARTS`] parts (format version 3; shorter
/// ones, and every stream of versions 1 and 2, are one bit string).
pub const PARTS_MIN_SYMBOLS: usize = 8192;

/// Symbols in each part of a stream of `len` symbols: `ceil(len / 4)` in each, the last part the
/// rest (none empty when `len` is at least [`PARTS_MIN_SYMBOLS`]).
pub fn part_lens(len: usize) -> [usize; PARTS] {
    let q = len.div_ceil(PARTS);
    std::array::from_fn(|i| len.saturating_sub(i * q).min(q))
}

/// Occurrences of each byte value in each part of `data` (split as [`part_lens`] says); their
/// sum is [`histogram`](super::histogram) of `data`. The four parts are counted in step, each in
/// its own table, which breaks the store-to-load dependency on runs of one value.
pub fn part_histograms(data: &[u8]) -> [[u32; 256]; PARTS] {
    let n = part_lens(data.len());
    let q = n[0];
    let mut h = [[0u32; 256]; PARTS];
    let (p0, rest) = data.split_at(q);
    let (p1, rest) = rest.split_at(n[1]);
    let (p2, p3) = rest.split_at(n[2]);
    // the last part is the shortest: the four run together over its length
    for (((&a, &b), &c), &d) in p0.iter().zip(p1).zip(p2).zip(p3) {
        h[0][a as usize] += 1;
        h[1][b as usize] += 1;
        h[2][c as usize] += 1;
        h[3][d as usize] += 1;
    }
    for (k, p) in [p0, p1, p2].into_iter().enumerate() {
        for &b in &p[n[3]..] {
            h[k][b as usize] += 1;
        }
    }
    h
}

/// Bytes of coded bits of each part of a stream whose parts have these counts
/// ([`part_histograms`]), coded with `lens`.
pub fn part_bytes(hists: &[[u32; 256]; PARTS], lens: &Lengths) -> [usize; PARTS] {
    hists.map(|h| super::coded_bits(&h, lens).div_ceil(8) as usize)
}

/// Appends `data` coded with `lens` in [`PARTS`] parts, back to back, part `k` taking
/// `bytes[k]` bytes (from [`part_bytes`]); every byte of `data` must have a code. Each part is
/// as [`encode`](super::encode) writes it: its last byte padded with zero bits.
pub(crate) fn encode_parts(data: &[u8], lens: &Lengths, bytes: [usize; PARTS], out: &mut Vec<u8>) {
    let entry = super::code_entries(lens);
    let mut at = 0;
    for (k, n) in part_lens(data.len()).into_iter().enumerate() {
        super::encode_entries(&data[at..at + n], &entry, bytes[k], out);
        at += n;
    }
}

/// Decodes exactly `out.len()` symbols coded in [`PARTS`] parts, `parts[k]` holding the coded
/// bytes of part `k`: each part exactly as [`Decoder::decode`] decodes one bit string (the same
/// symbols, the same checks of its end), the four side by side.
///
/// A complete code is decoded in batches: `steps_within` says how many steps every part can
/// take before its next 8-byte load or its next 10 symbols would pass the end of its bits or
/// of its output, and `step_parts` takes that many without checking either. What is left near
/// the ends goes through the decoder's checked steps and the checks of each part's end.
pub fn decode_parts(
    d: &Decoder,
    parts: [&[u8]; PARTS],
    out: &mut [u8],
) -> Result<(), HuffmanError> {
    let n = part_lens(out.len());
    let (o0, rest) = out.split_at_mut(n[0]);
    let (o1, rest) = rest.split_at_mut(n[1]);
    let (o2, o3) = rest.split_at_mut(n[2]);
    let mut outs = [o0, o1, o2, o3];
    let mut c = [Cursor::default(); PARTS];
    if d.complete {
        loop {
            let steps = (0..PARTS)
                .map(|k| steps_within(parts[k].len(), outs[k].len(), c[k]))
                .min()
                .unwrap_or(0);
            if steps == 0 {
                break;
            }
            for _ in 0..steps {
                // SAFETY: `steps_within` counted these steps for every part from where it stands
                unsafe { step_parts(d, parts, &mut outs, &mut c) };
            }
        }
        'side_by_side: loop {
            for k in 0..PARTS {
                if !d.step(parts[k], outs[k], &mut c[k]) {
                    break 'side_by_side;
                }
            }
        }
    }
    for k in 0..PARTS {
        d.fast(parts[k], outs[k], &mut c[k]);
        d.finish(parts[k], outs[k], c[k])?;
    }
    Ok(())
}

/// Bits a step of [`Decoder::step`] or [`step_parts`] consumes at most: five codes of at most
/// [`MAX_BITS`] bits.
pub(super) const STEP_BITS: u64 = 5 * MAX_BITS as u64;

/// Symbols a step writes at most (five lookups of at most two symbols), and so the room it
/// needs in the output.
pub(super) const STEP_SYMBOLS: usize = 10;

/// How many steps one after another a part with `src_len` coded bytes and `out_len` symbols
/// can take from `c` with every step's 8-byte load inside its bits and its writes inside its
/// output: step `i` starts at most `i * STEP_BITS` bits and `i * STEP_SYMBOLS` symbols on.
pub(super) fn steps_within(src_len: usize, out_len: usize, c: Cursor) -> usize {
    // the last bit position whose load of 8 bytes ends inside the part
    let Some(last_bit) = (src_len.checked_sub(8)).map(|b| b as u64 * 8 + 7) else {
        return 0;
    };
    let by_src = match last_bit.checked_sub(c.bitpos) {
        Some(room) => (room / STEP_BITS + 1) as usize,
        None => 0,
    };
    let by_out = match out_len.checked_sub(c.done + STEP_SYMBOLS) {
        Some(room) => room / STEP_SYMBOLS + 1,
        None => 0,
    };
    by_src.min(by_out)
}

/// One step of [`Decoder::step`] on each of the four parts, the parts' lookups interleaved (one
/// lookup of each part in turn), so that the four chains of lookups, each waiting on the one
/// before for its shift, overlap; without bounds checks on the loads and stores. Measured on a
/// QEMU guest's first pass in 512 KiB packets, the plain tier's decoding took 16% less time
/// than with checked steps, and checked interleaved steps gained nothing.
///
/// # Safety
/// For every part `k`: `c[k].bitpos / 8 + 8 <= src[k].len()` and
/// `c[k].done + STEP_SYMBOLS <= out[k].len()` ([`steps_within`] is at least 1), and the code
/// is complete (`d.complete`: every entry decodes at least one symbol of at most
/// [`MAX_BITS`] bits).
#[inline(always)]
unsafe fn step_parts(
    d: &Decoder,
    src: [&[u8]; PARTS],
    out: &mut [&mut [u8]; PARTS],
    c: &mut [Cursor; PARTS],
) {
    debug_assert!((0..PARTS).all(|k| steps_within(src[k].len(), out[k].len(), c[k]) > 0));
    let mask = (1u64 << MAX_BITS) - 1;
    let mut w = [0u64; PARTS];
    let mut o = [std::ptr::null_mut::<u8>(); PARTS];
    for k in 0..PARTS {
        let byte = (c[k].bitpos / 8) as usize;
        // SAFETY: `byte + 8 <= src[k].len()` (the caller's first condition); unaligned reads
        // are allowed
        let w8 = unsafe { src[k].as_ptr().add(byte).cast::<u64>().read_unaligned() };
        w[k] = u64::from_le(w8) >> (c[k].bitpos % 8);
        // SAFETY: `done + STEP_SYMBOLS <= out[k].len()` (the second condition): in bounds
        o[k] = unsafe { out[k].as_mut_ptr().add(c[k].done) };
    }
    if d.paired {
        // one or two symbols a lookup, written as two bytes (a lone symbol's second byte is
        // overwritten by the next lookup's, or by `finish`)
        let mut n = [0usize; PARTS];
        for _ in 0..5 {
            for k in 0..PARTS {
                let e = d.pairs[(w[k] & mask) as usize];
                let bits = (e >> 16 & 0xff) as u64;
                // SAFETY: `n[k] <= 8` before the fifth lookup, so the two bytes lie within
                // the `STEP_SYMBOLS` the caller guarantees after `o[k]`
                unsafe {
                    o[k].add(n[k])
                        .cast::<u16>()
                        .write_unaligned((e as u16).to_le())
                };
                n[k] += (e >> 24) as usize;
                w[k] >>= bits;
                c[k].bitpos += bits;
            }
        }
        for k in 0..PARTS {
            c[k].done += n[k];
        }
    } else {
        for i in 0..5 {
            for k in 0..PARTS {
                let e = d.table[(w[k] & mask) as usize];
                let l = (e & 0xff) as u64;
                // SAFETY: `i < 5 <= STEP_SYMBOLS`
                unsafe { *o[k].add(i) = (e >> 8) as u8 };
                w[k] >>= l;
                c[k].bitpos += l;
            }
        }
        for ck in c.iter_mut() {
            ck.done += 5;
        }
    }
}
