//! Real processes through `tandem-agents`: generated test agents (success,
//! every exit code, exit reasons, hangs, SIGTERM-ignoring, megabytes of
//! output, garbage exit codes), a test fence agent, Debian's
//! `ocf:heartbeat:Dummy` and `ocf:pacemaker:Stateful` with the `tandem`
//! binary's shims as `HA_SBIN_DIR`, and the built-in demo agents.
//!
//! Debian's agents must be installed (`scripts/test` installs
//! resource-agents and pacemaker-resource-agents when missing); without
//! them those tests fail, never silently pass.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tandem_agents::attrs::AttrStore;
use tandem_agents::fence::{self, FenceAction, FenceRequest};
use tandem_agents::monitor::{MonitorScheduler, MonitorSpec};
use tandem_agents::{
    Action, AgentStatus, ExecConfig, Executor, Expected, OpRequest, Runner, Severity,
};

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-agents-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// An OCF root holding `ocf:test:<name>` agents with the given bodies.
fn ocf_root(dir: &Path, agents: &[(&str, &str)]) -> ExecConfig {
    for (name, body) in agents {
        write_script(&dir.join("resource.d/test").join(name), body);
    }
    ExecConfig {
        ocf_root: dir.to_path_buf(),
        kill_grace_ms: 500,
        ..ExecConfig::default()
    }
}

fn op(agent: &str, action: Action, timeout_ms: u64) -> OpRequest {
    OpRequest::new("rsc", agent.parse().unwrap(), action).timeout_ms(timeout_ms)
}

#[test]
fn every_ocf_exit_code_maps_to_its_typed_status() {
    let dir = scratch("codes");
    let cases = [
        (0, AgentStatus::Ok),
        (1, AgentStatus::GenericError),
        (2, AgentStatus::InvalidArgs),
        (3, AgentStatus::Unimplemented),
        (4, AgentStatus::InsufficientPrivileges),
        (5, AgentStatus::NotInstalled),
        (6, AgentStatus::NotConfigured),
        (7, AgentStatus::NotRunning),
        (8, AgentStatus::RunningPromoted),
        (9, AgentStatus::FailedPromoted),
        (190, AgentStatus::Degraded),
        (191, AgentStatus::DegradedPromoted),
        (77, AgentStatus::UnknownExitCode(77)),
    ];
    let config = ocf_root(&dir, &[("code", "exit \"$OCF_RESKEY_code\"")]);
    let exec = Executor::new(config);
    for (code, status) in cases {
        let r = exec
            .execute(&op("ocf:test:code", Action::Start, 5_000).param("code", &code.to_string()));
        assert_eq!(r.status, status, "exit {code}");
        assert_eq!(r.status.ocf_code(), Some(code));
    }
}

#[test]
fn exit_reason_and_environment_reach_the_result() {
    let dir = scratch("reason");
    let body = r#"echo "instance=$OCF_RESOURCE_INSTANCE type=$OCF_RESOURCE_TYPE provider=$OCF_RESOURCE_PROVIDER action=$1 timeout=$OCF_RESKEY_CRM_meta_timeout interval=$OCF_RESKEY_CRM_meta_interval clone=$OCF_RESKEY_CRM_meta_clone ip=$OCF_RESKEY_ip fs=$OCF_RESKEY_crm_feature_set"
echo "ocf-exit-reason:disk /dev/sdz is missing" >&2
exit 6"#;
    let exec = Executor::new(ocf_root(&dir, &[("env", body)]));
    let mut req = op("ocf:test:env", Action::Monitor, 7_000).param("ip", "10.0.0.1");
    req.resource = "vip:3".into();
    req.interval_ms = 15_000;
    req.meta.insert("clone".into(), "3".into());
    let r = exec.execute(&req);
    assert_eq!(r.status, AgentStatus::NotConfigured);
    assert_eq!(r.severity_against(Expected::Ok), Severity::Fatal);
    assert_eq!(r.exit_reason.as_deref(), Some("disk /dev/sdz is missing"));
    assert_eq!(
        r.stdout.trim(),
        "instance=vip:3 type=env provider=test action=monitor timeout=7000 interval=15000 clone=3 ip=10.0.0.1 fs=3.16.2"
    );
}

