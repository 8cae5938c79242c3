//! Node-to-node messaging: one postcard-encoded request, then one reply.
//! [`Network`] is openraft's client side, [`Endpoint`] answers peers. Both
//! speak encoded frames through the [`Transport`] seam: [`TlsTransport`]
//! (length-prefixed frames over mutual TLS, answered by [`serve`]) in
//! production, an in-process simulated network in `tests/sim`. Every frame
//! is bounded by [`MAX_FRAME_BYTES`], every call by a timeout, and every
//! peer we hear from is stamped in the [`PeerClock`] that membership and
//! quorum are computed from.

use crate::members::{MemberAnswer, MemberChange, MemberError};
use crate::store::StateMachine;
use crate::types::{Command, CommandResult, Member, NodeId, TypeConfig};
use openraft::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::Instant as _;
use openraft::{OptionalSend, Raft};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
// tokio's clock, not std's: identical in production, virtual under the
// simulation's paused runtime.
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::{client::TlsStream, TlsAcceptor, TlsConnector};

/// Largest frame accepted: a snapshot of the configuration fits many times.
pub const MAX_FRAME_BYTES: usize = 16 << 20;
/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A request from one node to another.
#[derive(Serialize, Deserialize)]
pub(crate) enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    Snapshot {
        vote: VoteOf<TypeConfig>,
        meta: SnapshotMetaOf<TypeConfig>,
        data: Vec<u8>,
    },
    /// Liveness probe and lease request; every node pings every peer each
    /// heartbeat, and the DC answers with a grant (see [`crate::lease`]).
    Ping,
    /// A client write forwarded to the leader.
    Write(Command),
    /// A membership change (`tandem node add|remove`) forwarded to the
    /// leader.
    Members(MemberChange),
    /// A leader that stops asks a caught-up voter to take over at once
    /// (without it, the others wait out an election timeout).
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    /// A follower's linearizable read: the leader's read index.
    ReadIndex,
}

/// The answer to a [`Request`].
#[derive(Serialize, Deserialize)]
pub(crate) enum Reply {
    Append(AppendEntriesResponse<TypeConfig>),
    Vote(VoteResponse<TypeConfig>),
    Snapshot(SnapshotResponse<TypeConfig>),
    /// The answer to a ping: a lease of `grant_ms` milliseconds, counted
    /// by the asker from when it sent the ping, when the answerer is a DC
    /// that may grant one.
    Pong {
        grant_ms: Option<u64>,
    },
    Written(CommandResult),
    /// The leader's answer to [`Request::Members`]: done, or refused.
    Members(Result<MemberAnswer, MemberError>),
    Error(String),
    TransferLeader(TransferLeaderResponse<TypeConfig>),
    /// The answer to [`Request::ReadIndex`]: the index to wait for.
    ReadIndex(Result<u64, String>),
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    from: NodeId,
    request: Request,
}

/// When each peer last answered a request of ours, timed from when the
/// request was *sent*. Only round trips count: a peer whose requests
/// reach us but which cannot hear us (a one-way cut) must not count as
/// heard, or a node could keep its lease while the DC has already
/// declared it lost. Timing from the send keeps the estimate on the safe
/// side: the peer was certainly alive and hearing us after that instant.
#[derive(Clone, Default)]
pub struct PeerClock {
    heard: Arc<Mutex<BTreeMap<NodeId, Instant>>>,
}

impl PeerClock {
    pub(crate) fn answered(&self, id: NodeId, sent: Instant) {
        let mut heard = self.heard.lock().unwrap_or_else(|p| p.into_inner());
        let latest = heard.entry(id).or_insert(sent);
        if *latest < sent {
            *latest = sent;
        }
    }

    /// Milliseconds since `id` was last heard from, if ever.
    pub fn since_ms(&self, id: NodeId) -> Option<u64> {
        let heard = self.heard.lock().unwrap_or_else(|p| p.into_inner());
        heard.get(&id).map(|t| t.elapsed().as_millis() as u64)
    }
}

