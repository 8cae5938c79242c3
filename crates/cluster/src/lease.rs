//! Node leases: the rule that keeps a resource from running on two nodes
//! without fencing hardware (`docs/safety.md` has the argument).
//!
//! Every node asks for a lease each heartbeat (its liveness ping is the
//! request). Only a leader that a quorum acknowledged within `lease_ms`
//! grants one, and for at most what is left of that acknowledgement
//! ([`grant_validity`]). The node counts the grant from when it *sent* the
//! request ([`NodeLease`]); the granting DC counts it from when it answered
//! ([`GrantBook`]), which is later. So both judge from the same evidence,
//! a grant, and a one-way link cannot make them disagree: a node that the
//! DC cannot hear gets no grant, and a node that cannot hear the DC gets no
//! answer.
//!
//! A DC that took office does not know what its predecessor granted. Every
//! such grant ended before the predecessor's quorum acknowledgement ran
//! out, which is before this DC's own DC lease starts (`took_office +
//! lease_ms`, see `node::dc_lease`). So a node is free of any lease, by this
//! DC's clock, once both its latest grant from this DC and the start of
//! this DC's lease are past, plus [`drift_margin`] ([`free_since`]).
//!
//! Pure: time is passed in; no I/O.

use crate::types::NodeId;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The largest clock-rate error between any two nodes' monotonic clocks
/// that the lease rule tolerates, in parts per million: 1 %. NTP slews a
/// clock by at most 500 ppm and crystal oscillators drift by well under
/// 100 ppm, so this is 20 times what a working machine shows; a VM whose
/// clock runs 1 % fast or slow is broken beyond what any lease survives.
pub const MAX_CLOCK_RATE_ERROR_PPM: u64 = 10_000;

/// What the DC adds to a lease before it counts a node free of it, for
/// clock-rate error. A lease of `L` is measured by two clocks (the node's
/// from its send, the DC's from its answer) and bounded by a third (the
/// acknowledgement the grant was cut to); each may run fast or slow by
/// `ρ`, so the DC waits `L · 4ρ / (1 - ρ)` longer, rounded up, plus 1 ms
/// for the truncation of grants to whole milliseconds on the wire.
pub fn drift_margin(lease: Duration) -> Duration {
    let rho = MAX_CLOCK_RATE_ERROR_PPM as u128;
    let micros = lease.as_micros() * 4 * rho / (1_000_000 - rho);
    Duration::from_micros(micros as u64 + 1) + Duration::from_millis(1)
}

/// How long a grant answered now may last: what is left of the leader's
/// quorum acknowledgement (`lease` minus the time since it sent the
/// latest append a quorum acknowledged). `None`: the leader cannot grant.
pub fn grant_validity(lease: Duration, since_quorum_ack: Option<Duration>) -> Option<Duration> {
    let left = lease.checked_sub(since_quorum_ack?)?;
    (!left.is_zero()).then_some(left)
}

/// The instant from which a node holds no lease that this DC or any
/// predecessor could have granted: its latest grant from this DC has
/// expired and this DC's own lease has started, plus the drift margin.
pub fn free_since(
    latest_grant_expiry: Option<Instant>,
    dc_lease_start: Instant,
    drift: Duration,
) -> Instant {
    latest_grant_expiry.map_or(dc_lease_start, |e| e.max(dc_lease_start)) + drift
}

/// The lease this node holds: until the latest grant, counted from the send
/// of the request it answered, runs out.
#[derive(Default)]
pub(crate) struct NodeLease {
    until: Mutex<Option<Instant>>,
}

impl NodeLease {
    /// A grant of `valid` answered a request sent at `sent`.
    pub(crate) fn granted(&self, sent: Instant, valid: Duration) {
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        let end = sent + valid;
        if until.is_none_or(|u| u < end) {
            *until = Some(end);
        }
    }

    /// When the lease runs out (it may be in the past).
    pub(crate) fn until(&self) -> Option<Instant> {
        *self.until.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What this node, as DC, granted each node: when the latest grant expires
/// by this node's clock. Kept across terms: a grant is this node's promise
/// whichever term it was made in.
#[derive(Default)]
pub(crate) struct GrantBook {
    expiry: Mutex<BTreeMap<NodeId, Instant>>,
}

impl GrantBook {
    pub(crate) fn record(&self, id: NodeId, expires: Instant) {
        let mut expiry = self.expiry.lock().unwrap_or_else(|p| p.into_inner());
        let e = expiry.entry(id).or_insert(expires);
        if *e < expires {
            *e = expires;
        }
    }

    pub(crate) fn expiry(&self, id: NodeId) -> Option<Instant> {
        self.expiry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_grant_lasts_what_is_left_of_the_quorum_acknowledgement() {
        assert_eq!(grant_validity(ms(800), Some(ms(100))), Some(ms(700)));
        assert_eq!(grant_validity(ms(800), Some(ms(0))), Some(ms(800)));
        assert_eq!(grant_validity(ms(800), Some(ms(800))), None);
        assert_eq!(grant_validity(ms(800), Some(ms(900))), None);
        assert_eq!(grant_validity(ms(800), None), None);
    }

    #[test]
    fn the_drift_margin_covers_three_clocks_at_one_percent() {
        // 800 ms · 0.04 / 0.99 = 32.3 ms, rounded up, + 1 ms.
        assert_eq!(drift_margin(ms(800)), Duration::from_micros(32_324 + 1_000));
        assert_eq!(drift_margin(ms(0)), Duration::from_micros(1 + 1_000));
    }

    #[test]
    fn a_node_is_free_after_its_latest_grant_and_the_dc_lease_start() {
        let t0 = Instant::now();
        let drift = ms(33);
        // Granted by this DC after its lease started: the grant rules.
        assert_eq!(free_since(Some(t0 + ms(900)), t0, drift), t0 + ms(933));
        // Never granted by this DC: a predecessor's grants ended before
        // this DC's lease started.
        assert_eq!(free_since(None, t0 + ms(800), drift), t0 + ms(833));
        // An old grant does not shorten the wait for the DC lease.
        assert_eq!(free_since(Some(t0), t0 + ms(800), drift), t0 + ms(833));
    }

    #[test]
    fn a_node_lease_runs_from_the_send_and_never_shrinks() {
        let lease = NodeLease::default();
        let t0 = Instant::now();
        assert_eq!(lease.until(), None);
        lease.granted(t0 + ms(100), ms(700));
        assert_eq!(lease.until(), Some(t0 + ms(800)));
        // A late answer to an older request cannot shorten it.
        lease.granted(t0, ms(500));
        assert_eq!(lease.until(), Some(t0 + ms(800)));
        lease.granted(t0 + ms(200), ms(800));
        assert_eq!(lease.until(), Some(t0 + ms(1000)));
    }

    #[test]
    fn the_grant_book_keeps_the_latest_expiry() {
        let book = GrantBook::default();
        let t0 = Instant::now();
        book.record(2, t0 + ms(800));
        book.record(2, t0 + ms(500));
        assert_eq!(book.expiry(2), Some(t0 + ms(800)));
        assert_eq!(book.expiry(3), None);
    }
}
