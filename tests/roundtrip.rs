//! Property: whatever the sequence of epochs (sparse and dense writes, block copies across pages,
//! zero pages, pages flipping back to an earlier version, pages added twice in one epoch), whatever
//! stages are on and however small the cache, the replica equals the primary after every epoch.

use fgbi::cache::Policy;
use fgbi::{Config, Decoder, Encoder, Fallback, Stages};
use proptest::prelude::*;

const PAGES: usize = 24;

#[derive(Debug, Clone)]
enum Change {
    /// A few bytes written at an offset.
    Sparse {
        page: usize,
        at: usize,
        bytes: Vec<u8>,
    },
    /// The whole page overwritten with pseudo-random bytes.
    Dense { page: usize, seed: u64 },
    /// A run copied from one page to another (a memcpy'd buffer, a page-cache copy).
    Copy {
        src: usize,
        src_at: usize,
        dst: usize,
        dst_at: usize,
        len: usize,
    },
    /// The page zeroed.
    Zero { page: usize },
    /// The page restored to what it held at the start of the script.
    FlipBack { page: usize },
    /// The page is added to this epoch now, and may change and be added again later.
    AddNow { page: usize },
}

fn change() -> impl Strategy<Value = Change> {
    let p = 0..PAGES;
    prop_oneof![
        4 => (p.clone(), 0..4096usize, prop::collection::vec(any::<u8>(), 1..24))
            .prop_map(|(page, at, bytes)| Change::Sparse { page, at, bytes }),
        1 => (p.clone(), any::<u64>()).prop_map(|(page, seed)| Change::Dense { page, seed }),
        2 => (p.clone(), 0..64usize, p.clone(), 0..64usize, 1..=4usize).prop_map(|(src, s, dst, d, n)| Change::Copy {
            src,
            src_at: s * 64,
            dst,
            dst_at: d * 64,
            len: n * 256,
        }),
        1 => p.clone().prop_map(|page| Change::Zero { page }),
        1 => p.clone().prop_map(|page| Change::FlipBack { page }),
        1 => p.prop_map(|page| Change::AddNow { page }),
    ]
}

fn stages() -> impl Strategy<Value = Stages> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(zero, blocks, sharing, delta, dict, entropy, runs)| Stages {
                zero,
                blocks,
                sharing,
                delta,
                dict,
                entropy,
                runs,
            },
        )
}

fn config() -> impl Strategy<Value = (Config, Policy)> {
    (
        stages(),
        prop::sample::select(vec![64usize, 256, 1024]),
        // from no cache, through a cache smaller than the dirty set, to one holding everything
        prop::sample::select(vec![0usize, 3 * 4400, 8 * 4400, 1 << 20]),
        prop::sample::select(vec![0usize, 4 * 600, 1 << 16]),
        prop::sample::select(vec![
            Fallback::None,
            Fallback::Lz4,
            Fallback::Deflate(1),
            Fallback::Deflate(6),
        ]),
        prop::sample::select(vec![Policy::Clock, Policy::DirectMapped]),
        // adaptive stages: none, a slow link, 10 Gbit/s, a link no compressor can keep up with
        prop::sample::select(vec![0u64, 1, 1_250_000_000, u64::MAX]),
        // an epoch in one frame, or in parts: one op each, or a few pages' worth, or closed
        // after a number of pages as well
        prop::sample::select(vec![
            (0usize, 0usize),
            (0, 0),
            (1, 0),
            (8192, 0),
            (0, 3),
            (8192, 2),
        ]),
    )
        .prop_map(
            |(
                stages,
                block_size,
                cache_bytes,
                hash_bytes,
                fallback,
                policy,
                link_rate,
                (frame_bytes, frame_pages),
            )| {
                (
                    Config {
                        page_size: 4096,
                        block_size,
                        cache_bytes,
                        hash_bytes,
                        stages,
                        fallback,
                        link_rate,
                        frame_bytes,
                        frame_pages,
                    },
                    policy,
                )
            },
        )
}

fn fill(buf: &mut [u8], mut seed: u64) {
    for b in buf {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *b = (seed >> 56) as u8;
    }
}

/// Initial memory: text-like, random, zero and duplicated pages.
fn initial() -> Vec<u8> {
    let mut mem = vec![0u8; PAGES * 4096];
    for (i, page) in mem.chunks_mut(4096).enumerate() {
        match i % 4 {
            0 => page
                .iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = b"key=value;"[j % 10] ^ (i as u8)),
            1 => fill(page, i as u64),
            2 => {}
            _ => page
                .iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = (j / 64) as u8),
        }
    }
    mem
}

/// Adds a page; a part of the epoch it closes is applied at once, as a receiver would.
fn add(
    enc: &mut Encoder,
    dec: &mut Decoder,
    replica: &mut [u8],
    p: usize,
    page: &[u8],
) -> Result<(), TestCaseError> {
    enc.add_page((p * 4096) as u64, page).unwrap();
    if let Some(part) = enc.take_frame() {
        dec.apply_flat(part, replica)
            .map_err(|err| TestCaseError::fail(format!("a part: {err}")))?;
    }
    Ok(())
}

