//! The executor every data node runs: performs the operations the DC sends
//! (`POST /execute`, each stamped with the DC's term and refused when the
//! term is stale), keeps the recurring monitors and reports their changes
//! to the replicated status, and stops everything here when the node
//! loses its lease (see [`crate::lease`]).
//!
//! The lease gate: an operation that can make a resource active (start,
//! promote, migrate_from, reload, notify) runs only while the node holds its
//! lease; once the lease loop closes the gate, every such operation still
//! running is cancelled (its process group killed) and followed by a stop,
//! and new ones are refused. Stops, demotes and monitors always run.
//!
//! One operation at a time per resource; different resources run in
//! parallel. Agents run through [`Agents`]: on this machine
//! ([`InstalledAgents`], on blocking threads since `tandem-agents` is
//! synchronous, never on the async workers), or simulated.

use crate::held::HeldFile;
use crate::oprecord::{self, Outcome};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tandem_agents::monitor::{MonitorEvent, MonitorKey, MonitorScheduler, MonitorSpec};
use tandem_agents::process::Cancel;
use tandem_agents::{
    builtin, shim, Action, AgentRef, AgentStatus, ExecConfig, Executor, Expected, OpRequest,
    OpResult, Runner,
};
use tandem_cluster::{BoxFuture, ClusterNode, ResourceAgent};

/// One operation the DC asks a node to perform.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The DC's term: the fencing token.
    pub term: u64,
    /// The resource as recorded in the history (a clone's primitive id for
    /// anonymous clones).
    pub resource: ResourceAgent,
    /// The id the agent sees as `OCF_RESOURCE_INSTANCE` (`db:1`).
    pub instance: String,
    pub action: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub expected: Expected,
    pub params: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    /// The order in which its DC sent it (0 for the executor's own). Under one
    /// term, a request for an instance is refused once a later one has run
    /// for it: a start delayed in the network past its call timeout must
    /// not run after the probe the DC sent next (an ordered channel, as
    /// Pacemaker has, gives this for free; requests here travel on
    /// connections of their own).
    #[serde(default)]
    pub seq: u64,
    /// The target node's rejoin its DC planned it under, as the replicated
    /// state records it (0 for the executor's own). A request that needs
    /// the lease runs only in that life of the node: not after its lease
    /// lapsed (until it rejoins, with a new id), nor after it was recorded
    /// down and came back. A start held back in the network (a cut, then
    /// TCP retransmitting it once the link heals) can no longer run beside
    /// the copy the DC recovered elsewhere meanwhile.
    #[serde(default)]
    pub rejoin: u64,
}

impl ExecRequest {
    fn is_probe(&self) -> bool {
        self.action == "monitor" && self.interval_ms == 0
    }

    /// A fence device (`stonith:` class).
    fn is_fence_device(&self) -> bool {
        self.resource.class.as_deref() == Some("stonith")
    }

    /// Whether this operation can make a resource active somewhere, and so
    /// may run only under a lease. Stops, demotes and monitors only ever
    /// take away or look.
    pub fn needs_lease(&self) -> bool {
        !matches!(
            self.action.as_str(),
            // migrate_to moves the resource off this node; its
            // migrate_from on the target needs the target's lease.
            "stop" | "demote" | "monitor" | "migrate_to" | "meta-data" | "validate-all"
        )
    }
}

/// How long an operation that needs the lease waits for the gate to open.
const GATE_WAIT: std::time::Duration = std::time::Duration::from_millis(1000);

/// The lease gate: whether operations that need a lease may run, and the
/// ones running now (cancelled when it closes).
#[derive(Default)]
struct Gate {
    closed: bool,
    /// The node is leaving (a clean stop): the gate stays closed whatever
    /// the lease.
    leaving: bool,
    /// The lease lapsed since the last rejoin began (or none began yet):
    /// the DC's requests that need the lease wait for the next rejoin.
    lapsed: bool,
    /// instance → the operation in flight and its cancel handle.
    in_flight: BTreeMap<String, (ExecRequest, Cancel)>,
}

/// Where agents live and what they get, from the node's settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// `OCF_ROOT` for installed agents (default `/usr/lib/ocf`).
    pub ocf_root: Option<PathBuf>,
    /// Where LSB init scripts live (default `/etc/init.d`).
    pub lsb_dir: Option<PathBuf>,
    /// Where fence agents live (default `/usr/sbin`).
    pub fence_dir: Option<PathBuf>,
}

/// What runs the agents' operations for the executor.
pub trait Agents: Send + Sync + 'static {
    /// Runs one operation to its end (or until `op.cancel` is set).
    fn run(&self, op: OpRequest) -> BoxFuture<'static, OpResult>;
    /// Keeps a recurring monitor running; its changes are reported
    /// elsewhere (see [`LocalExecutor::start`]).
    fn keep_monitoring(&self, spec: MonitorSpec) -> Result<(), String>;
    /// Ends the recurring monitors of one instance.
    fn stop_monitoring(&self, instance: &str);
}

