//! tandem's policy engine: a pure, deterministic function from a cluster
//! snapshot and "now" to a placement and a transition, with Pacemaker's
//! semantics.
//!
//! Entry point: [`schedule`]. Output types: [`view`]. The pipeline, one
//! module per step: [`options`] → [`nodes`] → [`resources`] → `history`
//! (status replay) → `location` (node tables) → `colocation` / `order`
//! (constraint expansion) → `assign` (placement) → `actions` (runnability,
//! restarts, summary) → `output` (views).
//!
//! Must not touch network, disk or the clock.

// Node and resource tables are arenas indexed by NodeIdx/RscIdx; index
// loops over them read better than zipped iterators.
#![allow(clippy::needless_range_loop)]

mod actions;
mod assign;
mod colocation;
pub mod explain;
mod graph;
mod history;
mod location;
pub mod nodes;
pub mod options;
mod order;
mod output;
mod promotable;
pub mod resources;
pub mod rules;
pub mod summary;
mod utilization;
pub mod view;
mod working;

pub use explain::{explain, Explanation};
pub use view::{
    Action, ActiveOn, ClusterView, NodeView, PrimitiveView, ResourceView, SummaryLine, Transition,
};

use colocation::Coloc;
use options::Options;
use order::OrderRule;
use std::collections::BTreeMap;
use tandem_model::{Cluster, Location, Score};
use working::{Node, NodeIdx, Rsc, RscIdx, Variant};

/// Computes the transition for `cluster` at `now` (epoch seconds).
///
/// Its work is not bounded: some inputs (many paths through the
/// colocation graph, long chains against document order) take time that
/// grows faster than their size. Code serving untrusted input calls
/// [`schedule_with_limit`].
pub fn schedule(cluster: &Cluster, now: i64) -> Transition {
    let mut s = Sched::new(cluster, now, None);
    s.run()
}

/// [`schedule`], giving up with [`ScheduleError::TooMuchWork`] once the run
/// has done `work_limit` units of work. A unit is one step of a walk whose
/// length the input decides: a resource assignment step, a node score
/// merged from a colocated resource, a constraint checked again while
/// runnability propagates, an ordering edge. The count is deterministic,
/// so every node that schedules the same input agrees on whether it fits,
/// and a run that gives up ends by itself (a thread cannot be stopped from
/// outside).
pub fn schedule_with_limit(
    cluster: &Cluster,
    now: i64,
    work_limit: u64,
) -> Result<Transition, ScheduleError> {
    let mut s = Sched::new(cluster, now, None);
    s.work_limit = work_limit;
    let transition = s.run();
    if s.out_of_work() {
        return Err(ScheduleError::TooMuchWork { limit: work_limit });
    }
    Ok(transition)
}

/// Why [`schedule_with_limit`] produced no transition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "scheduling this configuration needs more than {limit} units of work \
         (long colocation or order chains, or many paths through the colocation graph)"
    )]
    TooMuchWork { limit: u64 },
}

/// The working state of one scheduler run.
pub(crate) struct Sched<'a> {
    cluster: &'a Cluster,
    now: i64,
    opts: Options,
    nodes: Vec<Node>,
    rscs: Vec<Rsc>,
    /// Top-level resources in document order (orphans appended).
    top: Vec<RscIdx>,
    by_id: BTreeMap<String, RscIdx>,
    /// -INFINITY locations found while unpacking status, applied with the
    /// other location scores.
    bans: Vec<(RscIdx, NodeIdx, String)>,
    colocations: Vec<Coloc>,
    this_with: Vec<Vec<usize>>,
    with_this: Vec<Vec<usize>>,
    orders: Vec<OrderRule>,
    /// `role=Promoted` locations, used only for promotion.
    promotion_locations: Vec<Location>,
    /// Locations with resource-discovery=exclusive.
    exclusive: Vec<(RscIdx, Vec<NodeIdx>)>,
    have_fencing_device: bool,
    warnings: Vec<String>,
    /// Resource whose score contributions `explain` records.
    explain: Option<String>,
    contributions: Vec<(RscIdx, NodeIdx, Score, String)>,
    /// Utilization consumed per (node, attribute) by resources assigned in
    /// this run.
    consumed: BTreeMap<(NodeIdx, String), i64>,
    /// Per colocation node attribute, a value class per node.
    attr_classes: BTreeMap<String, Vec<Option<u32>>>,
    /// Resource history id → node → (fail count, last failure epoch).
    fail_counts: BTreeMap<String, BTreeMap<NodeIdx, (Score, i64)>>,
    /// Anonymous clone instances by history id (see `history`).
    anonymous_instances: BTreeMap<String, Vec<RscIdx>>,
    /// Promotion score of each placed promotable instance, for `explain`.
    promotion_scores: Vec<(RscIdx, NodeIdx, Score)>,
    /// Buffers the colocation merge reuses between runs of it.
    merge_spare: colocation::Spare,
    /// Units of work done so far (see [`schedule_with_limit`]); a cell so
    /// that walks which only read the working state can count too.
    work_done: std::cell::Cell<u64>,
    /// Past this, every walk stops early and the result is discarded.
    work_limit: u64,
}

