//! LSB init scripts: `<lsb_dir>/<name> start|stop|status|force-reload`.
//! start/stop exit codes follow LSB (the same numbers as OCF); `status`
//! codes are LSB's own: 0 running, 1–3 not running, 4 unknown.
//!
//! Must not: guess at non-LSB scripts' conventions.

use crate::exec::{run_mapped, unimplemented, Action, ExecConfig, OpRequest};
use crate::result::{AgentStatus, OpResult};

/// Runs one operation through an init script.
pub fn run(config: &ExecConfig, request: &OpRequest) -> OpResult {
    let (verb, map): (&str, fn(i32) -> AgentStatus) = match request.action {
        Action::Start => ("start", AgentStatus::from_ocf_code),
        Action::Stop => ("stop", AgentStatus::from_ocf_code),
        Action::Monitor => ("status", status_code),
        Action::Reload => ("force-reload", AgentStatus::from_ocf_code),
        _ => return unimplemented(request),
    };
    let path = config.lsb_dir.join(&request.agent.kind);
    if !path.is_file() {
        let mut r = OpResult::exec_failed(format!("init script {} not found", path.display()));
        r.status = AgentStatus::NotInstalled;
        return r;
    }
    run_mapped(
        config,
        path,
        vec![verb.into()],
        config.base_env(),
        None,
        (request.timeout_ms, request.cancel.as_ref()),
        map,
    )
}

/// LSB `status` exit codes (LSB 3.0, "Init Script Actions").
pub fn status_code(code: i32) -> AgentStatus {
    match code {
        0 => AgentStatus::Ok,
        1..=3 => AgentStatus::NotRunning,
        4 => AgentStatus::Unknown,
        other => AgentStatus::UnknownExitCode(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsb_status_codes_map_to_running_not_running_unknown() {
        assert_eq!(status_code(0), AgentStatus::Ok);
        for c in 1..=3 {
            assert_eq!(status_code(c), AgentStatus::NotRunning);
        }
        assert_eq!(status_code(4), AgentStatus::Unknown);
        assert_eq!(status_code(150), AgentStatus::UnknownExitCode(150));
    }
}
