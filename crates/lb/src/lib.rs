//! tandem's traffic distribution layer: L4 TCP and L7 HTTP listeners,
//! balancing, active and passive health checks, drain with progress,
//! session persistence, client identity (XFF/Forwarded, PROXY v1/v2), TLS
//! termination, Prometheus metrics and health-aware DNS.
//!
//! Start one with [`Lb::start`] on a tokio runtime (ports may be 0; ask
//! [`Lb::listener_addr`]). The cluster feeds it [`LbEvent`]s over the
//! bounded channel from [`Lb::events`]: lb only ever *receives* from the
//! cluster, so it never blocks on it. Must not depend on the scheduler or
//! the cluster crate.
//!
//! Request path: `listener` (accept, limit, PROXY, TLS) → `h1` (HTTP/1.x,
//! framing in `h1codec`) or `h2` (HTTP/2 over hyper, with `upstream`
//! keep-alive connections) or L4 (`relay` threads for plain TCP, the async
//! pipe in `listener` under TLS) → `persistence` (hint) → `pool` (eligible backends,
//! all-down policy) → `balance` (the pick) → backend; `health` and `drain`
//! change what `pool` finds eligible; `metrics` observes all of it.

pub mod admin;
pub mod balance;
pub mod config;
pub mod dns;
pub mod drain;
pub mod h1;
pub mod h1codec;
pub mod h2;
pub mod health;
pub mod identity;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod persistence;
pub mod pool;
pub mod proxy_protocol;
pub mod relay;
pub mod tls;
pub mod upstream;

pub use config::{BackendConfig, Config, ConfigError};
pub use drain::DrainProgress;

use crate::identity::TrustedProxies;
use crate::listener::ListenerCtx;
use crate::metrics::Metrics;
use crate::pool::Pool;
use crate::tls::{TlsError, TlsTerminator};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch, Semaphore};

/// Milliseconds since the lb started: the one clock the state machines see.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            epoch: Instant::now(),
        }
    }
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// What the cluster tells the lb. `pool: None` applies to every pool that
/// has a backend of that name (a node backs several services).
#[derive(Debug, Clone)]
pub enum LbEvent {
    Backend {
        pool: Option<String>,
        backend: String,
        change: BackendChange,
    },
    Pool(PoolUpdate),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChange {
    /// Drain state from the replicated log.
    Drain,
    Undrain,
    /// The cluster declared the node lost or fenced: out now, not after checks.
    Lost,
    /// The node is a member again (health checks still apply).
    Rejoined,
}

/// A new backend list for a pool ("wherever resource X runs").
#[derive(Debug, Clone)]
pub struct PoolUpdate {
    pub pool: String,
    pub backends: Vec<BackendConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum LbError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("listener \"{name}\": cannot bind {addr}: {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("listener \"{name}\": {source}")]
    Tls { name: String, source: Box<TlsError> },
    #[error("no pool \"{0}\"")]
    NoPool(String),
    #[error("pool \"{pool}\" has no backend \"{backend}\"")]
    NoBackend { pool: String, backend: String },
    #[error("cannot start the L4 relay threads: {0}")]
    Relay(std::io::Error),
}

