//! `fgbi_config`: an opaque, mutable configuration read by `fgbi_encoder_new` and
//! `fgbi_decoder_new`.

use super::error::{fail, guard, null, FResult, FGBI_ERR_CONFIG, FGBI_ERR_INVALID_ARG};
use crate::config::{ConfigError, MAX_PAGE_SIZE, MIN_PAGE_SIZE};
use crate::stages::hash::{MAX_BLOCK_SIZE, MIN_BLOCK_SIZE};
use crate::{Config, Fallback, Stages};
use std::ffi::c_int;

/// Stage bit: send all-zero pages and blocks as one-byte ops.
pub const FGBI_STAGE_ZERO: u32 = 1;
/// Stage bit: split pages into blocks; send only the changed blocks of a known page.
pub const FGBI_STAGE_BLOCKS: u32 = 2;
/// Stage bit: send a block identical to one the backup holds as a reference (needs BLOCKS).
pub const FGBI_STAGE_SHARING: u32 = 4;
/// Stage bit: XOR+RLE delta against the page's cached last-sent version.
pub const FGBI_STAGE_DELTA: u32 = 8;
/// Stage bit: lz4 with the page's cached last-sent version as dictionary.
pub const FGBI_STAGE_DICT: u32 = 16;
/// Stage bit: Huffman-code the frame's payload, one table per kind of byte, when it is smaller.
pub const FGBI_STAGE_ENTROPY: u32 = 32;
/// Stage bit: compress neighbouring pages sent compressed whole together, as one RUN op of up
/// to 64 KiB (lz4 fallback only).
pub const FGBI_STAGE_RUNS: u32 = 64;
/// Every stage bit (the default).
pub const FGBI_STAGE_ALL: u32 = 127;

/// Codec: stored as it is (as a fallback: send new content raw).
pub const FGBI_CODEC_RAW: c_int = 0;
/// Codec: a standard lz4 block (written by libfgbi's own matcher, pure Rust).
pub const FGBI_CODEC_LZ4: c_int = 1;
/// Codec: raw deflate, RFC 1951 without zlib header (miniz_oxide, pure Rust).
pub const FGBI_CODEC_DEFLATE: c_int = 2;

/// An encoder or decoder configuration (opaque). Made by `fgbi_config_new` with the defaults
/// (page 4096, block 256, cache 64 MiB, hashes 8 MiB, every stage, lz4 fallback), changed by the
/// setters, read (copied) by `fgbi_encoder_new` / `fgbi_decoder_new`, freed by
/// `fgbi_config_free`. The encoder and the decoder of one stream need the same page and block
/// sizes.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, Default)]
pub struct fgbi_config {
    pub(crate) cfg: Config,
}

pub(crate) fn config_ref<'a>(cfg: *const fgbi_config) -> FResult<&'a Config> {
    // SAFETY: NULL or a live config made by `fgbi_config_new` (documented rule).
    unsafe { cfg.as_ref() }
        .map(|c| &c.cfg)
        .ok_or_else(|| null("config"))
}

fn with_config(func: &str, cfg: *mut fgbi_config, f: impl FnOnce(&mut Config) -> FResult) -> c_int {
    guard(func, || {
        // SAFETY: NULL or a live config made by `fgbi_config_new`, not used by another thread
        // meanwhile (documented rule).
        let c = unsafe { cfg.as_mut() }.ok_or_else(|| null("config"))?;
        f(&mut c.cfg)
    })
}

fn config_error(e: ConfigError) -> super::error::Fail {
    fail(FGBI_ERR_CONFIG, format!("invalid configuration: {e}"))
}

/// Makes a configuration with the default values and stores it in `*out`.
///
/// # Safety
/// `out` must be NULL (refused) or point to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_new(out: *mut *mut fgbi_config) -> c_int {
    guard("fgbi_config_new", || {
        if out.is_null() {
            return Err(null("out"));
        }
        let c = Box::new(fgbi_config::default());
        // SAFETY: checked non-NULL; the caller provides writable storage.
        unsafe { out.write(Box::into_raw(c)) };
        Ok(())
    })
}

/// Frees a configuration made by `fgbi_config_new`. NULL is ignored. Encoders and decoders made
/// from it keep their own copy and stay valid.
///
/// # Safety
/// `cfg` must be NULL or a configuration from `fgbi_config_new` not freed yet.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_free(cfg: *mut fgbi_config) {
    if !cfg.is_null() {
        // SAFETY: made by Box::into_raw in fgbi_config_new and not freed yet (caller's rule).
        drop(unsafe { Box::from_raw(cfg) });
    }
}