fn encode(value: &impl Serialize) -> io::Result<Vec<u8>> {
    let bytes = postcard::to_stdvec(value).map_err(io::Error::other)?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(io::Error::other(format!(
            "frame of {} bytes exceeds the {MAX_FRAME_BYTES}-byte limit",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    w.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    w.write_all(bytes).await?;
    w.flush().await
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Vec<u8>> {
    let len = r.read_u32().await? as usize;
    if len > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("peer announced a {len}-byte frame; limit is {MAX_FRAME_BYTES}"),
        ));
    }
    let mut buf = vec![0; len];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

/// A boxed future, so [`Link`] stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a node reaches its peers: the network seam. Production is
/// [`TlsTransport`]; the simulation supplies one with seeded loss, delay
/// and partitions.
pub trait Transport: Send + Sync + 'static {
    /// A link from `from` to the peer `to` that listens at `addr`.
    /// Connecting may wait for the first exchange.
    fn link(&self, from: NodeId, to: NodeId, addr: &str) -> Box<dyn Link>;
}

/// One ordered request/reply channel to a peer.
pub trait Link: Send + Sync + 'static {
    /// Delivers one encoded request and returns the peer's encoded reply.
    /// The caller bounds it with a timeout and may drop it midway.
    fn exchange(&mut self, frame: Vec<u8>) -> BoxFuture<'_, io::Result<Vec<u8>>>;
    /// Forgets any connection state after a failed or abandoned exchange.
    fn reset(&mut self);
}

/// The production transport: one mutual-TLS connection per link.
pub(crate) struct TlsTransport {
    pub(crate) tls: TlsConnector,
}

impl Transport for TlsTransport {
    fn link(&self, _from: NodeId, _to: NodeId, addr: &str) -> Box<dyn Link> {
        Box::new(TlsLink {
            addr: addr.to_string(),
            tls: self.tls.clone(),
            conn: None,
        })
    }
}

struct TlsLink {
    addr: String,
    tls: TlsConnector,
    conn: Option<TlsStream<TcpStream>>,
}

impl Link for TlsLink {
    fn exchange(&mut self, frame: Vec<u8>) -> BoxFuture<'_, io::Result<Vec<u8>>> {
        Box::pin(async move {
            if self.conn.is_none() {
                let tcp = TcpStream::connect(&self.addr).await?;
                tcp.set_nodelay(true)?;
                self.conn = Some(self.tls.connect(crate::tls::server_name(), tcp).await?);
            }
            let conn = self.conn.as_mut().expect("connected above");
            write_frame(conn, &frame).await?;
            read_frame(conn).await
        })
    }

    fn reset(&mut self) {
        self.conn = None;
    }
}

/// A client of one peer over a [`Link`], re-established after any error.
pub(crate) struct Peer {
    me: NodeId,
    target: NodeId,
    clock: PeerClock,
    link: Box<dyn Link>,
}

impl Peer {
    pub(crate) fn new(
        me: NodeId,
        target: NodeId,
        addr: &str,
        transport: &dyn Transport,
        clock: PeerClock,
    ) -> Peer {
        Peer {
            me,
            target,
            clock,
            link: transport.link(me, target, addr),
        }
    }

    /// Sends one request and waits for its reply, at most `ttl`.
    pub(crate) async fn call(&mut self, request: Request, ttl: Duration) -> io::Result<Reply> {
        let sent = Instant::now();
        let result = tokio::time::timeout(ttl, self.exchange(request)).await;
        let result =
            result.unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")));
        match &result {
            // A refusal (e.g. a ping from a node no longer a member) is
            // not being heard: a removed node must lose its quorum.
            Ok(Reply::Error(_)) => {}
            Ok(_) => self.clock.answered(self.target, sent),
            Err(_) => self.link.reset(),
        }
        result
    }

    async fn exchange(&mut self, request: Request) -> io::Result<Reply> {
        let frame = encode(&Envelope {
            from: self.me,
            request,
        })?;
        decode(&self.link.exchange(frame).await?)
    }

