//! No committed change is ever lost or reordered: Raft's State Machine
//! Safety (Raft paper §5.4.3) as the configuration document sees it.
//!
//! * Log position → state: the state after applying index `i` is a pure
//!   function of the committed prefix, so every node that reports index
//!   `i` must report the same term and the same state, for the whole run.
//! * Applied positions only grow on a node, across crashes too (applying
//!   is durable, so a restart may not forget what was applied).
//! * Configuration versions: version `v` is one text forever, and a write
//!   the client saw acknowledged as version `v` is that text.

use std::collections::BTreeMap;
use tandem_cluster::sim::digest;
use tandem_cluster::{AppliedState, NodeId};

#[derive(Default)]
pub struct CommittedHistory {
    /// index → (term, digest of the state after applying it).
    by_index: BTreeMap<u64, (u64, u64)>,
    applied: BTreeMap<NodeId, u64>,
    versions: BTreeMap<u64, String>,
    /// The highest configuration version a client saw acknowledged.
    pub acknowledged: u64,
}

impl CommittedHistory {
    pub fn observe(&mut self, node: NodeId, applied: &AppliedState) -> Result<(), String> {
        let Some((term, index)) = applied.last_applied else {
            return match self.applied.get(&node) {
                Some(before) => Err(format!(
                    "node {node} forgot every applied entry (had {before})"
                )),
                None => Ok(()),
            };
        };
        let state = digest(&serde_json::to_vec(&applied.state).expect("state encodes"));
        match self.by_index.insert(index, (term, state)) {
            Some(known) if known != (term, state) => {
                return Err(format!(
                    "node {node} applied a different history at index {index}: term {term} state {state:x}, \
                     earlier seen term {} state {:x}",
                    known.0, known.1
                ))
            }
            _ => {}
        }
        let before = self.applied.insert(node, index).unwrap_or(0);
        if index < before {
            return Err(format!(
                "node {node} went back from applied index {before} to {index}"
            ));
        }
        let s = &applied.state;
        self.version_is(s.config_version, &s.config_text, node)
    }

    /// A client saw `text` committed as configuration version `version`.
    pub fn acknowledge(&mut self, version: u64, text: &str) -> Result<(), String> {
        self.acknowledged = self.acknowledged.max(version);
        self.version_is(version, text, 0)
    }

    fn version_is(&mut self, version: u64, text: &str, node: NodeId) -> Result<(), String> {
        if version == 0 {
            return Ok(());
        }
        match self.versions.get(&version) {
            Some(known) if known != text => Err(format!(
                "configuration version {version} is {text:?} (node {node}; 0 = acknowledged to a client) \
                 but was {known:?} before"
            )),
            Some(_) => Ok(()),
            None => {
                self.versions.insert(version, text.to_string());
                Ok(())
            }
        }
    }
}
