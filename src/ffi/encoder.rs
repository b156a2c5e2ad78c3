//! `fgbi_encoder`: the primary side of a replication stream.

use super::config::{config_ref, fgbi_config};
use super::error::{
    fail, guard, guard_handle, null, FResult, Poison, FGBI_ERR_BUFFER_TOO_SMALL,
    FGBI_ERR_INVALID_ARG, FGBI_ERR_OUT_OF_BOUNDS, FGBI_ERR_STATE,
};
use super::{out, slice, slice_mut};
use crate::encoder::MAX_GUEST_ADDR;
use crate::{Encoder, EncoderStats, FrameParts};
use std::ffi::c_int;

/// An encoder (opaque): made by `fgbi_encoder_new`, freed by `fgbi_encoder_free`. It keeps what
/// the backup holds (caches and tables within the configured budgets) across epochs.
#[allow(non_camel_case_types)]
pub struct fgbi_encoder {
    enc: Encoder,
    /// The frame of the last epoch ended, while the encoder's buffer still holds it.
    frame: Option<(*const u8, usize)>,
    /// That frame has not been handed out yet (`end_epoch_into` found the buffer too small).
    undelivered: bool,
    /// The page being added or noted, copied from the caller's memory in one read.
    page: Vec<u8>,
    /// The pieces of the frame last handed out as parts.
    parts: Vec<fgbi_frame_part>,
    poisoned: bool,
}

/// One piece of a frame handed out as parts (`fgbi_encoder_take_frame_parts`,
/// `fgbi_encoder_end_epoch_parts`): `len` bytes at `data`, the encoder's or a page the caller
/// added in place. The frame is its pieces in order, as one vectored write sends them.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fgbi_frame_part {
    /// The piece's first byte.
    pub data: *const u8,
    /// Its length in bytes (never 0).
    pub len: usize,
}

/// Keeps the pieces of `parts` in `held` (the handle's) and points `*out`, `*count` at them.
fn hand_out(
    held: &mut Vec<fgbi_frame_part>,
    parts: Option<FrameParts<'_>>,
    out: &mut *const fgbi_frame_part,
    count: &mut usize,
) -> FResult {
    held.clear();
    if let Some(parts) = parts {
        let n = parts.clone().count();
        held.try_reserve(n).map_err(|_| crate::Error::OutOfMemory {
            what: "the frame's parts",
            bytes: n * std::mem::size_of::<fgbi_frame_part>(),
        })?;
        held.extend(parts.map(|p| fgbi_frame_part {
            data: p.as_ptr(),
            len: p.len(),
        }));
    }
    (*out, *count) = if held.is_empty() {
        (std::ptr::null(), 0)
    } else {
        (held.as_ptr(), held.len())
    };
    Ok(())
}

impl Poison for fgbi_encoder {
    fn poisoned(&mut self) -> &mut bool {
        &mut self.poisoned
    }
}

impl fgbi_encoder {
    /// Copies the page at `src` (page-size bytes) into the handle's own buffer, `self.page`.
    /// The caller's page is read once, here: it may be memory that changes meanwhile (a running
    /// guest's), and the encoder reads a page several times (zero test, delta, hashes, its cached
    /// copy), which must all see the same content.
    ///
    /// # Safety
    /// `src` is NULL (refused) or points to page-size readable bytes.
    unsafe fn copy_page(&mut self, src: *const u8) -> FResult {
        if src.is_null() {
            return Err(null("page"));
        }
        let ps = self.page.len();
        // SAFETY: `src` is non-NULL with page-size readable bytes (caller's rule); `self.page` is
        // page-size long and private to the handle, so the two do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src, self.page.as_mut_ptr(), ps) };
        Ok(())
    }

