//! How lost nodes are settled, attacked as an unlucky operator would (found
//! by review; both ran the service on two nodes before the fix): an
//! operator's `confirm-down` counts only for the loss it was made in, and
//! `node remove` never forgets a node that may still run something.
use serde_json::Value;
use std::time::{Duration, Instant};
use tandem_tests::processes::{running_on, service_port, serving, ProcessCluster, Sampler};

/// The tests share the machine's loopback ports: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const FORM: Duration = Duration::from_secs(40);
const POLL: Duration = Duration::from_millis(100);

const SLOW: &str = r#"#!/bin/sh
f="$HA_RSCTMP/slow.on"
case "$1" in
    meta-data) echo '<?xml version="1.0"?><resource-agent name="Slow" version="1.0"><version>1.1</version><parameters/><actions><action name="start" timeout="30s"/><action name="stop" timeout="5s"/><action name="monitor" timeout="5s"/><action name="meta-data" timeout="5s"/></actions></resource-agent>'; exit 0 ;;
    start) touch "$HA_RSCTMP/slow.starting"; sleep 10; touch "$f"; exit 0 ;;
    stop) rm -f "$f" "$HA_RSCTMP/slow.starting"; exit 0 ;;
    monitor) [ -f "$f" ] && exit 0; exit 7 ;;
    validate-all) exit 0 ;;
    *) exit 3 ;;
esac
"#;

