//! [`EntropyEncoder`]: splits a payload into its streams, then writes each stream in the mode
//! that codes it smallest.

use super::container::{write_context_stream, write_stream, Counts};
use super::context;
use super::route::route;
use super::split::{Split, GAP};
use super::{Stream, STREAMS};
use std::collections::TryReserveError;

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

/// Context-modelled literals are coded in two bit strings when they average at least this many
/// per lz4 sequence (token): decoding looks the two strings' codes up alternately, which pays
/// where the literals of a run are many (database pages: about 20 a run), and costs a little
/// where runs are a few literals long (heaps: about 3).
const PAIR_MIN_RUN: usize = 8;

/// Which streams [`EntropyEncoder::write_streams`] may context model.
#[derive(Debug, Clone, Copy)]
enum Models {
    /// Those long enough for a model to pay; the literals only when they have contexts (true).
    Where(bool),
    /// None.
    None,
}

/// Where each stream starts in [`EntropyEncoder::streams`] after a split (`start[s + 1] - GAP`
/// is where stream `s` ends).
type Starts = [usize; STREAMS + 1];

impl EntropyEncoder {
    /// Whether the last [`encode`](Self::encode) was given literal contexts whose count did not
    /// match its payload's lz4 literals (and so coded the literals with one table): the
    /// encoder's own contexts always match (checked in its debug builds).
    pub(crate) fn contexts_mismatched(&self) -> bool {
        self.ctx_mismatch
    }