/// The agents installed on this machine, and `ocf:tandem:*` from the
/// binary itself; the recurring monitors share them.
pub struct InstalledAgents {
    runner: Arc<Dispatch>,
    monitors: MonitorScheduler,
}

impl Agents for InstalledAgents {
    fn run(&self, op: OpRequest) -> BoxFuture<'static, OpResult> {
        let runner = self.runner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || runner.execute(&op))
                .await
                .unwrap_or_else(|e| OpResult::exec_failed(format!("agent thread failed: {e}")))
        })
    }

    fn keep_monitoring(&self, spec: MonitorSpec) -> Result<(), String> {
        self.monitors
            .schedule(spec)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn stop_monitoring(&self, instance: &str) {
        let _ = self.monitors.cancel_resource(instance);
    }
}

/// The node-local executor.
pub struct LocalExecutor {
    node_name: String,
    agents: Arc<dyn Agents>,
    /// The agent settings fence devices run with.
    exec_config: ExecConfig,
    next_call_id: AtomicI64,
    rejoin_id: AtomicU64,
    /// The newest term an operation here was stamped with.
    highest_term: AtomicU64,
    /// Per-resource locks: one operation at a time per resource.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// What was started here and how to stop it, for the lease rule.
    active: Mutex<BTreeMap<String, ExecRequest>>,
    /// Instance → (term, seq) of the latest DC request that ran for it.
    latest_sent: Mutex<HashMap<String, (u64, u64)>>,
    /// `active` and the starts in flight, on disk (see [`crate::held`]);
    /// the lock orders the saves.
    held_file: Mutex<Option<HeldFile>>,
    /// Why this executor may not know everything that runs here (its
    /// record could not be read or saved), if so.
    uncertain: Mutex<Option<String>>,
    /// Resources (ids as recorded) a one-shot operation ran for since this
    /// daemon started: what runs of them here is known.
    known: Mutex<std::collections::BTreeSet<String>>,
    /// Starts closed: nothing needing a lease runs before the lease loop
    /// has seen one.
    gate: Mutex<Gate>,
    /// Last code each recurring monitor reported, so only changes are
    /// recorded.
    last_monitor: Mutex<HashMap<MonitorKey, Option<i32>>>,
    pub(crate) attr_store: PathBuf,
    /// Taken by the lease loop while it announces a rejoin and by a clean
    /// stop while it starts leaving, so a rejoin checked before the leave
    /// cannot commit after the shutdown announcement and withdraw it.
    rejoin_turn: tokio::sync::Mutex<()>,
}

impl LocalExecutor {
    /// Prepares the agent environment under `data_dir` (shims, built-in
    /// agents, attribute store) and starts the monitor workers. Monitor
    /// results arrive on the returned receiver.
    pub fn start(
        node_name: &str,
        node_address: &str,
        data_dir: &Path,
        settings: &AgentSettings,
    ) -> std::io::Result<(Arc<LocalExecutor>, std::sync::mpsc::Receiver<MonitorEvent>)> {
        let exe = std::env::current_exe()?;
        let shim_dir = data_dir.join("shims");
        shim::install(&shim_dir, &exe)?;
        let builtin_root = data_dir.join("builtin-ocf");
        builtin::install(&builtin_root, &exe)?;
        let attr_store = data_dir.join("attrs.json");
        let held = HeldFile::new(data_dir.join("held.json"), crate::held::this_boot());
        let mut config = ExecConfig {
            shim_dir: Some(shim_dir),
            attr_store: Some(attr_store.clone()),
            node_name: Some(node_name.to_string()),
            ..ExecConfig::default()
        };
        if let Some(root) = &settings.ocf_root {
            config.ocf_root.clone_from(root);
        }
        if let Some(dir) = &settings.lsb_dir {
            config.lsb_dir.clone_from(dir);
        }
        if let Some(dir) = &settings.fence_dir {
            config.fence_dir.clone_from(dir);
        }
        let rsctmp = data_dir.join("rsctmp");
        std::fs::create_dir_all(&rsctmp)?;
        config
            .extra_env
            .insert("HA_RSCTMP".into(), rsctmp.display().to_string());
        // The built-in HTTP agent serves here by default.
        config
            .extra_env
            .insert("TANDEM_NODE_ADDRESS".into(), node_address.to_string());
        let installed = Executor::new(config.clone());
        let builtin = Executor::new(ExecConfig {
            ocf_root: builtin_root,
            ..config.clone()
        });
        let (events_tx, events_rx) = std::sync::mpsc::sync_channel(256);
        let runner = Arc::new(Dispatch { installed, builtin });
        let monitors = MonitorScheduler::start(runner.clone(), events_tx);
        let agents = Arc::new(InstalledAgents { runner, monitors });
        let executor =
            LocalExecutor::with_agents(node_name, agents, config, attr_store, Some(held));
        Ok((executor, events_rx))
    }

