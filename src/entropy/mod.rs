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
//! The rooms of this module, in the order of the data path:
//!
//! - `encoder.rs`: [`EntropyEncoder`] splits a payload, then writes each stream in the mode that
//!   codes it smallest.
//! - `route.rs`: the one walk over a payload's ops, which says which stream each byte belongs
//!   to; `split.rs` moves the bytes payload → streams along it, `join.rs` streams → payload.
//! - `container.rs`: the stream modes, writing each stream with its header, and parsing the
//!   headers into where each stream's bytes are.
//! - [`huffman`]: one code table per stream; [`context`]: a table per context, for the tokens,
//!   literals and offset bytes.
//! - `decoder.rs`: [`EntropyDecoder`] parses the container, decodes the streams and joins them.
//! - `error.rs`: [`EntropyError`].
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

mod container;
mod decoder;
mod encoder;
mod error;
mod join;
mod route;
mod split;

pub use container::{MODE_CONTEXT, MODE_HUFFMAN, MODE_HUFFMAN_LISTED, MODE_STORED};
pub use decoder::EntropyDecoder;
pub use encoder::EntropyEncoder;
pub use error::EntropyError;

/// Where a join keeps what it decodes of the lz4 blocks it rebuilds, in op order, so that the
/// frame decoder does not parse those blocks again (see [`EntropyDecoder::decode_staged`]).
///
/// The join announces every coded body of the payload in op order: an lz4 block it decoded to
/// exactly its length asks for a [`slot`](Self::slot) and fills it; any other coded body (deflate,
/// or a block that does not decode to its length) [`close`](Self::close)s the area, so what it
/// holds is always the output of a prefix of the payload's coded ops, each whole and checked as
/// [`lz4::decompress`](crate::lz4::decompress) checks it.
pub(crate) trait Staging {
    /// Room for the output of the next coded op, `len` bytes (`dict`: decoded with the backup's
    /// page as dictionary), or `None` once the area is full or closed.
    fn slot(&mut self, len: usize, dict: bool) -> Option<&mut [u8]>;
    /// Asked by the join before it asks for a slot for an lz4 block: whether, once it has the
    /// slot, it may leave the block's bytes out of the rebuilt payload (that part of the payload
    /// then holds bytes of no meaning). The frame decoder then reads the block's output from
    /// the area only, so an area that says yes must tell it when a kept block loses its slot
    /// (see `Stage::bodies_lost` in the decoder).
    fn skip_body(&mut self) -> bool {
        false
    }
    /// Drops the slot given last (its block did not decode to its length) and closes the area.
    /// The join then writes that block's bytes into the payload after all.
    fn drop_last(&mut self);
    /// Keeps nothing more for this payload.
    fn close(&mut self);
}

/// Number of streams.
pub const STREAMS: usize = 6;

/// The largest payload a decoder rebuilds from an entropy-coded one; a frame declaring more is
/// refused before anything is allocated. (Each Huffman-coded byte costs at least one bit, so the
/// rebuilt payload is also never more than 8 times the frame.)
pub const MAX_PLAIN_BYTES: usize = 1 << 30;

/// The longest entropy-coded form of a payload of `payload` bytes: the container stores a stream
/// as it is when coding does not make it smaller, so the coded form is at most the payload plus
/// each stream's mode and length and the container's own header.
pub const fn max_coded_len(payload: usize) -> usize {
    payload + 1024
}

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

#[cfg(test)]
mod tests;
