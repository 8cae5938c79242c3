//! `<cib>` root attributes and `<status>` → [`Status`]: quorum, DC,
//! execution date, node states with transient attributes and resource
//! operation history, and tickets. Raw facts as recorded; the scheduler
//! interprets them.

use crate::config::item_list;
use crate::nvset::sets_named;
use crate::xml::{elements, name, Ctx, Res};
use roxmltree::Node;
use tandem_model::{HistoryOp, NodeState, ResourceHistory, Status, TicketState};

/// The root attributes; nodes and tickets are filled by [`parse_status`].
pub(crate) fn parse_root(ctx: &Ctx, cib: Node) -> Res<Status> {
    Ok(Status {
        have_quorum: ctx.boolean(cib, "have-quorum")?.unwrap_or(false),
        dc_uuid: ctx.string(cib, "dc-uuid"),
        execution_date: ctx.number(cib, "execution-date")?,
        no_quorum_panic: ctx
            .parsed(cib, "no-quorum-panic", "a boolean", flag)?
            .unwrap_or(false),
        have_watchdog: ctx.boolean(cib, "have-watchdog")?.unwrap_or(false),
        ..Status::default()
    })
}

/// A boolean that may also be written as a (non-zero) number.
fn flag(text: &str) -> Option<bool> {
    tandem_model::parse_bool(text).or_else(|| text.trim().parse::<i64>().ok().map(|n| n != 0))
}

pub(crate) fn parse_status(ctx: &Ctx, node: Node, status: &mut Status) {
    for child in elements(node) {
        match name(child) {
            "node_state" => status.nodes.extend(ctx.keep(node_state(ctx, child))),
            "tickets" => status.tickets = item_list(ctx, child, "ticket_state", ticket_state),
            _ => ctx.unknown(child),
        }
    }
}

fn node_state(ctx: &Ctx, node: Node) -> Res<NodeState> {
    let mut state = NodeState {
        id: ctx.req(node, "id")?.to_owned(),
        uname: ctx.string(node, "uname"),
        in_ccm: ctx.string(node, "in_ccm"),
        crmd: ctx.string(node, "crmd"),
        join: ctx.string(node, "join"),
        expected: ctx.string(node, "expected"),
        shutdown: ctx.string(node, "shutdown"),
        remote_node: ctx.boolean(node, "remote_node")?.unwrap_or(false),
        ..NodeState::default()
    };
    for child in elements(node) {
        match name(child) {
            "transient_attributes" => {
                state
                    .transient
                    .extend(sets_named(ctx, child, "instance_attributes")?)
            }
            "lrm" => state.history.extend(lrm(ctx, child)?),
            _ => ctx.unknown(child),
        }
    }
    Ok(state)
}

/// `<lrm><lrm_resources><lrm_resource>…` → histories in document order.
fn lrm(ctx: &Ctx, node: Node) -> Res<Vec<ResourceHistory>> {
    let mut histories = Vec::new();
    for resources in elements(node).filter(|c| name(*c) == "lrm_resources") {
        for resource in elements(resources).filter(|c| name(*c) == "lrm_resource") {
            histories.push(lrm_resource(ctx, resource)?);
        }
    }
    Ok(histories)
}

fn lrm_resource(ctx: &Ctx, node: Node) -> Res<ResourceHistory> {
    let ops = elements(node)
        .filter(|c| name(*c) == "lrm_rsc_op")
        .map(|c| lrm_rsc_op(ctx, c))
        .collect::<Res<_>>()?;
    Ok(ResourceHistory {
        id: ctx.req(node, "id")?.to_owned(),
        class: ctx.string(node, "class"),
        provider: ctx.string(node, "provider"),
        agent: ctx.string(node, "type"),
        container: ctx.string(node, "container"),
        shutdown_lock: ctx.number(node, "shutdown-lock")?,
        ops,
    })
}

/// One recorded operation. Absent numbers take the value Pacemaker
/// assumes (call-id -1 = never ran); `interval` is already milliseconds.
/// Old CIBs spell some attributes with underscores.
fn lrm_rsc_op(ctx: &Ctx, node: Node) -> Res<HistoryOp> {
    let either = |modern, legacy| ctx.spelling(node, modern, legacy);
    Ok(HistoryOp {
        id: ctx.req(node, "id")?.to_owned(),
        operation: ctx.req(node, "operation")?.to_owned(),
        call_id: ctx.number(node, "call-id")?.unwrap_or(-1),
        rc_code: ctx.number(node, "rc-code")?.unwrap_or(0),
        op_status: ctx.number(node, "op-status")?.unwrap_or(0),
        interval_ms: ctx.number(node, "interval")?.unwrap_or(0),
        last_rc_change: ctx.number(node, either("last-rc-change", "last_rc_change"))?,
        last_run: ctx.number(node, either("last-run", "last_run"))?,
        exec_time_ms: ctx.number(node, either("exec-time", "exec_time"))?,
        transition_key: ctx.string(node, "transition-key"),
        on_node: ctx.string(node, "on_node"),
        migrate_source: ctx.string(node, "migrate_source"),
        migrate_target: ctx.string(node, "migrate_target"),
        exit_reason: ctx.string(node, "exit-reason"),
        // Pacemaker's `op-digest` is an MD5 of its own XML form of the
        // parameters, not comparable with tandem's.
        op_digest: None,
    })
}

fn ticket_state(ctx: &Ctx, node: Node) -> Res<TicketState> {
    Ok(TicketState {
        id: ctx.req(node, "id")?.to_owned(),
        granted: ctx.boolean(node, "granted")?.unwrap_or(false),
        standby: ctx.boolean(node, "standby")?.unwrap_or(false),
        last_granted: ctx.number(node, "last-granted")?,
    })
}
