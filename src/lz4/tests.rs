use super::decode::length_ext;
use super::*;
use proptest::prelude::*;

fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// A page that looks like a heap: 8-byte words, many small integers and pointer-like values.
fn heap_page(seed: u64) -> Vec<u8> {
    let mut r = xorshift(seed | 1);
    let mut page = Vec::with_capacity(4096);
    while page.len() < 4096 {
        let v = match r() % 4 {
            0 => 0,
            1 => r() % 100,
            2 => 0x7f00_0000_0000 + (r() % 4096) * 8,
            _ => r(),
        };
        page.extend_from_slice(&v.to_le_bytes());
    }
    page
}

/// Decodes with lz4_flex (an independent lz4 implementation) and checks the lz4 block rules
/// that decoders may rely on: the last sequence is literals only and at least 5 bytes long, and
/// no match starts within the last 12 bytes.
fn check_block(block: &[u8], dict: &[u8], expect: &[u8]) {
    let mut back = vec![0u8; expect.len()];
    let n = lz4_flex::block::decompress_into_with_dict(block, &mut back, dict)
        .expect("lz4_flex decodes it");
    assert_eq!(n, expect.len());
    assert_eq!(back, expect);
    // Walk the sequences.
    let (mut i, mut produced) = (0usize, 0usize);
    loop {
        let token = block[i];
        i += 1;
        let mut lits = (token >> 4) as usize;
        if lits == 15 {
            lits = length_ext(block, &mut i, lits).unwrap();
        }
        i += lits;
        produced += lits;
        if i == block.len() {
            if expect.len() > MFLIMIT {
                assert!(lits >= LAST_LITERALS, "block ends with {lits} literals");
            }
            break;
        }
        assert!(
            produced + MFLIMIT <= expect.len(),
            "match starts {produced} of {}",
            expect.len()
        );
        let off = u16::from_le_bytes([block[i], block[i + 1]]) as usize;
        assert!(off > 0);
        i += 2;
        let mut m = (token & 15) as usize;
        if m == 15 {
            m = length_ext(block, &mut i, m).unwrap();
        }
        produced += m + MIN_MATCH;
    }
    assert_eq!(produced, expect.len());
}

fn compress(lz: &mut PageLz, input: &[u8], dict: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; input.len() + input.len() / 255 + 16];
    let n = lz
        .compress_with_dict(input, dict, &mut out)
        .expect("worst case fits");
    out.truncate(n);
    out
}

#[test]
fn every_block_decodes_with_another_lz4_implementation_and_keeps_the_format_rules() {
    let mut lz = PageLz::new();
    let zero = vec![0u8; 4096];
    let mut r = xorshift(7);
    let random: Vec<u8> = (0..4096).map(|_| r() as u8).collect();
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (zero.clone(), vec![]),
        (zero.clone(), zero.clone()),
        (random.clone(), vec![]),
        (random.clone(), random.clone()),
        (heap_page(1), vec![]),
        (heap_page(1), heap_page(2)),
        (heap_page(3), heap_page(3)),
        (vec![5u8; 13], vec![]),
        (vec![5u8; 12], vec![]),
        (vec![], vec![]),
        (vec![1, 2, 3], vec![1, 2, 3]),
        (b"abcdefghijklmnopqrstuvwxyz".repeat(3), b"xyz".to_vec()),
    ];
    for (input, dict) in cases {
        let block = compress(&mut lz, &input, &dict);
        check_block(&block, &dict, &input);
    }
}

