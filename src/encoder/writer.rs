//! The frame writer: ops appended to the open frame, the literal contexts the entropy stage
//! models, and the end of an epoch (entropy coding when it pays, header, checksum).

use super::in_place::{FrameParts, Holes};
use super::stopwatch::Stopwatch;
use super::{count, Kind, Work};
use crate::budget::{grow_to, grow_to_exact, grow_to_stepped};
use crate::compress::Codec;
use crate::config::Fallback;
use crate::encoder::gates::{Gate, Verdict};
use crate::entropy::{self, context, EntropyEncoder};
use crate::error::Error;
use crate::format::ahead::Ahead;
use crate::format::{self, op, varint, Header, HEADER_LEN, TRAILER_LEN};
use crate::stages::bitmap::PageSet;

/// With a link rate, the entropy gate measures a frame on its first ops when it needs a
/// measurement (warm-up, probes), instead of coding it whole: on a fast link the first frame, a
/// full transfer of memory, would otherwise be coded only to learn that coding does not pay (on
/// the JVM trace at 25 Gbit/s that was a third of the encoding time). The models are measured
/// on the first of these sizes (payload bytes, whole ops) as soon as the frame holds four times
/// that (see [`Early`]); the plain tier's probe at the close takes the largest that is at most a
/// quarter of the frame's payload. Smaller frames are measured whole.
const ENTROPY_SAMPLES: [usize; 2] = [ENTROPY_SAMPLE, 1 << 20];

/// The sample the models are measured on while the frame is written ([`Early`]).
pub(super) const ENTROPY_SAMPLE: usize = 256 << 10;

/// Where a frame's first ops of one of [`ENTROPY_SAMPLES`] bytes end (0: not yet) and how many
/// literal contexts they have (`None` when the frame's contexts were already given up).
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    end: usize,
    lit_ctx: Option<usize>,
}

/// The open frame and what the entropy stage needs to know of its ops.
pub(super) struct FrameWriter {
    /// The frame: a header's room, then the ops, but for the pages sent in place (`holes`).
    pub(super) frame: Vec<u8>,
    /// The frame's RAW pages left where the caller holds them ([`Holes`]).
    holes: Holes,
    /// Whether the open frame may leave RAW pages in place: not one the entropy gate is going
    /// to code (the entropy stage reads a payload whole: pages in place are copied in first).
    in_place_ok: bool,
    /// With pages in place, the frame's checksum summed as it is written ([`Ahead`]): each page
    /// as it is left in place, while the zero test's read has it in the processor's cache, and
    /// the buffer's bytes up to it (`buf_fed` of them).
    ahead: Ahead,
    buf_fed: usize,
    /// The entropy stage, and the frame it codes (swapped with `frame` when smaller).
    entropy: EntropyEncoder,
    coded: Vec<u8>,
    /// A sample's payload (the frame's first bytes) copied out of a frame with pages in place,
    /// which keeps them there (see [`contiguous`](Self::contiguous)).
    sample: Vec<u8>,
    /// The context of every literal of the frame's lz4 blocks, in frame order, for the entropy
    /// stage's literal model: the first `lit_ctx_len` elements (the buffer only grows, so
    /// nothing is cleared or refilled per op).
    lit_ctx: Vec<u16>,
    lit_ctx_len: usize,
    /// Whether `lit_ctx` may be used for this frame (false from the start when the models are
    /// not going to code it, their gate shut or the plain form the better buy: no context is
    /// then worked out).
    lit_ctx_ok: bool,
    /// Pages with an op in this frame so far (kept only with the entropy stage). A DICT op on
    /// one of them has a dictionary the decoder cannot see before the frame (the earlier op's
    /// result), so `lit_ctx` is then not used for the frame.
    in_frame: PageSet,
    track_pages: bool,
    /// Where the frame's first ops of each of [`ENTROPY_SAMPLES`] bytes or more end, once they do.
    samples: [Sample; ENTROPY_SAMPLES.len()],
    /// The entropy gate's measurement of the open frame on its first ops.
    early: Early,
    /// The page of the last op (addresses are coded relative to it).
    prev_page: u64,
    pub(super) op_count: u32,
    /// Pages added to the open frame (with or without an op).
    pub(super) pages_in_frame: usize,
    pub(super) stream_id: u64,
    /// Where the epoch's parts stand (with `Config::frame_bytes`).
    pub(super) part: Part,
    /// Bytes of the epoch's frames closed before the open one.
    pub(super) epoch_bytes_closed: usize,
    /// The epoch's frames closed before the open one (the open one's part number).
    pub(super) parts_closed: u64,
    /// The encoder's count of RAW op bytes when the open frame began.
    pub(super) raw_at_start: u64,
    /// The entropy stage's speed in each [`Tier`] as last measured (see [`EntropyRate`]).
    /// `None` until it first ran.
    entropy_rate: [Option<EntropyRate>; 2],
    /// The plain tier's cheapest coding so far of at least [`ENTROPY_SAMPLE`] payload bytes, in
    /// nanoseconds per payload byte (smaller codings are dominated by the tables' fixed cost);
    /// `None` until one. See [`FrameWriter::cannot_pay`].
    plain_floor: Option<f64>,
    /// Frames left uncoded since the plain tier last ran or measured itself (see
    /// [`PLAIN_PROBE_EVERY`]).
    plain_skips: u32,
    /// Frames the plain tier leaves uncoded before it measures itself again: from
    /// [`PLAIN_PROBE_FIRST`], doubled by each probe up to [`PLAIN_PROBE_EVERY`], back to
    /// [`PLAIN_PROBE_FIRST`] when the tier fits the slack.
    plain_probe_after: u32,
    /// Whether the last frame the plain tier left uncoded missed the slack only by
    /// [`SLACK_MARGIN`]: its measured cost fitted, not the margin's more (see
    /// [`FrameWriter::plain_probe_due`]).
    plain_near: bool,
    /// Whether the last frame closed was mostly RAW pages (not coded, the gate not asked).
    last_mostly_raw: bool,
    /// Frames the models' gate said to code with them that the plain tier coded (or nothing),
    /// since the models last ran (see [`MODELS_HELD_MAX`]).
    models_held: u32,
    /// The share of its payload each [`Tier`] saved on the frames and samples it coded, a
    /// moving average a quarter of the way to each new measurement; `None` until it first ran.
    entropy_saved: [Option<f64>; 2],
}

/// Where the entropy stage fits the slack in neither tier, the plain tier still measures itself
/// on the first such frame and again after [`PLAIN_PROBE_FIRST`] frames left uncoded, then after
/// twice as many each time up to this many (coding the frame, or a sample of a large one): until
/// it has run its cost is unknown (the models' rate, three times its own, would keep it from
/// ever running), and a measurement taken while the thread was preempted or its buffers were
/// cold must not keep it shut for long. Where coding cannot pay at all (see
/// `FrameWriter::cannot_pay`) the probes keep this longest interval from the first.
pub(super) const PLAIN_PROBE_EVERY: u32 = 64;

/// The plain tier's first interval between probes (see [`PLAIN_PROBE_EVERY`]).
pub(super) const PLAIN_PROBE_FIRST: u32 = 8;

/// Where the models' gate says they pay but they do not beat the plain tier, they still code
/// one frame in this many (with their literal contexts) to measure themselves again.
pub(super) const MODELS_HELD_MAX: u32 = 64;

/// The most the models save beyond the plain tier, as a share of the payload, that
/// [`FrameWriter::cannot_pay`] allows for. Measured on the same 256 KiB samples of the five
/// traces (`examples/speed --adapt-gbps 1, 2.5`): at most 0.082 (java-hashmap), 0.015-0.063 on
/// average.
const MODELS_BEYOND_PLAIN: f64 = 0.15;

/// How the entropy stage codes a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    /// With context models where they make a stream smaller ([`EntropyEncoder::encode`]).
    Models,
    /// Each stream with one Huffman table ([`EntropyEncoder::encode_plain`]).
    Plain,
}

/// A tier's cost in nanoseconds per payload byte, over the frames and samples it coded: a
/// cheaper measurement replaces it, a dearer one moves it a quarter of the way. What the thread
/// does not control (preemption, buffers cold after other work) makes a measurement dearer,
/// never cheaper, so the cheapest recent one is the best guess of the next; contents that cost
/// more to code still raise it within a few frames.
#[derive(Debug, Clone, Copy, PartialEq)]
struct EntropyRate {
    ns_per_byte: f64,
}

