//! The controller: runs on the DC only, while a quorum follows it (see
//! [`may_act`]). On every change
//! (configuration, membership, a recorded result, an attribute) and at
//! least once a second (timers such as failure-timeout), it
//!
//! 1. settles lost nodes ([`crate::settle`]): fences them when a device
//!    can, otherwise waits for an operator's `tandem node confirm-down`
//!    and the node's leases to expire, then records the node down.
//!    Nothing else is scheduled while a node is unsettled;
//! 2. resolves operations recorded as pending (dispatched by a DC that is
//!    gone, result never recorded): their resource is probed again;
//! 3. probes: every online node runs a one-shot monitor of every resource
//!    it has no history for, so running services are discovered;
//! 4. schedules and executes the transition: actions go to each node's
//!    executor (`POST /execute`) stamped with the term confirmed by a
//!    quorum, in dependency order and in parallel where the graph allows;
//!    an operation that can make a resource active is recorded as pending
//!    before it is sent; every result is recorded through the log. A failed action or a
//!    change in the world stops dispatching; what is in flight finishes,
//!    then the loop plans again.

use crate::executor::{ExecRequest, LocalExecutor};
use crate::oprecord::{self, Outcome};
use crate::settle::{self, Decision, LostNode, SettledBy};
use crate::{fencing, live, opspec};
use hyper::Method;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_cluster::{ClusterNode, Command, MembershipView, Replicated};
use tandem_model::Cluster;
use tandem_scheduler::Action;
use tokio::task::JoinSet;

/// How long the controller waits at most between two plans.
const REPLAN_EVERY: Duration = Duration::from_millis(1000);
/// Slack added to an operation's timeout for the call that carries it.
const CALL_SLACK: Duration = Duration::from_secs(5);
/// After this many identical transitions that all succeeded without
/// changing anything, the controller backs off (a scheduler/executor
/// disagreement must not spin).
const SAME_PLAN_LIMIT: u32 = 3;
const BACKOFF: Duration = Duration::from_secs(5);
/// How long one plan may take (the same bound as a document's admission,
/// which every committed configuration passed).
const SCHEDULE_BUDGET: Duration = crate::limits::ADMISSION_BUDGET;
/// A failed fence of a lost node is tried again after this long.
const FENCE_RETRY: Duration = Duration::from_secs(10);

/// What the controller needs besides the cluster member.
pub struct Controller {
    pub node: Arc<ClusterNode>,
    pub executor: Arc<LocalExecutor>,
    pub client: Arc<crate::ApiClient>,
    /// When, in log order, each node was last seen online and each
    /// confirm-down first seen (kept by [`watch_confirmations`]).
    pub confirmations: Arc<std::sync::Mutex<ConfirmWatch>>,
    /// When each lost node was last fenced (or tried).
    pub fence_tried: std::sync::Mutex<BTreeMap<String, Instant>>,
}

/// A finished piece of a transition.
enum Done {
    Op(Result<Box<Outcome>, Unreached>),
    Fence(Result<(), String>),
}

/// An operation sent to a node that gave no result.
struct Unreached {
    node: String,
    resource: String,
    why: String,
}

impl Unreached {
    /// An operation never sent (nothing to forget on the node).
    fn before_sending(why: String) -> Unreached {
        Unreached {
            node: String::new(),
            resource: String::new(),
            why,
        }
    }
}

/// What a plan depends on that changes without a log entry: checked on
/// every wake so the controller steps only when it changed (or on the
/// timer). The applied log position covers the replicated state.
#[derive(PartialEq)]
struct Trigger {
    applied: Option<(u64, u64)>,
    term: u64,
    alive: Vec<String>,
    expired: Vec<String>,
}

impl Trigger {
    fn of(view: &MembershipView, node: &ClusterNode) -> Trigger {
        let peers = || view.peers();
        Trigger {
            applied: node.applied_position(),
            term: view.term,
            alive: peers()
                .filter(|v| view.online(v))
                .map(|v| v.name.clone())
                .collect(),
            expired: peers()
                .filter(|v| v.lease_expired_ms.is_some())
                .map(|v| v.name.clone())
                .collect(),
        }
    }
}

