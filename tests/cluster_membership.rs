//! Membership changes at run time with real processes: `tandem node add`
//! grows a running 3-node cluster by a fourth node, which starts from the
//! settings and certificate the command wrote (`joining = true`), becomes
//! a voter once caught up and receives later configuration changes;
//! `tandem node remove` shrinks it again, with quorum kept, for a running
//! node and for one that is down; the refusals (unknown node, a name or
//! address in use, too few voters left) change nothing.

use serde_json::Value;
use std::time::Duration;
use tandem_tests::processes::{dc, has_quorum, ProcessCluster};

/// A freshly started cluster forms, or a membership change settles,
/// within this (debug build, busy CI).
const SETTLE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// `name`'s view once it has quorum, a DC, and exactly these voters, all heard.
fn settled(c: &ProcessCluster, name: &str, voters: &[&str]) -> Value {
    c.wait_view(name, SETTLE, POLL, |v| {
        has_quorum(v)
            && dc(v).is_some()
            && names(&v["voters"]) == voters
            && v["voters"]
                .as_array()
                .is_some_and(|l| l.iter().all(|p| p["alive"] == true))
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn run(c: &ProcessCluster, args: &[&str]) -> (bool, String, String) {
    let out = c.tandem(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_node_added_at_run_time_votes_and_follows_changes_and_nodes_can_be_removed_again() {
    let mut c = ProcessCluster::setup("members", 3, false, None).expect("setup");
    c.start_all();
    settled(&c, "node1", &["node1", "node2", "node3"]);
    let dir = c.dir.to_string_lossy().into_owned();

    // Refusals change nothing.
    let port = c.free_port().expect("a free port");
    let addr = format!("127.0.0.1:{port}");
    let (ok, _, err) = run(&c, &["node", "add", "node2", &addr, "--dir", &dir]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let taken = format!("127.0.0.1:{}", c.nodes[0].port);
    let (ok, _, err) = run(&c, &["node", "add", "node4", &taken, "--dir", &dir]);
    assert!(!ok && err.contains("already used by member node1"), "{err}");
    let (ok, _, err) = run(&c, &["node", "remove", "node9"]);
    assert!(!ok && err.contains("no member named"), "{err}");

    // Add node4: the DC makes it a learner; its files are written.
    let (ok, out, err) = run(
        &c,
        &["node", "add", "node4", &addr, "--dir", &dir, "--json"],
    );
    assert!(ok, "node add failed: {err}");
    let answer: Value = serde_json::from_str(&out).expect("JSON answer");
    assert_eq!(answer["node"]["id"], 4, "{answer}");
    assert!(answer["certificate"].is_string(), "{answer}");
    let settings = std::fs::read_to_string(c.dir.join("node4.toml")).expect("node4.toml");
    assert!(settings.contains("joining = true"), "{settings}");
    c.adopt("node4", port, false).expect("adopt node4");
    c.start("node4");

    // It catches up and becomes the fourth voter: quorum is now 3 of 4.
    let view = settled(&c, "node4", &["node1", "node2", "node3", "node4"]);
    assert_eq!(view["votes_needed"], 3, "{view}");
    assert_eq!(
        settled(&c, "node1", &["node1", "node2", "node3", "node4"])["votes_needed"],
        3
    );

    // A change committed after the add reaches node4.
    let (ok, _, err) = run(&c, &["property", "set", "stonith-enabled=false"]);
    assert!(ok, "property set failed: {err}");
    c.wait_get("node4", "/config", SETTLE, POLL, |v| {
        v["text"]
            .as_str()
            .is_some_and(|t| t.contains("stonith-enabled"))
    })
    .unwrap_or_else(|e| panic!("{e}"));

    // Remove node4 while it runs: three voters again, quorum kept; node4
    // stops counting itself in (no quorum).
    let (ok, out, err) = run(&c, &["node", "remove", "node4"]);
    assert!(ok, "node remove failed: {err}");
    assert!(out.contains("voters now: node1, node2, node3"), "{out}");
    let view = settled(&c, "node1", &["node1", "node2", "node3"]);
    assert_eq!(view["votes_needed"], 2, "{view}");
    c.wait_view("node4", SETTLE, POLL, |v| !has_quorum(v))
        .unwrap_or_else(|e| panic!("{e}"));
    c.kill("node4");

    // A node that is down can be removed too; going below three voters
    // needs --force.
    c.kill("node3");
    c.wait_view("node1", SETTLE, POLL, |v| {
        has_quorum(v) && dc(v).is_some_and(|d| d != "node3")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let (ok, _, err) = run(&c, &["node", "remove", "node3"]);
    assert!(!ok && err.contains("--force"), "{err}");
    let (ok, _, err) = run(&c, &["node", "remove", "node3", "--force"]);
    assert!(ok, "forced remove failed: {err}");
    let view = settled(&c, "node1", &["node1", "node2"]);
    assert_eq!(view["votes_needed"], 2, "{view}");
    let (ok, _, err) = run(&c, &["node", "remove", "node2", "--force"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&c, &["node", "remove", "node1", "--force"]);
    assert!(!ok && err.contains("last data node"), "{err}");
}
