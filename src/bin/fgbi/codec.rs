//! `fgbi encode` / `fgbi decode`: a trace to a stream of frames and back.
//!
//! Stream layout (all integers little-endian), documented in docs/cli.md:
//! a 32-byte header — magic `FGBISTRM`, u32 version (1), u32 page size, u32 block size,
//! u32 reserved (0), u64 image size in bytes — then per frame (one per epoch, or an epoch's
//! parts with `--frame-bytes`) a u64 frame length followed by that many bytes of libfgbi frame.

use crate::opts::ConfigArgs;
use crate::progress;
use crate::trace::{Trace, PAGE};
use clap::Args;
use fgbi::{Config, Decoder, Encoder};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

pub const MAGIC: &[u8; 8] = b"FGBISTRM";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 32;

#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// Trace directory (epoch-NNNN.img files).
    pub trace: PathBuf,
    /// Output stream of frames.
    pub frames: PathBuf,
    #[command(flatten)]
    pub cfg: ConfigArgs,
    /// Derive the block-hash seed and stream id from this number instead of drawing them at
    /// random, so the same trace gives the same frames byte for byte (for comparing builds; not
    /// for production streams).
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(Args, Debug)]
pub struct DecodeArgs {
    /// Stream of frames written by `fgbi encode`.
    pub frames: PathBuf,
    /// Image the replica starts from (any content of the right size: the first frame is a full
    /// resync).
    pub base: PathBuf,
    /// Output image: the replica after the last frame.
    pub out: PathBuf,
}

pub fn encode(a: &EncodeArgs) -> Result<(), String> {
    let cfg = a.cfg.config()?;
    let trace = Trace::open(&a.trace)?;
    let f = File::create(&a.frames).map_err(|e| format!("{}: {e}", a.frames.display()))?;
    let mut w = BufWriter::new(f);
    let mut hdr = Vec::with_capacity(HEADER_LEN);
    hdr.extend_from_slice(MAGIC);
    hdr.extend_from_slice(&VERSION.to_le_bytes());
    hdr.extend_from_slice(&(cfg.page_size as u32).to_le_bytes());
    hdr.extend_from_slice(&(cfg.block_size as u32).to_le_bytes());
    hdr.extend_from_slice(&0u32.to_le_bytes());
    hdr.extend_from_slice(&(trace.image_bytes as u64).to_le_bytes());
    let io = |e: std::io::Error| format!("{}: {e}", a.frames.display());
    w.write_all(&hdr).map_err(io)?;
    let mut enc = match a.seed {
        Some(seed) => Encoder::with_seed(cfg, seed),
        None => Encoder::new(cfg),
    }
    .map_err(|e| e.to_string())?;
    let bar = progress::bar(trace.epochs() as u64, "epochs");
    let mut prev = None;
    let mut total = HEADER_LEN as u64;
    for e in 0..trace.epochs() {
        let cur = trace.map(e)?;
        let dirty = trace.dirty_pages(prev.as_deref(), &cur);
        let mut put = |frame: &[u8]| -> Result<u64, String> {
            w.write_all(&(frame.len() as u64).to_le_bytes())
                .map_err(io)?;
            w.write_all(frame).map_err(io)?;
            Ok(8 + frame.len() as u64)
        };
        let mut epoch_bytes = 0;
        enc.begin_epoch(e as u64).map_err(|x| x.to_string())?;
        for &p in &dirty {
            let off = p as usize * PAGE;
            enc.add_page(p * PAGE as u64, &cur[off..off + PAGE])
                .map_err(|x| x.to_string())?;
            if let Some(part) = enc.take_frame() {
                epoch_bytes += put(part)?;
            }
        }
        epoch_bytes += put(enc.end_epoch().map_err(|x| x.to_string())?)?;
        total += epoch_bytes;
        bar.set_message(format!(
            "{} dirty pages, {epoch_bytes} bytes of frames",
            dirty.len(),
        ));
        prev = Some(cur);
        bar.inc(1);
    }
    bar.finish_and_clear();
    w.flush().map_err(io)?;
    eprintln!(
        "fgbi encode: {} epochs in {} frames, {} bytes written to {}",
        trace.epochs(),
        enc.stats().frames,
        total,
        a.frames.display()
    );
    Ok(())
}

fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

pub fn decode(a: &DecodeArgs) -> Result<(), String> {
    let fio = |e: std::io::Error| format!("{}: {e}", a.frames.display());
    let f = File::open(&a.frames).map_err(fio)?;
    let stream_len = f.metadata().map_err(fio)?.len();
    let mut r = BufReader::new(f);
    let mut hdr = [0u8; HEADER_LEN];
    r.read_exact(&mut hdr).map_err(fio)?;
    let u32at = |i: usize| u32::from_le_bytes(hdr[i..i + 4].try_into().unwrap());
    if &hdr[..8] != MAGIC {
        return Err(format!("{}: not an fgbi frame stream", a.frames.display()));
    }
    if u32at(8) != VERSION {
        return Err(format!(
            "{}: stream version {} (this tool reads {VERSION})",
            a.frames.display(),
            u32at(8)
        ));
    }
    let image_bytes = u64::from_le_bytes(hdr[24..32].try_into().unwrap());
    let cfg = Config {
        page_size: u32at(12) as usize,
        block_size: u32at(16) as usize,
        ..Config::default()
    };
    let mut dec = Decoder::new(cfg).map_err(|e| format!("{}: {e}", a.frames.display()))?;
    let base_len = std::fs::metadata(&a.base)
        .map_err(|e| format!("{}: {e}", a.base.display()))?
        .len();
    if base_len != image_bytes {
        return Err(format!(
            "{}: {base_len} bytes, the stream's images are {image_bytes}",
            a.base.display()
        ));
    }
    let oio = |e: std::io::Error| format!("{}: {e}", a.out.display());
    std::fs::copy(&a.base, &a.out).map_err(oio)?;
    let out = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&a.out)
        .map_err(oio)?;
    // SAFETY: OUT_IMAGE was just created by this process and is not shared with anyone.
    let mut mem = unsafe { memmap2::MmapMut::map_mut(&out) }.map_err(oio)?;
    let bar = progress::bar(stream_len, "bytes");
    let mut frame = Vec::new();
    let mut n = 0u64;
    loop {
        let mut len = [0u8; 8];
        if !read_exact_or_eof(&mut r, &mut len).map_err(fio)? {
            break;
        }
        let len = u64::from_le_bytes(len);
        // a frame can never be much larger than a full image; refuse absurd lengths before allocating
        if len > 2 * image_bytes + (1 << 20) || len > stream_len {
            return Err(format!(
                "{}: frame {n} declares {len} bytes, more than the stream or a full image",
                a.frames.display()
            ));
        }
        frame.resize(len as usize, 0);
        r.read_exact(&mut frame)
            .map_err(|e| format!("{}: frame {n} truncated: {e}", a.frames.display()))?;
        let applied = dec
            .apply_flat(&frame, &mut mem)
            .map_err(|e| format!("{}: frame {n} rejected: {e}", a.frames.display()))?;
        let _ = applied;
        n += 1;
        bar.inc(8 + len);
    }
    bar.finish_and_clear();
    mem.flush().map_err(oio)?;
    eprintln!(
        "fgbi decode: {n} frames applied to {} ({} pages written)",
        a.out.display(),
        dec.stats().pages
    );
    Ok(())
}
