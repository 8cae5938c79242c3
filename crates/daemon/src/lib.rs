//! Wires a node together: the cluster member ([`tandem_cluster`]) and the
//! HTTPS admin API ([`api`]) that reads the membership view, the replicated
//! configuration and the scheduler's planned placement, and commits
//! validated changes through the log. [`serve`] runs a whole node until a
//! shutdown future resolves, so tests run nodes in-process.
//!
//! Holds no logic that belongs to a crate below it: consensus lives in
//! `tandem-cluster`, placement in `tandem-scheduler`.

pub mod admin;
pub mod api;
pub mod attrsync;
pub mod client;
mod controller;
mod diff;
pub mod edit;
mod engine;
pub mod executor;
mod fencing;
pub mod held;
pub mod join;
mod lease;
pub mod limits;
pub mod live;
pub mod membership;
pub mod oprecord;
mod opspec;
pub mod preview;
mod reach;
pub mod schedule_guard;
pub mod settings;
mod settle;
pub mod traffic;
mod view;
pub mod watchdog;

pub use client::{AdminFile, ApiClient, ClientError};
pub use fencing::record_fence;
pub use reach::Reach;
pub use schedule_guard::{schedule_bounded, ScheduleError};
pub use settings::{DaemonConfig, SettingsError};
pub use tandem_cluster::{force_single_node, Authority, Member, Timing, TlsFiles};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tandem_cluster::{ClusterError, ClusterNode};
use tracing::Instrument;

/// Why a node stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot prepare the agents: {0}")]
    Agents(String),
    #[error("cannot start the load balancer: {0}")]
    Traffic(String),
    #[error("cannot listen for the admin API on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Runs one node until `shutdown` resolves. `ready` receives the bound
/// Raft and API addresses once both listen.
pub async fn serve(
    config: DaemonConfig,
    ready: Option<tokio::sync::oneshot::Sender<(SocketAddr, SocketAddr)>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let node = ClusterNode::start(config.node_settings()?).await?;
    let tls = config.tls.server_config().map_err(ClusterError::from)?;
    let listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.api_listen,
            source,
        })?;
    let api_addr = listener
        .local_addr()
        .map_err(|source| DaemonError::Listen {
            addr: config.api_listen,
            source,
        })?;
    tracing::info!(node = config.id, raft = %node.local_addr(), api = %api_addr, "node started");
    if let Some(tx) = ready {
        let _ = tx.send((node.local_addr(), api_addr));
    }
    let node = Arc::new(node);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let executor = if node.is_witness() {
        None
    } else {
        Some(start_node_services(&config, &node, &stopped)?)
    };
    let lb = traffic::start(&config.traffic, &config.data_dir)
        .await
        .map_err(DaemonError::Traffic)?;
    if let Some(lb) = &lb {
        tokio::spawn(traffic::follow(
            node.clone(),
            lb.clone(),
            config.traffic.clone(),
            stopped(),
        ));
    }
    let services = api::Services {
        node: node.clone(),
        executor: executor.clone(),
        lb: lb.clone(),
    };
    let joins = config
        .join
        .clone()
        .map(|files| tokio::spawn(join::serve(files, config.tls.clone())));
    // The API keeps serving while the node leaves: the DC stops or moves
    // its resources through it.
    let leave = {
        let (node, executor) = (node.clone(), executor.clone());
        let timeout = std::time::Duration::from_millis(config.shutdown_timeout_ms);
        async move {
            shutdown.await;
            if let Some(executor) = executor {
                leave_cleanly(&node, &executor, timeout).await;
            }
        }
    };
    api::run(listener, tls, services, leave).await;
    if let Some(joins) = joins {
        joins.abort();
    }
    let _ = stop_tx.send(true);
    if let Some(lb) = lb {
        lb.shutdown();
    }
    if let Some(executor) = executor {
        executor.shutdown();
    }
    // Let the service tasks see the stop before the member goes.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    if let Ok(node) = Arc::try_unwrap(node) {
        node.shutdown().await;
    }
    Ok(())
}

