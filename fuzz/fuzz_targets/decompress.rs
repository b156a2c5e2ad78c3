//! The fallback decompressors with a bounded output: malformed input is an error, never a panic
//! or a write past the output; valid input fills the output exactly.
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
            let _ = decompress(Codec::Lz4, input, &mut out, &mut scratch);
        }
        1 => {
            let _ = decompress(Codec::Deflate, input, &mut out, &mut scratch);
        }
        2 => {
            let _ = decompress(Codec::Raw, input, &mut out, &mut scratch);
        }
        _ => {
            let dict = vec![0x33u8; 4096];
            let _ = lz4_dict_decompress(input, &dict, &mut out);
        }
    }
    assert_eq!(out.len(), out_len);
});
