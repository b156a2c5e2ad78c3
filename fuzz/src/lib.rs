//! Shared pieces of the fuzz targets: a reference decoder written straight from FORMAT.md (one
//! pass, applying to a copy, no validation machinery), used as the oracle for the real decoder;
//! and the fixed setup the frame target starts from.

use std::collections::{HashMap, HashSet};

/// Page and block size of the fuzzed stream: small, so the fuzzer reaches every op kind quickly.
pub const PS: usize = 512;
/// Block size of the fuzzed stream.
pub const BS: usize = 64;
/// Pages in the fuzzed replica.
pub const PAGES: usize = 16;

fn leb(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        if i == 9 && byte > 1 {
            return None;
        }
        v |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn unzigzag(v: u64) -> u64 {
    ((v >> 1) as i64 ^ -((v & 1) as i64)) as u64
}

fn take<'a>(b: &'a [u8], pos: &mut usize, n: usize) -> Option<&'a [u8]> {
    let end = pos.checked_add(n)?;
    let s = b.get(*pos..end)?;
    *pos = end;
    Some(s)
}

fn decompress(codec: u8, data: &[u8], out_len: usize) -> Option<Vec<u8>> {
    match codec {
        1 => {
            let mut out = vec![0u8; out_len];
            (lz4_flex::block::decompress_into(data, &mut out).ok()? == out_len).then_some(out)
        }
        2 => {
            use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
            // all of the input, exactly out_len bytes of output
            let mut out = vec![0u8; out_len];
            let mut state = DecompressorOxide::new();
            let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
            let (status, used, written) = decompress(&mut state, data, &mut out, 0, flags);
            (status == miniz_oxide::inflate::TINFLStatus::Done
                && used == data.len()
                && written == out_len)
                .then_some(out)
        }
        _ => None,
    }
}

/// The spec's bound on one stream's length and on all streams together.
const STREAM_MAX: u64 = 1 << 30;
/// Longest Huffman code.
const CODE_MAX: u32 = 11;

