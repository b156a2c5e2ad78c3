//! General-purpose fallback compressors behind one trait: deflate (miniz_oxide) and lz4
//! (lz4 block format), plus lz4 with a preset dictionary (the page's last-sent version).
//!
//! Compressors write into a caller-sized buffer and answer `None` when the output would not fit.
//! Callers pass a buffer one byte shorter than the input, so `None` means "compression does not
//! pay: send it raw". Nothing here allocates per call after construction.

use crate::lz4::{greedy, Greedy, PageLz};
use miniz_oxide::deflate::core::{
    compress as deflate_compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush,
    TDEFLStatus,
};
use miniz_oxide::inflate::core::{decompress as inflate, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

/// How a compressed payload is coded. The value is what the frame format stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Codec {
    /// Stored as it is.
    Raw = 0,
    /// An lz4 block (no frame, no size prefix).
    Lz4 = 1,
    /// Raw deflate (RFC 1951, no zlib header).
    Deflate = 2,
}

impl Codec {
    /// The codec for a stored value, if it is one.
    pub fn from_u8(v: u8) -> Option<Codec> {
        match v {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Lz4),
            2 => Some(Codec::Deflate),
            _ => None,
        }
    }
}

/// Why a payload did not decompress to exactly the expected length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecompressError {
    /// The compressed data is malformed.
    Corrupt,
    /// The data decompressed to fewer or more bytes than expected.
    WrongLength,
}

impl std::fmt::Display for DecompressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecompressError::Corrupt => f.write_str("compressed data is malformed"),
            DecompressError::WrongLength => {
                f.write_str("compressed data does not decompress to the expected length")
            }
        }
    }
}

impl std::error::Error for DecompressError {}

impl From<crate::lz4::Error> for DecompressError {
    fn from(e: crate::lz4::Error) -> Self {
        match e {
            crate::lz4::Error::Corrupt => DecompressError::Corrupt,
            crate::lz4::Error::WrongLength => DecompressError::WrongLength,
        }
    }
}

/// A general-purpose compressor usable on any buffer.
pub trait Compressor {
    /// The codec this compressor produces.
    fn codec(&self) -> Codec;
    /// Compresses `input` into `out`, returning the compressed length, or `None` when the result
    /// would not fit in `out`.
    fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize>;
}

/// lz4 block compression: the standard lz4 block format, written by libfgbi's own matcher
/// ([`crate::lz4::PageLz`], made for pages and their last-sent versions) and read by any lz4 block
/// decoder (libfgbi's own is [`crate::lz4::decompress`]).
///
/// ```
/// use fgbi::compress::{decompress, Compressor, Lz4};
/// let page = vec![3u8; 4096];
/// let mut out = vec![0u8; 4095];
/// let mut lz4 = Lz4::default();
/// let n = lz4.compress(&page, &mut out).unwrap();
/// let mut back = vec![0u8; 4096];
/// decompress(lz4.codec(), &out[..n], &mut back, &mut Default::default()).unwrap();
/// assert_eq!(back, page);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Lz4 {
    lz: PageLz,
    greedy: Greedy,
    /// Room for lz4_flex's worst case (it wants it whatever the caller's limit), for the greedy
    /// parse of inputs longer than [`greedy::MAX_INPUT`].
    greedy_out: Vec<u8>,
}

impl Lz4 {
    /// An lz4 compressor sized up front for inputs (and dictionaries) up to `len` bytes, so no
    /// call on such inputs allocates (the default one allocates on first need).
    pub fn with_input_len(len: usize) -> Lz4 {
        let long = if len > greedy::MAX_INPUT {
            lz4_flex::block::get_maximum_output_size(len)
        } else {
            0
        };
        Lz4 {
            lz: PageLz::with_window(2 * len),
            greedy: Greedy::new(),
            greedy_out: vec![0; long],
        }
    }

    /// `input` compressed with a greedy parse into `out` (libfgbi's [`Greedy`] up to 64 KiB,
    /// lz4_flex's beyond); `None` when the result would not fit in `out`.
    pub fn compress_greedy(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        if input.len() <= greedy::MAX_INPUT {
            return self.greedy.compress(input, out);
        }
        let need = lz4_flex::block::get_maximum_output_size(input.len());
        if self.greedy_out.len() < need {
            self.greedy_out.resize(need, 0);
        }
        let n = lz4_flex::block::compress_into(input, &mut self.greedy_out).ok()?;
        let dst = out.get_mut(..n)?;
        dst.copy_from_slice(&self.greedy_out[..n]);
        Some(n)
    }

