//! The simulated machines and their agents: what really runs where. A
//! resource is active on a host from the moment an agent's start is
//! called there until a stop there returns (a failed or cancelled start
//! may have started the service all the same), or until the host is
//! powered off. A fence device is active where a daemon registered it,
//! so only until that daemon dies. The safety checks watch these effects, never a flag of
//! the code under test:
//!
//! * a primitive active on two hosts at once, a clone on more hosts than
//!   its `clone-max`, promoted on more than its `promoted-max` (from the
//!   promote call until a demote or stop there returns);
//! * a start or promote called on a node that holds no lease (the
//!   lease as its own cluster member computes it).
//!
//! A host's watchdog, once a daemon armed it, powers the host off when it
//! is not fed for its timeout, counted by the host's own clock (a daemon's
//! death leaves it armed, as closing a device without the magic character
//! does; a paused daemon feeds nothing, and the kernel's timer runs on).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tandem_agents::attrs::{AttrStore, Lifetime};
use tandem_agents::{Action, AgentStatus, OpRequest, OpResult};
use tandem_cluster::sim::{SimRng, TrueTime};
use tandem_cluster::{BoxFuture, ClusterNode};
use tandem_daemon::executor::Agents;
use tandem_daemon::watchdog::Watchdog;

/// Every host of a run, shared by the agents and the driver.
#[derive(Clone)]
pub struct Hosts(Arc<Mutex<HostsState>>);

pub struct HostsState {
    rng: SimRng,
    time: TrueTime,
    /// Host name → what runs there.
    pub hosts: BTreeMap<String, Host>,
    /// How many hosts each clone may be active and promoted on (a
    /// resource not named here: one, never promoted).
    pub limits: BTreeMap<String, Limit>,
    /// The first safety violation seen, if any.
    pub violation: Option<String>,
    /// Agents fail now and then while this holds (the fault phase).
    pub agents_fail: bool,
    /// Starts called, by any host (how much the run exercised).
    pub starts: u64,
    /// Successful fences.
    pub fenced: u64,
    /// Fences succeed without powering anything off (see `Params`).
    pub lying_fence: bool,
    /// Watchdogs never reset their host (see `Params`).
    pub lying_watchdog: bool,
    /// Hosts their watchdog reset.
    pub watchdog_resets: u64,
    /// The next start or promote the controller sends meets a cut that
    /// isolates its target for this long (virtual ms; a fault timed with
    /// the dispatch, long enough for the DC to recover elsewhere).
    pub cut_at_next_start: Option<u64>,
    /// The node that cut isolates, until when (virtual ms): other faults
    /// do not heal it.
    pub isolated: Option<(u64, u64)>,
}

#[derive(Default)]
pub struct Host {
    /// The daemon's life: bumped when it dies; agents of an older life
    /// act no more (their daemon is gone).
    pub life: u64,
    /// Resources active here.
    pub active: BTreeMap<String, Activity>,
    /// Resources promoted here (a subset of `active`).
    pub promoted: BTreeSet<String>,
    /// Since when (virtual ms) the host is off.
    pub off_since: Option<u64>,
    /// An armed watchdog: its timeout and when it was last fed.
    pub watchdog: Option<(u64, u64)>,
    /// Bumped at every power loss: the host's boot id.
    pub boots: u64,
    /// How far its clock is off the true rate (ppm; positive: fast).
    pub rate_ppm: i64,
}

/// How many hosts one resource may be active and promoted on at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    pub active: usize,
    pub promoted: usize,
}

impl Limit {
    pub const PRIMITIVE: Limit = Limit {
        active: 1,
        promoted: 0,
    };
}

pub struct Activity {
    /// Virtual ms of the start call.
    pub since: u64,
    /// A fence device: registered with the daemon, gone with it.
    pub with_daemon: bool,
}

impl Hosts {
    /// The hosts named in `rates`, each with its clock-rate error, running
    /// resources within `limits`.
    pub fn new(
        seed: u64,
        rates: BTreeMap<String, i64>,
        limits: BTreeMap<String, Limit>,
        time: TrueTime,
        lying_fence: bool,
        lying_watchdog: bool,
    ) -> Hosts {
        let hosts = rates
            .into_iter()
            .map(|(name, rate_ppm)| {
                let host = Host {
                    rate_ppm,
                    ..Host::default()
                };
                (name, host)
            })
            .collect();
        Hosts(Arc::new(Mutex::new(HostsState {
            rng: SimRng::new(seed),
            time,
            hosts,
            limits,
            violation: None,
            agents_fail: true,
            starts: 0,
            fenced: 0,
            lying_fence,
            lying_watchdog,
            watchdog_resets: 0,
            cut_at_next_start: None,
            isolated: None,
        })))
    }

