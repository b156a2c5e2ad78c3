//! Encoder and decoder configuration: page and block size, memory budgets, stage switches and the
//! fallback compressor.
//!
//! The encoder and the decoder of one stream must agree on `page_size` and `block_size` (the frame
//! header carries both and the decoder refuses a mismatch). The other fields only steer the
//! encoder: a decoder decodes every op whatever stages its own config enables.

use crate::stages::hash::{MAX_BLOCK_SIZE, MIN_BLOCK_SIZE};

/// Smallest page size accepted.
pub const MIN_PAGE_SIZE: usize = 512;
/// Largest page size accepted.
pub const MAX_PAGE_SIZE: usize = 65536;

/// Which stages the encoder may use. Every stage can be switched off on its own, so the bytes each
/// one saves can be measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stages {
    /// Send all-zero pages and blocks as one-byte ops.
    pub zero: bool,
    /// Split pages into blocks: send only the changed blocks of a page the cache knows (by content
    /// or by hashes), and zero blocks on their own.
    pub blocks: bool,
    /// Send a block identical to one the backup already holds as a reference to it (confirmed byte
    /// for byte). Needs `blocks`.
    pub sharing: bool,
    /// XOR the page with its cached last-sent version and run-length encode the difference.
    pub delta: bool,
    /// Compress the page with lz4 using its cached last-sent version as preset dictionary.
    pub dict: bool,
    /// Recode the frame's payload with one Huffman table per kind of byte (see
    /// [`entropy`](crate::entropy)) when that makes the frame smaller.
    pub entropy: bool,
    /// Compress neighbouring pages that go out compressed whole together, as one RUN op of up
    /// to 64 KiB (lz4 fallback only): repeats across pages become matches too.
    pub runs: bool,
}

impl Stages {
    /// Every stage on.
    pub const ALL: Stages = Stages {
        zero: true,
        blocks: true,
        sharing: true,
        delta: true,
        dict: true,
        entropy: true,
        runs: true,
    };
    /// Every stage off: pages go through the fallback compressor (or raw) only.
    pub const NONE: Stages = Stages {
        zero: false,
        blocks: false,
        sharing: false,
        delta: false,
        dict: false,
        entropy: false,
        runs: false,
    };
}

impl Default for Stages {
    fn default() -> Self {
        Stages::ALL
    }
}

impl Stages {
    /// Each stage's name (as [`FromStr`](std::str::FromStr) and `Display` spell it) and switch.
    fn named(&mut self) -> [(&'static str, &mut bool); 7] {
        [
            ("zero", &mut self.zero),
            ("blocks", &mut self.blocks),
            ("sharing", &mut self.sharing),
            ("delta", &mut self.delta),
            ("dict", &mut self.dict),
            ("entropy", &mut self.entropy),
            ("runs", &mut self.runs),
        ]
    }
}

/// A comma-separated list of the stages to enable (`zero,blocks,sharing,delta,dict,entropy,runs`), or
/// `all`, or `none`.
///
/// ```
/// let s: fgbi::Stages = "zero,delta".parse().unwrap();
/// assert!(s.zero && s.delta && !s.dict);
/// assert_eq!(s.to_string(), "zero,delta");
/// assert_eq!("all".parse::<fgbi::Stages>().unwrap(), fgbi::Stages::ALL);
/// assert!("zero,fast".parse::<fgbi::Stages>().is_err());
/// ```
impl std::str::FromStr for Stages {
    type Err = String;
    fn from_str(s: &str) -> Result<Stages, String> {
        let mut st = Stages::NONE;
        for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match w {
                "all" => st = Stages::ALL,
                "none" => {}
                _ => match st.named().into_iter().find(|(n, _)| *n == w) {
                    Some((_, on)) => *on = true,
                    None => {
                        return Err(format!(
                            "unknown stage {w:?} (zero, blocks, sharing, delta, dict, entropy, all, none)"
                        ))
                    }
                },
            }
        }
        Ok(st)
    }
}

/// The enabled stages, comma-separated, or `none`.
impl std::fmt::Display for Stages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut copy = *self;
        let on: Vec<&str> = copy
            .named()
            .into_iter()
            .filter(|(_, on)| **on)
            .map(|(n, _)| n)
            .collect();
        if on.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&on.join(","))
        }
    }
}

/// The general-purpose compressor for content that is new to the backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fallback {
    /// Send new content raw.
    None,
    /// Raw deflate (miniz_oxide) at the given level, 1 (fastest) to 9.
    Deflate(u8),
    /// The standard lz4 block format, written by libfgbi's own matcher ([`crate::lz4::PageLz`]):
    /// several times faster than deflate, somewhat larger output.
    #[default]
    Lz4,
}

