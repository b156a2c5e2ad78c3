//! Parallel channels, like QEMU's multifd: guest memory is split by address into `n` channels,
//! each with its own encoder (its own share of the cache budget, its own frame stream) and its own
//! decoder on the backup, so `n` cores encode and decode at once.
//!
//! Guest addresses are dealt to channels in 2 MiB chunks, round robin: dirty pages cluster, and
//! interleaving spreads the clusters evenly while keeping each chunk's pages (and the blocks they
//! share) in one channel. A channel's encoder only ever references pages of its own channel, and a
//! channel's replica view ([`split_flat`]) holds only that channel's chunks, so each decoder can
//! run on its own thread with no locking: the views are disjoint `&mut` slices.
//!
//! ```
//! use fgbi::{channels, Config};
//! let cfg = Config::default();
//! let n = 2;
//! let mut encoders = channels::encoders(cfg, n).unwrap();
//! let mut decoders = channels::decoders(cfg, n).unwrap();
//! let guest = vec![9u8; 8 << 20];
//! let mut replica = vec![0u8; 8 << 20];
//! let mut views = channels::split_flat(&mut replica, n);
//! std::thread::scope(|s| {
//!     for ((enc, dec), view) in encoders.iter_mut().zip(&mut decoders).zip(&mut views) {
//!         let guest = &guest;
//!         s.spawn(move || {
//!             enc.begin_epoch(0).unwrap();
//!             for (i, page) in guest.chunks(4096).enumerate() {
//!                 let addr = (i * 4096) as u64;
//!                 if channels::channel_of(addr, n) == view.channel() {
//!                     enc.add_page(addr, page).unwrap();
//!                 }
//!             }
//!             dec.apply(enc.end_epoch().unwrap(), view).unwrap();
//!         });
//!     }
//! });
//! drop(views);
//! assert_eq!(guest, replica);
//! ```

use crate::decoder::{Regions, Replica};
use crate::stages::cache::Policy;
use crate::{Config, Decoder, Encoder, Error};

/// Bytes of guest address space dealt to one channel at a time.
pub const CHUNK: u64 = 2 << 20;

/// The channel (0..n) that carries guest address `addr`.
#[inline]
pub fn channel_of(addr: u64, n: usize) -> usize {
    ((addr / CHUNK) % n.max(1) as u64) as usize
}

/// The configuration of one of `n` channels that share `cfg`: its memory budgets (cache, hashes)
/// and its link rate divided by `n`, as the channels share the memory and the link.
pub fn channel_config(cfg: Config, n: usize) -> Config {
    let n = n.max(1);
    Config {
        cache_bytes: cfg.cache_bytes / n,
        hash_bytes: cfg.hash_bytes / n,
        link_rate: cfg.link_rate / n as u64,
        ..cfg
    }
}

/// `n` encoders, one per channel, sharing `cfg`'s memory budgets equally; their stream ids are
/// distinct (channel `i` has the first encoder's id plus `i`).
pub fn encoders(cfg: Config, n: usize) -> Result<Vec<Encoder>, Error> {
    encoders_with_policy(cfg, n, Policy::Clock)
}

/// [`encoders`] with the given cache eviction policy.
pub fn encoders_with_policy(cfg: Config, n: usize, policy: Policy) -> Result<Vec<Encoder>, Error> {
    let n = n.max(1);
    let share = channel_config(cfg, n);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut e = Encoder::with_policy(share, policy)?;
        if let Some(first) = out.first().map(|f: &Encoder| f.stream_id()) {
            e.set_stream_id(first.wrapping_add(i as u64));
        }
        out.push(e);
    }
    Ok(out)
}

/// `n` decoders, one per channel.
pub fn decoders(cfg: Config, n: usize) -> Result<Vec<Decoder>, Error> {
    (0..n.max(1)).map(|_| Decoder::new(cfg)).collect()
}

