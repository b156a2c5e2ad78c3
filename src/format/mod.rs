//! The frame: one epoch's ops, or a part of them, behind a fixed header, closed by a checksum. `FORMAT.md` describes
//! it byte by byte; this module holds the constants, the header codec and the op tags.
//!
//! ```text
//! offset size field
//!  0     4    magic "FGBI"
//!  4     2    format version (4; 3, 2 and 1 are read too), little endian like every field
//!  6     2    header length (56)
//!  8     4    flags (bit 0: resync, bit 1: entropy, bit 2: partial)
//! 12     4    page size
//! 16     4    block size
//! 20     4    op count
//! 24     8    stream id
//! 32     8    epoch
//! 40     8    payload length
//! 48     8    part: the frame's index within its epoch (versions 2 and 3)
//! 56     n    payload: op count ops
//! 56+n   8    xxh3-64 of bytes 0 .. 56+n
//! ```
//!
//! Version 3 frames, which are read too, differ only in having no [`op::RUN`] op; version 2
//! frames also in their payload when it is entropy coded (no stream coded in parts); version 1
//! frames, read too, have a 48-byte header without the part field.

pub(crate) mod ahead;
pub mod varint;

use std::hash::Hasher as _;
use twox_hash::xxhash3_64::{RawHasher, SecretBuffer, DEFAULT_SECRET_LENGTH};
use twox_hash::XxHash3_64;

/// The frame checksum: xxh3-64 with seed 0 and the default secret (twox-hash picks its AVX2
/// kernel at run time where the processor has one; the value is the same on every kernel).
fn xxh3_64(bytes: &[u8]) -> u64 {
    XxHash3_64::oneshot(bytes)
}

/// xxh3's default secret (the secret derived from seed 0 is the default one).
static DEFAULT_SECRET: [u8; DEFAULT_SECRET_LENGTH] =
    xxhash_rust::const_xxh3::const_custom_default_secret(0);

/// xxh3-64 computed in steps, without an allocation: the default secret is borrowed.
type Xxh3Steps = RawHasher<&'static [u8; DEFAULT_SECRET_LENGTH]>;

fn xxh3_steps() -> Xxh3Steps {
    let secret = SecretBuffer::new(0, &DEFAULT_SECRET);
    // the default secret is longer than the minimum, so this cannot fail
    RawHasher::new(secret.unwrap_or_else(|_| unreachable!("the default secret is long enough")))
}

/// The four bytes every frame starts with.
pub const MAGIC: [u8; 4] = *b"FGBI";
/// The format version this crate writes. It reads this one, [`VERSION_4`], [`VERSION_3`],
/// [`VERSION_2`] and [`VERSION_1`].
pub const VERSION: u16 = VERSION_5;
/// Version 5: as version 4, with a context-modelled literal stream in one bit string or in two
/// (its bytes at even and at odd positions), which a decoder reads alternately.
pub const VERSION_5: u16 = 5;
/// Version 4: as version 3, with the [`op::RUN`] op.
pub const VERSION_4: u16 = 4;
/// Version 3: as version 2, with long Huffman-coded streams of an entropy-coded payload in four
/// parts (see [`huffman::PARTS`](crate::entropy::huffman::PARTS)).
pub const VERSION_3: u16 = 3;
/// Version 2: as version 1 with epochs sent in parts ([`FLAG_PARTIAL`] and the part field).
pub const VERSION_2: u16 = 2;
/// The first format version: as version 2 without [`FLAG_PARTIAL`] (an epoch is one frame).
pub const VERSION_1: u16 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 56;
/// Header length of [`VERSION_1`] frames (no part field).
pub const HEADER_LEN_1: usize = 48;
/// Checksum trailer length in bytes.
pub const TRAILER_LEN: usize = 8;

/// The longest op an encoder writes for one page of `page_size` bytes: a RAW op (tag, address
/// varint, the page); every other op of one page is sent only when it is shorter.
pub const fn max_op_len(page_size: usize) -> usize {
    1 + varint::MAX_LEN + page_size
}

/// The most bytes of output a [`op::RUN`] op decodes to: its pages together (so that every
/// lz4 match offset reaches back to the run's start).
pub const MAX_RUN_BYTES: usize = 1 << 16;

/// The most pages a [`op::RUN`] op holds for pages of `page_size` bytes; below 2 (pages of
/// 64 KiB) no run is possible.
pub const fn max_run_pages(page_size: usize) -> usize {
    MAX_RUN_BYTES / page_size
}

