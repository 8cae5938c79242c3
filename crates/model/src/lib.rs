//! tandem's typed cluster model: what the scheduler reads and the parsers build.
//!
//! The model is a faithful, typed picture of a cluster: its `Configuration`
//! (options, nodes, resources, constraints, defaults) and its `Status` (node
//! membership, resource operation history, transient node attributes,
//! tickets). It holds data as configured; interpreting it (rule evaluation,
//! meta-attribute precedence, history replay) is the scheduler's job.
//!
//! Main types: [`Cluster`], [`Configuration`], [`Resource`], [`Constraint`],
//! [`Status`], [`Score`]. Parsers live elsewhere (`tandem-cib` for Pacemaker
//! CIB XML, [`native`] for tandem's TOML).
//!
//! Must not: do I/O beyond parsing text handed to it.

pub mod calendar;
pub mod config;
pub mod constraint;

pub mod native;
pub mod resource;
pub mod rule;
pub mod score;
pub mod status;

pub use config::{Configuration, FencingLevel, NodeConfig, NodeKind, NvPair, NvSet, Tag};
pub use constraint::{
    Colocation, Constraint, Location, LocationTarget, Order, OrderKind, ResourceSet, RoleSpec,
    TicketConstraint,
};
pub use resource::{
    params_digest, Clone, Group, Operation, Primitive, Resource, ResourceKind, DIGEST_PREFIX,
};
pub use rule::{BoolOp, DateOp, DateSpec, Expression, Rule, ValueType};
pub use score::{Score, INFINITY};
pub use status::{HistoryOp, NodeState, ResourceHistory, Status, TicketState};

use serde::{Deserialize, Serialize};

/// Everything the scheduler needs to know about a cluster at one instant
/// (apart from "now", which it takes separately).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub config: Configuration,
    pub status: Status,
    /// Input features that were recognised but are not modelled; reported
    /// to the user instead of being dropped silently.
    pub unsupported: Vec<String>,
}

/// A resource role, ordered the way Pacemaker orders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    Unknown,
    Stopped,
    Started,
    Unpromoted,
    Promoted,
}

impl Role {
    /// Parses a role name, accepting the pre-2.1 names Master and Slave.
    pub fn parse(text: &str) -> Option<Role> {
        match text.to_ascii_lowercase().as_str() {
            "stopped" => Some(Role::Stopped),
            "started" => Some(Role::Started),
            "unpromoted" | "slave" => Some(Role::Unpromoted),
            "promoted" | "master" => Some(Role::Promoted),
            "unknown" => Some(Role::Unknown),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Unknown => "Unknown",
            Role::Stopped => "Stopped",
            Role::Started => "Started",
            Role::Unpromoted => "Unpromoted",
            Role::Promoted => "Promoted",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Pacemaker's boolean spelling: true/on/yes/y/1 (case-insensitive) and
/// false/off/no/n/0. `None` for anything else.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "y" | "1" => Some(true),
        "false" | "off" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Parses a Pacemaker duration ("10s", "5min", "1h", "100ms", "PT1M", bare
/// seconds) into milliseconds. `None` when it is not a duration.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Some(iso) = t.strip_prefix('P').or_else(|| t.strip_prefix('p')) {
        return parse_iso_duration_ms(iso);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let value: u64 = digits.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1000,
        "ms" | "msec" | "msecs" => 1,
        "us" | "usec" | "usecs" => return Some(value / 1000),
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000,
        _ => return None,
    };
    value.checked_mul(factor)
}

fn parse_iso_duration_ms(iso: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut in_time = false;
    let mut number = String::new();
    for c in iso.chars() {
        match c {
            'T' | 't' => in_time = true,
            '0'..='9' => number.push(c),
            _ => {
                let n: u64 = number.parse().ok()?;
                number.clear();
                let seconds = match (c.to_ascii_uppercase(), in_time) {
                    ('Y', false) => n.checked_mul(365 * 86_400)?,
                    ('M', false) => n.checked_mul(30 * 86_400)?,
                    ('W', false) => n.checked_mul(7 * 86_400)?,
                    ('D', false) => n.checked_mul(86_400)?,
                    ('H', true) => n.checked_mul(3600)?,
                    ('M', true) => n.checked_mul(60)?,
                    ('S', true) => n,
                    _ => return None,
                };
                total = total.checked_add(seconds.checked_mul(1000)?)?;
            }
        }
    }
    if !number.is_empty() {
        return None;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("10s"), Some(10_000));
        assert_eq!(parse_duration_ms("10"), Some(10_000));
        assert_eq!(parse_duration_ms("100ms"), Some(100));
        assert_eq!(parse_duration_ms("2min"), Some(120_000));
        assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
        assert_eq!(parse_duration_ms("PT1M30S"), Some(90_000));
        assert_eq!(parse_duration_ms("ten"), None);
    }

    #[test]
    fn roles_accept_old_names() {
        assert_eq!(Role::parse("Master"), Some(Role::Promoted));
        assert_eq!(Role::parse("Slave"), Some(Role::Unpromoted));
        assert!(Role::Promoted > Role::Unpromoted && Role::Unpromoted > Role::Started);
    }
}
