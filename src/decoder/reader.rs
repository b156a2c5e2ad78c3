//! The op reader: the one parser of a plain payload, used by both passes.
//!
//! [`Ops::next`] reads the next op into an [`Op`]: its index, the page it writes and its body as
//! slices of the payload. It makes every check that needs only the payload and the geometry (op
//! count, tags, codecs, lengths, address arithmetic, block maps, references) and reports each as
//! the frame's [`Error`] with the op's index.
//!
//! Checks against the backup's state are the pass's, through [`Checks`]. The reader calls them at
//! the points where the format places them (the op's page right after its address, the page an
//! op depends on before its body, each reference as it is read), so the first fault of a frame is
//! reported the same whichever kind it is. What the body's coded data decodes to is left to the
//! passes: it is the last check of an op.

use crate::compress::Codec;
use crate::error::Error;
use crate::format::varint;
use crate::format::{block, op};

/// The checks and reads a pass makes against the backup while an op is read.
pub(super) trait Checks {
    /// Op `op` writes the page at `addr`.
    fn target(&mut self, op: u32, addr: u64) -> Result<(), Error>;
    /// Op `op` depends on page `idx` as the backup holds it (its own page, for DELTA, DICT and
    /// BLOCKS with KEEP blocks).
    fn known(&mut self, op: u32, idx: u64) -> Result<(), Error>;
    /// Op `op` copies block `blk` of page `src`, at `addr`. Called once per REF block, in block
    /// order, before the op's literals are read.
    fn reference(&mut self, op: u32, src: u64, addr: u64, blk: usize) -> Result<(), Error>;
}

/// One op of a payload.
#[derive(Debug, Clone, Copy)]
pub(super) struct Op<'p> {
    /// Its position in the frame, from 0.
    pub index: u32,
    /// The page it writes: index, and guest address.
    pub idx: u64,
    pub addr: u64,
    pub body: Body<'p>,
}

/// What an op writes, as slices of the payload.
#[derive(Debug, Clone, Copy)]
pub(super) enum Body<'p> {
    /// All zeros.
    Zero,
    /// The page itself (page-size bytes).
    Raw(&'p [u8]),
    /// The page, compressed with `codec` (lz4 or deflate).
    Compressed { codec: Codec, data: &'p [u8] },
    /// A delta stream against the page the backup holds.
    Delta(&'p [u8]),
    /// An lz4 block with the page the backup holds as dictionary.
    Dict(&'p [u8]),
    /// Block by block. The references were handed to [`Checks::reference`] while reading.
    Blocks {
        map: BlockMap<'p>,
        lits: Literals<'p>,
    },
    /// `pages` pages, from the op's page on (see [`RunPages`]), compressed together as one lz4
    /// block of `data`.
    Run { pages: RunPages<'p>, data: &'p [u8] },
}

/// The pages of a RUN op, in order: the first, then one after each gap of the op's gap list
/// (varints the reader has checked).
#[derive(Debug, Clone, Copy)]
pub(super) struct RunPages<'p> {
    first: u64,
    count: usize,
    gaps: &'p [u8],
}

impl RunPages<'_> {
    /// Pages in the run.
    #[inline]
    pub fn pages(&self) -> usize {
        self.count
    }
}

impl Iterator for RunPages<'_> {
    type Item = u64;
    #[inline]
    fn next(&mut self) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let idx = self.first;
        self.count -= 1;
        if self.count > 0 {
            let mut pos = 0;
            let gap = varint::get(self.gaps, &mut pos).unwrap_or(0);
            self.gaps = &self.gaps[pos..];
            self.first = idx.wrapping_add(1).wrapping_add(gap);
        }
        Some(idx)
    }
}

/// The literal blocks of a BLOCKS op.
#[derive(Debug, Clone, Copy)]
pub(super) enum Literals<'p> {
    /// No literal block.
    None,
    /// Stored: the blocks back to back.
    Raw(&'p [u8]),
    /// Coded with `codec`, to `len` bytes.
    Coded {
        codec: Codec,
        len: usize,
        data: &'p [u8],
    },
}

/// A BLOCKS op's block map: two bits per block, first block in the low bits of the first byte.
#[derive(Debug, Clone, Copy)]
pub(super) struct BlockMap<'p>(&'p [u8]);

