//! Properties of the encoder and decoder around the data path: the memory budget holds, calls out
//! of order are refused, resynchronisation recovers a lost frame or a replaced backup, and the
//! replica can be memory made of separate regions.

use fgbi::{Config, Decoder, Encoder, Error, Regions};

const PS: usize = 4096;

fn pattern(pages: usize, salt: u8) -> Vec<u8> {
    (0..pages * PS)
        .map(|i| ((i / 3) as u8).wrapping_add(salt) ^ (i >> 12) as u8)
        .collect()
}

fn send_all(enc: &mut Encoder, epoch: u64, mem: &[u8]) -> Vec<u8> {
    enc.begin_epoch(epoch).unwrap();
    for (i, p) in mem.chunks(PS).enumerate() {
        enc.add_page((i * PS) as u64, p).unwrap();
    }
    enc.end_epoch().unwrap().to_vec()
}

#[test]
fn encoder_memory_stays_within_its_budget() {
    for (cache_bytes, hash_bytes) in [
        (1 << 20, 256 << 10),
        (300 << 10, 0),
        (0, 64 << 10),
        (4 << 20, 4 << 20),
    ] {
        let cfg = Config {
            cache_bytes,
            hash_bytes,
            ..Config::default()
        };
        let mut enc = Encoder::new(cfg).unwrap();
        let pages = 2048; // 8 MiB of guest memory, far more than the budget
        let mut mem = pattern(pages, 0);
        for epoch in 0..6u64 {
            enc.begin_epoch(epoch).unwrap();
            for p in (0..pages).filter(|p| epoch == 0 || p % (epoch as usize + 1) == 0) {
                mem[p * PS + epoch as usize * 8] ^= 0xff;
                enc.add_page((p * PS) as u64, &mem[p * PS..(p + 1) * PS])
                    .unwrap();
            }
            enc.end_epoch().unwrap();
            let s = enc.stats();
            assert!(
                s.cache_memory_bytes <= (cache_bytes + hash_bytes) as u64,
                "budget {cache_bytes}+{hash_bytes}: caches hold {} bytes",
                s.cache_memory_bytes
            );
        }
        let s = enc.stats();
        if cache_bytes + hash_bytes > 0 {
            assert!(
                s.cache.evictions + s.cache.hash_evictions > 0,
                "the test did not fill the cache"
            );
        }
    }
}

#[test]
fn calls_out_of_order_are_refused() {
    let mut enc = Encoder::new(Config::default()).unwrap();
    let page = vec![1u8; PS];
    assert!(matches!(enc.add_page(0, &page), Err(Error::State(_))));
    assert!(matches!(enc.end_epoch(), Err(Error::State(_))));
    enc.begin_epoch(5).unwrap();
    assert!(matches!(enc.begin_epoch(6), Err(Error::State(_))));
    assert_eq!(enc.add_page(100, &page), Err(Error::Unaligned(100)));
    assert_eq!(
        enc.add_page(0, &page[..100]),
        Err(Error::PageLength {
            expected: PS,
            got: 100
        })
    );
    assert!(matches!(
        enc.add_page(1 << 61, &page),
        Err(Error::OutOfBounds { .. })
    ));
    enc.end_epoch().unwrap();
    assert_eq!(
        enc.begin_epoch(7),
        Err(Error::EpochOrder { last: 5, got: 7 })
    );
    assert_eq!(
        enc.begin_epoch(5),
        Err(Error::EpochOrder { last: 5, got: 5 })
    );
    enc.begin_epoch(6).unwrap();
    let bad = Config {
        block_size: 48,
        ..Config::default()
    };
    assert!(matches!(Encoder::new(bad), Err(Error::Config(_))));
    assert!(matches!(Decoder::new(bad), Err(Error::Config(_))));
}

