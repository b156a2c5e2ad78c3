//! The methods fgbi is compared with, each producing a real byte stream that its own decoder
//! reads back (so decode speed is measured and the output is checked).
//!
//! Every page record starts with an 8-byte header, as in QEMU's RAM stream: a little-endian u64
//! `page_index << 16 | kind << 13 | len`. Kinds: RAW (the page follows), ZERO (one fill byte
//! follows: 9 bytes in all, as QEMU), XBZRLE (a flag byte and a big-endian u16 length follow, then
//! the XBZRLE data: QEMU's `8 + 1 + 2 + len`), COMP (`len` bytes of compressed page follow).

use crate::trace::PAGE;
use fgbi::compress::{self, Codec, Compressor, Deflate};
use fgbi::xbzrle;

const RAW: u64 = 0;
const ZERO: u64 = 1;
const XBZRLE: u64 = 2;
const COMP: u64 = 3;

fn header(out: &mut Vec<u8>, idx: u64, kind: u64, len: usize) {
    out.extend_from_slice(&((idx << 16) | (kind << 13) | len as u64).to_le_bytes());
}

fn raw(out: &mut Vec<u8>, idx: u64, page: &[u8]) {
    header(out, idx, RAW, PAGE);
    out.extend_from_slice(page);
}

/// A baseline method: encodes dirty pages into a stream and decodes the stream.
pub trait Method {
    fn name(&self) -> &'static str;
    /// Appends the record(s) for page `idx` to `out` (possibly nothing, when the method knows
    /// the backup already holds the content).
    fn encode(&mut self, idx: u64, page: &[u8], out: &mut Vec<u8>);
    /// Reads one record at `*pos`, writes the page into `page` (which holds the backup's previous
    /// content when [`needs_old`](Self::needs_old)), returns the page index.
    fn decode(&mut self, stream: &[u8], pos: &mut usize, page: &mut [u8]) -> Result<u64, String>;
    /// Whether decoding needs the backup's previous content of the page.
    fn needs_old(&self) -> bool {
        false
    }
}

fn read_header(stream: &[u8], pos: &mut usize) -> Result<(u64, u64, usize), String> {
    let h = stream
        .get(*pos..*pos + 8)
        .ok_or("truncated record header")?;
    *pos += 8;
    let h = u64::from_le_bytes(h.try_into().unwrap());
    Ok((h >> 16, (h >> 13) & 7, (h & 0x1fff) as usize))
}

fn take<'a>(stream: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let s = stream.get(*pos..*pos + n).ok_or("truncated record")?;
    *pos += n;
    Ok(s)
}

/// Decodes RAW and ZERO records; other kinds are passed to `other`.
fn decode_common(
    stream: &[u8],
    pos: &mut usize,
    page: &mut [u8],
    other: impl FnOnce(u64, usize, &[u8], &mut usize, &mut [u8]) -> Result<(), String>,
) -> Result<u64, String> {
    let (idx, kind, len) = read_header(stream, pos)?;
    match kind {
        RAW => page.copy_from_slice(take(stream, pos, PAGE)?),
        ZERO => {
            let b = take(stream, pos, 1)?[0];
            page.fill(b);
        }
        _ => other(kind, len, stream, pos, page)?,
    }
    Ok(idx)
}

/// Dirty pages as they are.
pub struct Raw;

impl Method for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }
    fn encode(&mut self, idx: u64, page: &[u8], out: &mut Vec<u8>) {
        raw(out, idx, page);
    }
    fn decode(&mut self, s: &[u8], pos: &mut usize, page: &mut [u8]) -> Result<u64, String> {
        decode_common(s, pos, page, |_, _, _, _, _| {
            Err("unexpected record kind".into())
        })
    }
}

/// Zero pages as header + one byte, the rest raw.
pub struct ZeroRaw;

fn zero(out: &mut Vec<u8>, idx: u64) {
    header(out, idx, ZERO, 1);
    out.push(0);
}

impl Method for ZeroRaw {
    fn name(&self) -> &'static str {
        "zero+raw"
    }
    fn encode(&mut self, idx: u64, page: &[u8], out: &mut Vec<u8>) {
        if fgbi::zero::is_zero(page) {
            zero(out, idx);
        } else {
            raw(out, idx, page);
        }
    }
    fn decode(&mut self, s: &[u8], pos: &mut usize, page: &mut [u8]) -> Result<u64, String> {
        decode_common(s, pos, page, |_, _, _, _, _| {
            Err("unexpected record kind".into())
        })
    }
}

/// QEMU's XBZRLE (libfgbi's `xbzrle` codec, in QEMU's exact output mode): a direct-mapped cache
/// of last-sent pages; on a hit the XBZRLE delta when it fits in a page, else (miss or overflow) the raw page, which is then cached. Zero pages are
/// sent as zero records and cached as zeros.
pub struct Xbzrle {
    slots: usize,
    tags: Vec<u64>,
    data: Vec<u8>,
    buf: Vec<u8>,
    pub hits: u64,
    pub misses: u64,
    pub overflows: u64,
}

impl Xbzrle {
    pub fn new(cache_bytes: usize) -> Xbzrle {
        let slots = (cache_bytes / PAGE).max(1);
        Xbzrle {
            slots,
            tags: vec![u64::MAX; slots],
            data: vec![0; slots * PAGE],
            buf: vec![0; PAGE],
            hits: 0,
            misses: 0,
            overflows: 0,
        }
    }

    fn slot(&mut self, idx: u64) -> (bool, &mut [u8]) {
        let s = (idx % self.slots as u64) as usize;
        let hit = self.tags[s] == idx;
        self.tags[s] = idx;
        (hit, &mut self.data[s * PAGE..(s + 1) * PAGE])
    }
}