/// The part of a replica one channel may write: its chunks, and nothing else.
#[derive(Debug)]
pub struct ChannelView<'a> {
    channel: usize,
    regions: Regions<'a>,
}

impl ChannelView<'_> {
    /// The channel this view belongs to.
    pub fn channel(&self) -> usize {
        self.channel
    }
}

impl Replica for ChannelView<'_> {
    fn page_mut(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        self.regions.page_mut(addr, len)
    }
}

/// Splits flat memory (guest address A at byte A) into `n` disjoint channel views, so the
/// channels' decoders can write it from separate threads. A page that straddles a chunk boundary
/// cannot exist (chunks are 2 MiB, pages at most 64 KiB), so every page lies in one view.
pub fn split_flat(mem: &mut [u8], n: usize) -> Vec<ChannelView<'_>> {
    let n = n.max(1);
    let mut per: Vec<Vec<(u64, &mut [u8])>> = (0..n).map(|_| Vec::new()).collect();
    for (i, chunk) in mem.chunks_mut(CHUNK as usize).enumerate() {
        let base = i as u64 * CHUNK;
        per[channel_of(base, n)].push((base, chunk));
    }
    per.into_iter()
        .enumerate()
        .map(|(channel, regions)| ChannelView {
            channel,
            regions: Regions::new(regions),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_dealt_round_robin_by_2mib_chunk() {
        assert_eq!(channel_of(0, 2), 0);
        assert_eq!(channel_of(CHUNK - 4096, 2), 0);
        assert_eq!(channel_of(CHUNK, 2), 1);
        assert_eq!(channel_of(5 * CHUNK + 7, 3), 2);
        assert_eq!(channel_of(12345, 1), 0);
    }

    #[test]
    fn views_are_disjoint_and_cover_memory() {
        let mut mem = vec![0u8; (5 * CHUNK) as usize + 8192];
        let total = mem.len();
        let mut views = split_flat(&mut mem, 2);
        let mut covered = 0;
        for addr in (0..total as u64).step_by(4096) {
            let owners: Vec<usize> = views
                .iter_mut()
                .filter_map(|v| {
                    let c = v.channel();
                    v.page_mut(addr, 4096).map(|_| c)
                })
                .collect();
            assert_eq!(owners, [channel_of(addr, 2)], "page {addr:#x}");
            covered += 1;
        }
        assert_eq!(covered, total / 4096);
    }

    #[test]
    fn a_frame_for_another_channels_pages_is_refused_by_this_view() {
        let cfg = Config::default();
        let mut enc = Encoder::new(cfg).unwrap();
        enc.begin_epoch(0).unwrap();
        enc.add_page(CHUNK, &vec![1u8; 4096]).unwrap(); // channel 1's page
        let frame = enc.end_epoch().unwrap().to_vec();
        let mut mem = vec![0u8; 2 * CHUNK as usize];
        let mut views = split_flat(&mut mem, 2);
        let mut dec = Decoder::new(cfg).unwrap();
        assert!(matches!(
            dec.apply(&frame, &mut views[0]),
            Err(Error::OutOfBounds { .. })
        ));
        dec.apply(&frame, &mut views[1]).unwrap();
    }

    #[test]
    fn encoders_split_the_budgets_and_the_link_and_have_distinct_streams() {
        let cfg = Config {
            cache_bytes: 8 << 20,
            hash_bytes: 2 << 20,
            link_rate: 1 << 30,
            ..Config::default()
        };
        let encs = encoders(cfg, 4).unwrap();
        let ids: std::collections::HashSet<u64> = encs.iter().map(|e| e.stream_id()).collect();
        assert_eq!(ids.len(), 4);
        for e in &encs {
            assert_eq!(e.config().cache_bytes, 2 << 20);
            assert_eq!(e.config().link_rate, 1 << 28);
            assert!(e.stats().cache_memory_bytes <= (2 << 20) + (512 << 10));
        }
    }
}