    /// Ends the open epoch, or takes the frame still waiting to be fetched.
    fn finish(&mut self) -> FResult<(*const u8, usize)> {
        if self.undelivered {
            if let Some(f) = self.frame {
                return Ok(f);
            }
        }
        let f = self.enc.end_epoch()?;
        let f = (f.as_ptr(), f.len());
        self.frame = Some(f);
        self.undelivered = false;
        Ok(f)
    }
}

/// Encoder counters (`fgbi_encoder_stats`: since creation; `fgbi_encoder_epoch_stats`: of the
/// current or last epoch). Pages "sent as X" count the op chosen per page, "bytes" the bytes those
/// ops took in frames.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct fgbi_encoder_counters {
    /// Epochs ended.
    pub epochs: u64,
    /// Resync frames produced.
    pub resyncs: u64,
    /// Pages added.
    pub pages_in: u64,
    /// Bytes of pages added.
    pub bytes_in: u64,
    /// Frame bytes produced (headers, ops and checksums).
    pub bytes_out: u64,
    /// Dirty pages identical to what the backup holds: nothing sent.
    pub unchanged_pages: u64,
    /// Pages sent as all zeros.
    pub zero_pages: u64,
    /// Bytes of those ops.
    pub zero_bytes: u64,
    /// Pages sent raw.
    pub raw_pages: u64,
    /// Bytes of those ops.
    pub raw_bytes: u64,
    /// Pages sent whole through the fallback compressor.
    pub compressed_pages: u64,
    /// Bytes of those ops.
    pub compressed_bytes: u64,
    /// Pages sent as an XOR+RLE delta against their last-sent version.
    pub delta_pages: u64,
    /// Bytes of those ops.
    pub delta_bytes: u64,
    /// Pages sent lz4-compressed with their last-sent version as dictionary.
    pub dict_pages: u64,
    /// Bytes of those ops.
    pub dict_bytes: u64,
    /// Pages sent block by block.
    pub block_pages: u64,
    /// Bytes of those ops.
    pub block_bytes: u64,
    /// Blocks sent as all zeros inside block ops.
    pub zero_blocks: u64,
    /// Blocks sent as references to identical content the backup holds.
    pub shared_blocks: u64,
    /// Unchanged blocks kept inside block ops.
    pub kept_blocks: u64,
    /// New blocks sent as literals inside block ops.
    pub literal_blocks: u64,
    /// Page lookups answered by the full-page cache.
    pub cache_hits: u64,
    /// Page lookups answered by the hashes-only tier.
    pub cache_hash_hits: u64,
    /// Page lookups neither tier answered.
    pub cache_misses: u64,
    /// Pages evicted from the full-page cache.
    pub cache_evictions: u64,
    /// Pages evicted from the hashes-only tier.
    pub cache_hash_evictions: u64,
    /// Blocks inserted into the sharing table.
    pub share_inserts: u64,
    /// Sharing-table lookups.
    pub share_lookups: u64,
    /// Lookups that found a candidate (compared byte for byte before use).
    pub share_candidates: u64,
    /// Candidates dropped as stale (the content had changed).
    pub share_stale: u64,
    /// Nanoseconds in zero detection (timed on one page in 16, scaled).
    pub nanos_zero: u64,
    /// Nanoseconds in cache lookup and XOR+RLE delta.
    pub nanos_delta: u64,
    /// Nanoseconds in block hashing, sharing and block encoding.
    pub nanos_blocks: u64,
    /// Nanoseconds in dictionary compression.
    pub nanos_dict: u64,
    /// Nanoseconds in fallback compression.
    pub nanos_compress: u64,
    /// Nanoseconds recording what was sent.
    pub nanos_update: u64,
    /// Bytes of memory the encoder holds: caches, tables, page sets, and its frame buffers
    /// (which keep the size of the largest frame made so far).
    pub memory_bytes: u64,
    /// Of which caches and sharing table, bounded by the configured budgets.
    pub cache_memory_bytes: u64,
    /// Frames whose payload the entropy stage recoded.
    pub entropy_frames: u64,
    /// Bytes the entropy stage saved (payload before it minus after it).
    pub entropy_saved: u64,
    /// Nanoseconds in the entropy stage: the encoding thread's CPU time on Linux, elapsed time
    /// elsewhere.
    pub nanos_entropy: u64,
    /// Pages whose dictionary compression the link rate made not worth it.
    pub skipped_dict: u64,
    /// Compressions the link rate made not worth it.
    pub skipped_compress: u64,
    /// Frames whose entropy coding the link rate made not worth it.
    pub skipped_entropy: u64,
    /// Non-zero pages sent without delta or block work (RAW, or compressed whole where the
    /// compressor pays), as the link rate made that work not worth it.
    pub skipped_analysis: u64,
    /// Pages analysed without their block work (hashing, BLOCKS ops, sharing) as the link rate
    /// made it not worth it.
    pub skipped_blocks: u64,
    /// Frames produced: one per epoch, more when epochs are sent in parts
    /// (`fgbi_config_set_frame_bytes`).
    pub frames: u64,
}

