//! Runs resource agents and fence agents (OCF, LSB, systemd, fence-agents).
//!
//! Empty until the execution issue: this crate will own agent environments,
//! timeouts, process groups and exit-code mapping. Must not decide placement.
