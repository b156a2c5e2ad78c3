//! The container: the six streams one after another, each a mode byte, its length and its bytes
//! in that mode. Writing a stream in the mode that codes it smallest, and parsing the headers
//! into where each stream's bytes are.

use super::context::{self, ContextTables};
use super::huffman::{self, TABLE_BYTES};
use super::{EntropyError, Stream, MAX_PLAIN_BYTES, STREAMS};
use crate::format::varint;
use EntropyError::Container;

/// Stream mode byte: the stream's bytes follow as they are.
pub const MODE_STORED: u8 = 0;
/// Stream mode byte: a full code-length table (256 lengths, [`TABLE_BYTES`] bytes) and
/// Huffman-coded bytes follow.
pub const MODE_HUFFMAN: u8 = 1;
/// Stream mode byte: a listed code-length table (a 32-byte bitmap of the byte values that occur,
/// then their lengths, two per byte) and Huffman-coded bytes follow. Smaller than the full table
/// when fewer than 192 values occur.
pub const MODE_HUFFMAN_LISTED: u8 = 2;

/// Stream mode byte, for the tokens, literals, low and high offset bytes: context-modelled
/// Huffman coding (see [`context`](super::context)): a table count, a context map, the tables,
/// and the coded bits.
pub const MODE_CONTEXT: u8 = 3;

/// The streams that may be context modelled.
const CONTEXT_STREAMS: [Stream; 4] = [
    Stream::Tokens,
    Stream::Literals,
    Stream::OffsetLow,
    Stream::OffsetHigh,
];

/// Bytes of a listed table with `k` values.
pub(super) fn listed_table_len(k: usize) -> usize {
    32 + k.div_ceil(2)
}

/// Writes the listed form of a code-length table.
pub(super) fn put_listed(lens: &huffman::Lengths, out: &mut Vec<u8>) {
    let mut bitmap = [0u8; 32];
    for (s, &l) in lens.iter().enumerate() {
        if l > 0 {
            bitmap[s / 8] |= 1 << (s % 8);
        }
    }
    out.extend_from_slice(&bitmap);
    let mut listed = lens.iter().copied().filter(|&l| l > 0);
    while let Some(lo) = listed.next() {
        out.push(lo | listed.next().unwrap_or(0) << 4);
    }
}

/// Reads a listed table at `table` (checked to be inside `coded`); returns the lengths and the
/// table's length in bytes. A listed value with length 0 is refused.
pub(super) fn get_listed(
    coded: &[u8],
    table: usize,
) -> Result<(huffman::Lengths, usize), EntropyError> {
    let bitmap = coded
        .get(table..table + 32)
        .ok_or(Container("code table runs past the payload"))?;
    let k: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
    let packed = coded
        .get(table + 32..table + listed_table_len(k))
        .ok_or(Container("code table runs past the payload"))?;
    let mut lens = [0u8; 256];
    let mut i = 0;
    for (s, l) in lens.iter_mut().enumerate() {
        if bitmap[s / 8] >> (s % 8) & 1 != 0 {
            *l = (packed[i / 2] >> (4 * (i % 2))) & 15;
            if *l == 0 {
                return Err(Container("a listed value without a code"));
            }
            i += 1;
        }
    }
    if k % 2 == 1 && packed[k / 2] >> 4 != 0 {
        return Err(Container("non-zero padding in a code table"));
    }
    Ok((lens, listed_table_len(k)))
}

/// The counts of each byte value in a stream: in all of it, and in each of its parts when it is
/// long enough to be coded in parts ([`huffman::PARTS_MIN_SYMBOLS`]).
pub(super) struct Counts {
    pub all: [u32; 256],
    pub parts: Option<[[u32; 256]; huffman::PARTS]>,
}

