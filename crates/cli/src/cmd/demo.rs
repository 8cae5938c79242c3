//! `tandem demo`: a real 3-node cluster on loopback (three daemon processes
//! of this binary, certificates and data under a temp dir), loaded with the
//! web-cluster example. `--check` runs it non-interactively: the cluster
//! forms with quorum, the DC is killed with SIGKILL, another DC takes over
//! with quorum and the configuration intact; exit 0.

use super::cluster::{setup, SetupArgs};
use super::status::{call, Conn};
use anyhow::{bail, Context, Result};
use hyper::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEMO_CONFIG: &str = include_str!("../../../../examples/web-cluster.toml");

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
}

impl Drop for Demo {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The data dirs and certificates were only for this demo.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn run(args: Args) -> Result<()> {
    let demo = start()?;
    println!("3-node cluster formed under {}", demo.dir.display());
    let doc = wait_for(&demo.conn, Duration::from_secs(15), |d| {
        d["cluster"]["quorum"] == true && d["cluster"]["dc"].is_string()
    })?;
    let put = json!({ "expected_version": doc["config_version"], "text": DEMO_CONFIG });
    call(&demo.conn, Method::PUT, "/config", Some(put))?;
    if args.check {
        return check(demo);
    }
    // The node that answers may apply the committed change a moment later.
    wait_for(&demo.conn, Duration::from_secs(10), |d| {
        d["config_version"].as_u64() > Some(0)
    })?;
    super::status::status(&demo.conn)?;
    let exe = std::env::current_exe()?;
    let admin = demo.conn.admin.display();
    println!("\nTry, in another terminal:\n  export TANDEM_ADMIN={admin}\n  {0} status\n  {0} node standby node1\n  {0} quorum status\n  kill -9 <pid of a daemon> and run status again (pids: {1})\nCtrl-C stops the cluster.",
        exe.display(),
        demo.children.iter().map(|(n, c)| format!("{n}={}", c.id())).collect::<Vec<_>>().join(" "));
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
            .flat_map(|i| [base + i, base + i + 10])
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
    let idx = demo
        .children
        .iter()
        .position(|(n, _)| *n == dc)
        .context("DC is not one of the demo daemons")?;
    let (_, mut child) = demo.children.remove(idx);
    let killed = Instant::now();
    child.kill()?;
    child.wait()?;
    println!("killed {dc} with SIGKILL");
    let after = wait_for(&demo.conn, Duration::from_secs(10), |d| {
        d["cluster"]["dc"].is_string()
            && d["cluster"]["dc"] != dc.as_str()
            && d["cluster"]["quorum"] == true
    })?;
    let took = killed.elapsed();
    println!(
        "ok: new DC {} after {} ms, quorum kept",
        after["cluster"]["dc"].as_str().unwrap_or("?"),
        took.as_millis()
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
