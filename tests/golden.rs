//! Golden frames: committed streams of frames (`tests/golden/*.frames`) with the memory each
//! frame must leave (`*.expect`). Both the library's decoder and the reference decoder written
//! from FORMAT.md (`fuzz/src/lib.rs`, with this file's own reading of the frame envelope) must
//! rebuild that memory after every frame, and the set must use every op kind, codec, block code
//! and entropy stream mode, and code a Huffman stream in parts. The frames pin the wire format: a
//! change to it shows here first. `tests/golden/README.md` says how to regenerate them when the
//! format version changes; `tests/golden/v4/`, `v3/`, `v2/` and `v1/` keep the streams of
//! format versions 4, 3, 2 and 1, which the decoder still reads.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod reference;

use fgbi::{Config, Decoder};
use reference::{Geometry, Seen};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::xxh3_64;

struct Expect {
    ps: usize,
    bs: usize,
    pages: usize,
    /// (epoch, flags, hash of the replica after the frame)
    frames: Vec<(u64, u32, u64)>,
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The cases of the current version (`NAME`) and of versions 4, 3, 2 and 1 (`v4/NAME`,
/// `v3/NAME`, `v2/NAME`, `v1/NAME`).
fn cases() -> Vec<String> {
    let mut names = Vec::new();
    for prefix in ["", "v4/", "v3/", "v2/", "v1/"] {
        let dir = golden_dir().join(prefix);
        let mut here: Vec<String> = std::fs::read_dir(&dir)
            .expect("tests/golden")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".frames").map(|n| format!("{prefix}{n}")))
            .collect();
        here.sort();
        names.extend(here);
    }
    names
}

fn read_expect(name: &str) -> Expect {
    let text = std::fs::read_to_string(golden_dir().join(format!("{name}.expect"))).unwrap();
    let mut e = Expect {
        ps: 0,
        bs: 0,
        pages: 0,
        frames: Vec::new(),
    };
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f[0] {
            "geometry" => {
                (e.ps, e.bs, e.pages) = (
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                )
            }
            "frame" => e.frames.push((
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                u64::from_str_radix(f[3], 16).unwrap(),
            )),
            other => panic!("{name}.expect: unknown line {other}"),
        }
    }
    e
}

fn read_frames(name: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(golden_dir().join(format!("{name}.frames"))).unwrap();
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        frames.push(bytes[pos + 4..pos + 4 + len].to_vec());
        pos += 4 + len;
    }
    frames
}

/// The envelope as FORMAT.md describes it: magic, versions 2 to 5 with a 56-byte header (or
/// version 1 with a 48-byte one, without the part field), the header's fields, the payload and
/// an xxh3-64 of all before the trailer.
struct Envelope<'a> {
    version: u16,
    flags: u32,
    page_size: u32,
    block_size: u32,
    op_count: u32,
    epoch: u64,
    part: u64,
    payload: &'a [u8],
}

fn read_envelope(f: &[u8]) -> Envelope<'_> {
    let u32_at = |i: usize| u32::from_le_bytes(f[i..i + 4].try_into().unwrap());
    let u64_at = |i: usize| u64::from_le_bytes(f[i..i + 8].try_into().unwrap());
    assert_eq!(&f[..4], b"FGBI");
    let version = u16::from_le_bytes([f[4], f[5]]);
    let hl = match version {
        1 => 48,
        2..=5 => 56,
        v => panic!("format version {v}"),
    };
    assert_eq!(
        u16::from_le_bytes([f[6], f[7]]) as usize,
        hl,
        "header length"
    );
    let payload_len = u64_at(40) as usize;
    assert_eq!(f.len(), hl + payload_len + 8, "declared length");
    assert_eq!(
        u64_at(hl + payload_len),
        xxh3_64(&f[..hl + payload_len]),
        "checksum"
    );
    Envelope {
        version,
        flags: u32_at(8),
        page_size: u32_at(12),
        block_size: u32_at(16),
        op_count: u32_at(20),
        epoch: u64_at(32),
        part: if version >= 2 { u64_at(48) } else { 0 },
        payload: &f[hl..hl + payload_len],
    }
}

#[test]
fn the_golden_set_is_there() {
    let names = cases();
    assert!(names.len() >= 11, "golden cases: {names:?}");
    for n in &names {
        let e = read_expect(n);
        assert_eq!(
            read_frames(n).len(),
            e.frames.len(),
            "{n}: frames and expectations"
        );
        assert!(e.frames.len() >= 5, "{n}: a multi-epoch stream");
    }
}

