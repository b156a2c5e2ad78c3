//! No allocation per page on the hot path: after warm-up, encoding and decoding a steady-state
//! epoch allocates nothing at all, whatever the number of pages (checked at 64 and 512 pages).
//! (What can still grow are the buffers sized by the frame: the frame itself, the entropy
//! stage's streams and the literal contexts, each a `Vec` that keeps its capacity: an epoch whose
//! frame is larger than every earlier one reallocates them once, amortized, never per page.)

mod common;

use common::Rng;
use fgbi::{Config, Decoder, Encoder, Fallback};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Whether this thread is being measured (tests run in parallel: each counts its own).
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Allocations this thread made while measured.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    if COUNTING.try_with(|c| c.get()).unwrap_or(false) {
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(|a| a.get());
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.with(|a| a.get()) - before
}

const PAGE: usize = 4096;

/// A guest whose pages exercise every op kind: zero pages, small deltas, large changes,
/// duplicated blocks and random (incompressible) content.
struct Guest {
    mem: Vec<u8>,
    rng: Rng,
}

impl Guest {
    fn new(pages: usize) -> Guest {
        let mut g = Guest {
            mem: vec![0u8; pages * PAGE],
            rng: Rng(0x1234_5678_9abc_def1),
        };
        for p in 0..pages {
            g.write(p, 4);
        }
        g
    }
    /// Rewrites page `p` according to its kind and the epoch's `phase`.
    fn write(&mut self, p: usize, phase: usize) {
        let pages = self.mem.len() / PAGE;
        match (p + phase) % 6 {
            0 => self.mem[p * PAGE..][..PAGE].fill(0),
            1 => {
                let i = (self.rng.next() % PAGE as u64) as usize;
                self.mem[p * PAGE + i] ^= 0x5a;
            }
            2 => {
                for _ in 0..600 {
                    let i = (self.rng.next() % PAGE as u64) as usize;
                    self.mem[p * PAGE + i] = self.rng.next() as u8;
                }
            }
            3 => {
                let src = (self.rng.next() as usize % pages) * PAGE;
                let dst = p * PAGE + 1024;
                if src.abs_diff(dst) >= 1024 {
                    self.mem.copy_within(src..src + 1024, dst);
                }
            }
            4 => {
                for w in self.mem[p * PAGE..][..PAGE].chunks_exact_mut(8) {
                    let r = self.rng.next();
                    w.copy_from_slice(&r.to_le_bytes());
                }
            }
            _ => {
                for (i, b) in self.mem[p * PAGE..][..PAGE].iter_mut().enumerate() {
                    *b = (i / 16) as u8 ^ phase as u8;
                }
            }
        }
    }
}

/// Runs epochs over the first `n` pages; the last one is measured.
struct Stream {
    guest: Guest,
    replica: Vec<u8>,
    enc: Encoder,
    dec: Decoder,
    epoch: u64,
}

impl Stream {
    fn new(cfg: Config, pages: usize) -> Stream {
        let guest = Guest::new(pages);
        Stream {
            replica: vec![0u8; guest.mem.len()],
            guest,
            enc: Encoder::new(cfg).unwrap(),
            dec: Decoder::new(cfg).unwrap(),
            epoch: 0,
        }
    }
    /// The guest writes its first `n` pages, then one epoch of them is encoded and decoded;
    /// returns the allocations made by encoding and decoding.
    fn epoch(&mut self, n: usize) -> u64 {
        for p in 0..n {
            self.guest.write(p, self.epoch as usize);
        }
        let (enc, dec, mem, replica, epoch) = (
            &mut self.enc,
            &mut self.dec,
            &self.guest.mem,
            &mut self.replica,
            self.epoch,
        );
        let a = allocations(|| {
            enc.begin_epoch(epoch).unwrap();
            for p in 0..n {
                enc.add_page((p * PAGE) as u64, &mem[p * PAGE..][..PAGE])
                    .unwrap();
            }
            let frame = enc.end_epoch().unwrap();
            dec.apply_flat(frame, replica).unwrap();
        });
        assert_eq!(self.replica, self.guest.mem, "epoch {}", self.epoch);
        self.epoch += 1;
        a
    }
}