/// Configuration of an [`Encoder`](crate::Encoder) or [`Decoder`](crate::Decoder).
///
/// ```
/// let cfg = fgbi::Config { cache_bytes: 16 << 20, ..Default::default() };
/// cfg.validate().unwrap();
/// assert_eq!(cfg.page_size, 4096);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Page size in bytes: a power of two from 512 to 65536. Default 4096.
    pub page_size: usize,
    /// Block size in bytes: a power of two from 64 to 4096, at most `page_size`. Default 256.
    pub block_size: usize,
    /// Budget of the full-page cache tier (last-sent page copies, with their sharing-table
    /// entries), in bytes. 0 disables it. Default 64 MiB. Like `hash_bytes`, allocated and
    /// written when the encoder is made ([`Error::OutOfMemory`](crate::Error::OutOfMemory) if it
    /// cannot be had); the caches never grow beyond it.
    pub cache_bytes: usize,
    /// Budget of the hashes-only tier (block hashes of last-sent versions of pages that are not in
    /// the full tier), in bytes. 0 disables it. Default 8 MiB.
    pub hash_bytes: usize,
    /// Stage switches.
    pub stages: Stages,
    /// Compressor for new content.
    pub fallback: Fallback,
    /// Speed of the link the frames go over, in bytes per second, or 0 when unknown. When set,
    /// the encoder skips dictionary compression, fallback compression and entropy coding where
    /// they cost more time than the bytes they save take on the link (see
    /// [`adapt`](crate::encoder::gates)). Default 0.
    pub link_rate: u64,
    /// Payload size at which the encoder closes a frame and starts the next part of the epoch,
    /// in bytes, or 0 for one frame per epoch. With a limit, a frame ends after the op that makes
    /// its payload reach `frame_bytes` (so it holds at most `frame_bytes` plus one op, about a
    /// page more), the caller takes it with [`Encoder::take_frame`](crate::Encoder::take_frame)
    /// and can send it while the epoch goes on, and the decoder applies it on arrival: the
    /// encoder's frame buffer stays that small however many pages an epoch has. Each part is
    /// entropy coded on its own, so small parts send more bytes. Default 0.
    ///
    /// It also bounds the buffers: an encoder or decoder made with a limit reserves its frame
    /// buffers for `frame_bytes` plus one op when it is made, and a decoder refuses a frame whose
    /// payload (rebuilt, when entropy coded) is larger
    /// ([`Error::FrameTooLarge`](crate::Error::FrameTooLarge)): give the decoder the encoder's
    /// value. Without a limit a
    /// frame holds a whole epoch and the buffers grow with the largest, failing with
    /// [`Error::OutOfMemory`](crate::Error::OutOfMemory) (not aborting) when they cannot.
    pub frame_bytes: usize,
    /// Pages added after which the encoder closes a frame and starts the next part of the epoch
    /// (pages found unchanged count too), or 0 for no such limit. Works like `frame_bytes`, and
    /// with it: a frame ends at whichever limit it reaches first. A frame of `frame_pages` pages
    /// holds at most `frame_pages` RAW ops, which bounds the buffers of both sides as
    /// `frame_bytes` does. For a caller whose unit is a batch of pages (a hypervisor's packet).
    /// Default 0.
    pub frame_pages: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            page_size: 4096,
            block_size: 256,
            cache_bytes: 64 << 20,
            hash_bytes: 8 << 20,
            stages: Stages::ALL,
            fallback: Fallback::Lz4,
            link_rate: 0,
            frame_bytes: 0,
            frame_pages: 0,
        }
    }
}

/// A configuration value out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// `page_size` is not a power of two in 512..=65536.
    PageSize(usize),
    /// `block_size` is not a power of two in 64..=4096 or is larger than the page.
    BlockSize(usize),
    /// The deflate level is above 9.
    DeflateLevel(u8),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::PageSize(v) => {
                write!(f, "page size {v} is not a power of two from {MIN_PAGE_SIZE} to {MAX_PAGE_SIZE}")
            }
            ConfigError::BlockSize(v) => write!(
                f,
                "block size {v} is not a power of two from {MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE} no larger than the page"
            ),
            ConfigError::DeflateLevel(v) => write!(f, "deflate level {v} is above 9"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = self.page_size;
        if !p.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&p) {
            return Err(ConfigError::PageSize(p));
        }
        let b = self.block_size;
        if !b.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&b) || b > p {
            return Err(ConfigError::BlockSize(b));
        }
        if let Fallback::Deflate(level) = self.fallback {
            if level > 9 {
                return Err(ConfigError::DeflateLevel(level));
            }
        }
        Ok(())
    }

    /// Whether epochs go out in parts (`frame_bytes` or `frame_pages` set).
    pub fn in_parts(&self) -> bool {
        self.frame_bytes > 0 || self.frame_pages > 0
    }

    /// The largest payload a frame of this configuration holds when epochs go out in parts:
    /// `frame_bytes` plus one RAW op, or `frame_pages` RAW ops, whichever is smaller (`None`
    /// without parts: a frame holds a whole epoch). (A RUN op is sent only when shorter than
    /// its pages sent RAW, and the encoder writes a pending run before the pages it holds
    /// at RAW size would take the frame past `frame_bytes`.)
    pub fn frame_payload_limit(&self) -> Option<usize> {
        let op = crate::format::max_op_len(self.page_size);
        let by_bytes = (self.frame_bytes > 0).then(|| self.frame_bytes.saturating_add(op));
        let by_pages = (self.frame_pages > 0).then(|| self.frame_pages.saturating_mul(op));
        match (by_bytes, by_pages) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Blocks per page.
    pub fn blocks_per_page(&self) -> usize {
        self.page_size / self.block_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_out_of_range_values_are_named() {
        Config::default().validate().unwrap();
        let bad = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(bad(|c| c.page_size = 4000), ConfigError::PageSize(4000));
        assert_eq!(bad(|c| c.page_size = 256), ConfigError::PageSize(256));
        assert_eq!(
            bad(|c| c.page_size = 1 << 17),
            ConfigError::PageSize(1 << 17)
        );
        assert_eq!(bad(|c| c.block_size = 32), ConfigError::BlockSize(32));
        assert_eq!(bad(|c| c.block_size = 8192), ConfigError::BlockSize(8192));
        assert_eq!(bad(|c| c.block_size = 100), ConfigError::BlockSize(100));
        assert_eq!(
            bad(|c| {
                c.page_size = 512;
                c.block_size = 1024
            }),
            ConfigError::BlockSize(1024)
        );
        assert_eq!(
            bad(|c| c.fallback = Fallback::Deflate(10)),
            ConfigError::DeflateLevel(10)
        );
    }
}
