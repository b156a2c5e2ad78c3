//! Context modelling: bytes of a stream coded with one of up to [`MAX_TABLES`] Huffman tables,
//! chosen per byte by a *context* that the decoder knows when it reaches that byte.
//!
//! - **Literals** of an lz4 block, by their *match byte*. After a match at offset `d` ends, the
//!   bytes that follow in the source are usually close to the bytes that followed the match's
//!   source: the same field of the next object of a heap, the next row of a table. Where lz4 had
//!   to emit literals, the byte at distance `d` still predicts them well (LZMA codes its first
//!   literal after a match this way). The context of a literal at position `p` of a block's
//!   output: before the block's first match, the dictionary's byte at `p` (same position in the
//!   old page) for a block with a dictionary, else [`NO_CONTEXT`]; after a match at offset `d`,
//!   the byte at `p - d` of the dictionary followed by the output. Literals outside lz4 blocks
//!   (raw pages, delta runs, raw literal blocks) have [`NO_CONTEXT`].
//! - **Tokens** and **low offset bytes**, by the stream's previous byte (0 for the first).
//! - **High offset bytes**, by the low byte of the same offset.
//!
//! The contexts of a stream are clustered per frame ([`Model::cluster`]); a context map sends
//! each to its table, so the decoder stays a table lookup per byte.
//!
//! The rooms of this module:
//!
//! - `contexts.rs`: what each byte's context is ([`lz4_literal_contexts`], [`Contexts`]).
//! - `model.rs`: [`Model`], the per-context counts of a stream.
//! - `cluster/`: [`Model::cluster`], grouping the contexts into tables; its inner loop in
//!   `portable.rs`, and compiled for AVX2 in `avx2.rs`.
//! - `tables.rs`: the tables part of a stream (table count, context map, tables): writing it
//!   ([`Model::put_tables`]) and reading it ([`ContextTables`]).
//! - `writer.rs`: coding a stream's bytes ([`Model::put_bits_by`]; literals in two bit strings:
//!   [`Model::put_bits_pair`]).
//! - `reader.rs`: decoding them ([`LiteralReader`]).

mod cluster;
mod contexts;
mod model;
mod reader;
mod tables;
mod writer;

pub use cluster::tables_for;
pub use contexts::{lz4_literal_contexts, lz4_literal_contexts_into, Contexts, CONTEXT_SLACK};
pub use model::Model;
pub use reader::LiteralReader;
pub use tables::ContextTables;

/// Number of contexts: the 256 match byte values and [`NO_CONTEXT`].
pub const CONTEXTS: usize = 257;
/// The context of literals with no match byte.
pub const NO_CONTEXT: u16 = 256;
/// Most Huffman tables one context-modelled stream may carry.
pub const MAX_TABLES: usize = 255;

#[cfg(test)]
mod tests;
