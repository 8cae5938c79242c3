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
    /// The node's current rejoin ([`Command::Rejoined`]); `None` until
    /// its daemon rejoined, or after the node was recorded down.
    #[serde(default)]
    pub rejoin: Option<u64>,
    /// Operation id → the highest call id recorded for it under the
    /// current rejoin, kept when a cleanup forgets the history. At most
    /// [`NEWEST_CALLS_KEPT`] (a deleted resource's ids would stay forever):
    /// the lowest go, raising `call_floor`.
    #[serde(default)]
    pub newest_calls: BTreeMap<String, i64>,
    /// The highest call id that left `newest_calls`: a result of an
    /// operation not listed there must exceed it (dropping a result is
    /// safe: its record stays pending and the resource is probed).
    #[serde(default)]
    pub call_floor: Option<i64>,
}

/// How many operation ids a node's `newest_calls` keeps.
pub const NEWEST_CALLS_KEPT: usize = 4096;

/// The recorded operations of one resource on one node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceOps {
    pub agent: ResourceAgent,
    /// Operation id (`rsc_last_0`, `rsc_monitor_10000`, ...) → result.
    pub ops: BTreeMap<String, HistoryOp>,
}

impl NodeStatus {
    /// Drops the operation id with the lowest newest call id, raising the
    /// floor to it.
    fn forget_oldest_call(&mut self) {
        let oldest = self
            .newest_calls
            .iter()
            .min_by_key(|(_, &call)| call)
            .map(|(id, &call)| (id.clone(), call));
        if let Some((id, call)) = oldest {
            self.newest_calls.remove(&id);
            self.call_floor = self.call_floor.max(Some(call));
        }
    }
}

impl Replicated {
    /// Applies one command; deterministic, never fails: a stale config
    /// write answers `Conflict` and changes nothing.
    pub fn apply(&mut self, command: &Command) -> CommandResult {
        self.apply_inner(command)
    }

