//! A guest's RAM sent the way QEMU's `multifd-compression=fgbi` sends a first pass
//! (`integration/qemu`, patches 0004-0005), without QEMU: the image is cut into packets of 128
//! pages (512 KiB), packet `k` goes to channel `k % N` (QEMU's stable channels), and each packet
//! is one epoch of its channel's encoder: its zero pages noted (`Encoder::note_zero`, as multifd's
//! zero-page detection leaves them to the channel), the others added. Each channel's encoder has
//! `--bandwidth / N` as its link rate and `--cache / N` as its cache budget, as the patch gives
//! it; each channel's frames are then applied by its own decoder to a zeroed replica, which must
//! end equal to the image's pages of that channel.
//!
//! ```text
//! cargo run --release --example multifd -- RAM_FILE [--channels N] [--bandwidth BYTES_PER_S] [--cache BYTES] [--rounds R] [--stages LIST] [--encode-only]
//! ```
//!
//! `RAM_FILE` is a raw image of guest memory, e.g. the `src.ram` that
//! `integration/qemu/migrate.sh` leaves in `/dev/shm/fgbi-qemu/MODE/run1/`. Defaults: 2 channels,
//! 131072000 B/s (`--bandwidth 125M` of migrate.sh), a 64 MiB cache (migrate.sh's, half the
//! 128 MiB guest), 3 rounds. `--bandwidth 0` gives no link rate (every stage on every page; the
//! patch gives 1 GiB/s a channel for an unlimited `max-bandwidth`: `--bandwidth 2147483648` with
//! 2 channels matches it).
//!
//! Prints, per round, every channel's bytes sent, encoding and decoding seconds (channels one
//! after the other, each on one core; a replica is written for the first time while decoding, as
//! a destination's RAM is), how many frames were entropy coded, and the link time of
//! its bytes: the encoder keeps up with its channel when its encoding takes less than that; then
//! where the encoder's time went (its stage counters, `EncoderStats::nanos`).
//! `--encode-only` leaves out the decoders and the peer: a profile of the run
//! (`perf record ... --encode-only`) is then the encoders' alone.
//!
//! The peer in the same round is QEMU's `multifd-compression=zstd` as it sends the same packets:
//! one zstd stream (level 1, QEMU's default `multifd-zstd-level`) per channel for the whole
//! migration, each non-zero page of a packet fed to it and the stream flushed at the packet's
//! end; the receiving side's stream decompresses each packet page by page into its own replica,
//! which must end equal too. On one machine both ends' work competes for the same cores (as in
//! `migrate.sh`), so the sum of encoding and decoding is what a migration there waits for once
//! the link is not the limit.
//! Timings move between runs on a shared machine; compare rounds and runs, not single numbers.

use fgbi::{Config, Decoder, Encoder};
use std::time::{Duration, Instant};