/// Sets the page size in bytes: a power of two from 512 to 65536 (default 4096), else
/// `FGBI_ERR_CONFIG`.
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_set_page_size(
    cfg: *mut fgbi_config,
    page_size: usize,
) -> c_int {
    with_config("fgbi_config_set_page_size", cfg, |c| {
        if !page_size.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(config_error(ConfigError::PageSize(page_size)));
        }
        c.page_size = page_size;
        Ok(())
    })
}

/// Sets the block size in bytes: a power of two from 64 to 4096 (default 256), else
/// `FGBI_ERR_CONFIG`. That it is no larger than the page is checked when an encoder or decoder
/// is made (or by `fgbi_config_validate`).
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_set_block_size(
    cfg: *mut fgbi_config,
    block_size: usize,
) -> c_int {
    with_config("fgbi_config_set_block_size", cfg, |c| {
        if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size)
        {
            return Err(config_error(ConfigError::BlockSize(block_size)));
        }
        c.block_size = block_size;
        Ok(())
    })
}

/// Sets the budget of the full-page cache tier in bytes (last-sent page copies and their
/// sharing-table entries; best ratio). 0 disables it. Default 64 MiB.
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_set_cache_bytes(cfg: *mut fgbi_config, bytes: usize) -> c_int {
    with_config("fgbi_config_set_cache_bytes", cfg, |c| {
        c.cache_bytes = bytes;
        Ok(())
    })
}

/// Sets the speed of the link the frames go over, in bytes per second (0: unknown, the default).
/// With a link rate the encoder skips dictionary compression, fallback compression and entropy
/// coding where they cost more time than the bytes they save take on the link (`skipped_*`
/// counters report how often).
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_set_link_rate(
    cfg: *mut fgbi_config,
    bytes_per_second: u64,
) -> c_int {
    with_config("fgbi_config_set_link_rate", cfg, |c| {
        c.link_rate = bytes_per_second;
        Ok(())
    })
}

/// Sets the payload size, in bytes, at which the encoder closes a frame and starts the next part
/// of the epoch (0, the default: one frame per epoch). A frame then ends after the op that makes
/// its payload reach `bytes` (at most about a page more), and `fgbi_encoder_take_frame` hands it
/// out while the epoch goes on, so the encoder's frame buffer stays that small however large the
/// epoch. Each part is entropy coded on its own: small parts send a little more. The encoder and
/// a decoder made with it reserve their frame buffers for that size plus one RAW op when they are
/// made, and such a decoder refuses a larger frame (`FGBI_ERR_TOO_LARGE`): give the decoder the
/// encoder's value.
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_set_frame_bytes(cfg: *mut fgbi_config, bytes: usize) -> c_int {
    with_config("fgbi_config_set_frame_bytes", cfg, |c| {
        c.frame_bytes = bytes;
        Ok(())
    })
}

/// Sets the number of pages added after which the encoder closes a frame and starts the next part
/// of the epoch (0, the default: no such limit), e.g. a hypervisor's batch of pages. Pages found
/// unchanged count too. With `fgbi_config_set_frame_bytes` as well, a frame ends at whichever
/// limit it reaches first. Like the frame size, it bounds the frame buffers of the encoder and of
/// a decoder made with it (`frame_pages` RAW ops), reserved when they are made; such a decoder
/// refuses a larger frame (`FGBI_ERR_TOO_LARGE`).
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_set_frame_pages(cfg: *mut fgbi_config, pages: usize) -> c_int {
    with_config("fgbi_config_set_frame_pages", cfg, |c| {
        c.frame_pages = pages;
        Ok(())
    })
}

/// Sets the budget of the hashes-only tier in bytes (block hashes of last-sent versions of pages
/// not in the full tier). 0 disables it. Default 8 MiB.
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_set_hash_bytes(cfg: *mut fgbi_config, bytes: usize) -> c_int {
    with_config("fgbi_config_set_hash_bytes", cfg, |c| {
        c.hash_bytes = bytes;
        Ok(())
    })
}

/// Sets which stages the encoder may use: an OR of `FGBI_STAGE_*` bits (0: fallback only).
/// Unknown bits give `FGBI_ERR_INVALID_ARG`.
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_set_stages(cfg: *mut fgbi_config, stages: u32) -> c_int {
    with_config("fgbi_config_set_stages", cfg, |c| {
        check_stage_bits(stages)?;
        c.stages = stages_from_bits(stages);
        Ok(())
    })
}

fn check_stage_bits(stages: u32) -> FResult {
    if stages & !FGBI_STAGE_ALL != 0 {
        return Err(fail(
            FGBI_ERR_INVALID_ARG,
            format!("unknown stage bits {:#x}", stages & !FGBI_STAGE_ALL),
        ));
    }
    Ok(())
}

