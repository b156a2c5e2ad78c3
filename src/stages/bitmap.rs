//! Bitmaps: a fixed-length bit vector ([`Bits`]) under a dirty-page bitmap for callers and a
//! changed-block bitmap per page, and a sparse page set for tracking which pages a replica holds.
//!
//! Bit `i` is bit `i % 64` (least significant first) of word `i / 64`; bits past the length in
//! the last word are always clear, so counting and iterating never look at the length.

use crate::budget::filled;
use crate::error::Error;
use std::cell::Cell;
use std::collections::HashMap;

/// A fixed number of bits, all clear when made.
///
/// ```
/// let mut b = fgbi::bitmap::Bits::zeros(70);
/// b.set(3, true);
/// b.set(69, true);
/// assert!(b.get(69) && !b.get(4));
/// assert_eq!(b.iter_ones().collect::<Vec<_>>(), [3, 69]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    /// `len` clear bits.
    pub fn zeros(len: usize) -> Bits {
        Bits {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }
    /// `len` clear bits, or an error when their memory cannot be had (no abort).
    pub(crate) fn try_zeros(len: usize, what: &'static str) -> Result<Bits, Error> {
        Ok(Bits {
            words: filled(len.div_ceil(64), 0, what)?,
            len,
        })
    }
    /// Number of bits.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when there are no bits.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Bit `i`; false past the end.
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] >> (i % 64) & 1 != 0
    }
    /// Sets bit `i` to `on`. Panics if `i` is not below [`len`](Self::len).
    #[inline]
    pub fn set(&mut self, i: usize, on: bool) {
        assert!(i < self.len, "bit {i} of {}", self.len);
        let (w, m) = (&mut self.words[i / 64], 1u64 << (i % 64));
        *w = if on { *w | m } else { *w & !m };
    }
    /// Sets every bit to `on`.
    pub fn fill(&mut self, on: bool) {
        self.words.fill(if on { u64::MAX } else { 0 });
        if on && !self.len.is_multiple_of(64) {
            // the bits past the end stay clear
            if let Some(last) = self.words.last_mut() {
                *last = (1u64 << (self.len % 64)) - 1;
            }
        }
    }
    /// Number of set bits.
    pub fn count_ones(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
    /// Indexes of the set bits, ascending.
    pub fn iter_ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(k, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let b = w.trailing_zeros() as usize;
                    w &= w - 1;
                    k * 64 + b
                })
            })
        })
    }
    /// Bytes of memory the bits hold.
    pub fn memory_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

/// One bit per page of a guest memory region, set when the page is dirty.
///
/// ```
/// let mut dirty = fgbi::bitmap::DirtyBitmap::new(8);
/// dirty.set(3);
/// dirty.set(6);
/// assert_eq!(dirty.iter().collect::<Vec<_>>(), [3, 6]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirtyBitmap {
    bits: Bits,
}

impl DirtyBitmap {
    /// A clear bitmap of `pages` bits.
    pub fn new(pages: usize) -> Self {
        DirtyBitmap {
            bits: Bits::zeros(pages),
        }
    }
    /// Marks page `i` dirty. Panics if `i` is out of range.
    pub fn set(&mut self, i: usize) {
        self.bits.set(i, true);
    }
    /// Is page `i` dirty?
    pub fn get(&self, i: usize) -> bool {
        self.bits.get(i)
    }
    /// Clears every bit.
    pub fn clear(&mut self) {
        self.bits.fill(false);
    }
    /// Number of dirty pages.
    pub fn count(&self) -> usize {
        self.bits.count_ones()
    }
    /// Number of pages the bitmap covers.
    pub fn len(&self) -> usize {
        self.bits.len()
    }
    /// True when the bitmap covers no pages.
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }
    /// Indexes of the dirty pages, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.bits.iter_ones()
    }
    /// Marks every page of `new` that differs from the same page of `old` (equal-length images
    /// of `page_size`-byte pages); returns how many were marked.
    pub fn mark_changed(&mut self, old: &[u8], new: &[u8], page_size: usize) -> usize {
        assert_eq!(old.len(), new.len(), "images differ in length");
        let mut n = 0;
        for (i, (a, b)) in old.chunks(page_size).zip(new.chunks(page_size)).enumerate() {
            if a != b {
                self.bits.set(i, true);
                n += 1;
            }
        }
        n
    }
}

/// One bit per block of a page, set when the block changed (or must be sent).
pub type BlockBitmap = Bits;

/// Pages per chunk of a [`PageSet`].
const CHUNK_PAGES: u64 = 4096;