impl From<EncoderStats> for fgbi_encoder_counters {
    fn from(s: EncoderStats) -> Self {
        fgbi_encoder_counters {
            epochs: s.epochs,
            resyncs: s.resyncs,
            pages_in: s.pages_in,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            unchanged_pages: s.unchanged,
            zero_pages: s.zero.pages,
            zero_bytes: s.zero.bytes,
            raw_pages: s.raw.pages,
            raw_bytes: s.raw.bytes,
            compressed_pages: s.compressed.pages,
            compressed_bytes: s.compressed.bytes,
            delta_pages: s.delta.pages,
            delta_bytes: s.delta.bytes,
            dict_pages: s.dict.pages,
            dict_bytes: s.dict.bytes,
            block_pages: s.blocks.pages,
            block_bytes: s.blocks.bytes,
            zero_blocks: s.zero_blocks,
            shared_blocks: s.shared_blocks,
            kept_blocks: s.kept_blocks,
            literal_blocks: s.literal_blocks,
            cache_hits: s.cache.hits,
            cache_hash_hits: s.cache.hash_hits,
            cache_misses: s.cache.misses,
            cache_evictions: s.cache.evictions,
            cache_hash_evictions: s.cache.hash_evictions,
            share_inserts: s.share.inserts,
            share_lookups: s.share.lookups,
            share_candidates: s.share.candidates,
            share_stale: s.share.stale,
            nanos_zero: s.nanos.zero,
            nanos_delta: s.nanos.delta,
            nanos_blocks: s.nanos.blocks,
            nanos_dict: s.nanos.dict,
            nanos_compress: s.nanos.compress,
            nanos_update: s.nanos.update,
            memory_bytes: s.memory_bytes,
            cache_memory_bytes: s.cache_memory_bytes,
            entropy_frames: s.entropy_frames,
            entropy_saved: s.entropy_saved,
            nanos_entropy: s.nanos.entropy,
            skipped_dict: s.skipped_dict,
            skipped_compress: s.skipped_compress,
            skipped_entropy: s.skipped_entropy,
            skipped_analysis: s.skipped_analysis,
            skipped_blocks: s.skipped_blocks,
            frames: s.frames,
        }
    }
}

/// Makes an encoder with configuration `cfg` (copied) and stores it in `*out` (NULL on error).
/// Its first frame is a resync frame. `FGBI_ERR_CONFIG` for an invalid configuration.
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration; `out` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_new(
    cfg: *const fgbi_config,
    out: *mut *mut fgbi_encoder,
) -> c_int {
    guard("fgbi_encoder_new", || {
        if out.is_null() {
            return Err(null("out"));
        }
        // SAFETY: checked non-NULL; writable by the caller's rule.
        unsafe { out.write(std::ptr::null_mut()) };
        let enc = Encoder::new(*config_ref(cfg)?)?;
        let page = vec![0; enc.config().page_size];
        let h = Box::new(fgbi_encoder {
            enc,
            frame: None,
            undelivered: false,
            page,
            parts: Vec::new(),
            poisoned: false,
        });
        // SAFETY: as above.
        unsafe { out.write(Box::into_raw(h)) };
        Ok(())
    })
}

