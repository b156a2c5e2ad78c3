//! The entropy stage: a lossless recoding of a whole frame payload that separates its bytes by
//! what they are and Huffman-codes each kind with its own table.
//!
//! lz4 finds repeats but codes what is left (literal bytes, match offsets, tokens) as plain bytes;
//! on real heaps that is most of its output. The payload of an epoch is therefore split into six
//! streams — op headers and lengths (`CTRL`), lz4 tokens, literal bytes (lz4 literals, raw pages,
//! new bytes of deltas, raw literal blocks), the low and the high bytes of lz4 match offsets, and
//! deflate output (already entropy coded) — and each stream is sent Huffman coded with one table
//! for the whole frame, or stored when that is smaller. One parser (`route`) walks the ops in
//! both directions, so splitting and joining cannot disagree on which byte goes where.
//!
//! The decoder joins the streams back into exactly the payload the encoder wrote and validates
//! that as any other payload. `FORMAT.md` ("Entropy-coded payload") describes the bytes.
//!
//! ```
//! use fgbi::{Config, Decoder, Encoder, Stages};
//! let cfg = Config::default();
//! let mut enc = Encoder::new(cfg).unwrap();
//! let mut dec = Decoder::new(cfg).unwrap();
//! let mut mem = vec![0u8; 64 * 4096];
//! for (i, b) in mem.iter_mut().enumerate() {
//!     *b = (i % 251) as u8 & 0x3f;
//! }
//! enc.begin_epoch(0).unwrap();
//! for p in 0..64 {
//!     enc.add_page(p * 4096, &mem[p as usize * 4096..][..4096]).unwrap();
//! }
//! let frame = enc.end_epoch().unwrap();
//! let mut backup = vec![0u8; mem.len()];
//! dec.apply_flat(frame, &mut backup).unwrap();
//! assert_eq!(backup, mem);
//! ```

pub mod context;
pub mod huffman;

use crate::format::varint;
use crate::format::{block, op};
use huffman::{HuffmanError, TABLE_BYTES};

/// Number of streams.
pub const STREAMS: usize = 6;

/// The largest payload a decoder rebuilds from an entropy-coded one; a frame declaring more is
/// refused before anything is allocated. (Each Huffman-coded byte costs at least one bit, so the
/// rebuilt payload is also never more than 8 times the frame.)
pub const MAX_PLAIN_BYTES: usize = 1 << 30;

/// The streams, in the order the container holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Stream {
    /// Op tags, addresses, lengths, block maps, references, delta skips, lz4 length extensions.
    Ctrl = 0,
    /// lz4 tokens (literal and match length nibbles).
    Tokens = 1,
    /// Literal bytes: lz4 literals, raw pages, new bytes of delta runs, raw literal blocks.
    Literals = 2,
    /// Low bytes of lz4 match offsets.
    OffsetLow = 3,
    /// High bytes of lz4 match offsets.
    OffsetHigh = 4,
    /// deflate output, already entropy coded.
    Opaque = 5,
}

/// Stream mode byte: the stream's bytes follow as they are.
pub const MODE_STORED: u8 = 0;
/// Stream mode byte: a full code-length table (256 lengths, [`TABLE_BYTES`] bytes) and
/// Huffman-coded bytes follow.
pub const MODE_HUFFMAN: u8 = 1;
/// Stream mode byte: a listed code-length table (a 32-byte bitmap of the byte values that occur,
/// then their lengths, two per byte) and Huffman-coded bytes follow. Smaller than the full table
/// when fewer than 192 values occur.
pub const MODE_HUFFMAN_LISTED: u8 = 2;

/// Stream mode byte, for the tokens, literals, low and high offset bytes: context-modelled
/// Huffman coding (see [`context`]): a table count, a context map, the tables, and the coded
/// bits.
pub const MODE_CONTEXT: u8 = 3;

/// Bytes of a listed table with `k` values.
fn listed_table_len(k: usize) -> usize {
    32 + k.div_ceil(2)
}

/// Writes the listed form of a code-length table.
fn put_listed(lens: &huffman::Lengths, out: &mut Vec<u8>) {
    let mut bitmap = [0u8; 32];
    for (s, &l) in lens.iter().enumerate() {
        if l > 0 {
            bitmap[s / 8] |= 1 << (s % 8);
        }
    }
    out.extend_from_slice(&bitmap);
    let mut listed = lens.iter().copied().filter(|&l| l > 0);
    while let Some(lo) = listed.next() {
        out.push(lo | listed.next().unwrap_or(0) << 4);
    }
}

