//! The backup's memory as the decoder sees it: pages found by guest address.

/// The backup's memory, page by page.
///
/// Implemented for flat memory (`[u8]`, where guest address A is byte A) and for memory made of regions
/// ([`Regions`]), for memory made of separate blocks as QEMU's
/// RAM is.
pub trait Replica {
    /// The `len`-byte page at guest address `addr`, or `None` when the replica has no such page.
    fn page_mut(&mut self, addr: u64, len: usize) -> Option<&mut [u8]>;
}

impl Replica for [u8] {
    fn page_mut(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(len)?;
        self.get_mut(start..end)
    }
}

/// A [`Replica`] made of separate regions of guest memory, each at its own guest address, as
/// QEMU's RAM blocks are. (Any type can implement [`Replica`] itself; this is the common case.)
///
/// ```
/// use fgbi::decoder::{Regions, Replica};
/// let mut low = vec![0u8; 8192];
/// let mut high = vec![0u8; 8192];
/// let mut replica = Regions::new(vec![(0, &mut low[..]), (0x1_0000_0000, &mut high[..])]);
/// assert!(replica.page_mut(0x1_0000_1000, 4096).is_some());
/// assert!(replica.page_mut(0x2000, 4096).is_none());
/// ```
#[derive(Debug, Default)]
pub struct Regions<'a> {
    regions: Vec<(u64, &'a mut [u8])>,
}

impl<'a> Regions<'a> {
    /// Regions given as (guest address of the first byte, memory).
    pub fn new(mut regions: Vec<(u64, &'a mut [u8])>) -> Self {
        regions.sort_by_key(|r| r.0);
        Regions { regions }
    }
}

impl Replica for Regions<'_> {
    fn page_mut(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        let i = self
            .regions
            .partition_point(|r| r.0 <= addr)
            .checked_sub(1)?;
        let (base, mem) = &mut self.regions[i];
        let at = usize::try_from(addr - *base).ok()?;
        mem.get_mut(at..at.checked_add(len)?)
    }
}
