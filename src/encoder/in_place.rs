//! RAW pages sent from where the caller holds them ([`Encoder::add_page_in_place`]).
//!
//! A page sent RAW is its own bytes behind a short op header; copying it into the frame only to
//! hash it and hand it to the socket is a pass over memory that a sender whose pages stay put
//! (a checkpoint's staged copy, a paused guest) does not need. In place, the frame's buffer
//! holds everything but those pages: each is a [`Hole`] at the point of the buffer it follows.
//! The checksum hashes the buffer's pieces and the pages in frame order (the same value as the
//! frame copied whole), [`FrameParts`] hands the pieces to a vectored send, and [`Holes::gather`]
//! copies the pages in where a contiguous frame is needed (the entropy stage, or a caller of
//! [`Encoder::take_frame`]).
//!
//! [`Encoder::add_page_in_place`]: crate::Encoder::add_page_in_place
//! [`Encoder::take_frame`]: crate::Encoder::take_frame

use crate::budget::grow;
use crate::error::Error;
use std::ptr::NonNull;

/// The first byte of a page left in place, valid as long as the
/// [`add_page_in_place`](crate::Encoder::add_page_in_place) contract holds.
#[derive(Debug, Clone, Copy)]
struct PagePtr(NonNull<u8>);

// SAFETY: the pointer is only read (never written), and only while the caller of
// `add_page_in_place` keeps the page valid and unchanged, which it promised for as long as the
// frame is the encoder's, on whatever thread the encoder is then used.
unsafe impl Send for PagePtr {}
// SAFETY: as for Send: shared access only reads the page.
unsafe impl Sync for PagePtr {}

/// A page of the open frame left in place: its bytes come right after the first `at` bytes of
/// the frame's buffer (and before what the buffer holds from `at` on).
#[derive(Debug, Clone, Copy)]
struct Hole {
    at: usize,
    page: PagePtr,
}

/// No pages (the parts of no frame).
static NO_HOLES: Holes = Holes {
    list: Vec::new(),
    page_size: 0,
};

/// The open frame's pages left in place, in frame order.
#[derive(Debug, Default)]
pub(super) struct Holes {
    list: Vec<Hole>,
    page_size: usize,
}

impl Holes {
    pub(super) fn new(page_size: usize) -> Holes {
        Holes {
            list: Vec::new(),
            page_size,
        }
    }

    /// Bytes of the frame held in place (not in its buffer).
    #[inline]
    pub(super) fn bytes(&self) -> usize {
        self.list.len() * self.page_size
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Forgets the pages (a new frame begins).
    pub(super) fn clear(&mut self) {
        self.list.clear();
    }

    /// Bytes of memory held.
    pub(super) fn memory_bytes(&self) -> usize {
        self.list.capacity() * std::mem::size_of::<Hole>()
    }

    /// Makes room for one more page, so that [`push`](Self::push) cannot allocate.
    pub(super) fn reserve_one(&mut self) -> Result<(), Error> {
        grow(&mut self.list, 1, "the pages sent in place")
    }

    /// Notes `page` (page-size bytes) as the frame's next bytes after the buffer's first `at`.
    ///
    /// # Safety
    /// `page` must stay valid and unchanged for as long as the frame is the encoder's (the
    /// contract of [`add_page_in_place`](crate::Encoder::add_page_in_place)).
    pub(super) unsafe fn push(&mut self, at: usize, page: &[u8]) {
        debug_assert_eq!(page.len(), self.page_size);
        debug_assert!(self.list.last().is_none_or(|h| h.at <= at));
        debug_assert!(self.list.capacity() > self.list.len(), "reserve_one first");
        self.list.push(Hole {
            at,
            page: PagePtr(NonNull::from(page).cast()),
        });
    }

    /// The frame whose buffer is `buf`, as its pieces in order (empty pieces left out).
    pub(super) fn parts<'a>(&'a self, buf: &'a [u8]) -> FrameParts<'a> {
        FrameParts {
            buf,
            holes: self,
            next: 0,
            from: 0,
        }
    }

    /// Copies the bytes `from..from + out.len()` of the frame whose buffer is `buf` into `out`
    /// (they must lie within the frame).
    pub(super) fn read_at(&self, buf: &[u8], from: usize, out: &mut [u8]) {
        let (mut at, mut o) = (0usize, 0usize);
        for piece in self.parts(buf) {
            let end = at + piece.len();
            if end > from + o && o < out.len() {
                let start = from + o - at;
                let n = (piece.len() - start).min(out.len() - o);
                out[o..o + n].copy_from_slice(&piece[start..start + n]);
                o += n;
            }
            at = end;
        }
        debug_assert_eq!(o, out.len(), "the bytes lie within the frame");
    }

    /// Copies the pages into the buffer where they belong, using `scratch` (any contents) as
    /// room: the buffer is then the whole frame and no page is left in place.
    pub(super) fn gather(&mut self, buf: &mut Vec<u8>, scratch: &mut Vec<u8>) -> Result<(), Error> {
        if self.list.is_empty() {
            return Ok(());
        }
        let len = buf.len() + self.bytes();
        scratch.clear();
        grow(scratch, len, "the frame")?;
        for piece in self.parts(buf) {
            scratch.extend_from_slice(piece);
        }
        std::mem::swap(buf, scratch);
        self.list.clear();
        Ok(())
    }
}

/// A frame's bytes as the pieces a vectored send takes: the encoder's buffer between the pages
/// sent in place, and those pages where the caller holds them. Valid until the next call on the
/// encoder.
#[derive(Debug, Clone)]
pub struct FrameParts<'a> {
    buf: &'a [u8],
    holes: &'a Holes,
    /// The next hole, and where the buffer's next piece starts.
    next: usize,
    from: usize,
}

