//! The sharing table: block hash -> a location (page index, block index) whose content the backup
//! already holds.
//!
//! The table is a fixed array sized from the memory budget, one entry per slot; a new entry
//! overwrites whatever shared its slot. It never allocates after construction. An entry is only a
//! hint: the encoder confirms a hit byte for byte against its cached copy of the location before it
//! sends a reference, and drops the entry when the location no longer holds that content (the page
//! was sent anew or left the cache). So a stale entry costs one comparison, never a wrong reference.
//!
//! An entry is 8 bytes: the location and [`TAG_BITS`] bits of the hash (the slot comes from its
//! other bits). Its entries are charged to the full tier's budget, a block's worth per cached
//! page, so every byte an entry saves is room for more page copies. Another block whose hash
//! lands in the same slot with the same tag (one lookup in four million) is a candidate that
//! its comparison refuses, and its entry is dropped like a stale one.

use crate::budget::filled;
use crate::error::Error;

/// Bytes one table entry takes.
pub const ENTRY_BYTES: usize = 8;

/// Bits of the block hash an entry keeps to tell its block from others in the same slot.
pub const TAG_BITS: u32 = 22;
/// Bits of the block index (a page has at most 1024 blocks: 64 KiB pages of 64 B blocks).
const BLOCK_BITS: u32 = 10;
/// Bits of the page index.
const PAGE_BITS: u32 = 64 - TAG_BITS - BLOCK_BITS;

/// The largest page index the table records: pages above it (guest memory beyond 16 TiB of 4 KiB
/// pages) are never the source of a shared block.
pub const MAX_PAGE: u64 = (1 << PAGE_BITS) - 2;

/// An empty slot: its page field (all ones) is above [`MAX_PAGE`], so no entry equals it.
const EMPTY: u64 = u64::MAX;

/// The entry for block `block` of page `page` with hash `hash`.
#[inline(always)]
fn entry(hash: u64, page: u64, block: usize) -> u64 {
    (hash >> (64 - TAG_BITS) << (64 - TAG_BITS)) | (page << BLOCK_BITS) | block as u64
}

/// Counters of a [`ShareTable`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShareStats {
    /// Entries written.
    pub inserts: u64,
    /// Lookups made.
    pub lookups: u64,
    /// Lookups that found an entry with the same tag (the same hash, but for one lookup in
    /// about four million).
    pub candidates: u64,
    /// Entries dropped because their location did not hold the block looked up: the content
    /// changed, or (as rarely as above) another block's hash had the same tag.
    pub stale: u64,
}

/// Hash -> location table of fixed capacity.
///
/// ```
/// use fgbi::share::ShareTable;
/// let mut t = ShareTable::with_capacity(1024);
/// t.insert(0xabcd_0000_0000_0000, 7, 3);
/// assert_eq!(t.lookup(0xabcd_0000_0000_0000), Some((7, 3)));
/// t.invalidate(0xabcd_0000_0000_0000, 7, 3);
/// assert_eq!(t.lookup(0xabcd_0000_0000_0000), None);
/// ```
#[derive(Debug, Clone)]
pub struct ShareTable {
    entries: Vec<u64>,
    stats: ShareStats,
}

impl ShareTable {
    /// A table of `capacity` entries (0 disables it: every lookup misses). Panics when the
    /// memory cannot be had (see [`try_with_capacity`](Self::try_with_capacity)).
    pub fn with_capacity(capacity: usize) -> Self {
        Self::try_with_capacity(capacity).expect("memory for the sharing table")
    }

    /// [`with_capacity`](Self::with_capacity), with the table allocated and written now:
    /// [`Error::OutOfMemory`] when it cannot be had.
    pub fn try_with_capacity(capacity: usize) -> Result<Self, Error> {
        Ok(ShareTable {
            entries: filled(capacity, EMPTY, "the sharing table")?,
            stats: ShareStats::default(),
        })
    }