impl Counts {
    /// The counts of `s`.
    pub fn of(s: &[u8]) -> Counts {
        if s.len() >= huffman::PARTS_MIN_SYMBOLS {
            let parts = huffman::part_histograms(s);
            let all = std::array::from_fn(|v| parts.iter().map(|h| h[v]).sum());
            Counts {
                all,
                parts: Some(parts),
            }
        } else {
            Counts {
                all: huffman::histogram(s),
                parts: None,
            }
        }
    }
}

/// One stream, with the counts of its byte values: Huffman coded when that is smaller, else
/// stored.
pub(super) fn write_stream(s: &[u8], counts: &Counts, out: &mut Vec<u8>) {
    write_stream_with(s, counts, &huffman::code_lengths(&counts.all), out)
}

/// The Huffman-coded form of a stream: its table's length (the smaller form), and its coded
/// bytes, in [`huffman::PARTS`] parts when it is long enough ([`huffman::PARTS_MIN_SYMBOLS`]).
struct Coded {
    table: usize,
    bytes: usize,
    parts: Option<[usize; huffman::PARTS]>,
}

impl Coded {
    fn of(counts: &Counts, lens: &huffman::Lengths) -> Coded {
        let k = lens.iter().filter(|&&l| l > 0).count();
        let table = TABLE_BYTES.min(listed_table_len(k));
        match &counts.parts {
            Some(hists) => {
                let parts = huffman::part_bytes(hists, lens);
                let bytes = parts.iter().sum();
                Coded {
                    table,
                    bytes,
                    parts: Some(parts),
                }
            }
            None => Coded {
                table,
                bytes: huffman::coded_bits(&counts.all, lens).div_ceil(8) as usize,
                parts: None,
            },
        }
    }

    /// Bytes after the stream's length varint: mode, table, part lengths, coded length and
    /// coded bytes.
    fn len(&self) -> usize {
        let parts = self.parts.map_or(0, |p| {
            p[..huffman::PARTS - 1]
                .iter()
                .map(|&b| varint::len(b as u64))
                .sum()
        });
        1 + self.table + parts + varint::len(self.bytes as u64) + self.bytes
    }
}

/// [`write_stream`] given the code lengths of `counts`.
fn write_stream_with(s: &[u8], counts: &Counts, lens: &huffman::Lengths, out: &mut Vec<u8>) {
    let c = Coded::of(counts, lens);
    if !s.is_empty() && c.len() < 1 + s.len() {
        out.push(0); // the mode, set below
        let mode_at = out.len() - 1;
        varint::put(out, s.len() as u64);
        if c.table == TABLE_BYTES {
            out[mode_at] = MODE_HUFFMAN;
            out.extend_from_slice(&huffman::pack_lengths(lens));
        } else {
            out[mode_at] = MODE_HUFFMAN_LISTED;
            put_listed(lens, out);
        }
        // every byte of `s` has a code: the lengths are of its own counts
        match c.parts {
            Some(parts) => {
                for b in &parts[..huffman::PARTS - 1] {
                    varint::put(out, *b as u64);
                }
                varint::put(out, c.bytes as u64);
                huffman::encode_parts(s, lens, parts, out);
            }
            None => {
                varint::put(out, c.bytes as u64);
                huffman::encode_exact(s, lens, c.bytes, out);
            }
        }
    } else {
        out.push(MODE_STORED);
        varint::put(out, s.len() as u64);
        out.extend_from_slice(s);
    }
}

/// Bytes [`write_stream`] writes for stream `s` with these counts and their code lengths, less
/// its length varint.
fn stream_len(s: &[u8], counts: &Counts, lens: &huffman::Lengths) -> usize {
    let huff = Coded::of(counts, lens).len();
    if !s.is_empty() && huff < 1 + s.len() {
        huff
    } else {
        1 + s.len()
    }
}

/// Bytes a context-modelled stream must save over its Huffman-coded form to be sent so: decoding
/// it is slower (one bit string, a table per context), and a model of one table codes exactly
/// as Huffman coding does.
const CONTEXT_MIN_GAIN: usize = 32;