impl FrameParts<'static> {
    /// No frame: no pieces.
    pub(super) fn none() -> Self {
        NO_HOLES.parts(&[])
    }
}

impl FrameParts<'_> {
    /// The frame's length in bytes (the sum of its pieces).
    pub fn len(&self) -> usize {
        self.buf.len() + self.holes.bytes()
    }

    /// Whether the frame has no bytes (never, for a frame the encoder hands out).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame copied into one buffer: `out` cleared, then the pieces appended.
    pub fn copy_to(&self, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(self.len());
        for piece in self.clone() {
            out.extend_from_slice(piece);
        }
    }
}

impl<'a> Iterator for FrameParts<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let Some(h) = self.holes.list.get(self.next) else {
            if self.from < self.buf.len() {
                let piece = &self.buf[self.from..];
                self.from = self.buf.len();
                return Some(piece);
            }
            return None;
        };
        if self.from < h.at {
            let piece = &self.buf[self.from..h.at];
            self.from = h.at;
            return Some(piece);
        }
        self.next += 1;
        // SAFETY: the page is page-size bytes the caller of `add_page_in_place` keeps valid and
        // unchanged while the frame is the encoder's, and `'a` borrows the encoder.
        Some(unsafe {
            std::slice::from_raw_parts(h.page.0.as_ptr().cast_const(), self.holes.page_size)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, Decoder, Encoder, Stages};

    const PS: usize = 4096;
    /// Pages of the test images (fewer under Miri, which runs these tests for the raw pointers).
    const PAGES: usize = if cfg!(miri) { 10 } else { 40 };

    /// Memory whose pages go out in every way: random (RAW), zero, text-like (compressed),
    /// and, from the second epoch, changed a little (deltas) or rewritten at random (RAW again).
    fn image(pages: usize, epoch: u64) -> Vec<u8> {
        let noise = crate::noise::bytes(pages * PS, 0x9E37_79B9_7F4A_7C15 ^ epoch);
        let mut mem = vec![0u8; pages * PS];
        for (p, page) in mem.chunks_mut(PS).enumerate() {
            match (p % 5, epoch) {
                (0 | 1, _) => page.copy_from_slice(&noise[p * PS..(p + 1) * PS]),
                (2, _) => {}
                (3, _) => page
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, b)| *b = b"page of text "[i % 13]),
                _ => {
                    page.iter_mut()
                        .enumerate()
                        .for_each(|(i, b)| *b = (i / 64) as u8 ^ p as u8);
                    page[(epoch as usize * 97) % PS] = epoch as u8;
                }
            }
        }
        mem
    }

    /// Encodes three epochs of `image`, every page of each, with pages added in place or
    /// copied; returns every frame whole (parts joined) in order, and how many pieces their
    /// parts had.
    fn frames_and_pieces(cfg: Config, in_place: bool, contiguous: bool) -> (Vec<Vec<u8>>, usize) {
        // (a new encoder draws its stream id and hash seed at random)
        let mut enc = Encoder::with_seed(cfg, 1).unwrap();
        let (mut out, mut pieces) = (Vec::new(), 0);
        for e in 0..3 {
            let mem = image(PAGES, e);
            enc.begin_epoch(e).unwrap();
            for (p, page) in mem.chunks(PS).enumerate() {
                let addr = (p * PS) as u64;
                if in_place {
                    // SAFETY: `mem` lives, unchanged, until the epoch's frames are copied out
                    unsafe { enc.add_page_in_place(addr, page) }.unwrap();
                } else {
                    enc.add_page(addr, page).unwrap();
                }
                let mut f = Vec::new();
                if contiguous {
                    if let Some(part) = enc.take_frame() {
                        out.push(part.to_vec());
                    }
                } else if let Some(parts) = enc.take_frame_parts() {
                    pieces += parts.clone().count();
                    parts.copy_to(&mut f);
                    out.push(f);
                }
            }
            let mut f = Vec::new();
            if contiguous {
                out.push(enc.end_epoch().unwrap().to_vec());
            } else {
                let parts = enc.end_epoch_parts().unwrap();
                pieces += parts.clone().count();
                parts.copy_to(&mut f);
                out.push(f);
            }
        }
        (out, pieces)
    }

    fn frames(cfg: Config, in_place: bool, contiguous: bool) -> Vec<Vec<u8>> {
        frames_and_pieces(cfg, in_place, contiguous).0
    }

    /// The default configuration with caches for a few thousand pages (a few dozen under Miri,
    /// which makes every byte of them).
    fn small() -> Config {
        let (cache_bytes, hash_bytes) = if cfg!(miri) {
            (256 << 10, 64 << 10)
        } else {
            (8 << 20, 1 << 20)
        };
        Config {
            cache_bytes,
            hash_bytes,
            ..Config::default()
        }
    }

    /// Sends every page of `mem` in epoch `e`, added in place, each part applied by `dec` to
    /// `replica` as it comes (a refused frame panics with the decoder's reason).
    fn send_in_place(enc: &mut Encoder, dec: &mut Decoder, e: u64, mem: &[u8], replica: &mut [u8]) {
        let mut frame = Vec::new();
        enc.begin_epoch(e).unwrap();
        for (p, page) in mem.chunks(PS).enumerate() {
            // SAFETY: `mem` lives, unchanged, until the epoch's frames are applied
            unsafe { enc.add_page_in_place((p * PS) as u64, page) }.unwrap();
            if let Some(part) = enc.take_frame_parts() {
                part.copy_to(&mut frame);
                dec.apply_flat(&frame, replica).unwrap();
            }
        }
        enc.end_epoch_parts().unwrap().copy_to(&mut frame);
        dec.apply_flat(&frame, replica)
            .unwrap_or_else(|err| panic!("epoch {e}: {err}"));
    }

    /// The configurations whose frames leave RAW pages in place: without the entropy stage,
    /// in one frame an epoch and in parts.
    fn in_place_configs() -> [Config; 2] {
        let cfg = Config {
            stages: Stages {
                entropy: false,
                ..Stages::ALL
            },
            ..small()
        };
        [
            cfg,
            Config {
                frame_bytes: 6 * PS,
                ..cfg
            },
        ]
    }

    #[test]
    fn frames_are_the_same_bytes_whether_raw_pages_were_copied_or_left_in_place() {
        // (under Miri, which runs these for the raw pointers, one configuration)
        let configs = &in_place_configs()[..if cfg!(miri) { 1 } else { 2 }];
        for &cfg in configs {
            let copied = frames(cfg, false, true);
            assert!(copied.len() >= 3);
            let (parts, pieces) = frames_and_pieces(cfg, true, false);
            assert!(parts == copied, "parts, {}", cfg.frame_bytes);
            // two RAW pages in five, each a piece between two of the buffer's
            let raw = 3 * 2 * PAGES / 5;
            assert!(
                pieces > parts.len() + raw,
                "{pieces} pieces in {} frames",
                parts.len()
            );
            assert!(
                frames(cfg, true, true) == copied,
                "copied in, {}",
                cfg.frame_bytes
            );
            // and with the entropy stage, where pages are never left in place (not under Miri:
            // no pointer of the caller's is kept there, and the stage's tables take it minutes)
            if cfg!(miri) {
                continue;
            }
            let cfg = Config {
                stages: Stages::ALL,
                ..cfg
            };
            assert!(
                frames(cfg, true, false) == frames(cfg, false, true),
                "entropy stage"
            );
        }
    }

    #[test]
    fn a_frame_with_pages_in_place_is_pieces_of_the_callers_memory_and_decodes() {
        let [cfg, _] = in_place_configs();
        let mem = image(PAGES, 0);
        let mut enc = Encoder::new(cfg).unwrap();
        let mut dec = Decoder::new(cfg).unwrap();
        enc.begin_epoch(0).unwrap();
        for (p, page) in mem.chunks(PS).enumerate() {
            // SAFETY: `mem` outlives the frame and does not change
            unsafe { enc.add_page_in_place((p * PS) as u64, page) }.unwrap();
        }
        let parts = enc.end_epoch_parts().unwrap();
        let pieces: Vec<&[u8]> = parts.clone().collect();
        // the random pages (two in five) are pieces of `mem` itself
        let in_mem = pieces
            .iter()
            .filter(|p| mem.as_ptr_range().contains(&p.as_ptr()))
            .count();
        assert_eq!(in_mem, 2 * PAGES / 5, "{} pieces", pieces.len());
        assert!(pieces.iter().all(|p| !p.is_empty()));
        assert_eq!(pieces.iter().map(|p| p.len()).sum::<usize>(), parts.len());
        let mut frame = Vec::new();
        parts.copy_to(&mut frame);
        let n = pieces.len();
        // the frame handed out whole is empty (its pages are not in the buffer); as parts, whole
        assert!(enc.last_frame().is_empty());
        assert_eq!(enc.last_frame_parts().count(), n);
        let mut replica = vec![1u8; mem.len()];
        dec.apply_flat(&frame, &mut replica).unwrap();
        assert_eq!(replica, mem);
    }

    /// With a link rate the entropy gate measures frames (its warm-up, on the first MiB of a
    /// large frame) and may code some: a frame coded whole has its pages in place copied in
    /// first, a sample is copied out of the frame. Every frame, however it went, brings the
    /// backup to the image.
    #[test]
    // under Miri the entropy stage's tables take minutes; the pages are read as in the tests above
    #[cfg_attr(miri, ignore)]
    fn frames_with_pages_in_place_decode_whether_or_not_the_entropy_stage_codes_them() {
        for link_rate in [10_000_000, 125_000_000, 1_250_000_000, 12_500_000_000] {
            for frame_bytes in [0, 256 << 10] {
                let cfg = Config {
                    link_rate,
                    frame_bytes,
                    ..small()
                };
                let mut enc = Encoder::new(cfg).unwrap();
                let mut dec = Decoder::new(cfg).unwrap();
                // past the 1 MiB at which the entropy gate measures a frame
                let pages = 700;
                let mut replica = vec![0u8; pages * PS];
                for e in 0..3 {
                    // one page in eight random (RAW), the others text: a payload the stage may code
                    let mut mem = image(pages, e);
                    for (p, page) in mem.chunks_mut(PS).enumerate().filter(|(p, _)| p % 8 != 0) {
                        for (i, b) in page.iter_mut().enumerate() {
                            *b = b"a page of text, "[(i + p) % 16] ^ ((i / 512) as u8 & e as u8);
                        }
                    }
                    send_in_place(&mut enc, &mut dec, e, &mem, &mut replica);
                    assert!(
                        replica == mem,
                        "link {link_rate}, frames of {frame_bytes}, epoch {e}"
                    );
                }
            }
        }
    }

    /// A resync abandons the open epoch: the encoder keeps no page of the caller's from it, so
    /// the memory may go (under Miri, a read of it would be reported).
    #[test]
    fn a_resync_drops_the_pages_left_in_place() {
        let [cfg, _] = in_place_configs();
        let mut enc = Encoder::new(cfg).unwrap();
        enc.begin_epoch(0).unwrap();
        enc.add_page(0, &[0u8; PS]).unwrap();
        enc.end_epoch().unwrap();
        enc.begin_epoch(1).unwrap();
        {
            let mem = image(2, 1);
            // SAFETY: the epoch is abandoned below, before `mem` goes
            unsafe { enc.add_page_in_place(0, &mem[..PS]) }.unwrap();
            enc.resync();
        }
        assert!(enc.last_frame_parts().all(|p| p.len() < PS));
        let mut frame = Vec::new();
        enc.begin_epoch(2).unwrap();
        enc.end_epoch_parts().unwrap().copy_to(&mut frame);
        assert!(crate::format::open(&frame).is_ok());
    }

    /// A frame measured early (the entropy gate's warm-up, once it holds 1 MiB) has its first
    /// ops copied out for the measurement and keeps its pages in place; when it is then not
    /// coded, they are summed into its checksum as they were left, and the backup is exact.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn pages_left_in_place_around_an_early_measurement_are_summed_and_applied() {
        for link_rate in [312_500_000, 1_250_000_000] {
            let cfg = Config {
                link_rate,
                ..small()
            };
            let mut enc = Encoder::new(cfg).unwrap();
            let mut dec = Decoder::new(cfg).unwrap();
            let pages = 700;
            let mut replica = vec![0u8; pages * PS];
            for e in 0..4 {
                // before the measurement (about 1 MiB in): a random page in four, the others half
                // random (not mostly RAW, so measured); after it, random pages only (RAW, in place)
                let mut mem = crate::noise::bytes(pages * PS, 77 + e);
                for (p, page) in mem.chunks_mut(PS).enumerate() {
                    if p < 400 && p % 4 != 0 {
                        page[PS / 2..].fill(0);
                    }
                }
                send_in_place(&mut enc, &mut dec, e, &mem, &mut replica);
                assert!(replica == mem, "epoch {e}");
            }
        }
    }
}