#[test]
fn a_hanging_agent_is_terminated_at_its_timeout() {
    let dir = scratch("hang");
    let exec = Executor::new(ocf_root(&dir, &[("hang", "sleep 60")]));
    let r = exec.execute(&op("ocf:test:hang", Action::Start, 300));
    assert_eq!(r.status, AgentStatus::TimedOut);
    assert!(
        r.exit_reason
            .as_deref()
            .unwrap()
            .contains("terminated by SIGTERM"),
        "{r:?}"
    );
    assert!(
        (300..10_000).contains(&r.duration_ms),
        "{} ms",
        r.duration_ms
    );
    eprintln!(
        "hang: timed out after {} ms (timeout 300 ms)",
        r.duration_ms
    );
}

#[test]
fn an_agent_ignoring_sigterm_is_killed_after_the_grace() {
    let dir = scratch("noterm");
    // Both the shell and its sleep inherit the ignored SIGTERM.
    let exec = Executor::new(ocf_root(
        &dir,
        &[("noterm", "trap '' TERM\nsleep 60\nsleep 60")],
    ));
    let r = exec.execute(&op("ocf:test:noterm", Action::Stop, 300));
    assert_eq!(r.status, AgentStatus::TimedOut);
    assert!(
        r.exit_reason.as_deref().unwrap().contains("SIGKILL"),
        "{r:?}"
    );
    // timeout 300 ms + grace 500 ms, generous upper bound.
    assert!(
        (800..15_000).contains(&r.duration_ms),
        "{} ms",
        r.duration_ms
    );
    eprintln!(
        "noterm: killed after {} ms (timeout 300 + grace 500)",
        r.duration_ms
    );
}

#[test]
fn megabytes_of_output_are_capped_and_never_block_the_agent() {
    let dir = scratch("chatty");
    let body = "head -c 8000000 /dev/zero | tr '\\0' x\nhead -c 3000000 /dev/zero | tr '\\0' y >&2\nexit 0";
    let exec = Executor::new(ocf_root(&dir, &[("chatty", body)]));
    let r = exec.execute(&op("ocf:test:chatty", Action::Monitor, 30_000));
    assert_eq!(r.status, AgentStatus::Ok);
    assert_eq!(r.stdout.len(), tandem_agents::limits::OUTPUT_CAP_BYTES);
    // stderr keeps its head and, after a marker, its tail (where an exit
    // reason would be).
    let (cap, tail) = (
        tandem_agents::limits::OUTPUT_CAP_BYTES,
        tandem_agents::limits::OUTPUT_TAIL_BYTES,
    );
    let (head, rest) = r.stderr.split_at(cap);
    assert!(head.bytes().all(|b| b == b'y'));
    assert!(rest.contains("bytes not kept"), "{}", &rest[..80]);
    assert!(rest.ends_with(&"y".repeat(tail)));
    assert!(rest.len() < tail + 80);
    assert_eq!(
        r.dropped_output_bytes,
        11_000_000 - 2 * tandem_agents::limits::OUTPUT_CAP_BYTES as u64
    );
    eprintln!("chatty: 11 MB of output in {} ms", r.duration_ms);
}

