//! Execution and recovery with real processes on loopback: the DC runs the
//! scheduler's transitions on every node's executor, monitors find failed
//! services, fail counts and migration-threshold move them, a lost node's
//! services stay where they were until a fence or an operator's
//! `tandem node confirm-down` settles it (never on silence alone, issue
//! 12), a stale DC's operations are refused, and
//! the load balancers follow (drain, lost nodes, "wherever X runs"). The
//! `tandem demo --check` the README starts with runs here too.
//!
//! Tests run one at a time (a mutex): each runs a whole cluster on a
//! 2-core CI machine. Time bounds are liveness bounds, generous on
//! purpose; fail-over time is measured by the benches, not asserted.

use serde_json::{json, Value};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tandem_tests::processes::{
    running_on, service_port, serving, tandem_bin, ProcessCluster, Sampler,
};

const FORM: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A 3-node cluster running one HTTP service (`site`) with a 1 s monitor
/// and the given migration-threshold; returns the cluster and the port.
/// `site` binds its node's address (all nodes share 127.0.0.1 here).
fn cluster_with_site(tag: &str, migration_threshold: u32) -> (ProcessCluster, u16) {
    let mut c = ProcessCluster::setup(tag, 3, false, None).unwrap();
    c.start_all();
    let options = format!(
        "options = {{ fencing-enabled = false }}\nresource-defaults = {{ resource-stickiness = 100, migration-threshold = {migration_threshold} }}"
    );
    let port = load_site(&c, tag, &options, "");
    (c, port)
}

/// Waits for the cluster to form, then applies a configuration of the
/// three nodes, `site` on a free port and `extra` resources, with `cluster`
/// lines in its `[cluster]` table; returns the port.
fn load_site(c: &ProcessCluster, tag: &str, cluster: &str, extra: &str) -> u16 {
    c.wait_get("node1", "/status", FORM, POLL, |d| {
        d["cluster"]["quorum"] == true && d["cluster"]["dc"].is_string()
    })
    .unwrap();
    let port = service_port();
    let config = format!(
        r#"
[cluster]
name = "{tag}"
{cluster}

[[node]]
name = "node1"
[[node]]
name = "node2"
[[node]]
name = "node3"
{extra}
[[resource]]
id = "site"
agent = "ocf:tandem:HttpService"
params = {{ port = "{port}" }}
op = [{{ name = "monitor", interval = "1s", timeout = "2s" }}]
"#
    );
    let file = c.dir.join(format!("{tag}.toml"));
    std::fs::write(&file, config).unwrap();
    let out = c.tandem(&["config", "apply", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "config apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    port
}

/// Waits until `rsc` runs where `ok` wants it, its start finished: a start
/// counts from its dispatch (recorded as pending, shown as "Starting").
fn wait_running(c: &ProcessCluster, rsc: &str, ok: impl Fn(&[String]) -> bool) -> Value {
    c.wait_get("node1", "/status", FORM, POLL, |d| {
        let starting = d["running_text"]
            .as_str()
            .is_some_and(|t| t.contains("Starting"));
        !starting && ok(&running_on(d, rsc))
    })
    .unwrap_or_else(|e| panic!("{rsc}: {e}"))
}

/// The pid of the HTTP server a node's agent started for `rsc`.
fn service_pid(c: &ProcessCluster, node: &str, rsc: &str) -> i32 {
    let file = c
        .dir
        .join(format!("{node}-data/rsctmp/HttpService-{rsc}.pid"));
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .unwrap()
}

fn kill9(pid: i32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pid}");
}

fn answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = s.write_all(b"GET /ready HTTP/1.0\r\n\r\n");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.contains(" 200 ")
}