/// Reads a listed table at `table` (checked to be inside `coded`); returns the lengths and the
/// table's length in bytes. A listed value with length 0 is refused.
fn get_listed(coded: &[u8], table: usize) -> Result<(huffman::Lengths, usize), EntropyError> {
    let bitmap = coded
        .get(table..table + 32)
        .ok_or(EntropyError::Container("code table runs past the payload"))?;
    let k: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
    let packed = coded
        .get(table + 32..table + listed_table_len(k))
        .ok_or(EntropyError::Container("code table runs past the payload"))?;
    let mut lens = [0u8; 256];
    let mut i = 0;
    for (s, l) in lens.iter_mut().enumerate() {
        if bitmap[s / 8] >> (s % 8) & 1 != 0 {
            *l = (packed[i / 2] >> (4 * (i % 2))) & 15;
            if *l == 0 {
                return Err(EntropyError::Container("a listed value without a code"));
            }
            i += 1;
        }
    }
    if k % 2 == 1 && packed[k / 2] >> 4 != 0 {
        return Err(EntropyError::Container("non-zero padding in a code table"));
    }
    Ok((lens, listed_table_len(k)))
}

/// Moves one payload's bytes between the payload and the streams, in one direction.
trait Route {
    /// Whether the payload has another op (splitting: bytes left; joining: `CTRL` bytes left).
    fn more(&self) -> bool;
    /// Moves one byte of stream `s` and returns it.
    fn byte(&mut self, s: Stream) -> Result<u8, &'static str>;
    /// Moves `n` bytes of stream `s`.
    fn bytes(&mut self, s: Stream, n: usize) -> Result<(), &'static str>;
    /// Told each op's kind (the tag's low bits) and relative page address, before its body.
    fn op(&mut self, _kind: u8, _rel: u64) {}
    /// Moves an lz4 block of exactly `len` bytes (see [`lz4_body`]).
    fn lz4(&mut self, len: usize) -> Result<(), &'static str>
    where
        Self: Sized,
    {
        lz4_body(self, len)
    }
}

/// Payload → streams, in two passes: `out` is `None` while the streams' lengths are counted
/// (into `at`) and the payload is checked, then the bytes are moved into one buffer where stream
/// `s` starts at `at[s]` (the moving pass relies on the payload having passed the counting one).
struct Split<'a> {
    src: &'a [u8],
    pos: usize,
    at: [usize; STREAMS],
    out: Option<&'a mut [u8]>,
    /// While moving: the counts of each byte value in the tokens and the low and high offset
    /// bytes (streams that only lz4 blocks write, all through [`split_lz4`]).
    counts: Counts,
    /// The contexts of the lz4 blocks' literals, in payload order (see [`context`]).
    ctx_in: &'a [u16],
    /// How many of `ctx_in` were used (counting pass: how many lz4 literals there are).
    ctx_pos: usize,
    /// While moving, with contexts: the context of each literal stream byte, and where the
    /// literal stream starts in `out`.
    ctx_out: Option<(&'a mut [u16], usize)>,
}

/// Byte counts of the tokens, low offset and high offset streams.
type Counts = [[u32; 256]; 3];

impl Route for Split<'_> {
    fn more(&self) -> bool {
        self.pos < self.src.len()
    }
    fn byte(&mut self, s: Stream) -> Result<u8, &'static str> {
        let b = *self.src.get(self.pos).ok_or("op runs past the payload")?;
        self.pos += 1;
        let at = &mut self.at[s as usize];
        if let Some(out) = &mut self.out {
            out[*at] = b;
        }
        if let (Stream::Literals, Some((ctx, base))) = (s, &mut self.ctx_out) {
            ctx[*at - *base] = context::NO_CONTEXT;
        }
        *at += 1;
        Ok(b)
    }
    fn bytes(&mut self, s: Stream, n: usize) -> Result<(), &'static str> {
        let end = self.pos.checked_add(n).ok_or("length overflows")?;
        let b = self
            .src
            .get(self.pos..end)
            .ok_or("op runs past the payload")?;
        let at = &mut self.at[s as usize];
        if let Some(out) = &mut self.out {
            out[*at..*at + n].copy_from_slice(b);
        }
        if let (Stream::Literals, Some((ctx, base))) = (s, &mut self.ctx_out) {
            ctx[*at - *base..*at - *base + n].fill(context::NO_CONTEXT);
        }
        *at += n;
        self.pos = end;
        Ok(())
    }
    /// The same moves as [`lz4_body`], over the block as one slice: lz4 blocks are most of a
    /// payload, and splitting is on the encoder's path. `tests::split_lz4_equals_generic_route`
    /// checks it against the generic walk.
    fn lz4(&mut self, len: usize) -> Result<(), &'static str> {
        let end = self.pos.checked_add(len).ok_or("length overflows")?;
        let body = self
            .src
            .get(self.pos..end)
            .ok_or("op runs past the payload")?;
        let lits_before = self.at[Stream::Literals as usize];
        match &mut self.out {
            None => count_lz4(body, &mut self.at)?,
            Some(out) => split_lz4(
                body,
                &self.src[self.pos..],
                &mut self.at,
                out,
                &mut self.counts,
            ),
        }
        let n = self.at[Stream::Literals as usize] - lits_before;
        if let Some((ctx, base)) = &mut self.ctx_out {
            let from = self
                .ctx_in
                .get(self.ctx_pos..self.ctx_pos + n)
                .ok_or("fewer literal contexts than lz4 literals")?;
            ctx[lits_before - *base..lits_before - *base + n].copy_from_slice(from);
        }
        self.ctx_pos += n;
        self.pos = end;
        Ok(())
    }
}