/// Starts what a data node runs besides the member: the executor, the
/// lease watcher, the attribute sync and (acting only while DC) the
/// controller.
fn start_node_services<F, Fut>(
    config: &DaemonConfig,
    node: &Arc<ClusterNode>,
    stopped: &F,
) -> Result<Arc<executor::LocalExecutor>, DaemonError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let name = node.view().node_name;
    let name = if name.is_empty() {
        config
            .members
            .iter()
            .find(|m| m.id == config.id)
            .map(|m| m.name.clone())
            .unwrap_or_default()
    } else {
        name
    };
    // The address peers reach this node at (the listen address may be a
    // wildcard).
    let address = config
        .members
        .iter()
        .find(|m| m.id == config.id)
        .and_then(|m| {
            Some(
                m.addr
                    .rsplit_once(':')?
                    .0
                    .trim_matches(['[', ']'])
                    .to_string(),
            )
        })
        .unwrap_or_else(|| config.listen.ip().to_string());
    let (executor, monitor_events) =
        executor::LocalExecutor::start(&name, &address, &config.data_dir, &config.agents)
            .map_err(|e| DaemonError::Agents(e.to_string()))?;
    spawn_monitor_reports(node.clone(), executor.clone(), monitor_events);
    tokio::spawn(attrsync::run(node.clone(), executor.clone(), stopped()));
    let client = ApiClient::new(Vec::new(), &config.tls).map_err(DaemonError::Agents)?;
    let reach = reach::Remote {
        node: node.clone(),
        client: Arc::new(client),
        agents: executor.exec_config(),
    };
    // Opened by the lease loop once it is safe to feed (`lease::Dog`).
    let watchdog = config.watchdog.as_ref().map(|path| {
        Box::new(watchdog::Device::new(path, config.watchdog_timeout_ms))
            as Box<dyn watchdog::Watchdog>
    });
    let guard = Guard {
        watchdog,
        margin_ms: config.lease_margin_ms,
    };
    spawn_lease_and_controller(node, &executor, Arc::new(reach), guard, stopped);
    Ok(executor)
}

/// How a data node guards its lease.
#[derive(Default)]
pub struct Guard {
    /// The watchdog fed while the node is safe (armed by the lease loop).
    pub watchdog: Option<Box<dyn watchdog::Watchdog>>,
    /// Stops begin when less than this much of the lease is left.
    pub margin_ms: u64,
}

/// What keeps a data node safe and runs the cluster: the lease loop (the
/// lease rule, and the watchdog if set) and the controller (acting only
/// while this node is DC). [`serve`] starts them around the node's real
/// executor and [`reach::Remote`]; the whole-daemon simulation starts the
/// same around simulated agents and a simulated network.
pub fn spawn_lease_and_controller<F, Fut>(
    node: &Arc<ClusterNode>,
    executor: &Arc<executor::LocalExecutor>,
    reach: Arc<dyn Reach>,
    guard: Guard,
    stopped: &F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // The tasks log in the caller's span (the simulation names each node).
    let span = tracing::Span::current();
    tokio::spawn(
        lease::watch(
            node.clone(),
            executor.clone(),
            guard.watchdog,
            guard.margin_ms,
            stopped(),
        )
        .instrument(span.clone()),
    );
    let controller = controller::Controller {
        node: node.clone(),
        reach,
        confirmations: Default::default(),
        dispatched: Default::default(),
    };
    tokio::spawn(controller.run(stopped()).instrument(span));
}

