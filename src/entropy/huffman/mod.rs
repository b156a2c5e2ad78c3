//! Canonical, length-limited Huffman coding of byte streams: the entropy coder of the frame's
//! [`entropy`](crate::entropy) stage.
//!
//! A code is described by 256 code lengths (0 = the byte does not occur, else 1 ..= [`MAX_BITS`]),
//! packed two per byte into [`TABLE_BYTES`] bytes. Codes are assigned canonically (shorter codes
//! first, ties by byte value, as in RFC 1951) and written least significant bit first, so a decoder
//! peeks [`MAX_BITS`] bits and looks the symbol up in one table.
//!
//! ```
//! use fgbi::huffman;
//! let text = b"abracadabra, abracadabra, abracadabra";
//! let lens = huffman::code_lengths(&huffman::histogram(text));
//! let mut coded = Vec::new();
//! huffman::encode(text, &lens, &mut coded);
//! assert!(coded.len() < text.len());
//! let mut back = vec![0u8; text.len()];
//! huffman::Decoder::new(&lens).unwrap().decode(&coded, &mut back).unwrap();
//! assert_eq!(&back[..], &text[..]);
//! ```

/// Longest code, in bits. 11 keeps the decoding table at 2,048 entries (4 KiB) and costs a
/// fraction of a percent against unlimited codes on byte data.
pub const MAX_BITS: u32 = 11;
/// Bytes of a packed code-length table: 256 lengths of 4 bits, byte `i` holding the lengths of
/// symbols `2i` (low nibble) and `2i + 1` (high nibble).
pub const TABLE_BYTES: usize = 128;

mod parts;
pub(crate) use parts::encode_parts;
pub use parts::{decode_parts, part_bytes, part_histograms, part_lens, PARTS, PARTS_MIN_SYMBOLS};

/// Code length of each byte value (0 where the value does not occur).
pub type Lengths = [u8; 256];

/// Occurrences of each byte value in `data`.
pub fn histogram(data: &[u8]) -> [u32; 256] {
    // four sub-histograms break the store-to-load dependency on runs of one value
    let mut h = [[0u32; 256]; 4];
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        h[0][c[0] as usize] += 1;
        h[1][c[1] as usize] += 1;
        h[2][c[2] as usize] += 1;
        h[3][c[3] as usize] += 1;
    }
    for &b in chunks.remainder() {
        h[0][b as usize] += 1;
    }
    let mut out = [0u32; 256];
    for (i, o) in out.iter_mut().enumerate() {
        *o = h[0][i] + h[1][i] + h[2][i] + h[3][i];
    }
    out
}

/// Optimal (Huffman) code lengths for these counts, limited to [`MAX_BITS`]. A single occurring
/// value gets a 1-bit code; no occurring value gives all zeros. Two or more occurring values get a
/// complete code (Kraft sum exactly 1).
///
/// The Huffman code where it fits in [`MAX_BITS`] bits; else the optimal code of lengths up to
/// [`MAX_BITS`], by package-merge (`limited_depths`).
pub fn code_lengths(counts: &[u32; 256]) -> Lengths {
    code_lengths_within(counts, MAX_BITS)
}

/// [`code_lengths`] limited to `limit` bits (1 ..= [`MAX_BITS`]) instead: the optimal code of
/// lengths up to `limit`, or up to the fewest bits that give every occurring value a code
/// where `limit` is too few for them (2^`limit` codes for more values).
///
/// # Panics
/// When `limit` is 0 or above [`MAX_BITS`].
pub fn code_lengths_within(counts: &[u32; 256], limit: u32) -> Lengths {
    assert!(
        (1..=MAX_BITS).contains(&limit),
        "a limit of 1 ..= MAX_BITS bits"
    );
    let mut lens = [0u8; 256];
    // weight << 8 | value: one integer sort orders by weight, then value
    let mut syms = [0u64; 256];
    let mut n = 0;
    for (s, &c) in counts.iter().enumerate() {
        if c > 0 {
            syms[n] = (c as u64) << 8 | s as u64;
            n += 1;
        }
    }
    match n {
        0 => return lens,
        1 => {
            lens[(syms[0] & 0xff) as usize] = 1;
            return lens;
        }
        _ => {}
    }
    let limit = limit.max(n.next_power_of_two().trailing_zeros());
    let syms = &mut syms[..n];
    syms.sort_unstable();
    let mut depth = leaf_depths(syms);
    if depth[..n].iter().any(|&d| d > limit) {
        depth = limited_depths(syms, limit);
    }
    for (s, &d) in syms.iter().zip(&depth) {
        lens[(s & 0xff) as usize] = d as u8;
    }
    lens
}

