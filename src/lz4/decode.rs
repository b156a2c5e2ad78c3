//! The lz4 block decoder: one sequence walk that either checks a block or decodes it.

use super::{Error, MIN_MATCH};

/// Reads an lz4 length extension (bytes of 255 continue it) starting at `block[*i]`.
#[inline(always)]
pub(super) fn length_ext(block: &[u8], i: &mut usize, mut n: usize) -> Result<usize, Error> {
    loop {
        let b = *block.get(*i).ok_or(Error::Corrupt)?;
        *i += 1;
        n += b as usize;
        if b != 255 {
            return Ok(n);
        }
        // a block long enough to overflow this would be larger than memory
    }
}

/// Decodes one lz4 block whose matches may reach back into `dict` (the bytes that logically
/// precede the output; empty for a block without dictionary), filling exactly `out`.
///
/// Never reads or writes outside the three slices, whatever `block` holds: a block that ends
/// inside a sequence, refers before the start of `dict`, has a zero offset or would write past
/// `out` is [`Corrupt`](Error::Corrupt); one that ends before `out`
/// is full is [`WrongLength`](Error::WrongLength). Accepts exactly the
/// blocks lz4_flex's checked decoder accepts (tested against it), but copies short literal runs
/// and matches 16 bytes at a time: on real pages (about 240 sequences per 4 KiB) that is what
/// decoding costs.
///
/// ```
/// use fgbi::lz4::{decompress, PageLz};
/// let old = vec![7u8; 4096];
/// let mut new = old.clone();
/// new[100..108].copy_from_slice(b"changed!");
/// let mut block = vec![0u8; 4096];
/// let n = PageLz::new().compress_with_dict(&new, &old, &mut block).unwrap();
/// let mut back = vec![0u8; 4096];
/// decompress(&block[..n], &old, &mut back).unwrap();
/// assert_eq!(back, new);
/// ```
pub fn decompress(block: &[u8], dict: &[u8], out: &mut [u8]) -> Result<(), Error> {
    let out_len = out.len();
    walk::<true>(block, dict, dict.len(), out, out_len)
}

/// The verdict [`decompress`] would give on `block` with a dictionary of `dict_len` bytes and an
/// output of `out_len` bytes, without producing the bytes (a block's validity does not depend on
/// the dictionary's content): the frame decoder checks a whole frame before it applies any of it,
/// and this saves decoding every dictionary-compressed page twice.
///
/// ```
/// use fgbi::lz4::{decompress, validate};
/// let block = [0x30, 1, 2, 3]; // three literals
/// assert!(validate(&block, 0, 3).is_ok());
/// assert!(validate(&block, 0, 4).is_err());
/// ```
pub fn validate(block: &[u8], dict_len: usize, out_len: usize) -> Result<(), Error> {
    walk::<false>(block, &[], dict_len, &mut [], out_len)
}

/// The one sequence walk behind [`decompress`] (`WRITE`: `dict` is the dictionary and `out` the
/// output, `dict_len` and `out_len` their lengths) and [`validate`] (only the lengths are used).
#[inline(always)]
fn walk<const WRITE: bool>(
    block: &[u8],
    dict: &[u8],
    dict_len: usize,
    out: &mut [u8],
    out_len: usize,
) -> Result<(), Error> {
    let (mut i, mut o) = (0usize, 0usize);
    loop {
        let token = *block.get(i).ok_or(Error::Corrupt)?;
        i += 1;
        // literals
        let mut l = (token >> 4) as usize;
        if l == 15 {
            l = length_ext(block, &mut i, l)?;
        }
        if l > block.len() - i || l > out_len - o {
            return Err(Error::Corrupt);
        }
        if WRITE {
            if l <= 16 && i + 16 <= block.len() && o + 16 <= out_len {
                // fixed 16-byte move; bytes past the run are overwritten next or lie past the end
                out[o..o + 16].copy_from_slice(&block[i..i + 16]);
            } else {
                out[o..o + l].copy_from_slice(&block[i..i + l]);
            }
        }
        i += l;
        o += l;
        if i == block.len() {
            return if o == out_len {
                Ok(())
            } else {
                Err(Error::WrongLength)
            };
        }
        // match
        let off = match block.get(i..i + 2) {
            Some(b) => u16::from_le_bytes([b[0], b[1]]) as usize,
            None => return Err(Error::Corrupt),
        };
        i += 2;
        let mut m = (token & 15) as usize;
        if m == 15 {
            m = length_ext(block, &mut i, m)?;
        }
        m += MIN_MATCH;
        if off == 0 || off > o + dict_len || m > out_len - o {
            return Err(Error::Corrupt);
        }
        if !WRITE {
            o += m;
            continue;
        }
        copy_match(out, dict, o, off, m);
        o += m;
    }
}

/// Writes a match of `m` bytes from `off` bytes behind `o` to `out[o..o + m]`: from the end of
/// `dict` (the bytes before `out`) while `off` reaches past `o`, then from `out` itself. The
/// caller has checked `off != 0`, `off <= o + dict.len()` and `m <= out.len() - o`.
#[inline(always)]
pub(crate) fn copy_match(out: &mut [u8], dict: &[u8], mut o: usize, off: usize, mut m: usize) {
    if off > o {
        // starts in the dictionary, may continue into the output
        let from = dict.len() - (off - o);
        let k = m.min(off - o);
        if k <= 32 && from + 32 <= dict.len() && o + 32 <= out.len() {
            // fixed 32-byte move, as for literals (the output behind `o + k` is rewritten
            // before it is read)
            out[o..o + 32].copy_from_slice(&dict[from..from + 32]);
        } else {
            out[o..o + k].copy_from_slice(&dict[from..from + k]);
        }
        o += k;
        m -= k;
    }
    let end = o + m;
    if off >= 16 && end + 16 <= out.len() {
        // 16-byte chunks: with the source at least 16 bytes behind, each chunk reads only
        // bytes already written
        let mut d = o;
        while d < end {
            let chunk: [u8; 16] = out[d - off..d - off + 16].try_into().unwrap();
            out[d..d + 16].copy_from_slice(&chunk);
            d += 16;
        }
    } else if m > 32 {
        // a short period repeated (runs of a byte or a word): the bytes from `o - off` on
        // are the period over and over, so each copy can take all of them written so far,
        // doubling the copy each time
        let start = o - off;
        let mut d = o;
        while d < end {
            let n = (d - start).min(end - d);
            out.copy_within(start..start + n, d);
            d += n;
        }
    } else {
        for d in o..end {
            out[d] = out[d - off];
        }
    }
}
