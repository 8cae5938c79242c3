//! Fail counts and last failures per (resource, operation, interval): the
//! data the executor reports so the scheduler can apply migration-threshold
//! and failure-timeout, and `resource cleanup` can clear.
//!
//! Main types: [`FailCounts`], [`FailKey`], [`FailRecord`].
//! Must not: read the clock; callers pass `now_ms` (Unix milliseconds).

use crate::exec::Action;
use crate::result::{AgentStatus, Expected, OpResult, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which operation failed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FailKey {
    pub resource: String,
    pub action: Action,
    pub interval_ms: u64,
}

/// How often, how badly and when it last failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailRecord {
    /// Failures since the last cleanup (saturating).
    pub count: u32,
    pub last_failure_ms: u64,
    pub last_status: AgentStatus,
    pub last_severity: Severity,
    pub last_reason: Option<String>,
}

/// Every fail count on this node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailCounts {
    records: BTreeMap<FailKey, FailRecord>,
}

impl FailCounts {
    /// Records `result` of `key`'s operation; counts it (and returns the
    /// updated record) only if it is a failure against `expected`.
    pub fn record(
        &mut self,
        key: FailKey,
        result: &OpResult,
        expected: Expected,
        now_ms: u64,
    ) -> Option<&FailRecord> {
        let severity = result.severity_against(expected);
        if severity == Severity::None {
            return None;
        }
        let record = self.records.entry(key).or_insert(FailRecord {
            count: 0,
            last_failure_ms: now_ms,
            last_status: result.status.clone(),
            last_severity: severity,
            last_reason: None,
        });
        record.count = record.count.saturating_add(1);
        record.last_failure_ms = now_ms;
        record.last_status = result.status.clone();
        record.last_severity = severity;
        record.last_reason = result.exit_reason.clone();
        Some(record)
    }

    /// The resource's fail count: the sum over its operations, as
    /// Pacemaker's migration-threshold compares it.
    pub fn total(&self, resource: &str) -> u32 {
        self.for_resource(resource)
            .fold(0u32, |sum, (_, r)| sum.saturating_add(r.count))
    }

    /// The newest failure of the resource, Unix ms.
    pub fn last_failure_ms(&self, resource: &str) -> Option<u64> {
        self.for_resource(resource)
            .map(|(_, r)| r.last_failure_ms)
            .max()
    }

    pub fn get(&self, key: &FailKey) -> Option<&FailRecord> {
        self.records.get(key)
    }

    pub fn for_resource<'a>(
        &'a self,
        resource: &'a str,
    ) -> impl Iterator<Item = (&'a FailKey, &'a FailRecord)> + 'a {
        self.records
            .iter()
            .filter(move |(k, _)| k.resource == resource)
    }

    /// `resource cleanup`: forgets the resource's failures; returns how many
    /// records went.
    pub fn clear(&mut self, resource: &str) -> usize {
        let before = self.records.len();
        self.records.retain(|k, _| k.resource != resource);
        before - self.records.len()
    }

    /// failure-timeout: forgets records whose last failure is older than
    /// `timeout_ms` at `now_ms`.
    pub fn expire(&mut self, resource: &str, timeout_ms: u64, now_ms: u64) {
        self.records.retain(|k, r| {
            k.resource != resource || now_ms.saturating_sub(r.last_failure_ms) < timeout_ms
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: AgentStatus) -> OpResult {
        let mut r = OpResult::exec_failed("why");
        r.status = status;
        r
    }

    fn key(action: Action, interval_ms: u64) -> FailKey {
        FailKey {
            resource: "web".into(),
            action,
            interval_ms,
        }
    }

    #[test]
    fn failures_count_per_operation_and_sum_per_resource() {
        let mut f = FailCounts::default();
        assert!(f
            .record(
                key(Action::Monitor, 10_000),
                &result(AgentStatus::Ok),
                Expected::Ok,
                1
            )
            .is_none());
        f.record(
            key(Action::Monitor, 10_000),
            &result(AgentStatus::NotRunning),
            Expected::Ok,
            5,
        );
        f.record(
            key(Action::Monitor, 10_000),
            &result(AgentStatus::GenericError),
            Expected::Ok,
            9,
        );
        let r = f
            .record(
                key(Action::Start, 0),
                &result(AgentStatus::NotConfigured),
                Expected::Ok,
                12,
            )
            .unwrap();
        assert_eq!((r.count, r.last_severity), (1, Severity::Fatal));
        assert_eq!(f.get(&key(Action::Monitor, 10_000)).unwrap().count, 2);
        assert_eq!(f.total("web"), 3);
        assert_eq!(f.last_failure_ms("web"), Some(12));
        f.expire("web", 5, 15);
        assert_eq!(f.total("web"), 1);
        assert_eq!(f.clear("web"), 1);
        assert_eq!(f.total("web"), 0);
    }
}