/// The optimal code lengths of at most `limit` bits (at most [`MAX_BITS`], and 2^`limit` at
/// least the number of leaves) for the leaves `syms` (weight << 8 | value, sorted ascending, at
/// least 2 and at most 256 of them), by package-merge: list 0 is the leaves; list `t` merges the
/// leaves with the packages of list `t - 1` (its items paired in order, each pair's weight the
/// sum); the code takes the first `2n - 2` items of list `limit - 1`. Each item taken that is a
/// leaf adds one bit to that leaf's length; each package taken takes its two items of the list
/// before. The items taken from a list are always its first ones, and its leaves among them the
/// lightest, so counting them is enough: a list is kept as its weights (two buffers, the list
/// before and the one being built) and a bit per item, set for leaves.
fn limited_depths(syms: &[u64], limit: u32) -> [u32; 256] {
    const LISTS: usize = MAX_BITS as usize;
    let lists = limit as usize;
    let n = syms.len();
    debug_assert!((2..=256).contains(&n) && (1..=LISTS).contains(&lists) && n <= 1 << lists);
    let mut leaf = [0u64; 256];
    for (w, s) in leaf.iter_mut().zip(syms) {
        *w = s >> 8;
    }
    let leaf = &leaf[..n];
    let mut is_leaf = [[0u64; 8]; LISTS];
    let mut buffers = [[0u64; 512]; 2];
    buffers[0][..n].copy_from_slice(leaf);
    let mut len = n;
    for (t, bits) in is_leaf.iter_mut().enumerate().take(lists).skip(1) {
        let [a, b] = &mut buffers;
        let (prev, cur) = if t % 2 == 1 { (&*a, b) } else { (&*b, a) };
        let packages = len / 2;
        let (mut i, mut k) = (0usize, 0usize);
        // at most n + packages < 512 items
        for pair in prev[..2 * packages].chunks_exact(2) {
            let package = pair[0] + pair[1];
            // ties: the leaf first
            while i < n && leaf[i] <= package {
                cur[k] = leaf[i];
                bits[k / 64] |= 1 << (k % 64);
                (i, k) = (i + 1, k + 1);
            }
            cur[k] = package;
            k += 1;
        }
        while i < n {
            cur[k] = leaf[i];
            bits[k / 64] |= 1 << (k % 64);
            (i, k) = (i + 1, k + 1);
        }
        len = k;
    }
    // list 0 is all leaves
    for k in 0..n {
        is_leaf[0][k / 64] |= 1 << (k % 64);
    }
    let mut depth = [0u32; 256];
    let mut take = 2 * n - 2;
    for bits in is_leaf[..lists].iter().rev() {
        let leaves = leaves_among(bits, take);
        for d in &mut depth[..leaves] {
            *d += 1;
        }
        take = 2 * (take - leaves);
    }
    debug_assert_eq!(take, 0);
    depth
}

/// How many of the first `take` bits of `bits` are set.
fn leaves_among(bits: &[u64; 8], take: usize) -> usize {
    let (words, rest) = (take / 64, take % 64);
    let full: u32 = bits[..words].iter().map(|w| w.count_ones()).sum();
    let part = if rest > 0 {
        (bits[words] & ((1u64 << rest) - 1)).count_ones()
    } else {
        0
    };
    (full + part) as usize
}

