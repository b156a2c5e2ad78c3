//! QEMU-compatible XBZRLE ("XOR-based zero run length encoding") page codec.
//!
//! # Format (as QEMU defines it)
//!
//! An encoded page is `zrun nzrun [zrun nzrun ...]`:
//! - `zrun`: ULEB128 count of unchanged bytes;
//! - `nzrun`: ULEB128 count, followed by that many bytes of the **new** page.
//!
//! Counts take at most two ULEB128 bytes (values up to `0x3fff`); a second byte with its `0x80`
//! bit set is an error. The encoding starts with a zrun (0 when the first byte changed); the
//! trailing zrun is never written; a zrun of 0 is valid only at the start; an nzrun of 0 is
//! invalid. Identical pages encode to nothing (length 0). Pages are at most [`MAX_PAGE`] bytes.
//!
//! # Encoders
//! - [`encode`] (and [`encode_with`]): scans 64 bytes per step with the fastest available
//!   [`scan`] kernel and absorbs unchanged gaps of at most 2 bytes into the
//!   surrounding changed run (a gap of g bytes costs g literal bytes when absorbed and about 2
//!   count bytes when split), so its output is never longer than QEMU's by more than rounding and
//!   usually shorter. Any QEMU decoder accepts it.
//! - [`encode_exact`] (and [`encode_exact_with`]): byte-for-byte QEMU's output (maximal runs).
//! - [`encode_scalar_reference`]: a plain word-at-a-time scalar encoder with the structure of
//!   QEMU's C one (byte loops to align the remaining length to 8 and to find run ends inside a
//!   word, 8 bytes at a time through zero runs, a has-zero-byte test to cross changed runs 8
//!   bytes at a time), producing the same bytes as [`encode_exact`]; the benchmark's peer.
//! - [`encode_scalar_words`]: a stronger scalar variant (word steps from any offset,
//!   `trailing_zeros` instead of byte loops), same bytes; benchmarked too, for honesty.
//!
//! All encoders check the remaining capacity before every write and never write past `dst`; they
//! return [`Overflow`] when the encoding is longer than `dst` (the contents of `dst` are then
//! unspecified). On success, bytes of `dst` after the returned length may have been used as
//! scratch (a run of up to 64 bytes is moved as one 64-byte block when there is room). Unlike
//! QEMU's encoder, which gives up as soon as fewer than 2 bytes of room remain, they succeed
//! whenever the encoding fits.

use crate::stages::scan::{self, Isa, Job, Kernel};

/// Largest page this codec accepts: 16384 bytes (every run count must fit in 2 ULEB128 bytes).
pub const MAX_PAGE: usize = 16384;
/// Largest run count expressible in two ULEB128 bytes.
pub const MAX_COUNT: usize = 0x3fff;

/// Gap of unchanged bytes absorbed into a changed run by [`encode`].
const MERGE_GAP: usize = 2;

/// The page cannot be encoded into `dst`: the encoding is longer than `dst`, the page is larger
/// than [`MAX_PAGE`], or a changed run is longer than [`MAX_COUNT`] bytes (not expressible).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("XBZRLE encoding does not fit the destination (or the page is not encodable)")
    }
}

impl std::error::Error for Overflow {}

/// Why an XBZRLE input was rejected by [`decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ends inside a count or inside an nzrun's bytes, or after a zrun.
    Truncated,
    /// A count's second byte has its continuation bit set (counts are at most 2 bytes).
    BadVarint,
    /// A zrun of 0 after the start of the input.
    ZeroRun,
    /// An nzrun of 0.
    ZeroNzrun,
    /// A run reaches past the end of the destination page.
    OutOfBounds,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecodeError::Truncated => "XBZRLE input truncated inside a count or run",
            DecodeError::BadVarint => "XBZRLE count longer than 2 ULEB128 bytes",
            DecodeError::ZeroRun => "XBZRLE zero-length zrun after the start",
            DecodeError::ZeroNzrun => "XBZRLE zero-length nzrun",
            DecodeError::OutOfBounds => "XBZRLE run past the end of the page",
        })
    }
}

impl std::error::Error for DecodeError {}

/// Encoded size of a count (`v <= MAX_COUNT`).
#[inline(always)]
fn count_len(v: usize) -> usize {
    1 + (v >= 0x80) as usize
}

