//! Streams → payload: the decoder's side of the [`route`](super::route::route) walk.
//! [`Join`] reads every stream as bytes; [`CtxJoin`] decodes the context-modelled literal
//! stream as it goes, since a literal's context is a byte of the output.

use super::context;
use super::route::{Route, BAD_LZ4};
use super::{Stream, STREAMS};
use crate::format::{op, varint};

/// Streams → payload. `out` is as long as all streams together (every payload byte comes from
/// exactly one stream byte, so `o` cannot pass its end); `o` is how much is written.
pub(super) struct Join<'a> {
    pub(super) streams: [&'a [u8]; STREAMS],
    pub(super) pos: [usize; STREAMS],
    pub(super) out: &'a mut [u8],
    pub(super) o: usize,
}

const STREAM_END: &str = "a stream ends before its last op";

impl Route for Join<'_> {
    fn more(&self) -> bool {
        self.pos[0] < self.streams[0].len()
    }
    fn byte(&mut self, s: Stream) -> Result<u8, &'static str> {
        let i = s as usize;
        let b = *self.streams[i].get(self.pos[i]).ok_or(STREAM_END)?;
        self.pos[i] += 1;
        self.out[self.o] = b;
        self.o += 1;
        Ok(b)
    }
    fn bytes(&mut self, s: Stream, n: usize) -> Result<(), &'static str> {
        let i = s as usize;
        let end = self.pos[i].checked_add(n).ok_or("length overflows")?;
        let b = self.streams[i].get(self.pos[i]..end).ok_or(STREAM_END)?;
        self.out[self.o..self.o + n].copy_from_slice(b);
        self.o += n;
        self.pos[i] = end;
        Ok(())
    }
    /// The same moves and checks as [`lz4_body`](super::route::lz4_body), reading the streams
    /// as slices: lz4 blocks are most of a payload. `tests::join_lz4_equals_generic_route`
    /// checks it against the generic walk.
    fn lz4(&mut self, len: usize) -> Result<(), &'static str> {
        let [ctrl, tokens, lits, lo, hi, _] = self.streams;
        let [pc, pt, pl, plo, phi, _] = &mut self.pos;
        let out = &mut *self.out;
        let mut o = self.o;
        let start = o;
        let r = loop {
            let Some(&token) = tokens.get(*pt) else {
                break Err(STREAM_END);
            };
            *pt += 1;
            out[o] = token;
            o += 1;
            let mut n = (token >> 4) as usize;
            if n == 15 {
                loop {
                    let Some(&b) = ctrl.get(*pc) else {
                        self.o = o;
                        return Err(STREAM_END);
                    };
                    *pc += 1;
                    out[o] = b;
                    o += 1;
                    n += b as usize;
                    if b != 255 || o - start >= len {
                        break;
                    }
                }
            }
            let used = o - start;
            if used > len || n > len - used {
                break Err(BAD_LZ4);
            }
            let end = *pl + n; // n <= len: no overflow
            if end > lits.len() {
                break Err(STREAM_END);
            }
            // short literal runs move 16 bytes at once when both sides have them (the extra
            // bytes are overwritten next)
            if n <= 16 && *pl + 16 <= lits.len() && o + 16 <= out.len() {
                out[o..o + 16].copy_from_slice(&lits[*pl..*pl + 16]);
            } else {
                out[o..o + n].copy_from_slice(&lits[*pl..end]);
            }
            o += n;
            *pl = end;
            let used = used + n;
            if used == len {
                break Ok(());
            }
            if len - used < 2 {
                break Err(BAD_LZ4);
            }
            let (Some(&l), Some(&h)) = (lo.get(*plo), hi.get(*phi)) else {
                break Err(STREAM_END);
            };
            (*plo, *phi) = (*plo + 1, *phi + 1);
            out[o] = l;
            out[o + 1] = h;
            o += 2;
            if token & 15 == 15 {
                loop {
                    if o - start >= len {
                        self.o = o;
                        return Err(BAD_LZ4);
                    }
                    let Some(&b) = ctrl.get(*pc) else {
                        self.o = o;
                        return Err(STREAM_END);
                    };
                    *pc += 1;
                    out[o] = b;
                    o += 1;
                    if b != 255 {
                        break;
                    }
                }
            }
            if o - start >= len {
                break Err("lz4 block ends with a match");
            }
        };
        self.o = o;
        r
    }
}

