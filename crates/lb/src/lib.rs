//! The traffic distribution layer: listeners, balancing, health checks,
//! drain, persistence, client identity, TLS and DNS.
//!
//! Empty until the traffic issue. Must not block on the cluster.