    fn apply_inner(&mut self, command: &Command) -> CommandResult {
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
                ..
            } => {
                if !self.is_news(command) {
                    return CommandResult::Stale;
                }
                let status = self.status.entry(node.clone()).or_default();
                if op.call_id >= 0 {
                    status.newest_calls.insert(op.id.clone(), op.call_id);
                    if status.newest_calls.len() > NEWEST_CALLS_KEPT {
                        status.forget_oldest_call();
                    }
                }
                let entry = status.resources.entry(resource.id.clone()).or_default();
                entry.agent.clone_from(resource);
                for id in forget {
                    entry.ops.remove(id);
                }
                entry.ops.insert(op.id.clone(), (**op).clone());
            }
            Command::SetTransient { node, name, value } => {
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
            Command::Rejoined { node, id } => {
                let status = self.status.entry(node.clone()).or_default();
                status.resources.clear();
                status.newest_calls.clear();
                status.call_floor = None;
                status.rejoin = Some(*id);
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
                if commands.first().is_some_and(|first| !self.is_news(first)) {
                    return CommandResult::Stale;
                }
                for c in commands {
                    last = self.apply_inner(c);
                }
                return last;
            }
        }
        CommandResult::Applied {
            config_version: self.config_version,
        }
    }

    /// Whether an executor's result still tells something new (see
    /// [`Command::RecordOp`]); anything else always does.
    fn is_news(&self, command: &Command) -> bool {
        let Command::RecordOp {
            node,
            resource,
            op,
            rejoin: Some(rejoin),
            ..
        } = command
        else {
            return true;
        };
        let Some(status) = self.status.get(node) else {
            return false;
        };
        if status.rejoin != Some(*rejoin) {
            return false;
        }
        // The DC's record of what it is about to send: news while the
        // node's life it was planned for lasts.
        if op.call_id < 0 {
            return true;
        }
        let newest = status
            .newest_calls
            .get(&op.id)
            .copied()
            .or(status.call_floor)
            .unwrap_or(-1);
        // An operation in flight is replaced by its own result only: a
        // stop the node ran before it was sent says nothing of it.
        let in_flight = status
            .resources
            .get(&resource.id)
            .and_then(|r| r.ops.get(&op.id))
            .filter(|recorded| recorded.call_id < 0);
        op.call_id > newest && in_flight.is_none_or(|pending| pending.operation == op.operation)
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
            rejoin: None,
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
    /// A result of `web` on n1 an executor reported under `rejoin`.
    fn web_op(operation: &str, call_id: i64, rejoin: Option<u64>) -> Command {
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
            rejoin,
        }
    }

    fn last_operation(s: &Replicated) -> Option<&str> {
        let ops = &s.status.get("n1")?.resources.get("web")?.ops;
        Some(ops.get("web_last_0")?.operation.as_str())
    }

    fn rejoined(id: u64) -> Command {
        Command::Rejoined {
            node: "n1".into(),
            id,
        }
    }

    #[test]
    fn an_executors_result_lands_only_if_it_is_news() {
        let mut s = Replicated::default();
        // Before the node's daemon rejoined, nothing it reports lands.
        s.apply(&web_op("start", 20, Some(7)));
        assert_eq!(last_operation(&s), None);
        s.apply(&rejoined(7));
        s.apply(&web_op("start", 20, Some(7)));
        assert_eq!(last_operation(&s), Some("start"));
        // A result older than one recorded (a stop retried until a DC
        // answered, a probe answered late) does not hide it.
        s.apply(&web_op("stop", 15, Some(7)));
        s.apply(&web_op("monitor", 19, Some(7)));
        assert_eq!(last_operation(&s), Some("start"));
        s.apply(&web_op("stop", 21, Some(7)));
        assert_eq!(last_operation(&s), Some("stop"));
        // The DC's own record of an operation in flight always lands, and
        // only that operation's result replaces it: a stop the node ran
        // before (its lease lapsed) says nothing of the start sent since.
        s.apply(&web_op("start", -1, None));
        s.apply(&web_op("stop", 22, Some(7)));
        assert_eq!(last_operation(&s), Some("start"));
        assert_eq!(
            s.status["n1"].resources["web"].ops["web_last_0"].call_id,
            -1
        );
        // A cleanup forgets the history, not what is newest: an older
        // result would say "stopped" where the DC must probe.
        s.apply(&web_op("start", 23, Some(7)));
        s.apply(&Command::ForgetHistory {
            node: None,
            resource: None,
        });
        s.apply(&web_op("stop", 22, Some(7)));
        assert_eq!(last_operation(&s), None);
        // A rejoin (a restarted daemon's call ids may be lower) makes
        // every earlier result old news, and later ones land.
        s.apply(&rejoined(8));
        s.apply(&web_op("stop", 24, Some(7)));
        assert_eq!(last_operation(&s), None);
        s.apply(&web_op("monitor", 3, Some(8)));
        assert_eq!(last_operation(&s), Some("monitor"));
        // Recorded down: no rejoin is current until the next.
        s.apply(&Command::NodeDown { node: "n1".into() });
        s.apply(&web_op("start", 4, Some(8)));
        assert_eq!(last_operation(&s), None);
    }

    #[test]
    fn a_pending_record_lands_only_while_the_life_it_was_planned_for_lasts() {
        let mut s = Replicated::default();
        s.apply(&rejoined(7));
        s.apply(&web_op("stop", 20, Some(7)));
        assert_eq!(
            s.apply(&web_op("start", -1, Some(7))),
            CommandResult::Applied { config_version: 0 }
        );
        assert_eq!(last_operation(&s), Some("start"));
        // Planned before the node was recorded down: it lands nowhere
        // (it would bring back a history that NodeDown ended) and the DC
        // is told, so it sends nothing.
        s.apply(&Command::NodeDown { node: "n1".into() });
        assert_eq!(s.apply(&web_op("start", -1, Some(7))), CommandResult::Stale);
        assert!(!s.status.contains_key("n1"));
        // Planned before a rejoin: the new life is probed instead.
        s.apply(&rejoined(8));
        assert_eq!(s.apply(&web_op("start", -1, Some(7))), CommandResult::Stale);
        assert_eq!(last_operation(&s), None);
        assert_eq!(
            s.apply(&web_op("start", -1, Some(8))),
            CommandResult::Applied { config_version: 0 }
        );
        assert_eq!(last_operation(&s), Some("start"));
    }

    #[test]
    fn newest_calls_are_bounded_by_a_floor_that_only_drops_results() {
        let mut s = Replicated::default();
        s.apply(&rejoined(7));
        let op = |id: usize, call_id: i64| {
            let mut command = web_op("start", call_id, Some(7));
            if let Command::RecordOp { op, .. } = &mut command {
                op.id = format!("web_{id}");
            }
            command
        };
        let recorded = |s: &Replicated, id: usize| {
            let ops = &s.status["n1"].resources["web"].ops;
            ops.get(&format!("web_{id}")).map(|o| o.call_id)
        };
        for id in 0..=NEWEST_CALLS_KEPT {
            s.apply(&op(id, 100 + id as i64));
        }
        assert_eq!(s.status["n1"].newest_calls.len(), NEWEST_CALLS_KEPT);
        assert_eq!(s.status["n1"].call_floor, Some(100), "the oldest went");
        // An operation no longer listed needs a call id above the floor.
        s.apply(&op(0, 99));
        assert_eq!(recorded(&s, 0), Some(100));
        let new = NEWEST_CALLS_KEPT + 1;
        s.apply(&op(new, 50));
        assert_eq!(recorded(&s, new), None);
        s.apply(&op(new, 5000));
        assert_eq!(recorded(&s, new), Some(5000));
        // A rejoin starts again.
        s.apply(&rejoined(8));
        assert_eq!(s.status["n1"].call_floor, None);
    }

    #[test]
    fn a_batch_that_begins_with_old_news_is_dropped_whole() {
        let mut s = Replicated::default();
        s.apply(&rejoined(7));
        s.apply(&web_op("start", 20, Some(7)));
        let fail_count = Command::SetTransient {
            node: "n1".into(),
            name: "fail-count-web#monitor_0".into(),
            value: Some("1".into()),
        };
        s.apply(&Command::Batch(vec![
            web_op("monitor", 19, Some(7)),
            fail_count.clone(),
        ]));
        assert!(s.status["n1"].transient.is_empty());
        s.apply(&Command::Batch(vec![
            web_op("monitor", 21, Some(7)),
            fail_count,
        ]));
        assert_eq!(s.status["n1"].transient.len(), 1);
    }
}
