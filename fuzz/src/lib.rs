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

/// The page and block size a payload is read with, and the format version of its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Page size in bytes.
    pub page: usize,
    /// Block size in bytes.
    pub block: usize,
    /// The frame's format version (from 3, long Huffman streams are coded in four parts; from
    /// 4, RUN ops; from 5, context-modelled literals in one or two bit strings).
    pub version: u16,
}

/// The fuzzed stream's geometry (frames of the current version).
pub const FUZZ: Geometry = Geometry {
    page: PS,
    block: BS,
    version: 5,
};

/// Bytes a RUN op's pages may take together.
const RUN_BYTES: usize = 65536;

/// Huffman streams of at least this many bytes are coded in four parts from version 3 on.
const PARTS_MIN: usize = 8192;

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

/// One symbol of `codes` from `coded`, read bit by bit from bit `bitpos` on (least significant bit
/// of each byte first, the code most significant bit first), or `None` when the bits run out or
/// are no code.
fn symbol(codes: &HashMap<(u32, u32), u8>, coded: &[u8], bitpos: &mut usize) -> Option<u8> {
    let (mut code, mut bits) = (0u32, 0u32);
    loop {
        let b = *coded.get(*bitpos / 8)?;
        code = (code << 1) | ((b >> (*bitpos % 8)) & 1) as u32;
        *bitpos += 1;
        bits += 1;
        if let Some(&v) = codes.get(&(bits, code)) {
            return Some(v);
        }
        if bits == CODE_MAX {
            return None; // no code
        }
    }
}

/// Whether coded bytes whose symbols ended at bit `bitpos` end right: with the byte holding the
/// last symbol's last bit, the bits after it 0.
fn coded_ends(coded: &[u8], bitpos: usize) -> bool {
    coded.len() == bitpos.div_ceil(8)
        && (bitpos.is_multiple_of(8) || coded[coded.len() - 1] >> (bitpos % 8) == 0)
}

/// Decodes exactly `len` symbols from `coded`, bit by bit (least significant bit of each byte
/// first, each code most significant bit first). The coded bytes must end with the byte holding
/// the last symbol's last bit, and the bits after it must be 0.
fn huffman_decode(lengths: &[u8; 256], len: usize, coded: &[u8]) -> Option<Vec<u8>> {
    let codes = canonical_codes(lengths)?;
    let mut bitpos = 0usize;
    let out = (0..len)
        .map(|_| symbol(&codes, coded, &mut bitpos))
        .collect::<Option<Vec<u8>>>()?;
    coded_ends(coded, bitpos).then_some(out)
}

/// The code lengths of a Huffman table of form 1 (HUFFMAN: 128 bytes, two lengths a byte) or 2
/// (HUFFMAN_LISTED: a 32-byte bitmap, then the present values' lengths, two a byte).
fn read_table(payload: &[u8], pos: &mut usize, form: u8) -> Option<[u8; 256]> {
    let mut lengths = [0u8; 256];
    match form {
        1 => {
            let table = take(payload, pos, 128)?;
            for v in 0..256 {
                lengths[v] = (table[v / 2] >> (4 * (v % 2))) & 15;
            }
        }
        2 => {
            let bitmap = take(payload, pos, 32)?;
            let present: Vec<usize> = (0..256)
                .filter(|&v| bitmap[v / 8] >> (v % 8) & 1 == 1)
                .collect();
            let nibbles = take(payload, pos, present.len().div_ceil(2))?;
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
    Some(lengths)
}

/// The coded bytes of a stream of `len` symbols: `varint coded`, then that many bytes. `len` 0 is
/// refused, and so is a `len` above 8 x `coded`.
fn coded_bytes<'a>(payload: &'a [u8], pos: &mut usize, len: usize) -> Option<&'a [u8]> {
    let coded_len = leb(payload, pos)?;
    if len == 0 || len as u64 > coded_len.saturating_mul(8) {
        return None;
    }
    take(payload, pos, usize::try_from(coded_len).ok()?)
}

