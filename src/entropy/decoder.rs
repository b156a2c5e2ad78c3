//! [`EntropyDecoder`]: parses the container, decodes the Huffman-coded streams two at a time and
//! the context-modelled ones, and joins the streams back into the payload.

use super::container::{self, get_listed, StreamAt};
use super::context;
use super::huffman::{self, TABLE_BYTES};
use super::join::{Backup, CtxJoin, Join};
use super::route::route;
use super::{EntropyError, Staging, Stream, MAX_PLAIN_BYTES, STREAMS};
use crate::format;

/// Rebuilds payloads from entropy-coded ones; keeps its buffers from frame to frame.
pub struct EntropyDecoder {
    decoded: Vec<u8>,
    /// Tables of each context-modelled stream (tokens, literals, low and high offset bytes).
    ctx: [context::ContextTables; STREAMS],
    /// A dictionary page followed by the output of the lz4 block being joined (context mode).
    window: Vec<u8>,
    /// One decoding table per stream (two streams are decoded at once).
    huff: Vec<huffman::Decoder>,
    /// The longest payload rebuilt.
    limit: usize,
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
            limit: MAX_PLAIN_BYTES,
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

/// A parsed container and where its decoded streams go. Huffman streams, and context-modelled
/// tokens and offset bytes (each after one leading byte: the first byte's context), are decoded
/// into [`EntropyDecoder::decoded`]; stored streams are read where they are in the container,
/// context-modelled literals as the payload is rebuilt.
struct Layout {
    at: [StreamAt; STREAMS],
    /// Where each decoded stream starts in `decoded`.
    slot: [usize; STREAMS],
    /// Bytes of `decoded` used.
    decoded_len: usize,
    /// Length of the payload: all streams together.
    total: usize,
}

impl Layout {
    fn new(at: [StreamAt; STREAMS], total: usize) -> Layout {
        let mut slot = [0usize; STREAMS];
        let mut decoded_len = 0usize;
        for (i, a) in at.iter().enumerate() {
            slot[i] = decoded_len;
            if a.huffman {
                decoded_len += a.len;
            } else if a.context && i != Stream::Literals as usize {
                decoded_len += a.len + 1;
            }
        }
        Layout {
            at,
            slot,
            decoded_len,
            total,
        }
    }

    /// Where stream `i`'s bytes are once decoded: whether in `decoded` (else in the container),
    /// their start and their length. (Context-modelled literals are read by the join itself.)
    fn place(&self, i: usize) -> (bool, usize, usize) {
        let a = self.at[i];
        if a.huffman {
            (true, self.slot[i], a.len)
        } else if a.context && i != Stream::Literals as usize {
            (true, self.slot[i] + 1, a.len)
        } else {
            (false, a.data, a.data_len)
        }
    }

    /// Stream `i`'s bytes: in `decoded` or in the container `coded`.
    fn bytes<'a>(&self, i: usize, decoded: &'a [u8], coded: &'a [u8]) -> &'a [u8] {
        match self.place(i) {
            (true, from, n) => &decoded[from..from + n],
            (false, from, n) => &coded[from..from + n],
        }
    }

    /// Stream `i`'s coded bits in the container.
    fn coded<'a>(&self, i: usize, coded: &'a [u8]) -> &'a [u8] {
        let a = self.at[i];
        &coded[a.data..a.data + a.data_len]
    }
}

/// Makes `v`'s capacity at least `len` bytes (its length is set where it is filled).
fn grow_len(v: &mut Vec<u8>, len: usize) -> Result<(), EntropyError> {
    if v.capacity() >= len {
        return Ok(());
    }
    let more = len - v.len();
    v.try_reserve(more)
        .map_err(|_| EntropyError::NoMemory { bytes: more })
}

impl EntropyDecoder {
    /// Refuses payloads longer than `limit` bytes (at most [`MAX_PLAIN_BYTES`], the default)
    /// and reserves the buffers rebuilding one takes, so that decoding allocates nothing more.
    pub fn set_limit(&mut self, limit: usize, ps: usize) -> Result<(), EntropyError> {
        self.limit = limit.min(MAX_PLAIN_BYTES);
        grow_len(&mut self.decoded, self.limit + STREAMS)?;
        grow_len(&mut self.window, super::join::window_len(ps))
    }

    /// Replaces `payload` with the payload that `coded` (an entropy-coded payload of a frame with
    /// page size `ps` and block size `bs`) stands for, in four steps: parse the container, decode
    /// the Huffman-coded streams, then the context-modelled ones, and join. Checks every stream
    /// header against the bytes present before allocating, and at most
    /// [`MAX_PLAIN_BYTES`](super::MAX_PLAIN_BYTES) in all.
    ///
    /// A context-modelled literal stream needs the dictionary of each DICT op: `load(page, buf)`
    /// copies the backup's current content of page number `page` into `buf` (one page) and
    /// returns true, or returns false when it has no such page (zeros are used; the frame is
    /// then refused when its ops are checked).
    ///
    /// `coded` is read as [`format::VERSION`] writes it; [`decode_version`](Self::decode_version)
    /// reads the payload of a frame of an earlier version.
    pub fn decode(
        &mut self,
        coded: &[u8],
        ps: usize,
        bs: usize,
        payload: &mut Vec<u8>,
        load: &mut dyn FnMut(u64, &mut [u8]) -> bool,
    ) -> Result<(), EntropyError> {
        self.decode_version(format::VERSION, coded, ps, bs, payload, load)
    }