/// A set of page indexes kept as 4096-page bitmap chunks, allocated only where pages are: one bit
/// per page in use, whatever the guest's address layout.
///
/// Pages mostly come in address order, so the chunk of the last lookup is remembered: the next
/// page usually falls in it, and then finding it costs a comparison, not a hash-map lookup.
///
/// ```
/// let mut set = fgbi::bitmap::PageSet::default();
/// set.insert(5);
/// set.insert(1 << 40);
/// assert!(set.contains(5) && set.contains(1 << 40) && !set.contains(6));
/// ```
#[derive(Debug, Clone)]
pub struct PageSet {
    /// Chunk number (page / 4096) -> its place in `bits`.
    index: HashMap<u64, u32>,
    bits: Vec<Chunk>,
    /// (chunk number, place) of the last chunk found; `NO_CHUNK` for none.
    last: Cell<(u64, u32)>,
}

/// One bit per page of a chunk, as [`Bits`] lays them out.
type Chunk = [u64; (CHUNK_PAGES / 64) as usize];

/// No page index has this chunk number (page indexes are below 2^52).
const NO_CHUNK: u64 = u64::MAX;

impl Default for PageSet {
    fn default() -> Self {
        PageSet {
            index: HashMap::new(),
            bits: Vec::new(),
            last: Cell::new((NO_CHUNK, 0)),
        }
    }
}

impl PageSet {
    /// The place in `bits` of chunk `key`, if the set has it.
    #[inline]
    fn find(&self, key: u64) -> Option<usize> {
        let (k, at) = self.last.get();
        if k == key {
            return Some(at as usize);
        }
        let at = *self.index.get(&key)?;
        self.last.set((key, at));
        Some(at as usize)
    }

    /// The place of chunk `key`, added empty if the set does not have it (growing the set).
    fn find_or_add(&mut self, key: u64) -> usize {
        if let Some(at) = self.find(key) {
            return at;
        }
        let at = self.bits.len() as u32;
        self.bits.push([0; (CHUNK_PAGES / 64) as usize]);
        self.index.insert(key, at);
        self.last.set((key, at));
        at as usize
    }

    /// Room for `new` more chunks without allocating; false when the memory could not be had.
    fn try_reserve_chunks(&mut self, new: usize) -> bool {
        self.index.try_reserve(new).is_ok() && self.bits.try_reserve(new).is_ok()
    }

