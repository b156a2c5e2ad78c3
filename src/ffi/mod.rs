//! libfgbi C API: encode a VM's dirty memory pages per epoch into compact, checksummed frames
//! (primary side) and apply them to a replica (backup side).
//!
//! Objects
//! -------
//! `fgbi_config` (settings), `fgbi_encoder` (one replication stream, primary side),
//! `fgbi_decoder` (the same stream, backup side) are opaque handles made by `fgbi_*_new` and
//! released by `fgbi_*_free`. The stage functions (`fgbi_block_hashes`, `fgbi_delta_*`,
//! `fgbi_compress`, `fgbi_decompress`) work on caller buffers and keep no state.
//!
//! One epoch
//! ---------
//! Primary: `fgbi_encoder_begin_epoch(enc, n)`, then `fgbi_encoder_add_page(enc, addr, page)`
//! for each dirty page (or `fgbi_encoder_add_pages` for an array), then
//! `fgbi_encoder_end_epoch(enc, &frame, &len)` and send the frame. Backup:
//! `fgbi_decoder_apply_flat` (memory as one buffer) or `fgbi_decoder_apply_cb` (a callback maps a
//! guest address to its page, for memory in separate blocks). The first frame of a stream is a
//! resync frame carrying every page added to it; epochs are consecutive afterwards; after a lost
//! frame or a new backup, call `fgbi_encoder_resync` and add every page in the next epoch.
//!
//! Addresses and sizes
//! -------------------
//! A guest address is the byte address of a page's first byte: a multiple of the page size.
//! A page is exactly page-size bytes (see `fgbi_config_get_page_size`). `fgbi_decoder_apply_flat`
//! maps address A to `mem + A` and rejects a frame touching anything at or past `mem + mem_len`.
//!
//! Ownership
//! ---------
//! A handle belongs to the caller from `_new` until `_free`; `_free(NULL)` does nothing; using a
//! handle after its `_free` is undefined. The library never keeps a pointer the caller passed in
//! beyond the call (pages are copied when they are added; the callback and `opaque` are used only
//! during `fgbi_decoder_apply_cb`), but for a page added with `fgbi_encoder_add_page_in_place`,
//! which the caller keeps valid and unchanged until the frame it went into has been sent. A frame
//! returned by `fgbi_encoder_end_epoch` (or the parts `fgbi_encoder_end_epoch_parts` returns)
//! belongs to the encoder and stays valid until the next call that changes that encoder
//! (begin_epoch, add_page, resync, free); copy it to keep it, or use
//! `fgbi_encoder_end_epoch_into`. Strings returned by
//! `fgbi_version` and `fgbi_strerror` are static; `fgbi_last_error_message` is per thread.
//!
//! NULL rules
//! ----------
//! A NULL handle, a NULL output pointer, or a NULL buffer with a non-zero length gives
//! `FGBI_ERR_NULL` and changes nothing; a NULL buffer with length 0 is an empty buffer. Input and
//! output buffers of one call must not overlap (`FGBI_ERR_INVALID_ARG` where it is checked). A
//! buffer's length must be the true length of the memory it points to: the library can check a
//! length against what it needs (a page of the wrong length, a too small output buffer), never a
//! pointer against the memory behind it. `fgbi_encoder_add_page` reads exactly page-size bytes;
//! `fgbi_encoder_add_page_len` also takes the length and refuses a short page.
//!
//! Errors
//! ------
//! Every function that can fail returns an `int` status: `FGBI_OK` (0) or a negative
//! `FGBI_ERR_*` code, one per class of error. `fgbi_strerror(code)` describes a code;
//! `fgbi_last_error_message()` gives the calling thread's last failure in detail (the function
//! and the precise reason, e.g. which op of a frame is corrupt). A frame that is rejected leaves
//! the replica memory and the decoder exactly as they were: the genuine frame still applies
//! afterwards. A failed encoder call leaves the encoder as it was, except that a failed
//! `fgbi_encoder_add_pages` keeps the pages before the failing one (its arguments are all
//! checked before any page is added). No panic unwinds into C: an internal error is caught and
//! returned as `FGBI_ERR_INTERNAL`, after which the handle involved refuses every call but
//! `_free`. C callbacks must return normally (no longjmp or C++ exception through libfgbi).
//!
//! Threads
//! -------
//! A handle is not thread-safe: use each encoder and decoder from one thread at a time (it may
//! move between threads). Separate encoders and decoders run in parallel without locking. A
//! configuration may be read by several threads at once (e.g. `fgbi_encoder_new` on each)
//! while none changes it. The stage functions, `fgbi_version` and `fgbi_strerror` may be called
//! from any thread. The last error message is kept per thread.

