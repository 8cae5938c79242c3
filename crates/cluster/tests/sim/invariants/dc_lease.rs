//! At most one node believes it is the DC with a valid lease at any
//! instant: DESIGN.md's lease rule ("no double-active, even without fencing
//! hardware"), as `MembershipView::dc_lease` computes it on each node.

use tandem_cluster::{MembershipView, NodeId};

pub fn check(views: &[(NodeId, MembershipView)]) -> Result<(), String> {
    let holders: Vec<(NodeId, u64)> = views
        .iter()
        .filter(|(_, v)| v.dc_lease)
        .map(|(id, v)| (*id, v.term))
        .collect();
    if holders.len() > 1 {
        return Err(format!(
            "{} nodes hold the DC lease at once (node, term): {holders:?}",
            holders.len()
        ));
    }
    Ok(())
}
