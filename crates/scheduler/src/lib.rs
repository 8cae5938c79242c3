//! tandem's policy engine: a pure, deterministic function from a cluster
//! snapshot and "now" to a placement and a transition, with Pacemaker's
//! semantics.
//!
//! Entry point: [`schedule`]. Output types: [`view`].
//! Must not touch network, disk or the clock.

pub mod summary;
pub mod view;

pub use view::{Action, ActiveOn, ClusterView, NodeView, PrimitiveView, ResourceView, SummaryLine, Transition};

use tandem_model::Cluster;

/// Computes the transition for `cluster` at `now` (epoch seconds).
pub fn schedule(cluster: &Cluster, now: i64) -> Transition {
    let _ = (cluster, now);
    Transition::default()
}