impl Method for Xbzrle {
    fn name(&self) -> &'static str {
        "xbzrle"
    }
    fn encode(&mut self, idx: u64, page: &[u8], out: &mut Vec<u8>) {
        if fgbi::zero::is_zero(page) {
            self.slot(idx).1.fill(0);
            zero(out, idx);
            return;
        }
        let mut buf = std::mem::take(&mut self.buf);
        let (hit, cached) = self.slot(idx);
        // encode_exact: byte for byte QEMU's output (maximal runs), so the row is QEMU's method;
        // fgbi::xbzrle::encode (short gaps absorbed) is never longer and usually a little shorter
        let r = if hit {
            xbzrle::encode_exact(cached, page, &mut buf)
        } else {
            Err(xbzrle::Overflow)
        };
        cached.copy_from_slice(page);
        match r {
            Ok(0) => {} // the backup holds this content: nothing to send
            Ok(n) => {
                header(out, idx, XBZRLE, n);
                out.push(0x03); // ENCODING_FLAG_XBZRLE
                out.extend_from_slice(&(n as u16).to_be_bytes());
                out.extend_from_slice(&buf[..n]);
            }
            Err(_) => raw(out, idx, page),
        }
        match (hit, r.is_ok()) {
            (true, true) => self.hits += 1,
            (true, false) => self.overflows += 1,
            _ => self.misses += 1,
        }
        self.buf = buf;
    }
    fn decode(&mut self, s: &[u8], pos: &mut usize, page: &mut [u8]) -> Result<u64, String> {
        decode_common(s, pos, page, |kind, _, s, pos, page| {
            if kind != XBZRLE {
                return Err("unexpected record kind".into());
            }
            let hdr = take(s, pos, 3)?;
            let n = u16::from_be_bytes([hdr[1], hdr[2]]) as usize;
            let data = take(s, pos, n)?;
            xbzrle::decode(data, page).map_err(|_| "corrupt XBZRLE data".to_string())?;
            Ok(())
        })
    }
    fn needs_old(&self) -> bool {
        true
    }
}

/// Which general-purpose compressor.
pub enum Which {
    Zlib1,
    Lz4,
    Zstd1,
}

/// Each dirty page compressed alone (as QEMU's multifd compression), raw when that does not pay.
pub struct PerPage {
    which: Which,
    deflate: Deflate,
    /// lz4_flex's worst-case output buffer (its compressor wants room for the worst case).
    lz4_out: Vec<u8>,
    zc: zstd::bulk::Compressor<'static>,
    zd: zstd::bulk::Decompressor<'static>,
    scratch: compress::Scratch,
    buf: Vec<u8>,
}

impl PerPage {
    pub fn new(which: Which) -> PerPage {
        PerPage {
            which,
            deflate: Deflate::new(1),
            lz4_out: vec![0; lz4_flex::block::get_maximum_output_size(PAGE)],
            zc: zstd::bulk::Compressor::new(1).expect("zstd compressor"),
            zd: zstd::bulk::Decompressor::new().expect("zstd decompressor"),
            scratch: compress::Scratch::default(),
            buf: vec![0; PAGE - 1],
        }
    }
}

impl Method for PerPage {
    fn name(&self) -> &'static str {
        match self.which {
            Which::Zlib1 => "zlib-1",
            Which::Lz4 => "lz4",
            Which::Zstd1 => "zstd-1",
        }
    }
    fn encode(&mut self, idx: u64, page: &[u8], out: &mut Vec<u8>) {
        let buf = &mut self.buf[..];
        let n = match self.which {
            Which::Zlib1 => self.deflate.compress(page, buf),
            // lz4_flex's compressor, the same greedy parse as liblz4's default level that QEMU's
            // multifd uses (libfgbi's own matcher, `fgbi::lz`, would flatter the baseline)
            Which::Lz4 => lz4_flex::block::compress_into(page, &mut self.lz4_out)
                .ok()
                .filter(|&n| n <= buf.len())
                .inspect(|&n| buf[..n].copy_from_slice(&self.lz4_out[..n])),
            Which::Zstd1 => self.zc.compress_to_buffer(page, buf).ok(),
        };
        match n {
            Some(n) => {
                header(out, idx, COMP, n);
                out.extend_from_slice(&buf[..n]);
            }
            None => raw(out, idx, page),
        }
    }
    fn decode(&mut self, s: &[u8], pos: &mut usize, page: &mut [u8]) -> Result<u64, String> {
        let (which, zd, scratch) = (&self.which, &mut self.zd, &mut self.scratch);
        decode_common(s, pos, page, |kind, len, s, pos, page| {
            if kind != COMP {
                return Err("unexpected record kind".into());
            }
            let data = take(s, pos, len)?;
            match which {
                Which::Zlib1 => compress::decompress(Codec::Deflate, data, page, scratch)
                    .map_err(|e| e.to_string()),
                Which::Lz4 => {
                    compress::decompress(Codec::Lz4, data, page, scratch).map_err(|e| e.to_string())
                }
                Which::Zstd1 => match zd.decompress_to_buffer(data, page) {
                    Ok(n) if n == PAGE => Ok(()),
                    Ok(_) => Err("zstd: wrong length".into()),
                    Err(e) => Err(format!("zstd: {e}")),
                },
            }
        })
    }
}

/// All baselines in table order.
pub fn all(cache_bytes: usize) -> Vec<Box<dyn Method>> {
    vec![
        Box::new(Raw),
        Box::new(ZeroRaw),
        Box::new(Xbzrle::new(cache_bytes)),
        Box::new(PerPage::new(Which::Zlib1)),
        Box::new(PerPage::new(Which::Lz4)),
        Box::new(PerPage::new(Which::Zstd1)),
    ]
}
