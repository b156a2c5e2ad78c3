//! Counters of the encoder and the decoder, per epoch and cumulative.

use crate::stages::cache::CacheStats;
use crate::stages::share::ShareStats;

/// Pages one kind of op carried and the bytes those ops took in frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCount {
    /// Pages sent with this kind of op.
    pub pages: u64,
    /// Bytes those ops took (tag, address and body).
    pub bytes: u64,
}

/// Nanoseconds spent in each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageNanos {
    /// Zero detection (timed on one page in 16, scaled).
    pub zero: u64,
    /// Cache lookup, XOR+RLE delta and change detection against the cached copy.
    pub delta: u64,
    /// Block hashing, sharing-table lookups and block-by-block encoding.
    pub blocks: u64,
    /// Compression with the cached page as dictionary.
    pub dict: u64,
    /// Whole-page fallback compression.
    pub compress: u64,
    /// Recording what was sent (cache copy, sharing-table inserts).
    pub update: u64,
    /// Entropy coding of the frame's payload: the encoding thread's CPU time on Linux (so
    /// that time the thread was preempted is not charged to the stage its gate weighs),
    /// elapsed time elsewhere.
    pub entropy: u64,
}

impl std::fmt::Display for StageNanos {
    /// Each stage's time in milliseconds, in the data path's order: `zero 1.2, delta 3.4,
    /// blocks 5.6, dict 0.0, compress 7.8, update 0.9, entropy 2.1`.
    ///
    /// ```
    /// let n = fgbi::stats::StageNanos { zero: 1_250_000, entropy: 2_000_000, ..Default::default() };
    /// assert_eq!(
    ///     n.to_string(),
    ///     "zero 1.2, delta 0.0, blocks 0.0, dict 0.0, compress 0.0, update 0.0, entropy 2.0"
    /// );
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stages = [
            ("zero", self.zero),
            ("delta", self.delta),
            ("blocks", self.blocks),
            ("dict", self.dict),
            ("compress", self.compress),
            ("update", self.update),
            ("entropy", self.entropy),
        ];
        for (i, (name, ns)) in stages.into_iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{name} {:.1}", ns as f64 / 1e6)?;
        }
        Ok(())
    }
}

/// Encoder counters. [`Encoder::stats`](crate::Encoder::stats) gives them since creation,
/// [`Encoder::epoch_stats`](crate::Encoder::epoch_stats) for the last epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncoderStats {
    /// Epochs ended.
    pub epochs: u64,
    /// Frames produced (one per epoch, more with [`Config::frame_bytes`](crate::Config)).
    pub frames: u64,
    /// Resync frames produced.
    pub resyncs: u64,
    /// Pages added.
    pub pages_in: u64,
    /// Bytes of pages added.
    pub bytes_in: u64,
    /// Frame bytes produced (headers, ops and checksums).
    pub bytes_out: u64,
    /// Dirty pages identical to what the backup holds: nothing sent.
    pub unchanged: u64,
    /// All-zero pages.
    pub zero: OpCount,
    /// Pages sent raw.
    pub raw: OpCount,
    /// Pages sent whole through the fallback compressor.
    pub compressed: OpCount,
    /// Pages sent as XOR+RLE delta.
    pub delta: OpCount,
    /// Pages sent lz4-compressed with their last version as dictionary.
    pub dict: OpCount,
    /// Pages sent block by block.
    pub blocks: OpCount,
    /// Blocks sent as all-zero inside block ops.
    pub zero_blocks: u64,
    /// Blocks sent as references to content the backup holds.
    pub shared_blocks: u64,
    /// Unchanged blocks kept inside block ops.
    pub kept_blocks: u64,
    /// New blocks sent as literals inside block ops.
    pub literal_blocks: u64,
    /// Page cache counters.
    pub cache: CacheStats,
    /// Sharing table counters.
    pub share: ShareStats,
    /// Frames whose payload the entropy stage recoded.
    pub entropy_frames: u64,
    /// Bytes the entropy stage saved: payload bytes before it minus after it, over those frames.
    pub entropy_saved: u64,
    /// Non-zero pages sent without analysis (delta, blocks, sharing) as not worth the time on the
    /// link: RAW, or compressed whole where the compressor pays.
    pub skipped_analysis: u64,
    /// Pages on which dictionary compression was skipped as not worth the time on the link.
    pub skipped_dict: u64,
    /// Pages analysed without their block work (hashing, BLOCKS ops, sharing), as the link rate
    /// made it not worth it.
    pub skipped_blocks: u64,
    /// Compressions (whole pages or block literals) skipped as not worth the time on the link.
    pub skipped_compress: u64,
    /// Frames whose entropy coding was skipped as not worth the time on the link.
    pub skipped_entropy: u64,
    /// Time per stage.
    pub nanos: StageNanos,
    /// Bytes of memory the encoder holds: caches, tables, page sets, and the buffers of its
    /// frames (a frame, its entropy-coded form, the entropy stage's streams), which keep the
    /// size of the largest frame made so far.
    pub memory_bytes: u64,
    /// Of which caches and sharing table: bounded by the configured budgets.
    pub cache_memory_bytes: u64,
}

macro_rules! sub_fields {
    ($a:expr, $b:expr, $($f:ident).+ ) => { $a.$($f).+ = $a.$($f).+.saturating_sub($b.$($f).+); };
}

