//! Builds the public views (before and after the transition) from the
//! working state and the plan.

use crate::actions::Plan;
use crate::view::{ActiveOn, ClusterView, NodeView, PrimitiveView, ResourceView};
use crate::working::{Node, NodeIdx, RscIdx, Variant};
use crate::Sched;
use tandem_model::Role;

impl Sched<'_> {
    pub(crate) fn view(&self, plan: Option<&Plan>) -> ClusterView {
        let mut nodes: Vec<NodeView> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| node_view(n, plan.is_some_and(|p| p.fenced[i])))
            .collect();
        nodes.sort_by(|a, b| natural_cmp(&a.name, &b.name));
        let resources = self
            .top
            .iter()
            .map(|&r| self.resource_view(r, plan))
            .collect();
        ClusterView { nodes, resources }
    }

    fn resource_view(&self, r: RscIdx, plan: Option<&Plan>) -> ResourceView {
        let rsc = &self.rscs[r];
        match rsc.variant {
            Variant::Primitive => ResourceView::Primitive(self.primitive_view(r, plan)),
            Variant::Group => ResourceView::Group {
                id: rsc.id.clone(),
                members: rsc
                    .children
                    .iter()
                    .map(|&m| self.primitive_view(m, plan))
                    .collect(),
                flags: Vec::new(),
            },
            Variant::Clone => ResourceView::Clone {
                id: rsc.id.clone(),
                promotable: rsc.promotable,
                unique: rsc.unique,
                instances: rsc
                    .children
                    .iter()
                    .map(|&i| self.resource_view(i, plan))
                    .collect(),
                flags: Vec::new(),
            },
        }
    }

    fn primitive_view(&self, r: RscIdx, plan: Option<&Plan>) -> PrimitiveView {
        let rsc = &self.rscs[r];
        let on = |n: NodeIdx, role: Role| ActiveOn {
            node: self.nodes[n].name.clone(),
            role,
            failed: rsc.failed,
        };
        let before: Vec<ActiveOn> = rsc
            .running_on
            .iter()
            .map(|&(n, role)| on(n, role))
            .collect();
        let active = match plan.map(|p| &p.primitives[r]) {
            None => before,
            Some(p) if p.untouched => before,
            Some(p) if p.role_change => before
                .into_iter()
                .map(|a| ActiveOn {
                    role: p.next_role.unwrap_or(a.role),
                    ..a
                })
                .collect(),
            Some(p) => {
                let mut after: Vec<ActiveOn> = rsc
                    .running_on
                    .iter()
                    .filter(|&&(n, _)| !p.stops.iter().any(|&(s, executed)| s == n && executed))
                    .map(|&(n, role)| on(n, role))
                    .collect();
                if let (true, Some(t)) = (p.start, p.target) {
                    let role = p
                        .next_role
                        .filter(|&r| r > Role::Stopped)
                        .unwrap_or(Role::Started);
                    after.push(ActiveOn {
                        node: self.nodes[t].name.clone(),
                        role,
                        failed: false,
                    });
                }
                after
            }
        };
        let mut flags = Vec::new();
        if rsc.orphan {
            flags.push("orphaned".to_string());
        }
        if !rsc.managed {
            flags.push("unmanaged".to_string());
        }
        if rsc.blocked {
            flags.push("blocked".to_string());
        }
        if rsc.failure_ignored {
            flags.push("failure ignored".to_string());
        }
        if rsc.locked_to.is_some() {
            flags.push("LOCKED".to_string());
        }
        if rsc.target_role == Some(Role::Stopped) {
            flags.push("disabled".to_string());
        }
        PrimitiveView {
            id: rsc.id.clone(),
            agent: rsc.agent_spec(),
            active,
            flags,
            pending: rsc.pending_task.clone(),
        }
    }
}

fn node_view(n: &Node, fenced: bool) -> NodeView {
    NodeView {
        name: n.name.clone(),
        online: n.online && !fenced,
        standby: n.standby,
        standby_onfail: n.standby_onfail,
        maintenance: n.maintenance,
        unclean: n.unclean && !fenced,
        pending: n.pending && !fenced,
        shutdown: n.shutdown,
        remote: n.remote,
    }
}

/// Pacemaker's node listing order: case-insensitive, digit runs compared
/// as numbers.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let lx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ly = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let nx = std::str::from_utf8(&x[..lx])
                    .ok()
                    .and_then(|s| s.parse::<u128>().ok());
                let ny = std::str::from_utf8(&y[..ly])
                    .ok()
                    .and_then(|s| s.parse::<u128>().ok());
                let o = nx.cmp(&ny);
                if o.is_ne() {
                    return o;
                }
                x = &x[lx..];
                y = &y[ly..];
            }
            (Some(c), Some(d)) => {
                let o = c.to_ascii_lowercase().cmp(&d.to_ascii_lowercase());
                if o.is_ne() {
                    return o;
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}
