//! Fault injection on the replication path. Frames are lost, duplicated, reordered, truncated,
//! bit-flipped and interleaved with another stream's; the backup restarts empty; the primary
//! restarts. Properties checked on every delivery:
//! - a frame the decoder refuses leaves the replica byte-identical;
//! - a frame it must refuse (corrupt, replayed, foreign, after a gap) is refused;
//! - whenever the backup has applied the newest genuine frame, the replica equals the primary;
//! - after the resynchronisation path the replica again equals the primary.

use fgbi::{Config, Decoder, Encoder, Error};

const PS: usize = 4096;
const PAGES: usize = 48;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Fault {
    None,
    Lost,
    Duplicated,
    Reordered,
    Truncated,
    BitFlipped,
    Foreign,
    BackupRestarted,
    PrimaryRestarted,
}

const FAULTS: [Fault; 9] = [
    Fault::None,
    Fault::Lost,
    Fault::Duplicated,
    Fault::Reordered,
    Fault::Truncated,
    Fault::BitFlipped,
    Fault::Foreign,
    Fault::BackupRestarted,
    Fault::PrimaryRestarted,
];

struct Backup {
    dec: Decoder,
    replica: Vec<u8>,
    refused: u64,
}

impl Backup {
    fn new(cfg: Config) -> Backup {
        Backup {
            dec: Decoder::new(cfg).unwrap(),
            replica: vec![0; PAGES * PS],
            refused: 0,
        }
    }
    /// Delivers a frame; on refusal checks that nothing was written.
    fn deliver(&mut self, frame: &[u8]) -> Result<(), Error> {
        let before = self.replica.clone();
        let pos = self.dec.position();
        let r = self.dec.apply_flat(frame, &mut self.replica).map(|_| ());
        if let Err(e) = &r {
            self.refused += 1;
            assert!(
                self.replica == before,
                "refused frame ({e}) wrote to the replica"
            );
            assert_eq!(
                self.dec.position(),
                pos,
                "refused frame ({e}) moved the decoder"
            );
        }
        r
    }
}

fn mutate(mem: &mut [u8], rng: &mut Rng) -> Vec<usize> {
    let mut dirty = [false; PAGES];
    for _ in 0..rng.below(40) {
        let p = rng.below(PAGES);
        match rng.below(6) {
            0 => mem[p * PS..(p + 1) * PS].fill(0),
            1 => {
                let q = rng.below(PAGES);
                let (a, b) = (rng.below(PS - 512), rng.below(PS - 512));
                let run = mem[q * PS + a..q * PS + a + 512].to_vec();
                mem[p * PS + b..p * PS + b + 512].copy_from_slice(&run);
            }
            2 => mem[p * PS..(p + 1) * PS]
                .iter_mut()
                .for_each(|b| *b = rng.next() as u8),
            _ => {
                let at = rng.below(PS - 8);
                mem[p * PS + at..p * PS + at + 8].copy_from_slice(&rng.next().to_le_bytes());
            }
        }
        dirty[p] = true;
    }
    (0..PAGES).filter(|&p| dirty[p]).collect()
}

fn encode(enc: &mut Encoder, epoch: u64, mem: &[u8], pages: &[usize]) -> Vec<u8> {
    enc.begin_epoch(epoch).unwrap();
    for &p in pages {
        enc.add_page((p * PS) as u64, &mem[p * PS..(p + 1) * PS])
            .unwrap();
    }
    enc.end_epoch().unwrap().to_vec()
}

