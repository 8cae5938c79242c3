//! `<status>`: node states with their transient attributes and operation
//! history (`lrm` → `lrm_resource` → `lrm_rsc_op`), and tickets. Only what
//! the model records is written (no digests, no transition magic).

use super::sets::sets;
use super::xml::{boolean, El, Out};
use tandem_model::{HistoryOp, NodeState, ResourceHistory, Status};

pub(crate) fn status<'a>(out: &mut Out<'a>, status: &'a Status) {
    out.node(El::new("status"), |out| {
        for node in &status.nodes {
            node_state(out, node);
        }
        if !status.tickets.is_empty() {
            out.node(El::new("tickets"), |out| {
                for t in &status.tickets {
                    let el = El::new("ticket_state")
                        .id(&t.id)
                        .attr("granted", boolean(t.granted))
                        .flag("standby", t.standby)
                        .opt("last-granted", t.last_granted.map(|s| s.to_string()));
                    out.leaf(el);
                }
            });
        }
    });
}

fn node_state<'a>(out: &mut Out<'a>, node: &'a NodeState) {
    let el = El::new("node_state")
        .id(&node.id)
        .opt("uname", node.uname.as_deref())
        .opt("in_ccm", node.in_ccm.as_deref())
        .opt("crmd", node.crmd.as_deref())
        .opt("join", node.join.as_deref())
        .opt("expected", node.expected.as_deref())
        .opt("shutdown", node.shutdown.as_deref())
        .flag("remote_node", node.remote_node);
    out.node(el, |out| {
        if !node.transient.is_empty() {
            out.node(
                El::new("transient_attributes").attr("id", &node.id),
                |out| {
                    sets(out, "instance_attributes", &node.transient);
                },
            );
        }
        if !node.history.is_empty() {
            out.node(El::new("lrm").attr("id", &node.id), |out| {
                out.node(El::new("lrm_resources"), |out| {
                    for history in &node.history {
                        lrm_resource(out, history);
                    }
                });
            });
        }
    });
}

fn lrm_resource<'a>(out: &mut Out<'a>, history: &'a ResourceHistory) {
    let el = El::new("lrm_resource")
        .attr("id", &history.id)
        .opt("type", history.agent.as_deref())
        .opt("class", history.class.as_deref())
        .opt("provider", history.provider.as_deref())
        .opt("container", history.container.as_deref())
        .opt(
            "shutdown-lock",
            history.shutdown_lock.map(|s| s.to_string()),
        );
    out.node(el, |out| {
        for op in &history.ops {
            out.leaf(lrm_rsc_op(op));
        }
    });
}

/// Status ids (resource and operation keys) repeat from node to node by
/// design, so they are written as plain attributes, not model ids.
fn lrm_rsc_op(op: &HistoryOp) -> El<'_> {
    let text = |n: Option<i64>| n.map(|n| n.to_string());
    El::new("lrm_rsc_op")
        .attr("id", &op.id)
        .attr("operation", &op.operation)
        .opt("transition-key", op.transition_key.as_deref())
        .attr("call-id", op.call_id.to_string())
        .attr("rc-code", op.rc_code.to_string())
        .attr("op-status", op.op_status.to_string())
        .attr("interval", op.interval_ms.to_string())
        .opt("last-rc-change", text(op.last_rc_change))
        .opt("last-run", text(op.last_run))
        .opt("exec-time", op.exec_time_ms.map(|ms| ms.to_string()))
        .opt("on_node", op.on_node.as_deref())
        .opt("migrate_source", op.migrate_source.as_deref())
        .opt("migrate_target", op.migrate_target.as_deref())
        .opt("exit-reason", op.exit_reason.as_deref())
}