/// Pages in a multifd packet (QEMU's `MULTIFD_PACKET_SIZE`, 512 KiB, of 4 KiB pages).
const PACKET_PAGES: usize = 128;
const PAGE: usize = 4096;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let (mut channels, mut bandwidth, mut cache, mut rounds) =
        (2u64, 131_072_000u64, 64u64 << 20, 3);
    let mut stages = fgbi::Stages::ALL;
    let mut encode_only = false;
    while let Some(a) = args.next() {
        if a == "--encode-only" {
            encode_only = true;
            continue;
        }
        if a == "--stages" {
            let list = args.next().expect("--stages LIST");
            stages = list
                .parse()
                .unwrap_or_else(|e| panic!("--stages {list}: {e}"));
            continue;
        }
        let mut num = |what: &str| -> u64 {
            args.next()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{what} needs a number"))
        };
        match a.as_str() {
            "--channels" => channels = num("--channels").max(1),
            "--bandwidth" => bandwidth = num("--bandwidth"),
            "--cache" => cache = num("--cache"),
            "--rounds" => rounds = num("--rounds").max(1),
            _ if file.is_none() && !a.starts_with("--") => file = Some(a),
            _ => panic!("unknown argument {a}"),
        }
    }
    let file = file.expect(
        "usage: multifd RAM_FILE [--channels N] [--bandwidth BYTES_PER_S] [--cache BYTES] [--rounds R] [--stages LIST] [--encode-only]",
    );
    let image = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(
        image.len().is_multiple_of(PAGE) && !image.is_empty(),
        "{file}: not a whole number of 4 KiB pages"
    );
    // multifd's zero-page detection is QEMU's work, not the encoder's: done before the clock
    let zero: Vec<bool> = image
        .chunks(PAGE)
        .map(|p| p.iter().all(|&b| b == 0))
        .collect();
    println!(
        "{file}: {} MiB, {} channels, link {} B/s each, cache {} MiB each",
        image.len() >> 20,
        channels,
        bandwidth / channels,
        (cache / channels) >> 20
    );
    for round in 1..=rounds {
        let mut total = (0usize, Duration::ZERO, Duration::ZERO);
        for ch in 0..channels {
            let cfg = Config {
                link_rate: bandwidth / channels,
                cache_bytes: (cache / channels) as usize,
                stages,
                ..Config::default()
            };
            let mut enc = Encoder::new(cfg).expect("encoder");
            let mut dec = Decoder::new(cfg).expect("decoder");
            let packets = channel_packets(&image, channels, ch);
            let mut frames: Vec<Vec<u8>> = Vec::new();
            let t = Instant::now();
            for (epoch, &(at, packet)) in packets.iter().enumerate() {
                let first = at / PAGE;
                for i in 0..packet.len() / PAGE {
                    if zero[first + i] {
                        enc.note_zero((at + i * PAGE) as u64, PAGE as u64)
                            .expect("note_zero");
                    }
                }
                enc.begin_epoch(epoch as u64).expect("begin_epoch");
                for (i, page) in packet.chunks(PAGE).enumerate() {
                    if !zero[first + i] {
                        enc.add_page((at + i * PAGE) as u64, page)
                            .expect("add_page");
                    }
                }
                frames.push(enc.end_epoch().expect("end_epoch").to_vec());
            }
            let encode = t.elapsed();
            let stats = enc.stats();
            let mut decode = Duration::ZERO;
            if !encode_only {
                let mut replica = vec![0u8; image.len()];
                let t = Instant::now();
                for f in &frames {
                    dec.apply_flat(f, &mut replica)
                        .expect("the decoder applies every frame");
                }
                decode = t.elapsed();
                for (at, packet) in &packets {
                    assert!(
                        replica[*at..*at + packet.len()] == **packet,
                        "channel {ch}: the replica differs in the packet at {at:#x}"
                    );
                }
            }
            let sent: usize = frames.iter().map(Vec::len).sum();
            let link = if cfg.link_rate > 0 {
                format!(", link {:.1} ms", sent as f64 / cfg.link_rate as f64 * 1e3)
            } else {
                String::new()
            };
            let decoded = decode_ms(decode);
            println!(
                "round {round} channel {ch}: {} packets, {:.2} MiB sent, encode {:.1} ms ({} of {} frames entropy coded){decoded}{link}",
                packets.len(),
                sent as f64 / 1048576.0,
                encode.as_secs_f64() * 1e3,
                stats.entropy_frames,
                stats.frames,
            );
            println!("  stage ms: {}", stats.nanos);
            total.0 += sent;
            total.1 += encode;
            total.2 += decode;
        }
        print_round(&format!("round {round}"), total);
        if encode_only {
            continue;
        }
        let mut peer = (0usize, Duration::ZERO, Duration::ZERO);
        for ch in 0..channels {
            let (sent, encode, decode) =
                zstd_channel(&channel_packets(&image, channels, ch), &zero);
            peer.0 += sent;
            peer.1 += encode;
            peer.2 += decode;
        }
        print_round(&format!("round {round} peer zstd-1 stream"), peer);
    }
}

