//! The sharing table: block hash -> a location (page index, block index) whose content the backup
//! already holds.
//!
//! The table is a fixed array sized from the memory budget, one entry per slot; a new entry
//! overwrites whatever shared its slot. It never allocates after construction. An entry is only a
//! hint: the encoder confirms a hit byte for byte against its cached copy of the location before it
//! sends a reference, and drops the entry when the location no longer holds that content (the page
//! was sent anew or left the cache). So a stale entry costs one comparison, never a wrong reference.

use crate::budget::filled;
use crate::error::Error;

/// Bytes one table entry takes.
pub const ENTRY_BYTES: usize = 16;

const EMPTY: u64 = u64::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    /// page index << 16 | block index, or EMPTY.
    loc: u64,
}

/// Counters of a [`ShareTable`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShareStats {
    /// Entries written.
    pub inserts: u64,
    /// Lookups made.
    pub lookups: u64,
    /// Lookups that found an entry with the same hash.
    pub candidates: u64,
    /// Entries dropped because their location no longer held the content.
    pub stale: u64,
}

/// Hash -> location table of fixed capacity.
///
/// ```
/// use fgbi::share::ShareTable;
/// let mut t = ShareTable::with_capacity(1024);
/// t.insert(0xabcd, 7, 3);
/// assert_eq!(t.lookup(0xabcd), Some((7, 3)));
/// t.invalidate(0xabcd, 7, 3);
/// assert_eq!(t.lookup(0xabcd), None);
/// ```
#[derive(Debug, Clone)]
pub struct ShareTable {
    entries: Vec<Entry>,
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
        let empty = Entry {
            hash: 0,
            loc: EMPTY,
        };
        Ok(ShareTable {
            entries: filled(capacity, empty, "the sharing table")?,
            stats: ShareStats::default(),
        })
    }

    #[inline]
    fn slot(&self, hash: u64) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        // multiply-shift maps the hash onto any table length without a division
        Some(((hash as u128 * self.entries.len() as u128) >> 64) as usize)
    }

    /// Records that block `block` of page `page` has content hashing to `hash`.
    #[inline]
    pub fn insert(&mut self, hash: u64, page: u64, block: usize) {
        debug_assert!(page < 1 << 48 && block < 1 << 16);
        if let Some(s) = self.slot(hash) {
            self.entries[s] = Entry {
                hash,
                loc: (page << 16) | block as u64,
            };
            self.stats.inserts += 1;
        }
    }

    /// The location last recorded for `hash`, if its entry survives.
    #[inline]
    pub fn lookup(&mut self, hash: u64) -> Option<(u64, usize)> {
        self.stats.lookups += 1;
        let e = self.entries[self.slot(hash)?];
        if e.loc == EMPTY || e.hash != hash {
            return None;
        }
        self.stats.candidates += 1;
        Some((e.loc >> 16, (e.loc & 0xffff) as usize))
    }

    /// Drops the entry for `hash` if it still points at (`page`, `block`).
    #[inline]
    pub fn invalidate(&mut self, hash: u64, page: u64, block: usize) {
        if let Some(s) = self.slot(hash) {
            let e = &mut self.entries[s];
            if e.hash == hash && e.loc == (page << 16) | block as u64 {
                e.loc = EMPTY;
                self.stats.stale += 1;
            }
        }
    }

    /// Empties the table.
    pub fn clear(&mut self) {
        self.entries.fill(Entry {
            hash: 0,
            loc: EMPTY,
        });
    }

    /// Entries the table holds at most.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of memory the table holds.
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
    }

    /// Counters since construction.
    pub fn stats(&self) -> ShareStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_insert_with_the_same_hash_replaces_the_location() {
        let mut t = ShareTable::with_capacity(64);
        t.insert(5, 1, 1);
        t.insert(5, 2, 9);
        assert_eq!(t.lookup(5), Some((2, 9)));
        // invalidating the old location leaves the new one alone
        t.invalidate(5, 1, 1);
        assert_eq!(t.lookup(5), Some((2, 9)));
        t.invalidate(5, 2, 9);
        assert_eq!(t.lookup(5), None);
        assert_eq!(t.stats().stale, 1);
    }

    #[test]
    fn a_zero_capacity_table_misses_everything() {
        let mut t = ShareTable::with_capacity(0);
        t.insert(1, 1, 1);
        assert_eq!(t.lookup(1), None);
        assert_eq!(t.memory_bytes(), 0);
    }

    #[test]
    fn colliding_slots_never_return_another_hash() {
        let mut t = ShareTable::with_capacity(1);
        t.insert(10, 1, 0);
        t.insert(11, 2, 0);
        assert_eq!(t.lookup(10), None);
        assert_eq!(t.lookup(11), Some((2, 0)));
    }
}
