//! Pages that reach the backup by another path (`Encoder::note_zero`, `note_page`, `forget`):
//! after any mix of frames and notes the replica equals the primary's memory, a page noted as
//! zero or as new content is deltaed against what the backup really holds, a forgotten page is
//! never a reference again, and a note is refused between the ops of one frame without changing
//! anything.

mod common;

use common::Rng;
use fgbi::{Config, Decoder, Encoder, Error, Stages};

const PS: usize = 4096;
const PAGES: usize = 64;

fn page(mem: &[u8], p: usize) -> &[u8] {
    &mem[p * PS..(p + 1) * PS]
}

/// Text-like content that shares blocks across pages, so the sharing stage finds references.
fn fill(mem: &mut [u8], p: usize, rng: &mut Rng) {
    let motif = rng.below(4) as u8;
    for (i, b) in mem[p * PS..(p + 1) * PS].iter_mut().enumerate() {
        *b = b"record:value;"[i % 13] ^ motif;
    }
}

/// A small edit of a page, the kind the XOR delta sends against its old content.
fn edit(mem: &mut [u8], p: usize, rng: &mut Rng) {
    let at = p * PS + rng.below(PS - 8);
    mem[at..at + 8].copy_from_slice(&rng.next().to_le_bytes());
}

/// What happens to a page in one step of a random history.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The primary changes it and sends it in a frame.
    Framed,
    /// The other path zeroes it on both sides (`note_zero`).
    Zeroed,
    /// The other path writes new content on both sides (`note_page`).
    Carried,
    /// The backup's copy is lost (`forget`): the backup holds garbage until the page is resent.
    Lost,
}

/// Runs `epochs` epochs of random steps over `PAGES` pages and checks the replica after each;
/// `notes` false leaves the notes out (to show the checks can fail without them).
fn history(cfg: Config, seed: u64, epochs: usize, notes: bool) -> Result<(), String> {
    let mut rng = Rng(seed | 1);
    let mut enc = Encoder::with_seed(cfg, seed).unwrap();
    let mut dec = Decoder::new(cfg).unwrap();
    let mut mem = vec![0u8; PAGES * PS];
    for p in 0..PAGES {
        fill(&mut mem, p, &mut rng);
    }
    let mut replica = vec![0u8; PAGES * PS];
    let mut lost = [false; PAGES];
    for e in 0..epochs as u64 {
        let mut dirty = Vec::new();
        if e == 0 {
            dirty.extend(0..PAGES);
        } else {
            // the other path acts between frames: before this epoch's first frame
            for _ in 0..PAGES / 4 {
                let p = rng.below(PAGES);
                let step = match rng.below(4) {
                    0 => Step::Framed,
                    1 => Step::Zeroed,
                    2 => Step::Carried,
                    _ => Step::Lost,
                };
                let addr = (p * PS) as u64;
                match step {
                    Step::Framed => {
                        edit(&mut mem, p, &mut rng);
                        dirty.push(p);
                    }
                    Step::Zeroed => {
                        mem[p * PS..(p + 1) * PS].fill(0);
                        replica[p * PS..(p + 1) * PS].fill(0);
                        lost[p] = false;
                        if notes {
                            enc.note_zero(addr, PS as u64).unwrap();
                        }
                    }
                    Step::Carried => {
                        if rng.below(2) == 0 {
                            fill(&mut mem, p, &mut rng);
                        }
                        edit(&mut mem, p, &mut rng);
                        let content = page(&mem, p).to_vec();
                        replica[p * PS..(p + 1) * PS].copy_from_slice(&content);
                        lost[p] = false;
                        if notes {
                            enc.note_page(addr, &content).unwrap();
                        }
                    }
                    Step::Lost => {
                        for b in &mut replica[p * PS..(p + 1) * PS] {
                            *b = rng.next() as u8;
                        }
                        lost[p] = true;
                        if notes {
                            enc.forget(addr, PS as u64).unwrap();
                        }
                    }
                }
            }
            // pages lost on the backup are resent, unchanged on the primary or edited
            for (p, was_lost) in lost.iter_mut().enumerate() {
                if std::mem::take(was_lost) {
                    if rng.below(2) == 0 {
                        edit(&mut mem, p, &mut rng);
                    }
                    dirty.push(p);
                }
            }
            // pages whose edits resemble the noted ones: deltas against stale copies would
            // show here
            for _ in 0..PAGES / 8 {
                let p = rng.below(PAGES);
                edit(&mut mem, p, &mut rng);
                dirty.push(p);
            }
        }
        enc.begin_epoch(e).unwrap();
        for &p in &dirty {
            enc.add_page((p * PS) as u64, page(&mem, p)).unwrap();
            if let Some(part) = enc.take_frame() {
                dec.apply_flat(part, &mut replica)
                    .map_err(|x| x.to_string())?;
            }
        }
        let frame = enc.end_epoch().unwrap();
        dec.apply_flat(frame, &mut replica)
            .map_err(|x| x.to_string())?;
        if let Some(p) = (0..PAGES).find(|&p| page(&mem, p) != page(&replica, p)) {
            return Err(format!("epoch {e}: page {p} differs"));
        }
    }
    Ok(())
}

