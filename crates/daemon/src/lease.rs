//! The lease rule on every data node (`docs/safety.md`): a node runs
//! resources only while it holds a lease the DC granted
//! ([`tandem_cluster::MembershipView::lease_left_ms`], counted from when
//! this node sent the request the grant answered). When less than
//! `margin_ms` of it is left, the node closes its executor's lease gate
//! (nothing that could make a resource active runs any more, and what is in
//! flight is cancelled) and stops every resource it runs, all at once,
//! unless `no-quorum-policy` is `freeze` or `ignore`. The margin is the time
//! the stops have to finish before the lease ends.
//!
//! The DC never recovers a lost node's resources on the strength of the
//! lease alone: a crashed or paused daemon stops nothing. It recovers them
//! after a fence, after the node's watchdog has had time to reset it, or
//! after an operator confirmed the node down (`crate::settle`).
//!
//! When the node holds a lease again (or first starts), it forgets its
//! recorded history so the DC probes what really runs, and withdraws any
//! operator confirmation that it was down.
//!
//! With a watchdog ([`crate::watchdog`]), the node feeds it while it holds
//! its lease, or holds nothing and knows it ([`LocalExecutor::knows_what_runs`]:
//! its predecessor's record was read); a node that lost its lease and did
//! not stop its resources, or whose daemon is paused or dead, stops
//! feeding it and is reset. `no-quorum-policy` `freeze` or `ignore` keeps
//! resources without a lease, but not the watchdog fed: the DC recovers a
//! watchdog node's resources after the timeout whatever the policy, so a
//! node that keeps them must be reset (as with Pacemaker and SBD). The
//! node reports the timeout when it (re)joins ([`WATCHDOG_MS`]).

use crate::executor::LocalExecutor;
use crate::watchdog::{Watchdog, WATCHDOG_MS};
use std::sync::Arc;
use std::time::Duration;
use tandem_cluster::{ClusterNode, Command};
use tracing::Instrument;

/// How often the node checks its lease.
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// The transient attribute an operator's `tandem node confirm-down` sets on
/// a lost node; the node withdraws it when it holds a lease again.
pub const CONFIRMED_DOWN: &str = "#confirmed-down";

/// Whether an operator's confirm-down stands on this node's status.
pub fn confirmed_down(status: &tandem_cluster::NodeStatus) -> bool {
    status.transient.contains_key(CONFIRMED_DOWN)
}

/// Whether `no-quorum-policy` lets a node keep its resources without a
/// lease (`freeze`, `ignore`). Then only a fence or an operator settles its
/// loss. The one rule the lease loop and the controller share.
pub fn keeps_resources_without_lease(config: &tandem_model::Configuration) -> bool {
    matches!(config.option("no-quorum-policy"), Some("freeze" | "ignore"))
}