    /// The watchdog of `host` as the daemon starting now holds it (armed
    /// when its lease loop decides).
    pub fn watchdog(&self, host: &str, timeout_ms: u64) -> Box<dyn Watchdog> {
        let life = self.state().host(host).life;
        Box::new(SimWatchdog {
            hosts: self.clone(),
            host: host.to_string(),
            life,
            timeout_ms,
            open: false,
        })
    }

    /// The boot id of `host` now.
    pub fn boot_id(&self, host: &str) -> String {
        format!("{host}-boot-{}", self.state().host(host).boots)
    }

    /// Powers off the hosts whose watchdog was not fed for its timeout;
    /// returns them.
    pub fn watchdog_resets(&self) -> Vec<String> {
        let (now, lying) = {
            let hosts = self.state();
            (hosts.now_ms(), hosts.lying_watchdog)
        };
        let expired: Vec<String> = self
            .state()
            .hosts
            .iter()
            .filter(|(_, h)| h.off_since.is_none())
            .filter(|(_, h)| {
                h.watchdog.is_some_and(|(timeout, fed)| {
                    local_ms(now - fed.min(now), h.rate_ppm) > timeout
                })
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in &expired {
            if lying {
                // Counts as fed: the host lives on.
                self.state().host(name).watchdog = Some((u64::MAX / 2, now));
                continue;
            }
            self.power_off(name);
            self.state().watchdog_resets += 1;
        }
        if lying {
            Vec::new()
        } else {
            expired
        }
    }

    pub fn state(&self) -> MutexGuard<'_, HostsState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The daemon on `host` dies (its resources keep running).
    pub fn daemon_died(&self, host: &str) {
        let mut hosts = self.state();
        let h = hosts.host(host);
        h.life += 1;
        h.active.retain(|_, a| !a.with_daemon);
    }

    /// `host` loses power: its daemon and everything it ran are gone.
    pub fn power_off(&self, host: &str) {
        let mut hosts = self.state();
        let now = hosts.now_ms();
        let h = hosts.host(host);
        h.life += 1;
        h.boots += 1;
        h.active.clear();
        h.promoted.clear();
        h.watchdog = None;
        h.off_since.get_or_insert(now);
    }

    pub fn power_on(&self, host: &str) {
        self.state().host(host).off_since = None;
    }

    /// Agents for the daemon now starting on `host`, whose lease `node`
    /// computes; they set promotion scores in the node's attribute store
    /// `attrs`, as `crm_master` does.
    pub fn agents(&self, host: &str, node: Arc<ClusterNode>, attrs: AttrStore) -> Arc<SimAgents> {
        let life = self.state().host(host).life;
        Arc::new(SimAgents {
            hosts: self.clone(),
            host: host.to_string(),
            life,
            node,
            attrs: Arc::new(attrs),
        })
    }
}

impl HostsState {
    fn host(&mut self, name: &str) -> &mut Host {
        self.hosts.entry(name.to_string()).or_default()
    }

    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }

    /// True time (ms since the run started).
    pub fn now_ms(&self) -> u64 {
        self.time.now_ms()
    }

    pub fn limit(&self, resource: &str) -> Limit {
        self.limits
            .get(resource)
            .copied()
            .unwrap_or(Limit::PRIMITIVE)
    }

    /// `resource` becomes active on `host` (a fence device `with_daemon`);
    /// active on as many hosts elsewhere as it may be is the violation
    /// this simulation looks for.
    fn begin(&mut self, host: &str, resource: &str, with_daemon: bool) {
        let elsewhere: Vec<String> = self
            .hosts
            .iter()
            .filter(|(name, _)| *name != host)
            .filter_map(|(name, h)| {
                let since = h.active.get(resource)?.since;
                Some(format!("{name} since t={since}ms"))
            })
            .collect();
        if elsewhere.len() >= self.limit(resource).active {
            self.violate(format!(
                "{resource} started on {host} while active on {elsewhere:?}"
            ));
        }
        let since = self.now_ms();
        self.host(host)
            .active
            .entry(resource.to_string())
            .or_insert(Activity { since, with_daemon });
    }

    /// `resource` becomes promoted on `host`: promoted on as many hosts
    /// elsewhere as it may be is a violation too.
    fn promote(&mut self, host: &str, resource: &str) {
        let elsewhere: Vec<&String> = self
            .hosts
            .iter()
            .filter(|(name, h)| *name != host && h.promoted.contains(resource))
            .map(|(name, _)| name)
            .collect();
        if elsewhere.len() >= self.limit(resource).promoted {
            let what = format!("{resource} promoted on {host} while promoted on {elsewhere:?}");
            self.violate(what);
        }
        let h = self.host(host);
        if h.active.contains_key(resource) {
            h.promoted.insert(resource.to_string());
        }
    }

    fn violate(&mut self, what: String) {
        let at = self.now_ms();
        self.violation
            .get_or_insert_with(|| format!("t={at}ms: {what}"));
    }

    /// Where `resource` is active now.
    pub fn active_on(&self, resource: &str) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|(_, h)| h.active.contains_key(resource))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Where `resource` is promoted now.
    pub fn promoted_on(&self, resource: &str) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|(_, h)| h.promoted.contains(resource))
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// A host's watchdog device as one daemon life holds it. As the kernel's:
/// opening it and setting its timeout restart the countdown, closing it
/// without the magic character (the daemon killed) restarts it once more
/// and leaves it counting; once that daemon is dead, its handle feeds
/// nothing.
struct SimWatchdog {
    hosts: Hosts,
    host: String,
    life: u64,
    timeout_ms: u64,
    open: bool,
}

