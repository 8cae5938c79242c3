//! Colocation: expanding constraints and sets into pairwise colocations,
//! applying them to a dependent being assigned (§5.2 of the semantics
//! notes), and merging dependents' preferences into a primary (§5.3).

use crate::working::{NodeIdx, RscIdx, Variant};
use crate::Sched;
use std::collections::BTreeMap;
use tandem_model::{Colocation, Constraint, Role, Score, INFINITY};

#[derive(Clone, Debug)]
pub struct Coloc {
    pub dependent: RscIdx,
    pub primary: RscIdx,
    pub score: Score,
    pub dependent_role: Option<Role>,
    pub primary_role: Option<Role>,
    pub node_attribute: String,
    pub influence: bool,
}

impl Coloc {
    pub fn mandatory(&self) -> bool {
        self.score.is_pos_infinity() || self.score.is_neg_infinity()
    }
}

impl Sched<'_> {
    pub(crate) fn unpack_colocations(&mut self) {
        let cluster = self.cluster;
        for c in &cluster.config.constraints {
            if let Constraint::Colocation(col) = c {
                if col.sets.is_empty() {
                    self.colocation_pair(col);
                } else {
                    self.colocation_sets(col);
                }
            }
        }
        self.add_group_internal_colocations();
        self.index_colocations();
        self.index_node_attributes();
    }

    /// `rsc` with `with-rsc`; a tag on either side stands for each resource
    /// it names. A template does not (yet): Pacemaker turns it into a
    /// resource set whose role handling we do not reproduce, and expanding
    /// it pairwise breaks the corpus case template-coloc-3 (open divergence).
    fn colocation_pair(&mut self, col: &Colocation) {
        let (Some(d), Some(p)) = (col.rsc.as_deref(), col.with_rsc.as_deref()) else {
            return;
        };
        let expand = |id: &str| -> Vec<RscIdx> {
            if self.cluster.config.templates.iter().any(|t| t == id) {
                Vec::new()
            } else {
                self.expand_reference(id)
            }
        };
        let (dependents, primaries) = (expand(d), expand(p));
        if dependents.is_empty() || primaries.is_empty() {
            self.warnings
                .push(format!("colocation {}: unknown resource", col.id));
            return;
        }
        for &dep in &dependents {
            for &prim in &primaries {
                self.push_colocation(col, dep, prim, col.score, col.rsc_role, col.with_rsc_role);
            }
        }
    }

    fn colocation_sets(&mut self, col: &Colocation) {
        let sets = self.expand_sets(&col.sets);
        for (members, set) in &sets {
            let score = set.score.unwrap_or(col.score);
            if set.sequential == Some(false) {
                continue;
            }
            for i in 1..members.len() {
                if score.value() < 0 {
                    for j in 0..i {
                        self.push_colocation(
                            col, members[i], members[j], score, set.role, set.role,
                        );
                    }
                } else {
                    self.push_colocation(
                        col,
                        members[i],
                        members[i - 1],
                        score,
                        set.role,
                        set.role,
                    );
                }
            }
        }
        for pair in sets.windows(2) {
            let ((a, sa), (b, sb)) = (&pair[0], &pair[1]);
            let (Some(&a_first), Some(&b_last)) = (a.first(), b.last()) else {
                continue;
            };
            let deps: Vec<RscIdx> = if sa.sequential == Some(false) {
                a.clone()
            } else {
                vec![a_first]
            };
            let prims: Vec<RscIdx> = if sb.sequential == Some(false) {
                b.clone()
            } else {
                vec![b_last]
            };
            for &d in &deps {
                for &p in &prims {
                    self.push_colocation(col, d, p, col.score, sa.role, sb.role);
                }
            }
        }
    }

    fn push_colocation(
        &mut self,
        col: &Colocation,
        dependent: RscIdx,
        primary: RscIdx,
        score: Score,
        dependent_role: Option<Role>,
        primary_role: Option<Role>,
    ) {
        if score == Score::ZERO || dependent == primary {
            return;
        }
        let normalize = |r: Option<Role>| r.filter(|&r| r != Role::Started && r != Role::Unknown);
        self.colocations.push(Coloc {
            dependent,
            primary,
            score,
            dependent_role: normalize(dependent_role),
            primary_role: normalize(primary_role),
            node_attribute: col
                .node_attribute
                .clone()
                .unwrap_or_else(|| "#uname".into()),
            influence: col.influence.unwrap_or(self.rscs[dependent].critical),
        });
    }

    /// Each group member after the first is colocated with the one before.
    fn add_group_internal_colocations(&mut self) {
        for (before, after) in self.group_member_pairs("colocated") {
            self.colocations.push(Coloc {
                dependent: after,
                primary: before,
                score: Score::INFINITY,
                dependent_role: None,
                primary_role: None,
                node_attribute: "#uname".into(),
                influence: self.rscs[after].critical,
            });
        }
    }

    /// Builds per-resource "this with" and "with this" lists, sorted by the
    /// other side: priority desc, variant desc, promotable first, id asc;
    /// later constraints first on ties.
    fn index_colocations(&mut self) {
        let n = self.rscs.len();
        self.this_with = vec![Vec::new(); n];
        self.with_this = vec![Vec::new(); n];
        for (i, c) in self.colocations.iter().enumerate().rev() {
            self.this_with[c.dependent].push(i);
            self.with_this[c.primary].push(i);
        }
        for r in 0..n {
            let mut tw = std::mem::take(&mut self.this_with[r]);
            self.sort_by_other_side(&mut tw, true);
            self.this_with[r] = tw;
            let mut wt = std::mem::take(&mut self.with_this[r]);
            self.sort_by_other_side(&mut wt, false);
            self.with_this[r] = wt;
        }
    }

    /// Orders colocations by the resource on the other side: priority desc,
    /// variant desc, promotable first, id asc (stable: ties keep the order
    /// given, later constraints first).
    fn sort_by_other_side(&self, list: &mut [usize], by_primary: bool) {
        list.sort_by_cached_key(|&c| {
            let col = &self.colocations[c];
            let rsc = &self.rscs[if by_primary {
                col.primary
            } else {
                col.dependent
            }];
            let variant = match rsc.variant {
                Variant::Primitive => 0,
                Variant::Group => 1,
                Variant::Clone => 2,
            };
            (
                std::cmp::Reverse(rsc.priority),
                std::cmp::Reverse(variant),
                !rsc.promotable,
                rsc.id.clone(),
            )
        });
    }

    /// Colocations where `r` is the dependent, including those it inherits:
    /// a group's first member carries the group's own.
    pub(crate) fn effective_this_with(&self, r: RscIdx) -> Vec<usize> {
        let mut out = self.this_with[r].clone();
        if let Some(g) = self.rscs[r]
            .parent
            .filter(|&g| self.rscs[g].variant == Variant::Group)
        {
            let members = &self.rscs[g].children;
            if members.first() == Some(&r) {
                out.extend(self.effective_this_with(g));
                // Later members' own colocations steer the whole group,
                // through its first member (not the internal chain).
                for &m in &members[1..] {
                    out.extend(
                        self.this_with[m]
                            .iter()
                            .filter(|&&c| !members.contains(&self.colocations[c].primary)),
                    );
                }
                self.sort_by_other_side(&mut out, true);
            }
        }
        out
    }

    /// Colocations where `r` is the primary, including those it inherits:
    /// a group's last member carries the group's dependents.
    pub(crate) fn effective_with_this(&self, r: RscIdx) -> Vec<usize> {
        let mut out = Vec::new();
        self.extend_effective_with_this(r, &mut out);
        out
    }

    /// [`Self::effective_with_this`] into `out`. Recurses at most once: a
    /// group is never inside a group.
    fn extend_effective_with_this(&self, r: RscIdx, out: &mut Vec<usize>) {
        out.extend_from_slice(&self.with_this[r]);
        if let Some(g) = self.rscs[r]
            .parent
            .filter(|&g| self.rscs[g].variant == Variant::Group)
        {
            if self.rscs[g].children.last() == Some(&r) {
                self.extend_effective_with_this(g, out);
            }
        }
    }

    /// Which nodes share a value of each colocation node attribute: per
    /// attribute, a class id per node (values compare case-insensitively),
    /// so matching nodes is an integer comparison.
    fn index_node_attributes(&mut self) {
        let mut attrs: Vec<String> = self
            .colocations
            .iter()
            .map(|c| c.node_attribute.clone())
            .collect();
        attrs.push("#uname".into());
        attrs.sort();
        attrs.dedup();
        for attr in attrs {
            let mut ids: BTreeMap<String, u32> = BTreeMap::new();
            let classes = self
                .nodes
                .iter()
                .map(|node| {
                    let value = node.attrs.get(&attr)?.to_ascii_lowercase();
                    let next = ids.len() as u32;
                    Some(*ids.entry(value).or_insert(next))
                })
                .collect();
            self.attr_classes.insert(attr, classes);
        }
    }

    /// The class of `node`'s value of colocation attribute `attr`.
    fn coloc_attr(&self, node: NodeIdx, attr: &str) -> Option<u32> {
        self.attr_classes
            .get(attr)
            .and_then(|classes| classes[node])
    }

    /// Where the primary of `c` counts as placed, for the dependent side.
    fn primary_node(&self, c: &Coloc) -> Option<NodeIdx> {
        let p = c.primary;
        match self.rscs[p].variant {
            Variant::Primitive => self.rscs[p].assigned,
            Variant::Group => {
                let members = &self.rscs[p].children;
                let m = if c.mandatory() {
                    members.last()
                } else {
                    members.first()
                };
                m.and_then(|&m| self.rscs[m].assigned)
            }
            Variant::Clone => self.rscs[p].assigned,
        }
    }

    /// Whether the roles named by `c` match the resources' next roles.
    fn colocation_applies(&self, c: &Coloc) -> bool {
        let role_ok = |want: Option<Role>, r: RscIdx| match want {
            None => true,
            // A clone's role condition is checked per instance.
            Some(_) if self.rscs[r].variant == Variant::Clone => true,
            Some(w) => self.rscs[r].next_role.unwrap_or(Role::Started) == w,
        };
        role_ok(c.dependent_role, c.dependent) && role_ok(c.primary_role, c.primary)
    }

    /// Dependent side: restricts or biases `dep`'s table by where the
    /// primary of colocation `ci` was placed (§5.2).
    pub(crate) fn apply_colocation_to_dependent(&mut self, dep: RscIdx, ci: usize) {
        let c = self.colocations[ci].clone();
        // A primary still being assigned (a colocation loop) has no effect.
        if !self.rscs[c.primary].assigned_done || !self.colocation_applies(&c) {
            return;
        }
        if self.rscs[c.primary].variant == Variant::Clone {
            return self.apply_clone_primary(dep, &c);
        }
        let primary_node = self.primary_node(&c);
        if primary_node.is_none() && c.score.value() < 0 {
            return;
        }
        let value = primary_node.and_then(|n| self.coloc_attr(n, &c.node_attribute));
        let mut work = self.rscs[dep].allowed.clone();
        for n in 0..work.len() {
            let Some(score) = work[n] else { continue };
            work[n] = Some(match primary_node {
                None => score.plus(Score::new(-c.score.value())),
                Some(_) if value.is_some() && self.coloc_attr(n, &c.node_attribute) == value => {
                    if c.score.is_pos_infinity() {
                        score
                    } else {
                        score.plus(c.score)
                    }
                }
                Some(_) if c.score.is_pos_infinity() => Score::NEG_INFINITY,
                Some(_) => score,
            });
        }
        if c.mandatory() || self.any_available(&work) {
            self.rscs[dep].allowed = work;
        }
    }

    /// Dependent of a clone: allowed only where instances run (mandatory),
    /// or biased towards them (optional).
    fn apply_clone_primary(&mut self, dep: RscIdx, c: &Coloc) {
        let placed = self.primary_nodes_for_role(c.primary, c.primary_role);
        let mut work = self.rscs[dep].allowed.clone();
        for n in 0..work.len() {
            let Some(score) = work[n] else { continue };
            let hosts = placed.contains(&n);
            work[n] = Some(if c.score.is_pos_infinity() {
                if hosts {
                    score
                } else {
                    Score::NEG_INFINITY
                }
            } else if hosts {
                score.plus(c.score)
            } else {
                score
            });
        }
        if c.mandatory() || self.any_available(&work) {
            self.rscs[dep].allowed = work;
        }
    }

    /// Node of a clone instance (the first member's for cloned groups).
    pub(crate) fn instance_node(&self, i: RscIdx) -> Option<NodeIdx> {
        match self.rscs[i].variant {
            Variant::Group => self.rscs[i]
                .children
                .first()
                .and_then(|&m| self.rscs[m].assigned),
            _ => self.rscs[i].assigned,
        }
    }

    /// Some node is available with a non-negative score in `table`.
    pub(crate) fn any_available(&self, table: &[Option<Score>]) -> bool {
        table
            .iter()
            .enumerate()
            .any(|(n, s)| s.is_some_and(|s| s.value() >= 0) && self.nodes[n].available())
    }

    /// Primary side (§5.3): merges the preferences of `primary`'s
    /// dependents into its own table before it is assigned.
    pub(crate) fn add_dependent_scores(&mut self, primary: RscIdx, ci: usize) {
        let c = &self.colocations[ci];
        if !self.has_influence(c) {
            return;
        }
        let (dependent, factor) = (c.dependent, c.score.value() as f32 / INFINITY as f32);
        let nonneg = self.rscs[primary].variant == Variant::Clone;
        let mut table = self.rscs[primary].allowed.clone();
        if self.merge_colocated_scores(dependent, &mut table, ci, factor, nonneg) {
            self.rscs[primary].allowed = table;
        }
    }

    fn has_influence(&self, c: &Coloc) -> bool {
        c.influence || self.rscs[c.primary].running_on.is_empty() && !self.is_active_tree(c.primary)
    }

    pub(crate) fn is_active_tree(&self, r: RscIdx) -> bool {
        self.primitives_of(r)
            .iter()
            .any(|&p| !self.rscs[p].running_on.is_empty())
    }

    /// Adds `source`'s best matching scores (× factor) to `table`, then
    /// those of `source`'s own dependents, and theirs, each scaled by the
    /// product of the scores on the way. Returns false when `source`'s
    /// scores leave no node available (the caller then keeps its table);
    /// a dependent whose scores would do so is skipped the same way. A
    /// resource already on the current path is skipped (a loop).
    ///
    /// Depth first over an explicit stack of [`Merge`]s: the depth is the
    /// length of a colocation chain in the input, which a thread's stack
    /// cannot bound.
    fn merge_colocated_scores(
        &mut self,
        source: RscIdx,
        table: &mut Vec<Option<Score>>,
        ci: usize,
        factor: f32,
        nonneg: bool,
    ) -> bool {
        // Tables and lists of finished merges are reused: a long chain
        // enters a merge per link for every resource it places.
        let mut spare = std::mem::take(&mut self.merge_spare);
        let merged = match self.enter_merge(source, table, ci, factor, nonneg, &mut spare) {
            Entered::Skipped => true,
            Entered::Unavailable => false,
            Entered::Merging(root) => {
                self.merge_dependents(root, table, nonneg, &mut spare);
                true
            }
        };
        self.merge_spare = spare;
        merged
    }

    /// Walks the dependents below `root`, depth first; `table` ends as
    /// `root`'s merged table.
    fn merge_dependents(
        &mut self,
        root: Merge,
        table: &mut Vec<Option<Score>>,
        nonneg: bool,
        spare: &mut Spare,
    ) {
        let mut stack = vec![root];
        while let Some(top) = stack.last_mut() {
            let next = self.next_influencing(top);
            if let Some(ci) = next.filter(|_| !self.out_of_work()) {
                let next = &self.colocations[ci];
                let f = top.factor * (next.score.value() as f32 / INFINITY as f32);
                // With a factor of zero (a long chain of weak scores
                // underflows) the scores added round to nothing, here and
                // below: the walk would change nothing.
                if f == 0.0 {
                    continue;
                }
                let dependent = next.dependent;
                let entered = self.enter_merge(dependent, &top.work, ci, f, nonneg, spare);
                if let Entered::Merging(m) = entered {
                    stack.push(m);
                }
                continue;
            }
            let Some(done) = stack.pop() else { break };
            self.rscs[done.source].updating_scores = false;
            spare.lists.push(done.dependents);
            // A finished dependent's table becomes its parent's.
            match stack.last_mut() {
                Some(parent) => {
                    let old = std::mem::replace(&mut parent.work, done.work);
                    spare.tables.push(old);
                }
                None => {
                    let old = std::mem::replace(table, done.work);
                    spare.tables.push(old);
                }
            }
        }
    }

    /// Starts merging `source`'s scores into a copy of `table`.
    fn enter_merge(
        &mut self,
        source: RscIdx,
        table: &[Option<Score>],
        ci: usize,
        factor: f32,
        nonneg: bool,
        spare: &mut Spare,
    ) -> Entered {
        let source = self.score_source(source);
        if self.rscs[source].updating_scores {
            return Entered::Skipped;
        }
        self.charge(table.len() as u64 + 1);
        let mut work = spare.tables.pop().unwrap_or_default();
        work.clear();
        work.extend_from_slice(table);
        let c = &self.colocations[ci];
        self.add_matching_scores(&mut work, source, c, factor, nonneg, &mut spare.best);
        if !self.any_available(&work) {
            spare.tables.push(work);
            return Entered::Unavailable;
        }
        self.rscs[source].updating_scores = true;
        let mut dependents = spare.lists.pop().unwrap_or_default();
        dependents.clear();
        self.extend_effective_with_this(source, &mut dependents);
        Entered::Merging(Merge {
            source,
            work,
            factor,
            dependents,
            next: 0,
        })
    }

    /// The next of `m`'s dependents' colocations that has influence.
    fn next_influencing(&self, m: &mut Merge) -> Option<usize> {
        while let Some(&ci) = m.dependents.get(m.next) {
            m.next += 1;
            if self.has_influence(&self.colocations[ci]) {
                return Some(ci);
            }
        }
        None
    }

    /// The resource whose table stands for `r` when merging: a group's
    /// first member.
    fn score_source(&self, r: RscIdx) -> RscIdx {
        match self.rscs[r].variant {
            Variant::Group => self.rscs[r].children.first().copied().unwrap_or(r),
            _ => r,
        }
    }

    fn add_matching_scores(
        &self,
        work: &mut [Option<Score>],
        source: RscIdx,
        c: &Coloc,
        factor: f32,
        nonneg: bool,
        best_by_class: &mut Vec<Score>,
    ) {
        let allowed_on_one = std::cell::OnceCell::new();
        let no_classes = Vec::new();
        let classes = self
            .attr_classes
            .get(&c.node_attribute)
            .unwrap_or(&no_classes);
        self.best_by_class(source, classes, best_by_class);
        for n in 0..work.len() {
            let Some(current) = work[n] else { continue };
            let best = best_by_class[class_slot(classes, n)];
            if factor < 0.0 && best.value() < 0 {
                let stickiness = self.rscs[c.primary].stickiness.value();
                let on_one =
                    *allowed_on_one.get_or_init(|| self.allowed_node_count(c.dependent) == 1);
                if stickiness >= -best.value() || !c.influence || !on_one {
                    continue;
                }
            }
            let product = factor * best.value() as f32;
            let mut delta = if product < 0.0 {
                (product - 0.5) as i64
            } else {
                (product + 0.5) as i64
            };
            if delta == 0 && best.value() != 0 && factor != 0.0 {
                delta = if product > 0.0 || (product == 0.0 && factor > 0.0) {
                    1
                } else {
                    -1
                };
            }
            let new = current.plus(Score::new(delta));
            if nonneg && new.value() < 0 && current.value() > 0 {
                // A clone never loses a node to a dependent's dislike.
                work[n] = Some(Score::new(1));
                continue;
            }
            if nonneg && new.value() < 0 && current.value() == 0 {
                continue;
            }
            work[n] = Some(new);
        }
    }

    /// `source`'s best score on an available node, per class of the
    /// colocation's node attribute (see [`class_slot`]): what a node of
    /// that class is offered.
    fn best_by_class(&self, source: RscIdx, classes: &[Option<u32>], best: &mut Vec<Score>) {
        best.clear();
        best.resize(self.nodes.len() + 1, Score::NEG_INFINITY);
        for (n, s) in self.rscs[source].allowed.iter().enumerate() {
            let Some(s) = *s else { continue };
            let slot = &mut best[class_slot(classes, n)];
            if s > *slot && self.nodes[n].available() {
                *slot = s;
            }
        }
    }

    fn allowed_node_count(&self, r: RscIdx) -> usize {
        let source = self.score_source(r);
        self.rscs[source]
            .allowed
            .iter()
            .enumerate()
            .filter(|(n, s)| s.is_some_and(|s| s.value() >= 0) && self.nodes[*n].available())
            .count()
    }
}

