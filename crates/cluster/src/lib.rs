//! Membership, quorum and the replicated log: Raft via openraft, storage in
//! redb, node-to-node transport over mutual TLS. The Raft leader is the
//! cluster's DC.
//!
//! Main types: [`ClusterNode`] (a running member), [`MembershipView`] (what
//! a node knows about the group), [`Replicated`] (the replicated
//! configuration and status), [`Command`] (a change to it).
//!
//! Seams for the deterministic simulation (`tests/sim`): [`Transport`]
//! (network), [`MemDisk`] (disk), tokio's clock, [`seed_thread_rng`]
//! (openraft's randomness); [`ClusterNode::start_with`] takes the first
//! two as [`Seams`].
//!
//! Must not know resource semantics: the configuration is an opaque,
//! versioned document here. The only crate that sees openraft and redb.

mod lease;
mod members;
mod net;
mod node;
mod pki;
mod runtime;
#[cfg(feature = "sim")]
pub mod sim;
mod state;
mod store;
mod suspend;
mod tls;
mod types;
mod watch;

pub use lease::{drift_margin, MAX_CLOCK_RATE_ERROR_PPM};
pub use members::{
    MemberAnswer, MemberChange, MemberError, CATCH_UP_LAG, MAX_VOTERS, MIN_VOTERS_UNFORCED,
};
pub use net::{BoxFuture, Endpoint, Link, Transport, MAX_FRAME_BYTES};
pub use node::{
    AppliedState, ChangeWatch, ClusterError, ClusterNode, MembershipView, NodeSettings, PeerView,
    Seams, Timing,
};
pub use pki::{Authority, Issued, PkiError, SERVER_NAME};
pub use runtime::{random_u64, seed_thread_rng};
pub use state::{NodeStatus, Replicated, ResourceOps, FENCE_HISTORY_LEN};
pub use store::{force_single_node, MemDisk, StoreError};
pub use tls::{identity_of, server_name, Identity, TlsError, TlsFiles};
pub use types::{Command, CommandResult, FenceRecord, HistoryOp, Member, NodeId, ResourceAgent};
