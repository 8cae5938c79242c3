//! The replicated state every node holds: the configuration document with
//! its version, node attributes, tickets, and the status every node
//! reports (operation history, transient attributes, fencing history).
//! `apply` is the only way it changes, so every node that applies the same
//! log holds the same state.

use crate::types::{Command, CommandResult, FenceRecord, HistoryOp, ResourceAgent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The replicated configuration and status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Replicated {
    /// Bumped by every applied configuration change; 0 = never configured.
    pub config_version: u64,
    /// The configuration document (tandem's native TOML), validated by the
    /// writer before it was proposed. Empty when never configured.
    pub config_text: String,
    /// Node name → attribute name → value (`standby`, `maintenance`, ...).
    pub node_attributes: BTreeMap<String, BTreeMap<String, String>>,
    /// Ticket → granted.
    pub tickets: BTreeMap<String, bool>,
    /// Node name → what the node reported.
    pub status: BTreeMap<String, NodeStatus>,
    /// The latest fencing attempts, oldest first, at most
    /// [`FENCE_HISTORY_LEN`].
    pub fence_history: Vec<FenceRecord>,
}

/// The transient attribute a daemon's rejoin sets to its life's id (a
/// number that differs from its predecessors'): late results of another
/// life are dropped ([`Command::Late`]).
pub const LIFE_ATTRIBUTE: &str = "#life";

/// How many fencing attempts the replicated history keeps.
pub const FENCE_HISTORY_LEN: usize = 64;

/// What one node reported: its operation history and transient attributes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Fail counts, last failures, promotion scores: forgotten when the
    /// node goes down.
    pub transient: BTreeMap<String, String>,
    /// Resource id → its agent and recorded operations.
    pub resources: BTreeMap<String, ResourceOps>,
}

/// The recorded operations of one resource on one node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceOps {
    pub agent: ResourceAgent,
    /// Operation id (`rsc_last_0`, `rsc_monitor_10000`, ...) → result.
    pub ops: BTreeMap<String, HistoryOp>,
}

impl Replicated {
    /// Applies one command; deterministic, never fails: a stale config
    /// write answers `Conflict` and changes nothing.
    pub fn apply(&mut self, command: &Command) -> CommandResult {
        self.apply_as(command, None)
    }

    /// [`Self::apply`]; `late`: inside [`Command::Late`] of that life.
    fn apply_as(&mut self, command: &Command, late: Option<u64>) -> CommandResult {
        match command {
            Command::PutConfig {
                expected_version,
                text,
            } => {
                match *expected_version {
                    Some(expected) if expected != self.config_version => {
                        // A retried write whose first try committed (its
                        // answer was lost) finds its text in place: done.
                        if *text != self.config_text {
                            return CommandResult::Conflict {
                                expected,
                                actual: self.config_version,
                            };
                        }
                    }
                    _ => {
                        self.config_version += 1;
                        self.config_text.clone_from(text);
                    }
                }
            }
            Command::SetNodeAttribute { node, name, value } => {
                let attrs = self.node_attributes.entry(node.clone()).or_default();
                match value {
                    Some(v) => {
                        attrs.insert(name.clone(), v.clone());
                    }
                    None => {
                        attrs.remove(name);
                    }
                }
                if attrs.is_empty() {
                    self.node_attributes.remove(node);
                }
            }
            Command::SetTicket { ticket, granted } => {
                self.tickets.insert(ticket.clone(), *granted);
            }
            Command::RecordOp {
                node,
                resource,
                op,
                forget,
            } => {
                if late.is_some_and(|life| !self.late_lands(node, life, &resource.id, op)) {
                    return CommandResult::Applied {
                        config_version: self.config_version,
                    };
                }
                let entry = self
                    .status
                    .entry(node.clone())
                    .or_default()
                    .resources
                    .entry(resource.id.clone())
                    .or_default();
                entry.agent.clone_from(resource);
                // A monitor's result that arrives after a newer operation
                // of the same node was recorded (a probe answered just
                // before the lease rule stopped the resource) describes
                // the past: it must not say the resource runs.
                let stale = op.operation == "monitor"
                    && op.call_id >= 0
                    && entry
                        .ops
                        .get(&op.id)
                        .is_some_and(|newer| newer.call_id > op.call_id);
                if stale {
                    return CommandResult::Applied {
                        config_version: self.config_version,
                    };
                }
                for id in forget {
                    entry.ops.remove(id);
                }
                entry.ops.insert(op.id.clone(), (**op).clone());
            }
            Command::SetTransient { node, name, value } => {
                if late.is_some_and(|life| !self.is_life(node, life)) {
                    return CommandResult::Applied {
                        config_version: self.config_version,
                    };
                }
                let status = self.status.entry(node.clone()).or_default();
                match value {
                    Some(v) => {
                        status.transient.insert(name.clone(), v.clone());
                    }
                    None => {
                        status.transient.remove(name);
                    }
                }
            }
            Command::ForgetHistory { node, resource } => {
                for (name, status) in &mut self.status {
                    if node.as_ref().is_some_and(|n| n != name) {
                        continue;
                    }
                    match resource {
                        Some(r) => {
                            status.resources.remove(r);
                        }
                        None => status.resources.clear(),
                    }
                }
            }
            Command::NodeDown { node } => {
                self.status.remove(node);
            }
            Command::RecordFence(record) => {
                if self.fence_history.len() >= FENCE_HISTORY_LEN {
                    self.fence_history.remove(0);
                }
                self.fence_history.push(record.clone());
            }
            Command::Batch(commands) => {
                let mut last = CommandResult::Applied {
                    config_version: self.config_version,
                };
                for c in commands {
                    last = self.apply_as(c, late);
                }
                return last;
            }
            Command::Late { life, command } => return self.apply_as(command, Some(*life)),
        }
        CommandResult::Applied {
            config_version: self.config_version,
        }
    }