    /// An executor whose operations `agents` run (a simulation's, or
    /// [`InstalledAgents`] through [`Self::start`]), holding at first what
    /// `held` says a predecessor left running.
    pub fn with_agents(
        node_name: &str,
        agents: Arc<dyn Agents>,
        exec_config: ExecConfig,
        attr_store: PathBuf,
        held: Option<HeldFile>,
    ) -> Arc<LocalExecutor> {
        let loaded = held.as_ref().map(HeldFile::load).unwrap_or_default();
        if let Some(why) = &loaded.uncertain {
            tracing::error!("{why}: what runs here is unknown until the DC probes it; the watchdog is fed only under a lease");
        }
        if !loaded.held.is_empty() {
            let names: Vec<&str> = loaded.held.keys().map(String::as_str).collect();
            tracing::warn!(
                "the previous daemon left these running (or starting): {}; they are stopped here unless a DC keeps them",
                names.join(", ")
            );
        }
        // Call ids order a node's history; wall-clock milliseconds keep
        // them increasing across daemon restarts.
        let first_call_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as i64);
        Arc::new(LocalExecutor {
            node_name: node_name.to_string(),
            agents,
            exec_config,
            next_call_id: AtomicI64::new(first_call_id),
            rejoin_id: AtomicU64::new(0),
            highest_term: AtomicU64::new(0),
            locks: Mutex::new(HashMap::new()),
            active: Mutex::new(loaded.held),
            latest_sent: Mutex::default(),
            held_file: Mutex::new(held),
            uncertain: Mutex::new(loaded.uncertain),
            known: Mutex::default(),
            gate: Mutex::new(Gate {
                closed: true,
                lapsed: true,
                ..Gate::default()
            }),
            last_monitor: Mutex::new(HashMap::new()),
            attr_store,
            rejoin_turn: tokio::sync::Mutex::new(()),
        })
    }

    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The id of the last rejoin this executor announced (0 before any):
    /// every result carries it, so results from before a rejoin are told
    /// apart (see `Command::RecordOp`).
    pub fn rejoin_id(&self) -> u64 {
        self.rejoin_id.load(Ordering::SeqCst)
    }

    /// Draws the id of a new rejoin (random, never 0, so a predecessor's
    /// or an earlier one's is another) and stamps later results with it.
    pub fn begin_rejoin(&self) -> u64 {
        let id = tandem_cluster::random_u64().max(1);
        let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        self.rejoin_id.store(id, Ordering::SeqCst);
        // A rejoin that began as the lease lapsed again (its task not yet
        // aborted) opens no life: the next rejoin, under a lease, does.
        if !gate.closed {
            gate.lapsed = false;
        }
        id
    }

    /// Whether the lease lapsed since the last rejoin began.
    pub fn is_lapsed(&self) -> bool {
        self.gate.lock().unwrap_or_else(|p| p.into_inner()).lapsed
    }

    /// Whether a DC's `request` may run in this life of the node (see
    /// [`ExecRequest::rejoin`]); asked under the gate's lock.
    fn in_its_life(&self, gate: &Gate, request: &ExecRequest) -> bool {
        !request.needs_lease() || (!gate.lapsed && request.rejoin == self.rejoin_id())
    }

    /// The agent settings fence devices run with.
    pub fn exec_config(&self) -> ExecConfig {
        self.exec_config.clone()
    }

    fn lock_of(&self, instance: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(instance.to_string()).or_default().clone()
    }

    /// Performs one operation and returns its outcome (not yet recorded).
    /// A recurring monitor runs once now and then keeps running. An
    /// operation that needs the lease fails at once while the gate is
    /// closed.
    pub async fn execute(self: &Arc<Self>, request: ExecRequest) -> Outcome {
        let lock = self.lock_of(&request.instance);
        let _guard = lock.lock().await;
        let asked = request.clone();
        self.run(request)
            .await
            .unwrap_or_else(|refused| self.outcome(&asked, OpResult::exec_failed(refused)))
    }

    /// [`Self::execute`] for a request its DC sent: refused (no result:
    /// nothing ran) if a later one for the same instance has run here (see
    /// [`ExecRequest::seq`]).
    pub async fn execute_sent(self: &Arc<Self>, request: ExecRequest) -> Result<Outcome, String> {
        let lock = self.lock_of(&request.instance);
        let _guard = lock.lock().await;
        let other_life = {
            let gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
            (!self.in_its_life(&gate, &request)).then_some(gate.lapsed)
        };
        if let Some(lapsed) = other_life {
            let since = if lapsed {
                ", its lease lapsed since"
            } else {
                ""
            };
            return Err(format!(
                "refused {} of {}: sent for another life of this node (rejoin {}; now {}{since})",
                request.action,
                request.instance,
                request.rejoin,
                self.rejoin_id()
            ));
        }
        if self.overtaken(&request) {
            return Err(format!(
                "refused {} of {}: a later request for it from its DC has already run here",
                request.action, request.instance
            ));
        }
        self.run(request).await
    }

    /// Runs `request` under its instance's lock (held by the caller).
    /// `Err`: refused before anything ran (no lease now), which a DC must
    /// not take for the resource's failure.
    async fn run(self: &Arc<Self>, request: ExecRequest) -> Result<Outcome, String> {
        let request = self.as_started(request);
        let mut op = match op_request(&request) {
            Ok(op) => op,
            Err(reason) => return Ok(self.outcome(&request, OpResult::exec_failed(reason))),
        };
        if request.is_probe() && request.is_fence_device() {
            return Ok(self.probe_registration(&request));
        }
        if request.needs_lease() {
            self.wait_for_gate().await;
            let cancel = Cancel::default();
            let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
            // Its life is asked again: the lease may have lapsed while it
            // waited for the gate.
            let from_dc = request.rejoin != 0;
            if gate.closed || (from_dc && !self.in_its_life(&gate, &request)) {
                return Err(format!(
                    "refused {} of {}: this node holds no lease",
                    request.action, request.instance
                ));
            }
            gate.in_flight
                .insert(request.instance.clone(), (request.clone(), cancel.clone()));
            drop(gate);
            op.cancel = Some(cancel);
            // On disk before it runs: a crash during it can leave a
            // process, which a restarted daemon must know of. Not on disk
            // (a full or read-only file system): it does not run.
            if !self.save_held() {
                let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
                gate.in_flight.remove(&request.instance);
                let refused = format!(
                    "refused {} of {}: what runs here cannot be recorded on disk",
                    request.action, request.instance
                );
                return Ok(self.outcome(&request, OpResult::exec_failed(refused)));
            }
        }
        if op.action == Action::Stop || op.action == Action::Demote {
            self.agents.stop_monitoring(&request.instance);
        }
        let result = self.agents.run(op.clone()).await;
        let outcome = self.outcome(&request, result);
        // Tracked before it leaves the gate, so a resource is always in one
        // of the two while it may be active.
        let changed = self.track(&request, &op, &outcome);
        if request.needs_lease() {
            let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
            gate.in_flight.remove(&request.instance);
        }
        // A failed save leaves the executor uncertain (see `save_held`).
        if changed || request.needs_lease() {
            let _ = self.save_held();
        }
        Ok(outcome)
    }

    /// Whether a later request of the same or a newer term has run for
    /// this instance (see [`ExecRequest::seq`]); if not, this one is now
    /// the latest. Called under the instance's lock, so what runs is in
    /// order.
    fn overtaken(&self, request: &ExecRequest) -> bool {
        let mut latest = self.latest_sent.lock().unwrap_or_else(|p| p.into_inner());
        let order = (request.term, request.seq);
        match latest.get(&request.instance) {
            Some(&seen) if seen >= order => true,
            _ => {
                latest.insert(request.instance.clone(), order);
                false
            }
        }
    }

    /// A stop or demote acts on what was started: with the agent and
    /// parameters the instance was started with, which the configuration
    /// may have changed since (an IP address to take down is the old one)
    /// or no longer have (an orphan); its own timeout and term stay.
    fn as_started(&self, mut request: ExecRequest) -> ExecRequest {
        if matches!(request.action.as_str(), "stop" | "demote") {
            let active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(started) = active.get(&request.instance) {
                request.resource = started.resource.clone();
                request.params = started.params.clone();
            }
        }
        request
    }

    /// A fence device runs where it is registered, as with Pacemaker's
    /// fencer: its agent's monitor checks the device, which every node
    /// that can reach it would pass, so a probe answers from what this
    /// executor started (and nothing after a restart of the daemon).
    fn probe_registration(&self, request: &ExecRequest) -> Outcome {
        let registered = self
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&request.instance);
        let mut result = OpResult::exec_failed("");
        result.exit_reason = None;
        result.status = if registered {
            AgentStatus::Ok
        } else {
            AgentStatus::NotRunning
        };
        self.outcome(request, result)
    }

    /// Whether an operation stamped `term` may run: not older than any
    /// term an operation here was stamped with (the node's Raft term may
    /// lag behind a new DC's first request).
    pub fn accepts_term(&self, term: u64) -> bool {
        self.highest_term.fetch_max(term, Ordering::SeqCst) <= term
    }

    /// Waits a moment for a closed gate to open: a new DC may send its
    /// first start a heartbeat before this node's first grant from it has
    /// been seen by the lease loop. Bounded; then the caller refuses.
    async fn wait_for_gate(&self) {
        within_gate_wait(|| {
            let gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
            !gate.closed || gate.leaving
        })
        .await;
    }

    /// Opens the lease gate: the node holds its lease.
    pub fn open_gate(&self) {
        let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        gate.closed = gate.leaving;
    }

    /// The turn of a rejoin or a leave (see the field).
    pub async fn rejoin_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.rejoin_turn.lock().await
    }

    /// Closes the gate for good (a clean stop): what is running finishes
    /// and is moved or stopped, nothing new starts here. Called in the
    /// rejoin turn.
    pub fn leave(&self) {
        let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        gate.leaving = true;
        gate.closed = true;
    }

    /// Whether the node is leaving ([`Self::leave`]).
    pub fn is_leaving(&self) -> bool {
        self.gate.lock().unwrap_or_else(|p| p.into_inner()).leaving
    }

    /// Closes the lease gate and cancels every operation that needs the
    /// lease and is still running; returns them, so they are stopped too.
    pub fn close_gate(&self) -> Vec<ExecRequest> {
        let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        gate.closed = true;
        gate.lapsed = true;
        gate.in_flight
            .values()
            .map(|(request, cancel)| {
                cancel.cancel();
                request.clone()
            })
            .collect()
    }

    /// Saves what is held (`active` and the operations in flight that
    /// need the lease) to the held file; a failed save leaves this
    /// executor uncertain. Fence devices are left out: their registration
    /// ends with the daemon.
    fn save_held(&self) -> bool {
        let file = self.held_file.lock().unwrap_or_else(|p| p.into_inner());
        let Some(file) = file.as_ref() else {
            return true;
        };
        let mut held = self
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (request, _) in self
            .gate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .in_flight
            .values()
        {
            held.entry(request.instance.clone())
                .or_insert_with(|| request.clone());
        }
        held.retain(|_, r| !r.is_fence_device());
        if let Err(e) = file.save(&held) {
            tracing::error!(
                "cannot save what runs here: {e}; the watchdog is fed only under a lease"
            );
            *self.uncertain.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(format!("a save failed: {e}"));
            return false;
        }
        true
    }

    /// Whether this executor knows everything that runs here: what it
    /// holds is on record, its predecessor's record included.
    pub fn knows_what_runs(&self) -> bool {
        self.uncertain
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// An uncertain executor becomes certain once a one-shot operation
    /// (a probe, start or stop) has run here for each of `configured`
    /// since this daemon started: the caller passes a configuration at
    /// least as new as anything a predecessor could have been asked to
    /// run. Returns [`Self::knows_what_runs`].
    pub fn learn_certainty<'a>(&self, configured: impl IntoIterator<Item = &'a str>) -> bool {
        let mut uncertain = self.uncertain.lock().unwrap_or_else(|p| p.into_inner());
        if uncertain.is_none() {
            return true;
        }
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if !configured.into_iter().all(|id| known.contains(id)) {
            return false;
        }
        drop(known);
        let held_file = self.held_file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = held_file.as_ref() {
            file.complete();
        }
        tracing::info!(
            "every configured resource was probed here: what runs here is known again (was: {})",
            uncertain.take().unwrap_or_default()
        );
        true
    }

    /// Remembers what runs here and keeps recurring monitors going;
    /// whether what is held changed.
    fn track(&self, request: &ExecRequest, op: &OpRequest, outcome: &Outcome) -> bool {
        // The agent ran and answered: what runs of this resource is known
        // (not when it could not run, or when a fence device is probed
        // from its registration).
        if request.interval_ms == 0
            && !matches!(
                outcome.result.status,
                AgentStatus::ExecFailed | AgentStatus::TimedOut
            )
        {
            self.known
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(request.resource.id.clone());
        }
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        let before = active.len();
        let running = outcome.result.status.is_running();
        match request.action.as_str() {
            // A failed start may have started the service all the same
            // (Pacemaker stops it): it stays here until a stop, so the
            // lease rule stops it too. Not when the agent never ran or is
            // missing, nor a fence device's (it registered nothing).
            "start" | "promote" | "demote" | "migrate_from"
                if outcome.ok
                    || !(request.is_fence_device()
                        || matches!(
                            outcome.result.status,
                            AgentStatus::ExecFailed | AgentStatus::NotInstalled
                        )) =>
            {
                active.insert(request.instance.clone(), request.clone());
            }
            "stop" | "migrate_to" if outcome.ok => {
                active.remove(&request.instance);
            }
            // Found running: what started it (if known here) keeps it, so
            // its stop runs with the parameters it was started with, not
            // ones changed since.
            "monitor" if request.interval_ms == 0 && running => {
                active
                    .entry(request.instance.clone())
                    .or_insert_with(|| request.clone());
            }
            // A probe that found it stopped (a predecessor's start that
            // never took, or a resource that died).
            "monitor"
                if request.interval_ms == 0 && outcome.result.status == AgentStatus::NotRunning =>
            {
                active.remove(&request.instance);
            }
            "monitor" if request.interval_ms > 0 => {
                let key = MonitorKey {
                    resource: request.instance.clone(),
                    interval_ms: request.interval_ms,
                };
                self.last_monitor
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, outcome.result.status.ocf_code());
                let spec = MonitorSpec {
                    request: op.clone(),
                    expected: request.expected,
                };
                if let Err(e) = self.agents.keep_monitoring(spec) {
                    tracing::error!(resource = %request.instance, "cannot keep monitoring: {e}");
                }
                if running {
                    active
                        .entry(request.instance.clone())
                        .or_insert_with(|| request.clone());
                }
            }
            _ => {}
        }
        // A one-shot operation may replace the request a resource is
        // held by (its parameters) without changing the count.
        active.len() != before || request.interval_ms == 0
    }

    fn outcome(&self, request: &ExecRequest, result: OpResult) -> Outcome {
        let now_s = now_s();
        let call_id = self.next_call_id.fetch_add(1, Ordering::Relaxed);
        let ok = oprecord::as_expected(&result, request.expected, request.is_probe());
        let mut op = oprecord::history_op(
            &request.resource.id,
            &request.action,
            request.interval_ms,
            request.expected,
            &result,
            call_id,
            now_s,
        );
        oprecord::note_migration(&mut op, &request.meta);
        // One-shot operations say with what the instance runs now (a
        // recurring monitor's record never replaces theirs).
        if request.interval_ms == 0 {
            op.op_digest = Some(tandem_model::params_digest(&request.params));
        }
        Outcome {
            node: self.node_name.clone(),
            resource: request.resource.clone(),
            op,
            result,
            ok,
            rejoin: self.rejoin_id(),
        }
    }

    /// Turns a recurring monitor's result into an outcome worth recording:
    /// only a change from what was last reported, and only while the
    /// monitor is still wanted.
    pub fn monitor_change(&self, event: &MonitorEvent) -> Option<Outcome> {
        let code = event.result.status.ocf_code();
        {
            let mut last = self.last_monitor.lock().unwrap_or_else(|p| p.into_inner());
            let previous = last.get_mut(&event.key)?;
            if *previous == code {
                return None;
            }
            *previous = code;
        }
        let active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        let mut request = active.get(&event.key.resource)?.clone();
        request.action = "monitor".into();
        request.interval_ms = event.key.interval_ms;
        request.expected = event.expected;
        drop(active);
        Some(self.outcome(&request, event.result.clone()))
    }

    /// Closes the gate, cancels what is in flight and stops every resource
    /// this node runs or was starting, all at once (the lease rule: a node
    /// without a lease must hold nothing by the time its lease ends).
    /// Returns the stops' outcomes.
    pub async fn stop_everything(self: &Arc<Self>, term: u64) -> Vec<Outcome> {
        let cancelled = self.close_gate();
        let mut targets: BTreeMap<String, ExecRequest> = self
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for request in cancelled {
            targets.entry(request.instance.clone()).or_insert(request);
        }
        let stops = targets.into_values().map(|mut r| {
            r.term = term;
            r.action = "stop".into();
            r.interval_ms = 0;
            r.expected = Expected::Ok;
            let this = self.clone();
            async move { this.execute(r).await }
        });
        let results = futures_util::future::join_all(stops).await;
        for o in &results {
            tracing::warn!(resource = %o.resource.id, ok = o.ok, "stopped {} here", o.resource.id);
        }
        results
    }

    /// Whether anything is running here or being started.
    pub fn holds_resources(&self) -> bool {
        // In flight first: an operation enters `active` before it leaves
        // the gate, so one finishing between the two reads is seen.
        let in_flight = !self
            .gate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .in_flight
            .is_empty();
        in_flight
            || !self
                .active
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
    }

    /// Stops monitor workers (resources keep running, as when the daemon
    /// stops: they are probed again when it returns).
    pub fn shutdown(&self) {
        let active: Vec<String> = self
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        for instance in active {
            self.agents.stop_monitoring(&instance);
        }
    }
}

