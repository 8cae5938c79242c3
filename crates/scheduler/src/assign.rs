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
    ///
    /// Depth first, as Pacemaker does it: a resource's parent and its
    /// colocation primaries are assigned before it, a group's members and a
    /// clone's instances within it. The walk keeps its own stack of
    /// [`Task`]s instead of recursing, because its depth is the length of
    /// a colocation chain in the input, which a thread's stack cannot
    /// bound (an 8,000-link chain overflowed 2 MiB).
    pub(crate) fn assign(&mut self, root: RscIdx) {
        let mut stack = vec![Task::new(root)];
        while let Some(mut task) = stack.pop() {
            if !self.charge(1) {
                return;
            }
            if let Some(first) = self.advance(&mut task) {
                stack.push(task);
                stack.push(Task::new(first));
            }
        }
    }

    /// Runs `task` until it needs another resource assigned first (that
    /// resource is returned; the task resumes where it stopped once it is
    /// done) or until it is finished (`None`).
    fn advance(&mut self, task: &mut Task) -> Option<RscIdx> {
        let r = task.r;
        loop {
            match &mut task.stage {
                Stage::Parent => {
                    task.stage = Stage::Own;
                    if let Some(parent) = self.rscs[r].parent {
                        if !self.rscs[parent].assigning && !self.rscs[parent].assigned_done {
                            return Some(parent);
                        }
                    }
                }
                Stage::Own => {
                    if self.rscs[r].assigned_done || self.rscs[r].assigning {
                        return None;
                    }
                    self.rscs[r].assigning = true;
                    task.stage = match self.rscs[r].variant {
                        Variant::Primitive => Stage::Primitive(PrimitiveWork {
                            this_with: self.effective_this_with(r),
                            with_this: self.effective_with_this(r),
                            mandatory_pass: true,
                            next: 0,
                            waiting: None,
                        }),
                        Variant::Group => Stage::Group { next: 0 },
                        Variant::Clone => {
                            Stage::Clone(Box::new(CloneWork::new(self.this_with[r].clone())))
                        }
                    };
                }
                Stage::Primitive(work) => {
                    let first = self.advance_primitive(r, work);
                    return first.or_else(|| self.finish(r));
                }
                Stage::Group { next } => {
                    if let Some(&m) = self.rscs[r].children.get(*next) {
                        *next += 1;
                        return Some(m);
                    }
                    self.settle_group(r);
                    return self.finish(r);
                }
                Stage::Clone(work) => {
                    let first = self.advance_clone(r, work);
                    return first.or_else(|| self.finish(r));
                }
            }
        }
    }

    /// Marks `r` assigned; a finished task asks for nothing more.
    fn finish(&mut self, r: RscIdx) -> Option<RscIdx> {
        self.rscs[r].assigning = false;
        self.rscs[r].assigned_done = true;
        None
    }

    /// A primitive: mandatory colocations first, then optional ones; for
    /// each, its primaries are placed (returned, one at a time) and shape
    /// this table, and its dependents' preferences are merged in. Then
    /// the node is chosen.
    fn advance_primitive(&mut self, r: RscIdx, work: &mut PrimitiveWork) -> Option<RscIdx> {
        if let Some(ci) = work.waiting.take() {
            self.apply_colocation_to_dependent(r, ci);
        }
        loop {
            while let Some(&ci) = work.this_with.get(work.next) {
                work.next += 1;
                if self.colocations[ci].mandatory() == work.mandatory_pass {
                    work.waiting = Some(ci);
                    return Some(self.colocations[ci].primary);
                }
            }
            for &ci in &work.with_this {
                if self.colocations[ci].mandatory() == work.mandatory_pass {
                    self.add_dependent_scores(r, ci);
                }
            }
            if !work.mandatory_pass {
                break;
            }
            work.mandatory_pass = false;
            work.next = 0;
        }
        self.choose_primitive_node(r);
        None
    }

    fn choose_primitive_node(&mut self, r: RscIdx) {
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

    /// A group takes the placement and role of its first member.
    fn settle_group(&mut self, g: RscIdx) {
        let first = self.rscs[g].children.first().copied();
        self.rscs[g].assigned = first.and_then(|m| self.rscs[m].assigned);
        self.rscs[g].next_role = first.and_then(|m| self.rscs[m].next_role);
    }

    /// Clone assignment: instances keep their current nodes where they can,
    /// the rest spread by the usual node comparison. The clone's
    /// colocation primaries are placed first (returned one at a time), as
    /// are instances that are groups.
    fn advance_clone(&mut self, c: RscIdx, work: &mut CloneWork) -> Option<RscIdx> {
        if let Some(ci) = work.waiting_primary.take() {
            // A role colocation of a promotable clone affects promotion only.
            let role_only =
                self.rscs[c].promotable && self.colocations[ci].dependent_role.is_some();
            if !role_only {
                self.apply_colocation_to_dependent(c, ci);
            }
        }
        if let Some(&ci) = work.colocations.get(work.next_colocation) {
            work.next_colocation += 1;
            work.waiting_primary = Some(ci);
            return Some(self.colocations[ci].primary);
        }
        let spread = match work.spread.as_mut() {
            Some(spread) => spread,
            None => work.spread.insert(self.start_spread(c)),
        };
        if let Some(i) = spread.waiting_instance.take() {
            let node = self.instance_node(i);
            spread.count(node);
        }
        loop {
            while let Some(&i) = spread.order.get(spread.next) {
                let position = spread.next;
                spread.next += 1;
                let prefer = if spread.keeping {
                    let Some(cur) = self.may_keep(c, i, spread) else {
                        continue;
                    };
                    spread.done[position] = true;
                    Some(cur)
                } else {
                    if spread.done[position] {
                        continue;
                    }
                    if spread.assigned >= spread.max {
                        self.stop_instance(i);
                        continue;
                    }
                    self.restrict_instance(i, c, &spread.counts);
                    None
                };
                if self.rscs[i].variant != Variant::Primitive {
                    // A group instance: its members are assigned by tasks
                    // of their own.
                    spread.waiting_instance = Some(i);
                    return Some(i);
                }
                let node = self.assign_primitive_instance(i, prefer);
                spread.count(node);
            }
            if !spread.keeping {
                break;
            }
            // Pass 1 is over: pass 2 places the rest.
            spread.keeping = false;
            spread.next = 0;
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

    /// The state of spreading clone `c`'s instances, before pass 1.
    fn start_spread(&self, c: RscIdx) -> Spread {
        let max = self.rscs[c].clone_max;
        // Active instances keep their node only up to an even share.
        let usable = (0..self.nodes.len())
            .filter(|&n| {
                self.nodes[n].available() && self.rscs[c].allowed[n].is_some_and(|s| s.value() >= 0)
            })
            .count();
        let mut order = self.rscs[c].children.clone();
        order.sort_by_key(|&i| self.instance_current(i).is_none());
        Spread {
            done: vec![false; order.len()],
            order,
            next: 0,
            keeping: true,
            counts: vec![0; self.nodes.len()],
            assigned: 0,
            max,
            optimal: (max / usable.max(1)).max(1),
            waiting_instance: None,
        }
    }

    /// Pass 1: the node active instance `i` of clone `c` stays on, if it
    /// still may.
    fn may_keep(&mut self, c: RscIdx, i: RscIdx, spread: &Spread) -> Option<NodeIdx> {
        let cur = self.instance_current(i)?;
        let per_node = self.rscs[c].clone_node_max;
        if spread.assigned >= spread.max
            || spread.counts[cur] >= per_node.min(spread.optimal)
            || self.instance_failed(i)
        {
            return None;
        }
        self.restrict_instance(i, c, &spread.counts);
        let ok = self.primitives_of(i).iter().all(|&p| {
            self.rscs[p].allowed[cur].is_some_and(|s| s.value() >= 0) && self.nodes[cur].available()
        });
        ok.then_some(cur)
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

    /// A primitive instance is placed at once (its parent, the clone, is
    /// being assigned and its table is already restricted).
    fn assign_primitive_instance(&mut self, i: RscIdx, prefer: Option<NodeIdx>) -> Option<NodeIdx> {
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
        self.rscs[i].assigned
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

/// One resource's assignment in progress, kept on [`Sched::assign`]'s
/// stack while what it depends on is assigned.
struct Task {
    r: RscIdx,
    stage: Stage,
}

impl Task {
    fn new(r: RscIdx) -> Task {
        Task {
            r,
            stage: Stage::Parent,
        }
    }
}

/// Where a [`Task`] resumes.
enum Stage {
    /// Not started: the parent (a group or clone) is assigned first.
    Parent,
    /// The parent is settled: the resource's own work begins, unless it is
    /// done or already under way (a colocation loop).
    Own,
    Primitive(PrimitiveWork),
    /// A group's members in order; `next` is the next to assign.
    Group {
        next: usize,
    },
    Clone(Box<CloneWork>),
}

/// A primitive's colocations, walked in two passes (mandatory, then
/// optional).
struct PrimitiveWork {
    this_with: Vec<usize>,
    with_this: Vec<usize>,
    mandatory_pass: bool,
    /// Next position in `this_with`.
    next: usize,
    /// The colocation whose primary is being assigned; applied on resume.
    waiting: Option<usize>,
}

/// A clone's colocations, then its instances.
struct CloneWork {
    colocations: Vec<usize>,
    next_colocation: usize,
    /// The colocation whose primary is being assigned; applied on resume.
    waiting_primary: Option<usize>,
    /// Created once every primary is placed (the clone's table is final).
    spread: Option<Spread>,
}

impl CloneWork {
    fn new(colocations: Vec<usize>) -> CloneWork {
        CloneWork {
            colocations,
            next_colocation: 0,
            waiting_primary: None,
            spread: None,
        }
    }
}

/// Placing a clone's instances: pass 1 (`keeping`) leaves active instances
/// where they are, pass 2 places the others.
struct Spread {
    /// Instances, the active ones first.
    order: Vec<RscIdx>,
    /// Next position in `order`.
    next: usize,
    keeping: bool,
    /// Per position in `order`: placed by pass 1.
    done: Vec<bool>,
    /// Instances placed per node.
    counts: Vec<usize>,
    assigned: usize,
    max: usize,
    /// An even share per usable node.
    optimal: usize,
    /// The group instance being assigned; counted on resume.
    waiting_instance: Option<RscIdx>,
}

impl Spread {
    fn count(&mut self, node: Option<NodeIdx>) {
        if let Some(n) = node {
            self.counts[n] += 1;
            self.assigned += 1;
        }
    }
}
