//! The XBZRLE decoder against a plain reference written from QEMU's rules (same answer, same
//! patched page, -1 cases alike), and the encoder's output always decoding to the new page.
#![no_main]
use libfuzzer_sys::fuzz_target;

/// QEMU's decoding rules, byte by byte.
fn reference(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    fn count(src: &[u8], i: &mut usize) -> Option<usize> {
        let b0 = *src.get(*i)?;
        *i += 1;
        if b0 < 0x80 {
            return Some(b0 as usize);
        }
        let b1 = *src.get(*i)?;
        *i += 1;
        if b1 & 0x80 != 0 {
            return None;
        }
        Some((b0 & 0x7f) as usize | (b1 as usize) << 7)
    }
    let (mut i, mut d) = (0usize, 0usize);
    while i < src.len() {
        let at = i;
        let z = count(src, &mut i)?;
        // a zero zrun is valid only at the very start (QEMU checks the position before the count)
        if z == 0 && at > 0 {
            return None;
        }
        d += z;
        if d > dst.len() {
            return None;
        }
        let n = count(src, &mut i)?;
        if n == 0 || d + n > dst.len() || i + n > src.len() {
            return None;
        }
        dst[d..d + n].copy_from_slice(&src[i..i + n]);
        i += n;
        d += n;
    }
    Some(d)
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, src)) = data.split_first() else {
        return;
    };
    let len = [64usize, 4096, 16384][sel as usize % 3];
    let base: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
    let mut a = base.clone();
    let mut b = base.clone();
    let got = fgbi::xbzrle::decode(src, &mut a).ok();
    let want = reference(src, &mut b);
    assert_eq!(got, want, "decoder and QEMU's rules disagree");
    if got.is_some() {
        assert!(a == b, "decoder patched the page differently");
        // the decoded page re-encodes and decodes back to itself
        let mut enc = vec![0u8; len];
        if let Ok(n) = fgbi::xbzrle::encode(&base, &a, &mut enc) {
            let mut c = base.clone();
            fgbi::xbzrle::decode(&enc[..n], &mut c).expect("own output decodes");
            assert!(c == a);
        }
    }
});
