//! The replicated state every node holds: the configuration document with
//! its version, node attributes and tickets. `apply` is the only way it
//! changes, so every node that applies the same log holds the same state.

use crate::types::{Command, CommandResult};
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
}

impl Replicated {
    /// Applies one command; deterministic, never fails: a stale config
    /// write answers `Conflict` and changes nothing.
    pub fn apply(&mut self, command: &Command) -> CommandResult {
        match command {
            Command::PutConfig {
                expected_version,
                text,
            } => {
                if let Some(expected) = *expected_version {
                    if expected != self.config_version {
                        return CommandResult::Conflict {
                            expected,
                            actual: self.config_version,
                        };
                    }
                }
                self.config_version += 1;
                self.config_text.clone_from(text);
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
        }
        CommandResult::Applied {
            config_version: self.config_version,
        }
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
}
