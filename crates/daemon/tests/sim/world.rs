//! One simulated run of whole daemons: 3 to 5 data nodes, each the real
//! cluster member (openraft, tandem's storage on a simulated disk), the
//! real lease loop, the real controller (engine, scheduler) and the real
//! executor with simulated agents, on one paused current-thread tokio
//! runtime, so time is virtual and the poll order fixed. A fault phase
//! (partitions, one-way cuts, the DC isolated, loss, delay, daemons killed,
//! hosts powered off, clean stops, restarts, agents failing and slow,
//! fences failing), then a calm phase in which every resource must end up
//! running exactly once. The effects on the hosts are checked every step.

use crate::hosts::Hosts;
use crate::reach::{Daemons, SimReach};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tandem_cluster::sim::{node_settings, SimNet, SimRng, CALM_DELAY_US};
use tandem_cluster::{seed_thread_rng, ClusterNode, Command, MemDisk, Member, NodeId, Seams};
use tandem_daemon::executor::LocalExecutor;
use tandem_daemon::held::HeldFile;
use tandem_daemon::Guard;

#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Faults are injected during this long (virtual ms).
    pub fault_ms: u64,
    /// The bound on recovery once faults stop: restarts, elections, a
    /// failed fence's retry (10 s), probes, starts.
    pub converge_ms: u64,
    /// Effects are checked this often.
    pub step_ms: u64,
    /// The checker's own test: fences report success without powering
    /// anything off, so a lost node's services live on (must be caught).
    pub lying_fence: bool,
    /// The same for watchdogs: armed and reported, they never reset
    /// their host.
    pub lying_watchdog: bool,
}

/// What a passing run reports.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub nodes: usize,
    pub starts: u64,
    pub kills: u64,
    pub fenced: u64,
    pub watchdog_resets: u64,
    /// Virtual time from the end of the faults until every resource ran
    /// exactly once.
    pub converged_ms: u64,
}

/// The stop a daemon's lease margin leaves (the production default).
const MARGIN_MS: u64 = 150;
/// How long a clean stop may take.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// The watchdog timeout daemons set where a run has watchdogs.
const WATCHDOG_MS: u64 = 1_000;
/// How long a powered-off host takes to come back.
const BOOT_MS: u64 = 3_000;
/// Every resource must have run exactly once for this long to count as
/// converged.
const STABLE_MS: u64 = 1_000;

pub fn run(seed: u64, params: Params) -> Result<Outcome, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    tandem_daemon::schedule_guard::run_inline_on_this_thread();
    runtime.block_on(async move {
        RUN_STARTED.set(Some(tokio::time::Instant::now()));
        seed_thread_rng(seed);
        let mut world = World::new(seed, params);
        let result = world.run().await;
        world.stop_all().await;
        let _ = std::fs::remove_dir_all(&world.scratch);
        result
    })
}

thread_local! {
    static RUN_STARTED: std::cell::Cell<Option<tokio::time::Instant>> = const { std::cell::Cell::new(None) };
}

/// Log lines carry the run's virtual time.
pub struct VirtualTime;

impl tracing_subscriber::fmt::time::FormatTime for VirtualTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match RUN_STARTED.get() {
            Some(started) => write!(w, "t={}ms", started.elapsed().as_millis()),
            None => write!(w, "t=?"),
        }
    }
}

/// One daemon's life.
struct Life {
    node: Arc<ClusterNode>,
    stop: tokio::sync::watch::Sender<bool>,
    leaving: bool,
}

