//! The controller: runs on the DC only, while a quorum follows it (see
//! [`may_act`]). On every change (configuration, membership, a recorded
//! result, an attribute) and at least once a second (timers such as
//! failure-timeout), it asks [`crate::engine`] what to do and carries it
//! out: commits through the log, fences, probes, the scheduler run (off the
//! runtime's workers, within a budget), and the transition: actions go to
//! each node's executor (`POST /execute`) stamped with the term confirmed
//! by a quorum, in dependency order and in parallel where the graph
//! allows; an operation that can make a resource active is recorded as
//! pending before it is sent; every result is recorded through the log.
//! What is decided is decided in the engine; this module only does I/O.

use crate::engine::{ConfirmWatch, Dispatch, Engine, Facts, Finished, Planned, Round, Start};
use crate::executor::ExecRequest;
use crate::oprecord::{self, Outcome};
use crate::reach::Reach;
use crate::{fencing, live, opspec};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;
// tokio's clock: the same in production, virtual under a paused runtime.
use tandem_cluster::{ClusterNode, Command, CommandResult, MembershipView, Replicated};
use tandem_model::Cluster;
use tandem_scheduler::Action;
use tokio::time::Instant;

pub use crate::engine::{runs_nothing, settled_by, SHUTDOWN, SHUTDOWN_DONE};
use tokio::task::JoinSet;

/// How long the controller waits at most between two plans.
const REPLAN_EVERY: Duration = Duration::from_millis(1000);
/// Slack added to an operation's timeout for the call that carries it.
const CALL_SLACK: Duration = Duration::from_secs(5);
/// How long the controller pauses when the same transition keeps coming
/// back ([`Planned::BackOff`]).
const BACKOFF: Duration = Duration::from_secs(5);
/// How long one plan may take (the same bound as a document's admission,
/// which every committed configuration passed).
const SCHEDULE_BUDGET: Duration = crate::limits::ADMISSION_BUDGET;

