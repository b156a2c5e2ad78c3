//! Decoding a context-modelled stream: [`LiteralReader`], a byte at a time (each with the table
//! of its context) or in runs, from one bit string or (literals, format version 5) from two read
//! alternately.

use super::{ContextTables, NO_CONTEXT};
use crate::entropy::huffman;

/// Reads context-modelled literals one at a time, each with the table of its context; refuses
/// bits that are no code, more literals than the stream declared, and reading past the bits.
pub struct LiteralReader<'a> {
    tables: &'a ContextTables,
    src: &'a [u8],
    bitpos: u64,
    left: usize,
    /// In two strings: the second (`src` the first), and the bit position in it.
    second: Option<(&'a [u8], u64)>,
    /// In two strings: the next literal is the second string's.
    turn: bool,
}

impl<'a> LiteralReader<'a> {
    /// A reader of `n` literals coded in `src` with `tables`.
    pub fn new(tables: &'a ContextTables, src: &'a [u8], n: usize) -> Self {
        LiteralReader {
            tables,
            src,
            bitpos: 0,
            left: n,
            second: None,
            turn: false,
        }
    }

    /// A reader of `n` literals coded in two strings, `src[..first]` (the literals at even
    /// positions) and `src[first..]` (at odd positions); `first == 0`: one string, as
    /// [`new`](Self::new).
    pub fn new_pair(tables: &'a ContextTables, src: &'a [u8], first: usize, n: usize) -> Self {
        let mut r = LiteralReader::new(tables, src, n);
        if first > 0 && first <= src.len() {
            r.src = &src[..first];
            r.second = Some((&src[first..], 0));
        }
        r
    }