struct World {
    params: Params,
    rng: SimRng,
    net: SimNet,
    hosts: Hosts,
    daemons: Daemons,
    members: BTreeMap<NodeId, Member>,
    disks: BTreeMap<NodeId, MemDisk>,
    lives: BTreeMap<NodeId, Life>,
    /// Daemons that finished a clean stop, for the driver to retire.
    left: Arc<Mutex<Vec<NodeId>>>,
    config: String,
    resources: Vec<String>,
    kills: u64,
    /// Killed daemons systemd restarts (`Restart=on-failure`), and when
    /// (virtual ms).
    restarts: BTreeMap<NodeId, u64>,
    /// Daemons arm a watchdog on their host.
    watchdogs: bool,
    /// Each host's directory (its executor's record of what it holds).
    scratch: PathBuf,
}

impl World {
    fn new(seed: u64, params: Params) -> World {
        let mut rng = SimRng::new(seed);
        let n = rng.range(3, 6);
        let members: BTreeMap<NodeId, Member> = (1..=n)
            .map(|id| {
                let member = Member {
                    name: format!("node{id}"),
                    addr: format!("sim-node{id}"),
                    api: String::new(),
                    witness: false,
                };
                (id, member)
            })
            .collect();
        let names: Vec<String> = members.values().map(|m| m.name.clone()).collect();
        // What settles a lost node: a fence device, a watchdog, or both.
        let settle = rng.range(0, 4);
        let (fence_device, watchdogs) = match settle {
            0 | 1 => (true, false),
            2 => (false, true),
            _ => (true, true),
        };
        let (fence_device, watchdogs) = if params.lying_fence {
            (true, false)
        } else if params.lying_watchdog {
            (false, true)
        } else {
            (fence_device, watchdogs)
        };
        let (config, resources) = configuration(&mut rng, &names, fence_device);
        let scratch =
            std::env::temp_dir().join(format!("tandem-dsim-{}-{seed}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        World {
            params,
            net: SimNet::new(rng.next_u64()),
            hosts: Hosts::new(
                rng.next_u64(),
                &names,
                params.lying_fence,
                params.lying_watchdog,
            ),
            rng,
            daemons: Daemons::default(),
            members,
            disks: BTreeMap::new(),
            lives: BTreeMap::new(),
            left: Arc::default(),
            config,
            resources,
            kills: 0,
            restarts: BTreeMap::new(),
            watchdogs,
            scratch,
        }
    }

    /// Hosts that were powered off (a fence reboots them, a power loss
    /// ends) boot again after [`BOOT_MS`].
    /// And killed daemons restart when systemd restarts them.
    async fn boot(&mut self) -> Result<(), String> {
        let now = self.hosts.state().now_ms();
        let mut booted: Vec<NodeId> = {
            let hosts = self.hosts.state();
            self.members
                .iter()
                .filter(|(_, m)| {
                    hosts.hosts[&m.name]
                        .off_since
                        .is_some_and(|t| now >= t + BOOT_MS)
                })
                .map(|(id, _)| *id)
                .collect()
        };
        let due: Vec<NodeId> = self
            .restarts
            .iter()
            .filter(|(_, at)| now >= **at)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.restarts.remove(&id);
            // A host that lost power meanwhile boots on its own time.
            if self.hosts.state().hosts[&self.members[&id].name]
                .off_since
                .is_none()
            {
                booted.push(id);
            }
        }
        for id in booted {
            self.start(id).await?;
        }
        Ok(())
    }