#[test]
fn replication_survives_every_fault_class() {
    let cfg = Config {
        cache_bytes: 24 * 4400,
        hash_bytes: 16 << 10,
        ..Config::default()
    };
    let mut rng = Rng(7);
    let mut mem: Vec<u8> = (0..PAGES * PS)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 9) as u8)
        .collect();
    let mut enc = Encoder::new(cfg).unwrap();
    let mut other = Encoder::new(cfg).unwrap(); // a foreign stream on the same link
    let mut other_epoch = 0u64;
    let mut backup = Backup::new(cfg);
    let mut epoch = 0u64;
    let mut need_resync = true; // the first frame carries everything
    let mut held: Option<Vec<u8>> = None; // a frame delayed by reordering
    let mut tried = std::collections::BTreeMap::<Fault, u32>::new();
    let mut resyncs = 0u32;
    let mut refused_before_restarts = 0u64;
    let all: Vec<usize> = (0..PAGES).collect();

    for round in 0..1500 {
        let dirty = mutate(&mut mem, &mut rng);
        let pages = if need_resync { &all } else { &dirty };
        if need_resync && round > 0 {
            enc.resync();
            resyncs += 1;
        }
        let frame = encode(&mut enc, epoch, &mem, pages);
        // the round after a reordering delivers its frame cleanly, then the held one arrives late
        let fault = if held.is_some() {
            Fault::None
        } else {
            FAULTS[rng.below(FAULTS.len())]
        };
        *tried.entry(fault).or_default() += 1;
        let delivered = match fault {
            Fault::None => backup.deliver(&frame).is_ok(),
            Fault::Lost => false,
            Fault::Duplicated => {
                let ok = backup.deliver(&frame).is_ok();
                let again = backup.deliver(&frame);
                assert!(
                    matches!(
                        again,
                        Err(Error::EpochReplayed { .. }
                            | Error::NotSynchronized { .. }
                            | Error::ForeignStream { .. }
                            | Error::EpochGap { .. }
                            | Error::UnknownPage { .. })
                    ),
                    "duplicate applied: {again:?}"
                );
                ok
            }
            Fault::Reordered => {
                // this frame is held back and arrives after the next one
                held = Some(frame.clone());
                false
            }
            Fault::Truncated => {
                let cut = rng.below(frame.len());
                assert!(
                    backup.deliver(&frame[..cut]).is_err(),
                    "truncated frame applied"
                );
                // the transport retransmits: the genuine frame still applies
                backup.deliver(&frame).is_ok()
            }
            Fault::BitFlipped => {
                let mut bad = frame.clone();
                let bit = rng.below(bad.len() * 8);
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    backup.deliver(&bad).is_err(),
                    "bit-flipped frame applied (bit {bit})"
                );
                backup.deliver(&frame).is_ok()
            }
            Fault::Foreign => {
                let f = encode(&mut other, other_epoch, &mem, &dirty);
                other_epoch += 1;
                let r = backup.deliver(&f);
                // a fresh backup may lock onto the first resync frame it sees; any other is refused
                if r.is_ok() {
                    assert!(other_epoch == 1, "a foreign stream's frame was applied");
                    backup.dec.reset();
                }
                backup.deliver(&frame).is_ok()
            }
            Fault::BackupRestarted => {
                refused_before_restarts += backup.refused;
                backup = Backup::new(cfg);
                backup.deliver(&frame).is_ok()
            }
            Fault::PrimaryRestarted => {
                enc = Encoder::new(cfg).unwrap();
                epoch = 0;
                let f = encode(&mut enc, epoch, &mem, &all);
                // the operator tells the backup that its primary restarted
                if backup.deliver(&f).is_err() {
                    backup.dec.reset();
                    backup
                        .deliver(&f)
                        .expect("a restarted primary's first frame after reset");
                }
                true
            }
        };
        if fault == Fault::None {
            if let Some(late) = held.take() {
                let r = backup.deliver(&late);
                assert!(
                    r.is_err() || !delivered,
                    "a late frame was applied over a newer one"
                );
            }
        }
        if delivered {
            assert!(
                backup.replica == mem,
                "round {round} ({fault:?}): replica differs after applying the newest frame"
            );
            need_resync = false;
        } else {
            // the backup did not get this epoch: the primary hears of it and resynchronises
            need_resync = true;
        }
        epoch += 1;
    }
    let total: u32 = tried.values().sum();
    let refused = refused_before_restarts + backup.refused;
    println!(
        "faults tried: {tried:?}, {total} rounds, {resyncs} resyncs, {refused} frames refused"
    );
    for f in FAULTS {
        assert!(
            tried.get(&f).copied().unwrap_or(0) > 50,
            "fault {f:?} was hardly tried"
        );
    }
}