fn run(cfg: Config, policy: Policy, script: &[Vec<Change>]) -> Result<(), TestCaseError> {
    let mut enc = Encoder::with_policy(cfg, policy).unwrap();
    let mut dec = Decoder::new(cfg).unwrap();
    let start = initial();
    let mut mem = start.clone();
    let mut replica = vec![0xa5u8; mem.len()];
    let page = |m: &Vec<u8>, p: usize| m[p * 4096..(p + 1) * 4096].to_vec();

    enc.begin_epoch(0).unwrap();
    for p in 0..PAGES {
        add(&mut enc, &mut dec, &mut replica, p, &page(&mem, p))?;
    }
    let frame = enc.end_epoch().unwrap().to_vec();
    dec.apply_flat(&frame, &mut replica).unwrap();
    prop_assert!(mem == replica, "epoch 0");

    for (e, changes) in script.iter().enumerate() {
        let epoch = e as u64 + 1;
        enc.begin_epoch(epoch).unwrap();
        let mut dirty = [false; PAGES];
        for c in changes {
            match c {
                Change::Sparse { page, at, bytes } => {
                    let at = (*at).min(4096 - bytes.len());
                    mem[page * 4096 + at..][..bytes.len()].copy_from_slice(bytes);
                    dirty[*page] = true;
                }
                Change::Dense { page, seed } => {
                    fill(&mut mem[page * 4096..(page + 1) * 4096], *seed);
                    dirty[*page] = true;
                }
                Change::Copy {
                    src,
                    src_at,
                    dst,
                    dst_at,
                    len,
                } => {
                    let len = (*len).min(4096 - src_at).min(4096 - dst_at);
                    let run = mem[src * 4096 + src_at..][..len].to_vec();
                    mem[dst * 4096 + dst_at..][..len].copy_from_slice(&run);
                    dirty[*dst] = true;
                }
                Change::Zero { page } => {
                    mem[page * 4096..(page + 1) * 4096].fill(0);
                    dirty[*page] = true;
                }
                Change::FlipBack { page } => {
                    mem[page * 4096..(page + 1) * 4096]
                        .copy_from_slice(&start[page * 4096..(page + 1) * 4096]);
                    dirty[*page] = true;
                }
                Change::AddNow { page } => {
                    add(
                        &mut enc,
                        &mut dec,
                        &mut replica,
                        *page,
                        &page_of(&mem, *page),
                    )?;
                    dirty[*page] = false;
                }
            }
        }
        // dirty pages in a scrambled order
        let mut order: Vec<usize> = (0..PAGES).filter(|&p| dirty[p]).collect();
        order.sort_by_key(|&p| (p * 7 + e) % PAGES);
        for p in order {
            add(&mut enc, &mut dec, &mut replica, p, &page(&mem, p))?;
        }
        let frame = enc.end_epoch().unwrap().to_vec();
        dec.apply_flat(&frame, &mut replica)
            .map_err(|err| TestCaseError::fail(format!("epoch {epoch}: {err}")))?;
        prop_assert!(mem == replica, "replica differs after epoch {}", epoch);
    }
    Ok(())
}

fn page_of(m: &[u8], p: usize) -> Vec<u8> {
    m[p * 4096..(p + 1) * 4096].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn replica_equals_primary_after_every_epoch(
        (cfg, policy) in config(),
        script in prop::collection::vec(prop::collection::vec(change(), 0..24), 1..7),
    ) {
        run(cfg, policy, &script)?;
    }
}

/// Property: a block shared from a page that is then overwritten — later in the same epoch, or in
/// the next — is never referenced with its old content.
#[test]
fn shared_block_overwritten_in_the_same_and_the_next_epoch() {
    for stages in [
        Stages::ALL,
        Stages {
            delta: false,
            dict: false,
            ..Stages::ALL
        },
    ] {
        let cfg = Config {
            stages,
            cache_bytes: 1 << 20,
            ..Config::default()
        };
        let script = vec![
            // B copies a block of A, A is sent, then A's block changes and A is sent again
            vec![
                Change::Copy {
                    src: 1,
                    src_at: 0,
                    dst: 5,
                    dst_at: 512,
                    len: 256,
                },
                Change::AddNow { page: 5 },
                Change::Sparse {
                    page: 1,
                    at: 10,
                    bytes: vec![1, 2, 3],
                },
                Change::AddNow { page: 1 },
                Change::Copy {
                    src: 1,
                    src_at: 0,
                    dst: 9,
                    dst_at: 0,
                    len: 256,
                },
            ],
            // next epoch: the source changes before another copy of its old content arrives
            vec![
                Change::Sparse {
                    page: 5,
                    at: 512,
                    bytes: vec![9; 8],
                },
                Change::AddNow { page: 5 },
                Change::Copy {
                    src: 9,
                    src_at: 0,
                    dst: 13,
                    dst_at: 1024,
                    len: 256,
                },
            ],
        ];
        run(cfg, Policy::Clock, &script).unwrap();
    }
}
