//! The stages on their own, over caller buffers: block hashes, the XOR+RLE delta codec and the
//! general-purpose compressors. They keep no state and may be called from any thread.

use super::config::{FGBI_CODEC_DEFLATE, FGBI_CODEC_LZ4, FGBI_CODEC_RAW};
use super::error::{
    fail, guard, FResult, FGBI_ERR_BUFFER_TOO_SMALL, FGBI_ERR_CORRUPT, FGBI_ERR_INTERNAL,
    FGBI_ERR_INVALID_ARG,
};
use super::{no_overlap, out, slice, slice_mut};
use crate::compress::{self, Codec, Compressor, Deflate, Lz4, Scratch};
use crate::stages::{delta, hash, xbzrle};
use std::ffi::c_int;

/// Stores the xxh3-64 hash (with `seed`) of each `block_size`-byte block of `buf` in `out`:
/// `len / block_size` hashes. `len` must be a multiple of `block_size` (not 0) and `out_len` at
/// least `len / block_size` (else `FGBI_ERR_INVALID_ARG` / `FGBI_ERR_BUFFER_TOO_SMALL`).
///
/// # Safety
/// `buf` NULL (refused unless `len` is 0) or `len` readable bytes; `out` likewise with
/// `out_len` writable hashes.
#[no_mangle]
pub unsafe extern "C" fn fgbi_block_hashes(
    buf: *const u8,
    len: usize,
    block_size: usize,
    seed: u64,
    out: *mut u64,
    out_len: usize,
) -> c_int {
    guard("fgbi_block_hashes", || {
        // SAFETY: NULL or valid buffers of these lengths (caller's rule).
        let buf = unsafe { slice(buf, len, "buf") }?;
        // SAFETY: as above.
        let out = unsafe { slice_mut(out, out_len, "out") }?;
        if block_size == 0 || !len.is_multiple_of(block_size) {
            return Err(fail(
                FGBI_ERR_INVALID_ARG,
                format!("length {len} is not a multiple of the block size {block_size}"),
            ));
        }
        let n = len / block_size;
        if out_len < n {
            return Err(fail(
                FGBI_ERR_BUFFER_TOO_SMALL,
                format!("{n} hashes, room for {out_len}"),
            ));
        }
        hash::block_hashes(buf, block_size, seed, &mut out[..n]);
        Ok(())
    })
}

/// An output size that always suffices for the XOR+RLE delta of a `len`-byte page (the worst
/// case, every other byte changed, is larger than the page).
#[no_mangle]
pub extern "C" fn fgbi_delta_max_len(len: usize) -> usize {
    // at most len/2 + 1 runs, each a skip and a length (varints of at most `len`) and its bytes
    let runs = len / 2 + 1;
    let worst = runs
        .saturating_mul(2 * crate::format::varint::len(len as u64))
        .saturating_add(len);
    worst.max(delta::max_encoded_len(len))
}

/// Encodes where `new_page` differs from `old_page` (both `len` bytes) as an XOR+RLE delta into
/// `out` (`cap` bytes) and stores its length in `*out_len` (0 when the pages are identical).
/// `FGBI_ERR_BUFFER_TOO_SMALL` when it does not fit, with the needed size in `*out_len`.
///
/// # Safety
/// `old_page` and `new_page` NULL (refused unless `len` is 0) or `len` readable bytes; `out`
/// likewise with `cap` writable bytes; `out_len` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_delta_encode(
    old_page: *const u8,
    new_page: *const u8,
    len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> c_int {
    guard("fgbi_delta_encode", || {
        no_overlap((old_page, len), (out, cap), "old_page and out")?;
        no_overlap((new_page, len), (out, cap), "new_page and out")?;
        // SAFETY: NULL or valid buffers of these lengths (caller's rule).
        let (old, new, dst, dst_len) = unsafe {
            (
                slice(old_page, len, "old_page")?,
                slice(new_page, len, "new_page")?,
                slice_mut(out, cap, "out")?,
                super::out(out_len, "out_len")?,
            )
        };
        if let Some(n) = delta::encode(old, new, dst) {
            *dst_len = n;
            return Ok(());
        }
        let mut tmp = vec![0; fgbi_delta_max_len(len)];
        let n = delta::encode(old, new, &mut tmp)
            .ok_or_else(|| fail(FGBI_ERR_INTERNAL, "delta exceeds its maximum length"))?;
        *dst_len = n;
        Err(too_small(n, cap))
    })
}

fn too_small(needed: usize, cap: usize) -> super::error::Fail {
    fail(
        FGBI_ERR_BUFFER_TOO_SMALL,
        format!("{needed} bytes needed, buffer of {cap}"),
    )
}