    async fn run(&mut self) -> Result<Outcome, String> {
        let ids: Vec<NodeId> = self.members.keys().copied().collect();
        for id in &ids {
            self.start(*id).await?;
        }
        let Params {
            fault_ms,
            converge_ms,
            step_ms,
            ..
        } = self.params;
        let mut configured = false;
        let mut cleaned = false;
        let mut next_fault = self.rng.range(1_500, 3_000);
        let mut stable_since: Option<u64> = None;
        let mut now = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(step_ms)).await;
            now += step_ms;
            self.retire().await;
            self.boot().await?;
            if let Some(violation) = self.hosts.state().violation.clone() {
                if std::env::var_os("TANDEM_DSIM_VERBOSE").is_some() {
                    self.print_records();
                }
                return Err(violation);
            }
            if !configured {
                configured = self
                    .propose(Command::PutConfig {
                        expected_version: None,
                        text: self.config.clone(),
                    })
                    .await;
                continue;
            }
            if now < fault_ms {
                if now >= next_fault {
                    self.inject_fault().await?;
                    next_fault = now + self.rng.range(200, 1_500);
                }
                continue;
            }
            if now - step_ms < fault_ms {
                self.calm().await?;
                continue;
            }
            // A clean stop that ended after the faults: start it again.
            self.start_every_daemon().await?;
            // Failures from the fault phase ban resources from nodes: an
            // operator's cleanup, as after any incident.
            if !cleaned {
                cleaned = self.propose(self.cleanup()).await;
                continue;
            }
            if self.runs_everything_once() {
                let since = *stable_since.get_or_insert(now);
                if now - since >= STABLE_MS {
                    let hosts = self.hosts.state();
                    return Ok(Outcome {
                        nodes: self.members.len(),
                        starts: hosts.starts,
                        kills: self.kills,
                        fenced: hosts.fenced,
                        watchdog_resets: hosts.watchdog_resets,
                        converged_ms: since - fault_ms,
                    });
                }
            } else {
                stable_since = None;
            }
            if now >= fault_ms + converge_ms {
                return Err(format!(
                    "not converged {converge_ms} ms after the faults ended: {}",
                    self.where_things_run()
                ));
            }
        }
    }

    /// What each live node's replicated state records of each resource.
    fn print_records(&self) {
        for (id, life) in &self.lives {
            let state = life.node.replicated();
            for (node, status) in &state.status {
                for (resource, ops) in &status.resources {
                    for op in ops.ops.values() {
                        println!(
                            "  node{id} records {resource}@{node}: {} {} call {} rc {} status {} key {:?}",
                            op.id, op.operation, op.call_id, op.rc_code, op.op_status, op.transition_key
                        );
                    }
                }
            }
        }
    }

    fn runs_everything_once(&self) -> bool {
        let hosts = self.hosts.state();
        self.resources.iter().all(|r| hosts.active_on(r).len() == 1)
    }

    fn where_things_run(&self) -> String {
        let hosts = self.hosts.state();
        let runs: Vec<String> = self
            .resources
            .iter()
            .map(|r| format!("{r} on {:?}", hosts.active_on(r)))
            .collect();
        let dc = self
            .lives
            .values()
            .find_map(|l| l.node.view().dc)
            .unwrap_or_else(|| "none".into());
        format!("{}; DC {dc}; live {:?}", runs.join(", "), self.lives.keys())
    }

    /// Proposes through any live node; whether it was committed.
    async fn propose(&self, command: Command) -> bool {
        let Some(life) = self.lives.values().next() else {
            return false;
        };
        let propose = life.node.propose(command);
        matches!(
            tokio::time::timeout(Duration::from_secs(3), propose).await,
            Ok(Ok(_))
        )
    }

    /// Forgets every node's history and failures, as `tandem resource
    /// cleanup` does.
    fn cleanup(&self) -> Command {
        let mut batch = vec![Command::ForgetHistory {
            node: None,
            resource: None,
        }];
        let state = self.lives.values().next().map(|l| l.node.replicated());
        for (node, status) in state.iter().flat_map(|s| s.status.iter()) {
            for name in status.transient.keys() {
                if name.starts_with("fail-count-") || name.starts_with("last-failure-") {
                    batch.push(Command::SetTransient {
                        node: node.clone(),
                        name: name.clone(),
                        value: None,
                    });
                }
            }
        }
        Command::Batch(batch)
    }

    async fn inject_fault(&mut self) -> Result<(), String> {
        let ids: Vec<NodeId> = self.members.keys().copied().collect();
        let live: Vec<NodeId> = self.lives.keys().copied().collect();
        let dc = self
            .lives
            .iter()
            .find(|(_, l)| l.node.view().state == "Leader")
            .map(|(id, _)| *id);
        let fault = self.rng.range(0, 15);
        // Daemons die, hosts lose power and stop only while a majority
        // would remain: a cluster kept mostly dead exercises little
        // (partitions still take quorum away).
        let majority = ids.len() / 2 + 1;
        let may_lose_one = live.len() > majority;
        let fault = if matches!(fault, 6 | 7 | 8 | 11) && !may_lose_one {
            9
        } else {
            fault
        };
        if std::env::var_os("TANDEM_DSIM_VERBOSE").is_some() {
            let at = self.hosts.state().now_ms();
            let runs = self.where_things_run();
            println!("t={at}ms fault {fault}; dc {dc:?}; live {live:?}; {runs}");
        }
        let pairs = || {
            ids.iter()
                .flat_map(|a| ids.iter().map(move |b| (*a, *b)))
                .filter(|(a, b)| a != b)
        };
        match fault {
            0 | 1 => self.net.heal(),
            2 | 3 => {
                let side: BTreeMap<NodeId, bool> =
                    ids.iter().map(|id| (*id, self.rng.chance(500))).collect();
                self.net.state().cuts = pairs().filter(|(a, b)| side[a] != side[b]).collect();
            }
            4 => {
                // One-way: a few directions stop carrying anything.
                for _ in 0..self.rng.range(1, ids.len() as u64) {
                    let (a, b) = (self.rng.pick(&ids), self.rng.pick(&ids));
                    if a != b {
                        self.net.state().cuts.insert((a, b));
                    }
                }
            }
            5 => {
                if let Some(dc) = dc {
                    self.net.state().cuts = pairs().filter(|(a, b)| *a == dc || *b == dc).collect();
                }
            }
            6 | 7 => {
                // kill -9 of a daemon (the DC's, for 7): its resources
                // keep running.
                let victim = if fault == 7 { dc } else { None };
                if let Some(id) = victim.or_else(|| pick(&mut self.rng, &live)) {
                    self.kill(id);
                }
            }
            8 => {
                if let Some(id) = pick(&mut self.rng, &live) {
                    let name = self.members[&id].name.clone();
                    self.hosts.power_off(&name);
                    self.net.down(id);
                    self.retire().await;
                }
            }
            9 | 10 => {
                // An operator starts a stopped daemon; killed ones are
                // systemd's to restart.
                let down: Vec<NodeId> = ids
                    .iter()
                    .copied()
                    .filter(|id| !self.lives.contains_key(id) && !self.restarts.contains_key(id))
                    .collect();
                if let Some(id) = pick(&mut self.rng, &down) {
                    self.start(id).await?;
                }
            }
            11 => {
                if let Some(id) = pick(&mut self.rng, &live) {
                    self.stop_cleanly(id);
                }
            }
            12 => self.net.state().loss_per_mille = self.rng.pick(&[0, 50, 150, 300]),
            _ => {
                let delay = self
                    .rng
                    .pick(&[CALM_DELAY_US, (1_000, 40_000), (1_000, 150_000)]);
                self.net.state().delay_us = delay;
            }
        }
        Ok(())
    }

    /// Faults stop: the network heals, agents and fences stop failing,
    /// every host is powered on and every daemon runs.
    async fn calm(&mut self) -> Result<(), String> {
        self.net.heal();
        self.hosts.state().agents_fail = false;
        self.start_every_daemon().await
    }

    /// Starts every daemon that does not run (powering its host on).
    async fn start_every_daemon(&mut self) -> Result<(), String> {
        let down: Vec<NodeId> = self
            .members
            .keys()
            .copied()
            .filter(|id| !self.lives.contains_key(id))
            .collect();
        for id in down {
            self.start(id).await?;
        }
        Ok(())
    }

    /// Starts (or restarts) the daemon of `id` on its disk as the last
    /// crash left it, on a powered host.
    async fn start(&mut self, id: NodeId) -> Result<(), String> {
        if self.lives.contains_key(&id) {
            return Ok(());
        }
        let name = self.members[&id].name.clone();
        let disk = self.disks.entry(id).or_default().clone();
        let seams = Seams {
            transport: Arc::new(self.net.clone()),
            disk,
        };
        let node = ClusterNode::start_with(node_settings(id, &self.members), seams)
            .await
            .map_err(|e| format!("node {id} failed to start: {e}"))?;
        let node = Arc::new(node);
        tracing::info!(node = id, "a daemon starts");
        self.net.up(id, node.endpoint());
        self.hosts.power_on(&name);
        let agents = self.hosts.agents(&name, node.clone());
        let dir = self.scratch.join(&name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let executor = LocalExecutor::with_agents(
            &name,
            agents,
            Default::default(),
            PathBuf::from("/nonexistent/tandem-sim/attrs.json"),
            Some(HeldFile::new(
                dir.join("held.json"),
                self.hosts.boot_id(&name),
            )),
        );
        let reach = SimReach {
            me: id,
            inc: self.net.incarnation(id),
            node: node.clone(),
            net: self.net.clone(),
            hosts: self.hosts.clone(),
            daemons: self.daemons.clone(),
        };
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let guard = Guard {
            watchdog: self
                .watchdogs
                .then(|| self.hosts.watchdog(&name, WATCHDOG_MS)),
            margin_ms: MARGIN_MS,
        };
        // Each life's logs name its node.
        let _span = tracing::info_span!("", n = %name).entered();
        tandem_daemon::spawn_lease_and_controller(
            &node,
            &executor,
            Arc::new(reach),
            guard,
            &stopped,
        );
        self.daemons
            .lock()
            .unwrap()
            .insert(name, (node.clone(), executor));
        self.lives.insert(
            id,
            Life {
                node,
                stop,
                leaving: false,
            },
        );
        Ok(())
    }

    /// `kill -9` of the daemon of `id`: it stops at once, loses what its
    /// disk had not synced; its resources keep running.
    fn kill(&mut self, id: NodeId) {
        if !self.lives.contains_key(&id) {
            return;
        }
        self.kills += 1;
        // With a lying fence or watchdog, restarts come late enough that
        // the DC has "settled" the node and recovered its resources first.
        let (soonest, latest) = if self.params.lying_fence || self.params.lying_watchdog {
            (5_000, 10_000)
        } else {
            (500, 4_000)
        };
        let restart_at = self.hosts.state().now_ms() + self.rng.range(soonest, latest);
        self.restarts.insert(id, restart_at);
        self.hosts.daemon_died(&self.members[&id].name);
        self.net.down(id);
        let disk = self.disks[&id].after_crash();
        self.disks.insert(id, disk);
        self.end_life(id);
        // Now and then the executor's record does not survive (a disk
        // error, an operator wiping the data directory): the restarted
        // daemon must know it does not know what runs.
        let held = self.scratch.join(&self.members[&id].name).join("held.json");
        match self.rng.range(0, 20) {
            0 => drop(std::fs::remove_file(&held)),
            1 => drop(std::fs::write(&held, b"{\"version\":1,")),
            _ => {}
        }
    }

    /// `systemctl stop`: the production clean stop, then the daemon ends.
    fn stop_cleanly(&mut self, id: NodeId) {
        let Some(life) = self.lives.get_mut(&id) else {
            return;
        };
        if life.leaving {
            return;
        }
        life.leaving = true;
        let name = self.members[&id].name.clone();
        let Some((node, executor)) = self.daemons.lock().unwrap().get(&name).cloned() else {
            return;
        };
        let left = self.left.clone();
        tokio::spawn(async move {
            tandem_daemon::leave_cleanly(&node, &executor, SHUTDOWN_TIMEOUT).await;
            left.lock().unwrap().push(id);
        });
    }

    /// Retires daemons that are gone: their clean stop ended, or their
    /// host lost power (a fence, its watchdog, or the fault itself).
    async fn retire(&mut self) {
        for host in self.hosts.watchdog_resets() {
            let id = crate::reach::id_of(&host);
            self.net.down(id);
        }
        let left = std::mem::take(&mut *self.left.lock().unwrap());
        for id in left {
            if self.lives.contains_key(&id) {
                // The daemon exits as `serve` does after a clean stop: its
                // tasks see the end (the lease loop's magic close), then
                // the process is gone.
                self.end_life(id);
                tokio::time::sleep(Duration::from_millis(1)).await;
                self.hosts.daemon_died(&self.members[&id].name);
                self.net.down(id);
            }
        }
        let off: Vec<NodeId> = {
            let hosts = self.hosts.state();
            self.lives
                .keys()
                .copied()
                .filter(|id| hosts.hosts[&self.members[id].name].off_since.is_some())
                .collect()
        };
        for id in off {
            let disk = self.disks[&id].after_crash();
            self.disks.insert(id, disk);
            self.end_life(id);
        }
    }

    fn end_life(&mut self, id: NodeId) {
        let Some(life) = self.lives.remove(&id) else {
            return;
        };
        tracing::info!(node = id, "the daemon's life ends");
        self.daemons.lock().unwrap().remove(&self.members[&id].name);
        let _ = life.stop.send(true);
        // Stops the old life's tasks; they write only to the old disk.
        tokio::spawn(async move { life.node.shutdown().await });
    }

    async fn stop_all(&mut self) {
        let ids: Vec<NodeId> = self.lives.keys().copied().collect();
        for id in ids {
            if let Some(life) = self.lives.remove(&id) {
                let _ = life.stop.send(true);
                life.node.shutdown().await;
            }
        }
        self.daemons.lock().unwrap().clear();
    }
}