/// Runs until `shutdown` resolves.
pub async fn watch(
    node: Arc<ClusterNode>,
    executor: Arc<LocalExecutor>,
    watchdog: Option<Box<dyn Watchdog>>,
    margin_ms: u64,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut dog = Dog::new(watchdog);
    let mut rejoin: Option<tokio::task::JoinHandle<bool>> = None;
    let mut rejoined = false;
    // Since when the replicated record names another rejoin than this
    // executor's (see `rejoin_superseded`).
    let mut superseded_since: Option<tokio::time::Instant> = None;
    let mut stuck = false;
    let mut keeps_resources = FromConfig::new(|c| keeps_resources_without_lease(&c.config));
    let mut certain_after = FromConfig::new(probed_before_certain);
    // What a predecessor left running (`crate::held`) ran without a lease
    // since it died; a DC recovers it only after a settlement, so it is
    // given one lease to be granted before it is stopped (a daemon
    // restarted in a healthy cluster keeps its services).
    let inherited_until = tokio::time::Instant::now() + Duration::from_millis(node.view().lease_ms);
    let mut ever_held = false;
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // After a suspend the cluster member reports no lease for one lease
    // (`tandem_cluster`'s suspend watch).
    let holds_now = || node.view().lease_left_ms > margin_ms;
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        let view = node.view();
        let holds = holds_now();
        if holds {
            // Armed before the rejoin reports it.
            dog.arm_when_safe();
            executor.open_gate();
            stuck = false;
            ever_held = true;
            if rejoin.as_ref().is_some_and(|t| t.is_finished()) {
                let done = rejoin
                    .take()
                    .and_then(futures_util::FutureExt::now_or_never);
                rejoined = matches!(done, Some(Ok(true)));
                superseded_since = None;
            }
            if rejoined && rejoin_superseded(&node, &executor, &mut superseded_since) {
                tracing::warn!("the cluster records another rejoin of this node than this daemon's last: rejoining again");
                rejoined = false;
                superseded_since = None;
            }
            // Its own task, so the loop keeps its pace while it commits.
            if !rejoined && rejoin.is_none() && view.dc_id.is_some() {
                let (node, executor) = (node.clone(), executor.clone());
                let watchdog_ms = dog.reported_ms();
                rejoin = Some(tokio::spawn(
                    async move {
                        let _turn = executor.rejoin_turn().await;
                        // A leaving node rejoins only when its results
                        // would be dropped (no rejoin of its recorded),
                        // and keeps its shutdown.
                        let leaving = executor.is_leaving();
                        if leaving && rejoin_recorded(&node, &executor) && !executor.is_lapsed() {
                            return true;
                        }
                        announce_rejoin(&node, &executor, watchdog_ms, leaving).await
                    }
                    .in_current_span(),
                ));
            }
            if rejoined && !executor.knows_what_runs() {
                learn_certainty(&node, &executor, &mut certain_after);
            }
        } else {
            executor.close_gate();
            // Any lapse: withdraw a confirmation made meanwhile once the
            // lease is back.
            rejoined = false;
            superseded_since = None;
            if let Some(task) = rejoin.take() {
                task.abort();
            }
            let waits_for_first_grant = !ever_held && tokio::time::Instant::now() < inherited_until;
            if executor.holds_resources()
                && !keeps_resources.get(&node).unwrap_or(&false)
                && !waits_for_first_grant
            {
                tracing::warn!(
                    lease_left_ms = view.lease_left_ms,
                    dc = ?view.dc,
                    "lease ending (no grant from a DC within the lease): stopping every resource here"
                );
                let failed = stop_and_record(&node, &executor).await;
                if failed > 0 {
                    tracing::error!("{failed} resources did not stop after losing the lease");
                    stuck = true;
                }
            }
        }
        // Fed only while safe, judged now (not at the top of the round):
        // the lease is held, or nothing is and this daemon knows it.
        let holds_nothing = !executor.holds_resources() && executor.knows_what_runs();
        if holds_nothing {
            dog.arm_when_safe();
        }
        if !stuck && (holds_nothing || holds_now()) {
            dog.feed();
        }
    }
    if let Some(task) = rejoin {
        task.abort();
    }
    // The magic close: a clean shutdown (resources stopped or moved
    // first, see `crate::serve`) disarms the watchdog.
    if !executor.holds_resources() && executor.knows_what_runs() {
        dog.disarm();
    }
}

/// The watchdog as the lease loop keeps it: opened and armed only once it
/// is safe to feed, so a daemon restarted while its predecessor's
/// resources run without a lease never restarts the countdown its
/// predecessor left (opening a device and setting its timeout count as a
/// feed).
struct Dog {
    device: Option<Box<dyn Watchdog>>,
    /// `None` until armed; then the timeout it reports, if it may be
    /// counted on.
    armed: Option<Option<u64>>,
    feed_failed: bool,
}

impl Dog {
    fn new(device: Option<Box<dyn Watchdog>>) -> Dog {
        Dog {
            device,
            armed: None,
            feed_failed: false,
        }
    }