fn config(tag: &str, port: u16, b: &str, slow: bool, site_on_b: bool) -> String {
    let mut t = format!(
        r#"[cluster]
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
    let score = if site_on_b { "INFINITY" } else { "-INFINITY" };
    t += &format!("\n[[location]]\nresource = \"site\"\nnode = \"{b}\"\nscore = \"{score}\"\n");
    if slow {
        t += "\n[[resource]]\nid = \"slow\"\nagent = \"ocf:reviewtest:Slow\"\nop = [{ name = \"start\", timeout = \"30s\" }, { name = \"monitor\", interval = \"2s\", timeout = \"5s\" }]\n";
        t += &format!(
            "\n[[location]]\nresource = \"slow\"\nnode = \"{b}\"\nscore = \"-INFINITY\"\n"
        );
    }
    t
}

fn apply(c: &ProcessCluster, tag: &str, text: &str) {
    let file = c.dir.join(format!("{tag}.toml"));
    std::fs::write(&file, text).unwrap();
    let out = c.tandem(&["config", "apply", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "config apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A formed 3-node cluster whose `site` serves on `b`, a node that is not
/// the DC, placed there with `score`.
struct Serving {
    c: ProcessCluster,
    b: String,
    host_b: String,
    port: u16,
}

/// Starts every node and waits for a DC; returns it and another node.
fn formed(c: &mut ProcessCluster) -> (String, String) {
    c.start_all();
    let doc = c
        .wait_get("node1", "/status", FORM, POLL, |d| {
            d["cluster"]["quorum"] == true && d["cluster"]["dc"].is_string()
        })
        .unwrap();
    let dc = doc["cluster"]["dc"].as_str().unwrap().to_string();
    let b = ["node1", "node2", "node3"]
        .into_iter()
        .find(|n| *n != dc)
        .unwrap()
        .to_string();
    (dc, b)
}

fn site_on_a_data_node(tag: &str, score: &str) -> Serving {
    let mut c = ProcessCluster::setup_apart(tag, 3, None).unwrap();
    let (_, b) = formed(&mut c);
    let port = service_port();
    let text = config(tag, port, &b, false, true)
        .replace("score = \"INFINITY\"", &format!("score = \"{score}\""));
    apply(&c, tag, &text);
    let host_b = c.nodes.iter().find(|n| n.name == b).unwrap().host.clone();
    let deadline = Instant::now() + FORM;
    while serving(&host_b, port).as_deref() != Some(b.as_str()) {
        assert!(Instant::now() < deadline, "site never served on {b}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Serving { c, b, host_b, port }
}

/// An operator confirms a paused node down while the DC is busy in a long
/// transition; the node comes back before the DC uses it. Much later its
/// daemon crashes: the old confirmation must not settle that crash.
#[test]
fn a_confirm_down_the_dc_never_used_does_not_settle_a_later_crash() {
    let _serial = one_at_a_time();
    let tag = "staleconfirm";
    let agents = std::env::temp_dir().join(format!("review-agents-{}", std::process::id()));
    let provider = agents.join("ocf/resource.d/reviewtest");
    std::fs::create_dir_all(&provider).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let p = provider.join("Slow");
        std::fs::write(&p, SLOW).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut c = ProcessCluster::setup_apart(tag, 3, None).unwrap();
    for node in &c.nodes {
        let mut s = tandem_daemon::DaemonConfig::load(&node.config).unwrap();
        s.agents.ocf_root = Some(agents.join("ocf"));
        std::fs::write(&node.config, s.to_toml()).unwrap();
    }
    let (dc, b) = formed(&mut c);
    let port = service_port();

    // 1. site runs somewhere else than B; B runs nothing.
    apply(&c, tag, &config(tag, port, &b, false, false));
    c.wait_get(&dc, "/status", FORM, POLL, |d| {
        running_on(d, "site").len() == 1
    })
    .unwrap();

    // 2. A 10 s start keeps the DC's controller inside one transition.
    apply(&c, tag, &config(tag, port, &b, true, false));
    let deadline = Instant::now() + FORM;
    let dirs: Vec<std::path::PathBuf> = c
        .nodes
        .iter()
        .map(|n| {
            tandem_daemon::DaemonConfig::load(&n.config)
                .unwrap()
                .data_dir
        })
        .collect();
    let starting = || dirs.iter().any(|d| d.join("rsctmp/slow.starting").exists());
    while !starting() {
        assert!(Instant::now() < deadline, "slow never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // 3. B stalls for 2.5 s (every node stops hearing it); the operator,
    //    told "blocked until it returns or confirm-down", confirms it.
    c.signal(&b, libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(2500));
    let dc_admin = c.nodes.iter().find(|n| n.name == dc).unwrap().admin.clone();
    let out = c.run(&[
        std::ffi::OsStr::new("node"),
        std::ffi::OsStr::new("confirm-down"),
        std::ffi::OsStr::new(&b),
        std::ffi::OsStr::new("--admin"),
        dc_admin.as_os_str(),
    ]);
    eprintln!(
        "confirm-down {b}: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "confirm-down was refused");
    c.signal(&b, libc::SIGCONT);
    // B is back; the slow start ends; B is online and was never recorded down.
    c.wait_get(&dc, "/status", FORM, POLL, |d| {
        running_on(d, "slow").len() == 1
            && d["node_loss"]
                .as_array()
                .is_some_and(|l| l.iter().all(|n| n["state"] == "online"))
    })
    .unwrap();
    let fenced: Vec<Value> = c.get(&dc, "/status").unwrap()["fence_history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    eprintln!("fence history after B returned: {fenced:?}");

    // 4. Weeks later: site is moved to B.
    apply(&c, tag, &config(tag, port, &b, true, true));
    let host_b = c.nodes.iter().find(|n| n.name == b).unwrap().host.clone();
    let deadline = Instant::now() + FORM;
    while serving(&host_b, port).as_deref() != Some(b.as_str()) {
        assert!(Instant::now() < deadline, "site never served on {b}");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));

    // 5. B's daemon crashes (kill -9): its site keeps running there.
    let hosts: Vec<String> = c.nodes.iter().map(|n| n.host.clone()).collect();
    let sampler = Sampler::start(hosts, port, Vec::new(), Duration::from_millis(50));
    c.kill(&b);
    std::thread::sleep(Duration::from_secs(6));
    let samples = sampler.finish();
    let doc = c.get(&dc, "/status").unwrap();
    eprintln!(
        "after kill -9 of {b}: node_loss {} fence_history {}",
        doc["node_loss"], doc["fence_history"]
    );
    let doubles: Vec<_> = samples.iter().filter(|s| s.serving.len() > 1).collect();
    let _ = std::fs::remove_dir_all(&agents);
    assert!(
        doubles.is_empty(),
        "site answered on two nodes after a crash nobody confirmed ({} of {} samples), first {:?}",
        doubles.len(),
        samples.len(),
        doubles.first()
    );
}

/// `tandem node remove` of a live node that runs the service is refused
/// (forgetting its status would recover the service while it still runs),
/// and the service never answers from two nodes.
#[test]
fn removing_a_live_node_that_runs_a_service_is_refused() {
    let _serial = one_at_a_time();
    let Serving {
        c, b: victim, port, ..
    } = site_on_a_data_node("rmlive", "1000");
    let hosts: Vec<String> = c.nodes.iter().map(|n| n.host.clone()).collect();
    let sampler = Sampler::start(hosts, port, Vec::new(), Duration::from_millis(20));
    let out = c.tandem(&["node", "remove", &victim, "--force"]);
    std::thread::sleep(Duration::from_secs(3));
    let samples = sampler.finish();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "node remove of a node running site succeeded"
    );
    assert!(err.contains("may still run resources"), "{err}");
    assert!(
        samples.iter().all(|s| s.serving.len() <= 1),
        "site answered on two nodes"
    );
    assert!(
        samples.iter().all(|s| s.serving == [victim.clone()]),
        "site left {victim}: {:?}",
        samples.iter().find(|s| s.serving != [victim.clone()])
    );
}

/// A daemon killed and restarted knows what its predecessor left running
/// (`held.json`): in a healthy cluster it keeps serving through the
/// restart (it is granted a lease before its grace ends); without a lease
/// (no quorum anywhere) it stops the service itself, as the lease rule
/// says. Before, a restarted daemon knew nothing and a service it left
/// ran on, lease or not.
#[test]
fn a_restarted_daemon_keeps_what_it_left_running_only_under_a_lease() {
    let _serial = one_at_a_time();
    let Serving {
        mut c,
        b,
        host_b,
        port,
    } = site_on_a_data_node("heldrestart", "INFINITY");

    // 1. kill -9 and an immediate restart (systemd's Restart=): served on
    //    B throughout, never anywhere else.
    let hosts: Vec<String> = c.nodes.iter().map(|n| n.host.clone()).collect();
    let sampler = Sampler::start(hosts, port, Vec::new(), Duration::from_millis(50));
    c.kill(&b);
    c.start(&b);
    std::thread::sleep(Duration::from_secs(5));
    let samples = sampler.finish();
    assert!(samples.len() >= 50, "{} samples", samples.len());
    let elsewhere: Vec<_> = samples
        .iter()
        .filter(|s| s.serving != [b.clone()])
        .collect();
    assert!(
        elsewhere.is_empty(),
        "site was not served by {b} alone through its daemon's restart ({} of {} samples), first {:?}",
        elsewhere.len(),
        samples.len(),
        elsewhere.first()
    );
    assert!(
        c.log(&b)
            .contains("the previous daemon left these running (or starting): site"),
        "the restarted daemon did not know what it left running"
    );

    // 2. Every daemon killed; only B's restarts: no quorum, no lease, so B
    //    stops what its predecessor left running.
    for name in ["node1", "node2", "node3"] {
        c.kill(name);
    }
    assert_eq!(serving(&host_b, port).as_deref(), Some(b.as_str()));
    c.start(&b);
    let deadline = Instant::now() + Duration::from_secs(15);
    while serving(&host_b, port).is_some() {
        assert!(
            Instant::now() < deadline,
            "{b} restarted without a lease still serves site after 15 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