/// The symbols of a HUFFMAN or HUFFMAN_LISTED stream of `len` symbols, after its table: one bit
/// string, or (version 3, `len` at least 8192) four parts of `ceil(len / 4)` symbols (the last
/// the rest), each its own bit string, their coded lengths given by three varints (the first
/// three parts; each at least 1 byte, the fourth the rest of `coded`, at least 1 byte too).
fn huffman_stream(
    payload: &[u8],
    pos: &mut usize,
    lengths: &[u8; 256],
    len: usize,
    version: u16,
) -> Option<Vec<u8>> {
    if version < 3 || len < PARTS_MIN {
        return huffman_decode(lengths, len, coded_bytes(payload, pos, len)?);
    }
    let first: Vec<u64> = (0..3).map(|_| leb(payload, pos)).collect::<Option<_>>()?;
    let coded = coded_bytes(payload, pos, len)?;
    let sum: u64 = first.iter().try_fold(0u64, |t, &b| t.checked_add(b))?;
    if first.contains(&0) || sum >= coded.len() as u64 {
        return None;
    }
    let q = len.div_ceil(4);
    let bytes = [
        first[0] as usize,
        first[1] as usize,
        first[2] as usize,
        coded.len() - sum as usize,
    ];
    let symbols = [q, q, q, len - 3 * q];
    let mut out = Vec::with_capacity(len);
    let mut at = 0usize;
    for (b, n) in bytes.into_iter().zip(symbols) {
        out.extend(huffman_decode(lengths, n, &coded[at..at + b])?);
        at += b;
    }
    Some(out)
}

/// Number of contexts of a CONTEXT stream: bytes 0 ..= 255, and 256.
const CONTEXTS: usize = 257;

/// A CONTEXT-coded stream being decoded symbol by symbol: each symbol with the table its context
/// maps to, from its bit string (symbol `i` from string `i mod k` of `k` strings, each with its
/// bit position).
struct ContextStream {
    /// The table of each context.
    map: Vec<usize>,
    /// The tables' codes.
    tables: Vec<HashMap<(u32, u32), u8>>,
    strings: Vec<(Vec<u8>, usize)>,
    /// Symbols in the stream, and decoded so far.
    len: usize,
    decoded: usize,
}

impl ContextStream {
    /// Reads a CONTEXT stream of `len` symbols after its `len` varint: table count, context map,
    /// tables, (with `first`: the first string's length) coded bytes.
    fn read(payload: &[u8], pos: &mut usize, len: usize, first: bool) -> Option<ContextStream> {
        let k = *take(payload, pos, 1)?.first()? as usize;
        if k == 0 {
            return None;
        }
        // w = ceil(log2 k): the least w with 2^w >= k
        let w = (0..=8).find(|&w| 1usize << w >= k)?;
        let map_bytes = take(payload, pos, (CONTEXTS * w).div_ceil(8))?;
        let bit = |i: usize| (map_bytes[i / 8] >> (i % 8)) & 1;
        let mut map = Vec::new();
        for c in 0..CONTEXTS {
            let entry = (0..w)
                .map(|j| (bit(c * w + j) as usize) << j)
                .sum::<usize>();
            if entry >= k {
                return None;
            }
            map.push(entry);
        }
        if (CONTEXTS * w..map_bytes.len() * 8).any(|i| bit(i) != 0) {
            return None;
        }
        let mut tables = Vec::new();
        for _ in 0..k {
            let form = *take(payload, pos, 1)?.first()?;
            let lengths = read_table(payload, pos, form)?;
            // NOT IN FORMAT.md (reported as a gap): libfgbi refuses a table with no code at all,
            // even one no context maps to. (In the HUFFMAN modes such a table cannot decode the
            // stream's first byte, so the rule changes no verdict there.)
            if lengths.iter().all(|&l| l == 0) {
                return None;
            }
            tables.push(canonical_codes(&lengths)?);
        }
        let first = if first { leb(payload, pos)? } else { 0 };
        let coded = coded_bytes(payload, pos, len)?;
        let strings = match usize::try_from(first).ok()? {
            0 => vec![(coded.to_vec(), 0)],
            f if f <= coded.len() => vec![(coded[..f].to_vec(), 0), (coded[f..].to_vec(), 0)],
            _ => return None,
        };
        Some(ContextStream {
            map,
            tables,
            strings,
            len,
            decoded: 0,
        })
    }