const BAD_LZ4: &str = "lz4 sequence runs past its block";

/// Counts the bytes an lz4 block gives each stream, checking the block as [`lz4_body`] does.
fn count_lz4(body: &[u8], at: &mut [usize; STREAMS]) -> Result<(), &'static str> {
    let len = body.len();
    // sequences (one token each) and length-extension bytes
    let (mut i, mut seqs, mut ext) = (0usize, 0usize, 0usize);
    loop {
        let token = *body.get(i).ok_or(BAD_LZ4)?;
        i += 1;
        seqs += 1;
        let mut n = (token >> 4) as usize;
        if n == 15 {
            let start = i;
            loop {
                let b = *body.get(i).ok_or(BAD_LZ4)?;
                i += 1;
                n += b as usize;
                if b != 255 {
                    break;
                }
            }
            ext += i - start;
        }
        if n > len - i {
            return Err(BAD_LZ4);
        }
        i += n;
        if i == len {
            break;
        }
        i += 2;
        if i > len {
            return Err(BAD_LZ4);
        }
        if token & 15 == 15 {
            let start = i;
            loop {
                let b = *body.get(i).ok_or(BAD_LZ4)?;
                i += 1;
                if b != 255 {
                    break;
                }
            }
            ext += i - start;
        }
        if i >= len {
            return Err("lz4 block ends with a match");
        }
    }
    // every sequence but the last has a match (two offset bytes); the rest are literals
    let matches = seqs - 1;
    at[Stream::Tokens as usize] += seqs;
    at[Stream::Ctrl as usize] += ext;
    at[Stream::OffsetLow as usize] += matches;
    at[Stream::OffsetHigh as usize] += matches;
    at[Stream::Literals as usize] += len - seqs - 2 * matches - ext;
    Ok(())
}

/// Moves the bytes of an lz4 block, already checked by [`count_lz4`], to the streams' regions of
/// `out` (each followed by [`GAP`] free bytes). `wild` is the payload from the block on: short
/// literal runs are copied 16 bytes at once from it, the bytes past the run landing in the gap
/// or overwritten by the stream's next bytes.
fn split_lz4(
    body: &[u8],
    wild: &[u8],
    at: &mut [usize; STREAMS],
    out: &mut [u8],
    counts: &mut Counts,
) {
    let [ct, clo, chi] = counts;
    let len = body.len();
    let [mut pc, mut pt, mut pl, mut po, ph, _] = *at;
    // the high offset bytes' region is at a fixed distance from the low ones'
    let dh = ph - po;
    let mut i = 0;
    loop {
        let token = body[i];
        i += 1;
        out[pt] = token;
        pt += 1;
        ct[token as usize] += 1;
        let mut n = (token >> 4) as usize;
        if n == 15 {
            let start = i;
            loop {
                let b = body[i];
                i += 1;
                n += b as usize;
                if b != 255 {
                    break;
                }
            }
            out[pc..pc + i - start].copy_from_slice(&body[start..i]);
            pc += i - start;
        }
        if n <= 16 && i + 16 <= wild.len() && pl + 16 <= out.len() {
            out[pl..pl + 16].copy_from_slice(&wild[i..i + 16]);
        } else {
            out[pl..pl + n].copy_from_slice(&body[i..i + n]);
        }
        pl += n;
        i += n;
        if i == len {
            break;
        }
        let (l, h) = (body[i], body[i + 1]);
        out[po] = l;
        out[po + dh] = h;
        clo[l as usize] += 1;
        chi[h as usize] += 1;
        po += 1;
        i += 2;
        if token & 15 == 15 {
            let start = i;
            loop {
                let b = body[i];
                i += 1;
                if b != 255 {
                    break;
                }
            }
            out[pc..pc + i - start].copy_from_slice(&body[start..i]);
            pc += i - start;
        }
    }
    at[..5].copy_from_slice(&[pc, pt, pl, po, po + dh]);
}

