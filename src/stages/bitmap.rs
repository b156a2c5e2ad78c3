//! Bitmaps (bitvec): a dirty-page bitmap for callers, a changed-block bitmap per page, and a
//! sparse page set for tracking which pages a replica holds.

use bitvec::prelude::*;
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
/// ```
/// let mut set = fgbi::bitmap::PageSet::default();
/// set.insert(5);
/// set.insert(1 << 40);
/// assert!(set.contains(5) && set.contains(1 << 40) && !set.contains(6));
/// ```
#[derive(Debug, Clone, Default)]
pub struct PageSet {
    chunks: HashMap<u64, BitArray<[u64; (CHUNK_PAGES / 64) as usize], Lsb0>>,
}

impl PageSet {
    /// Adds page `i`.
    pub fn insert(&mut self, i: u64) {
        let chunk = self.chunks.entry(i / CHUNK_PAGES).or_default();
        chunk.set((i % CHUNK_PAGES) as usize, true);
    }
    /// Adds page `i` if the set has room or can grow (false when memory for a new chunk could
    /// not be had; the set is then unchanged).
    pub fn try_insert(&mut self, i: u64) -> bool {
        let key = i / CHUNK_PAGES;
        if !self.chunks.contains_key(&key) && self.chunks.try_reserve(1).is_err() {
            return false;
        }
        self.insert(i);
        true
    }
    /// Makes room for every chunk of `other` not in the set yet, so that
    /// [`union_with`](Self::union_with) cannot allocate; false when the memory could not be had.
    pub fn try_reserve_for(&mut self, other: &PageSet) -> bool {
        let new = other
            .chunks
            .keys()
            .filter(|k| !self.chunks.contains_key(k))
            .count();
        self.chunks.try_reserve(new).is_ok()
    }
    /// Removes page `i`.
    pub fn remove(&mut self, i: u64) {
        if let Some(chunk) = self.chunks.get_mut(&(i / CHUNK_PAGES)) {
            chunk.set((i % CHUNK_PAGES) as usize, false);
        }
    }
    /// Is page `i` in the set?
    pub fn contains(&self, i: u64) -> bool {
        self.chunks
            .get(&(i / CHUNK_PAGES))
            .is_some_and(|c| c[(i % CHUNK_PAGES) as usize])
    }
    /// Adds every page of `other`.
    pub fn union_with(&mut self, other: &PageSet) {
        for (k, chunk) in &other.chunks {
            *self.chunks.entry(*k).or_default() |= *chunk;
        }
    }
    /// Removes every page.
    pub fn clear(&mut self) {
        self.chunks.clear();
    }
    /// Bytes of memory the set holds.
    pub fn memory_bytes(&self) -> usize {
        self.chunks.capacity() * (CHUNK_PAGES as usize / 8 + 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn page_set_agrees_with_a_hash_set() {
        let mut set = PageSet::default();
        let mut reference = std::collections::HashSet::new();
        let mut x = 12345u64;
        for _ in 0..5000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let page = (x >> 33) % 20000;
            if x & 1 == 0 {
                set.insert(page);
                reference.insert(page);
            } else {
                set.remove(page);
                reference.remove(&page);
            }
        }
        for page in 0..20000 {
            assert_eq!(set.contains(page), reference.contains(&page), "page {page}");
        }
    }
}
