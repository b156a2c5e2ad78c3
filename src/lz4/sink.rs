//! What the two compressors share: unchecked little-endian reads of their input, and the writer
//! of lz4 sequences into a caller's buffer.
//!
//! The reads skip bounds checks (measured 8% of the matcher's time on real pages); each caller
//! keeps `i + 4` (`read32`) or `i + 8` (`read64`) within the slice it passes, as its module
//! states, and the debug assertions check it in every test build. Miri runs the lz4 module's
//! tests (`.ci/run`).

use super::MIN_MATCH;

/// The 4 bytes at `w[i..]`, little-endian; `i + 4 <= w.len()`.
#[inline(always)]
pub(super) fn read32(w: &[u8], i: usize) -> u32 {
    debug_assert!(i + 4 <= w.len());
    // SAFETY: every caller keeps `i + 4 <= w.len()` (see above); unaligned reads are allowed.
    unsafe { (w.as_ptr().add(i) as *const u32).read_unaligned() }.to_le()
}

/// The 8 bytes at `w[i..]`, little-endian; `i + 8 <= w.len()`.
#[inline(always)]
pub(super) fn read64(w: &[u8], i: usize) -> u64 {
    debug_assert!(i + 8 <= w.len());
    // SAFETY: every caller keeps `i + 8 <= w.len()` (see above); unaligned reads are allowed.
    unsafe { (w.as_ptr().add(i) as *const u64).read_unaligned() }.to_le()
}

/// Writes lz4 sequences into a caller's buffer; `None` once they do not fit (never a partial
/// sequence).
pub(super) struct Sink<'a> {
    out: &'a mut [u8],
    o: usize,
}

impl<'a> Sink<'a> {
    /// A sink writing from the start of `out`.
    pub(super) fn new(out: &'a mut [u8]) -> Sink<'a> {
        Sink { out, o: 0 }
    }

    /// Bytes written so far.
    pub(super) fn len(&self) -> usize {
        self.o
    }

    #[inline(always)]
    fn length_ext(&mut self, mut n: usize) {
        while n >= 255 {
            self.out[self.o] = 255;
            self.o += 1;
            n -= 255;
        }
        self.out[self.o] = n as u8;
        self.o += 1;
    }

    /// One sequence: `l` literals (the first `l` bytes of `lits_pad`, which may run on), then
    /// (when `mlen > 0`) a match of `mlen` bytes at `offset`.
    #[inline(always)]
    pub(super) fn sequence(
        &mut self,
        lits_pad: &[u8],
        l: usize,
        offset: usize,
        mlen: usize,
    ) -> Option<()> {
        let m = mlen.saturating_sub(MIN_MATCH);
        let ext = |n: usize| if n >= 15 { (n - 15) / 255 + 1 } else { 0 };
        let need = 1 + ext(l) + l + if mlen > 0 { 2 + ext(m) } else { 0 };
        if self.out.len() - self.o < need {
            return None;
        }
        let lit_nib = l.min(15);
        let match_nib = if mlen == 0 { 0 } else { m.min(15) };
        self.out[self.o] = ((lit_nib << 4) | match_nib) as u8;
        self.o += 1;
        if l >= 15 {
            self.length_ext(l - 15);
        }
        if l <= 16 && lits_pad.len() >= 16 && self.out.len() - self.o >= 16 {
            // one fixed 16-byte move instead of a call for the short runs most sequences have;
            // the bytes past the run are overwritten by what follows or lie past the block
            self.out[self.o..self.o + 16].copy_from_slice(&lits_pad[..16]);
        } else {
            self.out[self.o..self.o + l].copy_from_slice(&lits_pad[..l]);
        }
        self.o += l;
        if mlen > 0 {
            self.out[self.o..self.o + 2].copy_from_slice(&(offset as u16).to_le_bytes());
            self.o += 2;
            if m >= 15 {
                self.length_ext(m - 15);
            }
        }
        Some(())
    }
}
