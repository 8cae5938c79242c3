//! Fence agents (the fence-agents protocol): `<fence_dir>/<agent>` run with
//! `key=value` lines on stdin: `action=`, `plug=`/`port=` and `nodename=`
//! naming the target, then the device's own parameters. Exit 0 is success;
//! for `status`, 0 means the target is on and 2 that it is off.
//!
//! Main types: [`FenceAction`], [`FenceRequest`]; [`fence`] runs one,
//! [`list`] and [`metadata`] read what a device reports.
//! Must not: decide whom to fence; the controller does.

use crate::exec::{run_mapped, unimplemented, Action, ExecConfig, OpRequest};
use crate::metadata::{self, Metadata, MetadataError};
use crate::result::{AgentStatus, OpResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A fence-agents action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FenceAction {
    Off,
    On,
    Reboot,
    Status,
    Monitor,
    List,
    Metadata,
    ValidateAll,
}

impl FenceAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FenceAction::Off => "off",
            FenceAction::On => "on",
            FenceAction::Reboot => "reboot",
            FenceAction::Status => "status",
            FenceAction::Monitor => "monitor",
            FenceAction::List => "list",
            FenceAction::Metadata => "metadata",
            FenceAction::ValidateAll => "validate-all",
        }
    }
}

/// One request to a fence device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceRequest {
    /// The fence agent's executable name (`fence_ipmilan`).
    pub agent: String,
    pub action: FenceAction,
    /// The node to act on (`plug`, `port` and `nodename`); none for
    /// monitor, list and metadata.
    pub target: Option<String>,
    /// The device's parameters (`ip`, `username`, `password`, …).
    pub params: BTreeMap<String, String>,
    pub timeout_ms: u64,
}

/// Runs one fence action. `status` maps 0 → Ok (target on), 2 →
/// NotRunning (target off); every other action succeeds only with 0.
pub fn fence(config: &ExecConfig, request: &FenceRequest) -> OpResult {
    let stdin = match stdin_text(request) {
        Ok(text) => text,
        Err(reason) => return OpResult::exec_failed(reason),
    };
    if !valid_agent_name(&request.agent) {
        return OpResult::exec_failed(format!(
            "fence agent name `{}` must look like fence_<name>",
            request.agent
        ));
    }
    let path = config.fence_dir.join(&request.agent);
    if !path.is_file() {
        let mut r = OpResult::exec_failed(format!("fence agent {} not found", path.display()));
        r.status = AgentStatus::NotInstalled;
        return r;
    }
    let is_status = request.action == FenceAction::Status;
    run_mapped(
        config,
        path,
        Vec::new(),
        config.base_env(),
        Some(stdin),
        (request.timeout_ms, None),
        move |code| match code {
            0 => AgentStatus::Ok,
            2 if is_status => AgentStatus::NotRunning,
            _ => AgentStatus::GenericError,
        },
    )
}

/// The plugs (nodes) a device can fence, from `list` (`plug[,alias]` lines).
pub fn list(config: &ExecConfig, request: &FenceRequest) -> Result<Vec<String>, OpResult> {
    let request = FenceRequest {
        action: FenceAction::List,
        target: None,
        ..request.clone()
    };
    let result = fence(config, &request);
    if result.status != AgentStatus::Ok {
        return Err(result);
    }
    Ok(result
        .stdout
        .lines()
        .filter_map(|l| l.split(',').next())
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect())
}

/// Runs `metadata` and parses it.
pub fn metadata(config: &ExecConfig, request: &FenceRequest) -> Result<Metadata, MetadataError> {
    let request = FenceRequest {
        action: FenceAction::Metadata,
        target: None,
        ..request.clone()
    };
    let result = fence(config, &request);
    if result.status != AgentStatus::Ok {
        return Err(MetadataError::Failed {
            agent: request.agent.clone(),
            status: format!("{:?}", result.status),
            reason: result.exit_reason.unwrap_or_default(),
        });
    }
    metadata::parse(&request.agent, &result.stdout)
}

/// A fence device managed as a `stonith:` resource: start and monitor
/// check the device (Pacemaker starts a device by registering and
/// monitoring it), stop has nothing to do.
pub fn run_as_resource(config: &ExecConfig, request: &OpRequest) -> OpResult {
    let action = match request.action {
        Action::Start | Action::Monitor => FenceAction::Monitor,
        Action::ValidateAll => FenceAction::ValidateAll,
        Action::MetaData => FenceAction::Metadata,
        Action::Stop => {
            let mut r = OpResult::exec_failed("");
            r.status = AgentStatus::Ok;
            r.exit_reason = None;
            return r;
        }
        _ => return unimplemented(request),
    };
    fence(
        config,
        &FenceRequest {
            agent: request.agent.kind.clone(),
            action,
            target: None,
            params: request.params.clone(),
            timeout_ms: request.timeout_ms,
        },
    )
}

/// The stdin lines for a request; an error names a key or value that would
/// break the line protocol.
pub fn stdin_text(request: &FenceRequest) -> Result<String, String> {
    let mut text = format!("action={}\n", request.action.as_str());
    if let Some(target) = &request.target {
        check_line("target", target)?;
        for key in ["plug", "port", "nodename"] {
            let _ = writeln!(text, "{key}={target}");
        }
    }
    for (key, value) in &request.params {
        if key.is_empty() || key.contains(['=', '\n', '\r']) {
            return Err(format!(
                "fence parameter name `{key}` cannot be sent on stdin"
            ));
        }
        if matches!(key.as_str(), "action" | "plug" | "port" | "nodename") {
            continue; // the request's own fields decide these
        }
        check_line(key, value)?;
        let _ = writeln!(text, "{key}={value}");
    }
    Ok(text)
}

fn check_line(key: &str, value: &str) -> Result<(), String> {
    if value.contains(['\n', '\r', '\0']) {
        Err(format!(
            "fence parameter `{key}` has a line break or NUL in its value"
        ))
    } else {
        Ok(())
    }
}

fn valid_agent_name(name: &str) -> bool {
    name.starts_with("fence_")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(action: FenceAction) -> FenceRequest {
        FenceRequest {
            agent: "fence_test".into(),
            action,
            target: Some("node2".into()),
            params: BTreeMap::from([
                ("ip".into(), "127.0.0.1".into()),
                ("action".into(), "ignored".into()),
            ]),
            timeout_ms: 1000,
        }
    }

    #[test]
    fn stdin_names_action_target_and_params() {
        let text = stdin_text(&req(FenceAction::Off)).unwrap();
        assert_eq!(
            text,
            "action=off\nplug=node2\nport=node2\nnodename=node2\nip=127.0.0.1\n"
        );
    }

    #[test]
    fn a_value_with_a_newline_is_refused_by_name() {
        let mut r = req(FenceAction::Off);
        r.params.insert("password".into(), "x\naction=on".into());
        assert!(stdin_text(&r).unwrap_err().contains("`password`"));
    }

    #[test]
    fn agent_names_cannot_escape_the_fence_dir() {
        let mut r = req(FenceAction::Off);
        r.agent = "../bin/sh".into();
        let out = fence(&ExecConfig::default(), &r);
        assert_eq!(out.status, AgentStatus::ExecFailed);
    }
}
