//! The walk over a payload's ops that says which stream each byte belongs to. The splitting
//! side ([`Split`](super::split::Split)) and the joining side ([`Join`](super::join::Join),
//! [`CtxJoin`](super::join::CtxJoin)) both walk with [`route`], each moving the bytes in its
//! direction through the [`Route`] trait, so the two cannot disagree on where a byte goes.

use super::Stream;
use crate::format::varint;
use crate::format::{block, op};

/// The error of an lz4 sequence whose lengths run past its block.
pub(super) const BAD_LZ4: &str = "lz4 sequence runs past its block";

/// Moves one payload's bytes between the payload and the streams, in one direction.
pub(super) trait Route {
    /// Whether the payload has another op (splitting: bytes left; joining: `CTRL` bytes left).
    fn more(&self) -> bool;
    /// Moves one byte of stream `s` and returns it.
    fn byte(&mut self, s: Stream) -> Result<u8, &'static str>;
    /// Moves `n` bytes of stream `s`.
    fn bytes(&mut self, s: Stream, n: usize) -> Result<(), &'static str>;
    /// Told each op's kind (the tag's low bits) and relative page address, before its body.
    fn op(&mut self, _kind: u8, _rel: u64) {}
    /// Told after a RUN op's gaps how many pages past its first its last page lies (the next
    /// op's address is relative to that page).
    fn run_end(&mut self, _pages_on: u64) {}
    /// Told before each coded body (after its length): its codec (lz4 or deflate), the bytes
    /// it decodes to, and whether the backup's page is its dictionary (DICT).
    fn coded(&mut self, _codec: u8, _out: usize, _dict: bool) {}
    /// Moves an lz4 block of exactly `len` bytes (see [`lz4_body`]).
    fn lz4(&mut self, len: usize) -> Result<(), &'static str>
    where
        Self: Sized,
    {
        lz4_body(self, len)
    }
}

/// A varint of stream `s`: its value and its length in bytes.
fn varint<R: Route>(r: &mut R, s: Stream) -> Result<(u64, usize), &'static str> {
    let mut v = 0u64;
    for i in 0..varint::MAX_LEN {
        let b = r.byte(s)?;
        if i == varint::MAX_LEN - 1 && b > 1 {
            return Err("varint overflows 64 bits");
        }
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err("varint longer than 10 bytes")
}

/// A body length (1 ..= 2 × page size, as the decoder requires).
fn body_len<R: Route>(r: &mut R, ps: usize) -> Result<usize, &'static str> {
    let (n, _) = varint(r, Stream::Ctrl)?;
    if n == 0 || n > 2 * ps as u64 {
        return Err("bad body length");
    }
    Ok(n as usize)
}

/// An lz4 block of exactly `len` bytes: tokens, literals, offsets, length extensions.
pub(super) fn lz4_body<R: Route>(r: &mut R, len: usize) -> Result<(), &'static str> {
    let mut used = 0usize;
    loop {
        let token = r.byte(Stream::Tokens)?;
        used += 1;
        let mut lits = (token >> 4) as usize;
        if lits == 15 {
            loop {
                let b = r.byte(Stream::Ctrl)?;
                used += 1;
                lits += b as usize;
                if b != 255 || used >= len {
                    break;
                }
            }
        }
        if used > len || lits > len - used {
            return Err(BAD_LZ4);
        }
        r.bytes(Stream::Literals, lits)?;
        used += lits;
        if used == len {
            return Ok(());
        }
        if len - used < 2 {
            return Err(BAD_LZ4);
        }
        r.byte(Stream::OffsetLow)?;
        r.byte(Stream::OffsetHigh)?;
        used += 2;
        if token & 15 == 15 {
            loop {
                if used >= len {
                    return Err(BAD_LZ4);
                }
                let b = r.byte(Stream::Ctrl)?;
                used += 1;
                if b != 255 {
                    break;
                }
            }
        }
        if used >= len {
            // an lz4 block ends with literals
            return Err("lz4 block ends with a match");
        }
    }
}

/// A delta body of exactly `len` bytes: (skip, length) varints and the run's new bytes.
fn delta_body<R: Route>(r: &mut R, len: usize) -> Result<(), &'static str> {
    let mut used = 0usize;
    while used < len {
        let (_, a) = varint(r, Stream::Ctrl)?;
        let (n, b) = varint(r, Stream::Ctrl)?;
        used += a + b;
        if used > len || n > (len - used) as u64 {
            return Err("delta run runs past its body");
        }
        r.bytes(Stream::Literals, n as usize)?;
        used += n as usize;
    }
    Ok(())
}

/// A compressed body that decodes to `out` bytes, with its length: lz4 is split into its
/// parts, deflate goes whole to `Opaque`.
fn coded_body<R: Route>(r: &mut R, codec: u8, ps: usize, out: usize) -> Result<(), &'static str> {
    let len = body_len(r, ps)?;
    match codec {
        1 => {
            r.coded(codec, out, false);
            r.lz4(len)
        }
        2 => {
            r.coded(codec, out, false);
            r.bytes(Stream::Opaque, len)
        }
        _ => Err("unknown codec"),
    }
}

/// Walks the ops of a payload, moving every byte to or from its stream.
pub(super) fn route<R: Route>(r: &mut R, ps: usize, bs: usize) -> Result<(), &'static str> {
    let nblocks = ps / bs;
    while r.more() {
        let tag = r.byte(Stream::Ctrl)?;
        let (rel, _) = varint(r, Stream::Ctrl)?; // page address
        r.op(tag & 15, rel);
        let codec = tag >> 4;
        match tag & 15 {
            op::ZERO => {}
            op::RAW => r.bytes(Stream::Literals, ps)?,
            op::COMPRESSED => coded_body(r, codec, ps, ps)?,
            op::DELTA => {
                let len = body_len(r, ps)?;
                delta_body(r, len)?;
            }
            op::DICT => {
                let len = body_len(r, ps)?;
                r.coded(1, ps, true);
                r.lz4(len)?;
            }
            op::BLOCKS => {
                let (mut refs, mut lits) = (0usize, 0usize);
                for i in 0..nblocks.div_ceil(4) {
                    let m = r.byte(Stream::Ctrl)?;
                    for j in 0..4.min(nblocks - 4 * i) {
                        match (m >> (2 * j)) & 3 {
                            block::REF => refs += 1,
                            block::LITERAL => lits += 1,
                            _ => {}
                        }
                    }
                }
                for _ in 0..refs {
                    varint(r, Stream::Ctrl)?;
                    varint(r, Stream::Ctrl)?;
                }
                if lits > 0 {
                    match codec {
                        0 => r.bytes(Stream::Literals, lits * bs)?,
                        c => coded_body(r, c, ps, lits * bs)?,
                    }
                }
            }
            op::RUN => {
                let (count, _) = varint(r, Stream::Ctrl)?;
                if count < 2 || count > crate::format::max_run_pages(ps) as u64 {
                    return Err("bad run page count");
                }
                let mut on = 0u64;
                for _ in 1..count {
                    let (gap, _) = varint(r, Stream::Ctrl)?;
                    on = on.wrapping_add(1).wrapping_add(gap);
                }
                r.run_end(on);
                let out = count as usize * ps;
                let (len, _) = varint(r, Stream::Ctrl)?;
                if len == 0 || len > 2 * out as u64 {
                    return Err("bad body length");
                }
                if codec != 1 {
                    return Err("unknown codec");
                }
                r.coded(codec, out, false);
                r.lz4(len as usize)?;
            }
            _ => return Err("unknown op kind"),
        }
    }
    Ok(())
}
