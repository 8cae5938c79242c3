//! How an operation result becomes replicated status, the way Pacemaker's
//! operation history reads: `RSC_last_0` holds the latest one-shot
//! operation (start, stop, probe, ...), `RSC_monitor_N` each recurring
//! monitor, `RSC_last_failure_0` the latest failure; a failure also bumps
//! the `fail-count-RSC#OP_INTERVAL` transient attribute and stamps
//! `last-failure-RSC#OP_INTERVAL`, which the scheduler reads for
//! migration-threshold and failure-timeout.

use serde::{Deserialize, Serialize};
use tandem_agents::{AgentStatus, Expected, OpResult};
use tandem_cluster::{Command, HistoryOp, Replicated, ResourceAgent};

/// One finished operation, as an executor reports it to whoever records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub node: String,
    pub resource: ResourceAgent,
    pub op: HistoryOp,
    /// The agent's result, for logs and `status`.
    pub result: OpResult,
    /// Whether the result is what the caller expected.
    pub ok: bool,
    /// The executor's rejoin id when it ran the operation.
    #[serde(default)]
    pub rejoin: u64,
}

/// Pacemaker's execution status of an operation (`op-status`). An
/// operation the executor could not run (refused, or its process could not
/// be made) is an error (4), not "not installed" (7): a probe read as not
/// installed counts as stopped there, which it may not be (a missing agent
/// says so by its own rc 5).
fn op_status(status: &AgentStatus) -> i32 {
    match status {
        AgentStatus::TimedOut => 2,
        AgentStatus::ExecFailed => 4,
        AgentStatus::KilledBySignal(_) => 4,
        _ => 0,
    }
}

/// The OCF code an expectation stands for (a transition key's third field).
pub fn expected_rc(expected: Expected) -> i32 {
    match expected {
        Expected::Ok => 0,
        Expected::Promoted => 8,
        Expected::NotRunning => 7,
    }
}

/// Builds the history record of `action` with `interval_ms` on `node`.
pub fn history_op(
    resource: &str,
    action: &str,
    interval_ms: u64,
    expected: Expected,
    result: &OpResult,
    call_id: i64,
    now_s: i64,
) -> HistoryOp {
    let id = if interval_ms > 0 {
        format!("{resource}_{action}_{interval_ms}")
    } else {
        format!("{resource}_last_0")
    };
    HistoryOp {
        id,
        operation: action.to_string(),
        call_id,
        rc_code: result.status.ocf_code().unwrap_or(1),
        op_status: op_status(&result.status),
        interval_ms,
        last_rc_change: Some(now_s),
        last_run: Some(now_s),
        exec_time_ms: Some(result.duration_ms),
        transition_key: Some(format!("0:0:{}:tandem", expected_rc(expected))),
        on_node: None,
        migrate_source: None,
        migrate_target: None,
        exit_reason: result.exit_reason.clone(),
        op_digest: None,
    }
}

/// Records where a migration goes (`migrate_to`, `migrate_from`): a DC
/// that takes over between the two reads from it that the resource may be
/// active on either node.
pub fn note_migration(op: &mut HistoryOp, meta: &std::collections::BTreeMap<String, String>) {
    if op.operation.starts_with("migrate_") {
        op.migrate_source = meta.get("migrate_source").cloned();
        op.migrate_target = meta.get("migrate_target").cloned();
    }
}

/// Whether `result` is what `expected` asked for. A probe may find the
/// resource running (or promoted): that is news, not a failure.
pub fn as_expected(result: &OpResult, expected: Expected, probe: bool) -> bool {
    let code = result.status.ocf_code();
    if probe {
        return matches!(code, Some(0 | 7 | 8));
    }
    code == Some(expected_rc(expected))
}

/// Whether the result of `action` goes into the resource's history.
/// Notifications do not, as in Pacemaker: they say nothing about where the
/// resource runs, and their record would replace the start or promote that
/// `_last_0` must keep (the scheduler would then read the instance's role
/// from a notify).
pub fn is_recorded(action: &str) -> bool {
    action != "notify"
}