    /// Compresses `input` with `dict` (for pages: the page's last-sent version) as preset
    /// dictionary, so content that moved within or between pages becomes back-references into it.
    /// `None` when the result would not fit in `out`.
    pub fn compress_with_dict(
        &mut self,
        input: &[u8],
        dict: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        self.lz.compress_with_dict(input, dict, out)
    }
}

impl Compressor for Lz4 {
    fn codec(&self) -> Codec {
        Codec::Lz4
    }
    fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        self.lz.compress(input, out)
    }
}

/// Raw deflate at a configurable level (miniz_oxide), reusing its state between calls.
pub struct Deflate {
    state: Box<CompressorOxide>,
    level: u8,
}

impl Deflate {
    /// A deflate compressor at `level` (1 fastest .. 9 smallest; 0 stores; clamped to 10).
    pub fn new(level: u8) -> Deflate {
        let level = level.min(10);
        let flags = create_comp_flags_from_zip_params(level as i32, -15, 0);
        Deflate {
            state: Box::new(CompressorOxide::new(flags)),
            level,
        }
    }

    /// The configured level.
    pub fn level(&self) -> u8 {
        self.level
    }
}

impl std::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflate")
            .field("level", &self.level)
            .finish()
    }
}

impl Compressor for Deflate {
    fn codec(&self) -> Codec {
        Codec::Deflate
    }
    fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        self.state.reset();
        let (status, consumed, written) =
            deflate_compress(&mut self.state, input, out, TDEFLFlush::Finish);
        (status == TDEFLStatus::Done && consumed == input.len()).then_some(written)
    }
}

/// State reused by [`decompress`] (the inflate tables are about 10 KiB: keep one per decoder).
#[derive(Default)]
pub struct Scratch {
    inflate: Option<Box<DecompressorOxide>>,
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scratch")
    }
}

/// Decompresses `input` coded with `codec` into exactly `out.len()` bytes.
///
/// Fails when the data is malformed or does not fill `out` exactly; never writes past `out`.
pub fn decompress(
    codec: Codec,
    input: &[u8],
    out: &mut [u8],
    scratch: &mut Scratch,
) -> Result<(), DecompressError> {
    match codec {
        Codec::Raw => {
            if input.len() != out.len() {
                return Err(DecompressError::WrongLength);
            }
            out.copy_from_slice(input);
            Ok(())
        }
        Codec::Lz4 => Ok(crate::lz4::decompress(input, &[], out)?),
        Codec::Deflate => {
            let state = scratch.inflate.get_or_insert_with(Default::default);
            state.init();
            let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
            let (status, consumed, written) = inflate(state, input, out, 0, flags);
            match status {
                TINFLStatus::Done if written == out.len() && consumed == input.len() => Ok(()),
                TINFLStatus::Done | TINFLStatus::HasMoreOutput => Err(DecompressError::WrongLength),
                _ => Err(DecompressError::Corrupt),
            }
        }
    }
}

/// The verdict [`decompress`] would give on `input` with an output of `out_len` bytes. An lz4
/// block (most coded ops) is checked without producing its bytes ([`lz4::validate`](crate::lz4::validate),
/// the same walk without the copies); deflate data is decoded into `spare` (at least `out_len`
/// bytes, contents then unspecified).
pub(crate) fn validate(
    codec: Codec,
    input: &[u8],
    out_len: usize,
    spare: &mut [u8],
    scratch: &mut Scratch,
) -> Result<(), DecompressError> {
    match codec {
        Codec::Raw if input.len() != out_len => Err(DecompressError::WrongLength),
        Codec::Raw => Ok(()),
        Codec::Lz4 => Ok(crate::lz4::validate(input, 0, out_len)?),
        Codec::Deflate => decompress(codec, input, &mut spare[..out_len], scratch),
    }
}

/// Inverse of [`Lz4::compress_with_dict`]: fills exactly `out.len()` bytes.
pub fn lz4_dict_decompress(
    input: &[u8],
    dict: &[u8],
    out: &mut [u8],
) -> Result<(), DecompressError> {
    Ok(crate::lz4::decompress(input, dict, out)?)
}

/// The configured fallback compressor, ready to use: `None` answers "send it raw".
#[derive(Debug)]
pub enum Engine {
    /// No compression.
    None,
    /// lz4.
    Lz4(Lz4),
    /// deflate.
    Deflate(Deflate),
}