/// Applies the XOR+RLE delta `delta` (`delta_len` bytes) to `page` (`page_len` bytes, holding
/// the old version) in place. The whole delta is checked first: on error (`FGBI_ERR_CORRUPT`)
/// the page is unchanged.
///
/// # Safety
/// `delta` NULL (refused unless `delta_len` is 0) or `delta_len` readable bytes; `page`
/// likewise with `page_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn fgbi_delta_decode(
    delta: *const u8,
    delta_len: usize,
    page: *mut u8,
    page_len: usize,
) -> c_int {
    guard("fgbi_delta_decode", || {
        no_overlap((delta, delta_len), (page, page_len), "delta and page")?;
        // SAFETY: NULL or valid buffers of these lengths (caller's rule).
        let (src, page) = unsafe {
            (
                slice(delta, delta_len, "delta")?,
                slice_mut(page, page_len, "page")?,
            )
        };
        let corrupt = |e: delta::DeltaError| fail(FGBI_ERR_CORRUPT, format!("corrupt delta: {e}"));
        delta::validate(src, page.len()).map_err(corrupt)?;
        delta::decode(src, page).map_err(corrupt)
    })
}

fn codec_of(codec: c_int) -> FResult<Codec> {
    match codec {
        FGBI_CODEC_RAW => Ok(Codec::Raw),
        FGBI_CODEC_LZ4 => Ok(Codec::Lz4),
        FGBI_CODEC_DEFLATE => Ok(Codec::Deflate),
        _ => Err(fail(FGBI_ERR_INVALID_ARG, format!("unknown codec {codec}"))),
    }
}

/// An output size that always suffices for compressing `len` bytes with `codec`
/// (`FGBI_CODEC_*`); 0 for an unknown codec.
#[no_mangle]
pub extern "C" fn fgbi_compress_bound(codec: c_int, len: usize) -> usize {
    match codec {
        FGBI_CODEC_RAW => len,
        FGBI_CODEC_LZ4 => lz4_flex::block::get_maximum_output_size(len),
        // stored blocks at worst: 5 bytes of header per 16 KiB, plus the final block
        FGBI_CODEC_DEFLATE => len.saturating_add(5 * (len / 16384 + 2) + 16),
        _ => 0,
    }
}

/// Compresses `src` (`len` bytes) with `codec` (`FGBI_CODEC_LZ4`, `FGBI_CODEC_DEFLATE` at
/// `level` 0..9, or `FGBI_CODEC_RAW`: a copy) into `dst` (`cap` bytes) and stores the length in
/// `*dst_len`. `FGBI_ERR_BUFFER_TOO_SMALL` when it does not fit, with the needed size in
/// `*dst_len` (`fgbi_compress_bound` gives a size that always fits). The output is a bare lz4
/// block or raw deflate stream: keep `len` to decompress it.
///
/// # Safety
/// `src` NULL (refused unless `len` is 0) or `len` readable bytes; `dst` likewise with `cap`
/// writable bytes; `dst_len` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_compress(
    codec: c_int,
    level: c_int,
    src: *const u8,
    len: usize,
    dst: *mut u8,
    cap: usize,
    dst_len: *mut usize,
) -> c_int {
    guard("fgbi_compress", || {
        no_overlap((src, len), (dst, cap), "src and dst")?;
        // SAFETY: NULL or valid buffers of these lengths (caller's rule).
        let (input, output, n_out) = unsafe {
            (
                slice(src, len, "src")?,
                slice_mut(dst, cap, "dst")?,
                out(dst_len, "dst_len")?,
            )
        };
        let mut comp: Box<dyn Compressor> = match codec_of(codec)? {
            Codec::Raw => {
                *n_out = len;
                if cap < len {
                    return Err(too_small(len, cap));
                }
                output[..len].copy_from_slice(input);
                return Ok(());
            }
            Codec::Lz4 => Box::new(Lz4::default()),
            Codec::Deflate => match u8::try_from(level) {
                Ok(l) if l <= 9 => Box::new(Deflate::new(l)),
                _ => {
                    return Err(fail(
                        FGBI_ERR_INVALID_ARG,
                        format!("deflate level {level} is not in 0..9"),
                    ))
                }
            },
        };
        if let Some(n) = comp.compress(input, output) {
            *n_out = n;
            return Ok(());
        }
        let mut tmp = vec![0; fgbi_compress_bound(codec, len)];
        let n = comp
            .compress(input, &mut tmp)
            .ok_or_else(|| fail(FGBI_ERR_INTERNAL, "compressed data exceeds its bound"))?;
        *n_out = n;
        Err(too_small(n, cap))
    })
}

/// Decompresses `src` (`src_len` bytes, coded with `codec`) into exactly `dst_len` bytes at
/// `dst` (the original length). `FGBI_ERR_CORRUPT` when the data is malformed or does not
/// decompress to exactly `dst_len` bytes; then the content of `dst` is unspecified. Never writes
/// past `dst_len`.
///
/// # Safety
/// `src` NULL (refused unless `src_len` is 0) or `src_len` readable bytes; `dst` likewise with
/// `dst_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn fgbi_decompress(
    codec: c_int,
    src: *const u8,
    src_len: usize,
    dst: *mut u8,
    dst_len: usize,
) -> c_int {
    guard("fgbi_decompress", || {
        let codec = codec_of(codec)?;
        no_overlap((src, src_len), (dst, dst_len), "src and dst")?;
        // SAFETY: NULL or valid buffers of these lengths (caller's rule).
        let (input, output) =
            unsafe { (slice(src, src_len, "src")?, slice_mut(dst, dst_len, "dst")?) };
        compress::decompress(codec, input, output, &mut Scratch::default())
            .map_err(|e| fail(FGBI_ERR_CORRUPT, e.to_string()))
    })
}

