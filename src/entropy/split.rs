//! Payload → streams: the encoder's side of the [`route`](super::route::route) walk.

use super::context;
use super::route::{Route, BAD_LZ4};
use super::{Stream, STREAMS};

/// Payload → streams, in two passes: `out` is `None` while the streams' lengths are counted
/// (into `at`) and the payload is checked, then the bytes are moved into one buffer where stream
/// `s` starts at `at[s]` (the moving pass relies on the payload having passed the counting one).
pub(super) struct Split<'a> {
    pub(super) src: &'a [u8],
    pub(super) pos: usize,
    pub(super) at: [usize; STREAMS],
    pub(super) out: Option<&'a mut [u8]>,
    /// The contexts of the lz4 blocks' literals, in payload order (see [`context`]).
    pub(super) ctx_in: &'a [u16],
    /// How many of `ctx_in` were used (counting pass: how many lz4 literals there are).
    pub(super) ctx_pos: usize,
    /// While moving, with contexts: the context of each literal stream byte, and where the
    /// literal stream starts in `out`.
    pub(super) ctx_out: Option<(&'a mut [u16], usize)>,
}

impl<'a> Split<'a> {
    /// The counting pass over `src`: each stream's length into `at`, the payload checked,
    /// nothing moved and no contexts.
    pub(super) fn counting(src: &'a [u8]) -> Split<'a> {
        Split {
            src,
            pos: 0,
            at: [0; STREAMS],
            out: None,
            ctx_in: &[],
            ctx_pos: 0,
            ctx_out: None,
        }
    }

    /// The moving pass over `src` (which passed the counting one) without contexts: stream `s`
    /// written to `out` from `at[s]` on. (The encoder's moving pass carries contexts.)
    #[cfg(test)]
    pub(super) fn moving(src: &'a [u8], at: [usize; STREAMS], out: &'a mut [u8]) -> Split<'a> {
        Split {
            out: Some(out),
            at,
            ..Split::counting(src)
        }
    }
}

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
    /// The same moves as [`lz4_body`](super::route::lz4_body), over the block as one slice: lz4
    /// blocks are most of a payload, and splitting is on the encoder's path.
    /// `tests::split_lz4_equals_generic_route` checks it against the generic walk.
    fn lz4(&mut self, len: usize) -> Result<(), &'static str> {
        let end = self.pos.checked_add(len).ok_or("length overflows")?;
        let body = self
            .src
            .get(self.pos..end)
            .ok_or("op runs past the payload")?;
        let lits_before = self.at[Stream::Literals as usize];
        match &mut self.out {
            None => count_lz4(body, &mut self.at)?,
            Some(out) => split_lz4(body, &self.src[self.pos..], &mut self.at, out),
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

/// Counts the bytes an lz4 block gives each stream, checking the block as
/// [`lz4_body`](super::route::lz4_body) does.
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
fn split_lz4(body: &[u8], wild: &[u8], at: &mut [usize; STREAMS], out: &mut [u8]) {
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
pub(super) const GAP: usize = 16;
