//! Run-time membership changes (`tandem node add|remove`): what an
//! operator asks for ([`MemberChange`]), the pure check of it against the
//! current membership ([`plan`], state + request → [`MemberPlan`] or a
//! [`MemberError`]) and what the DC answers ([`MemberAnswer`]). The DC
//! executes a plan with openraft's `add_learner` / `change_membership`
//! (`ClusterNode::change_members`); a learner becomes a voter once it has
//! caught up (`ClusterNode`'s promoter), so a new node never counts towards
//! quorum before it holds the log.
//!
//! Must not do I/O or read the clock: liveness comes in as data.

use crate::types::{Member, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Most voters tandem runs (DESIGN: up to 7 nodes all vote; more voters
/// only slow every commit down). Non-voting members are not offered yet,
/// so an add beyond this is refused.
pub const MAX_VOTERS: usize = 7;

/// Without `--force`, a removal must leave at least this many voters: a
/// group of fewer survives no loss at all.
pub const MIN_VOTERS_UNFORCED: usize = 3;

/// A learner whose log is at most this many entries behind the DC's counts
/// as caught up and is promoted to voter.
pub const CATCH_UP_LAG: u64 = 16;

/// What the operator asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberChange {
    /// Add a node: first as a learner, a voter once caught up.
    Add { member: Member },
    /// Remove a node from the voters (and the membership). `force` allows
    /// leaving fewer than [`MIN_VOTERS_UNFORCED`] voters or a group whose
    /// heard voters make no quorum; never removing the last data node.
    Remove { name: String, force: bool },
}

/// The membership as the DC sees it, with who it hears.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    /// Every member, voters and learners.
    pub nodes: BTreeMap<NodeId, Member>,
    pub voters: BTreeSet<NodeId>,
    /// Members heard within the lease (the DC itself included).
    pub alive: BTreeSet<NodeId>,
    /// A change is half done (joint configuration).
    pub joint: bool,
}

/// What the DC does for an accepted change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberPlan {
    /// `add_learner(id, member)`; the promoter makes it a voter later.
    AddLearner { id: NodeId, member: Member },
    /// Drop `id` from the voters (if it is one) and from the membership.
    Remove { id: NodeId, voter: bool },
}

/// Why a change was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MemberError {
    #[error("no member named {0:?}")]
    UnknownNode(String),
    #[error("a member named {0:?} already exists")]
    NameInUse(String),
    #[error("address {addr} is already used by member {by}")]
    AddressInUse { addr: String, by: String },
    #[error("invalid member: {0}")]
    Invalid(String),
    #[error("the cluster already has {MAX_VOTERS} voters, the most tandem runs")]
    TooManyVoters,
    #[error("{0} is the last data node; a cluster without one runs nothing (destroy the cluster instead)")]
    LastDataNode(String),
    #[error("removing {name} would leave {left} voter(s); a cluster needs {MIN_VOTERS_UNFORCED} to survive the loss of one (use --force to accept that)")]
    TooFewVoters { name: String, left: usize },
    #[error("removing {name} would leave {alive} of {left} voters heard, fewer than the {needed} a quorum needs (use --force if those nodes are gone for good)")]
    QuorumLost {
        name: String,
        left: usize,
        alive: usize,
        needed: usize,
    },
    #[error("a membership change is still in progress; try again in a moment")]
    InProgress,
}

/// What the DC answers an accepted change with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAnswer {
    /// The node added or removed.
    pub id: NodeId,
    pub member: Member,
    /// The membership after the change (voters and learners).
    pub members: BTreeMap<NodeId, Member>,
    pub voters: BTreeSet<NodeId>,
}

/// Checks `change` against `roster`; the plan to execute or why not.
pub fn plan(roster: &Roster, change: &MemberChange) -> Result<MemberPlan, MemberError> {
    if roster.joint {
        return Err(MemberError::InProgress);
    }
    match change {
        MemberChange::Add { member } => plan_add(roster, member),
        MemberChange::Remove { name, force } => plan_remove(roster, name, *force),
    }
}

fn plan_add(roster: &Roster, member: &Member) -> Result<MemberPlan, MemberError> {
    if member.name.is_empty() || member.name.contains(char::is_whitespace) {
        return Err(MemberError::Invalid(format!(
            "{:?} is not a node name",
            member.name
        )));
    }
    for (what, addr) in [("address", &member.addr), ("API address", &member.api)] {
        if addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(MemberError::Invalid(format!(
                "{what} {addr:?} is not IP:PORT"
            )));
        }
    }
    if member.addr == member.api {
        return Err(MemberError::Invalid(format!(
            "the Raft and API addresses are both {}",
            member.addr
        )));
    }
    for m in roster.nodes.values() {
        if m.name == member.name {
            return Err(MemberError::NameInUse(member.name.clone()));
        }
        for addr in [&member.addr, &member.api] {
            if *addr == m.addr || *addr == m.api {
                return Err(MemberError::AddressInUse {
                    addr: addr.clone(),
                    by: m.name.clone(),
                });
            }
        }
    }
    if roster.nodes.len() >= MAX_VOTERS {
        return Err(MemberError::TooManyVoters);
    }
    // Ids are never reused while the member that had one is known; a
    // removed node's id can come back only once it is the highest and gone.
    let id = roster.nodes.keys().next_back().map_or(1, |last| last + 1);
    Ok(MemberPlan::AddLearner {
        id,
        member: member.clone(),
    })
}