#[test]
fn garbage_and_signals_are_clear_failures() {
    let dir = scratch("garbage");
    let exec = Executor::new(ocf_root(
        &dir,
        &[
            ("garbage", "exit 255"),
            ("segv", "kill -SEGV $$"),
            ("notexec", ""),
        ],
    ));
    let r = exec.execute(&op("ocf:test:garbage", Action::Start, 5_000));
    assert_eq!(r.status, AgentStatus::UnknownExitCode(255));
    assert_eq!(r.severity_against(Expected::Ok), Severity::Soft);
    let r = exec.execute(&op("ocf:test:segv", Action::Start, 5_000));
    assert_eq!(r.status, AgentStatus::KilledBySignal(11));
    assert!(r.exit_reason.unwrap().contains("signal 11"));
    std::fs::set_permissions(
        dir.join("resource.d/test/notexec"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let r = exec.execute(&op("ocf:test:notexec", Action::Start, 5_000));
    assert_eq!(r.status, AgentStatus::ExecFailed);
    assert!(r.exit_reason.unwrap().contains("notexec"));
    let r = exec.execute(&op("ocf:test:absent", Action::Start, 5_000));
    assert_eq!(r.status, AgentStatus::NotInstalled);
    assert_eq!(r.severity_against(Expected::Ok), Severity::Hard);
}

#[test]
fn lsb_scripts_start_stop_and_report_status() {
    let dir = scratch("lsb");
    let state = dir.join("running");
    let body = format!(
        "case \"$1\" in start) touch {s};; stop) rm -f {s};; status) [ -f {s} ] && exit 0; exit 3;; *) exit 3;; esac",
        s = state.display()
    );
    write_script(&dir.join("init.d/svc"), &body);
    let exec = Executor::new(ExecConfig {
        lsb_dir: dir.join("init.d"),
        ..ExecConfig::default()
    });
    let statuses: Vec<AgentStatus> = [
        Action::Monitor,
        Action::Start,
        Action::Monitor,
        Action::Stop,
        Action::Monitor,
    ]
    .into_iter()
    .map(|a| exec.execute(&op("lsb:svc", a, 5_000)).status)
    .collect();
    use AgentStatus::*;
    assert_eq!(statuses, [NotRunning, Ok, Ok, Ok, NotRunning]);
    assert_eq!(
        exec.execute(&op("lsb:svc", Action::Promote, 5_000)).status,
        Unimplemented
    );
}

#[test]
fn systemd_without_systemd_as_pid1_fails_at_once_with_a_clear_error() {
    let exec = Executor::new(ExecConfig {
        systemd_marker: "/nonexistent/run/systemd/system".into(),
        ..ExecConfig::default()
    });
    let r = exec.execute(&op("systemd:nginx", Action::Start, 60_000));
    assert_eq!(r.status, AgentStatus::ExecFailed);
    assert!(r.exit_reason.unwrap().contains("systemd is not running"));
    assert!(r.duration_ms < 1_000);
}

#[test]
fn a_fence_agent_gets_its_request_on_stdin() {
    let dir = scratch("fence");
    let log = dir.join("stdin.log");
    let body = format!(
        r#"cat > {log}
action=$(sed -n 's/^action=//p' {log})
plug=$(sed -n 's/^plug=//p' {log})
case "$action" in
  off|on|reboot) echo "$action $plug" >> {dir}/fenced; exit 0;;
  status) grep -q "off $plug" {dir}/fenced 2>/dev/null && exit 2; exit 0;;
  monitor) exit 0;;
  list) echo "node1,n1"; echo "node2,n2"; exit 0;;
  metadata) echo '<resource-agent name="fence_tandemtest"><parameters><parameter name="ip" required="1"><content type="string"/></parameter></parameters><actions><action name="off"/><action name="monitor"/></actions></resource-agent>'; exit 0;;
  hang) sleep 60;;