/// Bytes left free after each stream's region while splitting, so that short copies may move
/// 16 bytes at once.
const GAP: usize = 16;

/// Streams → payload. `out` is as long as all streams together (every payload byte comes from
/// exactly one stream byte, so `o` cannot pass its end); `o` is how much is written.
struct Join<'a> {
    streams: [&'a [u8]; STREAMS],
    pos: [usize; STREAMS],
    out: &'a mut [u8],
    o: usize,
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
    /// The same moves and checks as [`lz4_body`], reading the streams as slices: lz4 blocks are
    /// most of a payload. `tests::join_lz4_equals_generic_route` checks it against the generic
    /// walk.
    fn lz4(&mut self, len: usize) -> Result<(), &'static str> {
        const BAD: &str = "lz4 sequence runs past its block";
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
                break Err(BAD);
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
                break Err(BAD);
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
                        return Err(BAD);
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
struct CtxJoin<'a, 'l> {
    join: Join<'a>,
    lits: context::LiteralReader<'a>,
    load: &'l mut dyn FnMut(u64, &mut [u8]) -> bool,
    /// Two pages: the dictionary, then the block's output.
    window: &'a mut [u8],
    ps: usize,
    /// Page number of the current op (`u64::MAX` before the first, as the decoder counts).
    prev: u64,
    /// Kind of the current op.
    kind: u8,
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
    /// The moves and checks of [`lz4_body`], decoding the block into the window as it goes.
    fn lz4(&mut self, len: usize) -> Result<(), &'static str> {
        const BAD: &str = "lz4 sequence runs past its block";
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
                return Err(BAD);
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
                return Err(BAD);
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
                        return Err(BAD);
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
fn lz4_body<R: Route>(r: &mut R, len: usize) -> Result<(), &'static str> {
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
            return Err("lz4 sequence runs past its block");
        }
        r.bytes(Stream::Literals, lits)?;
        used += lits;
        if used == len {
            return Ok(());
        }
        if len - used < 2 {
            return Err("lz4 sequence runs past its block");
        }
        r.byte(Stream::OffsetLow)?;
        r.byte(Stream::OffsetHigh)?;
        used += 2;
        if token & 15 == 15 {
            loop {
                if used >= len {
                    return Err("lz4 sequence runs past its block");
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

/// A compressed body after its length: lz4 is split into its parts, deflate goes whole to
/// `Opaque`.
fn coded_body<R: Route>(r: &mut R, codec: u8, ps: usize) -> Result<(), &'static str> {
    let len = body_len(r, ps)?;
    match codec {
        1 => r.lz4(len),
        2 => r.bytes(Stream::Opaque, len),
        _ => Err("unknown codec"),
    }
}

/// Walks the ops of a payload, moving every byte to or from its stream.
fn route<R: Route>(r: &mut R, ps: usize, bs: usize) -> Result<(), &'static str> {
    let nblocks = ps / bs;
    while r.more() {
        let tag = r.byte(Stream::Ctrl)?;
        let (rel, _) = varint(r, Stream::Ctrl)?; // page address
        r.op(tag & 15, rel);
        let codec = tag >> 4;
        match tag & 15 {
            op::ZERO => {}
            op::RAW => r.bytes(Stream::Literals, ps)?,
            op::COMPRESSED => coded_body(r, codec, ps)?,
            op::DELTA => {
                let len = body_len(r, ps)?;
                delta_body(r, len)?;
            }
            op::DICT => {
                let len = body_len(r, ps)?;
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
                        c => coded_body(r, c, ps)?,
                    }
                }
            }
            _ => return Err("unknown op kind"),
        }
    }
    Ok(())
}

/// Splits payloads and codes their streams; keeps its buffer (as long as the longest payload)
/// from frame to frame.
#[derive(Debug, Default)]
pub struct EntropyEncoder {
    streams: Vec<u8>,
    /// The context of each literal stream byte (when contexts are given).
    ctx: Vec<u16>,
    /// The literal model (context counts and tables).
    model: context::Model,
    /// Whether the last `encode` was given literal contexts that did not match its payload.
    ctx_mismatch: bool,
}

/// Fewer literals than this are not worth a context model (its tables and clustering time).
const MIN_CONTEXT_LITERALS: usize = 4096;

impl EntropyEncoder {
    /// Whether the last [`encode`](Self::encode) was given literal contexts whose count did not
    /// match its payload's lz4 literals (and so coded the literals with one table): the
    /// encoder's own contexts always match (checked in its debug builds).
    pub(crate) fn contexts_mismatched(&self) -> bool {
        self.ctx_mismatch
    }