/// The node attribute a node sets when it stops cleanly (Pacemaker's): the
/// scheduler moves its resources away.
pub const SHUTDOWN: &str = "shutdown";

/// Whether a node's recorded history shows nothing active or pending: the
/// latest one-shot operation of every resource is a successful stop or a
/// probe that found it not running. Conservative: anything else (a start,
/// a failed stop, a monitor that found it running) counts as active.
pub(crate) fn runs_nothing(status: &tandem_cluster::NodeStatus) -> bool {
    status.resources.iter().all(|(rsc, r)| {
        let Some(last) = r.ops.get(&format!("{rsc}_last_0")) else {
            return r.ops.is_empty();
        };
        let stopped = last.operation == "stop" && last.rc_code == 0 && last.op_status == 0;
        let not_running = last.operation == "monitor" && last.rc_code == 7 && last.op_status == 0;
        stopped || not_running
    })
}

/// Which operator confirmations count: one counts only if it was first
/// seen after the node was last seen online, both in log order (the
/// applied index at the look). Kept by a task of its own, so a controller
/// busy in a long transition still sees a node come back (and a node
/// lost meanwhile).
#[derive(Default)]
pub struct ConfirmWatch {
    /// Node → applied index when it was last seen online.
    online_at: BTreeMap<String, u64>,
    /// Node → applied index when its confirm-down was first seen.
    confirmed_at: BTreeMap<String, u64>,
}

impl ConfirmWatch {
    fn observe(&mut self, view: &MembershipView, applied: u64, confirmed: &BTreeSet<String>) {
        for v in view.peers() {
            if view.online(v) {
                self.online_at.insert(v.name.clone(), applied);
            }
        }
        self.confirmed_at.retain(|name, _| confirmed.contains(name));
        for name in confirmed {
            self.confirmed_at.entry(name.clone()).or_insert(applied);
        }
    }

    /// Whether `node`'s confirm-down counts: seen after its last time
    /// online (never seen online by this DC: it counts).
    fn counts(&self, node: &str) -> bool {
        match self.confirmed_at.get(node) {
            None => false,
            Some(c) => self.online_at.get(node).is_none_or(|o| o < c),
        }
    }

    /// Whether `node`'s confirm-down was seen, but not after its last time
    /// online.
    fn stale(&self, node: &str) -> bool {
        self.confirmed_at.contains_key(node) && !self.counts(node)
    }
}

/// Looks every [`CONFIRM_LOOK_EVERY`] at who is online and which nodes are
/// confirmed down, while this node leads (what it saw before it led is
/// forgotten).
async fn watch_confirmations(node: Arc<ClusterNode>, watch: Arc<std::sync::Mutex<ConfirmWatch>>) {
    let mut tick = tokio::time::interval(CONFIRM_LOOK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let view = node.view();
        let mut watch = watch.lock().unwrap_or_else(|p| p.into_inner());
        if !leads(&view) {
            *watch = ConfirmWatch::default();
            continue;
        }
        let (applied, confirmed) = node.read_applied(|index, state| {
            let confirmed: BTreeSet<String> = state
                .status
                .iter()
                .filter(|(_, s)| crate::lease::confirmed_down(s))
                .map(|(n, _)| n.clone())
                .collect();
            (index.unwrap_or(0), confirmed)
        });
        watch.observe(&view, applied, &confirmed);
    }
}

/// How often [`watch_confirmations`] looks.
const CONFIRM_LOOK_EVERY: Duration = Duration::from_millis(100);

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether this node may run the controller now: it leads, hears a quorum
/// (a leader cut off from the majority still believes it leads, openraft
/// issue 1898, and must not act, above all not fence the majority it
/// cannot hear), and has applied everything committed (a new leader plans
/// from its predecessor's last entries, pending records included). It need
/// not hold the DC lease yet: a deposed DC can commit nothing, so it can
/// start nothing (starts are recorded as pending first), and executors
/// refuse its older term once they saw this one; what does depend on a
/// predecessor's grants having run out (`lease_expired_ms`: settling by
/// confirm-down or a clean shutdown) is only known under the DC lease.
/// Fencing a lost DC at once is what makes its loss as quick as any other
/// node's.
fn may_act(view: &MembershipView, node: &ClusterNode) -> bool {
    let applied = node.applied_position().map(|(_, index)| index);
    leads(view) && applied >= view.committed_index
}

