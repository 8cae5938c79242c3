//! One simulated run of whole daemons: 3 to 5 data nodes, each the real
//! cluster member (openraft, tandem's storage on a simulated disk), the
//! real lease loop, the real controller (engine, scheduler) and the real
//! executor with simulated agents. Each daemon is a process of its own
//! (`process.rs`): a paused current-thread runtime whose clock runs fast
//! or slow within the bound the lease assumes, driven in turn from one
//! thread, so time is virtual and the run replayable. A fault phase
//! (partitions, one-way cuts, the DC isolated, loss, delay, daemons killed
//! or paused, hosts powered off, clean stops, restarts, agents failing and
//! slow, fences failing), then a calm phase in which every resource must
//! end up running exactly once. The effects on the hosts are checked every
//! step.

use crate::hosts::{Hosts, Limit};
use crate::process::Process;
use crate::reach::{Daemons, SimReach};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tandem_agents::attrs::AttrStore;
use tandem_cluster::sim::{node_settings, SimNet, SimRng, TrueTime, CALM_DELAY_US};
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
    /// Each host's clock runs up to this far off the true rate (parts per
    /// million; the production bound is `MAX_CLOCK_RATE_ERROR_PPM`).
    pub drift_ppm: u64,
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
    /// Daemons paused.
    pub pauses: u64,
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
/// Processes are driven in turns this long (true µs): the least time a
/// message takes from one process to another.
const QUANTUM_US: u64 = 1_000;
/// A daemon paused (`SIGSTOP`, a stalled VM's process) stays so this long
/// at most (ms).
const LONGEST_PAUSE_MS: u64 = 6_000;

pub fn run(seed: u64, params: Params) -> Result<Outcome, String> {
    tandem_daemon::schedule_guard::run_inline_on_this_thread();
    seed_thread_rng(seed);
    let mut world = World::new(seed, params);
    RUN_TIME.set(Some(world.time.clone()));
    let result = world.run();
    world.stop_all();
    RUN_TIME.set(None);
    let _ = std::fs::remove_dir_all(&world.scratch);
    result
}

thread_local! {
    static RUN_TIME: std::cell::RefCell<Option<TrueTime>> = const { std::cell::RefCell::new(None) };
}

/// Log lines carry the run's true time.
pub struct VirtualTime;

impl tracing_subscriber::fmt::time::FormatTime for VirtualTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match RUN_TIME.with_borrow(|t| t.as_ref().map(TrueTime::now_ms)) {
            Some(ms) => write!(w, "t={ms}ms"),
            None => write!(w, "t=?"),
        }
    }
}

/// One daemon's life: its process and what the driver holds of it.
struct Life {
    node: Arc<ClusterNode>,
    stop: tokio::sync::watch::Sender<bool>,
    leaving: bool,
    /// Its clean stop ended: the process exits at this true time (ms),
    /// once its tasks have seen the end.
    exits_at: Option<u64>,
    process: Process,
}

/// A command proposed through a live node, and what came of it.
struct Proposal {
    through: NodeId,
    /// Set by the proposing task: whether the command was committed.
    committed: Arc<Mutex<Option<bool>>>,
    /// Given up (true ms) if no answer came, e.g. its daemon died.
    gives_up_at: u64,
}