impl<'a> Sched<'a> {
    fn new(cluster: &'a Cluster, now: i64, explain: Option<String>) -> Sched<'a> {
        let opts = Options::from_config(&cluster.config, cluster.status.have_watchdog);
        let nodes = nodes::unpack_nodes(cluster, &opts, now);
        let arena = resources::unpack_resources(&cluster.config, &opts, now, nodes.len());
        let have_fencing_device = cluster
            .config
            .resources
            .iter()
            .any(|r| r.primitives().iter().any(|p| p.is_fencing_device()));
        Sched {
            cluster,
            now,
            opts,
            nodes,
            rscs: arena.rscs,
            top: arena.top,
            by_id: arena.by_id,
            bans: Vec::new(),
            colocations: Vec::new(),
            this_with: Vec::new(),
            with_this: Vec::new(),
            orders: Vec::new(),
            promotion_locations: Vec::new(),
            exclusive: Vec::new(),
            have_fencing_device,
            warnings: Vec::new(),
            explain,
            contributions: Vec::new(),
            consumed: BTreeMap::new(),
            attr_classes: BTreeMap::new(),
            fail_counts: BTreeMap::new(),
            anonymous_instances: BTreeMap::new(),
            promotion_scores: Vec::new(),
            merge_spare: colocation::Spare::default(),
            work_done: std::cell::Cell::new(0),
            work_limit: u64::MAX,
        }
    }

    /// Counts `units` of work; false once the limit is passed, when the
    /// caller stops its walk (the run's result will be discarded).
    fn charge(&self, units: u64) -> bool {
        let done = self.work_done.get().saturating_add(units);
        self.work_done.set(done);
        done <= self.work_limit
    }

    fn out_of_work(&self) -> bool {
        self.work_done.get() > self.work_limit
    }

    fn run(&mut self) -> Transition {
        self.unpack_history();
        let current = self.view(None);
        self.build_tables();
        self.unpack_colocations();
        self.unpack_orders();
        self.assign_all();
        if self.out_of_work() {
            // Placement was cut short: planning from it would only waste
            // more time on a result that is discarded.
            return Transition::default();
        }
        let plan = self.plan();
        let revised = self.view(Some(&plan));
        Transition {
            current,
            revised,
            actions: plan.actions,
            summary: plan.summary,
            warnings: std::mem::take(&mut self.warnings),
        }
    }

    /// The clone `r` is an instance of (or a member of an instance of).
    fn clone_of(&self, r: RscIdx) -> Option<RscIdx> {
        let mut cur = self.rscs[r].parent;
        while let Some(p) = cur {
            if self.rscs[p].variant == Variant::Clone {
                return Some(p);
            }
            cur = self.rscs[p].parent;
        }
        None
    }

    /// The clone instance containing `r` (itself, or its group).
    fn instance_root(&self, r: RscIdx) -> RscIdx {
        match self.rscs[r].parent {
            Some(p) if self.rscs[p].variant == Variant::Group && self.clone_of(p).is_some() => p,
            _ => r,
        }
    }

    /// Consecutive (earlier, later) members of every group whose boolean
    /// meta attribute `flag` (`colocated`, `ordered`; default true) holds.
    fn group_member_pairs(&self, flag: &str) -> Vec<(RscIdx, RscIdx)> {
        let mut pairs = Vec::new();
        for g in (0..self.rscs.len()).filter(|&g| self.rscs[g].variant == Variant::Group) {
            let on = self.rscs[g]
                .meta
                .get(flag)
                .and_then(|v| tandem_model::parse_bool(v))
                .unwrap_or(true);
            if on {
                pairs.extend(self.rscs[g].children.windows(2).map(|w| (w[0], w[1])));
            }
        }
        pairs
    }

    /// Every primitive inside `r`.
    fn primitives_of(&self, r: RscIdx) -> Vec<RscIdx> {
        match self.rscs[r].variant {
            Variant::Primitive => vec![r],
            _ => self.rscs[r]
                .children
                .iter()
                .flat_map(|&c| self.primitives_of(c))
                .collect(),
        }
    }
}