impl Engine {
    /// The engine for a configured fallback.
    pub fn new(fallback: crate::config::Fallback) -> Engine {
        match fallback {
            crate::config::Fallback::None => Engine::None,
            crate::config::Fallback::Lz4 => Engine::Lz4(Lz4::default()),
            crate::config::Fallback::Deflate(level) => Engine::Deflate(Deflate::new(level)),
        }
    }

    /// The engine for a configured fallback, allocated up front for inputs up to `len` bytes.
    pub fn with_input_len(fallback: crate::config::Fallback, len: usize) -> Engine {
        match Engine::new(fallback) {
            Engine::Lz4(_) => Engine::Lz4(Lz4::with_input_len(len)),
            e => e,
        }
    }

    /// Compresses `input` into `out`: the codec used and the length, or `None` when there is no
    /// compressor or the result would not fit in `out` (then send the input raw).
    #[inline]
    pub fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Option<(Codec, usize)> {
        match self {
            Engine::None => None,
            Engine::Lz4(c) => c.compress(input, out).map(|n| (Codec::Lz4, n)),
            Engine::Deflate(c) => c.compress(input, out).map(|n| (Codec::Deflate, n)),
        }
    }

    /// [`compress`](Self::compress) at the compressor's fastest: lz4 with a greedy parse (one
    /// candidate per position, no look-ahead: [`Greedy`], the parse of liblz4's default level),
    /// about twice as fast as libfgbi's matcher for a few percent more bytes; deflate as
    /// configured. The output is a standard lz4 block, read by the same decoder.
    pub fn compress_fast(&mut self, input: &[u8], out: &mut [u8]) -> Option<(Codec, usize)> {
        match self {
            Engine::Lz4(c) => c.compress_greedy(input, out).map(|n| (Codec::Lz4, n)),
            _ => self.compress(input, out),
        }
    }
}

/// Bytes [`looks_incompressible`] samples: eight 64-byte chunks spread over the buffer.
const PROBE_CHUNK: usize = 64;
const PROBE_CHUNKS: usize = 8;
/// Distinct byte values among the 512 sampled bytes at or above which a buffer is taken for
/// incompressible. Uniformly random bytes give 221 on average (standard deviation about 5);
/// text gives well under 100, and typical binary data (zeros, small integers, pointers) under
/// 150.
const PROBE_DISTINCT: u32 = 200;

