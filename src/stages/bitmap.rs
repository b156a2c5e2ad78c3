//! Bitmaps (bitvec): a dirty-page bitmap for callers, a changed-block bitmap per page, and a
//! sparse page set for tracking which pages a replica holds.

use bitvec::prelude::*;
use std::cell::Cell;
use std::collections::HashMap;

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
    bits: BitVec<u64, Lsb0>,
}

impl DirtyBitmap {
    /// A clear bitmap of `pages` bits.
    pub fn new(pages: usize) -> Self {
        DirtyBitmap {
            bits: bitvec![u64, Lsb0; 0; pages],
        }
    }
    /// Marks page `i` dirty. Panics if `i` is out of range.
    pub fn set(&mut self, i: usize) {
        self.bits.set(i, true);
    }
    /// Is page `i` dirty?
    pub fn get(&self, i: usize) -> bool {
        self.bits.get(i).is_some_and(|b| *b)
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
pub type BlockBitmap = BitVec<u64, Lsb0>;

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

type Chunk = BitArray<[u64; (CHUNK_PAGES / 64) as usize], Lsb0>;

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
        self.bits.push(Chunk::ZERO);
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
        self.bits[at].set((i % CHUNK_PAGES) as usize, true);
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
            self.bits[at].set((i % CHUNK_PAGES) as usize, false);
        }
    }
    /// Is page `i` in the set?
    #[inline]
    pub fn contains(&self, i: u64) -> bool {
        self.find(i / CHUNK_PAGES)
            .is_some_and(|at| self.bits[at][(i % CHUNK_PAGES) as usize])
    }
    /// Adds every page of `other`.
    pub fn union_with(&mut self, other: &PageSet) {
        for (&key, &at) in &other.index {
            let mine = self.find_or_add(key);
            self.bits[mine] |= other.bits[at as usize];
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
        let mut x = 12345u64;
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 11
        };
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
