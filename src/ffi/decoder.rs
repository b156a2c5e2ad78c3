//! `fgbi_decoder`: the backup side of a replication stream.

use super::config::{config_ref, fgbi_config};
use super::error::{fail, guard, guard_handle, null, Poison, FGBI_ERR_STATE};
use super::{no_overlap, out, overlap, slice, slice_mut};
use crate::{Decoder, DecoderStats, Replica};
use std::ffi::{c_int, c_void};

/// A decoder (opaque): made by `fgbi_decoder_new`, freed by `fgbi_decoder_free`. It follows one
/// stream: its first frame must be a resync frame, then epochs are consecutive.
#[allow(non_camel_case_types)]
pub struct fgbi_decoder {
    dec: Decoder,
    poisoned: bool,
}

impl Poison for fgbi_decoder {
    fn poisoned(&mut self) -> &mut bool {
        &mut self.poisoned
    }
}

/// Decoder counters since the decoder was made (filled by `fgbi_decoder_stats`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct fgbi_decoder_counters {
    /// Frames applied.
    pub frames: u64,
    /// Frames rejected (nothing written).
    pub rejected: u64,
    /// Frame bytes applied.
    pub bytes_in: u64,
    /// Pages written to the replica.
    pub pages: u64,
    /// Page bytes written (pages times page size).
    pub bytes_out: u64,
    /// Nanoseconds spent validating frames.
    pub validate_nanos: u64,
    /// Nanoseconds spent writing the replica.
    pub apply_nanos: u64,
}

impl From<DecoderStats> for fgbi_decoder_counters {
    fn from(s: DecoderStats) -> Self {
        fgbi_decoder_counters {
            frames: s.frames,
            rejected: s.rejected,
            bytes_in: s.bytes_in,
            pages: s.pages,
            bytes_out: s.bytes_out,
            validate_nanos: s.validate_nanos,
            apply_nanos: s.apply_nanos,
        }
    }
}

/// The callback of `fgbi_decoder_apply_cb`: the address of the first byte of the page-size page
/// at guest address `guest_addr` in the replica, or NULL when the replica has no such page.
/// It must answer the same for the same address during one apply call, may be called several
/// times per page, and must return normally.
#[allow(non_camel_case_types)]
pub type fgbi_page_at_fn =
    Option<unsafe extern "C" fn(opaque: *mut c_void, guest_addr: u64) -> *mut u8>;

/// A replica reached through the caller's callback.
struct Callback {
    page_at: unsafe extern "C" fn(*mut c_void, u64) -> *mut u8,
    opaque: *mut c_void,
    /// The frame being applied: a page overlapping it is refused.
    frame: (*const u8, usize),
}

impl Replica for Callback {
    fn page_mut(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        // SAFETY: a C function pointer given by the caller, called with the caller's opaque.
        let p = unsafe { (self.page_at)(self.opaque, addr) };
        if p.is_null() || overlap((p, len), self.frame) {
            return None;
        }
        // SAFETY: the callback's contract: `len` (the page size) writable bytes, used by
        // nothing else during the call; the borrow ends before the next page is asked for.
        Some(unsafe { std::slice::from_raw_parts_mut(p, len) })
    }
}

/// Makes a decoder with configuration `cfg` (copied; page and block size must be the encoder's)
/// and stores it in `*out` (NULL on error).
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration; `out` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_decoder_new(
    cfg: *const fgbi_config,
    out: *mut *mut fgbi_decoder,
) -> c_int {
    guard("fgbi_decoder_new", || {
        if out.is_null() {
            return Err(null("out"));
        }
        // SAFETY: checked non-NULL; writable by the caller's rule.
        unsafe { out.write(std::ptr::null_mut()) };
        let dec = Decoder::new(*config_ref(cfg)?)?;
        let h = Box::new(fgbi_decoder {
            dec,
            poisoned: false,
        });
        // SAFETY: as above.
        unsafe { out.write(Box::into_raw(h)) };
        Ok(())
    })
}

/// Frees a decoder. NULL is ignored.
///
/// # Safety
/// `dec` must be NULL or a decoder from `fgbi_decoder_new` not freed yet.
#[no_mangle]
pub unsafe extern "C" fn fgbi_decoder_free(dec: *mut fgbi_decoder) {
    if !dec.is_null() {
        // SAFETY: made by Box::into_raw in fgbi_decoder_new, not freed yet (caller's rule).
        drop(unsafe { Box::from_raw(dec) });
    }
}

