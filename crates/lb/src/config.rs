//! The lb configuration: TOML as written by the operator, parsed with serde
//! and then validated as a whole. Syntax errors carry toml's line and column;
//! every semantic problem names its table and field, and all are reported at
//! once. Main types: [`Config`], [`ListenerConfig`], [`PoolConfig`].
//!
//! Durations are integers with the unit last (`interval_ms`), as everywhere
//! in tandem.

use crate::identity::Cidr;
use crate::limits;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A whole lb configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    #[serde(default, rename = "pool")]
    pub pools: Vec<PoolConfig>,
    /// Peers whose X-Forwarded-For / Forwarded headers are kept and appended
    /// to; everyone else's are replaced.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Where `/metrics` and `/status` are served; none when absent.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// Health-aware authoritative DNS; none when absent.
    #[serde(default)]
    pub dns: Option<DnsConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// UDP address to answer on.
    pub bind: SocketAddr,
    /// Keep it low: caches hold failed addresses this long.
    #[serde(default = "default_dns_ttl")]
    pub ttl_s: u32,
    #[serde(default, rename = "name")]
    pub names: Vec<DnsName>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsName {
    /// Fully qualified, e.g. "app.example.com."
    pub name: String,
    pub pool: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub bind: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// L4: bytes are copied, one backend per client connection.
    Tcp,
    /// L7: HTTP/1.1 (and HTTP/2 over TLS), one backend pick per request.
    Http,
}

/// PROXY protocol version, on receive (listener) or send (pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyVersion {
    V1,
    V2,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub name: String,
    pub bind: SocketAddr,
    pub mode: Mode,
    pub pool: String,
    /// Expect a PROXY header (v1 or v2, either accepted) from every client.
    #[serde(default)]
    pub accept_proxy: bool,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Connecting to a backend.
    pub connect_ms: u64,
    /// No byte in either direction (L4), or no response from the backend (L7).
    pub idle_ms: u64,
    /// A client must send a whole request head within this (slowloris guard).
    pub header_read_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect_ms: 2_000,
            idle_ms: 60_000,
            header_read_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Offer HTTP/2 via ALPN (L7 only).
    #[serde(default = "yes")]
    pub http2: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    RoundRobin,
    WeightedRoundRobin,
    LeastConnections,
    PowerOfTwo,
    ConsistentHash,
}

/// What happens when no backend of a pool is eligible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AllDownPolicy {
    /// Refuse: 503 at L7, connection closed at L4.
    FailClosed,
    /// Ignore health and send to every non-drained backend.
    ServeAll,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub name: String,
    #[serde(default = "default_algorithm")]
    pub algorithm: Algorithm,
    #[serde(default = "default_all_down")]
    pub all_down: AllDownPolicy,
    /// Send a PROXY header to backends (L4 listeners only).
    #[serde(default)]
    pub send_proxy: Option<ProxyVersion>,
    /// After an undrain or recovery, ramp the weight up over this long.
    #[serde(default)]
    pub slow_start_ms: u64,
    /// While nothing in the pool may take a request or connection (a
    /// fail-over service between its stop on one node and its start on
    /// another), hold it this long waiting for a backend before failing;
    /// 0 = fail at once.
    #[serde(default)]
    pub hold_ms: u64,
    /// At most this many requests and connections held at once; more fail
    /// at once.
    #[serde(default = "default_hold_max")]
    pub hold_max: usize,
    #[serde(default, rename = "backend")]
    pub backends: Vec<BackendConfig>,
    #[serde(default)]
    pub health: HealthConfig,
    #[serde(default)]
    pub outlier: OutlierConfig,
    #[serde(default)]
    pub persistence: PersistenceConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub name: String,
    pub addr: SocketAddr,
    #[serde(default = "one")]
    pub weight: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    None,
    Tcp,
    Http,
    /// HAProxy-style agent: connect to `agent_port`, read one line such as
    /// `up`, `down`, `drain`, `75%` or `up 50%`.
    Agent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    pub kind: CheckKind,
    pub path: String,
    pub expect_status: u16,
    pub interval_ms: u64,
    /// Interval while a backend is failing or down, to notice recovery sooner.
    pub fast_interval_ms: u64,
    pub timeout_ms: u64,
    /// Consecutive failures that take a backend out.
    pub fall: u32,
    /// Consecutive successes that bring it back.
    pub rise: u32,
    /// Agent checks: the port on the backend's address (default: its own).
    pub agent_port: Option<u16>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            kind: CheckKind::Tcp,
            path: "/".into(),
            expect_status: 200,
            interval_ms: 5_000,
            fast_interval_ms: 1_000,
            timeout_ms: 2_000,
            fall: 2,
            rise: 2,
            agent_port: None,
        }
    }
}

