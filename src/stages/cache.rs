//! The page cache: the version of each page last sent to the backup, address-indexed, within a
//! byte budget, in two tiers.
//!
//! - The **full tier** keeps whole page copies: the encoder XORs a dirty page with its copy, uses it
//!   as a compression dictionary, and confirms sharing-table hits against it.
//! - The **hashes tier** keeps only the block hashes of a page's last-sent version (a few percent
//!   of the page): changed blocks are still found, and only they are sent.
//!
//! A page evicted from the full tier is demoted to the hashes tier (its hashes are computed from
//! the copy before it is dropped). Eviction is CLOCK (second chance): every lookup marks the page
//! referenced, the hand clears marks and picks the first unmarked page. Once the full tier is
//! full, a page is admitted only if it has been stored more often than that victim (approximate
//! counts that fade over time, as in TinyLFU); otherwise it keeps only its hashes. So pages dirtied
//! epoch after epoch stay, and a dirty set larger than the tier does not flush it every epoch
//! (plain CLOCK, LRU or FIFO then never hit). [`Policy::DirectMapped`] reproduces QEMU's
//! XBZRLE cache (slot = page index modulo capacity) for comparison.

use crate::budget::{filled, grow};
use crate::error::Error;
use crate::stages::bitmap::Bits;
use crate::stages::hash;

/// Bookkeeping bytes per tracked page on top of its data, at most: owner (8), free-list entry (4),
/// mark bit, under 8/3 index slots of 12 bytes (the index is a power of two at least 4/3 of the
/// pages), and under 8 frequency counters of one byte.
pub const ENTRY_OVERHEAD: usize = 56;

/// How a full tier picks the page to evict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// CLOCK second-chance replacement (the default).
    #[default]
    Clock,
    /// QEMU XBZRLE's direct-mapped cache: a page can only live in slot `index % capacity`.
    DirectMapped,
}

/// Counters of a [`PageCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered by the full tier.
    pub hits: u64,
    /// Lookups answered by the hashes tier.
    pub hash_hits: u64,
    /// Lookups that found nothing.
    pub misses: u64,
    /// Pages dropped from the full tier (demoted to hashes or forgotten).
    pub evictions: u64,
    /// Pages dropped from the hashes tier.
    pub hash_evictions: u64,
}

