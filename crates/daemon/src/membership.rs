//! `POST /node/add` and `POST /node/remove` (`tandem node add|remove`,
//! admin role): membership changes at run time. The cluster crate checks
//! and executes them on the DC ([`ClusterNode::change_members`]); this
//! module maps them to HTTP and, after a removal, forgets the node's
//! status (`Command::NodeDown`) so nothing is scheduled or recovered for
//! it.

use crate::api::{error, json, Reply};
use crate::settings::MemberEntry;
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use tandem_cluster::{ClusterError, ClusterNode, Command, Member, MemberChange, MemberError};

/// `POST /node/add`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AddNode {
    pub name: String,
    /// Raft transport address, `IP:PORT`.
    pub addr: String,
    /// Admin API address, `IP:PORT`.
    pub api: String,
    #[serde(default)]
    pub witness: bool,
}

/// `POST /node/remove`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RemoveNode {
    pub name: String,
    /// Allow leaving fewer than three voters, or voters that make no
    /// quorum among those heard (never the last data node).
    #[serde(default)]
    pub force: bool,
}

/// The answer to both: the node changed and the membership after it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeChanged {
    /// The node added or removed.
    pub node: MemberEntry,
    /// Every member after the change, as a settings file lists them.
    pub members: Vec<MemberEntry>,
    /// The voters' names after the change (an added node is a learner
    /// until it caught up).
    pub voters: Vec<String>,
    /// Anything that went wrong after the change itself was committed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

pub async fn add(node: &ClusterNode, add: AddNode) -> Reply {
    let change = MemberChange::Add {
        member: Member {
            name: add.name,
            addr: add.addr,
            api: add.api,
            witness: add.witness,
        },
    };
    match node.change_members(change).await {
        Ok(answer) => json(StatusCode::OK, &changed(answer, Vec::new())),
        Err(e) => refused(e),
    }
}

pub async fn remove(node: &ClusterNode, remove: RemoveNode) -> Reply {
    // Forgetting a node's status is recovering its resources: only for a
    // node whose history shows nothing active (stopped, moved away, or
    // already recorded down), never for one that may still run something.
    let state = node.replicated();
    if let Some(status) = state.status.get(&remove.name) {
        // Never configured (or unreadable): only what is recorded counts.
        let cluster = tandem_model::native::parse_toml(&state.config_text).unwrap_or_default();
        if !crate::controller::runs_nothing(status, &cluster) {
            return error(
                StatusCode::CONFLICT,
                format!(
                    "{name} may still run resources (its recorded history shows some active or pending): stop it first (`tandem node standby {name}` or a clean stop of its daemon), or, if it is dead, fence it or `tandem node confirm-down {name}`",
                    name = remove.name
                ),
            );
        }
    }
    let change = MemberChange::Remove {
        name: remove.name.clone(),
        force: remove.force,
    };
    let answer = match node.change_members(change).await {
        Ok(answer) => answer,
        Err(e) => return refused(e),
    };
    let mut warnings = Vec::new();
    if !answer.member.witness {
        let down = Command::NodeDown { node: remove.name };
        if let Err(e) = node.propose(down).await {
            warnings.push(format!(
                "removed, but its status could not be forgotten: {e}"
            ));
        }
    }
    json(StatusCode::OK, &changed(answer, warnings))
}

fn changed(answer: tandem_cluster::MemberAnswer, warnings: Vec<String>) -> NodeChanged {
    NodeChanged {
        node: MemberEntry::new(answer.id, answer.member),
        voters: answer
            .voters
            .iter()
            .filter_map(|id| answer.members.get(id).map(|m| m.name.clone()))
            .collect(),
        members: answer
            .members
            .into_iter()
            .map(|(id, m)| MemberEntry::new(id, m))
            .collect(),
        warnings,
    }
}

/// A refused or failed change: what the operator should read.
fn refused(e: ClusterError) -> Reply {
    let status = match &e {
        ClusterError::Member(MemberError::UnknownNode(_)) => StatusCode::NOT_FOUND,
        ClusterError::Member(MemberError::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        ClusterError::Member(_) => StatusCode::CONFLICT,
        // No DC, or it cannot be reached (it may have just died): the
        // client tries again while an election runs.
        ClusterError::NoLeader | ClusterError::Forward { .. } => StatusCode::SERVICE_UNAVAILABLE,
        ClusterError::NotCommitted(_) => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    };
    error(status, e.to_string())
}
