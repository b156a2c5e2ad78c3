//! An lz4 block compressor made for pages, alone or against their last-sent version.
//!
//! The output is the standard lz4 block format (any lz4 block decoder reads it, with the same
//! preset dictionary), so the frame format does not depend on it; what differs from lz4_flex's
//! compressor is how hard it looks for matches. For each position it tries, in this order:
//!
//! 1. the same position in the dictionary (the old page): offset = the dictionary's length;
//! 2. the last offset it used (runs of equal distance: arrays of same-shaped objects, a moved
//!    object interrupted by a changed field);
//! 3. a hash table over 5-byte prefixes, filled from every dictionary position and every input
//!    position it probes;
//!
//! keeps the longest candidate, extends it backwards over the pending literals, and, when the
//! match is short, looks one byte ahead before taking it (lazy matching). On inputs where nothing
//! matches it speeds up the way lz4 does, probing sparser the longer the literal run.
//!
//! Measured on the dictionary-compressed pages of the real traces (pages that changed since they
//! were last sent): about 270 sequences per 4 KiB page with ~12-byte matches, of which only ~15
//! are at the same position — changed heap pages mostly hold new objects shaped like the old
//! ones, not old bytes. The extra candidates and the lazy step make lz4 blocks 5-10% smaller than
//! lz4_flex's greedy parse and the frames 3-6% smaller after entropy coding, at about 60% of its
//! speed (README, "Choosing the matcher").
//!
//! The hash table is never cleared between calls: a stale entry is only a candidate, checked
//! byte for byte against the current window before use, and candidates are always behind the
//! current position, so stale entries cost a miss and never a wrong match.
//!
//! ```
//! use fgbi::lz::PageLz;
//! let old: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
//! let mut new = old.clone();
//! new.copy_within(0..1000, 24); // content moved by 24 bytes
//! new[3000] ^= 0xff;
//! let mut lz = PageLz::new();
//! let mut out = vec![0u8; 4096];
//! let n = lz.compress_with_dict(&new, &old, &mut out).unwrap();
//! assert!(n < 64);
//! let mut back = vec![0u8; 4096];
//! fgbi::compress::lz4_dict_decompress(&out[..n], &old, &mut back).unwrap();
//! assert_eq!(back, new);
//! ```

/// Shortest match the lz4 format codes.
pub const MIN_MATCH: usize = 4;
/// lz4 format rule: the last bytes of a block are literals.
const LAST_LITERALS: usize = 5;
/// lz4 format rule: the last match starts at least this many bytes before the end.
const MFLIMIT: usize = 12;
/// Largest lz4 match offset.
const MAX_OFFSET: usize = 65535;
/// Hash table entries (as a power of two): 8192 positions, 32 KiB.
const HASH_BITS: u32 = 13;
/// Literal-run length (as a power of two) after which probing steps over one more byte.
const SKIP_SHIFT: u32 = 5;
/// Matches this long are taken without looking one byte ahead.
const LAZY_BELOW: usize = 32;

/// Zero bytes after the input in the window: room for 16-byte literal moves and 8-byte hash reads.
const WINDOW_PAD: usize = 16;

/// The compressor; keeps its hash table and window buffer between calls.
#[derive(Clone)]
pub struct PageLz {
    table: Box<[u32]>,
    window: Vec<u8>,
}

impl Default for PageLz {
    fn default() -> Self {
        PageLz::new()
    }
}

impl std::fmt::Debug for PageLz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageLz").finish_non_exhaustive()
    }
}

// The matcher reads the window 4 and 8 bytes at a time without bounds checks: measured 8% of
// its time on real pages (`lz` bench). Every caller in this module reads at `i` with
// `i + 8 <= end + WINDOW_PAD`: hash reads start at most `MFLIMIT` (12) bytes before the end of
// the input, dictionary positions at least 4 before it, and `common` stops 8 bytes short of its
// limit, which is at most the end of the input. The debug assertions check it in every test build;
// Miri runs the module's tests (`.ci/run`).

/// The 4 bytes at `w[i..]`, little-endian; `i + 4 <= w.len()`.
#[inline(always)]
fn read32(w: &[u8], i: usize) -> u32 {
    debug_assert!(i + 4 <= w.len());
    // SAFETY: every caller keeps `i + 4 <= w.len()` (see above); unaligned reads are allowed.
    unsafe { (w.as_ptr().add(i) as *const u32).read_unaligned() }.to_le()
}

/// The 8 bytes at `w[i..]`, little-endian; `i + 8 <= w.len()`.
#[inline(always)]
fn read64(w: &[u8], i: usize) -> u64 {
    debug_assert!(i + 8 <= w.len());
    // SAFETY: every caller keeps `i + 8 <= w.len()` (see above); unaligned reads are allowed.
    unsafe { (w.as_ptr().add(i) as *const u64).read_unaligned() }.to_le()
}