/// This node is the Raft leader and hears a quorum.
fn leads(view: &MembershipView) -> bool {
    view.state == "Leader" && view.dc_id == Some(view.node_id) && view.quorum
}

/// What settles a lost node in `cluster`: fencing when a device is
/// configured, otherwise an operator.
pub fn settled_by(cluster: &Cluster) -> SettledBy {
    if fencing::configured(cluster) {
        SettledBy::Fencing
    } else {
        SettledBy::Operator
    }
}

/// What settling lost nodes did.
enum Settle {
    /// Nothing to settle.
    Nothing,
    /// Some node was recorded down (fenced or its lease expired): the
    /// replicated state changed under the snapshot being planned from.
    RecordedDown,
    /// Some node is inside its lease window, or could not be fenced.
    Waiting,
}

/// What made the last plan, to notice a loop.
#[derive(Default)]
struct Repeat {
    last: Vec<(String, String, Option<String>, u64)>,
    count: u32,
}

impl Controller {
    /// Runs until `shutdown` resolves (and the confirmation watch beside
    /// it). Wakes on every Raft change (on the
    /// DC that is every heartbeat), but steps only when something the plan
    /// depends on changed, or [`REPLAN_EVERY`] passed: an idle DC idles.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let watcher = tokio::spawn(watch_confirmations(
            self.node.clone(),
            self.confirmations.clone(),
        ));
        let _stop_watcher = AbortOnDrop(watcher);
        let mut repeat = Repeat::default();
        let mut changes = self.node.watch_changes();
        let mut last: Option<(Trigger, Instant)> = None;
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                _ = changes.changed(REPLAN_EVERY) => {}
            }
            let view = self.node.view();
            if !leads(&view) {
                last = None;
                continue;
            }
            if !may_act(&view, &self.node) {
                continue;
            }
            let trigger = Trigger::of(&view, &self.node);
            if last
                .as_ref()
                .is_some_and(|(t, at)| *t == trigger && at.elapsed() < REPLAN_EVERY)
            {
                continue;
            }
            last = Some((trigger, Instant::now()));
            if let Err(e) = self.step(&mut repeat).await {
                tracing::warn!("controller: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    async fn step(&self, repeat: &mut Repeat) -> Result<(), String> {
        // Two rounds: after recording a node down, plan from the state that
        // says so, not from the snapshot taken before (it would still show
        // the node unclean, and the first result would abort the
        // transition as stale).
        for _ in 0..2 {
            let view = self.node.view();
            if !may_act(&view, &self.node) {
                return Ok(());
            }
            let state = self.node.replicated();
            let cluster = match live::cluster_of(&view, &state) {
                None => return Ok(()),
                Some(c) => {
                    c.map_err(|e| format!("the replicated configuration is invalid: {e}"))?
                }
            };
            match self.settle_lost_nodes(&view, &state, &cluster).await? {
                Settle::Waiting => return Ok(()),
                Settle::RecordedDown => continue,
                Settle::Nothing if self.resolve_pending(&view, &state).await? => continue,
                Settle::Nothing => return self.plan(&view, &state, &cluster, repeat).await,
            }
        }
        Ok(())
    }

    /// Probes what is unknown, else schedules and executes a transition.
    async fn plan(
        &self,
        view: &MembershipView,
        state: &Replicated,
        cluster: &Cluster,
        repeat: &mut Repeat,
    ) -> Result<(), String> {
        let probes = self.missing_probes(view, state, cluster);
        if !probes.is_empty() {
            let term = self.term().await?;
            let requests = probes
                .into_iter()
                .filter_map(|(node, target)| {
                    let located = opspec::locate(cluster, &target)?;
                    Some((node, located.request(cluster, &target, "monitor", 0, term)))
                })
                .collect();
            self.run_batch(requests).await;
            return Ok(());
        }
        let now = chrono_now();
        // Off the runtime's workers, within a budget: a configuration that
        // slipped past admission must not starve the lease loop or crash
        // the DC.
        let transition =
            crate::schedule_guard::schedule_bounded(cluster.clone(), now, SCHEDULE_BUDGET)
                .await
                .map_err(|e| format!("cannot schedule: {e}"))?;
        let work: Vec<&Action> = transition.actions.iter().filter(|a| !a.pseudo).collect();
        if work.is_empty() {
            repeat.count = 0;
            return Ok(());
        }
        let signature: Vec<_> = work
            .iter()
            .map(|a| {
                (
                    a.target.clone(),
                    a.task.clone(),
                    a.node.clone(),
                    a.interval_ms,
                )
            })
            .collect();
        if signature == repeat.last {
            repeat.count += 1;
            if repeat.count >= SAME_PLAN_LIMIT {
                tracing::error!(
                    "the same transition was planned {} times and changed nothing; backing off {BACKOFF:?}: {signature:?}",
                    repeat.count
                );
                tokio::time::sleep(BACKOFF).await;
                repeat.count = 0;
                return Ok(());
            }
        } else {
            repeat.last = signature;
            repeat.count = 1;
        }
        for line in &transition.summary {
            tracing::info!(
                "transition: {} {} ({}){}",
                line.verb,
                line.resource,
                line.detail,
                line.reason
                    .as_ref()
                    .map_or(String::new(), |r| format!(" {r}"))
            );
        }
        let term = self.term().await?;
        self.execute(cluster, &transition.actions, term, state, view)
            .await
    }

    async fn term(&self) -> Result<u64, String> {
        self.node
            .confirm_leadership()
            .await
            .ok_or_else(|| "no longer DC (leadership not confirmed by a quorum)".to_string())
    }

    /// Settles every lost node ([`crate::settle`]); [`Settle::Waiting`]
    /// while one is not settled yet (nothing may be scheduled then).
    async fn settle_lost_nodes(
        &self,
        view: &MembershipView,
        state: &Replicated,
        cluster: &Cluster,
    ) -> Result<Settle, String> {
        let mut waiting = false;
        let mut recorded = false;
        let by = settled_by(cluster);
        let lost = self.lost_nodes(view);
        if self
            .withdraw_stale_confirmations(view, state, &lost)
            .await?
        {
            return Ok(Settle::RecordedDown);
        }
        let lost = view.peers().filter(|v| lost.contains(&v.name));
        for peer in lost {
            let Some(status) = state.status.get(&peer.name) else {
                continue; // already recorded down, or never reported
            };
            let node = LostNode {
                name: peer.name.clone(),
                lease_expired_ms: peer.lease_expired_ms,
                confirmed_down: crate::lease::confirmed_down(status)
                    && self.confirmation_counts(&peer.name),
                fence_due: by == SettledBy::Fencing && self.may_try_fencing(&peer.name),
                shutting_down: status.transient.contains_key(SHUTDOWN),
                runs_nothing: runs_nothing(status),
            };
            match settle::decide(&node, &by) {
                Decision::Fence => {
                    // Only a DC a quorum still follows may shoot a node.
                    self.term().await?;
                    match self.fence_job(cluster, &peer.name).await {
                        Ok(()) => {
                            tracing::warn!(node = %peer.name, "fenced; recovering its resources");
                            recorded = true;
                        }
                        Err(e) => {
                            tracing::error!(node = %peer.name, "lost and fencing failed: {e}");
                            waiting = true;
                        }
                    }
                }
                Decision::Wait { why } => {
                    tracing::warn!(node = %peer.name, "{why}");
                    waiting = true;
                }
                Decision::RecordDown { how, detail } => {
                    tracing::warn!(node = %peer.name, "{detail}; recovering its resources");
                    let record = tandem_cluster::FenceRecord {
                        target: peer.name.clone(),
                        action: how.into(),
                        device: String::new(),
                        executor: view.node_name.clone(),
                        ok: true,
                        at_ms: fencing::now_ms(),
                        detail,
                    };
                    self.propose(Command::Batch(vec![
                        Command::RecordFence(record),
                        Command::NodeDown {
                            node: peer.name.clone(),
                        },
                    ]))
                    .await?;
                    recorded = true;
                }
            }
        }
        Ok(if waiting {
            Settle::Waiting
        } else if recorded {
            Settle::RecordedDown
        } else {
            Settle::Nothing
        })
    }

    /// Operations recorded as pending on a node that is heard: dispatched
    /// by a DC that is gone (this one awaits every call it makes before it
    /// plans again), their result never recorded. Whether they ran is
    /// unknown, so the resource's history there is forgotten and it is
    /// probed (the probe queues behind anything still running there).
    /// Returns whether anything was forgotten.
    async fn resolve_pending(
        &self,
        view: &MembershipView,
        state: &Replicated,
    ) -> Result<bool, String> {
        let mut forget = Vec::new();
        for peer in view.peers().filter(|v| view.online(v)) {
            let Some(status) = state.status.get(&peer.name) else {
                continue;
            };
            for (rsc, ops) in &status.resources {
                if ops.ops.values().any(|o| o.op_status == oprecord::PENDING) {
                    tracing::warn!(node = %peer.name, resource = %rsc, "an operation recorded as pending never reported back (its DC is gone): probing the resource again");
                    forget.push(Command::ForgetHistory {
                        node: Some(peer.name.clone()),
                        resource: Some(rsc.clone()),
                    });
                }
            }
        }
        if forget.is_empty() {
            return Ok(false);
        }
        self.propose(Command::Batch(forget)).await?;
        Ok(true)
    }

    /// The data nodes whose loss must be settled: not online
    /// ([`MembershipView::online`]: unheard, or heard but without a lease
    /// for a whole lease, so it can record nothing). A node back online
    /// starts a new episode: its next loss is fenced at once.
    fn lost_nodes(&self, view: &MembershipView) -> BTreeSet<String> {
        let mut fence_tried = self.fence_tried.lock().unwrap_or_else(|p| p.into_inner());
        let peers = view.peers();
        let mut lost = BTreeSet::new();
        for v in peers.filter(|v| !v.witness) {
            if view.online(v) {
                fence_tried.remove(&v.name);
            } else {
                lost.insert(v.name.clone());
            }
        }
        lost
    }

    /// An operator's confirm-down counts only for the loss it was made
    /// in: one left on a node that is online again, or one the watch saw
    /// before the node's last time online ([`ConfirmWatch::stale`]), is
    /// withdrawn through the log. Returns whether anything was withdrawn.
    async fn withdraw_stale_confirmations(
        &self,
        view: &MembershipView,
        state: &Replicated,
        lost: &BTreeSet<String>,
    ) -> Result<bool, String> {
        let stale_seen: BTreeSet<String> = {
            let watch = self.confirmations.lock().unwrap_or_else(|p| p.into_inner());
            lost.iter().filter(|n| watch.stale(n)).cloned().collect()
        };
        let confirmed = |name: &String| {
            state
                .status
                .get(name)
                .is_some_and(crate::lease::confirmed_down)
        };
        let peers = view.peers();
        let stale: Vec<Command> = peers
            .map(|v| &v.name)
            .filter(|name| !lost.contains(*name) || stale_seen.contains(*name))
            .filter(|name| confirmed(name))
            .map(|name| {
                tracing::warn!(node = %name, "withdrawing an operator's confirm-down made before this loss (or the node is back)");
                Command::SetTransient {
                    node: name.clone(),
                    name: crate::lease::CONFIRMED_DOWN.to_string(),
                    value: None,
                }
            })
            .collect();
        if stale.is_empty() {
            return Ok(false);
        }
        self.propose(Command::Batch(stale)).await?;
        Ok(true)
    }

    /// Whether the watch saw `node`'s confirm-down after its last time
    /// online.
    fn confirmation_counts(&self, node: &str) -> bool {
        let watch = self.confirmations.lock().unwrap_or_else(|p| p.into_inner());
        watch.counts(node)
    }

    /// Whether fencing `node` may be tried now: at most once per
    /// [`FENCE_RETRY`] for the same node.
    fn may_try_fencing(&self, node: &str) -> bool {
        let mut tried = self.fence_tried.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match tried.get(node) {
            Some(at) if now.duration_since(*at) < FENCE_RETRY => false,
            _ => {
                tried.insert(node.to_string(), now);
                true
            }
        }
    }

    /// Fences `target` for the transition and records the attempts.
    fn fence_job(
        &self,
        cluster: &Cluster,
        target: &str,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send + 'static {
        let action = fencing::configured_action(cluster);
        let fenced = fencing::fence_and_record(
            self.node.clone(),
            cluster.clone(),
            self.executor.exec_config(),
            target.to_string(),
            action,
        );
        async move { fenced.await.map(drop) }
    }

    /// (node, target) pairs with no recorded history: resources never
    /// probed on an online node.
    fn missing_probes(
        &self,
        view: &MembershipView,
        state: &Replicated,
        cluster: &Cluster,
    ) -> Vec<(String, String)> {
        if cluster.config.option("enable-startup-probes") == Some("false") {
            return Vec::new();
        }
        let mut probes = Vec::new();
        for peer in view.voters.iter().filter(|v| !v.witness && view.online(v)) {
            let known = state.status.get(&peer.name);
            for r in &cluster.config.resources {
                for p in r.primitives() {
                    if p.is_fencing_device() {
                        continue;
                    }
                    let recorded = known.is_some_and(|s| s.resources.contains_key(&p.id));
                    if !recorded {
                        probes.push((peer.name.clone(), p.id.clone()));
                    }
                }
            }
        }
        probes
    }

    /// Runs independent requests in parallel and records each result.
    async fn run_batch(&self, requests: Vec<(String, ExecRequest)>) {
        let mut calls = JoinSet::new();
        for (node, request) in requests {
            calls.spawn(self.dispatch(node, request));
        }
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok(Ok(outcome)) => {
                    tracing::info!(resource = %outcome.resource.id, node = %outcome.node, "probe: {:?}", outcome.result.status);
                    // Probes only: no start among them.
                    let _ = self.record(&outcome, true).await;
                }
                // Nothing recorded: probed again on the next round.
                Ok(Err(u)) => {
                    tracing::warn!(node = %u.node, resource = %u.resource, "probe: no result: {}", u.why)
                }
                Err(_) => {}
            }
        }
    }

    /// Executes `actions` in dependency order, in parallel where allowed.
    async fn execute(
        &self,
        cluster: &Cluster,
        actions: &[Action],
        term: u64,
        state: &Replicated,
        view: &MembershipView,
    ) -> Result<(), String> {
        let fingerprint = world(view, state);
        let start_is_fatal = oprecord::start_failure_is_fatal(cluster);
        let mut done = vec![false; actions.len()];
        let mut started = vec![false; actions.len()];
        let mut calls: JoinSet<(usize, Done)> = JoinSet::new();
        let mut stop_reason: Option<String> = None;
        loop {
            if stop_reason.is_none() {
                let mut progressed = true;
                while progressed {
                    progressed = false;
                    for i in 0..actions.len() {
                        if started[i] || !actions[i].after.iter().all(|&d| done[d]) {
                            continue;
                        }
                        started[i] = true;
                        if actions[i].task == "fence" && !actions[i].pseudo {
                            let fence = self.fence_job(cluster, &actions[i].target);
                            calls.spawn(async move { (i, Done::Fence(fence.await)) });
                            continue;
                        }
                        match self.request_for(cluster, actions, i, term) {
                            Some((node, request)) => {
                                let pending = request
                                    .needs_lease()
                                    .then(|| oprecord::pending(&request, &node, chrono_now()));
                                let recorder = self.node.clone();
                                let dispatch = self.dispatch(node, request);
                                calls.spawn(async move {
                                    // Recorded before it is sent: a successor
                                    // DC then knows it may be active there.
                                    if let Some(pending) = pending {
                                        if let Err(e) = recorder.propose(pending).await {
                                            let why = format!("cannot record it as pending: {e}");
                                            return (
                                                i,
                                                Done::Op(Err(Unreached::before_sending(why))),
                                            );
                                        }
                                    }
                                    (i, Done::Op(dispatch.await.map(Box::new)))
                                });
                            }
                            None => {
                                done[i] = true;
                                progressed = true;
                            }
                        }
                    }
                }
            }
            let Some(joined) = calls.join_next().await else {
                break;
            };
            let Ok((i, finished)) = joined else { continue };
            let a = &actions[i];
            let outcome = match finished {
                Done::Fence(Ok(())) => {
                    done[i] = true;
                    continue;
                }
                Done::Fence(Err(e)) => {
                    tracing::error!(node = %a.target, "fencing failed: {e}");
                    stop_reason.get_or_insert_with(|| format!("fencing {} failed", a.target));
                    continue;
                }
                Done::Op(Ok(outcome)) => *outcome,
                Done::Op(Err(u)) => {
                    stop_reason
                        .get_or_insert_with(|| format!("{} of {}: no result", a.task, a.target));
                    if u.node.is_empty() {
                        tracing::warn!(resource = %a.target, "{} not sent: {}", a.task, u.why);
                    } else {
                        self.forget_unreached(&u).await;
                    }
                    continue;
                }
            };
            if outcome.ok {
                done[i] = true;
                tracing::info!(term, resource = %a.target, node = ?a.node, "{} {}ms: ok", a.task, a.interval_ms);
            } else {
                tracing::warn!(term, resource = %a.target, node = ?a.node, "{} {}ms failed: {:?} {}", a.task, a.interval_ms, outcome.result.status, outcome.result.exit_reason.clone().unwrap_or_default());
                stop_reason.get_or_insert_with(|| format!("{} of {} failed", a.task, a.target));
            }
            // Not `?`: leaving would drop the calls still in flight; their
            // results must be awaited (and their pending records resolved).
            if let Err(e) = self.record(&outcome, start_is_fatal).await {
                tracing::warn!(resource = %a.target, "cannot record a result: {e}");
                stop_reason
                    .get_or_insert_with(|| format!("recording {} of {} failed", a.task, a.target));
            }
            if stop_reason.is_none()
                && world(&self.node.view(), &self.node.replicated()) != fingerprint
            {
                stop_reason = Some("the cluster changed during the transition".into());
            }
        }
        if let Some(reason) = stop_reason {
            tracing::info!("transition aborted ({reason}); planning again");
        }
        Ok(())
    }

    /// The executor request for action `i`, or `None` when there is nothing
    /// to run (pseudo actions, actions without a node).
    fn request_for(
        &self,
        cluster: &Cluster,
        actions: &[Action],
        i: usize,
        term: u64,
    ) -> Option<(String, ExecRequest)> {
        let a = &actions[i];
        let node = a.node.clone()?;
        if a.pseudo || a.task == "fence" || a.task == "shutdown" || a.task == "cancel" {
            return None;
        }
        let located = opspec::locate(cluster, &a.target)?;
        let mut request = located.request(cluster, &a.target, &a.task, a.interval_ms, term);
        if a.task == "notify" {
            // The pseudo action before a notification names its phase.
            let phase = a
                .after
                .iter()
                .map(|&d| actions[d].task.as_str())
                .find(|t| t.contains("notify"));
            if let Some(phase) = phase {
                let (kind, op) = phase.split_once("_notify_").unwrap_or(("post", phase));
                request.meta.insert("notify_type".into(), kind.into());
                let op = match op {
                    "running" => "start",
                    "stopped" => "stop",
                    "promoted" => "promote",
                    "demoted" => "demote",
                    other => other,
                };
                request.meta.insert("notify_operation".into(), op.into());
            }
        }
        if a.task == "migrate_to" || a.task == "migrate_from" {
            let target_of = |task: &str| {
                actions
                    .iter()
                    .find(|b| b.target == a.target && b.task == task)
                    .and_then(|b| b.node.clone())
            };
            if let (Some(source), Some(dest)) = (target_of("migrate_to"), target_of("migrate_from"))
            {
                request.meta.insert("migrate_source".into(), source);
                request.meta.insert("migrate_target".into(), dest);
            }
        }
        Some((node, request))
    }

    /// Sends one request to `node`'s executor. `Err` when no result came
    /// back (unreachable, refused, garbled): the operation may or may not
    /// have run, which is not the resource's failure.
    fn dispatch(
        &self,
        node: String,
        request: ExecRequest,
    ) -> impl std::future::Future<Output = Result<Outcome, Unreached>> + Send + 'static {
        let client = self.client.clone();
        // The replicated membership carries each node's API address, so a
        // node added at run time is reachable at once.
        let endpoint = self
            .node
            .members()
            .into_values()
            .find(|m| m.name == node && !m.witness && !m.api.is_empty())
            .map(|m| m.api);
        async move {
            let timeout = Duration::from_millis(request.timeout_ms) + CALL_SLACK;
            let unreached = |why: String| Unreached {
                node: node.clone(),
                resource: request.resource.id.clone(),
                why,
            };
            let endpoint =
                endpoint.ok_or_else(|| unreached(format!("no API address known for {node}")))?;
            let body = serde_json::to_value(&request).map_err(|e| unreached(e.to_string()))?;
            match client
                .call_one(&endpoint, Method::POST, "/execute", Some(body), timeout)
                .await
            {
                Ok((200, value)) => serde_json::from_value::<Outcome>(value)
                    .map_err(|e| unreached(format!("bad reply: {e}"))),
                Ok((status, value)) => Err(unreached(format!(
                    "refused: {status} {}",
                    value["error"].as_str().unwrap_or("")
                ))),
                Err(e) => Err(unreached(format!("cannot reach the executor: {e}"))),
            }
        }
    }

    /// An operation whose result never came back: its resource's state on
    /// that node is unknown, so its history there is forgotten and the
    /// resource is probed again once the node answers (or the node is
    /// declared down by the lease rule or a fence).
    async fn forget_unreached(&self, u: &Unreached) {
        tracing::warn!(node = %u.node, resource = %u.resource, "no result: {}; its state there is unknown until probed again", u.why);
        let forget = Command::ForgetHistory {
            node: Some(u.node.clone()),
            resource: Some(u.resource.clone()),
        };
        if let Err(e) = self.propose(forget).await {
            tracing::warn!("cannot forget the unknown state: {e}");
        }
    }

    async fn record(&self, outcome: &Outcome, start_is_fatal: bool) -> Result<(), String> {
        let command = oprecord::record(
            outcome,
            &self.node.replicated(),
            chrono_now(),
            start_is_fatal,
        );
        self.propose(command).await
    }

    async fn propose(&self, command: Command) -> Result<(), String> {
        self.node
            .propose(command)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// What, changed mid-transition, makes the rest of the plan stale: the
/// configuration, node attributes, tickets, who is alive, and the fail
/// counts and monitor results nodes report.
fn world(view: &MembershipView, state: &Replicated) -> impl PartialEq {
    let alive: BTreeSet<String> = view
        .voters
        .iter()
        .filter(|v| view.online(v))
        .map(|v| v.name.clone())
        .collect();
    let transient: BTreeMap<&String, &BTreeMap<String, String>> = state
        .status
        .iter()
        .map(|(n, s)| (n, &s.transient))
        .collect();
    (
        state.config_version,
        state.node_attributes.clone(),
        state.tickets.clone(),
        alive,
        format!("{transient:?}"),
    )
}

fn chrono_now() -> i64 {
    crate::executor::now_s()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_confirmation_counts_only_if_seen_after_the_node_was_last_online() {
        let mut w = ConfirmWatch::default();
        w.online_at.insert("n2".into(), 10);
        // Confirmed while lost (index 12): counts, not stale.
        w.confirmed_at.insert("n2".into(), 12);
        assert!(w.counts("n2") && !w.stale("n2"));
        // Then seen online again at 15: stale, no longer counts.
        w.online_at.insert("n2".into(), 15);
        assert!(!w.counts("n2") && w.stale("n2"));
        // Withdrawn (gone from the state): forgotten.
        let view_less: BTreeSet<String> = BTreeSet::new();
        w.confirmed_at.retain(|n, _| view_less.contains(n));
        assert!(!w.counts("n2") && !w.stale("n2"));
        // Never seen online by this DC: a confirmation counts.
        w.confirmed_at
            .extend(set(&["n3"]).into_iter().map(|n| (n, 20)));
        assert!(w.counts("n3"));
    }
}
