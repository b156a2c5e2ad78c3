//! The apply pass: writes a validated frame's ops to the replica, in order.
//!
//! It reads the payload with the same [`Ops`] reader as the validate pass, so it sees the same
//! ops. It relies on the validation for the backup's state (pages known, coded data valid) but
//! not for memory safety: a page or reference the replica does not have, or data that does not
//! decode, is an error, never a panic or a write out of bounds.

use super::nt::{Streamer, STREAM_MIN_PAYLOAD};
use super::reader::{BlockMap, Body, Checks, Literals, Ops};
use super::{Decoder, Replica};
use crate::compress::{self, lz4_dict_decompress};
use crate::error::Error;
use crate::format::{block, Header};
use crate::stages::delta;

/// The apply pass's side of reading an op: gathers the blocks references copy, as the backup
/// holds them before the op is written.
struct Sources<'a, R: ?Sized> {
    replica: &'a mut R,
    refs: &'a mut Vec<u8>,
    ps: usize,
    bs: usize,
}

impl<R: Replica + ?Sized> Checks for Sources<'_, R> {
    #[inline]
    fn target(&mut self, _op: u32, _addr: u64) -> Result<(), Error> {
        Ok(())
    }
    #[inline]
    fn known(&mut self, _op: u32, _idx: u64) -> Result<(), Error> {
        Ok(())
    }
    #[inline]
    fn reference(&mut self, op: u32, _src: u64, addr: u64, blk: usize) -> Result<(), Error> {
        let Some(src_page) = self.replica.page_mut(addr, self.ps) else {
            return Err(Error::OutOfBounds { op, addr });
        };
        let b = blk * self.bs;
        self.refs.extend_from_slice(&src_page[b..b + self.bs]);
        Ok(())
    }
}

impl Decoder {
    /// Writes every op of `payload`, validated as a frame with header `h`, to `replica`.
    pub(super) fn apply_ops<R: Replica + ?Sized>(
        &mut self,
        h: &Header,
        payload: &[u8],
        replica: &mut R,
    ) -> Result<(), Error> {
        let (ps, bs) = (self.cfg.page_size, self.cfg.block_size);
        let mut ops = Ops::new(payload, h.op_count, ps, bs, self.version);
        // fenced when dropped, on every way out
        let mut nt = Streamer::new(payload.len() >= STREAM_MIN_PAYLOAD);
        loop {
            self.refs.clear();
            let mut sources = Sources {
                replica: &mut *replica,
                refs: &mut self.refs,
                ps,
                bs,
            };
            let Some(op) = ops.next(&mut sources)? else {
                return Ok(());
            };
            let corrupt = |what| Error::CorruptOp { op: op.index, what };
            match op.body {
                Body::Zero => page(replica, op.addr, ps)?.fill(0),
                Body::Raw(data) => nt.copy(page(replica, op.addr, ps)?, data),
                Body::Compressed { codec, data } => {
                    let out = page(replica, op.addr, ps)?;
                    match self.stage.take(ps) {
                        Some(staged) => nt.copy(out, staged),
                        None => compress::decompress(codec, data, out, &mut self.inflate)
                            .map_err(|_| corrupt("page does not decompress"))?,
                    }
                }
                Body::Delta(data) => {
                    delta::decode(data, page(replica, op.addr, ps)?)
                        .map_err(|_| corrupt("bad delta"))?;
                }
                Body::Dict(data) => {
                    let p = page(replica, op.addr, ps)?;
                    // the entropy stage's join keeps DICT ops' output too
                    let staged = if self.stage.joined() {
                        self.stage.take(ps)
                    } else {
                        None
                    };
                    match staged {
                        Some(staged) => nt.copy(p, staged),
                        None => {
                            lz4_dict_decompress(data, p, &mut self.scratch)
                                .map_err(|_| corrupt("page does not decompress"))?;
                            nt.copy(p, &self.scratch);
                        }
                    }
                }
                Body::Run { pages, data } => {
                    let len = pages.pages() * ps;
                    let out: &[u8] = match self.stage.take(len) {
                        Some(staged) => staged,
                        None => {
                            crate::lz4::decompress(data, &[], &mut self.run[..len])
                                .map_err(|_| corrupt("run does not decompress"))?;
                            &self.run[..len]
                        }
                    };
                    for (idx, src) in pages.zip(out.chunks_exact(ps)) {
                        // validated: the address does not overflow
                        let addr = idx.wrapping_mul(ps as u64);
                        nt.copy(page(replica, addr, ps)?, src);
                    }
                }
                Body::Blocks { map, lits } => {
                    let lits = match lits {
                        Literals::None => &[][..],
                        Literals::Raw(lits) => lits,
                        Literals::Coded { codec, len, data } => {
                            let lits = &mut self.lits[..len];
                            match self.stage.take(len) {
                                Some(staged) => lits.copy_from_slice(staged),
                                None => compress::decompress(codec, data, lits, &mut self.inflate)
                                    .map_err(|_| corrupt("literal blocks do not decompress"))?,
                            }
                            lits
                        }
                    };
                    let p = page(replica, op.addr, ps)?;
                    write_blocks(p, bs, map, &self.refs, lits);
                }
            }
        }
    }
}

/// Fills `page` block by block from `map`: zero blocks, the referenced blocks (`refs`, in block
/// order) and the literal blocks (`lits`, in block order); KEEP blocks stay as they are.
#[inline]
fn write_blocks(page: &mut [u8], bs: usize, map: BlockMap<'_>, refs: &[u8], lits: &[u8]) {
    let (mut r, mut l) = (0, 0);
    for (i, dst) in page.chunks_exact_mut(bs).enumerate() {
        match map.code(i) {
            block::ZERO => dst.fill(0),
            block::REF => {
                dst.copy_from_slice(&refs[r..r + bs]);
                r += bs;
            }
            block::LITERAL => {
                dst.copy_from_slice(&lits[l..l + bs]);
                l += bs;
            }
            _ => {}
        }
    }
}

/// The page at `addr` of a replica already validated to have it. A replica that stops
/// answering for a page between the passes breaks its contract; that is reported, not trusted.
fn page<R: Replica + ?Sized>(replica: &mut R, addr: u64, ps: usize) -> Result<&mut [u8], Error> {
    replica.page_mut(addr, ps).ok_or(Error::State(
        "replica lost a page between validation and apply",
    ))
}
