//! The matcher: [`PageLz`] finds matches in a page and its dictionary and writes lz4 sequences.

use super::sink::{read32, read64, Sink};
use super::{LAST_LITERALS, MAX_OFFSET, MFLIMIT, MIN_MATCH};

/// Hash table entries (as a power of two): 8192 positions, 32 KiB.
const HASH_BITS: u32 = 13;
const TABLE_LEN: usize = 1 << HASH_BITS;
/// Literal-run length (as a power of two) after which probing steps over one more byte.
const SKIP_SHIFT: u32 = 5;
/// Matches this long are taken without looking one byte ahead.
const LAZY_BELOW: usize = 32;

/// Zero bytes after the input in the window: room for 16-byte literal moves and 8-byte hash reads.
const WINDOW_PAD: usize = 16;

/// The compressor; keeps its hash table and window buffer between calls.
#[derive(Clone)]
pub struct PageLz {
    table: Box<[u32; TABLE_LEN]>,
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

// The matcher reads the window 4 and 8 bytes at a time without bounds checks (`sink::read32`,
// `sink::read64`): measured 8% of its time on real pages (`lz` bench). Every caller in this module reads at `i` with
// `i + 8 <= end + WINDOW_PAD`: hash reads start at most `MFLIMIT` (12) bytes before the end of
// the input, dictionary positions at least 4 before it, and `common` stops 8 bytes short of its
// limit, which is at most the end of the input. The debug assertions check it in every test build;
// Miri runs the module's tests (`.ci/run`).

/// Table index of the 5 bytes at `w[i..]` (5 rather than the 4 a match needs: fewer short
/// matches that cost more than their literals after entropy coding; measured on the five
/// traces). The top `HASH_BITS` bits of a product, so indexing the table needs no bounds check.
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
    table: &mut [u32; TABLE_LEN],
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

impl PageLz {
    /// A compressor with an empty history.
    pub fn new() -> PageLz {
        PageLz {
            table: Box::new([0u32; TABLE_LEN]),
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
        let mut sink = Sink::new(out);
        if input.len() < MFLIMIT + 1 {
            sink.sequence(input, input.len(), 0, 0)?;
            return Some(sink.len());
        }
        let table = &mut *self.table;
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
        Some(sink.len())
    }
}
