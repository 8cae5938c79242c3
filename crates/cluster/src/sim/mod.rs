//! What deterministic simulations of tandem share (feature `sim`, tests
//! only): a seeded random source, a simulated network that carries the
//! cluster's real messages on tokio's paused clock, and the run's trace.
//! The cluster core's simulation (`crates/cluster/tests/sim`) and the
//! whole-daemon simulation (`crates/daemon/tests/sim`) run on them, and
//! both check the node-lease rule ([`node_lease`]).

mod net;
pub mod node_lease;
mod rng;
mod seeds;
mod trace;

pub use net::{NetState, SimNet, TrueTime, CALM_DELAY_US};
pub use rng::SimRng;
pub use seeds::{node_settings, run_seeds};
pub use trace::{digest, Trace};