/// Passive outlier detection from live traffic.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutlierConfig {
    /// Consecutive 5xx responses or connect errors that eject a backend; 0 = off.
    pub consecutive_errors: u32,
    /// First ejection lasts this long; repeated ejections double it.
    pub eject_ms: u64,
    /// At most this share of the pool's backends is ejected at once (one
    /// always may be), as Envoy's `max_ejection_percent`: errors on every
    /// backend at once say more about the network or this lb than about
    /// the backends, and must not empty the pool.
    pub max_ejection_percent: u32,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            consecutive_errors: 5,
            eject_ms: 10_000,
            max_ejection_percent: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PersistenceKind {
    #[default]
    None,
    /// Insert a cookie naming the backend (L7).
    Cookie,
    /// Consistent hash of the client address.
    SourceIp,
    /// Consistent hash of a request header (L7).
    Header,
    /// Consistent hash of an existing cookie (L7).
    CookieHash,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersistenceConfig {
    pub kind: PersistenceKind,
    /// Cookie or header name.
    pub name: String,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        PersistenceConfig {
            kind: PersistenceKind::None,
            name: "TANDEM_BACKEND".into(),
        }
    }
}

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: {} problem(s):\n  {}", problems.len(), problems.join("\n  "))]
    Invalid { file: String, problems: Vec<String> },
}

impl Config {
    /// Read, parse and validate a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Config::parse(&text, &file)
    }

    /// Parse and validate text; `file` names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                file: file.to_string(),
                problems,
            })
        }
    }

    /// Parsed trusted-proxy CIDRs (valid after `parse`).
    pub fn trusted_cidrs(&self) -> Vec<Cidr> {
        self.trusted_proxies
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    pub fn pool(&self, name: &str) -> Option<&PoolConfig> {
        self.pools.iter().find(|p| p.name == name)
    }

    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.listeners.len() > limits::MAX_LISTENERS {
            p.push(format!(
                "[[listener]]: {} listeners, at most {} allowed",
                self.listeners.len(),
                limits::MAX_LISTENERS
            ));
        }
        if self.pools.len() > limits::MAX_POOLS {
            p.push(format!(
                "[[pool]]: {} pools, at most {} allowed",
                self.pools.len(),
                limits::MAX_POOLS
            ));
        }
        for (i, cidr) in self.trusted_proxies.iter().enumerate() {
            if let Err(e) = cidr.parse::<Cidr>() {
                p.push(format!("trusted_proxies[{i}]: \"{cidr}\": {e}"));
            }
        }
        if let Some(dns) = &self.dns {
            for n in &dns.names {
                let at = format!("[[dns.name]] \"{}\"", n.name);
                if self.pool(&n.pool).is_none() {
                    p.push(format!(
                        "{at}: field `pool`: no [[pool]] named \"{}\"",
                        n.pool
                    ));
                }
                if n.name.parse::<hickory_proto::rr::Name>().is_err() || !n.name.ends_with('.') {
                    p.push(format!(
                        "{at}: field `name` must be a fully qualified domain name ending in '.'"
                    ));
                }
            }
        }
        let mut names = BTreeSet::new();
        for l in &self.listeners {
            l.problems(self, &mut p);
            if !names.insert(&l.name) {
                p.push(format!("[[listener]] \"{}\": duplicate name", l.name));
            }
        }
        let mut names = BTreeSet::new();
        for pool in &self.pools {
            pool.problems(&mut p);
            if !names.insert(&pool.name) {
                p.push(format!("[[pool]] \"{}\": duplicate name", pool.name));
            }
        }
        p
    }
}

