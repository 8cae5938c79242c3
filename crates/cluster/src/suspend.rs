//! Suspend and resume, or a virtual machine restored from a snapshot: the
//! monotonic clock every lease is measured by stands still while the
//! machine sleeps, so a grant held before looks fresh after, and so does a
//! DC's last quorum acknowledgement. The boot-time clock keeps counting; a
//! gap between the two is time this node did not see. Every grant was
//! sent before the suspend and lasts at most a lease, and so does an
//! acknowledgement, so for one lease after a gap this node trusts no lease
//! it holds and grants none ([`SuspendWatch`]). Every reader of a lease in
//! the cluster member asks it: the view the lease loop and the executors
//! act on, and the grant a DC answers a ping with.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// A gap this large between the two clocks is a suspend, not jitter.
const SUSPEND_GAP: Duration = Duration::from_millis(50);

pub(crate) struct SuspendWatch {
    inner: Mutex<Watch>,
}

struct Watch {
    /// (CLOCK_BOOTTIME, CLOCK_MONOTONIC) at the last look.
    last: Option<(Duration, Duration)>,
    /// No lease is trusted before this.
    distrust_until: Option<Instant>,
}

impl SuspendWatch {
    pub(crate) fn new() -> SuspendWatch {
        SuspendWatch {
            inner: Mutex::new(Watch {
                last: clocks(),
                distrust_until: None,
            }),
        }
    }

    /// Whether leases are distrusted at `now` (a suspend ended less than
    /// `lease` ago); looks at the clocks.
    pub(crate) fn distrusts(&self, now: Instant, lease: Duration) -> bool {
        self.observe(clocks(), now, lease)
    }

    fn observe(&self, clocks: Option<(Duration, Duration)>, now: Instant, lease: Duration) -> bool {
        let mut w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some((boot, mono)), Some((boot0, mono0))) = (clocks, w.last) {
            let gap = boot
                .saturating_sub(boot0)
                .saturating_sub(mono.saturating_sub(mono0));
            if gap >= SUSPEND_GAP {
                tracing::warn!(
                    "this machine was suspended for about {gap:?} (the monotonic clock stood still): no lease held or granted before is trusted for the next {lease:?}"
                );
                w.distrust_until = Some(now + lease);
            }
        }
        if clocks.is_some() {
            w.last = clocks;
        }
        w.distrust_until.is_some_and(|until| now < until)
    }
}

/// (CLOCK_BOOTTIME, CLOCK_MONOTONIC), read back to back.
fn clocks() -> Option<(Duration, Duration)> {
    let read = |id| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec we own.
        let ok = unsafe { libc::clock_gettime(id, &mut ts) } == 0;
        ok.then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    };
    Some((read(libc::CLOCK_BOOTTIME)?, read(libc::CLOCK_MONOTONIC)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_between_the_clocks_distrusts_leases_for_one_lease() {
        let s = |secs: f64| Duration::from_secs_f64(secs);
        let watch = SuspendWatch {
            inner: Mutex::new(Watch {
                last: Some((s(100.0), s(90.0))),
                distrust_until: None,
            }),
        };
        let t0 = Instant::now();
        let lease = s(1.0);
        // Both clocks moved alike: trusted.
        assert!(!watch.observe(Some((s(101.0), s(91.0))), t0, lease));
        // The boot-time clock moved 30 s more: suspended.
        assert!(watch.observe(Some((s(132.0), s(92.0))), t0, lease));
        assert!(watch.observe(Some((s(132.5), s(92.5))), t0 + s(0.5), lease));
        // One lease later, trusted again; a few ms of jitter is no suspend.
        assert!(!watch.observe(Some((s(133.01), s(93.0))), t0 + lease, lease));
    }
}
