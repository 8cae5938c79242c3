//! What the scheduler reports: a view of the cluster before and after the
//! transition, the ordered actions, and the Pacemaker-style summary lines.
//! These are the scheduler's public output types; printers and JSON encoders
//! work from them alone.

use serde::Serialize;
use std::collections::BTreeMap;
use tandem_model::Role;

/// The result of one scheduler run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Transition {
    /// The cluster as the scheduler understood the input.
    pub current: ClusterView,
    /// The cluster after every runnable action of the transition succeeded.
    pub revised: ClusterView,
    /// Actions in an order that respects every ordering dependency.
    pub actions: Vec<Action>,
    /// Pacemaker's "Transition Summary" lines, one per changed resource or node.
    pub summary: Vec<SummaryLine>,
    /// Warnings about input the scheduler ignored or could not honour.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ClusterView {
    pub nodes: Vec<NodeView>,
    /// Top-level resources in display order.
    pub resources: Vec<ResourceView>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeView {
    pub name: String,
    pub online: bool,
    pub standby: bool,
    /// Standby only because a resource failed with on-fail=standby.
    pub standby_onfail: bool,
    pub maintenance: bool,
    pub unclean: bool,
    pub pending: bool,
    pub shutdown: bool,
    pub remote: bool,
}

#[derive(Clone, Debug, Serialize)]
pub enum ResourceView {
    Primitive(PrimitiveView),
    Group {
        id: String,
        members: Vec<PrimitiveView>,
        flags: Vec<String>,
    },
    Clone {
        id: String,
        promotable: bool,
        unique: bool,
        /// One entry per instance: a primitive view or a group view whose
        /// ids carry the `:N` instance suffix.
        instances: Vec<ResourceView>,
        flags: Vec<String>,
    },
}

/// One primitive (or clone instance) and where it is active.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PrimitiveView {
    /// Id as displayed (`rsc`, or `rsc:2` for a clone instance).
    pub id: String,
    /// `class:provider:type`.
    pub agent: String,
    /// Every node the resource is active on, with its role there. Empty
    /// means stopped.
    pub active: Vec<ActiveOn>,
    /// unmanaged, blocked, disabled, orphaned, failure ignored, ...
    pub flags: Vec<String>,
    /// Nodes where the resource's status is pending an action.
    pub pending: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActiveOn {
    pub node: String,
    pub role: Role,
    pub failed: bool,
}

/// One action of the transition graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Action {
    /// Resource id (with instance suffix) or, for node actions, the node.
    pub target: String,
    /// start, stop, promote, demote, monitor, migrate_to, migrate_from,
    /// notify, fence, shutdown, cancel.
    pub task: String,
    pub node: Option<String>,
    pub interval_ms: u64,
    /// Pseudo actions are implied (e.g. a stop on a fenced node).
    pub pseudo: bool,
    /// Indices (into [`Transition::actions`]) of the actions that must
    /// finish first; the rest may run in parallel.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<usize>,
}

/// One Transition Summary line, e.g. `Move rsc1 ( node1 -> node2 )`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SummaryLine {
    /// Start, Stop, Move, Recover, Restart, Migrate, Promote, Demote,
    /// Re-promote, Fence, Shutdown.
    pub verb: String,
    pub resource: String,
    /// The node details as Pacemaker prints them inside the parentheses,
    /// e.g. `node1 -> node2` or `Unpromoted -> Promoted node1`.
    pub detail: String,
    /// Trailing note such as `due to node availability`.
    pub reason: Option<String>,
}

impl ClusterView {
    /// The canonical `pcmk-placement/1` document that the shared corpus'
    /// `placement.py compare` reads: node state tags and per-primitive
    /// role → nodes (clone instances merged under the primitive id).
    pub fn placement_json(&self) -> serde_json::Value {
        let mut nodes = BTreeMap::new();
        for n in &self.nodes {
            nodes.insert(n.name.clone(), node_tags(n));
        }
        let mut resources: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        let mut flags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in &self.resources {
            // Unique clones list every instance, stopped ones included.
            let cloned = matches!(r, ResourceView::Clone { unique: false, .. });
            collect_primitives(r, &mut |p| {
                let base = strip_instance(&p.id).to_string();
                // Pacemaker lists a clone's stopped instances only as a
                // node list, so a clone with none active has no entry.
                if cloned && p.active.is_empty() && !resources.contains_key(&base) {
                    return;
                }
                let roles = resources.entry(base.clone()).or_default();
                for a in &p.active {
                    roles.entry(role_label(a)).or_default().push(a.node.clone());
                }
                if !p.flags.is_empty() {
                    let f = flags.entry(base).or_default();
                    f.extend(p.flags.iter().cloned());
                    f.sort();
                    f.dedup();
                }
            });
        }
        for roles in resources.values_mut() {
            for list in roles.values_mut() {
                list.sort();
            }
        }
        serde_json::json!({
            "format": "pcmk-placement/1",
            "nodes": nodes,
            "resources": resources,
            "flags": flags,
        })
    }
}

fn node_tags(n: &NodeView) -> Vec<&'static str> {
    let mut tags = Vec::new();
    if n.maintenance {
        tags.push("maintenance");
    }
    if n.online {
        tags.push("online");
    } else if !n.pending {
        tags.push("offline");
    }
    if n.pending {
        tags.push("pending");
    }
    if n.standby && n.online {
        tags.push("standby");
    }
    if n.unclean {
        tags.push("unclean");
    }
    tags.sort();
    tags
}

fn role_label(a: &ActiveOn) -> String {
    match (a.failed, a.role) {
        (false, r) => r.as_str().to_string(),
        (true, Role::Promoted) => "FAILED Promoted".into(),
        (true, Role::Unpromoted) => "FAILED Unpromoted".into(),
        (true, _) => "FAILED".into(),
    }
}

/// `rsc:3` → `rsc`.
pub fn strip_instance(id: &str) -> &str {
    match id.rsplit_once(':') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => id,
    }
}

/// Calls `f` for every primitive view inside `r`.
pub fn collect_primitives<'a>(r: &'a ResourceView, f: &mut impl FnMut(&'a PrimitiveView)) {
    match r {
        ResourceView::Primitive(p) => f(p),
        ResourceView::Group { members, .. } => members.iter().for_each(&mut *f),
        ResourceView::Clone { instances, .. } => {
            instances.iter().for_each(|i| collect_primitives(i, f))
        }
    }
}