/// Routes built-in agents (`ocf:tandem:*`) to the built-in OCF root, the
/// rest to the installed agents.
struct Dispatch {
    installed: Executor,
    builtin: Executor,
}

impl Runner for Dispatch {
    fn execute(&self, request: &OpRequest) -> OpResult {
        match request.agent.provider.as_deref() {
            Some(builtin::PROVIDER) => self.builtin.execute(request),
            _ => self.installed.execute(request),
        }
    }
}

fn op_request(request: &ExecRequest) -> Result<OpRequest, String> {
    let r = &request.resource;
    let spec = match (&r.class, &r.provider, &r.agent) {
        (Some(c), Some(p), Some(a)) => format!("{c}:{p}:{a}"),
        (Some(c), None, Some(a)) => format!("{c}:{a}"),
        _ => return Err(format!("resource {} has no agent", r.id)),
    };
    let agent: AgentRef = spec.parse().map_err(|e| format!("{e}"))?;
    let action: Action = request.action.parse().map_err(|e| format!("{e}"))?;
    Ok(OpRequest {
        resource: request.instance.clone(),
        agent,
        action,
        params: request.params.clone(),
        meta: request.meta.clone(),
        timeout_ms: request.timeout_ms,
        interval_ms: request.interval_ms,
        cancel: None,
    })
}

