//! The executor's entry point: an [`OpRequest`] (resource, agent, action,
//! parameters, meta-attributes, timeout, interval) goes to the [`Runner`]
//! seam; the real [`Executor`] dispatches by agent class to `ocf`, `lsb`,
//! `systemd` or `fence` and returns an [`OpResult`]. [`ExecConfig`] holds
//! the node-local paths and the environment every agent class shares.
//!
//! Must not: decide what to run or where; callers (the daemon's executor,
//! the CLI) decide, this module only performs.

use crate::limits::{
    DEFAULT_TIMEOUT_MS, FENCE_STDIN_MAX_BYTES, KILL_GRACE_MS, MAX_TIMEOUT_MS, OUTPUT_CAP_BYTES,
};
use crate::process::Spawn;
use crate::result::{AgentStatus, OpResult};
use crate::{fence, lsb, ocf, systemd};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The Pacemaker feature set the shims and the OCF environment report, so
/// agents that compare it (`ocf_promotion_score`, `ocf_version_cmp`) take
/// their modern code paths. 3.16.2 is Pacemaker 2.1.5's.
pub const CRM_FEATURE_SET: &str = "3.16.2";

/// The Pacemaker version the shims claim in `--version` output.
pub const PACEMAKER_COMPAT_VERSION: &str = "2.1.5";

/// An agent class, as in `class:provider:type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentClass {
    Ocf,
    Lsb,
    Systemd,
    Stonith,
}

/// Which agent runs a resource: `ocf:heartbeat:IPaddr2`, `lsb:nginx`,
/// `systemd:nginx`, `stonith:fence_ipmilan`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AgentRef {
    pub class: AgentClass,
    /// OCF only: the provider directory under `resource.d`.
    pub provider: Option<String>,
    /// The agent's name (script, unit or fence agent).
    pub kind: String,
}

/// Why an agent specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("agent `{0}`: expected class:provider:type for ocf, or class:type for lsb, systemd and stonith")]
    Shape(String),
    #[error("agent `{0}`: unknown class `{1}` (expected ocf, lsb, systemd or stonith)")]
    Class(String, String),
    #[error("agent `{0}`: `{1}` may hold only letters, digits, `.`, `_`, `-` and `@`")]
    Name(String, String),
    #[error("unknown action `{0}` (expected one of: {1})")]
    Action(String, String),
}

impl FromStr for AgentRef {
    type Err = RefError;
    fn from_str(s: &str) -> Result<AgentRef, RefError> {
        let parts: Vec<&str> = s.split(':').collect();
        let class = match parts[0] {
            "ocf" => AgentClass::Ocf,
            "lsb" => AgentClass::Lsb,
            "systemd" | "service" => AgentClass::Systemd,
            "stonith" => AgentClass::Stonith,
            other => return Err(RefError::Class(s.into(), other.into())),
        };
        let (provider, kind) = match (class, parts.as_slice()) {
            (AgentClass::Ocf, [_, p, t]) => (Some(p.to_string()), t.to_string()),
            (AgentClass::Ocf, _) => return Err(RefError::Shape(s.into())),
            (_, [_, t]) => (None, t.to_string()),
            _ => return Err(RefError::Shape(s.into())),
        };
        // These names become file paths: refuse `..`, `/` and the like.
        for name in provider.iter().chain([&kind]) {
            let ok = !name.is_empty()
                && !name.starts_with('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
            if !ok {
                return Err(RefError::Name(s.into(), name.clone()));
            }
        }
        Ok(AgentRef {
            class,
            provider,
            kind,
        })
    }
}

impl AgentClass {
    pub fn name(self) -> &'static str {
        match self {
            AgentClass::Ocf => "ocf",
            AgentClass::Lsb => "lsb",
            AgentClass::Systemd => "systemd",
            AgentClass::Stonith => "stonith",
        }
    }
}

impl fmt::Display for AgentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = self.class.name();
        match &self.provider {
            Some(p) => write!(f, "{class}:{p}:{}", self.kind),
            None => write!(f, "{class}:{}", self.kind),
        }
    }
}

/// A resource action (OCF 1.1's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Action {
    Start,
    Stop,
    Monitor,
    Promote,
    Demote,
    Reload,
    ReloadAgent,
    MigrateTo,
    MigrateFrom,
    Notify,
    MetaData,
    ValidateAll,
}

impl Action {
    pub const ALL: [Action; 12] = [
        Action::Start,
        Action::Stop,
        Action::Monitor,
        Action::Promote,
        Action::Demote,
        Action::Reload,
        Action::ReloadAgent,
        Action::MigrateTo,
        Action::MigrateFrom,
        Action::Notify,
        Action::MetaData,
        Action::ValidateAll,
    ];