impl EncoderStats {
    /// The counters accumulated since `earlier` (gauges such as memory are kept as they are).
    pub fn since(&self, earlier: &EncoderStats) -> EncoderStats {
        let mut d = *self;
        let e = earlier;
        sub_fields!(d, e, epochs);
        sub_fields!(d, e, frames);
        sub_fields!(d, e, resyncs);
        sub_fields!(d, e, pages_in);
        sub_fields!(d, e, bytes_in);
        sub_fields!(d, e, bytes_out);
        sub_fields!(d, e, unchanged);
        for (dst, src) in [
            (&mut d.zero, e.zero),
            (&mut d.raw, e.raw),
            (&mut d.compressed, e.compressed),
            (&mut d.delta, e.delta),
            (&mut d.dict, e.dict),
            (&mut d.blocks, e.blocks),
        ] {
            dst.pages -= src.pages.min(dst.pages);
            dst.bytes -= src.bytes.min(dst.bytes);
        }
        sub_fields!(d, e, zero_blocks);
        sub_fields!(d, e, shared_blocks);
        sub_fields!(d, e, kept_blocks);
        sub_fields!(d, e, literal_blocks);
        sub_fields!(d, e, cache.hits);
        sub_fields!(d, e, cache.hash_hits);
        sub_fields!(d, e, cache.misses);
        sub_fields!(d, e, cache.evictions);
        sub_fields!(d, e, cache.hash_evictions);
        sub_fields!(d, e, share.inserts);
        sub_fields!(d, e, share.lookups);
        sub_fields!(d, e, share.candidates);
        sub_fields!(d, e, share.stale);
        sub_fields!(d, e, nanos.zero);
        sub_fields!(d, e, nanos.delta);
        sub_fields!(d, e, nanos.blocks);
        sub_fields!(d, e, nanos.dict);
        sub_fields!(d, e, nanos.compress);
        sub_fields!(d, e, nanos.update);
        sub_fields!(d, e, nanos.entropy);
        sub_fields!(d, e, entropy_frames);
        sub_fields!(d, e, entropy_saved);
        sub_fields!(d, e, skipped_analysis);
        sub_fields!(d, e, skipped_dict);
        sub_fields!(d, e, skipped_blocks);
        sub_fields!(d, e, skipped_compress);
        sub_fields!(d, e, skipped_entropy);
        d
    }

    /// The sum of two sets of counters (e.g. of parallel channels); gauges are added too.
    pub fn merged(&self, o: &EncoderStats) -> EncoderStats {
        let mut d = *self;
        macro_rules! add {
            ($($f:ident).+) => { d.$($f).+ += o.$($f).+; };
        }
        add!(epochs);
        add!(frames);
        add!(resyncs);
        add!(pages_in);
        add!(bytes_in);
        add!(bytes_out);
        add!(unchanged);
        for (dst, src) in [
            (&mut d.zero, o.zero),
            (&mut d.raw, o.raw),
            (&mut d.compressed, o.compressed),
            (&mut d.delta, o.delta),
            (&mut d.dict, o.dict),
            (&mut d.blocks, o.blocks),
        ] {
            dst.pages += src.pages;
            dst.bytes += src.bytes;
        }
        add!(zero_blocks);
        add!(shared_blocks);
        add!(kept_blocks);
        add!(literal_blocks);
        add!(cache.hits);
        add!(cache.hash_hits);
        add!(cache.misses);
        add!(cache.evictions);
        add!(cache.hash_evictions);
        add!(share.inserts);
        add!(share.lookups);
        add!(share.candidates);
        add!(share.stale);
        add!(nanos.zero);
        add!(nanos.delta);
        add!(nanos.blocks);
        add!(nanos.dict);
        add!(nanos.compress);
        add!(nanos.update);
        add!(nanos.entropy);
        add!(entropy_frames);
        add!(entropy_saved);
        add!(skipped_analysis);
        add!(skipped_dict);
        add!(skipped_blocks);
        add!(skipped_compress);
        add!(skipped_entropy);
        add!(memory_bytes);
        add!(cache_memory_bytes);
        d
    }

    /// Bytes of pages in per byte of frame out, as QEMU reports `encoding-rate` for XBZRLE
    /// (0 before any output).
    ///
    /// ```
    /// let s = fgbi::EncoderStats { bytes_in: 4096, bytes_out: 512, ..Default::default() };
    /// assert_eq!(s.encoding_rate(), 8.0);
    /// ```
    pub fn encoding_rate(&self) -> f64 {
        if self.bytes_out == 0 {
            0.0
        } else {
            self.bytes_in as f64 / self.bytes_out as f64
        }
    }

    /// Frame bytes of the ops (all kinds), as written before the entropy stage recodes the
    /// payload.
    ///
    /// ```
    /// use fgbi::stats::{EncoderStats, OpCount};
    /// let s = EncoderStats { delta: OpCount { pages: 2, bytes: 90 }, zero: OpCount { pages: 1, bytes: 2 }, ..Default::default() };
    /// assert_eq!(s.op_bytes(), 92);
    /// ```
    pub fn op_bytes(&self) -> u64 {
        [
            self.zero,
            self.raw,
            self.compressed,
            self.delta,
            self.dict,
            self.blocks,
        ]
        .iter()
        .map(|c| c.bytes)
        .sum()
    }

    /// Sum of the time spent in all stages, in seconds.
    pub fn encode_seconds(&self) -> f64 {
        let n = self.nanos;
        (n.zero + n.delta + n.blocks + n.dict + n.compress + n.update + n.entropy) as f64 * 1e-9
    }
}

/// Decoder counters since creation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Frames applied.
    pub frames: u64,
    /// Frames rejected.
    pub rejected: u64,
    /// Frame bytes applied.
    pub bytes_in: u64,
    /// Pages written to the replica.
    pub pages: u64,
    /// Page bytes written (pages × page size).
    pub bytes_out: u64,
    /// Nanoseconds spent validating frames.
    pub validate_nanos: u64,
    /// Nanoseconds spent writing the replica.
    pub apply_nanos: u64,
    /// Bytes of memory the decoder holds (scratch pages, staging area, known-page set).
    pub memory_bytes: u64,
}
