//! STAND-IN for `fgbi::xbzrle` (being written on another branch): a plain scalar encoder and a
//! decoder of QEMU's XBZRLE format, with the same signatures as the library's. Replace with
//! `fgbi::xbzrle::{encode, decode}` once that module is on main.
//!
//! Format: a sequence of `zrun nzrun` pairs; zrun = ULEB128 count of unchanged bytes, nzrun =
//! ULEB128 count followed by that many bytes of the new page. Counts are at most 0x3fff (two
//! ULEB128 bytes). The trailing zrun is omitted; identical pages encode to nothing (length 0).

/// The encoding would not fit in the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// The encoded data is malformed or writes past the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

fn put_uleb(dst: &mut [u8], d: &mut usize, v: usize) -> Result<(), Overflow> {
    debug_assert!(v <= 0x3fff);
    if v < 0x80 {
        *dst.get_mut(*d).ok_or(Overflow)? = v as u8;
        *d += 1;
    } else {
        if *d + 2 > dst.len() {
            return Err(Overflow);
        }
        dst[*d] = (v as u8 & 0x7f) | 0x80;
        dst[*d + 1] = (v >> 7) as u8;
        *d += 2;
    }
    Ok(())
}

fn get_uleb(src: &[u8], p: &mut usize) -> Result<usize, DecodeError> {
    let b0 = *src.get(*p).ok_or(DecodeError)? as usize;
    *p += 1;
    if b0 < 0x80 {
        return Ok(b0);
    }
    let b1 = *src.get(*p).ok_or(DecodeError)? as usize;
    *p += 1;
    if b1 >= 0x80 {
        return Err(DecodeError);
    }
    Ok((b0 & 0x7f) | (b1 << 7))
}

/// Encodes `new` against `old` (same length, at most 0x3fff bytes) into `dst`. `Ok(0)` when the
/// pages are identical, `Err(Overflow)` when the encoding would exceed `dst.len()`.
pub fn encode(old: &[u8], new: &[u8], dst: &mut [u8]) -> Result<usize, Overflow> {
    assert_eq!(old.len(), new.len());
    let n = new.len();
    let mut i = 0;
    let mut d = 0;
    while i < n {
        let start = i;
        while i < n && old[i] == new[i] {
            i += 1;
        }
        if i == n {
            break; // trailing zrun omitted (and 0 when identical)
        }
        put_uleb(dst, &mut d, i - start)?;
        let nz = i;
        while i < n && old[i] != new[i] {
            i += 1;
        }
        put_uleb(dst, &mut d, i - nz)?;
        let end = d + (i - nz);
        if end > dst.len() {
            return Err(Overflow);
        }
        dst[d..end].copy_from_slice(&new[nz..i]);
        d = end;
    }
    Ok(d)
}

/// Applies `src` to `dst` (which holds the old page). Returns the bytes of `dst` covered.
pub fn decode(src: &[u8], dst: &mut [u8]) -> Result<usize, DecodeError> {
    let mut p = 0;
    let mut d = 0;
    while p < src.len() {
        d += get_uleb(src, &mut p)?;
        let len = get_uleb(src, &mut p)?;
        if len == 0 || d + len > dst.len() || p + len > src.len() {
            return Err(DecodeError);
        }
        dst[d..d + len].copy_from_slice(&src[p..p + len]);
        p += len;
        d += len;
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let old = vec![7u8; 4096];
        let mut new = old.clone();
        let mut buf = vec![0u8; 4096];
        assert_eq!(encode(&old, &new, &mut buf), Ok(0));
        new[0] = 1;
        new[200..210].fill(9);
        new[4095] = 3;
        let n = encode(&old, &new, &mut buf).unwrap();
        // zrun 0, nzrun 1 + 1 byte; zrun 199 (2 bytes), nzrun 10 + 10; zrun 3885 (2), nzrun 1 + 1
        assert_eq!(n, 1 + 1 + 1 + 2 + 1 + 10 + 2 + 1 + 1);
        let mut back = old.clone();
        decode(&buf[..n], &mut back).unwrap();
        assert_eq!(back, new);
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761u32) >> 24) as u8 | 1)
            .collect();
        let zeros = vec![0u8; 4096];
        assert_eq!(encode(&zeros, &noise, &mut buf), Err(Overflow));
    }
}