fn configs() -> Vec<Config> {
    // a cache for every page: the notes, not evictions, decide what it holds
    let all = Config {
        cache_bytes: 1 << 20,
        ..Config::default()
    };
    vec![
        all,
        Config {
            frame_bytes: 4096,
            ..all
        },
        Config {
            stages: "zero,delta".parse::<Stages>().unwrap(),
            ..all
        },
        Config {
            stages: "blocks,sharing,dict".parse::<Stages>().unwrap(),
            ..all
        },
        // a cache too small for every page: notes on pages it does not hold
        Config {
            cache_bytes: 16 * PS,
            ..all
        },
    ]
}

#[test]
fn the_replica_stays_exact_through_frames_and_notes_of_every_kind() {
    for (i, cfg) in configs().into_iter().enumerate() {
        for seed in 1..=12u64 {
            if let Err(e) = history(cfg, seed * 7919 + i as u64, 8, true) {
                panic!("config {i} ({:?}), seed {seed}: {e}", cfg.stages);
            }
        }
    }
}

/// The same histories without the notes go wrong: the encoder deltas against content the backup
/// no longer holds. (Were the notes ignored by the encoder, the test above would fail likewise.)
#[test]
fn without_the_notes_the_same_histories_corrupt_the_replica() {
    let failed = (1..=12u64)
        .filter(|&seed| history(configs()[0], seed * 7919, 8, false).is_err())
        .count();
    assert!(failed >= 10, "only {failed} of 12 histories went wrong");
}

/// A page the backup holds as zeros by another path is sent as nothing while it stays zero, and
/// its next content as a small delta against zeros; a page carried by another path is deltaed
/// against the carried content.
#[test]
fn noted_content_is_what_the_next_delta_is_against() {
    let cfg = Config {
        stages: "zero,delta".parse::<Stages>().unwrap(),
        ..Config::default()
    };
    let mut enc = Encoder::with_seed(cfg, 5).unwrap();
    let mut dec = Decoder::new(cfg).unwrap();
    let mut mem: Vec<u8> = (0..2 * PS).map(|i| (i * 31 % 251) as u8).collect();
    let mut replica = vec![0u8; 2 * PS];
    enc.begin_epoch(0).unwrap();
    enc.add_page(0, page(&mem, 0)).unwrap();
    enc.add_page(PS as u64, page(&mem, 1)).unwrap();
    dec.apply_flat(enc.end_epoch().unwrap(), &mut replica)
        .unwrap();

    // page 0 zeroed by another path; page 1 replaced by another path
    mem[..PS].fill(0);
    replica[..PS].fill(0);
    enc.note_zero(0, PS as u64).unwrap();
    let carried: Vec<u8> = (0..PS).map(|i| (i * 7 % 13) as u8).collect();
    mem[PS..].copy_from_slice(&carried);
    replica[PS..].copy_from_slice(&carried);
    enc.note_page(PS as u64, &carried).unwrap();

    // zero page 0 added again: nothing to send; page 1 unchanged: nothing either
    enc.begin_epoch(1).unwrap();
    enc.add_page(0, page(&mem, 0)).unwrap();
    enc.add_page(PS as u64, page(&mem, 1)).unwrap();
    let frame = enc.end_epoch().unwrap().to_vec();
    assert_eq!(enc.epoch_stats().unchanged, 2);
    dec.apply_flat(&frame, &mut replica).unwrap();

    // a few bytes written into each: two small deltas
    mem[100..104].copy_from_slice(b"abcd");
    mem[PS + 200..PS + 204].copy_from_slice(b"wxyz");
    enc.begin_epoch(2).unwrap();
    enc.add_page(0, page(&mem, 0)).unwrap();
    enc.add_page(PS as u64, page(&mem, 1)).unwrap();
    let frame = enc.end_epoch().unwrap().to_vec();
    assert_eq!(enc.epoch_stats().delta.pages, 2);
    assert!(frame.len() < 200, "frame of {} bytes", frame.len());
    dec.apply_flat(&frame, &mut replica).unwrap();
    assert!(mem == replica);
}