impl EntropyRate {
    /// The nanoseconds to allow for coding the open frame (`frame` bytes, a header's among
    /// them): its measured cost times [`SLACK_MARGIN`].
    fn allowance_ns(&self, frame: usize) -> f64 {
        self.ns_per_byte * frame.saturating_sub(HEADER_LEN) as f64 * SLACK_MARGIN
    }

    /// The rate after one more measurement of `now` nanoseconds per byte.
    fn update(self, now: f64) -> EntropyRate {
        EntropyRate {
            ns_per_byte: if now < self.ns_per_byte {
                now
            } else {
                self.ns_per_byte + (now - self.ns_per_byte) / 4.0
            },
        }
    }
}

/// Slack spent on entropy coding is judged on its measured cost times this: the cost of one
/// frame varies with its contents (and with what else the machine does).
pub(super) const SLACK_MARGIN: f64 = 1.5;

/// Where the open frame stands with the entropy gate measuring it ([`Verdict::Measure`]).
///
/// The models are measured on the frame's first ops while it is being written, not when it
/// closes: a frame whose measurement says coding does not pay then works out no more literal
/// contexts (on a 2.5 Gbit/s link, where coding never pays, the contexts of the warm-up frames
/// cost 5-7% of the encoder's time on the real traces).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Early {
    /// Nothing to measure: the gate opened or closed the frame, or there is no entropy stage.
    Off,
    /// To be measured on its first [`ENTROPY_SAMPLE`] bytes once it holds four times that.
    Due,
    /// Measured: coding the first `bytes` of payload took `ns` and saved `saved` bytes, and the
    /// gate, that measurement scaled to the frame as it then was, said whether coding `pays`.
    Taken {
        ns: u64,
        saved: u64,
        bytes: u64,
        pays: bool,
    },
}

/// The open epoch's frame, when an epoch is sent in parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// A frame is open and takes ops.
    Open,
    /// A part was closed and waits for [`take_frame`](crate::Encoder::take_frame).
    Waiting,
    /// The closed part was taken; the next op opens the next part.
    Taken,
}

impl FrameWriter {
    pub(super) fn new(stream_id: u64, track_pages: bool, page_size: usize) -> FrameWriter {
        FrameWriter {
            frame: Vec::new(),
            holes: Holes::new(page_size),
            in_place_ok: false,
            ahead: Ahead::default(),
            buf_fed: 0,
            entropy: EntropyEncoder::default(),
            coded: Vec::new(),
            sample: Vec::new(),
            lit_ctx: Vec::new(),
            lit_ctx_len: 0,
            lit_ctx_ok: true,
            in_frame: PageSet::default(),
            track_pages,
            samples: Default::default(),
            early: Early::Off,
            prev_page: u64::MAX,
            op_count: 0,
            pages_in_frame: 0,
            stream_id,
            part: Part::Open,
            epoch_bytes_closed: 0,
            parts_closed: 0,
            raw_at_start: 0,
            entropy_rate: [None; 2],
            plain_floor: None,
            plain_skips: 0,
            plain_probe_after: PLAIN_PROBE_FIRST,
            plain_near: false,
            last_mostly_raw: false,
            entropy_saved: [None; 2],
            models_held: 0,
        }
    }

    /// Reserves what a frame of up to `payload` bytes needs (with `entropy`, also its coded form
    /// and the entropy stage's buffers), so that encoding one allocates nothing.
    pub(super) fn reserve(&mut self, payload: usize, entropy: bool) -> Result<(), Error> {
        let frame = HEADER_LEN + payload + TRAILER_LEN;
        if !entropy {
            return grow_to(&mut self.frame, frame, "the frame");
        }
        // the frame and its coded form trade buffers when the coded one is sent: both get room
        // for either
        grow_to(&mut self.frame, Self::coded_len(payload), "the frame")?;
        self.reserve_coding(payload, true)?;
        grow_to(
            &mut self.lit_ctx,
            payload + context::CONTEXT_SLACK,
            "the literal contexts",
        )
    }

    /// Length of a frame whose payload of `payload` bytes is entropy coded, at most.
    fn coded_len(payload: usize) -> usize {
        HEADER_LEN + entropy::max_coded_len(payload) + TRAILER_LEN
    }

    /// Room to entropy-code a payload of `payload` bytes: the coded frame and the stage's
    /// streams (with `contexts`, the literals' contexts too, as many as the payload has bytes;
    /// without, coding makes room for as many as it finds literals). Exactly that much: a whole
    /// epoch's frame is coded once, and the room it leaves is kept.
    fn reserve_coding(&mut self, payload: usize, contexts: bool) -> Result<(), Error> {
        grow_to_exact(
            &mut self.coded,
            Self::coded_len(payload),
            "the entropy-coded frame",
        )?;
        self.entropy
            .reserve(payload, contexts)
            .map_err(|_| Error::OutOfMemory {
                what: "the entropy stage's streams",
                bytes: if contexts { 3 * payload } else { payload },
            })
    }

    /// Makes room in the frame for what adding one more page of `ps` bytes may write (its op, or
    /// a pending run it closes: [`format::max_add_len`]) and the trailer, so that writing it
    /// cannot reallocate: [`Error::OutOfMemory`] when the frame cannot grow.
    pub(super) fn room_for_op(&mut self, ps: usize) -> Result<(), Error> {
        let need = self.frame.len() + format::max_add_len(ps) + TRAILER_LEN;
        grow_to_stepped(&mut self.frame, need, "the frame")?;
        if !self.holes.is_empty() {
            // with pages in place, the room to copy them in and to sum the frame's checksum
            let whole = self.len() + format::max_add_len(ps) + TRAILER_LEN;
            grow_to(&mut self.coded, whole, "the frame")?;
            if !self.ahead.reserve(whole) {
                return Err(Error::OutOfMemory {
                    what: "the frame checksum's block sums",
                    bytes: whole / format::ahead::BLOCK * 64,
                });
            }
        }
        Ok(())
    }

    /// Opens an empty frame; `raw` is the encoder's count of RAW op bytes so far.
    pub(super) fn start(&mut self, raw: u64) {
        self.part = Part::Open;
        self.raw_at_start = raw;
        self.frame.clear();
        self.frame.resize(HEADER_LEN, 0);
        self.holes.clear();
        self.in_place_ok = false;
        self.ahead.reset();
        self.buf_fed = 0;
        self.lit_ctx_len = 0;
        self.samples = Default::default();
        self.early = Early::Off;
        self.in_frame.clear();
        self.lit_ctx_ok = true;
        self.prev_page = u64::MAX;
        self.op_count = 0;
        self.pages_in_frame = 0;
    }

    /// Whether the entropy gate has measured the open frame on its first ops ([`Early`]).
    #[cfg(test)]
    pub(super) fn measured_early(&self) -> bool {
        matches!(self.early, Early::Taken { .. })
    }

    /// Literal contexts worked out for the open frame so far.
    #[cfg(test)]
    pub(super) fn contexts_noted(&self) -> usize {
        self.lit_ctx_len
    }

    /// The measured cost of each tier (see [`Tier`]: with models, plain), in nanoseconds per
    /// payload byte (NaN before it ran).
    #[cfg(test)]
    pub(super) fn entropy_costs(&self) -> [f64; 2] {
        self.entropy_rate
            .map(|r| r.map_or(f64::NAN, |r| r.ns_per_byte))
    }

    /// Sets the measured cost (nanoseconds per payload byte) of coding with models and plain.
    #[cfg(test)]
    pub(super) fn set_entropy_costs(&mut self, models: f64, plain: f64) {
        self.entropy_rate = [models, plain].map(|ns_per_byte| Some(EntropyRate { ns_per_byte }));
    }

    /// Sets the plain tier's cheapest coding of a large payload (nanoseconds per payload byte,
    /// see [`cannot_pay`](Self::cannot_pay)).
    #[cfg(test)]
    pub(super) fn set_plain_floor(&mut self, ns_per_byte: f64) {
        self.plain_floor = Some(ns_per_byte);
    }

    /// The plain tier's cheapest coding of a large payload so far, if it has coded one.
    #[cfg(test)]
    pub(super) fn plain_floor(&self) -> Option<f64> {
        self.plain_floor
    }

    /// Sets the measured share of the payload saved by coding with models and plain.
    #[cfg(test)]
    pub(super) fn set_entropy_saved(&mut self, models: f64, plain: f64) {
        self.entropy_saved = [Some(models), Some(plain)];
    }

    /// Sets the measured cost (nanoseconds per payload byte) of coding with models; the plain
    /// tier as if it never ran.
    #[cfg(test)]
    pub(super) fn set_models_cost_only(&mut self, models: f64) {
        self.set_entropy_costs(models, 0.0);
        self.entropy_rate[Tier::Plain as usize] = None;
    }

