//! The properties every simulated run must keep, one file each, checked
//! after every step of the run. Each returns a message naming the broken
//! rule; the driver adds the seed and the replay command. The node-lease
//! rule, which the whole-daemon simulation checks too, is
//! `tandem_cluster::sim::node_lease`.

pub mod committed_history;
pub mod convergence;
pub mod dc_lease;
pub mod leader_per_term;