esac
exit 1"#,
        log = log.display(),
        dir = dir.display()
    );
    write_script(&dir.join("sbin/fence_tandemtest"), &body);
    let config = ExecConfig {
        fence_dir: dir.join("sbin"),
        kill_grace_ms: 300,
        ..ExecConfig::default()
    };
    let request = |action, target: Option<&str>| FenceRequest {
        agent: "fence_tandemtest".into(),
        action,
        target: target.map(str::to_string),
        params: BTreeMap::from([("ip".to_string(), "127.0.0.1".to_string())]),
        timeout_ms: 5_000,
    };
    let r = fence::fence(&config, &request(FenceAction::Status, Some("node2")));
    assert_eq!(r.status, AgentStatus::Ok, "node2 is on");
    let r = fence::fence(&config, &request(FenceAction::Off, Some("node2")));
    assert_eq!(r.status, AgentStatus::Ok);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "action=off\nplug=node2\nport=node2\nnodename=node2\nip=127.0.0.1\n"
    );
    let r = fence::fence(&config, &request(FenceAction::Status, Some("node2")));
    assert_eq!(r.status, AgentStatus::NotRunning, "node2 is off");
    assert_eq!(
        fence::list(&config, &request(FenceAction::List, None)).unwrap(),
        ["node1", "node2"]
    );
    let meta = fence::metadata(&config, &request(FenceAction::Metadata, None)).unwrap();
    assert_eq!(meta.parameters[0].name, "ip");
    assert!(meta.parameters[0].required);
    let r = fence::fence(&config, &request(FenceAction::Reboot, Some("node3")));
    assert_eq!(r.status, AgentStatus::Ok);
    // As a stonith resource: start = monitor.
    let r = Executor::new(config.clone()).execute(&op(
        "stonith:fence_tandemtest",
        Action::Start,
        5_000,
    ));
    assert_eq!(r.status, AgentStatus::Ok);
}

#[test]
fn recurring_monitors_report_a_failure_after_the_service_dies() {
    let dir = scratch("recurring");
    let flag = dir.join("up");
    std::fs::write(&flag, "").unwrap();
    let body = format!("[ -f {} ] && exit 0; exit 7", flag.display());
    let exec = Arc::new(Executor::new(ocf_root(&dir, &[("flag", &body)])));
    let (tx, rx) = mpsc::sync_channel(16);
    let scheduler = MonitorScheduler::start(exec, tx);
    let mut request = op("ocf:test:flag", Action::Monitor, 5_000);
    request.interval_ms = 200;
    scheduler
        .schedule(MonitorSpec {
            request,
            expected: Expected::Ok,
        })
        .unwrap();
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(first.result.status, AgentStatus::Ok);
    std::fs::remove_file(&flag).unwrap();
    let failed = (0..20)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .find(|e| e.result.status != AgentStatus::Ok)
        .unwrap();
    assert_eq!(failed.result.status, AgentStatus::NotRunning);
    assert_eq!(
        failed.result.severity_against(failed.expected),
        Severity::Soft
    );
    scheduler.shutdown();
}

// --- Debian's agents through the tandem binary's shims -------------------

/// The `tandem` binary next to this test executable (built if needed) and
/// a shim directory of symlinks to it.
fn tandem_with_shims(dir: &Path) -> (PathBuf, PathBuf) {
    let exe = tandem_binary();
    let shims = dir.join("sbin");
    std::fs::create_dir_all(&shims).unwrap();
    for tool in tandem_agents::shim::TOOLS {
        std::os::unix::fs::symlink(exe, shims.join(tool)).unwrap();
    }
    (exe.clone(), shims)
}

/// Builds the binary once per test process, before any test runs it, so a
/// relink never replaces it under a running agent.
fn tandem_binary() -> &'static PathBuf {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    EXE.get_or_init(build_tandem)
}

fn build_tandem() -> PathBuf {
    let profile_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "-q", "-p", "tandem-cli", "--bin", "tandem"]);
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo build of the tandem binary");
    assert!(status.success(), "building the tandem binary failed");
    profile_dir.join("tandem")
}