    /// [`decode`](Self::decode) for the payload of a frame of format version `version`: before
    /// version 3 no stream is coded in parts.
    pub fn decode_version(
        &mut self,
        version: u16,
        coded: &[u8],
        ps: usize,
        bs: usize,
        payload: &mut Vec<u8>,
        load: &mut dyn FnMut(u64, &mut [u8]) -> bool,
    ) -> Result<(), EntropyError> {
        self.decode_staged(version, coded, ps, bs, payload, load, None)
    }

    /// [`decode_version`](Self::decode_version) that also decodes every lz4 block of the
    /// payload into `stage`, as far as it has room (see [`Staging`]): the join reads each
    /// sequence anyway, so the frame decoder need not parse those blocks again.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decode_staged(
        &mut self,
        version: u16,
        coded: &[u8],
        ps: usize,
        bs: usize,
        payload: &mut Vec<u8>,
        load: &mut dyn FnMut(u64, &mut [u8]) -> bool,
        stage: Option<&mut dyn Staging>,
    ) -> Result<(), EntropyError> {
        let (at, total) = container::parse(coded, &mut self.ctx, version)?;
        if total > self.limit {
            return Err(EntropyError::TooLarge {
                total,
                limit: self.limit,
            });
        }
        let layout = Layout::new(at, total);
        // room first, so that the buffers below grow without allocating
        grow_len(&mut self.decoded, layout.decoded_len)?;
        grow_len(payload, total)?;
        grow_len(&mut self.window, super::join::window_len(ps))?;
        if self.decoded.len() < layout.decoded_len {
            self.decoded.resize(layout.decoded_len, 0);
        }
        self.decode_huffman(coded, &layout)?;
        self.decode_context(coded, &layout)?;
        self.join(coded, &layout, ps, bs, payload, load, stage)
    }

    /// Decodes the Huffman-coded streams into their slots: those in parts each alone (its parts
    /// side by side), the others two at a time, the longest with the next longest.
    fn decode_huffman(&mut self, coded: &[u8], layout: &Layout) -> Result<(), EntropyError> {
        let at = &layout.at;
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
            self.huff[i]
                .set_for(&lens, a.len)
                .map_err(EntropyError::Huffman)?;
            if a.parts[0] > 0 {
                let (mut from, data) = (a.data, coded);
                let parts = a.parts.map(|n| {
                    from += n;
                    &data[from - n..from]
                });
                let out = &mut self.decoded[layout.slot[i]..layout.slot[i] + a.len];
                huffman::decode_parts(&self.huff[i], parts, out).map_err(EntropyError::Huffman)?;
                continue;
            }
            jobs[njobs] = (i, layout.slot[i]);
            njobs += 1;
        }
        let jobs = &mut jobs[..njobs];
        jobs.sort_unstable_by_key(|&(i, _)| std::cmp::Reverse(at[i].len));
        for pair in jobs.chunks(2) {
            let (i, si) = pair[0];
            let ai = at[i];
            let src_i = layout.coded(i, coded);
            let r = match pair.get(1) {
                None => self.huff[i].decode(src_i, &mut self.decoded[si..si + ai.len]),
                Some(&(j, sj)) => {
                    let aj = at[j];
                    let src_j = layout.coded(j, coded);
                    let (out_i, out_j) = two_regions(&mut self.decoded, (si, ai.len), (sj, aj.len));
                    let (ri, rj) = huffman::decode_pair(
                        (&self.huff[i], src_i, out_i),
                        (&self.huff[j], src_j, out_j),
                    );
                    ri.and(rj)
                }
            };
            r.map_err(EntropyError::Huffman)?;
        }
        Ok(())
    }

    /// Decodes the context-modelled tokens and low offset bytes (each in the context of the byte
    /// before), then the high offset bytes (each in the context of its low byte), into their
    /// slots.
    fn decode_context(&mut self, coded: &[u8], layout: &Layout) -> Result<(), EntropyError> {
        let (at, slot) = (&layout.at, &layout.slot);
        let (tk, lo, hi) = (
            Stream::Tokens as usize,
            Stream::OffsetLow as usize,
            Stream::OffsetHigh as usize,
        );
        if at[tk].context && at[lo].context {
            // the chains side by side (slots are disjoint, each with a byte before it), the high
            // offset bytes with them when they are context modelled
            let (a, b) = (at[tk], at[lo]);
            let mut ra = context::LiteralReader::new(&self.ctx[tk], layout.coded(tk, coded), a.len);
            let mut rb = context::LiteralReader::new(&self.ctx[lo], layout.coded(lo, coded), b.len);
            let mut rc = at[hi].context.then(|| {
                context::LiteralReader::new(&self.ctx[hi], layout.coded(hi, coded), at[hi].len)
            });
            let (head, tail) = self.decoded.split_at_mut(slot[hi]);
            let (wa, wb) = two_regions(head, (slot[tk], a.len + 1), (slot[lo], b.len + 1));
            (wa[0], wb[0]) = (0, 0);
            // (offset streams of different lengths are refused once the other two decoded, as
            // where they are decoded one after the other)
            let same_len = at[hi].len == b.len;
            let c = match rc.as_mut() {
                Some(r) if same_len => Some((r, &mut tail[1..1 + b.len])),
                _ => None,
            };
            let [x, y, z] =
                context::LiteralReader::run_side_by_side((&mut ra, wa), (&mut rb, wb), c);
            x.and_then(|()| ra.finish())
                .and(y.and_then(|()| rb.finish()))
                .and(match rc {
                    Some(_) if !same_len => Err("the offset streams differ in length"),
                    _ => z,
                })
                .and_then(|()| rc.as_ref().map_or(Ok(()), |r| r.finish()))
                .map_err(EntropyError::Streams)?;
            return Ok(());
        }
        for s in [tk, lo] {
            let a = at[s];
            if !a.context {
                continue;
            }
            let buf = &mut self.decoded[slot[s]..slot[s] + a.len + 1];
            buf[0] = 0;
            let mut r = context::LiteralReader::new(&self.ctx[s], layout.coded(s, coded), a.len);
            r.run(buf, 1, a.len, Some(1))
                .and_then(|()| r.finish())
                .map_err(EntropyError::Streams)?;
        }
        if at[hi].context {
            let a = at[hi];
            let (head, tail) = self.decoded.split_at_mut(slot[hi]);
            let low = layout.bytes(lo, head, coded);
            if low.len() != a.len {
                return Err(EntropyError::Streams("the offset streams differ in length"));
            }
            let mut r = context::LiteralReader::new(&self.ctx[hi], layout.coded(hi, coded), a.len);
            r.run_by(low, &mut tail[1..1 + a.len])
                .and_then(|()| r.finish())
                .map_err(EntropyError::Streams)?;
        }
        Ok(())
    }

    /// Joins the decoded streams into `payload` (exactly as long as the streams together; every
    /// stream is checked to be read to its end), decoding the lz4 blocks into `stage` as well.
    /// Context-modelled literals are decoded here, as the ops are joined, each with its context.
    #[allow(clippy::too_many_arguments)]
    fn join(
        &mut self,
        coded: &[u8],
        layout: &Layout,
        ps: usize,
        bs: usize,
        payload: &mut Vec<u8>,
        load: &mut dyn FnMut(u64, &mut [u8]) -> bool,
        stage: Option<&mut dyn Staging>,
    ) -> Result<(), EntropyError> {
        let decoded = &self.decoded;
        let streams: [&[u8]; STREAMS] = std::array::from_fn(|i| layout.bytes(i, decoded, coded));
        let total = layout.total;
        payload.clear();
        payload.resize(total, 0);
        self.window.resize(super::join::window_len(ps), 0);
        // (the area's trait object taken for as long as the join's other borrows)
        let stage = stage.map(|s| -> &mut dyn Staging { s });
        let backup = Backup::new(load, stage, &mut self.window, ps);
        let mut j = Join::new(streams, payload, None);
        let lits = Stream::Literals as usize;
        let lits_by_ctx = layout.at[lits].context;
        let j = if lits_by_ctx {
            let mut cj = CtxJoin {
                join: j,
                lits: context::LiteralReader::new_pair(
                    &self.ctx[lits],
                    layout.coded(lits, coded),
                    layout.at[lits].first,
                    layout.at[lits].len,
                ),
                backup,
            };
            route(&mut cj, ps, bs).map_err(EntropyError::Streams)?;
            cj.lits.finish().map_err(EntropyError::Streams)?;
            cj.join
        } else {
            j.backup = Some(backup);
            route(&mut j, ps, bs).map_err(EntropyError::Streams)?;
            j
        };
        debug_assert!(j.o <= total);
        if j.pos
            .iter()
            .zip(&j.streams)
            .enumerate()
            .any(|(i, (&p, s))| p != s.len() && !(i == lits && lits_by_ctx))
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
            + STREAMS * 6 * (1 << huffman::MAX_BITS)
            + self.ctx.iter().map(|c| c.memory_bytes()).sum::<usize>()
            + self.window.capacity()
    }
}

/// Two regions of `decoded` that do not overlap (two streams' slots), `(start, len)` each.
fn two_regions(
    decoded: &mut [u8],
    (sa, na): (usize, usize),
    (sb, nb): (usize, usize),
) -> (&mut [u8], &mut [u8]) {
    if sa < sb {
        let (lo, hi) = decoded.split_at_mut(sb);
        (&mut lo[sa..sa + na], &mut hi[..nb])
    } else {
        let (lo, hi) = decoded.split_at_mut(sa);
        (&mut hi[..na], &mut lo[sb..sb + nb])
    }
}
