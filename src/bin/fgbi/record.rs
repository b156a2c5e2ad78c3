//! `fgbi record`: snapshots a process's writable private memory into a trace.
//!
//! Each epoch: SIGSTOP the process, wait until it is stopped, read `/proc/PID/maps`, read every
//! writable private mapping through `/proc/PID/mem` into the image, SIGCONT. Layout ("extent
//! map", described in meta.json): each virtual address interval gets a fixed image offset the
//! first time it is seen (new mappings and the grown parts of old ones are appended, page
//! aligned), so a page keeps its place in every image; intervals not mapped in an epoch read as
//! zeros; the image is capped at --max-bytes (what does not fit is dropped and counted). At the
//! end every image is extended to the final used size, so all images have equal size.

use crate::opts::parse_bytes;
use crate::progress;
use crate::trace::PAGE;
use clap::Args;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Args, Debug)]
pub struct RecordArgs {
    /// Process to record (it is paused with SIGSTOP during each read).
    #[arg(long, required_unless_present = "command", conflicts_with = "command")]
    pub pid: Option<i32>,
    /// Time between snapshots, in milliseconds (also waited before the first one).
    #[arg(long, default_value_t = 200)]
    pub interval_ms: u64,
    /// Extra wait before the first snapshot, in milliseconds (let a workload warm up).
    #[arg(long, default_value_t = 0)]
    pub start_delay_ms: u64,
    /// Number of snapshots (epochs).
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Cap on the image size (bytes; K/M/G suffixes).
    #[arg(long, value_parser = parse_bytes, default_value = "256M")]
    pub max_bytes: usize,
    /// Trace name written to meta.json (default: the output directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Free-text description of the workload for meta.json.
    #[arg(long)]
    pub workload: Option<String>,
    /// Output trace directory (created).
    pub out_dir: PathBuf,
    /// Command to start and record (after `--`); it is killed when recording ends.
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone)]
struct Mapping {
    lo: u64,
    hi: u64,
    label: String,
}

#[derive(Debug, Clone)]
struct Extent {
    lo: u64,
    hi: u64,
    off: u64,
    first_epoch: usize,
    label: String,
}

fn writable_private(pid: i32) -> Result<Vec<Mapping>, String> {
    let path = format!("/proc/{pid}/maps");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let mut v = Vec::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(range), Some(perms)) = (it.next(), it.next()) else {
            continue;
        };
        let name = it.nth(3).unwrap_or("");
        let p = perms.as_bytes();
        if p.len() < 4 || p[0] != b'r' || p[1] != b'w' || p[3] != b'p' {
            continue;
        }
        if matches!(name, "[vvar]" | "[vsyscall]" | "[vvar_vclock]") {
            continue;
        }
        let Some((lo, hi)) = range.split_once('-') else {
            continue;
        };
        let (Ok(lo), Ok(hi)) = (u64::from_str_radix(lo, 16), u64::from_str_radix(hi, 16)) else {
            continue;
        };
        let label = if name.is_empty() {
            perms.to_string()
        } else {
            format!("{perms} {name}")
        };
        v.push(Mapping { lo, hi, label });
    }
    Ok(v)
}

