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
    /// The demo service's port.
    site_port: u16,
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
    let text = DEMO_CONFIG.replace("@SITE_PORT@", &demo.site_port.to_string());
    let put = json!({ "expected_version": doc["config_version"], "text": text });
    call(&demo.conn, Method::PUT, "/config", Some(put))?;
    if args.check {
        return check(demo);
    }
    // The node that answers may apply the committed change a moment later.
    wait_for(&demo.conn, Duration::from_secs(10), |d| {
        d["config_version"].as_u64() > Some(0)
    })?;
    let (node, _) = wait_for_site(&demo, Duration::from_secs(20), None)?;
    super::status::status(&demo.conn)?;
    let exe = std::env::current_exe()?;
    let admin = demo.conn.admin.display();
    println!("\nThe web service answers at http://127.0.0.1:{port}/ (served by {node}).\nTry, in another terminal:\n  export TANDEM_ADMIN={admin}\n  {0} status\n  curl http://127.0.0.1:{port}/\n  {0} node standby {node}      (the service moves)\n  {0} quorum status\n  kill -9 <pid of a daemon> and run status again (pids: {1})\nCtrl-C stops the cluster.",
        exe.display(),
        demo.children.iter().map(|(n, c)| format!("{n}={}", c.id())).collect::<Vec<_>>().join(" "),
        port = demo.site_port);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(tokio::signal::ctrl_c())?;
    println!("stopping the demo cluster");
    Ok(())
}

fn start() -> Result<Demo> {
    let dir = std::env::temp_dir().join(format!("tandem-demo-{}", std::process::id()));
    let base = free_port_base()?;
    let nodes = (1..=3)
        .map(|i| format!("node{i}=127.0.0.1:{}", base + i))
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
        site_port: base + 20,
    };
    for file in files {
        let name = file
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        demo.children.push((name, spawn_daemon(&file)?));
    }
    Ok(demo)
}

fn free_port_base() -> Result<u16> {
    let seed = std::process::id() as u16;
    for k in 0..200u16 {
        let base = 20000 + (seed.wrapping_add(k * 37) % 20000);
        let free = (1..=3)
            .flat_map(|i| [base + i, base + i + 10, base + 20])
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return Ok(base);
        }
    }
    bail!("no free loopback ports found for the demo")
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

/// Waits until the service runs on a node other than `not_on` and answers
/// over HTTP; returns the node and the answer.
fn wait_for_site(demo: &Demo, timeout: Duration, not_on: Option<&str>) -> Result<(String, String)> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(body) = http_get(demo.site_port) {
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

/// One `GET /` to the demo service.
fn http_get(port: u16) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300))?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
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
    let (serving, _) = wait_for_site(&demo, Duration::from_secs(20), None)?;
    println!(
        "ok: the web service answers on port {} from {serving}",
        demo.site_port
    );
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
    let (now_serving, _) = wait_for_site(&demo, Duration::from_secs(15), Some(&serving))?;
    println!(
        "ok: the service answers again from {now_serving} after {} ms",
        killed.elapsed().as_millis()
    );
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
