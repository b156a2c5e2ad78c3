//! Long streams coded in [`PARTS`] parts (format version 3): the stream's symbols cut into four
//! runs of `ceil(len / 4)` (the last the rest), each coded on its own bit string with the one
//! table. One bit string is decoded a lookup at a time, each lookup waiting for the one before to
//! say where the next code starts; four are decoded side by side, their lookups overlapping, and
//! written the same way.

use super::{Cursor, Decoder, HuffmanError, Lengths};

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
pub fn decode_parts(
    d: &Decoder,
    parts: [&[u8]; PARTS],
    out: &mut [u8],
) -> Result<(), HuffmanError> {
    let n = part_lens(out.len());
    let (o0, rest) = out.split_at_mut(n[0]);
    let (o1, rest) = rest.split_at_mut(n[1]);
    let (o2, o3) = rest.split_at_mut(n[2]);
    let outs = [o0, o1, o2, o3];
    let mut c = [Cursor::default(); PARTS];
    if d.complete {
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