    /// Appends the entropy-coded form of `payload` (the ops of a frame with page size `ps` and
    /// block size `bs`) to `out`. Fails on a payload that is not a valid sequence of ops, and
    /// when its buffers cannot have the memory the payload needs.
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
        let (start, lits_by_ctx) = self.split(payload, ps, bs, lit_ctx)?;
        self.write_streams(&start, Models::Where(lits_by_ctx), out);
        Ok(())
    }

    /// [`encode`](Self::encode) without context models: each stream Huffman coded with one
    /// table, or stored. The cheap form of the stage: on real memory in frames of 160 KiB, about
    /// a third of `encode`'s time for 3-5% more bytes.
    pub fn encode_plain(
        &mut self,
        payload: &[u8],
        ps: usize,
        bs: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let (start, _) = self.split(payload, ps, bs, None)?;
        self.write_streams(&start, Models::None, out);
        Ok(())
    }

    /// Splits `payload` into `self.streams` (and, when the literals are to be context modelled,
    /// their contexts into `self.ctx`) in two passes: one counts each stream's length and checks
    /// the payload, the other moves the bytes. Returns where each stream starts and whether the
    /// literals have contexts.
    fn split(
        &mut self,
        payload: &[u8],
        ps: usize,
        bs: usize,
        lit_ctx: Option<&[u16]>,
    ) -> Result<(Starts, bool), &'static str> {
        let mut count = Split::counting(payload);
        route(&mut count, ps, bs)?;
        let n_lits = count.at[Stream::Literals as usize];
        self.ctx_mismatch = lit_ctx.is_some_and(|c| c.len() != count.ctx_pos);
        let mut start = [0usize; STREAMS + 1];
        for s in 0..STREAMS {
            start[s + 1] = start[s] + count.at[s] + GAP;
        }
        if self.streams.len() < start[STREAMS] {
            let more = start[STREAMS] - self.streams.len();
            self.streams
                .try_reserve_exact(more)
                .map_err(|_| "no memory for the entropy stage's streams")?;
            self.streams.resize(start[STREAMS], 0);
        }
        // the literals' contexts in stream order: as many as there are literals (a frame of
        // pages sent RAW has many more literals than its lz4 blocks have contexts, one whose
        // ops are mostly lz4 blocks fewer than it has payload bytes); without the memory for
        // them the literals are coded with one table
        let lit_ctx = lit_ctx
            .filter(|c| c.len() == count.ctx_pos && n_lits >= MIN_CONTEXT_LITERALS)
            .filter(|_| {
                self.ctx.len() >= n_lits
                    || self.ctx.try_reserve_exact(n_lits - self.ctx.len()).is_ok()
            });
        if lit_ctx.is_some() && self.ctx.len() < n_lits {
            self.ctx.resize(n_lits, 0);
        }
        let mut split = Split {
            src: payload,
            pos: 0,
            at: std::array::from_fn(|s| start[s]),
            out: Some(&mut self.streams[..]),
            ctx_in: lit_ctx.unwrap_or(&[]),
            ctx_pos: 0,
            ctx_out: lit_ctx.map(|_| (&mut self.ctx[..], start[Stream::Literals as usize])),
        };
        route(&mut split, ps, bs)?;
        Ok((start, lit_ctx.is_some()))
    }

    /// Writes the streams of the last [`split`](Self::split), each in the mode that codes it
    /// smallest: with `Models::Where`, context modelled (the literals by their given contexts,
    /// when they have them, the tokens and low offset bytes by the byte before, the high
    /// offset bytes by their low byte) when the stream is long enough for a model to pay;
    /// else Huffman coded or stored.
    fn write_streams(&mut self, start: &Starts, models: Models, out: &mut Vec<u8>) {
        let (modelled, lits_by_ctx) = match models {
            Models::Where(lits_by_ctx) => (true, lits_by_ctx),
            Models::None => (false, false),
        };
        for s in 0..STREAMS {
            let stream = &self.streams[start[s]..start[s + 1] - GAP];
            let counts = Counts::of(stream);
            let n = stream.len();
            if !modelled {
                write_stream(stream, &counts, out);
            } else if s == Stream::Literals as usize && lits_by_ctx {
                let by = context::Contexts::Given(&self.ctx[..n]);
                // literals in runs long enough for two strings' lookups to overlap
                let tokens = start[Stream::Tokens as usize + 1] - start[Stream::Tokens as usize];
                let pair = n >= PAIR_MIN_RUN * (tokens - GAP);
                let strings = Some(pair);
                write_context_stream(stream, by, &counts, &mut self.model, strings, out);
            } else if n >= MIN_CONTEXT_LITERALS
                && (s == Stream::Tokens as usize || s == Stream::OffsetLow as usize)
            {
                // tokens, low offset bytes: the stream's previous byte
                let by = context::Contexts::Previous;
                write_context_stream(stream, by, &counts, &mut self.model, None, out);
            } else if n >= MIN_CONTEXT_LITERALS && s == Stream::OffsetHigh as usize {
                // high offset bytes: the low byte of the offset
                let lo = start[Stream::OffsetLow as usize];
                let by = context::Contexts::Beside(&self.streams[lo..lo + n]);
                write_context_stream(stream, by, &counts, &mut self.model, None, out);
            } else {
                write_stream(stream, &counts, out);
            }
        }
    }

    /// Makes room in the encoder's buffers for coding a payload of up to `payload` bytes, so
    /// that [`encode`](Self::encode) of one allocates nothing (`contexts`: the literals' contexts
    /// too, as many as the payload has bytes; without, [`encode`](Self::encode) makes room for as
    /// many as its payload has literals); an error when the memory cannot be had.
    pub(crate) fn reserve(
        &mut self,
        payload: usize,
        contexts: bool,
    ) -> Result<(), TryReserveError> {
        let streams = payload + STREAMS * GAP;
        self.streams
            .try_reserve_exact(streams.saturating_sub(self.streams.len()))?;
        if !contexts {
            return Ok(());
        }
        self.ctx
            .try_reserve_exact(payload.saturating_sub(self.ctx.len()))
    }

    /// Literal contexts the encoder has room for.
    #[cfg(test)]
    pub(crate) fn contexts_held(&self) -> usize {
        self.ctx.capacity()
    }

    /// Bytes of split streams the encoder has room for.
    #[cfg(test)]
    pub(crate) fn streams_held(&self) -> usize {
        self.streams.capacity()
    }

    /// Bytes of buffers held.
    pub fn memory_bytes(&self) -> usize {
        self.streams.capacity() + 2 * self.ctx.capacity() + self.model.memory_bytes()
    }
}
