//! Runs resource agents and fence agents on this node: OCF 1.1, LSB init
//! scripts, systemd units and fence-agents, each in its own process group
//! under a timeout, with capped output and typed results; recurring
//! monitors and fail counts; and the Pacemaker CLI shims (`crm_attribute`,
//! `crm_master`, `attrd_updater`, `crm_node`, `crm_resource`) that real
//! agents call, backed by a local attribute store until the daemon serves
//! them.
//!
//! Main types: [`OpRequest`] → [`Runner::execute`] ([`Executor`] is the
//! real one) → [`OpResult`] with an [`AgentStatus`] and a [`Severity`];
//! [`fence::FenceRequest`]; [`monitor::MonitorScheduler`];
//! [`failcount::FailCounts`]; [`attrs::AttrStore`]; [`shim::run`].
//!
//! Must not: decide placement or recovery (the scheduler and controller
//! do); depends on no tandem crate but `tandem-model`.

pub mod attrs;
pub mod builtin;
pub mod exec;
pub mod failcount;
pub mod fence;
pub mod limits;
pub mod lsb;
pub mod metadata;
pub mod monitor;
pub mod ocf;
pub mod process;
pub mod result;
pub mod shim;
pub mod systemd;

pub use exec::{
    Action, AgentClass, AgentRef, ExecConfig, Executor, OpRequest, Runner, CRM_FEATURE_SET,
};
pub use result::{AgentStatus, Expected, OpResult, Severity};
