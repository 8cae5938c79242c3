//! `explain`: why a resource runs where it does. For each primitive of the
//! resource and each node: the score before colocations with every
//! contribution (base, locations, stickiness, bans), the colocation
//! adjustment, the final score, whether the node was usable, and the verdict.

use crate::working::{RscIdx, Variant};
use crate::{Sched, Transition};
use serde::Serialize;
use tandem_model::{Cluster, Score};

#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub resource: String,
    pub primitives: Vec<PrimitiveExplanation>,
    pub transition: Transition,
}

#[derive(Clone, Debug, Serialize)]
pub struct PrimitiveExplanation {
    pub id: String,
    pub nodes: Vec<NodeScore>,
    /// Where it was assigned (before runnability checks).
    pub assigned: Option<String>,
    /// For promotable clone instances: the promotion score on its node
    /// (master-* attribute or -1, plus role=Promoted locations and role
    /// colocations) and the role it was given.
    pub promotion: Option<PromotionScore>,
    /// One sentence: where it runs and why, or why it is stopped.
    pub verdict: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeScore {
    pub node: String,
    /// Base score of the node (-INFINITY when offline or shutting down).
    pub base: Score,
    /// Location constraints, stickiness, bans... in the order applied.
    pub contributions: Vec<Contribution>,
    /// Score after those, before colocations (`None`: no entry, as in an
    /// opt-in cluster without a location for this node).
    pub before_colocation: Option<Score>,
    /// Final score used for the choice.
    pub final_score: Option<Score>,
    pub available: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct PromotionScore {
    pub node: String,
    pub score: Score,
    pub role: Option<tandem_model::Role>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Contribution {
    pub source: String,
    pub score: Score,
}

/// Explains the placement of `resource` (a primitive, group or clone id).
/// `None` when no such resource exists.
pub fn explain(cluster: &Cluster, now: i64, resource: &str) -> Option<Explanation> {
    let mut s = Sched::new(cluster, now, Some(resource.to_string()));
    let target = *s.by_id.get(resource)?;
    let prims = s.primitives_of(target);
    s.unpack_history();
    let current = s.view(None);
    s.build_tables();
    let before: Vec<Vec<Option<Score>>> =
        prims.iter().map(|&p| s.rscs[p].allowed.clone()).collect();
    s.unpack_colocations();
    s.unpack_orders();
    s.assign_all();
    let plan = s.plan();
    let primitives = prims
        .iter()
        .zip(before)
        .map(|(&p, before)| s.explain_primitive(p, &before))
        .collect();
    let revised = s.view(Some(&plan));
    Some(Explanation {
        resource: resource.to_string(),
        primitives,
        transition: Transition {
            current,
            revised,
            actions: plan.actions,
            summary: plan.summary,
            warnings: std::mem::take(&mut s.warnings),
        },
    })
}

impl Sched<'_> {
    fn explain_primitive(&self, p: RscIdx, before: &[Option<Score>]) -> PrimitiveExplanation {
        let rsc = &self.rscs[p];
        let nodes = (0..self.nodes.len())
            .map(|n| NodeScore {
                node: self.nodes[n].name.clone(),
                base: self.nodes[n].base,
                contributions: self
                    .contributions
                    .iter()
                    // Scores on groups and clones are applied to their
                    // primitives too, so the primitive's own list is complete.
                    .filter(|(r, node, _, _)| *node == n && *r == p)
                    .map(|(_, _, score, why)| Contribution {
                        source: why.clone(),
                        score: *score,
                    })
                    .collect(),
                before_colocation: before[n],
                final_score: rsc.allowed[n],
                available: self.nodes[n].available(),
            })
            .collect();
        PrimitiveExplanation {
            id: rsc.id.clone(),
            nodes,
            assigned: rsc.assigned.map(|n| self.nodes[n].name.clone()),
            promotion: self.promotion_of(p),
            verdict: self.verdict(p),
        }
    }

    fn promotion_of(&self, p: RscIdx) -> Option<PromotionScore> {
        let instance = self.instance_root(p);
        let &(_, n, score) = self
            .promotion_scores
            .iter()
            .find(|(i, _, _)| *i == instance)?;
        Some(PromotionScore {
            node: self.nodes[n].name.clone(),
            score,
            role: self.rscs[p].next_role,
        })
    }

    fn verdict(&self, p: RscIdx) -> String {
        let rsc = &self.rscs[p];
        if !rsc.managed {
            return "unmanaged: it stays as it is".into();
        }
        if let Some(n) = rsc.assigned {
            let score = rsc.allowed[n].unwrap_or(Score::ZERO);
            return format!(
                "placed on {} (score {}), the best usable node",
                self.nodes[n].name, score
            );
        }
        if rsc.next_role == Some(tandem_model::Role::Stopped)
            && rsc.target_role == Some(tandem_model::Role::Stopped)
        {
            return "stopped: target-role is Stopped".into();
        }
        let usable = (0..self.nodes.len())
            .filter(|&n| {
                self.nodes[n].available() && rsc.allowed[n].is_some_and(|s| s.value() >= 0)
            })
            .count();
        if usable == 0 {
            "stopped: no available node has a score of 0 or more".into()
        } else if self.rscs[p]
            .parent
            .is_some_and(|g| self.rscs[g].variant == Variant::Clone)
        {
            "stopped: the clone has no slot left for this instance".into()
        } else {
            "stopped: it cannot run anywhere".into()
        }
    }
}
