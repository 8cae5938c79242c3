//! The live cluster as the scheduler sees it: the replicated configuration
//! plus what the membership view and the replicated status say right now
//! (who is online, standby and other node attributes, operation history,
//! fail counts). One builder for `status`, `config plan` and the
//! controller, so all three judge the same input.

use std::collections::{BTreeMap, BTreeSet};
use tandem_cluster::{MembershipView, Replicated};
use tandem_model::{Cluster, NodeState, NvPair, NvSet, ResourceHistory};

/// Parses the replicated configuration and adds the live state. `None`
/// before a configuration was ever loaded.
pub fn cluster_of(view: &MembershipView, state: &Replicated) -> Option<Result<Cluster, String>> {
    if state.config_text.is_empty() {
        return None;
    }
    Some(match tandem_model::native::parse_toml(&state.config_text) {
        Ok(mut cluster) => {
            apply_live_state(&mut cluster, view, state);
            Ok(cluster)
        }
        Err(e) => Err(e.to_string()),
    })
}

/// Marks members heard within the lease online, drops witnesses from the
/// node list (they never run resources), and adds replicated attributes,
/// transient attributes and operation history.
///
/// A member that is not heard but whose status was not yet declared down
/// (by a fence or the lease rule) is shown as expected-but-gone: unclean.
/// One with no status left is cleanly down.
pub fn apply_live_state(cluster: &mut Cluster, view: &MembershipView, state: &Replicated) {
    let witnesses: Vec<&str> = view
        .voters
        .iter()
        .filter(|v| v.witness)
        .map(|v| v.name.as_str())
        .collect();
    cluster
        .config
        .nodes
        .retain(|n| !witnesses.contains(&n.uname.as_str()));
    cluster.status.have_quorum = view.quorum;
    cluster.status.dc_uuid = view.dc.as_ref().and_then(|dc| {
        let node = cluster.config.nodes.iter().find(|n| &n.uname == dc)?;
        Some(node.id.clone())
    });
    // Watchdog self-fencing is available (Pacemaker's `have-watchdog`)
    // when every data node that reported a status runs an armed
    // watchdog: fencing-enabled then does not need a fence device.
    let mut reported = state
        .status
        .iter()
        .filter(|(name, _)| cluster.config.nodes.iter().any(|n| &n.uname == *name))
        .map(|(_, s)| crate::watchdog::reported_ms(s).is_some())
        .peekable();
    cluster.status.have_watchdog = reported.peek().is_some() && reported.all(|armed| armed);
    // The replicated status replaces whatever the document carried.
    cluster.status.nodes.clear();
    for node in &mut cluster.config.nodes {
        if let Some(attrs) = state.node_attributes.get(&node.uname) {
            node.attributes
                .push(pairs_set(format!("{}-replicated", node.uname), attrs));
        }
        // Online as the controller judges it when it settles lost nodes:
        // a node heard but without a lease, a fenced one among them, is
        // given nothing.
        let alive = view
            .voters
            .iter()
            .any(|v| v.name == node.uname && view.online(v));
        let reported = state.status.get(&node.uname);
        // Heard and leased but its rejoin not recorded yet: like a
        // Pacemaker node whose join is not complete, it is pending and
        // given nothing (its results would not be news).
        let joined = alive && joined(state, &node.uname);
        let flag = |b: bool| Some(if b { "true" } else { "false" }.to_string());
        // Down with nothing reported: fenced, past the lease, or never
        // seen. All three run nothing (the lease rule), so the node is
        // cleanly down rather than unclean.
        let cleanly_down = !alive && reported.is_none();
        let mut ns = NodeState {
            id: node.id.clone(),
            uname: Some(node.uname.clone()),
            in_ccm: flag(alive),
            crmd: Some(if alive { "online" } else { "offline" }.into()),
            join: Some(
                match (alive, joined) {
                    (true, true) => "member",
                    (true, false) => "pending",
                    (false, _) => "down",
                }
                .into(),
            ),
            expected: Some(if cleanly_down { "down" } else { "member" }.into()),
            ..Default::default()
        };
        if let Some(reported) = reported {
            if !reported.transient.is_empty() {
                let id = format!("status-{}", node.uname);
                ns.transient.push(pairs_set(id, &reported.transient));
            }
            for (id, r) in &reported.resources {
                let mut ops: Vec<_> = r.ops.values().cloned().collect();
                ops.sort_by_key(|op| op.call_id);
                ns.history.push(ResourceHistory {
                    id: id.clone(),
                    class: r.agent.class.clone(),
                    provider: r.agent.provider.clone(),
                    agent: r.agent.agent.clone(),
                    ops,
                    ..Default::default()
                });
            }
        }
        cluster.status.nodes.push(ns);
    }
}

/// Whether `node`'s daemon has a rejoin recorded (`Command::Rejoined`):
/// only then can its results be recorded, so only then is it given work
/// or probed.
pub fn joined(state: &Replicated, node: &str) -> bool {
    state.status.get(node).is_some_and(|s| s.rejoin.is_some())
}

fn pairs_set(id: String, pairs: &std::collections::BTreeMap<String, String>) -> NvSet {
    NvSet {
        id,
        pairs: pairs
            .iter()
            .map(|(k, v)| NvPair {
                name: k.clone(),
                value: Some(v.clone()),
            })
            .collect(),
        ..Default::default()
    }
}

/// Resource id → nodes where it runs now (from the recorded history, as
/// the scheduler reads it): a primitive where it is active, a group where
/// all its members are, a clone (and its primitive) wherever an instance
/// is.
pub fn running_nodes(current: &tandem_scheduler::ClusterView) -> BTreeMap<String, Vec<String>> {
    use tandem_scheduler::view::{strip_instance, PrimitiveView, ResourceView};
    let nodes_of = |p: &PrimitiveView| -> BTreeSet<String> {
        p.active.iter().map(|a| a.node.clone()).collect()
    };
    fn group_nodes(
        members: &[PrimitiveView],
        nodes_of: &dyn Fn(&PrimitiveView) -> BTreeSet<String>,
    ) -> BTreeSet<String> {
        let mut all = members.iter().map(nodes_of);
        let first = all.next().unwrap_or_default();
        all.fold(first, |acc, n| acc.intersection(&n).cloned().collect())
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &current.resources {
        match r {
            ResourceView::Primitive(p) => {
                out.entry(p.id.clone()).or_default().extend(nodes_of(p));
            }
            ResourceView::Group { id, members, .. } => {
                out.entry(id.clone())
                    .or_default()
                    .extend(group_nodes(members, &nodes_of));
            }
            ResourceView::Clone { id, instances, .. } => {
                for instance in instances {
                    let (base, nodes) = match instance {
                        ResourceView::Primitive(p) => {
                            (strip_instance(&p.id).to_string(), nodes_of(p))
                        }
                        ResourceView::Group { id, members, .. } => (
                            strip_instance(id).to_string(),
                            group_nodes(members, &nodes_of),
                        ),
                        ResourceView::Clone { .. } => continue,
                    };
                    out.entry(id.clone())
                        .or_default()
                        .extend(nodes.iter().cloned());
                    out.entry(base).or_default().extend(nodes);
                }
            }
        }
    }
    out.into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect()
}
