//! The frame decoder: validates a whole frame, then applies it to the replica.
//!
//! Application happens in two passes over the payload with one parser. The first pass checks
//! everything that could make the frame fail (every op's kind, lengths, addresses against the
//! replica, that the pages an op depends on were sent since the last resync, and the coded data
//! itself, decompressed into a scratch page) and writes nothing. Only when the whole frame passes
//! does the second pass write the replica. A rejected frame leaves the replica and the decoder's
//! state exactly as they were.

mod replica;
mod stage;

pub use replica::{Regions, Replica};
pub use stage::STAGE_BYTES;

use crate::compress::{self, lz4_dict_decompress, Codec};
use crate::config::Config;
use crate::entropy::EntropyDecoder;
use crate::error::Error;
use crate::format::varint;
use crate::format::{self, block, op, Header};
use crate::stages::bitmap::PageSet;
use crate::stages::delta;
use crate::stats::DecoderStats;
use stage::Stage;
use std::time::Instant;

/// What an applied frame did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Its epoch.
    pub epoch: u64,
    /// Whether it was a resync frame.
    pub resync: bool,
    /// Ops (pages written).
    pub ops: u32,
}

/// Decoder of one replication stream. See the module documentation.
///
/// ```
/// use fgbi::{Config, Decoder, Error};
/// let mut dec = Decoder::new(Config::default()).unwrap();
/// let mut memory = vec![0u8; 4096];
/// // garbage is refused and the memory is untouched
/// let err = dec.apply_flat(&[0u8; 100], &mut memory).unwrap_err();
/// assert_eq!(err, Error::BadMagic);
/// ```
#[derive(Debug)]
pub struct Decoder {
    cfg: Config,
    /// (stream id, last epoch applied) once synchronised.
    sync: Option<(u64, u64)>,
    /// Pages sent since the last resync.
    known: PageSet,
    /// Pages the frame being validated sends.
    pending: PageSet,
    scratch: Vec<u8>,
    refs: Vec<u8>,
    lits: Vec<u8>,
    inflate: compress::Scratch,
    stage: Stage,
    /// The entropy stage's decoder and the payload it rebuilt for the frame being applied.
    entropy: EntropyDecoder,
    plain: Vec<u8>,
    stats: DecoderStats,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Validate,
    Apply,
}