/// Validates the whole frame (`frame_len` bytes), then applies it to flat memory `mem`
/// (`mem_len` bytes) where guest address A is `mem + A`. A frame touching anything past
/// `mem_len` is rejected (`FGBI_ERR_OUT_OF_BOUNDS`). On any error nothing was written and the
/// decoder is unchanged. The frame must not overlap `mem`.
///
/// # Safety
/// `dec` must be NULL (refused) or a live decoder; `frame` NULL (refused unless `frame_len` is
/// 0) or `frame_len` readable bytes; `mem` likewise with `mem_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn fgbi_decoder_apply_flat(
    dec: *mut fgbi_decoder,
    frame: *const u8,
    frame_len: usize,
    mem: *mut u8,
    mem_len: usize,
) -> c_int {
    guard_handle("fgbi_decoder_apply_flat", "decoder", dec, |d| {
        no_overlap((frame, frame_len), (mem, mem_len), "frame and mem")?;
        // SAFETY: NULL or valid buffers of these lengths (caller's rule).
        let frame = unsafe { slice(frame, frame_len, "frame") }?;
        // SAFETY: as above.
        let mem = unsafe { slice_mut(mem, mem_len, "mem") }?;
        d.dec.apply_flat(frame, mem)?;
        Ok(())
    })
}

/// Validates the whole frame, then applies it to a replica reached through `page_at`: for each
/// page the frame touches, `page_at(opaque, guest_addr)` gives the page's memory (page-size
/// bytes), or NULL when the replica has no such page; then the frame is rejected
/// (`FGBI_ERR_OUT_OF_BOUNDS`) before anything is written. On any error nothing was written and
/// the decoder is unchanged. Pages must not overlap the frame or each other.
///
/// # Safety
/// `dec` must be NULL (refused) or a live decoder; `frame` NULL (refused unless `frame_len` is
/// 0) or `frame_len` readable bytes; `page_at` NULL (refused) or a function following the
/// `fgbi_page_at_fn` contract.
#[no_mangle]
pub unsafe extern "C" fn fgbi_decoder_apply_cb(
    dec: *mut fgbi_decoder,
    frame: *const u8,
    frame_len: usize,
    page_at: fgbi_page_at_fn,
    opaque: *mut c_void,
) -> c_int {
    guard_handle("fgbi_decoder_apply_cb", "decoder", dec, |d| {
        // SAFETY: NULL or frame_len readable bytes (caller's rule).
        let frame = unsafe { slice(frame, frame_len, "frame") }?;
        let page_at = page_at.ok_or_else(|| null("page_at"))?;
        let mut replica = Callback {
            page_at,
            opaque,
            frame: (frame.as_ptr(), frame.len()),
        };
        d.dec.apply(frame, &mut replica)?;
        Ok(())
    })
}

/// Forgets the stream: the next frame must be a resync frame, from any stream. Use it when the
/// primary restarted.
///
/// # Safety
/// `dec` must be NULL (refused) or a live decoder.
#[no_mangle]
pub unsafe extern "C" fn fgbi_decoder_reset(dec: *mut fgbi_decoder) -> c_int {
    guard_handle("fgbi_decoder_reset", "decoder", dec, |d| {
        d.dec.reset();
        Ok(())
    })
}

/// Stores the stream followed and the last epoch applied in `*stream_id` and `*epoch`.
/// `FGBI_ERR_STATE` before the first frame (or after a reset).
///
/// # Safety
/// `dec` must be NULL (refused) or a live decoder; `stream_id` and `epoch` NULL (refused) or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_decoder_position(
    dec: *mut fgbi_decoder,
    stream_id: *mut u64,
    epoch: *mut u64,
) -> c_int {
    guard_handle("fgbi_decoder_position", "decoder", dec, |d| {
        // SAFETY: NULL or writable (caller's rule).
        let (s, e) = unsafe { (out(stream_id, "stream_id")?, out(epoch, "epoch")?) };
        let (stream, last) = d
            .dec
            .position()
            .ok_or_else(|| fail(FGBI_ERR_STATE, "the decoder has applied no frame yet"))?;
        *s = stream;
        *e = last;
        Ok(())
    })
}

/// Fills `*stats` with the counters since the decoder was made.
///
/// # Safety
/// `dec` must be NULL (refused) or a live decoder; `stats` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_decoder_stats(
    dec: *mut fgbi_decoder,
    stats: *mut fgbi_decoder_counters,
) -> c_int {
    guard_handle("fgbi_decoder_stats", "decoder", dec, |d| {
        // SAFETY: NULL or writable (caller's rule).
        *unsafe { out(stats, "stats") }? = d.dec.stats().into();
        Ok(())
    })
}
