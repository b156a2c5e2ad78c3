//! The XOR+RLE delta codec: validate agrees with decode, decode stays inside the page, and
//! encode/decode round-trips any pair of pages.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let page_len = [64usize, 512, 4096][sel as usize % 3];
    // malformed-input path
    let mut page = vec![0x5au8; page_len];
    let v = fgbi::delta::validate(rest, page_len);
    let d = fgbi::delta::decode(rest, &mut page);
    assert_eq!(v.is_ok(), d.is_ok(), "validate and decode disagree");
    // round trip: old page from the input, new page = old with the input's bytes spliced in
    let mut old = vec![0u8; page_len];
    for (i, b) in rest.iter().enumerate() {
        old[i % page_len] ^= b;
    }
    let mut new = old.clone();
    for (i, b) in rest.iter().enumerate().step_by(3) {
        new[(i * 31 + *b as usize) % page_len] = *b;
    }
    let mut out = vec![0u8; fgbi::delta::max_encoded_len(page_len)];
    let n = fgbi::delta::encode(&old, &new, &mut out).expect("fits the maximum size");
    let mut back = old.clone();
    fgbi::delta::decode(&out[..n], &mut back).expect("own output decodes");
    assert!(back == new);
    // a too-small output is refused, never overrun
    if n > 0 {
        let mut small = vec![0u8; n - 1];
        assert!(fgbi::delta::encode(&old, &new, &mut small).is_none());
    }
});
