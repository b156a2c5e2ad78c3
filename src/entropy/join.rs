//! Streams → payload: the decoder's side of the [`route`](super::route::route) walk.
//! [`Join`] reads every stream as bytes; [`CtxJoin`] decodes the context-modelled literal
//! stream as it goes, since a literal's context is a byte of the output.
//!
//! Either also decodes the lz4 blocks it rebuilds into a [`Staging`] area when given one (see
//! [`Backup`]): the join reads every sequence of a block anyway, and the frame decoder then
//! copies the kept output instead of parsing the block a second time. Where the area lets it,
//! [`Join`] leaves the bytes of a block it keeps there out of the payload, which the frame
//! decoder then never reads.

use super::context;
use super::route::{Route, BAD_LZ4};
use super::{Staging, Stream, STREAMS};
use crate::format::varint;
use crate::lz4::{copy_match, MIN_MATCH};

/// Streams → payload. `out` is as long as all streams together (every payload byte comes from
/// exactly one stream byte, so `o` cannot pass its end); `o` is how much is written.
pub(super) struct Join<'a, 'l> {
    pub(super) streams: [&'a [u8]; STREAMS],
    pub(super) pos: [usize; STREAMS],
    pub(super) out: &'a mut [u8],
    pub(super) o: usize,
    /// Where the lz4 blocks are decoded to as well; `None`: bytes only.
    pub(super) backup: Option<Backup<'a, 'l>>,
}

impl<'a, 'l> Join<'a, 'l> {
    /// A join at the start of `streams`, writing the payload into `out` (and, with `backup`,
    /// decoding its lz4 blocks there too).
    pub(super) fn new(
        streams: [&'a [u8]; STREAMS],
        out: &'a mut [u8],
        backup: Option<Backup<'a, 'l>>,
    ) -> Self {
        Join {
            streams,
            pos: [0; STREAMS],
            out,
            o: 0,
            backup,
        }
    }
}

/// The backup's side of a join: its pages, as the dictionaries of DICT ops, and the staging area
/// the decoded lz4 output goes to.
pub(super) struct Backup<'a, 'l> {
    /// `load(page, buf)` copies the backup's page number `page` into `buf` (one page), or
    /// returns false when it has none (zeros are used; the frame decoder refuses the op).
    pub(super) load: &'l mut dyn FnMut(u64, &mut [u8]) -> bool,
    pub(super) stage: Option<&'a mut dyn Staging>,
    /// A DICT op's dictionary (one page), then (context-modelled literals) the block's output:
    /// [`window_len`] bytes.
    pub(super) window: &'a mut [u8],
    pub(super) ps: usize,
    /// Page number of the current op (`u64::MAX` before the first, as the decoder counts).
    pub(super) prev: u64,
    /// The coded body announced last: its output length, and whether the backup's page is its
    /// dictionary.
    pub(super) coded: (usize, bool),
}

impl<'a> Backup<'a, '_> {
    /// A backup side whose DICT pages come from `load`, keeping decoded output in `stage`.
    pub(super) fn new(
        load: &'a mut dyn FnMut(u64, &mut [u8]) -> bool,
        stage: Option<&'a mut dyn Staging>,
        window: &'a mut [u8],
        ps: usize,
    ) -> Backup<'a, 'a> {
        Backup {
            load,
            stage,
            window,
            ps,
            prev: u64::MAX,
            coded: (0, false),
        }
    }
}

impl Backup<'_, '_> {
    fn op(&mut self, rel: u64) {
        self.prev = self
            .prev
            .wrapping_add(1)
            .wrapping_add(varint::unzigzag(rel) as u64);
    }

    fn run_end(&mut self, pages_on: u64) {
        self.prev = self.prev.wrapping_add(pages_on);
    }

    fn coded(&mut self, codec: u8, out: usize, dict: bool) {
        self.coded = (out, dict);
        if codec != crate::compress::Codec::Lz4 as u8 {
            // a body the join does not decode: what is kept stays a prefix of the coded ops
            if let Some(stage) = self.stage.as_deref_mut() {
                stage.close();
            }
        }
    }