/// The most bytes a frame grows by when an encoder adds one page: a pending run of pages it
/// closes, each page sent RAW (a RUN op is sent only when shorter than that).
pub const fn max_add_len(page_size: usize) -> usize {
    let pages = max_run_pages(page_size);
    (if pages > 1 { pages } else { 1 }) * max_op_len(page_size)
}
/// Flag: the frame starts a new synchronisation; it depends on nothing the backup held before.
pub const FLAG_RESYNC: u32 = 1;
/// Flag: the payload is entropy coded (see [`entropy`](crate::entropy)); the ops are what it
/// decodes to.
pub const FLAG_ENTROPY: u32 = 2;
/// Flag (from version 2): the epoch continues in the stream's next frame, which carries the same
/// epoch number and the next part number. An epoch sent in parts is a sequence of such frames
/// ended by one without it.
pub const FLAG_PARTIAL: u32 = 4;
/// Every flag [`VERSION`] defines.
pub const KNOWN_FLAGS: u32 = FLAG_RESYNC | FLAG_ENTROPY | FLAG_PARTIAL;
/// Every flag [`VERSION_1`] defines.
pub const KNOWN_FLAGS_1: u32 = FLAG_RESYNC | FLAG_ENTROPY;

/// Op kinds (the low 4 bits of an op's tag byte; the high 4 bits carry a codec where one applies).
pub mod op {
    /// The page is all zeros.
    pub const ZERO: u8 = 0;
    /// The page follows, raw.
    pub const RAW: u8 = 1;
    /// The page follows, compressed: codec in the tag's high bits, then length, then data.
    pub const COMPRESSED: u8 = 2;
    /// XOR+RLE delta against the page the backup holds: length, then the delta stream.
    pub const DELTA: u8 = 3;
    /// lz4 block with the page the backup holds as dictionary: length, then data.
    pub const DICT: u8 = 4;
    /// Block by block: block map, references, literal blocks (codec in the tag's high bits).
    pub const BLOCKS: u8 = 5;
    /// Several pages in increasing address order, compressed together as one lz4 block (from
    /// version 4): page count, the gaps between their addresses, length, then data.
    pub const RUN: u8 = 6;
}

/// Block codes in a BLOCKS op's block map (2 bits per block, block 0 in the low bits of byte 0).
pub mod block {
    /// Unchanged: keep what the backup holds.
    pub const KEEP: u8 = 0;
    /// All zeros.
    pub const ZERO: u8 = 1;
    /// A copy of a block the backup holds (reference follows).
    pub const REF: u8 = 2;
    /// New content (in the literal section).
    pub const LITERAL: u8 = 3;
}

/// Why [`open`] refused a frame's envelope. The decoder reports each as the variant of
/// [`crate::Error`] with the same name (and message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // variant fields are described with their variant
pub enum EnvelopeError {
    /// Shorter than a header and trailer, or than the length the header declares.
    Truncated { needed: usize, got: usize },
    /// Longer than the header declares.
    TrailingBytes { declared: usize, got: usize },
    /// Does not start with [`MAGIC`].
    BadMagic,
    /// A format version other than [`VERSION`], [`VERSION_4`], [`VERSION_3`], [`VERSION_2`] and
    /// [`VERSION_1`].
    UnsupportedVersion(u16),
    /// A header length other than the version's ([`HEADER_LEN`], [`HEADER_LEN_1`]).
    BadHeader,
    /// The checksum over header and payload does not match.
    ChecksumMismatch { expected: u64, actual: u64 },
    /// Flag bits the frame's version does not define.
    UnknownFlags(u32),
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Flag bits.
    pub flags: u32,
    /// Page size in bytes.
    pub page_size: u32,
    /// Block size in bytes.
    pub block_size: u32,
    /// Number of ops in the payload.
    pub op_count: u32,
    /// The encoder's stream id.
    pub stream_id: u64,
    /// The epoch number.
    pub epoch: u64,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// The frame's index within its epoch: 0 for an epoch's first (or only) frame.
    pub part: u64,
}

impl Header {
    /// True when the frame is a resynchronisation frame.
    pub fn is_resync(&self) -> bool {
        self.flags & FLAG_RESYNC != 0
    }