/// Huffman depths (unlimited) of the leaves `syms` (weight << 8 | value, sorted ascending, at
/// most 256; all 0 for fewer than 2); `depth[i]` is the depth of `syms[i]`. In place, after
/// Moffat and Katajainen: the tree is built in one array whose front turns into the internal
/// nodes (each holding its parent's index), their depths are worked out from the root down, and
/// the leaves, deepest first, take the free places at each depth. Ties between a leaf and an
/// internal node go to the leaf, so a leaf's depth never grows with its weight.
fn leaf_depths(syms: &[u64]) -> [u32; 256] {
    let n = syms.len();
    let mut depth = [0u32; 256];
    if n < 2 {
        return depth;
    }
    let mut a = [0u64; 256];
    for (w, s) in a.iter_mut().zip(syms) {
        *w = s >> 8;
    }
    let a = &mut a[..n];
    // 1. node `next` (0..n-1) made from the two lightest of the leaves left and the nodes made
    //    but not yet taken (`root..next`); a taken node's place keeps its parent's index
    a[0] += a[1];
    let (mut root, mut leaf) = (0usize, 2usize);
    for next in 1..n - 1 {
        // node `next - 1` is not yet taken, so `root < next`
        if leaf >= n || a[root] < a[leaf] {
            a[next] = a[root];
            a[root] = next as u64;
            root += 1;
        } else {
            a[next] = a[leaf];
            leaf += 1;
        }
        if leaf >= n || (root < next && a[root] < a[leaf]) {
            a[next] += a[root];
            a[root] = next as u64;
            root += 1;
        } else {
            a[next] += a[leaf];
            leaf += 1;
        }
    }
    // 2. depths of the internal nodes: the root (n - 2) is 0, parents come after children
    a[n - 2] = 0;
    for next in (0..n - 2).rev() {
        a[next] = a[a[next] as usize] + 1;
    }
    // 3. at each depth, the places the internal nodes there do not take are leaves
    let (mut avail, mut d) = (1usize, 0u32);
    let mut root = n as isize - 2;
    let mut next = n;
    while avail > 0 {
        let mut used = 0;
        while root >= 0 && a[root as usize] == d as u64 {
            used += 1;
            root -= 1;
        }
        for _ in used..avail {
            next -= 1;
            depth[next] = d;
        }
        avail = 2 * used;
        d += 1;
    }
    depth
}

/// Bits needed to code data with these counts under these lengths.
pub fn coded_bits(counts: &[u32; 256], lens: &Lengths) -> u64 {
    counts
        .iter()
        .zip(lens)
        .map(|(&c, &l)| c as u64 * l as u64)
        .sum()
}

/// Packs code lengths (each at most 15) into [`TABLE_BYTES`] bytes.
pub fn pack_lengths(lens: &Lengths) -> [u8; TABLE_BYTES] {
    std::array::from_fn(|i| lens[2 * i] | lens[2 * i + 1] << 4)
}

/// Unpacks a code-length table written by [`pack_lengths`].
pub fn unpack_lengths(packed: &[u8; TABLE_BYTES]) -> Lengths {
    std::array::from_fn(|s| (packed[s / 2] >> (4 * (s % 2))) & 15)
}

/// Canonical codes for the lengths, bit-reversed for least-significant-bit-first writing.
/// Lengths must be a valid code (see [`Decoder::new`]).
pub(crate) fn canonical_codes(lens: &Lengths) -> [u16; 256] {
    let mut count = [0u16; 16];
    for &l in lens {
        count[l as usize] += 1;
    }
    count[0] = 0;
    let mut next = [0u16; 16];
    let mut code = 0u16;
    for l in 1..16 {
        code = (code + count[l - 1]) << 1;
        next[l] = code;
    }
    let mut codes = [0u16; 256];
    for s in 0..256 {
        let l = lens[s] as u32;
        if l > 0 {
            let c = next[l as usize];
            next[l as usize] += 1;
            codes[s] = c.reverse_bits() >> (16 - l);
        }
    }
    codes
}

/// Worst-case coded size of `n` bytes: every byte at [`MAX_BITS`], plus 8 bytes of slack the
/// writer uses.
pub fn max_coded_len(n: usize) -> usize {
    (n * MAX_BITS as usize).div_ceil(8) + 8
}

/// Appends `data` coded with `lens` to `out`; every byte of `data` must have a non-zero length.
/// Writes exactly `ceil(bits / 8)` bytes, the last one padded with zero bits.
///
/// # Panics
/// When a byte of `data` has no code (a length of 0).
pub fn encode(data: &[u8], lens: &Lengths, out: &mut Vec<u8>) {
    let counts = histogram(data);
    if let Some(s) = (0..256).find(|&s| counts[s] > 0 && lens[s] == 0) {
        panic!("byte {s:#04x} has no code");
    }
    encode_exact(
        data,
        lens,
        coded_bits(&counts, lens).div_ceil(8) as usize,
        out,
    );
}

/// [`encode`] for a caller that knows that every byte of `data` has a code and that the coded
/// data takes `bytes` bytes (from [`coded_bits`] over the counts of `data`). A byte without a
/// code would be left out of the bits; a wrong `bytes` panics.
pub(crate) fn encode_exact(data: &[u8], lens: &Lengths, bytes: usize, out: &mut Vec<u8>) {
    encode_entries(data, &code_entries(lens), bytes, out)
}

