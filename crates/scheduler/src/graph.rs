//! The transition graph: the actions each primitive's plan needs (demote,
//! stop, migrate_to/migrate_from, start, promote, recurring monitors) in an
//! order that respects every dependency: fencing first, each resource's own
//! sequence, and every ordering constraint (and its inverse when
//! symmetrical). Ties keep a stable, deterministic order.

use crate::actions::Plan;
use crate::view::Action;
use crate::working::{NodeIdx, RscIdx, Variant};
use crate::Sched;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use tandem_model::Role;

/// Actions of one resource by task, as indices into the action list.
type TaskIndex = BTreeMap<(RscIdx, &'static str), Vec<usize>>;

impl Sched<'_> {
    pub(crate) fn build_actions(&mut self, plan: &mut Plan) {
        if self.out_of_work() {
            return;
        }
        let fences = std::mem::take(&mut plan.actions);
        let mut actions = fences.clone();
        let mut by_task: TaskIndex = BTreeMap::new();
        let mut edges: Vec<(usize, usize)> = Vec::new();
        for r in 0..self.rscs.len() {
            if self.rscs[r].variant == Variant::Primitive && !plan.primitives[r].untouched {
                self.resource_actions(r, plan, &mut actions, &mut by_task, &mut edges);
            }
        }
        for c in 0..self.rscs.len() {
            if self.rscs[c].variant != Variant::Clone {
                continue;
            }
            if self.meta_flag(c, "notify") {
                self.notifications(c, plan, &mut actions, &by_task, &mut edges);
            }
            if self.meta_flag(c, "ordered") {
                self.ordered_instances(c, &by_task, &mut edges);
            }
        }
        for f in 0..fences.len() {
            edges.extend((fences.len()..actions.len()).map(|a| (f, a)));
        }
        self.ordering_edges(&by_task, &mut edges);
        plan.actions = match topological_order(actions.len(), &edges) {
            Ok(order) => with_dependencies(&actions, &order, &edges),
            Err(()) => {
                self.warnings.push(
                    "ordering constraints form a loop; actions run one by one in plan order".into(),
                );
                for (i, a) in actions.iter_mut().enumerate().skip(1) {
                    a.after = vec![i - 1];
                }
                actions
            }
        };
    }

    /// One resource's actions, chained demote → stop → migrate → start →
    /// promote → monitors.
    fn resource_actions(
        &self,
        r: RscIdx,
        plan: &Plan,
        actions: &mut Vec<Action>,
        by_task: &mut TaskIndex,
        edges: &mut Vec<(usize, usize)>,
    ) {
        let rsc = &self.rscs[r];
        let p = &plan.primitives[r];
        let name = |n: NodeIdx| Some(self.nodes[n].name.clone());
        let mut chain: Vec<usize> = Vec::new();
        let mut push =
            |task: &'static str, node: Option<String>, interval_ms: u64, pseudo: bool| {
                actions.push(Action {
                    target: rsc.id.clone(),
                    task: task.into(),
                    node,
                    interval_ms,
                    pseudo,
                    after: Vec::new(),
                });
                let i = actions.len() - 1;
                by_task.entry((r, task)).or_default().push(i);
                if let Some(&prev) = chain.last() {
                    edges.push((prev, i));
                }
                chain.push(i);
            };
        let next = p.next_role.unwrap_or(Role::Started);
        let current = rsc.running_on.first().copied();
        let demote = current.is_some_and(|(_, role)| role == Role::Promoted)
            && (!p.stops.is_empty() || (p.role_change && next < Role::Promoted));
        if let (true, Some((n, _))) = (demote, current) {
            push("demote", name(n), 0, false);
        }
        let migrating = match (current, p.target) {
            (Some((c, _)), Some(t)) => {
                c != t && p.start && rsc.running_on.len() == 1 && !p.restart && self.migrates(r, c)
            }
            _ => false,
        };
        if migrating {
            let (c, t) = (
                current.map(|(c, _)| c).unwrap_or_default(),
                p.target.unwrap_or_default(),
            );
            push("migrate_to", name(c), 0, false);
            push("migrate_from", name(t), 0, false);
        }
        for &(n, executed) in &p.stops {
            push("stop", name(n), 0, plan.fenced[n] || !executed);
        }
        let Some(t) = p.target else { return };
        if p.start && !migrating {
            push("start", name(t), 0, false);
        }
        let promote = next == Role::Promoted
            && (p.start || (p.role_change && current.is_some_and(|(_, role)| role < next)));
        if promote {
            push("promote", name(t), 0, false);
        }
        if p.start || p.role_change {
            for op in rsc
                .operations
                .iter()
                .filter(|o| o.name == "monitor" && o.interval_ms > 0 && o.enabled)
            {
                let role_fits = match op.role {
                    Some(Role::Promoted) => next == Role::Promoted,
                    Some(Role::Stopped) => false,
                    _ => next != Role::Promoted || op.role.is_none(),
                };
                if role_fits {
                    push("monitor", name(t), op.interval_ms, false);
                }
            }
        }
    }

    /// Clone notifications (notify=true): for each kind of action the clone
    /// takes (stop, start, demote, promote), every instance active before
    /// is notified before it, and every instance active after is notified
    /// after it.
    fn notifications(
        &self,
        c: RscIdx,
        plan: &Plan,
        actions: &mut Vec<Action>,
        by_task: &TaskIndex,
        edges: &mut Vec<(usize, usize)>,
    ) {
        let prims = self.primitives_of(c);
        let clone_id = self.rscs[c].id.clone();
        for kind in ["stop", "start", "demote", "promote"] {
            let work: Vec<usize> = prims
                .iter()
                .flat_map(|&p| by_task.get(&(p, kind)).cloned().unwrap_or_default())
                .collect();
            if work.is_empty() {
                continue;
            }
            for (phase, active) in [
                ("pre", self.active_before(&prims)),
                ("post", self.active_after(&prims, plan)),
            ] {
                let start = actions.len();
                actions.push(Action {
                    target: clone_id.clone(),
                    // Pacemaker names the post phase after the result.
                    task: match (phase, kind) {
                        ("pre", k) => format!("pre_notify_{k}"),
                        (_, "start") => "post_notify_running".into(),
                        (_, "stop") => "post_notify_stopped".into(),
                        (_, k) => format!("post_notify_{k}d"),
                    },
                    node: None,
                    interval_ms: 0,
                    pseudo: true,
                    after: Vec::new(),
                });
                for (p, n) in active {
                    actions.push(Action {
                        target: self.rscs[p].id.clone(),
                        task: "notify".into(),
                        node: Some(self.nodes[n].name.clone()),
                        interval_ms: 0,
                        pseudo: false,
                        after: Vec::new(),
                    });
                    edges.push((start, actions.len() - 1));
                }
                let notifies = start..actions.len();
                if phase == "pre" {
                    edges.extend(notifies.flat_map(|a| work.iter().map(move |&w| (a, w))));
                } else {
                    edges.extend(
                        work.iter()
                            .flat_map(|&w| notifies.clone().map(move |a| (w, a))),
                    );
                }
            }
        }
    }

    /// ordered=true: instances start one after another in instance order
    /// and stop in the reverse order.
    fn ordered_instances(&self, c: RscIdx, by_task: &TaskIndex, edges: &mut Vec<(usize, usize)>) {
        let prims = self.primitives_of(c);
        let of = |task: &'static str| -> Vec<usize> {
            prims
                .iter()
                .flat_map(|&p| by_task.get(&(p, task)).cloned().unwrap_or_default())
                .collect()
        };
        let starts = of("start");
        edges.extend(starts.windows(2).map(|w| (w[0], w[1])));
        let stops = of("stop");
        edges.extend(stops.windows(2).map(|w| (w[1], w[0])));
    }

    fn active_before(&self, prims: &[RscIdx]) -> Vec<(RscIdx, NodeIdx)> {
        prims
            .iter()
            .flat_map(|&p| self.rscs[p].running_on.iter().map(move |&(n, _)| (p, n)))
            .collect()
    }

    fn active_after(&self, prims: &[RscIdx], plan: &Plan) -> Vec<(RscIdx, NodeIdx)> {
        prims
            .iter()
            .filter_map(|&p| {
                let pp = &plan.primitives[p];
                if pp.untouched {
                    return self.rscs[p].running_on.first().map(|&(n, _)| (p, n));
                }
                pp.target.map(|t| (p, t))
            })
            .collect()
    }

    fn meta_flag(&self, r: RscIdx, name: &str) -> bool {
        self.rscs[r]
            .meta
            .get(name)
            .and_then(|v| tandem_model::parse_bool(v))
            .unwrap_or(false)
    }

    /// Edges from ordering constraints: "first A then B" puts B's action
    /// after A's; a symmetrical order also puts A's inverse after B's.
    fn ordering_edges(&self, by_task: &TaskIndex, edges: &mut Vec<(usize, usize)>) {
        let lookup = |r: RscIdx, task: &str| -> Vec<usize> {
            let key: &'static str = match task {
                "start" => "start",
                "stop" => "stop",
                "promote" => "promote",
                "demote" => "demote",
                _ => return Vec::new(),
            };
            let mut out = by_task.get(&(r, key)).cloned().unwrap_or_default();
            // A migration stands in for the start and stop of the resource.
            if key == "start" {
                out.extend(by_task.get(&(r, "migrate_from")).into_iter().flatten());
            }
            if key == "stop" {
                out.extend(by_task.get(&(r, "migrate_to")).into_iter().flatten());
            }
            out
        };
        // A promotable clone demotes before it promotes another instance,
        // so promoted-max is never exceeded, even briefly.
        for c in (0..self.rscs.len()).filter(|&c| self.rscs[c].promotable) {
            let prims = self.primitives_of(c);
            for &a in &prims {
                for d in lookup(a, "demote") {
                    for &b in &prims {
                        edges.extend(lookup(b, "promote").into_iter().map(|p| (d, p)));
                    }
                }
            }
        }
        for o in &self.orders {
            let firsts: Vec<RscIdx> = o
                .first
                .iter()
                .flat_map(|&f| self.primitives_of(f))
                .collect();
            let thens: Vec<RscIdx> = o.then.iter().flat_map(|&t| self.primitives_of(t)).collect();
            // Sets of unordered members pair every first with every then.
            if !self.charge((firsts.len() * thens.len()) as u64) {
                return;
            }
            for &f in &firsts {
                for &t in &thens {
                    for a in lookup(f, &o.first_action) {
                        edges.extend(lookup(t, &o.then_action).into_iter().map(|b| (a, b)));
                    }
                    if o.symmetrical {
                        for b in lookup(t, inverse(&o.then_action)) {
                            edges.extend(
                                lookup(f, inverse(&o.first_action))
                                    .into_iter()
                                    .map(|a| (b, a)),
                            );
                        }
                    }
                }
            }
        }
    }
}