impl Decoder {
    /// A decoder waiting for its first (resync) frame.
    pub fn new(cfg: Config) -> Result<Decoder, Error> {
        cfg.validate()?;
        let ps = cfg.page_size;
        Ok(Decoder {
            cfg,
            sync: None,
            known: PageSet::default(),
            pending: PageSet::default(),
            scratch: vec![0; ps],
            refs: Vec::with_capacity(ps),
            lits: vec![0; ps],
            inflate: compress::Scratch::default(),
            stage: Stage::default(),
            entropy: EntropyDecoder::default(),
            plain: Vec::new(),
            stats: DecoderStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The stream followed and the last epoch applied, once synchronised.
    pub fn position(&self) -> Option<(u64, u64)> {
        self.sync
    }

    /// Forgets the stream: the next frame must be a resync frame, from any stream. Use it when
    /// the primary restarted.
    pub fn reset(&mut self) {
        self.sync = None;
        self.known.clear();
    }

    /// Counters since creation.
    pub fn stats(&self) -> DecoderStats {
        let mut s = self.stats;
        let pages = self.scratch.capacity() + self.refs.capacity() + self.lits.capacity();
        s.memory_bytes = (pages
            + self.stage.memory_bytes()
            + self.entropy.memory_bytes()
            + self.plain.capacity()
            + self.known.memory_bytes()
            + self.pending.memory_bytes()) as u64;
        s
    }

    /// Applies `frame` to flat memory `mem`, where guest address A is `mem[A]`.
    pub fn apply_flat(&mut self, frame: &[u8], mem: &mut [u8]) -> Result<Applied, Error> {
        self.apply(frame, mem)
    }

    /// Validates `frame` whole, then applies it to `replica`. On error nothing was written and
    /// the decoder's state is unchanged.
    pub fn apply<R: Replica + ?Sized>(
        &mut self,
        frame: &[u8],
        replica: &mut R,
    ) -> Result<Applied, Error> {
        let t = Instant::now();
        // an entropy-coded payload is rebuilt into `plain`, taken out of self while in use
        let mut plain = std::mem::take(&mut self.plain);
        let r = self.check(frame, replica, &mut plain);
        let t1 = Instant::now();
        self.stats.validate_nanos += (t1 - t).as_nanos() as u64;
        let r = match r {
            Ok((h, payload)) => {
                let payload = payload.unwrap_or(&plain);
                self.walk(Pass::Apply, &h, payload, replica).map(|()| h)
            }
            Err(e) => Err(e),
        };
        self.plain = plain;
        let h = match r {
            Ok(h) => h,
            Err(e) => {
                // an apply-pass error is unreachable for a validated frame; reported, not trusted
                self.stats.rejected += 1;
                return Err(e);
            }
        };
        if h.is_resync() {
            self.known.clear();
        }
        self.known.union_with(&self.pending);
        self.sync = Some((h.stream_id, h.epoch));
        let ps = self.cfg.page_size as u64;
        self.stats.frames += 1;
        self.stats.bytes_in += frame.len() as u64;
        self.stats.pages += h.op_count as u64;
        self.stats.bytes_out += h.op_count as u64 * ps;
        self.stats.apply_nanos += t1.elapsed().as_nanos() as u64;
        Ok(Applied {
            epoch: h.epoch,
            resync: h.is_resync(),
            ops: h.op_count,
        })
    }

    /// Everything short of writing: envelope, geometry, epoch order, every op. Returns the
    /// header and the payload: the frame's own, or `None` when it was entropy coded and rebuilt
    /// into `plain`.
    fn check<'f, R: Replica + ?Sized>(
        &mut self,
        frame: &'f [u8],
        replica: &mut R,
        plain: &mut Vec<u8>,
    ) -> Result<(Header, Option<&'f [u8]>), Error> {
        let (h, payload) = format::open(frame)?;
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
        match self.sync {
            None if !h.is_resync() => return Err(Error::NotSynchronized { epoch: h.epoch }),
            None => {}
            Some((stream, _)) if stream != h.stream_id => {
                return Err(Error::ForeignStream {
                    expected: stream,
                    got: h.stream_id,
                })
            }
            Some((_, last)) if h.epoch <= last => {
                return Err(Error::EpochReplayed { last, got: h.epoch })
            }
            Some((_, last)) if !h.is_resync() && h.epoch != last + 1 => {
                return Err(Error::EpochGap {
                    expected: last + 1,
                    got: h.epoch,
                })
            }
            Some(_) => {}
        }
        self.pending.clear();
        self.stage.reset();
        if h.flags & format::FLAG_ENTROPY != 0 {
            let ps = self.cfg.page_size;
            // dictionaries of context-modelled literals: the backup's pages, only read
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
                .decode(payload, ps, self.cfg.block_size, plain, &mut load)
                .map_err(Error::Entropy)?;
            self.walk(Pass::Validate, &h, plain, replica)?;
            return Ok((h, None));
        }
        self.walk(Pass::Validate, &h, payload, replica)?;
        Ok((h, Some(payload)))
    }

    /// One pass over the ops. In `Validate` every check runs and nothing is written; in `Apply`
    /// the replica is written.
    fn walk<R: Replica + ?Sized>(
        &mut self,
        pass: Pass,
        h: &Header,
        payload: &[u8],
        replica: &mut R,
    ) -> Result<(), Error> {
        let ps = self.cfg.page_size;
        let bs = self.cfg.block_size;
        let nblocks = ps / bs;
        let validate = pass == Pass::Validate;
        let resync = h.is_resync();
        let mut pos = 0usize;
        let mut prev: u64 = u64::MAX;
        let mut op_i: u32 = 0;
        while pos < payload.len() {
            if op_i == h.op_count {
                return Err(Error::OpCountMismatch {
                    declared: h.op_count,
                    found: op_i.saturating_add(1),
                });
            }
            let corrupt = |what| Error::CorruptOp { op: op_i, what };
            let tag = payload[pos];
            pos += 1;
            let (kind, codec) = (tag & 0x0f, tag >> 4);
            let rel = varint::get(payload, &mut pos).ok_or(corrupt("bad page address"))?;
            let idx = prev
                .wrapping_add(1)
                .wrapping_add(varint::unzigzag(rel) as u64);
            prev = idx;
            let addr = idx.checked_mul(ps as u64).ok_or(Error::OutOfBounds {
                op: op_i,
                addr: u64::MAX,
            })?;
            if validate && replica.page_mut(addr, ps).is_none() {
                return Err(Error::OutOfBounds { op: op_i, addr });
            }
            let known =
                |s: &Self, i: u64| (!resync && s.known.contains(i)) || s.pending.contains(i);
            let need_known = |s: &Self, i: u64| {
                if validate && !known(s, i) {
                    Err(Error::UnknownPage {
                        op: op_i,
                        addr: i.wrapping_mul(ps as u64),
                    })
                } else {
                    Ok(())
                }
            };
            let take = |pos: &mut usize, n: usize| -> Result<&[u8], Error> {
                let end = pos
                    .checked_add(n)
                    .filter(|&e| e <= payload.len())
                    .ok_or(corrupt("op runs past the payload"))?;
                let s = &payload[*pos..end];
                *pos = end;
                Ok(s)
            };
            let take_len = |pos: &mut usize, max: usize| -> Result<usize, Error> {
                let n = varint::get(payload, pos).ok_or(corrupt("bad length"))?;
                if n == 0 || n > max as u64 {
                    return Err(corrupt("length out of range"));
                }
                Ok(n as usize)
            };
            if codec != 0 && !matches!(kind, op::COMPRESSED | op::BLOCKS) {
                return Err(corrupt("codec bits on an op without a codec"));
            }
            match kind {
                op::ZERO => {
                    if !validate {
                        page(replica, addr, ps)?.fill(0);
                    }
                }
                op::RAW => {
                    let data = take(&mut pos, ps)?;
                    if !validate {
                        page(replica, addr, ps)?.copy_from_slice(data);
                    }
                }
                op::COMPRESSED => {
                    let codec = match Codec::from_u8(codec) {
                        Some(c @ (Codec::Lz4 | Codec::Deflate)) => c,
                        _ => return Err(corrupt("unknown codec")),
                    };
                    let n = take_len(&mut pos, 2 * ps)?;
                    let data = take(&mut pos, n)?;
                    if validate {
                        let out = match self.stage.slot(ps) {
                            Some(out) => out,
                            None => &mut self.scratch[..],
                        };
                        compress::decompress(codec, data, out, &mut self.inflate)
                            .map_err(|_| corrupt("page does not decompress"))?;
                    } else {
                        let out = page(replica, addr, ps)?;
                        match self.stage.take(ps) {
                            Some(staged) => out.copy_from_slice(staged),
                            None => compress::decompress(codec, data, out, &mut self.inflate)
                                .map_err(|_| corrupt("page does not decompress"))?,
                        }
                    }
                }
                op::DELTA => {
                    need_known(self, idx)?;
                    let n = take_len(&mut pos, 2 * ps)?;
                    let data = take(&mut pos, n)?;
                    if validate {
                        delta::validate(data, ps).map_err(|_| corrupt("bad delta"))?;
                    } else {
                        delta::decode(data, page(replica, addr, ps)?)
                            .map_err(|_| corrupt("bad delta"))?;
                    }
                }
                op::DICT => {
                    need_known(self, idx)?;
                    let n = take_len(&mut pos, 2 * ps)?;
                    let data = take(&mut pos, n)?;
                    if validate {
                        // validity does not depend on the dictionary's content, only its length
                        crate::lz4::validate(data, ps, ps)
                            .map_err(|_| corrupt("page does not decompress"))?;
                    } else {
                        let p = page(replica, addr, ps)?;
                        lz4_dict_decompress(data, p, &mut self.scratch)
                            .map_err(|_| corrupt("page does not decompress"))?;
                        p.copy_from_slice(&self.scratch);
                    }
                }
                op::BLOCKS => {
                    let map = take(&mut pos, nblocks.div_ceil(4))?;
                    let code = |i: usize| (map[i / 4] >> (2 * (i % 4))) & 3;
                    if validate && map.len() * 4 > nblocks {
                        let spare = map[map.len() - 1] >> (2 * (nblocks % 4));
                        if spare != 0 {
                            return Err(corrupt("block map has bits past the last block"));
                        }
                    }
                    let (mut nref, mut nlit, mut nkeep) = (0usize, 0usize, 0usize);
                    for i in 0..nblocks {
                        match code(i) {
                            block::REF => nref += 1,
                            block::LITERAL => nlit += 1,
                            block::KEEP => nkeep += 1,
                            _ => {}
                        }
                    }
                    if nkeep > 0 {
                        need_known(self, idx)?;
                    }
                    // references: read the sources as the backup holds them before this op
                    self.refs.clear();
                    for _ in 0..nref {
                        let rel = varint::get(payload, &mut pos).ok_or(corrupt("bad reference"))?;
                        let blk = varint::get(payload, &mut pos).ok_or(corrupt("bad reference"))?;
                        let src = idx.wrapping_add(varint::unzigzag(rel) as u64);
                        if blk >= nblocks as u64 {
                            return Err(corrupt("reference to a block past the page"));
                        }
                        let src_addr = src.checked_mul(ps as u64).ok_or(Error::OutOfBounds {
                            op: op_i,
                            addr: u64::MAX,
                        })?;
                        need_known(self, src)?;
                        let Some(src_page) = replica.page_mut(src_addr, ps) else {
                            return Err(Error::OutOfBounds {
                                op: op_i,
                                addr: src_addr,
                            });
                        };
                        if !validate {
                            let b = blk as usize * bs;
                            self.refs.extend_from_slice(&src_page[b..b + bs]);
                        }
                    }
                    // literals
                    let lit_len = nlit * bs;
                    // uncompressed literals are copied straight from the frame into the page
                    let mut raw_lits: Option<&[u8]> = None;
                    if nlit > 0 {
                        match Codec::from_u8(codec) {
                            Some(Codec::Raw) => raw_lits = Some(take(&mut pos, lit_len)?),
                            Some(c) => {
                                let n = take_len(&mut pos, 2 * ps)?;
                                let data = take(&mut pos, n)?;
                                let lits = &mut self.lits[..lit_len];
                                let staged = if validate {
                                    None
                                } else {
                                    self.stage.take(lit_len)
                                };
                                if let Some(staged) = staged {
                                    lits.copy_from_slice(staged);
                                } else {
                                    let out = match validate
                                        .then(|| self.stage.slot(lit_len))
                                        .flatten()
                                    {
                                        Some(out) => out,
                                        None => lits,
                                    };
                                    compress::decompress(c, data, out, &mut self.inflate)
                                        .map_err(|_| corrupt("literal blocks do not decompress"))?;
                                }
                            }
                            None => return Err(corrupt("unknown codec")),
                        }
                    } else if codec != 0 {
                        return Err(corrupt("codec bits without literal blocks"));
                    }
                    if !validate {
                        let p = page(replica, addr, ps)?;
                        let (mut r, mut l) = (0, 0);
                        for (i, dst) in p.chunks_exact_mut(bs).enumerate() {
                            match code(i) {
                                block::ZERO => dst.fill(0),
                                block::REF => {
                                    dst.copy_from_slice(&self.refs[r..r + bs]);
                                    r += bs;
                                }
                                block::LITERAL => {
                                    let lits = raw_lits.unwrap_or(&self.lits);
                                    dst.copy_from_slice(&lits[l..l + bs]);
                                    l += bs;
                                }
                                _ => {}
                            }
                        }
                    }
                }
                _ => return Err(corrupt("unknown op kind")),
            }
            if validate {
                self.pending.insert(idx);
            }
            op_i += 1;
        }
        if op_i != h.op_count {
            return Err(Error::OpCountMismatch {
                declared: h.op_count,
                found: op_i,
            });
        }
        Ok(())
    }
}

/// The page at `addr` of a replica already validated to have it. A replica that stops
/// answering for a page between the passes breaks its contract; that is reported, not trusted.
fn page<R: Replica + ?Sized>(replica: &mut R, addr: u64, ps: usize) -> Result<&mut [u8], Error> {
    replica.page_mut(addr, ps).ok_or(Error::State(
        "replica lost a page between validation and apply",
    ))
}