fn check(cfg: Config) {
    let (small, large, warm) = (64, 512, 1024);
    let mut s = Stream::new(cfg, warm);
    // warm-up: every page kind at every page, with epochs twice the largest measured, so the
    // frame buffer (which keeps its capacity) has grown past any measured frame
    for _ in 0..8 {
        s.epoch(warm);
    }
    let a_small = s.epoch(small);
    let a_large = s.epoch(large);
    let a_small2 = s.epoch(small);
    assert_eq!(
        (a_small, a_large, a_small2),
        (0, 0, 0),
        "allocations in steady-state epochs of {small}, {large}, {small} pages ({cfg:?})"
    );
}

#[test]
fn steady_state_epochs_allocate_nothing() {
    // a full cache large enough for every page
    check(Config {
        cache_bytes: 8 << 20,
        ..Config::default()
    });
}

#[test]
fn steady_state_epochs_allocate_nothing_under_eviction() {
    // a full cache smaller than the working set: pages are evicted and demoted every epoch
    check(Config {
        cache_bytes: 256 << 10,
        hash_bytes: 16 << 10,
        ..Config::default()
    });
}

#[test]
fn steady_state_epochs_allocate_nothing_with_deflate() {
    check(Config {
        cache_bytes: 1 << 20,
        fallback: Fallback::Deflate(1),
        ..Config::default()
    });
}

/// Encodes and decodes one epoch of the pages `pages` of `guest` (taking and applying parts as
/// they close); returns the allocations made.
fn epoch_in_parts(
    enc: &mut Encoder,
    dec: &mut Decoder,
    guest: &Guest,
    replica: &mut [u8],
    epoch: u64,
    pages: impl Iterator<Item = usize>,
) -> u64 {
    let mem = &guest.mem;
    allocations(|| {
        enc.begin_epoch(epoch).unwrap();
        for p in pages {
            enc.add_page((p * PAGE) as u64, &mem[p * PAGE..][..PAGE])
                .unwrap();
            if let Some(part) = enc.take_frame() {
                dec.apply_flat(part, replica).unwrap();
            }
        }
        let frame = enc.end_epoch().unwrap();
        dec.apply_flat(frame, replica).unwrap();
    })
}

/// With `Config::frame_bytes` the frame buffers are reserved when the encoder and decoder are
/// made: after two small epochs (which let the page sets meet the address range, the entropy
/// stage code its first frames and the kernels pick their instruction set), an epoch 8 times
/// larger allocates nothing, where without a frame size the same epoch grows the frame.
#[test]
fn with_a_frame_size_a_larger_epoch_allocates_nothing() {
    let run = |frame_bytes: usize| {
        let cfg = Config {
            cache_bytes: 4 << 20,
            frame_bytes,
            ..Config::default()
        };
        let pages = 512; // one chunk of the page sets
        let mut guest = Guest::new(pages);
        let mut replica = vec![0u8; pages * PAGE];
        let mut enc = Encoder::new(cfg).unwrap();
        let mut dec = Decoder::new(cfg).unwrap();
        epoch_in_parts(&mut enc, &mut dec, &guest, &mut replica, 0, 0..64);
        for p in 0..64 {
            guest.write(p, 1);
        }
        epoch_in_parts(&mut enc, &mut dec, &guest, &mut replica, 1, 0..64);
        for p in 0..pages {
            guest.write(p, 2);
        }
        let a = epoch_in_parts(&mut enc, &mut dec, &guest, &mut replica, 2, 0..pages);
        // the pages the first epoch did not send are still zero in the replica
        assert_eq!(replica, guest.mem);
        a
    };
    assert_eq!(run(64 << 10), 0, "allocations with 64 KiB frames");
    assert!(run(0) > 0, "a whole-epoch frame grew without allocating?");
}