    /// The next symbol, coded in context `ctx` (0 ..= 256); `None` past the stream's `len` or on
    /// bits that are no code.
    fn next(&mut self, ctx: usize) -> Option<u8> {
        if self.decoded == self.len {
            return None;
        }
        let table = &self.tables[self.map[ctx]];
        let k = self.strings.len();
        let (coded, bitpos) = &mut self.strings[self.decoded % k];
        let v = symbol(table, coded, bitpos)?;
        self.decoded += 1;
        Some(v)
    }

    /// Whether all `len` symbols were decoded and each string's coded bytes end right after its
    /// last symbol.
    fn finished(&self) -> bool {
        self.decoded == self.len && self.strings.iter().all(|(c, b)| coded_ends(c, *b))
    }
}

/// Stream numbers.
const CTRL: usize = 0;
const TOKENS: usize = 1;
const LITERALS: usize = 2;
const OFFSET_LOW: usize = 3;
const OFFSET_HIGH: usize = 4;
const OPAQUE: usize = 5;

/// The six streams of an entropy-coded payload: every stream decoded, except a CONTEXT-coded
/// `LITERALS` stream, whose contexts are known only while the payload is rebuilt (its entry in
/// `bytes` is then empty, and `literals` holds it).
struct Streams {
    bytes: Vec<Vec<u8>>,
    literals: Option<ContextStream>,
    modes: [u8; 6],
    /// Streams coded in four parts.
    parted: usize,
}

/// The mode byte of each of an entropy-coded payload's six streams (FORMAT.md, "Entropy-coded
/// payload"), or `None` when the payload does not split into its streams.
pub fn reference_stream_modes(payload: &[u8], version: u16) -> Option<[u8; 6]> {
    entropy_streams(payload, version).map(|s| s.modes)
}

/// Splits an entropy-coded payload into its six streams (FORMAT.md, "Entropy-coded payload").
fn entropy_streams(payload: &[u8], version: u16) -> Option<Streams> {
    let mut pos = 0usize;
    let mut total = 0u64;
    let mut bytes: Vec<Vec<u8>> = Vec::new();
    let mut literals = None;
    let mut modes = Vec::with_capacity(6);
    let mut parted = 0;
    for s in 0..6 {
        let mode = *take(payload, &mut pos, 1)?.first()?;
        modes.push(mode);
        let len = leb(payload, &mut pos)?;
        if len > STREAM_MAX {
            return None;
        }
        total += len; // six lengths of at most 2^30 each: no overflow
        if total > STREAM_MAX {
            return None;
        }
        let len = len as usize;
        match mode {
            0 => bytes.push(take(payload, &mut pos, len)?.to_vec()),
            1 | 2 => {
                let lengths = read_table(payload, &mut pos, mode)?;
                bytes.push(huffman_stream(payload, &mut pos, &lengths, len, version)?);
                parted += (version >= 3 && len >= PARTS_MIN) as usize;
            }
            3 if s == LITERALS => {
                // version 5: the literals' first string's length (0: one string)
                literals = Some(ContextStream::read(payload, &mut pos, len, version >= 5)?);
                bytes.push(Vec::new());
            }
            3 if (TOKENS..=OFFSET_HIGH).contains(&s) => {
                let mut c = ContextStream::read(payload, &mut pos, len, false)?;
                if s == OFFSET_HIGH && bytes[OFFSET_LOW].len() != len {
                    return None;
                }
                let mut out: Vec<u8> = Vec::new();
                for i in 0..len {
                    let ctx = match s {
                        OFFSET_HIGH => bytes[OFFSET_LOW][i],
                        _ if i == 0 => 0,
                        _ => out[i - 1],
                    };
                    out.push(c.next(ctx as usize)?);
                }
                if !c.finished() {
                    return None;
                }
                bytes.push(out);
            }
            _ => return None,
        }
    }
    (pos == payload.len()).then_some(Streams {
        bytes,
        literals,
        modes: modes.try_into().ok()?,
        parted,
    })
}

