//! The scheduler's working state: nodes and resources in arenas indexed by
//! `NodeIdx` / `RscIdx`, filled by unpacking and updated by assignment.

use std::collections::BTreeMap;
use tandem_model::{Operation, Role, Score};

pub type NodeIdx = usize;
pub type RscIdx = usize;

#[derive(Clone, Debug, Default)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub remote: bool,
    pub online: bool,
    pub unclean: bool,
    pub pending: bool,
    pub standby: bool,
    pub standby_onfail: bool,
    pub maintenance: bool,
    pub shutdown: bool,
    /// In the cluster membership (corosync's view), whatever its state.
    pub member: bool,
    /// Base score for every resource's table; -INFINITY when the node is
    /// offline or shutting down.
    pub base: Score,
    pub attrs: BTreeMap<String, String>,
    pub utilization: BTreeMap<String, i64>,
    /// Resources assigned here during this run (the tie-breaker).
    pub assigned_count: usize,
    /// Why the node must be fenced, when it is unclean.
    pub fence_reason: Option<String>,
    /// For remote and guest nodes: the resource id that connects them (a
    /// `ocf:pacemaker:remote` primitive, or the container of a guest).
    pub connection: Option<String>,
}

impl Node {
    /// Able to receive resources (ignoring scores).
    pub fn available(&self) -> bool {
        self.online
            && !self.shutdown
            && !self.unclean
            && !self.standby
            && !self.pending
            && !self.maintenance
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Primitive,
    Group,
    Clone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requires {
    Nothing,
    Quorum,
    Fencing,
    Unfencing,
}

/// Per-node failure handling chosen from the operation history, in
/// Pacemaker's order of severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OnFail {
    Ignore,
    Demote,
    Restart,
    ResetRemote,
    RestartContainer,
    Ban,
    Block,
    Stop,
    Standby,
    Fence,
}

impl OnFail {
    pub fn parse(text: &str) -> Option<OnFail> {
        Some(match text.to_ascii_lowercase().as_str() {
            "ignore" => OnFail::Ignore,
            "demote" => OnFail::Demote,
            "restart" => OnFail::Restart,
            "restart-container" => OnFail::RestartContainer,
            "reset-remote" => OnFail::ResetRemote,
            "migrate" | "ban" => OnFail::Ban,
            "block" => OnFail::Block,
            "stop" => OnFail::Stop,
            "standby" => OnFail::Standby,
            "fence" => OnFail::Fence,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Rsc {
    /// Display id (`rsc`, or `rsc:2` for clone instances).
    pub id: String,
    /// Id used in operation history and fail-count attributes.
    pub history_id: String,
    pub variant: Variant,
    pub parent: Option<RscIdx>,
    pub children: Vec<RscIdx>,
    pub meta: BTreeMap<String, String>,
    // Agent (primitives only).
    pub class: String,
    pub provider: Option<String>,
    pub agent: String,
    pub operations: Vec<Operation>,
    /// The digest of the configured parameters (`tandem_model::params_digest`).
    pub params_digest: Option<String>,
    pub utilization: BTreeMap<String, i64>,
    // Resolved meta attributes.
    pub priority: i64,
    pub stickiness: Score,
    pub migration_threshold: i64,
    pub failure_timeout_s: i64,
    pub managed: bool,
    pub target_role: Option<Role>,
    pub critical: bool,
    pub multiple_active: String,
    pub requires: Requires,
    pub allow_migrate: bool,
    pub promotable: bool,
    pub unique: bool,
    pub clone_max: usize,
    pub clone_node_max: usize,
    pub promoted_max: usize,
    pub promoted_node_max: usize,
    pub interleave: bool,
    // Status.
    pub orphan: bool,
    pub blocked: bool,
    pub failed: bool,
    pub failure_ignored: bool,
    pub role: Role,
    pub next_role: Option<Role>,
    /// Nodes where the resource is active, with its role on each.
    pub running_on: Vec<(NodeIdx, Role)>,
    pub pending_task: Option<String>,
    /// Nodes with an operation still in flight (its stop waits for it).
    pub pending_on: Vec<NodeIdx>,
    /// Failed on these nodes in a way that needs recovery in place.
    pub failed_on: Vec<NodeIdx>,
    /// Stop was requested on this node by history (dangling migration,
    /// multiple active...).
    pub force_stop_on: Vec<NodeIdx>,
    /// Nodes with any history for this resource (probed there).
    pub seen_on: Vec<NodeIdx>,
    /// The id the history used on each node (`rsc:3` for old anonymous
    /// clone entries): promotion scores are named after it.
    pub history_names: Vec<(NodeIdx, String)>,
    /// Targets of successful migrate_to operations.
    pub migrate_to: Vec<String>,
    /// Active on several nodes with multiple-active=stop_start.
    pub multiply_active: bool,
    /// Held by a node that shut down (shutdown-lock).
    pub locked_to: Option<NodeIdx>,
    // Assignment.
    /// Score per node; `None` = no entry (asymmetric clusters).
    pub allowed: Vec<Option<Score>>,
    pub assigned: Option<NodeIdx>,
    pub assigned_done: bool,
    pub assigning: bool,
    pub updating_scores: bool,
}

impl Rsc {
    pub fn new(id: String, variant: Variant, node_count: usize) -> Rsc {
        Rsc {
            history_id: id.clone(),
            id,
            variant,
            parent: None,
            children: Vec::new(),
            meta: BTreeMap::new(),
            class: String::new(),
            provider: None,
            agent: String::new(),
            operations: Vec::new(),
            params_digest: None,
            utilization: BTreeMap::new(),
            priority: 0,
            stickiness: Score::ZERO,
            migration_threshold: tandem_model::INFINITY,
            failure_timeout_s: 0,
            managed: true,
            target_role: None,
            critical: true,
            multiple_active: "stop_start".into(),
            requires: Requires::Quorum,
            allow_migrate: false,
            promotable: false,
            unique: false,
            clone_max: 0,
            clone_node_max: 1,
            promoted_max: 1,
            promoted_node_max: 1,
            interleave: false,
            orphan: false,
            blocked: false,
            failed: false,
            failure_ignored: false,
            role: Role::Stopped,
            next_role: None,
            running_on: Vec::new(),
            pending_task: None,
            pending_on: Vec::new(),
            failed_on: Vec::new(),
            force_stop_on: Vec::new(),
            seen_on: Vec::new(),
            history_names: Vec::new(),
            migrate_to: Vec::new(),
            multiply_active: false,
            locked_to: None,
            allowed: vec![None; node_count],
            assigned: None,
            assigned_done: false,
            assigning: false,
            updating_scores: false,
        }
    }

    pub fn agent_spec(&self) -> String {
        match &self.provider {
            Some(p) => format!("{}:{}:{}", self.class, p, self.agent),
            None => format!("{}:{}", self.class, self.agent),
        }
    }

    /// The node the resource is considered to be on now (first active).
    pub fn current_node(&self) -> Option<NodeIdx> {
        self.running_on.first().map(|&(n, _)| n)
    }

    /// Adds `score` to the entry for `node`, creating it if absent.
    pub fn add_score(&mut self, node: NodeIdx, score: Score) {
        let entry = self.allowed[node].get_or_insert(Score::ZERO);
        *entry = entry.plus(score);
    }
}
