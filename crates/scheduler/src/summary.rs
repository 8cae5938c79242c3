//! Text rendering of a [`Transition`] in the layout of `crm_simulate -S`
//! (Pacemaker 3.0): current status, transition summary, executed actions,
//! revised status. Pure string building from the view types alone, so the
//! shared corpus' `placement.py` reads our output like Pacemaker's.
//!
//! Entry points: [`render`] (the whole report), [`render_status`] (one
//! status section), [`render_summary_lines`], [`render_actions`] and
//! [`execution_date_line`].
//!
//! Must not: compute anything the scheduler decides; it only formats.

use crate::view::{
    strip_instance, Action, ActiveOn, ClusterView, NodeView, PrimitiveView, ResourceView,
    SummaryLine, Transition,
};
use std::fmt::Write as _;
use tandem_model::Role;

/// The full `crm_simulate -S` report.
pub fn render(t: &Transition) -> String {
    let mut out = String::new();
    out.push_str("Current cluster status:\n");
    out.push_str(&render_status(&t.current));
    out.push_str("\nTransition Summary:\n");
    out.push_str(&render_summary_lines(&t.summary));
    out.push_str("\nExecuting Cluster Transition:\n");
    out.push_str(&render_actions(&t.actions, &t.summary));
    out.push_str("\nRevised Cluster Status:\n");
    out.push_str(&render_status(&t.revised));
    out
}

/// `Using the original execution date of: 2020-06-16 19:23:21Z`, the line
/// crm_simulate prints first when the CIB carries an execution date.
pub fn execution_date_line(epoch: i64) -> String {
    let stamp = tandem_model::native::epoch_to_rfc3339(epoch).replacen('T', " ", 1);
    format!("Using the original execution date of: {stamp}\n")
}

/// One status section: `* Node List:` and `* Full List of Resources:`.
pub fn render_status(view: &ClusterView) -> String {
    let mut out = String::from("  * Node List:\n");
    for line in node_lines(view) {
        let _ = writeln!(out, "    * {line}");
    }
    out.push_str("\n  * Full List of Resources:\n");
    if view.resources.is_empty() {
        out.push_str("    * No resources\n");
    }
    for r in &view.resources {
        resource_lines(view, r, 4, &mut out);
    }
    out
}

// ---------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------

fn node_lines(view: &ClusterView) -> Vec<String> {
    let mut detailed = Vec::new();
    let (mut online, mut offline, mut remote_online, mut remote_offline) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for n in &view.nodes {
        match node_detail(view, n) {
            Some(state) => {
                let kind = if n.remote { "RemoteNode" } else { "Node" };
                detailed.push(format!("{kind} {}: {state}", n.name));
            }
            None => {
                let list = match (n.remote, n.online) {
                    (false, true) => &mut online,
                    (false, false) => &mut offline,
                    (true, true) => &mut remote_online,
                    (true, false) => &mut remote_offline,
                };
                list.push(n.name.as_str());
            }
        }
    }
    for (label, list) in [
        ("Online", online),
        ("OFFLINE", offline),
        ("RemoteOnline", remote_online),
        ("RemoteOFFLINE", remote_offline),
    ] {
        if !list.is_empty() {
            detailed.push(format!("{label}: [ {} ]", list.join(" ")));
        }
    }
    detailed
}

/// The state text of a node that does not fit a plain Online/OFFLINE list.
fn node_detail(view: &ClusterView, n: &NodeView) -> Option<String> {
    if n.unclean {
        let how = if n.online { "online" } else { "offline" };
        return Some(format!("UNCLEAN ({how})"));
    }
    if n.pending {
        return Some("pending".into());
    }
    if !n.online {
        return match (n.standby, n.maintenance) {
            (_, true) => Some("OFFLINE (maintenance)".into()),
            (true, false) => Some("OFFLINE (standby)".into()),
            _ => None,
        };
    }
    if n.maintenance {
        return Some("maintenance".into());
    }
    if n.standby || n.standby_onfail {
        let note = if hosts_resources(view, &n.name) {
            " (with active resources)"
        } else {
            ""
        };
        let onfail = if n.standby_onfail && !n.standby {
            " (on-fail)"
        } else {
            ""
        };
        return Some(format!("standby{onfail}{note}"));
    }
    None
}