/// Where page `idx` starts in `mem` (pages of `page` bytes), or `None` when the guest address
/// overflows or the page is not (wholly) in `mem`.
fn page_at(mem: &[u8], page: usize, idx: u64) -> Option<usize> {
    let addr = idx.checked_mul(page as u64)?;
    let a = usize::try_from(addr).ok()?;
    (a.checked_add(page)? <= mem.len()).then_some(a)
}

/// The plain payload being rebuilt from the six streams: every byte read from a stream is appended
/// to `out`, so the plain payload is exactly the bytes read, in reading order.
struct Rebuild<'a> {
    g: Geometry,
    /// The replica before the frame: the dictionaries of DICT ops, for the literals' contexts.
    before: &'a [u8],
    streams: Vec<Vec<u8>>,
    /// A CONTEXT-coded `LITERALS` stream, decoded literal by literal.
    literals: Option<ContextStream>,
    pos: [usize; 6],
    out: Vec<u8>,
    /// The page index of the last op read (-1 before the first).
    prev: u64,
}

impl Rebuild<'_> {
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

    /// One literal, of context `ctx` when `LITERALS` is CONTEXT-coded.
    fn literal(&mut self, ctx: usize) -> Option<u8> {
        match &mut self.literals {
            None => self.byte(LITERALS),
            Some(c) => {
                let b = c.next(ctx)?;
                self.out.push(b);
                Some(b)
            }
        }
    }

    /// `n` literals outside lz4 blocks (context 256).
    fn plain_literals(&mut self, n: usize) -> Option<()> {
        for _ in 0..n {
            self.literal(256)?;
        }
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
        (1..=2 * self.g.page as u64)
            .contains(&l)
            .then(|| self.out.len() + l as usize)
    }

    /// Fails when `n` more bytes would go past `end`.
    fn room(&self, end: usize, n: usize) -> Option<()> {
        (self.out.len().checked_add(n)? <= end).then_some(())
    }

    /// An lz4 block ending at `end` (the plain payload position after its last byte), with
    /// dictionary `dict`, decoding to at most one page.
    fn lz4(&mut self, end: usize, dict: Vec<u8>) -> Option<()> {
        let page = self.g.page;
        self.lz4_up_to(end, dict, page)
    }

    /// An lz4 block ending at `end`, with dictionary `dict`, decoding to at most `most` bytes.
    /// The block is decoded into `w` (the dictionary, then the output) as it is read, for the
    /// literals' contexts.
    fn lz4_up_to(&mut self, end: usize, dict: Vec<u8>, most: usize) -> Option<()> {
        let d = dict.len();
        let mut w = dict;
        let mut last_offset: Option<usize> = None;
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
            for _ in 0..lit {
                let p = w.len() - d; // the literal's position in the output
                if p >= most {
                    return None; // output past its page (or its run's pages)
                }
                let ctx = match last_offset {
                    Some(off) => w[d + p - off] as usize,
                    None if d > 0 => w[p] as usize,
                    None => 256,
                };
                let b = self.literal(ctx)?;
                w.push(b);
            }
            if self.out.len() == end {
                return Some(());
            }
            self.room(end, 2)?;
            let low = self.byte(OFFSET_LOW)? as usize;
            let high = self.byte(OFFSET_HIGH)? as usize;
            let offset = low | high << 8;
            let mut match_len = (token & 15) as usize + 4;
            if token & 15 == 15 {
                loop {
                    self.room(end, 1)?;
                    let b = self.byte(CTRL)?;
                    match_len += b as usize;
                    if b != 255 {
                        break;
                    }
                }
            }
            if offset == 0 || offset > w.len() || w.len() - d + match_len > most {
                return None; // offset 0, before W, or output past its page (or pages)
            }
            for _ in 0..match_len {
                w.push(w[w.len() - offset]);
            }
            last_offset = Some(offset);
            if self.out.len() == end {
                return None; // lz4 blocks end with literals
            }
        }
    }

    /// A coded body of codec 1 (lz4, no dictionary) or 2 (deflate): its length, then the body.
    fn coded_body(&mut self, codec: u8) -> Option<()> {
        let end = self.body_len()?;
        match codec {
            1 => self.lz4(end, Vec::new()),
            2 => self.bytes(OPAQUE, end - self.out.len()),
            _ => None,
        }
    }

    /// One op, from its tag on. The codec bits are looked at only where they choose how the body
    /// is read (COMPRESSED, BLOCKS with literal blocks); codec bits elsewhere are left to the
    /// reading of the rebuilt payload.
    fn op(&mut self) -> Option<()> {
        let tag = self.byte(CTRL)?;
        let address = self.varint(CTRL)?;
        self.prev = self.prev.wrapping_add(1).wrapping_add(unzigzag(address));
        let (kind, codec) = (tag & 15, tag >> 4);
        let (ps, bs) = (self.g.page, self.g.block);
        match kind {
            0 => {}
            1 => self.plain_literals(ps)?,
            2 => self.coded_body(codec)?,
            3 => {
                let end = self.body_len()?;
                while self.out.len() < end {
                    self.varint(CTRL)?; // skip
                    let run = usize::try_from(self.varint(CTRL)?).ok()?;
                    self.room(end, run)?;
                    self.plain_literals(run)?;
                }
                self.room(end, 0)?;
            }
            4 => {
                let end = self.body_len()?;
                // the dictionary: the page as the replica holds it before the frame (zeros
                // outside the replica; such an op is refused when the ops are checked)
                let dict = match page_at(self.before, ps, self.prev) {
                    Some(a) => self.before[a..a + ps].to_vec(),
                    None => vec![0u8; ps],
                };
                self.lz4(end, dict)?;
            }
            5 => {
                let nb = ps / bs;
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
                    (_, 0) => self.plain_literals(lits * bs)?,
                    (_, c) => self.coded_body(c)?, // refuses codecs other than 1 and 2
                }
            }
            6 => {
                // RUN, read whatever the frame's version (which the reading of the rebuilt
                // payload then checks): count, gaps, length, one lz4 block of count pages
                let count = self.varint(CTRL)?;
                if count < 2 || count > (RUN_BYTES / ps) as u64 {
                    return None;
                }
                for _ in 1..count {
                    let gap = self.varint(CTRL)?;
                    self.prev = self.prev.wrapping_add(1).wrapping_add(gap);
                }
                let out = count as usize * ps;
                let l = self.varint(CTRL)?;
                if l == 0 || l > 2 * out as u64 || codec != 1 {
                    return None;
                }
                let end = self.out.len() + l as usize;
                self.lz4_up_to(end, Vec::new(), out)?;
            }
            _ => return None,
        }
        Some(())
    }
}

