//! [`Tick`]: a reading of a cheap clock, for timing the steps of one page.
//!
//! The gates time every analysed page, three or four readings a page. `Instant::now` costs
//! 24 ns here (the vDSO orders its counter read and converts it), about 9% of the adapted
//! encoder's time on redis-kv at 25 Gbit/s. Where the processor's time-stamp counter runs at a
//! constant rate in every power state (the "invariant TSC" that CPUID reports), a tick is one
//! unordered counter read (10 ns), converted to nanoseconds only when a duration is asked for,
//! with a rate calibrated once per process against `Instant`. Elsewhere (other processors,
//! Miri, a counter whose calibration fails) a tick is `Instant`'s nanoseconds since a process
//! anchor, so the durations are the same in either case; only their cost differs.
//!
//! An unordered read can move a few dozen instructions across the work it brackets; a page's
//! steps take hundreds of nanoseconds, and the gates judge averages of many pages. Readings on
//! two cores whose counters differ slightly can make a duration negative: it counts as zero.

use std::sync::OnceLock;
use std::time::Instant;

/// A point in time, on the process's [`Source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Tick(u64);

impl Tick {
    /// Reads the clock.
    #[inline]
    pub(super) fn now() -> Tick {
        let source = source();
        Tick(read(source))
    }

    /// Nanoseconds from `earlier` to `self` (zero if `earlier` is later).
    #[inline]
    pub(super) fn ns_since(self, earlier: Tick) -> u64 {
        source().ns(self.0.saturating_sub(earlier.0))
    }

    /// Nanoseconds since `self`.
    #[inline]
    pub(super) fn elapsed_ns(self) -> u64 {
        Tick::now().ns_since(self)
    }
}

/// Where ticks come from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// The time-stamp counter; a count of ticks times `ns_per_tick_q32` is 2^32 times the
    /// nanoseconds.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    Tsc { ns_per_tick_q32: u64 },
    /// `Instant`'s nanoseconds since `anchor`.
    Instant { anchor: Instant },
}

impl Source {
    #[inline]
    fn ns(&self, ticks: u64) -> u64 {
        match *self {
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            Source::Tsc { ns_per_tick_q32 } => {
                ((ticks as u128 * ns_per_tick_q32 as u128) >> 32).min(u64::MAX as u128) as u64
            }
            Source::Instant { .. } => ticks,
        }
    }
}

static SOURCE: OnceLock<Source> = OnceLock::new();

/// The process's source, chosen (and the counter calibrated) on first use. An encoder asks for
/// it when created ([`calibrate`]), so that no page's timing includes the calibration.
#[inline]
fn source() -> &'static Source {
    SOURCE.get_or_init(choose)
}

/// Chooses the process's source now, if not chosen yet (calibrating the counter takes about a
/// millisecond, once per process).
pub(super) fn calibrate() {
    source();
}

#[inline]
fn read(source: &Source) -> u64 {
    match *source {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        Source::Tsc { .. } => tsc(),
        Source::Instant { anchor } => anchor.elapsed().as_nanos() as u64,
    }
}

fn choose() -> Source {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if let Some(ns_per_tick_q32) = calibrate_tsc() {
        return Source::Tsc { ns_per_tick_q32 };
    }
    Source::Instant {
        anchor: Instant::now(),
    }
}

/// The time-stamp counter, not ordered with the instructions around it.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline]
fn tsc() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 processor and only reads the counter into registers;
    // it touches no memory. (An OS may make it fault by setting CR4.TSD, which Linux does only
    // for a process that asked with prctl(PR_SET_TSC); `choose` reads it first either way.)
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Whether CPUID reports an invariant counter: one that counts at a constant rate whatever the
/// processor's frequency and sleep states (leaf 0x8000_0007, EDX bit 8).
#[cfg(all(target_arch = "x86_64", not(miri)))]
fn invariant_tsc() -> bool {
    let max_ext = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    max_ext >= 0x8000_0007 && core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
}