/// Waits (bounded) until `node`'s own copy of the service answers on its
/// address (a cluster from `setup_apart`).
fn wait_serving(c: &ProcessCluster, port: u16, node: &str) {
    let host = &c.nodes.iter().find(|n| n.name == node).unwrap().host;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = serving(host, port);
        if answer.as_deref() == Some(node) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{node}'s site never answered on {host}:{port} (last answer: {answer:?}; by curl: {:?})",
            std::process::Command::new("curl").args(["-sS", "-m", "2", &format!("http://{host}:{port}/")]).output().map(|o| (String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string()))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What `node_loss` in a status says about `node`.
fn loss_state(doc: &Value, node: &str) -> String {
    doc["node_loss"]
        .as_array()
        .and_then(|l| l.iter().find(|n| n["node"] == node))
        .and_then(|n| n["state"].as_str())
        .unwrap_or_else(|| panic!("no node_loss entry for {node}: {doc}"))
        .to_string()
}

/// The fencing-history actions recorded about `node`, oldest first.
fn fence_actions(doc: &Value, node: &str) -> Vec<String> {
    doc["fence_history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["target"] == node)
        .filter_map(|r| r["action"].as_str().map(String::from))
        .collect()
}

/// Waits (bounded) until the service on `port` answers.
fn wait_answers(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers(port) {
        assert!(
            Instant::now() < deadline,
            "{what}: never answered on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `site` runs on one node other than `home`, as a survivor
/// sees it; answers that survivor's status.
fn site_moved_off(c: &ProcessCluster, home: &str) -> Value {
    let survivor = if home == "node1" { "node2" } else { "node1" };
    c.wait_get(survivor, "/status", FORM, POLL, |d| {
        let on = running_on(d, "site");
        on.len() == 1 && on[0] != home
    })
    .unwrap()
}

fn fail_count(doc: &Value, node: &str) -> u64 {
    doc["transient"][node]["fail-count-site#monitor_1000"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_killed_service_restarts_in_place_then_moves_after_migration_threshold() {
    let _serial = one_at_a_time();
    let (c, port) = cluster_with_site("restart", 2);
    let doc = wait_running(&c, "site", |n| n.len() == 1);
    let home = running_on(&doc, "site")[0].clone();
    // `running` shows a start from when it is dispatched (record-pending).
    wait_answers(port, "site never answered");

    // First failure: recovered where it was.
    let killed = Instant::now();
    kill9(service_pid(&c, &home, "site"));
    let doc = c
        .wait_get("node1", "/status", FORM, POLL, |d| {
            fail_count(d, &home) == 1 && running_on(d, "site") == [home.clone()]
        })
        .unwrap();
    wait_answers(port, "site never answered again");
    eprintln!(
        "restarted in place after {} ms",
        killed.elapsed().as_millis()
    );
    let failure = &doc["failures"][0];
    assert_eq!(failure["resource"], "site", "{doc}");
    assert_eq!(failure["operation"], "monitor", "{doc}");
    assert_eq!(failure["rc"], 7, "not running: {doc}");

    // Second failure reaches migration-threshold=2: it moves away.
    kill9(service_pid(&c, &home, "site"));
    let doc = wait_running(&c, "site", |n| n.len() == 1 && n[0] != home);
    assert_eq!(fail_count(&doc, &home), 2, "{doc}");
    wait_answers(port, "moved site never answered");
}

#[test]
fn a_lost_node_s_service_stays_blocked_until_an_operator_confirms_it_down() {
    let _serial = one_at_a_time();
    let mut c = ProcessCluster::setup_apart("lost", 3, None).unwrap();
    c.start_all();
    let port = load_site(
        &c,
        "lost",
        "options = { fencing-enabled = false }\nresource-defaults = { resource-stickiness = 100 }",
        "",
    );
    let doc = wait_running(&c, "site", |n| n.len() == 1);
    let home = running_on(&doc, "site")[0].clone();
    wait_serving(&c, port, &home);
    let survivor = if home == "node1" { "node2" } else { "node1" };
    let lease_ms = doc["cluster"]["lease_ms"].as_u64().unwrap();
    let hosts: Vec<String> = c.nodes.iter().map(|n| n.host.clone()).collect();

    // Power loss without a fence device: the daemon and what it ran.
    c.kill(&home);
    c.kill_services(&home);
    let lost = Instant::now();
    let sampler = Sampler::start(hosts, port, Vec::new(), Duration::from_millis(100));
    let doc = c
        .wait_get(survivor, "/status", FORM, POLL, |d| {
            loss_state(d, &home).starts_with("lost")
        })
        .unwrap();
    let state = loss_state(&doc, &home);
    assert!(
        state.contains(&format!("tandem node confirm-down {home}")),
        "{state}"
    );
    // Five lease periods of silence settle nothing: site starts nowhere.
    let watch = Duration::from_millis(5 * lease_ms);
    std::thread::sleep(watch.saturating_sub(lost.elapsed()));
    let samples = sampler.finish();
    assert!(samples.len() >= 20, "only {} samples", samples.len());
    let answered: Vec<_> = samples.iter().filter(|s| !s.serving.is_empty()).collect();
    assert!(
        answered.is_empty(),
        "site answered while {home} was lost and unsettled: {answered:?}"
    );
    let doc = c.get(survivor, "/status").unwrap();
    assert!(running_on(&doc, "site").is_empty(), "{doc}");
    assert!(loss_state(&doc, &home).starts_with("lost"), "{doc}");
    assert!(fence_actions(&doc, &home).is_empty(), "{doc}");

    // A node that is heard from cannot be confirmed down.
    let out = c.tandem(&["node", "confirm-down", survivor]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "confirm-down {survivor} succeeded");
    assert!(err.contains("is heard from"), "{err}");
    let doc = c.get(survivor, "/status").unwrap();
    assert!(fence_actions(&doc, survivor).is_empty(), "{doc}");
    assert_eq!(loss_state(&doc, survivor), "online", "{doc}");

    // The operator checked that the node is off: the DC recovers site.
    let out = c.tandem(&["node", "confirm-down", &home]);
    assert!(
        out.status.success(),
        "confirm-down {home}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let confirmed = Instant::now();
    let doc = site_moved_off(&c, &home);
    let now_on = running_on(&doc, "site")[0].clone();
    wait_serving(&c, port, &now_on);
    eprintln!(
        "site answers from {now_on} {} ms after confirm-down",
        confirmed.elapsed().as_millis()
    );
    let doc = c
        .wait_get(survivor, "/status", FORM, POLL, |d| {
            loss_state(d, &home) == "down (settled)"
        })
        .unwrap();
    assert_eq!(
        fence_actions(&doc, &home),
        ["confirm-down", "confirmed-down"],
        "{doc}"
    );
}

#[test]
fn an_operation_from_a_stale_term_or_a_non_node_is_refused() {
    let _serial = one_at_a_time();
    let (c, _) = cluster_with_site("term", 1_000_000);
    let doc = wait_running(&c, "site", |n| n.len() == 1);
    let term = doc["cluster"]["term"].as_u64().unwrap();
    assert!(term >= 1, "{doc}");
    let request = json!({
        "term": 0,
        "resource": { "id": "site", "class": "ocf", "provider": "tandem", "agent": "HttpService" },
        "instance": "site",
        "action": "stop",
        "interval_ms": 0,
        "timeout_ms": 5000,
        "expected": "ok",
        "params": {},
        "meta": {},
    });
    let node1 = c.dir.join("node1.toml");
    let settings = tandem_daemon::DaemonConfig::load(&node1).unwrap();
    let api = settings
        .members
        .iter()
        .find(|m| m.name == "node2")
        .unwrap()
        .api
        .clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A node certificate with an old term: a deposed DC.
    let as_node = tandem_daemon::ApiClient::new(vec![api.clone()], &settings.tls).unwrap();
    let (status, body) = rt
        .block_on(as_node.call_one(
            &api,
            hyper::Method::POST,
            "/execute",
            Some(request.clone()),
            Duration::from_secs(5),
        ))
        .unwrap();
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("no longer DC"),
        "{body}"
    );
    // The admin certificate may not send operations at all.
    let admin = tandem_daemon::ApiClient::from_file(&c.dir.join("admin.toml")).unwrap();
    let (status, body) = rt
        .block_on(admin.call_one(
            &api,
            hyper::Method::POST,
            "/execute",
            Some(request),
            Duration::from_secs(5),
        ))
        .unwrap();
    assert_eq!(status, 403, "{body}");
    // Nothing was stopped.
    let doc = c.get("node1", "/status").unwrap();
    assert_eq!(running_on(&doc, "site").len(), 1, "{doc}");
}

#[test]
fn the_demo_check_passes_load_balanced_and_failing_over() {
    let _serial = one_at_a_time();
    let out = std::process::Command::new(tandem_bin().unwrap())
        .args(["demo", "--check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo --check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "the web service is spread over {\"node1\", \"node2\", \"node3\"}",
        "0 failed); standby, out of the pool",
        "spread over {\"node1\", \"node2\", \"node3\"} again",
        "under load in",
        "the fail-over service answers again from",
        "without the lost node",
        "demo check passed",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}

/// A fence agent for tests: `reboot`/`off` of a plug SIGKILLs that node's
/// daemon and services (pid files the test writes into `dir`), like a
/// power switch; `list` names the nodes.
fn install_fence_agent(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("fence-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        r#"#!/bin/sh
# tandem test fence agent: key=value lines on stdin.
action=; plug=
while IFS='=' read -r k v; do
  case "$k" in action) action=$v;; plug|port) plug=$v;; esac
done
case "$action" in
  reboot|off)
    [ -f "{dir}/$plug.pids" ] || {{ echo "no such plug $plug" >&2; exit 1; }}
    for pid in $(cat "{dir}/$plug.pids"); do kill -9 "$pid" 2>/dev/null; done
    echo "$plug $action" >> "{dir}/fenced.log"; exit 0;;
  list) echo node1; echo node2; echo node3; exit 0;;
  monitor|status|on) exit 0;;
  metadata) echo '<resource-agent name="fence_test"/>'; exit 0;;
  *) exit 1;;
esac
"#,
        dir = dir.display()
    );
    let path = bin.join("fence_test");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn a_hung_node_is_fenced_and_its_service_recovered_and_operators_can_fence() {
    let _serial = one_at_a_time();
    let mut c = ProcessCluster::setup("fence", 3, false, None).unwrap();
    let fence_dir = install_fence_agent(&c.dir);
    for n in ["node1", "node2", "node3"] {
        let file = c.dir.join(format!("{n}.toml"));
        let mut settings = tandem_daemon::DaemonConfig::load(&file).unwrap();
        settings.agents.fence_dir = Some(fence_dir.clone());
        std::fs::write(&file, settings.to_toml()).unwrap();
    }
    c.start_all();
    let port = load_site(
        &c,
        "fence",
        "options = { fencing-enabled = true }\nresource-defaults = { resource-stickiness = 100 }",
        r#"
[[resource]]
id = "power"
agent = "stonith:fence_test"
params = { pcmk_host_list = "node1 node2 node3" }
"#,
    );
    let doc = wait_running(&c, "site", |n| n.len() == 1);
    let home = running_on(&doc, "site")[0].clone();
    let pids = format!(
        "{} {}",
        c.pid(&home).unwrap(),
        service_pid(&c, &home, "site")
    );
    std::fs::write(c.dir.join(format!("{home}.pids")), pids).unwrap();

    // A hung node: its daemon stops answering but nothing exits.
    let stop = std::process::Command::new("kill")
        .args(["-STOP", &c.pid(&home).unwrap().to_string()])
        .status()
        .unwrap();
    assert!(stop.success());
    let doc = site_moved_off(&c, &home);
    let fenced = doc["fence_history"]
        .as_array()
        .and_then(|h| {
            h.iter()
                .find(|r| r["target"] == home.as_str() && r["ok"] == true)
        })
        .unwrap_or_else(|| panic!("no successful fence of {home}: {doc}"));
    assert_eq!(fenced["device"], "power", "{fenced}");
    let log = std::fs::read_to_string(c.dir.join("fenced.log")).unwrap();
    assert!(log.contains(&format!("{home} reboot")), "{log}");
    // `running` shows the start from its dispatch: wait for the answer.
    wait_answers(port, "site after the fence");
    // The fenced node "reboots" and rejoins.
    c.kill(&home);
    c.start(&home);
    c.wait_get(&home, "/quorum", FORM, POLL, |v| {
        v["quorum"] == true && v["votes_alive"] == 3
    })
    .unwrap();

    // An operator fences a healthy node on purpose; two of three keep
    // quorum and record it.
    let now_on = running_on(&doc, "site")[0].clone();
    let target = ["node1", "node2", "node3"]
        .into_iter()
        .find(|n| *n != now_on)
        .unwrap();
    std::fs::write(
        c.dir.join(format!("{target}.pids")),
        c.pid(target).unwrap().to_string(),
    )
    .unwrap();
    let out = c.tandem(&["node", "fence", target, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["fenced"], target, "{answer}");
    let log = std::fs::read_to_string(c.dir.join("fenced.log")).unwrap();
    assert!(log.contains(&format!("{target} reboot")), "{log}");
    let history = answer["history"].as_array().unwrap();
    assert!(
        history
            .iter()
            .any(|r| r["ok"] == true && r["device"] == "power"),
        "{answer}"
    );
    c.kill(target);
}

#[test]
fn a_restarted_daemon_probes_and_adopts_the_service_it_left_running() {
    let _serial = one_at_a_time();
    let (mut c, port) = cluster_with_site("probe", 1_000_000);
    let doc = wait_running(&c, "site", |n| n.len() == 1);
    let home = running_on(&doc, "site")[0].clone();
    // `running` shows a start once it is dispatched (recorded as pending).
    wait_answers(port, "site");
    let pid = service_pid(&c, &home, "site");
    // The daemon dies and comes back well within the lease; its service
    // kept running meanwhile.
    c.kill(&home);
    c.start(&home);
    // The restarted node forgets its history; the DC probes and finds the
    // service running there: adopted, not started twice.
    c.wait_get("node1", "/status", FORM, POLL, |d| {
        running_on(d, "site") == [home.clone()]
            && d["cluster"]["voters"]
                .as_array()
                .is_some_and(|v| v.iter().all(|n| n["alive"] == true))
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let doc = c.get("node1", "/status").unwrap();
    assert_eq!(
        running_on(&doc, "site"),
        std::slice::from_ref(&home),
        "{doc}"
    );
    assert_eq!(
        service_pid(&c, &home, "site"),
        pid,
        "the service was restarted"
    );
    assert!(answers(port));
    assert!(doc["failures"].as_array().unwrap().is_empty(), "{doc}");
}

#[test]
fn a_deleted_running_service_is_stopped_and_leaves_the_status() {
    let _serial = one_at_a_time();
    let (c, port) = cluster_with_site("orphan", 1_000_000);
    let doc = wait_running(&c, "site", |n| n.len() == 1);
    let home = running_on(&doc, "site")[0].clone();
    wait_answers(port, "site");
    let pid = service_pid(&c, &home, "site");
    let out = c.tandem(&["resource", "delete", "site"]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    // Pacemaker stops an orphan (stop-orphan-resources); once stopped its
    // history is cleared, so status no longer names it.
    let doc = c
        .wait_get("node1", "/status", FORM, POLL, |d| {
            !d.to_string().contains("\"site\"") && !d.to_string().contains("site_")
        })
        .unwrap_or_else(|e| panic!("site still in the status: {e}"));
    assert!(!answers(port), "the deleted service still answers: {doc}");
    // Gone, or a zombie left to an init that does not reap (containers).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
    assert!(
        matches!(state, None | Some("Z")),
        "the deleted service's process still runs: {stat}"
    );
    assert!(doc["failures"].as_array().unwrap().is_empty(), "{doc}");
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_changed_parameter_restarts_the_service_with_it_and_the_old_one_stops() {
    let _serial = one_at_a_time();
    let (c, port) = cluster_with_site("update", 1_000_000);
    wait_running(&c, "site", |n| n.len() == 1);
    wait_answers(port, "site");
    // Pacemaker restarts an instance whose parameters changed (the digest
    // of its last start no longer matches); the stop takes down the old
    // port, the start brings up the new one.
    let new_port = tandem_tests::processes::service_port();
    let out = c.tandem(&["resource", "update", "site", &format!("port={new_port}")]);
    assert!(out.status.success(), "update: {}", stderr(&out));
    wait_answers(new_port, "site on its new port");
    let deadline = Instant::now() + Duration::from_secs(10);
    while answers(port) {
        assert!(Instant::now() < deadline, "the old port still answers");
        std::thread::sleep(POLL);
    }
    let doc = c.get("node1", "/status").unwrap();
    assert_eq!(running_on(&doc, "site").len(), 1, "{doc}");
    assert!(doc["failures"].as_array().unwrap().is_empty(), "{doc}");
}