fn pick(rng: &mut SimRng, ids: &[NodeId]) -> Option<NodeId> {
    (!ids.is_empty()).then(|| rng.pick(ids))
}

/// The run's configuration: a few services (sometimes a group, sometimes a
/// preferred node) and a fence device if `fence_device`; and the resources that must each
/// run exactly once in the end.
fn configuration(rng: &mut SimRng, nodes: &[String], fence_device: bool) -> (String, Vec<String>) {
    let mut text = String::from(
        r#"[cluster]
name = "sim"
options = { fencing-enabled = true, no-quorum-policy = "stop" }
resource-defaults = { resource-stickiness = 100 }
op-defaults = { timeout = "20s" }
"#,
    );
    for n in nodes {
        text += &format!("\n[[node]]\nname = \"{n}\"\n");
    }
    let count = rng.range(1, 5);
    let mut resources = Vec::new();
    for i in 1..=count {
        let id = format!("svc{i}");
        text += &format!(
            "\n[[resource]]\nid = \"{id}\"\nagent = \"ocf:sim:Service\"\nop = [{{ name = \"monitor\", interval = \"2s\", timeout = \"5s\" }}]\n"
        );
        resources.push(id);
    }
    if count >= 2 && rng.chance(400) {
        text += "\n[[group]]\nid = \"pair\"\nmembers = [\"svc1\", \"svc2\"]\n";
    }
    if rng.chance(500) {
        let node = rng.pick(&(1..=nodes.len() as u64).collect::<Vec<_>>());
        text +=
            &format!("\n[[location]]\nresource = \"svc1\"\nnode = \"node{node}\"\nscore = 50\n");
    }
    if fence_device {
        text += &format!(
            "\n[[resource]]\nid = \"power\"\nagent = \"stonith:fence_sim\"\nparams = {{ pcmk_host_list = \"{}\" }}\n",
            nodes.join(" ")
        );
        resources.push("power".into());
    }
    (text, resources)
}