    /// True when the epoch continues in the next frame ([`FLAG_PARTIAL`]).
    pub fn is_partial(&self) -> bool {
        self.flags & FLAG_PARTIAL != 0
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `out`.
    pub fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&VERSION.to_le_bytes());
        out[6..8].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        out[8..12].copy_from_slice(&self.flags.to_le_bytes());
        out[12..16].copy_from_slice(&self.page_size.to_le_bytes());
        out[16..20].copy_from_slice(&self.block_size.to_le_bytes());
        out[20..24].copy_from_slice(&self.op_count.to_le_bytes());
        out[24..32].copy_from_slice(&self.stream_id.to_le_bytes());
        out[32..40].copy_from_slice(&self.epoch.to_le_bytes());
        out[40..48].copy_from_slice(&self.payload_len.to_le_bytes());
        out[48..56].copy_from_slice(&self.part.to_le_bytes());
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Checks a frame's envelope (length, magic, version, header length, declared length, checksum,
/// flags) and returns its header and payload. Nothing about the ops is checked here.
///
/// ```
/// use fgbi::format::{open, EnvelopeError};
/// let err = open(b"not a frame at all, but long enough to hold a header and a checksum......").unwrap_err();
/// assert_eq!(err, EnvelopeError::BadMagic);
/// // the decoder reports it as the same variant of the crate's error
/// assert_eq!(fgbi::Error::from(err), fgbi::Error::BadMagic);
/// ```
pub fn open(frame: &[u8]) -> Result<(Header, &[u8]), EnvelopeError> {
    let (h, payload) = open_unverified(frame)?;
    let mut sum = Checksum::new(frame);
    sum.finish()?;
    check_flags(frame, &h)?;
    Ok((h, payload))
}

/// The envelope checks [`open`] makes before the checksum (length, magic, version, header
/// length, declared length): the header and the payload, neither yet verified. The caller must
/// then run [`Checksum`] over the frame and [`check_flags`], and report their errors before any
/// it finds in the payload, as [`open`] does.
pub fn open_unverified(frame: &[u8]) -> Result<(Header, &[u8]), EnvelopeError> {
    if frame.len() < HEADER_LEN + TRAILER_LEN {
        return Err(EnvelopeError::Truncated {
            needed: HEADER_LEN + TRAILER_LEN,
            got: frame.len(),
        });
    }
    if frame[0..4] != MAGIC {
        return Err(EnvelopeError::BadMagic);
    }
    let version = u16_at(frame, 4);
    let header_len = match version {
        VERSION_5 | VERSION_4 | VERSION_3 | VERSION_2 => HEADER_LEN,
        VERSION_1 => HEADER_LEN_1,
        _ => return Err(EnvelopeError::UnsupportedVersion(version)),
    };
    if u16_at(frame, 6) as usize != header_len {
        return Err(EnvelopeError::BadHeader);
    }
    if frame.len() < header_len + TRAILER_LEN {
        return Err(EnvelopeError::Truncated {
            needed: header_len + TRAILER_LEN,
            got: frame.len(),
        });
    }
    let h = Header {
        flags: u32_at(frame, 8),
        page_size: u32_at(frame, 12),
        block_size: u32_at(frame, 16),
        op_count: u32_at(frame, 20),
        stream_id: u64_at(frame, 24),
        epoch: u64_at(frame, 32),
        payload_len: u64_at(frame, 40),
        part: if version != VERSION_1 {
            u64_at(frame, 48)
        } else {
            0
        },
    };
    let declared = (h.payload_len as u128) + (header_len + TRAILER_LEN) as u128;
    if declared > frame.len() as u128 {
        let needed = usize::try_from(declared).unwrap_or(usize::MAX);
        return Err(EnvelopeError::Truncated {
            needed,
            got: frame.len(),
        });
    }
    if declared < frame.len() as u128 {
        return Err(EnvelopeError::TrailingBytes {
            declared: declared as usize,
            got: frame.len(),
        });
    }
    Ok((h, &frame[header_len..frame.len() - TRAILER_LEN]))
}

/// The format version of a frame that passed [`open_unverified`].
pub fn version(frame: &[u8]) -> u16 {
    u16_at(frame, 4)
}

/// The flags check of [`open`], after the checksum, for `frame` (which passed
/// [`open_unverified`]) and its header `h`: no flag set that the frame's version reserves.
pub fn check_flags(frame: &[u8], h: &Header) -> Result<(), EnvelopeError> {
    let known = if u16_at(frame, 4) == VERSION_1 {
        KNOWN_FLAGS_1
    } else {
        KNOWN_FLAGS
    };
    if h.flags & !known != 0 {
        return Err(EnvelopeError::UnknownFlags(h.flags & !known));
    }
    Ok(())
}

/// The checksum of a frame that passed [`open_unverified`], computed in steps so that a reader
/// can hash the part of the frame it is about to parse while it is in cache.
pub struct Checksum<'f> {
    /// Header and payload: what the checksum covers.
    body: &'f [u8],
    expected: u64,
    /// Bytes of `body` hashed so far.
    done: usize,
    hasher: Xxh3Steps,
}

