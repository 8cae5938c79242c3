//! The status half of the model: what the cluster knows right now.
//! Raw facts only (as recorded); the scheduler interprets them.

use crate::config::NvSet;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub have_quorum: bool,
    /// Node id of the designated controller, if known.
    pub dc_uuid: Option<String>,
    /// Epoch seconds recorded as the effective "now" for this snapshot.
    pub execution_date: Option<i64>,
    /// `no-quorum-panic` on the root element.
    pub no_quorum_panic: bool,
    pub have_watchdog: bool,
    pub nodes: Vec<NodeState>,
    pub tickets: Vec<TicketState>,
}

/// One `node_state`: membership, controller state and history of a node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    pub id: String,
    pub uname: Option<String>,
    /// `in_ccm`: "true"/"false" or a member-since timestamp.
    pub in_ccm: Option<String>,
    /// `crmd`: "online"/"offline" or an online-since timestamp.
    pub crmd: Option<String>,
    pub join: Option<String>,
    pub expected: Option<String>,
    /// Raw `shutdown` attribute of the node_state (rarely used; the
    /// transient attribute of the same name is the usual signal).
    pub shutdown: Option<String>,
    pub remote_node: bool,
    /// Transient attributes (fail counts, last-failure, promotion scores,
    /// shutdown, standby...).
    pub transient: Vec<NvSet>,
    /// Operation history per resource, in document order.
    pub history: Vec<ResourceHistory>,
}

/// `lrm_resource`: the operations run for one resource id on one node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceHistory {
    pub id: String,
    pub class: Option<String>,
    pub provider: Option<String>,
    pub agent: Option<String>,
    pub container: Option<String>,
    /// Epoch seconds since which the resource is locked to this node
    /// (shutdown-lock: it stopped there because the node shut down).
    pub shutdown_lock: Option<i64>,
    pub ops: Vec<HistoryOp>,
}

/// `lrm_rsc_op`: one recorded operation result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryOp {
    pub id: String,
    pub operation: String,
    /// -1 while pending.
    pub call_id: i64,
    pub rc_code: i32,
    /// Execution status: 0 done, -1 pending, 1 cancelled, 2 timed out, ...
    pub op_status: i32,
    pub interval_ms: u64,
    pub last_rc_change: Option<i64>,
    pub last_run: Option<i64>,
    pub exec_time_ms: Option<u64>,
    /// `transition-key` (its third field is the expected rc).
    pub transition_key: Option<String>,
    pub on_node: Option<String>,
    pub migrate_source: Option<String>,
    pub migrate_target: Option<String>,
    pub exit_reason: Option<String>,
    /// The digest of the parameters it ran with ([`crate::params_digest`]),
    /// recorded by tandem; `None` when read from a Pacemaker CIB.
    pub op_digest: Option<String>,
}

impl HistoryOp {
    /// Expected return code, from the third field of the transition key.
    pub fn expected_rc(&self) -> Option<i32> {
        self.transition_key
            .as_deref()?
            .split(':')
            .nth(2)?
            .parse()
            .ok()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketState {
    pub id: String,
    pub granted: bool,
    pub standby: bool,
    pub last_granted: Option<i64>,
}