/// Writes count `v <= MAX_COUNT` at `dst[d..]`; the caller has checked the room.
#[inline(always)]
fn put_count(dst: &mut [u8], d: usize, v: usize) -> usize {
    if v < 0x80 {
        dst[d] = v as u8;
        d + 1
    } else {
        dst[d] = (v as u8 & 0x7f) | 0x80;
        dst[d + 1] = (v >> 7) as u8;
        d + 2
    }
}

/// Low byte of a count as written first: 7 value bits, continuation bit when `v >= 0x80`.
#[inline(always)]
fn count_b0(v: usize) -> u8 {
    (v as u8 & 0x7f) | (((v >= 0x80) as u8) << 7)
}

/// Copies `N` bytes from `src` to `dst` as one unaligned load and store.
///
/// # Safety
/// `N` bytes must be readable at `src` and writable at `dst`, and the two ranges must not overlap.
#[inline(always)]
unsafe fn copy_block<const N: usize>(src: *const u8, dst: *mut u8) {
    // SAFETY: forwarded contract.
    unsafe {
        dst.cast::<[u8; N]>()
            .write_unaligned(src.cast::<[u8; N]>().read_unaligned())
    }
}

/// Writes counts `z` and `nz` (each at most [`MAX_COUNT`]) at `p`, each as its two possible
/// bytes (the second is overwritten when a count takes one); returns where the run's bytes go.
///
/// # Safety
/// 4 bytes must be writable at `p`.
#[inline(always)]
unsafe fn put_counts_unchecked(p: *mut u8, z: usize, nz: usize) -> *mut u8 {
    // SAFETY: p..p + 4 is writable (caller), and count_len(z) + count_len(nz) <= 4.
    unsafe {
        p.write(count_b0(z));
        p.add(1).write((z >> 7) as u8);
        let p = p.add(count_len(z));
        p.write(count_b0(nz));
        p.add(1).write((nz >> 7) as u8);
        p.add(count_len(nz))
    }
}

/// A changed run of at most this many bytes is moved as one block of this size when the page and
/// `dst` have room for it: one load and one store in place of a copy whose length varies (on the
/// real dirty pairs of `bench/qemu-xbzrle`, 5-19% less time a page on four of the five traces
/// than a call for runs over 16 bytes, the fifth unchanged).
const BLOCK_MOVE: usize = 64;

/// Appends the pair for changed run `[s, e)` whose zrun starts at `prev_end`, checking the room
/// first. Returns the new output length, or `None` if the pair does not fit or the run is too
/// long to express.
///
/// Bytes of `dst` after the pair may be written as scratch (see the module docs).
#[inline(always)]
fn put_pair(
    dst: &mut [u8],
    d: usize,
    new: &[u8],
    prev_end: usize,
    s: usize,
    e: usize,
) -> Option<usize> {
    let z = s - prev_end;
    let nz = e - s;
    if nz > MAX_COUNT || z > MAX_COUNT {
        return None;
    }
    let room = dst.len() - d;
    let head = count_len(z) + count_len(nz);
    if nz <= BLOCK_MOVE && room >= 4 + BLOCK_MOVE && new.len() - s >= BLOCK_MOVE {
        // The usual run: counts and a 64-byte move, no per-byte checks and no call.
        // SAFETY: d + 4 + 64 <= dst.len(), so the counts (4 bytes at most at d) and the move (64
        // bytes at d + head <= d + 4) stay inside dst; the move reads new[s..s + 64], inside new
        // (new.len() - s >= 64). dst and new are distinct borrows: the ranges do not overlap.
        unsafe {
            let p = put_counts_unchecked(dst.as_mut_ptr().add(d), z, nz);
            copy_block::<BLOCK_MOVE>(new.as_ptr().add(s), p);
        }
        return Some(d + head + nz);
    }
    if room >= 4 + nz.max(16) && new.len() - s >= 16 {
        // A long run, or one near the end of the page or of dst: counts, then a 16-byte move for
        // a short run or a copy of exactly nz bytes.
        // SAFETY: d + 4 + max(nz, 16) <= dst.len(), so the counts (4 bytes at most at d) and the
        // 16 or nz bytes at d + head <= d + 4 stay inside dst. Reads are new[s..s + 16] (checked:
        // new.len() - s >= 16) or new[s..e] (e <= new.len()). dst and new are distinct borrows.
        unsafe {
            let p = put_counts_unchecked(dst.as_mut_ptr().add(d), z, nz);
            let src = new.as_ptr().add(s);
            if nz <= 16 {
                copy_block::<16>(src, p);
            } else {
                core::ptr::copy_nonoverlapping(src, p, nz);
            }
        }
        return Some(d + head + nz);
    }
    if head + nz > room {
        return None;
    }
    let d = put_count(dst, d, z);
    let d = put_count(dst, d, nz);
    dst[d..d + nz].copy_from_slice(&new[s..e]);
    Some(d + nz)
}