/// A stream whose bytes have contexts (`ctx[i]` for `s[i]`): context modelled when that beats
/// [`write_stream`]'s choice. `strings`: `None` for a stream of one bit string (tokens, offset
/// bytes); for the literal stream, whether it is coded in two strings (`Some(true)`, given
/// contexts only) or one (`Some(false)`), announced by its `first` field.
pub(super) fn write_context_stream(
    s: &[u8],
    ctx: context::Contexts<'_>,
    counts: &Counts,
    model: &mut context::Model,
    strings: Option<bool>,
    out: &mut Vec<u8>,
) {
    model.count_by(s, ctx);
    model.cluster(context::tables_for(s.len()));
    let coded = model.bits.div_ceil(8) as usize;
    // two strings: at most one byte more, and the first's length (at most as long as `coded`)
    let first = match strings {
        None => 0,
        Some(false) => 1,
        Some(true) => 1 + varint::len(coded as u64),
    };
    let with_ctx = 1 + model.tables_len() + first + varint::len(coded as u64 + 1) + coded;
    let lens = huffman::code_lengths(&counts.all);
    if with_ctx + CONTEXT_MIN_GAIN >= stream_len(s, counts, &lens) {
        return write_stream_with(s, counts, &lens, out);
    }
    out.push(MODE_CONTEXT);
    varint::put(out, s.len() as u64);
    model.put_tables(out);
    match (strings, ctx) {
        (Some(true), context::Contexts::Given(c)) => model.put_bits_pair(s, c, out),
        _ => {
            if strings.is_some() {
                varint::put(out, 0);
            }
            varint::put(out, coded as u64);
            model.put_bits_by(s, ctx, coded, out);
        }
    }
}

/// Where a stream's bytes are in the container, and how they are coded.
#[derive(Clone, Copy, Default)]
pub(super) struct StreamAt {
    /// Huffman coded with one table ([`MODE_HUFFMAN`] or [`MODE_HUFFMAN_LISTED`]).
    pub huffman: bool,
    /// Context modelled ([`MODE_CONTEXT`]); its tables were read by [`parse`].
    pub context: bool,
    /// The Huffman table is in the listed form.
    pub listed: bool,
    /// The stream's length (decoded).
    pub len: usize,
    /// Where the Huffman table starts.
    pub table: usize,
    /// Where the stream's bytes (stored or coded) start, and how many there are.
    pub data: usize,
    pub data_len: usize,
    /// A Huffman stream coded in [`huffman::PARTS`] parts (version 3, at least
    /// [`huffman::PARTS_MIN_SYMBOLS`] symbols): the coded bytes of each part; all zero when the
    /// stream is one bit string.
    pub parts: [usize; huffman::PARTS],
    /// A context-modelled literal stream in two strings (version 5): the first string's
    /// length in bytes; 0 for one string.
    pub first: usize,
}

/// Parses the stream headers of a whole container: where each stream is, and the length of the
/// payload they join into (at most [`MAX_PLAIN_BYTES`]). Every header is checked against the
/// bytes present; the tables of each context-modelled stream `s` are read into `ctx[s]`. With
/// `parts` (format version 3), Huffman streams of at least [`huffman::PARTS_MIN_SYMBOLS`]
/// symbols are in parts.
pub(super) fn parse(
    coded: &[u8],
    ctx: &mut [ContextTables; STREAMS],
    version: u16,
) -> Result<([StreamAt; STREAMS], usize), EntropyError> {
    let mut at = [StreamAt::default(); STREAMS];
    let mut pos = 0usize;
    let mut total = 0usize;
    for (si, a) in at.iter_mut().enumerate() {
        *a = stream_at(coded, &mut pos, si, &mut ctx[si], version)?;
        total += a.len;
        if total > MAX_PLAIN_BYTES {
            return Err(Container("payload longer than the limit"));
        }
    }
    if pos != coded.len() {
        return Err(Container("bytes after the last stream"));
    }
    Ok((at, total))
}

