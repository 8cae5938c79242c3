//! What `status` shows: the membership view, the replicated configuration
//! version and the scheduler's planned placement for the replicated
//! configuration plus live membership (online nodes, standby attributes).

use serde::Serialize;
use tandem_cluster::{MembershipView, Replicated};

/// The status document served at `GET /status`.
#[derive(Serialize)]
pub struct StatusDoc {
    pub cluster: MembershipView,
    pub config_version: u64,
    pub node_attributes:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// Where resources run now, from the recorded operation history
    /// (`null` before a config is loaded).
    pub running: Option<serde_json::Value>,
    /// The same, as `crm_mon`-like text.
    pub running_text: Option<String>,
    /// The scheduler's planned placement: where they will run once the
    /// controller has carried out the current transition.
    pub placement: Option<serde_json::Value>,
    /// The same, as `crm_mon`-like text.
    pub placement_text: Option<String>,
    /// Failed operations and the latest fencing attempts.
    pub failures: Vec<serde_json::Value>,
    /// Node → transient attributes (fail counts, last failures,
    /// promotion scores).
    pub transient: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    pub fence_history: Vec<tandem_cluster::FenceRecord>,
    /// Per data node: how its loss would be settled (a fence device, or an
    /// operator's `confirm-down`) and, when it is lost, what the DC waits
    /// for before recovering its resources.
    pub node_loss: Vec<serde_json::Value>,
}

/// Builds the status document; `now` is the epoch the scheduler runs at.
pub async fn status(view: MembershipView, state: &Replicated, now: i64) -> StatusDoc {
    let planned = plan(&view, state, now).await;
    StatusDoc {
        config_version: state.config_version,
        node_attributes: state.node_attributes.clone(),
        running: planned.as_ref().map(|t| t.current.placement_json()),
        running_text: planned
            .as_ref()
            .map(|t| tandem_scheduler::summary::render_status(&t.current)),
        placement: planned.as_ref().map(|t| t.revised.placement_json()),
        placement_text: planned.map(|t| tandem_scheduler::summary::render_status(&t.revised)),
        failures: failures(state),
        transient: state
            .status
            .iter()
            .filter(|(_, s)| !s.transient.is_empty())
            .map(|(n, s)| (n.clone(), s.transient.clone()))
            .collect(),
        fence_history: state.fence_history.clone(),
        node_loss: node_loss(&view, state),
        cluster: view,
    }
}

/// How each data node's loss is settled (see [`crate::settle`]).
fn node_loss(view: &MembershipView, state: &Replicated) -> Vec<serde_json::Value> {
    let Some(Ok(cluster)) = crate::live::cluster_of(view, state) else {
        return Vec::new();
    };
    let by = crate::controller::settled_by(&cluster);
    let devices = crate::fencing::device_ids(&cluster);
    view.peers()
        .filter(|v| !v.witness)
        .map(|v| {
            let status = state.status.get(&v.name);
            let confirmed = status.is_some_and(crate::lease::confirmed_down);
            let watchdog_ms = status.and_then(crate::watchdog::reported_ms);
            let fencing = by == crate::settle::SettledBy::Fencing;
            let state = match (view.online(v), status.is_some()) {
                (true, _) => "online".to_string(),
                (false, false) => "down (settled)".to_string(),
                (false, true) if fencing => "lost: being fenced".to_string(),
                (false, true) if confirmed => {
                    "lost: confirmed down, waiting for its lease to expire".to_string()
                }
                (false, true) if watchdog_ms.is_some() => {
                    "lost: waiting for its watchdog to reset it".to_string()
                }
                (false, true) => format!(
                    "lost: its resources are blocked until it returns or `tandem node confirm-down {}`",
                    v.name
                ),
            };
            let watchdog = watchdog_ms.map(|ms| {
                format!(
                    "its watchdog ({ms} ms; recovered {} ms after its lease)",
                    crate::settle::watchdog_reset_within_ms(ms)
                )
            });
            let settled_by = match (fencing, watchdog) {
                (true, Some(w)) => format!("fencing ({}), or {w}", devices.join(", ")),
                (true, None) => format!("fencing ({})", devices.join(", ")),
                (false, Some(w)) => w,
                (false, None) => "an operator (tandem node confirm-down)".to_string(),
            };
            serde_json::json!({
                "node": v.name,
                "settled_by": settled_by,
                "watchdog_ms": watchdog_ms,
                "state": state,
            })
        })
        .collect()
}

async fn plan(
    view: &MembershipView,
    state: &Replicated,
    now: i64,
) -> Option<tandem_scheduler::Transition> {
    use crate::schedule_guard::{schedule_for, Purpose};
    let cluster = crate::live::cluster_of(view, state)?.ok()?;
    let run = schedule_for(Purpose::Status, cluster, now, crate::limits::STATUS_BUDGET);
    run.await
        .map_err(|e| tracing::warn!("status shows no placement: {e}"))
        .ok()
}

/// Every recorded failure (`RSC_last_failure_0`), like crm_mon's "Failed
/// Resource Actions", with the resource's fail count on that node (what
/// migration-threshold is compared with).
fn failures(state: &Replicated) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for (node, status) in &state.status {
        for (rsc, ops) in &status.resources {
            if let Some(op) = ops.ops.get(&format!("{rsc}_last_failure_0")) {
                out.push(serde_json::json!({
                    "resource": rsc,
                    "node": node,
                    "fail_count": fail_count(&status.transient, rsc),
                    "operation": op.operation,
                    "interval_ms": op.interval_ms,
                    "rc": op.rc_code,
                    "status": op.op_status,
                    "reason": op.exit_reason,
                    "at": op.last_rc_change,
                }));
            }
        }
    }
    out
}

/// The sum of `fail-count-RSC#OP_INTERVAL` over RSC's operations, saturating
/// at INFINITY (1,000,000) as Pacemaker's scores do.
fn fail_count(transient: &std::collections::BTreeMap<String, String>, rsc: &str) -> u64 {
    const INFINITY: u64 = 1_000_000;
    let prefix = format!("fail-count-{rsc}#");
    transient
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, v)| match v.as_str() {
            "INFINITY" | "+INFINITY" => INFINITY,
            n => n.parse().unwrap_or(0),
        })
        .fold(0, |sum: u64, n| sum.saturating_add(n).min(INFINITY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_count_sums_the_resources_operations_and_saturates() {
        let transient = [
            ("fail-count-web#monitor_1000", "2"),
            ("fail-count-web#start_0", "1"),
            ("fail-count-webx#start_0", "5"),
            ("last-failure-web#monitor_1000", "1700000000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(fail_count(&transient, "web"), 3);
        assert_eq!(fail_count(&transient, "db"), 0);
        let inf = [("fail-count-db#start_0".to_string(), "INFINITY".to_string())].into();
        assert_eq!(fail_count(&inf, "db"), 1_000_000);
    }
}
