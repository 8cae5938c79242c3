//! A cluster of real `tandem daemon` / `tandem witness` processes on
//! loopback, for `tests/cluster_processes.rs` and `bench/failover-leader`.
//!
//! Main type: [`ProcessCluster`]: runs `tandem cluster setup` into a temp
//! dir, starts, kills (SIGKILL) and restarts nodes, reads one node's view
//! through the admin API ([`ProcessCluster::view`]) and runs the CLI
//! ([`ProcessCluster::tandem`]). Dropping it kills every child it started;
//! if the thread is panicking it prints each node's log first. Nodes share
//! 127.0.0.1, or with [`ProcessCluster::setup_apart`] node N has 127.0.0.N,
//! so a service that binds its node's address can be told apart per node
//! ([`serving`], [`Sampler`]).
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
    /// Its loopback address (127.0.0.1, or 127.0.0.N with `setup_apart`).
    pub host: String,
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
        let hosts = vec!["127.0.0.1".to_string(); names.len()];
        let ports = free_ports(&hosts)?;
        ProcessCluster::setup_on(tag, &names, &hosts, &ports, timing)
    }

    /// Like [`ProcessCluster::setup`] without a witness, but node N listens
    /// on 127.0.0.N: a service that binds its node's address (the default
    /// of `ocf:tandem:HttpService`) runs on a different address per node,
    /// so two active copies would both answer ([`serving`]).
    pub fn setup_apart(
        tag: &str,
        data_nodes: usize,
        timing: Option<&str>,
    ) -> Result<ProcessCluster, String> {
        assert!(data_nodes < 255, "one loopback address per node");
        let names: Vec<String> = (1..=data_nodes).map(|i| format!("node{i}")).collect();
        let hosts: Vec<String> = (1..=data_nodes).map(|i| format!("127.0.0.{i}")).collect();
        let ports = free_ports(&hosts)?;
        ProcessCluster::setup_on(tag, &names, &hosts, &ports, timing)
    }

    /// A cluster with the same node names and addresses as `self` but its
    /// own CA: its nodes hold certificates the real cluster must refuse.
    pub fn impostor(&self, tag: &str) -> Result<ProcessCluster, String> {
        let names: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        let hosts: Vec<String> = self.nodes.iter().map(|n| n.host.clone()).collect();
        let ports: Vec<u16> = self.nodes.iter().map(|n| n.port).collect();
        ProcessCluster::setup_on(tag, &names, &hosts, &ports, None)
    }

    /// `names` pair with `hosts` and `ports`; a node named `witness` is the
    /// witness.
    fn setup_on(
        tag: &str,
        names: &[String],
        hosts: &[String],
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
        for ((name, host), port) in names.iter().zip(hosts).zip(ports) {
            let spec = format!("{name}={host}:{port}");
            if name == "witness" {
                cmd.arg("--witness").arg(spec);
            } else {
                cmd.arg(spec);
            }
        }
        check(&cmd.output().map_err(|e| e.to_string())?, "cluster setup")?;
        let mut nodes = Vec::new();
        for ((name, host), port) in names.iter().zip(hosts).zip(ports) {
            let config = dir.join(format!("{name}.toml"));
            if let Some(timing) = timing {
                set_table(&config, "timing", timing)?;
            }
            nodes.push(node_proc(&dir, name, host, *port, name == "witness")?);
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
        Ok(free_ports(&["127.0.0.1".to_string()])?[0])
    }

    /// Takes a node added at run time (`tandem node add NAME ... --dir
    /// DIR` wrote `DIR/NAME.toml`) into the harness, not started.
    pub fn adopt(&mut self, name: &str, port: u16, witness: bool) -> Result<(), String> {
        let node = node_proc(&self.dir, name, "127.0.0.1", port, witness)?;
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

    /// Sends `signal` (`libc::SIGTERM`, `libc::SIGSTOP`, ...) to a running
    /// node's process.
    pub fn signal(&self, name: &str, signal: i32) {
        let pid = self
            .pid(name)
            .unwrap_or_else(|| panic!("{name} is not running"));
        // SAFETY: kill(2) on a child this harness started and has not reaped.
        let rc = unsafe { libc::kill(pid as i32, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// The CPU time (user + system, all threads, not its children) a
    /// running node's process has used, from `/proc/PID/stat`.
    pub fn cpu_time(&self, name: &str) -> Duration {
        let pid = self
            .pid(name)
            .unwrap_or_else(|| panic!("{name} is not running"));
        cpu_time(pid).unwrap_or_else(|e| panic!("{name}: {e}"))
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
            // A stale pid file may name a pid reused since, possibly by a
            // daemon of another cluster: never kill a daemon or witness.
            let Ok(pid) = pid.trim().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let is_node = cmdline
                .split(|b| *b == 0)
                .any(|arg| arg == b"daemon" || arg == b"witness");
            if pid > 1 && !is_node {
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

/// utime + stime of a process.
fn cpu_time(pid: u32) -> Result<Duration, String> {
    let stat = read(Path::new(&format!("/proc/{pid}/stat")))?;
    // Fields after the parenthesised command: state is field 3, utime 14,
    // stime 15 (proc(5)).
    let rest = stat
        .rsplit_once(") ")
        .map(|(_, r)| r)
        .ok_or("no command in /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64, String> {
        fields
            .get(i - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("bad /proc/{pid}/stat: {stat}"))
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_millis((ticks(14)? + ticks(15)?) * 1000 / hz))
}

/// Whether a process exists and has not exited (a zombie has).
pub fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    match stat.rsplit_once(") ") {
        Some((_, rest)) => !rest.starts_with('Z') && !rest.starts_with('X'),
        None => false,
    }
}

/// The node an `ocf:tandem:HttpService` on `host:port` says serves it
/// (`GET /` answers "tandem demo service on NODE"), or `None` if nothing
/// answers there.
/// A port free on 127.0.0.1-3 for a test's service, below the ephemeral
/// range, so no outgoing connection of the daemons can hold it when the
/// service binds it.
pub fn service_port() -> u16 {
    let start = 20_000 + (std::process::id() % 5_000) as u16;
    (start..32_000)
        .find(|p| {
            (1..=3).all(|n| std::net::TcpListener::bind((format!("127.0.0.{n}"), *p)).is_ok())
        })
        .expect("a free service port")
}

/// Where `rsc` runs now, from `tandem status --json`'s `running`.
pub fn running_on(doc: &serde_json::Value, rsc: &str) -> Vec<String> {
    doc["running"]["resources"][rsc]["Started"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn serving(host: &str, port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = format!("{host}:{port}").parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    if !answer.contains(" 200 ") {
        return None;
    }
    let node = answer.rsplit("tandem demo service on ").next()?.trim();
    Some(if node.is_empty() { "?" } else { node }.to_string())
}

/// One observation of a [`Sampler`].
#[derive(Clone, Debug)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// The nodes whose address answered (as the service named itself).
    pub serving: Vec<String>,
    /// Which of the watched processes were alive.
    pub alive: Vec<bool>,
}

/// Watches a service on every node's address from a thread, every
/// `every`, until [`Sampler::finish`]: an observation of effects (who
/// answers), independent of what the cluster reports about itself.
pub struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Samples `port` on each of `hosts`, and whether each of `pids` lives.
    pub fn start(hosts: Vec<String>, port: u16, pids: Vec<u32>, every: Duration) -> Sampler {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !halt.load(Ordering::Relaxed) {
                let at = Instant::now();
                let alive = pids.iter().map(|p| alive(*p)).collect();
                let serving = hosts.iter().filter_map(|h| serving(h, port)).collect();
                samples.push(Sample { at, serving, alive });
                std::thread::sleep(every.saturating_sub(at.elapsed()));
            }
            samples
        });
        Sampler { stop, thread }
    }

    /// Stops sampling; the samples in order.
    pub fn finish(self) -> Vec<Sample> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("sampler thread")
    }
}

/// How long, as sampled, the service answered on two or more nodes at
/// once: each such sample counts until the next one (the last one, if
/// double, counts as at least a millisecond so it is never 0).
pub fn double_active(samples: &[Sample]) -> Duration {
    let mut total = Duration::ZERO;
    for (i, s) in samples.iter().enumerate() {
        if s.serving.len() > 1 {
            let next = samples.get(i + 1).map_or(s.at, |n| n.at);
            total += (next - s.at).max(Duration::from_millis(1));
        }
    }
    total
}

/// A node of the harness, with an `admin-NAME.toml` whose only endpoint
/// is its API.
fn node_proc(
    dir: &Path,
    name: &str,
    host: &str,
    port: u16,
    witness: bool,
) -> Result<NodeProc, String> {
    let api = format!("{host}:{}", port + API_PORT_OFFSET);
    Ok(NodeProc {
        name: name.to_string(),
        witness,
        host: host.to_string(),
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

/// One Raft port per host whose `+API_PORT_OFFSET` twin is free there
/// too. The OS picks them (port 0), so parallel tests rarely collide; all
/// listeners are held until every port is chosen so no port is handed out
/// twice here.
fn free_ports(hosts: &[String]) -> Result<Vec<u16>, String> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for host in hosts {
        let mut found = None;
        for _ in 0..200 {
            let l = TcpListener::bind((host.as_str(), 0)).map_err(|e| format!("{host}: {e}"))?;
            let port = l.local_addr().map_err(|e| e.to_string())?.port();
            held.push(l);
            let Some(api) = port.checked_add(API_PORT_OFFSET) else {
                continue;
            };
            if ports.contains(&port) {
                continue;
            }
            if let Ok(a) = TcpListener::bind((host.as_str(), api)) {
                held.push(a);
                found = Some(port);
                break;
            }
        }
        ports.push(found.ok_or_else(|| format!("no free port pairs on {host}"))?);
    }
    Ok(ports)
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