/// Frees an encoder and its frame buffer. NULL is ignored.
///
/// # Safety
/// `enc` must be NULL or an encoder from `fgbi_encoder_new` not freed yet.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_free(enc: *mut fgbi_encoder) {
    if !enc.is_null() {
        // SAFETY: made by Box::into_raw in fgbi_encoder_new, not freed yet (caller's rule).
        drop(unsafe { Box::from_raw(enc) });
    }
}

/// Starts epoch `epoch`. The first epoch, and the first after `fgbi_encoder_resync`, may be any
/// number above the last; otherwise it must be the last epoch plus one (`FGBI_ERR_EPOCH`).
/// `FGBI_ERR_STATE` while an epoch is open, or while the previous frame waits to be fetched
/// after `fgbi_encoder_end_epoch_into` answered `FGBI_ERR_BUFFER_TOO_SMALL`.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_begin_epoch(enc: *mut fgbi_encoder, epoch: u64) -> c_int {
    guard_handle("fgbi_encoder_begin_epoch", "encoder", enc, |e| {
        if e.undelivered {
            return Err(fail(
                FGBI_ERR_STATE,
                "the last frame was not fetched (end_epoch_into answered BUFFER_TOO_SMALL): \
                 fetch it with a larger buffer, or resync",
            ));
        }
        e.enc.begin_epoch(epoch)?;
        e.frame = None;
        Ok(())
    })
}

fn check_addr(addr: u64, page_size: usize) -> FResult {
    if !addr.is_multiple_of(page_size as u64) {
        return Err(crate::Error::Unaligned(addr).into());
    }
    if addr >= MAX_GUEST_ADDR {
        return Err(fail(
            FGBI_ERR_OUT_OF_BOUNDS,
            format!("guest address {addr:#x} is beyond the encoder's range (2^60)"),
        ));
    }
    Ok(())
}

/// Adds the dirty page at guest address `guest_addr` (a multiple of the page size) in the open
/// epoch, reading exactly page-size bytes at `page` once, into the encoder's own copy, before
/// anything else: the page may change during the call (memory of a running guest), and the frame
/// and what the encoder remembers then agree on the version read; the buffer is free again on
/// return. The same page may be added more than once in an epoch; the backup ends with the last
/// version.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder; `page` NULL (refused) or page-size readable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_add_page(
    enc: *mut fgbi_encoder,
    guest_addr: u64,
    page: *const u8,
) -> c_int {
    guard_handle("fgbi_encoder_add_page", "encoder", enc, |e| {
        // SAFETY: NULL or page-size readable bytes (caller's rule).
        unsafe { e.copy_page(page) }?;
        e.enc.add_page(guest_addr, &e.page)?;
        Ok(())
    })
}

/// Hands out the part of the epoch that the last `fgbi_encoder_add_page` (or `_len`) closed, when
/// epochs are sent in parts (`fgbi_config_set_frame_bytes`): `*frame` and `*frame_len` get the
/// frame, or NULL and 0 when none waits. Call it after every
/// add_page call and send the frame before the next call on the encoder, which may reuse its
/// buffer. While a part waits, add_page and end_epoch fail with `FGBI_ERR_STATE` (nothing lost:
/// take the part and call again). The backup applies the parts in order as they arrive, then the
/// frame `fgbi_encoder_end_epoch` returns, which ends the epoch.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder; `frame` and `frame_len` NULL (refused) or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_take_frame(
    enc: *mut fgbi_encoder,
    frame: *mut *const u8,
    frame_len: *mut usize,
) -> c_int {
    guard_handle("fgbi_encoder_take_frame", "encoder", enc, |e| {
        // SAFETY: NULL or writable (caller's rule).
        let (frame, frame_len) = unsafe { (out(frame, "frame")?, out(frame_len, "frame_len")?) };
        let (p, n) = e
            .enc
            .take_frame()
            .map_or((std::ptr::null(), 0), |f| (f.as_ptr(), f.len()));
        *frame = p;
        *frame_len = n;
        Ok(())
    })
}

