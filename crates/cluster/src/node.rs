//! A running cluster member: storage, Raft, the peer listener and the
//! liveness pinger, started by [`ClusterNode::start`] (or, in the
//! simulation, by [`ClusterNode::start_with`] over simulated [`Seams`]).
//! Exposes what every node can read ([`MembershipView`], [`Replicated`])
//! and the one way to change replicated state ([`ClusterNode::propose`],
//! forwarded to the DC).

use crate::lease::{GrantBook, NodeLease};
use crate::members::{self, MemberAnswer, MemberChange, MemberError, MemberPlan, Roster};
use crate::net::{
    self, Endpoint, Network, Peer, PeerClock, Reply, Request, TlsTransport, Transport,
};
use crate::state::Replicated;
use crate::store::{self, LogStore, MemDisk, StateMachine, StateReader, StoreError};
use crate::tls::{TlsError, TlsFiles};
use crate::types::{Command, CommandResult, Member, NodeId, TypeConfig};
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, InitializeError, RaftError};
use openraft::Instant as _;
use openraft::{ChangeMembers, Raft};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Failure detection and election timing, like corosync's `token`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    /// The leader's heartbeat and every node's liveness ping.
    pub heartbeat_ms: u64,
    /// A follower that hears no leader for a random time in
    /// `[election_min_ms, election_max_ms)` starts an election (pre-vote first).
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// The longest lease the DC grants (counted by each node from its
    /// request) and the DC lease: a node that is granted none for this
    /// long has stopped its resources (the lease rule, `docs/safety.md`).
    pub lease_ms: u64,
    /// A peer not heard from (by this node's own round trips) for this long
    /// counts as lost: the DC fences it; a node that hears no quorum for
    /// this long has no quorum. Shorter than the lease, so a lost node is
    /// fenced early while the others keep their leases through an election.
    pub lost_after_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_ms: 100,
            election_min_ms: 300,
            election_max_ms: 500,
            // Over an election (300-500 ms of timeout) plus the nodes' stop
            // margin, so a DC's loss does not, as a rule, make the other
            // nodes stop their resources. (A slow election, 0.9-1.4 s on 2
            // busy cores, can still outlast it; 2000 ms was tried and
            // changed the fault tests' timing in ways not yet understood.)
            lease_ms: 1000,
            // Detection, as corosync's token: a node unheard for 1 s is
            // fenced; measured node fail-over with fencing ~1.2 s.
            lost_after_ms: 1000,
        }
    }
}

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub id: NodeId,
    pub data_dir: PathBuf,
    /// Where the Raft transport listens; port 0 picks one (tests).
    pub listen: SocketAddr,
    pub tls: TlsFiles,
    /// The voters to bootstrap the group with, this node included, as set
    /// up. After the first start the replicated membership rules; this
    /// node's own entry still says whether it is a witness.
    pub members: BTreeMap<NodeId, Member>,
    pub timing: Timing,
    /// Added at run time (`tandem node add`): never initialize a group,
    /// wait for the DC to replicate the log here.
    pub joining: bool,
}

/// Why a node could not start or a write failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Member(#[from] MemberError),
    #[error("node {0} is not in the member list of its own settings")]
    NotAMember(NodeId),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid timing: {0}")]
    Timing(String),
    #[error("raft: {0}")]
    Raft(String),
    #[error("no DC (leader) is known right now; is there quorum?")]
    NoLeader,
    #[error("the change was not committed within {0:?}: the DC cannot reach a quorum")]
    NotCommitted(Duration),
    #[error("forwarding to the DC at {addr} failed: {detail}")]
    Forward { addr: String, detail: String },
    #[error("this node no longer leads (or is handing leadership over): not committed")]
    NoLongerLeader,
}

/// How long a proposal may wait to be committed.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// One voter as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    pub id: NodeId,
    pub name: String,
    pub addr: String,
    /// Its admin API address.
    pub api: String,
    pub witness: bool,
    /// Milliseconds since this node last heard from it (0 for itself).
    pub last_heard_ms: Option<u64>,
    /// Heard from within `lost_after_ms`.
    pub alive: bool,
    /// On the DC holding its DC lease: how long ago, by this node's clock,
    /// every lease this DC or a predecessor could have granted the peer
    /// expired, clock drift included (see [`crate::lease`]). `None` while
    /// it may still hold one, or on any other node.
    pub lease_expired_ms: Option<u64>,
}

/// The membership view every node can read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipView {
    pub node_id: NodeId,
    pub node_name: String,
    /// `Leader`, `Follower`, `Candidate`, `Learner` or `Shutdown`.
    pub state: String,
    pub term: u64,
    /// The DC: the Raft leader this node knows of.
    pub dc: Option<String>,
    pub dc_id: Option<NodeId>,
    /// Whether this node hears a majority of voters (itself included)
    /// within the lease.
    pub quorum: bool,
    pub votes_alive: usize,
    pub votes_needed: usize,
    pub voters: Vec<PeerView>,
    /// Members that receive the log but do not vote yet (a node being
    /// added: promoted once caught up).
    pub learners: Vec<PeerView>,
    pub committed_index: Option<u64>,
    pub lease_ms: u64,
    /// This node is the DC and holds the DC lease: a quorum acknowledged
    /// its leadership (Raft appends it sent within `lease_ms`), and it has
    /// led for at least `lease_ms`, so any previous DC's lease has run out
    /// (see [`dc_lease`]). Only one node in the cluster holds it at a time.
    pub dc_lease: bool,
    /// How long this node's own lease still runs, in milliseconds (0: it
    /// holds none). A node runs resources only while it holds one: granted
    /// by the DC, counted from when this node sent the request; the DC's
    /// own is its quorum acknowledgement (see [`crate::lease`]).
    pub lease_left_ms: u64,
}

