//! `tandem demo`: a real 3-node cluster on loopback (three daemon processes
//! of this binary, certificates and data under a temp dir) running
//! `examples/demo.toml`: a web service on a free port that fails over.
//! `--check` runs it non-interactively: the cluster forms with quorum, the
//! service answers, the node serving it is killed like a power loss (the
//! daemon with SIGKILL, its service with it), the service answers again
//! from another node, a DC leads with quorum and the configuration is
//! intact; exit 0.

use super::cluster::{setup, SetupArgs};
use super::status::{call, Conn};
use anyhow::{bail, Context, Result};
use hyper::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tandem_daemon::traffic::{Follow, TrafficSettings};
use tandem_daemon::DaemonConfig;

const DEMO_CONFIG: &str = include_str!("../../../../examples/demo.toml");

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run the fail-over check non-interactively and exit.
    #[arg(long)]
    pub check: bool,
}

struct Demo {
    dir: PathBuf,
    conn: Conn,
    children: Vec<(String, Child)>,
    ports: Ports,
}

/// The demo's ports; node N listens on 127.0.0.N.
#[derive(Clone, Copy)]
struct Ports {
    /// Raft on `base + N`, the admin API on `base + 10 + N`.
    base: u16,
    /// The cloned web service, on every node.
    web: u16,
    /// The fail-over service.
    site: u16,
    /// Each node's load balancer: web, then site.
    lb_web: u16,
    lb_site: u16,
}

impl Ports {
    fn new(base: u16) -> Ports {
        Ports {
            base,
            web: base + 20,
            site: base + 21,
            lb_web: base + 22,
            lb_site: base + 23,
        }
    }

    fn all(&self, node: u8) -> Vec<u16> {
        vec![
            self.base + node as u16,
            self.base + 10 + node as u16,
            self.web,
            self.site,
            self.lb_web,
            self.lb_site,
        ]
    }
}

fn node_ip(node: u8) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(127, 0, 0, node)
}