/// Where `node`'s class of a node attribute is kept in a per-class table
/// of `node count + 1` entries: class ids count nodes, so they are below
/// the node count; the last entry is for nodes without the attribute.
fn class_slot(classes: &[Option<u32>], node: NodeIdx) -> usize {
    match classes.get(node).copied().flatten() {
        Some(class) => (class as usize).min(classes.len()),
        None => classes.len(),
    }
}

/// One resource whose scores are being merged, on
/// `merge_colocated_scores`' stack.
struct Merge {
    /// The resource whose table is read (a group's first member).
    source: RscIdx,
    /// The table with its scores and those of the dependents done so far.
    work: Vec<Option<Score>>,
    /// The product of the colocation scores from the primary to here.
    factor: f32,
    /// Colocations with `source` as the primary.
    dependents: Vec<usize>,
    /// Next position in `dependents`.
    next: usize,
}

/// Buffers of finished merges, for the next ones.
#[derive(Default)]
pub(crate) struct Spare {
    tables: Vec<Vec<Option<Score>>>,
    lists: Vec<Vec<usize>>,
    best: Vec<Score>,
}

/// What starting a merge found.
enum Entered {
    /// On the current path already (a colocation loop): nothing changes.
    Skipped,
    /// Its scores would leave no node available: nothing changes.
    Unavailable,
    Merging(Merge),
}