    /// The name agents receive as their argument.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Monitor => "monitor",
            Action::Promote => "promote",
            Action::Demote => "demote",
            Action::Reload => "reload",
            Action::ReloadAgent => "reload-agent",
            Action::MigrateTo => "migrate_to",
            Action::MigrateFrom => "migrate_from",
            Action::Notify => "notify",
            Action::MetaData => "meta-data",
            Action::ValidateAll => "validate-all",
        }
    }
}

impl FromStr for Action {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Action, RefError> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
                RefError::Action(s.into(), names.join(", "))
            })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One operation to perform on one resource on this node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRequest {
    /// The resource instance: a unique clone's carries its number (`db:1`);
    /// an anonymous clone's instances share the primitive's id.
    pub resource: String,
    pub agent: AgentRef,
    pub action: Action,
    /// Instance attributes (`OCF_RESKEY_<name>`).
    pub params: BTreeMap<String, String>,
    /// Meta-attributes passed as `OCF_RESKEY_CRM_meta_<name>` (clone,
    /// clone_max, notify_type, …); timeout and interval are added from the
    /// fields below.
    pub meta: BTreeMap<String, String>,
    pub timeout_ms: u64,
    /// 0 for one-shot operations and probes.
    pub interval_ms: u64,
    /// Ends the agent early (a start in flight when the lease is lost).
    #[serde(skip)]
    pub cancel: Option<crate::process::Cancel>,
}

impl OpRequest {
    /// A request with no parameters, the default timeout and no interval.
    pub fn new(resource: &str, agent: AgentRef, action: Action) -> OpRequest {
        OpRequest {
            resource: resource.to_string(),
            agent,
            action,
            params: BTreeMap::new(),
            meta: BTreeMap::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            interval_ms: 0,
            cancel: None,
        }
    }

    pub fn param(mut self, name: &str, value: &str) -> OpRequest {
        self.params.insert(name.into(), value.into());
        self
    }

    pub fn timeout_ms(mut self, ms: u64) -> OpRequest {
        self.timeout_ms = ms;
        self
    }
}

/// Node-local settings shared by every agent class.
#[derive(Clone, Debug)]
pub struct ExecConfig {
    /// `OCF_ROOT`: holds `resource.d/<provider>/<type>` and `lib/heartbeat`.
    pub ocf_root: PathBuf,
    /// Where LSB init scripts live.
    pub lsb_dir: PathBuf,
    /// Where fence agents live (`fence_*`).
    pub fence_dir: PathBuf,
    /// Directory holding the shims (`crm_attribute` …) agents call; given
    /// to agents as `HA_SBIN_DIR` and first on `PATH`.
    pub shim_dir: Option<PathBuf>,
    /// `PATH` for agents, after the shim directory.
    pub path: String,
    /// The attribute store the shims use, passed as `TANDEM_ATTR_STORE`.
    pub attr_store: Option<PathBuf>,
    /// This node's name, passed as `TANDEM_NODE_NAME` for `crm_node -n`.
    pub node_name: Option<String>,
    /// Where `systemctl` is.
    pub systemctl: PathBuf,
    /// Directory whose presence means PID 1 is systemd (sd_booted(3)).
    pub systemd_marker: PathBuf,
    pub kill_grace_ms: u64,
    pub output_cap: usize,
    /// More variables for every agent (`HA_VARRUN`, `HA_RSCTMP`, …).
    pub extra_env: BTreeMap<String, String>,
}

impl Default for ExecConfig {
    fn default() -> ExecConfig {
        ExecConfig {
            ocf_root: PathBuf::from("/usr/lib/ocf"),
            lsb_dir: PathBuf::from("/etc/init.d"),
            fence_dir: PathBuf::from("/usr/sbin"),
            shim_dir: None,
            path: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            attr_store: None,
            node_name: None,
            systemctl: PathBuf::from("systemctl"),
            systemd_marker: PathBuf::from("/run/systemd/system"),
            kill_grace_ms: KILL_GRACE_MS,
            output_cap: OUTPUT_CAP_BYTES,
            extra_env: BTreeMap::new(),
        }
    }
}