    /// Whether `node`'s daemon is the life `life` (its rejoin set
    /// [`LIFE_ATTRIBUTE`], and the node was not recorded down since).
    fn is_life(&self, node: &str, life: u64) -> bool {
        self.status
            .get(node)
            .and_then(|s| s.transient.get(LIFE_ATTRIBUTE))
            .is_some_and(|v| *v == life.to_string())
    }

    /// Whether a late result of `life` still describes the newest thing
    /// known of `resource` on `node` (see [`Command::Late`]).
    fn late_lands(&self, node: &str, life: u64, resource: &str, op: &HistoryOp) -> bool {
        let recorded = self
            .status
            .get(node)
            .and_then(|s| s.resources.get(resource))
            .and_then(|r| r.ops.get(&op.id));
        self.is_life(node, life) && recorded.is_some_and(|r| r.call_id < op.call_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(expected: Option<u64>, text: &str) -> Command {
        Command::PutConfig {
            expected_version: expected,
            text: text.into(),
        }
    }

    #[test]
    fn a_stale_config_write_conflicts_and_changes_nothing() {
        let mut s = Replicated::default();
        assert_eq!(
            s.apply(&put(Some(0), "a")),
            CommandResult::Applied { config_version: 1 }
        );
        assert_eq!(
            s.apply(&put(Some(0), "b")),
            CommandResult::Conflict {
                expected: 0,
                actual: 1
            }
        );
        assert_eq!(s.config_text, "a");
        assert_eq!(
            s.apply(&put(Some(0), "a")),
            CommandResult::Applied { config_version: 1 },
            "a retry of the write in place succeeds and bumps nothing"
        );
    }

    fn record(node: &str, rsc: &str, id: &str) -> Command {
        Command::RecordOp {
            node: node.into(),
            resource: ResourceAgent {
                id: rsc.into(),
                ..Default::default()
            },
            op: Box::new(HistoryOp {
                id: id.into(),
                ..Default::default()
            }),
            forget: vec![format!("{rsc}_monitor_10000")],
        }
    }

    #[test]
    fn recording_replaces_by_id_and_forgets_what_it_names() {
        let mut s = Replicated::default();
        s.apply(&record("n1", "web", "web_monitor_10000"));
        s.apply(&record("n1", "web", "web_last_0"));
        let ops = &s.status["n1"].resources["web"].ops;
        assert_eq!(ops.keys().collect::<Vec<_>>(), ["web_last_0"]);
        s.apply(&Command::ForgetHistory {
            node: None,
            resource: Some("web".into()),
        });
        assert!(s.status["n1"].resources.is_empty());
    }

    #[test]
    fn a_batch_applies_in_order_and_node_down_forgets_the_node() {
        let mut s = Replicated::default();
        s.apply(&Command::Batch(vec![
            record("n1", "web", "web_last_0"),
            Command::SetTransient {
                node: "n1".into(),
                name: "fail-count-web#start_0".into(),
                value: Some("1".into()),
            },
            put(Some(0), "a"),
            put(Some(0), "b"),
        ]));
        assert_eq!(s.config_text, "a", "the second write was stale");
        assert_eq!(s.status["n1"].transient["fail-count-web#start_0"], "1");
        s.apply(&Command::NodeDown { node: "n1".into() });
        assert!(s.status.is_empty());
    }

    #[test]
    fn deleting_the_last_attribute_forgets_the_node() {
        let mut s = Replicated::default();
        let set = |v: Option<&str>| Command::SetNodeAttribute {
            node: "n1".into(),
            name: "standby".into(),
            value: v.map(String::from),
        };
        s.apply(&set(Some("on")));
        assert_eq!(s.node_attributes["n1"]["standby"], "on");
        s.apply(&set(None));
        assert!(s.node_attributes.is_empty());
    }
    fn web_op(operation: &str, call_id: i64) -> Command {
        Command::RecordOp {
            node: "n1".into(),
            resource: ResourceAgent {
                id: "web".into(),
                ..Default::default()
            },
            op: Box::new(HistoryOp {
                id: "web_last_0".into(),
                operation: operation.into(),
                call_id,
                ..Default::default()
            }),
            forget: Vec::new(),
        }
    }

    fn last_operation(s: &Replicated) -> Option<&str> {
        let ops = &s.status.get("n1")?.resources.get("web")?.ops;
        Some(ops.get("web_last_0")?.operation.as_str())
    }

    fn late(life: u64, command: Command) -> Command {
        Command::Late {
            life,
            command: Box::new(command),
        }
    }

    fn life_is(life: u64) -> Command {
        Command::SetTransient {
            node: "n1".into(),
            name: LIFE_ATTRIBUTE.into(),
            value: Some(life.to_string()),
        }
    }

    #[test]
    fn a_monitor_result_older_than_the_recorded_operation_is_dropped() {
        let mut s = Replicated::default();
        s.apply(&web_op("stop", 12));
        s.apply(&web_op("monitor", 11));
        assert_eq!(last_operation(&s), Some("stop"));
        s.apply(&web_op("monitor", 13));
        assert_eq!(last_operation(&s), Some("monitor"));
        // A pending record (call id -1) or a start always lands.
        s.apply(&web_op("start", -1));
        assert_eq!(last_operation(&s), Some("start"));
    }

    #[test]
    fn a_late_stop_lands_only_on_what_its_own_life_saw() {
        let mut s = Replicated::default();
        s.apply(&life_is(7));
        s.apply(&web_op("start", 20));
        // It does not hide a start its executor ran since.
        s.apply(&late(7, Command::Batch(vec![web_op("stop", 15)])));
        assert_eq!(last_operation(&s), Some("start"));
        s.apply(&late(7, web_op("stop", 21)));
        assert_eq!(last_operation(&s), Some("stop"));
        // Another life's (a predecessor's, whatever its call ids) is dropped.
        s.apply(&web_op("start", 30));
        s.apply(&life_is(8));
        s.apply(&late(7, web_op("stop", 31)));
        assert_eq!(last_operation(&s), Some("start"));
        // Onto a forgotten history (a cleanup, a rejoin) it would tell the
        // DC "stopped" where it should probe: dropped.
        s.apply(&Command::ForgetHistory {
            node: None,
            resource: None,
        });
        s.apply(&late(8, web_op("stop", 32)));
        assert_eq!(last_operation(&s), None);
        // After the node was recorded down, no life is current.
        s.apply(&web_op("start", -1));
        s.apply(&Command::NodeDown { node: "n1".into() });
        s.apply(&web_op("start", -1));
        s.apply(&late(8, web_op("stop", 33)));
        assert_eq!(last_operation(&s), Some("start"));
    }
}
