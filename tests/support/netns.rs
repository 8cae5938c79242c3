//! A lab of network namespaces for multi-host tests (`tests/netns_failover.rs`):
//! a "switch" namespace holding a bridge, and one namespace per node joined
//! to it by a veth pair, each node running a real `tandem daemon` with a
//! private `/run` (its own mount namespace) so agents' state files do not
//! collide.
//!
//! Main type: [`Lab`]. Cutting a node off is `ip link set nKsw down` on the
//! switch side of its veth, as in `../shared/failover-harness`; one-way
//! loss is an `ip rule ... blackhole` for a TCP port in the node's
//! namespace ([`Lab::block_tcp`]); a power cycle kills every process in
//! the namespace and restores `eth0` ([`Lab::reboot`]). Everything
//! the lab creates is removed by `Drop`, panics included: the daemons, every
//! process still inside a node namespace (`ip netns pids`), the namespaces
//! and the temp dir (kept, with the daemon logs printed, when a test fails).
//!
//! Must not: touch any namespace, address or process it did not create.
//! The root namespace gets no address, route or interface: the test talks
//! to the nodes from a thread that enters the switch namespace
//! ([`Lab::in_switch`]) or by running commands in a node namespace.

use crate::processes::{print_log_tail, set_table, write_own_admin};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Raft port of every node (each node has its own address, so one port).
pub const RAFT_PORT: u16 = 7000;
/// The admin API listens on the Raft port plus this.
const API_PORT_OFFSET: u16 = 1000;

/// Why the lab cannot run here: the test prints this and skips, loudly.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (network namespaces need CAP_SYS_ADMIN)".into());
    }
    let probe = format!("tandem-probe-{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &probe])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Some("`ip netns add` is unavailable (no iproute2 or no netns support)".into());
    }
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    None
}

/// One node of the lab.
pub struct LabNode {
    pub name: String,
    /// Its network namespace.
    pub ns: String,
    /// The switch-side end of its veth (down = node cut off).
    pub sw_if: String,
    pub ip: String,
    /// Its settings file.
    pub config: PathBuf,
    /// An admin file naming only this node's API.
    pub admin: PathBuf,
    child: Option<Child>,
    /// A `sleep` that lives in the node's namespace for the whole lab, so
    /// that a fence agent (which runs in another node's mount namespace,
    /// where `/run/netns` is hidden) can enter this one with `nsenter -t
    /// PID -n`; its pid is in `DIR/NAME.netpid`.
    anchor: Option<Child>,
}

/// Which TCP packets [`Lab::block_tcp`] drops in a node's namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Packets that arrive on `eth0` for the port: peers cannot reach it.
    Inbound,
    /// Packets this node sends to the port: it cannot reach its peers.
    Outbound,
}

/// An `ip monitor address` running in every node namespace, with µs
/// wall-clock stamps, to tell which node added or removed an address when.
pub struct AddrWatch {
    children: Vec<(String, Child, PathBuf)>,
}

/// One address change seen by [`AddrWatch`].
#[derive(Clone, Debug)]
pub struct AddrEvent {
    /// Seconds since midnight (from `ip -ts`: same clock on every node).
    pub t: f64,
    pub node: String,
    pub added: bool,
    pub line: String,
}

pub struct Lab {
    pub tag: String,
    pub dir: PathBuf,
    pub bin: PathBuf,
    /// First three octets of the lab's /24.
    pub net: String,
    pub switch_ns: String,
    pub nodes: Vec<LabNode>,
    /// Every namespace created so far (removed by `Drop`).
    created: Vec<String>,
}

