//! At most one leader per term: Raft's Election Safety (Raft paper §5.2).
//! Every `(term, leader)` any node ever reports, a leader about itself or
//! a follower about the leader it accepted, is remembered for the whole
//! run; a second leader for a known term breaks the rule.

use std::collections::BTreeMap;
use tandem_cluster::{MembershipView, NodeId};

#[derive(Default)]
pub struct LeaderPerTerm {
    leaders: BTreeMap<u64, NodeId>,
}

impl LeaderPerTerm {
    pub fn observe(&mut self, node: NodeId, view: &MembershipView) -> Result<(), String> {
        let Some(leader) = view.dc_id else {
            return Ok(());
        };
        match self.leaders.insert(view.term, leader) {
            Some(known) if known != leader => Err(format!(
                "two leaders in term {}: node {known} and node {leader} (reported by node {node})",
                view.term
            )),
            _ => Ok(()),
        }
    }

    /// How many terms had a leader (for the run summary).
    pub fn terms(&self) -> usize {
        self.leaders.len()
    }
}