/// How long a leaving node waits for its last stops to be recorded.
const RECORD_STOPS_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a leaving node waits for its rejoin to be recorded (the lease
/// loop announces it again after `lease::SUPERSEDED_AFTER`).
const REJOIN_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a leaving DC waits for a successor to take over.
const HAND_OFF_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// A clean stop, like `pcs cluster stop`: announce the shutdown so the DC
/// moves or stops this node's resources, wait for that (at most
/// `timeout`, with progress in the log), stop what is left here, and
/// leave holding nothing, so the DC records the node down without fencing
/// it. A node that cannot stop everything leaves it to fencing or an
/// operator (`tandem node confirm-down`).
pub async fn leave_cleanly(
    node: &Arc<ClusterNode>,
    executor: &Arc<executor::LocalExecutor>,
    timeout: std::time::Duration,
) {
    let me = executor.node_name().to_string();
    let announce = tandem_cluster::Command::Batch(vec![
        tandem_cluster::Command::SetTransient {
            node: me.clone(),
            name: controller::SHUTDOWN.to_string(),
            value: Some(executor::now_s().to_string()),
        },
        // An acknowledgement left from an earlier shutdown is not this one's.
        tandem_cluster::Command::SetTransient {
            node: me.clone(),
            name: controller::SHUTDOWN_DONE.to_string(),
            value: None,
        },
    ]);
    let started = tokio::time::Instant::now();
    {
        // No full rejoin is in flight once this holds, and none starts
        // after (one would withdraw the shutdown).
        let _turn = executor.rejoin_turn().await;
        executor.leave();
    }
    // Results land only under the node's recorded rejoin: without one
    // (stopped right after it started, or an earlier announcement
    // committed last) every stop of the leave would go unrecorded and the
    // node could not leave cleanly. The lease loop announces a leaving
    // node's rejoin (one that keeps the shutdown); wait for it, bounded.
    let deadline = tokio::time::Instant::now() + REJOIN_WITHIN;
    while node.view().quorum
        && !lease::rejoin_recorded(node, executor)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Announced even when this node runs nothing: the DC then records it
    // down as a clean shutdown instead of fencing it. Without quorum
    // nothing can be announced or moved: stop here at once.
    let mut announced = false;
    if node.view().quorum {
        match node.propose(announce.clone()).await {
            Ok(_) => {
                announced = true;
                // A DC that moved its own resources could leave once its
                // stops are done, before it dispatched the starts.
                if node.hand_off_leadership(HAND_OFF_WITHIN).await {
                    tracing::warn!("stopping: leadership was not handed off; this DC moves its resources itself");
                }
                tracing::info!(
                    "stopping: the DC moves or stops this node's resources (at most {timeout:?})"
                )
            }
            Err(e) => tracing::warn!(
                "stopping: cannot announce the shutdown ({e}); stopping resources here"
            ),
        }
    }
    let mut said = started;
    while executor.holds_resources() && started.elapsed() < timeout {
        // A rejoin proposed before the leave (its proposal timed out) may
        // commit after the announcement and withdraw it: announce again.
        let withdrawn = node.read_applied(|_, state| {
            state
                .status
                .get(&me)
                .is_none_or(|s| !s.transient.contains_key(controller::SHUTDOWN))
        });
        if announced && withdrawn {
            tracing::warn!(
                "stopping: the shutdown announcement was withdrawn; announcing it again"
            );
            let _ = tokio::time::timeout(RECORD_STOPS_WITHIN, node.propose(announce.clone())).await;
        }
        if said.elapsed() >= std::time::Duration::from_secs(1) {
            tracing::info!(
                "stopping: waiting for resources to move or stop ({:?} so far)",
                started.elapsed()
            );
            said = tokio::time::Instant::now();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (failed, record) = lease::stop_here(node, executor).await;
    // Recorded before the member goes, so the DC sees that it runs
    // nothing (bounded: without a DC the node leaves unrecorded).
    if let Some(record) = record {
        let recorded = tokio::time::timeout(RECORD_STOPS_WITHIN, node.propose(record)).await;
        if !matches!(recorded, Ok(Ok(_))) {
            tracing::warn!("stopping: the stops here could not be recorded");
        }
    }
    if announced && failed == 0 {
        await_shutdown_done(node, &me, timeout.saturating_sub(started.elapsed())).await;
    }
    if failed > 0 {
        tracing::error!("stopping: {failed} resources did not stop; this node's loss must be settled by fencing or `tandem node confirm-down {me}`");
    } else {
        tracing::info!(
            "stopping: this node runs nothing; leaving after {:?}",
            started.elapsed()
        );
    }
}

/// Waits (at most `within`, and only while the cluster has quorum) for
/// the DC to acknowledge the shutdown: the transition that moved this
/// node's resources is complete, so they run elsewhere before it leaves.
async fn await_shutdown_done(node: &ClusterNode, me: &str, within: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let done = node.read_applied(|_, state| {
            state
                .status
                .get(me)
                .is_some_and(|s| s.transient.contains_key(controller::SHUTDOWN_DONE))
        });
        if done {
            return;
        }
        if !node.view().quorum || tokio::time::Instant::now() >= deadline {
            tracing::warn!("stopping: the DC did not acknowledge the shutdown; leaving anyway");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Records the changes recurring monitors report (a thread: the monitor
/// workers report on a std channel).
fn spawn_monitor_reports(
    node: Arc<ClusterNode>,
    executor: Arc<executor::LocalExecutor>,
    events: std::sync::mpsc::Receiver<tandem_agents::monitor::MonitorEvent>,
) {
    let rt = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        while let Ok(event) = events.recv() {
            let Some(outcome) = executor.monitor_change(&event) else {
                continue;
            };
            tracing::warn!(resource = %outcome.resource.id, ok = outcome.ok, "monitor {} ms now reports {:?}", event.key.interval_ms, outcome.result.status);
            let node = node.clone();
            rt.block_on(async move {
                // Recurring monitors only: never a start.
                let command =
                    oprecord::record(&outcome, &node.replicated(), executor::now_s(), true);
                if let Err(e) = node.propose(command).await {
                    tracing::error!("cannot record a monitor result: {e}");
                }
            });
        }
    });
}