/// Sends `sig` to `pid`.
fn signal(pid: i32, sig: libc::c_int) -> Result<(), String> {
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(format!(
            "kill({pid}, {sig}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Keeps the process stopped while alive; SIGCONT on drop (also on errors).
struct Stopped(i32);

impl Stopped {
    fn new(pid: i32) -> Result<Stopped, String> {
        signal(pid, libc::SIGSTOP)?;
        let g = Stopped(pid);
        let t = Instant::now();
        loop {
            match state(pid) {
                Some('T') | Some('t') => return Ok(g),
                None | Some('Z') | Some('X') => return Err(format!("process {pid} exited")),
                _ if t.elapsed() > Duration::from_secs(2) => {
                    return Err(format!("process {pid} did not stop within 2 s"))
                }
                _ => std::thread::sleep(Duration::from_micros(200)),
            }
        }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = signal(self.0, libc::SIGCONT);
    }
}

struct Recorder {
    pid: i32,
    max: u64,
    used: u64,
    /// Most bytes of writable private memory left out of one snapshot (over --max-bytes).
    dropped: u64,
    extents: Vec<Extent>,
    unreadable: u64,
}

impl Recorder {
    /// Gives the parts of `m` not covered by any extent their image offsets. Returns the bytes
    /// of `m` left out of the image (over --max-bytes).
    fn place(&mut self, m: &Mapping, epoch: usize) -> u64 {
        let mut dropped = 0;
        let mut pieces = vec![(m.lo, m.hi)];
        for e in &self.extents {
            let mut next = Vec::new();
            for (lo, hi) in pieces {
                if e.hi <= lo || e.lo >= hi {
                    next.push((lo, hi));
                    continue;
                }
                if lo < e.lo {
                    next.push((lo, e.lo));
                }
                if e.hi < hi {
                    next.push((e.hi, hi));
                }
            }
            pieces = next;
        }
        for (lo, hi) in pieces {
            let room = self.max - self.used;
            let take = (hi - lo).min(room) / PAGE as u64 * PAGE as u64;
            dropped += (hi - lo) - take;
            if take > 0 {
                self.extents.push(Extent {
                    lo,
                    hi: lo + take,
                    off: self.used,
                    first_epoch: epoch,
                    label: m.label.clone(),
                });
                self.used += take;
            }
        }
        dropped
    }

    /// One snapshot into `path`. Returns the pages written (non-zero).
    fn snapshot(&mut self, epoch: usize, path: &Path) -> Result<u64, String> {
        let mem_path = format!("/proc/{}/mem", self.pid);
        let stopped = Stopped::new(self.pid)?;
        let maps = writable_private(self.pid)?;
        let dropped: u64 = maps.iter().map(|m| self.place(m, epoch)).sum();
        self.dropped = self.dropped.max(dropped);
        let mem = File::open(&mem_path).map_err(|e| format!("{mem_path}: {e}"))?;
        let out = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let werr = |e: std::io::Error| format!("{}: {e}", path.display());
        let mut buf = vec![0u8; 1 << 20];
        let mut written = 0u64;
        for e in &self.extents {
            for m in &maps {
                let lo = e.lo.max(m.lo);
                let hi = e.hi.min(m.hi);
                let mut a = lo;
                while a < hi {
                    let n = ((hi - a) as usize).min(buf.len());
                    let chunk = &mut buf[..n];
                    if mem.read_exact_at(chunk, a).is_err() {
                        // some page of the chunk cannot be read (e.g. a mapping that changed):
                        // read page by page, zeros for the pages the kernel refuses
                        for (i, page) in chunk.chunks_mut(PAGE).enumerate() {
                            if mem.read_exact_at(page, a + (i * PAGE) as u64).is_err() {
                                page.fill(0);
                                self.unreadable += page.len() as u64;
                            }
                        }
                    }
                    for (i, page) in chunk.chunks(PAGE).enumerate() {
                        if !fgbi::zero::is_zero(page) {
                            let off = e.off + (a - e.lo) + (i * PAGE) as u64;
                            out.write_all_at(page, off).map_err(werr)?;
                            written += 1;
                        }
                    }
                    a += n as u64;
                }
            }
        }
        drop(stopped);
        out.set_len(self.used).map_err(werr)?;
        Ok(written)
    }
}

fn meta_json(a: &RecordArgs, r: &Recorder, source: &str, epochs: usize, start: f64) -> String {
    let name = a.name.clone().unwrap_or_else(|| {
        a.out_dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let extents: Vec<serde_json::Value> = r
        .extents
        .iter()
        .map(|e| {
            serde_json::json!({
                "vaddr_lo": format!("{:#x}", e.lo),
                "vaddr_hi": format!("{:#x}", e.hi),
                "image_offset": e.off,
                "first_epoch": e.first_epoch,
                "label": e.label,
            })
        })
        .collect();
    let v = serde_json::json!({
        "name": name,
        "source": source,
        "workload": a.workload.clone().unwrap_or_default(),
        "page_size": PAGE,
        "image_bytes": r.used,
        "epochs": epochs,
        "interval_ms": a.interval_ms,
        "recorder": "fgbi record (SIGSTOP, read /proc/PID/mem, SIGCONT)",
        "start_time_unix": start,
        "layout": {
            "kind": "extent-map",
            "description": "Writable private mappings (perms rw?p, excluding [vvar]/[vsyscall]) from /proc/PID/maps. Each virtual address interval gets a fixed image offset when first seen (extents appended in order of first appearance, page aligned); image bytes [off, off+(hi-lo)) hold vaddr [lo,hi). Unmapped/unused parts of the image are zero; zero pages are stored as sparse holes.",
            "used_bytes": r.used,
            "dropped_bytes": r.dropped,
            "unreadable_bytes": r.unreadable,
            "extents": extents,
        },
    });
    serde_json::to_string_pretty(&v).unwrap() + "\n"
}

/// Kills the child we started (by its own pid) when recording ends.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn run(a: &RecordArgs) -> Result<(), String> {
    if a.epochs == 0 {
        return Err("--epochs must be at least 1".into());
    }
    let max = (a.max_bytes / PAGE * PAGE) as u64;
    if max == 0 {
        return Err("--max-bytes must be at least one page".into());
    }
    let mut guard = ChildGuard(None);
    let (pid, source) = match a.pid {
        Some(p) => {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
                .map_err(|e| format!("process {p}: {e}"))?;
            let cmd: Vec<String> = cmd
                .split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            (p, format!("process pid {p}: {}", cmd.join(" ")))
        }
        None => {
            let child = Command::new(&a.command[0])
                .args(&a.command[1..])
                .spawn()
                .map_err(|e| format!("{}: {e}", a.command[0]))?;
            let pid = child.id() as i32;
            guard.0 = Some(child);
            (pid, format!("command pid {pid}: {}", a.command.join(" ")))
        }
    };
    std::fs::create_dir_all(&a.out_dir).map_err(|e| format!("{}: {e}", a.out_dir.display()))?;
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut rec = Recorder {
        pid,
        max,
        used: 0,
        dropped: 0,
        extents: Vec::new(),
        unreadable: 0,
    };
    let bar = progress::bar(a.epochs as u64, "epochs");
    let mut paths = Vec::new();
    let interval = Duration::from_millis(a.interval_ms);
    let mut next = Instant::now() + Duration::from_millis(a.start_delay_ms) + interval;
    for e in 0..a.epochs {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += interval;
        if let Some(c) = &mut guard.0 {
            if let Ok(Some(st)) = c.try_wait() {
                eprintln!("fgbi record: the command exited ({st}) after {e} epochs");
                break;
            }
        }
        let path = a.out_dir.join(format!("epoch-{e:04}.img"));
        match rec.snapshot(e, &path) {
            Ok(n) => bar.set_message(format!("{n} non-zero pages")),
            Err(err) if e > 0 && state(pid).is_none() => {
                let _ = std::fs::remove_file(&path);
                eprintln!("fgbi record: process gone after {e} epochs ({err})");
                break;
            }
            Err(err) => return Err(err),
        }
        paths.push(path);
        bar.inc(1);
    }
    bar.finish_and_clear();
    drop(guard);
    if paths.is_empty() {
        return Err("no epoch recorded".into());
    }
    if rec.used == 0 {
        return Err("the process has no readable writable private memory".into());
    }
    for p in &paths {
        let f = File::options()
            .write(true)
            .open(p)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        f.set_len(rec.used)
            .map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let meta = meta_json(a, &rec, &source, paths.len(), start);
    let mp = a.out_dir.join("meta.json");
    std::fs::write(&mp, meta).map_err(|e| format!("{}: {e}", mp.display()))?;
    eprintln!(
        "fgbi record: {} epochs of {} bytes ({} extents; at most {} bytes per snapshot left out by --max-bytes) in {}",
        paths.len(),
        rec.used,
        rec.extents.len(),
        rec.dropped,
        a.out_dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(lo: u64, hi: u64) -> Mapping {
        Mapping {
            lo,
            hi,
            label: "rw-p".into(),
        }
    }

    #[test]
    fn layout_is_stable_when_regions_grow_appear_and_overflow() {
        let mut r = Recorder {
            pid: 0,
            max: 10 * PAGE as u64,
            used: 0,
            dropped: 0,
            extents: Vec::new(),
            unreadable: 0,
        };
        let p = PAGE as u64;
        // epoch 0: a heap of 2 pages at offset 0, another region at offset 2 pages
        assert_eq!(r.place(&m(0x10000, 0x10000 + 2 * p), 0), 0);
        assert_eq!(r.place(&m(0x90000, 0x90000 + 3 * p), 0), 0);
        // epoch 1: the heap grew by 2 pages, a region appeared below it
        assert_eq!(r.place(&m(0x10000, 0x10000 + 4 * p), 1), 0);
        assert_eq!(r.place(&m(0x1000, 0x1000 + p), 1), 0);
        let ex: Vec<(u64, u64, u64, usize)> = r
            .extents
            .iter()
            .map(|e| (e.lo, e.hi, e.off, e.first_epoch))
            .collect();
        assert_eq!(
            ex,
            [
                (0x10000, 0x10000 + 2 * p, 0, 0),
                (0x90000, 0x90000 + 3 * p, 2 * p, 0),
                (0x10000 + 2 * p, 0x10000 + 4 * p, 5 * p, 1),
                (0x1000, 0x1000 + p, 7 * p, 1),
            ]
        );
        // a region larger than what is left: the first 2 pages fit, the rest is dropped
        assert_eq!(r.place(&m(0x200000, 0x200000 + 5 * p), 2), 3 * p);
        assert_eq!(r.used, 10 * p);
        // seen again: nothing new; the part that did not fit still does not
        assert_eq!(r.place(&m(0x10000, 0x10000 + 4 * p), 3), 0);
        assert_eq!(r.place(&m(0x200000, 0x200000 + 5 * p), 3), 3 * p);
        assert_eq!(r.extents.len(), 5);
    }
}
