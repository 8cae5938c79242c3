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
        let mut out = self.with_this[r].clone();
        if let Some(g) = self.rscs[r]
            .parent
            .filter(|&g| self.rscs[g].variant == Variant::Group)
        {
            if self.rscs[g].children.last() == Some(&r) {
                out.extend(self.effective_with_this(g));
            }
        }
        out
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
        let c = self.colocations[ci].clone();
        if !self.has_influence(&c) {
            return;
        }
        let factor = c.score.value() as f32 / INFINITY as f32;
        let nonneg = self.rscs[primary].variant == Variant::Clone;
        let mut table = self.rscs[primary].allowed.clone();
        if self.merge_colocated_scores(c.dependent, &mut table, &c, factor, nonneg) {
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
    /// recurses into `source`'s own dependents. Returns false when the
    /// result leaves no node available (the caller then keeps its table).
    fn merge_colocated_scores(
        &mut self,
        source: RscIdx,
        table: &mut Vec<Option<Score>>,
        c: &Coloc,
        factor: f32,
        nonneg: bool,
    ) -> bool {
        let source = self.score_source(source);
        if self.rscs[source].updating_scores {
            return true;
        }
        self.rscs[source].updating_scores = true;
        let mut work = table.clone();
        self.add_matching_scores(&mut work, source, c, factor, nonneg);
        let ok = self.any_available(&work);
        if ok {
            for ci in self.effective_with_this(source) {
                let next = self.colocations[ci].clone();
                if !self.has_influence(&next) {
                    continue;
                }
                let f = factor * (next.score.value() as f32 / INFINITY as f32);
                self.merge_colocated_scores(next.dependent, &mut work, &next, f, nonneg);
            }
            *table = work;
        }
        self.rscs[source].updating_scores = false;
        ok
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
    ) {
        let allowed_on_one = std::cell::OnceCell::new();
        let no_classes = Vec::new();
        let classes = self
            .attr_classes
            .get(&c.node_attribute)
            .unwrap_or(&no_classes);
        for n in 0..work.len() {
            let Some(current) = work[n] else { continue };
            let value = classes.get(n).copied().flatten();
            let best = self.best_matching_score(source, classes, value);
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

    fn best_matching_score(
        &self,
        source: RscIdx,
        classes: &[Option<u32>],
        value: Option<u32>,
    ) -> Score {
        let mut best = Score::NEG_INFINITY;
        for (n, s) in self.rscs[source].allowed.iter().enumerate() {
            let Some(s) = *s else { continue };
            if s > best && classes.get(n).copied().flatten() == value && self.nodes[n].available() {
                best = s;
            }
        }
        best
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
