//! Wires the crates together on a node: controller on the DC, executor on
//! every node, HTTP API and metrics.
//!
//! Empty until the cluster-core issue. Holds no logic that belongs to a
//! crate below it.
