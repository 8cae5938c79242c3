//! The live cluster as the scheduler sees it: the replicated configuration
//! plus what the membership view and the replicated status say right now
//! (who is online, standby and other node attributes, operation history,
//! fail counts). One builder for `status`, `config plan` and the
//! controller, so all three judge the same input.

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
    // The replicated status replaces whatever the document carried.
    cluster.status.nodes.clear();
    for node in &mut cluster.config.nodes {
        if let Some(attrs) = state.node_attributes.get(&node.uname) {
            node.attributes
                .push(pairs_set(format!("{}-replicated", node.uname), attrs));
        }
        let alive = view.voters.iter().any(|v| v.name == node.uname && v.alive);
        let reported = state.status.get(&node.uname);
        if !alive && reported.is_none() {
            continue;
        }
        let flag = |b: bool| Some(if b { "true" } else { "false" }.to_string());
        let mut ns = NodeState {
            id: node.id.clone(),
            uname: Some(node.uname.clone()),
            in_ccm: flag(alive),
            crmd: Some(if alive { "online" } else { "offline" }.into()),
            join: Some(if alive { "member" } else { "down" }.into()),
            expected: Some("member".into()),
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