    /// The time to keep for coding the open frame with one table a stream (the plain tier's
    /// measured cost times [`SLACK_MARGIN`]), in nanoseconds; 0 before the tier first ran.
    pub(super) fn plain_allowance_ns(&self) -> f64 {
        self.entropy_rate[Tier::Plain as usize].map_or(0.0, |r| r.allowance_ns(self.len()))
    }

    /// The open frame's length in bytes: its buffer and the pages sent in place.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.frame.len() + self.holes.bytes()
    }

    /// The last closed frame as the pieces of a vectored send.
    pub(super) fn parts(&self) -> FrameParts<'_> {
        self.holes.parts(&self.frame)
    }

    /// Forgets the pages left in place (the frame holding them is abandoned): nothing reads them
    /// again.
    pub(super) fn drop_pages_in_place(&mut self) {
        self.holes.clear();
    }

    /// No frame, as parts.
    pub(super) fn no_parts(&self) -> FrameParts<'static> {
        FrameParts::none()
    }

    /// Leaves `page`, the body of the RAW op being written, where it lies, if the open frame
    /// allows it and the room to copy it in later can be had; false when it is to be copied now.
    ///
    /// # Safety
    /// As [`Holes::push`]: `page` stays valid and unchanged while the frame is the encoder's.
    pub(super) unsafe fn leave_in_place(&mut self, page: &[u8]) -> bool {
        // the copy into one buffer (`gather`) then cannot fail
        let whole = self.len() + page.len() + TRAILER_LEN;
        if !self.in_place_ok
            || self.holes.reserve_one().is_err()
            || grow_to(&mut self.coded, whole, "the frame").is_err()
            || !self.ahead.reserve(whole)
        {
            return false;
        }
        let at = self.frame.len();
        self.ahead.feed(&self.frame[self.buf_fed..at]);
        self.ahead.feed(page);
        self.buf_fed = at;
        // SAFETY: the caller's promise
        unsafe { self.holes.push(at, page) };
        true
    }

    /// Copies the pages sent in place into the frame's buffer, which then holds the whole frame
    /// (an error when the memory cannot be had, never after [`leave_in_place`](Self::leave_in_place)
    /// made the room; the frame is then as it was). The checksum's sums start over: the buffer's
    /// offsets moved, and pages left in place later are summed from its start.
    pub(super) fn gather(&mut self) -> Result<(), Error> {
        if self.holes.is_empty() {
            return Ok(());
        }
        self.holes.gather(&mut self.frame, &mut self.coded)?;
        self.ahead.reset();
        self.buf_fed = 0;
        Ok(())
    }

    /// Makes the open frame's payload up to `end` readable as one slice for the entropy stage
    /// to code: the whole frame has its pages in place copied in ([`gather`](Self::gather)); a
    /// sample of a frame with pages in place (its first ops, 256 KiB or 1 MiB of a frame that
    /// may hold many MiB of pages) is copied out alone, and the frame keeps its pages where they
    /// lie, to be sent from there when it is not coded. An error as `gather`'s when the memory
    /// cannot be had.
    pub(super) fn contiguous(&mut self, end: usize) -> Result<(), Error> {
        if self.holes.is_empty() || end >= self.len() {
            return self.gather();
        }
        let n = end - HEADER_LEN;
        grow_to(&mut self.sample, n, "the entropy stage's sample")?;
        self.sample.resize(n, 0);
        self.holes
            .read_at(&self.frame, HEADER_LEN, &mut self.sample[..n]);
        Ok(())
    }

    /// Bytes of buffers held, the frame's and its coded form's among them.
    pub(super) fn memory_bytes(&self) -> usize {
        self.frame.capacity()
            + self.coded.capacity()
            + self.entropy.memory_bytes()
            + self.sample.capacity()
            + 2 * self.lit_ctx.capacity()
            + self.holes.memory_bytes()
            + self.ahead.memory_bytes()
    }

    /// Appends an op's tag and page address to the frame; returns where it starts.
    pub(super) fn begin_op(&mut self, tag: u8, page_idx: u64) -> usize {
        let start = self.len();
        self.named(page_idx);
        self.frame.push(tag);
        let rel = page_idx.wrapping_sub(self.prev_page.wrapping_add(1)) as i64;
        varint::put(&mut self.frame, varint::zigzag(rel));
        self.prev_page = page_idx;
        start
    }

    /// Records that an op of the frame writes page `page_idx` (every op's first page is recorded
    /// by [`begin_op`](Self::begin_op)).
    pub(super) fn named(&mut self, page_idx: u64) {
        // the record serves the literal contexts only
        if self.track_pages && self.lit_ctx_ok && !self.in_frame.try_insert(page_idx) {
            // without the record a DICT op's contexts cannot be trusted: code without them
            self.lit_ctx_ok = false;
        }
    }

    /// The page the next op's address is relative to: the last page of the op just begun
    /// (for an op of several pages).
    pub(super) fn set_prev_page(&mut self, page_idx: u64) {
        self.prev_page = page_idx;
    }

    /// Appends to the frame's literal contexts those of the lz4 `block`, which decodes to `out`
    /// with `dict` before it (nothing once the frame is to be coded without them).
    pub(super) fn note_block_contexts(&mut self, block: &[u8], dict: &[u8], out: &[u8]) {
        if !self.lit_ctx_ok {
            return;
        }
        let need = self.lit_ctx_len + out.len() + context::CONTEXT_SLACK;
        let have = self.lit_ctx.len();
        if have < need {
            // by a quarter: a whole epoch's frame has tens of millions of literals
            let want = need.max(have + have / 4);
            if self.lit_ctx.try_reserve_exact(want - have).is_err() {
                // the frame is coded without literal contexts
                self.lit_ctx_ok = false;
                return;
            }
            self.lit_ctx.resize(want, 0);
        }
        self.lit_ctx_len += context::lz4_literal_contexts_into(
            block,
            dict,
            out,
            &mut self.lit_ctx[self.lit_ctx_len..],
        );
    }

    /// Counts the op that began at `start`; returns its length in bytes.
    pub(super) fn finish_op(&mut self, start: usize) -> u64 {
        self.op_count += 1;
        let len = self.len();
        for (sample, &size) in self.samples.iter_mut().zip(&ENTROPY_SAMPLES) {
            if sample.end == 0 && len - HEADER_LEN >= size {
                *sample = Sample {
                    end: len,
                    lit_ctx: self.lit_ctx_ok.then_some(self.lit_ctx_len),
                };
            }
        }
        (len - start) as u64
    }

    /// Takes one entropy coding of `payload` bytes in `tier`, which took `ns` and saved `saved`
    /// bytes, into [`entropy_rate`](Self::entropy_rate) and
    /// [`entropy_saved`](Self::entropy_saved). `full` is false for the models run without
    /// literal contexts (the literals then take one table): their rate is taken, not their
    /// share, which would understate what the models save and keep them held back; a full run
    /// of the models is also their re-measurement (see [`MODELS_HELD_MAX`]).
    fn note_entropy_rate(&mut self, tier: Tier, ns: u64, payload: u64, saved: u64, full: bool) {
        // (the plain tier's floor is noted apart, see `note_plain_floor`)
        if payload == 0 {
            return;
        }
        if full {
            self.note_entropy_share(tier, payload, saved);
        }
        let now = ns as f64 / payload as f64;
        let rate = &mut self.entropy_rate[tier as usize];
        *rate = Some(match *rate {
            None => EntropyRate { ns_per_byte: now },
            Some(r) => r.update(now),
        });
    }

    /// Takes one coding in `tier` of `payload` bytes (more than 0) that saved `saved` bytes
    /// into [`entropy_saved`](Self::entropy_saved); a full run of the models is also their
    /// re-measurement (see [`MODELS_HELD_MAX`]).
    fn note_entropy_share(&mut self, tier: Tier, payload: u64, saved: u64) {
        let share = saved as f64 / payload as f64;
        let avg = &mut self.entropy_saved[tier as usize];
        *avg = Some(avg.map_or(share, |a| a + (share - a) / 4.0));
        if tier == Tier::Models {
            self.models_held = 0;
        }
    }

    /// Whether the models' saving beyond the plain tier's pays for their time beyond it on a
    /// link of `link_rate` bytes a second, both tiers as last measured (per payload byte). True
    /// until both have run, and without a link rate: the models' own gate decides then. On the
    /// memory of a guest in 512 KiB packets the models save about 1% of the payload more than
    /// the plain tier in twice its time: at 1 Gbit/s the plain tier's frame ships sooner.
    fn models_beat_plain(&self, link_rate: u64) -> bool {
        let (models, plain) = (Tier::Models as usize, Tier::Plain as usize);
        let (Some(m), Some(p), Some(ms), Some(ps)) = (
            self.entropy_rate[models],
            self.entropy_rate[plain],
            self.entropy_saved[models],
            self.entropy_saved[plain],
        ) else {
            return true;
        };
        link_rate == 0 || (ms - ps) * 1e9 > (m.ns_per_byte - p.ns_per_byte) * link_rate as f64
    }

    /// Whether the plain tier, as last measured, pays for itself on a link of `link_rate`
    /// bytes a second: the link time of the share of a payload it saves exceeds its time per
    /// payload byte. False until it has run and saved (its probes measure it). The models'
    /// gate weighs the models alone: behind the link (no slack) with that gate shut, a frame
    /// the plain tier codes for less than the link time it saves still ships sooner coded.
    fn plain_pays(&self, link_rate: u64) -> bool {
        let p = Tier::Plain as usize;
        match (self.entropy_rate[p], self.entropy_saved[p]) {
            (Some(r), Some(s)) => link_rate == 0 || s * 1e9 > r.ns_per_byte * link_rate as f64,
            _ => false,
        }
    }

    /// Whether a frame the models' gate says to code with them is: where they beat the plain
    /// tier ([`models_beat_plain`](Self::models_beat_plain)), and once after
    /// [`MODELS_HELD_MAX`] frames held back from them (their measurements, and so the
    /// comparison, would otherwise never change).
    fn models_preferred(&self, link_rate: u64) -> bool {
        self.models_held >= MODELS_HELD_MAX || self.models_beat_plain(link_rate)
    }

    /// Takes one plain coding of `payload` bytes that took `ns`, the copy of pages sent in place
    /// left out, into the plain tier's floor (see `plain_floor`): codings under
    /// [`ENTROPY_SAMPLE`] bytes are not taken.
    fn note_plain_floor(&mut self, ns: u64, payload: u64) {
        if payload >= ENTROPY_SAMPLE as u64 {
            let now = ns as f64 / payload as f64;
            self.plain_floor = Some(self.plain_floor.map_or(now, |f| f.min(now)));
        }
    }

    /// Whether the plain tier codes the open frame to measure itself (see
    /// [`PLAIN_PROBE_EVERY`]): where coding cannot pay on a link of `link_rate` bytes a second
    /// ([`cannot_pay`](Self::cannot_pay)), only after [`PLAIN_PROBE_EVERY`] frames left uncoded
    /// each time, so that a first measurement made dear by the machine is still corrected.
    /// On the frame after one that missed the slack only by [`SLACK_MARGIN`] (`plain_near`),
    /// always: the sample it then codes (a quarter of the frame at most; a frame too small for
    /// one is coded whole) costs at most what fitted, and a measurement made dear by cold
    /// buffers, a few percent above the mark,
    /// would otherwise leave [`PLAIN_PROBE_FIRST`] frames uncoded (mariadb-oltp at 1 Gbit/s, in
    /// one run of seven: epochs 1-7, 35% more bytes).
    fn plain_probe_due(&self, link_rate: u64) -> bool {
        let after = if self.cannot_pay(link_rate) {
            PLAIN_PROBE_EVERY
        } else {
            self.plain_probe_after
        };
        self.entropy_rate[Tier::Plain as usize].is_none()
            || self.plain_near
            || self.plain_skips >= after
    }

    /// Whether entropy coding, in either tier, can never pay for its time on a link of
    /// `link_rate` bytes a second: where coding a payload byte (the plain tier's cheapest coding
    /// seen, see `plain_floor`; the models do that work and more) takes longer than sending the
    /// most of it coding can save, no frame repays it. That most is the share of its payload
    /// the plain tier has saved on average and what the models may save beyond it (twice that
    /// share, at most [`MODELS_BEYOND_PLAIN`] more), at most the whole payload, and the whole
    /// payload until the plain tier has measured a share.
    /// The gates then stop measuring the stage (the models' warm-up and probes, the plain tier's
    /// probes but after [`PLAIN_PROBE_EVERY`] frames left uncoded, which also find memory that
    /// turned compressible): on py-sqlite at 10 Gbit/s, where a payload byte takes 0.8 ns on the
    /// link and the plain tier 1.9 ns to code, those measurements took a tenth of the encoder's
    /// time. The slack still codes a frame where it covers the time.
    fn cannot_pay(&self, link_rate: u64) -> bool {
        let most = self.entropy_saved[Tier::Plain as usize]
            .map_or(1.0, |s| (2.0 * s).min(s + MODELS_BEYOND_PLAIN).min(1.0));
        link_rate > 0
            && self
                .plain_floor
                .is_some_and(|f| f * link_rate as f64 >= most * 1e9)
    }

    /// The sample the entropy gate measures a frame of `payload` bytes on, if it is large enough
    /// to have one (see [`ENTROPY_SAMPLES`]).
    fn sample_for(&self, payload: u64) -> Option<Sample> {
        self.samples
            .iter()
            .zip(&ENTROPY_SAMPLES)
            .rev()
            .find(|(s, &size)| s.end > 0 && payload >= 4 * size as u64)
            .map(|(s, _)| *s)
    }

    /// Entropy-codes the frame's ops up to `end` in `tier` (with the first `lit_ctx` literal
    /// contexts, if any, for [`Tier::Models`]) into `coded` after a header's room; the length
    /// of `coded`, or `None` when the ops do not route (never for the encoder's own).
    fn entropy_code(
        &mut self,
        tier: Tier,
        end: usize,
        lit_ctx: Option<usize>,
        ps: usize,
        bs: usize,
    ) -> Option<usize> {
        // the payload is read as one slice (`end` counts the pages in place); room first: a
        // frame whose coding cannot have its memory is sent as it is
        self.contiguous(end).ok()?;
        self.reserve_coding(end - HEADER_LEN, false).ok()?;
        self.coded.clear();
        self.coded.resize(HEADER_LEN, 0);
        let payload = if self.holes.is_empty() {
            &self.frame[HEADER_LEN..end]
        } else {
            &self.sample[..end - HEADER_LEN]
        };
        let r = match tier {
            Tier::Models => self.entropy.encode(
                payload,
                ps,
                bs,
                lit_ctx.map(|n| &self.lit_ctx[..n]),
                &mut self.coded,
            ),
            Tier::Plain => self.entropy.encode_plain(payload, ps, bs, &mut self.coded),
        };
        debug_assert_eq!(r, Ok(()), "the encoder's own payload routes");
        debug_assert!(
            !self.entropy.contexts_mismatched(),
            "the encoder's literal contexts match its ops"
        );
        r.ok().map(|()| self.coded.len())
    }
}