fn plan_remove(roster: &Roster, name: &str, force: bool) -> Result<MemberPlan, MemberError> {
    let (id, member) = roster
        .nodes
        .iter()
        .find(|(_, m)| m.name == name)
        .ok_or_else(|| MemberError::UnknownNode(name.to_string()))?;
    let data_left = roster
        .nodes
        .iter()
        .filter(|(other, m)| *other != id && !m.witness)
        .count();
    if !member.witness && data_left == 0 {
        return Err(MemberError::LastDataNode(name.to_string()));
    }
    let voter = roster.voters.contains(id);
    if voter && !force {
        let left: Vec<NodeId> = roster.voters.iter().filter(|v| *v != id).copied().collect();
        if left.len() < MIN_VOTERS_UNFORCED {
            return Err(MemberError::TooFewVoters {
                name: name.to_string(),
                left: left.len(),
            });
        }
        let alive = left.iter().filter(|v| roster.alive.contains(v)).count();
        let needed = left.len() / 2 + 1;
        if alive < needed {
            return Err(MemberError::QuorumLost {
                name: name.to_string(),
                left: left.len(),
                alive,
                needed,
            });
        }
    }
    Ok(MemberPlan::Remove { id: *id, voter })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, port: u16) -> Member {
        Member {
            name: name.into(),
            addr: format!("127.0.0.1:{port}"),
            api: format!("127.0.0.1:{}", port + 100),
            witness: false,
        }
    }

    /// `n` data nodes `node1..`, all voters, all heard.
    fn roster(n: u64) -> Roster {
        let nodes: BTreeMap<NodeId, Member> = (1..=n)
            .map(|i| (i, member(&format!("node{i}"), 7000 + i as u16)))
            .collect();
        Roster {
            voters: nodes.keys().copied().collect(),
            alive: nodes.keys().copied().collect(),
            nodes,
            joint: false,
        }
    }

    fn add(m: Member) -> MemberChange {
        MemberChange::Add { member: m }
    }

    fn remove(name: &str, force: bool) -> MemberChange {
        MemberChange::Remove {
            name: name.into(),
            force,
        }
    }

    #[test]
    fn an_added_node_is_a_learner_with_the_next_id() {
        let m = member("node4", 7004);
        assert_eq!(
            plan(&roster(3), &add(m.clone())),
            Ok(MemberPlan::AddLearner { id: 4, member: m })
        );
    }

    #[test]
    fn an_add_reusing_a_name_or_an_address_is_refused() {
        let r = roster(3);
        assert_eq!(
            plan(&r, &add(member("node2", 7009))),
            Err(MemberError::NameInUse("node2".into()))
        );
        assert_eq!(
            plan(&r, &add(member("node4", 7002))),
            Err(MemberError::AddressInUse {
                addr: "127.0.0.1:7002".into(),
                by: "node2".into()
            })
        );
        let mut api_clash = member("node4", 7004);
        api_clash.api = "127.0.0.1:7001".into();
        assert!(matches!(
            plan(&r, &add(api_clash)),
            Err(MemberError::AddressInUse { .. })
        ));
        let mut bad = member("node4", 7004);
        bad.addr = "nowhere".into();
        assert!(matches!(plan(&r, &add(bad)), Err(MemberError::Invalid(_))));
        assert_eq!(
            plan(&roster(7), &add(member("node8", 7008))),
            Err(MemberError::TooManyVoters)
        );
    }

    #[test]
    fn a_removal_keeps_enough_voters_unless_forced() {
        assert_eq!(
            plan(&roster(4), &remove("node4", false)),
            Ok(MemberPlan::Remove { id: 4, voter: true })
        );
        assert_eq!(
            plan(&roster(3), &remove("node3", false)),
            Err(MemberError::TooFewVoters {
                name: "node3".into(),
                left: 2
            })
        );
        assert_eq!(
            plan(&roster(3), &remove("node3", true)),
            Ok(MemberPlan::Remove { id: 3, voter: true })
        );
        assert_eq!(
            plan(&roster(1), &remove("node1", true)),
            Err(MemberError::LastDataNode("node1".into()))
        );
        assert_eq!(
            plan(&roster(3), &remove("node9", true)),
            Err(MemberError::UnknownNode("node9".into()))
        );
    }

    #[test]
    fn a_down_node_can_be_removed_but_not_one_that_leaves_no_quorum_heard() {
        let mut r = roster(4);
        r.alive.remove(&4);
        assert_eq!(
            plan(&r, &remove("node4", false)),
            Ok(MemberPlan::Remove { id: 4, voter: true })
        );
        let mut r = roster(5);
        r.alive.remove(&4);
        r.alive.remove(&5);
        r.alive.remove(&3);
        assert!(matches!(
            plan(&r, &remove("node1", false)),
            Err(MemberError::QuorumLost { alive: 1, .. })
        ));
    }

    #[test]
    fn a_learner_can_always_be_removed_and_nothing_changes_mid_change() {
        let mut r = roster(3);
        r.nodes.insert(4, member("node4", 7004));
        assert_eq!(
            plan(&r, &remove("node4", false)),
            Ok(MemberPlan::Remove {
                id: 4,
                voter: false
            })
        );
        r.joint = true;
        assert_eq!(
            plan(&r, &remove("node4", false)),
            Err(MemberError::InProgress)
        );
    }
}
