//! The C ABI called from Rust: NULL handling, the panic boundary, round trips.

use super::error::{guard, guard_handle, Poison};
use super::*;
use std::ffi::{c_void, CStr};
use std::ptr::{null, null_mut};

const PS: usize = 4096;

fn last() -> String {
    // SAFETY: a NUL-terminated string owned by this thread's last-error slot.
    unsafe { CStr::from_ptr(fgbi_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

struct Pair {
    cfg: *mut fgbi_config,
    enc: *mut fgbi_encoder,
    dec: *mut fgbi_decoder,
}

impl Pair {
    fn new() -> Pair {
        let mut p = Pair {
            cfg: null_mut(),
            enc: null_mut(),
            dec: null_mut(),
        };
        unsafe {
            assert_eq!(fgbi_config_new(&mut p.cfg), FGBI_OK);
            // budgets sized for these tests' few pages (and for Miri, which initialises memory
            // one byte at a time)
            assert_eq!(fgbi_config_set_cache_bytes(p.cfg, 1 << 20), FGBI_OK);
            assert_eq!(fgbi_config_set_hash_bytes(p.cfg, 64 << 10), FGBI_OK);
            // the entropy stage is safe Rust with no pointer of the caller's: under Miri it
            // would only add minutes of interpretation to every frame
            if cfg!(miri) {
                assert_eq!(fgbi_config_set_stage(p.cfg, FGBI_STAGE_ENTROPY, 0), FGBI_OK);
            }
            assert_eq!(fgbi_encoder_new(p.cfg, &mut p.enc), FGBI_OK);
            assert_eq!(fgbi_decoder_new(p.cfg, &mut p.dec), FGBI_OK);
        }
        p
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        unsafe {
            fgbi_encoder_free(self.enc);
            fgbi_decoder_free(self.dec);
            fgbi_config_free(self.cfg);
        }
    }
}

fn memory(pages: usize, seed: u8) -> Vec<u8> {
    (0..pages * PS)
        .map(|i| ((i / 7) as u8).wrapping_mul(seed) ^ (i >> 12) as u8)
        .collect()
}

/// Encodes the given pages of `mem` as epoch `epoch` and returns a copy of the frame.
fn epoch(p: &Pair, epoch: u64, mem: &[u8], pages: &[usize]) -> Vec<u8> {
    unsafe {
        assert_eq!(
            fgbi_encoder_begin_epoch(p.enc, epoch),
            FGBI_OK,
            "{}",
            last()
        );
        for &i in pages {
            let r = fgbi_encoder_add_page(p.enc, (i * PS) as u64, mem[i * PS..].as_ptr());
            assert_eq!(r, FGBI_OK, "{}", last());
        }
        let (mut f, mut n) = (null(), 0usize);
        assert_eq!(fgbi_encoder_end_epoch(p.enc, &mut f, &mut n), FGBI_OK);
        std::slice::from_raw_parts(f, n).to_vec()
    }
}

#[test]
fn version_matches_the_package() {
    let v = unsafe { CStr::from_ptr(fgbi_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    let want = format!("{FGBI_VERSION_MAJOR}.{FGBI_VERSION_MINOR}.{FGBI_VERSION_PATCH}");
    assert_eq!(v, want, "FGBI_VERSION_* constants out of date");
}

#[test]
fn strerror_names_every_code() {
    for code in 0..=12 {
        let s = unsafe { CStr::from_ptr(fgbi_strerror(-code)) };
        assert!(!s.to_bytes().is_empty());
        assert_ne!(
            s.to_str().unwrap(),
            "unknown fgbi status code",
            "code {code}"
        );
    }
    let s = unsafe { CStr::from_ptr(fgbi_strerror(-99)) };
    assert_eq!(s.to_str().unwrap(), "unknown fgbi status code");
}

#[test]
fn null_handles_and_buffers_are_refused() {
    unsafe {
        assert_eq!(fgbi_config_new(null_mut()), FGBI_ERR_NULL);
        assert_eq!(fgbi_config_set_page_size(null_mut(), 4096), FGBI_ERR_NULL);
        assert!(last().contains("config is NULL"), "{}", last());
        let mut enc = std::ptr::dangling_mut::<fgbi_encoder>();
        assert_eq!(fgbi_encoder_new(null(), &mut enc), FGBI_ERR_NULL);
        assert!(enc.is_null(), "out is cleared on error");
        assert_eq!(fgbi_encoder_begin_epoch(null_mut(), 0), FGBI_ERR_NULL);
        assert!(last().starts_with("fgbi_encoder_begin_epoch: encoder is NULL"));
        assert_eq!(fgbi_encoder_add_page(null_mut(), 0, null()), FGBI_ERR_NULL);
        assert_eq!(
            fgbi_decoder_apply_flat(null_mut(), null(), 0, null_mut(), 0),
            FGBI_ERR_NULL
        );
        fgbi_encoder_free(null_mut());
        fgbi_decoder_free(null_mut());
        fgbi_config_free(null_mut());

        let p = Pair::new();
        assert_eq!(fgbi_encoder_begin_epoch(p.enc, 0), FGBI_OK);
        assert_eq!(fgbi_encoder_add_page(p.enc, 0, null()), FGBI_ERR_NULL);
        assert!(last().contains("page is NULL"));
        assert_eq!(
            fgbi_encoder_end_epoch(p.enc, null_mut(), null_mut()),
            FGBI_ERR_NULL
        );
        // the epoch is still open: the NULL outputs were refused before it was ended
        let (mut f, mut n) = (null(), 0);
        assert_eq!(fgbi_encoder_end_epoch(p.enc, &mut f, &mut n), FGBI_OK);
        let mut mem = vec![0u8; PS];
        assert_eq!(
            fgbi_decoder_apply_flat(p.dec, null(), 10, mem.as_mut_ptr(), PS),
            FGBI_ERR_NULL
        );
        assert_eq!(
            fgbi_decoder_apply_flat(p.dec, f, n, null_mut(), PS),
            FGBI_ERR_NULL
        );
        assert_eq!(
            fgbi_decoder_apply_cb(p.dec, f, n, None, null_mut()),
            FGBI_ERR_NULL
        );
        let mut out = 0usize;
        assert_eq!(
            fgbi_compress(FGBI_CODEC_LZ4, 0, null(), 5, null_mut(), 0, &mut out),
            FGBI_ERR_NULL
        );
        // zero length with NULL is an empty buffer
        assert_eq!(
            fgbi_compress(FGBI_CODEC_RAW, 0, null(), 0, null_mut(), 0, &mut out),
            FGBI_OK
        );
        assert_eq!(out, 0);
    }
}

#[test]
fn flat_round_trip_over_epochs_with_stats() {
    let p = Pair::new();
    let mut mem = memory(16, 3);
    let mut rep = vec![0u8; mem.len()];
    let all: Vec<usize> = (0..16).collect();
    for e in 0..4u64 {
        let dirty: Vec<usize> = if e == 0 {
            all.clone()
        } else {
            let d: Vec<usize> = (0..16).filter(|i| i % (e as usize + 1) == 0).collect();
            for &i in &d {
                mem[i * PS + 64 + e as usize] ^= 0xa5;
            }
            if e == 2 {
                mem[0..PS].fill(0);
            }
            d
        };
        let frame = epoch(&p, e, &mem, &dirty);
        let r = unsafe {
            fgbi_decoder_apply_flat(
                p.dec,
                frame.as_ptr(),
                frame.len(),
                rep.as_mut_ptr(),
                rep.len(),
            )
        };
        assert_eq!(r, FGBI_OK, "{}", last());
        assert!(mem == rep, "epoch {e}: replica differs");
    }
    let mut es = fgbi_encoder_counters::default();
    let mut ds = fgbi_decoder_counters::default();
    unsafe {
        assert_eq!(fgbi_encoder_stats(p.enc, &mut es), FGBI_OK);
        assert_eq!(fgbi_decoder_stats(p.dec, &mut ds), FGBI_OK);
        let (mut s, mut e) = (0, 0);
        assert_eq!(fgbi_decoder_position(p.dec, &mut s, &mut e), FGBI_OK);
        assert_eq!(e, 3);
        let mut id = 0;
        assert_eq!(fgbi_encoder_stream_id(p.enc, &mut id), FGBI_OK);
        assert_eq!(s, id);
    }
    assert_eq!(es.epochs, 4);
    assert_eq!(es.resyncs, 1);
    assert_eq!(ds.frames, 4);
    assert_eq!(ds.bytes_in, es.bytes_out);
    assert!(es.pages_in >= 16);
}

struct Blocks {
    low: Vec<u8>,
    high: Vec<u8>,
    calls: usize,
}

const HIGH: u64 = 0x1_0000_0000;

unsafe extern "C" fn page_at(opaque: *mut c_void, addr: u64) -> *mut u8 {
    let b = unsafe { &mut *(opaque as *mut Blocks) };
    b.calls += 1;
    if addr + PS as u64 <= b.low.len() as u64 {
        return unsafe { b.low.as_mut_ptr().add(addr as usize) };
    }
    if addr >= HIGH && addr - HIGH + PS as u64 <= b.high.len() as u64 {
        return unsafe { b.high.as_mut_ptr().add((addr - HIGH) as usize) };
    }
    null_mut()
}

#[test]
fn callback_replica_and_null_page_rejects_before_writing() {
    let p = Pair::new();
    let low = memory(4, 5);
    let high = memory(4, 9);
    // owned through a raw pointer only, as a C caller's opaque state would be
    let b: *mut Blocks = Box::into_raw(Box::new(Blocks {
        low: vec![0; low.len()],
        high: vec![0; high.len()],
        calls: 0,
    }));
    unsafe {
        assert_eq!(fgbi_encoder_begin_epoch(p.enc, 10), FGBI_OK);
        for i in 0..4 {
            fgbi_encoder_add_page(p.enc, (i * PS) as u64, low[i * PS..].as_ptr());
            fgbi_encoder_add_page(p.enc, HIGH + (i * PS) as u64, high[i * PS..].as_ptr());
        }
        let mut frame = vec![0u8; 1 << 16];
        let mut n = 0;
        assert_eq!(
            fgbi_encoder_end_epoch_into(p.enc, frame.as_mut_ptr(), frame.len(), &mut n),
            FGBI_OK
        );
        let bp = b as *mut c_void;
        let r = fgbi_decoder_apply_cb(p.dec, frame.as_ptr(), n, Some(page_at), bp);
        assert_eq!(r, FGBI_OK, "{}", last());
        assert!((*b).calls >= 8);
        assert!((*b).low == low && (*b).high == high, "replica differs");

        // a page the replica lacks: rejected, nothing written
        let mut page = low[..PS].to_vec();
        page[7] ^= 1;
        assert_eq!(fgbi_encoder_begin_epoch(p.enc, 11), FGBI_OK);
        fgbi_encoder_add_page(p.enc, 0, page.as_ptr());
        fgbi_encoder_add_page(p.enc, 2 * HIGH, page.as_ptr());
        let (mut f, mut n) = (null(), 0);
        assert_eq!(fgbi_encoder_end_epoch(p.enc, &mut f, &mut n), FGBI_OK);
        let r = fgbi_decoder_apply_cb(p.dec, f, n, Some(page_at), bp);
        assert_eq!(r, FGBI_ERR_OUT_OF_BOUNDS, "{}", last());
        assert!((*b).low == low, "a rejected frame wrote the replica");
        drop(Box::from_raw(b));
    }
}

#[test]
fn corrupt_frames_and_gaps_leave_memory_unchanged() {
    let p = Pair::new();
    let mem = memory(8, 7);
    let mut rep = vec![0u8; mem.len()];
    let apply = |f: &[u8], rep: &mut Vec<u8>| unsafe {
        fgbi_decoder_apply_flat(p.dec, f.as_ptr(), f.len(), rep.as_mut_ptr(), rep.len())
    };
    let f0 = epoch(&p, 0, &mem, &(0..8).collect::<Vec<_>>());
    // truncated, then one flipped payload bit, then past the memory
    assert_eq!(apply(&f0[..f0.len() - 1], &mut rep), FGBI_ERR_CORRUPT);
    let mut bad = f0.clone();
    bad[60] ^= 0x10;
    assert_eq!(apply(&bad, &mut rep), FGBI_ERR_CHECKSUM);
    assert!(last().contains("checksum"), "{}", last());
    let mut short = vec![0u8; 4 * PS];
    assert_eq!(apply(&f0, &mut short), FGBI_ERR_OUT_OF_BOUNDS);
    assert!(short.iter().all(|&b| b == 0));
    assert!(rep.iter().all(|&b| b == 0));
    assert_eq!(apply(&f0, &mut rep), FGBI_OK);
    assert_eq!(rep, mem);
    // replay, then gap
    assert_eq!(apply(&f0, &mut rep), FGBI_ERR_EPOCH);
    let mut m2 = mem.clone();
    m2[100] = 1;
    let _lost = epoch(&p, 1, &m2, &[0]);
    let f2 = epoch(&p, 2, &m2, &[0]);
    assert_eq!(apply(&f2, &mut rep), FGBI_ERR_EPOCH);
    assert!(last().contains("gap"), "{}", last());
    assert_eq!(rep, mem);
    // resync repairs
    unsafe { assert_eq!(fgbi_encoder_resync(p.enc), FGBI_OK) };
    let f5 = epoch(&p, 5, &m2, &(0..8).collect::<Vec<_>>());
    assert_eq!(apply(&f5, &mut rep), FGBI_OK, "{}", last());
    assert_eq!(rep, m2);
}

#[test]
fn end_epoch_into_keeps_a_frame_that_does_not_fit() {
    let p = Pair::new();
    let mem = memory(4, 11);
    unsafe {
        assert_eq!(fgbi_encoder_begin_epoch(p.enc, 0), FGBI_OK);
        for i in 0..4 {
            fgbi_encoder_add_page(p.enc, (i * PS) as u64, mem[i * PS..].as_ptr());
        }
        let mut need = 0;
        assert_eq!(
            fgbi_encoder_end_epoch_into(p.enc, null_mut(), 0, &mut need),
            FGBI_ERR_BUFFER_TOO_SMALL
        );
        assert!(need > 48);
        let mut small = vec![0u8; need - 1];
        let mut n = 0;
        assert_eq!(
            fgbi_encoder_end_epoch_into(p.enc, small.as_mut_ptr(), small.len(), &mut n),
            FGBI_ERR_BUFFER_TOO_SMALL
        );
        assert_eq!(n, need);
        assert_eq!(fgbi_encoder_begin_epoch(p.enc, 1), FGBI_ERR_STATE);
        let mut buf = vec![0u8; need];
        assert_eq!(
            fgbi_encoder_end_epoch_into(p.enc, buf.as_mut_ptr(), buf.len(), &mut n),
            FGBI_OK
        );
        assert_eq!(n, need);
        let mut rep = vec![0u8; mem.len()];
        let r = fgbi_decoder_apply_flat(p.dec, buf.as_ptr(), n, rep.as_mut_ptr(), rep.len());
        assert_eq!(r, FGBI_OK);
        assert_eq!(rep, mem);
        // fetched: the next epoch may begin, and there is nothing more to end
        assert_eq!(
            fgbi_encoder_end_epoch_into(p.enc, buf.as_mut_ptr(), buf.len(), &mut n),
            FGBI_ERR_STATE
        );
        assert_eq!(fgbi_encoder_begin_epoch(p.enc, 1), FGBI_OK);
    }
}

#[test]
fn bad_arguments_are_refused() {
    let p = Pair::new();
    let page = vec![1u8; PS];
    unsafe {
        assert_eq!(fgbi_config_set_page_size(p.cfg, 4000), FGBI_ERR_CONFIG);
        assert_eq!(fgbi_config_set_block_size(p.cfg, 32), FGBI_ERR_CONFIG);
        assert_eq!(fgbi_config_set_stages(p.cfg, 128), FGBI_ERR_INVALID_ARG);
        assert_eq!(fgbi_config_set_fallback(p.cfg, 7, 0), FGBI_ERR_INVALID_ARG);
        assert_eq!(
            fgbi_config_set_fallback(p.cfg, FGBI_CODEC_DEFLATE, 10),
            FGBI_ERR_CONFIG
        );
        assert_eq!(fgbi_config_set_page_size(p.cfg, 512), FGBI_OK);
        assert_eq!(fgbi_config_set_block_size(p.cfg, 1024), FGBI_OK);
        assert_eq!(fgbi_config_validate(p.cfg), FGBI_ERR_CONFIG);
        let mut e = null_mut();
        assert_eq!(fgbi_encoder_new(p.cfg, &mut e), FGBI_ERR_CONFIG);
        assert!(e.is_null());
        let mut before = 0;
        assert_eq!(fgbi_config_get_stages(p.cfg, &mut before), FGBI_OK);
        assert_eq!(before | FGBI_STAGE_ENTROPY, FGBI_STAGE_ALL); // (entropy is off under Miri)
        assert_eq!(fgbi_config_set_stage(p.cfg, FGBI_STAGE_DICT, 0), FGBI_OK);
        let mut bits = 0;
        assert_eq!(fgbi_config_get_stages(p.cfg, &mut bits), FGBI_OK);
        assert_eq!(bits, before & !FGBI_STAGE_DICT);

        assert_eq!(
            fgbi_encoder_add_page(p.enc, 0, page.as_ptr()),
            FGBI_ERR_STATE
        );
        assert_eq!(fgbi_encoder_begin_epoch(p.enc, 0), FGBI_OK);
        assert_eq!(fgbi_encoder_begin_epoch(p.enc, 1), FGBI_ERR_STATE);
        assert_eq!(
            fgbi_encoder_add_page(p.enc, 100, page.as_ptr()),
            FGBI_ERR_INVALID_ARG
        );
        assert_eq!(
            fgbi_encoder_add_page_len(p.enc, 0, page.as_ptr(), PS - 1),
            FGBI_ERR_INVALID_ARG
        );
        assert_eq!(
            fgbi_encoder_add_page(p.enc, 1 << 62, page.as_ptr()),
            FGBI_ERR_OUT_OF_BOUNDS
        );
        let addrs = [0u64, 4096, 8193];
        let pages = [page.as_ptr(), page.as_ptr(), page.as_ptr()];
        assert_eq!(
            fgbi_encoder_add_pages(p.enc, addrs.as_ptr(), pages.as_ptr(), 3),
            FGBI_ERR_INVALID_ARG
        );
        assert!(last().contains("page 2"), "{}", last());
        let mut s = fgbi_encoder_counters::default();
        assert_eq!(fgbi_encoder_epoch_stats(p.enc, &mut s), FGBI_OK);
        assert_eq!(s.pages_in, 0, "no page was added");
        assert_eq!(
            fgbi_encoder_add_pages(p.enc, addrs.as_ptr(), pages.as_ptr(), 2),
            FGBI_OK
        );
        assert_eq!(fgbi_encoder_epoch_stats(p.enc, &mut s), FGBI_OK);
        assert_eq!(s.pages_in, 2);
        // overlapping frame and memory
        let mut mem = vec![0u8; 2 * PS];
        let r = fgbi_decoder_apply_flat(p.dec, mem.as_ptr(), 100, mem.as_mut_ptr(), mem.len());
        assert_eq!(r, FGBI_ERR_INVALID_ARG);
    }
}

#[test]
fn stage_functions_round_trip_and_report_sizes() {
    let old = memory(1, 3);
    let mut new = old.clone();
    new[10..20].fill(0xee);
    let mut out = vec![0u8; fgbi_delta_max_len(PS)];
    let mut n = 0;
    unsafe {
        assert_eq!(
            fgbi_delta_encode(old.as_ptr(), new.as_ptr(), PS, out.as_mut_ptr(), 4, &mut n),
            FGBI_ERR_BUFFER_TOO_SMALL
        );
        let need = n;
        assert_eq!(
            fgbi_delta_encode(
                old.as_ptr(),
                new.as_ptr(),
                PS,
                out.as_mut_ptr(),
                out.len(),
                &mut n
            ),
            FGBI_OK
        );
        assert_eq!(n, need);
        let mut page = old.clone();
        assert_eq!(
            fgbi_delta_decode(out.as_ptr(), n, page.as_mut_ptr(), PS),
            FGBI_OK
        );
        assert_eq!(page, new);
        let mut page = old.clone();
        assert_eq!(
            fgbi_delta_decode(out.as_ptr(), n - 1, page.as_mut_ptr(), PS),
            FGBI_ERR_CORRUPT
        );
        assert_eq!(page, old, "a rejected delta wrote the page");
        // worst case: every other byte changed
        let alt: Vec<u8> = old
            .iter()
            .enumerate()
            .map(|(i, &b)| if i % 2 == 0 { !b } else { b })
            .collect();
        let mut big = vec![0u8; fgbi_delta_max_len(PS)];
        assert_eq!(
            fgbi_delta_encode(
                old.as_ptr(),
                alt.as_ptr(),
                PS,
                big.as_mut_ptr(),
                big.len(),
                &mut n
            ),
            FGBI_OK,
            "{}",
            last()
        );

        let mut hashes = [0u64; 16];
        assert_eq!(
            fgbi_block_hashes(old.as_ptr(), PS, 256, 1, hashes.as_mut_ptr(), 15),
            FGBI_ERR_BUFFER_TOO_SMALL
        );
        assert_eq!(
            fgbi_block_hashes(old.as_ptr(), PS, 300, 1, hashes.as_mut_ptr(), 16),
            FGBI_ERR_INVALID_ARG
        );
        assert_eq!(
            fgbi_block_hashes(old.as_ptr(), PS, 256, 1, hashes.as_mut_ptr(), 16),
            FGBI_OK
        );
        assert_eq!(
            hashes[3],
            crate::stages::hash::block_hash(&old[768..1024], 1)
        );

        for (codec, level) in [
            (FGBI_CODEC_LZ4, 0),
            (FGBI_CODEC_DEFLATE, 6),
            (FGBI_CODEC_RAW, 0),
        ] {
            let mut c = vec![0u8; fgbi_compress_bound(codec, PS)];
            assert_eq!(
                fgbi_compress(codec, level, old.as_ptr(), PS, c.as_mut_ptr(), 8, &mut n),
                FGBI_ERR_BUFFER_TOO_SMALL
            );
            let need = n;
            assert_eq!(
                fgbi_compress(
                    codec,
                    level,
                    old.as_ptr(),
                    PS,
                    c.as_mut_ptr(),
                    c.len(),
                    &mut n
                ),
                FGBI_OK
            );
            assert_eq!(n, need);
            let mut back = vec![0u8; PS];
            assert_eq!(
                fgbi_decompress(codec, c.as_ptr(), n, back.as_mut_ptr(), PS),
                FGBI_OK
            );
            assert_eq!(back, old);
            assert_eq!(
                fgbi_decompress(codec, c.as_ptr(), n, back.as_mut_ptr(), PS - 1),
                FGBI_ERR_CORRUPT,
                "codec {codec}"
            );
        }
        assert_eq!(
            fgbi_compress(9, 0, old.as_ptr(), PS, out.as_mut_ptr(), out.len(), &mut n),
            FGBI_ERR_INVALID_ARG
        );
    }
}

struct Dummy {
    poisoned: bool,
}

impl Poison for Dummy {
    fn poisoned(&mut self) -> &mut bool {
        &mut self.poisoned
    }
}

#[test]
fn panics_become_internal_errors_and_poison_the_handle() {
    assert_eq!(
        guard("fgbi_test", || panic!("boom {}", 42)),
        FGBI_ERR_INTERNAL
    );
    assert_eq!(last(), "fgbi_test: internal error (panic: boom 42)");
    let mut d = Dummy { poisoned: false };
    let r = guard_handle("fgbi_test", "dummy", &mut d, |_| panic!("inside"));
    assert_eq!(r, FGBI_ERR_INTERNAL);
    assert!(d.poisoned);
    let r = guard_handle("fgbi_test", "dummy", &mut d, |_| Ok(()));
    assert_eq!(r, FGBI_ERR_STATE);
    assert!(last().contains("unusable"));
    let r = guard_handle::<Dummy>("fgbi_test", "dummy", null_mut(), |_| Ok(()));
    assert_eq!(r, FGBI_ERR_NULL);
}

#[test]
fn last_error_is_per_thread() {
    unsafe { fgbi_config_set_page_size(null_mut(), 1) };
    let here = last();
    let there = std::thread::spawn(|| {
        let before = last();
        unsafe { fgbi_encoder_begin_epoch(null_mut(), 0) };
        (before, last())
    })
    .join()
    .unwrap();
    assert_eq!(there.0, "");
    assert!(there.1.starts_with("fgbi_encoder_begin_epoch"));
    assert_eq!(last(), here);
}

#[test]
fn xbzrle_entry_points_follow_qemus_return_convention() {
    use super::stages::{fgbi_xbzrle_decode, fgbi_xbzrle_encode};
    let old: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    let mut new = old.clone();
    let mut dst = vec![0u8; 4096 + 16];
    // SAFETY: valid buffers of the given lengths.
    unsafe {
        assert_eq!(
            fgbi_xbzrle_encode(old.as_ptr(), new.as_ptr(), 4096, dst.as_mut_ptr(), 4096),
            0
        );
        new[1001..1016].iter_mut().for_each(|b| *b ^= 0xff);
        new[1019] ^= 0xff;
        new[1021] ^= 0xff;
        let n = fgbi_xbzrle_encode(old.as_ptr(), new.as_ptr(), 4096, dst.as_mut_ptr(), 4096);
        assert!(n > 0 && n <= 24, "{n}");
        let mut back = old.clone();
        assert_eq!(
            fgbi_xbzrle_decode(dst.as_ptr(), n, back.as_mut_ptr(), 4096),
            1022
        );
        assert_eq!(back, new);
        // overflow: -1 and nothing past dlen
        for i in (0..4096).step_by(2) {
            new[i] = !old[i];
        }
        dst.fill(0xa5);
        assert_eq!(
            fgbi_xbzrle_encode(old.as_ptr(), new.as_ptr(), 4096, dst.as_mut_ptr(), 4096),
            -1
        );
        assert!(dst[4096..].iter().all(|&b| b == 0xa5));
        // bad arguments
        assert_eq!(
            fgbi_xbzrle_encode(std::ptr::null(), new.as_ptr(), 4096, dst.as_mut_ptr(), 4096),
            -1
        );
        assert_eq!(
            fgbi_xbzrle_encode(old.as_ptr(), new.as_ptr(), -5, dst.as_mut_ptr(), 4096),
            -1
        );
        assert_eq!(
            fgbi_xbzrle_decode(dst.as_ptr(), 4, std::ptr::null_mut(), 4096),
            -1
        );
        assert_eq!(
            fgbi_xbzrle_decode([0u8, 0].as_ptr(), 2, back.as_mut_ptr(), 4096),
            -1
        );
    }
}

/// Every entry point that reads one buffer and writes another refuses them overlapping, and
/// says so, before it makes a reference to either (under Miri's Stacked Borrows a shared and a
/// mutable slice of the same bytes would be undefined behaviour even for the check).
#[test]
fn overlapping_input_and_output_are_refused_before_use() {
    use std::ffi::c_int;
    const PS: usize = 4096;
    let mut buf = vec![0u8; 3 * PS];
    let p = buf.as_mut_ptr();
    let mut n = 0usize;
    // each call's result and its thread's last error, read right after the call
    let refused = |what: &str, r: c_int| {
        // SAFETY: a NUL-terminated string owned by this thread's error slot.
        let msg = unsafe { CStr::from_ptr(fgbi_last_error_message()) };
        let msg = msg.to_string_lossy();
        assert!(r < 0 && msg.ends_with(" overlap"), "{what}: {r} {msg}");
    };
    // SAFETY: every pointer is into `buf` with lengths inside it; the calls must refuse them.
    unsafe {
        let q = |k: usize| p.add(k);
        refused(
            "delta_encode old",
            fgbi_delta_encode(p, q(2 * PS), PS, q(PS / 2), PS, &mut n),
        );
        refused(
            "delta_encode new",
            fgbi_delta_encode(p, q(2 * PS), PS, q(2 * PS), PS, &mut n),
        );
        refused("delta_decode", fgbi_delta_decode(p, 100, q(50), PS));
        refused(
            "compress",
            fgbi_compress(FGBI_CODEC_LZ4, 0, p, PS, q(PS - 1), PS, &mut n),
        );
        refused(
            "decompress",
            fgbi_decompress(FGBI_CODEC_RAW, q(PS), 100, p, 2 * PS),
        );
        let ps = PS as c_int;
        refused(
            "xbzrle_encode",
            fgbi_xbzrle_encode(p, q(PS), ps, q(PS + 8), ps),
        );
        refused("xbzrle_decode", fgbi_xbzrle_decode(p, 100, q(99), ps));
    }
    assert!(buf.iter().all(|&b| b == 0), "a refused call wrote");
}
