//! The validate pass: everything that could make a frame fail, with nothing written.
//!
//! Frame by frame: the envelope, the geometry against the configuration, the epoch against the
//! stream followed, the entropy stage. Op by op, over the [`Ops`] reader: each page written and
//! referenced is in the replica, each page an op depends on was sent since the last resync (or
//! earlier in this frame), and each op's coded data decodes to exactly what it must. Compressed
//! output decoded here is kept in the staging area for the apply pass, as far as it fits; for an
//! entropy-coded payload the entropy stage's join has already decoded the lz4 blocks into it,
//! and what it holds is not decoded again.
//!
//! A plain payload's checksum is computed during the op walk, a little ahead of the reader, so
//! the frame is read from memory once for both; a checksum mismatch is still the error reported
//! whenever the checksum differs, as if it had been checked first.
//!
//! The replica is only read (the entropy stage's dictionaries) and asked which pages it has.

use super::reader::{Body, Checks, Literals, Ops};
use super::{Decoder, Replica};
use crate::compress;
use crate::entropy::EntropyError;
use crate::error::Error;
use crate::format::{self, Checksum, Header};
use crate::stages::bitmap::PageSet;
use crate::stages::delta;

/// Bytes of a plain payload the checksum runs ahead of the op reader: what the reader parses
/// next is still in cache (an op reads at most a few pages).
pub(super) const HASH_AHEAD: usize = 64 << 10;

/// The state checks of the validate pass.
struct Known<'a, R: ?Sized> {
    replica: &'a mut R,
    /// Pages sent since the last resync, unless this frame is a resync frame.
    known: Option<&'a PageSet>,
    /// Pages this frame wrote in earlier ops.
    pending: &'a PageSet,
    ps: usize,
}

impl<R: Replica + ?Sized> Checks for Known<'_, R> {
    #[inline]
    fn target(&mut self, op: u32, addr: u64) -> Result<(), Error> {
        match self.replica.page_mut(addr, self.ps) {
            Some(_) => Ok(()),
            None => Err(Error::OutOfBounds { op, addr }),
        }
    }
    #[inline]
    fn known(&mut self, op: u32, idx: u64) -> Result<(), Error> {
        if self.known.is_some_and(|k| k.contains(idx)) || self.pending.contains(idx) {
            Ok(())
        } else {
            Err(Error::UnknownPage {
                op,
                addr: idx.wrapping_mul(self.ps as u64),
            })
        }
    }
    #[inline]
    fn reference(&mut self, op: u32, src: u64, addr: u64, _blk: usize) -> Result<(), Error> {
        self.known(op, src)?;
        self.target(op, addr)
    }
}

/// The frame is part `due` of its epoch.
fn check_part(h: &Header, due: u64) -> Result<(), Error> {
    if h.part == due {
        Ok(())
    } else {
        Err(Error::PartOutOfOrder {
            epoch: h.epoch,
            expected: due,
            got: h.part,
        })
    }
}