/// The code of each byte value in the low 16 bits (bit-reversed, as written), its length above:
/// one load a symbol while writing.
fn code_entries(lens: &Lengths) -> [u32; 256] {
    let codes = canonical_codes(lens);
    std::array::from_fn(|s| codes[s] as u32 | (lens[s] as u32) << 16)
}

/// [`encode_exact`] with the table of [`code_entries`].
fn encode_entries(data: &[u8], entry: &[u32; 256], bytes: usize, out: &mut Vec<u8>) {
    let start = out.len();
    // the writer stores 8 bytes at a time: 7 past the last byte it keeps
    out.resize(start + bytes + 8, 0);
    let buf = &mut out[start..];
    let (mut acc, mut nbits, mut pos) = (0u64, 0u64, 0usize);
    let mut chunks = data.chunks_exact(5);
    for c in &mut chunks {
        // at most 7 + 5 * 11 = 62 bits pending
        for &s in c {
            let e = entry[s as usize];
            acc |= ((e & 0xffff) as u64) << nbits;
            nbits += (e >> 16) as u64;
        }
        buf[pos..pos + 8].copy_from_slice(&acc.to_le_bytes());
        pos += (nbits / 8) as usize;
        acc >>= nbits & !7;
        nbits &= 7;
    }
    for &s in chunks.remainder() {
        let e = entry[s as usize];
        acc |= ((e & 0xffff) as u64) << nbits;
        nbits += (e >> 16) as u64;
    }
    buf[pos..pos + 8].copy_from_slice(&acc.to_le_bytes());
    pos += nbits.div_ceil(8) as usize;
    debug_assert_eq!(pos, bytes, "coded length");
    out.truncate(start + pos);
}

/// Why coded data was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HuffmanError {
    /// A code length above [`MAX_BITS`].
    LengthTooLong,
    /// The lengths claim more codes than exist (Kraft sum above 1).
    Oversubscribed,
    /// No byte value has a code.
    Empty,
    /// The bits do not form a code of the table.
    BadCode,
    /// The coded data ends before the last symbol, or has bytes or non-zero padding bits left
    /// after it.
    LengthMismatch,
}

impl std::fmt::Display for HuffmanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HuffmanError::LengthTooLong => "a code length above 11",
            HuffmanError::Oversubscribed => "code lengths oversubscribed",
            HuffmanError::Empty => "no symbol has a code",
            HuffmanError::BadCode => "bits that are no code",
            HuffmanError::LengthMismatch => "coded length does not match the symbol count",
        })
    }
}

/// A decoding table for one code: 2^[`MAX_BITS`] entries, each the symbol and its length; and,
/// for long streams of a complete code, a second table that decodes two symbols per lookup
/// wherever their codes fit in [`MAX_BITS`] bits together.
pub struct Decoder {
    /// `symbol << 8 | length`; length 0 marks bit patterns that are no code (incomplete codes).
    table: Box<[u16; 1 << MAX_BITS]>,
    /// `first | second << 8 | bits << 16 | symbols << 24` for each bit pattern: the one or two
    /// symbols its leading bits code, and how many bits they take. Valid when `paired`.
    pairs: Box<[u32; 1 << MAX_BITS]>,
    /// `pairs` holds the current code's entries.
    paired: bool,
    /// Every bit pattern is a code (Kraft sum exactly 1): no entry has length 0.
    complete: bool,
}

/// Streams of at least this many symbols are decoded with the two-symbol table: building it
/// costs about as much as decoding a few thousand symbols one at a time.
pub const PAIR_MIN_SYMBOLS: usize = 8192;

impl Decoder {
    /// Builds the table, refusing lengths above [`MAX_BITS`], oversubscribed and empty codes.
    /// Incomplete codes (Kraft sum below 1) are accepted; their unused patterns are refused
    /// when met.
    pub fn new(lens: &Lengths) -> Result<Decoder, HuffmanError> {
        let mut d = Decoder {
            table: Box::new([0; 1 << MAX_BITS]),
            pairs: Box::new([0; 1 << MAX_BITS]),
            paired: false,
            complete: false,
        };
        d.set(lens)?;
        Ok(d)
    }

    /// Rebuilds the table for another code, reusing its memory.
    pub fn set(&mut self, lens: &Lengths) -> Result<(), HuffmanError> {
        self.set_for(lens, PAIR_MIN_SYMBOLS)
    }

