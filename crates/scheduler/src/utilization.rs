//! Utilization (placement-strategy utilization/minimal/balanced): nodes
//! have capacities, resources consume them; a resource (with the
//! not-yet-assigned resources it must run with) only goes where it fits.

use crate::options::PlacementStrategy;
use crate::working::{NodeIdx, RscIdx, Variant};
use crate::Sched;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use tandem_model::Score;

impl Sched<'_> {
    /// Bans `r` from nodes without room for it and its mandatory colocated
    /// resources; when no node has room for all of them, from nodes without
    /// room for `r` alone, and returns the node with most free capacity as
    /// the preferred one.
    pub(crate) fn ban_insufficient_capacity(&mut self, r: RscIdx) -> Option<NodeIdx> {
        if self.opts.placement_strategy == PlacementStrategy::Default {
            return None;
        }
        let group = self.mandatory_colocated(r);
        let mut needed: BTreeMap<String, i64> = self.rscs[r].utilization.clone();
        for &other in &group {
            if other != r && !self.rscs[other].assigned_done {
                for (k, v) in &self.rscs[other].utilization {
                    *needed.entry(k.clone()).or_default() += v;
                }
            }
        }
        let usable: Vec<NodeIdx> = (0..self.nodes.len())
            .filter(|&n| {
                self.nodes[n].available() && self.rscs[r].allowed[n].is_some_and(|s| s.value() >= 0)
            })
            .collect();
        let any_fits = usable.iter().any(|&n| self.fits(n, &needed));
        let mut most_free: Option<NodeIdx> = None;
        for &n in &usable {
            if most_free.is_none_or(|m| self.compare_capacity(n, m) == Ordering::Less) {
                most_free = Some(n);
            }
        }
        let own = self.rscs[r].utilization.clone();
        let limit = if any_fits { &needed } else { &own };
        for &n in &usable {
            if !self.fits(n, limit) {
                self.add_location(r, n, Score::NEG_INFINITY, "utilization");
            }
        }
        if any_fits {
            None
        } else {
            most_free
        }
    }

    /// Whether `node` has `needed` left on every attribute (a capacity that
    /// is not configured is 0).
    fn fits(&self, node: NodeIdx, needed: &BTreeMap<String, i64>) -> bool {
        needed.iter().all(|(k, &v)| self.remaining(node, k) >= v)
    }

    pub(crate) fn remaining(&self, node: NodeIdx, attr: &str) -> i64 {
        self.nodes[node].utilization.get(attr).copied().unwrap_or(0) - self.used(node, attr)
    }

    fn used(&self, node: NodeIdx, attr: &str) -> i64 {
        self.consumed
            .get(&(node, attr.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Records that `r`, now assigned to `node`, consumes its utilization.
    pub(crate) fn consume_capacity(&mut self, r: RscIdx, node: NodeIdx) {
        for (k, v) in self.rscs[r].utilization.clone() {
            *self.consumed.entry((node, k)).or_default() += v;
        }
    }

    /// Less = `a` has more free capacity than `b` (attribute by attribute).
    pub(crate) fn compare_capacity(&self, a: NodeIdx, b: NodeIdx) -> Ordering {
        let mut result = 0i32;
        let attrs: std::collections::BTreeSet<&String> = self.nodes[a]
            .utilization
            .keys()
            .chain(self.nodes[b].utilization.keys())
            .collect();
        for k in attrs {
            let (ra, rb) = (self.remaining(a, k), self.remaining(b, k));
            result += match ra.cmp(&rb) {
                Ordering::Greater => -1,
                Ordering::Less => 1,
                Ordering::Equal => 0,
            };
        }
        result.cmp(&0)
    }

    /// `r` and every resource tied to it by +INFINITY colocations (either
    /// direction), without crossing from a clone to a non-clone.
    fn mandatory_colocated(&self, r: RscIdx) -> Vec<RscIdx> {
        let mut seen = vec![r];
        let mut i = 0;
        while i < seen.len() {
            let cur = seen[i];
            i += 1;
            for c in &self.colocations {
                if !c.score.is_pos_infinity() {
                    continue;
                }
                let other = if c.dependent == cur {
                    c.primary
                } else if c.primary == cur {
                    c.dependent
                } else {
                    continue;
                };
                let crosses = self.rscs[cur].variant == Variant::Clone
                    && self.rscs[other].variant != Variant::Clone;
                for p in self.primitives_of(other) {
                    if !crosses && !seen.contains(&p) {
                        seen.push(p);
                    }
                }
            }
        }
        seen
    }
}