/// [`Join`] for a payload whose literal stream is context modelled: literals are decoded one by
/// one as the ops are joined, and every lz4 block is decoded into `window` (after its dictionary
/// page, for a DICT op) so that each literal's context is known when it is read.
pub(super) struct CtxJoin<'a, 'l> {
    pub(super) join: Join<'a>,
    pub(super) lits: context::LiteralReader<'a>,
    pub(super) load: &'l mut dyn FnMut(u64, &mut [u8]) -> bool,
    /// Two pages: the dictionary, then the block's output.
    pub(super) window: &'a mut [u8],
    pub(super) ps: usize,
    /// Page number of the current op (`u64::MAX` before the first, as the decoder counts).
    pub(super) prev: u64,
    /// Kind of the current op.
    pub(super) kind: u8,
}

impl CtxJoin<'_, '_> {
    fn literal(&mut self, ctx: u16) -> Result<u8, &'static str> {
        let b = self.lits.next(ctx)?;
        // one payload byte per stream byte read: the literal stream's declared length bounds `o`
        let j = &mut self.join;
        *j.out.get_mut(j.o).ok_or(STREAM_END)? = b;
        j.o += 1;
        Ok(b)
    }
}

impl Route for CtxJoin<'_, '_> {
    fn more(&self) -> bool {
        self.join.more()
    }
    fn byte(&mut self, s: Stream) -> Result<u8, &'static str> {
        match s {
            Stream::Literals => self.literal(context::NO_CONTEXT),
            _ => self.join.byte(s),
        }
    }
    fn bytes(&mut self, s: Stream, n: usize) -> Result<(), &'static str> {
        match s {
            Stream::Literals => {
                let j = &mut self.join;
                // one payload byte per stream byte: the literal stream's length bounds `o`
                let end = j.o.checked_add(n).ok_or(STREAM_END)?;
                self.lits
                    .run_plain(j.out.get_mut(j.o..end).ok_or(STREAM_END)?)?;
                j.o = end;
                Ok(())
            }
            _ => self.join.bytes(s, n),
        }
    }
    fn op(&mut self, kind: u8, rel: u64) {
        self.prev = self
            .prev
            .wrapping_add(1)
            .wrapping_add(varint::unzigzag(rel) as u64);
        self.kind = kind;
    }
    /// The moves and checks of [`lz4_body`](super::route::lz4_body), decoding the block into
    /// the window as it goes.
    fn lz4(&mut self, len: usize) -> Result<(), &'static str> {
        let ps = self.ps;
        let dl = if self.kind == op::DICT { ps } else { 0 };
        if dl > 0 && !(self.load)(self.prev, &mut self.window[..ps]) {
            self.window[..ps].fill(0);
        }
        // offset of the last match; before the first, the same position in the dictionary
        let mut rep = (dl > 0).then_some(dl);
        let mut p = 0usize; // output bytes so far
        let mut used = 0usize;
        loop {
            let token = self.join.byte(Stream::Tokens)?;
            used += 1;
            let mut n = (token >> 4) as usize;
            if n == 15 {
                loop {
                    let b = self.join.byte(Stream::Ctrl)?;
                    used += 1;
                    n += b as usize;
                    if b != 255 || used >= len {
                        break;
                    }
                }
            }
            if used > len || n > len - used {
                return Err(BAD_LZ4);
            }
            if n > ps - p {
                return Err("lz4 block decodes past its page");
            }
            // d <= dl + (output when the match was taken) <= dl + p
            self.lits.run(self.window, dl + p, n, rep)?;
            let j = &mut self.join;
            // one payload byte per stream byte: the literal stream's declared length bounds `o`
            j.out
                .get_mut(j.o..j.o + n)
                .ok_or(STREAM_END)?
                .copy_from_slice(&self.window[dl + p..dl + p + n]);
            j.o += n;
            p += n;
            used += n;
            if used == len {
                return Ok(());
            }
            if len - used < 2 {
                return Err(BAD_LZ4);
            }
            let lo = self.join.byte(Stream::OffsetLow)?;
            let hi = self.join.byte(Stream::OffsetHigh)?;
            used += 2;
            let d = u16::from_le_bytes([lo, hi]) as usize;
            if d == 0 || d > dl + p {
                return Err("lz4 match starts before its window");
            }
            let mut m = (token & 15) as usize + crate::lz4::MIN_MATCH;
            if token & 15 == 15 {
                loop {
                    if used >= len {
                        return Err(BAD_LZ4);
                    }
                    let b = self.join.byte(Stream::Ctrl)?;
                    used += 1;
                    m += b as usize;
                    if b != 255 {
                        break;
                    }
                }
            }
            if used >= len {
                return Err("lz4 block ends with a match");
            }
            if m > ps - p {
                return Err("lz4 block decodes past its page");
            }
            let (to, from) = (dl + p, dl + p - d);
            if d >= m {
                self.window.copy_within(from..from + m, to);
            } else {
                for i in 0..m {
                    self.window[to + i] = self.window[from + i];
                }
            }
            p += m;
            rep = Some(d);
        }
    }
}