fn stages_from_bits(stages: u32) -> Stages {
    Stages {
        zero: stages & FGBI_STAGE_ZERO != 0,
        blocks: stages & FGBI_STAGE_BLOCKS != 0,
        sharing: stages & FGBI_STAGE_SHARING != 0,
        delta: stages & FGBI_STAGE_DELTA != 0,
        dict: stages & FGBI_STAGE_DICT != 0,
        entropy: stages & FGBI_STAGE_ENTROPY != 0,
        runs: stages & FGBI_STAGE_RUNS != 0,
    }
}

fn stage_bits(s: &Stages) -> u32 {
    [
        (s.zero, FGBI_STAGE_ZERO),
        (s.blocks, FGBI_STAGE_BLOCKS),
        (s.sharing, FGBI_STAGE_SHARING),
        (s.delta, FGBI_STAGE_DELTA),
        (s.dict, FGBI_STAGE_DICT),
        (s.entropy, FGBI_STAGE_ENTROPY),
        (s.runs, FGBI_STAGE_RUNS),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0, |acc, (_, bit)| acc | bit)
}

/// Switches the stages in `stages` (`FGBI_STAGE_*` bits) on (`enable` non-zero) or off, leaving
/// the others as they are.
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_set_stage(
    cfg: *mut fgbi_config,
    stages: u32,
    enable: c_int,
) -> c_int {
    with_config("fgbi_config_set_stage", cfg, |c| {
        check_stage_bits(stages)?;
        let cur = stage_bits(&c.stages);
        let next = if enable != 0 {
            cur | stages
        } else {
            cur & !stages
        };
        c.stages = stages_from_bits(next);
        Ok(())
    })
}

/// Stores the enabled stages (`FGBI_STAGE_*` bits) in `*stages`.
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration; `stages` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_get_stages(
    cfg: *const fgbi_config,
    stages: *mut u32,
) -> c_int {
    guard("fgbi_config_get_stages", || {
        let c = config_ref(cfg)?;
        // SAFETY: NULL or writable (caller's rule).
        let out = unsafe { stages.as_mut() }.ok_or_else(|| null("stages"))?;
        *out = stage_bits(&c.stages);
        Ok(())
    })
}

/// Sets the fallback compressor for content new to the backup: `FGBI_CODEC_RAW` (none),
/// `FGBI_CODEC_LZ4` (default, fast) or `FGBI_CODEC_DEFLATE` with `level` 0 (store) .. 9 (`level`
/// is ignored for the others). Anything else gives `FGBI_ERR_INVALID_ARG` / `FGBI_ERR_CONFIG`.
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_set_fallback(
    cfg: *mut fgbi_config,
    codec: c_int,
    level: c_int,
) -> c_int {
    with_config("fgbi_config_set_fallback", cfg, |c| {
        c.fallback = match codec {
            FGBI_CODEC_RAW => Fallback::None,
            FGBI_CODEC_LZ4 => Fallback::Lz4,
            FGBI_CODEC_DEFLATE => match u8::try_from(level) {
                Ok(l) if l <= 9 => Fallback::Deflate(l),
                _ => {
                    return Err(fail(
                        FGBI_ERR_CONFIG,
                        format!("deflate level {level} is not in 0..9"),
                    ))
                }
            },
            _ => return Err(fail(FGBI_ERR_INVALID_ARG, format!("unknown codec {codec}"))),
        };
        Ok(())
    })
}

/// Stores the page size in `*page_size` (the length of every page given to the encoder).
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration; `page_size` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_get_page_size(
    cfg: *const fgbi_config,
    page_size: *mut usize,
) -> c_int {
    guard("fgbi_config_get_page_size", || {
        let c = config_ref(cfg)?;
        // SAFETY: NULL or writable (caller's rule).
        let out = unsafe { page_size.as_mut() }.ok_or_else(|| null("page_size"))?;
        *out = c.page_size;
        Ok(())
    })
}

/// Stores the block size in `*block_size`.
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration; `block_size` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_get_block_size(
    cfg: *const fgbi_config,
    block_size: *mut usize,
) -> c_int {
    guard("fgbi_config_get_block_size", || {
        let c = config_ref(cfg)?;
        // SAFETY: NULL or writable (caller's rule).
        let out = unsafe { block_size.as_mut() }.ok_or_else(|| null("block_size"))?;
        *out = c.block_size;
        Ok(())
    })
}

/// Checks the whole configuration (including block size no larger than page size):
/// `FGBI_OK` or `FGBI_ERR_CONFIG` with the reason in the last error message.
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_validate(cfg: *const fgbi_config) -> c_int {
    guard("fgbi_config_validate", || {
        config_ref(cfg)?.validate().map_err(config_error)
    })
}