/// Why the run walker stopped early.
#[derive(PartialEq, Eq)]
enum Stop {
    Full,
    RunTooLong,
}

/// Output writer for the run walker.
struct Writer<'a> {
    new: &'a [u8],
    dst: &'a mut [u8],
    d: usize,
    prev_end: usize,
    stop: Stop,
}

impl scan::RunSink for Writer<'_> {
    #[inline(always)]
    fn run(&mut self, s: usize, e: usize) -> bool {
        if e - s > MAX_COUNT {
            self.stop = Stop::RunTooLong;
            return false;
        }
        match put_pair(self.dst, self.d, self.new, self.prev_end, s, e) {
            Some(nd) => {
                self.d = nd;
                self.prev_end = e;
                true
            }
            None => false,
        }
    }
}

/// Kernel-generic encoder body.
struct EncodeJob<'a> {
    old: &'a [u8],
    new: &'a [u8],
    dst: &'a mut [u8],
    merge: bool,
}

impl Job for EncodeJob<'_> {
    type Output = Result<usize, Stop>;
    #[inline(always)]
    unsafe fn run<K: Kernel>(self) -> Result<usize, Stop> {
        let EncodeJob {
            old,
            new,
            dst,
            merge,
        } = self;
        let mut w = Writer {
            new,
            dst,
            d: 0,
            prev_end: 0,
            stop: Stop::Full,
        };
        // SAFETY: old.len() == new.len() (checked by the public entry points); the CPU supports K
        // (our own contract).
        let ok = unsafe {
            if merge {
                scan::for_each_run::<K, MERGE_GAP, false, _>(old, new, &mut w)
            } else {
                scan::for_each_run::<K, 0, false, _>(old, new, &mut w)
            }
        };
        if ok {
            Ok(w.d)
        } else {
            Err(w.stop)
        }
    }
}

fn check_lengths(old: &[u8], new: &[u8]) -> Result<(), Overflow> {
    assert_eq!(
        old.len(),
        new.len(),
        "XBZRLE old and new pages must have equal lengths"
    );
    if new.len() > MAX_PAGE {
        return Err(Overflow);
    }
    Ok(())
}

/// Encodes `new` against `old` (same length, at most [`MAX_PAGE`]) into `dst`, absorbing short
/// unchanged gaps; returns the encoded length (0 = identical pages).
///
/// # Panics
/// If `old.len() != new.len()`.
#[inline]
pub fn encode(old: &[u8], new: &[u8], dst: &mut [u8]) -> Result<usize, Overflow> {
    encode_with(scan::best(), old, new, dst)
}

/// [`encode`] with a forced scan implementation.
///
/// # Panics
/// If `old.len() != new.len()` or `isa` is not available on this CPU.
pub fn encode_with(isa: Isa, old: &[u8], new: &[u8], dst: &mut [u8]) -> Result<usize, Overflow> {
    check_lengths(old, new)?;
    let job = EncodeJob {
        old,
        new,
        dst: &mut *dst,
        merge: true,
    };
    match scan::dispatch(isa, job) {
        Ok(n) => Ok(n),
        // Absorbing gaps made a run longer than a count can say (only possible on a 16 KiB page
        // that changed almost everywhere): QEMU's maximal runs may still be expressible.
        Err(Stop::RunTooLong) => encode_exact_with(isa, old, new, dst),
        Err(Stop::Full) => Err(Overflow),
    }
}