    /// The slot of `hash`: from its low bits (the tag is its top bits). Multiply-shift maps
    /// them onto any table length without a division.
    #[inline]
    fn slot(&self, hash: u64) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let low = hash << TAG_BITS;
        Some(((low as u128 * self.entries.len() as u128) >> 64) as usize)
    }

    /// Records that block `block` of page `page` has content hashing to `hash` (nothing for a
    /// page above [`MAX_PAGE`] or a block index of 1024 or more, which no page has).
    #[inline]
    pub fn insert(&mut self, hash: u64, page: u64, block: usize) {
        if page > MAX_PAGE || block >= 1 << BLOCK_BITS {
            return;
        }
        if let Some(s) = self.slot(hash) {
            self.entries[s] = entry(hash, page, block);
            self.stats.inserts += 1;
        }
    }

    /// The location last recorded for a hash with the tag of `hash` in its slot, if its entry
    /// survives.
    #[inline]
    pub fn lookup(&mut self, hash: u64) -> Option<(u64, usize)> {
        self.stats.lookups += 1;
        let e = self.entries[self.slot(hash)?];
        if e == EMPTY || (e ^ hash) >> (64 - TAG_BITS) != 0 {
            return None;
        }
        self.stats.candidates += 1;
        let loc = e & ((1 << (64 - TAG_BITS)) - 1);
        Some((loc >> BLOCK_BITS, (loc & ((1 << BLOCK_BITS) - 1)) as usize))
    }

    /// Drops the entry for `hash` if it still points at (`page`, `block`).
    #[inline]
    pub fn invalidate(&mut self, hash: u64, page: u64, block: usize) {
        if page > MAX_PAGE || block >= 1 << BLOCK_BITS {
            return;
        }
        if let Some(s) = self.slot(hash) {
            let e = &mut self.entries[s];
            if *e == entry(hash, page, block) {
                *e = EMPTY;
                self.stats.stale += 1;
            }
        }
    }

    /// Empties the table.
    pub fn clear(&mut self) {
        self.entries.fill(EMPTY);
    }

    /// Entries the table holds at most.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of memory the table holds.
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * ENTRY_BYTES
    }

    /// Counters since construction.
    pub fn stats(&self) -> ShareStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash with tag `tag` (its top bits) and `low` below.
    fn h(tag: u64, low: u64) -> u64 {
        tag << (64 - TAG_BITS) | low
    }

    #[test]
    fn a_later_insert_with_the_same_hash_replaces_the_location() {
        let mut t = ShareTable::with_capacity(64);
        t.insert(h(5, 77), 1, 1);
        t.insert(h(5, 77), 2, 9);
        assert_eq!(t.lookup(h(5, 77)), Some((2, 9)));
        // invalidating the old location leaves the new one alone
        t.invalidate(h(5, 77), 1, 1);
        assert_eq!(t.lookup(h(5, 77)), Some((2, 9)));
        t.invalidate(h(5, 77), 2, 9);
        assert_eq!(t.lookup(h(5, 77)), None);
        assert_eq!(t.stats().stale, 1);
    }

    #[test]
    fn a_zero_capacity_table_misses_everything() {
        let mut t = ShareTable::with_capacity(0);
        t.insert(1, 1, 1);
        assert_eq!(t.lookup(1), None);
        assert_eq!(t.memory_bytes(), 0);
    }

    /// Two hashes in one slot: the one whose tag differs from the entry's is a miss; one with
    /// the entry's tag is a candidate (the encoder's comparison then refuses it).
    #[test]
    fn a_slot_answers_only_hashes_with_its_entrys_tag() {
        let mut t = ShareTable::with_capacity(1);
        t.insert(h(10, 3), 1, 0);
        t.insert(h(11, 3), 2, 0);
        assert_eq!(t.lookup(h(10, 3)), None);
        assert_eq!(t.lookup(h(11, 3)), Some((2, 0)));
        assert_eq!(t.lookup(h(11, 99)), Some((2, 0)), "same tag, same slot");
        assert_eq!(t.stats().candidates, 2);
    }

    /// Every location the table may record comes back as it went in: the largest page index
    /// and block index with every tag bit set, and small ones with none; a page above
    /// [`MAX_PAGE`] is not recorded (nor does it drop an entry).
    #[test]
    fn locations_come_back_whole_up_to_the_largest_page() {
        let mut t = ShareTable::with_capacity(16);
        let top = u64::MAX; // every tag bit and every slot bit
        for (hash, page, block) in [
            (top, MAX_PAGE, 1023),
            (h(0, 5), 0, 0),
            (top >> 1, 12345, 17),
        ] {
            t.insert(hash, page, block);
            assert_eq!(t.lookup(hash), Some((page, block)));
            t.invalidate(hash, page, block);
            assert_eq!(t.lookup(hash), None);
        }
        t.insert(top, MAX_PAGE + 1, 0);
        t.insert(top, 4, 1024);
        assert_eq!(t.lookup(top), None);
        assert_eq!(t.stats().inserts, 3);
        // a page index whose low 32 bits are 4, and a block index whose low 10 bits are 2,
        // must not stand for (4, 2)
        t.insert(top, 4, 2);
        t.invalidate(top, 4 + (1 << 32), 2);
        t.invalidate(top, 4, 2 + 1024);
        assert_eq!(t.lookup(top), Some((4, 2)));
    }

    /// The slot comes from the hash's bits below the tag: hashes that differ only in their tag
    /// share a slot, so the later entry replaces the earlier one.
    #[test]
    fn hashes_that_differ_only_in_their_tag_share_a_slot() {
        let mut t = ShareTable::with_capacity(1 << 16);
        for low in [0x1234_5678_9abc, 7, (1 << (64 - TAG_BITS)) - 1] {
            // (tags apart in their top bits, which would pick the slot were it the hash's top)
            let (a, b) = (h(1, low), h((1 << TAG_BITS) - 1, low));
            t.insert(a, 1, 0);
            t.insert(b, 2, 0);
            assert_eq!(t.lookup(a), None);
            assert_eq!(t.lookup(b), Some((2, 0)));
        }
    }

    #[test]
    fn an_entry_takes_eight_bytes() {
        assert_eq!(ShareTable::with_capacity(1000).memory_bytes(), 8000);
    }
}
