//! Pools and backends at run time: each [`Backend`]'s live state (health,
//! drain, cluster loss, outlier ejection, slow start, active count) and the
//! [`Pool`]'s pick, which filters eligible backends, applies the all-down
//! policy and asks the balancer. A pick returns a [`Lease`] that counts the
//! connection or request as active until it is dropped; drain waits on that
//! count.

use crate::balance::{stable_hash, Balancer, Candidate};
use crate::config::{AllDownPolicy, BackendConfig, OutlierConfig, PoolConfig};
use crate::health::{Ejection, Outlier};
use crate::metrics::{BackendMetrics, ErrorClass, Metrics};
use crate::Clock;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub weight: u32,
    /// Identity on the hash ring and in persistence cookies.
    pub id_hash: u64,
    pub metrics: BackendMetrics,
    /// Active health checks' view.
    up: AtomicBool,
    /// Operator or cluster drain: no new connections, existing ones finish.
    drained: AtomicBool,
    /// The cluster declared the node lost or fenced: out at once.
    lost: AtomicBool,
    /// Taken out of the pool by a `PoolUpdate`; its checker stops.
    removed: AtomicBool,
    ejected_until_ms: AtomicU64,
    /// Agent check's share of the weight, percent; 0 = agent says drain.
    agent_weight_pct: AtomicU32,
    /// Slow start: weight ramps from this instant (0 = no ramp).
    ramp_from_ms: AtomicU64,
    outlier: Mutex<Outlier>,
    /// Keep-alive connections to it (L7).
    pub upstream: crate::upstream::Idle<crate::upstream::Sender>,
    /// Kept-alive HTTP/1 connections (`h1`).
    pub conns: crate::upstream::Idle<tokio::net::TcpStream>,
}

impl Backend {
    pub fn new(cfg: &BackendConfig, metrics: BackendMetrics) -> Self {
        metrics.up.set(1);
        Backend {
            name: cfg.name.clone(),
            addr: cfg.addr,
            weight: cfg.weight,
            id_hash: stable_hash(cfg.name.as_bytes()),
            metrics,
            up: AtomicBool::new(true),
            drained: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            ejected_until_ms: AtomicU64::new(0),
            ramp_from_ms: AtomicU64::new(0),
            agent_weight_pct: AtomicU32::new(100),
            outlier: Mutex::new(Outlier::default()),
            upstream: Default::default(),
            conns: Default::default(),
        }
    }

    pub fn active(&self) -> u64 {
        self.metrics.active.get().max(0) as u64
    }
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
    pub fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Relaxed)
    }
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }
    pub fn is_ejected(&self, now_ms: u64) -> bool {
        now_ms < self.ejected_until_ms.load(Ordering::Relaxed)
    }

    /// May take new traffic now.
    pub fn is_eligible(&self, now_ms: u64) -> bool {
        self.is_up()
            && self.is_routable()
            && !self.is_ejected(now_ms)
            && self.agent_weight_pct.load(Ordering::Relaxed) > 0
    }

    pub fn agent_weight_pct(&self) -> u32 {
        self.agent_weight_pct.load(Ordering::Relaxed)
    }

    /// An agent check's verdict; coming back from 0 starts slow start.
    pub fn set_agent_weight_pct(&self, pct: u32, now_ms: u64) {
        let was = self.agent_weight_pct.swap(pct.min(100), Ordering::Relaxed);
        if was == 0 && pct > 0 {
            self.ramp_from_ms.store(now_ms.max(1), Ordering::Relaxed);
        }
    }

    /// Not drained, lost or removed: the all-down policy may still use it.
    fn is_routable(&self) -> bool {
        !self.is_drained() && !self.is_lost() && !self.is_removed()
    }

    pub fn set_up(&self, up: bool, now_ms: u64) {
        if up && !self.up.swap(true, Ordering::Relaxed) {
            self.ramp_from_ms.store(now_ms.max(1), Ordering::Relaxed);
        }
        if !up {
            self.up.store(false, Ordering::Relaxed);
        }
        self.metrics.up.set(i64::from(up));
    }

    pub fn set_drained(&self, drained: bool, now_ms: u64) {
        let was = self.drained.swap(drained, Ordering::Relaxed);
        if was && !drained {
            self.ramp_from_ms.store(now_ms.max(1), Ordering::Relaxed);
        }
        self.metrics.drained.set(i64::from(drained));
    }

    pub fn set_lost(&self, lost: bool, now_ms: u64) {
        if self.lost.swap(lost, Ordering::Relaxed) && !lost {
            self.ramp_from_ms.store(now_ms.max(1), Ordering::Relaxed);
        }
    }

    pub(crate) fn set_removed(&self) {
        self.removed.store(true, Ordering::Relaxed);
    }

    /// Weight after slow start: ramps linearly from 1 to `weight`.
    pub fn effective_weight(&self, now_ms: u64, slow_start_ms: u64) -> u32 {
        let pct = u64::from(self.agent_weight_pct.load(Ordering::Relaxed));
        let weight = u64::from(self.weight) * pct / 100;
        let from = self.ramp_from_ms.load(Ordering::Relaxed);
        if from == 0 || slow_start_ms == 0 {
            return (weight as u32).max(1);
        }
        let elapsed = now_ms.saturating_sub(from);
        if elapsed >= slow_start_ms {
            self.ramp_from_ms.store(0, Ordering::Relaxed);
            return (weight as u32).max(1);
        }
        ((weight * elapsed / slow_start_ms) as u32).max(1)
    }

    pub fn record_success(&self, now_ms: u64, cfg: &OutlierConfig) {
        self.outlier
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .success(now_ms, cfg);
    }

    fn record_error(
        &self,
        class: ErrorClass,
        now_ms: u64,
        cfg: &OutlierConfig,
        pool: &str,
        may_eject: bool,
    ) {
        self.metrics.error(class);
        let ejection = self
            .outlier
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .error(now_ms, cfg, may_eject);
        match ejection {
            Ejection::Until(until) => {
                tracing::warn!(
                    pool,
                    backend = self.name,
                    eject_ms = until - now_ms,
                    "outlier ejected after consecutive errors"
                );
                self.ejected_until_ms.store(until, Ordering::Relaxed);
            }
            Ejection::Deferred => tracing::warn!(
                pool,
                backend = self.name,
                "outlier not ejected after consecutive errors: it is the pool's last eligible backend, or max_ejection_percent are out already"
            ),
            Ejection::No => {}
        }
    }
}