impl Work {
    /// Opens an empty frame. When the models are not going to code it (their gate shut, or
    /// open where the plain form is the better buy, see [`FrameWriter::models_preferred`]), the
    /// frame's literal contexts are not worked out (on a link where coding does not pay they
    /// cost 4-5% of the encoder's time for nothing); when it is going to measure it, it does so on the frame's
    /// first ops ([`Early`]), unless the frame before was mostly RAW pages: the gate is never
    /// asked about those, and on a link as fast as memory every frame is one. The gate is asked
    /// for its verdict only when the frame closes, and nothing changes it in between (were it
    /// to, a frame without contexts is still coded, its literals with one table). A frame the gate is going to code keeps no RAW page in place
    /// (it would be copied in for the coding); in any other, a frame coded after all (a probe,
    /// the slack) has its pages copied in first.
    pub(super) fn start_frame(&mut self) {
        self.out.start(self.stats.raw.bytes);
        self.out.in_place_ok = true;
        if !self.cfg.stages.entropy {
            return;
        }
        let link = self.cfg.link_rate;
        match self.gates.entropy.peek(link) {
            Verdict::Closed => self.out.lit_ctx_ok = false,
            // no measurement where coding cannot pay (see `cannot_pay`)
            Verdict::Measure if self.out.cannot_pay(link) => self.out.lit_ctx_ok = false,
            // after a frame of mostly RAW pages (not coded, the gate not asked) the next is
            // most likely one too: it is not measured early and its literal contexts are not
            // worked out (one that turns out otherwise is judged at its close as any other,
            // and coded without them)
            Verdict::Measure if self.out.last_mostly_raw => self.out.lit_ctx_ok = false,
            Verdict::Measure => self.out.early = Early::Due,
            Verdict::Open => {
                self.out.in_place_ok = false;
                // open, but the plain tier is the better buy: contexts only the models use
                // would be worked out for nothing (until the models are due to measure
                // themselves again, see MODELS_HELD_MAX)
                if !self.out.models_preferred(self.cfg.link_rate) {
                    self.out.lit_ctx_ok = false;
                }
            }
        }
    }