/// The plain payload an entropy-coded payload of the fuzz geometry stands for, with a replica of
/// no pages before the frame (so every DICT dictionary reads as zeros; use
/// [`reference_unentropy_in`] when the `LITERALS` stream is CONTEXT-coded and has DICT ops).
pub fn reference_unentropy(payload: &[u8]) -> Option<Vec<u8>> {
    reference_unentropy_in(FUZZ, payload, &[])
}

/// The plain payload an entropy-coded payload stands for, or `None` when it does not decode: ops
/// are read until `CTRL` is used up, then every stream must be used up too (the op count is
/// checked when the rebuilt payload is read). `before` is the replica before the frame (the DICT
/// ops' dictionaries, for the contexts of CONTEXT-coded literals).
pub fn reference_unentropy_in(g: Geometry, payload: &[u8], before: &[u8]) -> Option<Vec<u8>> {
    let Streams {
        bytes, literals, ..
    } = entropy_streams(payload, g.version)?;
    let mut r = Rebuild {
        g,
        before,
        streams: bytes,
        literals,
        pos: [0; 6],
        out: Vec::new(),
        prev: u64::MAX,
    };
    while r.pos[CTRL] < r.streams[CTRL].len() {
        r.op()?;
    }
    let used_up = (0..6).all(|s| r.pos[s] == r.streams[s].len());
    let literals_used_up = r.literals.as_ref().is_none_or(|c| c.finished());
    (used_up && literals_used_up).then_some(r.out)
}

