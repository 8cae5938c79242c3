//! The traffic layer inside the daemon: runs this node's load balancer
//! (`tandem-lb`, configured by the file `[traffic] config` names) and feeds
//! it what the cluster knows, so the distribution follows the cluster:
//!
//! * a node with the replicated `drain` attribute leaves every pool
//!   gracefully on every node's lb (existing connections finish), and
//!   comes back with slow start when the attribute goes; the attribute
//!   lives in the log, so drains survive restarts and reloads;
//! * a node the cluster declares lost (unheard for the lease) leaves every
//!   pool at once, without waiting for health checks to fail;
//! * a pool with a `[[traffic.follow]]` entry has as backends exactly the
//!   nodes where that resource runs, at the node's address and the port
//!   given.
//!
//! Backends are named after cluster nodes: that is how events find them.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tandem_cluster::{ClusterNode, MembershipView, Replicated};
use tandem_lb::{BackendChange, BackendConfig, Lb, LbEvent, PoolUpdate};

/// How often the cluster state is compared with what the lb was told.
const FOLLOW_EVERY: Duration = Duration::from_millis(50);

/// `[traffic]` in the node settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrafficSettings {
    /// The lb configuration file (see docs/lb.md); none = no lb here.
    pub config: Option<PathBuf>,
    /// Pools whose backends are wherever a resource runs.
    pub follow: Vec<Follow>,
}

/// A pool that follows a resource.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Follow {
    pub pool: String,
    /// A primitive, group or clone id.
    pub resource: String,
    /// The port the resource serves on, at each node's address.
    pub port: u16,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// Whether the replicated attributes say `node` is drained.
pub fn is_drained(state: &Replicated, node: &str) -> bool {
    state
        .node_attributes
        .get(node)
        .and_then(|a| a.get("drain"))
        .is_some_and(|v| matches!(v.as_str(), "on" | "true" | "yes" | "1"))
}

/// Starts the lb when configured; relative paths are from `base`.
pub async fn start(settings: &TrafficSettings, base: &Path) -> Result<Option<Arc<Lb>>, String> {
    let Some(path) = &settings.config else {
        return Ok(None);
    };
    let path = if path.is_relative() {
        base.join(path)
    } else {
        path.clone()
    };
    let config = tandem_lb::config::Config::load(&path).map_err(|e| e.to_string())?;
    let lb = Lb::start(config).await.map_err(|e| e.to_string())?;
    Ok(Some(Arc::new(lb)))
}

/// What the lb was last told about each node.
#[derive(Default)]
struct Told {
    drained: BTreeSet<String>,
    lost: BTreeSet<String>,
    pools: BTreeMap<String, Vec<(String, std::net::SocketAddr)>>,
    /// The input the pools were last computed from: scheduling again is
    /// needed only when it changes.
    input: Option<(
        u64,
        BTreeMap<String, tandem_cluster::NodeStatus>,
        BTreeSet<String>,
    )>,
}

/// Follows the cluster until `shutdown` resolves.
pub async fn follow(
    node: Arc<ClusterNode>,
    lb: Arc<Lb>,
    settings: TrafficSettings,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let events = lb.events();
    let mut told = Told::default();
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
        let view = node.view();
        let state = node.replicated();
        // Node name → host, from the replicated membership (members come
        // and go at run time).
        let addresses: BTreeMap<String, String> = node
            .members()
            .into_values()
            .filter_map(|m| Some((m.name, m.addr.rsplit_once(':')?.0.to_string())))
            .collect();
        let mut out = Vec::new();
        // Pools first: a pool update makes new backend objects, undrained
        // and not lost, and the node events after it in the same batch
        // tell them at once.
        pool_events(&view, &state, &settings, &addresses, &mut told, &mut out).await;
        node_events(&view, &state, &mut told, &mut out);
        for event in out {
            // Bounded channel: wait rather than drop a cluster fact.
            if events.send(event).await.is_err() {
                return;
            }
        }
    }
}

