//! Membership, quorum and the replicated log (Raft via openraft, redb).
//!
//! Empty until the cluster-core issue. Must not know resource semantics;
//! the only crate that will see openraft and redb.