impl BlockMap<'_> {
    /// The code of block `i` (see [`block`]).
    #[inline]
    pub fn code(self, i: usize) -> u8 {
        (self.0[i / 4] >> (2 * (i % 4))) & 3
    }
}

/// Reader of a plain payload's ops, in order.
pub(super) struct Ops<'p> {
    payload: &'p [u8],
    pos: usize,
    /// Page index of the previous op (`u64::MAX` before the first: addresses are relative).
    prev: u64,
    /// Index of the op being read.
    index: u32,
    /// Ops the header declares.
    count: u32,
    ps: usize,
    bs: usize,
    /// Whether the frame's version has RUN ops.
    runs: bool,
}

impl<'p> Ops<'p> {
    /// A reader of `payload`, which must hold exactly `count` ops of pages of `ps` bytes in
    /// blocks of `bs`, in a frame of format `version`.
    pub fn new(payload: &'p [u8], count: u32, ps: usize, bs: usize, version: u16) -> Self {
        Ops {
            payload,
            pos: 0,
            prev: u64::MAX,
            index: 0,
            count,
            ps,
            bs,
            runs: version >= crate::format::VERSION_4,
        }
    }

    /// Bytes of the payload read so far.
    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The next op, or `None` at the end of a payload that held as many ops as declared.
    #[inline]
    pub fn next<C: Checks>(&mut self, checks: &mut C) -> Result<Option<Op<'p>>, Error> {
        if self.pos >= self.payload.len() {
            if self.index != self.count {
                return Err(Error::OpCountMismatch {
                    declared: self.count,
                    found: self.index,
                });
            }
            return Ok(None);
        }
        if self.index == self.count {
            return Err(Error::OpCountMismatch {
                declared: self.count,
                found: self.index.saturating_add(1),
            });
        }
        let ps = self.ps;
        let tag = self.payload[self.pos];
        self.pos += 1;
        let (kind, codec) = (tag & 0x0f, tag >> 4);
        let rel =
            varint::get(self.payload, &mut self.pos).ok_or(self.corrupt("bad page address"))?;
        let idx = self
            .prev
            .wrapping_add(1)
            .wrapping_add(varint::unzigzag(rel) as u64);
        self.prev = idx;
        let addr = idx.checked_mul(ps as u64).ok_or(Error::OutOfBounds {
            op: self.index,
            addr: u64::MAX,
        })?;
        checks.target(self.index, addr)?;
        if codec != 0 && !matches!(kind, op::COMPRESSED | op::BLOCKS | op::RUN) {
            return Err(self.corrupt("codec bits on an op without a codec"));
        }
        let body = match kind {
            op::ZERO => Body::Zero,
            op::RAW => Body::Raw(self.take(ps)?),
            op::COMPRESSED => {
                let codec = match Codec::from_u8(codec) {
                    Some(c @ (Codec::Lz4 | Codec::Deflate)) => c,
                    _ => return Err(self.corrupt("unknown codec")),
                };
                let data = self.coded()?;
                Body::Compressed { codec, data }
            }
            op::DELTA => {
                checks.known(self.index, idx)?;
                Body::Delta(self.coded()?)
            }
            op::DICT => {
                checks.known(self.index, idx)?;
                Body::Dict(self.coded()?)
            }
            op::BLOCKS => self.blocks(codec, idx, checks)?,
            op::RUN if self.runs => self.run(codec, idx, checks)?,
            _ => return Err(self.corrupt("unknown op kind")),
        };
        let op = Op {
            index: self.index,
            idx,
            addr,
            body,
        };
        self.index += 1;
        Ok(Some(op))
    }

    /// The body of a BLOCKS op on page `idx` whose tag carries `codec`: block map, references
    /// (handed to `checks`), literals.
    #[inline]
    fn blocks<C: Checks>(
        &mut self,
        codec: u8,
        idx: u64,
        checks: &mut C,
    ) -> Result<Body<'p>, Error> {
        let (ps, bs) = (self.ps, self.bs);
        let nblocks = ps / bs;
        let bytes = self.take(nblocks.div_ceil(4))?;
        if bytes.len() * 4 > nblocks {
            let spare = bytes[bytes.len() - 1] >> (2 * (nblocks % 4));
            if spare != 0 {
                return Err(self.corrupt("block map has bits past the last block"));
            }
        }
        let map = BlockMap(bytes);
        let (mut nref, mut nlit, mut nkeep) = (0usize, 0usize, 0usize);
        for i in 0..nblocks {
            match map.code(i) {
                block::REF => nref += 1,
                block::LITERAL => nlit += 1,
                block::KEEP => nkeep += 1,
                _ => {}
            }
        }
        if nkeep > 0 {
            checks.known(self.index, idx)?;
        }
        for _ in 0..nref {
            let rel =
                varint::get(self.payload, &mut self.pos).ok_or(self.corrupt("bad reference"))?;
            let blk =
                varint::get(self.payload, &mut self.pos).ok_or(self.corrupt("bad reference"))?;
            let src = idx.wrapping_add(varint::unzigzag(rel) as u64);
            if blk >= nblocks as u64 {
                return Err(self.corrupt("reference to a block past the page"));
            }
            let src_addr = src.checked_mul(ps as u64).ok_or(Error::OutOfBounds {
                op: self.index,
                addr: u64::MAX,
            })?;
            checks.reference(self.index, src, src_addr, blk as usize)?;
        }
        let len = nlit * bs;
        let lits = if nlit > 0 {
            match Codec::from_u8(codec) {
                Some(Codec::Raw) => Literals::Raw(self.take(len)?),
                Some(codec) => Literals::Coded {
                    codec,
                    len,
                    data: self.coded()?,
                },
                None => return Err(self.corrupt("unknown codec")),
            }
        } else if codec != 0 {
            return Err(self.corrupt("codec bits without literal blocks"));
        } else {
            Literals::None
        };
        Ok(Body::Blocks { map, lits })
    }

    /// The body of a RUN op whose first page is `idx`: count, gaps (each later page handed to
    /// `checks`), then the lz4 block of all its pages. The reader's previous page becomes the
    /// run's last.
    #[inline]
    fn run<C: Checks>(&mut self, codec: u8, idx: u64, checks: &mut C) -> Result<Body<'p>, Error> {
        if Codec::from_u8(codec) != Some(Codec::Lz4) {
            return Err(self.corrupt("unknown codec"));
        }
        let ps = self.ps as u64;
        let most = crate::format::max_run_pages(self.ps) as u64;
        let count = varint::get(self.payload, &mut self.pos).ok_or(self.corrupt("bad run"))?;
        if count < 2 || count > most {
            return Err(self.corrupt("run page count out of range"));
        }
        let gaps_at = self.pos;
        let mut page = idx;
        for _ in 1..count {
            let gap =
                varint::get(self.payload, &mut self.pos).ok_or(self.corrupt("bad run gap"))?;
            page = page.wrapping_add(1).wrapping_add(gap);
            let addr = page.checked_mul(ps).ok_or(Error::OutOfBounds {
                op: self.index,
                addr: u64::MAX,
            })?;
            checks.target(self.index, addr)?;
        }
        self.prev = page;
        let pages = RunPages {
            first: idx,
            count: count as usize,
            gaps: &self.payload[gaps_at..self.pos],
        };
        let data = self.coded_up_to(2 * count as usize * self.ps)?;
        Ok(Body::Run { pages, data })
    }

    /// A length-prefixed body of coded data: at least one byte, at most twice a page.
    #[inline]
    fn coded(&mut self) -> Result<&'p [u8], Error> {
        self.coded_up_to(2 * self.ps)
    }

    /// A length-prefixed body of coded data: at least one byte, at most `most`.
    #[inline]
    fn coded_up_to(&mut self, most: usize) -> Result<&'p [u8], Error> {
        let n = varint::get(self.payload, &mut self.pos).ok_or(self.corrupt("bad length"))?;
        if n == 0 || n > most as u64 {
            return Err(self.corrupt("length out of range"));
        }
        self.take(n as usize)
    }

    /// The next `n` bytes.
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'p [u8], Error> {
        let payload = self.payload;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= payload.len())
            .ok_or(self.corrupt("op runs past the payload"))?;
        let s = &payload[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    #[inline]
    fn corrupt(&self, what: &'static str) -> Error {
        Error::CorruptOp {
            op: self.index,
            what,
        }
    }
}
