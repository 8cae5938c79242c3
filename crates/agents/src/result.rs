//! The typed result of one agent operation, shared by every agent class:
//! [`AgentStatus`] (OCF 1.1 exit codes 0–9, 190, 191, plus the ways an
//! operation ends without a code), Pacemaker's hard/soft/fatal
//! [`Severity`], and the [`OpResult`] record the executor reports.
//!
//! Must not: run processes or decide recovery; it only names outcomes.

use crate::limits::EXIT_REASON_MAX_CHARS;
use crate::process::{Ending, Finished};
use serde::{Deserialize, Serialize};

/// What an operation reported, in OCF terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "detail")]
pub enum AgentStatus {
    /// 0, OCF_SUCCESS.
    Ok,
    /// 1, OCF_ERR_GENERIC.
    GenericError,
    /// 2, OCF_ERR_ARGS: the agent was called wrongly.
    InvalidArgs,
    /// 3, OCF_ERR_UNIMPLEMENTED: the action is not supported.
    Unimplemented,
    /// 4, OCF_ERR_PERM: insufficient privileges.
    InsufficientPrivileges,
    /// 5, OCF_ERR_INSTALLED: software the agent needs is missing.
    NotInstalled,
    /// 6, OCF_ERR_CONFIGURED: the resource's parameters are wrong.
    NotConfigured,
    /// 7, OCF_NOT_RUNNING: cleanly stopped.
    NotRunning,
    /// 8, OCF_RUNNING_PROMOTED.
    RunningPromoted,
    /// 9, OCF_FAILED_PROMOTED.
    FailedPromoted,
    /// 190, OCF_DEGRADED: running but not fully healthy.
    Degraded,
    /// 191, OCF_DEGRADED_PROMOTED.
    DegradedPromoted,
    /// The state cannot be told (LSB status 4, systemd "unknown").
    Unknown,
    /// An exit code no standard defines.
    UnknownExitCode(i32),
    /// The operation reached its timeout and was killed.
    TimedOut,
    /// The agent died of a signal it was not sent by us.
    KilledBySignal(i32),
    /// The agent could not be run at all (missing, not executable, class
    /// unavailable such as systemd without systemd as PID 1).
    ExecFailed,
}

/// Pacemaker's classification of a failed operation (Pacemaker Explained,
/// "OCF Return Codes"): how far the failure reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Not a failure.
    None,
    /// Recover the resource where it is (restart), counting a failure.
    Soft,
    /// The resource cannot run on this node; ban it here.
    Hard,
    /// The resource cannot run anywhere (its configuration is wrong).
    Fatal,
}

impl AgentStatus {
    /// The status for an OCF exit code.
    pub fn from_ocf_code(code: i32) -> AgentStatus {
        match code {
            0 => AgentStatus::Ok,
            1 => AgentStatus::GenericError,
            2 => AgentStatus::InvalidArgs,
            3 => AgentStatus::Unimplemented,
            4 => AgentStatus::InsufficientPrivileges,
            5 => AgentStatus::NotInstalled,
            6 => AgentStatus::NotConfigured,
            7 => AgentStatus::NotRunning,
            8 => AgentStatus::RunningPromoted,
            9 => AgentStatus::FailedPromoted,
            190 => AgentStatus::Degraded,
            191 => AgentStatus::DegradedPromoted,
            other => AgentStatus::UnknownExitCode(other),
        }
    }

    /// The OCF exit code this status stands for (`None` for the ways an
    /// operation ends without one).
    pub fn ocf_code(&self) -> Option<i32> {
        Some(match self {
            AgentStatus::Ok => 0,
            AgentStatus::GenericError => 1,
            AgentStatus::InvalidArgs => 2,
            AgentStatus::Unimplemented => 3,
            AgentStatus::InsufficientPrivileges => 4,
            AgentStatus::NotInstalled => 5,
            AgentStatus::NotConfigured => 6,
            AgentStatus::NotRunning => 7,
            AgentStatus::RunningPromoted => 8,
            AgentStatus::FailedPromoted => 9,
            AgentStatus::Degraded => 190,
            AgentStatus::DegradedPromoted => 191,
            AgentStatus::UnknownExitCode(c) => *c,
            AgentStatus::Unknown
            | AgentStatus::TimedOut
            | AgentStatus::KilledBySignal(_)
            | AgentStatus::ExecFailed => return None,
        })
    }