    fn arm_when_safe(&mut self) {
        let Some(device) = self.device.as_mut().filter(|_| self.armed.is_none()) else {
            return;
        };
        self.armed = Some(match device.arm() {
            Ok(ms) => {
                tracing::info!("watchdog armed, timeout {ms} ms");
                Some(ms)
            }
            Err(e) => {
                tracing::error!("{e}: it is fed all the same, but not counted on: the DC waits for fencing or an operator to recover this node's resources");
                None
            }
        });
    }

    /// The timeout to report, once armed.
    fn reported_ms(&self) -> Option<u64> {
        self.armed.flatten()
    }

    fn feed(&mut self) {
        let Some(device) = self.device.as_mut().filter(|_| self.armed.is_some()) else {
            return;
        };
        match device.feed() {
            Ok(()) => self.feed_failed = false,
            Err(e) if !self.feed_failed => {
                self.feed_failed = true;
                tracing::error!("cannot feed the watchdog: {e}; it will reset this machine");
            }
            Err(_) => {}
        }
    }

    fn disarm(&mut self) {
        if let Some(mut device) = self.device.take().filter(|_| self.armed.is_some()) {
            device.disarm();
        }
    }
}

/// How long the replicated record may name another rejoin than this
/// executor's last before it rejoins again: longer than a commit takes to
/// be applied here.
const SUPERSEDED_AFTER: Duration = Duration::from_secs(2);

/// Whether this node's replica records the executor's last rejoin as the
/// node's current one (its results land, see `Command::RecordOp`).
pub fn rejoin_recorded(node: &ClusterNode, executor: &LocalExecutor) -> bool {
    node.read_applied(|_, state| {
        state
            .status
            .get(executor.node_name())
            .is_some_and(|s| s.rejoin == Some(executor.rejoin_id()))
    })
}

/// Whether the cluster has, for a while, recorded another rejoin of this
/// node than the last this executor announced (an earlier announcement
/// committed after it, or the node was recorded down): its results would
/// never land (see `Command::RecordOp`), so it must rejoin again.
fn rejoin_superseded(
    node: &ClusterNode,
    executor: &LocalExecutor,
    since: &mut Option<tokio::time::Instant>,
) -> bool {
    if rejoin_recorded(node, executor) {
        *since = None;
        return false;
    }
    let since = *since.get_or_insert_with(tokio::time::Instant::now);
    since.elapsed() >= SUPERSEDED_AFTER
}

/// Once this daemon's rejoin is applied here (so the local configuration
/// is at least as new as anything a predecessor could have been asked to
/// run), an uncertain executor checks whether every configured resource
/// has been probed or operated here since it started.
fn learn_certainty(
    node: &ClusterNode,
    executor: &LocalExecutor,
    configured: &mut FromConfig<Vec<String>>,
) {
    if !rejoin_recorded(node, executor) {
        return;
    }
    if let Some(configured) = configured.get(node) {
        executor.learn_certainty(configured.iter().map(String::as_str));
    }
}

/// The primitives an uncertain executor must have seen probed or operated
/// before it knows what runs here. Fence devices are registrations that
/// end with their daemon.
fn probed_before_certain(cluster: &tandem_model::Cluster) -> Vec<String> {
    cluster
        .config
        .resources
        .iter()
        .flat_map(|r| r.primitives())
        .filter(|p| !p.is_fencing_device())
        .map(|p| p.id.clone())
        .collect()
}

/// Holding a lease again: forget this node's history (the DC probes what
/// really runs), withdraw any operator confirmation that it was down and
/// any shutdown a previous run of this daemon announced.
/// Returns whether it was committed.
async fn announce_rejoin(
    node: &ClusterNode,
    executor: &LocalExecutor,
    watchdog_ms: Option<u64>,
    leaving: bool,
) -> bool {
    let me = executor.node_name();
    let mut rejoin = vec![
        Command::Rejoined {
            node: me.to_string(),
            id: executor.begin_rejoin(),
        },
        // How this daemon's loss is settled: replaces whatever a
        // predecessor said (its armed watchdog, if left armed, resets the
        // machine unless this daemon feeds it).
        Command::SetTransient {
            node: me.to_string(),
            name: WATCHDOG_MS.to_string(),
            value: watchdog_ms.map(|ms| ms.to_string()),
        },
    ];
    // A leaving node keeps its shutdown (and what an operator confirmed).
    if !leaving {
        rejoin.extend(rejoin_withdraws(me));
    }
    node.propose(Command::Batch(rejoin)).await.is_ok()
}