/// What the controller needs besides the cluster member.
pub struct Controller {
    pub node: Arc<ClusterNode>,
    /// Executors and fence devices ([`crate::reach::Remote`] in production).
    pub reach: Arc<dyn Reach>,
    /// When, in log order, each node was last seen online and each
    /// confirm-down first seen (kept by [`watch_confirmations`]).
    pub confirmations: Arc<std::sync::Mutex<ConfirmWatch>>,
    /// The order of the last request this controller sent (`ExecRequest::seq`).
    pub dispatched: std::sync::atomic::AtomicU64,
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

impl Controller {
    /// Runs until `shutdown` resolves (and the confirmation watch beside
    /// it). Wakes on every Raft change (on the
    /// DC that is every heartbeat), but steps only when something the plan
    /// depends on changed, or [`REPLAN_EVERY`] passed: an idle DC idles.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let watcher = tokio::spawn(
            watch_confirmations(self.node.clone(), self.confirmations.clone()).in_current_span(),
        );
        let _stop_watcher = AbortOnDrop(watcher);
        let mut engine = Engine::default();
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
            if let Err(e) = self.step(&mut engine).await {
                tracing::warn!("controller: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    async fn step(&self, engine: &mut Engine) -> Result<(), String> {
        // A few rounds: after a commit (a node recorded down, a stale
        // confirmation withdrawn, a pending record forgotten), decide again
        // from the state that says so, not from the snapshot taken before.
        for _ in 0..3 {
            let view = self.node.view();
            if !may_act(&view, &self.node) {
                return Ok(());
            }
            let state = self.node.replicated();
            let cluster = match live::cluster_of(&view, &state) {
                // Nothing configured, nothing runs: a leaving node may go.
                None => {
                    let nothing = Cluster::default();
                    return self
                        .acknowledge_shutdowns(&[], &state, &nothing, &view)
                        .await;
                }
                Some(c) => {
                    c.map_err(|e| format!("the replicated configuration is invalid: {e}"))?
                }
            };
            let round = {
                let confirmations = self.confirmations.lock().unwrap_or_else(|p| p.into_inner());
                engine.round(&Facts {
                    view: &view,
                    state: &state,
                    cluster: &cluster,
                    confirmations: &confirmations,
                    now: Instant::now(),
                    wall_ms: fencing::now_ms(),
                })
            };
            match round {
                Round::Commit { commands, why } => {
                    for w in &why {
                        tracing::warn!("{w}");
                    }
                    self.propose(Command::Batch(commands)).await?;
                }
                Round::Settle {
                    fence,
                    record,
                    waiting,
                    why,
                } => {
                    if !self.settle(&cluster, fence, record, &waiting, &why).await? {
                        return Ok(());
                    }
                }
                Round::Probe(probes) => return self.probe(&cluster, probes).await,
                Round::Wait(why) => {
                    for w in why {
                        tracing::info!("{w}");
                    }
                    return Ok(());
                }
                Round::Schedule => return self.plan(engine, &view, &state, &cluster).await,
            }
        }
        Ok(())
    }

    /// Carries out [`Round::Settle`]; whether the controller may go on
    /// (every lost node settled).
    async fn settle(
        &self,
        cluster: &Cluster,
        fence: Vec<String>,
        record: Vec<Command>,
        waiting: &[(String, String)],
        why: &[String],
    ) -> Result<bool, String> {
        for (node, w) in waiting {
            tracing::warn!(node = %node, "{w}");
        }
        for w in why {
            tracing::warn!("{w}");
        }
        if !record.is_empty() {
            self.propose(Command::Batch(record)).await?;
        }
        let mut settled = waiting.is_empty();
        for target in fence {
            // Only a DC that a quorum still follows may shoot a node.
            self.term().await?;
            match self.fence_job(cluster, &target).await {
                Ok(()) => tracing::warn!(node = %target, "fenced; recovering its resources"),
                Err(e) => {
                    tracing::error!(node = %target, "lost and fencing failed: {e}");
                    settled = false;
                }
            }
        }
        Ok(settled)
    }

    /// Probes each (node, resource) pair at once and records the results.
    async fn probe(&self, cluster: &Cluster, probes: Vec<(String, String)>) -> Result<(), String> {
        let term = self.term().await?;
        let requests = probes
            .into_iter()
            .filter_map(|(node, target)| {
                let located = opspec::locate(cluster, &target)?;
                Some((node, located.request(cluster, &target, "monitor", 0, term)))
            })
            .collect();
        self.run_batch(requests).await;
        Ok(())
    }

    /// Schedules a transition and does what the engine makes of it.
    async fn plan(
        &self,
        engine: &mut Engine,
        view: &MembershipView,
        state: &Replicated,
        cluster: &Cluster,
    ) -> Result<(), String> {
        let now = chrono_now();
        // Off the runtime's workers, within a budget: a configuration that
        // slipped past admission must not starve the lease loop or crash
        // the DC.
        let transition =
            crate::schedule_guard::schedule_bounded(cluster.clone(), now, SCHEDULE_BUDGET)
                .await
                .map_err(|e| format!("cannot schedule: {e}"))?;
        let summary = || {
            transition
                .summary
                .iter()
                .map(|line| {
                    format!(
                        "{} {} ({}){}",
                        line.verb,
                        line.resource,
                        line.detail,
                        line.reason
                            .as_ref()
                            .map_or(String::new(), |r| format!(" {r}"))
                    )
                })
                .collect::<Vec<_>>()
        };
        match engine.planned(&transition.actions, state, cluster, now) {
            Planned::Idle { acknowledge } if acknowledge.is_empty() => Ok(()),
            Planned::Idle { acknowledge } => {
                tracing::info!(
                    "{} shutdown(s) complete: the node(s) may leave",
                    acknowledge.len()
                );
                self.propose(Command::Batch(acknowledge)).await
            }
            Planned::BackOff { repeated } => {
                self.acknowledge_shutdowns(&transition.actions, state, cluster, view)
                    .await?;
                tracing::error!(
                    "the same transition was planned {repeated} times and changed nothing; backing off {BACKOFF:?}: {:?}",
                    summary()
                );
                tokio::time::sleep(BACKOFF).await;
                Ok(())
            }
            Planned::Execute => {
                self.acknowledge_shutdowns(&transition.actions, state, cluster, view)
                    .await?;
                for line in summary() {
                    tracing::info!("transition: {line}");
                }
                let term = self.term().await?;
                self.execute(cluster, &transition.actions, term, state, view)
                    .await
            }
        }
    }

    /// Commits [`engine::shutdowns_done_meanwhile`]'s acknowledgements.
    async fn acknowledge_shutdowns(
        &self,
        actions: &[Action],
        state: &Replicated,
        cluster: &Cluster,
        view: &MembershipView,
    ) -> Result<(), String> {
        let me = view.node_name.as_str();
        let done =
            crate::engine::shutdowns_done_meanwhile(actions, state, cluster, me, chrono_now());
        if done.is_empty() {
            return Ok(());
        }
        tracing::info!("{} shutdown(s) complete: the node(s) may leave", done.len());
        self.propose(Command::Batch(done)).await
    }

    async fn term(&self) -> Result<u64, String> {
        self.node
            .confirm_leadership()
            .await
            .ok_or_else(|| "no longer DC (leadership not confirmed by a quorum)".to_string())
    }

    /// Fences `target` for the transition and records the attempts.
    fn fence_job(
        &self,
        cluster: &Cluster,
        target: &str,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send + 'static {
        self.reach.fence(cluster, target)
    }

    /// Runs independent requests in parallel and records each result.
    async fn run_batch(&self, requests: Vec<(String, ExecRequest)>) {
        let mut calls = JoinSet::new();
        for (node, request) in requests {
            calls.spawn(self.dispatch(node, request).in_current_span());
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

    /// Executes `actions` as a [`Dispatch`] orders them.
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
        // Each for the life of its node the plan was made in.
        let requests: Vec<Option<(String, ExecRequest)>> = (0..actions.len())
            .map(|i| {
                let (node, mut request) = crate::engine::request_for(cluster, actions, i, term)?;
                request.rejoin = planned_rejoin(state, &node);
                Some((node, request))
            })
            .collect();
        let mut dispatch = Dispatch::new(actions, requests.iter().map(Option::is_some).collect());
        let mut calls: JoinSet<(usize, Done)> = JoinSet::new();
        loop {
            for start in dispatch.ready(actions) {
                match start {
                    Start::Fence(i) => {
                        let fence = self.fence_job(cluster, &actions[i].target);
                        calls.spawn(async move { (i, Done::Fence(fence.await)) }.in_current_span());
                    }
                    Start::Execute(i) => {
                        let Some((node, request)) = requests[i].clone() else {
                            continue;
                        };
                        let pending = (request.needs_lease()
                            && oprecord::is_recorded(&request.action))
                        .then(|| {
                            let rejoin = planned_rejoin(state, &node);
                            oprecord::pending(&request, &node, rejoin, chrono_now())
                        });
                        let recorder = self.node.clone();
                        let dispatch = self.dispatch(node, request);
                        calls.spawn(
                            async move {
                                // Recorded before it is sent: a successor DC
                                // then knows it may be active there.
                                let recorded = match pending {
                                    None => Ok(()),
                                    Some(pending) => match recorder.propose_as_leader(pending).await {
                                        Ok(CommandResult::Stale) => Err("its node was recorded down or rejoined since it was planned".to_string()),
                                        Ok(_) => Ok(()),
                                        Err(e) => Err(format!("cannot record it as pending: {e}")),
                                    },
                                };
                                if let Err(why) = recorded {
                                    return (i, Done::Op(Err(Unreached::before_sending(why))));
                                }
                                (i, Done::Op(dispatch.await.map(Box::new)))
                            }
                            .in_current_span(),
                        );
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
                    dispatch.finished(i, Finished::Ok, actions);
                    continue;
                }
                Done::Fence(Err(e)) => {
                    tracing::error!(node = %a.target, "fencing failed: {e}");
                    let why = format!("fencing {} failed", a.target);
                    dispatch.finished(i, Finished::Failed(why), actions);
                    continue;
                }
                Done::Op(Ok(outcome)) => *outcome,
                Done::Op(Err(u)) => {
                    // Like a failed one, an unanswered notification does
                    // not hold the transition up.
                    let finished = if oprecord::is_recorded(&a.task) {
                        Finished::NoResult
                    } else {
                        Finished::Ok
                    };
                    dispatch.finished(i, finished, actions);
                    if u.node.is_empty() || !oprecord::is_recorded(&a.task) {
                        tracing::warn!(resource = %a.target, "{} not sent or unanswered: {}", a.task, u.why);
                    } else if let Some((_, request)) = &requests[i] {
                        self.record_unknown(&u, request, planned_rejoin(state, &u.node))
                            .await;
                    }
                    continue;
                }
            };
            if !oprecord::is_recorded(&a.task) {
                // Like Pacemaker, a failed notification is logged and
                // neither counted nor a reason to abort the transition.
                if !outcome.ok {
                    tracing::warn!(term, resource = %a.target, node = ?a.node, "{} failed: {:?} {}", a.task, outcome.result.status, outcome.result.exit_reason.clone().unwrap_or_default());
                }
                dispatch.finished(i, Finished::Ok, actions);
                continue;
            }
            if outcome.ok {
                dispatch.finished(i, Finished::Ok, actions);
                tracing::info!(term, resource = %a.target, node = ?a.node, "{} {}ms: ok", a.task, a.interval_ms);
            } else {
                tracing::warn!(term, resource = %a.target, node = ?a.node, "{} {}ms failed: {:?} {}", a.task, a.interval_ms, outcome.result.status, outcome.result.exit_reason.clone().unwrap_or_default());
                let why = format!("{} of {} failed", a.task, a.target);
                dispatch.finished(i, Finished::Failed(why), actions);
            }
            // Not `?`: leaving would drop the calls still in flight; their
            // results must be awaited (and their pending records resolved).
            if let Err(e) = self.record(&outcome, start_is_fatal).await {
                tracing::warn!(resource = %a.target, "cannot record a result: {e}");
                dispatch.stop(format!("recording {} of {} failed", a.task, a.target));
            }
            if dispatch.stopped().is_none()
                && world(&self.node.view(), &self.node.replicated()) != fingerprint
            {
                dispatch.stop("the cluster changed during the transition".into());
            }
        }
        if let Some(reason) = dispatch.stopped() {
            tracing::info!("transition aborted ({reason}); planning again");
        }
        Ok(())
    }

    /// Sends one request to `node`'s executor. `Err` when no result came
    /// back (unreachable, refused, garbled): the operation may or may not
    /// have run, which is not the resource's failure.
    fn dispatch(
        &self,
        node: String,
        mut request: ExecRequest,
    ) -> impl std::future::Future<Output = Result<Outcome, Unreached>> + Send + 'static {
        request.seq = next_seq(&self.dispatched);
        let timeout = Duration::from_millis(request.timeout_ms) + CALL_SLACK;
        let resource = request.resource.id.clone();
        let sent = self.reach.execute(&node, request, timeout);
        async move {
            sent.await.map_err(|why| Unreached {
                node,
                resource,
                why,
            })
        }
    }

    /// An operation whose result never came back: its resource's state on
    /// that node is unknown, so the operation stays recorded as in flight
    /// (pending). The resource then counts as possibly active there: it is
    /// probed once the node answers (see `pending_on_online_nodes`), and a
    /// node lost meanwhile is settled by fencing, its watchdog or an
    /// operator, never taken for one that left running nothing (an empty
    /// history would have said so).
    async fn record_unknown(&self, u: &Unreached, request: &ExecRequest, rejoin: u64) {
        tracing::warn!(node = %u.node, resource = %u.resource, "no result: {}; its state there is unknown until probed again", u.why);
        let unknown = oprecord::pending(request, &u.node, rejoin, chrono_now());
        if let Err(e) = self.propose(unknown).await {
            tracing::warn!("cannot record the unknown state: {e}");
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

    /// Every write of the controller, as the leader only: a DC deposed
    /// meanwhile must not commit through its successor what it saw or
    /// decided in its own term (a result it heard late would land after
    /// the successor's newer records).
    async fn propose(&self, command: Command) -> Result<(), String> {
        self.node
            .propose_as_leader(command)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The order of the next request sent: the wall clock in microseconds,
/// or one past the last if that is later. A DC restarted within its term
/// (openraft may resume leading with the vote it persisted) thus orders
/// its requests after its previous incarnation's, unless the clock went
/// back; its requests are then refused until the next term (never run
/// out of order).
fn next_seq(last: &std::sync::atomic::AtomicU64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    let previous = last
        .fetch_update(relaxed, relaxed, |prev| Some(now.max(prev + 1)))
        .unwrap_or_else(|prev| prev);
    now.max(previous + 1)
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

/// The rejoin of `node` a transition was planned under (0: none recorded,
/// which no executor's life matches): what its pending records carry, so
/// they land only while that life lasts.
fn planned_rejoin(state: &Replicated, node: &str) -> u64 {
    state.status.get(node).and_then(|s| s.rejoin).unwrap_or(0)
}