fn debian_config(dir: &Path) -> ExecConfig {
    for agent in ["heartbeat/Dummy", "pacemaker/Stateful"] {
        let path = Path::new("/usr/lib/ocf/resource.d").join(agent);
        assert!(
            path.is_file(),
            "{} is missing: install Debian's resource-agents and pacemaker-resource-agents (scripts/test does)",
            path.display()
        );
    }
    let (_, shims) = tandem_with_shims(dir);
    ExecConfig {
        shim_dir: Some(shims),
        attr_store: Some(dir.join("attrs.json")),
        node_name: Some("node1".into()),
        extra_env: BTreeMap::from([
            ("HA_VARRUN".to_string(), dir.display().to_string()),
            ("HA_RSCTMP".to_string(), dir.display().to_string()),
        ]),
        ..ExecConfig::default()
    }
}

#[test]
fn debian_dummy_starts_monitors_and_stops() {
    let dir = scratch("dummy");
    let exec = Executor::new(debian_config(&dir));
    let state = dir.join("dummy.state").display().to_string();
    let run =
        |action| exec.execute(&op("ocf:heartbeat:Dummy", action, 20_000).param("state", &state));
    use AgentStatus::*;
    let steps = [
        (Action::ValidateAll, Ok),
        (Action::Monitor, NotRunning),
        (Action::Start, Ok),
        (Action::Monitor, Ok),
        (Action::Reload, Ok),
        (Action::MigrateTo, Ok),
        (Action::Stop, Ok),
        (Action::Monitor, NotRunning),
    ];
    for (action, expected) in steps {
        let r = run(action);
        assert_eq!(r.status, expected, "{action}: {r:?}");
    }
    let meta = tandem_agents::ocf::meta_data(
        &exec.config,
        &op("ocf:heartbeat:Dummy", Action::MetaData, 20_000),
    )
    .unwrap();
    assert_eq!(meta.name, "Dummy");
    assert!(meta.parameters.iter().any(|p| p.name == "state"));
    assert!(meta
        .actions
        .iter()
        .any(|a| a.name == "monitor" && a.interval_ms.is_some()));
}

#[test]
fn debian_stateful_promotes_and_demotes_and_its_crm_master_scores_land_in_the_store() {
    let dir = scratch("stateful");
    let exec = Executor::new(debian_config(&dir));
    let store = AttrStore::new(dir.join("attrs.json"));
    let state = dir.join("stateful.state").display().to_string();
    let run = |action| {
        let mut req = op("ocf:pacemaker:Stateful", action, 20_000).param("state", &state);
        req.resource = "db:0".into();
        req.meta.insert("clone".into(), "0".into());
        exec.execute(&req)
    };
    let score = || {
        store
            .read()
            .unwrap()
            .get("node1", "master-db")
            .map(|a| a.value.clone())
    };
    use AgentStatus::*;
    assert_eq!(run(Action::Monitor).status, NotRunning);
    assert_eq!(run(Action::Start).status, Ok);
    assert_eq!(
        score().as_deref(),
        Some("5"),
        "unpromoted score after start"
    );
    assert_eq!(run(Action::Monitor).status, Ok);
    assert_eq!(run(Action::Promote).status, Ok);
    assert_eq!(
        score().as_deref(),
        Some("10"),
        "promoted score after promote"
    );
    let r = run(Action::Monitor);
    assert_eq!(r.status, RunningPromoted);
    assert_eq!(r.severity_against(Expected::Promoted), Severity::None);
    assert_eq!(run(Action::Notify).status, Ok);
    assert_eq!(run(Action::Demote).status, Ok);
    assert_eq!(score().as_deref(), Some("5"));
    assert_eq!(run(Action::Monitor).status, Ok);
    assert_eq!(run(Action::Stop).status, Ok);
    assert_eq!(score(), None, "stop deletes the promotion score");
    assert_eq!(run(Action::Monitor).status, NotRunning);
}