    /// Severity when this status is a failure (Pacemaker's table): args,
    /// unimplemented, permissions and not-installed are hard (this node
    /// cannot run the resource), not-configured is fatal, the rest soft.
    /// A status that says "running" or "stopped" is judged against what
    /// was expected by [`OpResult::severity_against`].
    pub fn failure_severity(&self) -> Severity {
        match self {
            AgentStatus::InvalidArgs
            | AgentStatus::Unimplemented
            | AgentStatus::InsufficientPrivileges
            | AgentStatus::NotInstalled
            | AgentStatus::ExecFailed => Severity::Hard,
            AgentStatus::NotConfigured => Severity::Fatal,
            _ => Severity::Soft,
        }
    }

    /// True for the statuses that say the resource is up (possibly degraded).
    pub fn is_running(&self) -> bool {
        matches!(
            self,
            AgentStatus::Ok
                | AgentStatus::RunningPromoted
                | AgentStatus::Degraded
                | AgentStatus::DegradedPromoted
        )
    }
}

/// What the caller expected an operation to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expected {
    /// Success: start, stop, promote, demote, monitor of an unpromoted role.
    Ok,
    /// A monitor of a promoted instance.
    Promoted,
    /// A probe or monitor of a resource that should be stopped.
    NotRunning,
}

/// One finished operation, as the executor reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpResult {
    pub status: AgentStatus,
    /// The agent's own explanation (`ocf-exit-reason:` on stderr) or ours
    /// for timeouts, signals and exec failures.
    pub exit_reason: Option<String>,
    /// Captured stdout (capped).
    pub stdout: String,
    /// Captured stderr (capped).
    pub stderr: String,
    /// Bytes of output past the cap that were dropped.
    pub dropped_output_bytes: u64,
    /// Wall time of the operation.
    pub duration_ms: u64,
}

impl OpResult {
    /// A result for an operation that could not be run at all.
    pub fn exec_failed(reason: impl Into<String>) -> OpResult {
        OpResult {
            status: AgentStatus::ExecFailed,
            exit_reason: Some(truncate_reason(&reason.into())),
            stdout: String::new(),
            stderr: String::new(),
            dropped_output_bytes: 0,
            duration_ms: 0,
        }
    }

    /// Builds the result of a process run with `status` as mapped by the
    /// agent class; timeouts and signals override the class' mapping.
    pub fn from_finished(finished: Finished, map_code: impl Fn(i32) -> AgentStatus) -> OpResult {
        let timeout_ms = finished.elapsed.as_millis() as u64;
        let (status, our_reason) = match finished.ending {
            Ending::Exited(code) => (map_code(code), None),
            Ending::Signaled(sig) => (
                AgentStatus::KilledBySignal(sig),
                Some(format!("agent was killed by signal {sig}")),
            ),
            Ending::TimedOut { killed, reaped } | Ending::Cancelled { killed, reaped } => (
                AgentStatus::TimedOut,
                Some(format!(
                    "{} after {timeout_ms} ms; {}{}",
                    match finished.ending {
                        Ending::Cancelled { .. } => "cancelled (the node lost its lease)",
                        _ => "timed out",
                    },
                    if killed {
                        "ignored SIGTERM, SIGKILLed"
                    } else {
                        "terminated by SIGTERM"
                    },
                    if reaped {
                        ""
                    } else {
                        "; process could not be reaped"
                    }
                )),
            ),
        };
        let exit_reason = our_reason
            .or_else(|| exit_reason_of(&finished.stderr))
            .or_else(|| match status {
                // A bare number no standard defines explains nothing.
                AgentStatus::UnknownExitCode(code) => Some(format!(
                    "exit code {code} is not defined by the agent's standard"
                )),
                _ => None,
            });
        OpResult {
            status,
            exit_reason,
            stdout: finished.stdout,
            stderr: finished.stderr,
            dropped_output_bytes: finished.dropped_bytes,
            duration_ms: finished.elapsed.as_millis() as u64,
        }
    }