    /// Appends the entropy-coded form of `payload` (the ops of a frame with page size `ps` and
    /// block size `bs`) to `out`. Fails only on a payload that is not a valid sequence of ops.
    ///
    /// `lit_ctx`, when given, holds the context of every literal of the payload's lz4 blocks in
    /// payload order ([`context::lz4_literal_contexts`] of each block); the literal stream is
    /// then context modelled when that is smaller. Without it, or when it does not match the
    /// payload's lz4 literals, the literal stream is coded with one table.
    pub fn encode(
        &mut self,
        payload: &[u8],
        ps: usize,
        bs: usize,
        lit_ctx: Option<&[u16]>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let mut count = Split {
            src: payload,
            pos: 0,
            at: [0; STREAMS],
            out: None,
            counts: [[0; 256]; 3],
            ctx_in: &[],
            ctx_pos: 0,
            ctx_out: None,
        };
        route(&mut count, ps, bs)?;
        let n_lits = count.at[Stream::Literals as usize];
        self.ctx_mismatch = lit_ctx.is_some_and(|c| c.len() != count.ctx_pos);
        let lit_ctx =
            lit_ctx.filter(|c| c.len() == count.ctx_pos && n_lits >= MIN_CONTEXT_LITERALS);
        let mut start = [0usize; STREAMS + 1];
        for s in 0..STREAMS {
            start[s + 1] = start[s] + count.at[s] + GAP;
        }
        if self.streams.len() < start[STREAMS] {
            self.streams.resize(start[STREAMS], 0);
        }
        if lit_ctx.is_some() && self.ctx.len() < n_lits {
            self.ctx.resize(n_lits, 0);
        }
        let mut split = Split {
            src: payload,
            pos: 0,
            at: std::array::from_fn(|s| start[s]),
            out: Some(&mut self.streams[..]),
            counts: [[0; 256]; 3],
            ctx_in: lit_ctx.unwrap_or(&[]),
            ctx_pos: 0,
            ctx_out: lit_ctx.map(|_| (&mut self.ctx[..], start[Stream::Literals as usize])),
        };
        route(&mut split, ps, bs)?;
        let counts = split.counts;
        for s in 0..STREAMS {
            let stream = &self.streams[start[s]..start[s + 1] - GAP];
            let counts = match s {
                1 => counts[0],
                3 => counts[1],
                4 => counts[2],
                _ => huffman::histogram(stream),
            };
            debug_assert!(counts == huffman::histogram(stream), "stream {s}");
            let n = stream.len();
            if s == Stream::Literals as usize && lit_ctx.is_some() {
                let by = context::Contexts::Given(&self.ctx[..n]);
                write_context_stream(stream, by, &counts, &mut self.model, out);
            } else if n >= MIN_CONTEXT_LITERALS
                && (s == Stream::Tokens as usize || s == Stream::OffsetLow as usize)
            {
                // tokens, low offset bytes: the stream's previous byte
                let by = context::Contexts::Previous;
                write_context_stream(stream, by, &counts, &mut self.model, out);
            } else if n >= MIN_CONTEXT_LITERALS && s == Stream::OffsetHigh as usize {
                // high offset bytes: the low byte of the offset
                let lo = start[Stream::OffsetLow as usize];
                let by = context::Contexts::Beside(&self.streams[lo..lo + n]);
                write_context_stream(stream, by, &counts, &mut self.model, out);
            } else {
                write_stream(stream, &counts, out);
            }
        }
        Ok(())
    }

    /// Bytes of buffers held.
    pub fn memory_bytes(&self) -> usize {
        self.streams.capacity() + 2 * self.ctx.capacity() + self.model.memory_bytes()
    }
}

/// A stream whose bytes have contexts (`ctx[i]` for `s[i]`): context modelled when that beats
/// [`write_stream`]'s choice.
fn write_context_stream(
    s: &[u8],
    ctx: context::Contexts<'_>,
    counts: &[u32; 256],
    model: &mut context::Model,
    out: &mut Vec<u8>,
) {
    model.count_by(s, ctx);
    model.cluster(context::tables_for(s.len()));
    let coded = model.bits.div_ceil(8) as usize;
    let with_ctx = 1 + model.tables_len() + varint::len(coded as u64) + coded;
    if with_ctx >= stream_len(s.len(), counts) {
        return write_stream(s, counts, out);
    }
    out.push(MODE_CONTEXT);
    varint::put(out, s.len() as u64);
    model.put_tables(out);
    varint::put(out, coded as u64);
    model.put_bits_by(s, ctx, coded, out);
}

