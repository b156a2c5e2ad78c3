//! [`Stopwatch`]: what a stage run once per frame cost the calling thread, in CPU time where the
//! system gives it (Linux), else in elapsed time.
//!
//! Elapsed time counts the time the thread was not running: preempted by the guest, by another
//! channel or by the destination on the same host, a frame's coding measured 27 ns a byte where
//! it costs 3 (QEMU multifd on 2 cores). A cost that high holds a stage shut long after the
//! preemption ended, and that time is not the stage's: the thread would have lost it doing
//! anything else. The slack the entropy stage may use is still judged in elapsed time (the
//! epoch's, against the link's): a frame preempted while being coded can end later than its
//! allowance, by time the thread would have lost whatever it did. Reading the thread's CPU
//! clock is a system call (a few hundred nanoseconds), so it times work of a frame, not of a
//! page.

use std::time::Instant;

/// A started measurement of the calling thread's time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stopwatch {
    /// The thread's CPU time at the start, in nanoseconds, when the system gives it.
    cpu_ns: Option<u64>,
    /// The start in elapsed time (used when there is no CPU clock).
    wall: Instant,
}

impl Stopwatch {
    /// Starts measuring.
    pub(super) fn start() -> Stopwatch {
        Stopwatch {
            cpu_ns: thread_cpu_ns(),
            wall: Instant::now(),
        }
    }

    /// Nanoseconds since [`start`](Self::start): of the thread's CPU time where both readings
    /// had it, else elapsed.
    pub(super) fn ns(&self) -> u64 {
        match (self.cpu_ns, thread_cpu_ns()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => self.wall.elapsed().as_nanos() as u64,
        }
    }
}

/// The calling thread's CPU time in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`).
#[cfg(all(target_os = "linux", not(miri)))]
fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call, and
    // CLOCK_THREAD_CPUTIME_ID is a clock every Linux since 2.6.12 has; the call writes only `ts`.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (r == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// No CPU clock read here: elapsed time is used.
#[cfg(not(all(target_os = "linux", not(miri))))]
fn thread_cpu_ns() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Busy work is measured; time the thread spends asleep is not its CPU time (Linux), so a
    /// measurement across a sleep stays far below the sleep.
    #[test]
    fn a_sleep_is_not_counted_where_the_thread_clock_is_read() {
        let t = Stopwatch::start();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let busy = t.ns();
        assert!(busy > 0, "busy work measured as no time");
        let t = Stopwatch::start();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let asleep = t.ns();
        if thread_cpu_ns().is_some() {
            assert!(asleep < 25_000_000, "a 50 ms sleep counted {asleep} ns");
        } else {
            assert!(
                asleep >= 50_000_000,
                "elapsed time missed the sleep: {asleep} ns"
            );
        }
    }
}