impl Decoder {
    /// Everything short of writing: envelope, geometry, epoch order, every op. Returns the
    /// header and the payload: the frame's own, or `None` when it was entropy coded and rebuilt
    /// into `plain`.
    pub(super) fn validate<'f, R: Replica + ?Sized>(
        &mut self,
        frame: &'f [u8],
        replica: &mut R,
        plain: &mut Vec<u8>,
    ) -> Result<(Header, Option<&'f [u8]>), Error> {
        let (h, payload) = format::open_unverified(frame)?;
        self.version = format::version(frame);
        if let Some(limit) = self.limit.filter(|&l| payload.len() > l) {
            return Err(Error::FrameTooLarge {
                payload: payload.len(),
                limit,
            });
        }
        let mut sum = format::Checksum::new(frame);
        if h.flags & format::FLAG_ENTROPY == 0 {
            self.stage.reset(false);
            // a plain payload: the checksum is computed as the ops are read, a little ahead of
            // them, so each part of the frame comes from memory once for both; its error comes
            // first, whatever else fails
            let r = format::check_flags(frame, &h)
                .map_err(Error::from)
                .and_then(|()| self.check_position(&h))
                .and_then(|()| self.validate_ops(&h, payload, replica, Some(&mut sum)));
            sum.finish()?;
            r?;
            return Ok((h, Some(payload)));
        }
        sum.finish()?;
        format::check_flags(frame, &h)?;
        self.check_position(&h)?;
        let ps = self.cfg.page_size;
        // the join decodes the lz4 blocks into the staging area as it rebuilds the payload,
        // leaving out the bytes of those it keeps there; should one of them lose its place
        // there (a DICT op of a page the frame wrote before it), the payload is joined again
        // with every block's bytes
        self.stage.reset(true);
        for keep_bodies in [false, true] {
            if keep_bodies {
                self.stage.keep_bodies();
            }
            // the dictionaries of DICT ops and context-modelled literals: the backup's pages,
            // only read
            let mut load = |idx: u64, buf: &mut [u8]| match idx
                .checked_mul(ps as u64)
                .and_then(|addr| replica.page_mut(addr, ps))
            {
                Some(p) => {
                    buf.copy_from_slice(p);
                    true
                }
                None => false,
            };
            self.entropy
                .decode_staged(
                    format::version(frame),
                    payload,
                    ps,
                    self.cfg.block_size,
                    plain,
                    &mut load,
                    Some(&mut self.stage),
                )
                .map_err(|e| match e {
                    EntropyError::TooLarge { total, limit } => Error::FrameTooLarge {
                        payload: total,
                        limit,
                    },
                    EntropyError::NoMemory { bytes } => Error::OutOfMemory {
                        what: "the rebuilt payload",
                        bytes,
                    },
                    e => Error::Entropy(e),
                })?;
            let r = self.validate_ops(&h, plain, replica, None);
            if keep_bodies || !self.stage.bodies_lost() {
                r?;
                break;
            }
        }
        Ok((h, None))
    }

    /// The header against the configuration and the stream followed: geometry, stream, epoch.
    fn check_position(&self, h: &Header) -> Result<(), Error> {
        if h.page_size as usize != self.cfg.page_size {
            return Err(Error::PageSizeMismatch {
                frame: h.page_size,
                config: self.cfg.page_size as u32,
            });
        }
        if h.block_size as usize != self.cfg.block_size {
            return Err(Error::BlockSizeMismatch {
                frame: h.block_size,
                config: self.cfg.block_size as u32,
            });
        }
        // a resync frame, and a frame that starts an epoch, is its epoch's part 0
        let due = match self.next_part {
            Some(part) if !h.is_resync() => part,
            _ => 0,
        };
        let Some((stream, last)) = self.sync else {
            return if !h.is_resync() {
                Err(Error::NotSynchronized { epoch: h.epoch })
            } else {
                check_part(h, 0)
            };
        };
        if stream != h.stream_id {
            return Err(Error::ForeignStream {
                expected: stream,
                got: h.stream_id,
            });
        }
        // a resync frame may start any later epoch (abandoning one left open); otherwise the
        // next frame continues the open epoch, or starts the one after the last
        let expected = if self.next_part.is_some() {
            last
        } else {
            match last.checked_add(1) {
                Some(next) => next,
                None => return Err(Error::EpochReplayed { last, got: h.epoch }),
            }
        };
        if h.epoch < expected || h.is_resync() && h.epoch <= last {
            Err(Error::EpochReplayed { last, got: h.epoch })
        } else if !h.is_resync() && h.epoch != expected {
            Err(Error::EpochGap {
                expected,
                got: h.epoch,
            })
        } else {
            check_part(h, due)
        }
    }

    /// Every op of `payload`, in order; records the pages written in `pending`. With `sum`, the
    /// frame's payload (which `payload` then is) is hashed into it a little ahead of the reader.
    fn validate_ops<R: Replica + ?Sized>(
        &mut self,
        h: &Header,
        payload: &[u8],
        replica: &mut R,
        mut sum: Option<&mut Checksum<'_>>,
    ) -> Result<(), Error> {
        self.pending.clear();
        let ps = self.cfg.page_size;
        // the entropy stage's join decoded (and checked) the coded ops the area holds
        let joined = self.stage.joined();
        let mut ops = Ops::new(payload, h.op_count, ps, self.cfg.block_size, self.version);
        self.frame_pages = 0;
        loop {
            if let Some(sum) = sum.as_deref_mut() {
                let at = format::HEADER_LEN + ops.pos();
                if sum.done() < at + HASH_AHEAD / 2 {
                    sum.advance_to(at + HASH_AHEAD);
                }
            }
            let mut checks = Known {
                replica: &mut *replica,
                known: (!h.is_resync()).then_some(&self.known),
                pending: &self.pending,
                ps,
            };
            let Some(op) = ops.next(&mut checks)? else {
                return Ok(());
            };
            let corrupt = |what| Error::CorruptOp { op: op.index, what };
            match op.body {
                Body::Compressed { .. } if joined && self.stage.filled(ps, false) => {}
                Body::Compressed { codec, data } => {
                    // (a joined frame's area is the join's: nothing more is added; without a
                    // slot the body is only checked, and decoded again when applied)
                    let slot = if joined { None } else { self.stage.slot(ps) };
                    decode_or_check(codec, data, ps, slot, &mut self.scratch, &mut self.inflate)
                        .map_err(|_| corrupt("page does not decompress"))?;
                }
                Body::Delta(data) => {
                    delta::validate(data, ps).map_err(|_| corrupt("bad delta"))?;
                }
                Body::Dict(_) if joined && self.stage.filled(ps, true) => {
                    // decoded against the page before this frame: not what the apply pass
                    // decodes against once an earlier op of the frame wrote the page
                    if self.pending.contains(op.idx) {
                        self.stage.cut();
                    }
                }
                Body::Dict(data) => {
                    // validity does not depend on the dictionary's content, only its length
                    crate::lz4::validate(data, ps, ps)
                        .map_err(|_| corrupt("page does not decompress"))?;
                }
                Body::Blocks {
                    lits: Literals::Coded { len, .. },
                    ..
                } if joined && self.stage.filled(len, false) => {}
                Body::Blocks {
                    lits: Literals::Coded { codec, len, data },
                    ..
                } => {
                    // (a joined frame's area is the join's: nothing more is added)
                    let slot = if joined { None } else { self.stage.slot(len) };
                    decode_or_check(codec, data, len, slot, &mut self.lits, &mut self.inflate)
                        .map_err(|_| corrupt("literal blocks do not decompress"))?;
                }
                Body::Run { pages, .. }
                    if joined && self.stage.filled(pages.pages() * ps, false) => {}
                Body::Run { pages, data } => {
                    let len = pages.pages() * ps;
                    // (a joined frame's area is the join's: nothing more is added)
                    let slot = if joined { None } else { self.stage.slot(len) };
                    let lz4 = compress::Codec::Lz4;
                    decode_or_check(lz4, data, len, slot, &mut self.run, &mut self.inflate)
                        .map_err(|_| corrupt("run does not decompress"))?;
                }
                Body::Zero | Body::Raw(_) | Body::Blocks { .. } => {}
            }
            let added = match op.body {
                Body::Run { mut pages, .. } => {
                    self.frame_pages += pages.pages() as u64;
                    pages.all(|p| self.pending.try_insert(p))
                }
                _ => {
                    self.frame_pages += 1;
                    self.pending.try_insert(op.idx)
                }
            };
            if !added {
                return Err(Error::OutOfMemory {
                    what: "the set of pages sent",
                    bytes: 0,
                });
            }
        }
    }
}

/// Checks that `data`, coded with `codec`, decodes to exactly `len` bytes: decoded into `slot`
/// (the staging area's room, kept for the apply pass) when there is one, else only checked
/// ([`compress::validate`]: an lz4 body without producing its bytes, deflate into `spare`).
fn decode_or_check(
    codec: compress::Codec,
    data: &[u8],
    len: usize,
    slot: Option<&mut [u8]>,
    spare: &mut [u8],
    inflate: &mut compress::Scratch,
) -> Result<(), compress::DecompressError> {
    match slot {
        Some(out) => compress::decompress(codec, data, out, inflate),
        None => compress::validate(codec, data, len, spare, inflate),
    }
}
