//! Assignment: choosing a node for every resource, depth first through
//! colocation primaries, groups member by member, clones instance by
//! instance (§3, §4, §7, §8 of the semantics notes).

use crate::options::{NoQuorumPolicy, PlacementStrategy};
use crate::working::{NodeIdx, RscIdx, Variant};
use crate::Sched;
use tandem_model::{Role, Score};

impl Sched<'_> {
    pub(crate) fn assign_all(&mut self) {
        let mut order = self.top.clone();
        order.sort_by_key(|&r| std::cmp::Reverse(self.rscs[r].priority));
        if self.opts.placement_strategy != PlacementStrategy::Default {
            order.sort_by_key(|&r| std::cmp::Reverse(self.current_node_score(r)));
            order.sort_by_key(|&r| std::cmp::Reverse(self.rscs[r].priority));
        }
        // Remote connections first: whether their nodes can host anything
        // depends on where (and whether) the connections run.
        let (connections, others): (Vec<RscIdx>, Vec<RscIdx>) = order
            .into_iter()
            .partition(|&r| self.is_remote_connection(r));
        for r in connections {
            self.assign(r);
        }
        self.settle_remote_nodes();
        for r in others {
            self.assign(r);
        }
    }

    fn is_remote_connection(&self, r: RscIdx) -> bool {
        let id = &self.rscs[r].id;
        self.nodes
            .iter()
            .any(|n| n.connection.as_deref() == Some(id.as_str()))
    }

    /// A remote node is usable only if its connection was placed.
    fn settle_remote_nodes(&mut self) {
        for n in 0..self.nodes.len() {
            let Some(conn) = self.nodes[n].connection.clone() else {
                continue;
            };
            let placed = self.by_id.get(&conn).is_some_and(|&c| {
                self.primitives_of(c)
                    .iter()
                    .any(|&p| self.rscs[p].assigned.is_some())
            });
            self.nodes[n].online = placed;
        }
    }

    /// The score of `r`'s own table on the node it runs on now (a group or
    /// clone: where its first active primitive runs); -INFINITY if inactive.
    fn current_node_score(&self, r: RscIdx) -> Score {
        let current = self
            .primitives_of(r)
            .into_iter()
            .find_map(|p| self.rscs[p].current_node());
        match current {
            Some(n) => self.rscs[r].allowed[n].unwrap_or(Score::NEG_INFINITY),
            None => Score::NEG_INFINITY,
        }
    }

    /// Assigns `r` (and whatever it depends on) if not done yet.
    pub(crate) fn assign(&mut self, r: RscIdx) -> Option<NodeIdx> {
        if let Some(parent) = self.rscs[r].parent {
            if !self.rscs[parent].assigning && !self.rscs[parent].assigned_done {
                self.assign(parent);
            }
        }
        if self.rscs[r].assigned_done {
            return self.rscs[r].assigned;
        }
        if self.rscs[r].assigning {
            return None;
        }
        self.rscs[r].assigning = true;
        let result = match self.rscs[r].variant {
            Variant::Primitive => self.assign_primitive(r),
            Variant::Group => self.assign_group(r),
            Variant::Clone => self.assign_clone(r),
        };
        self.rscs[r].assigning = false;
        self.rscs[r].assigned_done = true;
        result
    }

    fn assign_primitive(&mut self, r: RscIdx) -> Option<NodeIdx> {
        let this_with = self.effective_this_with(r);
        let with_this = self.effective_with_this(r);
        for pass_mandatory in [true, false] {
            for &ci in &this_with {
                if self.colocations[ci].mandatory() != pass_mandatory {
                    continue;
                }
                let primary = self.colocations[ci].primary;
                self.assign(primary);
                self.apply_colocation_to_dependent(r, ci);
            }
            for &ci in &with_this {
                if self.colocations[ci].mandatory() == pass_mandatory {
                    self.add_dependent_scores(r, ci);
                }
            }
        }
        self.limit_role_before_choice(r);
        let chosen = if !self.rscs[r].managed {
            self.rscs[r].next_role = Some(self.rscs[r].role);
            self.rscs[r].current_node()
        } else if self.opts.stop_all_resources {
            None
        } else {
            let prefer = self.ban_insufficient_capacity(r);
            self.best_node(r, prefer)
        };
        self.commit_assignment(r, chosen);
        self.rscs[r].assigned
    }

    fn limit_role_before_choice(&mut self, r: RscIdx) {
        let rsc = &mut self.rscs[r];
        if rsc.target_role == Some(Role::Stopped) && rsc.next_role.is_none() {
            rsc.next_role = Some(Role::Stopped);
        }
        if rsc.next_role == Some(Role::Stopped) {
            for s in rsc.allowed.iter_mut().flatten() {
                *s = Score::NEG_INFINITY;
            }
        }
    }

    /// Records `node` as `r`'s placement if it is usable there.
    pub(crate) fn commit_assignment(&mut self, r: RscIdx, node: Option<NodeIdx>) {
        let managed = self.rscs[r].managed;
        let usable = node.filter(|&n| {
            !managed
                || (self.nodes[n].available()
                    && self.rscs[r].allowed[n].is_some_and(|s| s.value() >= 0))
        });
        self.rscs[r].assigned = usable;
        match usable {
            Some(n) => {
                self.nodes[n].assigned_count += 1;
                self.consume_capacity(r, n);
                if self.rscs[r].next_role.is_none() {
                    self.rscs[r].next_role = Some(self.started_role(r));
                }
            }
            None => {
                if managed {
                    self.rscs[r].next_role = Some(Role::Stopped);
                }
            }
        }
    }

    /// The role a started instance of `r` has before promotion.
    pub(crate) fn started_role(&self, r: RscIdx) -> Role {
        if self.clone_of(r).is_some_and(|c| self.rscs[c].promotable) {
            Role::Unpromoted
        } else {
            Role::Started
        }
    }

    /// The best node for `r` by Pacemaker's comparison (§4), honouring a
    /// preferred node and the current node on equal positive scores.
    pub(crate) fn best_node(&self, r: RscIdx, prefer: Option<NodeIdx>) -> Option<NodeIdx> {
        let current = self.rscs[r].current_node();
        // Only the best node matters, so a linear scan instead of a sort.
        let best = (0..self.nodes.len())
            .filter(|&n| self.rscs[r].allowed[n].is_some())
            .min_by(|&a, &b| self.compare_nodes(r, a, b, current))?;
        let score_of = |n: NodeIdx| self.effective_score(r, n);
        if let Some(p) = prefer {
            if self.rscs[r].allowed[p].is_some()
                && score_of(p) >= score_of(best)
                && self.nodes[p].available()
                && score_of(p).value() >= 0
            {
                return Some(p);
            }
        }
        let unique_instance = self.clone_of(r).is_some_and(|c| self.rscs[c].unique);
        if !unique_instance && score_of(best).value() > 0 && self.nodes[best].available() {
            if let Some(cur) = current {
                if cur != best && self.nodes[cur].available() && score_of(cur) == score_of(best) {
                    return Some(cur);
                }
            }
        }
        Some(best)
    }

    fn effective_score(&self, r: RscIdx, n: NodeIdx) -> Score {
        if self.nodes[n].available() {
            self.rscs[r].allowed[n].unwrap_or(Score::NEG_INFINITY)
        } else {
            Score::NEG_INFINITY
        }
    }

    fn compare_nodes(
        &self,
        r: RscIdx,
        a: NodeIdx,
        b: NodeIdx,
        current: Option<NodeIdx>,
    ) -> std::cmp::Ordering {
        let (sa, sb) = (self.effective_score(r, a), self.effective_score(r, b));
        sb.cmp(&sa)
            .then_with(|| {
                if self.opts.placement_strategy == PlacementStrategy::Balanced {
                    self.compare_capacity(a, b)
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .then_with(|| {
                if self.opts.placement_strategy == PlacementStrategy::Minimal {
                    std::cmp::Ordering::Equal
                } else {
                    self.nodes[a]
                        .assigned_count
                        .cmp(&self.nodes[b].assigned_count)
                }
            })
            .then_with(|| {
                if self.opts.placement_strategy == PlacementStrategy::Minimal {
                    return std::cmp::Ordering::Equal;
                }
                match current {
                    Some(c) if c == a && c != b => std::cmp::Ordering::Less,
                    Some(c) if c == b && c != a => std::cmp::Ordering::Greater,
                    _ => std::cmp::Ordering::Equal,
                }
            })
            .then_with(|| {
                self.nodes[a]
                    .name
                    .as_bytes()
                    .cmp(self.nodes[b].name.as_bytes())
            })
    }

    fn assign_group(&mut self, g: RscIdx) -> Option<NodeIdx> {
        let members = self.rscs[g].children.clone();
        let mut first = None;
        for m in members.iter().copied() {
            let node = self.assign(m);
            if first.is_none() {
                first = node;
            }
        }
        self.rscs[g].assigned = members.first().and_then(|&m| self.rscs[m].assigned);
        self.rscs[g].next_role = members.first().and_then(|&m| self.rscs[m].next_role);
        first
    }

    /// Clone assignment: instances keep their current nodes where they can,
    /// the rest spread by the usual node comparison.
    fn assign_clone(&mut self, c: RscIdx) -> Option<NodeIdx> {
        for ci in self.this_with[c].clone() {
            let p = self.colocations[ci].primary;
            self.assign(p);
            // A role colocation of a promotable clone affects promotion only.
            let role_only =
                self.rscs[c].promotable && self.colocations[ci].dependent_role.is_some();
            if !role_only {
                self.apply_colocation_to_dependent(c, ci);
            }
        }
        let instances = self.rscs[c].children.clone();
        let max = self.rscs[c].clone_max;
        let per_node = self.rscs[c].clone_node_max;
        let mut counts = vec![0usize; self.nodes.len()];
        let mut assigned = 0usize;
        // Active instances keep their node only up to an even share.
        let usable = (0..self.nodes.len())
            .filter(|&n| {
                self.nodes[n].available() && self.rscs[c].allowed[n].is_some_and(|s| s.value() >= 0)
            })
            .count();
        let optimal = (max / usable.max(1)).max(1);
        // Pass 1: active instances stay where they are if still allowed.
        let mut order = instances.clone();
        order.sort_by_key(|&i| self.instance_current(i).is_none());
        let mut done = vec![false; self.rscs.len()];
        for &i in &order {
            let Some(cur) = self.instance_current(i) else {
                continue;
            };
            if assigned >= max || counts[cur] >= per_node.min(optimal) || self.instance_failed(i) {
                continue;
            }
            self.restrict_instance(i, c, &counts);
            let prims = self.primitives_of(i);
            let ok = prims.iter().all(|&p| {
                self.rscs[p].allowed[cur].is_some_and(|s| s.value() >= 0)
                    && self.nodes[cur].available()
            });
            if !ok {
                continue;
            }
            done[i] = true;
            if let Some(n) = self.assign_instance(i, Some(cur)) {
                counts[n] += 1;
                assigned += 1;
            }
        }
        for &i in &order {
            if done[i] {
                continue;
            }
            if assigned >= max {
                self.stop_instance(i);
                continue;
            }
            self.restrict_instance(i, c, &counts);
            if let Some(n) = self.assign_instance(i, None) {
                counts[n] += 1;
                assigned += 1;
            }
        }
        if self.rscs[c].promotable {
            self.choose_promoted(c);
        }
        if self.rscs[c].promotable {
            self.choose_promoted(c);
        }
        self.rscs[c].assigned = None;
        self.rscs[c].next_role = Some(Role::Started);
        None
    }

    fn instance_current(&self, i: RscIdx) -> Option<NodeIdx> {
        self.primitives_of(i)
            .iter()
            .find_map(|&p| self.rscs[p].current_node())
    }

    fn instance_failed(&self, i: RscIdx) -> bool {
        self.primitives_of(i).iter().any(|&p| self.rscs[p].failed)
    }

    /// Bans an instance from nodes the clone may not use or that are full.
    fn restrict_instance(&mut self, i: RscIdx, c: RscIdx, counts: &[usize]) {
        let per_node = self.rscs[c].clone_node_max;
        for n in 0..self.nodes.len() {
            let clone_score = self.rscs[c].allowed[n];
            let banned = clone_score.is_none_or(|s| s.value() < 0) || counts[n] >= per_node;
            if banned {
                for p in self.primitives_of(i) {
                    if self.rscs[p].allowed[n].is_some() {
                        self.rscs[p].allowed[n] = Some(Score::NEG_INFINITY);
                    }
                }
                if self.rscs[i].allowed[n].is_some() {
                    self.rscs[i].allowed[n] = Some(Score::NEG_INFINITY);
                }
            }
        }
    }

    fn assign_instance(&mut self, i: RscIdx, prefer: Option<NodeIdx>) -> Option<NodeIdx> {
        if self.rscs[i].variant == Variant::Primitive {
            self.rscs[i].assigning = true;
            let capacity_prefer = self.ban_insufficient_capacity(i);
            let chosen = self.best_node(i, prefer.or(capacity_prefer));
            self.limit_role_before_choice(i);
            let chosen = if self.rscs[i].managed {
                chosen
            } else {
                self.rscs[i].current_node()
            };
            self.commit_assignment(i, chosen);
            self.rscs[i].assigning = false;
            self.rscs[i].assigned_done = true;
            return self.rscs[i].assigned;
        }
        self.assign(i);
        self.instance_node(i)
    }

    fn stop_instance(&mut self, i: RscIdx) {
        for p in self.primitives_of(i) {
            self.rscs[p].assigned = None;
            self.rscs[p].assigned_done = true;
            self.rscs[p].next_role = Some(Role::Stopped);
        }
        self.rscs[i].assigned_done = true;
    }

    /// Whether the cluster's quorum policy forbids starting `r`.
    pub(crate) fn quorum_blocks_start(&self, r: RscIdx) -> bool {
        if self.cluster.status.have_quorum
            || self.rscs[r].requires == crate::working::Requires::Nothing
        {
            return false;
        }
        let promotable = self.clone_of(r).is_some_and(|c| self.rscs[c].promotable);
        match self.opts.no_quorum_policy {
            NoQuorumPolicy::Ignore => false,
            // Promotable instances keep running, demoted (see promotable).
            NoQuorumPolicy::Demote if promotable => false,
            NoQuorumPolicy::Freeze => self.rscs[r].running_on.is_empty(),
            _ => true,
        }
    }
}