/// Bytes [`write_stream`] writes for a stream of `n` bytes with these counts, less its length
/// varint.
fn stream_len(n: usize, counts: &[u32; 256]) -> usize {
    let lens = huffman::code_lengths(counts);
    let coded = huffman::coded_bits(counts, &lens).div_ceil(8) as usize;
    let k = lens.iter().filter(|&&l| l > 0).count();
    let table = TABLE_BYTES.min(listed_table_len(k));
    let huff = 1 + table + varint::len(coded as u64) + coded;
    if n > 0 && huff < 1 + n {
        huff
    } else {
        1 + n
    }
}

/// One stream, with the counts of its byte values: Huffman coded when that is smaller, else
/// stored.
fn write_stream(s: &[u8], counts: &[u32; 256], out: &mut Vec<u8>) {
    let lens = huffman::code_lengths(counts);
    let coded = huffman::coded_bits(counts, &lens).div_ceil(8) as usize;
    let k = lens.iter().filter(|&&l| l > 0).count();
    let table = TABLE_BYTES.min(listed_table_len(k));
    if !s.is_empty() && table + varint::len(coded as u64) + coded < s.len() {
        out.push(0); // the mode, set below
        let mode_at = out.len() - 1;
        varint::put(out, s.len() as u64);
        if table == TABLE_BYTES {
            out[mode_at] = MODE_HUFFMAN;
            out.extend_from_slice(&huffman::pack_lengths(&lens));
        } else {
            out[mode_at] = MODE_HUFFMAN_LISTED;
            put_listed(&lens, out);
        }
        varint::put(out, coded as u64);
        // every byte of `s` has a code: the lengths are of its own counts
        huffman::encode_exact(s, &lens, coded, out);
    } else {
        out.push(MODE_STORED);
        varint::put(out, s.len() as u64);
        out.extend_from_slice(s);
    }
}

/// Why an entropy-coded payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntropyError {
    /// The stream headers are malformed or their lengths do not fit the payload.
    Container(&'static str),
    /// A stream's code table or coded bits are invalid.
    Huffman(HuffmanError),
    /// The streams do not form a payload of whole ops.
    Streams(&'static str),
}

impl std::fmt::Display for EntropyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntropyError::Container(w) => write!(f, "entropy container: {w}"),
            EntropyError::Huffman(e) => write!(f, "entropy stream: {e}"),
            EntropyError::Streams(w) => write!(f, "entropy streams: {w}"),
        }
    }
}

/// Rebuilds payloads from entropy-coded ones; keeps its buffers from frame to frame.
pub struct EntropyDecoder {
    decoded: Vec<u8>,
    /// Tables of each context-modelled stream (tokens, literals, low and high offset bytes).
    ctx: [context::ContextTables; STREAMS],
    /// A dictionary page followed by the output of the lz4 block being joined (context mode).
    window: Vec<u8>,
    /// One decoding table per stream (two streams are decoded at once).
    huff: Vec<huffman::Decoder>,
}

impl Default for EntropyDecoder {
    fn default() -> Self {
        let mut lens = [0u8; 256];
        lens[0] = 1;
        EntropyDecoder {
            decoded: Vec::new(),
            ctx: Default::default(),
            window: Vec::new(),
            huff: (0..STREAMS)
                .map(|_| huffman::Decoder::new(&lens).expect("a valid one-symbol code"))
                .collect(),
        }
    }
}

impl std::fmt::Debug for EntropyDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntropyDecoder")
            .field("decoded", &self.decoded.len())
            .finish()
    }
}

/// Where a stream's bytes are: stored in the container, or Huffman coded.
#[derive(Clone, Copy, Default)]
struct StreamAt {
    huffman: bool,
    context: bool,
    listed: bool,
    len: usize,
    table: usize,
    data: usize,
    data_len: usize,
}