/// Runs `body` behind the panic boundary with QEMU's XBZRLE return convention: its value, or -1
/// for any error (the message is kept for `fgbi_last_error_message`).
fn guard_qemu(func: &str, body: impl FnOnce() -> FResult<c_int>) -> c_int {
    let mut value = -1;
    let status = guard(func, || {
        value = body()?;
        Ok(())
    });
    if status == 0 {
        value
    } else {
        -1
    }
}

/// QEMU-compatible XBZRLE encoder, a drop-in for QEMU's `xbzrle_encode_buffer`: encodes `new_`
/// against `old` (`slen` bytes each, at most 16384) into `dst` (`dlen` bytes). Returns the
/// encoded length, **0** when the pages are identical, **-1** when the encoding would not fit in
/// `dlen` (QEMU then sends the page raw), or -1 for invalid arguments (NULL, negative length,
/// `slen` above 16384; see `fgbi_last_error_message`). Never writes past `dst + dlen`; bytes of
/// `dst` after the returned length may have been used as scratch.
///
/// The output is valid XBZRLE for any decoder (QEMU's included); it may absorb a gap of up to two
/// unchanged bytes into a run where that is shorter, so it can differ from QEMU's own bytes.
///
/// # Safety
/// `old` and `new_` point to `slen` readable bytes, `dst` to `dlen` writable bytes not
/// overlapping them (NULL is refused unless the length is 0).
#[no_mangle]
pub unsafe extern "C" fn fgbi_xbzrle_encode(
    old: *const u8,
    new_: *const u8,
    slen: c_int,
    dst: *mut u8,
    dlen: c_int,
) -> c_int {
    guard_qemu("fgbi_xbzrle_encode", || {
        let (slen, dlen) = (non_negative(slen, "slen")?, non_negative(dlen, "dlen")?);
        if slen > xbzrle::MAX_PAGE {
            return Err(fail(
                FGBI_ERR_INVALID_ARG,
                format!(
                    "page of {slen} bytes, XBZRLE pages are at most {}",
                    xbzrle::MAX_PAGE
                ),
            ));
        }
        no_overlap((old, slen), (dst, dlen), "old and dst")?;
        no_overlap((new_, slen), (dst, dlen), "new_ and dst")?;
        // SAFETY: NULL or valid buffers of these lengths (caller's rule).
        let old = unsafe { slice(old, slen, "old") }?;
        // SAFETY: as above.
        let new = unsafe { slice(new_, slen, "new_") }?;
        // SAFETY: as above.
        let dst = unsafe { slice_mut(dst, dlen, "dst") }?;
        match xbzrle::encode(old, new, dst) {
            Ok(n) => Ok(n as c_int),
            Err(xbzrle::Overflow) => Err(fail(
                FGBI_ERR_BUFFER_TOO_SMALL,
                format!("encoding does not fit in {dlen} bytes"),
            )),
        }
    })
}

/// QEMU-compatible XBZRLE decoder, a drop-in for QEMU's `xbzrle_decode_buffer`: patches `dst`
/// (the old page, `dlen` bytes) in place with the `slen` encoded bytes at `src`, writing only the
/// new bytes of each run. Returns the offset just past the last run, or **-1** on malformed input
/// (a run past `dlen`, input ending inside a count or a run, a zero-length run, a zero unchanged
/// count after the start, a count over two bytes) or invalid arguments. Never writes outside
/// `dst`; on -1, `dst` may have been partly patched, as with QEMU's decoder.
///
/// # Safety
/// `src` points to `slen` readable bytes, `dst` to `dlen` writable bytes, not overlapping.
#[no_mangle]
pub unsafe extern "C" fn fgbi_xbzrle_decode(
    src: *const u8,
    slen: c_int,
    dst: *mut u8,
    dlen: c_int,
) -> c_int {
    guard_qemu("fgbi_xbzrle_decode", || {
        let (slen, dlen) = (non_negative(slen, "slen")?, non_negative(dlen, "dlen")?);
        no_overlap((src, slen), (dst, dlen), "src and dst")?;
        // SAFETY: NULL or valid buffers of these lengths (caller's rule).
        let src = unsafe { slice(src, slen, "src") }?;
        // SAFETY: as above.
        let dst = unsafe { slice_mut(dst, dlen, "dst") }?;
        match xbzrle::decode(src, dst) {
            Ok(n) => Ok(n as c_int),
            Err(e) => Err(fail(
                FGBI_ERR_CORRUPT,
                format!("malformed XBZRLE data: {e}"),
            )),
        }
    })
}

fn non_negative(v: c_int, what: &str) -> FResult<usize> {
    usize::try_from(v).map_err(|_| fail(FGBI_ERR_INVALID_ARG, format!("{what} is negative ({v})")))
}