/// What a rejoin of `me` withdraws: a confirm-down, and a shutdown this
/// daemon's predecessor announced and never finished (or did).
fn rejoin_withdraws(me: &str) -> [Command; 3] {
    [
        Command::SetTransient {
            node: me.to_string(),
            name: CONFIRMED_DOWN.to_string(),
            value: None,
        },
        // A shutdown this daemon announced and never finished (or did).
        Command::SetTransient {
            node: me.to_string(),
            name: crate::controller::SHUTDOWN.to_string(),
            value: None,
        },
        Command::SetTransient {
            node: me.to_string(),
            name: crate::controller::SHUTDOWN_DONE.to_string(),
            value: None,
        },
    ]
}

/// Stops everything this node runs or starts ([`LocalExecutor::stop_everything`])
/// and records the results when the log can be reached (so the DC knows
/// the node runs nothing). Returns how many stops failed.
/// The recording runs on its own, so the caller (the lease loop, which
/// feeds the watchdog) never waits for an unreachable DC.
pub async fn stop_and_record(node: &Arc<ClusterNode>, executor: &Arc<LocalExecutor>) -> usize {
    let (failed, record) = stop_here(node, executor).await;
    if let Some(record) = record {
        let node = node.clone();
        tokio::spawn(
            async move {
                // Retried until the cluster has a DC again: otherwise the log
                // keeps saying these resources run here.
                let deadline = tokio::time::Instant::now() + RECORD_STOPS_WITHIN;
                while let Err(e) = node.propose(record.clone()).await {
                    if tokio::time::Instant::now() >= deadline {
                        tracing::warn!("the stops here could not be recorded: {e}");
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            .in_current_span(),
        );
    }
    failed
}

/// How long the lease loop keeps trying to record its stops.
const RECORD_STOPS_WITHIN: Duration = Duration::from_secs(60);

/// Stops everything this node runs or starts; returns how many stops
/// failed and the command that records them (none when nothing ran).
pub async fn stop_here(
    node: &ClusterNode,
    executor: &Arc<LocalExecutor>,
) -> (usize, Option<Command>) {
    let outcomes = executor.stop_everything(node.view().term).await;
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    let state = node.replicated();
    let commands: Vec<Command> = outcomes
        .iter()
        .map(|o| crate::oprecord::record(o, &state, crate::executor::now_s(), true))
        .collect();
    (
        failed,
        // Recorded when a DC answers, maybe after this node ran more.
        (!commands.is_empty()).then_some(Command::Batch(commands)),
    )
}

/// Something read from the replicated configuration, parsed again only
/// when its version changes: the lease loop asks on every tick. `None`
/// while the configuration does not parse.
struct FromConfig<T> {
    read: fn(&tandem_model::Cluster) -> T,
    /// The configuration version `value` was read from.
    version: Option<u64>,
    value: Option<T>,
}

impl<T> FromConfig<T> {
    fn new(read: fn(&tandem_model::Cluster) -> T) -> FromConfig<T> {
        FromConfig {
            read,
            version: None,
            value: None,
        }
    }

    fn get(&mut self, node: &ClusterNode) -> Option<&T> {
        let changed = node.read_applied(|_, state| {
            (self.version != Some(state.config_version))
                .then(|| (state.config_version, state.config_text.clone()))
        });
        if let Some((version, text)) = changed {
            self.version = Some(version);
            self.value = tandem_model::native::parse_toml(&text)
                .ok()
                .map(|c| (self.read)(&c));
        }
        self.value.as_ref()
    }
}