    async fn rpc(
        &mut self,
        request: Request,
        option: &RPCOption,
    ) -> Result<Reply, RPCError<TypeConfig>> {
        match self.call(request, option.hard_ttl()).await {
            Ok(Reply::Error(e)) => Err(RPCError::Unreachable(Unreachable::new(&io::Error::other(
                e,
            )))),
            Ok(reply) => Ok(reply),
            Err(e) => Err(RPCError::Unreachable(Unreachable::new(&e))),
        }
    }
}

fn unexpected() -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(&io::Error::other("unexpected reply type")))
}

impl RaftNetworkV2<TypeConfig> for Peer {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.rpc(Request::Append(rpc), &option).await? {
            Reply::Append(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.rpc(Request::Vote(rpc), &option).await? {
            Reply::Vote(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.rpc(Request::PreVote(rpc), &option).await? {
            Reply::Vote(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.rpc(Request::TransferLeader(rpc), &option).await? {
            Reply::TransferLeader(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, Vec<u8>>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let request = Request::Snapshot {
            vote,
            meta: snapshot.meta,
            data: snapshot.snapshot,
        };
        let unreachable = |e: io::Error| StreamingError::Unreachable(Unreachable::new(&e));
        match self
            .call(request, option.hard_ttl())
            .await
            .map_err(unreachable)?
        {
            Reply::Snapshot(r) => Ok(r),
            Reply::Error(e) => Err(unreachable(io::Error::other(e))),
            _ => Err(unreachable(io::Error::other("unexpected reply type"))),
        }
    }
}

/// openraft's factory of [`Peer`] clients.
pub(crate) struct Network {
    pub(crate) me: NodeId,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) clock: PeerClock,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Peer {
        Peer::new(
            self.me,
            target,
            &node.addr,
            self.transport.as_ref(),
            self.clock.clone(),
        )
    }
}

/// The answering side of a node: decodes a peer's request frame, hands it
/// to Raft and encodes the reply. The TLS listener and the simulated
/// network both deliver through it.
#[derive(Clone)]
pub struct Endpoint {
    pub(crate) raft: Raft<TypeConfig, StateMachine>,
    /// This node, its peer clock and lease: what a forwarded membership
    /// change is checked with ([`crate::node::roster_of`]).
    pub(crate) me: NodeId,
    pub(crate) clock: PeerClock,
    pub(crate) lease_ms: u64,
    /// The leases this node granted as DC.
    pub(crate) grants: Arc<crate::lease::GrantBook>,
    pub(crate) suspend: Arc<crate::suspend::SuspendWatch>,
}

impl Endpoint {
    /// Answers one encoded request; an error means the frame was not a
    /// request (the connection should be dropped).
    pub async fn answer(&self, frame: &[u8]) -> io::Result<Vec<u8>> {
        let envelope: Envelope = decode(frame)?;
        encode(&self.handle(envelope.from, envelope.request).await)
    }

    async fn handle(&self, from: NodeId, request: Request) -> Reply {
        let err = |e: &dyn std::fmt::Display| Reply::Error(e.to_string());
        match request {
            Request::Append(r) => self
                .raft
                .append_entries(r)
                .await
                .map_or_else(|e| err(&e), Reply::Append),
            Request::Vote(r) => self
                .raft
                .vote(r)
                .await
                .map_or_else(|e| err(&e), Reply::Vote),
            Request::PreVote(r) => self
                .raft
                .pre_vote(r)
                .await
                .map_or_else(|e| err(&e), Reply::Vote),
            Request::Snapshot { vote, meta, data } => {
                let snapshot = SnapshotOf::<TypeConfig, Vec<u8>> {
                    meta,
                    snapshot: data,
                };
                self.raft
                    .install_full_snapshot(vote, snapshot)
                    .await
                    .map_or_else(|e| err(&e), Reply::Snapshot)
            }
            // Raft's own messages carry their sender's vote and term; the
            // rest act on this node's say alone: members only.
            Request::Ping | Request::TransferLeader(_) | Request::ReadIndex | Request::Write(_)
                if !self.knows(from) =>
            {
                Reply::Error(format!("node {from} is not a member of this cluster"))
            }
            Request::Ping => Reply::Pong {
                grant_ms: self.grant(from),
            },
            Request::Members(change) => {
                let hears = (&self.clock, self.me, self.lease_ms);
                match crate::node::execute_change(&self.raft, hears, &change).await {
                    Ok(answer) => Reply::Members(Ok(answer)),
                    Err(crate::node::ClusterError::Member(refused)) => Reply::Members(Err(refused)),
                    Err(e) => err(&e),
                }
            }
            Request::TransferLeader(r) => self
                .raft
                .handle_transfer_leader(r)
                .await
                .map_or_else(|e| err(&e), Reply::TransferLeader),
            Request::ReadIndex => Reply::ReadIndex(
                self.raft
                    .get_read_log_id(openraft::ReadPolicy::ReadIndex)
                    .await
                    .map(|(read, _)| read.index())
                    .map_err(|e| e.to_string()),
            ),
            Request::Write(cmd) => match self.raft.client_write(cmd).await {
                Ok(r) => Reply::Written(r.data),
                Err(e) => err(&e),
            },
        }
    }
}

impl Endpoint {
    /// Grants `to` a lease when this node leads and a quorum acknowledged
    /// it recently enough, and records it: for what is left of that
    /// acknowledgement, in whole milliseconds (rounded down, so the asker's
    /// lease ends no later than the one recorded here).
    fn grant(&self, to: NodeId) -> Option<u64> {
        let metrics = self.raft.metrics();
        let since_ack = {
            let m = metrics.borrow_watched();
            if !crate::node::leads(&m, self.me) {
                return None;
            }
            m.last_quorum_acked.map(|t| t.elapsed())
        };
        let lease = Duration::from_millis(self.lease_ms);
        // Just resumed from a suspend: the acknowledgement may be stale.
        if self.suspend.distrusts(Instant::now(), lease) {
            return None;
        }
        let valid = crate::lease::grant_validity(lease, since_ack)?;
        self.grants.record(to, Instant::now() + valid);
        Some(valid.as_millis() as u64)
    }

    /// Whether `id` is in this node's membership. A node that knows no
    /// membership yet (joining, not reached by the DC) answers everyone.
    /// Pings from anyone else go unanswered, so a removed node that did
    /// not learn of its removal hears nobody and stops acting.
    fn knows(&self, id: NodeId) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let membership = m.membership_config.membership();
        membership.nodes().next().is_none() || membership.get_node(&id).is_some()
    }
}

/// Accepts TLS peers until `shutdown` resolves and answers them through
/// `endpoint`.
pub(crate) async fn serve(
    listener: TcpListener,
    endpoint: Endpoint,
    acceptor: TlsAcceptor,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, addr)) => {
                    let (endpoint, acceptor) = (endpoint.clone(), acceptor.clone());
                    tokio::spawn(async move { connection(endpoint, acceptor, tcp, addr).await });
                }
                Err(e) => tracing::warn!("raft listener: accept failed: {e}"),
            },
        }
    }
}

async fn connection(endpoint: Endpoint, acceptor: TlsAcceptor, tcp: TcpStream, addr: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
    let mut tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::warn!(peer = %addr, "refused connection from {addr}: TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::warn!(peer = %addr, "refused connection from {addr}: TLS handshake timed out");
            return;
        }
    };
    let role = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(crate::tls::identity_of)
        .map(|i| i.role);
    if role.as_deref() != Some("node") {
        tracing::warn!(peer = %addr, "refused connection from {addr}: certificate role {role:?} is not a cluster node");
        return;
    }
    while let Ok(frame) = read_frame(&mut tls).await {
        let Ok(reply) = endpoint.answer(&frame).await else {
            return;
        };
        if write_frame(&mut tls, &reply).await.is_err() {
            return;
        }
    }
}