    /// Whether the open frame is due its early measurement ([`Early`]): called after each page.
    pub(super) fn early_measure_due(&self) -> bool {
        self.out.early == Early::Due && self.out.len() - HEADER_LEN >= 4 * ENTROPY_SAMPLE
    }

    /// Measures the models on the open frame's first ops ([`Early`]); a frame the measurement
    /// says not to code works out no more literal contexts. A frame made mostly of RAW pages so
    /// far waits (at the close such a frame is not coded at all).
    pub(super) fn measure_early(&mut self) {
        let payload = (self.out.len() - HEADER_LEN) as u64;
        if self.mostly_raw(payload) {
            return;
        }
        // the first of ENTROPY_SAMPLES is ENTROPY_SAMPLE
        let sample = self.out.samples[0];
        if !self.plain_first_leaves_room(sample.end) {
            self.out.lit_ctx_ok = false;
            self.out.early = Early::Off;
            return;
        }
        let (ns, saved) = self.code_sample(Tier::Models, sample.end, sample.lit_ctx);
        let bytes = (sample.end - HEADER_LEN) as u64;
        let pays = self
            .sample_measured(ns, saved, bytes, payload)
            .worth_it(self.cfg.link_rate);
        // coded anyway where the slack covers it (see `entropy_code_frame`): the slack at this
        // point stands for the frame's, both growing with the frame
        let coded = pays && self.out.models_preferred(self.cfg.link_rate);
        if !coded && !self.entropy_fits_slack(Tier::Models) {
            self.out.lit_ctx_ok = false;
        }
        self.out.early = Early::Taken {
            ns,
            saved,
            bytes,
            pays,
        };
    }

    /// Whether the open frame's `payload` bytes are mostly pages sent RAW: with a compressor
    /// those were found incompressible, and such a payload is not worth coding (without one,
    /// RAW pages may well be compressible).
    fn mostly_raw(&self, payload: u64) -> bool {
        let raw = self.stats.raw.bytes - self.out.raw_at_start;
        self.cfg.fallback != Fallback::None && raw * 8 >= payload * 7
    }

    /// Closes the open frame of `epoch` (with `partial`, a part of the epoch with more to come):
    /// entropy codes its payload when the stage is on, the payload is not mostly incompressible
    /// pages and the gate lets it, then writes the header and the checksum. The epoch's first
    /// frame after a resync carries the resync flag.
    pub(super) fn close_frame(&mut self, epoch: u64, partial: bool) {
        self.flush_run(true);
        let mut flags = if self.epochs.resync_pending {
            format::FLAG_RESYNC
        } else {
            0
        };
        if partial {
            flags |= format::FLAG_PARTIAL;
        }
        if self.entropy_code_frame() {
            flags |= format::FLAG_ENTROPY;
        }
        let header = Header {
            flags,
            page_size: self.cfg.page_size as u32,
            block_size: self.cfg.block_size as u32,
            op_count: self.out.op_count,
            stream_id: self.out.stream_id,
            epoch,
            payload_len: 0,
            part: self.out.parts_closed,
        };
        if self.out.holes.is_empty() {
            format::seal(&mut self.out.frame, header);
        } else {
            let out = &mut self.out;
            let (holes, ahead, buf_fed) = (&out.holes, &mut out.ahead, out.buf_fed);
            format::seal_with(&mut out.frame, holes.bytes(), header, |buf| {
                ahead.feed(&buf[buf_fed..]);
                let len = ahead.fed();
                let mut head = [0u8; 64];
                holes.read_at(buf, 0, &mut head);
                let from = Ahead::tail_from(len);
                let mut tail = [0u8; format::ahead::BLOCK + 64];
                let tail = &mut tail[..len - from];
                holes.read_at(buf, from, tail);
                ahead.finish(&head, tail, len)
            });
        }
        self.out.parts_closed += 1;
        if self.epochs.resync_pending {
            self.stats.resyncs += 1;
            self.epochs.resync_pending = false;
        }
        self.stats.frames += 1;
        self.stats.bytes_out += self.out.len() as u64;
        self.out.epoch_bytes_closed += self.out.len();
    }

    /// Replaces the frame's payload with its entropy-coded form when that is smaller and the
    /// stage is worth running; true if it did.
    fn entropy_code_frame(&mut self) -> bool {
        let (ps, bs) = (self.cfg.page_size, self.cfg.block_size);
        // with a compressor, pages sent RAW were found incompressible; a payload made of little
        // else is not worth coding (without one, RAW pages may well be compressible)
        let payload = (self.out.len() - HEADER_LEN) as u64;
        self.out.last_mostly_raw = payload > 0 && self.mostly_raw(payload);
        if !self.cfg.stages.entropy || payload == 0 || self.out.last_mostly_raw {
            return false;
        }
        let preferred = self.out.models_preferred(self.cfg.link_rate);
        let pays = match self.gates.entropy.verdict(self.cfg.link_rate) {
            Verdict::Open => true,
            Verdict::Closed => false,
            // a large frame is measured on its first ops: coding it whole to learn that it
            // does not pay would cost what the gate is there to save
            Verdict::Measure => match self.out.early {
                Early::Taken {
                    ns,
                    saved,
                    bytes,
                    pays,
                } => {
                    // the measurement stays the gate's only when the models do not then code
                    // the frame (coded, the whole frame's measurement replaces it)
                    if !(pays && preferred) {
                        self.gates.entropy = self.sample_measured(ns, saved, bytes, payload);
                    }
                    pays
                }
                Early::Off | Early::Due if self.out.cannot_pay(self.cfg.link_rate) => false,
                Early::Off | Early::Due => match self.out.sample_for(payload) {
                    None => true,
                    Some(sample) => self.entropy_sample_pays(sample, payload, preferred),
                },
            },
        };
        if pays && !preferred {
            self.out.models_held += 1;
        }
        let models = pays && preferred || self.entropy_fits_slack(Tier::Models);
        // one table a stream (a third to a half of the models' time for most of their saving)
        // where the gate says coding pays but the models are not the better buy (the plain
        // form then pays too: it saves at most what the models do less, for that much less
        // time), where its own measurements say it pays, or where it fits the slack
        let tier = if models {
            Tier::Models
        } else if pays
            || self.out.plain_pays(self.gate_rate)
            || self.entropy_fits_slack(Tier::Plain)
        {
            self.out.plain_skips = 0;
            self.out.plain_probe_after = PLAIN_PROBE_FIRST;
            Tier::Plain
        } else if self.plain_probe_pays(payload) {
            self.out.plain_skips = 0;
            Tier::Plain
        } else {
            self.out.plain_near = self.plain_fits_unmargined();
            self.out.plain_skips += 1;
            self.stats.skipped_entropy += 1;
            return false;
        };
        self.out.plain_near = false;
        let t = Stopwatch::start();
        let len = self.out.len();
        let copied_ns = self.contiguous_timed(len);
        let w = &mut self.out;
        let ctx = w.lit_ctx_ok.then_some(w.lit_ctx_len);
        let coded = w.entropy_code(tier, len, ctx, ps, bs);
        let saved = coded.map_or(0, |n| len.saturating_sub(n)) as u64;
        if saved > 0 {
            self.stats.entropy_frames += 1;
            self.stats.entropy_saved += saved;
            std::mem::swap(&mut w.frame, &mut w.coded);
        }
        let ns = t.ns();
        self.stats.nanos.entropy += ns;
        if tier == Tier::Models {
            self.gates.entropy.record(ns, saved);
        }
        let full = tier == Tier::Plain || ctx.is_some();
        self.out.note_entropy_rate(tier, ns, payload, saved, full);
        if tier == Tier::Plain {
            self.out
                .note_plain_floor(ns.saturating_sub(copied_ns), payload);
        }
        saved > 0
    }

    /// Whether coding the open frame in `tier`, at the speed measured there, still ends the
    /// epoch's encoding before its frames, with this one as it is now, are through the link.
    /// The epoch then ships no later than it would uncoded (encoding and sending overlap: it
    /// ships when the later of the two ends, and the coded frame only shortens the link's part)
    /// and sends fewer bytes, whatever the gate (which weighs the stage's time against the link
    /// time it saves, as if nothing overlapped) says. A tier that never ran does not fit (the
    /// plain tier then runs as a probe, see [`PLAIN_PROBE_EVERY`]; the models run when their
    /// gate says).
    fn entropy_fits_slack(&self, tier: Tier) -> bool {
        self.fits_slack_with(tier, 1.0)
    }