impl<'f> Checksum<'f> {
    /// The checksum of `frame`, which passed [`open_unverified`], none of it hashed yet.
    pub fn new(frame: &'f [u8]) -> Self {
        let body = frame.len().saturating_sub(TRAILER_LEN);
        Checksum {
            body: &frame[..body],
            expected: frame.get(body..).map_or(0, |t| u64_at(t, 0)),
            done: 0,
            hasher: xxh3_steps(),
        }
    }

    /// Bytes of header and payload hashed so far (the payload starts at [`HEADER_LEN`], or
    /// [`HEADER_LEN_1`] in a version 1 frame).
    #[inline]
    pub fn done(&self) -> usize {
        self.done
    }

    /// Hashes on, up to byte `to` of the frame (or its end).
    #[inline]
    pub fn advance_to(&mut self, to: usize) {
        let to = to.min(self.body.len());
        if to > self.done {
            self.hasher.write(&self.body[self.done..to]);
            self.done = to;
        }
    }

    /// Hashes the rest and compares: `ChecksumMismatch` when the frame's checksum differs.
    pub fn finish(&mut self) -> Result<(), EnvelopeError> {
        let actual = if self.done == 0 {
            // whole frames hash faster in one call
            self.done = self.body.len();
            xxh3_64(self.body)
        } else {
            self.advance_to(self.body.len());
            self.hasher.finish()
        };
        if actual != self.expected {
            return Err(EnvelopeError::ChecksumMismatch {
                expected: self.expected,
                actual,
            });
        }
        Ok(())
    }
}

/// [`seal`] for a frame whose buffer `buf` lacks `missing` bytes held elsewhere: `checksum`
/// is given the buffer (header filled in) and returns the checksum of the whole frame, which
/// is appended to `buf` (whose end is the frame's end).
pub(crate) fn seal_with(
    buf: &mut Vec<u8>,
    missing: usize,
    mut header: Header,
    checksum: impl FnOnce(&[u8]) -> u64,
) {
    header.payload_len = (buf.len() + missing - HEADER_LEN) as u64;
    header.write(&mut buf[..HEADER_LEN]);
    let sum = checksum(buf);
    buf.extend_from_slice(&sum.to_le_bytes());
}

