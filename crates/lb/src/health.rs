//! Health: the active check state machine (fall/rise, fast interval while
//! failing, flap damping), passive outlier ejection, and the checks
//! themselves (TCP connect, HTTP status). The state machines are pure
//! (`now_ms` is passed in); [`run_checker`] only performs the probes and
//! applies the verdicts. Main types: [`HealthMachine`], [`Verdict`],
//! [`Outlier`].

use crate::config::{CheckKind, HealthConfig, OutlierConfig};
use crate::limits;
use crate::pool::Backend;
use crate::Clock;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Unchanged,
    WentDown,
    WentUp,
}

/// Fall/rise counting with flap damping. Starts up, so a fresh pool serves
/// at once; a dead backend leaves after `fall` failed checks.
#[derive(Debug, Clone)]
pub struct HealthMachine {
    up: bool,
    ok_streak: u32,
    fail_streak: u32,
    /// When the recent state changes happened (for flap detection).
    changes: VecDeque<u64>,
    /// A flapping backend stays down until this instant even if it passes.
    hold_until_ms: u64,
}

impl Default for HealthMachine {
    fn default() -> Self {
        HealthMachine {
            up: true,
            ok_streak: 0,
            fail_streak: 0,
            changes: VecDeque::new(),
            hold_until_ms: 0,
        }
    }
}

impl HealthMachine {
    pub fn is_up(&self) -> bool {
        self.up
    }

    pub fn observe(&mut self, ok: bool, now_ms: u64, cfg: &HealthConfig) -> Verdict {
        if ok {
            self.ok_streak = self.ok_streak.saturating_add(1);
            self.fail_streak = 0;
            if !self.up && self.ok_streak >= cfg.rise && now_ms >= self.hold_until_ms {
                self.up = true;
                self.record_change(now_ms, cfg);
                return Verdict::WentUp;
            }
        } else {
            self.fail_streak = self.fail_streak.saturating_add(1);
            self.ok_streak = 0;
            if self.up && self.fail_streak >= cfg.fall {
                self.up = false;
                if self.record_change(now_ms, cfg) {
                    self.hold_until_ms =
                        now_ms + u64::from(limits::FLAP_HOLD_INTERVALS) * cfg.interval_ms;
                }
                return Verdict::WentDown;
            }
        }
        Verdict::Unchanged
    }

    /// Checks come faster while anything is wrong, to confirm or recover sooner.
    pub fn next_interval_ms(&self, cfg: &HealthConfig) -> u64 {
        if !self.up || self.fail_streak > 0 {
            cfg.fast_interval_ms.min(cfg.interval_ms)
        } else {
            cfg.interval_ms
        }
    }

    /// Records a change; true when the backend is flapping.
    fn record_change(&mut self, now_ms: u64, cfg: &HealthConfig) -> bool {
        let window = u64::from(limits::FLAP_WINDOW_INTERVALS) * cfg.interval_ms;
        self.changes.push_back(now_ms);
        while self
            .changes
            .front()
            .is_some_and(|&t| now_ms.saturating_sub(t) > window)
        {
            self.changes.pop_front();
        }
        self.changes.len() >= limits::FLAP_CHANGES
    }
}

/// What one error from live traffic does to its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ejection {
    No,
    /// Ejected until this instant (ms).
    Until(u64),
    /// Due for ejection, but the pool has no room (first time this streak).
    Deferred,
}

/// Passive outlier detection: consecutive errors from live traffic eject a
/// backend for `eject_ms`, doubling on repeat ejections up to a cap.
#[derive(Debug, Default, Clone)]
pub struct Outlier {
    consecutive: u32,
    ejections: u32,
    ejected_until_ms: u64,
}

impl Outlier {
    /// What this error does to the backend. `may_eject`: the pool leaves
    /// room (see `Pool::record_failure`); if not, the errors keep counting
    /// and the next one, with room, ejects.
    pub fn error(&mut self, now_ms: u64, cfg: &OutlierConfig, may_eject: bool) -> Ejection {
        if cfg.consecutive_errors == 0 {
            return Ejection::No;
        }
        self.consecutive = self.consecutive.saturating_add(1);
        if self.consecutive < cfg.consecutive_errors || now_ms < self.ejected_until_ms {
            return Ejection::No;
        }
        if !may_eject {
            // Said once per streak of errors.
            return if self.consecutive == cfg.consecutive_errors {
                Ejection::Deferred
            } else {
                Ejection::No
            };
        }
        self.consecutive = 0;
        let factor = 1u64 << self.ejections.min(limits::MAX_EJECT_MULTIPLIER.ilog2());
        self.ejections += 1;
        self.ejected_until_ms = now_ms + cfg.eject_ms * factor;
        Ejection::Until(self.ejected_until_ms)
    }