fn hosts_resources(view: &ClusterView, node: &str) -> bool {
    let mut found = false;
    for r in &view.resources {
        crate::view::collect_primitives(r, &mut |p| {
            found |= p.active.iter().any(|a| a.node == node);
        });
    }
    found
}

// ---------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------

fn resource_lines(view: &ClusterView, r: &ResourceView, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match r {
        ResourceView::Primitive(p) => {
            let _ = writeln!(out, "{pad}* {}", primitive_line(view, p, &p.id));
        }
        ResourceView::Group { id, members, flags } => {
            let _ = writeln!(out, "{pad}* Resource Group: {id}{}:", flag_suffix(flags));
            for m in members {
                let _ = writeln!(out, "{pad}  * {}", primitive_line(view, m, &m.id));
            }
        }
        ResourceView::Clone {
            id,
            promotable,
            unique,
            instances,
            flags,
        } => clone_lines(
            view,
            id,
            *promotable,
            *unique,
            instances,
            flags,
            indent,
            out,
        ),
    }
}

/// `rsc\t(class:provider:type):\t Started node1 (flags)`.
fn primitive_line(view: &ClusterView, p: &PrimitiveView, shown_id: &str) -> String {
    format!("{shown_id}\t({}):\t {}", p.agent, primitive_state(view, p))
}

fn primitive_state(view: &ClusterView, p: &PrimitiveView) -> String {
    let mut flags: Vec<String> = Vec::new();
    let text = match p.active.as_slice() {
        [] => "Stopped".to_string(),
        [one] => {
            if node_is_unclean(view, &one.node) {
                flags.push("UNCLEAN".into());
            }
            format!("{} {}", role_word(p, one), one.node)
        }
        many => {
            let nodes: Vec<&str> = many.iter().map(|a| a.node.as_str()).collect();
            let first = &many[0];
            let failed = many.iter().any(|a| a.failed);
            let word = role_word(
                p,
                &ActiveOn {
                    node: String::new(),
                    role: first.role,
                    failed,
                },
            );
            let mut all_flags = p.flags.clone();
            let inline = if all_flags.is_empty() {
                String::new()
            } else {
                all_flags.dedup();
                format!(" ({})", all_flags.join(", "))
            };
            return format!("{word}{inline} [ {} ]", nodes.join(" "));
        }
    };
    flags.extend(p.flags.iter().cloned());
    format!("{text}{}", paren(&flags))
}

fn role_word(p: &PrimitiveView, a: &ActiveOn) -> String {
    if let Some(pending) = &p.pending {
        return pending.clone();
    }
    match (a.failed, a.role) {
        (true, Role::Promoted) => "FAILED Promoted".into(),
        (true, Role::Unpromoted) => "FAILED Unpromoted".into(),
        (true, _) => "FAILED".into(),
        (false, Role::Unknown) => "Started".into(),
        (false, r) => r.as_str().into(),
    }
}

fn node_is_unclean(view: &ClusterView, node: &str) -> bool {
    view.nodes.iter().any(|n| n.name == node && n.unclean)
}

fn paren(flags: &[String]) -> String {
    if flags.is_empty() {
        String::new()
    } else {
        format!(" ({})", flags.join(", "))
    }
}

fn flag_suffix(flags: &[String]) -> String {
    paren(flags)
}

