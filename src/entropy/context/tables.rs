//! The tables part of a context-modelled stream: the table count, the context map and the
//! tables. Written from a [`Model`], read into [`ContextTables`].

use super::{Model, CONTEXTS, MAX_TABLES};
use crate::entropy::container::{get_listed, listed_table_len, put_listed};
use crate::entropy::huffman::{self, Lengths, TABLE_BYTES};
use crate::entropy::EntropyError::{self, Container};
use crate::entropy::{MODE_HUFFMAN, MODE_HUFFMAN_LISTED};

impl Model {
    /// Bytes of the tables part of a context-modelled stream: the table count, the context map
    /// and each table (a form byte, then full or listed).
    pub fn tables_len(&self) -> usize {
        1 + map_len(self.tables.len()) + self.tables.iter().map(|t| 1 + table_len(t)).sum::<usize>()
    }

    /// Writes the tables part: the number of tables `k`, the context map (each context's table in
    /// `ceil(log2 k)` bits, least significant bit first, padded with zero bits to a byte), then
    /// each table as a form byte ([`MODE_HUFFMAN`] full, [`MODE_HUFFMAN_LISTED`] listed) and its
    /// bytes.
    pub fn put_tables(&self, out: &mut Vec<u8>) {
        let k = self.tables.len();
        out.push(k as u8);
        let w = map_bits(k);
        let (mut acc, mut n) = (0u32, 0);
        for &t in &self.map {
            acc |= (t as u32) << n;
            n += w;
            while n >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                n -= 8;
            }
        }
        if n > 0 {
            out.push(acc as u8);
        }
        for t in &self.tables {
            if table_len(t) == TABLE_BYTES {
                out.push(MODE_HUFFMAN);
                out.extend_from_slice(&huffman::pack_lengths(t));
            } else {
                out.push(MODE_HUFFMAN_LISTED);
                put_listed(t, out);
            }
        }
    }
}

/// Bits of one context map entry with `k` tables.
pub(super) fn map_bits(k: usize) -> u32 {
    usize::BITS - (k.max(1) - 1).leading_zeros()
}

/// Bytes of the context map with `k` tables.
pub(super) fn map_len(k: usize) -> usize {
    (CONTEXTS * map_bits(k) as usize).div_ceil(8)
}

fn table_len(t: &Lengths) -> usize {
    let k = t.iter().filter(|&&l| l > 0).count();
    TABLE_BYTES.min(listed_table_len(k))
}

/// The decoder's side: the context map and one decoding table per table of a stream.
pub struct ContextTables {
    pub(super) map: [u8; CONTEXTS],
    /// The tables' decoding entries back to back, each `2^b` entries for `b` its longest code
    /// (at most [`huffman::MAX_BITS`]): a literal's lookup touches a table no larger than its
    /// code needs, so more of a stream's tables stay in the nearest caches.
    flat: Vec<u16>,
    /// Each context's table: where it starts in `flat`, and the mask of its `b` bits.
    at: [(u32, u32); CONTEXTS],
    /// Each table's start and mask, while the tables part is read.
    tables: Vec<(u32, u32)>,
}

impl Default for ContextTables {
    fn default() -> Self {
        ContextTables {
            map: [0; CONTEXTS],
            flat: Vec::new(),
            at: [(0, 0); CONTEXTS],
            tables: Vec::with_capacity(MAX_TABLES),
        }
    }
}

impl ContextTables {
    /// Reads a tables part at `*pos` of `coded` (everything checked: table count, map entries,
    /// each table's form and code), advancing `*pos` past it.
    pub fn read(&mut self, coded: &[u8], pos: &mut usize) -> Result<(), EntropyError> {
        let k = *coded
            .get(*pos)
            .ok_or(Container("ends inside a context header"))? as usize;
        if k == 0 || k > MAX_TABLES {
            return Err(Container("bad number of context tables"));
        }
        let packed = coded
            .get(*pos + 1..*pos + 1 + map_len(k))
            .ok_or(Container("context map runs past the payload"))?;
        let w = map_bits(k);
        let (mut acc, mut n, mut bytes) = (0u32, 0, packed.iter());
        for t in self.map.iter_mut() {
            while n < w {
                acc |= (*bytes.next().expect("map_len bytes") as u32) << n;
                n += 8;
            }
            *t = (acc & ((1 << w) - 1)) as u8;
            acc >>= w;
            n -= w;
            if *t as usize >= k {
                return Err(Container("context map names a table that is not there"));
            }
        }
        if acc != 0 {
            return Err(Container("non-zero padding after the context map"));
        }
        *pos += 1 + map_len(k);
        // at most k tables of at most 2^MAX_BITS entries each
        self.flat.clear();
        self.tables.clear();
        for _ in 0..k {
            let form = *coded
                .get(*pos)
                .ok_or(Container("ends inside a context table"))?;
            *pos += 1;
            let lens = match form {
                MODE_HUFFMAN => {
                    let table: &[u8; TABLE_BYTES] = coded
                        .get(*pos..*pos + TABLE_BYTES)
                        .ok_or(Container("code table runs past the payload"))?
                        .try_into()
                        .expect("TABLE_BYTES bytes");
                    *pos += TABLE_BYTES;
                    huffman::unpack_lengths(table)
                }
                MODE_HUFFMAN_LISTED => {
                    let (lens, n) = get_listed(coded, *pos)?;
                    *pos += n;
                    lens
                }
                _ => return Err(Container("unknown context table form")),
            };
            // lengths above MAX_BITS are the fill's to refuse; no code at all: one entry
            let b = huffman::longest(&lens).min(huffman::MAX_BITS);
            let start = self.flat.len();
            self.flat.resize(start + (1 << b), 0);
            huffman::fill_table_of(&lens, &mut self.flat[start..])
                .map_err(EntropyError::Huffman)?;
            self.tables.push((start as u32, (1 << b) - 1));
        }
        for (a, &t) in self.at.iter_mut().zip(&self.map) {
            *a = self.tables[t as usize];
        }
        Ok(())
    }

    /// The entry of context `ctx`'s table for the next bits of `w` (at most
    /// [`huffman::MAX_BITS`] of them are looked at).
    #[inline(always)]
    pub(super) fn entry(&self, ctx: usize, w: u64) -> u16 {
        let (start, mask) = self.at[ctx];
        self.flat[start as usize + (w as u32 & mask) as usize]
    }

    /// Bytes of decoding tables held.
    pub fn memory_bytes(&self) -> usize {
        2 * self.flat.capacity()
    }
}
