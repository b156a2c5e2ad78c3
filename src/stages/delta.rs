//! libfgbi's own XOR + run-length page delta codec (used by the frame encoder).
//!
//! # Format
//!
//! The delta of a new page against an old page of the same length `L` is a sequence of pairs
//!
//! ```text
//! skip: ULEB128   count of unchanged bytes before this run
//! len:  ULEB128   length of the run, >= 1
//! len bytes       the run's bytes of the NEW page
//! ```
//!
//! Pairs are in page order: pair *k* covers page bytes `[pos + skip, pos + skip + len)`, where `pos`
//! is the end of the previous pair's run (0 before the first pair). Bytes not covered by any run
//! are unchanged; trailing unchanged bytes are implied (no final skip is written). An empty delta
//! means the pages are identical.
//!
//! Rules a decoder enforces (see [`DeltaError`]):
//! - ULEB128 is little-endian base 128, 7 bits per byte, high bit = "more bytes follow"; at most
//!   10 bytes and the value must fit in 64 bits (the 10th byte may only be 0 or 1). Non-minimal
//!   encodings (`0x80 0x00` for 0) are accepted.
//! - `skip` may be 0 only in the first pair; `len` is never 0.
//! - every run must end at or before `L`; the input must not end inside a varint or a run.
//!
//! The encoder writes maximal runs of changed bytes, except that a gap of at most 2 unchanged
//! bytes between two runs is absorbed into one run (its old bytes are resent): a gap of `g` bytes
//! costs `g` literal bytes when absorbed and at least 2 header bytes when split. Consequently,
//! every `skip` after the first is at least 3 and the encoding of a page of `L` bytes is at most
//! [`max_encoded_len`]`(L) = L + L/16384 + 11` bytes. The format works for any page length; libfgbi
//! uses it for pages up to 1 MiB.
//!
//! Example: a 4096-byte page whose bytes 100..104 and 4095 changed encodes to
//! `64 04 <4 bytes> 97 1f 01 <1 byte>` (skip 100, len 4, skip 3991, len 1): 10 bytes.

use crate::stages::scan::{self, Isa, Job, Kernel};

/// Gap of unchanged bytes absorbed into a run by the encoder.
const MERGE_GAP: usize = 2;

/// Why a delta was rejected by [`validate`] or [`decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaError {
    /// The input ends inside a varint or inside a run's bytes.
    Truncated,
    /// A varint is longer than 10 bytes or its value does not fit in 64 bits.
    BadVarint,
    /// A run of length 0.
    ZeroLength,
    /// A skip of 0 after the first pair.
    ZeroSkip,
    /// A run reaches past the end of the page.
    OutOfBounds,
}

impl std::fmt::Display for DeltaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeltaError::Truncated => "delta truncated inside a varint or run",
            DeltaError::BadVarint => "delta varint too long or larger than 64 bits",
            DeltaError::ZeroLength => "delta run of length 0",
            DeltaError::ZeroSkip => "delta skip of 0 after the first run",
            DeltaError::OutOfBounds => "delta run past the end of the page",
        })
    }
}

impl std::error::Error for DeltaError {}

/// Upper bound of the encoded size for a page of `len` bytes (to size `out` for [`encode`]):
/// `len + len / 16384 + 11`, saturating.
pub const fn max_encoded_len(len: usize) -> usize {
    len.saturating_add(len / 16384).saturating_add(11)
}

/// Encoded size of ULEB128 `v`.
#[inline(always)]
fn uleb_len(v: usize) -> usize {
    // 1 + floor(bits / 7), with v = 0 taking 1 byte.
    let bits = usize::BITS - (v | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

/// Writes ULEB128 `v` at `out[d..]` (room checked by the caller); returns the new offset.
#[inline(always)]
fn put_uleb(out: &mut [u8], mut d: usize, mut v: usize) -> usize {
    while v >= 0x80 {
        out[d] = (v as u8) | 0x80;
        v >>= 7;
        d += 1;
    }
    out[d] = v as u8;
    d + 1
}

/// Appends the pair for changed run `[s, e)` whose skip starts at `prev_end`, checking the room
/// first. Returns the new output length, or `None` if the pair does not fit.
#[inline(always)]
fn put_pair(
    out: &mut [u8],
    d: usize,
    new: &[u8],
    prev_end: usize,
    s: usize,
    e: usize,
) -> Option<usize> {
    let skip = s - prev_end;
    let len = e - s;
    let room = out.len() - d;
    if skip < 0x80 && len < 0x80 && room >= 2 + 16 && new.len() - s >= 16 {
        // Fast path (the usual case): one-byte varints and a run of at most 127 bytes with room
        // for 2 + max(len, 16) bytes. Bytes written beyond the pair are inside out and get
        // overwritten or ignored.
        if room >= 2 + len {
            // SAFETY: d + 2 + max(len, 16) <= out.len() is checked (room >= 18 and room >= 2 +
            // len), so the 2 header bytes and the 16- or len-byte copy at d + 2 stay inside out.
            // Reads are new[s..s + 16] (new.len() - s >= 16 checked) or new[s..e]. out and new are
            // distinct borrows, so the copies do not overlap.
            unsafe {
                let p = out.as_mut_ptr().add(d);
                p.write(skip as u8);
                p.add(1).write(len as u8);
                let src = new.as_ptr().add(s);
                if len <= 16 {
                    p.add(2)
                        .cast::<[u8; 16]>()
                        .write_unaligned(src.cast::<[u8; 16]>().read_unaligned());
                } else {
                    core::ptr::copy_nonoverlapping(src, p.add(2), len);
                }
            }
            return Some(d + 2 + len);
        }
        return None;
    }
    let need = uleb_len(skip) + uleb_len(len) + len;
    if need > room {
        return None;
    }
    let d = put_uleb(out, d, skip);
    let d = put_uleb(out, d, len);
    out[d..d + len].copy_from_slice(&new[s..e]);
    Some(d + len)
}

/// Output writer for the run walker.
struct Writer<'a> {
    new: &'a [u8],
    out: &'a mut [u8],
    d: usize,
    prev_end: usize,
}

impl scan::RunSink for Writer<'_> {
    #[inline(always)]
    fn run(&mut self, s: usize, e: usize) -> bool {
        match put_pair(self.out, self.d, self.new, self.prev_end, s, e) {
            Some(nd) => {
                self.d = nd;
                self.prev_end = e;
                true
            }
            None => false,
        }
    }
}