#[allow(clippy::too_many_arguments)]
fn clone_lines(
    view: &ClusterView,
    id: &str,
    promotable: bool,
    unique: bool,
    instances: &[ResourceView],
    flags: &[String],
    indent: usize,
    out: &mut String,
) {
    let pad = " ".repeat(indent);
    let child = instances
        .first()
        .map(|i| strip_instance(instance_id(i)).to_string())
        .unwrap_or_else(|| id.to_string());
    let mut header_flags: Vec<String> = Vec::new();
    if promotable {
        header_flags.push("promotable".into());
    }
    if unique {
        header_flags.push("unique".into());
    }
    header_flags.extend(flags.iter().cloned());
    let _ = writeln!(
        out,
        "{pad}* Clone Set: {id} [{child}]{}:",
        paren(&header_flags)
    );
    let inner = indent + 2;
    let ipad = " ".repeat(inner);
    // Collapsed lists by role, in Pacemaker's order.
    let mut promoted = Vec::new();
    let mut unpromoted = Vec::new();
    let mut started = Vec::new();
    let mut any_stopped = false;
    let mut active_nodes: Vec<String> = Vec::new();
    for inst in instances {
        let summary = instance_summary(inst);
        active_nodes.extend(summary.nodes.iter().cloned());
        if unique || summary.needs_detail {
            expanded_instance(view, inst, unique, inner, out);
            if summary.nodes.is_empty() {
                any_stopped = true;
            }
            continue;
        }
        match (summary.role, summary.nodes.first()) {
            (_, None) => any_stopped = true,
            (Role::Promoted, Some(n)) => promoted.push(n.clone()),
            (Role::Unpromoted, Some(n)) => unpromoted.push(n.clone()),
            (_, Some(n)) => started.push(n.clone()),
        }
    }
    for (label, list) in [
        ("Promoted", promoted),
        ("Unpromoted", unpromoted),
        ("Started", started),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "{ipad}* {label}: [ {} ]", list.join(" "));
        }
    }
    if any_stopped && !unique {
        let stopped: Vec<&str> = view
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .filter(|n| !active_nodes.iter().any(|a| a == n))
            .collect();
        if !stopped.is_empty() {
            let note = if flags.iter().any(|f| f == "disabled") {
                " (disabled)"
            } else {
                ""
            };
            let _ = writeln!(out, "{ipad}* Stopped{note}: [ {} ]", stopped.join(" "));
        }
    }
}

fn instance_id(r: &ResourceView) -> &str {
    match r {
        ResourceView::Primitive(p) => &p.id,
        ResourceView::Group { id, .. } | ResourceView::Clone { id, .. } => id,
    }
}

/// How an anonymous instance can be shown in a collapsed role list.
struct InstanceSummary {
    role: Role,
    nodes: Vec<String>,
    /// Failed, flagged, pending, multi-active or internally inconsistent:
    /// Pacemaker prints such an instance in full.
    needs_detail: bool,
}

fn instance_summary(inst: &ResourceView) -> InstanceSummary {
    let prims: Vec<&PrimitiveView> = match inst {
        ResourceView::Primitive(p) => vec![p],
        ResourceView::Group { members, .. } => members.iter().collect(),
        ResourceView::Clone { .. } => Vec::new(),
    };
    let group_flags = match inst {
        ResourceView::Group { flags, .. } => !flags.is_empty(),
        _ => false,
    };
    let placements: Vec<Vec<(String, Role)>> = prims
        .iter()
        .map(|p| p.active.iter().map(|a| (a.node.clone(), a.role)).collect())
        .collect();
    let consistent = placements.windows(2).all(|w| w[0] == w[1]);
    let needs_detail = group_flags
        || !consistent
        || prims.iter().any(|p| {
            !p.flags.is_empty()
                || p.pending.is_some()
                || p.active.len() > 1
                || p.active.iter().any(|a| a.failed)
        });
    let first = placements.first().cloned().unwrap_or_default();
    InstanceSummary {
        role: first.first().map(|(_, r)| *r).unwrap_or(Role::Stopped),
        nodes: first.into_iter().map(|(n, _)| n).collect(),
        needs_detail,
    }
}

/// An instance printed in full. Anonymous instances drop the `:N` suffix on
/// primitives (Pacemaker shows `prmPingd`, not `prmPingd:0`) but keep it on
/// group headers.
fn expanded_instance(
    view: &ClusterView,
    inst: &ResourceView,
    unique: bool,
    indent: usize,
    out: &mut String,
) {
    let pad = " ".repeat(indent);
    let shown = |id: &str| -> String {
        if unique {
            id.to_string()
        } else {
            strip_instance(id).to_string()
        }
    };
    match inst {
        ResourceView::Primitive(p) => {
            let _ = writeln!(out, "{pad}* {}", primitive_line(view, p, &shown(&p.id)));
        }
        ResourceView::Group { id, members, flags } => {
            let _ = writeln!(out, "{pad}* Resource Group: {id}{}:", paren(flags));
            for m in members {
                let _ = writeln!(out, "{pad}  * {}", primitive_line(view, m, &shown(&m.id)));
            }
        }
        other => resource_lines(view, other, indent, out),
    }
}