/// Applies the ops of a frame payload of the fuzz geometry to `mem` the plain way (see
/// [`reference_apply_in`]).
pub fn reference_apply(
    payload: &[u8],
    op_count: u32,
    resync: bool,
    entropy: bool,
    known: &HashSet<u64>,
    mem: &[u8],
) -> Option<Vec<u8>> {
    reference_apply_in(FUZZ, payload, op_count, resync, entropy, known, mem)
}

/// Applies the ops of a frame payload to `mem` the plain way. `known` holds the pages the backup
/// was sent before this frame (ignored for a resync frame); `entropy` is the frame's `ENTROPY`
/// flag (the payload is first rebuilt into plain ops). Returns the new memory, or `None` for any
/// malformed op or payload.
pub fn reference_apply_in(
    g: Geometry,
    payload: &[u8],
    op_count: u32,
    resync: bool,
    entropy: bool,
    known: &HashSet<u64>,
    mem: &[u8],
) -> Option<Vec<u8>> {
    let mut seen = Seen::default();
    reference_apply_seen(g, payload, op_count, resync, entropy, known, mem, &mut seen)
}

/// What the ops of the frames read by [`reference_apply_seen`] used.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Op tag bytes (kind in the low 4 bits, codec in the high 4).
    pub tags: HashSet<u8>,
    /// Block codes in BLOCKS ops' block maps.
    pub block_codes: HashSet<u8>,
    /// The modes of the entropy-coded payloads' streams, as (stream, mode) pairs.
    pub stream_modes: HashSet<(usize, u8)>,
    /// Huffman streams coded in four parts (version 3).
    pub parted_streams: usize,
    /// The numbers of bit strings context-modelled literal streams were coded in (version 5:
    /// one or two).
    pub literal_strings: HashSet<usize>,
    /// The pages the ops wrote.
    pub pages: HashSet<u64>,
}

impl Seen {
    /// Adds what `other` saw.
    pub fn merge(&mut self, other: &Seen) {
        self.tags.extend(&other.tags);
        self.block_codes.extend(&other.block_codes);
        self.stream_modes.extend(&other.stream_modes);
        self.parted_streams += other.parted_streams;
        self.literal_strings.extend(&other.literal_strings);
        self.pages.extend(&other.pages);
    }
}