/// Parses the header of stream `si` at `*pos` and steps over its bytes.
fn stream_at(
    coded: &[u8],
    pos: &mut usize,
    si: usize,
    ctx: &mut ContextTables,
    version: u16,
) -> Result<StreamAt, EntropyError> {
    let parts = version >= crate::format::VERSION_3;
    let mode = *coded
        .get(*pos)
        .ok_or(Container("ends inside a stream header"))?;
    *pos += 1;
    let n = varint::get(coded, pos).ok_or(Container("bad stream length"))?;
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= MAX_PLAIN_BYTES)
        .ok_or(Container("stream longer than the limit"))?;
    let mut a = StreamAt {
        len: n,
        ..StreamAt::default()
    };
    match mode {
        MODE_STORED => {
            if n > coded.len() - *pos {
                return Err(Container("stored stream runs past the payload"));
            }
            (a.data, a.data_len) = (*pos, n);
            *pos += n;
        }
        MODE_HUFFMAN | MODE_HUFFMAN_LISTED => {
            a.table = *pos;
            if mode == MODE_HUFFMAN {
                if TABLE_BYTES > coded.len() - *pos {
                    return Err(Container("code table runs past the payload"));
                }
                *pos += TABLE_BYTES;
            } else {
                a.listed = true;
                *pos += get_listed(coded, *pos)?.1;
            }
            let mut first = [0u64; huffman::PARTS - 1];
            let in_parts = parts && n >= huffman::PARTS_MIN_SYMBOLS;
            if in_parts {
                for p in &mut first {
                    *p = varint::get(coded, pos).ok_or(Container("bad part length"))?;
                }
            }
            let m = coded_len(coded, pos)?;
            if n == 0 || n as u64 > 8 * m as u64 {
                return Err(Container("coded length does not fit the stream length"));
            }
            if in_parts {
                // every part at least one byte (each has symbols), all within the coded bytes
                let sum = first.iter().try_fold(0u64, |t, &p| t.checked_add(p));
                if first.contains(&0) || sum.is_none_or(|t| t >= m as u64) {
                    return Err(Container("part lengths do not fit the coded length"));
                }
                for (k, p) in first.iter().enumerate() {
                    a.parts[k] = *p as usize;
                }
                a.parts[huffman::PARTS - 1] = m - first.iter().sum::<u64>() as usize;
            }
            (a.huffman, a.data, a.data_len) = (true, *pos, m);
            *pos += m;
        }
        MODE_CONTEXT if CONTEXT_STREAMS.iter().any(|&s| s as usize == si) => {
            if n == 0 {
                return Err(Container("an empty stream that is not stored"));
            }
            ctx.read(coded, pos)?;
            // version 5 literals: the first of two strings' length, 0 for one string
            let first = if version >= crate::format::VERSION_5 && si == Stream::Literals as usize {
                varint::get(coded, pos).ok_or(Container("bad first string length"))?
            } else {
                0
            };
            let m = coded_len(coded, pos)?;
            if n as u64 > 8 * m as u64 {
                return Err(Container("coded length does not fit the stream length"));
            }
            if first > m as u64 {
                return Err(Container("first string longer than the coded bytes"));
            }
            (a.context, a.data, a.data_len) = (true, *pos, m);
            a.first = first as usize;
            *pos += m;
        }
        _ => return Err(Container("unknown stream mode")),
    }
    Ok(a)
}

/// The length of a stream's coded bits at `*pos`, checked to fit the bytes after it.
fn coded_len(coded: &[u8], pos: &mut usize) -> Result<usize, EntropyError> {
    let m = varint::get(coded, pos).ok_or(Container("bad coded length"))?;
    if m > (coded.len() - *pos) as u64 {
        return Err(Container("coded stream runs past the payload"));
    }
    Ok(m as usize)
}