// ---------------------------------------------------------------------------
// Transition summary and actions
// ---------------------------------------------------------------------------

/// `  * Move       rsc1          ( node1 -> node2 )`, columns sized over all
/// lines the way crm_simulate sizes them; fencing lines first.
pub fn render_summary_lines(lines: &[SummaryLine]) -> String {
    let mut out = String::new();
    let (fences, others): (Vec<&SummaryLine>, Vec<&SummaryLine>) =
        lines.iter().partition(|l| l.verb == "Fence");
    for f in fences {
        let kind = if f.detail.is_empty() {
            "reboot"
        } else {
            f.detail.as_str()
        };
        let _ = write!(out, "  * Fence ({kind}) {}", f.resource);
        if let Some(reason) = &f.reason {
            let _ = write!(out, " '{reason}'");
        }
        out.push('\n');
    }
    let mut rsc_width = 5;
    for l in &others {
        if l.resource.len() > rsc_width {
            rsc_width = l.resource.len() + 2;
        }
    }
    let detail_width = others
        .iter()
        .map(|l| l.detail.len())
        .max()
        .unwrap_or(0)
        .max(5);
    for l in others {
        if l.detail.is_empty() {
            let _ = writeln!(out, "  * {:<8}   {}", l.verb, l.resource);
            continue;
        }
        let _ = write!(
            out,
            "  * {:<8}   {:<rsc_width$}   ( {:>detail_width$} )",
            l.verb, l.resource, l.detail
        );
        if let Some(reason) = &l.reason {
            let _ = write!(out, "  {reason}");
        }
        out.push('\n');
    }
    out
}

/// `  * Resource action: rsc1            start on node2`, pseudo actions as
/// `rsc_task_interval`, fencing as `Fencing node1 (reboot)`. The fencing
/// kind comes from the matching `Fence` summary line.
pub fn render_actions(actions: &[Action], summary: &[SummaryLine]) -> String {
    let mut out = String::new();
    for a in actions {
        let _ = writeln!(out, "  * {}", action_line(a, summary));
    }
    out
}