    /// Whether the plain tier's measured cost of coding the open frame, without
    /// [`SLACK_MARGIN`], fits the slack (see [`entropy_fits_slack`](Self::entropy_fits_slack)).
    fn plain_fits_unmargined(&self) -> bool {
        self.fits_slack_with(Tier::Plain, 1.0 / SLACK_MARGIN)
    }

    /// [`entropy_fits_slack`](Self::entropy_fits_slack) with the tier's allowance times `scale`.
    fn fits_slack_with(&self, tier: Tier, scale: f64) -> bool {
        let Some(r) = self.out.entropy_rate[tier as usize] else {
            return false;
        };
        let frame = self.out.len();
        self.epochs.slack_covers(
            self.out.epoch_bytes_closed + frame,
            self.cfg.link_rate,
            r.allowance_ns(frame) * scale,
        )
    }

    /// When the plain tier is due to measure itself (see [`PLAIN_PROBE_EVERY`]): whether it codes
    /// the open frame of `payload` bytes. A frame with a sample (see [`ENTROPY_SAMPLES`]) is
    /// measured on it and coded only if the slack then covers it (the first frame, all of
    /// memory, is not coded whole just to learn that coding does not pay on a fast link); a
    /// smaller one is coded whole.
    ///
    /// Where coding cannot pay ([`FrameWriter::cannot_pay`]) the probe measures the tier's rate
    /// for the slack alone: while no slack would cover coding the frame even at the tier's
    /// cheapest cost seen (its floor), it waits for the longest interval as a probe of a known
    /// rate does (a 1 MiB sample costs a few percent of proc-node's encoding at 10 Gbit/s).
    fn plain_probe_pays(&mut self, payload: u64) -> bool {
        let link = self.cfg.link_rate;
        if !self.out.plain_probe_due(link) {
            return false;
        }
        if self.out.entropy_rate[Tier::Plain as usize].is_none()
            && self.out.cannot_pay(link)
            && self.out.plain_skips < PLAIN_PROBE_EVERY
            && !self.floor_fits_slack()
        {
            return false;
        }
        let w = &mut self.out;
        if w.entropy_rate[Tier::Plain as usize].is_some() && !w.plain_near {
            w.plain_probe_after = (w.plain_probe_after * 2).min(PLAIN_PROBE_EVERY);
        }
        let Some(Sample { end, .. }) = w.sample_for(payload) else {
            return true;
        };
        w.plain_skips = 0;
        self.code_sample(Tier::Plain, end, None);
        self.entropy_fits_slack(Tier::Plain)
    }

    /// Whether the slack would cover coding the open frame at the plain tier's floor (its
    /// cheapest coding of a large payload; true before it has one), as
    /// [`entropy_fits_slack`](Self::entropy_fits_slack) judges a measured rate.
    fn floor_fits_slack(&self) -> bool {
        let Some(floor) = self.out.plain_floor else {
            return true;
        };
        let frame = self.out.len();
        let rate = EntropyRate { ns_per_byte: floor };
        self.epochs.slack_covers(
            self.out.epoch_bytes_closed + frame,
            self.cfg.link_rate,
            rate.allowance_ns(frame),
        )
    }

    /// Entropy-codes the frame's ops up to `end` in `tier` (see
    /// [`FrameWriter::entropy_code`]) to measure it: the time it took (counted as the stage's)
    /// and the bytes it saved, also taken into the tier's rate.
    fn code_sample(&mut self, tier: Tier, end: usize, lit_ctx: Option<usize>) -> (u64, u64) {
        let (ns, saved, copied_ns) = self.code_timed(tier, end, lit_ctx);
        let full = tier == Tier::Plain || lit_ctx.is_some();
        let bytes = (end - HEADER_LEN) as u64;
        self.out.note_entropy_rate(tier, ns, bytes, saved, full);
        if tier == Tier::Plain {
            self.out
                .note_plain_floor(ns.saturating_sub(copied_ns), bytes);
        }
        (ns, saved)
    }

    /// Entropy-codes the frame's ops up to `end` in `tier`, counting the time as the stage's:
    /// the nanoseconds it took, the bytes it saved, and the nanoseconds of that spent copying
    /// pages in place into the frame.
    fn code_timed(&mut self, tier: Tier, end: usize, lit_ctx: Option<usize>) -> (u64, u64, u64) {
        let t = Stopwatch::start();
        let copied_ns = self.contiguous_timed(end);
        let (ps, bs) = (self.cfg.page_size, self.cfg.block_size);
        let coded = self.out.entropy_code(tier, end, lit_ctx, ps, bs);
        let saved = coded.map_or(0, |n| end.saturating_sub(n)) as u64;
        let ns = t.ns();
        self.stats.nanos.entropy += ns;
        (ns, saved, copied_ns)
    }

    /// Makes the open frame's payload up to `end` one slice, as a coding must first
    /// ([`FrameWriter::contiguous`]: pages in place copied in or, for a sample, copied out), and
    /// returns the nanoseconds the copy took. A coding's time counts the copy (a frame coded
    /// after all pays for it, and the slack must cover it), the plain tier's floor does not
    /// (see `FrameWriter::cannot_pay`): it depends on where the pages lie, not on the coder. A
    /// failure to get the memory is [`FrameWriter::entropy_code`]'s to report.
    fn contiguous_timed(&mut self, end: usize) -> u64 {
        let t = Stopwatch::start();
        let _ = self.out.contiguous(end);
        t.ns()
    }

    /// Codes the frame's first ops (`sample`) and tells whether coding the whole frame of
    /// `payload` bytes would pay at the link rate, scaling the sample's cost and saving. The
    /// measurement stays the gate's only when the models do not then code the frame (it does
    /// not pay, or the models are not `preferred` over the plain form); coded with them, the
    /// whole frame's measurement replaces it.
    fn entropy_sample_pays(&mut self, sample: Sample, payload: u64, preferred: bool) -> bool {
        let Sample { end, lit_ctx } = sample;
        if !self.plain_first_leaves_room(end) {
            return false;
        }
        let (ns, saved) = self.code_sample(Tier::Models, end, lit_ctx);
        let measured = self.sample_measured(ns, saved, (end - HEADER_LEN) as u64, payload);
        let pays = measured.worth_it(self.cfg.link_rate);
        if !(pays && preferred) {
            self.gates.entropy = measured;
        }
        pays
    }

    /// Before the models are first measured on a sample (the ops up to `end`): codes it in the
    /// plain tier where that has no floor yet, and tells whether coding may still pay on the
    /// link ([`FrameWriter::cannot_pay`]). The models do the plain tier's work and more, so
    /// where it cannot pay neither can they, and their measurement, about three times the plain
    /// tier's time, is not made (at 2.5 Gbit/s the models' warm-up samples were 2% of
    /// proc-node's encoding). With the floor known, `cannot_pay` keeps the gates from measuring
    /// (see `start_frame`), so the plain tier codes a sample here at most once.
    ///
    /// The sample gives the plain tier its floor and its share, not its rate: with both tiers'
    /// rates known, [`models_beat_plain`](FrameWriter::models_beat_plain) may prefer the plain
    /// tier, and at slow links it did so for frames the models coded before (proc-node at 0.1
    /// Gbit/s sent 6% more); the plain tier's rate comes from its own codings, as before.
    fn plain_first_leaves_room(&mut self, end: usize) -> bool {
        if self.out.plain_floor.is_none() {
            let (ns, saved, copied_ns) = self.code_timed(Tier::Plain, end, None);
            let bytes = (end - HEADER_LEN) as u64;
            self.out.note_entropy_share(Tier::Plain, bytes, saved);
            self.out
                .note_plain_floor(ns.saturating_sub(copied_ns), bytes);
        }
        !self.out.cannot_pay(self.cfg.link_rate)
    }

    /// The entropy gate after a use measured on a sample of `bytes` payload bytes (coding it
    /// took `ns` and saved `saved` bytes), scaled to a frame of `payload` bytes.
    fn sample_measured(&self, ns: u64, saved: u64, bytes: u64, payload: u64) -> Gate {
        let scale = payload as f64 / bytes as f64;
        let mut measured = self.gates.entropy;
        measured.record((ns as f64 * scale) as u64, (saved as f64 * scale) as u64);
        measured
    }