/// What the cache knows of a page.
#[derive(Debug)]
pub enum Cached<'a> {
    /// Its last-sent content.
    Full(&'a [u8]),
    /// The block hashes of its last-sent content.
    Hashes(&'a [u64]),
    /// Nothing.
    Miss,
}

/// Where a page is in the cache, from [`PageCache::touch`].
#[derive(Debug, Clone, Copy)]
pub struct Entry(Option<Where>);

#[derive(Debug, Clone, Copy)]
enum Where {
    Full(u32),
    Hashes(u32),
}

const FREE: u64 = u64::MAX;

/// Approximate visit counts per page (one saturating 4-bit counter per hashed page index),
/// halved every ten visits per counter so that old popularity fades.
#[derive(Debug, Clone)]
struct Freq {
    c: Vec<u8>,
    visits: usize,
}

impl Freq {
    fn new(counters: usize) -> Result<Freq, Error> {
        Ok(Freq {
            c: filled(counters, 0, "the cache's use counters")?,
            visits: 0,
        })
    }
    #[inline]
    fn slot(&self, page: u64) -> usize {
        (page.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) as usize & (self.c.len() - 1)
    }
    fn bump(&mut self, page: u64) {
        if self.c.is_empty() {
            return;
        }
        let i = self.slot(page);
        self.c[i] = (self.c[i] + 1).min(15);
        self.visits += 1;
        if self.visits >= 10 * self.c.len() {
            self.c.iter_mut().for_each(|v| *v /= 2);
            self.visits = 0;
        }
    }
    fn get(&self, page: u64) -> u8 {
        if self.c.is_empty() {
            0
        } else {
            self.c[self.slot(page)]
        }
    }
    fn clear(&mut self) {
        self.c.fill(0);
        self.visits = 0;
    }
    fn memory_bytes(&self) -> usize {
        self.c.capacity()
    }
}

/// Page index -> slot, open addressing with linear probing and backward-shift deletion (no
/// tombstones), sized once: it never grows or allocates after construction.
#[derive(Debug, Clone)]
struct PageIndex {
    keys: Vec<u64>,
    /// Slot number; the top bit set for the hashes tier.
    vals: Vec<u32>,
    mask: usize,
}

const HASH_TIER_BIT: u32 = 1 << 31;

impl PageIndex {
    fn with_capacity(n: usize) -> Result<PageIndex, Error> {
        let slots = if n == 0 {
            0
        } else {
            (n * 4).div_ceil(3).next_power_of_two()
        };
        Ok(PageIndex {
            keys: filled(slots, FREE, "the cache's page index")?,
            vals: filled(slots, 0, "the cache's page index")?,
            mask: slots.saturating_sub(1),
        })
    }
    #[inline]
    fn home(&self, k: u64) -> usize {
        (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & self.mask
    }
    #[inline]
    fn find(&self, k: u64) -> Result<usize, usize> {
        if self.keys.is_empty() {
            return Err(usize::MAX);
        }
        let mut i = self.home(k);
        loop {
            match self.keys[i] {
                key if key == k => return Ok(i),
                FREE => return Err(i),
                _ => i = (i + 1) & self.mask,
            }
        }
    }
    /// Starts loading the key and value lines of `k`'s home slot: the lookup that follows
    /// (after other work) then does not wait on memory.
    #[inline]
    fn prefetch(&self, k: u64) {
        let i = self.home(k);
        if let (Some(key), Some(val)) = (self.keys.get(i..=i), self.vals.get(i..=i)) {
            super::prefetch(key);
            super::prefetch(val);
        }
    }
    #[inline]
    fn get(&self, k: u64) -> Option<Where> {
        let i = self.find(k).ok()?;
        let v = self.vals[i];
        Some(if v & HASH_TIER_BIT != 0 {
            Where::Hashes(v & !HASH_TIER_BIT)
        } else {
            Where::Full(v)
        })
    }
    fn insert(&mut self, k: u64, w: Where) {
        let i = match self.find(k) {
            Ok(i) | Err(i) => i,
        };
        if i == usize::MAX {
            return; // no capacity: nothing is ever stored
        }
        self.keys[i] = k;
        self.vals[i] = match w {
            Where::Full(s) => s,
            Where::Hashes(s) => s | HASH_TIER_BIT,
        };
    }
    fn remove(&mut self, k: u64) -> Option<Where> {
        let w = self.get(k)?;
        let mut hole = self.find(k).ok()?;
        // shift back every following entry of the cluster that may move into the hole
        let mut i = (hole + 1) & self.mask;
        while self.keys[i] != FREE {
            let home = self.home(self.keys[i]);
            if (i.wrapping_sub(home) & self.mask) >= (i.wrapping_sub(hole) & self.mask) {
                self.keys[hole] = self.keys[i];
                self.vals[hole] = self.vals[i];
                hole = i;
            }
            i = (i + 1) & self.mask;
        }
        self.keys[hole] = FREE;
        Some(w)
    }
    fn clear(&mut self) {
        self.keys.fill(FREE);
    }
    fn memory_bytes(&self) -> usize {
        self.keys.capacity() * 8 + self.vals.capacity() * 4
    }
}

/// One tier's slots: owners, CLOCK marks, free list, hand.
#[derive(Debug, Clone)]
struct Slots {
    owner: Vec<u64>,
    mark: Bits,
    free: Vec<u32>,
    hand: usize,
}

impl Slots {
    fn new(n: usize) -> Result<Slots, Error> {
        let mut free = Vec::new();
        grow(&mut free, n, "the cache's free slots")?;
        free.extend((0..n as u32).rev());
        Ok(Slots {
            owner: filled(n, FREE, "the cache's slot owners")?,
            mark: Bits::try_zeros(n, "the cache's slot marks")?,
            free,
            hand: 0,
        })
    }
    fn len(&self) -> usize {
        self.owner.len()
    }
    fn clear(&mut self) {
        let n = self.len();
        self.owner.fill(FREE);
        self.mark.fill(false);
        // within the capacity it was made with: no allocation
        self.free.clear();
        self.free.extend((0..n as u32).rev());
        self.hand = 0;
    }
    fn release(&mut self, s: u32) {
        self.owner[s as usize] = FREE;
        self.mark.set(s as usize, false);
        self.free.push(s);
    }
    /// A slot for `page`: a free one (taken off the free list), or the victim the policy picks
    /// (the CLOCK hand moves past it); nothing is assigned yet.
    fn pick(&mut self, page: u64, policy: Policy) -> u32 {
        match (policy, self.free.pop()) {
            (Policy::DirectMapped, _) => {
                self.free.clear();
                (page % self.len() as u64) as u32
            }
            (Policy::Clock, Some(s)) => s,
            (Policy::Clock, None) => loop {
                let h = self.hand;
                self.hand = if h + 1 == self.len() { 0 } else { h + 1 };
                if self.mark.get(h) {
                    self.mark.set(h, false);
                } else {
                    break h as u32;
                }
            },
        }
    }
    /// Gives slot `s` to `page`; returns the page it evicts.
    fn assign(&mut self, s: u32, page: u64) -> Option<u64> {
        let prev = std::mem::replace(&mut self.owner[s as usize], page);
        self.mark.set(s as usize, false);
        (prev != FREE).then_some(prev)
    }
    /// [`pick`](Self::pick) then [`assign`](Self::assign).
    fn take(&mut self, page: u64, policy: Policy) -> (u32, Option<u64>) {
        let s = self.pick(page, policy);
        (s, self.assign(s, page))
    }
    fn memory_bytes(&self) -> usize {
        self.owner.capacity() * 8 + self.mark.memory_bytes() + self.free.capacity() * 4
    }
}

/// Two-tier cache of last-sent page versions. See the module documentation.
///
/// ```
/// use fgbi::cache::{Cached, PageCache, Policy};
/// let mut cache = PageCache::new(4096, 256, 1 << 20, 0, Policy::Clock, 0).unwrap();
/// let page = vec![7u8; 4096];
/// cache.store(12, &page);
/// assert!(matches!(cache.lookup(12), Cached::Full(p) if p == &page[..]));
/// assert!(matches!(cache.lookup(13), Cached::Miss));
/// ```
#[derive(Debug, Clone)]
pub struct PageCache {
    page_size: usize,
    block_size: usize,
    hasher: hash::BlockHasher,
    policy: Policy,
    map: PageIndex,
    data: Vec<u8>,
    full: Slots,
    hashes: Vec<u64>,
    hash_slots: Slots,
    /// Visit frequencies, for admission to the full tier.
    freq: Freq,
    stats: CacheStats,
}

impl PageCache {
    /// Bytes one full-tier page costs, excluding sharing-table entries.
    pub const fn full_cost(page_size: usize) -> usize {
        page_size + ENTRY_OVERHEAD
    }

    /// Bytes one hashes-tier page costs.
    pub const fn hash_cost(page_size: usize, block_size: usize) -> usize {
        page_size / block_size * 8 + ENTRY_OVERHEAD
    }

    /// A cache of `full_pages` page copies and `hash_pages` hash entries; `seed` is the block
    /// hash seed (the encoder's), used when demoting. All its memory is allocated and written now
    /// ([`Error::OutOfMemory`] when it cannot be had), so that no store later pays for first
    /// touching it (the kernel's page fault and zeroing cost several times a store, and the gates
    /// time the stores).
    pub fn new(
        page_size: usize,
        block_size: usize,
        full_pages: usize,
        hash_pages: usize,
        policy: Policy,
        seed: u64,
    ) -> Result<Self, Error> {
        let nblocks = page_size / block_size;
        // the largest first: a budget beyond what can be had fails before anything is written
        let data = filled(
            full_pages.saturating_mul(page_size),
            0,
            "the cache's page copies",
        )?;
        let map = PageIndex::with_capacity(full_pages + hash_pages)?;
        Ok(PageCache {
            page_size,
            block_size,
            hasher: hash::BlockHasher::new(seed),
            policy,
            map,
            data,
            full: Slots::new(full_pages)?,
            hashes: filled(
                hash_pages.saturating_mul(nblocks),
                0,
                "the cache's block hashes",
            )?,
            hash_slots: Slots::new(hash_pages)?,
            freq: Freq::new(if full_pages == 0 {
                0
            } else {
                (full_pages * 4).next_power_of_two()
            })?,
            stats: CacheStats::default(),
        })
    }

    fn nblocks(&self) -> usize {
        self.page_size / self.block_size
    }

    fn page_data(&self, s: u32) -> &[u8] {
        &self.data[s as usize * self.page_size..][..self.page_size]
    }

    /// What the cache knows of page `page`; marks it recently used and counts the hit or miss.
    pub fn lookup(&mut self, page: u64) -> Cached<'_> {
        let e = self.touch(page);
        self.view(e)
    }

    /// Marks `page` recently used, counts the hit or miss, and returns where it is (read it with
    /// [`view`](Self::view); this split lets a caller hold the content while borrowing the cache
    /// immutably elsewhere).
    pub fn touch(&mut self, page: u64) -> Entry {
        match self.map.get(page) {
            Some(Where::Full(s)) => {
                self.stats.hits += 1;
                self.full.mark.set(s as usize, true);
                Entry(Some(Where::Full(s)))
            }
            Some(Where::Hashes(s)) => {
                self.stats.hash_hits += 1;
                self.hash_slots.mark.set(s as usize, true);
                Entry(Some(Where::Hashes(s)))
            }
            None => {
                self.stats.misses += 1;
                Entry(None)
            }
        }
    }

    /// The content behind an [`Entry`] returned by [`touch`](Self::touch) (valid until the cache
    /// is next modified).
    pub fn view(&self, e: Entry) -> Cached<'_> {
        match e.0 {
            Some(Where::Full(s)) => Cached::Full(self.page_data(s)),
            Some(Where::Hashes(s)) => {
                let n = self.nblocks();
                Cached::Hashes(&self.hashes[s as usize * n..][..n])
            }
            None => Cached::Miss,
        }
    }

    /// The full-tier copy of `page` without counting or marking (for confirming sharing hits).
    pub fn peek_full(&self, page: u64) -> Option<&[u8]> {
        match self.map.get(page) {
            Some(Where::Full(s)) => Some(self.page_data(s)),
            _ => None,
        }
    }

    /// The full-tier copy of `page`, to be updated in place to the version just sent.
    pub fn full_mut(&mut self, page: u64) -> Option<&mut [u8]> {
        match self.map.get(page) {
            Some(Where::Full(s)) => {
                Some(&mut self.data[s as usize * self.page_size..][..self.page_size])
            }
            _ => None,
        }
    }

    /// Records `content` as the version of `page` the backup now holds. With a full tier the copy
    /// is kept (evicting another page if needed); without one, its block hashes are kept.
    pub fn store(&mut self, page: u64, content: &[u8]) {
        self.store_with(page, content, true)
    }

    /// [`store`](Self::store) without block hashes: the copy goes into the full tier if it is
    /// admitted, else the page is forgotten, and an evicted page is forgotten rather than kept
    /// as its hashes. It costs the copy and the bookkeeping, no hashing: for pages sent while
    /// the encoder does no block work (the hashes tier serves only that).
    pub fn store_copy(&mut self, page: u64, content: &[u8]) {
        self.store_with(page, content, false)
    }

    fn store_with(&mut self, page: u64, content: &[u8], hashes: bool) {
        debug_assert_eq!(content.len(), self.page_size);
        self.freq.bump(page);
        if self.full.len() == 0 {
            return self.store_elsewhere(page, content, hashes);
        }
        let s = match self.map.get(page) {
            Some(Where::Full(s)) => s,
            other => {
                let full = self.full.free.is_empty();
                let s = self.full.pick(page, self.policy);
                // admission (TinyLFU-like): into a full tier only a page visited more often than
                // the victim, so a dirty set larger than the tier cannot flush it every epoch
                if full && self.policy == Policy::Clock {
                    let victim = self.full.owner[s as usize];
                    if self.freq.get(page) <= self.freq.get(victim) {
                        // stays in (or enters) the hashes tier, in its own slot
                        return self.store_elsewhere(page, content, hashes);
                    }
                }
                // admitted: its hashes-tier slot, if any, is no longer its place
                if let Some(Where::Hashes(h)) = other {
                    self.hash_slots.release(h);
                }
                if let Some(v) = self.full.assign(s, page) {
                    self.stats.evictions += 1;
                    self.map.remove(v);
                    // demote: the victim's copy is still in slot s
                    if hashes {
                        if let Some(off) = self.hash_slot(v) {
                            let n = self.nblocks();
                            let copy = &self.data[s as usize * self.page_size..][..self.page_size];
                            self.hasher.hashes(
                                copy,
                                self.block_size,
                                &mut self.hashes[off..off + n],
                            );
                        }
                    }
                }
                self.map.insert(page, Where::Full(s));
                s
            }
        };
        self.data[s as usize * self.page_size..][..self.page_size].copy_from_slice(content);
    }

    /// A page not (or no longer) in the full tier: its hashes kept, or it is forgotten.
    fn store_elsewhere(&mut self, page: u64, content: &[u8], hashes: bool) {
        if hashes {
            self.store_hashes(page, content)
        } else {
            self.remove(page)
        }
    }

    fn store_hashes(&mut self, page: u64, content: &[u8]) {
        if let Some(off) = self.hash_slot(page) {
            let n = self.nblocks();
            self.hasher
                .hashes(content, self.block_size, &mut self.hashes[off..off + n]);
        }
    }

    /// The offset of `page`'s hashes in the hashes tier, taking a slot if it has none; `None`
    /// (and the page forgotten) without a hashes tier.
    fn hash_slot(&mut self, page: u64) -> Option<usize> {
        if self.hash_slots.len() == 0 {
            self.map.remove(page);
            return None;
        }
        let s = match self.map.get(page) {
            Some(Where::Hashes(s)) => s,
            _ => {
                let (s, victim) = self.hash_slots.take(page, self.policy);
                if let Some(v) = victim {
                    self.stats.hash_evictions += 1;
                    self.map.remove(v);
                }
                self.map.insert(page, Where::Hashes(s));
                s
            }
        };
        Some(s as usize * self.nblocks())
    }

    /// Starts loading what a lookup of `page` reads first: call it before other work on the
    /// page (the zero test), so that the lookup after it finds its line in cache. A page
    /// sent RAW on a fast link costs about 300 ns here, and a lookup that misses the cache a
    /// third of that.
    #[inline]
    pub fn prefetch(&self, page: u64) {
        self.map.prefetch(page);
    }

    /// Whether either tier holds `page` (its copy or its block hashes), without counting a use.
    pub fn holds(&self, page: u64) -> bool {
        self.map.get(page).is_some()
    }

    /// Forgets `page` (e.g. it became all zeros, which is tracked elsewhere).
    pub fn remove(&mut self, page: u64) {
        match self.map.remove(page) {
            Some(Where::Full(s)) => self.full.release(s),
            Some(Where::Hashes(s)) => self.hash_slots.release(s),
            None => {}
        }
    }

    /// Forgets every page (keeps the memory).
    pub fn clear(&mut self) {
        self.map.clear();
        self.freq.clear();
        self.full.clear();
        self.hash_slots.clear();
    }

    /// Pages the full tier holds at most.
    pub fn full_capacity(&self) -> usize {
        self.full.len()
    }

    /// Pages the hashes tier holds at most.
    pub fn hash_capacity(&self) -> usize {
        self.hash_slots.len()
    }

    /// Bytes of memory the cache holds (data, hashes and bookkeeping).
    pub fn memory_bytes(&self) -> usize {
        let map = self.map.memory_bytes() + self.freq.memory_bytes();
        self.data.capacity()
            + self.hashes.capacity() * 8
            + self.full.memory_bytes()
            + self.hash_slots.memory_bytes()
            + map
    }

    /// Counters since construction.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(v: u8) -> Vec<u8> {
        vec![v; 4096]
    }

    #[test]
    fn page_index_agrees_with_a_hash_map_under_churn() {
        let mut idx = PageIndex::with_capacity(300).unwrap();
        let mut reference = std::collections::HashMap::new();
        let mut x = 99u64;
        for step in 0..20000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // clustered keys (sequential pages) and scattered ones
            let k = if x & 2 == 0 { (x >> 40) % 400 } else { x >> 20 };
            if reference.len() < 300 && x & 1 == 0 {
                idx.insert(k, Where::Full(step));
                reference.insert(k, step);
            } else {
                assert_eq!(
                    idx.remove(k)
                        .map(|w| matches!(w, Where::Full(s) if Some(&s) == reference.get(&k))),
                    reference.remove(&k).map(|_| true)
                );
            }
        }
        for (k, v) in &reference {
            assert!(matches!(idx.get(*k), Some(Where::Full(s)) if s == *v));
        }
        assert_eq!(
            idx.keys.iter().filter(|&&k| k != FREE).count(),
            reference.len()
        );
    }

    #[test]
    fn clock_keeps_a_page_that_is_used_every_round() {
        let mut c = PageCache::new(4096, 256, 4, 0, Policy::Clock, 1).unwrap();
        for p in 0..4 {
            c.store(p, &page(p as u8));
        }
        // page 0 is hot: looked up before every new page arrives; new pages come twice (the
        // second visit admits them)
        for p in 4..40 {
            assert!(
                matches!(c.lookup(0), Cached::Full(d) if d[0] == 0),
                "hot page evicted at {p}"
            );
            // visited more often than the pages stored once: admitted over them
            for _ in 0..3 {
                c.store(p, &page(p as u8));
            }
        }
        assert!(c.stats().evictions >= 3);
    }

    #[test]
    fn a_page_refused_admission_keeps_its_own_hashes_slot() {
        let mut c = PageCache::new(4096, 256, 1, 4, Policy::Clock, 3).unwrap();
        c.store(1, &page(1));
        c.store(1, &page(1)); // hot: holds the only full slot
        c.store(2, &page(2)); // refused: hashes tier
        c.store(2, &page(22)); // refused again: must keep its slot, not free it
        for p in 3..6 {
            c.store(p, &page(p as u8)); // take the free hashes slots
        }
        let mut expected = [0u64; 16];
        hash::block_hashes(&page(22), 256, 3, &mut expected);
        assert!(
            matches!(c.lookup(2), Cached::Hashes(h) if h == expected),
            "page 2's hashes were overwritten"
        );
    }

    #[test]
    fn a_dirty_set_larger_than_the_tier_does_not_flush_it() {
        // 4 slots, 10 pages dirtied every round in the same order: with admission the first pages
        // stay and are hit every round; plain FIFO/CLOCK would never hit
        let mut c = PageCache::new(4096, 256, 4, 0, Policy::Clock, 1).unwrap();
        for _round in 0..5 {
            for p in 0..10 {
                c.lookup(p);
                c.store(p, &page(p as u8));
            }
        }
        assert!(c.stats().hits >= 4 * 4, "hits {}", c.stats().hits);
    }

    #[test]
    fn direct_mapped_evicts_on_slot_conflict_even_when_hot() {
        let mut c = PageCache::new(4096, 256, 4, 0, Policy::DirectMapped, 1).unwrap();
        c.store(0, &page(1));
        c.lookup(0);
        c.store(4, &page(2)); // same slot as page 0
        assert!(matches!(c.lookup(0), Cached::Miss));
        assert!(matches!(c.lookup(4), Cached::Full(d) if d[0] == 2));
    }

    #[test]
    fn an_evicted_page_is_demoted_to_its_hashes() {
        let mut c = PageCache::new(4096, 256, 1, 8, Policy::Clock, 77).unwrap();
        let mut first = page(3);
        first[300] = 9;
        c.store(10, &first);
        c.store(11, &page(4)); // first visit: hashes only
        assert!(matches!(c.lookup(11), Cached::Hashes(_)));
        c.store(11, &page(4)); // second visit: admitted, page 10 demoted
        match c.lookup(10) {
            Cached::Hashes(h) => {
                let mut expected = [0u64; 16];
                hash::block_hashes(&first, 256, 77, &mut expected);
                assert_eq!(h, &expected);
            }
            other => panic!("expected hashes, got {other:?}"),
        }
        // stored more often than page 11 now, it is promoted back to the full tier
        c.store(10, &page(5));
        c.store(10, &page(5));
        assert!(matches!(c.lookup(10), Cached::Full(d) if d == &page(5)[..]));
    }

    #[test]
    fn without_a_full_tier_pages_are_kept_as_hashes_and_the_tier_is_bounded() {
        let mut c = PageCache::new(4096, 512, 0, 3, Policy::Clock, 5).unwrap();
        for p in 0..10 {
            c.store(p, &page(p as u8));
        }
        let known = (0..10)
            .filter(|&p| matches!(c.lookup(p), Cached::Hashes(_)))
            .count();
        assert_eq!(known, 3);
        assert_eq!(c.stats().hash_evictions, 7);
    }

    #[test]
    fn a_copy_store_keeps_no_hashes_and_forgets_what_it_does_not_keep() {
        // 2 full slots, room for hashes
        let mut c = PageCache::new(4096, 256, 2, 8, Policy::Clock, 1).unwrap();
        c.store(10, &page(1));
        c.store(11, &page(2));
        assert!(matches!(c.lookup(10), Cached::Full(_)));
        // a third page evicts one: with store_copy the victim is forgotten, not demoted
        for _ in 0..3 {
            c.store_copy(12, &page(3)); // visited more often than the victims: admitted
        }
        let held: Vec<u64> = [10u64, 11, 12]
            .into_iter()
            .filter(|&p| !matches!(c.lookup(p), Cached::Miss))
            .collect();
        assert_eq!(held.len(), 2, "{held:?}");
        assert!(held.contains(&12));
        assert!(matches!(c.lookup(12), Cached::Full(_)));
        // a page that had hashes and is refused admission is forgotten (its hashes are stale)
        let mut d = PageCache::new(4096, 256, 1, 8, Policy::Clock, 1).unwrap();
        for _ in 0..4 {
            d.store(20, &page(4)); // hot: the full slot
        }
        d.store(21, &page(5)); // refused: hashes
        assert!(matches!(d.lookup(21), Cached::Hashes(_)));
        d.store_copy(21, &page(6)); // refused again, and without hashes
        assert!(matches!(d.lookup(21), Cached::Miss));
        assert!(matches!(d.lookup(20), Cached::Full(_)));
    }

    #[test]
    fn remove_and_clear_forget_pages_and_free_their_slots() {
        let mut c = PageCache::new(4096, 256, 2, 2, Policy::Clock, 0).unwrap();
        c.store(1, &page(1));
        c.store(2, &page(2));
        c.remove(1);
        c.store(3, &page(3)); // takes the freed slot: nothing evicted
        assert_eq!(c.stats().evictions, 0);
        c.clear();
        for p in 1..4 {
            assert!(matches!(c.lookup(p), Cached::Miss));
        }
    }
}