#[test]
fn the_library_decoder_rebuilds_the_memory_after_every_golden_frame() {
    for name in cases() {
        let e = read_expect(&name);
        let cfg = Config {
            page_size: e.ps,
            block_size: e.bs,
            ..Config::default()
        };
        let mut dec = Decoder::new(cfg).unwrap();
        let mut replica = vec![0u8; e.pages * e.ps];
        for (f, &(epoch, flags, hash)) in read_frames(&name).iter().zip(&e.frames) {
            let applied = dec
                .apply_flat(f, &mut replica)
                .unwrap_or_else(|err| panic!("{name} epoch {epoch}: {err}"));
            assert_eq!(applied.epoch, epoch, "{name}");
            assert_eq!(applied.resync, flags & 1 != 0, "{name} epoch {epoch}");
            assert_eq!(applied.partial, flags & 4 != 0, "{name} epoch {epoch}");
            assert_eq!(
                xxh3_64(&replica),
                hash,
                "{name} epoch {epoch}: replica differs"
            );
        }
    }
}

#[test]
fn the_reference_decoder_rebuilds_the_memory_after_every_golden_frame() {
    let mut seen = Seen::default();
    let mut resyncs_after_the_first = 0;
    let mut parts_after_the_first = 0;
    let mut parted_streams = 0;
    for name in cases() {
        let e = read_expect(&name);
        let version = match name.split_once('/') {
            Some(("v1", _)) => 1,
            Some(("v2", _)) => 2,
            Some(("v3", _)) => 3,
            Some(("v4", _)) => 4,
            _ => 5,
        };
        let g = Geometry {
            page: e.ps,
            block: e.bs,
            version,
        };
        let mut replica = vec![0u8; e.pages * e.ps];
        let mut known = HashSet::new();
        // the part due next: 0, or the next part of an epoch whose last frame was partial
        let mut due = 0;
        for (i, (f, &(epoch, flags, hash))) in read_frames(&name).iter().zip(&e.frames).enumerate()
        {
            let env = read_envelope(f);
            assert_eq!((env.epoch, env.flags), (epoch, flags), "{name}");
            assert_eq!(env.version, version, "{name}");
            let partial = env.flags & 4 != 0;
            assert!(
                env.version >= 2 || !partial,
                "{name}: a partial version 1 frame"
            );
            assert_eq!(env.part, due, "{name} epoch {epoch}: part number");
            due = if partial { env.part + 1 } else { 0 };
            parts_after_the_first += (env.part > 0) as usize;
            assert_eq!(
                (env.page_size as usize, env.block_size as usize),
                (e.ps, e.bs)
            );
            let resync = env.flags & 1 != 0;
            resyncs_after_the_first += (resync && i > 0) as usize;
            let mut this = Seen::default();
            replica = reference::reference_apply_seen(
                g,
                env.payload,
                env.op_count,
                resync,
                env.flags & 2 != 0,
                &known,
                &replica,
                &mut this,
            )
            .unwrap_or_else(|| panic!("{name} epoch {epoch}: the reference refuses it"));
            assert_eq!(
                xxh3_64(&replica),
                hash,
                "{name} epoch {epoch}: replica differs"
            );
            if resync {
                known.clear();
            }
            known.extend(&this.pages);
            // what the current version's set covers (the older sets covered theirs)
            if version == 5 {
                parted_streams += this.parted_streams;
                seen.merge(&this);
            }
        }
    }
    assert!(
        resyncs_after_the_first > 0,
        "a resync in the middle of a stream"
    );
    assert!(parts_after_the_first > 0, "an epoch sent in parts");
    assert!(
        parted_streams > 0,
        "a Huffman stream coded in parts (from version 3)"
    );
    // every op kind with every codec it takes (RUN: from version 4)
    let tags = [0x00, 0x01, 0x12, 0x22, 0x03, 0x04, 0x05, 0x15, 0x25, 0x16];
    let missing: Vec<String> = tags
        .iter()
        .filter(|t| !seen.tags.contains(t))
        .map(|t| format!("{t:#04x}"))
        .collect();
    assert!(missing.is_empty(), "op tags never used: {missing:?}");
    for code in 0..4 {
        assert!(
            seen.block_codes.contains(&code),
            "block code {code} never used"
        );
    }
    // every stream mode, and context modelling of tokens, literals and both offset streams
    for mode in 0..4 {
        assert!(
            seen.stream_modes.iter().any(|&(_, m)| m == mode),
            "stream mode {mode} never used"
        );
    }
    for stream in 1..5 {
        assert!(
            seen.stream_modes.contains(&(stream, 3)),
            "stream {stream} never context modelled"
        );
    }
    // context-modelled literals in one bit string and in two (from version 5)
    for strings in [1, 2] {
        assert!(
            seen.literal_strings.contains(&strings),
            "context-modelled literals never in {strings} string(s)"
        );
    }
}