/// Encodes exactly as QEMU does (maximal runs, no gap absorption); returns the encoded length
/// (0 = identical pages).
///
/// # Panics
/// If `old.len() != new.len()`.
#[inline]
pub fn encode_exact(old: &[u8], new: &[u8], dst: &mut [u8]) -> Result<usize, Overflow> {
    encode_exact_with(scan::best(), old, new, dst)
}

/// [`encode_exact`] with a forced scan implementation.
///
/// # Panics
/// If `old.len() != new.len()` or `isa` is not available on this CPU.
pub fn encode_exact_with(
    isa: Isa,
    old: &[u8],
    new: &[u8],
    dst: &mut [u8],
) -> Result<usize, Overflow> {
    check_lengths(old, new)?;
    let job = EncodeJob {
        old,
        new,
        dst,
        merge: false,
    };
    scan::dispatch(isa, job).map_err(|_| Overflow)
}

/// Has-zero-byte test: non-zero iff some byte of `x` is zero; its lowest set bit is the high bit
/// of the lowest zero byte (bits above it may be false positives).
#[inline(always)]
fn zero_byte_bits(x: u64) -> u64 {
    x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080
}

#[inline(always)]
fn word(p: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(p[i..i + 8].try_into().unwrap())
}

/// Plain scalar encoder with the structure of QEMU's C encoder (`xbzrle_encode_buffer`), used as
/// the benchmark peer and as a second opinion in tests. Produces the same bytes as
/// [`encode_exact`]. Per run: a byte loop until the remaining length is a multiple of 8, then 8
/// bytes at a time (word compare through unchanged bytes; the has-zero-byte test on the XOR
/// through changed bytes), then a byte loop to find the exact end of the run.
///
/// See [`encode_scalar_words`] for a stronger scalar variant.
///
/// # Panics
/// If `old.len() != new.len()`.
pub fn encode_scalar_reference(old: &[u8], new: &[u8], dst: &mut [u8]) -> Result<usize, Overflow> {
    check_lengths(old, new)?;
    let n = new.len();
    let mut i = 0usize;
    let mut d = 0usize;
    while i < n {
        // Unchanged run.
        let zs = i;
        let mut res = (n - i) % 8;
        while res > 0 && old[i] == new[i] {
            i += 1;
            res -= 1;
        }
        if res == 0 {
            while i < n && word(old, i) == word(new, i) {
                i += 8;
            }
            while i < n && old[i] == new[i] {
                i += 1;
            }
        }
        if i == n {
            // Trailing unchanged run is not written (whole page: identical, d == 0).
            break;
        }
        let z = i - zs;
        // Changed run.
        let ns = i;
        let mut res = (n - i) % 8;
        while res > 0 && old[i] != new[i] {
            i += 1;
            res -= 1;
        }
        if res == 0 {
            while i < n {
                if zero_byte_bits(word(old, i) ^ word(new, i)) != 0 {
                    while old[i] != new[i] {
                        i += 1;
                    }
                    break;
                }
                i += 8;
            }
        }
        let nz = i - ns;
        if nz > MAX_COUNT {
            return Err(Overflow);
        }
        let need = count_len(z) + count_len(nz) + nz;
        if need > dst.len() - d {
            return Err(Overflow);
        }
        d = put_count(dst, d, z);
        d = put_count(dst, d, nz);
        dst[d..d + nz].copy_from_slice(&new[ns..i]);
        d += nz;
    }
    Ok(d)
}

