//! The simulated network: a [`Transport`] that hands each encoded request
//! to the target's [`Endpoint`] in the same process, after a seeded delay,
//! unless the seed drops it or a partition cuts the direction it travels.
//! Replies go through the same gauntlet on the way back.
//!
//! A lost message is never answered (the caller's timeout fires, as over a
//! silent TCP path); a message to a crashed node fails after its delay (a
//! refused connection). Links remember the sender's incarnation, so a
//! crashed node's leftover tasks can no longer reach anyone.
//!
//! Nodes may share one paused runtime (the cluster core's simulation) or
//! each run on its own, as separate processes with their own clocks do
//! (the whole-daemon simulation, [`SimNet::up_on`]): a request is then
//! answered by a task on the target's runtime, so everything the target
//! does reads the target's clock, and it waits while the target is
//! paused.

use super::rng::SimRng;
use super::trace::{digest, Trace};
use crate::{BoxFuture, Endpoint, Link, NodeId, Transport};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::time::Instant;

/// What a simulation's trace and observers read as "now".
#[derive(Clone)]
enum TrueClock {
    /// All nodes share one paused runtime: its clock, from the start.
    Runtime(Instant),
    /// Nodes run on clocks of their own: the driver's true time.
    Driver(TrueTime),
}

/// A simulation's true time in microseconds, kept by a driver whose nodes
/// each run on a clock of their own (and read by anyone, from any
/// runtime or none).
#[derive(Clone, Default)]
pub struct TrueTime(Arc<std::sync::atomic::AtomicU64>);