    pub fn success(&mut self, now_ms: u64, cfg: &OutlierConfig) {
        self.consecutive = 0;
        // A full quiet ejection period after the last one forgives history.
        if self.ejections > 0 && now_ms > self.ejected_until_ms + cfg.eject_ms {
            self.ejections = 0;
        }
    }
}

/// What a passing check says about the weight: percent of the configured
/// weight (100 for TCP/HTTP checks; agents may lower it, 0 = agent drain).
pub type WeightPct = u32;

/// What an agent's line means: `Ok(weight percent)` or `Err(reason)`.
/// Words are separated by spaces or commas; unknown words are ignored, as
/// HAProxy does. A line with only a percentage keeps the backend up.
pub fn parse_agent(line: &str) -> Result<WeightPct, String> {
    let mut pct = 100;
    let mut state_ok = true;
    for word in line
        .split([' ', ',', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
    {
        let w = word.to_ascii_lowercase();
        if let Some(n) = w.strip_suffix('%') {
            pct = n
                .parse::<u32>()
                .map_err(|_| format!("agent: bad weight {word:?}"))?
                .min(100);
            continue;
        }
        match w.as_str() {
            "up" | "ready" => state_ok = true,
            "drain" => pct = 0,
            "down" | "fail" | "failed" | "stopped" | "maint" => state_ok = false,
            _ => {}
        }
    }
    if state_ok {
        Ok(pct)
    } else {
        Err(format!("agent says {:?}", line.trim()))
    }
}

/// One probe of `addr` as configured.
pub async fn probe(addr: SocketAddr, cfg: &HealthConfig) -> Result<WeightPct, String> {
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let attempt = async {
        let target = match (cfg.kind, cfg.agent_port) {
            (CheckKind::Agent, Some(port)) => SocketAddr::new(addr.ip(), port),
            _ => addr,
        };
        let mut s = TcpStream::connect(target)
            .await
            .map_err(|e| e.to_string())?;
        if cfg.kind == CheckKind::Agent {
            let mut buf = vec![0u8; limits::HEALTH_RESPONSE_MAX_BYTES];
            let mut n = 0;
            while n < buf.len() && !buf[..n].contains(&b'\n') {
                let k = s.read(&mut buf[n..]).await.map_err(|e| e.to_string())?;
                if k == 0 {
                    break;
                }
                n += k;
            }
            return parse_agent(&String::from_utf8_lossy(&buf[..n]));
        }
        if cfg.kind != CheckKind::Http {
            return Ok(100);
        }
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: tandem-lb-check\r\nConnection: close\r\n\r\n",
            cfg.path
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; limits::HEALTH_RESPONSE_MAX_BYTES];
        let mut n = 0;
        while n < 12 {
            let k = s.read(&mut buf[n..]).await.map_err(|e| e.to_string())?;
            if k == 0 {
                break;
            }
            n += k;
        }
        let status = parse_status(&buf[..n]).ok_or("no HTTP status line in the response")?;
        if status == cfg.expect_status {
            Ok(100)
        } else {
            Err(format!("status {status}, expected {}", cfg.expect_status))
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", cfg.timeout_ms)),
    }
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(head.get(..12)?).ok()?;
    let rest = line.strip_prefix("HTTP/1.")?;
    rest.get(2..5)?.parse().ok()
}

/// Probe `backend` until it is removed or the lb shuts down.
pub async fn run_checker(
    pool: String,
    backend: Arc<Backend>,
    cfg: HealthConfig,
    clock: Clock,
    mut shutdown: watch::Receiver<bool>,
) {
    if cfg.kind == CheckKind::None {
        return;
    }
    let mut machine = HealthMachine::default();
    loop {
        let wait = Duration::from_millis(machine.next_interval_ms(&cfg));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        if backend.is_removed() {
            return;
        }
        let result = probe(backend.addr, &cfg).await;
        let now = clock.now_ms();
        if let Ok(pct) = result {
            backend.set_agent_weight_pct(pct, now);
        }
        match machine.observe(result.is_ok(), now, &cfg) {
            Verdict::Unchanged => {}
            Verdict::WentDown => {
                tracing::warn!(pool, backend = backend.name, reason = ?result.err(), "backend down");
                backend.set_up(false, now);
            }
            Verdict::WentUp => {
                tracing::info!(pool, backend = backend.name, "backend up");
                backend.set_up(true, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HealthConfig {
        HealthConfig {
            interval_ms: 100,
            fast_interval_ms: 20,
            ..HealthConfig::default()
        }
    }

    #[test]
    fn falls_after_fall_failures_and_rises_after_rise_successes() {
        let c = cfg();
        let mut m = HealthMachine::default();
        assert_eq!(m.next_interval_ms(&c), 100);
        assert_eq!(m.observe(false, 0, &c), Verdict::Unchanged);
        assert_eq!(m.next_interval_ms(&c), 20, "fast while failing");
        assert_eq!(m.observe(false, 20, &c), Verdict::WentDown);
        assert_eq!(m.observe(true, 40, &c), Verdict::Unchanged);
        assert_eq!(m.observe(true, 60, &c), Verdict::WentUp);
        assert_eq!(m.next_interval_ms(&c), 100);
    }

    #[test]
    fn a_flapping_backend_is_held_down() {
        let c = HealthConfig {
            fall: 1,
            rise: 1,
            ..cfg()
        };
        let mut m = HealthMachine::default();
        let mut t = 0;
        let mut step = |ok, m: &mut HealthMachine| {
            t += 20;
            m.observe(ok, t, &c)
        };
        assert_eq!(step(false, &mut m), Verdict::WentDown);
        assert_eq!(step(true, &mut m), Verdict::WentUp);
        assert_eq!(step(false, &mut m), Verdict::WentDown);
        assert_eq!(step(true, &mut m), Verdict::WentUp);
        assert_eq!(step(false, &mut m), Verdict::WentDown); // 5th change within the window
        assert_eq!(
            step(true, &mut m),
            Verdict::Unchanged,
            "held down while flapping"
        );
        let later = 100 + u64::from(limits::FLAP_HOLD_INTERVALS) * c.interval_ms + 200;
        assert_eq!(m.observe(true, later, &c), Verdict::WentUp);
    }

    #[test]
    fn outliers_eject_with_backoff() {
        let c = OutlierConfig {
            consecutive_errors: 3,
            eject_ms: 1000,
            max_ejection_percent: 10,
        };
        let mut o = Outlier::default();
        assert_eq!(o.error(0, &c, true), Ejection::No);
        assert_eq!(o.error(0, &c, true), Ejection::No);
        assert_eq!(o.error(0, &c, true), Ejection::Until(1000));
        for _ in 0..2 {
            assert_eq!(o.error(1500, &c, true), Ejection::No);
        }
        assert_eq!(
            o.error(1500, &c, true),
            Ejection::Until(3500),
            "second ejection doubles"
        );
        o.success(10_000, &c);
        for _ in 0..2 {
            o.error(10_000, &c, true);
        }
        assert_eq!(
            o.error(10_000, &c, true),
            Ejection::Until(11_000),
            "forgiven after a quiet period"
        );
        let off = OutlierConfig {
            consecutive_errors: 0,
            eject_ms: 1,
            max_ejection_percent: 10,
        };
        assert_eq!(Outlier::default().error(0, &off, true), Ejection::No);
    }

    #[test]
    fn a_full_pool_cap_defers_ejection_to_the_next_error_with_room() {
        let c = OutlierConfig {
            consecutive_errors: 2,
            eject_ms: 1000,
            max_ejection_percent: 10,
        };
        let mut o = Outlier::default();
        assert_eq!(o.error(0, &c, false), Ejection::No);
        assert_eq!(
            o.error(0, &c, false),
            Ejection::Deferred,
            "no room: not ejected"
        );
        assert_eq!(o.error(0, &c, false), Ejection::No, "said once a streak");
        assert_eq!(
            o.error(5, &c, true),
            Ejection::Until(1005),
            "room again: ejected"
        );
    }

    #[test]
    fn agent_lines() {
        assert_eq!(parse_agent("up\n"), Ok(100));
        assert_eq!(parse_agent("75%\n"), Ok(75));
        assert_eq!(parse_agent("up 50%"), Ok(50));
        assert_eq!(parse_agent("READY,20%"), Ok(20));
        assert_eq!(parse_agent("drain"), Ok(0));
        assert_eq!(parse_agent("150%"), Ok(100));
        assert!(parse_agent("down #maintenance").is_err());
        assert!(parse_agent("stopped").is_err());
        assert!(parse_agent("x%").is_err());
        assert_eq!(
            parse_agent(""),
            Ok(100),
            "an agent that says nothing keeps it up"
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 503 x"), Some(503));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status(b"HTTP"), None);
    }
}