/// Whether this node holds a lease, waiting a moment for its first grant
/// from a new DC (see [`LocalExecutor::wait_for_gate`]).
async fn holds_lease_soon(node: &ClusterNode) -> bool {
    within_gate_wait(|| node.view().lease_left_ms > 0).await
}

/// Polls `ready` every 10 ms until it holds (true) or [`GATE_WAIT`] has
/// passed (false).
async fn within_gate_wait(mut ready: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + GATE_WAIT;
    loop {
        if ready() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Answers `POST /execute`: refuses a stale token, runs the operation.
pub async fn serve_request(
    node: &ClusterNode,
    executor: &Arc<LocalExecutor>,
    request: ExecRequest,
) -> Result<Outcome, String> {
    if request.needs_lease() && !holds_lease_soon(node).await {
        return Err(format!(
            "refused {} of {}: this node holds no lease",
            request.action, request.instance
        ));
    }
    if !node.accepts_token(request.term) || !executor.accepts_term(request.term) {
        return Err(format!(
            "refused {} of {}: term {} is older than this node's ({}); the sender is no longer DC",
            request.action,
            request.instance,
            request.term,
            node.view().term
        ));
    }
    // A task of its own: hyper drops a request's future when the caller
    // hangs up, and an operation must never be abandoned half-way (its
    // per-resource lock released while the agent still runs).
    let executor = executor.clone();
    tokio::spawn(async move { executor.execute_sent(request).await })
        .await
        .map_err(|e| format!("the operation's task failed: {e}"))?
}

pub(crate) fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Agents that answer every operation at once with success, and
    /// remember each operation they ran.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<OpRequest>>);

    impl Recorded {
        /// The actions run, in order.
        fn actions(&self) -> Vec<String> {
            let ran = self.0.lock().unwrap();
            ran.iter().map(|op| op.action.to_string()).collect()
        }
    }

    impl Agents for Recorded {
        fn run(&self, op: OpRequest) -> BoxFuture<'static, OpResult> {
            self.0.lock().unwrap().push(op);
            let mut ok = OpResult::exec_failed("");
            ok.status = AgentStatus::Ok;
            ok.exit_reason = None;
            Box::pin(async move { ok })
        }
        fn keep_monitoring(&self, _: MonitorSpec) -> Result<(), String> {
            Ok(())
        }
        fn stop_monitoring(&self, _: &str) {}
    }

    fn request(action: &str, ip: &str, agent: &str) -> ExecRequest {
        ExecRequest {
            term: 1,
            resource: ResourceAgent {
                id: "vip".into(),
                class: Some("ocf".into()),
                provider: Some("heartbeat".into()),
                agent: Some(agent.into()),
            },
            instance: "vip".into(),
            action: action.into(),
            interval_ms: 0,
            timeout_ms: 20_000,
            expected: Expected::Ok,
            params: BTreeMap::from([("ip".to_string(), ip.to_string())]),
            meta: BTreeMap::new(),
            seq: 0,
            rejoin: 0,
        }
    }

    /// An executor whose node holds its lease and rejoined, running
    /// `Recorded` agents.
    fn leased_executor() -> (Arc<Recorded>, Arc<LocalExecutor>) {
        let agents = Arc::new(Recorded::default());
        let dir = std::env::temp_dir().join(format!("tandem-exec-{}", std::process::id()));
        let executor =
            LocalExecutor::with_agents("n1", agents.clone(), ExecConfig::default(), dir, None);
        executor.open_gate();
        executor.begin_rejoin();
        (agents, executor)
    }

    #[tokio::test]
    async fn a_start_that_cannot_be_recorded_on_disk_does_not_run() {
        let agents = Arc::new(Recorded::default());
        let nowhere = PathBuf::from("/nonexistent/tandem-exec-test");
        let held = HeldFile::new(nowhere.join("held.json"), "boot-1".into());
        let executor = LocalExecutor::with_agents(
            "n1",
            agents.clone(),
            ExecConfig::default(),
            nowhere.join("attrs.json"),
            Some(held),
        );
        executor.open_gate();
        let outcome = executor
            .execute(request("start", "10.0.0.1", "IPaddr2"))
            .await;
        assert!(!outcome.ok);
        assert!(agents.0.lock().unwrap().is_empty(), "the agent ran");
        assert!(!executor.holds_resources());
        assert!(!executor.knows_what_runs());
    }

    #[tokio::test]
    async fn a_start_sent_for_another_life_of_the_node_is_refused() {
        let (agents, executor) = leased_executor();
        let life = executor.rejoin_id();
        let sent = |action: &str, rejoin: u64, seq: u64| {
            let mut r = request(action, "10.0.0.1", "IPaddr2");
            (r.rejoin, r.seq) = (rejoin, seq);
            r
        };
        // Planned with no rejoin recorded, or for a predecessor's.
        assert!(executor.execute_sent(sent("start", 0, 1)).await.is_err());
        let older = life.wrapping_add(1).max(1);
        assert!(executor
            .execute_sent(sent("start", older, 1))
            .await
            .is_err());
        // The lease lapses and comes back: until the node rejoins, a
        // start planned before (held back in the network) does not run,
        // even through an open gate.
        executor.close_gate();
        executor.open_gate();
        let held_back = executor.execute_sent(sent("start", life, 1)).await;
        assert!(
            held_back
                .as_ref()
                .is_err_and(|e| e.contains("its lease lapsed since")),
            "{:?}",
            held_back.map(|o| o.ok)
        );
        // Rejoined: only the new life's starts run; a stop needs no life.
        let next = executor.begin_rejoin();
        assert!(executor.execute_sent(sent("start", life, 1)).await.is_err());
        let start = executor.execute_sent(sent("start", next, 2)).await;
        assert!(start.is_ok_and(|o| o.ok));
        let stop = executor.execute_sent(sent("stop", life, 3)).await;
        assert!(stop.is_ok_and(|o| o.ok));
        let ran = agents.actions();
        assert_eq!(ran, ["start", "stop"]);
    }

    #[tokio::test]
    async fn a_stop_acts_on_what_was_started_not_on_the_new_configuration() {
        let (agents, executor) = leased_executor();
        let run = |r: ExecRequest| {
            let executor = executor.clone();
            async move { assert!(executor.execute(r).await.ok) }
        };
        run(request("start", "10.0.0.1", "IPaddr2")).await;
        // The resource was deleted: its stop names the agent of its
        // history and no parameters.
        let mut orphan = request("stop", "", "IPaddr2");
        orphan.params.clear();
        run(orphan).await;
        run(request("start", "10.0.0.2", "IPaddr2")).await;
        // The address was changed meanwhile (and a probe found it
        // running): the old one is taken down.
        let mut probe = request("monitor", "10.0.0.3", "IPaddr2");
        probe.expected = Expected::NotRunning;
        executor.execute(probe).await;
        run(request("stop", "10.0.0.3", "IPaddr2")).await;
        // Nothing started: the stop is as asked.
        run(request("stop", "10.0.0.4", "IPaddr2")).await;
        let ran: Vec<String> = agents
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|op| format!("{} {}", op.action, op.params["ip"]))
            .collect();
        let expected = [
            "start 10.0.0.1",
            "stop 10.0.0.1",
            "start 10.0.0.2",
            "monitor 10.0.0.3",
            "stop 10.0.0.2",
            "stop 10.0.0.4",
        ];
        assert_eq!(ran, expected);
    }

    #[tokio::test]
    async fn a_request_overtaken_by_a_later_one_from_its_dc_is_refused() {
        let (agents, executor) = leased_executor();
        let sent = |action: &str, term: u64, seq: u64| {
            let mut r = request(action, "10.0.0.1", "IPaddr2");
            (r.term, r.seq, r.rejoin) = (term, seq, executor.rejoin_id());
            if action == "monitor" {
                r.expected = Expected::NotRunning;
            }
            r
        };
        // The DC's start (seq 1) is delayed past its timeout; its probe
        // (seq 2) runs first; the start then arrives and is refused.
        assert!(executor.execute_sent(sent("monitor", 4, 2)).await.is_ok());
        let late = executor.execute_sent(sent("start", 4, 1)).await;
        assert!(late.err().unwrap_or_default().contains("later request"));
        // Later requests, and a newer DC's (its own count), run.
        assert!(executor
            .execute_sent(sent("start", 4, 3))
            .await
            .is_ok_and(|o| o.ok));
        assert!(executor
            .execute_sent(sent("stop", 5, 1))
            .await
            .is_ok_and(|o| o.ok));
        // The executor's own operations (a stop when its lease lapses,
        // made from the request that started the instance) are not
        // ordered.
        assert!(executor.execute(sent("stop", 4, 3)).await.ok);
        let ran = agents.actions();
        assert_eq!(ran, ["monitor", "start", "stop", "stop"]);
    }
}