mod channels;
mod config;
mod decoder;
mod encoder;
mod error;
mod stages;

pub use channels::*;
pub use config::*;
pub use decoder::*;
pub use encoder::*;
pub use error::*;
pub use stages::*;

use error::{fail, null, FResult};
use std::ffi::c_char;

/// Major version of this header and library (incompatible ABI changes).
pub const FGBI_VERSION_MAJOR: u32 = 0;
/// Minor version (compatible additions).
pub const FGBI_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const FGBI_VERSION_PATCH: u32 = 0;

/// The library's version, "MAJOR.MINOR.PATCH" (a static string). Compare it with the
/// `FGBI_VERSION_*` macros to check that the header matches the library linked.
#[no_mangle]
pub extern "C" fn fgbi_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// `len` elements at `p` as a slice: `FGBI_ERR_NULL` for NULL with a non-zero length.
///
/// # Safety
/// Unless NULL, `p` points to `len` readable, initialised elements that nothing writes during
/// `'a`.
pub(crate) unsafe fn slice<'a, T>(p: *const T, len: usize, what: &str) -> FResult<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null(what));
    }
    check_len::<T>(len, what)?;
    // SAFETY: non-NULL, length within isize; the rest is the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Like [`slice`], writable.
///
/// # Safety
/// Unless NULL, `p` points to `len` writable, initialised elements that nothing else reads or
/// writes during `'a`.
pub(crate) unsafe fn slice_mut<'a, T>(p: *mut T, len: usize, what: &str) -> FResult<&'a mut [T]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(null(what));
    }
    check_len::<T>(len, what)?;
    // SAFETY: as for `slice`.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
}

fn check_len<T>(len: usize, what: &str) -> FResult {
    if len.saturating_mul(std::mem::size_of::<T>()) > isize::MAX as usize {
        return Err(fail(
            FGBI_ERR_INVALID_ARG,
            format!("{what}: length {len} is too large"),
        ));
    }
    Ok(())
}

/// The output `p` as a reference: `FGBI_ERR_NULL` for NULL.
///
/// # Safety
/// Unless NULL, `p` points to writable storage for a `T`.
pub(crate) unsafe fn out<'a, T>(p: *mut T, what: &str) -> FResult<&'a mut T> {
    // SAFETY: the caller's contract.
    unsafe { p.as_mut() }.ok_or_else(|| null(what))
}

/// Whether two byte ranges share a byte.
pub(crate) fn overlap(a: (*const u8, usize), b: (*const u8, usize)) -> bool {
    let (a0, b0) = (a.0 as usize, b.0 as usize);
    a.1 != 0 && b.1 != 0 && a0 < b0.saturating_add(b.1) && b0 < a0.saturating_add(a.1)
}

/// Refuses overlapping input and output buffers, given as (pointer, length) before any
/// reference to them is made: a shared and a mutable reference to the same bytes may not exist
/// even for the moment a check takes. A NULL buffer is left for [`slice`] / [`slice_mut`] to
/// refuse.
pub(crate) fn no_overlap(
    input: (*const u8, usize),
    output: (*mut u8, usize),
    what: &str,
) -> FResult {
    if !input.0.is_null()
        && !output.0.is_null()
        && overlap(input, (output.0.cast_const(), output.1))
    {
        return Err(fail(FGBI_ERR_INVALID_ARG, format!("{what} overlap")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
