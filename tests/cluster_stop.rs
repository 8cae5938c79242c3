//! How a node stops, with real processes on loopback (node N on 127.0.0.N,
//! so a service that binds its node's address answers from one address
//! per node and two active copies would both answer): a SIGTERM moves the
//! node's fail-over service away before the daemon exits (0) and the DC
//! records the node down as a clean shutdown; a daemon killed with -9
//! leaves its service running and, without a fence device, nothing starts
//! it elsewhere; an idle cluster uses almost no CPU. A thread samples who
//! answers every 50 ms for the safety checks: observed effects, not what
//! the cluster says about itself.
//!
//! Tests run one at a time (a mutex): each runs a whole cluster on a
//! 2-core CI machine. Time bounds are liveness bounds, generous on purpose.

use serde_json::Value;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tandem_tests::processes::{
    double_active, running_on, service_port, serving, ProcessCluster, Sample, Sampler,
};

const FORM: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// The clean-stop timeout the nodes are given (`shutdown_timeout_ms`).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A 3-node cluster (node N on 127.0.0.N) running `site`, an HTTP service
/// on its node's address, without fencing; waits until it answers.
/// Returns the cluster, the port and the node serving.
fn cluster_with_site(tag: &str) -> (ProcessCluster, u16, String) {
    let mut c = ProcessCluster::setup_apart(tag, 3, None).unwrap();
    for node in &c.nodes {
        let mut settings = tandem_daemon::DaemonConfig::load(&node.config).unwrap();
        settings.shutdown_timeout_ms = SHUTDOWN_TIMEOUT.as_millis() as u64;
        std::fs::write(&node.config, settings.to_toml()).unwrap();
    }
    c.start_all();
    c.wait_get("node1", "/status", FORM, POLL, |d| {
        d["cluster"]["quorum"] == true && d["cluster"]["dc"].is_string()
    })
    .unwrap();
    let port = service_port();
    let config = format!(
        r#"
[cluster]
name = "{tag}"
options = {{ fencing-enabled = false }}
resource-defaults = {{ resource-stickiness = 100 }}

[[node]]
name = "node1"
[[node]]
name = "node2"
[[node]]
name = "node3"

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
    let doc = c
        .wait_get("node1", "/status", FORM, POLL, |d| {
            running_on(d, "site").len() == 1
        })
        .unwrap();
    let home = running_on(&doc, "site")[0].clone();
    wait_serving(&c, port, &home);
    (c, port, home)
}

fn host<'a>(c: &'a ProcessCluster, node: &str) -> &'a str {
    &c.nodes.iter().find(|n| n.name == node).unwrap().host
}

fn hosts(c: &ProcessCluster) -> Vec<String> {
    c.nodes.iter().map(|n| n.host.clone()).collect()
}

