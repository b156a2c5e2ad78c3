//! BLOCKS ops: the page as blocks kept, zero, shared with content the backup holds, or new
//! (literals, compressed together).

use super::Work;
use crate::compress;
use crate::format::{block, op, varint};
use crate::stages::bitmap::BlockBitmap;
use crate::stages::cache::PageCache;
use crate::stages::zero;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct BlockCounts {
    pub(super) zero: u64,
    pub(super) shared: u64,
    pub(super) kept: u64,
    pub(super) literal: u64,
}

impl Work {
    /// Builds a BLOCKS op (tag, block map, references, literals) in `cand` for the blocks marked
    /// in `changed` (the others are kept); `hashes` holds the hashes of the changed blocks.
    /// Returns true if any block is zero or shared (so the op may beat plain compression).
    pub(super) fn encode_blocks(&mut self, page_idx: u64, page: &[u8], cache: &PageCache) -> bool {
        self.classify_blocks(page_idx, page, cache);
        self.pack_literals(page);
        let n = self.page.blocks;
        n.zero + n.shared > 0
    }

    /// The first part of a BLOCKS op: tag, block map and references in `cand`, the counts in
    /// `pending_blocks`, the literal blocks gathered in `lits` (left empty when every block is
    /// one: the page is then the literal section) and probed for randomness (`lits_random`).
    pub(super) fn classify_blocks(&mut self, page_idx: u64, page: &[u8], cache: &PageCache) {
        let bs = self.cfg.block_size;
        let nblocks = self.cfg.blocks_per_page();
        let zero_stage = self.cfg.stages.zero;
        self.page.block_op.clear();
        self.page.literals.clear();
        self.page.literals_random = false;
        self.page.block_op.push(op::BLOCKS); // codec added by pack_literals
        let map_at = self.page.block_op.len();
        self.page.block_op.resize(map_at + nblocks.div_ceil(4), 0);
        let mut n = BlockCounts::default();
        for i in 0..nblocks {
            let blk = &page[i * bs..(i + 1) * bs];
            let code = if !self.page.changed.get(i) {
                n.kept += 1;
                block::KEEP
            } else if zero_stage && zero::is_zero(blk) {
                n.zero += 1;
                block::ZERO
            } else if let Some((src_page, src_blk)) =
                self.find_shared(self.page.hashes[i], blk, cache)
            {
                let rel = src_page.wrapping_sub(page_idx) as i64;
                varint::put(&mut self.page.block_op, varint::zigzag(rel));
                varint::put(&mut self.page.block_op, src_blk as u64);
                n.shared += 1;
                block::REF
            } else {
                n.literal += 1;
                block::LITERAL
            };
            self.page.block_op[map_at + i / 4] |= code << (2 * (i % 4));
        }
        self.page.blocks = n;
        // the literal section: the page itself when every block is a literal (most new pages:
        // no staging copy), else the literal blocks gathered
        let whole = self.lits_whole();
        if !whole && n.literal > 0 {
            for i in 0..nblocks {
                if (self.page.block_op[map_at + i / 4] >> (2 * (i % 4))) & 3 == block::LITERAL {
                    self.page
                        .literals
                        .extend_from_slice(&page[i * bs..(i + 1) * bs]);
                }
            }
        }
        if n.literal > 0 {
            let lits = if whole { page } else { &self.page.literals[..] };
            self.page.literals_random = compress::looks_incompressible(lits);
        }
    }

    /// Completes the BLOCKS op `classify_blocks` began in `cand` with its literal section:
    /// compressed, or as it is when random-looking or not compressible.
    pub(super) fn pack_literals(&mut self, page: &[u8]) {
        let n = self.page.blocks;
        if n.literal == 0 {
            return;
        }
        let whole = self.lits_whole();
        let len = n.literal as usize * self.cfg.block_size;
        let limit = len.saturating_sub(varint::MAX_LEN + 1).max(1);
        let packed = if self.page.literals_random {
            None
        } else {
            self.compress_gated(!whole, page, limit)
        };
        match packed {
            Some((codec, len)) => {
                self.page.block_op[0] |= (codec as u8) << 4;
                varint::put(&mut self.page.block_op, len as u64);
                self.page.block_op.extend_from_slice(&self.page.body[..len]);
            }
            None if whole => self.page.block_op.extend_from_slice(page),
            None => self.page.block_op.extend_from_slice(&self.page.literals),
        }
    }

    /// The most a BLOCKS op with `literals` literal blocks and no references takes: its tag, its
    /// map and the literals uncompressed.
    pub(super) fn block_op_bound(&self, literals: usize) -> usize {
        1 + self.cfg.blocks_per_page().div_ceil(4) + literals * self.cfg.block_size
    }

    /// Whether every block of the last `encode_blocks` was a literal: then `lits` is left empty
    /// and the page itself is the literal section.
    pub(super) fn lits_whole(&self) -> bool {
        self.page.blocks.literal as usize == self.cfg.blocks_per_page()
    }

    /// A location the backup holds with exactly `blk`'s content, confirmed byte for byte against
    /// the cached copy; a stale table entry is dropped.
    pub(super) fn find_shared(
        &mut self,
        h: u64,
        blk: &[u8],
        cache: &PageCache,
    ) -> Option<(u64, usize)> {
        if !self.cfg.stages.sharing {
            return None;
        }
        let bs = self.cfg.block_size;
        let (src_page, src_blk) = self.share.lookup(h)?;
        match cache.peek_full(src_page) {
            Some(src) if &src[src_blk * bs..(src_blk + 1) * bs] == blk => Some((src_page, src_blk)),
            _ => {
                self.share.invalidate(h, src_page, src_blk);
                None
            }
        }
    }
}

/// Marks in `changed` the blocks a delta stream writes to.
pub(super) fn mark_delta_blocks(stream: &[u8], bs: usize, changed: &mut BlockBitmap) {
    changed.fill(false);
    let mut pos = 0;
    let mut at = 0usize;
    while pos < stream.len() {
        let (Some(skip), Some(len)) =
            (varint::get(stream, &mut pos), varint::get(stream, &mut pos))
        else {
            break;
        };
        at += skip as usize;
        let end = at + len as usize;
        for b in at / bs..end.div_ceil(bs) {
            changed.set(b, true);
        }
        pos += len as usize;
        at = end;
    }
}