/// The commands that record `outcome`, as one batch: the operation, and on
/// failure the failure record and fail count (read from `state` and
/// bumped; a failed stop, and a failed start when `start_is_fatal`, set it
/// to INFINITY as Pacemaker's controller does, so the resource is not
/// tried on that node again).
pub fn record(outcome: &Outcome, state: &Replicated, now_s: i64, start_is_fatal: bool) -> Command {
    let mut op = outcome.op.clone();
    op.on_node = Some(outcome.node.clone());
    let rsc = &outcome.resource.id;
    // A stop ends the recurring monitors; a monitor result never replaces
    // the latest one-shot operation.
    let forget = if op.operation == "stop" && op.rc_code == 0 {
        state
            .status
            .get(&outcome.node)
            .and_then(|s| s.resources.get(rsc))
            .map(|r| {
                r.ops
                    .values()
                    .filter(|o| o.interval_ms > 0 && !o.id.ends_with("_last_failure_0"))
                    .map(|o| o.id.clone())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut commands = vec![Command::RecordOp {
        node: outcome.node.clone(),
        resource: outcome.resource.clone(),
        op: Box::new(op.clone()),
        forget,
        rejoin: Some(outcome.rejoin),
    }];
    if !outcome.ok {
        let mut failure = op.clone();
        failure.id = format!("{rsc}_last_failure_0");
        commands.push(Command::RecordOp {
            node: outcome.node.clone(),
            resource: outcome.resource.clone(),
            op: Box::new(failure),
            forget: Vec::new(),
            rejoin: Some(outcome.rejoin),
        });
        let key = format!("{rsc}#{}_{}", op.operation, op.interval_ms);
        let count = state
            .status
            .get(&outcome.node)
            .and_then(|s| s.transient.get(&format!("fail-count-{key}")))
            .map_or(0, |v| parse_count(v));
        let fatal = op.operation == "stop" || (op.operation == "start" && start_is_fatal);
        let count = if fatal || count + 1 >= INFINITY {
            "INFINITY".to_string()
        } else {
            (count + 1).to_string()
        };
        for (name, value) in [
            (format!("fail-count-{key}"), count),
            (format!("last-failure-{key}"), now_s.to_string()),
        ] {
            commands.push(Command::SetTransient {
                node: outcome.node.clone(),
                name,
                value: Some(value),
            });
        }
    }
    Command::Batch(commands)
}

/// Records that `request` is about to be sent to `node` (Pacemaker's
/// `record-pending`): the operation as pending (op-status -1), replaced by
/// its result once that comes back. A DC that took over from one that
/// dispatched it and never recorded the result sees it as possibly active
/// there and probes, instead of starting the resource a second time. It
/// carries `rejoin`, the node's life the operation was planned for: once
/// that node is recorded down or rejoins, it no longer lands.
pub fn pending(
    request: &crate::executor::ExecRequest,
    node: &str,
    rejoin: u64,
    now_s: i64,
) -> Command {
    let mut op = history_op(
        &request.resource.id,
        &request.action,
        request.interval_ms,
        request.expected,
        &OpResult::exec_failed(String::new()),
        -1,
        now_s,
    );
    note_migration(&mut op, &request.meta);
    op.op_digest = Some(tandem_model::params_digest(&request.params));
    op.op_status = PENDING;
    op.rc_code = PENDING_RC;
    op.exec_time_ms = None;
    op.exit_reason = None;
    op.on_node = Some(node.to_string());
    Command::RecordOp {
        node: node.to_string(),
        resource: request.resource.clone(),
        op: Box::new(op),
        forget: Vec::new(),
        rejoin: Some(rejoin),
    }
}

/// The op-status of an operation in flight.
pub const PENDING: i32 = -1;
/// The rc-code Pacemaker records for an operation in flight.
const PENDING_RC: i32 = 193;

/// Pacemaker's INFINITY, the ceiling of every score and fail count.
const INFINITY: i64 = 1_000_000;

fn parse_count(value: &str) -> i64 {
    match value.trim_start_matches('+') {
        "INFINITY" => INFINITY,
        n => n.parse::<i64>().unwrap_or(0).min(INFINITY),
    }
}

/// The `start-failure-is-fatal` cluster option (default true).
pub fn start_failure_is_fatal(cluster: &tandem_model::Cluster) -> bool {
    !crate::opspec::is_false(cluster.config.option("start-failure-is-fatal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next_call_id() -> i64 {
        static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// A state in which n1's executor rejoined as the outcomes below say.
    fn rejoined() -> Replicated {
        let mut state = Replicated::default();
        state.apply(&Command::Rejoined {
            node: "n1".into(),
            id: 3,
        });
        state
    }

    fn outcome(action: &str, interval_ms: u64, code: i32, ok: bool) -> Outcome {
        let result = OpResult {
            status: AgentStatus::from_ocf_code(code),
            exit_reason: None,
            stdout: String::new(),
            stderr: String::new(),
            dropped_output_bytes: 0,
            duration_ms: 5,
        };
        Outcome {
            node: "n1".into(),
            resource: ResourceAgent {
                id: "web".into(),
                ..Default::default()
            },
            op: history_op(
                "web",
                action,
                interval_ms,
                Expected::Ok,
                &result,
                next_call_id(),
                100,
            ),
            result,
            ok,
            rejoin: 3,
        }
    }

    #[test]
    fn failures_are_counted_and_stops_forget_monitors() {
        let mut state = rejoined();
        state.apply(&record(
            &outcome("monitor", 10_000, 7, false),
            &state,
            100,
            true,
        ));
        state.apply(&record(
            &outcome("monitor", 10_000, 7, false),
            &state,
            101,
            true,
        ));
        let n1 = &state.status["n1"];
        assert_eq!(n1.transient["fail-count-web#monitor_10000"], "2");
        assert_eq!(n1.transient["last-failure-web#monitor_10000"], "101");
        let ids: Vec<&String> = n1.resources["web"].ops.keys().collect();
        assert_eq!(ids, ["web_last_failure_0", "web_monitor_10000"]);
        state.apply(&record(&outcome("stop", 0, 0, true), &state, 102, true));
        let ids: Vec<&String> = state.status["n1"].resources["web"].ops.keys().collect();
        assert_eq!(ids, ["web_last_0", "web_last_failure_0"]);
    }

    #[test]
    fn a_failed_start_or_stop_bans_the_node_with_an_infinite_fail_count() {
        let mut state = rejoined();
        state.apply(&record(&outcome("start", 0, 1, false), &state, 100, true));
        assert_eq!(
            state.status["n1"].transient["fail-count-web#start_0"],
            "INFINITY"
        );
        state.apply(&record(&outcome("stop", 0, 1, false), &state, 101, false));
        assert_eq!(
            state.status["n1"].transient["fail-count-web#stop_0"],
            "INFINITY"
        );
        // start-failure-is-fatal=false: counted like any other failure.
        let mut state = rejoined();
        state.apply(&record(&outcome("start", 0, 1, false), &state, 100, false));
        state.apply(&record(&outcome("start", 0, 1, false), &state, 101, false));
        assert_eq!(state.status["n1"].transient["fail-count-web#start_0"], "2");
    }

    #[test]
    fn notifications_are_not_recorded_since_they_would_replace_the_start() {
        let mut state = rejoined();
        state.apply(&record(&outcome("start", 0, 0, true), &state, 100, true));
        let last = |s: &Replicated| s.status["n1"].resources["web"].ops["web_last_0"].clone();
        assert_eq!(last(&state).operation, "start");
        // What recording a notify would do: the start is gone.
        let mut recorded = state.clone();
        recorded.apply(&record(&outcome("notify", 0, 0, true), &state, 101, true));
        assert_eq!(last(&recorded).operation, "notify");
        assert!(!is_recorded("notify"));
        for action in [
            "start",
            "stop",
            "promote",
            "demote",
            "monitor",
            "migrate_to",
        ] {
            assert!(is_recorded(action), "{action}");
        }
    }

    #[test]
    fn a_migration_records_where_it_goes() {
        let meta = std::collections::BTreeMap::from([
            ("migrate_source".to_string(), "n1".to_string()),
            ("migrate_target".to_string(), "n2".to_string()),
        ]);
        let mut op = outcome("migrate_to", 0, 0, true).op;
        note_migration(&mut op, &meta);
        assert_eq!(op.migrate_source.as_deref(), Some("n1"));
        assert_eq!(op.migrate_target.as_deref(), Some("n2"));
        let mut start = outcome("start", 0, 0, true).op;
        note_migration(&mut start, &meta);
        assert_eq!((start.migrate_source, start.migrate_target), (None, None));
    }

    #[test]
    fn a_probe_that_finds_the_resource_running_is_not_a_failure() {
        let r = outcome("monitor", 0, 0, true).result;
        assert!(as_expected(&r, Expected::NotRunning, true));
        assert!(!as_expected(&r, Expected::NotRunning, false));
    }
}
