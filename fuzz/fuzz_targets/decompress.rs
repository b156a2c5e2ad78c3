//! The fallback decompressors with a bounded output: malformed input is an error, never a panic
//! or a write past the output; valid input fills the output exactly. libfgbi's lz4 decoder
//! (`fgbi::lz`) must give lz4_flex's checked decoder's verdict and bytes on every input, and
//! `lz::validate` the same verdict without the bytes.
#![no_main]
use fgbi::compress::{decompress, lz4_dict_decompress, Codec, Scratch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let out_len = u16::from_le_bytes([data[1], data[2]]) as usize % 16385;
    let input = &data[3..];
    let mut out = vec![0u8; out_len];
    let mut scratch = Scratch::default();
    match data[0] % 4 {
        0 => {
            let ours = decompress(Codec::Lz4, input, &mut out, &mut scratch);
            same_as_lz4_flex(input, &[], &out, ours.is_ok());
        }
        1 => {
            let _ = decompress(Codec::Deflate, input, &mut out, &mut scratch);
        }
        2 => {
            let _ = decompress(Codec::Raw, input, &mut out, &mut scratch);
        }
        _ => {
            let dict: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
            let ours = lz4_dict_decompress(input, &dict, &mut out);
            same_as_lz4_flex(input, &dict, &out, ours.is_ok());
        }
    }
    assert_eq!(out.len(), out_len);
});

fn same_as_lz4_flex(block: &[u8], dict: &[u8], ours: &[u8], accepted: bool) {
    let mut theirs = vec![0u8; ours.len()];
    let verdict = lz4_flex::block::decompress_into_with_dict(block, &mut theirs, dict);
    let theirs_ok = matches!(verdict, Ok(n) if n == ours.len());
    assert_eq!(accepted, theirs_ok, "lz4_flex: {verdict:?}");
    if accepted {
        assert_eq!(ours, &theirs[..]);
    }
    assert_eq!(
        fgbi::lz::validate(block, dict.len(), ours.len()).is_ok(),
        accepted
    );
}
