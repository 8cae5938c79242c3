//! The openraft type configuration: what a log entry carries ([`Command`]),
//! what applying one answers ([`CommandResult`]) and what a member is
//! ([`Member`]). Nothing outside this crate sees openraft's types.

use serde::{Deserialize, Serialize};
use std::fmt;
pub use tandem_model::HistoryOp;

/// A Raft node id. Assigned by `tandem cluster setup`, never reused.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// tandem's Raft types.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = NodeId,
        Node = Member,
        AsyncRuntime = crate::runtime::TandemRuntime,
        // Raft's own rule: one leader per term. openraft's default allows
        // several leaders in a term, one after another; the term is the
        // fencing token every executor checks, so it must name one DC.
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, NodeId>,
);

/// One member of the Raft group as recorded in the replicated membership.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node's name (its certificate's CN and its name in the config).
    pub name: String,
    /// Where its Raft transport listens (`host:port`).
    pub addr: String,
    /// Where its admin API listens (`host:port`): the DC sends operations
    /// there. Replicated with the membership, so a node added at run time
    /// is reachable without any node's settings file changing.
    pub api: String,
    /// A witness votes but never becomes DC and never runs resources.
    pub witness: bool,
}

/// A change to the replicated state. Applied in log order on every node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Replace the configuration document. Applies only if the current
    /// version equals `expected_version` (optimistic concurrency); `None`
    /// applies unconditionally.
    PutConfig {
        expected_version: Option<u64>,
        text: String,
    },
    /// Set (`Some`) or delete (`None`) one node attribute, e.g. `standby`.
    SetNodeAttribute {
        node: String,
        name: String,
        value: Option<String>,
    },
    /// Grant or revoke a ticket.
    SetTicket { ticket: String, granted: bool },
    /// Record one operation result of `resource` on `node`: replaces the
    /// recorded operation with the same id and forgets the ids in `forget`
    /// (e.g. a stopped resource's recurring monitors).
    ///
    /// `rejoin`: for a result an executor reported, the id of the node's
    /// rejoin it ran under ([`Command::Rejoined`]; 0 before any). Such a
    /// result may arrive late (a node's own stops wait for a DC, a DC
    /// records what an executor answered after a timeout), so it lands
    /// only if it is news: made under the node's current rejoin (older
    /// results describe what the rejoin forgot and the DC probes again)
    /// with a call id above every one recorded for that operation since
    /// (a cleanup does not reset that). A record the DC makes itself (an
    /// operation pending, call id below 0) carries the rejoin it was
    /// planned under and lands while that is the node's current one: not
    /// after the node was recorded down or rejoined (its history was
    /// reset; the DC then sends nothing). `None`: always lands. A batch
    /// that begins with a record that does not land is dropped whole (its
    /// failure record and fail counts describe that result), and the
    /// answer is [`CommandResult::Stale`].
    RecordOp {
        node: String,
        resource: ResourceAgent,
        op: Box<HistoryOp>,
        forget: Vec<String>,
        #[serde(default)]
        rejoin: Option<u64>,
    },
    /// Set (`Some`) or delete (`None`) one transient node attribute (fail
    /// counts, last failures, promotion scores).
    SetTransient {
        node: String,
        name: String,
        value: Option<String>,
    },
    /// Forget recorded operations: of `resource` (every resource when
    /// `None`) on `node` (every node when `None`). A cleanup.
    ForgetHistory {
        node: Option<String>,
        resource: Option<String>,
    },
    /// The node is down and runs nothing (fenced, or past the lease):
    /// forget its operation history and transient attributes.
    NodeDown { node: String },
    /// Append to the fencing history.
    RecordFence(FenceRecord),
    /// Several commands applied as one, in order.
    Batch(Vec<Command>),
    /// The node's daemon holds a lease again (after it started, or after
    /// a lapse) under the new rejoin id `id`: its operation history is
    /// forgotten (the DC probes what really runs there) and results of
    /// operations run before are not news any more.
    Rejoined { node: String, id: u64 },
}

/// Which agent runs a resource, recorded with its history so a resource
/// deleted from the configuration can still be stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceAgent {
    pub id: String,
    pub class: Option<String>,
    pub provider: Option<String>,
    pub agent: Option<String>,
}

/// One fencing attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceRecord {
    pub target: String,
    /// `reboot`, `off` or `on`.
    pub action: String,
    /// The device that acted (empty when the node was declared down by
    /// the lease rule rather than fenced).
    pub device: String,
    /// The node that ran the device.
    pub executor: String,
    pub ok: bool,
    /// Epoch milliseconds when it finished.
    pub at_ms: i64,
    pub detail: String,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::PutConfig {
                expected_version, ..
            } => write!(f, "put-config(expected={expected_version:?})"),
            Command::SetNodeAttribute { node, name, value } => {
                write!(f, "node-attribute({node}: {name}={value:?})")
            }
            Command::SetTicket { ticket, granted } => write!(f, "ticket({ticket}={granted})"),
            Command::RecordOp {
                node, resource, op, ..
            } => write!(
                f,
                "op({} {}_{} on {node}: rc={})",
                resource.id, op.operation, op.interval_ms, op.rc_code
            ),
            Command::SetTransient { node, name, value } => {
                write!(f, "transient({node}: {name}={value:?})")
            }
            Command::ForgetHistory { node, resource } => {
                write!(f, "forget-history({resource:?} on {node:?})")
            }
            Command::NodeDown { node } => write!(f, "node-down({node})"),
            Command::Rejoined { node, id } => write!(f, "rejoined({node} as {id})"),
            Command::RecordFence(r) => write!(f, "fence({} {} ok={})", r.target, r.action, r.ok),
            Command::Batch(commands) => write!(f, "batch({})", commands.len()),
        }
    }
}

/// What applying a [`Command`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    /// Applied; the configuration version after it.
    Applied { config_version: u64 },
    /// Not applied: the configuration changed since the writer read it.
    Conflict { expected: u64, actual: u64 },
    /// Not applied: an operation record that is no longer news (see
    /// [`Command::RecordOp`]).
    Stale,
}

impl fmt::Display for CommandResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandResult::Applied { config_version } => write!(f, "applied@{config_version}"),
            CommandResult::Conflict { expected, actual } => {
                write!(f, "conflict(expected {expected}, actual {actual})")
            }
            CommandResult::Stale => write!(f, "stale"),
        }
    }
}