    /// Adds page `i`.
    pub fn insert(&mut self, i: u64) {
        let at = self.find_or_add(i / CHUNK_PAGES);
        let b = i % CHUNK_PAGES;
        self.bits[at][(b / 64) as usize] |= 1 << (b % 64);
    }
    /// Adds page `i` if the set has room or can grow (false when memory for a new chunk could
    /// not be had; the set is then unchanged).
    pub fn try_insert(&mut self, i: u64) -> bool {
        if self.find(i / CHUNK_PAGES).is_none() && !self.try_reserve_chunks(1) {
            return false;
        }
        self.insert(i);
        true
    }
    /// Makes room for every chunk of `other` not in the set yet, so that
    /// [`union_with`](Self::union_with) cannot allocate; false when the memory could not be had.
    pub fn try_reserve_for(&mut self, other: &PageSet) -> bool {
        let new = other
            .index
            .keys()
            .filter(|k| !self.index.contains_key(k))
            .count();
        self.try_reserve_chunks(new)
    }
    /// Removes page `i`.
    pub fn remove(&mut self, i: u64) {
        if let Some(at) = self.find(i / CHUNK_PAGES) {
            let b = i % CHUNK_PAGES;
            self.bits[at][(b / 64) as usize] &= !(1 << (b % 64));
        }
    }
    /// Is page `i` in the set?
    #[inline]
    pub fn contains(&self, i: u64) -> bool {
        let b = i % CHUNK_PAGES;
        self.find(i / CHUNK_PAGES)
            .is_some_and(|at| self.bits[at][(b / 64) as usize] >> (b % 64) & 1 != 0)
    }
    /// Adds every page of `other`.
    pub fn union_with(&mut self, other: &PageSet) {
        for (&key, &at) in &other.index {
            let mine = self.find_or_add(key);
            let theirs = other.bits[at as usize];
            for (w, o) in self.bits[mine].iter_mut().zip(theirs) {
                *w |= o;
            }
        }
    }
    /// Removes every page.
    pub fn clear(&mut self) {
        self.index.clear();
        self.bits.clear();
        self.last.set((NO_CHUNK, 0));
    }
    /// Bytes of memory the set holds.
    pub fn memory_bytes(&self) -> usize {
        self.bits.capacity() * (CHUNK_PAGES as usize / 8) + self.index.capacity() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A repeatable stream of 53-bit random numbers (a linear congruential generator's top bits).
    fn random(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 11
        }
    }

    /// Random sets, clears and fills on bit vectors of lengths around word boundaries: every
    /// read (get, count, the set bits in order) agrees with a `Vec<bool>` at every step, and no
    /// bit past the end is ever reported.
    #[test]
    fn bits_agree_with_a_vec_of_bools() {
        let mut next = random(99);
        for len in [0usize, 1, 63, 64, 65, 127, 128, 129, 200] {
            let mut bits = Bits::zeros(len);
            let mut naive = vec![false; len];
            for step in 0..if cfg!(miri) { 40 } else { 600 } {
                let r = next();
                match r % 16 {
                    0 => {
                        let on = r & 16 != 0;
                        bits.fill(on);
                        naive.fill(on);
                    }
                    _ if len > 0 => {
                        let i = (r >> 5) as usize % len;
                        let on = r & 16 != 0;
                        bits.set(i, on);
                        naive[i] = on;
                    }
                    _ => {}
                }
                let ones: Vec<usize> = (0..len).filter(|&i| naive[i]).collect();
                assert_eq!(
                    bits.iter_ones().collect::<Vec<_>>(),
                    ones,
                    "len {len} step {step}"
                );
                assert_eq!(bits.count_ones(), ones.len(), "len {len} step {step}");
                for i in 0..len + 2 {
                    let want = naive.get(i).copied().unwrap_or(false);
                    assert_eq!(bits.get(i), want, "bit {i} of {len}");
                }
            }
            assert_eq!(bits.len(), len);
            assert_eq!(bits.is_empty(), len == 0);
        }
    }

    #[test]
    #[should_panic(expected = "bit 70 of 70")]
    fn setting_a_bit_past_the_end_panics() {
        Bits::zeros(70).set(70, true);
    }

    #[test]
    fn mark_changed_sets_exactly_the_differing_pages() {
        let old = vec![0u8; 4096 * 4];
        let mut new = old.clone();
        new[4096 + 17] = 1;
        new[4096 * 3] = 2;
        let mut dirty = DirtyBitmap::new(4);
        assert_eq!(dirty.mark_changed(&old, &new, 4096), 2);
        assert_eq!(dirty.iter().collect::<Vec<_>>(), [1, 3]);
        assert_eq!(dirty.count(), 2);
        dirty.clear();
        assert_eq!(dirty.count(), 0);
    }

    /// Random inserts, removals and lookups, in runs of neighbouring pages (the remembered
    /// chunk) and jumps between far chunks, then a union and a clear: the set answers as a
    /// `HashSet` does at every step.
    #[test]
    fn page_set_agrees_with_a_hash_set() {
        let mut next = random(12345);
        let mut sets = [PageSet::default(), PageSet::default()];
        let mut refs = [HashSet::new(), HashSet::new()];
        for n in 0..2 {
            let (set, reference) = (&mut sets[n], &mut refs[n]);
            let mut page = 0u64;
            for _ in 0..20_000 {
                let r = next();
                page = match r % 8 {
                    // a far chunk, or one of a few near ones
                    0 => (r >> 8) % (1 << 40),
                    1 => (r >> 8) % 20_000,
                    _ => page.wrapping_add(1) % (1 << 40),
                };
                match (r >> 4) % 4 {
                    0 | 1 => {
                        assert!(set.try_insert(page));
                        reference.insert(page);
                    }
                    2 => {
                        set.remove(page);
                        reference.remove(&page);
                    }
                    _ => {}
                }
                assert_eq!(set.contains(page), reference.contains(&page), "page {page}");
                let other = (r >> 20) % 20_000;
                assert_eq!(
                    set.contains(other),
                    reference.contains(&other),
                    "page {other}"
                );
            }
        }
        let [mut a, b] = sets;
        let [mut ra, rb] = refs;
        assert!(a.try_reserve_for(&b));
        a.union_with(&b);
        ra.extend(&rb);
        for &p in ra.iter().chain(&rb) {
            assert!(a.contains(p), "page {p} after the union");
        }
        for p in 0..20_000 {
            assert_eq!(a.contains(p), ra.contains(&p), "page {p} after the union");
        }
        a.clear();
        assert!(
            ra.iter().all(|&p| !a.contains(p)),
            "a page left after clear"
        );
        a.insert(7);
        assert!(a.contains(7) && !a.contains(8));
    }
}