#[test]
fn a_note_between_the_ops_of_a_frame_is_refused_and_changes_nothing() {
    let cfg = Config {
        frame_bytes: 1,
        ..Config::default()
    };
    let mut enc = Encoder::with_seed(cfg, 3).unwrap();
    let mut dec = Decoder::new(cfg).unwrap();
    let mem: Vec<u8> = (0..2 * PS).map(|i| (i % 199) as u8).collect();
    let mut replica = vec![0u8; 2 * PS];
    enc.begin_epoch(0).unwrap();
    // right after begin_epoch: between frames
    enc.note_zero(0, 0).unwrap();
    enc.add_page(0, page(&mem, 0)).unwrap();
    // a part waits: mid-frame
    let err = enc.note_zero(0, PS as u64).unwrap_err();
    assert!(matches!(err, Error::State(_)), "{err}");
    assert!(matches!(enc.forget(0, PS as u64), Err(Error::State(_))));
    let part = enc.take_frame().unwrap().to_vec();
    dec.apply_flat(&part, &mut replica).unwrap();
    // taken: between frames again
    enc.forget(PS as u64, PS as u64).unwrap();
    enc.add_page(PS as u64, page(&mem, 1)).unwrap();
    let part = enc.take_frame().unwrap().to_vec();
    dec.apply_flat(&part, &mut replica).unwrap();
    dec.apply_flat(enc.end_epoch().unwrap(), &mut replica)
        .unwrap();
    assert!(mem == replica);

    // one frame per epoch: after the first page the frame holds an op
    let mut enc = Encoder::with_seed(Config::default(), 3).unwrap();
    enc.begin_epoch(0).unwrap();
    enc.add_page(0, page(&mem, 0)).unwrap();
    assert!(matches!(
        enc.note_page(0, page(&mem, 0)),
        Err(Error::State(_))
    ));
    enc.end_epoch().unwrap();
    enc.note_page(0, page(&mem, 0)).unwrap();
}

#[test]
fn notes_refuse_unaligned_ranges_and_addresses_beyond_the_encoder() {
    let mut enc = Encoder::new(Config::default()).unwrap();
    assert_eq!(enc.note_zero(100, PS as u64), Err(Error::Unaligned(100)));
    assert_eq!(enc.forget(0, 100), Err(Error::RangeLength(100)));
    assert!(matches!(
        enc.forget(u64::MAX - 4095, PS as u64),
        Err(Error::OutOfBounds { .. })
    ));
    assert!(matches!(
        enc.note_page(0, &[0u8; 100]),
        Err(Error::PageLength { .. })
    ));
    enc.note_zero(0, 1 << 30).unwrap();
}

/// A note on a page the encoder never sent (before the first frame, or after a resync) only
/// makes it forget the page: the decoder accepts ops that depend on a page only when the page
/// came in its stream, so the next frames must not lean on the note.
#[test]
fn notes_on_pages_never_sent_do_not_make_ops_depend_on_them() {
    let cfg = Config::default();
    let mut enc = Encoder::with_seed(cfg, 21).unwrap();
    let mut dec = Decoder::new(cfg).unwrap();
    let mut mem: Vec<u8> = (0..4 * PS).map(|i| (i % 251) as u8).collect();
    let mut replica = vec![0u8; 4 * PS];
    // page 1 zero and page 2 carried by another path before anything was sent
    mem[PS..2 * PS].fill(0);
    enc.note_zero(PS as u64, PS as u64).unwrap();
    replica[2 * PS..3 * PS].copy_from_slice(&mem[2 * PS..3 * PS]);
    enc.note_page(2 * PS as u64, &mem[2 * PS..3 * PS]).unwrap();
    for epoch in 0..3u64 {
        mem[PS + 10 + epoch as usize] = 1 + epoch as u8; // page 1 no longer zero
        mem[2 * PS + 20 + epoch as usize] ^= 0xff; // page 2 edited
        enc.begin_epoch(epoch).unwrap();
        for p in 0..4 {
            enc.add_page((p * PS) as u64, page(&mem, p)).unwrap();
        }
        let frame = enc.end_epoch().unwrap();
        dec.apply_flat(frame, &mut replica)
            .unwrap_or_else(|e| panic!("epoch {epoch}: {e}"));
        assert!(mem == replica, "epoch {epoch}");
        if epoch == 1 {
            // and again after a resync
            enc.resync();
            enc.note_zero(3 * PS as u64, PS as u64).unwrap();
        }
    }
}