    /// The length of the current op's dictionary, loaded into `window[..ps]` when it has one.
    fn load_dict(&mut self) -> usize {
        if !self.coded.1 {
            return 0;
        }
        let ps = self.ps;
        if !(self.load)(self.prev, &mut self.window[..ps]) {
            self.window[..ps].fill(0);
        }
        ps
    }

    /// The announced block's dictionary, a slot for its output and whether the block's bytes
    /// may be left out of the payload, if the area has room (the dictionary is loaded only
    /// then).
    fn slot(&mut self) -> Option<(&[u8], &mut [u8], bool)> {
        let (len, dict) = self.coded;
        let stage = self.stage.as_deref_mut()?;
        let skip = stage.skip_body();
        let slot = stage.slot(len, dict)?;
        let ps = self.ps;
        if dict && !(self.load)(self.prev, &mut self.window[..ps]) {
            self.window[..ps].fill(0);
        }
        Some((&self.window[..if dict { ps } else { 0 }], slot, skip))
    }

    /// Context mode: the announced block decoded to `window[dl..dl + n]`; kept if that is its
    /// length.
    fn keep(&mut self, dl: usize, n: usize) {
        let (len, dict) = self.coded;
        let Some(stage) = self.stage.as_deref_mut() else {
            return;
        };
        if n != len {
            stage.close();
        } else if let Some(slot) = stage.slot(len, dict) {
            slot.copy_from_slice(&self.window[dl..dl + n]);
        }
    }

    fn drop_last(&mut self) {
        if let Some(stage) = self.stage.as_deref_mut() {
            stage.drop_last();
        }
    }
}

const STREAM_END: &str = "a stream ends before its last op";

/// Writes `b` at `out[*o]` and moves `o` on. One payload byte per stream byte: the streams'
/// lengths bound `o` by `out.len()`, which is checked all the same.
#[inline(always)]
fn put(out: &mut [u8], o: &mut usize, b: u8) -> Result<(), &'static str> {
    *out.get_mut(*o).ok_or(STREAM_END)? = b;
    *o += 1;
    Ok(())
}

/// Bytes of a context-modelled join's window for pages of `ps` bytes: a DICT op's dictionary
/// and its page, or a RUN op's pages.
pub(super) fn window_len(ps: usize) -> usize {
    (2 * ps).max(crate::format::MAX_RUN_BYTES)
}

impl Route for Join<'_, '_> {
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
    fn op(&mut self, _kind: u8, rel: u64) {
        if let Some(b) = &mut self.backup {
            b.op(rel);
        }
    }
    fn run_end(&mut self, pages_on: u64) {
        if let Some(b) = &mut self.backup {
            b.run_end(pages_on);
        }
    }
    fn coded(&mut self, codec: u8, out: usize, dict: bool) {
        if let Some(b) = &mut self.backup {
            b.coded(codec, out, dict);
        }
    }
    /// The block's bytes moved by [`walk_lz4`], which decodes it into a slot of the staging
    /// area as well when there is one. Where the area lets it, a block kept there is not
    /// written into the payload: only its place is (the frame decoder takes its output from
    /// the area); one that turns out not to decode to its slot is then walked again, and
    /// written, for the frame decoder to find what is wrong with it.
    fn lz4(&mut self, len: usize) -> Result<(), &'static str> {
        let Join {
            streams,
            pos,
            out,
            o,
            backup,
        } = self;
        let Some((dict, slot, skip)) = backup.as_mut().and_then(|b| b.slot()) else {
            return walk_lz4::<false, true>(*streams, pos, out, o, len, &[], &mut []).map(|_| ());
        };
        let (pos0, o0) = (*pos, *o);
        let kept = if skip {
            walk_lz4::<true, false>(*streams, pos, out, o, len, dict, slot)?
        } else {
            walk_lz4::<true, true>(*streams, pos, out, o, len, dict, slot)?
        };
        if !kept {
            if let Some(b) = backup {
                b.drop_last();
            }
            if skip {
                (*pos, *o) = (pos0, o0);
                walk_lz4::<false, true>(*streams, pos, out, o, len, &[], &mut [])?;
            }
        }
        Ok(())
    }
}