/// Adds the dirty page at guest address `guest_addr` as `fgbi_encoder_add_page` does, for a
/// sender whose pages stay put until their frame is sent (a checkpoint's staged copy of the
/// dirty pages, a paused guest): a page the encoder sends RAW is not copied into the frame but
/// left at `page`, and the frame refers to it. `fgbi_encoder_take_frame_parts` and
/// `fgbi_encoder_end_epoch_parts` hand the frame out as pieces for one vectored write (the
/// encoder's buffer between such pages, and the pages); `fgbi_encoder_take_frame` and
/// `fgbi_encoder_end_epoch` copy the pages in and return the frame whole. The frame's bytes are
/// the same either way. Pages are not left in place in frames the entropy stage is going to code
/// (with no link rate, or where coding pays). Where the link is as fast as memory, the copy this
/// saves is most of the encoder's time.
///
/// Not for the memory of a running guest: a page that changes before its frame is sent makes the
/// frame's checksum wrong (the backup refuses it).
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder; `page` NULL (refused) or page-size readable
/// bytes that stay valid and unchanged until the frame they went into has been handed out and
/// sent: until the call on the encoder that follows the one handing out that frame (or
/// `fgbi_encoder_free`).
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_add_page_in_place(
    enc: *mut fgbi_encoder,
    guest_addr: u64,
    page: *const u8,
) -> c_int {
    guard_handle("fgbi_encoder_add_page_in_place", "encoder", enc, |e| {
        let ps = e.page.len();
        // SAFETY: NULL (refused) or page-size readable bytes (caller's rule).
        let page = unsafe { slice(page, ps, "page") }?;
        // SAFETY: the caller keeps the page valid and unchanged until its frame is sent (rule
        // above), which is `add_page_in_place`'s contract.
        unsafe { e.enc.add_page_in_place(guest_addr, page) }?;
        Ok(())
    })
}

/// `fgbi_encoder_take_frame` as the pieces of one vectored write: `*parts` gets an array of
/// `*count` pieces (NULL and 0 when no part waits), valid, as the pages added in place they
/// point to, until the next call on the encoder. Nothing is copied.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder; `parts` and `count` NULL (refused) or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_take_frame_parts(
    enc: *mut fgbi_encoder,
    parts: *mut *const fgbi_frame_part,
    count: *mut usize,
) -> c_int {
    guard_handle("fgbi_encoder_take_frame_parts", "encoder", enc, |e| {
        // SAFETY: NULL or writable (caller's rule).
        let (parts, count) = unsafe { (out(parts, "parts")?, out(count, "count")?) };
        hand_out(&mut e.parts, e.enc.take_frame_parts(), parts, count)
    })
}

/// Like `fgbi_encoder_add_page` (the page read once, into the encoder's copy), with the page's
/// length: a page whose length is not the page size gives `FGBI_ERR_INVALID_ARG`.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder; `page` NULL (refused unless `page_len` is 0,
/// which is refused as a short page) or `page_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_add_page_len(
    enc: *mut fgbi_encoder,
    guest_addr: u64,
    page: *const u8,
    page_len: usize,
) -> c_int {
    guard_handle("fgbi_encoder_add_page_len", "encoder", enc, |e| {
        let ps = e.page.len();
        if page_len != ps {
            return Err(crate::Error::PageLength {
                expected: ps,
                got: page_len,
            }
            .into());
        }
        // SAFETY: NULL or page_len (= page size) readable bytes (caller's rule).
        unsafe { e.copy_page(page) }?;
        e.enc.add_page(guest_addr, &e.page)?;
        Ok(())
    })
}

