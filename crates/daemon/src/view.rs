//! What `status` shows: the membership view, the replicated configuration
//! version and the scheduler's planned placement for the replicated
//! configuration plus live membership (online nodes, standby attributes).

use serde::Serialize;
use tandem_cluster::{MembershipView, Replicated};

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
    let cluster = crate::live::cluster_of(view, state)?.ok()?;
    Some(tandem_scheduler::schedule(&cluster, now))
}
