//! The encoder's memory per guest page matches the documented cost of each tier: a full-tier
//! page costs the page + 8 B per block (sharing table) + at most 56 B of bookkeeping, a
//! hashes-tier page 8 B per block + at most 56 B (at most 4280 B and 184 B with 4 KiB pages and
//! 256 B blocks); `EncoderStats::cache_memory_bytes` reports it.

use fgbi::{Config, Encoder};

const PAGE: usize = 4096;

fn memory_after_filling(cfg: Config, pages: usize) -> u64 {
    let mut enc = Encoder::new(cfg).unwrap();
    enc.begin_epoch(0).unwrap();
    let mut page = vec![0u8; PAGE];
    for p in 0..pages {
        page[..8].copy_from_slice(&(p as u64 + 1).to_le_bytes());
        enc.add_page((p * PAGE) as u64, &page).unwrap();
    }
    enc.end_epoch().unwrap();
    enc.stats().cache_memory_bytes
}

#[test]
fn memory_per_guest_page_matches_the_documented_tier_costs() {
    let bs = 256;
    let blocks = PAGE / bs;
    let full_cost = PAGE + fgbi::cache::ENTRY_OVERHEAD + fgbi::share::ENTRY_BYTES * blocks;
    let hash_cost = 8 * blocks + fgbi::cache::ENTRY_OVERHEAD;
    assert_eq!((full_cost, hash_cost), (4280, 184));
    for (cache_bytes, hash_bytes) in [(4 << 20, 0), (0, 1 << 20), (4 << 20, 1 << 20)] {
        let cfg = Config {
            block_size: bs,
            cache_bytes,
            hash_bytes,
            ..Config::default()
        };
        let (full, hashed) = (cache_bytes / full_cost, hash_bytes / hash_cost);
        // more pages than both tiers hold, so both are full
        let got = memory_after_filling(cfg, 2 * (full + hashed) + 100) as usize;
        assert!(
            got <= cache_bytes + hash_bytes,
            "{got} B over the budget {cache_bytes} + {hash_bytes}"
        );
        let data = full * (PAGE + fgbi::share::ENTRY_BYTES * blocks) + hashed * 8 * blocks;
        let overhead = (got - data) as f64 / (full + hashed) as f64;
        eprintln!(
            "{full} full + {hashed} hashes-tier pages: {got} B, bookkeeping {overhead:.1} B/page"
        );
        assert!(
            got >= data && overhead <= fgbi::cache::ENTRY_OVERHEAD as f64,
            "memory {got} B: data {data} B, bookkeeping {overhead:.1} B/page (documented <= 56)"
        );
    }
}