/// A cheap entropy probe (about 0.1 µs for a page): true when `buf` looks like random bytes
/// (encrypted or already compressed data), which no general-purpose compressor shrinks, so the
/// caller can send it raw without trying. Counts the distinct byte values in eight 64-byte chunks
/// spread over the buffer; buffers under 1 KiB are never called incompressible.
///
/// It can be fooled into "incompressible" by data that repeats random content at a distance
/// (a random 1 KiB pattern written four times); such a buffer is then sent raw: correct, only
/// larger.
///
/// ```
/// use fgbi::compress::looks_incompressible;
/// let mut x = 0x9e3779b97f4a7c15u64;
/// let random: Vec<u8> = (0..4096).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x as u8 }).collect();
/// assert!(looks_incompressible(&random));
/// let text = b"the quick brown fox jumps over the lazy dog ".repeat(100);
/// assert!(!looks_incompressible(&text));
/// ```
#[inline]
pub fn looks_incompressible(buf: &[u8]) -> bool {
    if buf.len() < 1024 {
        return false;
    }
    let stride = buf.len() / PROBE_CHUNKS;
    // one flag byte per value: plain stores, no read-modify-write chain between bytes
    let mut seen = [0u8; 256];
    for c in 0..PROBE_CHUNKS {
        for &b in &buf[c * stride..c * stride + PROBE_CHUNK] {
            seen[b as usize] = 1;
        }
    }
    seen.iter().map(|&f| f as u32).sum::<u32>() >= PROBE_DISTINCT
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4 KiB of xorshift output: incompressible.
    fn random_page(x: u64) -> Vec<u8> {
        crate::noise::bytes(4096, x)
    }

    #[test]
    fn the_probe_calls_random_data_incompressible_and_compressible_data_not() {
        let mut x = 0x2545f4914f6cdd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let random: Vec<u8> = (0..4096).map(|_| next() as u8).collect();
            assert!(looks_incompressible(&random));
            let mut out = vec![0u8; 4095];
            assert_eq!(Lz4::default().compress(&random, &mut out), None);
        }
        // compressible data of several kinds, each checked to compress (deflate: lz4 finds no
        // 4-byte repeats in random bytes interleaved with zeros)
        let words: Vec<u8> = (0..512)
            .flat_map(|_| {
                let r = next();
                let w = match r % 4 {
                    0 => 0,
                    1 => r >> 48,
                    2 => 0x7f00_0000_0000 | (r >> 40),
                    _ => r & 0x3f3f_3f3f_3f3f_3f3f,
                };
                w.to_le_bytes()
            })
            .collect();
        let half: Vec<u8> = (0..4096)
            .map(|i| if i % 2 == 0 { next() as u8 } else { 0 })
            .collect();
        for page in [sample_page(1), sample_page(7), words, half, vec![0u8; 4096]] {
            assert!(!looks_incompressible(&page));
            let mut out = vec![0u8; 4095];
            assert!(Deflate::new(1).compress(&page, &mut out).is_some());
        }
        assert!(!looks_incompressible(&[0x5a; 1000]));
    }

    fn sample_page(seed: u32) -> Vec<u8> {
        // text-like, compressible content
        (0..4096u32)
            .map(|i| {
                b"session:user-0000 ttl=300 "[(i % 26) as usize] ^ ((i / 512 + seed) as u8 & 3)
            })
            .collect()
    }

    #[test]
    fn every_codec_round_trips_a_compressible_page() {
        let page = sample_page(1);
        let mut scratch = Scratch::default();
        let mut compressors: Vec<Box<dyn Compressor>> = vec![
            Box::new(Lz4::default()),
            Box::new(Deflate::new(1)),
            Box::new(Deflate::new(6)),
        ];
        for c in compressors.iter_mut() {
            let mut out = vec![0u8; page.len() - 1];
            let n = c.compress(&page, &mut out).expect("compressible");
            assert!(n < page.len() / 4, "{:?} gave {n}", c.codec());
            let mut back = vec![0u8; page.len()];
            decompress(c.codec(), &out[..n], &mut back, &mut scratch).unwrap();
            assert_eq!(back, page);
        }
    }

    #[test]
    fn incompressible_data_reports_that_compression_does_not_pay() {
        let page = random_page(0x9e3779b97f4a7c15);
        let mut out = vec![0u8; page.len() - 1];
        assert_eq!(Lz4::default().compress(&page, &mut out), None);
        assert_eq!(Deflate::new(1).compress(&page, &mut out), None);
    }

    #[test]
    fn wrong_lengths_and_garbage_are_errors_not_panics() {
        let page = sample_page(2);
        let mut scratch = Scratch::default();
        for codec in [Codec::Lz4, Codec::Deflate] {
            let mut out = vec![0u8; 4096];
            let n = match codec {
                Codec::Lz4 => Lz4::default().compress(&page, &mut out).unwrap(),
                _ => Deflate::new(1).compress(&page, &mut out).unwrap(),
            };
            let mut short = vec![0u8; 4095];
            assert!(decompress(codec, &out[..n], &mut short, &mut scratch).is_err());
            let mut long = vec![0u8; 4097];
            assert_eq!(
                decompress(codec, &out[..n], &mut long, &mut scratch),
                Err(DecompressError::WrongLength)
            );
            let mut back = vec![0u8; 4096];
            assert!(decompress(codec, &out[..n / 2], &mut back, &mut scratch).is_err());
            for garbage in [&[0xffu8; 40][..], &[0u8; 3], &[]] {
                assert!(decompress(codec, garbage, &mut back, &mut scratch).is_err());
            }
        }
        let mut out = vec![0u8; 10];
        assert_eq!(
            decompress(Codec::Raw, &[1, 2, 3], &mut out, &mut scratch),
            Err(DecompressError::WrongLength)
        );
    }

    #[test]
    fn dictionary_compression_finds_content_that_moved() {
        let old = random_page(0x2545f4914f6cdd1d);
        // the new page is the old one shifted by 100 bytes, which defeats XOR
        let mut new = old[100..].to_vec();
        new.extend_from_slice(&old[..100]);
        let mut out = vec![0u8; 4095];
        assert_eq!(
            Lz4::default().compress(&new, &mut out),
            None,
            "random content alone does not compress"
        );
        let with_dict = Lz4::default()
            .compress_with_dict(&new, &old, &mut out)
            .unwrap();
        assert!(with_dict < 64, "dict compression sent {with_dict} bytes");
        let mut back = vec![0u8; 4096];
        lz4_dict_decompress(&out[..with_dict], &old, &mut back).unwrap();
        assert_eq!(back, new);
    }
}
