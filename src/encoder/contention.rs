//! [`RunQueue`]: whether the encoder's thread waits for a core.
//!
//! Ahead of the link the encoder spends its lead on stages that save bytes (see `Lead`): while
//! the thread has a core of its own that time delays nothing, as encoding and sending overlap.
//! Where every core is busy (the guest's vCPUs, the other end of a migration on the same host,
//! the other channels), the thread waits on the scheduler's run queue, and what it spends ahead
//! of the link is taken from the threads it waits for: the decoder, the guest, the channel that
//! holds the next packet. In QEMU's multifd on this 2-core machine a migration's time followed
//! its channels' CPU seconds, not the link (docs/performance.md, "A multifd first pass against
//! zstd-1").
//!
//! Linux counts each thread's time runnable but not running: the second field of
//! `/proc/thread-self/schedstat`, in nanoseconds (a file of three numbers, read in about a
//! microsecond). The encoder reads it when an epoch begins and when it ends, and keeps a moving
//! average of the share of the epoch's elapsed time the thread waited. Elsewhere (another
//! system, a kernel without scheduler statistics) nothing is read and the machine never counts
//! as busy.

use std::time::Instant;

/// Above this average share of its epochs' elapsed time spent waiting for a core, the thread
/// counts as on a busy machine ([`RunQueue::busy`]). A thread with a core to itself waits well
/// under 1% (a daemon waking now and then); QEMU's send channels on this 2-core machine, beside
/// the TCG vCPU and the destination's receive channels, waited 35% of their epochs' time, in
/// bursts: 42% of the packets waited, most of them for 40-60% of their time.
pub(super) const BUSY_SHARE: f64 = 0.05;

/// Weight of an epoch's share in the average (1/8): waits come in bursts of a few epochs, and
/// the state should not flip with each.
const ALPHA: f64 = 0.125;

/// Epochs shorter than this are not measured: the file's counters move in scheduler ticks and
/// slices, and a short epoch's share says little.
const MIN_EPOCH_NS: u64 = 200_000;

/// The calling thread's run-queue wait, read at each epoch's start and end. In the crate's own
/// unit tests nothing is read unless a test asks ([`RunQueue::measuring`]): they set the
/// encoder's lead by hand, and a machine busy with the other tests must not change it.
#[derive(Debug)]
pub(super) struct RunQueue {
    /// The file of the thread that opened it (`/proc/thread-self` names the opener's thread).
    #[cfg(target_os = "linux")]
    file: Option<(std::fs::File, std::thread::ThreadId)>,
    /// Whether opening or reading failed: nothing is read again.
    off: bool,
    /// The open epoch's start: elapsed time and the thread's wait so far.
    start: Option<(Instant, u64)>,
    /// Average share of an epoch's elapsed time spent waiting.
    share: f64,
}

impl Default for RunQueue {
    fn default() -> Self {
        RunQueue {
            #[cfg(target_os = "linux")]
            file: None,
            off: cfg!(test),
            start: None,
            share: 0.0,
        }
    }
}

impl RunQueue {
    /// A run queue that reads the file (in the crate's unit tests too).
    #[cfg(test)]
    pub(super) fn measuring() -> RunQueue {
        RunQueue {
            off: false,
            ..RunQueue::default()
        }
    }

    /// An epoch begins on the calling thread.
    pub(super) fn begin(&mut self) {
        self.start = self.wait_ns().map(|w| (Instant::now(), w));
    }

    /// The open epoch ends on the calling thread: its share of waiting goes into the average.
    /// An epoch begun on another thread, or too short to tell, is not measured.
    pub(super) fn end(&mut self) {
        let Some((t, w0)) = self.start.take() else {
            return;
        };
        let elapsed = t.elapsed().as_nanos() as u64;
        if elapsed < MIN_EPOCH_NS {
            return;
        }
        if let Some(w1) = self.wait_ns() {
            let now = (w1.saturating_sub(w0) as f64 / elapsed as f64).min(1.0);
            self.share += (now - self.share) * ALPHA;
        }
    }

    /// Whether the thread waits for a core a large share of its time
    /// ([`BUSY_SHARE`]): the time it spends is then other threads' too.
    pub(super) fn busy(&self) -> bool {
        self.share > BUSY_SHARE
    }

    /// Sets the average share by hand (tests).
    #[cfg(test)]
    pub(super) fn set_share(&mut self, share: f64) {
        self.share = share;
    }

    /// The calling thread's run-queue wait so far, in nanoseconds; `None` where it cannot be
    /// read, or the file was opened by another thread (it is then opened again for this one
    /// at the next epoch's start).
    #[cfg(target_os = "linux")]
    fn wait_ns(&mut self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        if self.off {
            return None;
        }
        let me = std::thread::current().id();
        if self.file.as_ref().is_some_and(|(_, t)| *t != me) {
            self.file = None;
            return None;
        }
        if self.file.is_none() {
            match std::fs::File::open("/proc/thread-self/schedstat") {
                Ok(f) => self.file = Some((f, me)),
                Err(_) => {
                    self.off = true;
                    return None;
                }
            }
        }
        let (f, _) = self.file.as_ref()?;
        let mut buf = [0u8; 96];
        let n = match f.read_at(&mut buf, 0) {
            Ok(n) => n,
            Err(_) => {
                (self.off, self.file) = (true, None);
                return None;
            }
        };
        let w = parse_wait(&buf[..n]);
        if w.is_none() {
            (self.off, self.file) = (true, None);
        }
        w
    }

    /// Nothing to read here.
    #[cfg(not(target_os = "linux"))]
    fn wait_ns(&mut self) -> Option<u64> {
        None
    }
}

/// The second field (run-queue wait, ns) of a schedstat line: `run_ns wait_ns timeslices`.
fn parse_wait(line: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(line).ok()?;
    s.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Busy work on the calling thread for `ms` milliseconds.
    fn busy_for(ms: u128) {
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < ms {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
    }

    /// The wait is the second of the three numbers; anything else is no reading.
    #[test]
    fn the_wait_is_the_second_field_of_the_line() {
        assert_eq!(parse_wait(b"36787654 4097612 24\n"), Some(4_097_612));
        assert_eq!(parse_wait(b"1 2"), Some(2));
        assert_eq!(parse_wait(b"36787654\n"), None);
        assert_eq!(parse_wait(b"a b c"), None);
        assert_eq!(parse_wait(b""), None);
    }

    /// An epoch of 5 ms of busy work is measured (where the file exists) and its share of
    /// waiting is a share: between 0 and 1 whatever else the machine runs.
    #[test]
    fn an_epoch_of_busy_work_is_measured_where_the_file_exists() {
        let mut q = RunQueue::measuring();
        q.begin();
        busy_for(5);
        q.end();
        assert!((0.0..=1.0).contains(&q.share), "share {}", q.share);
        if std::path::Path::new("/proc/thread-self/schedstat").exists() {
            assert!(!q.off, "the file exists but was not read");
        }
    }

    /// With twice as many threads spinning as the machine has cores, a thread doing busy work
    /// waits for a core a large share of its epochs: the machine counts as busy (where the file
    /// exists).
    #[test]
    fn a_thread_among_more_busy_threads_than_cores_counts_the_machine_busy() {
        if !std::path::Path::new("/proc/thread-self/schedstat").exists() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spinners: Vec<_> = (0..2 * cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
                    }
                })
            })
            .collect();
        let mut q = RunQueue::measuring();
        for _ in 0..8 {
            q.begin();
            busy_for(20);
            q.end();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for s in spinners {
            s.join().unwrap();
        }
        assert!(q.busy(), "waited share {}", q.share);
    }
}
