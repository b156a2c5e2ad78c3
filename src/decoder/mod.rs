//! The frame decoder: validates a whole frame, then applies it to the replica.
//!
//! The rule: a whole frame is validated before a byte of the replica is written, and a rejected
//! frame leaves the replica and the decoder's state exactly as they were.
//!
//! The data path, one file per step:
//! - [`Decoder::apply`] (here): validate, then apply, then record the frame's pages and epoch.
//! - `validate.rs`: the validate pass. The envelope, the geometry, the epoch order, the entropy
//!   stage, then every op: its page and references are in the replica, the pages it depends on
//!   were sent since the last resync, its coded data decodes. Nothing is written.
//! - `apply.rs`: the apply pass, run only on a validated frame. It writes the replica.
//! - `reader.rs`: the one op parser both passes read the payload with, so they see the same ops.
//!   It makes the checks that need only the payload and asks the pass for the others.
//! - `nt.rs`: page copies into the replica with streaming stores, for large frames.
//! - `stage.rs`: decompressed output kept for the apply pass, by the validate pass or (for an
//!   entropy-coded payload) by the entropy stage's join.
//! - `replica.rs`: the backup's memory as the decoder sees it ([`Replica`], [`Regions`]).

mod apply;
mod nt;
mod reader;
mod replica;
mod stage;
mod validate;

pub use replica::{Regions, Replica};
pub use stage::STAGE_BYTES;

use crate::budget;
use crate::compress;
use crate::config::Config;
use crate::entropy::EntropyDecoder;
use crate::error::Error;
use crate::format;
use crate::stages::bitmap::PageSet;
use crate::stats::DecoderStats;
use stage::Stage;
use std::time::Instant;

/// With [`Config::frame_bytes`], the decoder keeps up to this many bytes of decompressed output
/// per byte of frame for its apply pass (at most [`STAGE_BYTES`]); the output of further ops is
/// decompressed again by the apply pass.
pub const STAGE_PER_FRAME_BYTE: usize = 4;

/// What an applied frame did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Its epoch.
    pub epoch: u64,
    /// Whether it was a resync frame.
    pub resync: bool,
    /// Whether its epoch continues in the next frame (a part of an epoch sent in parts).
    pub partial: bool,
    /// Ops (a RUN op writes several pages; every other op one).
    pub ops: u32,
}

/// Decoder of one replication stream. See the module documentation.
///
/// ```
/// use fgbi::{Config, Decoder, Error};
/// let mut dec = Decoder::new(Config::default()).unwrap();
/// let mut memory = vec![0u8; 4096];
/// // garbage is refused and the memory is untouched
/// let err = dec.apply_flat(&[0u8; 100], &mut memory).unwrap_err();
/// assert_eq!(err, Error::BadMagic);
/// ```
#[derive(Debug)]
pub struct Decoder {
    cfg: Config,
    /// (stream id, epoch of the last frame applied) once synchronised.
    sync: Option<(u64, u64)>,
    /// The part due next when the last frame applied was a part of its epoch with more to come.
    next_part: Option<u64>,
    /// Pages sent since the last resync.
    known: PageSet,
    /// Pages the frame being validated sends.
    pending: PageSet,
    scratch: Vec<u8>,
    refs: Vec<u8>,
    lits: Vec<u8>,
    /// A RUN op's pages, decompressed where the staging area does not hold them.
    run: Vec<u8>,
    /// The format version of the frame being applied, and the pages it writes.
    version: u16,
    frame_pages: u64,
    inflate: compress::Scratch,
    stage: Stage,
    /// The entropy stage's decoder and the payload it rebuilt for the frame being applied.
    entropy: EntropyDecoder,
    plain: Vec<u8>,
    /// The longest payload accepted (with [`Config::frame_bytes`] or [`Config::frame_pages`]).
    limit: Option<usize>,
    stats: DecoderStats,
}

