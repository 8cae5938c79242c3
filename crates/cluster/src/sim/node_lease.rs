//! A DC counts a node free of every lease only when the node itself holds
//! none: DESIGN.md's lease rule ("both sides judge from the same
//! evidence"), as production code reads it: the DC's
//! `PeerView::lease_expired_ms` (what `daemon::settle` recovers by) against
//! the node's own `MembershipView::lease_left_ms` (what `daemon::lease`
//! runs resources by). In the cluster core's simulation all nodes share
//! one clock, so the drift margin is slack there; in the whole-daemon
//! simulation each node's clock runs fast or slow within the bound, and
//! the margin is what keeps the rule (a bound exceeded is caught there).
//!
//! A DC that a newer leader superseded is left out: a majority voted in the
//! newer term, so nothing it decides from now on can be committed (the
//! daemon recovers a node only through a committed `NodeDown`), while the
//! newer leader rightly grants leases before its own DC lease starts (so
//! that nodes keep theirs through an election). "Newer" counts every
//! leader ever seen: one that stepped down again had its majority all the
//! same.

use crate::{MembershipView, NodeId};

/// Checks the views of the nodes alive now, each read by its own clock at
/// the same true instant; `newest_leader` carries the newest leader's term
/// from one check to the next.
pub fn check(views: &[(NodeId, MembershipView)], newest_leader: &mut u64) -> Result<(), String> {
    let leading_now = views.iter().filter(|(_, v)| v.state == "Leader");
    *newest_leader = leading_now
        .map(|(_, v)| v.term)
        .fold(*newest_leader, u64::max);
    let newest_leader = *newest_leader;
    for (dc, view) in views.iter().filter(|(_, v)| v.term >= newest_leader) {
        let freed = view.peers();
        for peer in freed.filter(|p| p.lease_expired_ms.is_some()) {
            let Some((_, own)) = views.iter().find(|(id, _)| *id == peer.id) else {
                continue; // crashed: holds nothing
            };
            if own.lease_left_ms > 0 {
                return Err(format!(
                    "DC {dc} counts node {} free of leases ({} ms ago) while it still holds one for {} ms",
                    peer.id,
                    peer.lease_expired_ms.unwrap_or(0),
                    own.lease_left_ms
                ));
            }
        }
    }
    Ok(())
}
