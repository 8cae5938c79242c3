//! A cluster of real `tandem daemon` / `tandem witness` processes on
//! loopback, for `tests/cluster_processes.rs` and `bench/failover-leader`.
//!
//! Main type: [`ProcessCluster`]: runs `tandem cluster setup` into a temp
//! dir, starts, kills (SIGKILL) and restarts nodes, reads one node's view
//! through the admin API ([`ProcessCluster::view`]) and runs the CLI
//! ([`ProcessCluster::tandem`]). Dropping it kills every child it started;
//! if the thread is panicking it prints each node's log first.
//!
//! The `tandem` binary is found by [`tandem_bin`]: `TANDEM_BIN` if set, else
//! `TARGET/<profile>/tandem` beside this test binary. Cargo builds a
//! package's binary only for that package's own integration tests, so
//! `scripts/test` runs `cargo build -p tandem-cli` first (same profile);
//! a missing binary is a clear error naming that command, never a skip.
//!
//! Must not: reach into a node's process (everything goes through the CLI,
//! the admin API, signals and files, as an operator would).

use serde_json::Value;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tandem_daemon::ApiClient;

/// The port offset from a node's Raft port to its admin API port.
const API_PORT_OFFSET: u16 = 1000;

/// The `tandem` binary under test.
pub fn tandem_bin() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("TANDEM_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // TARGET/<profile>/deps/<test binary> → TARGET/<profile>/tandem
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("tandem"))
        .ok_or("cannot locate the target directory")?;
    if !bin.exists() {
        return Err(format!(
            "{} not found: run `cargo build -p tandem-cli` (same profile) first, as scripts/test does, or set TANDEM_BIN",
            bin.display()
        ));
    }
    Ok(bin)
}

/// One node of the cluster as set up.
pub struct NodeProc {
    pub name: String,
    pub witness: bool,
    /// Its Raft transport port (the admin API is `API_PORT_OFFSET` above).
    pub port: u16,
    /// Its settings file (`DIR/NAME.toml`).
    pub config: PathBuf,
    /// An `admin.toml` whose only endpoint is this node, so a view read
    /// through it is this node's own view.
    pub admin: PathBuf,
    child: Option<Child>,
}

/// A set-up cluster whose nodes are child processes.
pub struct ProcessCluster {
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub nodes: Vec<NodeProc>,
    rt: tokio::runtime::Runtime,
}

impl ProcessCluster {
    /// `tandem cluster setup` for `data_nodes` nodes (`node1`..) and, if
    /// `witness`, a witness named `witness`, on free loopback ports.
    /// `timing` (the body of a TOML `[timing]` table) replaces every
    /// node's default timing.
    pub fn setup(
        tag: &str,
        data_nodes: usize,
        witness: bool,
        timing: Option<&str>,
    ) -> Result<ProcessCluster, String> {
        let mut names: Vec<String> = (1..=data_nodes).map(|i| format!("node{i}")).collect();
        if witness {
            names.push("witness".into());
        }
        let ports = free_ports(names.len())?;
        ProcessCluster::setup_on(tag, &names, &ports, timing)
    }

    /// A cluster with the same node names and addresses as `self` but its
    /// own CA: its nodes hold certificates the real cluster must refuse.
    pub fn impostor(&self, tag: &str) -> Result<ProcessCluster, String> {
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        let ports: Vec<u16> = self.nodes.iter().map(|n| n.port).collect();
        ProcessCluster::setup_on(tag, &names, &ports, None)
    }