    /// The next literal, whose context is `ctx` (below [`CONTEXTS`](super::CONTEXTS)).
    #[inline]
    pub fn next(&mut self, ctx: u16) -> Result<u8, &'static str> {
        if self.left == 0 {
            return Err("more literals than the literal stream holds");
        }
        self.left -= 1;
        // the string whose turn it is
        let (src, pos) = match self.second.as_mut() {
            Some((second, pos)) if self.turn => (*second, pos),
            _ => (self.src, &mut self.bitpos),
        };
        let b = code(self.tables, ctx as usize, &mut bits_at(src, *pos), pos)?;
        if *pos > src.len() as u64 * 8 {
            return Err("literal bits run past their stream");
        }
        self.turn = self.second.is_some() && !self.turn;
        Ok(b)
    }

    /// Decodes `n` literals into `win[at..at + n]`, the context of each being the byte `d`
    /// before it in `win` (`d` at most `at`), or [`NO_CONTEXT`] without `d`.
    pub fn run(
        &mut self,
        win: &mut [u8],
        at: usize,
        n: usize,
        d: Option<usize>,
    ) -> Result<(), &'static str> {
        if n > self.left {
            return Err("more literals than the literal stream holds");
        }
        if at + n > win.len() || d.is_some_and(|d| d == 0 || d > at) {
            return Err("literals past their window");
        }
        if self.second.is_some() {
            return self.run_pair(win, at, n, d);
        }
        let t = self.tables;
        let src = self.src;
        let mut bitpos = self.bitpos;
        let (mut q, end) = (at, at + n);
        if d == Some(1) {
            // each byte in the context of the one before: kept in a register
            let mut prev = win[at - 1] as usize;
            while q < end {
                let mut w = bits_at(src, bitpos);
                let stop = end.min(q + 5);
                while q < stop {
                    let b = code(t, prev, &mut w, &mut bitpos)?;
                    prev = b as usize;
                    win[q] = b;
                    q += 1;
                }
            }
        }
        while q < end {
            // one load serves five codes (at least 57 of its bits are the stream's)
            let mut w = bits_at(src, bitpos);
            let stop = end.min(q + 5);
            while q < stop {
                let ctx = match d {
                    Some(d) => win[q - d] as usize,
                    None => NO_CONTEXT as usize,
                };
                win[q] = code(t, ctx, &mut w, &mut bitpos)?;
                q += 1;
            }
        }
        if bitpos > src.len() as u64 * 8 {
            return Err("literal bits run past their stream");
        }
        self.bitpos = bitpos;
        self.left -= n;
        Ok(())
    }

    /// Decodes two streams whose bytes each have the stream's previous byte as context, side by
    /// side: `a.1[1..]` from `a.0` and `b.1[1..]` from `b.0`, each exactly as
    /// [`run`](Self::run)`(buf, 1, buf.len() - 1, Some(1))` decodes it alone (the same bytes, the
    /// same checks and errors), `buf[0]` being the context of the first byte; and with them,
    /// when given, a third stream `c.1` whose byte `i` has `b.1[1 + i]` as context, exactly as
    /// [`run_by`](Self::run_by)`(&b.1[1..], c.1)` decodes it once `b` is decoded (the lz4
    /// tokens, low and high offset bytes). One stream alone waits at each byte for its table
    /// lookup (two for the previous-byte streams: the context's table, then the entry); the
    /// chains of the three overlap. Returns the three results (`Ok` for a `c` not given).
    pub fn run_side_by_side(
        a: (&mut LiteralReader<'_>, &mut [u8]),
        b: (&mut LiteralReader<'_>, &mut [u8]),
        mut c: Option<(&mut LiteralReader<'_>, &mut [u8])>,
    ) -> [Result<(), &'static str>; 3] {
        let ((ra, wa), (rb, wb)) = (a, b);
        let (ea, eb) = (wa.len().saturating_sub(1), wb.len().saturating_sub(1));
        // side by side while each has five bytes to go; what is wrong (more bytes than a
        // stream holds, bits that are no code, a third stream of another length) is left to
        // the lone decodes, which find it where each stream alone would
        let (mut qa, mut qb, mut qc) = (1usize, 1usize, 0usize);
        let single = ra.second.is_none()
            && rb.second.is_none()
            && c.as_ref().is_none_or(|(rc, _)| rc.second.is_none());
        if single && ea <= ra.left && eb <= rb.left && ea > 0 && eb > 0 {
            let (ta, tb, sa, sb) = (ra.tables, rb.tables, ra.src, rb.src);
            let (mut pa, mut pb) = (ra.bitpos, rb.bitpos);
            let (mut ca, mut cb) = (wa[0] as usize, wb[0] as usize);
            match c.as_mut() {
                Some((rc, wc)) if wc.len() == eb && eb <= rc.left => {
                    let (tc, sc) = (rc.tables, rc.src);
                    let mut pc = rc.bitpos;
                    'three: while qa + 5 <= ea + 1 && qb + 5 <= eb + 1 {
                        let (mut xa, mut xb) = (bits_at(sa, pa), bits_at(sb, pb));
                        let mut xc = bits_at(sc, pc);
                        for _ in 0..5 {
                            let (ya, yb) = (ta.entry(ca, xa), tb.entry(cb, xb));
                            let (la, lb) = (ya & 0xff, yb & 0xff);
                            // the third stream's byte, in the context of `b`'s byte
                            let yc = tc.entry((yb >> 8) as usize, xc);
                            let lc = yc & 0xff;
                            if la == 0 || lb == 0 || lc == 0 {
                                break 'three;
                            }
                            (xa, xb, xc) = (xa >> la, xb >> lb, xc >> lc);
                            (pa, pb, pc) = (pa + la as u64, pb + lb as u64, pc + lc as u64);
                            (ca, cb) = ((ya >> 8) as usize, (yb >> 8) as usize);
                            wa[qa] = ca as u8;
                            wb[qb] = cb as u8;
                            wc[qc] = (yc >> 8) as u8;
                            qa += 1;
                            qb += 1;
                            qc += 1;
                        }
                    }
                    rc.bitpos = pc;
                    rc.left -= qc;
                }
                _ => {
                    'two: while qa + 5 <= ea + 1 && qb + 5 <= eb + 1 {
                        let (mut xa, mut xb) = (bits_at(sa, pa), bits_at(sb, pb));
                        for _ in 0..5 {
                            let (ya, yb) = (ta.entry(ca, xa), tb.entry(cb, xb));
                            let (la, lb) = (ya & 0xff, yb & 0xff);
                            if la == 0 || lb == 0 {
                                break 'two;
                            }
                            (xa, xb) = (xa >> la, xb >> lb);
                            (pa, pb) = (pa + la as u64, pb + lb as u64);
                            (ca, cb) = ((ya >> 8) as usize, (yb >> 8) as usize);
                            wa[qa] = ca as u8;
                            wb[qb] = cb as u8;
                            qa += 1;
                            qb += 1;
                        }
                    }
                }
            }
            (ra.bitpos, rb.bitpos) = (pa, pb);
            ra.left -= qa - 1;
            rb.left -= qb - 1;
        }
        let x = ra.run(wa, qa, (ea + 1).saturating_sub(qa), Some(1));
        let y = rb.run(wb, qb, (eb + 1).saturating_sub(qb), Some(1));
        let z = match c {
            // its contexts are `b`'s bytes: meaningful only once `b` decoded
            Some((rc, wc)) if y.is_ok() => {
                let from = qc.min(wc.len());
                rc.run_by(wb.get(1 + from..).unwrap_or(&[]), &mut wc[from..])
            }
            _ => Ok(()),
        };
        [x, y, z]
    }

    /// Decodes `dst.len()` bytes into `dst`, the context of `dst[i]` being `ctx[i]` (as long as
    /// `dst`).
    pub fn run_by(&mut self, ctx: &[u8], dst: &mut [u8]) -> Result<(), &'static str> {
        if ctx.len() != dst.len() {
            return Err("a context stream of another length");
        }
        self.decode_into(dst, |i| ctx[i] as usize)
    }

    /// Decodes `dst.len()` literals of context [`NO_CONTEXT`] into `dst`.
    pub fn run_plain(&mut self, dst: &mut [u8]) -> Result<(), &'static str> {
        self.decode_into(dst, |_| NO_CONTEXT as usize)
    }

    /// [`run`](Self::run) for literals in two strings.
    #[inline(never)]
    fn run_pair(
        &mut self,
        win: &mut [u8],
        at: usize,
        n: usize,
        d: Option<usize>,
    ) -> Result<(), &'static str> {
        match d {
            Some(d) => self.pair_into(win, at, n, |win, q| win[q - d] as usize),
            None => self.pair_into(win, at, n, |_, _| NO_CONTEXT as usize),
        }
    }

    /// Decodes `n` literals in two strings into `out[at..at + n]`, the context of the one at `q`
    /// being `ctx(out, q)` (which may read the bytes before `q`): the two strings' codes are
    /// looked up alternately, so the lookups of one overlap those of the other.
    #[inline(always)]
    fn pair_into(
        &mut self,
        out: &mut [u8],
        at: usize,
        n: usize,
        ctx: impl Fn(&[u8], usize) -> usize,
    ) -> Result<(), &'static str> {
        let t = self.tables;
        let Some((sb, pb)) = self.second else {
            unreachable!("a reader in two strings")
        };
        // x: the string whose turn it is, y: the other
        let ((sx, mut px), (sy, mut py)) = if self.turn {
            ((sb, pb), (self.src, self.bitpos))
        } else {
            ((self.src, self.bitpos), (sb, pb))
        };
        let (mut q, end) = (at, at + n);
        while end - q >= 2 {
            // one load of each string serves five codes of each
            let (mut wx, mut wy) = (bits_at(sx, px), bits_at(sy, py));
            let stop = q + 2 * ((end - q) / 2).min(5);
            while q < stop {
                out[q] = code(t, ctx(out, q), &mut wx, &mut px)?;
                out[q + 1] = code(t, ctx(out, q + 1), &mut wy, &mut py)?;
                q += 2;
            }
        }
        let odd = q < end;
        if odd {
            out[q] = code(t, ctx(out, q), &mut bits_at(sx, px), &mut px)?;
        }
        if px > sx.len() as u64 * 8 || py > sy.len() as u64 * 8 {
            return Err("literal bits run past their stream");
        }
        let ((pa, pb2), turn) = if self.turn {
            ((py, px), !odd)
        } else {
            ((px, py), odd)
        };
        self.bitpos = pa;
        self.second = Some((sb, pb2));
        self.turn = turn;
        self.left -= n;
        Ok(())
    }

    /// Decodes `dst.len()` bytes into `dst`, the context of `dst[i]` being `ctx(i)`, known before
    /// any byte is decoded.
    #[inline(always)]
    fn decode_into(
        &mut self,
        dst: &mut [u8],
        ctx: impl Fn(usize) -> usize,
    ) -> Result<(), &'static str> {
        if dst.len() > self.left {
            return Err("more literals than the literal stream holds");
        }
        if self.second.is_some() {
            let n = dst.len();
            return self.pair_into(dst, 0, n, |_, i| ctx(i));
        }
        let t = self.tables;
        let src = self.src;
        let mut bitpos = self.bitpos;
        for (k, five) in dst.chunks_mut(5).enumerate() {
            // one load serves five codes (at least 57 of its bits are the stream's)
            let mut w = bits_at(src, bitpos);
            for (i, o) in five.iter_mut().enumerate() {
                *o = code(t, ctx(5 * k + i), &mut w, &mut bitpos)?;
            }
        }
        if bitpos > src.len() as u64 * 8 {
            return Err("literal bits run past their stream");
        }
        self.bitpos = bitpos;
        self.left -= dst.len();
        Ok(())
    }

    /// Checks that every literal was read and the bits end there (zero padding, no extra byte).
    pub fn finish(&self) -> Result<(), &'static str> {
        if self.left != 0 {
            return Err("bytes left in a stream after the last op");
        }
        ends_at(self.src, self.bitpos)?;
        match self.second {
            Some((sb, pb)) => ends_at(sb, pb),
            None => Ok(()),
        }
    }
}