impl MembershipView {
    /// Every member: the voters, then the learners.
    pub fn peers(&self) -> impl Iterator<Item = &PeerView> {
        self.voters.iter().chain(&self.learners)
    }

    /// Whether `peer` is online: heard within the lease and, on the DC,
    /// not without a lease for a whole lease. A node the DC hears but that
    /// asks it for no lease (a one-way fault: it cannot reach the DC) has
    /// stopped its resources or cannot; it can be given nothing and its
    /// loss must be settled. The one test of "online" that the scheduler's
    /// input and the controller's settling share. (A node just started is
    /// granted within a heartbeat, long before a lease has passed.)
    pub fn online(&self, peer: &PeerView) -> bool {
        peer.alive && peer.lease_expired_ms.is_none_or(|ms| ms < self.lease_ms)
    }
}

/// The nondeterministic edges of a node that the simulation replaces:
/// the network and the disk. (The clock is tokio's, paused by the
/// simulation's runtime; openraft's randomness is seeded by
/// [`crate::seed_thread_rng`].)
pub struct Seams {
    pub transport: Arc<dyn Transport>,
    pub disk: MemDisk,
}

/// The replicated state as applied on one node, with the log position it
/// reflects.
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedState {
    /// `(term, index)` of the last applied log entry; `None` before any.
    pub last_applied: Option<(u64, u64)>,
    pub state: Replicated,
}

/// When this node became leader, per term: the start of its wait before
/// it may hold the DC lease.
type LeaderSince = Arc<Mutex<Option<(u64, Instant)>>>;

/// A running member.
pub struct ClusterNode {
    raft: Raft<TypeConfig, StateMachine>,
    reader: StateReader,
    clock: PeerClock,
    settings: NodeSettings,
    local_addr: SocketAddr,
    transport: Arc<dyn Transport>,
    leader_since: LeaderSince,
    /// The lease this node holds, from the DC's grants.
    lease: Arc<NodeLease>,
    /// The leases this node granted while DC.
    grants: Arc<GrantBook>,
    /// No lease is trusted for one lease after a suspend.
    suspend: Arc<crate::suspend::SuspendWatch>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl ClusterNode {
    /// Opens storage (refusing a damaged file), starts Raft, the listener
    /// and the pinger, and bootstraps the group on first start.
    pub async fn start(settings: NodeSettings) -> Result<ClusterNode, ClusterError> {
        let witness = witness_of(&settings)?;
        let (log, sm) = store::open(&settings.data_dir)?;
        let transport = Arc::new(TlsTransport {
            tls: TlsConnector::from(settings.tls.client_config()?),
        });
        let acceptor = TlsAcceptor::from(settings.tls.server_config()?);
        let listen = settings.listen;
        let mut node = ClusterNode::assemble(settings, witness, transport, log, sm).await?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ClusterError::Listen {
                addr: listen,
                source,
            })?;
        node.local_addr = listener
            .local_addr()
            .map_err(|source| ClusterError::Listen {
                addr: listen,
                source,
            })?;
        let serve = net::serve(listener, node.endpoint(), acceptor, node.stopped());
        node.tasks.push(tokio::spawn(serve));
        node.bootstrap(witness).await?;
        Ok(node)
    }

    /// Starts a node over simulated seams: no listener (peers reach it
    /// through [`ClusterNode::endpoint`]), storage on `seams.disk`.
    /// Everything else is the production path.
    pub async fn start_with(
        settings: NodeSettings,
        seams: Seams,
    ) -> Result<ClusterNode, ClusterError> {
        let witness = witness_of(&settings)?;
        let (log, sm) = store::open_on(&seams.disk)?;
        let node = ClusterNode::assemble(settings, witness, seams.transport, log, sm).await?;
        node.bootstrap(witness).await?;
        Ok(node)
    }