impl Drop for Demo {
    fn drop(&mut self) {
        for (name, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
            kill_services(&self.dir, name);
        }
        // The data dirs and certificates were only for this demo (kept
        // for a look at the logs with TANDEM_DEMO_KEEP=1).
        if std::env::var_os("TANDEM_DEMO_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let demo = start()?;
    println!("3-node cluster formed under {}", demo.dir.display());
    let doc = wait_for(&demo.conn, Duration::from_secs(15), |d| {
        d["cluster"]["quorum"] == true && d["cluster"]["dc"].is_string()
    })?;
    let text = DEMO_CONFIG
        .replace("@WEB_PORT@", &demo.ports.web.to_string())
        .replace("@SITE_PORT@", &demo.ports.site.to_string())
        .replace("@STATE_DIR@", &demo.dir.display().to_string());
    let put = json!({ "expected_version": doc["config_version"], "text": text });
    call(&demo.conn, Method::PUT, "/config", Some(put))?;
    if args.check {
        return check(demo);
    }
    // The node that answers may apply the committed change a moment later.
    wait_for(&demo.conn, Duration::from_secs(10), |d| {
        d["config_version"].as_u64() > Some(0)
    })?;
    let (node, _) = wait_for_answer(&demo, demo.ports.lb_site, Duration::from_secs(20), None)?;
    super::status::status(&demo.conn)?;
    let exe = std::env::current_exe()?;
    let admin = demo.conn.admin.display();
    let p = demo.ports;
    println!("\nThrough the load balancer on node1 (every node runs one, on 127.0.0.N):\n  http://127.0.0.1:{web}/  the web service, spread over all nodes\n  http://127.0.0.1:{site}/  the fail-over service, now on {node}\nTry, in another terminal:\n  export TANDEM_ADMIN={admin}\n  {exe} status\n  for i in 1 2 3 4 5 6; do curl -s http://127.0.0.1:{web}/; done\n  {exe} node drain node2        (traffic leaves node2 gracefully, then it goes to standby)\n  {exe} node undrain node2      (out of standby, taking traffic again)\n  {exe} node standby {node}      (the fail-over service moves)\n  {exe} node unstandby {node}    (stickiness keeps the service where it went)\n  kill -9 <pid of a daemon>     (pids: {pids}; the DC fences that node and recovers\n                                its services; the demo starts the daemon again after\n                                {restart} s, as systemd would)\nLogs: {dir}/node1.log .. node3.log (kept after Ctrl-C with TANDEM_DEMO_KEEP=1).\nCtrl-C stops the cluster.",
        exe = exe.display(),
        pids = demo.children.iter().map(|(n, c)| format!("{n}={}", c.id())).collect::<Vec<_>>().join(" "),
        restart = RESTART_AFTER.as_secs(),
        dir = demo.dir.display(),
        web = p.lb_web, site = p.lb_site);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(supervise(demo))
}

/// How long a daemon that exited waits before the demo starts it again
/// (systemd's `Restart=on-failure` with `RestartSec=5`).
const RESTART_AFTER: Duration = Duration::from_secs(5);

/// Until Ctrl-C, starts again every daemon that exited (killed by the
/// user, or "powered off" by the demo's fence device), as systemd would on
/// a real node, so that the cluster comes back whole.
async fn supervise(mut demo: Demo) -> Result<()> {
    let mut exited: Vec<(String, Instant)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            stop = &mut ctrl_c => {
                stop?;
                println!("stopping the demo cluster");
                return Ok(());
            }
            _ = tick.tick() => {}
        }
        for (name, child) in &mut demo.children {
            let gone = exited.iter().any(|(n, _)| n == name);
            if let (false, Ok(Some(status))) = (gone, child.try_wait()) {
                println!(
                    "{name}'s daemon exited ({status}); starting it again in {} s",
                    RESTART_AFTER.as_secs()
                );
                exited.push((name.clone(), Instant::now() + RESTART_AFTER));
            }
        }
        let due: Vec<String> = exited
            .iter()
            .filter(|(_, at)| Instant::now() >= *at)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            exited.retain(|(n, _)| *n != name);
            let config = demo.dir.join(format!("{name}.toml"));
            let child = spawn_daemon(&config)?;
            std::fs::write(demo.dir.join(format!("{name}.pid")), child.id().to_string())?;
            println!("{name}'s daemon started again (pid {})", child.id());
            if let Some((_, slot)) = demo.children.iter_mut().find(|(n, _)| *n == name) {
                *slot = child;
            }
        }
    }
}

fn start() -> Result<Demo> {
    let dir = std::env::temp_dir().join(format!("tandem-demo-{}", std::process::id()));
    let base = free_port_base()?;
    let ports = Ports::new(base);
    let nodes = (1..=3u8)
        .map(|i| format!("node{i}={}:{}", node_ip(i), base + i as u16))
        .collect();
    let files = setup(&SetupArgs {
        name: "demo".into(),
        dir: dir.clone(),
        witness: None,
        api_port_offset: 10,
        nodes,
    })?;
    let mut demo = Demo {
        conn: Conn {
            admin: dir.join("admin.toml"),
            json: false,
        },
        dir,
        children: Vec::new(),
        ports,
    };
    let fence_dir = install_fence_agent(&demo.dir)?;
    for (i, file) in files.iter().enumerate() {
        add_load_balancer(file, i as u8 + 1, &ports)?;
        let mut config = DaemonConfig::load(file)?;
        config.agents.fence_dir = Some(fence_dir.clone());
        std::fs::write(file, config.to_toml())?;
    }
    for file in files {
        let name = file
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let child = spawn_daemon(&file)?;
        std::fs::write(demo.dir.join(format!("{name}.pid")), child.id().to_string())?;
        demo.children.push((name, child));
    }
    Ok(demo)
}