#[test]
fn unchanged_and_moved_content_become_matches() {
    let mut lz = PageLz::new();
    let old = heap_page(11);
    // One word changed: the rest matches at the same position.
    let mut one = old.clone();
    one[2048..2056].copy_from_slice(&0x1234_5678u64.to_le_bytes());
    let block = compress(&mut lz, &one, &old);
    check_block(&block, &old, &one);
    assert!(
        block.len() < 40,
        "one changed word costs {} bytes",
        block.len()
    );
    // A 1 KiB object moved by 8 bytes (and by 100): a few sequences.
    for shift in [8usize, 100] {
        let mut moved = old.clone();
        moved.copy_within(1000..2024, 1000 + shift);
        let block = compress(&mut lz, &moved, &old);
        check_block(&block, &old, &moved);
        assert!(
            block.len() < 48,
            "move by {shift} costs {} bytes",
            block.len()
        );
    }
    // Without a dictionary, random-looking words do not compress but still round trip.
    let fresh = heap_page(12);
    let block = compress(&mut lz, &fresh, &[]);
    check_block(&block, &[], &fresh);
}

#[test]
fn too_small_an_output_is_none_and_never_a_partial_block() {
    let mut lz = PageLz::new();
    let old = heap_page(21);
    let mut new = heap_page(22);
    new[..2048].copy_from_slice(&old[1024..3072]);
    let full = compress(&mut lz, &new, &old);
    // A fresh compressor each time: the block depends on the hash table's history.
    // Under Miri a few sizes only: each call indexes a whole page, slow under the interpreter.
    let caps: Vec<usize> = if cfg!(miri) {
        vec![0, 1, full.len() / 2, full.len() - 2, full.len() - 1]
    } else {
        (0..full.len()).collect()
    };
    for cap in caps {
        let mut out = vec![0u8; cap];
        assert_eq!(
            PageLz::new().compress_with_dict(&new, &old, &mut out),
            None,
            "cap {cap}"
        );
    }
    let mut out = vec![0u8; full.len()];
    let n = PageLz::new()
        .compress_with_dict(&new, &old, &mut out)
        .unwrap();
    check_block(&out[..n], &old, &new);
}

/// The greedy parse written plainly (bounds-checked reads, one candidate table of `usize`, a
/// growing output, matches extended a byte at a time): the rules [`Greedy`] follows, to which
/// its output is compared byte for byte.
fn greedy_plain(src: &[u8]) -> Vec<u8> {
    fn push_ext(out: &mut Vec<u8>, mut n: usize) {
        while n >= 255 {
            out.push(255);
            n -= 255;
        }
        out.push(n as u8);
    }
    fn sequence(out: &mut Vec<u8>, lits: &[u8], off: usize, ml: usize) {
        let (l, m) = (lits.len(), ml.saturating_sub(MIN_MATCH));
        let match_nibble = if ml > 0 { m.min(15) } else { 0 };
        out.push(((l.min(15) << 4) | match_nibble) as u8);
        if l >= 15 {
            push_ext(out, l - 15);
        }
        out.extend_from_slice(lits);
        if ml > 0 {
            out.extend_from_slice(&(off as u16).to_le_bytes());
            if m >= 15 {
                push_ext(out, m - 15);
            }
        }
    }
    let mut out = Vec::new();
    let len = src.len();
    if len <= MFLIMIT {
        sequence(&mut out, src, 0, 0);
        return out;
    }
    let hash = |at: usize| {
        let v = u64::from_le_bytes(src[at..at + 8].try_into().unwrap());
        ((v << 24).wrapping_mul(889_523_592_379) >> 52) as usize
    };
    let mut table = vec![0usize; 4096];
    let (mflimit, matchlimit) = (len - MFLIMIT, len - LAST_LITERALS);
    let (mut anchor, mut p) = (0, 1);
    'sequences: loop {
        let mut probes = 32;
        let mut c = loop {
            let cur = p;
            p = cur + probes / 32;
            probes += 1;
            if cur > mflimit {
                break 'sequences;
            }
            let k = hash(cur);
            let c = std::mem::replace(&mut table[k], cur);
            if src[c..c + 4] == src[cur..cur + 4] {
                p = cur;
                break c;
            }
        };
        while p > anchor && c > 0 && src[p - 1] == src[c - 1] {
            (p, c) = (p - 1, c - 1);
        }
        let mut ml = MIN_MATCH;
        while p + ml < matchlimit && src[c + ml] == src[p + ml] {
            ml += 1;
        }
        sequence(&mut out, &src[anchor..p], p - c, ml);
        p += ml;
        anchor = p;
        if p > mflimit {
            break;
        }
        table[hash(p - 2)] = p - 2;
    }
    sequence(&mut out, &src[anchor..], 0, 0);
    out
}