    /// Starts Raft over `transport` and storage, and the tasks every node
    /// runs whatever its seams: the pinger and the leadership clock.
    async fn assemble(
        settings: NodeSettings,
        witness: bool,
        transport: Arc<dyn Transport>,
        log: LogStore,
        sm: StateMachine,
    ) -> Result<ClusterNode, ClusterError> {
        let reader = sm.reader();
        let clock = PeerClock::default();
        let network = Network {
            me: settings.id,
            transport: transport.clone(),
            clock: clock.clone(),
        };
        let config = raft_config(&settings.timing, witness)?;
        let raft = Raft::new(settings.id, config, network, log, sm)
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        let (stop, _) = watch::channel(false);
        let mut node = ClusterNode {
            raft,
            reader,
            clock,
            local_addr: settings.listen,
            settings,
            transport,
            leader_since: LeaderSince::default(),
            lease: Arc::default(),
            grants: Arc::default(),
            suspend: Arc::new(crate::suspend::SuspendWatch::new()),
            stop,
            tasks: Vec::new(),
        };
        node.tasks.push(tokio::spawn(node.pinger()));
        node.tasks.push(tokio::spawn(node.leadership_clock()));
        node.tasks.push(tokio::spawn(node.steward(witness)));
        Ok(node)
    }