/// A stronger scalar encoder than [`encode_scalar_reference`]: 8 bytes at a time from any
/// position, locating run boundaries inside a word with `trailing_zeros` instead of byte loops.
/// Produces the same bytes as [`encode_exact`].
///
/// # Panics
/// If `old.len() != new.len()`.
pub fn encode_scalar_words(old: &[u8], new: &[u8], dst: &mut [u8]) -> Result<usize, Overflow> {
    check_lengths(old, new)?;
    let n = new.len();
    let mut i = 0usize;
    let mut d = 0usize;
    while i < n {
        // Zero run: whole words while they are equal, then the first differing byte.
        let zs = i;
        while i + 8 <= n {
            let x = word(old, i) ^ word(new, i);
            if x != 0 {
                i += x.trailing_zeros() as usize / 8;
                break;
            }
            i += 8;
        }
        if i + 8 > n {
            while i < n && old[i] == new[i] {
                i += 1;
            }
        }
        if i == n {
            // Trailing zero run is not written (whole page: identical, d == 0).
            break;
        }
        let z = i - zs;
        // Changed run: whole words while no byte is equal, then the first equal byte.
        let ns = i;
        i += 1;
        while i + 8 <= n {
            let hz = zero_byte_bits(word(old, i) ^ word(new, i));
            if hz != 0 {
                i += hz.trailing_zeros() as usize / 8;
                break;
            }
            i += 8;
        }
        if i + 8 > n {
            while i < n && old[i] != new[i] {
                i += 1;
            }
        }
        let nz = i - ns;
        if nz > MAX_COUNT {
            return Err(Overflow);
        }
        let need = count_len(z) + count_len(nz) + nz;
        if need > dst.len() - d {
            return Err(Overflow);
        }
        d = put_count(dst, d, z);
        d = put_count(dst, d, nz);
        dst[d..d + nz].copy_from_slice(&new[ns..i]);
        d += nz;
    }
    Ok(d)
}

/// Reads a count (at most 2 ULEB128 bytes) at `src[*i..]`.
#[inline(always)]
fn get_count(src: &[u8], i: &mut usize) -> Result<usize, DecodeError> {
    let b0 = *src.get(*i).ok_or(DecodeError::Truncated)?;
    if b0 & 0x80 == 0 {
        *i += 1;
        return Ok(b0 as usize);
    }
    let b1 = *src.get(*i + 1).ok_or(DecodeError::Truncated)?;
    if b1 & 0x80 != 0 {
        return Err(DecodeError::BadVarint);
    }
    *i += 2;
    Ok((b0 & 0x7f) as usize | (b1 as usize) << 7)
}

/// Applies the XBZRLE encoding `src` to `dst` in place (`dst` holds the old page), writing only
/// the bytes of the nzruns. Returns the offset just past the last nzrun (0 for empty input).
///
/// Rejects malformed input (see [`DecodeError`]); `dst` may then be partially patched, as with
/// QEMU's decoder. Never writes outside `dst` and never panics. Like QEMU's decoder, it accepts
/// non-minimal 2-byte counts (e.g. `0x81 0x00` for 1).
pub fn decode(src: &[u8], dst: &mut [u8]) -> Result<usize, DecodeError> {
    let mut i = 0usize;
    let mut d = 0usize;
    while i < src.len() {
        let at_start = i == 0;
        let z = get_count(src, &mut i)?;
        if z == 0 && !at_start {
            return Err(DecodeError::ZeroRun);
        }
        d += z;
        if d > dst.len() {
            return Err(DecodeError::OutOfBounds);
        }
        let nz = get_count(src, &mut i)?;
        if nz == 0 {
            return Err(DecodeError::ZeroNzrun);
        }
        if nz > dst.len() - d {
            return Err(DecodeError::OutOfBounds);
        }
        if nz > src.len() - i {
            return Err(DecodeError::Truncated);
        }
        dst[d..d + nz].copy_from_slice(&src[i..i + nz]);
        d += nz;
        i += nz;
    }
    Ok(d)
}

/// [`encode`] with QEMU's `xbzrle_encode_buffer` return convention: the encoded length, 0 when
/// identical, -1 when the encoding does not fit `dst` (or the page is not encodable).
///
/// # Panics
/// If `old.len() != new.len()`.
pub fn encode_qemu(old: &[u8], new: &[u8], dst: &mut [u8]) -> i32 {
    match encode(old, new, dst) {
        Ok(n) => n as i32,
        Err(Overflow) => -1,
    }
}

/// [`decode`] with QEMU's `xbzrle_decode_buffer` return convention: the offset past the last
/// nzrun, or -1 on malformed input.
pub fn decode_qemu(src: &[u8], dst: &mut [u8]) -> i32 {
    match decode(src, dst) {
        // d <= dst.len(); a dst longer than i32::MAX cannot come through a C int length anyway.
        Ok(n) => i32::try_from(n).unwrap_or(i32::MAX),
        Err(_) => -1,
    }
}

#[cfg(test)]
mod tests;