struct World {
    params: Params,
    rng: SimRng,
    /// True time, which each process reads through its own clock.
    time: TrueTime,
    /// Each host's clock-rate error (ppm).
    rates: BTreeMap<NodeId, i64>,
    proposal: Option<Proposal>,
    net: SimNet,
    hosts: Hosts,
    daemons: Daemons,
    members: BTreeMap<NodeId, Member>,
    disks: BTreeMap<NodeId, MemDisk>,
    lives: BTreeMap<NodeId, Life>,
    /// Daemons that finished a clean stop, for the driver to retire.
    left: Arc<Mutex<Vec<NodeId>>>,
    config: String,
    /// Every resource, with how many hosts it runs (and is promoted) on
    /// once all is well.
    resources: BTreeMap<String, Limit>,
    kills: u64,
    pauses: u64,
    /// The newest leader's term seen (for the node-lease rule).
    newest_leader: u64,
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
        // Clocks at either end of the bound are the likeliest to find
        // where it is not enough.
        let d = params.drift_ppm as i64;
        let rates: BTreeMap<NodeId, i64> = members
            .keys()
            .map(|id| {
                let rate = match rng.range(0, 3) {
                    0 => -d,
                    1 => d,
                    _ => rng.range(0, 2 * d as u64 + 1) as i64 - d,
                };
                (*id, rate)
            })
            .collect();
        let scratch =
            std::env::temp_dir().join(format!("tandem-dsim-{}-{seed}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        let time = TrueTime::default();
        let host_rates = rates
            .iter()
            .map(|(id, rate)| (members[id].name.clone(), *rate))
            .collect();
        let net = SimNet::with_true_time(rng.next_u64(), time.clone());
        // Some runs see the controller's requests held in cuts.
        net.state().held_per_mille = rng.pick(&[0, 500, 1000]);
        World {
            params,
            net,
            hosts: Hosts::new(
                rng.next_u64(),
                host_rates,
                resources.clone(),
                time.clone(),
                params.lying_fence,
                params.lying_watchdog,
            ),
            time,
            rates,
            proposal: None,
            rng,
            daemons: Daemons::default(),
            members,
            disks: BTreeMap::new(),
            lives: BTreeMap::new(),
            left: Arc::default(),
            config,
            resources,
            kills: 0,
            pauses: 0,
            newest_leader: 0,
            restarts: BTreeMap::new(),
            watchdogs,
            scratch,
        }
    }

    /// Hosts that were powered off (a fence reboots them, a power loss
    /// ends) boot again after [`BOOT_MS`].
    /// And killed daemons restart when systemd restarts them.
    fn boot(&mut self) -> Result<(), String> {
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
            self.start(id)?;
        }
        Ok(())
    }

    /// Moves true time on by `ms`, driving every process in turn.
    fn advance(&mut self, ms: u64) {
        for _ in 0..ms * 1_000 / QUANTUM_US {
            let now_us = self.time.now_us() + QUANTUM_US;
            self.time.set_us(now_us);
            for life in self.lives.values_mut() {
                life.process.drive(now_us);
            }
        }
    }

