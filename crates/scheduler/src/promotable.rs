//! Promotion: after a promotable clone's instances are placed, choose
//! which become Promoted (§8.2 of the semantics notes): promotion scores
//! from `master-<id>` node attributes, `role=Promoted` locations, role
//! colocations, then the best `promoted-max` instances, at most
//! `promoted-node-max` per node.

use crate::rules::{rule_matches, RuleContext};
use crate::working::{NodeIdx, RscIdx};
use crate::Sched;
use tandem_model::{LocationTarget, Role, Score};

impl Sched<'_> {
    pub(crate) fn choose_promoted(&mut self, c: RscIdx) {
        let instances = self.rscs[c].children.clone();
        let mut ranked: Vec<(RscIdx, NodeIdx, Score, Score)> = Vec::new();
        for &i in &instances {
            let Some(n) = self.instance_node(i) else {
                continue;
            };
            let base = self.promotion_base(c, i, n);
            let clone_score = self.rscs[c].allowed[n].unwrap_or(Score::ZERO);
            self.promotion_scores.push((i, n, base));
            let priority = if base.value() >= 0 {
                clone_score.plus(base)
            } else {
                base
            };
            ranked.push((i, n, base, priority));
        }
        // Highest priority first; on ties the currently promoted one, then
        // instance order.
        ranked.sort_by(|a, b| {
            b.3.cmp(&a.3)
                .then_with(|| self.instance_role(b.0).cmp(&self.instance_role(a.0)))
        });
        let max = self.rscs[c].promoted_max;
        let per_node = self.rscs[c].promoted_node_max;
        let mut promoted = 0;
        let mut per_node_count = vec![0usize; self.nodes.len()];
        for (i, n, base, priority) in ranked {
            let can = promoted < max
                && base.value() >= 0
                && priority.value() >= 0
                && per_node_count[n] < per_node
                && self.nodes[n].available()
                && !self.promotion_blocked(i);
            let role = if can {
                Role::Promoted
            } else {
                Role::Unpromoted
            };
            if can {
                promoted += 1;
                per_node_count[n] += 1;
            }
            for p in self.primitives_of(i) {
                if self.rscs[p].assigned.is_some() && self.rscs[p].managed {
                    self.rscs[p].next_role = Some(role);
                }
            }
        }
    }

    fn instance_role(&self, i: RscIdx) -> Role {
        self.primitives_of(i)
            .iter()
            .map(|&p| self.rscs[p].role)
            .max()
            .unwrap_or(Role::Stopped)
    }

    /// No new promotion without quorum (freeze/demote) or above target-role.
    fn promotion_blocked(&self, i: RscIdx) -> bool {
        let prims = self.primitives_of(i);
        let capped = prims.iter().any(|&p| {
            matches!(
                self.rscs[p].target_role,
                Some(Role::Unpromoted) | Some(Role::Stopped) | Some(Role::Started)
            ) && self.rscs[p].target_role != Some(Role::Started)
        });
        use crate::options::NoQuorumPolicy;
        let quorum_blocks = !self.cluster.status.have_quorum
            && match self.opts.no_quorum_policy {
                NoQuorumPolicy::Demote => true,
                NoQuorumPolicy::Freeze => self.instance_role(i) != Role::Promoted,
                _ => false,
            };
        capped || quorum_blocks
    }

    /// Promotion score of instance `i` on node `n` before the clone's own
    /// scores: the agent's `master-<id>` attribute (-1 when absent), plus
    /// `role=Promoted` locations and role colocations.
    fn promotion_base(&self, c: RscIdx, i: RscIdx, n: NodeIdx) -> Score {
        let prims = self.primitives_of(i);
        let mut base: Option<Score> = None;
        for &p in &prims {
            let rsc = &self.rscs[p];
            let here = rsc
                .history_names
                .iter()
                .find(|(node, _)| *node == n)
                .map(|(_, id)| id.as_str());
            let names = [here, Some(rsc.id.as_str()), Some(rsc.history_id.as_str())];
            let attrs = &self.nodes[n].attrs;
            let value = names
                .iter()
                .flatten()
                .find_map(|id| attrs.get(&format!("master-{id}")));
            if let Some(v) = value.and_then(|v| self.opts.parse_score(v)) {
                base = Some(base.unwrap_or(Score::ZERO).plus(v));
            }
        }
        let mut score = base.unwrap_or(Score::new(-1));
        for loc in &self.promotion_locations {
            let applies = match &loc.target {
                LocationTarget::Resource(id) => self
                    .expand_reference(id)
                    .iter()
                    .any(|&r| r == c || r == i || prims.contains(&r)),
                _ => false,
            };
            if !applies {
                continue;
            }
            if loc.node.as_deref() == Some(self.nodes[n].name.as_str()) {
                score = score.plus(loc.score.unwrap_or(Score::ZERO));
            }
            for rule in &loc.rules {
                let ctx = RuleContext {
                    node_attrs: Some(&self.nodes[n].attrs),
                    now: self.now,
                    ..Default::default()
                };
                if rule_matches(rule, &ctx) {
                    score = score.plus(rule.score.unwrap_or(Score::ZERO));
                }
            }
        }
        score.plus(self.promotion_colocation_score(c, n))
    }

    /// Role colocations where the clone is the dependent in its Promoted
    /// role: +score where the primary is (−score for an Unpromoted role);
    /// a mandatory one with nowhere to go forbids promotion.
    fn promotion_colocation_score(&self, c: RscIdx, n: NodeIdx) -> Score {
        let mut total = Score::ZERO;
        for &ci in &self.this_with[c] {
            let col = &self.colocations[ci];
            if col.dependent_role != Some(Role::Promoted) {
                continue;
            }
            let primary_nodes = self.primary_nodes_for_role(col.primary, col.primary_role);
            let matches = primary_nodes.contains(&n);
            if matches {
                total = total.plus(col.score);
            } else if col.score.is_pos_infinity() {
                total = total.plus(Score::NEG_INFINITY);
            }
        }
        total
    }

    /// Nodes where `r` (or, for a clone, an instance in `role`) is placed.
    pub(crate) fn primary_nodes_for_role(&self, r: RscIdx, role: Option<Role>) -> Vec<NodeIdx> {
        let holders: Vec<RscIdx> = match self.rscs[r].variant {
            crate::working::Variant::Clone => self.rscs[r].children.clone(),
            _ => vec![r],
        };
        holders
            .into_iter()
            .filter(|&h| {
                role.is_none_or(|want| {
                    self.primitives_of(h)
                        .iter()
                        .all(|&p| self.rscs[p].next_role.unwrap_or(Role::Started) == want)
                })
            })
            .filter_map(|h| match self.rscs[h].variant {
                crate::working::Variant::Primitive => self.rscs[h].assigned,
                _ => self.instance_node(h),
            })
            .collect()
    }
}