/// A point-in-time view for `tandem lb status`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Status {
    pub pools: Vec<PoolStatus>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PoolStatus {
    pub name: String,
    /// max/mean share of requests over the backends.
    pub skew: f64,
    pub backends: Vec<BackendStatus>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BackendStatus {
    pub name: String,
    pub addr: SocketAddr,
    pub weight: u32,
    pub up: bool,
    pub drained: bool,
    pub lost: bool,
    pub ejected: bool,
    /// Agent check's share of the weight (100 without an agent; 0 = drain).
    pub agent_weight_pct: u32,
    pub active: u64,
    pub requests: u64,
}

/// State shared by the handle, the admin endpoint and the event task.
pub struct LbShared {
    pools: BTreeMap<String, Arc<Pool>>,
    metrics: Arc<Metrics>,
    clock: Clock,
    shutdown: watch::Receiver<bool>,
}

impl LbShared {
    pub fn status(&self) -> Status {
        let now = self.clock.now_ms();
        let pools = self
            .pools
            .values()
            .map(|p| {
                let backends: Vec<BackendStatus> = p
                    .backends()
                    .iter()
                    .map(|b| BackendStatus {
                        name: b.name.clone(),
                        addr: b.addr,
                        weight: b.weight,
                        up: b.is_up(),
                        drained: b.is_drained(),
                        lost: b.is_lost(),
                        ejected: b.is_ejected(now),
                        agent_weight_pct: b.agent_weight_pct(),
                        active: b.active(),
                        requests: b.metrics.requests.get(),
                    })
                    .collect();
                let counts: Vec<u64> = backends.iter().map(|b| b.requests).collect();
                let skew = metrics::skew(&counts);
                self.metrics.set_skew(p.name(), skew);
                PoolStatus {
                    name: p.name().to_string(),
                    skew,
                    backends,
                }
            })
            .collect();
        Status { pools }
    }

    pub fn metrics_text(&self) -> String {
        let _ = self.status(); // refreshes the skew gauges
        self.metrics.render()
    }

    /// See [`Lb::drain`].
    pub fn drain(
        &self,
        pool: &str,
        backend: &str,
    ) -> Result<mpsc::Receiver<DrainProgress>, LbError> {
        let b = self.backend(pool, backend)?;
        Ok(drain::start(pool, b, self.clock))
    }

    /// See [`Lb::undrain`].
    pub fn undrain(&self, pool: &str, backend: &str) -> Result<(), LbError> {
        let b = self.backend(pool, backend)?;
        b.set_drained(false, self.clock.now_ms());
        tracing::info!(pool, backend, "undrained");
        Ok(())
    }

    fn backend(&self, pool: &str, backend: &str) -> Result<Arc<pool::Backend>, LbError> {
        let p = self
            .pools
            .get(pool)
            .ok_or_else(|| LbError::NoPool(pool.into()))?;
        p.find(backend).ok_or_else(|| LbError::NoBackend {
            pool: pool.into(),
            backend: backend.into(),
        })
    }

    fn apply(&self, event: LbEvent) {
        let now = self.clock.now_ms();
        match event {
            LbEvent::Backend {
                pool,
                backend,
                change,
            } => {
                let targets = self
                    .pools
                    .values()
                    .filter(|p| pool.as_deref().is_none_or(|name| p.name() == name))
                    .filter_map(|p| p.find(&backend).map(|b| (p.name().to_string(), b)));
                for (pool, b) in targets {
                    tracing::info!(pool, backend = b.name, ?change, "cluster event");
                    match change {
                        BackendChange::Drain => drop(drain::start(&pool, b, self.clock)),
                        BackendChange::Undrain => b.set_drained(false, now),
                        BackendChange::Lost => b.set_lost(true, now),
                        BackendChange::Rejoined => b.set_lost(false, now),
                    }
                }
            }
            LbEvent::Pool(update) => match self.pools.get(&update.pool) {
                None => tracing::warn!(
                    pool = update.pool,
                    "pool update for an unknown pool ignored"
                ),
                Some(p) => {
                    for b in p.set_backends(&update.backends, &self.metrics) {
                        spawn_checker(p, b, self.clock, self.shutdown.clone());
                    }
                }
            },
        }
    }
}

fn spawn_checker(p: &Pool, b: Arc<pool::Backend>, clock: Clock, shutdown: watch::Receiver<bool>) {
    tokio::spawn(health::run_checker(
        p.name().to_string(),
        b,
        p.cfg.health.clone(),
        clock,
        shutdown,
    ));
}

/// A running lb. Dropping it (or [`Lb::shutdown`]) stops accepting.
pub struct Lb {
    shared: Arc<LbShared>,
    shutdown_tx: watch::Sender<bool>,
    events: mpsc::Sender<LbEvent>,
    listeners: BTreeMap<String, (SocketAddr, Option<Arc<TlsTerminator>>)>,
    admin: Option<SocketAddr>,
    dns: Option<SocketAddr>,
    relays: Option<Arc<relay::Relays>>,
}

impl Lb {
    /// Bind every listener and start checks; must run inside a tokio runtime.
    pub async fn start(config: Config) -> Result<Lb, LbError> {
        let clock = Clock::new();
        let metrics = Arc::new(Metrics::new());
        let (shutdown_tx, shutdown) = watch::channel(false);
        let pools: BTreeMap<String, Arc<Pool>> = config
            .pools
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    Arc::new(Pool::new(p.clone(), &metrics, clock)),
                )
            })
            .collect();
        let trusted = TrustedProxies::new(config.trusted_cidrs());
        // Plain L4 listeners relay bytes on threads of their own, one per
        // runtime worker.
        let relays = if config
            .listeners
            .iter()
            .any(|l| l.mode == config::Mode::Tcp && l.tls.is_none())
        {
            let workers = tokio::runtime::Handle::current().metrics().num_workers();
            Some(Arc::new(
                relay::Relays::start(workers).map_err(LbError::Relay)?,
            ))
        } else {
            None
        };
        let mut listeners = BTreeMap::new();
        let mut bound = Vec::new();
        for l in &config.listeners {
            let pool = pools
                .get(&l.pool)
                .cloned()
                .ok_or_else(|| LbError::NoPool(l.pool.clone()))?;
            let tls = match &l.tls {
                None => None,
                Some(t) => Some(Arc::new(TlsTerminator::new(t).map_err(|source| {
                    LbError::Tls {
                        name: l.name.clone(),
                        source: Box::new(source),
                    }
                })?)),
            };
            let socket = TcpListener::bind(l.bind)
                .await
                .map_err(|source| LbError::Bind {
                    name: l.name.clone(),
                    addr: l.bind,
                    source,
                })?;
            let addr = socket.local_addr().unwrap_or(l.bind);
            listeners.insert(l.name.clone(), (addr, tls.clone()));
            let ctx = Arc::new(ListenerCtx {
                cfg: l.clone(),
                pool,
                trusted: trusted.clone(),
                tls,
                metrics: metrics.clone(),
                clock,
                limit: Arc::new(Semaphore::new(l.max_connections)),
                relays: relays.clone(),
            });
            bound.push((socket, ctx));
        }
        let dns_socket = match &config.dns {
            None => None,
            Some(d) => Some(
                UdpSocket::bind(d.bind)
                    .await
                    .map_err(|source| LbError::Bind {
                        name: "dns".into(),
                        addr: d.bind,
                        source,
                    })?,
            ),
        };
        let admin_socket = match &config.admin {
            None => None,
            Some(a) => Some(
                TcpListener::bind(a.bind)
                    .await
                    .map_err(|source| LbError::Bind {
                        name: "admin".into(),
                        addr: a.bind,
                        source,
                    })?,
            ),
        };
        for (socket, ctx) in bound {
            tokio::spawn(listener::serve(socket, ctx, shutdown.clone()));
        }
        for p in pools.values() {
            for b in p.backends().iter() {
                spawn_checker(p, b.clone(), clock, shutdown.clone());
            }
        }
        let shared = Arc::new(LbShared {
            pools,
            metrics,
            clock,
            shutdown: shutdown.clone(),
        });
        let dns = dns_socket.as_ref().and_then(|s| s.local_addr().ok());
        if let (Some(s), Some(cfg)) = (dns_socket, &config.dns) {
            let zone = dns::Zone::new(cfg, &shared.pools, clock);
            tokio::spawn(dns::serve(s, zone, shutdown.clone()));
        }
        let admin = admin_socket.as_ref().and_then(|s| s.local_addr().ok());
        if let Some(s) = admin_socket {
            tokio::spawn(admin::serve(s, shared.clone(), shutdown.clone()));
        }
        let (events, mut rx) = mpsc::channel(limits::EVENT_QUEUE_DEPTH);
        let for_events = shared.clone();
        let mut stop = shutdown;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    e = rx.recv() => match e {
                        Some(e) => for_events.apply(e),
                        None => return,
                    },
                    _ = stop.changed() => return,
                }
            }
        });
        Ok(Lb {
            shared,
            shutdown_tx,
            events,
            listeners,
            admin,
            dns,
            relays,
        })
    }

    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners.get(name).map(|(a, _)| *a)
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// Where the DNS responder answers (UDP), when configured.
    pub fn dns_addr(&self) -> Option<SocketAddr> {
        self.dns
    }

    /// Plain-TCP L4 connections being relayed now.
    pub fn relayed_connections(&self) -> usize {
        self.relays.as_ref().map_or(0, |r| r.active())
    }

    /// The bounded channel the daemon feeds cluster events into.
    pub fn events(&self) -> mpsc::Sender<LbEvent> {
        self.events.clone()
    }

    /// Stop new traffic to `backend`; the stream reports remaining
    /// connections until none are left.
    pub fn drain(
        &self,
        pool: &str,
        backend: &str,
    ) -> Result<mpsc::Receiver<DrainProgress>, LbError> {
        self.shared.drain(pool, backend)
    }

    /// Take new traffic again, ramping up over the pool's `slow_start_ms`.
    pub fn undrain(&self, pool: &str, backend: &str) -> Result<(), LbError> {
        self.shared.undrain(pool, backend)
    }

    /// Re-read every listener's certificate and key; existing connections
    /// keep the old ones. Stops at the first listener that fails (its old
    /// certificate stays in use).
    pub fn reload_tls(&self) -> Result<(), LbError> {
        for (name, (_, tls)) in &self.listeners {
            if let Some(t) = tls {
                t.reload().map_err(|source| LbError::Tls {
                    name: name.clone(),
                    source: Box::new(source),
                })?;
            }
        }
        Ok(())
    }

    pub fn status(&self) -> Status {
        self.shared.status()
    }

    pub fn metrics_text(&self) -> String {
        self.shared.metrics_text()
    }

    pub fn shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
    }
}

impl Drop for Lb {
    fn drop(&mut self) {
        self.shutdown();
    }
}