/// Inputs for the greedy parse: every length up to a little past the shortest that may hold a
/// match, pages of every kind (heap-like, random, zero, text) and a run of equal bytes long
/// enough for multi-byte length extensions; the largest input it takes (64 KiB) but under Miri.
fn greedy_inputs() -> Vec<Vec<u8>> {
    let mut r = xorshift(5);
    let random: Vec<u8> = (0..4096).map(|_| r() as u8).collect();
    let text = b"GET /api/v1/users/1042 HTTP/1.1\r\nHost: example\r\n".repeat(80);
    let mut inputs: Vec<Vec<u8>> = (0..=MFLIMIT + 2)
        .map(|n| heap_page(n as u64)[..n].to_vec())
        .collect();
    let mut runs = heap_page(33);
    runs[100..1200].fill(7);
    inputs.extend([
        heap_page(31),
        heap_page(32)[..1500].to_vec(),
        random,
        vec![0; 4096],
        text,
        runs,
    ]);
    if !cfg!(miri) {
        let big: Vec<u8> = (0..16).flat_map(|i| heap_page(40 + i % 5)).collect();
        assert_eq!(big.len(), greedy::MAX_INPUT);
        inputs.push(big);
    }
    inputs
}

/// [`Greedy`] (unchecked reads and 16-byte literal copies) writes exactly the block of the
/// plain parse above, on every input; the block keeps the lz4 format rules and decodes to its
/// input with lz4_flex and with our decoder; the compressor's table left from one input changes
/// nothing for the next. Run under Miri too, which checks the unchecked reads and copies.
#[test]
fn the_greedy_parse_writes_the_plain_parses_blocks_which_decode_to_their_input() {
    let mut g = Greedy::new();
    for input in &greedy_inputs() {
        let mut out = vec![0u8; input.len() + input.len() / 255 + 16];
        let n = g
            .compress(input, &mut out)
            .unwrap_or_else(|| panic!("a {}-byte input fits its worst case", input.len()));
        assert!(
            out[..n] == greedy_plain(input)[..],
            "{} bytes: not the plain parse's block",
            input.len()
        );
        check_block(&out[..n], &[], input);
        let mut back = vec![0u8; input.len()];
        assert_eq!(decompress(&out[..n], &[], &mut back), Ok(()));
        assert_eq!(&back, input);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// On inputs of any length up to two pages made of heap words, runs and copies of earlier
    /// stretches, [`Greedy`] writes the plain parse's block.
    #[test]
    #[cfg_attr(miri, ignore)] // proptest's failure persistence needs getcwd, which Miri refuses
    fn greedy_blocks_are_the_plain_parses(seed in any::<u64>(), len in 0usize..8192) {
        let mut r = xorshift(seed | 1);
        let mut input: Vec<u8> = Vec::with_capacity(len + 64);
        while input.len() < len {
            match r() % 4 {
                0 => input.extend_from_slice(&heap_page(r())[..8 + (r() % 64) as usize]),
                1 => input.extend(std::iter::repeat_n(r() as u8, (r() % 300) as usize)),
                2 if !input.is_empty() => {
                    let from = (r() as usize) % input.len();
                    let n = ((r() % 200) as usize).min(input.len() - from);
                    input.extend_from_within(from..from + n);
                }
                _ => input.push(r() as u8),
            }
        }
        input.truncate(len);
        let mut out = vec![0u8; len + len / 255 + 16];
        let n = Greedy::new().compress(&input, &mut out).unwrap();
        prop_assert!(out[..n] == greedy_plain(&input)[..]);
        check_block(&out[..n], &[], &input);
    }
}

/// An output of exactly the block's length gets the block; one byte shorter, `None` (never a
/// partial block), for inputs whose last sequence is long or short and whose literals end near
/// the output's end (where the 16-byte copies must not run past it).
#[test]
fn the_greedy_parse_fills_an_output_of_exactly_its_length_and_no_shorter() {
    let mut g = Greedy::new();
    for input in &greedy_inputs() {
        let block = greedy_plain(input);
        let n = block.len();
        let mut exact = vec![0u8; n];
        assert_eq!(
            g.compress(input, &mut exact),
            Some(n),
            "{} bytes",
            input.len()
        );
        assert!(exact == block);
        if n > 0 {
            let mut short = vec![0u8; n - 1];
            assert_eq!(g.compress(input, &mut short), None, "{} bytes", input.len());
        }
    }
}

/// Past 64 KiB [`Greedy`] refuses the input (its positions are 16-bit) and
/// `Lz4::compress_greedy` hands it to lz4_flex: the block still decodes to the input.
#[test]
#[cfg_attr(miri, ignore)] // 64 KiB through lz4_flex and our decoder: minutes under Miri
fn inputs_past_64_kib_take_lz4_flexs_greedy_parse() {
    let input: Vec<u8> = (0..17).flat_map(|i| heap_page(50 + i % 3)).collect();
    assert!(input.len() > greedy::MAX_INPUT);
    let mut out = vec![0u8; input.len() + input.len() / 255 + 16];
    assert_eq!(Greedy::new().compress(&input, &mut out), None);
    let n = crate::compress::Lz4::default()
        .compress_greedy(&input, &mut out)
        .expect("worst case fits");
    check_block(&out[..n], &[], &input);
}

#[test]
fn a_dictionary_longer_than_the_lz4_window_is_cut_to_its_last_64_kib() {
    let mut lz = PageLz::new();
    let mut dict = vec![0u8; 100_000];
    dict[..4096].copy_from_slice(&heap_page(31));
    dict[100_000 - 4096..].copy_from_slice(&heap_page(32));
    let input = heap_page(32);
    let block = compress(&mut lz, &input, &dict);
    check_block(&block, &dict, &input);
    assert!(block.len() < 48, "{} bytes", block.len());
}

proptest! {
    /// Whatever the history of the compressor (stale hash entries from earlier calls), every
    /// block decodes to its input: edits, moves and fresh bytes applied to a heap-like page.
    #[test]
    #[cfg_attr(miri, ignore)] // proptest's failure persistence needs getcwd, which Miri refuses
    fn edited_pages_round_trip(seed in any::<u64>(),
                               edits in prop::collection::vec((0usize..4096, 0usize..600, 0usize..4096, any::<u8>()), 0..12),
                               page_len in prop::sample::select(vec![512usize, 4096, 65536])) {
        let mut lz = PageLz::new();
        let mut old = Vec::new();
        while old.len() < page_len {
            old.extend_from_slice(&heap_page(seed.wrapping_add(old.len() as u64)));
        }
        old.truncate(page_len);
        let mut new = old.clone();
        for &(at, len, to, b) in &edits {
            let at = at % page_len;
            let to = to % page_len;
            let len = len.min(page_len - at).min(page_len - to);
            match b % 3 {
                0 => new.copy_within(at..at + len, to),
                1 => new[at..at + len].fill(b),
                _ => new[at] ^= b | 1,
            }
            let block = compress(&mut lz, &new, &old);
            check_block(&block, &old, &new);
            let block = compress(&mut lz, &new, &[]);
            check_block(&block, &[], &new);
        }
    }
}

/// lz4_flex's checked decoder's verdict on a block, in `decompress`'s terms.
fn flex_decode(block: &[u8], dict: &[u8], out: &mut [u8]) -> Result<(), Error> {
    match lz4_flex::block::decompress_into_with_dict(block, out, dict) {
        Ok(n) if n == out.len() => Ok(()),
        Ok(_) => Err(Error::WrongLength),
        Err(_) => Err(Error::Corrupt),
    }
}

/// Decodes `block` with both decoders into `len` bytes and checks they agree: both accept with
/// the same bytes, or both refuse.
fn same_verdict(block: &[u8], dict: &[u8], len: usize) {
    let mut ours = vec![0u8; len];
    let mut theirs = vec![0u8; len];
    let a = decompress(block, dict, &mut ours);
    let b = flex_decode(block, dict, &mut theirs);
    assert_eq!(
        a.is_ok(),
        b.is_ok(),
        "ours {a:?}, lz4_flex {b:?}, block {block:02x?}"
    );
    if a.is_ok() {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn the_decoder_reads_every_block_the_matcher_writes() {
    let mut lz = PageLz::new();
    let old = heap_page(41);
    // under Miri a few rounds only: each compresses and decodes whole pages three times
    let rounds = if cfg!(miri) { 2 } else { 64 };
    for k in 0..rounds {
        let mut new = heap_page(42 + k % 3);
        let at = (k as usize * 61) % 3000;
        new[at..at + 900].copy_from_slice(&old[(k as usize * 13) % 3000..][..900]);
        new[(k as usize * 7) % 4096] = k as u8;
        for dict in [&old[..], &[][..], &old[4000..]] {
            let block = compress(&mut lz, &new, dict);
            let mut back = vec![0u8; new.len()];
            decompress(&block, dict, &mut back).unwrap();
            assert_eq!(back, new);
            same_verdict(&block, dict, new.len());
        }
    }
}

#[test]
fn the_decoder_refuses_what_lz4_flex_refuses() {
    use Error::*;
    let dict = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let mut out = [0u8; 16];
    // literals only, exact length
    assert_eq!(decompress(&[0x30, 9, 9, 9], &[], &mut out[..3]), Ok(()));
    // too few bytes for the output
    assert_eq!(
        decompress(&[0x30, 9, 9, 9], &[], &mut out[..4]),
        Err(WrongLength)
    );
    // more than the output holds
    assert_eq!(
        decompress(&[0x30, 9, 9, 9], &[], &mut out[..2]),
        Err(Corrupt)
    );
    // zero offset, offset before the dictionary, block ending inside a sequence
    assert_eq!(
        decompress(&[0x10, 9, 0, 0], &dict, &mut out[..5]),
        Err(Corrupt)
    );
    assert_eq!(
        decompress(&[0x10, 9, 10, 0, 0x00], &dict, &mut out[..5]),
        Err(Corrupt)
    );
    assert_eq!(
        decompress(&[0x10, 9, 1], &dict, &mut out[..5]),
        Err(Corrupt)
    );
    assert_eq!(decompress(&[0xf0, 255], &dict, &mut out), Err(Corrupt));
    assert_eq!(decompress(&[], &dict, &mut out), Err(Corrupt));
    // a match reaching from the dictionary into the output: 1 literal, then 6 bytes from 3 back
    // into the dictionary (offset 4: dict[5..8] then the output's own first bytes), then 1 literal
    let mut out6 = [0u8; 8];
    decompress(&[0x12, 9, 4, 0, 0x10, 0xaa], &dict, &mut out6).unwrap();
    assert_eq!(out6, [9, 6, 7, 8, 9, 6, 7, 0xaa]);
    for block in [
        &[0x30, 9, 9, 9][..],
        &[0x10, 9, 0, 0],
        &[0x10, 9, 10, 0, 0x00],
        &[0x10, 9, 1],
        &[0xf0, 255],
        &[],
        &[0x12, 9, 4, 0, 0x10, 0xaa],
    ] {
        for len in 0..12 {
            same_verdict(block, &dict, len);
        }
    }
}

/// A block of a heap-like page (1 KiB of it from `heap_page(seed)`) against `dict`, then
/// damaged: bytes XORed at the given places, the last `cut` bytes cut off.
fn damaged_block(seed: u64, dict: &[u8], flips: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let old = heap_page(seed);
    let mut new = heap_page(seed ^ 0x55);
    new[..1024].copy_from_slice(&old[2048..3072]);
    let mut block = compress(&mut PageLz::new(), &new, dict);
    for &(at, x) in flips {
        let at = at % block.len();
        block[at] ^= x;
    }
    block.truncate(block.len().saturating_sub(cut));
    block
}

proptest! {
    /// Damaged blocks (bytes changed, cut short or extended) and wrong output lengths: the
    /// decoder never panics and agrees with lz4_flex's checked decoder on accepting or refusing,
    /// and on the bytes when it accepts.
    #[test]
    #[cfg_attr(miri, ignore)] // proptest's failure persistence needs getcwd, which Miri refuses
    fn damaged_blocks_get_lz4_flexs_verdict(seed in any::<u64>(),
                                            flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
                                            cut in 0usize..8, len_delta in -2i64..3, with_dict in any::<bool>()) {
        let old = heap_page(seed);
        let dict: &[u8] = if with_dict { &old } else { &[] };
        let block = damaged_block(seed, dict, &flips, cut);
        same_verdict(&block, dict, (4096 + len_delta) as usize);
    }
}

proptest! {
    /// `validate` gives exactly `decompress`'s verdict, for any dictionary content.
    #[test]
    #[cfg_attr(miri, ignore)] // proptest's failure persistence needs getcwd, which Miri refuses
    fn validate_agrees_with_decompress(seed in any::<u64>(),
                                       flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
                                       cut in 0usize..8, len_delta in -2i64..3, dict_len in prop::sample::select(vec![0usize, 5, 4096])) {
        let old = heap_page(seed);
        let dict = &old[..dict_len];
        let block = damaged_block(seed, dict, &flips, cut);
        let len = (4096 + len_delta) as usize;
        let mut out = vec![0u8; len];
        prop_assert_eq!(validate(&block, dict_len, len), decompress(&block, dict, &mut out));
    }
}

#[test]
fn long_matches_with_short_periods_decode_like_lz4_flex() {
    // runs of one byte, of a 3-byte and of an 8-byte pattern, then fresh bytes: offsets 1, 3
    // and 8 with long matches (the decoder copies them by doubling)
    let mut page = vec![0u8; 4096];
    page[..1000].fill(0xab);
    for (i, b) in page[1000..2500].iter_mut().enumerate() {
        *b = [1, 2, 3][i % 3];
    }
    for (i, b) in page[2500..4000].iter_mut().enumerate() {
        *b = (i % 8) as u8 * 17;
    }
    let mut r = xorshift(5);
    for b in &mut page[4000..] {
        *b = r() as u8;
    }
    let mut lz = PageLz::new();
    for dict in [&[][..], &page[..]] {
        let block = compress(&mut lz, &page, dict);
        check_block(&block, dict, &page);
        let mut back = vec![0u8; 4096];
        decompress(&block, dict, &mut back).unwrap();
        assert_eq!(back, page);
    }
    // hand-made: one literal, then 300 bytes at offset 1, 2 and 7
    for off in [1u16, 2, 7] {
        let lits: Vec<u8> = (1..=off as u8).collect();
        let mut block = vec![((off as u8) << 4) | 15];
        block.extend_from_slice(&lits);
        block.extend_from_slice(&off.to_le_bytes());
        block.extend_from_slice(&[255, 26]); // 300 = 4 + 15 + 255 + 26
        block.extend_from_slice(&[0x10, 0xee]);
        let len = off as usize + 300 + 1;
        same_verdict(&block, &[], len);
        let mut out = vec![0u8; len];
        decompress(&block, &[], &mut out).unwrap();
        for (i, &b) in out[..len - 1].iter().enumerate() {
            assert_eq!(b, lits[i % off as usize]);
        }
    }
}
