//! The simulated network: a [`Transport`] that hands each encoded request
//! to the target's [`Endpoint`] in the same process, after a seeded delay,
//! unless the seed drops it or a partition cuts the direction it travels.
//! Replies go through the same gauntlet on the way back.
//!
//! A lost message is never answered (the caller's timeout fires, as over a
//! silent TCP path); a message to a crashed node fails after its delay (a
//! refused connection). Links remember the sender's incarnation, so a
//! crashed node's leftover tasks can no longer reach anyone.

use super::rng::SimRng;
use super::trace::{digest, Trace};
use crate::{BoxFuture, Endpoint, Link, NodeId, Transport};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

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
    start: Instant,
    /// Live nodes: incarnation and where requests to it are answered.
    nodes: BTreeMap<NodeId, (u64, Endpoint)>,
    incarnations: BTreeMap<NodeId, u64>,
    /// Directed cuts: `(from, to)` means nothing from `from` reaches `to`.
    pub cuts: BTreeSet<(NodeId, NodeId)>,
    /// Probability, per mille, that one message is lost.
    pub loss_per_mille: u64,
    /// One-way delay, uniform in this range (microseconds).
    pub delay_us: (u64, u64),
    pub trace: Trace,
}

/// Calm network: no loss, LAN-like delay.
pub const CALM_DELAY_US: (u64, u64) = (200, 2_000);

impl SimNet {
    pub fn new(seed: u64) -> SimNet {
        SimNet(Arc::new(Mutex::new(NetState {
            rng: SimRng::new(seed),
            start: Instant::now(),
            nodes: BTreeMap::new(),
            incarnations: BTreeMap::new(),
            cuts: BTreeSet::new(),
            loss_per_mille: 0,
            delay_us: CALM_DELAY_US,
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
        net.nodes.insert(id, (inc, endpoint));
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
        self.start.elapsed().as_micros() as u64
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
        Fut: std::future::Future<Output = io::Result<Vec<u8>>>,
    {
        let lost = std::future::pending::<io::Result<Vec<u8>>>;
        let Some(delay) = self.state().launch(from, to) else {
            return lost().await;
        };
        tokio::time::sleep(delay).await;
        let arrived = {
            let mut net = self.state();
            net.arrive(from, inc, to, &frame)
                .then(|| net.nodes.get(&to).map(|(i, e)| (*i, e.clone())))
        };
        let Some(target) = arrived else {
            return lost().await;
        };
        let Some((target_inc, endpoint)) = target else {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "node down",
            ));
        };
        let reply = answer(endpoint, frame).await?;
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

impl Link for SimLink {
    fn exchange(&mut self, frame: Vec<u8>) -> BoxFuture<'_, io::Result<Vec<u8>>> {
        Box::pin(self.deliver(frame))
    }

    fn reset(&mut self) {}
}
