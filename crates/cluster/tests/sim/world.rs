//! One simulated run: 3 to 5 real `ClusterNode`s (sometimes two data nodes
//! and a witness) on one paused current-thread tokio runtime, so time is
//! virtual and the poll order fixed. A fault phase (partitions, one-way
//! cuts, leader isolation, loss, delay, crashes and restarts, all drawn
//! from the seed) while clients write, then a calm phase that must
//! converge. Every invariant is checked after every step.

use crate::invariants::leader_per_term::LeaderPerTerm;
use crate::invariants::{committed_history::CommittedHistory, convergence, dc_lease};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tandem_cluster::sim::{node_lease, node_settings, SimNet, SimRng, Trace, CALM_DELAY_US};
use tandem_cluster::{
    seed_thread_rng, AppliedState, ClusterNode, Command, CommandResult, MemDisk, Member,
    MembershipView, NodeId, Seams,
};

/// How long a run lasts, in virtual milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Faults are injected during this long.
    pub fault_ms: u64,
    /// The bound on convergence once faults stop: election (≤ 500 ms with
    /// pre-vote rounds), the new DC's lease wait (1000 ms), catch-up.
    pub converge_ms: u64,
    /// Invariants are checked this often.
    pub step_ms: u64,
}

/// What a passing run reports.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    pub trace: Trace,
    pub terms: usize,
    pub crashes: u64,
    pub acknowledged: u64,
    /// Virtual time from the end of the faults to convergence.
    pub converged_ms: u64,
}

/// Runs `seed` on a fresh paused runtime on this thread.
pub fn run(seed: u64, params: Params) -> Result<Outcome, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async move {
        seed_thread_rng(seed);
        let mut world = World::new(seed, params);
        let result = world.run().await;
        world.stop().await;
        result
    })
}

/// Every ordered pair of distinct nodes.
fn pairs(ids: &[NodeId]) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
    ids.iter()
        .flat_map(|a| ids.iter().map(move |b| (*a, *b)))
        .filter(|(a, b)| a != b)
}

/// `TANDEM_SIM_VERBOSE=1` prints each fault as it is injected.
fn verbose() -> bool {
    std::env::var_os("TANDEM_SIM_VERBOSE").is_some()
}

/// Acknowledged configuration writes, reported by client tasks.
type Acks = Arc<Mutex<Vec<(u64, String)>>>;

struct World {
    seed: u64,
    params: Params,
    rng: SimRng,
    net: SimNet,
    members: BTreeMap<NodeId, Member>,
    disks: BTreeMap<NodeId, MemDisk>,
    /// Live nodes only; a crashed node is absent until it restarts.
    nodes: BTreeMap<NodeId, Arc<ClusterNode>>,
    acks: Acks,
    /// The configuration version of the first write acknowledged after
    /// the faults ended.
    calm_write: Arc<Mutex<Option<u64>>>,
    history: CommittedHistory,
    leaders: LeaderPerTerm,
    latest_version: u64,
    /// The highest term any node was ever seen leading in.
    newest_leader_term: u64,
    writes: u64,
    crashes: u64,
}

impl World {
    fn new(seed: u64, params: Params) -> World {
        let mut rng = SimRng::new(seed);
        let n = rng.range(3, 6);
        let witness = n == 3 && rng.chance(300);
        let members = (1..=n)
            .map(|id| {
                let member = Member {
                    name: format!("node{id}"),
                    addr: format!("sim-node{id}"),
                    api: String::new(),
                    witness: witness && id == n,
                };
                (id, member)
            })
            .collect();
        let net = SimNet::new(rng.next_u64());
        World {
            seed,
            params,
            rng,
            net,
            members,
            disks: BTreeMap::new(),
            nodes: BTreeMap::new(),
            acks: Acks::default(),
            calm_write: Arc::default(),
            history: CommittedHistory::default(),
            leaders: LeaderPerTerm::default(),
            latest_version: 0,
            newest_leader_term: 0,
            writes: 0,
            crashes: 0,
        }
    }