impl EntropyDecoder {
    /// Replaces `payload` with the payload that `coded` (an entropy-coded payload of a frame with
    /// page size `ps` and block size `bs`) stands for. Checks every stream header against the
    /// bytes present before allocating, and at most [`MAX_PLAIN_BYTES`] in all.
    ///
    /// A context-modelled literal stream needs the dictionary of each DICT op: `load(page, buf)`
    /// copies the backup's current content of page number `page` into `buf` (one page) and
    /// returns true, or returns false when it has no such page (zeros are used; the frame is
    /// then refused when its ops are checked).
    pub fn decode(
        &mut self,
        coded: &[u8],
        ps: usize,
        bs: usize,
        payload: &mut Vec<u8>,
        load: &mut dyn FnMut(u64, &mut [u8]) -> bool,
    ) -> Result<(), EntropyError> {
        use EntropyError::Container;
        let mut at = [StreamAt::default(); STREAMS];
        let mut pos = 0usize;
        let mut total = 0usize;
        for (si, a) in at.iter_mut().enumerate() {
            let mode = *coded
                .get(pos)
                .ok_or(Container("ends inside a stream header"))?;
            pos += 1;
            let n = varint::get(coded, &mut pos).ok_or(Container("bad stream length"))?;
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= MAX_PLAIN_BYTES)
                .ok_or(Container("stream longer than the limit"))?;
            a.len = n;
            match mode {
                MODE_STORED => {
                    if n > coded.len() - pos {
                        return Err(Container("stored stream runs past the payload"));
                    }
                    (a.data, a.data_len) = (pos, n);
                    pos += n;
                }
                MODE_HUFFMAN | MODE_HUFFMAN_LISTED => {
                    a.table = pos;
                    if mode == MODE_HUFFMAN {
                        if TABLE_BYTES > coded.len() - pos {
                            return Err(Container("code table runs past the payload"));
                        }
                        pos += TABLE_BYTES;
                    } else {
                        a.listed = true;
                        pos += get_listed(coded, pos)?.1;
                    }
                    let m = varint::get(coded, &mut pos).ok_or(Container("bad coded length"))?;
                    if m > (coded.len() - pos) as u64 {
                        return Err(Container("coded stream runs past the payload"));
                    }
                    let m = m as usize;
                    if n == 0 || n as u64 > 8 * m as u64 {
                        return Err(Container("coded length does not fit the stream length"));
                    }
                    (a.huffman, a.data, a.data_len) = (true, pos, m);
                    pos += m;
                }
                MODE_CONTEXT
                    if [
                        Stream::Tokens,
                        Stream::Literals,
                        Stream::OffsetLow,
                        Stream::OffsetHigh,
                    ]
                    .iter()
                    .any(|&s| s as usize == si) =>
                {
                    if n == 0 {
                        return Err(Container("an empty stream that is not stored"));
                    }
                    self.ctx[si].read(coded, &mut pos)?;
                    let m = varint::get(coded, &mut pos).ok_or(Container("bad coded length"))?;
                    if m > (coded.len() - pos) as u64 {
                        return Err(Container("coded stream runs past the payload"));
                    }
                    let m = m as usize;
                    if n as u64 > 8 * m as u64 {
                        return Err(Container("coded length does not fit the stream length"));
                    }
                    (a.context, a.data, a.data_len) = (true, pos, m);
                    pos += m;
                }
                _ => return Err(Container("unknown stream mode")),
            }
            total += n;
            if total > MAX_PLAIN_BYTES {
                return Err(Container("payload longer than the limit"));
            }
        }
        if pos != coded.len() {
            return Err(Container("bytes after the last stream"));
        }
        // Huffman streams, and context-modelled tokens and offset bytes (each after one leading
        // byte: the first byte's context), are decoded into one buffer; stored streams are read
        // where they are, context-modelled literals as the payload is rebuilt
        let (tk, lo, hi) = (
            Stream::Tokens as usize,
            Stream::OffsetLow as usize,
            Stream::OffsetHigh as usize,
        );
        let mut slot = [0usize; STREAMS];
        let mut coded_total = 0usize;
        for (i, a) in at.iter().enumerate() {
            slot[i] = coded_total;
            if a.huffman {
                coded_total += a.len;
            } else if a.context && i != Stream::Literals as usize {
                coded_total += a.len + 1;
            }
        }
        if self.decoded.len() < coded_total {
            self.decoded.resize(coded_total, 0);
        }
        // each Huffman stream's table, and where its symbols go in `decoded`
        let mut jobs: [(usize, usize); STREAMS] = [(0, 0); STREAMS]; // (stream, start)
        let mut njobs = 0;
        for (i, a) in at.iter().enumerate().filter(|(_, a)| a.huffman) {
            let lens = if a.listed {
                get_listed(coded, a.table)?.0
            } else {
                let table: &[u8; TABLE_BYTES] =
                    coded[a.table..a.table + TABLE_BYTES].try_into().unwrap();
                huffman::unpack_lengths(table)
            };
            self.huff[i].set(&lens).map_err(EntropyError::Huffman)?;
            jobs[njobs] = (i, slot[i]);
            njobs += 1;
        }
        // decode two streams at a time, the longest with the next longest
        let jobs = &mut jobs[..njobs];
        jobs.sort_unstable_by_key(|&(i, _)| std::cmp::Reverse(at[i].len));
        for pair in jobs.chunks(2) {
            let (i, si) = pair[0];
            let ai = at[i];
            let src_i = &coded[ai.data..ai.data + ai.data_len];
            let r = match pair.get(1) {
                None => self.huff[i].decode(src_i, &mut self.decoded[si..si + ai.len]),
                Some(&(j, sj)) => {
                    let aj = at[j];
                    let src_j = &coded[aj.data..aj.data + aj.data_len];
                    // disjoint regions of `decoded`
                    let (out_i, out_j) = if si < sj {
                        let (lo, hi) = self.decoded.split_at_mut(sj);
                        (&mut lo[si..si + ai.len], &mut hi[..aj.len])
                    } else {
                        let (lo, hi) = self.decoded.split_at_mut(si);
                        (&mut hi[..ai.len], &mut lo[sj..sj + aj.len])
                    };
                    let (ri, rj) = huffman::decode_pair(
                        (&self.huff[i], src_i, out_i),
                        (&self.huff[j], src_j, out_j),
                    );
                    ri.and(rj)
                }
            };
            r.map_err(EntropyError::Huffman)?;
        }
        // context-modelled tokens and low offset bytes (each in the context of the byte before)
        for s in [tk, lo] {
            let a = at[s];
            if !a.context {
                continue;
            }
            let buf = &mut self.decoded[slot[s]..slot[s] + a.len + 1];
            buf[0] = 0;
            let mut r =
                context::LiteralReader::new(&self.ctx[s], &coded[a.data..][..a.data_len], a.len);
            r.run(buf, 1, a.len, Some(1))
                .and_then(|()| r.finish())
                .map_err(EntropyError::Streams)?;
        }
        // where each stream's bytes are (literals in context mode: read by the join itself)
        let place = |i: usize| -> (bool, usize, usize) {
            let a = at[i];
            if a.huffman {
                (true, slot[i], a.len)
            } else if a.context && i != Stream::Literals as usize {
                (true, slot[i] + 1, a.len)
            } else {
                (false, a.data, a.data_len)
            }
        };
        // context-modelled high offset bytes (each in the context of its low byte)
        if at[hi].context {
            let a = at[hi];
            let (head, tail) = self.decoded.split_at_mut(slot[hi]);
            let low = match place(lo) {
                (true, from, n) => &head[from..from + n],
                (false, from, n) => &coded[from..from + n],
            };
            if low.len() != a.len {
                return Err(EntropyError::Streams("the offset streams differ in length"));
            }
            let mut r =
                context::LiteralReader::new(&self.ctx[hi], &coded[a.data..][..a.data_len], a.len);
            r.run_by(low, &mut tail[1..1 + a.len])
                .and_then(|()| r.finish())
                .map_err(EntropyError::Streams)?;
        }
        let decoded = &self.decoded;
        let streams: [&[u8]; STREAMS] = std::array::from_fn(|i| match place(i) {
            (true, from, n) => &decoded[from..from + n],
            (false, from, n) => &coded[from..from + n],
        });
        // the payload is exactly as long as the streams together (checked: every stream read to
        // its end)
        payload.clear();
        payload.resize(total, 0);
        let j = Join {
            streams,
            pos: [0; STREAMS],
            out: payload,
            o: 0,
        };
        let lits = at[Stream::Literals as usize];
        let j = if lits.context {
            // literals are decoded as the ops are joined, each with its context
            self.window.resize(2 * ps, 0);
            let mut cj = CtxJoin {
                join: j,
                lits: context::LiteralReader::new(
                    &self.ctx[Stream::Literals as usize],
                    &coded[lits.data..lits.data + lits.data_len],
                    lits.len,
                ),
                load,
                window: &mut self.window,
                ps,
                prev: u64::MAX,
                kind: 0,
            };
            route(&mut cj, ps, bs).map_err(EntropyError::Streams)?;
            cj.lits.finish().map_err(EntropyError::Streams)?;
            cj.join
        } else {
            let mut j = j;
            route(&mut j, ps, bs).map_err(EntropyError::Streams)?;
            j
        };
        debug_assert!(j.o <= total);
        if j.pos
            .iter()
            .zip(&j.streams)
            .enumerate()
            .any(|(i, (&p, s))| p != s.len() && !(i == Stream::Literals as usize && lits.context))
        {
            return Err(EntropyError::Streams(
                "bytes left in a stream after the last op",
            ));
        }
        Ok(())
    }

    /// Bytes of buffers held.
    pub fn memory_bytes(&self) -> usize {
        self.decoded.capacity()
            + STREAMS * 2 * (1 << huffman::MAX_BITS)
            + self.ctx.iter().map(|c| c.memory_bytes()).sum::<usize>()
            + self.window.capacity()
    }
}

#[cfg(test)]
mod tests;