fn inverse(task: &str) -> &'static str {
    match task {
        "start" => "stop",
        "stop" => "start",
        "promote" => "demote",
        "demote" => "promote",
        _ => "",
    }
}

/// The actions in `order`, each listing the positions of the actions it
/// waits for.
fn with_dependencies(actions: &[Action], order: &[usize], edges: &[(usize, usize)]) -> Vec<Action> {
    let mut position = vec![0; actions.len()];
    for (pos, &i) in order.iter().enumerate() {
        position[i] = pos;
    }
    let mut sorted: Vec<Action> = order.iter().map(|&i| actions[i].clone()).collect();
    for &(a, b) in edges {
        if a != b {
            sorted[position[b]].after.push(position[a]);
        }
    }
    for a in &mut sorted {
        a.after.sort_unstable();
        a.after.dedup();
    }
    sorted
}

/// Kahn's algorithm, always taking the lowest-numbered ready action so the
/// result is deterministic. `Err` when the edges contain a cycle.
fn topological_order(count: usize, edges: &[(usize, usize)]) -> Result<Vec<usize>, ()> {
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut waiting = vec![0usize; count];
    for &(a, b) in edges {
        if a != b {
            after[a].push(b);
            waiting[b] += 1;
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..count)
        .filter(|&i| waiting[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(count);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &j in &after[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.push(Reverse(j));
            }
        }
    }
    if order.len() == count {
        Ok(order)
    } else {
        Err(())
    }
}

#[cfg(test)]
mod tests {
    use super::topological_order;

    #[test]
    fn dependencies_come_first_and_ties_keep_their_order() {
        assert_eq!(
            topological_order(4, &[(3, 0), (2, 1)]),
            Ok(vec![2, 1, 3, 0])
        );
    }

    #[test]
    fn cycles_are_reported() {
        assert_eq!(topological_order(2, &[(0, 1), (1, 0)]), Err(()));
    }
}