    /// How bad this result is given what was expected (`None` if it is
    /// what was expected).
    pub fn severity_against(&self, expected: Expected) -> Severity {
        let as_expected = match expected {
            Expected::Ok => matches!(self.status, AgentStatus::Ok | AgentStatus::Degraded),
            Expected::Promoted => matches!(
                self.status,
                AgentStatus::RunningPromoted | AgentStatus::DegradedPromoted
            ),
            Expected::NotRunning => self.status == AgentStatus::NotRunning,
        };
        if as_expected {
            Severity::None
        } else {
            self.status.failure_severity()
        }
    }

    /// True when the operation did what an action other than a monitor
    /// asks (start, stop, promote, …).
    pub fn succeeded(&self) -> bool {
        self.severity_against(Expected::Ok) == Severity::None
    }
}

/// The last `ocf-exit-reason:` line of an agent's stderr, trimmed and capped.
pub fn exit_reason_of(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .filter_map(|l| l.split_once("ocf-exit-reason:").map(|(_, r)| r.trim()))
        .rfind(|r| !r.is_empty())
        .map(truncate_reason)
}

fn truncate_reason(reason: &str) -> String {
    reason.chars().take(EXIT_REASON_MAX_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ocf_code_round_trips() {
        for code in (0..=9).chain([190, 191, 42]) {
            assert_eq!(AgentStatus::from_ocf_code(code).ocf_code(), Some(code));
        }
    }

    #[test]
    fn severities_follow_pacemakers_table() {
        use AgentStatus::*;
        assert_eq!(GenericError.failure_severity(), Severity::Soft);
        assert_eq!(InvalidArgs.failure_severity(), Severity::Hard);
        assert_eq!(Unimplemented.failure_severity(), Severity::Hard);
        assert_eq!(InsufficientPrivileges.failure_severity(), Severity::Hard);
        assert_eq!(NotInstalled.failure_severity(), Severity::Hard);
        assert_eq!(NotConfigured.failure_severity(), Severity::Fatal);
        assert_eq!(FailedPromoted.failure_severity(), Severity::Soft);
        assert_eq!(TimedOut.failure_severity(), Severity::Soft);
    }

    #[test]
    fn a_probe_that_finds_nothing_is_not_a_failure() {
        let mut r = OpResult::exec_failed("x");
        r.status = AgentStatus::NotRunning;
        assert_eq!(r.severity_against(Expected::NotRunning), Severity::None);
        assert_eq!(r.severity_against(Expected::Ok), Severity::Soft);
    }

    #[test]
    fn an_undefined_exit_code_gets_a_reason_naming_it() {
        let finished = crate::process::Finished {
            ending: crate::process::Ending::Exited(77),
            stdout: String::new(),
            stderr: String::new(),
            dropped_bytes: 0,
            elapsed: std::time::Duration::from_millis(3),
        };
        let r = OpResult::from_finished(finished, AgentStatus::from_ocf_code);
        assert_eq!(r.status, AgentStatus::UnknownExitCode(77));
        assert!(r.exit_reason.unwrap().contains("exit code 77"));
    }

    #[test]
    fn the_last_exit_reason_line_wins_and_is_capped() {
        let err = "noise\nocf-exit-reason:first\nocf-exit-reason: second one \n";
        assert_eq!(exit_reason_of(err).as_deref(), Some("second one"));
        let long = format!("ocf-exit-reason:{}", "x".repeat(500));
        assert_eq!(exit_reason_of(&long).unwrap().len(), EXIT_REASON_MAX_CHARS);
        assert_eq!(exit_reason_of("plain error"), None);
    }
}