fn action_line(a: &Action, summary: &[SummaryLine]) -> String {
    let on = a
        .node
        .as_deref()
        .map(|n| format!(" on {n}"))
        .unwrap_or_default();
    match a.task.as_str() {
        "fence" | "stonith" if !a.pseudo => {
            let node = a.node.as_deref().unwrap_or(&a.target);
            let kind = summary
                .iter()
                .find(|l| l.verb == "Fence" && l.resource == node && !l.detail.is_empty())
                .map(|l| l.detail.as_str())
                .unwrap_or("reboot");
            format!("Fencing {node} ({kind})")
        }
        "shutdown" if !a.pseudo => format!(
            "Cluster action:  do_shutdown on {}",
            a.node.as_deref().unwrap_or(&a.target)
        ),
        "clear_failcount" if !a.pseudo => {
            format!("Cluster action:  clear_failcount for {}{on}", a.target)
        }
        _ if a.pseudo => format!("Pseudo action:   {}_{}_{}", a.target, a.task, a.interval_ms),
        _ => {
            let task = if a.interval_ms > 0 {
                format!("{}={}", a.task, a.interval_ms)
            } else {
                a.task.clone()
            };
            format!("Resource action: {:<15} {task}{on}", a.target)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::NodeView;
    use std::path::PathBuf;

    fn node(name: &str) -> NodeView {
        NodeView {
            name: name.into(),
            online: true,
            ..NodeView::default()
        }
    }

    fn prim(id: &str, agent: &str, active: &[(&str, Role, bool)], flags: &[&str]) -> PrimitiveView {
        PrimitiveView {
            id: id.into(),
            agent: agent.into(),
            active: active
                .iter()
                .map(|(n, role, failed)| ActiveOn {
                    node: n.to_string(),
                    role: *role,
                    failed: *failed,
                })
                .collect(),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            pending: None,
        }
    }

    const DUMMY: &str = "ocf:pacemaker:Dummy";

    fn view() -> ClusterView {
        let mut standby = node("node2");
        standby.standby = true;
        let mut offline = node("node3");
        offline.online = false;
        let mut unclean = node("node4");
        unclean.online = false;
        unclean.unclean = true;
        let s = Role::Started;
        ClusterView {
            nodes: vec![node("node1"), standby, offline, unclean, node("node5")],
            resources: vec![
                ResourceView::Primitive(prim(
                    "fencing",
                    "stonith:fence_xvm",
                    &[("node1", s, false)],
                    &[],
                )),
                ResourceView::Group {
                    id: "web".into(),
                    members: vec![
                        prim("vip", "ocf:heartbeat:IPaddr2", &[("node1", s, false)], &[]),
                        prim("site", "ocf:heartbeat:apache", &[("node1", s, false)], &[]),
                    ],
                    flags: vec![],
                },
                ResourceView::Clone {
                    id: "ping-clone".into(),
                    promotable: false,
                    unique: false,
                    instances: vec![
                        ResourceView::Primitive(prim("ping:0", DUMMY, &[("node1", s, false)], &[])),
                        ResourceView::Primitive(prim("ping:1", DUMMY, &[("node2", s, true)], &[])),
                        ResourceView::Primitive(prim("ping:2", DUMMY, &[("node5", s, false)], &[])),
                        ResourceView::Primitive(prim("ping:3", DUMMY, &[], &[])),
                    ],
                    flags: vec![],
                },
                ResourceView::Clone {
                    id: "db-clone".into(),
                    promotable: true,
                    unique: false,
                    instances: vec![
                        ResourceView::Primitive(prim(
                            "db:0",
                            "ocf:pacemaker:Stateful",
                            &[("node1", Role::Promoted, false)],
                            &[],
                        )),
                        ResourceView::Primitive(prim(
                            "db:1",
                            "ocf:pacemaker:Stateful",
                            &[("node5", Role::Unpromoted, false)],
                            &[],
                        )),
                    ],
                    flags: vec![],
                },
                ResourceView::Primitive(prim("broken", DUMMY, &[("node5", s, true)], &["blocked"])),
                ResourceView::Primitive(prim("parked", DUMMY, &[], &["disabled"])),
            ],
        }
    }

    fn transition() -> Transition {
        Transition {
            current: view(),
            revised: view(),
            actions: vec![
                Action {
                    target: "node4".into(),
                    task: "fence".into(),
                    node: Some("node4".into()),
                    interval_ms: 0,
                    pseudo: false,
                    after: Vec::new(),
                },
                Action {
                    target: "web".into(),
                    task: "stop".into(),
                    node: None,
                    interval_ms: 0,
                    pseudo: true,
                    after: Vec::new(),
                },
                Action {
                    target: "site".into(),
                    task: "stop".into(),
                    node: Some("node2".into()),
                    interval_ms: 0,
                    pseudo: false,
                    after: Vec::new(),
                },
                Action {
                    target: "site".into(),
                    task: "monitor".into(),
                    node: Some("node1".into()),
                    interval_ms: 10_000,
                    pseudo: false,
                    after: Vec::new(),
                },
            ],
            summary: vec![
                SummaryLine {
                    verb: "Move".into(),
                    resource: "site".into(),
                    detail: "node2 -> node1".into(),
                    reason: None,
                },
                SummaryLine {
                    verb: "Fence".into(),
                    resource: "node4".into(),
                    detail: "reboot".into(),
                    reason: Some("peer is no longer part of the cluster".into()),
                },
                SummaryLine {
                    verb: "Promote".into(),
                    resource: "db:1".into(),
                    detail: "Unpromoted -> Promoted node5".into(),
                    reason: None,
                },
                SummaryLine {
                    verb: "Stop".into(),
                    resource: "ping:1".into(),
                    detail: "node2".into(),
                    reason: Some("due to node availability".into()),
                },
            ],
            warnings: vec![],
        }
    }

    const STATUS: &str = "  * Node List:
    * Node node2: standby (with active resources)
    * Node node4: UNCLEAN (offline)
    * Online: [ node1 node5 ]
    * OFFLINE: [ node3 ]

  * Full List of Resources:
    * fencing\t(stonith:fence_xvm):\t Started node1
    * Resource Group: web:
      * vip\t(ocf:heartbeat:IPaddr2):\t Started node1
      * site\t(ocf:heartbeat:apache):\t Started node1
    * Clone Set: ping-clone [ping]:
      * ping\t(ocf:pacemaker:Dummy):\t FAILED node2
      * Started: [ node1 node5 ]
      * Stopped: [ node3 node4 ]
    * Clone Set: db-clone [db] (promotable):
      * Promoted: [ node1 ]
      * Unpromoted: [ node5 ]
    * broken\t(ocf:pacemaker:Dummy):\t FAILED node5 (blocked)
    * parked\t(ocf:pacemaker:Dummy):\t Stopped (disabled)
";

    #[test]
    fn renders_the_crm_simulate_layout() {
        let text = render(&transition());
        let expected = format!(
            "Current cluster status:\n{STATUS}
Transition Summary:
  * Fence (reboot) node4 'peer is no longer part of the cluster'
  * Move       site       (               node2 -> node1 )
  * Promote    db:1       ( Unpromoted -> Promoted node5 )
  * Stop       ping:1     (                        node2 )  due to node availability

Executing Cluster Transition:
  * Fencing node4 (reboot)
  * Pseudo action:   web_stop_0
  * Resource action: site            stop on node2
  * Resource action: site            monitor=10000 on node1

Revised Cluster Status:
{STATUS}"
        );
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn summary_columns_follow_the_longest_resource_and_detail() {
        let lines = [
            SummaryLine {
                verb: "Start".into(),
                resource: "stonith-1".into(),
                detail: "node2".into(),
                reason: None,
            },
            SummaryLine {
                verb: "Move".into(),
                resource: "rsc1".into(),
                detail: "node1 -> node2".into(),
                reason: None,
            },
        ];
        assert_eq!(
            render_summary_lines(&lines),
            "  * Start      stonith-1     (          node2 )\n  * Move       rsc1          ( node1 -> node2 )\n"
        );
    }

    #[test]
    fn execution_date_is_printed_like_crm_simulate() {
        assert_eq!(
            execution_date_line(1_592_335_401),
            "Using the original execution date of: 2020-06-16 19:23:21Z\n"
        );
    }

    /// The shared corpus directory: `$TANDEM_CORPUS`, or `shared/pcmk-scheduler`
    /// next to an ancestor of this crate.
    fn corpus_dir() -> PathBuf {
        if let Ok(dir) = std::env::var("TANDEM_CORPUS") {
            return PathBuf::from(dir);
        }
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        here.ancestors()
            .map(|a| a.join("shared/pcmk-scheduler"))
            .find(|p| p.join("placement.py").is_file())
            .unwrap_or_else(|| {
                panic!(
                    "no shared/pcmk-scheduler/placement.py above {}; set TANDEM_CORPUS",
                    here.display()
                )
            })
    }

    #[test]
    fn placement_py_reads_our_rendering_as_placement_json() {
        let script = corpus_dir().join("placement.py");
        let t = transition();
        let path =
            std::env::temp_dir().join(format!("tandem-summary-{}.summary", std::process::id()));
        std::fs::write(&path, render(&t)).expect("write temp summary");
        for section in ["current", "revised"] {
            let out = std::process::Command::new("python3")
                .arg(&script)
                .args(["extract", "--no-cib", "--section", section])
                .arg(&path)
                .output()
                .expect("python3 must be installed to run this test");
            assert!(
                out.status.success(),
                "placement.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let got: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("placement.py prints JSON");
            assert!(
                got.get("unparsed").is_none(),
                "unparsed lines: {}",
                got["unparsed"]
            );
            let want = t.revised.placement_json();
            for key in ["nodes", "resources", "flags"] {
                assert_eq!(got[key], want[key], "{section}: {key} differs");
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}
