//! What each byte's context is: the match byte of an lz4 literal, worked out by the encoder as
//! it writes its blocks ([`lz4_literal_contexts`]), and where a stream's contexts come from when
//! it is counted and coded ([`Contexts`], and [`ContextAt`] for the loops).

use super::NO_CONTEXT;

/// Room past the contexts [`lz4_literal_contexts_into`] needs in its output: it writes short
/// runs 16 at a time.
pub const CONTEXT_SLACK: usize = 16;

/// Appends to `ctx` the context of every literal of `block`, an lz4 block that decodes to `out`
/// with `dict` as its dictionary (empty for none). The block is the encoder's own: it is trusted
/// to be well formed and to decode to `out`.
///
/// ```
/// use fgbi::entropy::context::{lz4_literal_contexts, NO_CONTEXT};
/// let block = [0x20, b'h', b'i']; // two literals, no match, no dictionary
/// let mut ctx = vec![];
/// lz4_literal_contexts(&block, &[], b"hi", &mut ctx);
/// assert_eq!(ctx, [NO_CONTEXT, NO_CONTEXT]);
/// ```
pub fn lz4_literal_contexts(block: &[u8], dict: &[u8], out: &[u8], ctx: &mut Vec<u16>) {
    let base = ctx.len();
    ctx.resize(base + out.len() + CONTEXT_SLACK, 0);
    let n = lz4_literal_contexts_into(block, dict, out, &mut ctx[base..]);
    ctx.truncate(base + n);
}

/// [`lz4_literal_contexts`] into a slice of at least `out.len() + CONTEXT_SLACK` elements;
/// returns how many contexts it wrote at its start (the elements after them are overwritten
/// too). For an encoder that keeps one buffer for a frame's contexts without clearing it.
pub fn lz4_literal_contexts_into(block: &[u8], dict: &[u8], out: &[u8], ctx: &mut [u16]) -> usize {
    assert!(
        ctx.len() >= out.len() + CONTEXT_SLACK,
        "room for the contexts"
    );
    let dl = dict.len();
    let mut rep: Option<usize> = (dl > 0).then_some(dl);
    let (mut i, mut p, mut k) = (0usize, 0usize, 0usize);
    let ext = |i: &mut usize, mut n: usize| loop {
        let b = block[*i];
        *i += 1;
        n += b as usize;
        if b != 255 {
            return n;
        }
    };
    loop {
        let token = block[i];
        i += 1;
        let mut l = (token >> 4) as usize;
        if l == 15 {
            l = ext(&mut i, l);
        }
        // k + l <= p + l <= out.len(): the 16-wide writes stay inside `ctx`
        match rep {
            Some(d) => {
                // the window bytes from + 0..l (dictionary, then output), widened
                let from = dl + p - d;
                let src = if from + l <= dl {
                    dict.get(from..from + 16)
                } else if from >= dl {
                    out.get(from - dl..from - dl + 16)
                } else {
                    None
                };
                match src {
                    Some(src) if l <= 16 => {
                        let dst: &mut [u16; 16] =
                            (&mut ctx[k..k + 16]).try_into().expect("16 elements");
                        for (c, &b) in dst.iter_mut().zip(src) {
                            *c = b as u16;
                        }
                    }
                    _ => {
                        // the part in the dictionary, then the part in the output
                        let in_dict = dl.saturating_sub(from).min(l);
                        let (d, o) = ctx[k..k + l].split_at_mut(in_dict);
                        for (c, &b) in d.iter_mut().zip(&dict[from.min(dl)..]) {
                            *c = b as u16;
                        }
                        let o_from = (from + in_dict).saturating_sub(dl); // 0 when `o` is empty
                        for (c, &b) in o.iter_mut().zip(&out[o_from..]) {
                            *c = b as u16;
                        }
                    }
                }
            }
            None if l <= 16 => ctx[k..k + 16].fill(NO_CONTEXT),
            None => ctx[k..k + l].fill(NO_CONTEXT),
        }
        k += l;
        i += l;
        p += l;
        if i >= block.len() {
            debug_assert_eq!(p, out.len(), "the block decodes to `out`");
            return k;
        }
        let d = u16::from_le_bytes([block[i], block[i + 1]]) as usize;
        i += 2;
        let mut m = (token & 15) as usize + crate::lz4::MIN_MATCH;
        if token & 15 == 15 {
            m = ext(&mut i, m);
        }
        rep = Some(d);
        p += m;
    }
}

/// Where the contexts of a stream's bytes come from.
///
/// ```
/// use fgbi::entropy::context::{Contexts, Model};
/// // eight values in turn: one table needs 3 bits a byte, but given the previous byte each
/// // value has a single successor, and a table per context codes it in 1 bit (Huffman's least)
/// let s: Vec<u8> = (0..20_000u32).map(|i| (i % 8 * 17) as u8).collect();
/// let mut m = Model::default();
/// m.count_by(&s, Contexts::Previous);
/// m.cluster(8);
/// let bytes = m.bits.div_ceil(8) as usize;
/// assert_eq!(bytes, s.len() / 8);
/// let mut out = Vec::new();
/// m.put_bits_by(&s, Contexts::Previous, bytes, &mut out);
/// assert_eq!(out.len(), bytes);
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Contexts<'a> {
    /// One per byte, given (`ctx[i]` for byte `i`; as long as the stream).
    Given(&'a [u16]),
    /// The stream's previous byte (0 for the first): tokens, low offset bytes.
    Previous,
    /// The byte at the same index of another stream as long as this one: a high offset byte's
    /// low byte.
    Beside(&'a [u8]),
}

impl Contexts<'_> {
    /// Panics unless there is a context for every byte of `s`.
    pub(super) fn check(&self, s: &[u8]) {
        let given = match self {
            Contexts::Given(c) => c.len(),
            Contexts::Previous => s.len(),
            Contexts::Beside(o) => o.len(),
        };
        assert!(given >= s.len(), "{given} contexts for {} bytes", s.len());
    }
}

/// The context of byte `i`, for the counting and coding loops (one copy of each per kind).
pub(super) trait ContextAt {
    fn at(&self, i: usize) -> usize;
}

pub(super) struct Given<'a>(pub(super) &'a [u16]);
pub(super) struct Previous<'a>(pub(super) &'a [u8]);
pub(super) struct Beside<'a>(pub(super) &'a [u8]);

impl ContextAt for Given<'_> {
    #[inline(always)]
    fn at(&self, i: usize) -> usize {
        self.0[i] as usize
    }
}

impl ContextAt for Previous<'_> {
    #[inline(always)]
    fn at(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.0[i - 1] as usize
        }
    }
}

impl ContextAt for Beside<'_> {
    #[inline(always)]
    fn at(&self, i: usize) -> usize {
        self.0[i] as usize
    }
}