/// Checks that the bits of `src` end at bit `bitpos` (zero padding, no extra byte).
fn ends_at(src: &[u8], bitpos: u64) -> Result<(), &'static str> {
    if bitpos.div_ceil(8) != src.len() as u64 {
        return Err("literal bits do not end with the last literal");
    }
    if !bitpos.is_multiple_of(8) && src[src.len() - 1] >> (bitpos % 8) != 0 {
        return Err("non-zero padding after the last literal");
    }
    Ok(())
}

/// The byte of the code at the bottom of the bit window `w`, looked up in context `ctx`'s table;
/// `w` and the bit position `pos` then move past the code.
#[inline(always)]
fn code(t: &ContextTables, ctx: usize, w: &mut u64, pos: &mut u64) -> Result<u8, &'static str> {
    let e = t.entry(ctx, *w);
    let l = e & 0xff;
    if l == 0 {
        return Err("literal bits that are no code");
    }
    *w >>= l;
    *pos += l as u64;
    Ok((e >> 8) as u8)
}

/// 64 bits of `src` from bit `bitpos` on (zeros past its end).
#[inline(always)]
fn bits_at(src: &[u8], bitpos: u64) -> u64 {
    let byte = (bitpos / 8) as usize;
    match src.get(byte..byte + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().expect("8 bytes")) >> (bitpos % 8),
        None => huffman::peek(src, bitpos),
    }
}
