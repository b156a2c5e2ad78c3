//! Coding a context-modelled stream's bytes, each with the table of its context.

use super::contexts::{Beside, ContextAt, Contexts, Given, Previous};
use super::{Model, CONTEXTS};
use crate::entropy::huffman;
use crate::format::varint;

impl Model {
    /// Appends `lits` coded with the table of each one's context (`ctx[i]` for `lits[i]`): exactly
    /// `bytes` bytes, `c.bits` bits padded with zero bits. Every literal must have a code in its
    /// table (the tables were built from these literals' counts).
    pub fn put_bits(&mut self, lits: &[u8], ctx: &[u16], bytes: usize, out: &mut Vec<u8>) {
        self.put_bits_by(lits, Contexts::Given(ctx), bytes, out);
    }

    /// [`put_bits`](Self::put_bits) with the contexts taken from `ctx`.
    ///
    /// # Panics
    /// If `ctx` gives fewer contexts than `s` has bytes.
    pub fn put_bits_by(&mut self, s: &[u8], ctx: Contexts<'_>, bytes: usize, out: &mut Vec<u8>) {
        ctx.check(s);
        self.fill_codes();
        let start = out.len();
        out.resize(start + bytes + 8, 0);
        let buf = &mut out[start..];
        let (codes, map) = (&self.codes[..], &self.map);
        let pos = match ctx {
            Contexts::Given(c) => put_with(codes, map, s.len(), Whole(s, Given(c)), buf),
            Contexts::Previous => put_with(codes, map, s.len(), Whole(s, Previous(s)), buf),
            Contexts::Beside(o) => put_with(codes, map, s.len(), Whole(s, Beside(o)), buf),
        };
        debug_assert_eq!(pos, bytes, "coded length");
        out.truncate(start + pos);
    }

    /// Per table and byte value: code << 8 | length.
    fn fill_codes(&mut self) {
        self.codes.clear();
        self.codes.extend(self.tables.iter().map(|t| {
            let codes = huffman::canonical_codes(t);
            std::array::from_fn(|s| (codes[s] as u32) << 8 | t[s] as u32)
        }));
    }

    /// Codes `s` (contexts `ctx[i]`) in two bit strings, the bytes at even positions in the
    /// first and those at odd positions in the second, each padded with zero bits to a byte;
    /// appends the first string's length in bytes (a varint), both strings' length (a varint)
    /// and the two strings. A decoder looks the two strings' codes up alternately, so the
    /// lookups of one overlap those of the other. As for [`put_bits`](Self::put_bits), the
    /// tables were built from these literals' counts.
    ///
    /// # Panics
    /// If `ctx` is shorter than `s`.
    pub fn put_bits_pair(&mut self, s: &[u8], ctx: &[u16], out: &mut Vec<u8>) {
        assert!(ctx.len() >= s.len(), "a context for every byte");
        self.fill_codes();
        let (codes, map) = (&self.codes[..], &self.map);
        // the two strings, one after the other, past room for the two length fields; then moved
        // behind the fields once their lengths are known. Together at most the stream's bytes
        // (`bits` counts both strings) plus one, and each write of a string may touch 8 more.
        let start = out.len();
        let at = start + 2 * varint::MAX_LEN;
        out.resize(at + self.bits.div_ceil(8) as usize + 1 + 8, 0);
        let half = |k: usize| Strided { s, ctx, k };
        let first = put_with(codes, map, s.len().div_ceil(2), half(0), &mut out[at..]);
        let second = put_with(codes, map, s.len() / 2, half(1), &mut out[at + first..]);
        let h = varint::put_at(&mut out[start..], first as u64);
        let h = h + varint::put_at(&mut out[start + h..], (first + second) as u64);
        out.copy_within(at..at + first + second, start + h);
        out.truncate(start + h + first + second);
    }
}

/// The bytes of one of a pair's strings: `s[2 i + k]`, in context `ctx[2 i + k]`.
struct Strided<'a> {
    s: &'a [u8],
    ctx: &'a [u16],
    k: usize,
}

/// The bytes a bit string codes and their contexts.
trait Source {
    /// Byte `i` and its context.
    fn at(&self, i: usize) -> (u8, usize);
}

impl Source for Strided<'_> {
    #[inline(always)]
    fn at(&self, i: usize) -> (u8, usize) {
        let j = 2 * i + self.k;
        (self.s[j], self.ctx[j] as usize)
    }
}

/// A stream's bytes with contexts from `C`.
struct Whole<'a, C>(&'a [u8], C);

impl<C: ContextAt> Source for Whole<'_, C> {
    #[inline(always)]
    fn at(&self, i: usize) -> (u8, usize) {
        (self.0[i], self.1.at(i))
    }
}

/// Codes the `n` bytes of `src` into `buf` (room for the coded bytes plus 8); returns the coded
/// length in bytes.
fn put_with<S: Source>(
    codes: &[[u32; 256]],
    map: &[u8; CONTEXTS],
    n: usize,
    src: S,
    buf: &mut [u8],
) -> usize {
    let (mut acc, mut nbits, mut pos) = (0u64, 0u64, 0usize);
    let put = |acc: &mut u64, nbits: &mut u64, i: usize| {
        let (b, c) = src.at(i);
        let e = codes[map[c] as usize][b as usize];
        *acc |= ((e >> 8) as u64) << *nbits;
        *nbits += (e & 0xff) as u64;
    };
    let whole = n / 5 * 5;
    let mut i = 0;
    while i < whole {
        // at most 7 + 5 * 11 = 62 bits pending
        for j in i..i + 5 {
            put(&mut acc, &mut nbits, j);
        }
        buf[pos..pos + 8].copy_from_slice(&acc.to_le_bytes());
        pos += (nbits / 8) as usize;
        acc >>= nbits & !7;
        nbits &= 7;
        i += 5;
    }
    for j in whole..n {
        put(&mut acc, &mut nbits, j);
    }
    buf[pos..pos + 8].copy_from_slice(&acc.to_le_bytes());
    pos + nbits.div_ceil(8) as usize
}
