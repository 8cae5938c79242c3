//! Prometheus metrics (`prometheus-client`): per backend active connections,
//! requests, errors by class, latency histogram, health and drain state; per
//! pool the distribution skew (max/mean share of requests). Each backend
//! holds its own metric handles so the request path only touches atomics.
//! Main types: [`Metrics`], [`BackendMetrics`], [`ErrorClass`].

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub pool: String,
    pub backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: String,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum ErrorClass {
    /// The backend refused or did not accept the connection in time.
    Connect,
    /// The backend accepted but did not answer in time.
    Timeout,
    /// The backend answered 5xx.
    Status5xx,
    /// The exchange broke midway (reset, malformed response).
    Protocol,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    pool: String,
    backend: String,
    class: ErrorClass,
}

type HistFamily = Family<BackendLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// The registry and the families every backend's handles come from.
pub struct Metrics {
    registry: Mutex<Registry>,
    active: Family<BackendLabels, Gauge>,
    requests: Family<BackendLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    latency: HistFamily,
    up: Family<BackendLabels, Gauge>,
    drained: Family<BackendLabels, Gauge>,
    skew: Family<PoolLabels, Gauge<f64, AtomicU64>>,
    pub rejected_connections: Counter,
    pub bad_requests: Counter,
}

/// One backend's handles: clones share the underlying atomics.
#[derive(Clone)]
pub struct BackendMetrics {
    pub active: Gauge,
    pub requests: Counter,
    errors: [Counter; 4],
    pub latency: Histogram,
    pub up: Gauge,
    pub drained: Gauge,
}

impl BackendMetrics {
    pub fn error(&self, class: ErrorClass) {
        self.errors[class as usize].inc();
    }
    pub fn errors(&self, class: ErrorClass) -> u64 {
        self.errors[class as usize].get()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("tandem_lb");
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            active: Family::default(),
            requests: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            up: Family::default(),
            drained: Family::default(),
            skew: Family::default(),
            rejected_connections: Counter::default(),
            bad_requests: Counter::default(),
        };
        r.register(
            "backend_active",
            "Open connections (L4) or in-flight requests (L7) per backend",
            m.active.clone(),
        );
        r.register(
            "backend_requests",
            "Requests or connections sent to a backend",
            m.requests.clone(),
        );
        r.register(
            "backend_errors",
            "Failed exchanges with a backend, by class",
            m.errors.clone(),
        );
        r.register(
            "backend_latency_seconds",
            "Time from sending to a backend until its response head (L7) or connection close (L4)",
            m.latency.clone(),
        );
        r.register(
            "backend_up",
            "1 if health checks consider the backend up",
            m.up.clone(),
        );
        r.register(
            "backend_drained",
            "1 while the backend is drained",
            m.drained.clone(),
        );
        r.register(
            "pool_skew",
            "Largest backend share of requests divided by the mean share (1.0 = perfectly even)",
            m.skew.clone(),
        );
        r.register(
            "rejected_connections",
            "Client connections refused at the listener's connection limit",
            m.rejected_connections.clone(),
        );
        r.register(
            "bad_requests",
            "Client connections closed for a bad PROXY header or TLS handshake",
            m.bad_requests.clone(),
        );
        *m.registry.lock().unwrap_or_else(|e| e.into_inner()) = r;
        m
    }

    pub fn backend(&self, pool: &str, backend: &str) -> BackendMetrics {
        let l = BackendLabels {
            pool: pool.into(),
            backend: backend.into(),
        };
        let err = |class| {
            self.errors
                .get_or_create(&ErrorLabels {
                    pool: pool.into(),
                    backend: backend.into(),
                    class,
                })
                .clone()
        };
        BackendMetrics {
            active: self.active.get_or_create(&l).clone(),
            requests: self.requests.get_or_create(&l).clone(),
            errors: [
                err(ErrorClass::Connect),
                err(ErrorClass::Timeout),
                err(ErrorClass::Status5xx),
                err(ErrorClass::Protocol),
            ],
            latency: self.latency.get_or_create(&l).clone(),
            up: self.up.get_or_create(&l).clone(),
            drained: self.drained.get_or_create(&l).clone(),
        }
    }

    pub fn set_skew(&self, pool: &str, skew: f64) {
        self.skew
            .get_or_create(&PoolLabels { pool: pool.into() })
            .set(skew);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        out
    }
}

/// max share / mean share of `counts`; 1.0 for an even (or empty) spread.
pub fn skew(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 || counts.is_empty() {
        return 1.0;
    }
    let max = counts.iter().copied().max().unwrap_or(0) as f64;
    max / (total as f64 / counts.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_of_even_and_lopsided_spreads() {
        assert_eq!(skew(&[]), 1.0);
        assert_eq!(skew(&[10, 10, 10]), 1.0);
        assert_eq!(skew(&[30, 0, 0]), 3.0);
    }

    #[test]
    fn rendering_names_backends_and_classes() {
        let m = Metrics::new();
        let b = m.backend("app", "a");
        b.requests.inc();
        b.error(ErrorClass::Status5xx);
        b.latency.observe(0.003);
        m.set_skew("app", 1.5);
        let text = m.render();
        assert!(
            text.contains("tandem_lb_backend_requests_total{pool=\"app\",backend=\"a\"} 1"),
            "{text}"
        );
        assert!(text.contains("class=\"Status5xx\""), "{text}");
        assert!(
            text.contains("tandem_lb_pool_skew{pool=\"app\"} 1.5"),
            "{text}"
        );
        assert!(
            text.contains("tandem_lb_backend_latency_seconds_bucket"),
            "{text}"
        );
    }
}