    fn run(&mut self) -> Result<Outcome, String> {
        let ids: Vec<NodeId> = self.members.keys().copied().collect();
        for id in &ids {
            self.start(*id)?;
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
            self.advance(step_ms);
            now += step_ms;
            self.retire();
            self.boot()?;
            let violation = self.hosts.state().violation.clone();
            if let Some(violation) = violation.or_else(|| self.lease_rule_broken()) {
                if std::env::var_os("TANDEM_DSIM_VERBOSE").is_some() {
                    self.print_records();
                }
                return Err(violation);
            }
            if !configured {
                configured = self.proposed(|w| Command::PutConfig {
                    expected_version: None,
                    text: w.config.clone(),
                });
                continue;
            }
            if now < fault_ms {
                if now >= next_fault {
                    self.inject_fault()?;
                    // Now and then a quiet spell: long enough for the
                    // cluster to start its services, so the next fault
                    // meets them running.
                    next_fault = now
                        + if self.rng.chance(250) {
                            self.rng.range(2_000, 5_000)
                        } else {
                            self.rng.range(200, 1_500)
                        };
                }
                self.keep_isolated(now);
                continue;
            }
            if now - step_ms < fault_ms {
                self.calm()?;
                continue;
            }
            // A clean stop that ended after the faults: start it again.
            self.start_every_daemon()?;
            // Failures from the fault phase ban resources from nodes: an
            // operator's cleanup, as after any incident.
            if !cleaned {
                cleaned = self.proposed(World::cleanup);
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
                        pauses: self.pauses,
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

    /// The node-lease rule, as the daemons read their leases: no DC counts
    /// a node free while that node, by its own clock at the same true
    /// instant, still holds a lease. A paused daemon is left out: its
    /// clock reads the moment it stopped, and it acts on nothing until it
    /// resumes and reads the time again.
    fn lease_rule_broken(&mut self) -> Option<String> {
        let views: Vec<_> = self
            .lives
            .iter()
            .filter(|(_, l)| !l.process.paused() && l.exits_at.is_none())
            .map(|(id, l)| (*id, l.process.within(|| l.node.view())))
            .collect();
        let at = self.time.now_ms();
        tandem_cluster::sim::node_lease::check(&views, &mut self.newest_leader)
            .err()
            .map(|e| format!("t={at}ms: {e}"))
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
        self.resources.iter().all(|(r, limit)| {
            hosts.active_on(r).len() == limit.active && hosts.promoted_on(r).len() == limit.promoted
        })
    }

    fn where_things_run(&self) -> String {
        let hosts = self.hosts.state();
        let runs: Vec<String> = self
            .resources
            .keys()
            .map(|r| {
                let promoted = hosts.promoted_on(r);
                if promoted.is_empty() {
                    format!("{r} on {:?}", hosts.active_on(r))
                } else {
                    format!("{r} on {:?} promoted on {promoted:?}", hosts.active_on(r))
                }
            })
            .collect();
        let dc = self
            .lives
            .values()
            .find_map(|l| l.process.within(|| l.node.view().dc))
            .unwrap_or_else(|| "none".into());
        format!("{}; DC {dc}; live {:?}", runs.join(", "), self.lives.keys())
    }

    /// Whether the command `make` builds was committed: proposes it
    /// through a live node, then, at later steps, looks for the answer
    /// (proposing again if none came).
    fn proposed(&mut self, make: impl FnOnce(&World) -> Command) -> bool {
        let now = self.time.now_ms();
        if let Some(p) = self.proposal.take() {
            let answer = *p.committed.lock().unwrap();
            match answer {
                Some(true) => return true,
                None if now < p.gives_up_at && self.lives.contains_key(&p.through) => {
                    self.proposal = Some(p);
                    return false;
                }
                _ => {}
            }
        }
        let Some((id, life)) = self.lives.iter().find(|(_, l)| !l.process.paused()) else {
            return false;
        };
        let command = make(self);
        let committed = Arc::new(Mutex::new(None));
        let (node, answer) = (life.node.clone(), committed.clone());
        life.process.spawn(async move {
            let proposed = tokio::time::timeout(Duration::from_secs(3), node.propose(command));
            let ok = matches!(proposed.await, Ok(Ok(_)));
            *answer.lock().unwrap() = Some(ok);
        });
        self.proposal = Some(Proposal {
            through: *id,
            committed,
            gives_up_at: now + 4_000,
        });
        false
    }

    /// Forgets every node's history and failures, as `tandem resource
    /// cleanup` does.
    fn cleanup(&self) -> Command {
        let mut batch = vec![Command::ForgetHistory {
            node: None,
            resource: None,
        }];
        let state = self
            .lives
            .values()
            .next()
            .map(|l| l.process.within(|| l.node.replicated()));
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

    fn inject_fault(&mut self) -> Result<(), String> {
        let ids: Vec<NodeId> = self.members.keys().copied().collect();
        let live: Vec<NodeId> = self.lives.keys().copied().collect();
        let dc = self
            .lives
            .iter()
            .find(|(_, l)| l.process.within(|| l.node.view().state == "Leader"))
            .map(|(id, _)| *id);
        let fault = self.rng.range(0, 17);
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
                    self.retire();
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
                    self.start(id)?;
                }
            }
            11 => {
                if let Some(id) = pick(&mut self.rng, &live) {
                    self.stop_cleanly(id);
                }
            }
            12 => self.net.state().loss_per_mille = self.rng.pick(&[0, 50, 150, 300]),
            13 => {
                let lasting = self.rng.range(3_000, 8_000);
                self.hosts.state().cut_at_next_start = Some(lasting);
            }
            15 | 16 => {
                // A daemon stops (`SIGSTOP`, a stall; the DC's, for 15)
                // and resumes later; its host and services run on.
                let victim = if fault == 15 { dc } else { None };
                if let Some(id) = victim.or_else(|| pick(&mut self.rng, &live)) {
                    let until = self.time.now_us() + self.rng.range(100, LONGEST_PAUSE_MS) * 1_000;
                    if let Some(life) = self.lives.get_mut(&id) {
                        life.process.pause(until);
                        self.pauses += 1;
                    }
                }
            }
            _ => {
                let delay = self
                    .rng
                    .pick(&[CALM_DELAY_US, (1_000, 40_000), (1_000, 150_000)]);
                self.net.state().delay_us = delay;
            }
        }
        Ok(())
    }

    /// Keeps the node a cut at a start isolated until its time is up,
    /// whatever other faults did to the network meanwhile.
    fn keep_isolated(&mut self, now: u64) {
        let isolated = self.hosts.state().isolated;
        match isolated {
            Some((node, until)) if now < until => {
                let ids: Vec<NodeId> = self.members.keys().copied().collect();
                crate::reach::isolate(&self.net, node, &ids);
            }
            Some((node, _)) => {
                self.net
                    .state()
                    .cuts
                    .retain(|(a, b)| *a != node && *b != node);
                self.hosts.state().isolated = None;
            }
            None => {}
        }
    }

    /// Faults stop: the network heals, agents and fences stop failing,
    /// every host is powered on and every daemon runs.
    fn calm(&mut self) -> Result<(), String> {
        self.net.heal();
        self.hosts.state().agents_fail = false;
        self.hosts.state().cut_at_next_start = None;
        self.hosts.state().isolated = None;
        for life in self.lives.values_mut() {
            life.process.resume();
        }
        self.start_every_daemon()
    }

    /// Starts every daemon that does not run (powering its host on).
    fn start_every_daemon(&mut self) -> Result<(), String> {
        let down: Vec<NodeId> = self
            .members
            .keys()
            .copied()
            .filter(|id| !self.lives.contains_key(id))
            .collect();
        for id in down {
            self.start(id)?;
        }
        Ok(())
    }

    /// Starts (or restarts) the daemon of `id`, a new process, on its
    /// disk as the last crash left it, on a powered host.
    fn start(&mut self, id: NodeId) -> Result<(), String> {
        if self.lives.contains_key(&id) {
            return Ok(());
        }
        let name = self.members[&id].name.clone();
        let disk = self.disks.entry(id).or_default().clone();
        let seams = Seams {
            transport: Arc::new(self.net.clone()),
            disk,
        };
        let mut process = Process::new(self.time.now_us(), self.rates[&id]);
        let node = process
            .block_on(ClusterNode::start_with(
                node_settings(id, &self.members),
                seams,
            ))
            .map_err(|e| format!("node {id} failed to start: {e}"))?;
        let node = Arc::new(node);
        tracing::info!(node = id, "a daemon starts");
        self.net.up_on(id, node.endpoint(), process.handle());
        self.hosts.power_on(&name);
        let dir = self.scratch.join(&name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let attrs = dir.join("attrs.json");
        let agents = self
            .hosts
            .agents(&name, node.clone(), AttrStore::new(attrs.clone()));
        let executor = LocalExecutor::with_agents(
            &name,
            agents,
            Default::default(),
            attrs,
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
        let promotable = self.resources.values().any(|l| l.promoted > 0);
        process.within(|| {
            tandem_daemon::spawn_lease_and_controller(
                &node,
                &executor,
                Arc::new(reach),
                guard,
                &stopped,
            );
            // Only promotable agents set attributes here.
            if promotable {
                let sync = tandem_daemon::attrsync::run(node.clone(), executor.clone(), stopped());
                tokio::spawn(sync);
            }
        });
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
                exits_at: None,
                process,
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
        life.process.spawn(async move {
            tandem_daemon::leave_cleanly(&node, &executor, SHUTDOWN_TIMEOUT).await;
            left.lock().unwrap().push(id);
        });
    }

    /// Retires daemons that are gone: their clean stop ended, or their
    /// host lost power (a fence, its watchdog, or the fault itself).
    fn retire(&mut self) {
        for host in self.hosts.watchdog_resets() {
            let id = crate::reach::id_of(&host);
            self.net.down(id);
        }
        let now = self.time.now_ms();
        let left = std::mem::take(&mut *self.left.lock().unwrap());
        for id in left {
            if let Some(life) = self.lives.get_mut(&id) {
                // The daemon exits as `serve` does after a clean stop: its
                // tasks see the end (the lease loop's magic close), then
                // the process is gone.
                let _ = life.stop.send(true);
                life.exits_at.get_or_insert(now + 1);
            }
        }
        let exited: Vec<NodeId> = self
            .lives
            .iter()
            .filter(|(_, l)| l.exits_at.is_some_and(|t| now > t))
            .map(|(id, _)| *id)
            .collect();
        for id in exited {
            self.end_life(id);
            self.hosts.daemon_died(&self.members[&id].name);
            self.net.down(id);
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
            // Transient attributes live in /run: a power loss ends them.
            let attrs = self
                .scratch
                .join(&self.members[&id].name)
                .join("attrs.json");
            let _ = std::fs::remove_file(attrs);
            let disk = self.disks[&id].after_crash();
            self.disks.insert(id, disk);
            self.end_life(id);
        }
    }

    /// The process of `id` is gone: its runtime is dropped, so its tasks
    /// end where they stand (they wrote only to the old disk).
    fn end_life(&mut self, id: NodeId) {
        let Some(life) = self.lives.remove(&id) else {
            return;
        };
        tracing::info!(node = id, "the daemon's life ends");
        self.daemons.lock().unwrap().remove(&self.members[&id].name);
        drop(life);
    }

    fn stop_all(&mut self) {
        self.daemons.lock().unwrap().clear();
        self.lives.clear();
    }
}

fn pick(rng: &mut SimRng, ids: &[NodeId]) -> Option<NodeId> {
    (!ids.is_empty()).then(|| rng.pick(ids))
}

/// The run's configuration: a few services (sometimes a group, sometimes a
/// preferred node, sometimes a clone and a promotable clone) and a fence
/// device if `fence_device`; and the resources with how many hosts each
/// must run (and be promoted) on in the end, which is also the most it
/// may ever run on.
fn configuration(
    rng: &mut SimRng,
    nodes: &[String],
    fence_device: bool,
) -> (String, BTreeMap<String, Limit>) {
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
    let mut resources = BTreeMap::new();
    for i in 1..=count {
        let id = format!("svc{i}");
        text += &format!(
            "\n[[resource]]\nid = \"{id}\"\nagent = \"ocf:sim:Service\"\nop = [{{ name = \"monitor\", interval = \"2s\", timeout = \"5s\" }}]\n"
        );
        resources.insert(id, Limit::PRIMITIVE);
    }
    // Clones of two instances (every run has three nodes or more); the
    // anonymous instances are named as their primitive on every host.
    if rng.chance(300) {
        text += r#"
[[resource]]
id = "web"
agent = "ocf:sim:Service"
op = [{ name = "monitor", interval = "2s", timeout = "5s" }]

[[clone]]
id = "web-clone"
of = "web"
meta = { clone-max = 2 }
"#;
        let limit = Limit {
            active: 2,
            promoted: 0,
        };
        resources.insert("web".into(), limit);
    }
    if rng.chance(400) {
        text += r#"
[[resource]]
id = "db"
agent = "ocf:sim:Service"
op = [
  { name = "monitor", interval = "2s", timeout = "5s", role = "Unpromoted" },
  { name = "monitor", interval = "3s", timeout = "5s", role = "Promoted" },
]

[[clone]]
id = "db-clone"
of = "db"
promotable = true
meta = { clone-max = 2, promoted-max = 1 }
"#;
        let limit = Limit {
            active: 2,
            promoted: 1,
        };
        resources.insert("db".into(), limit);
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
        resources.insert("power".into(), Limit::PRIMITIVE);
    }
    (text, resources)
}