    /// Appends the op held in `best` (tag byte, then body) for `page_idx`, whose content is
    /// `page` and (for a DICT op) whose dictionary is `old`; notes the contexts of its lz4
    /// literals.
    pub(super) fn emit(&mut self, page_idx: u64, kind: Kind, page: &[u8], old: &[u8]) {
        self.flush_run(false);
        // no op is longer than the page sent RAW (which bounds a frame of an epoch in parts)
        if self.page.best.len() > 1 + page.len() {
            return self.emit_raw(page_idx, page);
        }
        if self.cfg.stages.entropy {
            self.note_contexts(page_idx, kind, page, old);
        }
        let start = self.out.begin_op(self.page.best[0], page_idx);
        self.out.frame.extend_from_slice(&self.page.best[1..]);
        let n = self.out.finish_op(start);
        let s = &mut self.stats;
        match kind {
            Kind::Delta => count(&mut s.delta, n),
            Kind::Dict => count(&mut s.dict, n),
            Kind::Whole => count(&mut s.compressed, n),
            Kind::Blocks => {
                count(&mut s.blocks, n);
                let b = self.page.blocks;
                s.zero_blocks += b.zero;
                s.shared_blocks += b.shared;
                s.kept_blocks += b.kept;
                s.literal_blocks += b.literal;
            }
        }
    }

    /// Appends to `lit_ctx` the contexts of the literals of the lz4 block `best` holds, if any.
    pub(super) fn note_contexts(&mut self, page_idx: u64, kind: Kind, page: &[u8], old: &[u8]) {
        if !self.out.lit_ctx_ok {
            return;
        }
        let codec = self.page.best[0] >> 4;
        let mut pos = 1;
        let (dict, out): (&[u8], &[u8]) = match kind {
            Kind::Dict if self.out.in_frame.contains(page_idx) => {
                self.out.lit_ctx_ok = false;
                return;
            }
            Kind::Dict => (old, page),
            Kind::Whole if codec == Codec::Lz4 as u8 => (&[], page),
            Kind::Blocks if codec == Codec::Lz4 as u8 => {
                // skip the block map and the references
                let nblocks = self.cfg.blocks_per_page();
                pos += nblocks.div_ceil(4);
                let refs = self.page.blocks.shared;
                for _ in 0..2 * refs {
                    varint::get(&self.page.best, &mut pos);
                }
                (
                    &[],
                    if self.lits_whole() {
                        page
                    } else {
                        &self.page.literals[..]
                    },
                )
            }
            _ => return,
        };
        let Some(n) = varint::get(&self.page.best, &mut pos) else {
            debug_assert!(false, "an op of our own has its body length");
            return;
        };
        // (`best` taken out while its block is read: the contexts go into `self.out`)
        let best = std::mem::take(&mut self.page.best);
        self.out
            .note_block_contexts(&best[pos..pos + n as usize], dict, out);
        self.page.best = best;
    }