/// Counts one connection/request as active on a backend until dropped.
pub struct Lease {
    pub backend: Arc<Backend>,
}

impl Lease {
    fn new(backend: Arc<Backend>) -> Self {
        backend.metrics.active.inc();
        backend.metrics.requests.inc();
        Lease { backend }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.backend.metrics.active.dec();
    }
}

/// One request's picks: the backends that failed it, and until when it
/// may be held (see [`Pool::pick_or_hold`]).
#[derive(Default)]
pub struct Tries {
    failed: Vec<u64>,
    /// Picks that failed, all told (`failed` forgets some).
    attempts: usize,
    held_until: Option<tokio::time::Instant>,
}

impl Tries {
    /// The backend `id` failed this request: not picked again (until the
    /// pool changes); answers how many picks failed so far.
    pub fn failed_on(&mut self, id: u64) -> usize {
        self.failed.push(id);
        self.attempts += 1;
        self.attempts
    }

    /// Picks that failed so far.
    pub fn attempts(&self) -> usize {
        self.attempts
    }
}

/// One held request's place in its pool's `hold_max`.
struct Held<'p>(&'p Pool);

impl<'p> Held<'p> {
    /// `None` when the pool does not hold or holds its most already.
    fn take(pool: &'p Pool) -> Option<Held<'p>> {
        use std::sync::atomic::Ordering::Relaxed;
        if pool.cfg.hold_ms == 0 {
            return None;
        }
        pool.held
            .fetch_update(Relaxed, Relaxed, |n| {
                (n < pool.cfg.hold_max).then_some(n + 1)
            })
            .ok()?;
        Some(Held(pool))
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0
            .held
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How the request wants to be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// The balancing algorithm decides.
    Free,
    /// Consistent hash of a key (source IP, header, cookie).
    Hash(u64),
    /// A persistence cookie named this backend (by `id_hash`).
    Sticky(u64),
}

pub struct Pool {
    pub cfg: PoolConfig,
    backends: RwLock<Arc<Vec<Arc<Backend>>>>,
    balancer: Balancer,
    clock: Clock,
    /// Wakes held requests when the backend list changes.
    changed: tokio::sync::Notify,
    /// Requests and connections held now (see `PoolConfig::hold_ms`).
    held: std::sync::atomic::AtomicUsize,
    /// Taken to decide an ejection (see `Pool::record_failure`).
    ejecting: Mutex<()>,
}

impl Pool {
    pub fn new(cfg: PoolConfig, metrics: &Metrics, clock: Clock) -> Self {
        let backends = cfg
            .backends
            .iter()
            .map(|b| Arc::new(Backend::new(b, metrics.backend(&cfg.name, &b.name))))
            .collect();
        Pool {
            balancer: Balancer::new(cfg.algorithm),
            backends: RwLock::new(Arc::new(backends)),
            cfg,
            clock,
            changed: tokio::sync::Notify::new(),
            held: std::sync::atomic::AtomicUsize::new(0),
            ejecting: Mutex::new(()),
        }
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn backends(&self) -> Arc<Vec<Arc<Backend>>> {
        self.backends
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn find(&self, name: &str) -> Option<Arc<Backend>> {
        self.backends().iter().find(|b| b.name == name).cloned()
    }

    /// Replace the backend list; backends that keep their name and address
    /// keep their state (active count, health, drain). Returns the new ones,
    /// which need a health checker.
    pub fn set_backends(&self, list: &[BackendConfig], metrics: &Metrics) -> Vec<Arc<Backend>> {
        let old = self.backends();
        let mut fresh = Vec::new();
        let next: Vec<Arc<Backend>> = list
            .iter()
            .map(|cfg| {
                old.iter()
                    .find(|b| b.name == cfg.name && b.addr == cfg.addr && b.weight == cfg.weight)
                    .cloned()
                    .unwrap_or_else(|| {
                        let b =
                            Arc::new(Backend::new(cfg, metrics.backend(self.name(), &cfg.name)));
                        fresh.push(b.clone());
                        b
                    })
            })
            .collect();
        for b in old.iter() {
            if !next.iter().any(|n| Arc::ptr_eq(n, b)) {
                b.set_removed();
            }
        }
        *self.backends.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        self.changed.notify_waiters();
        fresh
    }

    /// `b` answered with `status` after `latency`: the latency histogram,
    /// and a 5xx counts toward passive ejection like any failure.
    pub fn record_answer(&self, b: &Backend, status: u16, latency: std::time::Duration) {
        b.metrics.latency.observe(latency.as_secs_f64());
        if status >= 500 {
            self.record_failure(b, ErrorClass::Status5xx);
        } else {
            b.record_success(self.clock.now_ms(), &self.cfg.outlier);
        }
    }

    /// An exchange with `b` failed. Passive ejection never takes the
    /// pool's last eligible backend, nor more than `max_ejection_percent`
    /// of its backends at once (one always may go); counted and decided
    /// under one lock, so two failing at once cannot both pass the cap.
    pub fn record_failure(&self, b: &Backend, class: ErrorClass) {
        let _one_at_a_time = self.ejecting.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.now_ms();
        let all = self.backends();
        let ejected = all.iter().filter(|o| o.is_ejected(now)).count();
        let cap = all.len() * self.cfg.outlier.max_ejection_percent as usize / 100;
        let others_eligible = all
            .iter()
            .any(|o| !std::ptr::eq(Arc::as_ptr(o), b) && o.is_eligible(now));
        let may_eject = ejected < cap.max(1) && others_eligible;
        b.record_error(class, now, &self.cfg.outlier, self.name(), may_eject);
    }

    /// Choose a backend, skipping those in `exclude` (already failed for
    /// this request). `None`: nothing eligible and the policy is fail closed.
    pub fn pick(&self, hint: Hint, exclude: &[u64]) -> Option<Lease> {
        let now = self.clock.now_ms();
        let all = self.backends();
        if let Hint::Sticky(id) = hint {
            if let Some(b) = all.iter().find(|b| b.id_hash == id) {
                if b.is_eligible(now) && !exclude.contains(&id) {
                    return Some(Lease::new(b.clone()));
                }
            }
        }
        let mut cands = self.candidates(&all, now, exclude, |b| b.is_eligible(now));
        if cands.is_empty() && self.cfg.all_down == AllDownPolicy::ServeAll {
            cands = self.candidates(&all, now, exclude, |b| b.is_routable());
        }
        let key = match hint {
            Hint::Hash(k) => Some(k),
            _ => None,
        };
        let i = self.balancer.pick(&cands, key)?;
        Some(Lease::new(all[cands[i].slot].clone()))
    }

    /// [`Pool::pick`], but when nothing is eligible and the pool holds
    /// (`hold_ms`), waits for a backend to become eligible (a moving
    /// service's new node joining the pool) instead of failing. `tries`
    /// is the request's: one hold deadline for all its picks, and the
    /// backends that failed it, forgotten when the pool's backends change
    /// (what failed may have left, or come back). While only backends that
    /// failed it are eligible, it waits for such a change only briefly.
    pub async fn pick_or_hold(&self, hint: Hint, tries: &mut Tries) -> Option<Lease> {
        if let Some(lease) = self.pick(hint, &tries.failed) {
            return Some(lease);
        }
        let Some(_held) = Held::take(self) else {
            if self.cfg.hold_ms > 0 {
                tracing::debug!(pool = self.name(), "hold_max reached: not held");
            }
            return None;
        };
        let now = tokio::time::Instant::now();
        let deadline = *tries
            .held_until
            .get_or_insert(now + std::time::Duration::from_millis(self.cfg.hold_ms));
        let brief =
            (now + std::time::Duration::from_millis(crate::limits::HOLD_FAILED_MS)).min(deadline);
        let recheck = std::time::Duration::from_millis(crate::limits::HOLD_RECHECK_MS);
        loop {
            // Registered before looking, so a change in between wakes it.
            let changed = self.changed.notified();
            if let Some(lease) = self.pick(hint, &tries.failed) {
                return Some(lease);
            }
            let now = tokio::time::Instant::now();
            let until = if self.any_eligible() { brief } else { deadline };
            if now >= until {
                tracing::debug!(pool = self.name(), "held request found no backend in time");
                return None;
            }
            if tokio::time::timeout((until - now).min(recheck), changed)
                .await
                .is_ok()
            {
                tries.failed.clear();
            }
        }
    }

    /// Whether any backend may take traffic now, whoever it failed.
    fn any_eligible(&self) -> bool {
        let now = self.clock.now_ms();
        self.backends().iter().any(|b| b.is_eligible(now))
    }

    fn candidates(
        &self,
        all: &[Arc<Backend>],
        now: u64,
        exclude: &[u64],
        keep: impl Fn(&Backend) -> bool,
    ) -> Vec<Candidate> {
        all.iter()
            .enumerate()
            .filter(|(_, b)| keep(b) && !exclude.contains(&b.id_hash))
            .map(|(slot, b)| Candidate {
                slot,
                weight: b.effective_weight(now, self.cfg.slow_start_ms),
                active: b.active(),
                id_hash: b.id_hash,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn pool(extra: &str) -> Pool {
        let text = format!(
            "[[pool]]\nname = \"p\"\n{extra}\n[[pool.backend]]\nname = \"a\"\naddr = \"127.0.0.1:1\"\nweight = 10\n[[pool.backend]]\nname = \"b\"\naddr = \"127.0.0.1:2\"\nweight = 10\n"
        );
        let c = Config::parse(&text, "t.toml").unwrap();
        Pool::new(c.pools[0].clone(), &Metrics::new(), Clock::new())
    }

    #[test]
    fn slow_start_ramps_weight_from_one() {
        let b = &pool("").backends()[0];
        assert_eq!(b.effective_weight(5_000, 10_000), 10);
        b.set_drained(true, 1_000);
        b.set_drained(false, 2_000);
        assert_eq!(b.effective_weight(2_000, 10_000), 1);
        assert_eq!(b.effective_weight(7_000, 10_000), 5);
        assert_eq!(b.effective_weight(12_000, 10_000), 10);
        assert_eq!(b.effective_weight(3_000, 10_000), 10, "ramp ends for good");
    }

    #[test]
    fn agent_weight_scales_and_agent_drain_excludes() {
        let p = pool("");
        let a = &p.backends()[0];
        a.set_agent_weight_pct(50, 0);
        assert_eq!(a.effective_weight(0, 0), 5);
        a.set_agent_weight_pct(0, 0);
        assert!(!a.is_eligible(0));
        a.set_agent_weight_pct(100, 1_000);
        assert_eq!(
            a.effective_weight(1_000, 10_000),
            1,
            "slow start after agent drain"
        );
        assert!(a.is_eligible(1_000));
    }

    #[test]
    fn drained_lost_and_down_backends_take_no_new_traffic() {
        let p = pool("");
        let [a, b] = [&p.backends()[0], &p.backends()[1]];
        a.set_drained(true, 0);
        for _ in 0..10 {
            assert_eq!(p.pick(Hint::Free, &[]).unwrap().backend.name, "b");
        }
        b.set_lost(true, 0);
        assert!(p.pick(Hint::Free, &[]).is_none(), "fail closed");
        a.set_drained(false, 0);
        a.set_up(false, 0);
        assert!(p.pick(Hint::Free, &[]).is_none());
    }

    #[test]
    fn serve_all_ignores_health_but_not_drain() {
        let p = pool("all_down = \"serve-all\"");
        let [a, b] = [&p.backends()[0], &p.backends()[1]];
        a.set_up(false, 0);
        b.set_up(false, 0);
        assert!(p.pick(Hint::Free, &[]).is_some());
        a.set_drained(true, 0);
        for _ in 0..5 {
            assert_eq!(p.pick(Hint::Free, &[]).unwrap().backend.name, "b");
        }
    }

    #[test]
    fn a_lease_counts_until_dropped_and_sticky_hints_fall_back() {
        let p = pool("");
        let a = p.backends()[0].clone();
        let lease = p.pick(Hint::Sticky(a.id_hash), &[]).unwrap();
        assert_eq!(lease.backend.name, "a");
        assert_eq!(a.active(), 1);
        drop(lease);
        assert_eq!(a.active(), 0);
        a.set_drained(true, 0);
        assert_eq!(
            p.pick(Hint::Sticky(a.id_hash), &[]).unwrap().backend.name,
            "b"
        );
        assert_eq!(
            p.pick(Hint::Free, &[p.backends()[1].id_hash])
                .map(|l| l.backend.name.clone()),
            None
        );
    }
}