    /// [`set`](Self::set) for a stream of `symbols` symbols: the two-symbol table is built only
    /// when the stream is long enough for it to pay ([`PAIR_MIN_SYMBOLS`]) and the code is
    /// complete. Decoding gives the same symbols either way.
    pub fn set_for(&mut self, lens: &Lengths, symbols: usize) -> Result<(), HuffmanError> {
        self.paired = false;
        self.complete = fill_table(lens, &mut self.table)?;
        if self.complete && symbols >= PAIR_MIN_SYMBOLS {
            fill_pairs(&self.table, &mut self.pairs);
            self.paired = true;
        }
        Ok(())
    }

    /// Decodes exactly `out.len()` symbols from `src`, which must end with the byte holding the
    /// last symbol's last bit, padded with zero bits (as [`encode`] writes it).
    pub fn decode(&self, src: &[u8], out: &mut [u8]) -> Result<(), HuffmanError> {
        let mut c = Cursor::default();
        self.fast(src, out, &mut c);
        self.finish(src, out, c)
    }

    /// Fast path: five lookups (at most 55 bits) per 8-byte load, while the load lies inside
    /// `src` (so the bits consumed cannot pass its end), the code is complete (no entry is a
    /// non-code) and `out` has room for ten more symbols. Advances `c`; stops early, leaving the
    /// rest to [`finish`](Self::finish).
    #[inline(always)]
    fn step(&self, src: &[u8], out: &mut [u8], c: &mut Cursor) -> bool {
        let byte = (c.bitpos / 8) as usize;
        let (Some(w8), Some(o)) = (src.get(byte..byte + 8), out.get_mut(c.done..c.done + 10))
        else {
            return false;
        };
        let mask = (1u64 << MAX_BITS) - 1;
        let mut w = u64::from_le_bytes(w8.try_into().unwrap()) >> (c.bitpos % 8);
        if self.paired {
            // one or two symbols a lookup; a lone symbol's second byte is overwritten by the
            // next lookup's, or by `finish`
            let mut k = 0usize;
            for _ in 0..5 {
                let e = self.pairs[(w & mask) as usize];
                let bits = (e >> 16 & 0xff) as u64;
                o[k..k + 2].copy_from_slice(&(e as u16).to_le_bytes());
                k += (e >> 24) as usize;
                w >>= bits;
                c.bitpos += bits;
            }
            c.done += k;
        } else {
            for o in &mut o[..5] {
                let e = self.table[(w & mask) as usize];
                let l = (e & 0xff) as u64;
                *o = (e >> 8) as u8;
                w >>= l;
                c.bitpos += l;
            }
            c.done += 5;
        }
        true
    }

    /// Runs the fast path as far as it goes.
    fn fast(&self, src: &[u8], out: &mut [u8], c: &mut Cursor) {
        if self.complete {
            while self.step(src, out, c) {}
        }
    }

    /// Decodes the rest symbol by symbol, each checked, then checks the end of the coded data.
    fn finish(&self, src: &[u8], out: &mut [u8], c: Cursor) -> Result<(), HuffmanError> {
        let mask = (1u64 << MAX_BITS) - 1;
        let total_bits = src.len() as u64 * 8;
        let mut bitpos = c.bitpos;
        for o in &mut out[c.done..] {
            let e = self.table[(peek(src, bitpos) & mask) as usize];
            let l = (e & 0xff) as u64;
            if l == 0 {
                return Err(HuffmanError::BadCode);
            }
            *o = (e >> 8) as u8;
            bitpos += l;
            if bitpos > total_bits {
                return Err(HuffmanError::LengthMismatch);
            }
        }
        if bitpos.div_ceil(8) != src.len() as u64 {
            return Err(HuffmanError::LengthMismatch);
        }
        // the padding after the last symbol is zero bits, so a frame has one spelling
        if !bitpos.is_multiple_of(8) && src[src.len() - 1] >> (bitpos % 8) != 0 {
            return Err(HuffmanError::LengthMismatch);
        }
        Ok(())
    }
}

/// Fills a decoding table (`symbol << 8 | length` per pattern of [`MAX_BITS`] bits, 0 for
/// patterns that are no code) for these lengths, refusing lengths above [`MAX_BITS`],
/// oversubscribed and empty codes; returns whether the code is complete.
pub(crate) fn fill_table(
    lens: &Lengths,
    table: &mut [u16; 1 << MAX_BITS],
) -> Result<bool, HuffmanError> {
    fill_table_of(lens, table)
}

