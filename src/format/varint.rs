//! LEB128 variable-length integers and zigzag signed mapping, as used by the frame format.
//!
//! Every integer in a frame payload is an unsigned LEB128: seven bits per byte, least significant
//! group first, the high bit set on every byte but the last. A `u64` takes at most 10 bytes; the
//! reader refuses longer encodings and values that overflow 64 bits.

/// Largest number of bytes a `u64` takes in LEB128.
pub const MAX_LEN: usize = 10;

/// Appends `v` as LEB128 to `out`.
///
/// ```
/// let mut out = Vec::new();
/// fgbi::varint::put(&mut out, 300);
/// assert_eq!(out, [0xac, 0x02]);
/// ```
#[inline]
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Writes `v` as LEB128 at the start of `buf` (at least [`len`]`(v)` bytes); returns its length.
///
/// ```
/// let mut buf = [0u8; 10];
/// assert_eq!(fgbi::varint::put_at(&mut buf, 300), 2);
/// assert_eq!(buf[..2], [0xac, 0x02]);
/// ```
#[inline]
pub fn put_at(buf: &mut [u8], mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        buf[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    buf[i] = v as u8;
    i + 1
}

/// Number of bytes `v` takes in LEB128.
#[inline]
pub const fn len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads a LEB128 value at `*pos`, advancing `*pos` past it.
///
/// Returns `None` when the input ends inside the value, the encoding is longer than 10 bytes, or
/// the value does not fit in a `u64`. `*pos` is left unchanged on failure.
///
/// ```
/// let mut pos = 0;
/// assert_eq!(fgbi::varint::get(&[0xac, 0x02], &mut pos), Some(300));
/// assert_eq!(pos, 2);
/// ```
#[inline]
pub fn get(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    let mut p = *pos;
    for i in 0..MAX_LEN {
        let b = *buf.get(p)?;
        p += 1;
        let bits = (b & 0x7f) as u64;
        if i == MAX_LEN - 1 && b > 1 {
            return None; // would overflow 64 bits
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            *pos = p;
            return Some(v);
        }
    }
    None
}

/// Maps a signed value to an unsigned one so that small magnitudes stay small (0, -1, 1, -2 ...
/// become 0, 1, 2, 3 ...).
#[inline]
pub const fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub const fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_u64_round_trips_and_len_matches(v in any::<u64>()) {
            let mut out = Vec::new();
            put(&mut out, v);
            prop_assert_eq!(out.len(), len(v));
            let mut pos = 0;
            prop_assert_eq!(get(&out, &mut pos), Some(v));
            prop_assert_eq!(pos, out.len());
        }

        #[test]
        fn zigzag_round_trips(v in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn truncated_overlong_and_overflowing_encodings_are_refused() {
        let mut pos = 0;
        assert_eq!(get(&[0x80], &mut pos), None);
        assert_eq!(pos, 0);
        assert_eq!(get(&[0xff; 11], &mut pos), None);
        // 10th byte carrying more than the top bit of a u64
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(get(&over, &mut pos), None);
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(get(&max, &mut pos), Some(u64::MAX));
    }

    #[test]
    fn small_signed_values_stay_small() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
    }
}