impl SimWatchdog {
    /// Restarts the countdown (with `timeout_ms` if given) while the host
    /// is on, if this life is alive (or `always`).
    fn ping(&self, always: bool, timeout_ms: Option<u64>) {
        let mut hosts = self.hosts.state();
        let now = hosts.now_ms();
        if !(always || SimAgents::alive(&mut hosts, &self.host, self.life)) {
            return;
        }
        let h = hosts.host(&self.host);
        if h.off_since.is_some() {
            return;
        }
        match (h.watchdog.as_mut(), timeout_ms) {
            (_, Some(t)) => h.watchdog = Some((t, now)),
            (Some((_, fed)), None) => *fed = now,
            (None, None) => {}
        }
    }
}

impl Watchdog for SimWatchdog {
    fn arm(&mut self) -> Result<u64, String> {
        self.open = true;
        self.ping(false, Some(self.timeout_ms));
        Ok(self.timeout_ms)
    }

    fn feed(&mut self) -> std::io::Result<()> {
        self.ping(false, None);
        Ok(())
    }

    fn disarm(&mut self) {
        let mut hosts = self.hosts.state();
        if self.open && SimAgents::alive(&mut hosts, &self.host, self.life) {
            hosts.host(&self.host).watchdog = None;
            self.open = false;
        }
    }
}

impl Drop for SimWatchdog {
    fn drop(&mut self) {
        // "watchdog did not stop!": the kernel pings on an unexpected close.
        if self.open {
            self.ping(true, None);
        }
    }
}

/// The agents of one daemon life on one host.
pub struct SimAgents {
    hosts: Hosts,
    host: String,
    life: u64,
    node: Arc<ClusterNode>,
    attrs: Arc<AttrStore>,
}

/// How long a simulated operation takes, and whether it fails.
struct Draw {
    took: Duration,
    fails: bool,
}

impl SimAgents {
    /// Whether this daemon life still acts on the host.
    fn alive(hosts: &mut HostsState, host: &str, life: u64) -> bool {
        let h = hosts.host(host);
        h.life == life && h.off_since.is_none()
    }

    fn draw(&self, action: Action) -> Draw {
        let mut hosts = self.hosts.state();
        let failing = hosts.agents_fail;
        let rng = &mut hosts.rng;
        let took = match rng.range(0, 100) {
            0..=79 => rng.range(5, 120),
            80..=95 => rng.range(120, 1_000),
            _ => rng.range(1_000, 3_000),
        };
        // Starts fail now and then; stops seldom, and a failed stop leaves
        // the service running (the node must then be fenced, or reset by
        // its watchdog: the DC may not recover it elsewhere before).
        let fails = failing
            && match action {
                Action::Start => rng.chance(40),
                Action::Stop => rng.chance(15),
                _ => false,
            };
        Draw {
            took: Duration::from_millis(took),
            fails,
        }
    }

