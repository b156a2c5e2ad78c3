//! Channels from C: guest memory split by address across `n` channels, each with its own encoder
//! on the primary and its own decoder on the backup (see `fgbi::channels`).

use super::config::fgbi_config;
use super::error::{guard, null};
use crate::channels;
use std::ffi::c_int;

/// The channel (0 to `n` - 1) that carries guest address `guest_addr` when memory is split
/// across `n` channels the way libfgbi splits it: 2 MiB chunks dealt round robin. Any fixed
/// mapping of pages to channels works, as long as each page always travels on the same channel
/// (its encoder deltas against what its own decoder wrote); this one keeps neighbouring pages
/// together. `n` = 0 counts as 1.
#[no_mangle]
pub extern "C" fn fgbi_channel_of(guest_addr: u64, n: u32) -> u32 {
    channels::channel_of(guest_addr, n as usize) as u32
}

/// Makes `cfg` the configuration of one of `n` channels that share it: its cache and hash
/// budgets and its link rate divided by `n` (`n` = 0 counts as 1). Make each channel's encoder
/// and decoder from the result, and give each encoder its own stream id
/// (`fgbi_encoder_set_stream_id`) so a frame on the wrong channel is refused.
///
/// # Safety
/// `cfg` must be NULL (refused) or a live configuration.
#[no_mangle]
pub unsafe extern "C" fn fgbi_config_split(cfg: *mut fgbi_config, n: u32) -> c_int {
    guard("fgbi_config_split", || {
        // SAFETY: NULL or a live config made by `fgbi_config_new`, not used by another thread
        // meanwhile (documented rule).
        let c = unsafe { cfg.as_mut() }.ok_or_else(|| null("config"))?;
        c.cfg = channels::channel_config(c.cfg, n as usize);
        Ok(())
    })
}