impl ExecConfig {
    /// The environment every agent gets before its class adds its own.
    pub fn base_env(&self) -> Vec<(String, String)> {
        let mut env = vec![("LC_ALL".to_string(), "C".to_string())];
        let path = match &self.shim_dir {
            Some(dir) => {
                env.push(("HA_SBIN_DIR".into(), dir.display().to_string()));
                format!("{}:{}", dir.display(), self.path)
            }
            None => self.path.clone(),
        };
        env.push(("PATH".into(), path));
        if let Some(store) = &self.attr_store {
            env.push(("TANDEM_ATTR_STORE".into(), store.display().to_string()));
        }
        if let Some(node) = &self.node_name {
            env.push(("TANDEM_NODE_NAME".into(), node.clone()));
        }
        env.extend(self.extra_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }

    /// A process description with this configuration's limits.
    pub fn spawn(&self, program: PathBuf, args: Vec<String>, env: Vec<(String, String)>) -> Spawn {
        Spawn {
            program,
            args,
            env,
            stdin: None,
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            kill_grace: Duration::from_millis(self.kill_grace_ms),
            output_cap: self.output_cap,
            cancel: None,
        }
    }
}

/// Runs `program args` with `env` (and `stdin`) under the request's
/// timeout, mapping its exit code with `map`: the one way every agent class
/// runs a process.
pub(crate) fn run_mapped(
    config: &ExecConfig,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
    (timeout_ms, cancel): (u64, Option<&crate::process::Cancel>),
    map: impl Fn(i32) -> AgentStatus,
) -> OpResult {
    let mut spawn = config.spawn(program, args, env);
    spawn.timeout = effective_timeout(timeout_ms);
    spawn.stdin = stdin;
    spawn.cancel = cancel.cloned();
    match crate::process::run(&spawn, FENCE_STDIN_MAX_BYTES) {
        Ok(finished) => OpResult::from_finished(finished, map),
        Err(e) => OpResult::exec_failed(e.to_string()),
    }
}

/// A result saying this agent class has no such action.
pub(crate) fn unimplemented(request: &OpRequest) -> OpResult {
    let mut r = OpResult::exec_failed(format!(
        "{} agents have no `{}` action",
        request.agent.class.name(),
        request.action
    ));
    r.status = AgentStatus::Unimplemented;
    r
}

/// Clamps a configured timeout into (0, MAX_TIMEOUT_MS]; 0 means default.
pub fn effective_timeout(timeout_ms: u64) -> Duration {
    let ms = match timeout_ms {
        0 => DEFAULT_TIMEOUT_MS,
        ms => ms.min(MAX_TIMEOUT_MS),
    };
    Duration::from_millis(ms)
}

/// The seam between deciding and running agents: the real [`Executor`]
/// runs processes, a simulation answers from a script.
pub trait Runner: Send + Sync {
    fn execute(&self, request: &OpRequest) -> OpResult;
}

/// Runs agents on this machine.
#[derive(Clone, Debug, Default)]
pub struct Executor {
    pub config: ExecConfig,
}

impl Executor {
    pub fn new(config: ExecConfig) -> Executor {
        Executor { config }
    }
}

impl Runner for Executor {
    fn execute(&self, request: &OpRequest) -> OpResult {
        match request.agent.class {
            AgentClass::Ocf => ocf::run(&self.config, request),
            AgentClass::Lsb => lsb::run(&self.config, request),
            AgentClass::Systemd => systemd::run(&self.config, request),
            AgentClass::Stonith => fence::run_as_resource(&self.config, request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_refs_parse_and_print_back() {
        for s in [
            "ocf:heartbeat:Dummy",
            "lsb:nginx",
            "systemd:nginx@x",
            "stonith:fence_dummy",
        ] {
            assert_eq!(s.parse::<AgentRef>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn bad_agent_refs_say_what_is_wrong() {
        let e = "ocf:Dummy".parse::<AgentRef>().unwrap_err().to_string();
        assert!(e.contains("class:provider:type"), "{e}");
        let e = "xen:foo".parse::<AgentRef>().unwrap_err().to_string();
        assert!(e.contains("unknown class `xen`"), "{e}");
        let e = "ocf:heartbeat:../../bin/sh"
            .parse::<AgentRef>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("../../bin/sh"), "{e}");
    }

    #[test]
    fn actions_parse_by_their_ocf_names() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>().unwrap(), a);
        }
        let e = "begin".parse::<Action>().unwrap_err().to_string();
        assert!(e.contains("begin") && e.contains("migrate_to"), "{e}");
    }

    #[test]
    fn timeouts_are_clamped() {
        assert_eq!(effective_timeout(0).as_millis() as u64, DEFAULT_TIMEOUT_MS);
        assert_eq!(
            effective_timeout(u64::MAX).as_millis() as u64,
            MAX_TIMEOUT_MS
        );
    }
}