/// Hash of the 5 bytes at `w[i..]` (5 rather than the 4 a match needs: fewer short matches that
/// cost more than their literals after entropy coding; measured on the five traces).
#[inline(always)]
fn hash5(w: &[u8], i: usize) -> usize {
    let v = read64(w, i) << 24;
    (v.wrapping_mul(0xCF1B_BCDC_B7A5_6463) >> (64 - HASH_BITS)) as usize
}

/// Length of the common run of `w[a..]` and `w[b..]` (a < b), with `b + length <= limit`.
#[inline(always)]
fn common(w: &[u8], a: usize, b: usize, limit: usize) -> usize {
    let mut n = 0;
    while b + n + 8 <= limit {
        let x = read64(w, a + n) ^ read64(w, b + n);
        if x != 0 {
            return n + (x.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while b + n < limit && w[a + n] == w[b + n] {
        n += 1;
    }
    n
}

/// The longest match at `p` among the three candidates (the same position in the dictionary at
/// offset `same`, the last offset `rep`, the hash table's entry, which it replaces with `p`),
/// other than at offset `skip`: (length, offset), length 0 for none.
#[inline(always)]
fn find(
    w: &[u8],
    table: &mut [u32],
    p: usize,
    same: usize,
    rep: usize,
    skip: usize,
    match_limit: usize,
) -> (usize, usize) {
    let mut best = (0usize, 0usize);
    let v = read32(w, p);
    if same > 0 && same != skip && read32(w, p - same) == v {
        best = (
            MIN_MATCH + common(w, p - same + 4, p + 4, match_limit),
            same,
        );
    }
    if rep != same && rep != skip && rep > 0 && rep <= p && read32(w, p - rep) == v {
        let l = MIN_MATCH + common(w, p - rep + 4, p + 4, match_limit);
        if l > best.0 {
            best = (l, rep);
        }
    }
    let h = hash5(w, p);
    let c = table[h] as usize;
    table[h] = p as u32;
    if c < p && p - c <= MAX_OFFSET && p - c != skip && read32(w, c) == v {
        let l = MIN_MATCH + common(w, c + 4, p + 4, match_limit);
        if l > best.0 {
            best = (l, p - c);
        }
    }
    best
}

/// Writes lz4 sequences into a caller's buffer; `None` once they do not fit.
struct Sink<'a> {
    out: &'a mut [u8],
    o: usize,
}

impl Sink<'_> {
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
    fn sequence(&mut self, lits_pad: &[u8], l: usize, offset: usize, mlen: usize) -> Option<()> {
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

impl PageLz {
    /// A compressor with an empty history.
    pub fn new() -> PageLz {
        PageLz {
            table: vec![0u32; 1 << HASH_BITS].into_boxed_slice(),
            window: Vec::new(),
        }
    }

    /// A compressor whose window buffer holds `bytes` (dictionary plus input) without growing.
    pub fn with_window(bytes: usize) -> PageLz {
        let mut lz = PageLz::new();
        lz.window.reserve_exact(bytes + WINDOW_PAD);
        lz
    }

    /// Compresses `input` into `out` as one lz4 block; `None` when it does not fit.
    pub fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        self.compress_with_dict(input, &[], out)
    }

    /// Compresses `input` into `out` as one lz4 block that may refer back into `dict` (which a
    /// decoder must supply: the bytes logically preceding the block); `None` when the block does
    /// not fit in `out`. Only the last 64 KiB of `dict` can be referred to.
    pub fn compress_with_dict(
        &mut self,
        input: &[u8],
        dict: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        let dict = &dict[dict.len().saturating_sub(MAX_OFFSET)..];
        let n = dict.len();
        self.window.clear();
        self.window.extend_from_slice(dict);
        self.window.extend_from_slice(input);
        let end = self.window.len();
        self.window.extend_from_slice(&[0; WINDOW_PAD]);
        let w = &self.window[..];
        let mut sink = Sink { out, o: 0 };
        if input.len() < MFLIMIT + 1 {
            sink.sequence(input, input.len(), 0, 0)?;
            return Some(sink.o);
        }
        let table = &mut self.table[..];
        // Index every dictionary position.
        for i in 0..n.saturating_sub(3) {
            table[hash5(w, i)] = i as u32;
        }
        let match_limit = end - LAST_LITERALS;
        let last_start = end - MFLIMIT;
        let same = n; // offset of "same position in the old page"
        let mut rep = same;
        let mut anchor = n;
        let mut cur = n;

        while cur <= last_start {
            let (mut len, mut off) = find(w, table, cur, same, rep, 0, match_limit);
            if len < MIN_MATCH {
                cur += 1 + ((cur - anchor) >> SKIP_SHIFT);
                continue;
            }
            // Lazy: a longer match one byte on wins over this one.
            if len < LAZY_BELOW && cur < last_start {
                // (a candidate at this match's own offset would only be this match, shorter)
                let (l2, o2) = find(w, table, cur + 1, same, rep, off, match_limit);
                if l2 > len + 1 {
                    cur += 1;
                    len = l2;
                    off = o2;
                }
            }
            // Extend backwards over pending literals.
            while cur > anchor && cur - off > 0 && w[cur - 1] == w[cur - off - 1] {
                cur -= 1;
                len += 1;
            }
            sink.sequence(&w[anchor..], cur - anchor, off, len)?;
            rep = off;
            cur += len;
            anchor = cur;
            // Index a position inside the match so the next search sees this region.
            if cur - 2 <= last_start {
                table[hash5(w, cur - 2)] = (cur - 2) as u32;
            }
        }
        sink.sequence(&w[anchor..], end - anchor, 0, 0)?;
        Some(sink.o)
    }
}

/// Why [`decompress`] refused a block.
type Refused = crate::compress::DecompressError;

/// Reads an lz4 length extension (bytes of 255 continue it) starting at `block[*i]`.
#[inline(always)]
fn length_ext(block: &[u8], i: &mut usize, mut n: usize) -> Result<usize, Refused> {
    loop {
        let b = *block.get(*i).ok_or(Refused::Corrupt)?;
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
/// `out` is [`Corrupt`](crate::compress::DecompressError::Corrupt); one that ends before `out`
/// is full is [`WrongLength`](crate::compress::DecompressError::WrongLength). Accepts exactly the
/// blocks lz4_flex's checked decoder accepts (tested against it), but copies short literal runs
/// and matches 16 bytes at a time: on real pages (about 240 sequences per 4 KiB) that is what
/// decoding costs.
///
/// ```
/// use fgbi::lz::{decompress, PageLz};
/// let old = vec![7u8; 4096];
/// let mut new = old.clone();
/// new[100..108].copy_from_slice(b"changed!");
/// let mut block = vec![0u8; 4096];
/// let n = PageLz::new().compress_with_dict(&new, &old, &mut block).unwrap();
/// let mut back = vec![0u8; 4096];
/// decompress(&block[..n], &old, &mut back).unwrap();
/// assert_eq!(back, new);
/// ```
pub fn decompress(block: &[u8], dict: &[u8], out: &mut [u8]) -> Result<(), Refused> {
    let out_len = out.len();
    walk::<true>(block, dict, dict.len(), out, out_len)
}

/// The verdict [`decompress`] would give on `block` with a dictionary of `dict_len` bytes and an
/// output of `out_len` bytes, without producing the bytes (a block's validity does not depend on
/// the dictionary's content): the frame decoder checks a whole frame before it applies any of it,
/// and this saves decoding every dictionary-compressed page twice.
///
/// ```
/// use fgbi::lz::{decompress, validate};
/// let block = [0x30, 1, 2, 3]; // three literals
/// assert!(validate(&block, 0, 3).is_ok());
/// assert!(validate(&block, 0, 4).is_err());
/// ```
pub fn validate(block: &[u8], dict_len: usize, out_len: usize) -> Result<(), Refused> {
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
) -> Result<(), Refused> {
    let (mut i, mut o) = (0usize, 0usize);
    loop {
        let token = *block.get(i).ok_or(Refused::Corrupt)?;
        i += 1;
        // literals
        let mut l = (token >> 4) as usize;
        if l == 15 {
            l = length_ext(block, &mut i, l)?;
        }
        if l > block.len() - i || l > out_len - o {
            return Err(Refused::Corrupt);
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
                Err(Refused::WrongLength)
            };
        }
        // match
        let off = match block.get(i..i + 2) {
            Some(b) => u16::from_le_bytes([b[0], b[1]]) as usize,
            None => return Err(Refused::Corrupt),
        };
        i += 2;
        let mut m = (token & 15) as usize;
        if m == 15 {
            m = length_ext(block, &mut i, m)?;
        }
        m += MIN_MATCH;
        if off == 0 || off > o + dict_len || m > out_len - o {
            return Err(Refused::Corrupt);
        }
        if !WRITE {
            o += m;
            continue;
        }
        if off > o {
            // starts in the dictionary, may continue into the output
            let from = dict_len - (off - o);
            let k = m.min(off - o);
            if k <= 32 && from + 32 <= dict_len && o + 32 <= out_len {
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
        if off >= 16 && end + 16 <= out_len {
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
        o = end;
    }
}

#[cfg(test)]
mod tests;