#[test]
fn ocf_shellfuncs_crm_master_path_lands_in_the_store() {
    // ocf_promotion_score picks crm_attribute -p or crm_master -l reboot by
    // the feature set; drive both shims the way agents call them.
    let dir = scratch("promotion-score");
    let config = debian_config(&dir);
    let body = ". /usr/lib/ocf/lib/heartbeat/ocf-shellfuncs\nocf_promotion_score -v 42\nexit $?";
    write_script(&dir.join("ocf/resource.d/test/promo"), body);
    // ocf-shellfuncs reads its helpers from $OCF_ROOT/lib.
    std::os::unix::fs::symlink("/usr/lib/ocf/lib", dir.join("ocf/lib")).unwrap();
    let mut legacy = config.clone();
    legacy.ocf_root = dir.join("ocf");
    let exec = Executor::new(legacy);
    let mut req = op("ocf:test:promo", Action::Start, 20_000);
    req.resource = "web:1".into();
    assert_eq!(exec.execute(&req).status, AgentStatus::Ok);
    let store = AttrStore::new(dir.join("attrs.json")).read().unwrap();
    assert_eq!(store.get("node1", "master-web").unwrap().value, "42");
}

#[test]
fn builtin_http_service_serves_ready_until_stopped() {
    let dir = scratch("builtin-http");
    let (exe, _) = tandem_with_shims(&dir);
    tandem_agents::builtin::install(&dir.join("ocf"), &exe).unwrap();
    let exec = Executor::new(ExecConfig {
        ocf_root: dir.join("ocf"),
        ..ExecConfig::default()
    });
    let run = |action, port: u16| {
        exec.execute(
            &op("ocf:tandem:HttpService", action, 20_000)
                .param("port", &port.to_string())
                .param("state_dir", &dir.display().to_string()),
        )
    };
    use AgentStatus::*;
    // Other tests run servers on free ports too: if one takes ours between
    // free_port() and the agent's bind, start says so and we try another.
    let mut port = free_port();
    assert_eq!(run(Action::Monitor, port).status, NotRunning);
    let mut started = run(Action::Start, port);
    for _ in 0..3 {
        if started.status == Ok {
            break;
        }
        assert!(
            started
                .exit_reason
                .as_deref()
                .unwrap_or("")
                .contains("another process"),
            "{started:?}"
        );
        port = free_port();
        started = run(Action::Start, port);
    }
    assert_eq!(started.status, Ok, "{started:?}");
    let run = |action| run(action, port);
    let monitored = run(Action::Monitor);
    assert_eq!(monitored.status, Ok, "{monitored:?}");
    assert_eq!(
        tandem_agents::builtin::http::get("127.0.0.1", port, "/ready"),
        std::result::Result::Ok(200)
    );
    assert_eq!(run(Action::Stop).status, Ok);
    assert_eq!(run(Action::Monitor).status, NotRunning);
    let r = exec.execute(&op("ocf:tandem:HttpService", Action::Start, 5_000));
    assert_eq!(r.status, NotConfigured);
    assert!(r.exit_reason.unwrap().contains("port"));
}

#[test]
fn builtin_loopback_vip_adds_and_removes_the_alias_in_its_own_namespace() {
    // Runs inside a private network namespace (unshare -n) so the host's
    // loopback is never touched.
    let dir = scratch("builtin-vip");
    let (exe, _) = tandem_with_shims(&dir);
    tandem_agents::builtin::install(&dir.join("ocf"), &exe).unwrap();
    let script = format!(
        "set -e\nip link set lo up\nexport OCF_RESKEY_ip=127.200.0.9\nA={a}\n\
         $A monitor && exit 10 || [ $? -eq 7 ]\n$A start\n$A monitor\n\
         ip -o addr show dev lo | grep -q 127.200.0.9/32\n$A stop\n$A monitor && exit 11 || [ $? -eq 7 ]\necho vip-ok",
        a = dir.join("ocf/resource.d/tandem/LoopbackVip").display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .expect("unshare");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("vip-ok"),
        "stdout: {} stderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