/// The longest code length of `lens` (0 for no code).
pub(crate) fn longest(lens: &Lengths) -> u32 {
    lens.iter().copied().max().unwrap_or(0) as u32
}

/// [`fill_table`] into a table of `2^b` entries, `b` from the longest code length of `lens` to
/// [`MAX_BITS`]: a pattern's entry is at its low `b` bits (the codes are least significant bit
/// first, so the bits past a code's own do not choose its entry).
///
/// # Panics
/// If `table.len()` is not such a power of two (lengths above [`MAX_BITS`] are refused first).
pub(crate) fn fill_table_of(lens: &Lengths, table: &mut [u16]) -> Result<bool, HuffmanError> {
    let mut kraft = 0u32;
    for &l in lens {
        if l as u32 > MAX_BITS {
            return Err(HuffmanError::LengthTooLong);
        }
        if l > 0 {
            kraft += 1 << (MAX_BITS - l as u32);
        }
    }
    if kraft == 0 {
        return Err(HuffmanError::Empty);
    }
    if kraft > 1 << MAX_BITS {
        return Err(HuffmanError::Oversubscribed);
    }
    let n = table.len();
    assert!(
        n.is_power_of_two() && n <= 1 << MAX_BITS && n >= 1 << longest(lens),
        "a table of 2^b entries, b from the longest code to MAX_BITS"
    );
    let codes = canonical_codes(lens);
    table.fill(0);
    for s in 0..256 {
        let l = lens[s] as u32;
        if l == 0 {
            continue;
        }
        let entry = (s as u16) << 8 | l as u16;
        let mut i = codes[s] as usize;
        while i < n {
            table[i] = entry;
            i += 1 << l;
        }
    }
    Ok(kraft == 1 << MAX_BITS)
}

/// Fills the two-symbol table of a complete code from its one-symbol `table`: the pattern's
/// first symbol, and its second when both codes fit in [`MAX_BITS`] bits. The second code's
/// entry is read at the pattern shifted past the first code, whose top bits are then zeros;
/// a code that fits in the bits left is decided by those bits alone, so its entry is right.
fn fill_pairs(table: &[u16; 1 << MAX_BITS], pairs: &mut [u32; 1 << MAX_BITS]) {
    for (p, e) in pairs.iter_mut().enumerate() {
        let first = table[p] as u32;
        let l1 = first & 0xff;
        let second = table[p >> l1] as u32;
        let l2 = second & 0xff;
        *e = if l1 + l2 <= MAX_BITS {
            first >> 8 | (second >> 8) << 8 | (l1 + l2) << 16 | 2 << 24
        } else {
            first >> 8 | l1 << 16 | 1 << 24
        };
    }
}

/// Where a decoding stands: bits consumed, symbols written.
#[derive(Clone, Copy, Default)]
struct Cursor {
    bitpos: u64,
    done: usize,
}

/// Decodes two independent coded streams at once, each exactly as [`Decoder::decode`] would:
/// the two table-lookup chains interleave, so the processor overlaps them (one stream alone is
/// bound by the latency of each lookup feeding the next shift). Returns both results.
pub fn decode_pair(
    a: (&Decoder, &[u8], &mut [u8]),
    b: (&Decoder, &[u8], &mut [u8]),
) -> (Result<(), HuffmanError>, Result<(), HuffmanError>) {
    let (da, sa, oa) = a;
    let (db, sb, ob) = b;
    let (mut ca, mut cb) = (Cursor::default(), Cursor::default());
    if da.complete && db.complete {
        while da.step(sa, oa, &mut ca) {
            if !db.step(sb, ob, &mut cb) {
                break;
            }
        }
    }
    da.fast(sa, oa, &mut ca);
    db.fast(sb, ob, &mut cb);
    (da.finish(sa, oa, ca), db.finish(sb, ob, cb))
}

/// 64 bits of `src` starting at bit `bitpos` (LSB first), zeros past its end; at least 57 of them
/// are meaningful.
#[inline(always)]
pub(crate) fn peek(src: &[u8], bitpos: u64) -> u64 {
    let byte = (bitpos / 8) as usize;
    let w = match src.get(byte..byte + 8) {
        Some(s) => u64::from_le_bytes(s.try_into().unwrap()),
        None => {
            let mut b = [0u8; 8];
            if byte < src.len() {
                b[..src.len() - byte].copy_from_slice(&src[byte..]);
            }
            u64::from_le_bytes(b)
        }
    };
    w >> (bitpos % 8)
}

#[cfg(test)]
mod tests;