    /// Where peers' requests to this node are answered.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            raft: self.raft.clone(),
            me: self.settings.id,
            clock: self.clock.clone(),
            lease_ms: self.settings.timing.lease_ms,
            grants: self.grants.clone(),
            suspend: self.suspend.clone(),
        }
    }

    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// Every data node initializes with the same member list; openraft
    /// writes the identical first membership entry on each, so this is
    /// safe. The witness never initializes: openraft makes an initializing
    /// node the leader of term 0, and the witness must never lead; it
    /// learns the membership from the DC's first replication.
    ///
    /// A peer's vote or entries may arrive before this runs (the others
    /// started first); openraft then refuses to initialize, which only
    /// means the group already formed around this node.
    ///
    /// A node added at run time (`joining`) never initializes either: a
    /// group of its own would be a second cluster. The DC, which added it
    /// as a learner, replicates the log (and so the membership) to it.
    async fn bootstrap(&self, witness: bool) -> Result<(), ClusterError> {
        if witness {
            return Ok(());
        }
        if self.settings.joining {
            tracing::info!("joining: waiting for the DC to replicate the log here");
            return Ok(());
        }
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        if initialized {
            return Ok(());
        }
        match self.raft.initialize(self.settings.members.clone()).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::info!("joined a group that already formed ({e})");
                Ok(())
            }
            Err(e) => Err(ClusterError::Raft(e.to_string())),
        }
    }

    /// What the leader does each heartbeat besides Raft's own work.
    ///
    /// On a data node: promote learners that have caught up to voters
    /// (`tandem node add` adds a node as a learner first, so it never
    /// counts towards quorum before it holds the log).
    ///
    /// On the witness: hand leadership off. The witness may win an
    /// election: when a data node lacks a committed entry the witness
    /// holds, only the witness can lead (a data node with a shorter log
    /// never gets its vote), and a witness that never led would leave the
    /// cluster stuck. So it leads only long enough to bring a data node up
    /// to date, then hands leadership to it at once. It never runs the
    /// controller, so it is never the DC in effect.
    fn steward(&self, witness: bool) -> impl std::future::Future<Output = ()> + Send + 'static {
        let raft = self.raft.clone();
        let me = self.settings.id;
        let period = Duration::from_millis(self.settings.timing.heartbeat_ms);
        let stopped = self.stopped();
        async move {
            let watch = async {
                loop {
                    tokio::time::sleep(period).await;
                    let m = raft.metrics().borrow_watched().clone();
                    if m.current_leader != Some(me) {
                        continue;
                    }
                    if witness {
                        hand_off(&raft, &m, me).await;
                    } else {
                        promote(&raft, &m).await;
                    }
                }
            };
            tokio::select! { biased; _ = stopped => {}, _ = watch => {} }
        }
    }

    /// Pings every other member (voters and learners, as the replicated
    /// membership says now) each heartbeat so every node, not only the DC,
    /// knows whom it hears; the DC answers with a lease grant, counted
    /// from the ping's send (see [`crate::lease`]).
    fn pinger(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let me = self.settings.id;
        let period = Duration::from_millis(self.settings.timing.heartbeat_ms);
        let (raft, transport, clock, lease) = (
            self.raft.clone(),
            self.transport.clone(),
            self.clock.clone(),
            self.lease.clone(),
        );
        let stopped = self.stopped();
        async move {
            let ping_all = async {
                // id → (address, client), following the membership.
                let mut peers: BTreeMap<NodeId, (String, Peer)> = BTreeMap::new();
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let members = members_of(&raft);
                    peers.retain(|id, (addr, _)| members.get(id).is_some_and(|m| m.addr == *addr));
                    for (id, m) in members.iter().filter(|(id, _)| **id != me) {
                        peers.entry(*id).or_insert_with(|| {
                            let peer =
                                Peer::new(me, *id, &m.addr, transport.as_ref(), clock.clone());
                            (m.addr.clone(), peer)
                        });
                    }
                    let calls = peers.values_mut().map(|(_, p)| async {
                        let sent = Instant::now();
                        (sent, p.call(Request::Ping, period * 3).await)
                    });
                    for (sent, reply) in futures_util::future::join_all(calls).await {
                        if let Ok(Reply::Pong { grant_ms: Some(ms) }) = reply {
                            // The weakened variant must be caught by
                            // tests/sim (bench/sim reports after how many
                            // seeds).
                            let from = if cfg!(feature = "weakened-lease") {
                                Instant::now()
                            } else {
                                sent
                            };
                            lease.granted(from, Duration::from_millis(ms));
                        }
                    }
                }
            };
            // biased: a fixed poll order keeps simulated runs replayable.
            tokio::select! { biased; _ = stopped => {}, _ = ping_all => {} }
        }
    }

    /// Records when this node took office in each term it leads: the DC
    /// lease may start only `lease_ms` later. Seeing it late only delays
    /// the lease, which is the safe side.
    fn leadership_clock(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let me = self.settings.id;
        let since = self.leader_since.clone();
        let mut metrics = self.raft.metrics();
        let stopped = self.stopped();
        async move {
            let watch = async {
                loop {
                    let (leading, term) = {
                        let m = metrics.borrow_watched();
                        (m.current_leader == Some(me), m.current_term)
                    };
                    {
                        let mut since = since.lock().unwrap_or_else(|p| p.into_inner());
                        match *since {
                            Some((t, _)) if leading && t == term => {}
                            _ if leading => *since = Some((term, Instant::now())),
                            _ => *since = None,
                        }
                    }
                    if metrics.changed().await.is_err() {
                        return;
                    }
                }
            };
            tokio::select! { biased; _ = stopped => {}, _ = watch => {} }
        }
    }

    /// The address the Raft transport listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn id(&self) -> NodeId {
        self.settings.id
    }

    /// Whether this member is a witness (votes, runs nothing).
    pub fn is_witness(&self) -> bool {
        self.settings
            .members
            .get(&self.settings.id)
            .is_some_and(|m| m.witness)
    }

    /// The members now (id → member, voters and learners), as the
    /// replicated membership says; empty on a joining node until the DC
    /// reached it.
    pub fn members(&self) -> BTreeMap<NodeId, Member> {
        members_of(&self.raft)
    }

    /// Adds or removes a member (`tandem node add|remove`) on the DC,
    /// forwarded there if this node is not it. Checked by
    /// [`members::plan`] against the DC's own view; an add makes the node
    /// a learner (the DC promotes it once it caught up).
    pub async fn change_members(&self, change: MemberChange) -> Result<MemberAnswer, ClusterError> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let leader = metrics.current_leader.ok_or(ClusterError::NoLeader)?;
        if leader == self.settings.id {
            let hears = (&self.clock, self.settings.id, self.settings.timing.lease_ms);
            return execute_change(&self.raft, hears, &change).await;
        }
        let node = metrics
            .membership_config
            .membership()
            .get_node(&leader)
            .cloned()
            .ok_or(ClusterError::NoLeader)?;
        let forward_err = |detail: String| ClusterError::Forward {
            addr: node.addr.clone(),
            detail,
        };
        let mut peer = Peer::new(
            self.settings.id,
            leader,
            &node.addr,
            self.transport.as_ref(),
            self.clock.clone(),
        );
        match peer
            .call(
                Request::Members(change),
                PROPOSE_TIMEOUT + Duration::from_secs(1),
            )
            .await
        {
            Ok(Reply::Members(answer)) => Ok(answer?),
            Ok(Reply::Error(e)) => Err(forward_err(e)),
            Ok(_) => Err(forward_err("unexpected reply".into())),
            Err(e) => Err(forward_err(e.to_string())),
        }
    }

    /// The replicated configuration and status as applied on this node.
    pub fn replicated(&self) -> Replicated {
        self.reader.replicated()
    }

    /// Who leads, who is heard, and whether this node has quorum.
    pub fn view(&self) -> MembershipView {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let lease = self.settings.timing.lease_ms;
        let lost_after = self.settings.timing.lost_after_ms;
        let membership = metrics.membership_config.membership().clone();
        let peer_view = |id: NodeId| {
            let member = membership.get_node(&id).cloned().unwrap_or_default();
            let last = if id == self.settings.id {
                Some(0)
            } else {
                self.clock.since_ms(id)
            };
            PeerView {
                id,
                name: member.name,
                addr: member.addr,
                api: member.api,
                witness: member.witness,
                last_heard_ms: last,
                alive: last.is_some_and(|ms| ms <= lost_after),
                lease_expired_ms: None,
            }
        };
        let mut voters: Vec<PeerView> = membership.voter_ids().map(peer_view).collect();
        let mut learners: Vec<PeerView> = membership.learner_ids().map(peer_view).collect();
        // A node that is not (or no longer) a member has no quorum, however
        // many voters answer it: a removed node stops acting.
        let member = membership.get_node(&self.settings.id).is_some();
        let alive = voters.iter().filter(|v| v.alive).count();
        let needed = voters.len() / 2 + 1;
        let name_of = |id: NodeId| membership.get_node(&id).map(|m| m.name.clone());
        let leading = leads(&metrics, self.settings.id);
        let since = *self.leader_since.lock().unwrap_or_else(|p| p.into_inner());
        let took_office = since
            .filter(|(term, _)| *term == metrics.current_term)
            .map(|(_, t)| t);
        let lease_d = Duration::from_millis(lease);
        let now = Instant::now();
        // Just resumed from a suspend: no lease or acknowledgement held
        // before is trusted (see `crate::suspend`).
        let suspended = self.suspend.distrusts(now, lease_d);
        let since_ack = metrics.last_quorum_acked.map(|t| t.elapsed());
        let dc_lease =
            !suspended && leading && dc_lease(lease_d, took_office.map(|t| t.elapsed()), since_ack);
        if let (true, Some(office)) = (dc_lease, took_office) {
            let drift = crate::lease::drift_margin(lease_d);
            for peer in voters.iter_mut().chain(learners.iter_mut()) {
                let free =
                    crate::lease::free_since(self.grants.expiry(peer.id), office + lease_d, drift);
                peer.lease_expired_ms = (peer.id != self.settings.id && now >= free)
                    .then(|| (now - free).as_millis() as u64);
            }
        }
        // The DC's own lease is its quorum acknowledgement; any other
        // node's, the DC's grants. Kept as a grant, so a DC that steps down
        // (hands off) keeps what is left of it, as a node keeps a grant
        // from a DC that is gone: successors wait out both.
        if let Some(left) = (leading && !suspended)
            .then(|| crate::lease::grant_validity(lease_d, since_ack))
            .flatten()
        {
            self.lease.granted(now, left);
        }
        let lease_until = self.lease.until().filter(|_| !suspended);
        let lease_left_ms =
            lease_until.map_or(0, |u| u.saturating_duration_since(now).as_millis() as u64);
        MembershipView {
            node_id: self.settings.id,
            node_name: name_of(self.settings.id).unwrap_or_default(),
            state: format!("{:?}", metrics.state),
            term: metrics.current_term,
            dc: metrics.current_leader.and_then(name_of),
            dc_id: metrics.current_leader,
            quorum: member && alive >= needed,
            votes_alive: alive,
            votes_needed: needed,
            voters,
            learners,
            committed_index: metrics.local_committed.map(|c| c.index()),
            lease_ms: lease,
            dc_lease,
            lease_left_ms,
        }
    }

    /// The replicated state as applied here, with the log position it
    /// reflects (read together, so they match).
    pub fn applied(&self) -> AppliedState {
        let (last, state) = self.reader.applied();
        AppliedState {
            last_applied: last.map(|l| (l.leader_id.term, l.index)),
            state,
        }
    }

    /// Reads the replicated state in place with the index of the last
    /// applied entry (see [`crate::store::StateReader::read`]).
    pub fn read_applied<T>(&self, f: impl FnOnce(Option<u64>, &Replicated) -> T) -> T {
        self.reader.read(f)
    }

    /// `(term, index)` of the last log entry applied here: changes with
    /// every change of the replicated state, and is cheap to read.
    pub fn applied_position(&self) -> Option<(u64, u64)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        m.last_applied.map(|l| (l.leader_id.term, l.index))
    }

    /// A leader about to stop hands leadership to a caught-up data voter
    /// and waits (at most `within`) until it no longer leads, so the
    /// successor, not a DC on its way out, moves the resources this node
    /// gives up. Whether this node still leads afterwards.
    pub async fn hand_off_leadership(&self, within: Duration) -> bool {
        let me = self.settings.id;
        let deadline = tokio::time::Instant::now() + within;
        let mut triggered = false;
        loop {
            let m = self.raft.metrics().borrow_watched().clone();
            if !leads(&m, me) {
                return false;
            }
            // Under write load every voter may trail by an entry at one
            // look: look again until one has caught up.
            if !triggered {
                match hand_off(&self.raft, &m, me).await {
                    HandOff::Triggered => triggered = true,
                    HandOff::NoSuccessor => return true,
                    HandOff::NotCaughtUp => {}
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Commits `command` through the log, on the DC (forwarded if needed).
    /// A leader that lost its quorum never commits, and openraft would
    /// wait forever: give up after [`PROPOSE_TIMEOUT`].
    pub async fn propose(&self, command: Command) -> Result<CommandResult, ClusterError> {
        let written =
            tokio::time::timeout(PROPOSE_TIMEOUT, self.raft.client_write(command.clone()))
                .await
                .map_err(|_| ClusterError::NotCommitted(PROPOSE_TIMEOUT))?;
        match written {
            Ok(r) => Ok(r.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                let node = f.leader_node.ok_or(ClusterError::NoLeader)?;
                let leader = f.leader_id.ok_or(ClusterError::NoLeader)?;
                self.forward(leader, node, command).await
            }
            Err(e) => Err(ClusterError::Raft(e.to_string())),
        }
    }

    /// Commits `command` only as the leader, never forwarded: a DC that
    /// stepped down, or is handing leadership over, cannot commit through
    /// its successor what it decided in its own term. The controller
    /// records an operation as pending this way before it sends it, so an
    /// operation of a deposed DC is never sent.
    pub async fn propose_as_leader(&self, command: Command) -> Result<CommandResult, ClusterError> {
        let written = tokio::time::timeout(PROPOSE_TIMEOUT, self.raft.client_write(command))
            .await
            .map_err(|_| ClusterError::NotCommitted(PROPOSE_TIMEOUT))?;
        match written {
            Ok(r) => Ok(r.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(ClusterError::NoLongerLeader)
            }
            Err(e) => Err(ClusterError::Raft(e.to_string())),
        }
    }

    async fn forward(
        &self,
        leader: NodeId,
        node: Member,
        command: Command,
    ) -> Result<CommandResult, ClusterError> {
        let mut peer = Peer::new(
            self.settings.id,
            leader,
            &node.addr,
            self.transport.as_ref(),
            self.clock.clone(),
        );
        let forward_err = |detail: String| ClusterError::Forward {
            addr: node.addr.clone(),
            detail,
        };
        match peer
            .call(Request::Write(command), Duration::from_secs(10))
            .await
        {
            Ok(Reply::Written(r)) => Ok(r),
            Ok(Reply::Error(e)) => Err(forward_err(e)),
            Ok(_) => Err(forward_err("unexpected reply".into())),
            Err(e) => Err(forward_err(e.to_string())),
        }
    }

    /// A linearizable read barrier: once it returns, the state applied
    /// here includes every entry committed before the call, as the DC
    /// confirms with a quorum (a ReadIndex round, forwarded from a
    /// follower). What an operator reads to base a write on (the
    /// configuration version a plan is made against) must not be the stale
    /// state of a node that is still catching up.
    pub async fn read_barrier(&self, timeout: Duration) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let index = tokio::time::timeout(timeout, self.read_index())
            .await
            .map_err(|_| ClusterError::NotCommitted(timeout))??;
        while self.applied_position().map_or(0, |(_, i)| i) < index {
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::NotCommitted(timeout));
            }
            self.changed(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// The log index a linearizable read must see applied: the DC's, after
    /// it confirmed its leadership with a quorum.
    async fn read_index(&self) -> Result<u64, ClusterError> {
        match self
            .raft
            .get_read_log_id(openraft::ReadPolicy::ReadIndex)
            .await
        {
            Ok((read, _)) => Ok(read.index()),
            Err(RaftError::APIError(openraft::errors::LinearizableReadError::ForwardToLeader(
                f,
            ))) => {
                let node = f.leader_node.ok_or(ClusterError::NoLeader)?;
                let leader = f.leader_id.ok_or(ClusterError::NoLeader)?;
                let mut peer = Peer::new(
                    self.settings.id,
                    leader,
                    &node.addr,
                    self.transport.as_ref(),
                    self.clock.clone(),
                );
                let forward_err = |detail: String| ClusterError::Forward {
                    addr: node.addr.clone(),
                    detail,
                };
                match peer.call(Request::ReadIndex, Duration::from_secs(5)).await {
                    Ok(Reply::ReadIndex(Ok(index))) => Ok(index),
                    Ok(Reply::ReadIndex(Err(e)) | Reply::Error(e)) => Err(forward_err(e)),
                    Ok(_) => Err(forward_err("unexpected reply".into())),
                    Err(e) => Err(forward_err(e.to_string())),
                }
            }
            Err(e) => Err(ClusterError::Raft(e.to_string())),
        }
    }

    /// Waits until this node sees a DC, at most `timeout`.
    pub async fn wait_for_dc(&self, timeout: Duration) -> Option<NodeId> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(dc) = self.view().dc_id {
                return Some(dc);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The fencing token for actions: this node's term, once a quorum has
    /// confirmed that it still leads (a ReadIndex round). `None` when it
    /// does not lead or cannot confirm it.
    pub async fn confirm_leadership(&self) -> Option<u64> {
        let term = self.leading_term()?;
        self.raft
            .ensure_linearizable(openraft::ReadPolicy::ReadIndex)
            .await
            .ok()?;
        (self.leading_term() == Some(term)).then_some(term)
    }

    fn leading_term(&self) -> Option<u64> {
        let m = self.raft.metrics().borrow_watched().clone();
        (m.current_leader == Some(self.settings.id)).then_some(m.current_term)
    }

    /// Whether an action stamped with `term` by a DC may run here: a token
    /// older than the newest term this node knows comes from a deposed DC.
    pub fn accepts_token(&self, term: u64) -> bool {
        term >= self.raft.metrics().borrow_watched().current_term
    }

    /// Resolves at the next change of the applied state, the leader, the
    /// term or the replication progress, or after `timeout`, whichever
    /// comes first. (A fresh receiver is marked seen first: a clone of
    /// openraft's counts every change since the node started as unseen, and
    /// would never wait.)
    pub async fn changed(&self, timeout: Duration) {
        self.watch_changes().changed(timeout).await;
    }

    /// A receiver of the same changes as [`ClusterNode::changed`], kept by
    /// a loop so that no change between two waits is missed.
    pub fn watch_changes(&self) -> ChangeWatch {
        let mut metrics = self.raft.metrics();
        drop(metrics.borrow_and_update());
        ChangeWatch { metrics }
    }

    /// Stops Raft, the listener and the pinger. Takes `&self` so a node
    /// shared with in-flight callers (the simulation's clients) can stop.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let _ = self.raft.shutdown().await;
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Wakes a loop when the node's Raft metrics change (see
/// [`ClusterNode::watch_changes`]).
pub struct ChangeWatch {
    metrics: openraft::alias::WatchReceiverOf<TypeConfig, openraft::RaftMetrics<TypeConfig>>,
}

impl ChangeWatch {
    /// Resolves at the next change not yet seen, or after `timeout`.
    pub async fn changed(&mut self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.metrics.changed()).await;
    }
}

/// The members (voters and learners) in `raft`'s latest membership.
fn members_of(raft: &Raft<TypeConfig, StateMachine>) -> BTreeMap<NodeId, Member> {
    let metrics = raft.metrics();
    let m = metrics.borrow_watched();
    let membership = m.membership_config.membership();
    membership
        .nodes()
        .map(|(id, member)| (*id, member.clone()))
        .collect()
}

/// The membership with who this node heard within the lease.
pub(crate) fn roster_of(
    raft: &Raft<TypeConfig, StateMachine>,
    clock: &PeerClock,
    me: NodeId,
    lease_ms: u64,
) -> Roster {
    let metrics = raft.metrics().borrow_watched().clone();
    let membership = metrics.membership_config.membership();
    let nodes: BTreeMap<NodeId, Member> = membership
        .nodes()
        .map(|(id, member)| (*id, member.clone()))
        .collect();
    let alive = nodes
        .keys()
        .filter(|id| **id == me || clock.since_ms(**id).is_some_and(|ms| ms <= lease_ms))
        .copied()
        .collect();
    Roster {
        voters: membership.voter_ids().collect(),
        alive,
        joint: membership.get_joint_config().len() > 1,
        nodes,
    }
}

/// Checks and executes a change on the leader: a learner added, or a
/// member removed (from the voters and the membership at once;
/// openraft steps a removed leader down once the change is committed).
/// `(clock, me, lease_ms)` say whom this leader hears.
///
/// A fresh leader first commits an entry of its own term (a ReadIndex
/// round): until then openraft refuses membership changes, and the
/// membership it holds may not be committed yet.
pub(crate) async fn execute_change(
    raft: &Raft<TypeConfig, StateMachine>,
    (clock, me, lease_ms): (&PeerClock, NodeId, u64),
    change: &MemberChange,
) -> Result<MemberAnswer, ClusterError> {
    let confirmed = raft.ensure_linearizable(openraft::ReadPolicy::ReadIndex);
    tokio::time::timeout(PROPOSE_TIMEOUT, confirmed)
        .await
        .map_err(|_| ClusterError::NotCommitted(PROPOSE_TIMEOUT))?
        .map_err(|_| ClusterError::NoLeader)?;
    let roster = &roster_of(raft, clock, me, lease_ms);
    let plan = members::plan(roster, change)?;
    let raft_err = |e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>| match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => ClusterError::NoLeader,
        e => ClusterError::Raft(e.to_string()),
    };
    let (id, member) = match plan {
        MemberPlan::AddLearner { id, member } => {
            tracing::info!(id, name = %member.name, addr = %member.addr, "adding a member as a learner");
            let added = raft.add_learner(id, member.clone(), false);
            tokio::time::timeout(PROPOSE_TIMEOUT, added)
                .await
                .map_err(|_| ClusterError::NotCommitted(PROPOSE_TIMEOUT))?
                .map_err(raft_err)?;
            (id, member)
        }
        MemberPlan::Remove { id, voter } => {
            let member = roster.nodes.get(&id).cloned().unwrap_or_default();
            tracing::info!(id, name = %member.name, voter, "removing a member");
            let ids = BTreeSet::from([id]);
            let change = if voter {
                ChangeMembers::RemoveVoters(ids)
            } else {
                ChangeMembers::RemoveNodes(ids)
            };
            let removed = raft.change_membership(change, false);
            tokio::time::timeout(PROPOSE_TIMEOUT, removed)
                .await
                .map_err(|_| ClusterError::NotCommitted(PROPOSE_TIMEOUT))?
                .map_err(raft_err)?;
            (id, member)
        }
    };
    let metrics = raft.metrics().borrow_watched().clone();
    let membership = metrics.membership_config.membership();
    Ok(MemberAnswer {
        id,
        member,
        members: membership.nodes().map(|(id, m)| (*id, m.clone())).collect(),
        voters: membership.voter_ids().collect(),
    })
}

/// Whether `me` is the Raft leader by these metrics (its role and the
/// leader it knows agree).
pub(crate) fn leads(m: &Metrics, me: NodeId) -> bool {
    m.state == openraft::ServerState::Leader && m.current_leader == Some(me)
}

/// The leader's metrics as the steward reads them.
type Metrics = openraft::RaftMetrics<TypeConfig>;

/// How far `id`'s log matches the leader's (leader only).
fn matched(m: &Metrics, id: NodeId) -> Option<u64> {
    m.replication
        .as_ref()?
        .get(&id)?
        .as_ref()
        .map(|l| l.index())
}

/// Promotes every learner within [`members::CATCH_UP_LAG`] entries of the
/// leader's log to voter, in one change.
async fn promote(raft: &Raft<TypeConfig, StateMachine>, m: &Metrics) {
    let membership = m.membership_config.membership();
    if membership.get_joint_config().len() > 1 {
        return;
    }
    let last = m.last_log_index.unwrap_or(0);
    let ready: BTreeSet<NodeId> = membership
        .learner_ids()
        .filter(|id| matched(m, *id).is_some_and(|i| i + members::CATCH_UP_LAG >= last))
        .collect();
    if ready.is_empty() {
        return;
    }
    tracing::info!(?ready, "learners caught up; promoting them to voters");
    let change = raft.change_membership(ChangeMembers::AddVoterIds(ready), false);
    match tokio::time::timeout(PROPOSE_TIMEOUT, change).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!("cannot promote learners: {e}"),
        Err(_) => tracing::warn!("promoting learners was not committed within {PROPOSE_TIMEOUT:?}"),
    }
}

/// What [`hand_off`] did.
enum HandOff {
    Triggered,
    /// No other data voter exists.
    NoSuccessor,
    /// Every other data voter trails this log now.
    NotCaughtUp,
}

/// The leader `me` (the witness, or a DC that stops): hands leadership to
/// the first other data voter whose log matches its own.
async fn hand_off(raft: &Raft<TypeConfig, StateMachine>, m: &Metrics, me: NodeId) -> HandOff {
    let membership = m.membership_config.membership();
    let mut successors = membership
        .voter_ids()
        .filter(|id| *id != me && membership.get_node(id).is_some_and(|n| !n.witness))
        .peekable();
    if successors.peek().is_none() {
        return HandOff::NoSuccessor;
    }
    let caught_up =
        successors.find(|id| matched(m, *id) == m.last_log_index && m.last_log_index.is_some());
    let Some(to) = caught_up else {
        return HandOff::NotCaughtUp;
    };
    tracing::info!("handing leadership to node {to}");
    let _ = raft.trigger().transfer_leader(to).await;
    HandOff::Triggered
}

fn witness_of(settings: &NodeSettings) -> Result<bool, ClusterError> {
    settings
        .members
        .get(&settings.id)
        .map(|m| m.witness)
        .ok_or(ClusterError::NotAMember(settings.id))
}

/// Whether a leader that took office `in_office` ago, and whose latest
/// append acknowledged by a quorum was sent `since_quorum_ack` ago, holds
/// the DC lease.
///
/// Its own part: a quorum acknowledged an append it sent less than `lease`
/// ago. That alone is not enough: a deposed DC
/// cut off from the group keeps believing its lease until it runs out, while
/// the others elect a successor within an election timeout (openraft does
/// not step a partitioned leader down). So a new leader also waits `lease`
/// after it took office before it claims the lease. That makes the two leases
/// disjoint: any quorum that acknowledged the old leader shares a voter with
/// the quorum that elected the new one, that voter acknowledged the old
/// leader's append (sent at `t`) before it voted (a voter that has voted for
/// a higher term rejects the old leader's appends), and the vote came before
/// the new leader took office; so the old lease ended by
/// `t + lease < took_office + lease`.
/// Unlike a follower-side lease, this needs no follower to remember when it
/// last heard a leader, so it holds across follower restarts.
fn dc_lease(
    lease: Duration,
    in_office: Option<Duration>,
    since_quorum_ack: Option<Duration>,
) -> bool {
    let predecessor_expired = in_office.is_some_and(|d| d >= lease);
    let acknowledged = since_quorum_ack.is_some_and(|d| d < lease);
    predecessor_expired && acknowledged
}

fn raft_config(timing: &Timing, witness: bool) -> Result<Arc<openraft::Config>, ClusterError> {
    let config = openraft::Config {
        cluster_name: "tandem".into(),
        heartbeat_interval: timing.heartbeat_ms,
        election_timeout_min: timing.election_min_ms,
        election_timeout_max: timing.election_max_ms,
        enable_pre_vote: Some(true),
        ..Default::default()
    };
    // The witness waits longer before standing, so a data node with a
    // complete log wins first; it stands only when none can.
    let config = if witness {
        openraft::Config {
            election_timeout_min: timing.election_max_ms + timing.election_min_ms,
            election_timeout_max: 2 * timing.election_max_ms + timing.election_min_ms,
            ..config
        }
    } else {
        config
    };
    let config = config
        .validate()
        .map_err(|e| ClusterError::Timing(e.to_string()))?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dc_lease_needs_a_recent_quorum_ack_and_a_served_out_predecessor() {
        let ms = Duration::from_millis;
        let lease = ms(1000);
        // A fresh leader, acknowledged at once, still waits out any
        // predecessor's lease (the seeds in tests/sim REGRESSIONS broke
        // without this wait).
        assert!(!dc_lease(lease, Some(ms(400)), Some(ms(10))));
        assert!(dc_lease(lease, Some(ms(1000)), Some(ms(10))));
        // A leader no quorum acknowledged for a lease has lost it.
        assert!(!dc_lease(lease, Some(ms(5000)), Some(ms(1000))));
        assert!(!dc_lease(lease, Some(ms(5000)), None));
        assert!(!dc_lease(lease, None, Some(ms(10))));
    }
}