impl Decoder {
    /// A decoder waiting for its first (resync) frame.
    pub fn new(cfg: Config) -> Result<Decoder, Error> {
        cfg.validate()?;
        let ps = cfg.page_size;
        // epochs in parts: every buffer is bounded by the frame size, so it is reserved now
        let limit = cfg.frame_payload_limit();
        let mut entropy = EntropyDecoder::default();
        let (mut plain, mut stage) = (Vec::new(), Stage::default());
        if let Some(limit) = limit {
            entropy
                .set_limit(limit, ps)
                .map_err(|_| Error::OutOfMemory {
                    what: "the entropy stage's streams",
                    bytes: limit,
                })?;
            budget::grow_to(&mut plain, limit, "the rebuilt payload")?;
            stage = Stage::reserved(STAGE_PER_FRAME_BYTE.saturating_mul(limit))?;
        }
        Ok(Decoder {
            cfg,
            sync: None,
            next_part: None,
            known: PageSet::default(),
            pending: PageSet::default(),
            scratch: vec![0; ps],
            refs: Vec::with_capacity(ps),
            lits: vec![0; ps],
            run: budget::filled(
                if format::max_run_pages(ps) > 1 {
                    format::MAX_RUN_BYTES
                } else {
                    0
                },
                0,
                "the decoder's run buffer",
            )?,
            version: format::VERSION,
            frame_pages: 0,
            inflate: compress::Scratch::default(),
            stage,
            entropy,
            plain,
            limit,
            stats: DecoderStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The stream followed and the epoch of the last frame applied, once synchronised.
    pub fn position(&self) -> Option<(u64, u64)> {
        self.sync
    }

    /// Whether the last frame applied was a part of an epoch whose remaining parts are still to
    /// come (the replica holds a partly applied epoch).
    pub fn epoch_open(&self) -> bool {
        self.next_part.is_some()
    }

    /// Forgets the stream: the next frame must be a resync frame, from any stream. Use it when
    /// the primary restarted.
    pub fn reset(&mut self) {
        self.sync = None;
        self.next_part = None;
        self.known.clear();
    }

    /// Counters since creation.
    pub fn stats(&self) -> DecoderStats {
        let mut s = self.stats;
        let pages = self.scratch.capacity()
            + self.refs.capacity()
            + self.lits.capacity()
            + self.run.capacity();
        s.memory_bytes = (pages
            + self.stage.memory_bytes()
            + self.entropy.memory_bytes()
            + self.plain.capacity()
            + self.known.memory_bytes()
            + self.pending.memory_bytes()) as u64;
        s
    }

    /// Applies `frame` to flat memory `mem`, where guest address A is `mem[A]`.
    pub fn apply_flat(&mut self, frame: &[u8], mem: &mut [u8]) -> Result<Applied, Error> {
        self.apply(frame, mem)
    }

    /// Validates `frame` whole, then applies it to `replica`. On error nothing was written and
    /// the decoder's state is unchanged.
    pub fn apply<R: Replica + ?Sized>(
        &mut self,
        frame: &[u8],
        replica: &mut R,
    ) -> Result<Applied, Error> {
        let t = Instant::now();
        // an entropy-coded payload is rebuilt into `plain`, taken out of self while in use
        let mut plain = std::mem::take(&mut self.plain);
        let r = self.validate(frame, replica, &mut plain);
        let t1 = Instant::now();
        self.stats.validate_nanos += (t1 - t).as_nanos() as u64;
        let r = match r {
            // the pages the frame sends join the known ones after it is applied: room first
            Ok(_) if !self.known.try_reserve_for(&self.pending) => Err(Error::OutOfMemory {
                what: "the set of pages sent",
                bytes: 0,
            }),
            Ok((h, payload)) => {
                let payload = payload.unwrap_or(&plain);
                self.apply_ops(&h, payload, replica).map(|()| h)
            }
            Err(e) => Err(e),
        };
        self.plain = plain;
        let h = match r {
            Ok(h) => h,
            Err(e) => {
                // an apply-pass error is unreachable for a validated frame; reported, not trusted
                self.stats.rejected += 1;
                return Err(e);
            }
        };
        if h.is_resync() {
            self.known.clear();
        }
        self.known.union_with(&self.pending);
        self.sync = Some((h.stream_id, h.epoch));
        self.next_part = h.is_partial().then(|| h.part + 1);
        let ps = self.cfg.page_size as u64;
        self.stats.frames += 1;
        self.stats.bytes_in += frame.len() as u64;
        self.stats.pages += self.frame_pages;
        self.stats.bytes_out += self.frame_pages * ps;
        self.stats.apply_nanos += t1.elapsed().as_nanos() as u64;
        Ok(Applied {
            epoch: h.epoch,
            resync: h.is_resync(),
            partial: h.is_partial(),
            ops: h.op_count,
        })
    }
}

#[cfg(test)]
mod tests;
