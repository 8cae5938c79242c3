//! systemd units through `systemctl`: start/stop/reload wait for the job,
//! monitor asks `systemctl is-active`. Before anything, checks that PID 1
//! is systemd (sd_booted(3): `/run/systemd/system` exists) so a machine or
//! container without it gets a clear error instead of a hanging systemctl.
//!
//! Must not: edit unit files; the operator owns them.

use crate::exec::{run_mapped, unimplemented, Action, ExecConfig, OpRequest};
use crate::result::{AgentStatus, OpResult};

/// Runs one operation on a unit.
pub fn run(config: &ExecConfig, request: &OpRequest) -> OpResult {
    if !config.systemd_marker.is_dir() {
        let pid1 = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
        return OpResult::exec_failed(format!(
            "systemd is not running (PID 1 is `{}`, {} is missing); cannot manage {}",
            pid1.trim(),
            config.systemd_marker.display(),
            request.agent
        ));
    }
    let unit = unit_name(&request.agent.kind);
    let verb = match request.action {
        Action::Start => "start",
        Action::Stop => "stop",
        Action::Reload => "reload",
        Action::Monitor => {
            let mut r = run_mapped(
                config,
                config.systemctl.clone(),
                vec!["is-active".into(), unit],
                config.base_env(),
                None,
                (request.timeout_ms, request.cancel.as_ref()),
                |_| AgentStatus::Ok,
            );
            if r.status == AgentStatus::Ok {
                r.status = active_state(r.stdout.trim());
            }
            return r;
        }
        _ => return unimplemented(request),
    };
    run_mapped(
        config,
        config.systemctl.clone(),
        vec![verb.into(), unit],
        config.base_env(),
        None,
        (request.timeout_ms, request.cancel.as_ref()),
        |code| match code {
            0 => AgentStatus::Ok,
            5 => AgentStatus::NotInstalled, // systemctl: unit not found
            other => AgentStatus::from_ocf_code(other).max_generic(),
        },
    )
}

/// `nginx` → `nginx.service`; names with a unit suffix stay as they are.
pub fn unit_name(kind: &str) -> String {
    if kind.contains('.') {
        kind.to_string()
    } else {
        format!("{kind}.service")
    }
}

/// `systemctl is-active` output → status.
pub fn active_state(state: &str) -> AgentStatus {
    match state {
        "active" | "reloading" | "activating" | "refreshing" => AgentStatus::Ok,
        "inactive" | "deactivating" | "failed" => AgentStatus::NotRunning,
        _ => AgentStatus::Unknown,
    }
}

impl AgentStatus {
    /// systemctl's exit codes are not OCF's: anything but the few it
    /// documents is a generic error.
    fn max_generic(self) -> AgentStatus {
        match self {
            AgentStatus::InsufficientPrivileges => self,
            _ => AgentStatus::GenericError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_systemd_as_pid1_the_error_says_so_at_once() {
        let config = ExecConfig {
            systemd_marker: "/nonexistent/systemd/system".into(),
            ..ExecConfig::default()
        };
        let req = OpRequest::new("web", "systemd:nginx".parse().unwrap(), Action::Start);
        let r = run(&config, &req);
        assert_eq!(r.status, AgentStatus::ExecFailed);
        assert!(r.exit_reason.unwrap().contains("systemd is not running"));
    }

    #[test]
    fn unit_names_and_states() {
        assert_eq!(unit_name("nginx"), "nginx.service");
        assert_eq!(unit_name("x.socket"), "x.socket");
        assert_eq!(active_state("active"), AgentStatus::Ok);
        assert_eq!(active_state("failed"), AgentStatus::NotRunning);
        assert_eq!(active_state("weird"), AgentStatus::Unknown);
    }
}