fn node_events(view: &MembershipView, state: &Replicated, told: &mut Told, out: &mut Vec<LbEvent>) {
    let backend = |name: &str, change| LbEvent::Backend {
        pool: None,
        backend: name.to_string(),
        change,
    };
    for v in view.voters.iter().filter(|v| !v.witness) {
        let drained = is_drained(state, &v.name);
        if drained != told.drained.contains(&v.name) {
            out.push(backend(
                &v.name,
                if drained {
                    BackendChange::Drain
                } else {
                    BackendChange::Undrain
                },
            ));
            toggle(&mut told.drained, &v.name, drained);
        }
        // A node unheard for the lease is lost for traffic at once; this
        // node's own view decides (it may be the one cut off, and then
        // its lb is stopping anyway).
        let lost = !v.alive;
        if lost != told.lost.contains(&v.name) {
            out.push(backend(
                &v.name,
                if lost {
                    BackendChange::Lost
                } else {
                    BackendChange::Rejoined
                },
            ));
            toggle(&mut told.lost, &v.name, lost);
        }
    }
}

fn toggle(set: &mut BTreeSet<String>, name: &str, on: bool) {
    if on {
        set.insert(name.to_string());
    } else {
        set.remove(name);
    }
}

async fn pool_events(
    view: &MembershipView,
    state: &Replicated,
    settings: &TrafficSettings,
    addresses: &BTreeMap<String, String>,
    told: &mut Told,
    out: &mut Vec<LbEvent>,
) {
    if settings.follow.is_empty() {
        return;
    }
    let alive = view
        .voters
        .iter()
        .filter(|v| v.alive)
        .map(|v| v.name.clone())
        .collect();
    let input = Some((state.config_version, state.status.clone(), alive));
    if told.input == input {
        return;
    }
    told.input = input;
    let Some(Ok(cluster)) = crate::live::cluster_of(view, state) else {
        return;
    };
    // Off the runtime's workers, like every scheduling run.
    let scheduled = crate::schedule_guard::schedule_for(
        crate::schedule_guard::Purpose::Status,
        cluster.clone(),
        crate::executor::now_s(),
        crate::limits::STATUS_BUDGET,
    )
    .await;
    let transition = match scheduled {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("traffic: cannot tell where resources run: {e}");
            told.input = None;
            return;
        }
    };
    let running = crate::live::running_nodes(&transition.current);
    for f in &settings.follow {
        let moving = moving_nodes(state, &primitives_of(&cluster.config, &f.resource));
        let mut backends: Vec<(String, std::net::SocketAddr)> = running
            .get(&f.resource)
            .into_iter()
            .flatten()
            .filter(|node| !moving.contains(*node))
            .filter_map(|node| {
                let host = addresses.get(node)?;
                let addr = format!("{host}:{}", f.port).parse().ok()?;
                Some((node.clone(), addr))
            })
            .collect();
        backends.sort();
        if told.pools.get(&f.pool) == Some(&backends) {
            continue;
        }
        tracing::info!(
            pool = f.pool,
            resource = f.resource,
            ?backends,
            "pool follows where the resource runs"
        );
        out.push(LbEvent::Pool(PoolUpdate {
            pool: f.pool.clone(),
            backends: backends
                .iter()
                .map(|(name, addr)| BackendConfig {
                    name: name.clone(),
                    addr: *addr,
                    weight: f.weight,
                })
                .collect(),
        }));
        told.pools.insert(f.pool.clone(), backends);
        // A new backend object starts undrained and not lost: tell it
        // again.
        told.drained.clear();
        told.lost.clear();
    }
}

/// The primitives `resource` (a primitive, group or clone id) is made of.
fn primitives_of(config: &tandem_model::Configuration, resource: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in &config.resources {
        for p in r.primitives() {
            if r.id() == resource || p.id == resource {
                out.insert(p.id.clone());
            }
        }
    }
    out
}

/// Nodes where a start, stop or migration of one of `primitives` is in
/// flight (recorded pending by the DC before it sent it). A pool leaves
/// them out: a stopping server is left before it goes, and a starting one
/// joins once its start succeeded (not while it may not listen yet); new
/// requests in between wait in the lb's hold (`hold_ms`) for where the
/// service runs next instead of meeting a closed port.
fn moving_nodes(state: &Replicated, primitives: &BTreeSet<String>) -> BTreeSet<String> {
    state
        .status
        .iter()
        .filter(|(_, status)| {
            status.resources.iter().any(|(id, ops)| {
                primitives.contains(tandem_scheduler::view::strip_instance(id))
                    && ops.ops.values().any(|op| {
                        op.op_status == crate::oprecord::PENDING
                            && matches!(
                                op.operation.as_str(),
                                "start" | "stop" | "migrate_to" | "migrate_from"
                            )
                    })
            })
        })
        .map(|(node, _)| node.clone())
        .collect()
}