/// Waits (bounded) until `node`'s copy of the service answers.
fn wait_serving(c: &ProcessCluster, port: u16, node: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while serving(host(c, node), port).as_deref() != Some(node) {
        assert!(
            Instant::now() < deadline,
            "{node}'s site never answered on {}:{port}",
            host(c, node)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn loss_state(doc: &Value, node: &str) -> String {
    doc["node_loss"]
        .as_array()
        .and_then(|l| l.iter().find(|n| n["node"] == node))
        .and_then(|n| n["state"].as_str())
        .unwrap_or_else(|| panic!("no node_loss entry for {node}: {doc}"))
        .to_string()
}

fn fence_actions(doc: &Value, node: &str) -> Vec<String> {
    doc["fence_history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["target"] == node)
        .filter_map(|r| r["action"].as_str().map(String::from))
        .collect()
}

fn other_than(home: &str) -> &'static str {
    if home == "node1" {
        "node2"
    } else {
        "node1"
    }
}

/// The samples in which the service answered on two nodes at once.
fn doubles(samples: &[Sample]) -> Vec<&Sample> {
    samples.iter().filter(|s| s.serving.len() > 1).collect()
}

#[test]
fn sigterm_moves_the_service_before_the_daemon_exits_and_never_runs_it_twice() {
    let _serial = one_at_a_time();
    let (mut c, port, home) = cluster_with_site("sigterm");
    let survivor = other_than(&home);
    let daemon = c.pid(&home).unwrap();
    let sampler = Sampler::start(hosts(&c), port, vec![daemon], SAMPLE_EVERY);
    std::thread::sleep(4 * SAMPLE_EVERY); // a few samples of the steady state

    let asked = Instant::now();
    c.signal(&home, libc::SIGTERM);
    let status = c.wait_exit(&home, SHUTDOWN_TIMEOUT + Duration::from_secs(10));
    let took = asked.elapsed();
    let status = status.unwrap_or_else(|| panic!("{home} did not exit within {took:?}"));
    // The new copy settles in; then stop sampling.
    let doc = c
        .wait_get(survivor, "/status", FORM, POLL, |d| {
            let on = running_on(d, "site");
            on.len() == 1 && on[0] != home
        })
        .unwrap();
    let now_on = running_on(&doc, "site")[0].clone();
    wait_serving(&c, port, &now_on);
    std::thread::sleep(4 * SAMPLE_EVERY);
    let samples = sampler.finish();

    let double = double_active(&samples);
    eprintln!(
        "SIGTERM of {home}: exited ({status}) after {} ms; site moved to {now_on}; {} samples, double-active {} ms",
        took.as_millis(),
        samples.len(),
        double.as_millis()
    );
    assert!(status.success(), "{home} exited with {status}");
    assert!(
        took < SHUTDOWN_TIMEOUT,
        "{home} took {took:?}, the whole shutdown timeout"
    );
    assert_eq!(
        double,
        Duration::ZERO,
        "site answered on two nodes: {:?}",
        doubles(&samples)
    );
    assert!(
        samples.len() as u128 > took.as_millis() / 200,
        "too few samples ({}) over {took:?}",
        samples.len()
    );
    // Served from home at first, and from its new node while the old
    // daemon still ran: moved, not stopped by the exit.
    assert_eq!(
        samples[0].serving,
        std::slice::from_ref(&home),
        "{:?}",
        samples[0]
    );
    let moved_while_alive = samples
        .iter()
        .any(|s| s.alive[0] && s.serving == [now_on.clone()]);
    assert!(
        moved_while_alive,
        "site never answered from {now_on} before {home}'s daemon exited: {samples:?}"
    );

    let doc = c
        .wait_get(survivor, "/status", FORM, POLL, |d| {
            loss_state(d, &home) == "down (settled)"
        })
        .unwrap();
    assert_eq!(fence_actions(&doc, &home), ["clean-shutdown"], "{doc}");
    for node in ["node1", "node2", "node3"]
        .into_iter()
        .filter(|n| *n != home)
    {
        assert_eq!(loss_state(&doc, node), "online", "{doc}");
    }
    assert!(doc["failures"].as_array().unwrap().is_empty(), "{doc}");
    assert_eq!(running_on(&doc, "site"), [now_on], "{doc}");
}

#[test]
fn a_daemon_killed_alone_leaves_its_service_answering_only_there_until_confirm_down() {
    let _serial = one_at_a_time();
    let (mut c, port, home) = cluster_with_site("kill9");
    let survivor = other_than(&home);
    let lease_ms = c.view(survivor).unwrap()["lease_ms"].as_u64().unwrap();
    // A crashed daemon: its service keeps running.
    c.kill(&home);
    let killed = Instant::now();
    let sampler = Sampler::start(hosts(&c), port, Vec::new(), SAMPLE_EVERY);
    let doc = c
        .wait_get(survivor, "/status", FORM, POLL, |d| {
            loss_state(d, &home).starts_with("lost")
        })
        .unwrap();
    assert!(
        loss_state(&doc, &home).contains(&format!("tandem node confirm-down {home}")),
        "{doc}"
    );
    // Five lease periods: the lease ran out long ago, nobody confirmed.
    std::thread::sleep(Duration::from_millis(5 * lease_ms).saturating_sub(killed.elapsed()));
    let samples = sampler.finish();
    let elsewhere: Vec<_> = samples
        .iter()
        .filter(|s| s.serving != [home.clone()])
        .collect();
    eprintln!(
        "kill -9 of {home}'s daemon: {} samples over {} ms, {} not served by {home} alone",
        samples.len(),
        killed.elapsed().as_millis(),
        elsewhere.len()
    );
    assert!(samples.len() >= 40, "only {} samples", samples.len());
    assert!(
        elsewhere.is_empty(),
        "site answered from elsewhere (or nowhere) while {home} was lost: {elsewhere:?}"
    );
    let doc = c.get(survivor, "/status").unwrap();
    assert!(loss_state(&doc, &home).starts_with("lost"), "{doc}");
    assert!(fence_actions(&doc, &home).is_empty(), "{doc}");
}

#[test]
fn an_idle_cluster_uses_under_ten_percent_of_a_core_per_daemon() {
    let _serial = one_at_a_time();
    let (c, _port, _home) = cluster_with_site("idle");
    // Settled: every node online, nothing failed, the monitor running.
    c.wait_get("node1", "/status", FORM, POLL, |d| {
        d["node_loss"]
            .as_array()
            .is_some_and(|l| l.iter().all(|n| n["state"] == "online"))
            && d["failures"].as_array().is_some_and(Vec::is_empty)
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let names = ["node1", "node2", "node3"];
    let before: Vec<Duration> = names.iter().map(|n| c.cpu_time(n)).collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let wall = started.elapsed();
    let shares: Vec<f64> = names
        .iter()
        .zip(&before)
        .map(|(n, b)| (c.cpu_time(n) - *b).as_secs_f64() / wall.as_secs_f64() * 100.0)
        .collect();
    let report: Vec<String> = names
        .iter()
        .zip(&shares)
        .map(|(n, s)| format!("{n} {s:.2} %"))
        .collect();
    eprintln!(
        "idle CPU over {:.1} s (one core = 100 %): {}",
        wall.as_secs_f64(),
        report.join(", ")
    );
    for (name, share) in names.iter().zip(&shares) {
        assert!(
            *share < 10.0, // debug build: 4.6-5.4 % measured (the spinning controller burned ~30 %); release target well under 1 % is open
            "{name} used {share:.2} % of a core while idle ({})",
            report.join(", ")
        );
    }
}
