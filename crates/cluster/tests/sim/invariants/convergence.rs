//! After faults stop, the cluster converges and serves within a bounded
//! time (the liveness half of the simulation, like openraft's turmoil
//! tests): one leader every node agrees on, holding the DC lease, every
//! node applied the same state, which includes every acknowledged
//! configuration version and a write made after the faults ended.

use tandem_cluster::{AppliedState, MembershipView, NodeId};

/// What still keeps the cluster from having converged, or `None` once it
/// has. `written` is the configuration version of the post-fault write,
/// once one succeeded.
pub fn missing(
    views: &[(NodeId, MembershipView)],
    applied: &[(NodeId, AppliedState)],
    acknowledged: u64,
    written: Option<u64>,
) -> Option<String> {
    let leaders: Vec<NodeId> = views
        .iter()
        .filter(|(id, v)| v.dc_id == Some(*id) && v.state == "Leader")
        .map(|(id, _)| *id)
        .collect();
    let [leader] = leaders[..] else {
        return Some(format!("leaders: {leaders:?}"));
    };
    if let Some((id, v)) = views.iter().find(|(_, v)| v.dc_id != Some(leader)) {
        return Some(format!("node {id} follows {:?}, not {leader}", v.dc_id));
    }
    if !views.iter().any(|(id, v)| *id == leader && v.dc_lease) {
        return Some(format!("leader {leader} holds no DC lease yet"));
    }
    let Some(version) = written else {
        return Some("no write has succeeded since the faults ended".into());
    };
    let first = &applied[0].1;
    if let Some((id, a)) = applied.iter().find(|(_, a)| a != first) {
        return Some(format!(
            "node {id} applied up to {:?}, node {} up to {:?}",
            a.last_applied, applied[0].0, first.last_applied
        ));
    }
    if first.state.config_version < version {
        return Some(format!("the write of version {version} is not applied yet"));
    }
    if first.state.config_version < acknowledged {
        return Some(format!(
            "acknowledged configuration version {acknowledged} lost: nodes hold {}",
            first.state.config_version
        ));
    }
    None
}