/// Adds `n` dirty pages: page `i` at guest address `addrs[i]` with content `pages[i]`
/// (page-size bytes each). Every address and page pointer is checked first: a NULL page or a
/// misaligned address fails before any page is added, and the last error message names the
/// index. `n` = 0 does nothing (the arrays may then be NULL). Not for epochs sent in parts
/// (`fgbi_config_set_frame_bytes`, `fgbi_config_set_frame_pages`), where a part must be taken after the page that closed it:
/// then `FGBI_ERR_STATE` before any page is added (use `fgbi_encoder_add_page`).
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder; `addrs` and `pages` NULL (refused) or `n`
/// readable elements; each `pages[i]` NULL (refused) or page-size readable bytes.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_add_pages(
    enc: *mut fgbi_encoder,
    addrs: *const u64,
    pages: *const *const u8,
    n: usize,
) -> c_int {
    guard_handle("fgbi_encoder_add_pages", "encoder", enc, |e| {
        let ps = e.enc.config().page_size;
        if e.enc.config().in_parts() && n > 0 {
            return Err(fail(
                FGBI_ERR_STATE,
                "fgbi_encoder_add_pages with epochs sent in parts: add pages one at a time and \
                 take each part (fgbi_encoder_take_frame)",
            ));
        }
        // SAFETY: NULL or n readable elements (caller's rule).
        let addrs = unsafe { slice(addrs, n, "addrs") }?;
        // SAFETY: as above.
        let pages = unsafe { slice(pages, n, "pages") }?;
        for (i, (&a, &p)) in addrs.iter().zip(pages).enumerate() {
            if p.is_null() {
                return Err(null(&format!("pages[{i}]")));
            }
            check_addr(a, ps).map_err(|f| fail(f.code, format!("page {i}: {}", f.msg)))?;
        }
        for (i, (&a, &p)) in addrs.iter().zip(pages).enumerate() {
            // SAFETY: non-NULL, page-size readable bytes (caller's rule).
            unsafe { e.copy_page(p) }?;
            e.enc
                .add_page(a, &e.page)
                .map_err(|err| fail(super::error::code_of(&err), format!("page {i}: {err}")))?;
        }
        Ok(())
    })
}

/// Ends the open epoch and stores its frame in `*frame` and `*frame_len`. The frame belongs to
/// the encoder and stays valid until the next call that changes it (begin_epoch, add_page,
/// resync, free). Also hands out a frame that `fgbi_encoder_end_epoch_into` kept after
/// `FGBI_ERR_BUFFER_TOO_SMALL`. `FGBI_ERR_STATE` without an open epoch.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder; `frame` and `frame_len` NULL (refused) or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_end_epoch(
    enc: *mut fgbi_encoder,
    frame: *mut *const u8,
    frame_len: *mut usize,
) -> c_int {
    guard_handle("fgbi_encoder_end_epoch", "encoder", enc, |e| {
        // SAFETY: NULL or writable (caller's rule); checked before the epoch is ended.
        let (frame, frame_len) = unsafe { (out(frame, "frame")?, out(frame_len, "frame_len")?) };
        let (p, n) = e.finish()?;
        e.undelivered = false;
        *frame = p;
        *frame_len = n;
        Ok(())
    })
}