    pub(super) fn emit_raw(&mut self, page_idx: u64, page: &[u8]) {
        self.flush_run(false);
        let start = self.out.begin_op(op::RAW, page_idx);
        // SAFETY: `page_in_place` is set only while `add_page_in_place` encodes `page`, whose
        // caller keeps it valid and unchanged while the frame is the encoder's.
        if !(self.page_in_place && unsafe { self.out.leave_in_place(page) }) {
            self.out.frame.extend_from_slice(page);
        }
        let n = self.out.finish_op(start);
        count(&mut self.stats.raw, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample of a frame with pages in place (its first ops) is coded from a copy of its
    /// bytes: the same coded bytes as from the frame with its pages copied in, and the frame
    /// keeps its pages where they lie; coding the whole frame copies them in.
    #[test]
    #[cfg_attr(miri, ignore)] // (the entropy stage's tables take minutes under Miri)
    fn a_sample_is_coded_from_a_copy_and_the_frame_keeps_its_pages_in_place() {
        let (ps, bs) = (4096, 256);
        let pages: Vec<Vec<u8>> = (0..8u8)
            .map(|p| {
                (0..ps)
                    .map(|i| b"some text, page "[(i + p as usize) % 16])
                    .collect()
            })
            .collect();
        let build = || {
            let mut w = FrameWriter::new(0, true, ps);
            w.start(0);
            w.in_place_ok = true;
            for (i, page) in pages.iter().enumerate() {
                let start = w.begin_op(op::RAW, i as u64);
                // SAFETY: `pages` lives, unchanged, until the end of the test
                assert!(unsafe { w.leave_in_place(page) });
                w.finish_op(start);
            }
            w
        };
        // three whole RAW ops: tag, address, page
        let end = HEADER_LEN + 3 * (2 + ps);
        let mut kept = build();
        let n = kept.entropy_code(Tier::Plain, end, None, ps, bs).unwrap();
        assert_eq!(kept.holes.bytes(), 8 * ps, "the pages stay in place");
        let mut gathered = build();
        gathered.gather().unwrap();
        assert!(gathered.holes.is_empty());
        let m = gathered
            .entropy_code(Tier::Plain, end, None, ps, bs)
            .unwrap();
        assert!(n < end && kept.coded[..n] == gathered.coded[..m]);
        let len = kept.len();
        kept.entropy_code(Tier::Plain, len, None, ps, bs).unwrap();
        assert!(
            kept.holes.is_empty(),
            "coded whole, the frame has its pages copied in"
        );
    }

    /// Each tier's rate starts at its first measurement, then takes a cheaper one as it is and
    /// moves a quarter of the way to a dearer one; a measurement of nothing coded
    /// changes nothing, and one tier's measurements leave the other's rate as it was.
    #[test]
    fn the_entropy_rate_follows_its_measurements() {
        let mut w = FrameWriter::new(0, true, 4096);
        assert!(w.entropy_rate == [None; 2]);
        w.note_entropy_rate(Tier::Models, 0, 0, 0, true);
        assert!(w.entropy_rate == [None; 2]);
        let models = |w: &FrameWriter| w.entropy_rate[Tier::Models as usize].unwrap().ns_per_byte;
        w.note_entropy_rate(Tier::Models, 8_000, 1_000, 0, true); // 8 ns a byte
        assert_eq!(models(&w), 8.0);
        w.note_entropy_rate(Tier::Models, 4_000, 1_000, 0, true); // 4: taken
        assert_eq!(models(&w), 4.0);
        w.note_entropy_rate(Tier::Models, 12_000, 1_000, 0, true); // 12: a quarter of the way up
        assert_eq!(models(&w), 6.0);
        assert!(w.entropy_rate[Tier::Plain as usize].is_none());
        w.note_entropy_rate(Tier::Plain, 1_000, 1_000, 0, true);
        assert_eq!(
            w.entropy_rate[Tier::Plain as usize].unwrap().ns_per_byte,
            1.0
        );
        assert_eq!(models(&w), 6.0);
    }

    /// The share saved is tracked per tier as the rate is: the first measurement as it is, then
    /// a quarter of the way to each new one; a run of the models without literal contexts
    /// counts for their rate only.
    #[test]
    fn each_tier_keeps_a_moving_average_of_the_share_it_saved() {
        let mut w = FrameWriter::new(0, true, 4096);
        w.note_entropy_rate(Tier::Plain, 1_000, 1_000, 500, true);
        assert_eq!(w.entropy_saved, [None, Some(0.5)]);
        w.note_entropy_rate(Tier::Plain, 1_000, 1_000, 0, true);
        assert_eq!(w.entropy_saved, [None, Some(0.375)]);
        // the models without literal contexts: rate taken, share not
        w.note_entropy_rate(Tier::Models, 3_000, 1_000, 100, false);
        assert_eq!(w.entropy_saved, [None, Some(0.375)]);
        assert!(w.entropy_rate[Tier::Models as usize].is_some());
        w.note_entropy_rate(Tier::Models, 1_000, 2_000, 500, true);
        assert_eq!(w.entropy_saved, [Some(0.25), Some(0.375)]);
    }

    /// The models run over the plain tier only where what they save beyond it pays for their
    /// time beyond it: 3 ns a byte more for 1% more of the payload saved pays below 3.33 MB/s
    /// (0.01 byte is 3 ns there) and not at 1 Gbit/s. Before both tiers have run, and without a
    /// link rate, the models' own gate decides alone.
    #[test]
    fn the_models_beat_plain_only_where_their_extra_saving_pays_for_their_extra_time() {
        let mut w = FrameWriter::new(0, true, 4096);
        assert!(w.models_beat_plain(125_000_000), "nothing measured");
        w.set_entropy_costs(6.0, 3.0);
        w.entropy_saved = [None, Some(0.3)];
        assert!(
            w.models_beat_plain(125_000_000),
            "the models' saving unmeasured"
        );
        w.entropy_saved = [Some(0.31), Some(0.3)];
        assert!(w.models_beat_plain(3_000_000));
        assert!(!w.models_beat_plain(3_700_000));
        assert!(!w.models_beat_plain(125_000_000));
        assert!(w.models_beat_plain(0));
        // saving less than the plain tier for more time, the models never beat it
        w.entropy_saved = [Some(0.29), Some(0.3)];
        assert!(!w.models_beat_plain(1));
    }

    /// Coding cannot pay where the plain tier's cheapest coding of a byte takes at least the
    /// link time of the most coding can save of it: the whole byte before a share is measured,
    /// after it the plain tier's average share and what the models may save beyond it (as much
    /// again, at most MODELS_BEYOND_PLAIN), at most the whole byte; never without a link rate or
    /// a floor.
    #[test]
    fn coding_cannot_pay_where_a_byte_codes_slower_than_its_most_saving_travels() {
        let mut w = FrameWriter::new(0, true, 4096);
        assert!(!w.cannot_pay(1 << 62), "no floor measured");
        w.set_plain_floor(1.0); // 1 ns a byte
        assert!(!w.cannot_pay(0), "no link rate");
        // no share measured: the whole byte, 1 ns at 1 GB/s
        assert!(!w.cannot_pay(999_000_000));
        assert!(w.cannot_pay(1_000_000_000));
        // 10% saved: at most 20% of a byte (twice the share), 1 ns at 200 MB/s
        w.entropy_saved = [None, Some(0.1)];
        assert!(!w.cannot_pay(199_000_000));
        assert!(w.cannot_pay(200_000_000));
        // 30% saved: at most 45% of a byte (15 points more), 1 ns at 450 MB/s
        w.entropy_saved = [None, Some(0.3)];
        assert!(!w.cannot_pay(449_000_000));
        assert!(w.cannot_pay(450_000_000));
        // 90% saved: at most the whole byte
        w.entropy_saved = [None, Some(0.9)];
        assert!(!w.cannot_pay(999_000_000));
        assert!(w.cannot_pay(1_000_000_000));
    }

    /// Held back by the plain tier, the models are preferred again once MODELS_HELD_MAX frames
    /// were held back from them.
    #[test]
    fn models_held_back_by_the_plain_tier_measure_themselves_again() {
        let mut w = FrameWriter::new(0, true, 4096);
        w.set_entropy_costs(6.0, 3.0);
        w.entropy_saved = [Some(0.31), Some(0.3)];
        let link = 125_000_000;
        assert!(!w.models_preferred(link));
        w.models_held = MODELS_HELD_MAX - 1;
        assert!(!w.models_preferred(link));
        w.models_held = MODELS_HELD_MAX;
        assert!(w.models_preferred(link));
    }

    /// Coding a frame fits the slack when the epoch's time so far plus the time allowed for
    /// coding it ends before the epoch's frames, this one uncoded, are through the link: the
    /// coded frame's shorter link time does not count against it (the epoch ships when the
    /// later of encoding and sending ends, and coding only shortens the sending). One second
    /// spent, a frame of ten seconds on the link: an allowance of 8 s fits (though the frame
    /// coded to half would be through in 5), one of 9.5 s does not (1 + 9.5 > 10).
    #[test]
    fn coding_fits_the_slack_of_the_uncoded_frame() {
        let cfg = crate::Config {
            link_rate: 1_000,
            ..crate::Config::default()
        };
        let mut enc = crate::Encoder::with_seed(cfg, 1).unwrap();
        enc.begin_epoch(0).unwrap();
        let w = &mut enc.w;
        w.epochs.started = Some(std::time::Instant::now() - std::time::Duration::from_secs(1));
        w.out.frame.resize(10_000, 0);
        let payload = (10_000 - HEADER_LEN) as f64;
        for (allowed_s, fits) in [(8.0, true), (9.5, false)] {
            let ns = allowed_s * 1e9 / SLACK_MARGIN / payload;
            w.out.set_entropy_costs(ns, ns);
            assert_eq!(w.entropy_fits_slack(Tier::Plain), fits, "{allowed_s} s");
            assert_eq!(w.entropy_fits_slack(Tier::Models), fits, "{allowed_s} s");
        }
    }

    /// The time allowed for coding a frame is its payload's measured cost with the margin; a
    /// frame of only a header gets none.
    #[test]
    fn coding_a_frame_is_allowed_its_measured_cost_with_the_margin() {
        let r = EntropyRate { ns_per_byte: 10.0 };
        assert_eq!(r.allowance_ns(HEADER_LEN + 4_000), 40_000.0 * SLACK_MARGIN);
        assert_eq!(r.allowance_ns(HEADER_LEN), 0.0);
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;
    use crate::{Config, Encoder};

    /// Checks the buffers `enc` holds after a whole epoch's frame that was entropy coded.
    fn check_buffers(enc: &Encoder, sent: usize, ps: usize) {
        let w = &enc.w.out;
        // the coded frame was sent: `coded` holds the plain frame it was made from
        assert!(sent < w.coded.len(), "the frame was entropy coded");
        let payload = w.coded.len() - HEADER_LEN - TRAILER_LEN;
        let contexts = w.entropy.contexts_held();
        assert!(
            contexts >= w.lit_ctx_len && w.lit_ctx_len > 0,
            "the literals were context modelled: {contexts} contexts held, {} literals",
            w.lit_ctx_len
        );
        assert!(
            contexts < payload * 4 / 5,
            "{contexts} contexts held for a payload of {payload} bytes"
        );
        let most = (payload + HEADER_LEN + TRAILER_LEN + format::max_add_len(ps)) * 5 / 4;
        let buffers = [
            ("frame", w.frame.capacity()),
            ("coded", w.coded.capacity()),
            ("streams", w.entropy.streams_held()),
        ];
        for (name, cap) in buffers {
            assert!(
                cap <= most,
                "{name} buffer {cap} B for a payload of {payload}"
            );
        }
        // (room is made for the longest block a page or run may add: its literals at most)
        let lits_most = (w.lit_ctx_len + format::MAX_RUN_BYTES + context::CONTEXT_SLACK) * 5 / 4;
        assert!(
            w.lit_ctx.capacity() <= lits_most,
            "{} literal contexts held for {} literals",
            w.lit_ctx.capacity(),
            w.lit_ctx_len
        );
        // every one of them counted
        let s = enc.stats();
        let held = w.frame.capacity()
            + w.coded.capacity()
            + w.entropy.memory_bytes()
            + 2 * w.lit_ctx.capacity();
        assert!(
            s.memory_bytes >= s.cache_memory_bytes + held as u64,
            "{} B reported, {} B of caches and {held} B of frame buffers held",
            s.memory_bytes,
            s.cache_memory_bytes
        );
    }

    /// Whole epochs' frames, their sizes not known before, leave buffers sized to the largest:
    /// contexts for the literals of its literal stream (not one for every payload byte: the
    /// models' contexts are as many as the literals), plain and coded frames and the streams
    /// within a quarter and one op of its length, and all of them counted in the encoder's
    /// memory. The second epoch is a fifth larger than the first, so buffers reserved by
    /// doubling would hold 2x it.
    #[test]
    #[cfg_attr(miri, ignore)] // (megabytes of pages through the context models)
    fn a_whole_epochs_frame_leaves_buffers_sized_to_it() {
        let noise = crate::noise::bytes(32 << 20, 0x2545_f491_4f6c_dd1d);
        let mut words = noise.chunks_exact(8);
        let mut next = move || u64::from_le_bytes(words.next().unwrap().try_into().unwrap());
        // text of words from a small vocabulary: lz4 blocks with many literals and matches
        const WORDS: [&[u8]; 8] = [
            b"page ", b"memory ", b"dirty ", b"epoch ", b"frame ", b"0x7f3a ", b"user ", b"ttl=",
        ];
        let ps = 4096;
        let mut enc = Encoder::new(Config {
            cache_bytes: 0,
            hash_bytes: 0,
            ..Config::default()
        })
        .unwrap();
        let mut page = Vec::with_capacity(ps + 16);
        // a payload a little over 4 MiB (doubling would reach 8), then one of about 5.3 MiB
        for (epoch, pages) in [(0, 1950usize), (1, 2350)] {
            enc.begin_epoch(epoch).unwrap();
            for p in 0..pages {
                page.clear();
                while page.len() < ps {
                    let r = next();
                    page.extend_from_slice(WORDS[(r % 8) as usize]);
                    page.extend_from_slice(&(r >> 40).to_le_bytes()[..1 + (r >> 61) as usize % 3]);
                }
                page.truncate(ps);
                enc.add_page((p * ps) as u64, &page).unwrap();
            }
            let sent = enc.end_epoch().unwrap().len();
            check_buffers(&enc, sent, ps);
        }
    }
}
