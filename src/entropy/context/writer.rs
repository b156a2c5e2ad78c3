//! Coding a context-modelled stream's bytes, each with the table of its context.

use super::contexts::{Beside, ContextAt, Contexts, Given, Previous};
use super::{Model, CONTEXTS};
use crate::entropy::huffman;

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
        // per table and byte: code << 8 | length
        self.codes.clear();
        self.codes.extend(self.tables.iter().map(|t| {
            let codes = huffman::canonical_codes(t);
            std::array::from_fn(|s| (codes[s] as u32) << 8 | t[s] as u32)
        }));
        let start = out.len();
        out.resize(start + bytes + 8, 0);
        let buf = &mut out[start..];
        let (codes, map) = (&self.codes[..], &self.map);
        let pos = match ctx {
            Contexts::Given(c) => put_with(codes, map, s, Given(c), buf),
            Contexts::Previous => put_with(codes, map, s, Previous(s), buf),
            Contexts::Beside(o) => put_with(codes, map, s, Beside(o), buf),
        };
        debug_assert_eq!(pos, bytes, "coded length");
        out.truncate(start + pos);
    }
}

/// Codes `s` into `buf` (room for the coded bytes plus 8); returns the coded length in bytes.
fn put_with<C: ContextAt>(
    codes: &[[u32; 256]],
    map: &[u8; CONTEXTS],
    s: &[u8],
    ctx: C,
    buf: &mut [u8],
) -> usize {
    let (mut acc, mut nbits, mut pos) = (0u64, 0u64, 0usize);
    let put = |acc: &mut u64, nbits: &mut u64, i: usize| {
        let e = codes[map[ctx.at(i)] as usize][s[i] as usize];
        *acc |= ((e >> 8) as u64) << *nbits;
        *nbits += (e & 0xff) as u64;
    };
    let whole = s.len() / 5 * 5;
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
    for j in whole..s.len() {
        put(&mut acc, &mut nbits, j);
    }
    buf[pos..pos + 8].copy_from_slice(&acc.to_le_bytes());
    pos + nbits.div_ceil(8) as usize
}