/// The moves and checks of [`lz4_body`](super::route::lz4_body) over the streams as slices: lz4
/// blocks are most of a payload. `tests::join_lz4_equals_generic_route` checks it against the
/// generic walk.
///
/// With `FILL` it also decodes the block into `slot`, `dict` being the bytes before it, with the
/// checks of [`lz4::decompress`](crate::lz4::decompress), and returns whether the block decoded
/// to exactly `slot.len()` bytes. A block that does not is still moved whole: what is wrong with
/// it is the frame decoder's to report. Without `WRITE` the block's bytes are read from the
/// streams and checked as they are with it, but not written to `out` (`at` still moves past
/// them).
#[inline(always)]
fn walk_lz4<const FILL: bool, const WRITE: bool>(
    streams: [&[u8]; STREAMS],
    pos: &mut [usize; STREAMS],
    out: &mut [u8],
    at: &mut usize,
    len: usize,
    dict: &[u8],
    slot: &mut [u8],
) -> Result<bool, &'static str> {
    let [ctrl, tokens, lits, lo, hi, _] = streams;
    let [pc, pt, pl, plo, phi, _] = pos;
    let (dl, sl) = (dict.len(), slot.len());
    let mut o = *at;
    let start = o;
    // output decoded so far, and whether the block still decodes
    let (mut p, mut ok) = (0usize, FILL);
    let r = loop {
        let Some(&token) = tokens.get(*pt) else {
            break Err(STREAM_END);
        };
        *pt += 1;
        if WRITE {
            out[o] = token;
        }
        o += 1;
        let mut n = (token >> 4) as usize;
        if n == 15 {
            loop {
                let Some(&b) = ctrl.get(*pc) else {
                    *at = o;
                    return Err(STREAM_END);
                };
                *pc += 1;
                if WRITE {
                    out[o] = b;
                }
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
        let wide = n <= 16 && *pl + 16 <= lits.len();
        if !WRITE {
        } else if wide && o + 16 <= out.len() {
            out[o..o + 16].copy_from_slice(&lits[*pl..*pl + 16]);
        } else {
            out[o..o + n].copy_from_slice(&lits[*pl..end]);
        }
        if FILL && ok {
            if n > sl - p {
                ok = false;
            } else {
                if wide && p + 16 <= sl {
                    slot[p..p + 16].copy_from_slice(&lits[*pl..*pl + 16]);
                } else {
                    slot[p..p + n].copy_from_slice(&lits[*pl..end]);
                }
                p += n;
            }
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
        if WRITE {
            out[o] = l;
            out[o + 1] = h;
        }
        o += 2;
        let mut m = (token & 15) as usize + MIN_MATCH;
        if token & 15 == 15 {
            loop {
                if o - start >= len {
                    *at = o;
                    return Err(BAD_LZ4);
                }
                let Some(&b) = ctrl.get(*pc) else {
                    *at = o;
                    return Err(STREAM_END);
                };
                *pc += 1;
                if WRITE {
                    out[o] = b;
                }
                o += 1;
                m += b as usize;
                if b != 255 {
                    break;
                }
            }
        }
        if o - start >= len {
            break Err("lz4 block ends with a match");
        }
        if FILL && ok {
            let off = u16::from_le_bytes([l, h]) as usize;
            if off == 0 || off > dl + p || m > sl - p {
                ok = false;
            } else {
                copy_match(slot, dict, p, off, m);
                p += m;
            }
        }
    };
    *at = o;
    r.map(|()| ok && p == sl)
}

/// [`Join`] for a payload whose literal stream is context modelled: literals are decoded one by
/// one as the ops are joined, and every lz4 block is decoded into `window` (after its dictionary
/// page, for a DICT op) so that each literal's context is known when it is read.
pub(super) struct CtxJoin<'a, 'l> {
    /// The bytes' side (without a backup side of its own).
    pub(super) join: Join<'a, 'l>,
    pub(super) lits: context::LiteralReader<'a>,
    pub(super) backup: Backup<'a, 'l>,
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
    fn op(&mut self, _kind: u8, rel: u64) {
        self.backup.op(rel);
    }
    fn run_end(&mut self, pages_on: u64) {
        self.backup.run_end(pages_on);
    }
    fn coded(&mut self, codec: u8, out: usize, dict: bool) {
        self.backup.coded(codec, out, dict);
    }
    /// The moves and checks of [`lz4_body`](super::route::lz4_body), decoding the block into
    /// the window as it goes (and keeping it in the staging area when it has its length). The
    /// streams are read through their slices, as [`walk_lz4`] reads them: every literal of a
    /// context-modelled payload passes through here.
    fn lz4(&mut self, len: usize) -> Result<(), &'static str> {
        let CtxJoin { join, lits, backup } = self;
        // a block decodes to at most a page, or the pages of a RUN op
        let ps = backup.coded.0.max(backup.ps);
        let dl = backup.load_dict();
        let [ctrl, tokens, _, lo, hi, _] = join.streams;
        let [pc, pt, _, plo, phi, _] = &mut join.pos;
        let (out, o) = (&mut *join.out, &mut join.o);
        let window = &mut *backup.window;
        // offset of the last match; before the first, the same position in the dictionary
        let mut rep = (dl > 0).then_some(dl);
        let mut p = 0usize; // output bytes so far
        let mut used = 0usize;
        loop {
            let &token = tokens.get(*pt).ok_or(STREAM_END)?;
            *pt += 1;
            put(out, o, token)?;
            used += 1;
            let mut n = (token >> 4) as usize;
            if n == 15 {
                loop {
                    let &b = ctrl.get(*pc).ok_or(STREAM_END)?;
                    *pc += 1;
                    put(out, o, b)?;
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
                return Err("lz4 block decodes past its pages");
            }
            // d <= dl + (output when the match was taken) <= dl + p
            let at = dl + p;
            lits.run(window, at, n, rep)?;
            // the decoded literals into the payload; short runs 16 bytes at once where both
            // sides have them (the bytes past the run are rewritten next)
            if n <= 16 && at + 16 <= window.len() && *o + 16 <= out.len() {
                out[*o..*o + 16].copy_from_slice(&window[at..at + 16]);
            } else {
                out.get_mut(*o..*o + n)
                    .ok_or(STREAM_END)?
                    .copy_from_slice(&window[at..at + n]);
            }
            *o += n;
            p += n;
            used += n;
            if used == len {
                backup.keep(dl, p);
                return Ok(());
            }
            if len - used < 2 {
                return Err(BAD_LZ4);
            }
            let (Some(&l), Some(&h)) = (lo.get(*plo), hi.get(*phi)) else {
                return Err(STREAM_END);
            };
            (*plo, *phi) = (*plo + 1, *phi + 1);
            put(out, o, l)?;
            put(out, o, h)?;
            used += 2;
            let d = u16::from_le_bytes([l, h]) as usize;
            if d == 0 || d > dl + p {
                return Err("lz4 match starts before its window");
            }
            let mut m = (token & 15) as usize + crate::lz4::MIN_MATCH;
            if token & 15 == 15 {
                loop {
                    if used >= len {
                        return Err(BAD_LZ4);
                    }
                    let &b = ctrl.get(*pc).ok_or(STREAM_END)?;
                    *pc += 1;
                    put(out, o, b)?;
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
            if m > ps - p || m > window.len() - (dl + p) {
                return Err("lz4 block decodes past its pages");
            }
            // the window holds the dictionary and the output before `dl + p`: d <= dl + p
            copy_match(window, &[], dl + p, d, m);
            p += m;
            rep = Some(d);
        }
    }
}
