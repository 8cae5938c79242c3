//! Suspend and resume: the monotonic clock every lease is measured by
//! stands still while the machine sleeps, so a grant held before looks
//! fresh after, and so does a DC's last quorum acknowledgement. The
//! boot-time clock keeps counting; a gap between the two is time this
//! node did not see. Every grant was
//! sent before the suspend and lasts at most a lease, and so does an
//! acknowledgement, so for one lease after a gap this node trusts no lease
//! it holds and grants none ([`SuspendWatch`]). Every reader of a lease in
//! the cluster member asks it: the view the lease loop and the executors
//! act on, and the grant a DC answers a ping with. A paused VM, or one
//! restored from a snapshot, stops the boot-time clock too: invisible
//! here (`docs/safety.md`).

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// A gap this large between the two clocks is a suspend, not jitter.
const SUSPEND_GAP: Duration = Duration::from_millis(50);

pub(crate) struct SuspendWatch {
    inner: Mutex<Watch>,
}

struct Watch {
    /// The clocks' offset at the last look.
    last: Option<Offset>,
    /// No lease is trusted before this.
    distrust_until: Option<Instant>,
}

/// Where CLOCK_BOOTTIME − CLOCK_MONOTONIC lies, read bracketed: the
/// monotonic clock, the boot-time clock, the monotonic clock again. A
/// thread preempted between the reads widens the bounds; it never moves
/// them past the true offset, which grows only while the machine sleeps.
#[derive(Clone, Copy, Debug)]
struct Offset {
    /// boot − (the monotonic reading after): at most the true offset.
    low: Duration,
    /// boot − (the monotonic reading before): at least the true offset.
    high: Duration,
}

impl Offset {
    /// How long the machine surely slept between `self` and `later`:
    /// the least the offset can have grown.
    fn slept_until(self, later: Offset) -> Duration {
        later.low.saturating_sub(self.high)
    }
}

impl SuspendWatch {
    pub(crate) fn new() -> SuspendWatch {
        SuspendWatch {
            inner: Mutex::new(Watch {
                last: offset(),
                distrust_until: None,
            }),
        }
    }

    /// Whether leases are distrusted at `now` (a suspend ended less than
    /// `lease` ago); looks at the clocks.
    pub(crate) fn distrusts(&self, now: Instant, lease: Duration) -> bool {
        // Read under the lock: looks from many threads stay in order.
        let mut w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let read = offset();
        w.observe(read, now, lease)
    }
}

impl Watch {
    fn observe(&mut self, read: Option<Offset>, now: Instant, lease: Duration) -> bool {
        if let (Some(before), Some(after)) = (self.last, read) {
            let slept = before.slept_until(after);
            if slept >= SUSPEND_GAP {
                tracing::warn!(
                    "this machine was suspended for at least {slept:?} (the monotonic clock stood still): no lease held or granted before is trusted for the next {lease:?}"
                );
                self.distrust_until = Some(now + lease);
            }
        }
        if read.is_some() {
            self.last = read;
        }
        self.distrust_until.is_some_and(|until| now < until)
    }
}

/// The clocks' offset, read bracketed (see [`Offset`]).
fn offset() -> Option<Offset> {
    let read = |id| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec we own.
        let ok = unsafe { libc::clock_gettime(id, &mut ts) } == 0;
        ok.then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    };
    let before = read(libc::CLOCK_MONOTONIC)?;
    let boot = read(libc::CLOCK_BOOTTIME)?;
    let after = read(libc::CLOCK_MONOTONIC)?;
    Some(Offset {
        low: boot.saturating_sub(after),
        high: boot.saturating_sub(before),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(low: f64, high: f64) -> Option<Offset> {
        Some(Offset {
            low: Duration::from_secs_f64(low),
            high: Duration::from_secs_f64(high),
        })
    }

    #[test]
    fn a_gap_between_the_clocks_distrusts_leases_for_one_lease() {
        let s = Duration::from_secs_f64;
        let mut watch = Watch {
            last: at(10.0, 10.0),
            distrust_until: None,
        };
        let t0 = Instant::now();
        let lease = s(1.0);
        // The offset stayed: trusted.
        assert!(!watch.observe(at(10.0, 10.0), t0, lease));
        // The boot-time clock ran 30 s ahead: suspended.
        assert!(watch.observe(at(40.0, 40.0), t0, lease));
        assert!(watch.observe(at(40.0, 40.0), t0 + s(0.5), lease));
        // One lease later, trusted again; a few ms of jitter is no suspend.
        assert!(!watch.observe(at(40.01, 40.01), t0 + lease, lease));
    }

    #[test]
    fn a_thread_preempted_between_the_reads_is_no_suspend() {
        let s = Duration::from_secs_f64;
        let mut watch = Watch {
            last: at(10.0, 10.0),
            distrust_until: None,
        };
        let t0 = Instant::now();
        // Preempted 200 ms after the first monotonic read: the bounds
        // widen around the true offset, which did not move.
        assert!(!watch.observe(at(9.8, 10.0), t0, s(1.0)));
        // And the next look, not preempted, sees no growth beyond them.
        assert!(!watch.observe(at(10.0, 10.0), t0, s(1.0)));
    }

    #[test]
    fn the_clocks_read_on_this_machine_show_no_suspend() {
        let watch = SuspendWatch::new();
        for _ in 0..1000 {
            assert!(!watch.distrusts(Instant::now(), Duration::from_secs(1)));
        }
    }
}