    /// The call's first effect: a start makes the resource active here
    /// from now on.
    fn called(&self, op: &OpRequest) -> Result<(), OpResult> {
        let mut hosts = self.hosts.state();
        if !Self::alive(&mut hosts, &self.host, self.life) {
            return Err(OpResult::exec_failed("the daemon is dead"));
        }
        // A fence device is registered when its start succeeds (below).
        let device = op.agent.class == tandem_agents::AgentClass::Stonith;
        if matches!(op.action, Action::Start | Action::Promote) && !device {
            hosts.starts += 1;
            let lease_left = self.node.view().lease_left_ms;
            if lease_left == 0 {
                hosts.violate(format!(
                    "{} of {} called on {} which holds no lease",
                    op.action.as_str(),
                    op.resource,
                    self.host
                ));
            }
            match op.action {
                Action::Start => hosts.begin(&self.host, &op.resource, false),
                _ => hosts.promote(&self.host, &op.resource),
            }
        }
        Ok(())
    }

    /// The call's last effect, when the agent returns.
    fn finished(&self, op: &OpRequest, draw: &Draw) -> OpResult {
        let mut hosts = self.hosts.state();
        if !Self::alive(&mut hosts, &self.host, self.life) {
            // Killed with its daemon or its host: nobody hears back.
            return OpResult::exec_failed("the daemon is dead");
        }
        let device = op.agent.class == tandem_agents::AgentClass::Stonith;
        let promotable = hosts.limit(&op.resource).promoted > 0;
        if device && op.action == Action::Start && !draw.fails {
            hosts.starts += 1;
            hosts.begin(&self.host, &op.resource, true);
        }
        let host = hosts.host(&self.host);
        let running = host.active.contains_key(&op.resource);
        let promoted = host.promoted.contains(&op.resource);
        let status = match op.action {
            Action::Stop if draw.fails => AgentStatus::GenericError,
            Action::Stop => {
                host.active.remove(&op.resource);
                host.promoted.remove(&op.resource);
                AgentStatus::Ok
            }
            Action::Demote => {
                host.promoted.remove(&op.resource);
                AgentStatus::Ok
            }
            Action::Start if draw.fails => AgentStatus::GenericError,
            Action::Promote if !running => AgentStatus::NotRunning,
            Action::Monitor if promoted => AgentStatus::RunningPromoted,
            Action::Monitor if running => AgentStatus::Ok,
            Action::Monitor => AgentStatus::NotRunning,
            _ => AgentStatus::Ok,
        };
        drop(hosts);
        if promotable {
            // As a promotable agent does with `crm_master`: a running
            // instance may be promoted here, a stopped one may not.
            let name = format!("master-{}", op.resource);
            let _ = self.attrs.update(|data| match status {
                AgentStatus::Ok | AgentStatus::RunningPromoted if op.action != Action::Stop => {
                    data.set(&self.host, &name, "10", Lifetime::Reboot)
                }
                _ => {
                    data.delete(&self.host, &name);
                }
            });
        }
        result(status, draw.took)
    }
}

/// What a clock `rate_ppm` off reads for `true_ms` elapsed.
fn local_ms(true_ms: u64, rate_ppm: i64) -> u64 {
    (true_ms as i128 * (1_000_000 + rate_ppm as i128) / 1_000_000) as u64
}

fn result(status: AgentStatus, took: Duration) -> OpResult {
    let mut r = OpResult::exec_failed("");
    r.status = status;
    r.exit_reason = None;
    r.duration_ms = took.as_millis() as u64;
    r
}

impl Agents for SimAgents {
    fn run(&self, op: OpRequest) -> BoxFuture<'static, OpResult> {
        let draw = self.draw(op.action);
        let called = self.called(&op);
        let this = SimAgents {
            hosts: self.hosts.clone(),
            host: self.host.clone(),
            life: self.life,
            node: self.node.clone(),
            attrs: self.attrs.clone(),
        };
        Box::pin(async move {
            if let Err(refused) = called {
                return refused;
            }
            // Cancelled (the node lost its lease): the process group is
            // killed; whatever it started stays until a stop.
            let deadline = tokio::time::Instant::now() + draw.took;
            while tokio::time::Instant::now() < deadline {
                if op.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
                    let mut r = result(AgentStatus::TimedOut, draw.took);
                    r.exit_reason = Some("cancelled".into());
                    return r;
                }
                let step = Duration::from_millis(10).min(deadline - tokio::time::Instant::now());
                tokio::time::sleep(step).await;
            }
            this.finished(&op, &draw)
        })
    }

    fn keep_monitoring(&self, _spec: tandem_agents::monitor::MonitorSpec) -> Result<(), String> {
        // Recurring monitors are not simulated yet: each runs once.
        Ok(())
    }

    fn stop_monitoring(&self, _instance: &str) {}
}