struct EncodeJob<'a> {
    old: &'a [u8],
    new: &'a [u8],
    out: &'a mut [u8],
}

impl Job for EncodeJob<'_> {
    type Output = Option<usize>;
    #[inline(always)]
    unsafe fn run<K: Kernel>(self) -> Option<usize> {
        let EncodeJob { old, new, out } = self;
        let mut w = Writer {
            new,
            out,
            d: 0,
            prev_end: 0,
        };
        // SAFETY: old.len() == new.len() (checked by the public entry point); the CPU supports K
        // (our own contract).
        let ok = unsafe { scan::for_each_run::<K, MERGE_GAP, true, _>(old, new, &mut w) };
        ok.then_some(w.d)
    }
}

/// Encode `new` against `old` (same length) into `out`. Returns `Some(n)` bytes written (0 =
/// identical), or `None` if the encoding would not fit in `out` (nothing is promised about `out`'s
/// content then). Never writes past `out.len()`; on success, bytes of `out` after the returned
/// length may have been used as scratch. An `out` of [`max_encoded_len`]`(new.len())` bytes
/// always suffices.
///
/// # Panics
/// If `old.len() != new.len()`.
#[inline]
pub fn encode(old: &[u8], new: &[u8], out: &mut [u8]) -> Option<usize> {
    encode_with(scan::best(), old, new, out)
}

/// [`encode`] with a forced scan implementation (for tests and benchmarks).
///
/// # Panics
/// If `old.len() != new.len()` or `isa` is not available on this CPU.
pub fn encode_with(isa: Isa, old: &[u8], new: &[u8], out: &mut [u8]) -> Option<usize> {
    assert_eq!(
        old.len(),
        new.len(),
        "delta old and new pages must have equal lengths"
    );
    scan::dispatch(isa, EncodeJob { old, new, out })
}

/// Reads a ULEB128 at `src[*i..]` as a u64.
#[inline(always)]
fn get_uleb(src: &[u8], i: &mut usize) -> Result<u64, DeltaError> {
    // Fast path: one byte.
    let b = *src.get(*i).ok_or(DeltaError::Truncated)?;
    if b < 0x80 {
        *i += 1;
        return Ok(b as u64);
    }
    let mut v = 0u64;
    for k in 0..10 {
        let b = *src.get(*i + k).ok_or(DeltaError::Truncated)?;
        if k == 9 && b > 1 {
            return Err(DeltaError::BadVarint);
        }
        v |= ((b & 0x7f) as u64) << (7 * k);
        if b < 0x80 {
            *i += k + 1;
            return Ok(v);
        }
    }
    Err(DeltaError::BadVarint)
}

/// Walks the pairs of `src` for a page of `page_len` bytes, calling `f(page_offset, src_offset,
/// len)` for each run after checking it.
#[inline(always)]
fn walk(
    src: &[u8],
    page_len: usize,
    mut f: impl FnMut(usize, usize, usize),
) -> Result<(), DeltaError> {
    let mut i = 0usize;
    let mut pos = 0usize;
    while i < src.len() {
        let skip = get_uleb(src, &mut i)?;
        if skip == 0 && pos != 0 {
            return Err(DeltaError::ZeroSkip);
        }
        let len = get_uleb(src, &mut i)?;
        if len == 0 {
            return Err(DeltaError::ZeroLength);
        }
        // pos <= page_len always holds, so the subtraction cannot wrap.
        let room = (page_len - pos) as u64;
        if skip > room || len > room - skip {
            return Err(DeltaError::OutOfBounds);
        }
        let (skip, len) = (skip as usize, len as usize);
        if len > src.len() - i {
            return Err(DeltaError::Truncated);
        }
        pos += skip;
        f(pos, i, len);
        pos += len;
        i += len;
    }
    Ok(())
}

/// Structural check of `src` for a page of `page_len` bytes without writing anything. `Ok` iff
/// [`decode`] of `src` on a page of that length succeeds.
pub fn validate(src: &[u8], page_len: usize) -> Result<(), DeltaError> {
    walk(src, page_len, |_, _, _| {})
}

/// Apply `src` to `page` in place (`page` holds the old content). Validates as it goes; on error
/// the page may be partially patched (the frame decoder calls [`validate`] first). Never panics
/// and never writes outside `page`.
pub fn decode(src: &[u8], page: &mut [u8]) -> Result<(), DeltaError> {
    let n = page.len();
    walk(src, n, |p, i, len| {
        page[p..p + len].copy_from_slice(&src[i..i + len])
    })
}

#[cfg(test)]
mod tests;