/// Canonical Huffman code of `lengths` (0 = value absent), as (length, code) -> value, or `None`
/// when a length is above 11 or the lengths oversubscribe. RFC 1951, 3.2.2, literally.
fn canonical_codes(lengths: &[u8; 256]) -> Option<HashMap<(u32, u32), u8>> {
    if lengths.iter().any(|&l| l as u32 > CODE_MAX) {
        return None;
    }
    // Kraft: sum of 2^(11 - length) over present values <= 2^11
    let kraft: u32 = lengths
        .iter()
        .filter(|&&l| l > 0)
        .map(|&l| 1u32 << (CODE_MAX - l as u32))
        .sum();
    if kraft > 1 << CODE_MAX {
        return None;
    }
    let mut count = [0u32; CODE_MAX as usize + 1];
    for &l in lengths.iter().filter(|&&l| l > 0) {
        count[l as usize] += 1;
    }
    let mut next = [0u32; CODE_MAX as usize + 2];
    let mut code = 0u32;
    for bits in 1..=CODE_MAX as usize {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    let mut codes = HashMap::new();
    for (v, &l) in lengths.iter().enumerate() {
        let l = l as usize;
        if l > 0 {
            codes.insert((l as u32, next[l]), v as u8);
            next[l] += 1;
        }
    }
    Some(codes)
}

/// Decodes exactly `len` symbols from `coded`, bit by bit (least significant bit of each byte
/// first, each code most significant bit first). The coded bytes must end with the byte holding
/// the last symbol's last bit, and the bits after it must be 0.
fn huffman_decode(lengths: &[u8; 256], len: usize, coded: &[u8]) -> Option<Vec<u8>> {
    let codes = canonical_codes(lengths)?;
    let mut bitpos = 0usize;
    let mut bit = || -> Option<u32> {
        let b = *coded.get(bitpos / 8)?;
        let r = (b >> (bitpos % 8)) & 1;
        bitpos += 1;
        Some(r as u32)
    };
    let mut out = Vec::new();
    while out.len() < len {
        let (mut code, mut bits) = (0u32, 0u32);
        loop {
            code = (code << 1) | bit()?;
            bits += 1;
            if let Some(&v) = codes.get(&(bits, code)) {
                out.push(v);
                break;
            }
            if bits == CODE_MAX {
                return None; // no code
            }
        }
    }
    if coded.len() != bitpos.div_ceil(8) {
        return None;
    }
    if !bitpos.is_multiple_of(8) && coded[coded.len() - 1] >> (bitpos % 8) != 0 {
        return None;
    }
    Some(out)
}

/// Splits an entropy-coded payload into its six decoded streams (FORMAT.md, "Entropy-coded
/// payload").
fn entropy_streams(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut pos = 0usize;
    let mut total = 0u64;
    let mut streams = Vec::new();
    for _ in 0..6 {
        let mode = *take(payload, &mut pos, 1)?.first()?;
        let len = leb(payload, &mut pos)?;
        if len > STREAM_MAX {
            return None;
        }
        total += len; // six lengths of at most 2^30 each: no overflow
        if total > STREAM_MAX {
            return None;
        }
        let len = len as usize;
        let mut lengths = [0u8; 256];
        match mode {
            0 => {
                streams.push(take(payload, &mut pos, len)?.to_vec());
                continue;
            }
            1 => {
                let table = take(payload, &mut pos, 128)?;
                for v in 0..256 {
                    lengths[v] = (table[v / 2] >> (4 * (v % 2))) & 15;
                }
            }
            2 => {
                let bitmap = take(payload, &mut pos, 32)?;
                let present: Vec<usize> = (0..256)
                    .filter(|&v| bitmap[v / 8] >> (v % 8) & 1 == 1)
                    .collect();
                let nibbles = take(payload, &mut pos, present.len().div_ceil(2))?;
                for (i, &v) in present.iter().enumerate() {
                    lengths[v] = (nibbles[i / 2] >> (4 * (i % 2))) & 15;
                    if lengths[v] == 0 {
                        return None;
                    }
                }
                if present.len() % 2 == 1 && nibbles[nibbles.len() - 1] >> 4 != 0 {
                    return None;
                }
            }
            _ => return None,
        }
        let coded_len = leb(payload, &mut pos)?;
        if len == 0 || len as u64 > coded_len.saturating_mul(8) {
            return None;
        }
        let coded = take(payload, &mut pos, usize::try_from(coded_len).ok()?)?;
        streams.push(huffman_decode(&lengths, len, coded)?);
    }
    (pos == payload.len()).then_some(streams)
}

/// Stream numbers.
const CTRL: usize = 0;
const TOKENS: usize = 1;
const LITERALS: usize = 2;
const OFFSET_LOW: usize = 3;
const OFFSET_HIGH: usize = 4;
const OPAQUE: usize = 5;

/// The plain payload being rebuilt from the six streams: every byte read from a stream is appended
/// to `out`, so the plain payload is exactly the bytes read, in reading order.
struct Rebuild {
    streams: Vec<Vec<u8>>,
    pos: [usize; 6],
    out: Vec<u8>,
}

impl Rebuild {
    fn byte(&mut self, s: usize) -> Option<u8> {
        let b = *self.streams[s].get(self.pos[s])?;
        self.pos[s] += 1;
        self.out.push(b);
        Some(b)
    }

    fn bytes(&mut self, s: usize, n: usize) -> Option<()> {
        let chunk = take(&self.streams[s], &mut self.pos[s], n)?;
        self.out.extend_from_slice(chunk);
        Some(())
    }

    /// A varint from stream `s`, its bytes copied as they are.
    fn varint(&mut self, s: usize) -> Option<u64> {
        let start = self.pos[s];
        let v = leb(&self.streams[s], &mut self.pos[s])?;
        let bytes = self.streams[s][start..self.pos[s]].to_vec();
        self.out.extend_from_slice(&bytes);
        Some(v)
    }

    /// A body `len` varint (1 ..= 2 x page size), returning the `out` length the body ends at.
    fn body_len(&mut self) -> Option<usize> {
        let l = self.varint(CTRL)?;
        (1..=2 * PS as u64)
            .contains(&l)
            .then(|| self.out.len() + l as usize)
    }

    /// Fails when `n` more bytes would go past `end`.
    fn room(&self, end: usize, n: usize) -> Option<()> {
        (self.out.len().checked_add(n)? <= end).then_some(())
    }

    /// An lz4 block ending at `end` (the plain payload position after its last byte).
    fn lz4(&mut self, end: usize) -> Option<()> {
        loop {
            self.room(end, 1)?;
            let token = self.byte(TOKENS)?;
            let mut lit = (token >> 4) as usize;
            if lit == 15 {
                loop {
                    self.room(end, 1)?;
                    let b = self.byte(CTRL)?;
                    lit += b as usize;
                    if b != 255 {
                        break;
                    }
                }
            }
            self.room(end, lit)?;
            self.bytes(LITERALS, lit)?;
            if self.out.len() == end {
                return Some(());
            }
            self.room(end, 2)?;
            self.byte(OFFSET_LOW)?;
            self.byte(OFFSET_HIGH)?;
            if token & 15 == 15 {
                loop {
                    self.room(end, 1)?;
                    if self.byte(CTRL)? != 255 {
                        break;
                    }
                }
            }
            if self.out.len() == end {
                return None; // lz4 blocks end with literals
            }
        }
    }

    /// A coded body of codec 1 (lz4) or 2 (deflate): its length, then the body.
    fn coded_body(&mut self, codec: u8) -> Option<()> {
        let end = self.body_len()?;
        match codec {
            1 => self.lz4(end),
            2 => self.bytes(OPAQUE, end - self.out.len()),
            _ => None,
        }
    }

    /// One op, from its tag on. The codec bits are looked at only where they choose how the body
    /// is read (COMPRESSED, BLOCKS with literal blocks); codec bits elsewhere are left to the
    /// reading of the rebuilt payload.
    fn op(&mut self) -> Option<()> {
        let tag = self.byte(CTRL)?;
        self.varint(CTRL)?; // address
        let (kind, codec) = (tag & 15, tag >> 4);
        match kind {
            0 => {}
            1 => self.bytes(LITERALS, PS)?,
            2 => self.coded_body(codec)?,
            3 => {
                let end = self.body_len()?;
                while self.out.len() < end {
                    self.varint(CTRL)?; // skip
                    let run = usize::try_from(self.varint(CTRL)?).ok()?;
                    self.room(end, run)?;
                    self.bytes(LITERALS, run)?;
                }
                self.room(end, 0)?;
            }
            4 => {
                let end = self.body_len()?;
                self.lz4(end)?;
            }
            5 => {
                let nb = PS / BS;
                let start = self.out.len();
                self.bytes(CTRL, nb.div_ceil(4))?;
                let map = self.out[start..].to_vec();
                let code = |i: usize| (map[i / 4] >> (2 * (i % 4))) & 3;
                let refs = (0..nb).filter(|&i| code(i) == 2).count();
                let lits = (0..nb).filter(|&i| code(i) == 3).count();
                for _ in 0..refs {
                    self.varint(CTRL)?;
                    self.varint(CTRL)?;
                }
                match (lits, codec) {
                    (0, _) => {}
                    (_, 0) => self.bytes(LITERALS, lits * BS)?,
                    (_, c) => self.coded_body(c)?, // refuses codecs other than 1 and 2
                }
            }
            _ => return None,
        }
        Some(())
    }
}

/// The plain payload an entropy-coded payload stands for, or `None` when it does not decode: ops
/// are read until `CTRL` is used up, then every stream must be used up too (the op count is
/// checked when the rebuilt payload is read).
pub fn reference_unentropy(payload: &[u8]) -> Option<Vec<u8>> {
    let streams = entropy_streams(payload)?;
    let mut r = Rebuild {
        streams,
        pos: [0; 6],
        out: Vec::new(),
    };
    while r.pos[CTRL] < r.streams[CTRL].len() {
        r.op()?;
    }
    (0..6)
        .all(|s| r.pos[s] == r.streams[s].len())
        .then_some(r.out)
}

/// Applies the ops of a frame payload to `mem` the plain way. `known` holds the pages the backup
/// was sent before this frame (ignored for a resync frame); `entropy` is the frame's `ENTROPY`
/// flag (the payload is first rebuilt into plain ops). Returns the new memory, or `None` for any
/// malformed op or payload.
pub fn reference_apply(
    payload: &[u8],
    op_count: u32,
    resync: bool,
    entropy: bool,
    known: &HashSet<u64>,
    mem: &[u8],
) -> Option<Vec<u8>> {
    let plain;
    let payload = if entropy {
        plain = reference_unentropy(payload)?;
        &plain[..]
    } else {
        payload
    };
    let nb = PS / BS;
    let mut known: HashSet<u64> = if resync {
        HashSet::new()
    } else {
        known.clone()
    };
    let mut out = mem.to_vec();
    let mut pos = 0usize;
    let mut prev = u64::MAX;
    let mut n = 0u32;
    let in_mem = |idx: u64| -> Option<usize> {
        let addr = idx.checked_mul(PS as u64)?;
        let a = usize::try_from(addr).ok()?;
        (a.checked_add(PS)? <= mem.len()).then_some(a)
    };
    while pos < payload.len() {
        if n == op_count {
            return None;
        }
        let tag = payload[pos];
        pos += 1;
        let (kind, codec) = (tag & 15, tag >> 4);
        let idx = prev
            .wrapping_add(1)
            .wrapping_add(unzigzag(leb(payload, &mut pos)?));
        prev = idx;
        let at = in_mem(idx)?;
        let len_field = |pos: &mut usize| -> Option<usize> {
            let l = leb(payload, pos)?;
            (l >= 1 && l <= 2 * PS as u64).then_some(l as usize)
        };
        match kind {
            0 if codec == 0 => out[at..at + PS].fill(0),
            1 if codec == 0 => out[at..at + PS].copy_from_slice(take(payload, &mut pos, PS)?),
            2 if codec == 1 || codec == 2 => {
                let l = len_field(&mut pos)?;
                let page = decompress(codec, take(payload, &mut pos, l)?, PS)?;
                out[at..at + PS].copy_from_slice(&page);
            }
            3 if codec == 0 => {
                if !known.contains(&idx) {
                    return None;
                }
                let l = len_field(&mut pos)?;
                let d = take(payload, &mut pos, l)?;
                let (mut p, mut off, mut first) = (0usize, 0usize, true);
                while p < d.len() {
                    let skip = leb(d, &mut p)? as usize;
                    let run = leb(d, &mut p)? as usize;
                    if (skip == 0 && !first) || run == 0 {
                        return None;
                    }
                    off = off.checked_add(skip)?;
                    let end = off.checked_add(run)?;
                    if end > PS {
                        return None;
                    }
                    out[at + off..at + end].copy_from_slice(take(d, &mut p, run)?);
                    off = end;
                    first = false;
                }
            }
            4 if codec == 0 => {
                if !known.contains(&idx) {
                    return None;
                }
                let l = len_field(&mut pos)?;
                let data = take(payload, &mut pos, l)?;
                let dict = out[at..at + PS].to_vec();
                let mut page = vec![0u8; PS];
                if lz4_flex::block::decompress_into_with_dict(data, &mut page, &dict).ok()? != PS {
                    return None;
                }
                out[at..at + PS].copy_from_slice(&page);
            }
            5 => {
                let map = take(payload, &mut pos, nb.div_ceil(4))?;
                let code = |i: usize| (map[i / 4] >> (2 * (i % 4))) & 3;
                if nb % 4 != 0 && map[map.len() - 1] >> (2 * (nb % 4)) != 0 {
                    return None;
                }
                let before = out.clone();
                let mut lits = 0;
                let mut refs = Vec::new();
                for i in 0..nb {
                    match code(i) {
                        0 if !known.contains(&idx) => return None,
                        2 => {
                            let src = idx.wrapping_add(unzigzag(leb(payload, &mut pos)?));
                            let blk = leb(payload, &mut pos)?;
                            if blk >= nb as u64 || !known.contains(&src) {
                                return None;
                            }
                            let s = in_mem(src)? + blk as usize * BS;
                            refs.push(before[s..s + BS].to_vec());
                        }
                        3 => lits += 1,
                        _ => {}
                    }
                }
                let lit_bytes = match (lits, codec) {
                    (0, 0) => Vec::new(),
                    (0, _) => return None,
                    (_, 0) => take(payload, &mut pos, lits * BS)?.to_vec(),
                    (_, c) => {
                        let l = len_field(&mut pos)?;
                        decompress(c, take(payload, &mut pos, l)?, lits * BS)?
                    }
                };
                let (mut r, mut l) = (0, 0);
                for i in 0..nb {
                    let dst = &mut out[at + i * BS..at + (i + 1) * BS];
                    match code(i) {
                        1 => dst.fill(0),
                        2 => {
                            dst.copy_from_slice(&refs[r]);
                            r += 1;
                        }
                        3 => {
                            dst.copy_from_slice(&lit_bytes[l * BS..(l + 1) * BS]);
                            l += 1;
                        }
                        _ => {}
                    }
                }
            }
            _ => return None,
        }
        known.insert(idx);
        n += 1;
    }
    (n == op_count).then_some(out)
}

/// A deterministic replica and the genuine resync frame that produced it, for a decoder to start
/// from: every page is known afterwards.
pub fn initial_state() -> (fgbi::Config, u64, Vec<u8>, Vec<u8>) {
    let cfg = fgbi::Config {
        page_size: PS,
        block_size: BS,
        ..fgbi::Config::default()
    };
    let mem: Vec<u8> = (0..PS * PAGES)
        .map(|i| {
            if (i / PS) % 5 == 0 {
                0
            } else {
                (i * 7 / 3) as u8
            }
        })
        .collect();
    let mut enc = fgbi::Encoder::new(cfg).expect("config");
    enc.set_stream_id(0xf022);
    enc.begin_epoch(0).expect("epoch");
    for (i, page) in mem.chunks(PS).enumerate() {
        enc.add_page((i * PS) as u64, page).expect("page");
    }
    let frame = enc.end_epoch().expect("frame").to_vec();
    (cfg, 0xf022, frame, mem)
}

/// An epoch-1 frame of stream `stream` (the fuzz geometry) around `payload`: header filled in,
/// checksum appended.
pub fn epoch1_frame(flags: u32, op_count: u32, stream: u64, payload: &[u8]) -> Vec<u8> {
    use fgbi::frame::{self, Header, HEADER_LEN};
    let h = Header {
        flags,
        page_size: PS as u32,
        block_size: BS as u32,
        op_count,
        stream_id: stream,
        epoch: 1,
        payload_len: 0,
    };
    let mut f = vec![0u8; HEADER_LEN];
    f.extend_from_slice(payload);
    frame::seal(&mut f, h);
    f
}