    /// `names` pair with `ports`; a node named `witness` is the witness.
    fn setup_on(
        tag: &str,
        names: &[String],
        ports: &[u16],
        timing: Option<&str>,
    ) -> Result<ProcessCluster, String> {
        let bin = tandem_bin()?;
        let dir = std::env::temp_dir().join(format!("tandem-proc-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut cmd = Command::new(&bin);
        cmd.args(["cluster", "setup", "--name", tag, "--api-port-offset"])
            .arg(API_PORT_OFFSET.to_string())
            .arg("--dir")
            .arg(&dir);
        for (name, port) in names.iter().zip(ports) {
            let spec = format!("{name}=127.0.0.1:{port}");
            if name == "witness" {
                cmd.arg("--witness").arg(spec);
            } else {
                cmd.arg(spec);
            }
        }
        check(&cmd.output().map_err(|e| e.to_string())?, "cluster setup")?;
        let mut nodes = Vec::new();
        for (name, port) in names.iter().zip(ports) {
            let config = dir.join(format!("{name}.toml"));
            if let Some(timing) = timing {
                set_table(&config, "timing", timing)?;
            }
            nodes.push(node_proc(&dir, name, *port, name == "witness")?);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(ProcessCluster {
            dir,
            bin,
            nodes,
            rt,
        })
    }

    /// A free Raft port (its API twin `API_PORT_OFFSET` above is free too)
    /// for a node to add with `tandem node add`.
    pub fn free_port(&self) -> Result<u16, String> {
        Ok(free_ports(1)?[0])
    }

    /// Takes a node added at run time (`tandem node add NAME ... --dir
    /// DIR` wrote `DIR/NAME.toml`) into the harness, not started.
    pub fn adopt(&mut self, name: &str, port: u16, witness: bool) -> Result<(), String> {
        let node = node_proc(&self.dir, name, port, witness)?;
        self.nodes.push(node);
        Ok(())
    }

    fn node(&self, name: &str) -> &NodeProc {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name} in this test cluster"))
    }

    fn node_mut(&mut self, name: &str) -> &mut NodeProc {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name} in this test cluster"))
    }

    /// The log file a node's stderr goes to (appended across restarts).
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    /// Polls the logs of `names` until one has a line for which `ok`
    /// holds; returns that line.
    pub fn wait_log(
        &self,
        names: &[&str],
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = names
                .iter()
                .find_map(|n| self.log(n).lines().find(|l| ok(l)).map(str::to_string));
            if let Some(line) = found {
                return Ok(line);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no such line in the logs of {names:?} within {timeout:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts (or restarts) a node's process with `tandem daemon|witness
    /// --config FILE` plus `extra` arguments.
    pub fn start(&mut self, name: &str) {
        self.start_with(name, &[]);
    }

    pub fn start_with(&mut self, name: &str, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(name))
            .expect("log file");
        let bin = self.bin.clone();
        let node = self.node_mut(name);
        assert!(node.child.is_none(), "{name} is already running");
        let sub = if node.witness { "witness" } else { "daemon" };
        let child = Command::new(bin)
            .arg(sub)
            .arg("--config")
            .arg(&node.config)
            .args(extra)
            .env("TANDEM_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn tandem");
        node.child = Some(child);
    }

    pub fn start_all(&mut self) {
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        for name in names {
            self.start(&name);
        }
    }

    /// The process id of a running node.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.node(name).child.as_ref().map(|c| c.id())
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self, name: &str) {
        if let Some(mut child) = self.node_mut(name).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits up to `timeout` for a node's process to exit on its own.
    pub fn wait_exit(&mut self, name: &str, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.node_mut(name).child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.node_mut(name).child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET path` on one node's admin API (`/quorum`, `/status`, `/config`).
    pub fn get(&self, name: &str, path: &str) -> Result<Value, String> {
        let client = ApiClient::from_file(&self.node(name).admin).map_err(|e| e.to_string())?;
        self.rt
            .block_on(client.call(hyper::Method::GET, path, None))
            .map_err(|e| e.to_string())
    }

    /// One node's membership view.
    pub fn view(&self, name: &str) -> Result<Value, String> {
        self.get(name, "/quorum")
    }

    /// Polls `name`'s view every `poll` until `ok` holds; the last answer
    /// is in the error.
    pub fn wait_view(
        &self,
        name: &str,
        timeout: Duration,
        poll: Duration,
        ok: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        self.wait_get(name, "/quorum", timeout, poll, ok)
    }

    /// Polls `GET path` on `name` every `poll` until `ok` holds.
    pub fn wait_get(
        &self,
        name: &str,
        path: &str,
        timeout: Duration,
        poll: Duration,
        ok: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.get(name, path);
            if let Ok(v) = &last {
                if ok(v) {
                    return Ok(v.clone());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{name} {path}: condition not reached within {timeout:?}; last answer: {last:?}"
                ));
            }
            std::thread::sleep(poll);
        }
    }

    /// Runs the CLI with `--admin DIR/admin.toml` (all endpoints).
    pub fn tandem(&self, args: &[&str]) -> Output {
        let admin = self.dir.join("admin.toml");
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        all.extend([std::ffi::OsStr::new("--admin"), admin.as_os_str()]);
        self.run(&all)
    }

    /// Runs the CLI with exactly these arguments.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .output()
            .expect("run tandem")
    }

    /// The names of the nodes whose processes run.
    pub fn running(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.name.clone())
            .collect()
    }
}

impl ProcessCluster {
    /// Kills the services a node's agents started (their pid files in the
    /// node's agent temp dir), as a power loss would.
    pub fn kill_services(&self, name: &str) {
        let rsctmp = self.dir.join(format!("{name}-data")).join("rsctmp");
        for entry in std::fs::read_dir(rsctmp).into_iter().flatten().flatten() {
            let pid = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        for node in &self.nodes {
            self.kill_services(&node.name);
        }
        if std::thread::panicking() {
            for node in &self.nodes {
                print_log_tail(&node.name, &self.log_path(&node.name), 40);
            }
            eprintln!("(kept {} for inspection)", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A node of the harness, with an `admin-NAME.toml` whose only endpoint
/// is its API.
fn node_proc(dir: &Path, name: &str, port: u16, witness: bool) -> Result<NodeProc, String> {
    let api = format!("127.0.0.1:{}", port + API_PORT_OFFSET);
    Ok(NodeProc {
        name: name.to_string(),
        witness,
        port,
        config: dir.join(format!("{name}.toml")),
        admin: write_own_admin(dir, name, &api)?,
        child: None,
    })
}

/// A view's field helpers.
pub fn has_quorum(v: &Value) -> bool {
    v["quorum"] == true
}

pub fn dc(v: &Value) -> Option<&str> {
    v["dc"].as_str()
}

/// `n` Raft ports whose `+API_PORT_OFFSET` twins are free too. The OS picks
/// them (port 0), so parallel tests rarely collide; all listeners are held
/// until every port is chosen so no port is handed out twice here.
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let mut held = Vec::new();
    let mut ports = BTreeMap::new();
    for _ in 0..200 {
        if ports.len() == n {
            break;
        }
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        held.push(l);
        let Some(api) = port.checked_add(API_PORT_OFFSET) else {
            continue;
        };
        if let Ok(a) = TcpListener::bind(("127.0.0.1", api)) {
            held.push(a);
            ports.insert(port, api);
        }
    }
    if ports.len() < n {
        return Err("no free loopback port pairs".into());
    }
    Ok(ports.into_keys().collect())
}

fn check(out: &Output, what: &str) -> Result<(), String> {
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    ))
}

pub(crate) fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Replaces the `[table]` of a node's settings file with `body` (TOML).
pub(crate) fn set_table(path: &Path, table: &str, body: &str) -> Result<(), String> {
    let mut doc: toml::Table = read(path)?.parse().map_err(|e| format!("{e}"))?;
    let value: toml::Table = body.parse().map_err(|e| format!("[{table}]: {e}"))?;
    doc.insert(table.into(), toml::Value::Table(value));
    let text = toml::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `DIR/admin-NAME.toml`: `DIR/admin.toml` with `api` as the only
/// endpoint, so what is read through it is that node's own view.
pub(crate) fn write_own_admin(dir: &Path, name: &str, api: &str) -> Result<PathBuf, String> {
    let mut own: toml::Table = read(&dir.join("admin.toml"))?
        .parse()
        .map_err(|e| format!("admin.toml: {e}"))?;
    own.insert("endpoints".into(), toml::Value::Array(vec![api.into()]));
    let path = dir.join(format!("admin-{name}.toml"));
    let text = toml::to_string_pretty(&own).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Prints the last `lines` lines of a node's log, for a failing test.
pub(crate) fn print_log_tail(name: &str, path: &Path, lines: usize) {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(lines).collect();
    eprintln!("--- {name} log (last {} lines) ---", tail.len());
    for line in tail.into_iter().rev() {
        eprintln!("{line}");
    }
}