/// [`reference_apply_in`], adding to `seen` what the frame's ops use.
#[allow(clippy::too_many_arguments)]
pub fn reference_apply_seen(
    g: Geometry,
    payload: &[u8],
    op_count: u32,
    resync: bool,
    entropy: bool,
    known: &HashSet<u64>,
    mem: &[u8],
    seen: &mut Seen,
) -> Option<Vec<u8>> {
    if entropy {
        let streams = entropy_streams(payload, g.version)?;
        seen.stream_modes
            .extend(streams.modes.iter().copied().enumerate());
        seen.parted_streams += streams.parted;
        seen.literal_strings
            .extend(streams.literals.iter().map(|c| c.strings.len()));
    }
    let plain;
    let payload = if entropy {
        plain = reference_unentropy_in(g, payload, mem)?;
        &plain[..]
    } else {
        payload
    };
    let (ps, bs) = (g.page, g.block);
    let nb = ps / bs;
    let mut known: HashSet<u64> = if resync {
        HashSet::new()
    } else {
        known.clone()
    };
    let mut out = mem.to_vec();
    let mut pos = 0usize;
    let mut prev = u64::MAX;
    let mut n = 0u32;
    let in_mem = |idx: u64| page_at(mem, ps, idx);
    while pos < payload.len() {
        if n == op_count {
            return None;
        }
        let tag = payload[pos];
        pos += 1;
        seen.tags.insert(tag);
        let (kind, codec) = (tag & 15, tag >> 4);
        let idx = prev
            .wrapping_add(1)
            .wrapping_add(unzigzag(leb(payload, &mut pos)?));
        prev = idx;
        let at = in_mem(idx)?;
        let len_field = |pos: &mut usize| -> Option<usize> {
            let l = leb(payload, pos)?;
            (l >= 1 && l <= 2 * ps as u64).then_some(l as usize)
        };
        // the pages a RUN op writes after its first
        let mut more = Vec::new();
        match kind {
            0 if codec == 0 => out[at..at + ps].fill(0),
            1 if codec == 0 => out[at..at + ps].copy_from_slice(take(payload, &mut pos, ps)?),
            2 if codec == 1 || codec == 2 => {
                let l = len_field(&mut pos)?;
                let page = decompress(codec, take(payload, &mut pos, l)?, ps)?;
                out[at..at + ps].copy_from_slice(&page);
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
                    if end > ps {
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
                let dict = out[at..at + ps].to_vec();
                let mut page = vec![0u8; ps];
                if lz4_flex::block::decompress_into_with_dict(data, &mut page, &dict).ok()? != ps {
                    return None;
                }
                out[at..at + ps].copy_from_slice(&page);
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
                    seen.block_codes.insert(code(i));
                    match code(i) {
                        0 if !known.contains(&idx) => return None,
                        2 => {
                            let src = idx.wrapping_add(unzigzag(leb(payload, &mut pos)?));
                            let blk = leb(payload, &mut pos)?;
                            if blk >= nb as u64 || !known.contains(&src) {
                                return None;
                            }
                            let s = in_mem(src)? + blk as usize * bs;
                            refs.push(before[s..s + bs].to_vec());
                        }
                        3 => lits += 1,
                        _ => {}
                    }
                }
                let lit_bytes = match (lits, codec) {
                    (0, 0) => Vec::new(),
                    (0, _) => return None,
                    (_, 0) => take(payload, &mut pos, lits * bs)?.to_vec(),
                    (_, c) => {
                        let l = len_field(&mut pos)?;
                        decompress(c, take(payload, &mut pos, l)?, lits * bs)?
                    }
                };
                let (mut r, mut l) = (0, 0);
                for i in 0..nb {
                    let dst = &mut out[at + i * bs..at + (i + 1) * bs];
                    match code(i) {
                        1 => dst.fill(0),
                        2 => {
                            dst.copy_from_slice(&refs[r]);
                            r += 1;
                        }
                        3 => {
                            dst.copy_from_slice(&lit_bytes[l * bs..(l + 1) * bs]);
                            l += 1;
                        }
                        _ => {}
                    }
                }
            }
            6 if codec == 1 && g.version >= 4 => {
                let count = leb(payload, &mut pos)?;
                if count < 2 || count > (RUN_BYTES / ps) as u64 {
                    return None;
                }
                let mut at_all = vec![at];
                for _ in 1..count {
                    let gap = leb(payload, &mut pos)?;
                    prev = prev.wrapping_add(1).wrapping_add(gap);
                    at_all.push(in_mem(prev)?);
                    more.push(prev);
                }
                let out_len = count as usize * ps;
                let l = leb(payload, &mut pos)?;
                if l == 0 || l > 2 * out_len as u64 {
                    return None;
                }
                let pages = decompress(1, take(payload, &mut pos, l as usize)?, out_len)?;
                for (i, a) in at_all.into_iter().enumerate() {
                    out[a..a + ps].copy_from_slice(&pages[i * ps..(i + 1) * ps]);
                }
            }
            _ => return None,
        }
        known.insert(idx);
        seen.pages.insert(idx);
        for p in more {
            known.insert(p);
            seen.pages.insert(p);
        }
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
            if (i / PS).is_multiple_of(5) {
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
        part: 0,
    };
    let mut f = vec![0u8; HEADER_LEN];
    f.extend_from_slice(payload);
    frame::seal(&mut f, h);
    f
}