/// The packets channel `ch` of `channels` carries (packet `k` goes to channel `k % channels`),
/// with their offsets in `image`.
fn channel_packets(image: &[u8], channels: u64, ch: u64) -> Vec<(usize, &[u8])> {
    let packet_bytes = PACKET_PAGES * PAGE;
    image
        .chunks(packet_bytes)
        .enumerate()
        .filter(|(k, _)| *k as u64 % channels == ch)
        .map(|(k, p)| (k * packet_bytes, p))
        .collect()
}

/// `, decode D ms`, or nothing where nothing was decoded (`--encode-only`).
fn decode_ms(decode: Duration) -> String {
    if decode.is_zero() {
        String::new()
    } else {
        format!(", decode {:.1} ms", decode.as_secs_f64() * 1e3)
    }
}

/// Prints a round's bytes sent, encoding and decoding time over all channels.
fn print_round(label: &str, (sent, encode, decode): (usize, Duration, Duration)) {
    let decoded = decode_ms(decode);
    println!(
        "{label}: {:.2} MiB sent ({:.1} MB), encode {:.1} ms{decoded}",
        sent as f64 / 1048576.0,
        sent as f64 / 1e6,
        encode.as_secs_f64() * 1e3,
    );
}

/// One channel of QEMU's multifd-zstd over `packets` (their offsets in the image and bytes):
/// bytes sent, encoding and decoding time. Panics unless a zeroed replica decoded page by page
/// ends equal to the channel's packets.
fn zstd_channel(packets: &[(usize, &[u8])], zero: &[bool]) -> (usize, Duration, Duration) {
    use zstd::stream::raw::{Decoder as ZDec, Encoder as ZEnc, InBuffer, Operation, OutBuffer};
    let mut enc = ZEnc::new(1).expect("zstd encoder");
    let mut frames: Vec<Vec<u8>> = Vec::with_capacity(packets.len());
    let t = Instant::now();
    for &(at, packet) in packets {
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(packet.len()) + 64);
        for (i, page) in packet.chunks(PAGE).enumerate() {
            if zero[at / PAGE + i] {
                continue;
            }
            let mut input = InBuffer::around(page);
            while input.pos() < page.len() {
                let pos = out.len();
                enc.run(&mut input, &mut OutBuffer::around_pos(&mut out, pos))
                    .expect("zstd compresses");
            }
        }
        loop {
            let pos = out.len();
            let left = enc
                .flush(&mut OutBuffer::around_pos(&mut out, pos))
                .expect("zstd flushes");
            if left == 0 {
                break;
            }
        }
        frames.push(out);
    }
    let encode = t.elapsed();
    let sent = frames.iter().map(Vec::len).sum();
    let mut dec = ZDec::new().expect("zstd decoder");
    let len = packets.last().map_or(0, |(at, p)| at + p.len());
    let mut replica = vec![0u8; len];
    let t = Instant::now();
    for (&(at, packet), frame) in packets.iter().zip(&frames) {
        let mut input = InBuffer::around(frame);
        for i in 0..packet.len() / PAGE {
            if zero[at / PAGE + i] {
                continue;
            }
            let page = &mut replica[at + i * PAGE..][..PAGE];
            let mut out = OutBuffer::around(page);
            while out.pos() < PAGE {
                let before = (input.pos(), out.pos());
                dec.run(&mut input, &mut out).expect("zstd decompresses");
                assert!(
                    before != (input.pos(), out.pos()),
                    "zstd: a packet ends short"
                );
            }
        }
        assert_eq!(
            input.pos(),
            frame.len(),
            "zstd: bytes after a packet's pages"
        );
    }
    let decode = t.elapsed();
    for &(at, packet) in packets {
        assert!(
            replica[at..at + packet.len()] == *packet,
            "zstd: the replica differs in the packet at {at:#x}"
        );
    }
    (sent, encode, decode)
}