impl Lab {
    /// Creates the switch and `n` node namespaces on `10.98.X.0/24` (X
    /// the first free lab number from the process id on) and runs
    /// `tandem cluster setup` for nodes `node1..`. `agents` is the body of
    /// a TOML `[agents]` table added to every node's settings.
    pub fn new(tag: &str, n: usize, agents: &str) -> Result<Lab, String> {
        let bin = crate::processes::tandem_bin()?;
        // A free name: never reuse (or delete) a namespace that exists,
        // it may belong to another run.
        let existing = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map_err(|e| e.to_string())?;
        let existing = String::from_utf8_lossy(&existing.stdout).into_owned();
        let taken = |id: u32| existing.contains(&format!("td{id}-"));
        let first = std::process::id() % 200;
        let id = (0..200)
            .map(|i| (first + i) % 200 + 20)
            .find(|id| !taken(*id))
            .ok_or("no free lab name (200 td*-* namespaces exist)")?;
        let short = format!("td{id}");
        let dir = std::env::temp_dir().join(format!("tandem-netns-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut lab = Lab {
            tag: tag.to_string(),
            dir,
            bin,
            net: format!("10.98.{id}"),
            switch_ns: format!("{short}-sw"),
            nodes: Vec::new(),
            created: Vec::new(),
        };
        lab.network(&short, n)?;
        lab.setup(agents)?;
        Ok(lab)
    }

    fn network(&mut self, short: &str, n: usize) -> Result<(), String> {
        let sw = self.switch_ns.clone();
        self.add_ns(&sw)?;
        ip(&["-n", &sw, "link", "set", "lo", "up"])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&[
            "-n",
            &sw,
            "addr",
            "add",
            &format!("{}.254/24", self.net),
            "dev",
            "br0",
        ])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for i in 1..=n {
            let ns = format!("{short}-n{i}");
            self.add_ns(&ns)?;
            let sw_if = format!("{short}n{i}sw");
            ip(&[
                "-n", &sw, "link", "add", &sw_if, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &sw, "link", "set", &sw_if, "master", "br0"])?;
            ip(&["-n", &sw, "link", "set", &sw_if, "up"])?;
            let addr = format!("{}.{i}", self.net);
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            let name = format!("node{i}");
            let anchor = Command::new("ip")
                .args(["netns", "exec", &ns, "sleep", "infinity"])
                .stdin(Stdio::null())
                .spawn()
                .map_err(|e| format!("anchor in {ns}: {e}"))?;
            std::fs::write(
                self.dir.join(format!("{name}.netpid")),
                anchor.id().to_string(),
            )
            .map_err(|e| e.to_string())?;
            self.nodes.push(LabNode {
                config: self.dir.join(format!("{name}.toml")),
                admin: self.dir.join(format!("admin-{name}.toml")),
                name,
                ns,
                sw_if,
                ip: addr,
                child: None,
                anchor: Some(anchor),
            });
        }
        Ok(())
    }

    fn add_ns(&mut self, ns: &str) -> Result<(), String> {
        ip(&["netns", "add", ns])?;
        self.created.push(ns.to_string());
        // No IPv6: router solicitations and DAD only add noise and delay.
        run_ok(Command::new("ip").args([
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]))
    }