/// The demo's fence device: the demo nodes share this machine, so
/// "powering off" one is killing its daemon (pid in `DIR/NODE.pid`) and
/// what its agents started (pid files in its agent temp dir), as the
/// `--check` power loss does. Without it a lost node's service would wait
/// for `tandem node confirm-down`.
fn install_fence_agent(dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let fence_dir = dir.join("fence");
    std::fs::create_dir_all(&fence_dir)?;
    let agent = fence_dir.join("fence_tandem_demo");
    std::fs::write(&agent, DEMO_FENCE_AGENT)?;
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755))?;
    Ok(fence_dir)
}

const DEMO_FENCE_AGENT: &str = r#"#!/bin/sh
action=; plug=; state_dir=
while IFS='=' read -r k v; do
    case "$k" in
        action) action=$v ;;
        plug|port) plug=$v ;;
        nodename) [ -n "$plug" ] || plug=$v ;;
        state_dir) state_dir=$v ;;
    esac
done
case "$action" in
    metadata) echo '<?xml version="1.0"?><resource-agent name="fence_tandem_demo"><parameters><parameter name="state_dir"/></parameters><actions><action name="reboot"/><action name="off"/><action name="monitor"/><action name="list"/><action name="metadata"/></actions></resource-agent>' ;;
    monitor|status|on|validate-all) ;;
    list) printf 'node1
node2
node3
' ;;
    reboot|off)
        [ -f "$state_dir/$plug.pid" ] && kill -9 "$(cat "$state_dir/$plug.pid")" 2>/dev/null
        for f in "$state_dir/$plug-data/rsctmp/"*; do
            [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
        done
        exit 0 ;;
    *) exit 1 ;;
esac
"#;

fn free_port_base() -> Result<u16> {
    let seed = std::process::id() as u16;
    for k in 0..200u16 {
        let base = 20000 + (seed.wrapping_add(k * 37) % 20000);
        let ports = Ports::new(base);
        let free = (1..=3u8).all(|i| {
            ports
                .all(i)
                .into_iter()
                .all(|p| std::net::TcpListener::bind((node_ip(i), p)).is_ok())
        });
        if free {
            return Ok(base);
        }
    }
    bail!("no free loopback ports found for the demo")
}

/// Gives node `n` a load balancer on its own address: one pool follows
/// the cloned web service, one the fail-over service.
fn add_load_balancer(settings: &Path, n: u8, p: &Ports) -> Result<()> {
    let ip = node_ip(n);
    let lb = format!(
        r#"# The load balancer of demo node{n}; its pools follow where the
# services run (see [traffic] in node{n}.toml).
trusted_proxies = ["127.0.0.0/8"]

[[listener]]
name = "web"
bind = "{ip}:{lb_web}"
mode = "http"
pool = "web"

[[listener]]
name = "site"
bind = "{ip}:{lb_site}"
mode = "http"
pool = "site"

"#,
        lb_web = p.lb_web,
        lb_site = p.lb_site,
    ) + &["web", "site"]
        .map(|pool| {
            format!(
                r#"
[[pool]]
name = "{pool}"
algorithm = "round-robin"
slow_start_ms = 2000
# A planned move holds requests until the service's new node is in the
# pool instead of failing them.
hold_ms = 3000
[pool.health]
kind = "http"
path = "/ready"
interval_ms = 1000
fast_interval_ms = 500
timeout_ms = 500
fall = 2
rise = 1
"#
            )
        })
        .concat();
    let lb_path = settings.with_file_name(format!("node{n}-lb.toml"));
    std::fs::write(&lb_path, lb)?;
    let mut config = DaemonConfig::load(settings)?;
    config.traffic = TrafficSettings {
        config: Some(lb_path),
        follow: vec![
            Follow {
                pool: "web".into(),
                resource: "web-clone".into(),
                port: p.web,
                weight: 1,
            },
            Follow {
                pool: "site".into(),
                resource: "site".into(),
                port: p.site,
                weight: 1,
            },
        ],
    };
    std::fs::write(settings, config.to_toml())?;
    Ok(())
}

