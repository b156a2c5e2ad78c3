//! Command-line options shared by subcommands.

use clap::Args;
use fgbi::{Config, Fallback, Stages};

/// Parses a byte count: `65536`, `64K`, `64KiB`, `64M`, `64MiB`, `1G`, `1GiB` (binary units).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("bad byte count {s:?}"))?;
    let mul: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("bad unit in {s:?} (use K, M or G)")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses `deflate[:LEVEL]`, `lz4` or `none`.
pub fn parse_fallback(s: &str) -> Result<Fallback, String> {
    match s {
        "none" | "raw" => Ok(Fallback::None),
        "lz4" => Ok(Fallback::Lz4),
        "deflate" => Ok(Fallback::Deflate(1)),
        _ => match s.strip_prefix("deflate:") {
            Some(l) => match l.parse::<u8>() {
                Ok(l) if l <= 9 => Ok(Fallback::Deflate(l)),
                _ => Err(format!("bad deflate level {l:?} (0..9)")),
            },
            None => Err(format!("bad fallback {s:?} (deflate[:LEVEL], lz4 or none)")),
        },
    }
}

/// Parses a comma-separated list of the stages to enable (`all` and `none` too).
pub fn parse_stages(s: &str) -> Result<Stages, String> {
    s.parse()
}

pub fn stages_string(s: &Stages) -> String {
    s.to_string()
}

pub fn fallback_string(f: &Fallback) -> String {
    match f {
        Fallback::None => "none".into(),
        Fallback::Lz4 => "lz4".into(),
        Fallback::Deflate(l) => format!("deflate:{l}"),
    }
}

/// The encoder configuration options.
#[derive(Args, Debug, Clone)]
pub struct ConfigArgs {
    /// Block size in bytes (power of two, 64..4096).
    #[arg(long, default_value_t = Config::default().block_size)]
    pub block_size: usize,
    /// Full-page cache budget (bytes; K/M/G suffixes). The xbzrle baseline gets the same budget.
    #[arg(long, value_parser = parse_bytes, default_value = "64M")]
    pub cache: usize,
    /// Hashes-only cache budget (bytes; K/M/G suffixes).
    #[arg(long, value_parser = parse_bytes, default_value = "8M")]
    pub hash_cache: usize,
    /// Compressor for new content: deflate[:LEVEL], lz4 or none.
    #[arg(long, value_parser = parse_fallback, default_value = "lz4")]
    pub fallback: Fallback,
    /// Stages to enable, comma-separated: zero,blocks,sharing,delta,dict,entropy,runs (or all, none).
    #[arg(long, value_parser = parse_stages, default_value = "all")]
    pub stages: Stages,
    /// Link speed in Gbit/s the encoder adapts its stages to: it skips dictionary compression,
    /// compression and entropy coding where they cost more time than the bytes they save take on
    /// the link. 0: not adaptive.
    #[arg(long, default_value_t = 0.0)]
    pub adapt_gbps: f64,
    /// Send each epoch in frames of about this payload size (bytes; K/M/G suffixes), each
    /// decoded as it comes; 0: one frame per epoch.
    #[arg(long, value_parser = parse_bytes, default_value = "0")]
    pub frame_bytes: usize,
    /// Close a frame after this many pages added as well (whichever limit comes first); 0: no
    /// such limit.
    #[arg(long, default_value_t = 0)]
    pub frame_pages: usize,
}

impl ConfigArgs {
    pub fn config(&self) -> Result<Config, String> {
        let cfg = Config {
            page_size: crate::trace::PAGE,
            block_size: self.block_size,
            cache_bytes: self.cache,
            hash_bytes: self.hash_cache,
            stages: self.stages,
            fallback: self.fallback,
            link_rate: (self.adapt_gbps.max(0.0) * 1e9 / 8.0) as u64,
            frame_bytes: self.frame_bytes,
            frame_pages: self.frame_pages,
        };
        cfg.validate().map_err(|e| e.to_string())?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert!(parse_bytes("x").is_err());
        assert_eq!(parse_fallback("deflate:6"), Ok(Fallback::Deflate(6)));
        assert!(parse_fallback("deflate:12").is_err());
        let s = parse_stages("zero,delta").unwrap();
        assert!(s.zero && s.delta && !s.blocks && !s.sharing && !s.dict);
        assert_eq!(stages_string(&s), "zero,delta");
        assert!(parse_stages("bogus").is_err());
    }
}
