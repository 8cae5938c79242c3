//! The operator CLI against real `tandem daemon` processes: resources,
//! constraints, move/ban/clear, cleanup, `config plan` and a rejected
//! import; `cluster init` + `join` with one-time tokens (good, reused,
//! wrong); a node presenting an expired certificate is refused.
//!
//! Until the cluster executes resources, "running there" is judged by the
//! scheduler's planned placement (see `tandem resource move`). Tests run
//! one at a time (a mutex): each runs a cluster, and CI has two cores.

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tandem_tests::processes::{dc, has_quorum, tandem_bin, ProcessCluster};

const FORM: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the CLI; panics with its stderr unless it succeeded.
fn ok(c: &ProcessCluster, args: &[&str]) -> String {
    let out = c.tandem(args);
    assert!(
        out.status.success(),
        "tandem {args:?}: {}{}",
        stderr(&out),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(c: &ProcessCluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let text = ok(c, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn constraint_ids(c: &ProcessCluster) -> Vec<String> {
    let list = json(c, &["constraint", "list"]);
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            // As the configuration format writes it, with its kind.
            assert!(c["kind"].is_string(), "{c}");
            c["id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Polls until `ok` holds: the CLI reads from the first node that answers,
/// which may apply a committed change a moment after the DC did.
fn eventually(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(POLL);
    }
}

fn version(c: &ProcessCluster) -> u64 {
    c.get("node1", "/config").unwrap()["expected_version"]
        .as_u64()
        .unwrap()
}

#[test]
fn resources_and_constraints_are_edited_moved_planned_and_bad_imports_change_nothing() {
    let _serial = one_at_a_time();
    let mut c = ProcessCluster::setup("cli-resources", 2, false, None).unwrap();
    c.start_all();
    c.wait_view("node1", FORM, POLL, |v| has_quorum(v) && dc(v).is_some())
        .unwrap();
    // No fencing device in this cluster: without this nothing may start.
    ok(&c, &["property", "set", "stonith-enabled=false"]);
    ok(
        &c,
        &[
            "resource",
            "create",
            "vip",
            "ocf:heartbeat:IPaddr2",
            "ip=192.0.2.10",
            "op",
            "monitor",
            "interval=10s",
            "timeout=20s",
        ],
    );
    let status = json(&c, &["status"]);
    assert!(
        status["placement"]["resources"]["vip"]["Started"].is_array(),
        "{status}"
    );
    ok(
        &c,
        &[
            "resource",
            "update",
            "vip",
            "cidr_netmask=24",
            "meta",
            "resource-stickiness=0",
        ],
    );
    let shown = json(&c, &["resource", "show", "vip"]);
    assert_eq!(shown[0]["params"]["cidr_netmask"], "24", "{shown}");

    ok(
        &c,
        &[
            "resource",
            "create",
            "web",
            "ocf:heartbeat:apache",
            "--group",
            "site",
        ],
    );
    ok(
        &c,
        &["constraint", "location", "vip", "prefers", "node1=50"],
    );
    ok(
        &c,
        &["constraint", "colocation", "add", "web", "with", "vip"],
    );
    ok(
        &c,
        &["constraint", "order", "vip", "then", "web", "kind=Optional"],
    );
    eventually("three constraints listed", || {
        constraint_ids(&c)
            == [
                "location-vip-node1-50",
                "colocation-web-vip-INFINITY",
                "order-vip-web-optional",
            ]
    });
    ok(&c, &["constraint", "delete", "location-vip-node1-50"]);
    let bad = c.tandem(&["constraint", "delete", "nope"]);
    assert!(
        stderr(&bad).contains("no constraint with id \"nope\""),
        "{}",
        stderr(&bad)
    );

    // Move: the constraint is gone once the resource runs there.
    let planned = json(&c, &["resource", "show", "vip"])[0]["planned"]["Started"][0]
        .as_str()
        .unwrap()
        .to_string();
    let target = if planned == "node1" { "node2" } else { "node1" };
    let moved = json(&c, &["resource", "move", "vip", target, "--wait", "20"]);
    assert_eq!(moved["constraint_removed"], true, "{moved}");
    eventually("no cli-prefer left after the move", || {
        !constraint_ids(&c)
            .iter()
            .any(|id| id.starts_with("cli-prefer"))
    });

    ok(&c, &["resource", "ban", "vip", "node1"]);
    eventually("the ban keeps vip off node1", || {
        let placed = json(&c, &["resource", "show", "vip"]);
        placed[0]["planned"]["Started"][0] == "node2"
            && placed[0]["constraints"][0] == "cli-ban-vip-on-node1"
    });
    // A group shows where its members run, and them.
    let site = json(&c, &["resource", "show", "site"]);
    assert_eq!(site[0]["members"], serde_json::json!(["web"]), "{site}");
    assert_eq!(site[1]["id"], "web", "{site}");
    assert_eq!(site[0]["planned"], site[1]["planned"], "{site}");
    // A move the scheduler would not make fails at once, naming why.
    let started = Instant::now();
    let banned = c.tandem(&["resource", "move", "vip", "node1", "--wait", "20"]);
    assert!(!banned.status.success());
    assert!(
        stderr(&banned).contains("cli-ban-vip-on-node1 bans it there"),
        "{}",
        stderr(&banned)
    );
    assert!(started.elapsed() < Duration::from_secs(10), "it waited");
    assert!(!constraint_ids(&c).contains(&"cli-prefer-vip".to_string()));
    ok(&c, &["resource", "clear", "vip"]);
    eventually("clear removes the ban", || {
        !constraint_ids(&c).iter().any(|id| id.starts_with("cli-"))
    });

    let cleaned = json(&c, &["resource", "cleanup", "vip"]);
    assert!(cleaned["cleared"].is_array(), "{cleaned}");
    assert_eq!(
        json(&c, &["resource", "failcount", "vip"]),
        serde_json::json!({})
    );

    // Plan: the diff and the preview, and nothing changes.
    let before = version(&c);
    let export = ok(&c, &["config", "export"]);
    let file = c.dir.join("plan.toml");
    let extra = "[[resource]]\nid = \"extra\"\nagent = \"ocf:pacemaker:Dummy\"\n";
    std::fs::write(&file, format!("{export}\n{extra}")).unwrap();
    let plan = ok(&c, &["config", "plan", file.to_str().unwrap()]);
    assert!(
        plan.contains("+id = \"extra\"") && plan.contains("Start      extra"),
        "{plan}"
    );
    assert_eq!(version(&c), before, "plan changed the configuration");

    let bad_file = c.dir.join("bad.toml");
    std::fs::write(
        &bad_file,
        format!("{export}\n[[resource]]\nid = \"x\"\nagent = \"nope\"\n"),
    )
    .unwrap();
    let rejected = c.tandem(&["config", "import", bad_file.to_str().unwrap()]);
    assert!(!rejected.status.success());
    assert!(
        stderr(&rejected).contains("rejected, nothing changed"),
        "{}",
        stderr(&rejected)
    );
    assert_eq!(
        version(&c),
        before,
        "a rejected import changed the configuration"
    );

    // A file exported before someone else's change is refused instead of
    // undoing it; --force applies it all the same.
    let exported = c.dir.join("exported.toml");
    std::fs::write(&exported, &export).unwrap();
    ok(&c, &["resource", "create", "late", "ocf:pacemaker:Dummy"]);
    let stale = c.tandem(&["config", "apply", exported.to_str().unwrap()]);
    assert!(!stale.status.success());
    assert!(
        stderr(&stale).contains(&format!("was exported at config version {before}")),
        "{}",
        stderr(&stale)
    );
    assert!(json(&c, &["resource", "show", "late"]).is_array());
    ok(
        &c,
        &["config", "apply", "--force", exported.to_str().unwrap()],
    );
    let ids = |c: &ProcessCluster| -> Vec<String> {
        let shown = json(c, &["resource", "show"]);
        let all = shown.as_array().cloned().unwrap_or_default();
        all.iter()
            .filter_map(|r| r["id"].as_str().map(String::from))
            .collect()
    };
    eventually(
        "--force applied the exported file: late is stopped and gone",
        || ids(&c) == ["vip", "site", "web"],
    );
    // An empty file would delete everything: refused without --force.
    let empty = c.dir.join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let wiped = c.tandem(&["config", "apply", empty.to_str().unwrap()]);
    assert!(!wiped.status.success());
    assert!(
        stderr(&wiped).contains("would delete 2 of the 2 resources"),
        "{}",
        stderr(&wiped)
    );
    assert_eq!(ids(&c), ["vip", "site", "web"]);

    ok(&c, &["resource", "delete", "site"]);
    eventually("only vip is left, and no constraint naming web", || {
        json(&c, &["resource", "show"]).as_array().map(Vec::len) == Some(1)
            && constraint_ids(&c).is_empty()
    });
}

/// Kills the child when dropped.
struct Daemon(Child);

impl Daemon {
    fn start(bin: &Path, config: &Path, log: &Path) -> Daemon {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(bin)
            .args(["daemon", "--config"])
            .arg(config)
            .stderr(log)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Daemon(child)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_join_token_works_once_and_a_wrong_or_reused_one_is_refused_clearly() {
    let _serial = one_at_a_time();
    let bin = tandem_bin().unwrap();
    let dir = std::env::temp_dir().join(format!("tandem-join-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (init_dir, join_dir) = (dir.join("init"), dir.join("joined"));
    let (p1, p2, join_port) = (free_port(), free_port(), free_port());
    let run = |args: &[&str]| Command::new(&bin).args(args).output().unwrap();
    let init = run(&[
        "cluster",
        "init",
        "--name",
        "joins",
        "--api-port-offset",
        "1000",
        "--join-port",
        &join_port.to_string(),
        "--dir",
        init_dir.to_str().unwrap(),
        &format!("node1=127.0.0.1:{p1}"),
        &format!("node2=127.0.0.1:{p2}"),
    ]);
    assert!(init.status.success(), "{}", stderr(&init));
    let printed = String::from_utf8_lossy(&init.stdout).into_owned();
    let token = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("node2: tandem cluster join --token "))
        .unwrap_or_else(|| panic!("no token printed: {printed}"))
        .to_string();
    let _node1 = Daemon::start(&bin, &init_dir.join("node1.toml"), &dir.join("node1.log"));
    let join = |token: &str, into: &std::path::Path| {
        run(&[
            "cluster",
            "join",
            "--token",
            token,
            "--dir",
            into.to_str().unwrap(),
        ])
    };
    let deadline = Instant::now() + FORM;
    let first = loop {
        let out = join(&token, &join_dir);
        if out.status.success()
            || !stderr(&out).contains("cannot reach")
            || Instant::now() > deadline
        {
            break out;
        }
        std::thread::sleep(POLL);
    };
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(join_dir.join("node2.toml").exists() && join_dir.join("node2.key").exists());

    let reused = join(&token, &dir.join("again"));
    assert!(!reused.status.success());
    assert!(
        stderr(&reused).contains("token already used"),
        "{}",
        stderr(&reused)
    );
    let (secret, rest) = token.split_once('.').unwrap();
    let wrong = format!(
        "{}{}.{rest}",
        &secret[..31],
        if secret.ends_with('0') { '1' } else { '0' }
    );
    let refused = join(&wrong, &dir.join("wrong"));
    assert!(
        stderr(&refused).contains("unknown token"),
        "{}",
        stderr(&refused)
    );

    // The joined node's files make a working member.
    let _node2 = Daemon::start(&bin, &join_dir.join("node2.toml"), &dir.join("node2.log"));
    let admin = init_dir.join("admin.toml");
    let deadline = Instant::now() + FORM;
    loop {
        let out = run(&[
            "quorum",
            "status",
            "--json",
            "--admin",
            admin.to_str().unwrap(),
        ]);
        let view: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if view["quorum"] == true && view["votes_alive"] == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the joined node never formed quorum: {view}"
        );
        std::thread::sleep(POLL);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_node_presenting_an_expired_certificate_is_refused_with_a_clear_log_line() {
    let _serial = one_at_a_time();
    let mut c = ProcessCluster::setup("expired-cert", 3, false, None).unwrap();
    let read = |f: &str| std::fs::read_to_string(c.dir.join(f)).unwrap();
    let ca = tandem_daemon::Authority::load(&read("ca.pem"), &read("ca.key")).unwrap();
    let expired = ca.issue_expired("node3", "node").unwrap();
    std::fs::write(c.dir.join("node3.pem"), expired.cert_pem).unwrap();
    std::fs::write(c.dir.join("node3.key"), expired.key_pem).unwrap();
    c.start("node1");
    c.start("node2");
    c.start("node3");
    c.wait_view("node1", FORM, POLL, |v| v["voters"].is_array())
        .unwrap();
    let line = c
        .wait_log(&["node1", "node2"], FORM, |l| {
            l.contains("TLS handshake failed") && l.to_lowercase().contains("expired")
        })
        .unwrap();
    eprintln!("refusal logged: {line}");
    let view = c.view("node1").unwrap();
    let node3 = view["voters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "node3")
        .unwrap();
    assert_eq!(node3["alive"], false, "{view}");
}