impl ListenerConfig {
    fn problems(&self, config: &Config, p: &mut Vec<String>) {
        let at = format!("[[listener]] \"{}\"", self.name);
        if self.name.is_empty() {
            p.push("[[listener]]: field `name` must not be empty".into());
        }
        match config.pool(&self.pool) {
            None => p.push(format!(
                "{at}: field `pool`: no [[pool]] named \"{}\"",
                self.pool
            )),
            Some(pool) => {
                if self.mode == Mode::Http && pool.send_proxy.is_some() {
                    p.push(format!(
                        "{at}: pool \"{}\" sets `send_proxy`, which only L4 (mode = \"tcp\") listeners support",
                        pool.name
                    ));
                }
                let l7_only = matches!(
                    pool.persistence.kind,
                    PersistenceKind::Cookie | PersistenceKind::Header | PersistenceKind::CookieHash
                );
                if self.mode == Mode::Tcp && l7_only {
                    p.push(format!(
                        "{at}: pool \"{}\" uses HTTP persistence ({:?}) but the listener is mode = \"tcp\"",
                        pool.name, pool.persistence.kind
                    ));
                }
            }
        }
        if self.max_connections == 0 || self.max_connections > limits::MAX_CONNECTIONS {
            p.push(format!(
                "{at}: field `max_connections` = {} must be in 1..={}",
                self.max_connections,
                limits::MAX_CONNECTIONS
            ));
        }
        for (field, v) in [
            ("connect_ms", self.timeouts.connect_ms),
            ("idle_ms", self.timeouts.idle_ms),
            ("header_read_ms", self.timeouts.header_read_ms),
        ] {
            if v == 0 {
                p.push(format!("{at}.timeouts: field `{field}` must be > 0"));
            }
        }
        if let Some(tls) = &self.tls {
            for (field, path) in [("cert", &tls.cert), ("key", &tls.key)] {
                if !path.is_file() {
                    p.push(format!(
                        "{at}.tls: field `{field}`: {} is not a readable file",
                        path.display()
                    ));
                }
            }
        }
    }
}