/// `fgbi_encoder_end_epoch` as the pieces of one vectored write: `*parts` gets an array of
/// `*count` pieces, valid, as the pages added in place they point to, until the next call on the
/// encoder. Nothing is copied. `FGBI_ERR_STATE` without an open epoch, or while a frame kept by
/// `fgbi_encoder_end_epoch_into` waits to be fetched.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder; `parts` and `count` NULL (refused) or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_end_epoch_parts(
    enc: *mut fgbi_encoder,
    parts: *mut *const fgbi_frame_part,
    count: *mut usize,
) -> c_int {
    guard_handle("fgbi_encoder_end_epoch_parts", "encoder", enc, |e| {
        // SAFETY: NULL or writable (caller's rule); checked before the epoch is ended.
        let (parts, count) = unsafe { (out(parts, "parts")?, out(count, "count")?) };
        if e.undelivered {
            return Err(fail(
                FGBI_ERR_STATE,
                "the epoch's frame waits to be fetched with fgbi_encoder_end_epoch_into or \
                 fgbi_encoder_end_epoch",
            ));
        }
        e.frame = None;
        let ended = e.enc.end_epoch_parts()?;
        hand_out(&mut e.parts, Some(ended), parts, count)
    })
}

/// Ends the open epoch and copies its frame into `buf` (`cap` bytes), storing its length in
/// `*frame_len`. When the frame does not fit, returns `FGBI_ERR_BUFFER_TOO_SMALL` with the
/// needed size in `*frame_len` and keeps the frame: call again (with a buffer of that size, or
/// `fgbi_encoder_end_epoch`) to fetch it; the next epoch cannot begin before it is fetched (or
/// the encoder resynced). `buf` may be NULL with `cap` 0 to ask for the size.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder; `buf` NULL (refused unless `cap` is 0) or
/// `cap` writable bytes; `frame_len` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_end_epoch_into(
    enc: *mut fgbi_encoder,
    buf: *mut u8,
    cap: usize,
    frame_len: *mut usize,
) -> c_int {
    guard_handle("fgbi_encoder_end_epoch_into", "encoder", enc, |e| {
        // SAFETY: NULL or writable (caller's rules); checked before the epoch is ended.
        let frame_len = unsafe { out(frame_len, "frame_len") }?;
        // SAFETY: as above.
        let buf = unsafe { slice_mut(buf, cap, "buf") }?;
        let (p, n) = e.finish()?;
        *frame_len = n;
        // kept until the copy below succeeds
        e.undelivered = true;
        if n > buf.len() {
            return Err(fail(
                FGBI_ERR_BUFFER_TOO_SMALL,
                format!(
                    "frame of {n} bytes, buffer of {cap}: the frame is kept, call again with a \
                     larger buffer"
                ),
            ));
        }
        // SAFETY: the encoder's frame buffer, unchanged since `finish` (no call in between).
        let frame = unsafe { std::slice::from_raw_parts(p, n) };
        if super::overlap((p, n), (buf.as_ptr(), buf.len())) {
            return Err(fail(
                FGBI_ERR_INVALID_ARG,
                "buf overlaps the encoder's frame",
            ));
        }
        buf[..n].copy_from_slice(frame);
        e.undelivered = false;
        Ok(())
    })
}

/// Forgets everything the encoder knows of the backup: the next frame is a resync frame that
/// depends on nothing the backup held and may carry any epoch number above the last. Call it
/// when the backup is replaced or a frame was lost, then add every page in the next epoch. An
/// open epoch, or a frame waiting to be fetched, is dropped.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_resync(enc: *mut fgbi_encoder) -> c_int {
    guard_handle("fgbi_encoder_resync", "encoder", enc, |e| {
        e.enc.resync();
        e.frame = None;
        e.undelivered = false;
        Ok(())
    })
}