    fn setup(&mut self, agents: &str) -> Result<(), String> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(["cluster", "setup", "--name", &self.tag, "--api-port-offset"])
            .arg(API_PORT_OFFSET.to_string())
            .arg("--dir")
            .arg(&self.dir);
        for n in &self.nodes {
            cmd.arg(format!("{}={}:{RAFT_PORT}", n.name, n.ip));
        }
        run_ok(&mut cmd)?;
        for n in &self.nodes {
            set_table(&n.config, "agents", agents)?;
            let api = format!("{}:{}", n.ip, RAFT_PORT + API_PORT_OFFSET);
            write_own_admin(&self.dir, &n.name, &api)?;
        }
        Ok(())
    }

    pub fn node(&self, name: &str) -> &LabNode {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name} in the lab"))
    }

    fn node_mut(&mut self, name: &str) -> &mut LabNode {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name} in the lab"))
    }

    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// The node's data dir (agents' state under `rsctmp/`).
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-data"))
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    /// Starts a node's daemon in its namespace with a fresh tmpfs on
    /// `/run` (private mount namespace). The child's pid is the daemon's:
    /// `ip netns exec`, `unshare` and `sh` each exec the next.
    pub fn start(&mut self, name: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(name))
            .expect("log file");
        let bin = self.bin.clone();
        let node = self.node_mut(name);
        assert!(node.child.is_none(), "{name} already runs");
        let child = Command::new("ip")
            .args(["netns", "exec", &node.ns, "unshare", "--mount", "--propagation", "private"])
            .args([
                "sh",
                "-c",
                "mount -t tmpfs -o mode=0755,size=16m tmpfs /run && mkdir -p /run/resource-agents && exec \"$0\" \"$@\"",
            ])
            .arg(&bin)
            .arg("daemon")
            .arg("--config")
            .arg(&node.config)
            .env("TANDEM_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn tandem daemon in its namespace");
        node.child = Some(child);
    }

    /// The host pid of a node's daemon.
    pub fn daemon_pid(&self, name: &str) -> Option<u32> {
        self.node(name).child.as_ref().map(Child::id)
    }

    /// Whether a node's daemon still runs (reaps it if it exited).
    pub fn daemon_running(&mut self, name: &str) -> bool {
        let node = self.node_mut(name);
        match node.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                node.child = None;
                false
            }
            None => false,
        }
    }

    /// Cuts a node off the network (its switch port goes down).
    pub fn cut(&self, name: &str) {
        let n = self.node(name);
        ip(&["-n", &self.switch_ns, "link", "set", &n.sw_if, "down"]).expect("cut");
    }

    pub fn heal(&self, name: &str) {
        let n = self.node(name);
        ip(&["-n", &self.switch_ns, "link", "set", &n.sw_if, "up"]).expect("heal");
    }

    /// Drops TCP packets to `port` in a node's namespace, one way (an
    /// `ip rule ... blackhole`, ahead of the local table, which moves from
    /// preference 0 to 100 for this). Undone by [`Lab::unblock`].
    pub fn block_tcp(&self, name: &str, port: u16, way: Direction) {
        let ns = &self.node(name).ns;
        let rules = Command::new("ip")
            .args(["-n", ns, "rule", "show", "pref", "0"])
            .output()
            .expect("ip rule");
        if String::from_utf8_lossy(&rules.stdout).contains("lookup local") {
            ip(&["-n", ns, "rule", "add", "pref", "100", "lookup", "local"]).expect("local rule");
            ip(&["-n", ns, "rule", "del", "pref", "0"]).expect("local rule moved");
        }
        let iif = match way {
            Direction::Inbound => "eth0",
            Direction::Outbound => "lo",
        };
        let port = port.to_string();
        ip(&[
            "-n",
            ns,
            "rule",
            "add",
            "pref",
            "10",
            "iif",
            iif,
            "ipproto",
            "tcp",
            "dport",
            &port,
            "blackhole",
        ])
        .expect("blackhole rule");
    }

    /// Removes every rule [`Lab::block_tcp`] added in a node's namespace.
    pub fn unblock(&self, name: &str) {
        let ns = &self.node(name).ns;
        while ip(&["-n", ns, "rule", "del", "pref", "10"]).is_ok() {}
    }

    /// Sends `signal` to a node's daemon (not to its agents' processes).
    pub fn signal_daemon(&self, name: &str, signal: i32) {
        let pid = self.daemon_pid(name).expect("daemon runs") as i32;
        // SAFETY: kill(2) of the daemon this lab started.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// Power-cycles a node: every process in its namespace dies (the
    /// daemon, agents, services; not the anchor), `eth0` comes back up
    /// with only the node's own address (a reboot loses a VIP), its switch
    /// port goes up, and its daemon starts again.
    pub fn reboot(&mut self, name: &str) {
        if let Some(mut child) = self.node_mut(name).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let n = self.node(name);
        let anchor = n.anchor.as_ref().map(Child::id);
        kill_all_in(&n.ns, anchor);
        let ns = n.ns.clone();
        let addr = format!("{}/24", n.ip);
        ip(&["-n", &ns, "addr", "flush", "dev", "eth0"]).expect("flush");
        ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"]).expect("node address");
        ip(&["-n", &ns, "link", "set", "eth0", "up"]).expect("eth0 up");
        self.heal(name);
        self.start(name);
    }

    /// The path of a node's network namespace (for `setns`).
    pub fn ns_path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.node(name).ns))
    }

    /// Runs `cmd` inside a node's network namespace.
    pub fn exec_in(&self, name: &str, cmd: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.node(name).ns])
            .args(cmd)
            .output()
            .expect("ip netns exec")
    }

    /// The IPv4 addresses on a node's `eth0`.
    pub fn addresses(&self, name: &str) -> Vec<String> {
        let out = Command::new("ip")
            .args([
                "-n",
                &self.node(name).ns,
                "-o",
                "-4",
                "addr",
                "show",
                "dev",
                "eth0",
            ])
            .output()
            .expect("ip addr");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3))
            .filter_map(|a| a.split('/').next())
            .map(str::to_string)
            .collect()
    }

    /// Runs the CLI inside `via`'s namespace against `via`'s own API
    /// (reachable even while `via` is cut off).
    pub fn tandem(&self, via: &str, args: &[&str]) -> Output {
        let node = self.node(via);
        Command::new("ip")
            .args(["netns", "exec", &node.ns])
            .arg(&self.bin)
            .args(args)
            .arg("--admin")
            .arg(&node.admin)
            .output()
            .expect("run tandem")
    }

    /// `tandem status --json` as `via` sees it.
    pub fn status(&self, via: &str) -> Result<Value, String> {
        let out = self.tandem(via, &["status", "--json"]);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    /// Polls `via`'s status until `ok` holds; the last answer is in the error.
    pub fn wait_status(
        &self,
        via: &str,
        timeout: Duration,
        ok: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.status(via);
            if let Ok(v) = &last {
                if ok(v) {
                    return Ok(v.clone());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{via}: status condition not reached within {timeout:?}; last: {last:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `f` on a thread that has entered the switch namespace (the
    /// client side of the bridge); the rest of the test stays where it is.
    pub fn in_switch<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.switch_ns);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open the switch namespace");
            use std::os::fd::AsRawFd;
            // SAFETY: setns(2) on a namespace fd we opened; it moves only
            // this short-lived thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns into {path}: {}",
                std::io::Error::last_os_error()
            );
            f()
        })
        .join()
        .expect("switch thread")
    }

    /// `GET http://ADDR:PORT/` from the switch namespace: the body, or why not.
    pub fn http_get(&self, addr: &str, port: u16) -> Result<String, String> {
        let target = format!("{addr}:{port}");
        self.in_switch(move || http_get(&target))
    }

    /// Polls `GET /` on `addr` from the switch every 50 ms until the body
    /// satisfies `ok`; returns the body and when it came.
    pub fn wait_http(
        &self,
        addr: &str,
        port: u16,
        timeout: Duration,
        ok: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<(String, Instant), String> {
        let target = format!("{addr}:{port}");
        self.in_switch(move || {
            let deadline = Instant::now() + timeout;
            let mut last = Err("no request made".to_string());
            while Instant::now() < deadline {
                last = http_get(&target);
                if let Ok(body) = &last {
                    if ok(body) {
                        return Ok((body.clone(), Instant::now()));
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(format!(
                "http://{target}/ not as expected within {timeout:?}; last: {last:?}"
            ))
        })
    }

    /// Starts watching address changes in every node namespace.
    pub fn watch_addresses(&self) -> AddrWatch {
        let mut children = Vec::new();
        for n in &self.nodes {
            let out = self.dir.join(format!("addr-{}.log", n.name));
            let file = std::fs::File::create(&out).expect("addr log");
            let child = Command::new("ip")
                .args(["-n", &n.ns, "-ts", "-o", "monitor", "address"])
                .stdout(file)
                .stderr(Stdio::null())
                .spawn()
                .expect("ip monitor");
            children.push((n.name.clone(), child, out));
        }
        // `ip monitor` subscribes a moment after it starts.
        std::thread::sleep(Duration::from_millis(200));
        AddrWatch { children }
    }

    /// The last `lines` lines of every daemon log, for a failing test.
    fn print_logs(&self, lines: usize) {
        for n in &self.nodes {
            print_log_tail(&n.name, &self.log_path(&n.name), lines);
        }
    }
}

impl AddrWatch {
    /// Every change of `addr` seen so far, in time order (`ip monitor`
    /// flushes each line).
    pub fn events(&self, addr: &str) -> Vec<AddrEvent> {
        let mut events = Vec::new();
        for (node, _, path) in &self.children {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            events.extend(text.lines().filter_map(|l| parse_addr_line(node, l, addr)));
        }
        events.sort_by(|a, b| a.t.total_cmp(&b.t));
        events
    }

    /// Stops watching; returns every change of `addr`, in time order.
    pub fn finish(mut self, addr: &str) -> Vec<AddrEvent> {
        let mut events = Vec::new();
        for (node, child, path) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(&*path).unwrap_or_default();
            events.extend(text.lines().filter_map(|l| parse_addr_line(node, l, addr)));
        }
        events.sort_by(|a, b| a.t.total_cmp(&b.t));
        events
    }
}

impl Drop for AddrWatch {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Agents' daemons (web servers, send_arp, hung scripts) outlive
        // the node's daemon; they are whatever still runs in its netns.
        for ns in &self.created {
            kill_all_in(ns, None);
        }
        for node in &mut self.nodes {
            if let Some(mut anchor) = node.anchor.take() {
                let _ = anchor.kill();
                let _ = anchor.wait();
            }
        }
        for ns in self.created.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::thread::panicking() {
            self.print_logs(60);
            eprintln!("(kept {} for inspection)", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One `ip -ts -o monitor address` line about `addr`:
/// `[2026-11-23T14:02:40.524645] [Deleted ]2: eth0    inet 10.98.1.100/24 ...`.
fn parse_addr_line(node: &str, line: &str, addr: &str) -> Option<AddrEvent> {
    let (stamp, rest) = line.strip_prefix('[')?.split_once("] ")?;
    let needle = format!("inet {addr}/");
    if !rest.contains(&needle) {
        return None;
    }
    let time = stamp.split_once('T')?.1;
    let mut t = 0.0;
    for part in time.split(':') {
        t = t * 60.0 + part.parse::<f64>().ok()?;
    }
    Some(AddrEvent {
        t,
        node: node.to_string(),
        added: !rest.starts_with("Deleted"),
        line: line.to_string(),
    })
}

/// SIGKILL to every process in namespace `ns` but `spare`.
fn kill_all_in(ns: &str, spare: Option<u32>) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            match pid.parse::<u32>() {
                Ok(pid) if Some(pid) != spare => {
                    // SAFETY: kill(2) of a process inside our own namespace.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
                _ => {}
            }
        }
    }
}

/// A plain HTTP/1.0 GET with a 1 s budget per step; the body or an error.
fn http_get(target: &str) -> Result<String, String> {
    http_get_within(target, Duration::from_secs(1))
}

/// A plain HTTP/1.0 GET with `budget` per step (connect, each read); the
/// body of a 200 answer or an error. Runs in the caller's namespace.
pub fn http_get_within(target: &str, budget: Duration) -> Result<String, String> {
    let addr: std::net::SocketAddr = target.parse().map_err(|e| format!("{e}"))?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, budget).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(budget))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: vip\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.take(64 * 1024)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP header")?;
    if head.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answer: {}", head.lines().next().unwrap_or("")));
    }
    Ok(body.trim().to_string())
}

fn ip(args: &[&str]) -> Result<(), String> {
    run_ok(Command::new("ip").args(args))
}

fn run_ok(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_monitor_lines_are_parsed_with_their_time_and_kind() {
        let add = "[2026-11-23T14:02:40.524645] 2: eth0    inet 10.98.1.100/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever";
        let del = "[2026-11-23T14:02:41.000001] Deleted 2: eth0    inet 10.98.1.100/24 scope global secondary eth0";
        let a = parse_addr_line("node1", add, "10.98.1.100").unwrap();
        assert!(a.added);
        assert!((a.t - (14.0 * 3600.0 + 2.0 * 60.0 + 40.524645)).abs() < 1e-6);
        let d = parse_addr_line("node1", del, "10.98.1.100").unwrap();
        assert!(!d.added && d.t > a.t);
        assert!(parse_addr_line("node1", add, "10.98.1.10").is_none());
    }
}