#[test]
fn resync_recovers_a_lost_frame() {
    let cfg = Config::default();
    let mut enc = Encoder::new(cfg).unwrap();
    let mut dec = Decoder::new(cfg).unwrap();
    let mut mem = pattern(32, 1);
    let mut replica = vec![0u8; mem.len()];
    dec.apply_flat(&send_all(&mut enc, 0, &mem), &mut replica)
        .unwrap();

    // epoch 1 is lost in transit
    mem[5 * PS + 9] ^= 1;
    enc.begin_epoch(1).unwrap();
    enc.add_page(5 * PS as u64, &mem[5 * PS..6 * PS]).unwrap();
    enc.end_epoch().unwrap();
    // epoch 2 depends on it: refused, replica untouched
    mem[5 * PS + 10] ^= 1;
    enc.begin_epoch(2).unwrap();
    enc.add_page(5 * PS as u64, &mem[5 * PS..6 * PS]).unwrap();
    let before = replica.clone();
    assert_eq!(
        dec.apply_flat(enc.end_epoch().unwrap(), &mut replica),
        Err(Error::EpochGap {
            expected: 1,
            got: 2
        })
    );
    assert!(replica == before);

    // the primary resyncs: full pages, a later epoch number, accepted
    enc.resync();
    let f = send_all(&mut enc, 10, &mem);
    let applied = dec.apply_flat(&f, &mut replica).unwrap();
    assert!(applied.resync && applied.epoch == 10);
    assert!(replica == mem);
    // and the stream goes on
    mem[7 * PS] ^= 0x80;
    enc.begin_epoch(11).unwrap();
    enc.add_page(7 * PS as u64, &mem[7 * PS..8 * PS]).unwrap();
    dec.apply_flat(enc.end_epoch().unwrap(), &mut replica)
        .unwrap();
    assert!(replica == mem);
}

#[test]
fn a_replaced_backup_and_a_restarted_primary_resynchronise() {
    let cfg = Config::default();
    let mut enc = Encoder::new(cfg).unwrap();
    let mem = pattern(16, 2);
    let mut old_backup = vec![0u8; mem.len()];
    let mut dec = Decoder::new(cfg).unwrap();
    dec.apply_flat(&send_all(&mut enc, 0, &mem), &mut old_backup)
        .unwrap();

    // a new, empty backup joins: its decoder refuses a non-resync frame
    let mut fresh = Decoder::new(cfg).unwrap();
    let mut new_backup = vec![0u8; mem.len()];
    let f = send_all(&mut enc, 1, &mem);
    assert_eq!(
        fresh.apply_flat(&f, &mut new_backup),
        Err(Error::NotSynchronized { epoch: 1 })
    );
    enc.resync();
    fresh
        .apply_flat(&send_all(&mut enc, 2, &mem), &mut new_backup)
        .unwrap();
    assert!(new_backup == mem);

    // the primary restarts (a new encoder, a new stream): the backup refuses it until reset
    let mut restarted = Encoder::new(cfg).unwrap();
    let f = send_all(&mut restarted, 0, &mem);
    assert!(matches!(
        fresh.apply_flat(&f, &mut new_backup),
        Err(Error::ForeignStream { .. })
    ));
    fresh.reset();
    fresh.apply_flat(&f, &mut new_backup).unwrap();
    assert!(new_backup == mem);
}

#[test]
fn replica_made_of_separate_regions() {
    // guest RAM: 64 KiB at 0 and 64 KiB at 4 GiB, as QEMU lays out RAM around a PCI hole
    let cfg = Config::default();
    let mut enc = Encoder::new(cfg).unwrap();
    let mut dec = Decoder::new(cfg).unwrap();
    let low = pattern(16, 3);
    let high = pattern(16, 4);
    let (mut rlow, mut rhigh) = (vec![0u8; low.len()], vec![0u8; high.len()]);
    enc.begin_epoch(0).unwrap();
    for (base, mem) in [(0u64, &low), (1 << 32, &high)] {
        for (i, p) in mem.chunks(PS).enumerate() {
            enc.add_page(base + (i * PS) as u64, p).unwrap();
        }
    }
    let f = enc.end_epoch().unwrap().to_vec();
    dec.apply(
        &f,
        &mut Regions::new(vec![(0, &mut rlow[..]), (1 << 32, &mut rhigh[..])]),
    )
    .unwrap();
    assert!(rlow == low && rhigh == high);

    // a frame touching the hole between the regions is refused whole
    let mut enc2 = Encoder::new(cfg).unwrap();
    enc2.begin_epoch(0).unwrap();
    enc2.add_page(0, &low[..PS]).unwrap();
    enc2.add_page(1 << 20, &low[..PS]).unwrap();
    let f = enc2.end_epoch().unwrap().to_vec();
    let mut dec2 = Decoder::new(cfg).unwrap();
    let mut zl = vec![0u8; low.len()];
    let mut zh = vec![0u8; high.len()];
    let err = dec2
        .apply(
            &f,
            &mut Regions::new(vec![(0, &mut zl[..]), (1 << 32, &mut zh[..])]),
        )
        .unwrap_err();
    assert_eq!(
        err,
        Error::OutOfBounds {
            op: 1,
            addr: 1 << 20
        }
    );
    assert!(
        zl.iter().all(|&b| b == 0),
        "the first page was written before the frame was refused"
    );
}