impl PoolConfig {
    fn problems(&self, p: &mut Vec<String>) {
        let at = format!("[[pool]] \"{}\"", self.name);
        if self.name.is_empty() {
            p.push("[[pool]]: field `name` must not be empty".into());
        }
        if self.backends.len() > limits::MAX_BACKENDS_PER_POOL {
            p.push(format!(
                "{at}: {} backends, at most {} allowed",
                self.backends.len(),
                limits::MAX_BACKENDS_PER_POOL
            ));
        }
        let mut names = BTreeSet::new();
        for b in &self.backends {
            if !names.insert(&b.name) {
                p.push(format!("{at}.backend \"{}\": duplicate name", b.name));
            }
            if b.weight == 0 || b.weight > limits::MAX_WEIGHT {
                p.push(format!(
                    "{at}.backend \"{}\": field `weight` = {} must be in 1..={}",
                    b.name,
                    b.weight,
                    limits::MAX_WEIGHT
                ));
            }
        }
        if self.hold_ms > limits::MAX_HOLD_MS {
            p.push(format!(
                "{at}: field `hold_ms` = {} is more than {} (a client waits that long)",
                self.hold_ms,
                limits::MAX_HOLD_MS
            ));
        }
        if self.hold_ms > 0 && self.hold_max == 0 {
            p.push(format!(
                "{at}: field `hold_max` = 0 holds nothing although `hold_ms` = {}",
                self.hold_ms
            ));
        }
        if self.hold_max > limits::MAX_HELD {
            p.push(format!(
                "{at}: field `hold_max` = {} is more than {}",
                self.hold_max,
                limits::MAX_HELD
            ));
        }
        if self.outlier.max_ejection_percent > 100 {
            p.push(format!(
                "{at}.outlier: field `max_ejection_percent` = {} is more than 100",
                self.outlier.max_ejection_percent
            ));
        }
        let h = &self.health;
        for (field, v) in [
            ("interval_ms", h.interval_ms),
            ("fast_interval_ms", h.fast_interval_ms),
            ("timeout_ms", h.timeout_ms),
            ("fall", u64::from(h.fall)),
            ("rise", u64::from(h.rise)),
        ] {
            if v == 0 {
                p.push(format!("{at}.health: field `{field}` must be > 0"));
            }
        }
        if h.kind == CheckKind::Http && !h.path.starts_with('/') {
            p.push(format!(
                "{at}.health: field `path` = \"{}\" must start with '/'",
                h.path
            ));
        }
        if h.kind == CheckKind::Http && !(100..=599).contains(&h.expect_status) {
            p.push(format!(
                "{at}.health: field `expect_status` = {} is not an HTTP status",
                h.expect_status
            ));
        }
        let needs_name = matches!(
            self.persistence.kind,
            PersistenceKind::Cookie | PersistenceKind::Header | PersistenceKind::CookieHash
        );
        if needs_name && !is_token(&self.persistence.name) {
            p.push(format!(
                "{at}.persistence: field `name` = \"{}\" is not a valid header/cookie name",
                self.persistence.name
            ));
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn default_dns_ttl() -> u32 {
    5
}
fn default_max_connections() -> usize {
    limits::DEFAULT_MAX_CONNECTIONS
}
fn default_algorithm() -> Algorithm {
    Algorithm::RoundRobin
}
fn default_hold_max() -> usize {
    1_000
}

fn default_all_down() -> AllDownPolicy {
    AllDownPolicy::FailClosed
}
fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
trusted_proxies = ["10.0.0.0/8", "::1/128"]
[admin]
bind = "127.0.0.1:0"
[[listener]]
name = "web"
bind = "127.0.0.1:0"
mode = "http"
pool = "app"
timeouts = { connect_ms = 500 }
[[pool]]
name = "app"
algorithm = "least-connections"
all_down = "serve-all"
[[pool.backend]]
name = "a"
addr = "127.0.0.1:9001"
weight = 3
[pool.health]
kind = "http"
path = "/ready"
"#;

    #[test]
    fn a_good_config_parses_with_defaults() {
        let c = Config::parse(GOOD, "lb.toml").unwrap();
        assert_eq!(c.listeners[0].timeouts.connect_ms, 500);
        assert_eq!(c.listeners[0].timeouts.idle_ms, 60_000);
        let pool = &c.pools[0];
        assert_eq!(pool.algorithm, Algorithm::LeastConnections);
        assert_eq!(pool.health.timeout_ms, 2_000);
        assert_eq!(pool.health.interval_ms, 5_000);
        assert_eq!(pool.health.fall, 2);
        assert_eq!(c.trusted_cidrs().len(), 2);
    }

    #[test]
    fn unknown_fields_name_the_field_and_line() {
        let text = GOOD.replace("weight = 3", "wieght = 3");
        let e = Config::parse(&text, "lb.toml").unwrap_err().to_string();
        assert!(e.contains("lb.toml"), "{e}");
        assert!(e.contains("wieght"), "{e}");
        assert!(e.contains("line 18"), "{e}");
    }

    #[test]
    fn semantic_problems_are_all_reported_with_table_and_field() {
        let text = GOOD
            .replace("weight = 3", "weight = 0")
            .replace("pool = \"app\"", "pool = \"nope\"")
            .replace("\"::1/128\"", "\"::1/129\"")
            .replace("path = \"/ready\"", "path = \"ready\"");
        let e = Config::parse(&text, "lb.toml").unwrap_err().to_string();
        for needle in [
            "[[pool]] \"app\".backend \"a\": field `weight` = 0",
            "[[listener]] \"web\": field `pool`: no [[pool]] named \"nope\"",
            "trusted_proxies[1]",
            "[[pool]] \"app\".health: field `path`",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in {e}");
        }
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let c = Config::parse(
            include_str!("../../../examples/lb.toml"),
            "examples/lb.toml",
        )
        .unwrap();
        assert_eq!(c.listeners.len(), 2);
    }

    #[test]
    fn a_bad_enum_value_lists_the_choices() {
        let text = GOOD.replace("least-connections", "fastest");
        let e = Config::parse(&text, "lb.toml").unwrap_err().to_string();
        assert!(e.contains("fastest") && e.contains("round-robin"), "{e}");
    }
}