/// Tells the encoder that the backup now holds zeros in the `len` bytes from `guest_addr`,
/// written there by another path than this encoder's frames (zero pages the caller sends itself,
/// a region reset to zeros): it sends nothing for them while they stay zero and deltas their next
/// content against zeros. `guest_addr` and `len` are multiples of the page size
/// (`FGBI_ERR_INVALID_ARG`).
///
/// A note on a page this encoder has not sent since the last resync (or no longer holds in its
/// caches) only makes it forget the page: a decoder accepts ops depending on a page only when that
/// page came in its own stream.
///
/// Notes take effect between frames: call them outside an epoch, or after `begin_epoch` or
/// `fgbi_encoder_take_frame` before the next page (else `FGBI_ERR_STATE`, nothing changed). The
/// backup must make the change after applying every frame taken before the note and before
/// applying any frame taken after it.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_note_zero(
    enc: *mut fgbi_encoder,
    guest_addr: u64,
    len: u64,
) -> c_int {
    guard_handle("fgbi_encoder_note_zero", "encoder", enc, |e| {
        e.enc.note_zero(guest_addr, len)?;
        Ok(())
    })
}

/// Tells the encoder that the backup may no longer hold what it was sent for the `len` bytes
/// from `guest_addr` (a discarded region, memory changed on the backup or by another path with
/// content the encoder does not know): the pages' next versions are sent without reference to
/// old content, and no other page refers to their blocks. Rules as for `fgbi_encoder_note_zero`.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_forget(
    enc: *mut fgbi_encoder,
    guest_addr: u64,
    len: u64,
) -> c_int {
    guard_handle("fgbi_encoder_forget", "encoder", enc, |e| {
        e.enc.forget(guest_addr, len)?;
        Ok(())
    })
}

/// Tells the encoder that the backup now holds `page` (page-size bytes, read once into its own
/// copy) at `guest_addr`,
/// sent there by another path: it keeps a copy within its cache budget and deltas the page's next
/// version against it. Rules as for `fgbi_encoder_note_zero`.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder; `page` NULL (refused) or page-size readable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_note_page(
    enc: *mut fgbi_encoder,
    guest_addr: u64,
    page: *const u8,
) -> c_int {
    guard_handle("fgbi_encoder_note_page", "encoder", enc, |e| {
        // SAFETY: NULL or page-size readable bytes (caller's rule).
        unsafe { e.copy_page(page) }?;
        e.enc.note_page(guest_addr, &e.page)?;
        Ok(())
    })
}

/// Sets the stream id written in every frame from the next one on (random by default; e.g. to
/// number parallel channels). A decoder follows one stream id.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_set_stream_id(enc: *mut fgbi_encoder, id: u64) -> c_int {
    guard_handle("fgbi_encoder_set_stream_id", "encoder", enc, |e| {
        e.enc.set_stream_id(id);
        Ok(())
    })
}

/// Stores the encoder's stream id in `*id`.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder; `id` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_stream_id(enc: *mut fgbi_encoder, id: *mut u64) -> c_int {
    guard_handle("fgbi_encoder_stream_id", "encoder", enc, |e| {
        // SAFETY: NULL or writable (caller's rule).
        *unsafe { out(id, "id") }? = e.enc.stream_id();
        Ok(())
    })
}

/// Fills `*stats` with the counters since the encoder was made.
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder; `stats` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_stats(
    enc: *mut fgbi_encoder,
    stats: *mut fgbi_encoder_counters,
) -> c_int {
    guard_handle("fgbi_encoder_stats", "encoder", enc, |e| {
        // SAFETY: NULL or writable (caller's rule).
        *unsafe { out(stats, "stats") }? = e.enc.stats().into();
        Ok(())
    })
}

/// Fills `*stats` with the counters of the open epoch, or of the last one once it has ended
/// (memory gauges are current values).
///
/// # Safety
/// `enc` must be NULL (refused) or a live encoder; `stats` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_encoder_epoch_stats(
    enc: *mut fgbi_encoder,
    stats: *mut fgbi_encoder_counters,
) -> c_int {
    guard_handle("fgbi_encoder_epoch_stats", "encoder", enc, |e| {
        // SAFETY: NULL or writable (caller's rule).
        *unsafe { out(stats, "stats") }? = e.enc.epoch_stats().into();
        Ok(())
    })
}
