//! What `status` shows: the membership view, the replicated configuration
//! version and the scheduler's planned placement for the replicated
//! configuration plus live membership (online nodes, standby attributes).

use serde::Serialize;
use tandem_cluster::{MembershipView, Replicated};
use tandem_model::{Cluster, NodeState, NvPair, NvSet};

/// The status document served at `GET /status`.
#[derive(Serialize)]
pub struct StatusDoc {
    pub cluster: MembershipView,
    pub config_version: u64,
    pub node_attributes:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// The scheduler's planned placement (`null` before a config is loaded).
    pub placement: Option<serde_json::Value>,
    /// The same, as `crm_mon`-like text.
    pub placement_text: Option<String>,
}

/// Builds the status document; `now` is the epoch the scheduler runs at.
pub fn status(view: MembershipView, state: &Replicated, now: i64) -> StatusDoc {
    let planned = plan(&view, state, now);
    StatusDoc {
        config_version: state.config_version,
        node_attributes: state.node_attributes.clone(),
        placement: planned.as_ref().map(|t| t.revised.placement_json()),
        placement_text: planned.map(|t| tandem_scheduler::summary::render_status(&t.revised)),
        cluster: view,
    }
}

fn plan(
    view: &MembershipView,
    state: &Replicated,
    now: i64,
) -> Option<tandem_scheduler::Transition> {
    if state.config_text.is_empty() {
        return None;
    }
    let mut cluster = tandem_model::native::parse_toml(&state.config_text).ok()?;
    apply_live_state(&mut cluster, view, state);
    Some(tandem_scheduler::schedule(&cluster, now))
}

/// Marks members heard within the lease online, drops witnesses from the
/// node list (they never run resources) and adds replicated attributes.
fn apply_live_state(cluster: &mut Cluster, view: &MembershipView, state: &Replicated) {
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
    cluster.status.dc_uuid = view.dc.clone();
    for node in &mut cluster.config.nodes {
        if let Some(attrs) = state.node_attributes.get(&node.uname) {
            node.attributes.push(NvSet {
                id: format!("{}-replicated", node.uname),
                pairs: attrs
                    .iter()
                    .map(|(k, v)| NvPair {
                        name: k.clone(),
                        value: Some(v.clone()),
                    })
                    .collect(),
                ..Default::default()
            });
        }
        let alive = view.voters.iter().any(|v| v.name == node.uname && v.alive);
        if alive && !cluster.status.nodes.iter().any(|s| s.id == node.id) {
            cluster.status.nodes.push(NodeState {
                id: node.id.clone(),
                uname: Some(node.uname.clone()),
                in_ccm: Some("true".into()),
                crmd: Some("online".into()),
                join: Some("member".into()),
                expected: Some("member".into()),
                ..Default::default()
            });
        }
    }
}
