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

#[inline]
fn word(b: &[u8], i: usize) -> u64 {
    u64::from_ne_bytes(b[i..i + 8].try_into().unwrap())
}

#[inline]
fn has_zero_byte(x: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    x.wrapping_sub(LO) & !x & HI != 0
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
        // word at a time over equal bytes, as QEMU does (same output as byte at a time)
        while i + 8 <= n && word(old, i) == word(new, i) {
            i += 8;
        }
        while i < n && old[i] == new[i] {
            i += 1;
        }
        if i == n {
            break; // trailing zrun omitted (and 0 when identical)
        }
        put_uleb(dst, &mut d, i - start)?;
        let nz = i;
        // word at a time while no byte of the word is equal (no zero byte in the XOR)
        while i + 8 <= n && !has_zero_byte(word(old, i) ^ word(new, i)) {
            i += 8;
        }
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

    /// Byte-at-a-time reference of the format (maximal runs).
    fn reference(old: &[u8], new: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        let uleb = |out: &mut Vec<u8>, v: usize| {
            if v < 0x80 {
                out.push(v as u8)
            } else {
                out.extend_from_slice(&[(v as u8 & 0x7f) | 0x80, (v >> 7) as u8])
            }
        };
        while i < new.len() {
            let s = i;
            while i < new.len() && old[i] == new[i] {
                i += 1;
            }
            if i == new.len() {
                break;
            }
            uleb(&mut out, i - s);
            let s = i;
            while i < new.len() && old[i] != new[i] {
                i += 1;
            }
            uleb(&mut out, i - s);
            out.extend_from_slice(&new[s..i]);
        }
        out
    }

    #[test]
    fn word_scan_matches_byte_reference() {
        let mut x = 0x2545f4914f6cdd1du64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut buf = vec![0u8; 8192];
        for _ in 0..2000 {
            let old: Vec<u8> = (0..4096).map(|_| rnd() as u8 & 3).collect();
            let mut new = old.clone();
            let changes = rnd() % 300;
            for _ in 0..changes {
                let at = (rnd() % 4096) as usize;
                let len = (rnd() % 40) as usize;
                for b in &mut new[at..(at + len).min(4096)] {
                    *b = rnd() as u8;
                }
            }
            let n = encode(&old, &new, &mut buf).unwrap();
            assert_eq!(buf[..n], reference(&old, &new)[..]);
            let mut back = old.clone();
            decode(&buf[..n], &mut back).unwrap();
            assert_eq!(back, new);
        }
    }
}