/// Fills in the header and appends the checksum of a frame whose payload was written after a
/// [`HEADER_LEN`]-byte gap at the start of `buf`.
pub fn seal(buf: &mut Vec<u8>, mut header: Header) {
    header.payload_len = (buf.len() - HEADER_LEN) as u64;
    header.write(&mut buf[..HEADER_LEN]);
    let sum = xxh3_64(buf);
    buf.extend_from_slice(&sum.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frame checksum is xxh3-64 (seed 0, default secret) on every kernel twox-hash picks:
    /// the published value of the empty input, and xxhash-rust's value (a second
    /// implementation, portable here) at every length class (0-16, 17-128, 129-240, longer, over
    /// many stripes and blocks), in one call and in steps.
    #[test]
    fn the_checksum_is_xxh3_64() {
        assert_eq!(xxh3_64(b""), 0x2d06_8005_38d3_94c2);
        let data: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [
            1, 3, 8, 16, 17, 100, 128, 129, 240, 241, 1024, 1025, 4096, 5000, 65_536, 70_000,
        ] {
            let want = xxhash_rust::xxh3::xxh3_64(&data[..len]);
            assert_eq!(xxh3_64(&data[..len]), want, "len {len}");
            for step in [1, 64, 1000] {
                let mut h = xxh3_steps();
                for chunk in data[..len].chunks(step) {
                    h.write(chunk);
                }
                assert_eq!(h.finish(), want, "len {len} in steps of {step}");
            }
        }
    }

    #[test]
    fn a_checksum_in_steps_is_the_checksum() {
        let mut buf = vec![0u8; HEADER_LEN];
        buf.extend((0..5000u32).map(|i| (i * 31 + i / 7) as u8));
        let h = Header {
            flags: 0,
            page_size: 4096,
            block_size: 256,
            op_count: 0,
            stream_id: 1,
            epoch: 0,
            payload_len: 0,
            part: 0,
        };
        seal(&mut buf, h);
        for step in [1, 63, 64, 255, 256, 1000, 4096, 1 << 20] {
            let mut sum = Checksum::new(&buf);
            while sum.done() < buf.len() - TRAILER_LEN {
                sum.advance_to(sum.done() + step);
            }
            assert_eq!(sum.finish(), Ok(()));
            let mut bad = buf.clone();
            bad[HEADER_LEN + 4000] ^= 1;
            let mut sum = Checksum::new(&bad);
            sum.advance_to(step);
            assert!(matches!(
                sum.finish(),
                Err(EnvelopeError::ChecksumMismatch { .. })
            ));
        }
    }

    fn sample() -> Vec<u8> {
        let mut buf = vec![0u8; HEADER_LEN];
        buf.extend_from_slice(b"payload bytes");
        let h = Header {
            flags: FLAG_RESYNC,
            page_size: 4096,
            block_size: 256,
            op_count: 3,
            stream_id: 9,
            epoch: 41,
            payload_len: 0,
            part: 7,
        };
        seal(&mut buf, h);
        buf
    }

    #[test]
    fn a_sealed_frame_opens_with_its_header_and_payload() {
        let f = sample();
        let (h, payload) = open(&f).unwrap();
        assert_eq!(payload, b"payload bytes");
        assert_eq!(
            (h.epoch, h.stream_id, h.op_count, h.payload_len),
            (41, 9, 3, 13)
        );
        assert!(h.is_resync());
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let f = sample();
        for bit in 0..f.len() * 8 {
            let mut g = f.clone();
            g[bit / 8] ^= 1 << (bit % 8);
            assert!(open(&g).is_err(), "bit {bit} flipped went unnoticed");
        }
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        let f = sample();
        for len in 0..f.len() {
            assert!(
                matches!(open(&f[..len]), Err(EnvelopeError::Truncated { .. })),
                "len {len}"
            );
        }
        let mut longer = f.clone();
        longer.push(0);
        assert!(matches!(
            open(&longer),
            Err(EnvelopeError::TrailingBytes { .. })
        ));
    }

    /// Rewrites the version and flags of a sealed frame and seals it again (a version 1 frame
    /// without the part field).
    fn reseal(f: &[u8], version: u16, flags: u32) -> Vec<u8> {
        let mut g = f[..f.len() - TRAILER_LEN].to_vec();
        if version == VERSION_1 {
            g.drain(HEADER_LEN_1..HEADER_LEN);
            g[6..8].copy_from_slice(&(HEADER_LEN_1 as u16).to_le_bytes());
        }
        g[4..6].copy_from_slice(&version.to_le_bytes());
        g[8..12].copy_from_slice(&flags.to_le_bytes());
        let sum = xxh3_64(&g);
        g.extend_from_slice(&sum.to_le_bytes());
        g
    }

    /// Versions 1 to 5 open (version 1 without the part field and the partial flag, versions 2
    /// to 4 with both, as version 5); version 0 and versions after 5 are refused.
    #[test]
    fn version_1_frames_open_but_may_not_be_partial() {
        let f = sample();
        assert_eq!(u16_at(&f, 4), VERSION);
        let v1 = reseal(&f, VERSION_1, FLAG_RESYNC | FLAG_ENTROPY);
        let (h, payload) = open(&v1).unwrap();
        assert_eq!((h.epoch, h.part, payload), (41, 0, &b"payload bytes"[..]));
        let v1_partial = reseal(&f, VERSION_1, FLAG_RESYNC | FLAG_PARTIAL);
        assert_eq!(
            open(&v1_partial).unwrap_err(),
            EnvelopeError::UnknownFlags(FLAG_PARTIAL)
        );
        for v in [VERSION_2, VERSION_3, VERSION_4, VERSION_5] {
            let partial = reseal(&f, v, FLAG_PARTIAL);
            let (h, payload) = open(&partial).unwrap();
            assert!(h.is_partial());
            assert_eq!((h.epoch, h.part, payload), (41, 7, &b"payload bytes"[..]));
            assert_eq!(version(&partial), v);
        }
        for v in [0, 6, u16::MAX] {
            assert_eq!(
                open(&reseal(&f, v, 0)).unwrap_err(),
                EnvelopeError::UnsupportedVersion(v)
            );
        }
        assert_eq!(
            open(&reseal(&f, VERSION, 8)).unwrap_err(),
            EnvelopeError::UnknownFlags(8)
        );
    }

    #[test]
    fn a_payload_length_near_u64_max_does_not_overflow() {
        let mut f = sample();
        f[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(open(&f), Err(EnvelopeError::Truncated { .. })));
    }
}
