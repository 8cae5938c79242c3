//! Node tables before assignment: base scores, node health, location
//! constraints (simple and rule-based), stickiness and bans.

use crate::rules::{rule_matches, RuleContext};
use crate::working::{NodeIdx, RscIdx, Variant};
use crate::Sched;
use std::collections::BTreeSet;
use tandem_model::{Constraint, Location, LocationTarget, ResourceSet, Role, Score};

impl Sched<'_> {
    pub(crate) fn build_tables(&mut self) {
        for r in 0..self.rscs.len() {
            for n in 0..self.nodes.len() {
                self.rscs[r].allowed[n] = self.opts.symmetric.then_some(self.nodes[n].base);
            }
        }
        self.apply_node_health();
        let cluster = self.cluster;
        for c in &cluster.config.constraints {
            if let Constraint::Location(loc) = c {
                self.apply_location_constraint(loc);
            }
        }
        for c in &cluster.config.constraints {
            if let Constraint::Ticket(t) = c {
                self.apply_ticket(t);
            }
        }
        for r in 0..self.rscs.len() {
            self.apply_stickiness(r);
        }
        self.apply_exclusive_discovery();
        self.keep_fencing_devices_off_remote_nodes();
        // Connections (and guest containers) run on cluster nodes only.
        let remote: Vec<NodeIdx> = (0..self.nodes.len())
            .filter(|&n| self.nodes[n].remote)
            .collect();
        let conns: Vec<RscIdx> = self
            .nodes
            .iter()
            .filter_map(|x| x.connection.as_ref())
            .filter_map(|id| self.by_id.get(id).copied())
            .collect();
        for n in remote {
            for &c in &conns {
                self.add_location(
                    c,
                    n,
                    Score::NEG_INFINITY,
                    "connections run on cluster nodes",
                );
            }
        }
        for (r, n, why) in std::mem::take(&mut self.bans) {
            self.add_location(r, n, Score::NEG_INFINITY, &why);
        }
        for r in 0..self.rscs.len() {
            if !self.rscs[r].managed && self.rscs[r].variant == Variant::Primitive {
                let nodes: Vec<NodeIdx> = self.rscs[r].running_on.iter().map(|&(n, _)| n).collect();
                for n in nodes {
                    self.add_location(r, n, Score::INFINITY, "unmanaged");
                }
            }
        }
    }

    /// Adds `score` for `r` on `node`, creating the entry from the node's
    /// base score when absent, and records the contribution for `explain`.
    pub(crate) fn add_location(&mut self, r: RscIdx, node: NodeIdx, score: Score, why: &str) {
        let base = self.nodes[node].base;
        let entry = self.rscs[r].allowed[node].get_or_insert(base);
        *entry = entry.plus(score);
        if self.explain.is_some() && !(why == "base" && score == Score::ZERO) {
            self.contributions.push((r, node, score, why.to_string()));
        }
    }

    fn apply_node_health(&mut self) {
        use crate::options::HealthStrategy;
        if self.opts.health_strategy == HealthStrategy::None {
            return;
        }
        for n in 0..self.nodes.len() {
            let mut sum = if self.opts.health_strategy == HealthStrategy::Progressive {
                self.opts.health_base
            } else {
                Score::ZERO
            };
            for (k, v) in &self.nodes[n].attrs {
                if k.starts_with("#health") {
                    sum = sum.plus(self.opts.parse_score(v).unwrap_or(Score::ZERO));
                }
            }
            if sum == Score::ZERO {
                continue;
            }
            for i in 0..self.top.len() {
                let r = self.top[i];
                let tolerant = self.rscs[r]
                    .meta
                    .get("allow-unhealthy-nodes")
                    .and_then(|v| tandem_model::parse_bool(v))
                    .unwrap_or(false);
                if sum.value() < 0 && tolerant {
                    continue;
                }
                self.apply_to_tree(r, n, sum, "node health");
            }
        }
    }

    fn apply_location_constraint(&mut self, loc: &Location) {
        if loc.role == Some(Role::Promoted) {
            self.promotion_locations.push(loc.clone());
            return;
        }
        let targets = self.location_targets(&loc.target);
        for r in targets {
            let mut matched: Vec<NodeIdx> = Vec::new();
            if let Some(node) = &loc.node {
                if let Some(n) = self.nodes.iter().position(|x| &x.name == node) {
                    let score = loc.score.unwrap_or(Score::ZERO);
                    self.apply_to_tree(r, n, score, &loc.id);
                    matched.push(n);
                }
            }
            for rule in &loc.rules {
                if rule.role == Some(Role::Promoted) {
                    let mut promoted = loc.clone();
                    promoted.node = None;
                    promoted.rules = vec![rule.clone()];
                    self.promotion_locations.push(promoted);
                    continue;
                }
                for n in 0..self.nodes.len() {
                    let ctx = RuleContext {
                        node_attrs: Some(&self.nodes[n].attrs),
                        now: self.now,
                        ..Default::default()
                    };
                    if !rule_matches(rule, &ctx) {
                        continue;
                    }
                    let score = match (&rule.score, &rule.score_attribute) {
                        (_, Some(attr)) => match self.nodes[n].attrs.get(attr) {
                            Some(v) => self.opts.parse_score(v).unwrap_or(Score::ZERO),
                            None => continue,
                        },
                        (Some(s), None) => *s,
                        (None, None) => Score::ZERO,
                    };
                    self.apply_to_tree(r, n, score, &loc.id);
                    matched.push(n);
                }
            }
            if loc.resource_discovery.as_deref() == Some("exclusive") {
                self.exclusive.push((r, matched));
            }
        }
    }

    /// Resources a location applies to: a resource, tag, template or pattern.
    pub(crate) fn location_targets(&self, target: &LocationTarget) -> Vec<RscIdx> {
        match target {
            LocationTarget::Resource(id) => self.expand_reference(id),
            LocationTarget::Sets(sets) => sets
                .iter()
                .flat_map(|s| s.resources.iter())
                .flat_map(|id| self.expand_reference(id))
                .collect(),
            LocationTarget::Pattern { regex, negated } => {
                let Ok(re) = regex::Regex::new(regex) else {
                    return Vec::new();
                };
                self.top
                    .iter()
                    .copied()
                    .filter(|&r| !self.rscs[r].orphan && re.is_match(&self.rscs[r].id) != *negated)
                    .collect()
            }
        }
    }

    /// Each resource set with the resources it names (tags and templates
    /// expanded), in order.
    pub(crate) fn expand_sets<'s>(
        &self,
        sets: &'s [ResourceSet],
    ) -> Vec<(Vec<RscIdx>, &'s ResourceSet)> {
        sets.iter()
            .map(|s| {
                (
                    s.resources
                        .iter()
                        .flat_map(|id| self.expand_reference(id))
                        .collect(),
                    s,
                )
            })
            .collect()
    }

    /// A resource id, tag id or template id → the resources it names.
    ///
    /// A tag may name other tags; they are expanded in place, in document
    /// order, each tag at most once per reference. The configuration
    /// formats allow a tag to name itself or an enclosing tag, and that
    /// loop must end (it recursed until the stack overflowed); expanding
    /// each tag once also keeps a lattice of tags from multiplying.
    pub(crate) fn expand_reference(&self, id: &str) -> Vec<RscIdx> {
        let config = &self.cluster.config;
        let mut out = Vec::new();
        let mut expanded: BTreeSet<&str> = BTreeSet::new();
        // Ids still to expand, the next one last.
        let mut pending: Vec<&str> = vec![id];
        while let Some(id) = pending.pop() {
            if let Some(&r) = self.by_id.get(id) {
                out.push(r);
            } else if let Some(tag) = config.tags.iter().find(|t| t.id == id) {
                if expanded.insert(tag.id.as_str()) {
                    pending.extend(tag.refs.iter().rev().map(String::as_str));
                }
            } else if config.templates.iter().any(|t| t == id) {
                for top in &config.resources {
                    for p in top.primitives() {
                        if p.template.as_deref() == Some(id) {
                            out.extend(self.by_id.get(&p.id).copied());
                        }
                    }
                }
            }
        }
        out
    }

    /// Applies a location score to a resource the way its variant wants:
    /// groups give the full score to the first member only (others get an
    /// entry), clones to every instance.
    pub(crate) fn apply_to_tree(&mut self, r: RscIdx, n: NodeIdx, score: Score, why: &str) {
        self.add_location(r, n, score, why);
        match self.rscs[r].variant {
            Variant::Primitive => {}
            Variant::Group => {
                let members = self.rscs[r].children.clone();
                for (i, m) in members.into_iter().enumerate() {
                    let s = if i == 0 { score } else { Score::ZERO };
                    self.add_location(m, n, s, why);
                }
            }
            Variant::Clone => {
                for c in self.rscs[r].children.clone() {
                    self.apply_to_tree(c, n, score, why);
                }
            }
        }
    }

    /// A resource that depends on a ticket which is not granted (or is in
    /// standby) may not run, unless its loss-policy says otherwise.
    fn apply_ticket(&mut self, t: &tandem_model::TicketConstraint) {
        let state = self
            .cluster
            .status
            .tickets
            .iter()
            .find(|s| s.id == t.ticket);
        let granted = state.is_some_and(|s| s.granted);
        let standby = state.is_some_and(|s| s.standby);
        if granted && !standby {
            return;
        }
        let mut targets: Vec<(RscIdx, Option<Role>)> = t
            .rsc
            .iter()
            .flat_map(|id| self.expand_reference(id))
            .map(|r| (r, t.rsc_role))
            .collect();
        for set in &t.sets {
            let role = set.role.or(t.rsc_role);
            targets.extend(
                set.resources
                    .iter()
                    .flat_map(|id| self.expand_reference(id))
                    .map(|r| (r, role)),
            );
        }
        let why = format!("ticket {}", t.ticket);
        for (r, role) in targets {
            let promotable = self.rscs[r].promotable
                || self.clone_of(r).is_some_and(|c| self.rscs[c].promotable);
            // A revoked ticket applies the loss policy; a granted ticket in
            // standby demotes the role that needs it, or stops (as the
            // corpus' ticket-* cases show).
            let policy = match (granted, promotable && role == Some(Role::Promoted)) {
                (false, _) => t.loss_policy.as_deref().unwrap_or("stop"),
                (true, true) if !self.is_active_tree(r) => "stop",
                (true, true) => "demote",
                (true, false) => "stop",
            };
            let active: Vec<NodeIdx> = self
                .primitives_of(r)
                .iter()
                .flat_map(|&p| self.rscs[p].running_on.iter().map(|&(n, _)| n))
                .collect();
            let keep_unpromoted = match policy {
                "demote" => promotable,
                // Frozen: what runs stays as it is; what does not may only
                // start below the role that needs the ticket.
                "freeze" if !active.is_empty() => continue,
                "freeze" => promotable && role == Some(Role::Promoted),
                "fence" => {
                    for &n in &active {
                        self.fence_node(n, &why);
                    }
                    false
                }
                _ => false,
            };
            if keep_unpromoted {
                for p in self.primitives_of(r) {
                    self.rscs[p].target_role = Some(Role::Unpromoted);
                }
                continue;
            }
            for n in 0..self.nodes.len() {
                self.apply_to_tree(r, n, Score::NEG_INFINITY, &why);
            }
        }
    }

    /// resource-discovery=exclusive: a resource may only run on nodes one
    /// of its exclusive locations names.
    fn apply_exclusive_discovery(&mut self) {
        let mut allowed: std::collections::BTreeMap<RscIdx, Vec<NodeIdx>> = Default::default();
        for (r, nodes) in std::mem::take(&mut self.exclusive) {
            allowed.entry(r).or_default().extend(nodes);
        }
        for (r, nodes) in allowed {
            for n in (0..self.nodes.len()).filter(|n| !nodes.contains(n)) {
                self.apply_to_tree(r, n, Score::NEG_INFINITY, "resource-discovery=exclusive");
            }
        }
    }

    /// Fencing devices run on cluster nodes only, never on remote or guest
    /// nodes.
    fn keep_fencing_devices_off_remote_nodes(&mut self) {
        let remote: Vec<NodeIdx> = (0..self.nodes.len())
            .filter(|&n| self.nodes[n].remote)
            .collect();
        for r in 0..self.rscs.len() {
            if self.rscs[r].class == "stonith" {
                for &n in &remote {
                    self.add_location(
                        r,
                        n,
                        Score::NEG_INFINITY,
                        "fencing devices run on cluster nodes",
                    );
                }
            }
        }
    }

    fn apply_stickiness(&mut self, r: RscIdx) {
        let rsc = &self.rscs[r];
        if rsc.variant != Variant::Primitive
            || !rsc.managed
            || rsc.stickiness.value() < 1
            || rsc.running_on.len() != 1
        {
            return;
        }
        let node = rsc.running_on[0].0;
        if !self.opts.symmetric && rsc.allowed[node].is_none() {
            return;
        }
        let s = rsc.stickiness;
        self.add_location(r, node, s, "stickiness");
    }
}