impl TrueTime {
    pub fn now_us(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn now_ms(&self) -> u64 {
        self.now_us() / 1_000
    }

    /// The driver moves time on.
    pub fn set_us(&self, us: u64) {
        self.0.store(us, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `TANDEM_SIM_DUMP=1` prints every delivered message (diff two dumps to
/// find where runs part).
fn dump() -> bool {
    static DUMP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DUMP.get_or_init(|| std::env::var_os("TANDEM_SIM_DUMP").is_some())
}

/// Shared by every node's links and by the driver that injects faults.
#[derive(Clone)]
pub struct SimNet(Arc<Mutex<NetState>>);

pub struct NetState {
    rng: SimRng,
    clock: TrueClock,
    /// Live nodes: incarnation, where requests to it are answered, and
    /// the runtime it runs on if it has its own.
    nodes: BTreeMap<NodeId, (u64, Endpoint, Option<Handle>)>,
    incarnations: BTreeMap<NodeId, u64>,
    /// Directed cuts: `(from, to)` means nothing from `from` reaches `to`.
    pub cuts: BTreeSet<(NodeId, NodeId)>,
    /// Probability, per mille, that one message is lost.
    pub loss_per_mille: u64,
    /// One-way delay, uniform in this range (microseconds).
    pub delay_us: (u64, u64),
    /// Probability, per mille, that a request [`SimNet::carry_held`]
    /// carries into a cut is kept and delivered once the cut heals, as
    /// TCP retransmits what it buffered, long after its sender gave up.
    pub held_per_mille: u64,
    pub trace: Trace,
}

/// Calm network: no loss, LAN-like delay.
pub const CALM_DELAY_US: (u64, u64) = (200, 2_000);

impl SimNet {
    /// A network whose nodes share the current paused runtime.
    pub fn new(seed: u64) -> SimNet {
        SimNet::with_clock(seed, TrueClock::Runtime(Instant::now()))
    }

    /// A network whose nodes each run on their own runtime and clock
    /// (see [`SimNet::up_on`]), with `time` the driver's true time.
    pub fn with_true_time(seed: u64, time: TrueTime) -> SimNet {
        SimNet::with_clock(seed, TrueClock::Driver(time))
    }

    fn with_clock(seed: u64, clock: TrueClock) -> SimNet {
        SimNet(Arc::new(Mutex::new(NetState {
            rng: SimRng::new(seed),
            clock,
            nodes: BTreeMap::new(),
            incarnations: BTreeMap::new(),
            cuts: BTreeSet::new(),
            loss_per_mille: 0,
            delay_us: CALM_DELAY_US,
            held_per_mille: 0,
            trace: Trace::default(),
        })))
    }

    pub fn state(&self) -> MutexGuard<'_, NetState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A node (re)started and answers at `endpoint` from now on.
    pub fn up(&self, id: NodeId, endpoint: Endpoint) {
        let mut net = self.state();
        let inc = net.incarnation(id);
        net.nodes.insert(id, (inc, endpoint, None));
    }

    /// The same for a node that runs on `runtime`, its own: requests to
    /// it are answered there.
    pub fn up_on(&self, id: NodeId, endpoint: Endpoint, runtime: Handle) {
        let mut net = self.state();
        let inc = net.incarnation(id);
        net.nodes.insert(id, (inc, endpoint, Some(runtime)));
    }

    /// A node crashed: nothing reaches it, and its incarnation moves on so
    /// nothing its old life sends arrives either.
    pub fn down(&self, id: NodeId) {
        let mut net = self.state();
        net.nodes.remove(&id);
        *net.incarnations.entry(id).or_default() += 1;
    }

    pub fn heal(&self) {
        let mut net = self.state();
        net.cuts.clear();
        net.loss_per_mille = 0;
        net.delay_us = CALM_DELAY_US;
    }
}

impl NetState {
    /// Records an observation (not a message) in the trace.
    pub fn observe(&mut self, parts: &[&[u8]]) {
        let at = self.now_us().to_le_bytes();
        let mut all = vec![at.as_slice(), b"observe".as_slice()];
        all.extend_from_slice(parts);
        self.trace.record(&all);
    }

    /// Virtual microseconds since the run started.
    pub fn now_us(&self) -> u64 {
        match &self.clock {
            TrueClock::Runtime(start) => start.elapsed().as_micros() as u64,
            TrueClock::Driver(time) => time.now_us(),
        }
    }

    fn incarnation(&self, id: NodeId) -> u64 {
        self.incarnations.get(&id).copied().unwrap_or(0)
    }

    /// Decides one hop `from → to` when it leaves: `None` if lost, else
    /// how long it travels.
    fn launch(&mut self, from: NodeId, to: NodeId) -> Option<Duration> {
        let lost = self.cuts.contains(&(from, to)) || self.rng.chance(self.loss_per_mille);
        let delay = self.rng.range(self.delay_us.0, self.delay_us.1 + 1);
        (!lost).then_some(Duration::from_micros(delay))
    }

    /// Whether a hop that left `from` (in incarnation `inc`) arrives at
    /// `to` now; a cut made while it travelled also stops it. Records it.
    fn arrive(&mut self, from: NodeId, inc: u64, to: NodeId, frame: &[u8]) -> bool {
        if self.incarnation(from) != inc || self.cuts.contains(&(from, to)) {
            return false;
        }
        if dump() {
            let head = &frame[..frame.len().min(48)];
            println!(
                "{} us {from}->{to} {} bytes {head:?}",
                self.now_us(),
                frame.len()
            );
        }
        let at = self.now_us().to_le_bytes();
        let body = digest(frame).to_le_bytes();
        self.trace
            .record(&[&at, &from.to_le_bytes(), &to.to_le_bytes(), &body]);
        true
    }
}

impl Transport for SimNet {
    fn link(&self, from: NodeId, to: NodeId, _addr: &str) -> Box<dyn Link> {
        let inc = self.state().incarnation(from);
        Box::new(SimLink {
            net: self.clone(),
            from,
            to,
            inc,
        })
    }
}

/// One direction of requests between two nodes, for one life of the sender.
struct SimLink {
    net: SimNet,
    from: NodeId,
    to: NodeId,
    /// The sender's incarnation (life) when the link was made.
    inc: u64,
}

impl SimLink {
    async fn deliver(&mut self, frame: Vec<u8>) -> io::Result<Vec<u8>> {
        let answer =
            |endpoint: Endpoint, frame: Vec<u8>| async move { endpoint.answer(&frame).await };
        self.net
            .carry(self.from, self.inc, self.to, frame, answer)
            .await
    }
}

impl SimNet {
    /// A node's current incarnation (life): what a request it sends now
    /// is stamped with.
    pub fn incarnation(&self, id: NodeId) -> u64 {
        self.state().incarnation(id)
    }

    /// Carries one request `from` (in life `inc`) to `to` and its reply
    /// back, through the faults: `answer` runs at the target when the
    /// request arrives, with the target's Raft endpoint. Raft messages
    /// answer through the endpoint; a simulation carries the daemon's own
    /// calls (the controller's operations to an executor) the same way.
    /// Lost: never answered (the caller's timeout fires, as over a silent
    /// TCP path); the target down: refused.
    pub async fn carry<F, Fut>(
        &self,
        from: NodeId,
        inc: u64,
        to: NodeId,
        frame: Vec<u8>,
        answer: F,
    ) -> io::Result<Vec<u8>>
    where
        F: FnOnce(Endpoint, Vec<u8>) -> Fut,
        Fut: std::future::Future<Output = io::Result<Vec<u8>>> + Send + 'static,
    {
        let lost = std::future::pending::<io::Result<Vec<u8>>>;
        let Some(delay) = self.state().launch(from, to) else {
            return lost().await;
        };
        tokio::time::sleep(delay).await;
        let arrived = {
            let mut net = self.state();
            net.arrive(from, inc, to, &frame)
                .then(|| net.nodes.get(&to).cloned())
        };
        let Some(target) = arrived else {
            return lost().await;
        };
        let Some((target_inc, endpoint, runtime)) = target else {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "node down",
            ));
        };
        let reply = match runtime {
            None => answer(endpoint, frame).await?,
            // The target's process ended while answering: the connection
            // is reset.
            Some(runtime) => runtime.spawn(answer(endpoint, frame)).await.map_err(|_| {
                io::Error::new(io::ErrorKind::ConnectionReset, "the node went down")
            })??,
        };
        let Some(delay) = self.state().launch(to, from) else {
            return lost().await;
        };
        tokio::time::sleep(delay).await;
        if !self.state().arrive(to, target_inc, from, &reply) {
            return lost().await;
        }
        Ok(reply)
    }
}

impl SimNet {
    /// The life of `to` now, if it is up.
    fn target_life(&self, to: NodeId) -> Option<u64> {
        self.state().nodes.get(&to).map(|(inc, ..)| *inc)
    }
}

/// How long a held request waits for its cut to heal (TCP gives up on
/// retransmitting after minutes; a simulated run is shorter).
const HELD_AT_MOST: Duration = Duration::from_secs(120);

/// A held request arrives up to this long after its cut heals.
const RETRANSMIT_AT_MOST_MS: u64 = 1_000;

impl SimNet {
    /// [`SimNet::carry`] for a request over a connection of its own (the
    /// controller's operations): one sent into a cut may be held
    /// (`held_per_mille`) and arrive once the cut heals, its reply going
    /// nowhere; the sender sees it lost (its timeout fires).
    pub async fn carry_held<F, Fut>(
        &self,
        from: NodeId,
        inc: u64,
        to: NodeId,
        frame: Vec<u8>,
        answer: F,
    ) -> io::Result<Vec<u8>>
    where
        F: FnOnce(Endpoint, Vec<u8>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = io::Result<Vec<u8>>> + Send + 'static,
    {
        let held = {
            let mut net = self.state();
            let chance = net.held_per_mille;
            let held = net.cuts.contains(&(from, to)) && net.rng.chance(chance);
            // TCP retransmits on a timer that doubles each time: the
            // first try after the cut heals comes up to seconds later.
            held.then(|| Duration::from_millis(net.rng.range(0, RETRANSMIT_AT_MOST_MS)))
        };
        let Some(retransmit) = held else {
            return self.carry(from, inc, to, frame, answer).await;
        };
        let target_life = self.target_life(to);
        let net = self.clone();
        // Kept on the target's runtime: it waits out a stop of the sending
        // process (a kernel retransmits whatever the process does); one
        // whose sender died is dropped at arrival (its life is checked),
        // and a target that restarted resets the connection.
        let runtime = self.state().nodes.get(&to).and_then(|(.., rt)| rt.clone());
        let held = async move {
            let waited = tokio::time::Instant::now();
            while net.state().cuts.contains(&(from, to)) {
                if waited.elapsed() > HELD_AT_MOST {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(retransmit).await;
            // A target that restarted meanwhile resets the connection.
            if net.target_life(to) != target_life {
                return;
            }
            let _ = net.carry(from, inc, to, frame, answer).await;
        };
        match runtime {
            Some(runtime) => drop(runtime.spawn(held)),
            None => drop(tokio::spawn(held)),
        }
        std::future::pending().await
    }
}

impl Link for SimLink {
    fn exchange(&mut self, frame: Vec<u8>) -> BoxFuture<'_, io::Result<Vec<u8>>> {
        Box::pin(self.deliver(frame))
    }

    fn reset(&mut self) {}
}