fn spawn_daemon(config: &Path) -> Result<Child> {
    let log = std::fs::File::create(config.with_extension("log"))?;
    Command::new(std::env::current_exe()?)
        .args(["daemon", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("cannot start a daemon process")
}

fn wait_for(conn: &Conn, timeout: Duration, ok: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = call(conn, Method::GET, "/status", None);
        if let Ok(doc) = &last {
            if ok(doc) {
                return Ok(doc.clone());
            }
        }
        if Instant::now() > deadline {
            bail!("cluster did not reach the expected state within {timeout:?}; last answer: {last:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until a load balancer's `port` (on a node other than `not_on`)
/// answers from a node other than `not_on`; returns that node and the
/// answer.
fn wait_for_answer(
    demo: &Demo,
    port: u16,
    timeout: Duration,
    not_on: Option<&str>,
) -> Result<(String, String)> {
    let deadline = Instant::now() + timeout;
    let via = lb_address(demo, not_on);
    loop {
        if let Ok(body) = http_get(via, port) {
            let node = body
                .split_whitespace()
                .find(|w| w.starts_with("node"))
                .unwrap_or("");
            let node = node
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_string();
            if !node.is_empty() && Some(node.as_str()) != not_on {
                return Ok((node, body));
            }
        }
        if Instant::now() > deadline {
            let doc = call(&demo.conn, Method::GET, "/status", None).ok();
            bail!(
                "the demo service did not answer from a node other than {not_on:?} within {timeout:?}; cluster status: {}",
                doc.map_or("unavailable".into(), |d| d["running_text"].to_string())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The address of a load balancer on a node other than `not_on`.
fn lb_address(demo: &Demo, not_on: Option<&str>) -> std::net::Ipv4Addr {
    let n = demo
        .children
        .iter()
        .map(|(name, _)| name.as_str())
        .find(|name| Some(*name) != not_on)
        .and_then(|name| name.trim_start_matches("node").parse().ok())
        .unwrap_or(1);
    node_ip(n)
}

/// One `GET /` to a demo load balancer.
fn http_get(ip: std::net::Ipv4Addr, port: u16) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from((ip, port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    if !(body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200")) {
        return Err(std::io::Error::other(format!("answer: {body}")));
    }
    Ok(body
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string())
}

/// Sends rounds of `count` requests to the web pool through a load
/// balancer not on `not_on` until one round succeeds in full from every
/// node expected (all 3, or all but `not_on`); answers the nodes of the
/// last full round. Right after a start or a loss the pool needs a moment.
fn spread(
    demo: &Demo,
    not_on: Option<&str>,
    count: usize,
) -> Result<std::collections::BTreeSet<String>> {
    let via = lb_address(demo, not_on);
    let expected = if not_on.is_some() { 2 } else { 3 };
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = Err(anyhow::anyhow!("no round finished"));
    while Instant::now() < deadline {
        let round: Result<std::collections::BTreeSet<String>> = (0..count)
            .map(|_| {
                let body = http_get(via, demo.ports.lb_web)
                    .with_context(|| format!("web request through {via}:{}", demo.ports.lb_web))?;
                let node = body
                    .split_whitespace()
                    .find(|w| w.starts_with("node"))
                    .unwrap_or("");
                Ok(node
                    .trim_matches(|c: char| !c.is_alphanumeric())
                    .to_string())
            })
            .collect();
        if round.as_ref().is_ok_and(|nodes| nodes.len() == expected) {
            return round;
        }
        last = round;
        std::thread::sleep(Duration::from_millis(200));
    }
    last
}

/// Drains a node that does not run the fail-over service while a client
/// keeps requesting the web service: no request may fail, the node ends in
/// standby and out of the pool; undrained, it serves again.
fn drain_under_load(demo: &Demo, serving: &str) -> Result<()> {
    let node = other_node(demo, serving)?;
    let load = Load::start(lb_address(demo, Some(&node)), demo.ports.lb_web);
    std::thread::sleep(Duration::from_millis(300));
    super::drain::drain(&demo.conn, &node, Duration::from_secs(20))?;
    // Keep the load on while the node goes to standby.
    std::thread::sleep(Duration::from_millis(1500));
    let (ok, failed) = load.finish()?;
    none_failed(demo, ok, &failed, &format!("draining {node}"))?;
    let rest = spread(demo, Some(&node), 6)?;
    if rest.contains(&node) {
        bail!("the drained {node} still serves: {rest:?}");
    }
    println!("ok: drained {node} under load ({ok} requests, 0 failed); standby, out of the pool");
    super::drain::undrain(&demo.conn, &node)?;
    let back = spread(demo, None, 6)?;
    if !back.contains(&node) {
        bail!("the undrained {node} does not serve again: {back:?}");
    }
    println!("ok: undrained {node}: the web service is spread over {back:?} again");
    Ok(())
}

/// A client that requests `GET /` through one load balancer, one request
/// after another, until finished.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    client: std::thread::JoinHandle<(u64, Vec<String>)>,
}

impl Load {
    fn start(via: std::net::Ipv4Addr, port: u16) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u64, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match http_get(via, port) {
                        Ok(_) => ok += 1,
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                (ok, failed)
            })
        };
        Load { stop, client }
    }

    /// Stops the client: how many requests succeeded, and each failure.
    fn finish(self) -> Result<(u64, Vec<String>)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.client
            .join()
            .map_err(|_| anyhow::anyhow!("the load thread panicked"))
    }
}

/// The first demo node other than `node`.
fn other_node(demo: &Demo, node: &str) -> Result<String> {
    demo.children
        .iter()
        .map(|(n, _)| n.clone())
        .find(|n| n != node)
        .context("the demo has no other node")
}

/// Moves the fail-over service off `serving` while a client keeps
/// requesting it: the load balancers hold requests while it moves, so no
/// request may fail. Answers where it runs now.
fn move_under_load(demo: &Demo, serving: &str) -> Result<String> {
    let target = other_node(demo, serving)?;
    let load = Load::start(lb_address(demo, Some(serving)), demo.ports.lb_site);
    std::thread::sleep(Duration::from_millis(300));
    let moved = Instant::now();
    let result = super::resource::move_to(&demo.conn, "site", &target, None, false, 20);
    let took = moved.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let (ok, failed) = load.finish()?;
    result?;
    none_failed(demo, ok, &failed, &format!("moving site to {target}"))?;
    let (now, _) = wait_for_answer(
        demo,
        demo.ports.lb_site,
        Duration::from_secs(5),
        Some(serving),
    )?;
    if now != target {
        bail!("site should answer from {target} after the move, answers from {now}");
    }
    println!(
        "ok: moved the fail-over service {serving} -> {target} under load in {} ms ({ok} requests, 0 failed)",
        took.as_millis()
    );
    Ok(target)
}

/// An error, with what failed and what the load balancers logged, unless
/// no request failed while `doing`.
fn none_failed(demo: &Demo, ok: u64, failed: &[String], doing: &str) -> Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    bail!(
        "{} of {} requests failed while {doing}: {}\nwhat the load balancers logged:\n{}",
        failed.len(),
        ok + failed.len() as u64,
        tally(failed),
        traffic_log(demo)
    )
}

/// Each distinct failure (its first line) with how often it came.
fn tally(failed: &[String]) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for f in failed {
        // The status line and the body's last line say what failed.
        let status = f.lines().next().unwrap_or("");
        let body = f.trim_end().lines().last().unwrap_or("");
        *counts.entry(format!("{status} / {body}")).or_default() += 1;
    }
    counts
        .iter()
        .map(|(what, n)| format!("{n}× {what:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The traffic layer's lines of every node's log (health, ejection, pool
/// changes): what a failed check needs to be understood.
fn traffic_log(demo: &Demo) -> String {
    const WORDS: [&str; 5] = [
        "backend down",
        "backend up",
        "outlier",
        "pool follows",
        "drain",
    ];
    let mut out = String::new();
    for (name, _) in &demo.children {
        let log = std::fs::read_to_string(demo.dir.join(format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| WORDS.iter().any(|w| l.contains(w)))
            .collect();
        for line in &lines[lines.len().saturating_sub(15)..] {
            out += &format!("  {name}: {line}\n");
        }
    }
    out
}

/// Kills what a demo node's agents started (their pid files under the
/// node's agent temp dir): with the daemon, this is the node's power loss.
fn kill_services(dir: &Path, node: &str) {
    let rsctmp = dir.join(format!("{node}-data")).join("rsctmp");
    let Ok(entries) = std::fs::read_dir(rsctmp) else {
        return;
    };
    for entry in entries.flatten() {
        let pid = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

fn check(mut demo: Demo) -> Result<()> {
    let before = wait_for(&demo.conn, Duration::from_secs(10), |d| {
        d["config_version"].as_u64() > Some(0) && d["cluster"]["quorum"] == true
    })?;
    let dc = before["cluster"]["dc"]
        .as_str()
        .context("no DC")?
        .to_string();
    println!(
        "ok: cluster formed, quorum yes, DC {dc}, config version {}",
        before["config_version"]
    );
    let (serving, _) = wait_for_answer(&demo, demo.ports.lb_site, Duration::from_secs(20), None)?;
    println!("ok: the fail-over service answers through the load balancer from {serving}");
    let everywhere = spread(&demo, None, 6)?;
    println!("ok: the web service is spread over {everywhere:?}");
    if everywhere.len() < 3 {
        bail!("the load-balanced web service should answer from all 3 nodes, answered from {everywhere:?}");
    }
    drain_under_load(&demo, &serving)?;
    let serving = move_under_load(&demo, &serving)?;
    // The move added and removed its constraint: the version to keep.
    let before = wait_for(&demo.conn, Duration::from_secs(10), |d| {
        d["cluster"]["quorum"] == true
    })?;
    let idx = demo
        .children
        .iter()
        .position(|(n, _)| *n == serving)
        .context("the serving node is not one of the demo daemons")?;
    let (_, mut child) = demo.children.remove(idx);
    let killed = Instant::now();
    child.kill()?;
    kill_services(&demo.dir, &serving);
    child.wait()?;
    println!("killed {serving} (daemon and service, like a power loss)");
    let (now_serving, _) = wait_for_answer(
        &demo,
        demo.ports.lb_site,
        Duration::from_secs(15),
        Some(&serving),
    )?;
    println!(
        "ok: the fail-over service answers again from {now_serving} after {} ms",
        killed.elapsed().as_millis()
    );
    let survivors = spread(&demo, Some(&serving), 6)?;
    if survivors.contains(&serving) || survivors.len() != 2 {
        bail!(
            "the web service should answer from the 2 survivors only, answered from {survivors:?}"
        );
    }
    println!("ok: the web service is spread over {survivors:?}, without the lost node");
    let after = wait_for(&demo.conn, Duration::from_secs(10), |d| {
        d["cluster"]["dc"].is_string()
            && d["cluster"]["dc"] != serving.as_str()
            && d["cluster"]["quorum"] == true
    })?;
    println!(
        "ok: DC {} with quorum (was {dc})",
        after["cluster"]["dc"].as_str().unwrap_or("?"),
    );
    if after["config_version"] != before["config_version"] {
        bail!(
            "config version changed across fail-over: {} → {}",
            before["config_version"],
            after["config_version"]
        );
    }
    println!(
        "ok: configuration intact (version {})",
        after["config_version"]
    );
    println!("demo check passed");
    Ok(())
}