    async fn run(&mut self) -> Result<Outcome, String> {
        let ids: Vec<NodeId> = self.members.keys().copied().collect();
        for id in ids {
            self.start(id).await?;
        }
        let Params {
            fault_ms,
            converge_ms,
            step_ms,
        } = self.params;
        let mut next_fault = self.rng.range(200, 600);
        let mut next_write = self.rng.range(50, 300);
        let mut now = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(step_ms)).await;
            now += step_ms;
            let (views, applied) = self.check()?;
            if now < fault_ms {
                if now >= next_fault {
                    self.inject_fault(&views).await?;
                    next_fault = now + self.rng.range(200, 1200);
                }
                if now >= next_write {
                    self.spawn_write(false);
                    next_write = now + self.rng.range(30, 300);
                }
                continue;
            }
            if now - step_ms < fault_ms {
                self.calm().await?;
                next_write = now;
                continue;
            }
            let written = *self.calm_write.lock().unwrap();
            if written.is_none() && now >= next_write {
                self.spawn_write(true);
                next_write = now + 250;
            }
            let acknowledged = self.history.acknowledged;
            let Some(missing) = convergence::missing(&views, &applied, acknowledged, written)
            else {
                return Ok(Outcome {
                    trace: self.net.state().trace,
                    terms: self.leaders.terms(),
                    crashes: self.crashes,
                    acknowledged,
                    converged_ms: now - fault_ms,
                });
            };
            if now >= fault_ms + converge_ms {
                return Err(format!(
                    "not converged {converge_ms} ms after the faults ended: {missing}"
                ));
            }
        }
    }

    /// Reads every live node and checks every safety invariant.
    #[allow(clippy::type_complexity)]
    fn check(
        &mut self,
    ) -> Result<(Vec<(NodeId, MembershipView)>, Vec<(NodeId, AppliedState)>), String> {
        let views: Vec<_> = self.nodes.iter().map(|(id, n)| (*id, n.view())).collect();
        let applied: Vec<_> = self
            .nodes
            .iter()
            .map(|(id, n)| (*id, n.applied()))
            .collect();
        let acks = std::mem::take(&mut *self.acks.lock().unwrap());
        for (version, text) in acks {
            self.history.acknowledge(version, &text)?;
        }
        let mut net = self.net.state();
        for ((id, v), (_, a)) in views.iter().zip(&applied) {
            self.leaders.observe(*id, v)?;
            self.history.observe(*id, a)?;
            self.latest_version = self.latest_version.max(a.state.config_version);
            let position = a.last_applied.map_or(0, |(_, index)| index);
            net.observe(&[
                &id.to_le_bytes(),
                v.state.as_bytes(),
                &v.term.to_le_bytes(),
                &v.dc_id.unwrap_or(0).to_le_bytes(),
                &[u8::from(v.dc_lease)],
                &position.to_le_bytes(),
            ]);
        }
        drop(net);
        dc_lease::check(&views)?;
        node_lease::check(&views, &mut self.newest_leader_term)?;
        Ok((views, applied))
    }

    async fn inject_fault(&mut self, views: &[(NodeId, MembershipView)]) -> Result<(), String> {
        let ids: Vec<NodeId> = self.members.keys().copied().collect();
        let fault = self.rng.range(0, 12);
        if verbose() {
            let leaders: Vec<(NodeId, u64)> = views
                .iter()
                .filter(|(_, v)| v.state == "Leader")
                .map(|(id, v)| (*id, v.term))
                .collect();
            let net = self.net.state();
            println!(
                "t={}ms fault {fault}; leaders {leaders:?}; live {:?}; cuts {:?}; loss {}",
                net.now_us() / 1000,
                self.nodes.keys().collect::<Vec<_>>(),
                net.cuts,
                net.loss_per_mille
            );
        }
        let leader = views
            .iter()
            .find(|(_, v)| v.state == "Leader")
            .map(|(id, _)| *id);
        match fault {
            0 | 1 => self.net.heal(),
            2 | 3 => {
                // A new symmetric partition: two sides, nothing crosses.
                let side: BTreeMap<NodeId, bool> =
                    ids.iter().map(|id| (*id, self.rng.chance(500))).collect();
                let cuts = pairs(&ids).filter(|(a, b)| side[a] != side[b]).collect();
                self.net.state().cuts = cuts;
            }
            4 => {
                // Asymmetric: a few more one-way cuts.
                for _ in 0..self.rng.range(1, ids.len() as u64) {
                    let (a, b) = (self.rng.pick(&ids), self.rng.pick(&ids));
                    if a != b {
                        self.net.state().cuts.insert((a, b));
                    }
                }
            }
            5 => {
                // Isolate the leader, which keeps believing it leads.
                if let Some(leader) = leader {
                    let cuts = pairs(&ids).filter(|(a, b)| *a == leader || *b == leader);
                    self.net.state().cuts = cuts.collect();
                }
            }
            6 | 7 => {
                let live: Vec<NodeId> = self.nodes.keys().copied().collect();
                let victim = match leader {
                    Some(leader) if fault == 7 => Some(leader),
                    _ => (!live.is_empty()).then(|| self.rng.pick(&live)),
                };
                if let Some(id) = victim {
                    self.crash(id);
                }
            }
            8 | 9 => {
                let down: Vec<NodeId> = ids
                    .iter()
                    .copied()
                    .filter(|id| !self.nodes.contains_key(id))
                    .collect();
                if !down.is_empty() {
                    let id = self.rng.pick(&down);
                    self.start(id).await?;
                }
            }
            10 => self.net.state().loss_per_mille = self.rng.pick(&[0, 50, 150, 300]),
            _ => {
                let delay = self
                    .rng
                    .pick(&[CALM_DELAY_US, (1_000, 40_000), (1_000, 150_000)]);
                self.net.state().delay_us = delay;
            }
        }
        Ok(())
    }

    /// Faults stop: the network heals and every crashed node restarts.
    async fn calm(&mut self) -> Result<(), String> {
        self.net.heal();
        let down: Vec<NodeId> = self
            .members
            .keys()
            .copied()
            .filter(|id| !self.nodes.contains_key(id))
            .collect();
        for id in down {
            self.start(id).await?;
        }
        Ok(())
    }

    /// Starts (or restarts) `id` on its disk as the last crash left it.
    async fn start(&mut self, id: NodeId) -> Result<(), String> {
        let disk = self.disks.entry(id).or_default().clone();
        let seams = Seams {
            transport: Arc::new(self.net.clone()),
            disk,
        };
        let node = ClusterNode::start_with(node_settings(id, &self.members), seams)
            .await
            .map_err(|e| format!("node {id} failed to start: {e}"))?;
        self.net.up(id, node.endpoint());
        self.nodes.insert(id, Arc::new(node));
        Ok(())
    }

    /// Kills `id` at once: it loses what its disk had not synced, and
    /// nothing it still had in flight arrives.
    fn crash(&mut self, id: NodeId) {
        let Some(node) = self.nodes.remove(&id) else {
            return;
        };
        self.crashes += 1;
        self.net.down(id);
        let disk = self.disks[&id].after_crash();
        self.disks.insert(id, disk);
        // Stops the old life's tasks; they write only to the old disk.
        tokio::spawn(async move { node.shutdown().await });
    }

    /// A client writes through a random live node (forwarded to the DC by
    /// the node, as in production). `calm` writes are unconditional and
    /// mark convergence.
    fn spawn_write(&mut self, calm: bool) {
        let live: Vec<NodeId> = self.nodes.keys().copied().collect();
        if live.is_empty() {
            return;
        }
        let node = self.nodes[&self.rng.pick(&live)].clone();
        self.writes += 1;
        let text = format!("seed {} write {}", self.seed, self.writes);
        let command = match self.rng.range(0, 10) {
            _ if calm => Command::PutConfig {
                expected_version: None,
                text,
            },
            0..=5 => Command::PutConfig {
                expected_version: self.rng.chance(600).then_some(self.latest_version),
                text,
            },
            6 | 7 => Command::SetNodeAttribute {
                node: format!("node{}", self.rng.range(1, self.members.len() as u64 + 1)),
                name: "standby".into(),
                value: self.rng.chance(500).then(|| "on".into()),
            },
            _ => Command::SetTicket {
                ticket: "ticket-a".into(),
                granted: self.rng.chance(500),
            },
        };
        let (acks, calm_write) = (self.acks.clone(), self.calm_write.clone());
        tokio::spawn(async move {
            let result =
                tokio::time::timeout(Duration::from_secs(3), node.propose(command.clone()));
            let Ok(Ok(CommandResult::Applied { config_version })) = result.await else {
                return;
            };
            if let Command::PutConfig { text, .. } = command {
                acks.lock().unwrap().push((config_version, text));
                if calm {
                    calm_write.lock().unwrap().get_or_insert(config_version);
                }
            }
        });
    }

    async fn stop(&mut self) {
        for (_, node) in std::mem::take(&mut self.nodes) {
            node.shutdown().await;
        }
    }
}
