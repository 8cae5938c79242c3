//! From placement to transition: fencing, runnability (quorum, orders,
//! colocations, unfenceable nodes), required restarts, the actions and the
//! Transition Summary lines (§6, §9, §10 of the semantics notes).

use crate::view::{Action, SummaryLine};
use crate::working::{NodeIdx, RscIdx, Variant};
use crate::Sched;
use tandem_model::Role;

/// What the transition does to one primitive.
#[derive(Clone, Debug, Default)]
pub struct PrimitivePlan {
    /// Where it runs afterwards (None = stopped).
    pub target: Option<NodeIdx>,
    pub next_role: Option<Role>,
    /// Stops: (node, executed). A stop that cannot run leaves it there.
    pub stops: Vec<(NodeIdx, bool)>,
    pub start: bool,
    pub restart: bool,
    /// Stays where it is but is promoted or demoted.
    pub role_change: bool,
    /// No change at all (unmanaged, frozen or already right).
    pub untouched: bool,
}

#[derive(Default)]
pub struct Plan {
    pub fenced: Vec<bool>,
    pub primitives: Vec<PrimitivePlan>,
    pub actions: Vec<Action>,
    pub summary: Vec<SummaryLine>,
}

impl Sched<'_> {
    pub(crate) fn plan(&mut self) -> Plan {
        let mut plan = Plan {
            fenced: vec![false; self.nodes.len()],
            primitives: vec![PrimitivePlan::default(); self.rscs.len()],
            ..Plan::default()
        };
        let frozen =
            self.opts.fencing_enabled && !self.have_fencing_device && !self.opts.have_watchdog;
        self.plan_fencing(&mut plan, frozen);
        let prims: Vec<RscIdx> = (0..self.rscs.len())
            .filter(|&r| self.rscs[r].variant == Variant::Primitive)
            .collect();
        let mut runnable = vec![false; self.rscs.len()];
        for &r in &prims {
            runnable[r] = self.start_possible(r, &plan, frozen);
        }
        self.propagate_unrunnable(&mut runnable);
        for &r in &prims {
            plan.primitives[r] = self.plan_primitive(r, runnable[r], &plan, frozen);
        }
        self.propagate_restarts(&mut plan);
        self.propagate_blocked_stops(&mut plan);
        for &r in &prims {
            self.summarize(r, &mut plan);
        }
        self.build_actions(&mut plan);
        plan
    }

    fn plan_fencing(&mut self, plan: &mut Plan, frozen: bool) {
        let any_managed = self.rscs.iter().any(|r| r.managed);
        let quorate_or_ignore = self.cluster.status.have_quorum
            || self.opts.no_quorum_policy == crate::options::NoQuorumPolicy::Ignore;
        for n in 0..self.nodes.len() {
            let node = &self.nodes[n];
            if !node.unclean || frozen || !self.opts.fencing_enabled || !any_managed {
                continue;
            }
            if !(quorate_or_ignore || node.member) {
                continue;
            }
            plan.fenced[n] = true;
            let reason = node
                .fence_reason
                .clone()
                .unwrap_or_else(|| "node is unclean".into());
            plan.actions.push(Action {
                target: node.name.clone(),
                task: "fence".into(),
                node: Some(node.name.clone()),
                interval_ms: 0,
                pseudo: false,
                after: Vec::new(),
            });
            plan.summary.push(SummaryLine {
                verb: "Fence".into(),
                resource: node.name.clone(),
                detail: self.opts.fencing_action.clone(),
                reason: Some(reason),
            });
        }
    }

    /// Whether `r` can be (or stay) started where it was assigned.
    fn start_possible(&self, r: RscIdx, plan: &Plan, frozen: bool) -> bool {
        let rsc = &self.rscs[r];
        if frozen || rsc.assigned.is_none() {
            return false;
        }
        // An unmanaged resource can never be started: what depends on it
        // may only rely on it while it runs healthy where it is.
        if !rsc.managed {
            return !rsc.failed && !rsc.running_on.is_empty();
        }
        if self.quorum_blocks_start(r) {
            return false;
        }
        // A pending node cannot be probed, so a fencing device might already
        // be active there: starting it anywhere is unsafe.
        if rsc.class == "stonith"
            && self.nodes.iter().any(|n| n.pending)
            && rsc.running_on.is_empty()
        {
            return false;
        }
        // It cannot start elsewhere while it may still be active on a node
        // that can neither be stopped nor fenced.
        rsc.running_on
            .iter()
            .all(|&(n, _)| !self.nodes[n].unclean || plan.fenced[n])
    }

    /// Mandatory orders and colocations make dependents of unrunnable
    /// resources unrunnable, to a fixpoint.
    fn propagate_unrunnable(&mut self, runnable: &mut [bool]) {
        let mut promote_blocked: Vec<RscIdx> = Vec::new();
        self.propagate_unrunnable_to_fixpoint(runnable, &mut promote_blocked);
        for p in promote_blocked {
            if self.rscs[p].next_role == Some(Role::Promoted) && self.rscs[p].role != Role::Promoted
            {
                self.rscs[p].next_role = Some(Role::Unpromoted);
            }
        }
    }

    /// Mandatory orders and colocations make dependents of unrunnable
    /// resources unrunnable (or, for promotions, unpromotable).
    fn propagate_unrunnable_to_fixpoint(
        &self,
        runnable: &mut [bool],
        promote_blocked: &mut Vec<RscIdx>,
    ) {
        // Each pass may settle only one more link of a chain.
        let pass_cost = (self.orders.len() + self.colocations.len()) as u64 + 1;
        while self.charge(pass_cost) {
            let mut changed = false;
            for o in &self.orders {
                let blocking = matches!(o.first_action.as_str(), "start" | "promote")
                    && matches!(o.then_action.as_str(), "start" | "promote");
                if !o.mandatory || !blocking {
                    continue;
                }
                if self.interleaved_pair(o) {
                    changed |= self.propagate_interleaved(o, runnable);
                    continue;
                }
                let firsts: Vec<RscIdx> = o
                    .first
                    .iter()
                    .flat_map(|&f| self.primitives_of(f))
                    .collect();
                let ok = if self.is_clone_ref(&o.first) {
                    self.clone_first_runnable(&o.first, o.require_all, runnable)
                } else if o.require_all {
                    firsts.iter().all(|&f| runnable[f])
                } else {
                    firsts.iter().any(|&f| runnable[f])
                };
                if ok {
                    continue;
                }
                if o.then_action == "promote" {
                    // Only the promotion waits; the instances still start.
                    for &t in &o.then {
                        promote_blocked.extend(self.primitives_of(t));
                    }
                    continue;
                }
                for &t in &o.then {
                    for p in self.primitives_of(t) {
                        // An asymmetric order only blocks a change: a
                        // resource already running where it stays is kept.
                        let already = !o.symmetrical
                            && self.rscs[p].running_on.len() == 1
                            && Some(self.rscs[p].running_on[0].0) == self.rscs[p].assigned;
                        if runnable[p] && self.rscs[p].managed && !already {
                            runnable[p] = false;
                            changed = true;
                        }
                    }
                }
            }
            for c in &self.colocations {
                if !c.score.is_pos_infinity() {
                    continue;
                }
                let prims = self.primitives_of(c.primary);
                let primary_ok = match self.rscs[c.primary].variant {
                    Variant::Group => prims.iter().all(|&p| runnable[p]),
                    _ => prims.iter().any(|&p| runnable[p]),
                };
                if primary_ok {
                    continue;
                }
                if c.dependent_role == Some(Role::Promoted) {
                    promote_blocked.extend(self.primitives_of(c.dependent));
                    continue;
                }
                for p in self.primitives_of(c.dependent) {
                    if runnable[p] && self.rscs[p].managed {
                        runnable[p] = false;
                        changed = true;
                    }
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// A clone as the first of an order is runnable when enough instances
    /// are: `clone-min` of them (1 by default, or with require-all=false).
    fn clone_first_runnable(
        &self,
        firsts: &[RscIdx],
        require_all: bool,
        runnable: &[bool],
    ) -> bool {
        firsts.iter().all(|&f| {
            if self.rscs[f].variant != Variant::Clone {
                return self.primitives_of(f).iter().all(|&p| runnable[p]);
            }
            let needed = if require_all {
                self.rscs[f]
                    .meta
                    .get("clone-min")
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(1)
                    .max(1)
            } else {
                1
            };
            let ready = self.rscs[f]
                .children
                .iter()
                .filter(|&&i| {
                    let prims = self.primitives_of(i);
                    !prims.is_empty() && prims.iter().all(|&p| runnable[p])
                })
                .count();
            ready >= needed
        })
    }

    /// "first clone A then clone B" with B interleaved: instance by instance.
    fn interleaved_pair(&self, o: &crate::order::OrderRule) -> bool {
        let (&[a], &[b]) = (o.first.as_slice(), o.then.as_slice()) else {
            return false;
        };
        // require-all=false and clone-min look at the clone as a whole.
        o.require_all
            && !self.rscs[a].meta.contains_key("clone-min")
            && self.rscs[a].variant == Variant::Clone
            && self.rscs[b].variant == Variant::Clone
            && self.rscs[b].interleave
    }

    /// Each instance of the then-clone needs a runnable instance of the
    /// first clone on its own node.
    fn propagate_interleaved(&self, o: &crate::order::OrderRule, runnable: &mut [bool]) -> bool {
        let (a, b) = (o.first[0], o.then[0]);
        let ready_nodes: Vec<NodeIdx> = self.rscs[a]
            .children
            .iter()
            .filter(|&&i| self.primitives_of(i).iter().all(|&p| runnable[p]))
            .filter_map(|&i| self.instance_node(i))
            .collect();
        let mut changed = false;
        for &i in &self.rscs[b].children {
            let Some(n) = self.instance_node(i) else {
                continue;
            };
            if ready_nodes.contains(&n) {
                continue;
            }
            for p in self.primitives_of(i) {
                if runnable[p] && self.rscs[p].managed {
                    runnable[p] = false;
                    changed = true;
                }
            }
        }
        changed
    }

    /// Whether moving `r` away from `from` is a live migration.
    pub(crate) fn migrates(&self, r: RscIdx, from: NodeIdx) -> bool {
        let rsc = &self.rscs[r];
        rsc.allow_migrate && !rsc.failed && self.nodes[from].online && !self.nodes[from].unclean
    }

    /// Fencing is enabled without any way to fence: nothing may change.
    fn frozen(&self) -> bool {
        self.opts.fencing_enabled && !self.have_fencing_device && !self.opts.have_watchdog
    }

    fn is_clone_ref(&self, rs: &[RscIdx]) -> bool {
        rs.iter().any(|&r| self.rscs[r].variant == Variant::Clone)
    }

    fn plan_primitive(
        &self,
        r: RscIdx,
        runnable: bool,
        plan: &Plan,
        frozen: bool,
    ) -> PrimitivePlan {
        let rsc = &self.rscs[r];
        if frozen || !rsc.managed {
            return PrimitivePlan {
                untouched: true,
                ..Default::default()
            };
        }
        let target = if runnable { rsc.assigned } else { None };
        let stays = match target {
            Some(t) => {
                rsc.running_on.len() == 1
                    && rsc.running_on[0].0 == t
                    && !rsc.failed
                    && !rsc.multiply_active
                    && rsc.force_stop_on.is_empty()
            }
            None => rsc.running_on.is_empty() && rsc.force_stop_on.is_empty(),
        };
        let mut p = PrimitivePlan {
            target,
            next_role: rsc.next_role,
            ..Default::default()
        };
        if stays {
            let current_role = rsc.running_on.first().map(|&(_, role)| role);
            p.role_change =
                target.is_some() && current_role.is_some() && rsc.next_role != current_role;
            return p;
        }
        for &(n, _) in &rsc.running_on {
            let in_flight = rsc.pending_on.contains(&n);
            p.stops.push((n, self.stop_executes(n, plan) && !in_flight));
        }
        for &n in &rsc.force_stop_on {
            if !p.stops.iter().any(|&(s, _)| s == n) {
                p.stops.push((n, self.stop_executes(n, plan)));
            }
        }
        p.start = target.is_some();
        p
    }

    fn stop_executes(&self, n: NodeIdx, plan: &Plan) -> bool {
        plan.fenced[n] || (self.nodes[n].online && !self.nodes[n].unclean)
    }

    /// A required start or stop of an order's first resource forces a
    /// running, staying "then" resource to restart.
    fn propagate_restarts(&self, plan: &mut Plan) {
        while self.charge(self.orders.len() as u64 + 1) {
            let mut changed = false;
            for o in &self.orders {
                // A clone's instances coming and going elsewhere does not
                // restart what is ordered after the clone.
                if !o.mandatory || self.is_clone_ref(&o.first) {
                    continue;
                }
                let firsts: Vec<RscIdx> = o
                    .first
                    .iter()
                    .flat_map(|&f| self.primitives_of(f))
                    .collect();
                // A live migration moves the first without a restart of
                // what is ordered after it.
                let first_starts = firsts.iter().any(|&f| {
                    plan.primitives[f].start
                        && !self.rscs[f]
                            .running_on
                            .first()
                            .is_some_and(|&(c, _)| self.migrates(f, c))
                });
                let first_stops = o.symmetrical
                    && firsts
                        .iter()
                        .any(|&f| plan.primitives[f].stops.iter().any(|&(_, e)| e));
                if !(first_starts || first_stops) {
                    continue;
                }
                for &t in &o.then {
                    for p in self.primitives_of(t) {
                        let pp = &plan.primitives[p];
                        let staying = !pp.untouched
                            && pp.target.is_some()
                            && pp.stops.is_empty()
                            && !pp.start
                            && !self.rscs[p].running_on.is_empty();
                        if staying {
                            let node = self.rscs[p].running_on[0].0;
                            let pp = &mut plan.primitives[p];
                            pp.restart = true;
                            pp.start = true;
                            pp.stops.push((node, true));
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// With a symmetrical mandatory order "A then B", A stops only after B
    /// stops: if B is active and cannot stop, A cannot stop either.
    fn propagate_blocked_stops(&self, plan: &mut Plan) {
        while self.charge(self.orders.len() as u64 + 1) {
            let mut changed = false;
            for o in self.orders.iter().filter(|o| o.mandatory && o.symmetrical) {
                let thens: Vec<RscIdx> =
                    o.then.iter().flat_map(|&t| self.primitives_of(t)).collect();
                let then_stuck = thens.iter().any(|&t| {
                    !self.rscs[t].running_on.is_empty()
                        && (!self.rscs[t].managed
                            || plan.primitives[t].stops.iter().any(|&(_, e)| !e))
                });
                if !then_stuck {
                    continue;
                }
                for &f in &o.first {
                    for p in self.primitives_of(f) {
                        let pp = &mut plan.primitives[p];
                        if pp.stops.iter().any(|&(_, e)| e) {
                            for s in pp.stops.iter_mut() {
                                s.1 = false;
                            }
                            pp.start = false;
                            pp.target = None;
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                return;
            }
        }
    }

    fn summarize(&self, r: RscIdx, plan: &mut Plan) {
        let rsc = &self.rscs[r];
        let p = plan.primitives[r].clone();
        if p.untouched {
            return;
        }
        let name = |n: NodeIdx| self.nodes[n].name.clone();
        let line = |verb: &str, detail: String| SummaryLine {
            verb: verb.into(),
            resource: rsc.id.clone(),
            detail,
            reason: None,
        };
        let current: Vec<(NodeIdx, Role)> = rsc.running_on.clone();
        let promotable = self.clone_of(r).is_some_and(|c| self.rscs[c].promotable);
        let next = p.next_role.unwrap_or(Role::Started);
        // Promotable instances show their role beside the node.
        let at = |role: Role, n: NodeIdx| {
            if promotable {
                format!("{} {}", role, name(n))
            } else {
                name(n)
            }
        };
        match (current.as_slice(), p.target) {
            ([], Some(t)) if p.start && promotable && next == Role::Promoted => plan
                .summary
                .push(line("Promote", format!("Stopped -> Promoted {}", name(t)))),
            ([], Some(t)) if p.start => plan.summary.push(line("Start", name(t))),
            // Placed but its start cannot run: Pacemaker lists it as blocked.
            ([], None) if rsc.assigned.is_some() && rsc.managed && !self.frozen() => {
                let n = rsc.assigned.unwrap_or_default();
                plan.summary.push(SummaryLine {
                    reason: Some("blocked".into()),
                    ..line("Start", name(n))
                })
            }
            ([], _) => {}
            (cur, None) => {
                for &(n, role) in cur {
                    plan.summary.push(line("Stop", at(role, n)));
                }
            }
            ([(c, role)], Some(t)) if *c == t => {
                if p.role_change {
                    let verb = if next > *role { "Promote" } else { "Demote" };
                    plan.summary
                        .push(line(verb, format!("{} -> {} {}", role, next, name(t))));
                } else if rsc.failed {
                    plan.summary.push(line("Recover", at(*role, t)));
                } else if p.restart || p.start {
                    plan.summary.push(line("Restart", at(*role, t)));
                }
            }
            ([(c, role)], Some(t)) => {
                let verb = if rsc.failed {
                    "Recover"
                } else if self.migrates(r, *c) {
                    "Migrate"
                } else {
                    "Move"
                };
                let detail = if promotable && *role != next {
                    format!("{} {} -> {} {}", role, name(*c), next, name(t))
                } else if promotable {
                    format!("{} {} -> {}", role, name(*c), name(t))
                } else {
                    format!("{} -> {}", name(*c), name(t))
                };
                plan.summary.push(line(verb, detail));
            }
            (cur, Some(t)) => {
                let verb = if rsc.failed { "Recover" } else { "Move" };
                if cur.iter().any(|&(n, _)| n == t) {
                    plan.summary.push(line(verb, name(t)));
                } else {
                    let from = cur
                        .iter()
                        .map(|&(n, _)| name(n))
                        .collect::<Vec<_>>()
                        .join(" ");
                    plan.summary
                        .push(line(verb, format!("{} -> {}", from, name(t))));
                }
            }
        }
    }
}