/// Nanoseconds per counter tick (times 2^32), measured against `Instant` over about a
/// millisecond; `None` when the counter is not invariant or its rate is not between 100 MHz and
/// 20 GHz (a counter the hypervisor does not pass through, a reading preempted throughout).
#[cfg(all(target_arch = "x86_64", not(miri)))]
fn calibrate_tsc() -> Option<u64> {
    if !invariant_tsc() {
        return None;
    }
    let (t0, c0) = paired_reading()?;
    let (t1, c1) = loop {
        let (t, c) = paired_reading()?;
        if t.duration_since(t0).as_micros() >= 1_000 {
            break (t, c);
        }
    };
    let ns = t1.duration_since(t0).as_nanos();
    let ticks = u128::from(c1.checked_sub(c0)?);
    // 100 MHz .. 20 GHz
    if ticks < ns / 10 || ticks > ns * 20 {
        return None;
    }
    u64::try_from((ns << 32) / ticks).ok()
}

/// An `Instant` and a counter reading taken together: the counter read on both sides of the
/// `Instant`, retried until the two reads are close (not preempted between them), their mean.
#[cfg(all(target_arch = "x86_64", not(miri)))]
fn paired_reading() -> Option<(Instant, u64)> {
    let mut best: Option<(u64, Instant, u64)> = None;
    for _ in 0..16 {
        let a = tsc();
        let t = Instant::now();
        let b = tsc();
        let gap = b.wrapping_sub(a);
        if b >= a && best.is_none_or(|(g, _, _)| gap < g) {
            best = Some((gap, t, a + gap / 2));
        }
    }
    best.map(|(_, t, c)| (t, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A duration measured in ticks agrees with `Instant` over the same interval (within 10%
    /// and 0.2 ms), whichever source the process uses.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "Miri's clock advances with the instructions it interprets"
    )]
    fn tick_durations_agree_with_instant() {
        calibrate();
        for ms in [2u64, 20] {
            let (i0, k0) = (Instant::now(), Tick::now());
            std::thread::sleep(Duration::from_millis(ms));
            let (k1, i1) = (Tick::now(), Instant::now());
            let by_instant = i1.duration_since(i0).as_nanos() as f64;
            let by_ticks = k1.ns_since(k0) as f64;
            assert!(
                (by_ticks - by_instant).abs() <= by_instant * 0.1 + 200_000.0,
                "{ms} ms sleep: ticks say {by_ticks} ns, Instant {by_instant} ns ({:?})",
                source()
            );
        }
    }

    /// Readings never go back on one thread, and a duration from a later reading to an earlier
    /// one is zero, not a wrapped count.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "Miri's clock advances with the instructions it interprets"
    )]
    fn readings_are_monotonic_and_backward_durations_are_zero() {
        let first = Tick::now();
        let mut last = first;
        for _ in 0..10_000 {
            let t = Tick::now();
            assert!(t >= last, "{t:?} after {last:?}");
            last = t;
        }
        assert_eq!(first.ns_since(last), 0);
        assert!(last.ns_since(first) < 1_000_000_000);
    }

    /// The conversion of counter ticks: exact for whole multiples, saturating where the product
    /// would not fit.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    #[test]
    fn tsc_ticks_convert_by_the_calibrated_rate() {
        // a 2.5 GHz counter: 0.4 ns a tick
        let s = Source::Tsc {
            ns_per_tick_q32: (2u64 << 32) / 5,
        };
        assert_eq!(s.ns(0), 0);
        assert!((399_999..=400_000).contains(&s.ns(1_000_000)));
        let s = Source::Tsc {
            ns_per_tick_q32: u64::MAX,
        };
        assert_eq!(s.ns(u64::MAX), u64::MAX);
    }

    /// On x86_64 with an invariant counter the process uses it (where this machine has one, the
    /// cheap path is the one under test), and its rate is a plausible processor clock.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    #[test]
    fn an_invariant_counter_is_used_where_there_is_one() {
        calibrate();
        match *source() {
            Source::Tsc { ns_per_tick_q32 } => {
                assert!(invariant_tsc());
                let ghz = (1u64 << 32) as f64 / ns_per_tick_q32 as f64;
                assert!((0.1..=20.0).contains(&ghz), "{ghz} GHz");
            }
            Source::Instant { .. } => assert!(
                !invariant_tsc(),
                "an invariant counter whose calibration failed"
            ),
        }
    }
}
