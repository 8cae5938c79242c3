//! Listeners: the accept loop (connection limit, PROXY header on receive,
//! TLS handshake, all under the header-read timeout so a slow or garbage
//! client only ever costs its own connection), then either the L4 byte pipe
//! (`relay` threads for plain TCP, the async `pipe` here under TLS) or L7:
//! `h1` for HTTP/1.x clients, `h2` for HTTP/2 ones. Main types: [`ListenerCtx`],
//! [`serve`].

use crate::config::{ListenerConfig, Mode};
use crate::identity::TrustedProxies;
use crate::metrics::{ErrorClass, Metrics};
use crate::persistence;
use crate::pool::{Lease, Pool};
use crate::proxy_protocol;
use crate::relay::{Pair, Relays};
use crate::tls::TlsTerminator;
use crate::upstream;
use crate::{h1, h2};
use crate::{limits, Clock};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// Everything a connection on one listener needs.
pub struct ListenerCtx {
    pub cfg: ListenerConfig,
    pub pool: Arc<Pool>,
    pub trusted: TrustedProxies,
    pub tls: Option<Arc<TlsTerminator>>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    /// Permits = `max_connections`; a connection beyond it is closed at once.
    pub limit: Arc<Semaphore>,
    /// Relay threads for plain-TCP L4 connections (`None`: no such listener).
    pub relays: Option<Arc<Relays>>,
}

/// Accept until shutdown; each connection runs in its own task.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<ListenerCtx>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(listener = ctx.cfg.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = ctx.limit.clone().try_acquire_owned() else {
            ctx.metrics.rejected_connections.inc();
            tracing::debug!(listener = ctx.cfg.name, %peer, "connection limit reached; closed");
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move { connection(stream, peer, &ctx, permit).await });
    }
}

/// Serve one accepted connection; `permit` (its slot under
/// `max_connections`) is held until it ends.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: &ListenerCtx,
    permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(peer);
    let header_timeout = Duration::from_millis(ctx.cfg.timeouts.header_read_ms);
    let mut client = peer;
    if ctx.cfg.accept_proxy {
        match tokio::time::timeout(header_timeout, proxy_protocol::read_header(&mut stream)).await {
            Ok(Ok(declared)) => client = declared.unwrap_or(peer),
            Ok(Err(e)) => {
                ctx.metrics.bad_requests.inc();
                tracing::warn!(listener = ctx.cfg.name, %peer, error = %e, "bad PROXY header; connection closed");
                return;
            }
            Err(_) => {
                ctx.metrics.bad_requests.inc();
                tracing::warn!(listener = ctx.cfg.name, %peer, "no PROXY header in time; connection closed");
                return;
            }
        }
    }
    match (&ctx.tls, &ctx.relays) {
        (None, Some(relays)) if ctx.cfg.mode == Mode::Tcp => {
            relay_tcp(stream, client, local, ctx, relays, permit).await
        }
        (None, _) => dispatch(stream, client, local, false, ctx).await,
        (Some(tls), _) => {
            let handshake = tls.acceptor().accept(stream);
            match tokio::time::timeout(header_timeout, handshake).await {
                Ok(Ok(tls_stream)) => {
                    let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    dispatch(tls_stream, client, local, h2, ctx).await
                }
                Ok(Err(e)) => {
                    ctx.metrics.bad_requests.inc();
                    tracing::debug!(listener = ctx.cfg.name, %peer, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    ctx.metrics.bad_requests.inc();
                    tracing::debug!(listener = ctx.cfg.name, %peer, "TLS handshake timed out");
                }
            }
        }
    }
}

async fn dispatch<IO>(io: IO, client: SocketAddr, local: SocketAddr, h2: bool, ctx: &ListenerCtx)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match ctx.cfg.mode {
        Mode::Tcp => proxy_tcp(io, client, local, ctx).await,
        Mode::Http if h2 => h2::serve_connection(io, client, ctx).await,
        Mode::Http => h1::serve_connection(io, client, local, ctx).await,
    }
}

/// L4 over TLS: one backend for the whole connection, bytes copied both
/// ways by this task until either side closes or nothing moves for
/// `idle_ms`.
async fn proxy_tcp<IO>(mut downstream: IO, client: SocketAddr, local: SocketAddr, ctx: &ListenerCtx)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let Some((lease, mut upstream)) = open_backend(client, local, ctx).await else {
        return;
    };
    let started = Instant::now();
    let idle = Duration::from_millis(ctx.cfg.timeouts.idle_ms);
    pipe(&mut downstream, &mut upstream, idle, ctx.clock).await;
    lease
        .backend
        .metrics
        .latency
        .observe(started.elapsed().as_secs_f64());
}

/// L4 over plain TCP: one backend for the whole connection, the bytes
/// moved by a relay thread (`relay`), which also holds the connection's
/// lease and permit until it ends.
async fn relay_tcp(
    downstream: TcpStream,
    client: SocketAddr,
    local: SocketAddr,
    ctx: &ListenerCtx,
    relays: &Relays,
    permit: OwnedSemaphorePermit,
) {
    let Some((lease, upstream)) = open_backend(client, local, ctx).await else {
        return;
    };
    // Off this runtime's reactor, still non-blocking: the relay's own.
    match (downstream.into_std(), upstream.into_std()) {
        (Ok(client), Ok(backend)) => relays.submit(Pair {
            client,
            backend,
            idle: Duration::from_millis(ctx.cfg.timeouts.idle_ms),
            lease,
            permit: Some(permit),
        }),
        (Err(e), _) | (_, Err(e)) => {
            tracing::debug!(listener = ctx.cfg.name, %client, error = %e, "could not hand the connection to a relay; closed");
        }
    }
}

/// L4: pick a backend and connect to it (another one when it refuses), and
/// send it the PROXY header when the pool asks for one.
async fn open_backend(
    client: SocketAddr,
    local: SocketAddr,
    ctx: &ListenerCtx,
) -> Option<(Lease, TcpStream)> {
    let pool = &ctx.pool;
    let hint = persistence::placement(&pool.cfg, [], client.ip());
    let connect_timeout = Duration::from_millis(ctx.cfg.timeouts.connect_ms);
    let mut tries = crate::pool::Tries::default();
    let (lease, mut conn) = loop {
        let Some(lease) = pool.pick_or_hold(hint, &mut tries).await else {
            tracing::warn!(listener = ctx.cfg.name, pool = pool.name(), %client, "no backend available; connection closed");
            return None;
        };
        let b = &lease.backend;
        match upstream::dial(b.addr, connect_timeout).await {
            Some(s) => break (lease, s),
            None => {
                pool.record_failure(b, ErrorClass::Connect);
                if tries.failed_on(b.id_hash) >= limits::MAX_CONNECT_ATTEMPTS {
                    tracing::warn!(listener = ctx.cfg.name, %client, "backends refused; connection closed");
                    return None;
                }
            }
        }
    };
    if let Some(v) = pool.cfg.send_proxy {
        let header = proxy_protocol::encode(v, client, local);
        if conn.write_all(&header).await.is_err() {
            pool.record_failure(&lease.backend, ErrorClass::Protocol);
            return None;
        }
    }
    lease
        .backend
        .record_success(ctx.clock.now_ms(), &pool.cfg.outlier);
    Some((lease, conn))
}

/// Copy both ways until EOF/error on either side or about `idle` without
/// a byte (closed between `idle` and `idle` + a quarter of it).
pub(crate) async fn pipe<A, B>(a: &mut A, b: &mut B, idle: Duration, clock: Clock)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    // Reads of either direction pass through `a`'s read or write; a flag,
    // not a clock read, marks that bytes moved (the clock is read only when
    // the idle timer fires).
    let moved = AtomicBool::new(false);
    let mut a = Marked {
        inner: a,
        moved: &moved,
    };
    let mut copy = pin!(tokio::io::copy_bidirectional_with_sizes(
        &mut a,
        b,
        limits::L4_BUFFER_BYTES,
        limits::L4_BUFFER_BYTES,
    ));
    let idle_ms = idle.as_millis() as u64;
    let tick = Duration::from_millis((idle_ms / 4).max(1));
    let mut timer = pin!(tokio::time::sleep(tick));
    let mut armed = false;
    let mut last_ms = clock.now_ms();
    std::future::poll_fn(|cx| {
        if copy.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        // The timer wakes this task when it fires: it is polled to arm it
        // and once it fired, not on every wake-up for bytes (that poll and
        // a clock read per transfer were a tenth of the L4 path).
        loop {
            if armed && !timer.is_elapsed() {
                break;
            }
            // Out of coop budget, Sleep returns Pending without registering
            // (and wakes the task): arm it on the next poll then.
            let budget = tokio::task::coop::has_budget_remaining();
            if timer.as_mut().poll(cx).is_pending() {
                armed = budget;
                break;
            }
            let now = clock.now_ms();
            if moved.load(Ordering::Relaxed) {
                moved.store(false, Ordering::Relaxed);
                last_ms = now;
            } else if now.saturating_sub(last_ms) >= idle_ms {
                return Poll::Ready(());
            }
            timer.as_mut().reset(tokio::time::Instant::now() + tick);
            armed = false;
        }
        Poll::Pending
    })
    .await
}

/// Marks that bytes moved through it (reads of either direction pass
/// through the downstream side's read or write).
struct Marked<'a, T> {
    inner: T,
    moved: &'a AtomicBool,
}

impl<T: AsyncRead + Unpin> AsyncRead for Marked<'_, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.moved.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Marked<'_, T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved.store(true, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn l4_pipe_stays_open_while_bytes_move_and_closes_when_idle() {
        let (mut client, mut a) = tokio::io::duplex(64);
        let (mut b, mut server) = tokio::io::duplex(64);
        let idle = Duration::from_millis(400);
        let piped = tokio::spawn(async move { pipe(&mut a, &mut b, idle, Clock::new()).await });
        // Traffic for well over `idle`, a byte every 50 ms.
        for _ in 0..16 {
            client.write_all(b"x").await.unwrap();
            let mut byte = [0u8; 1];
            server.read_exact(&mut byte).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!piped.is_finished(), "closed while bytes were moving");
        tokio::time::timeout(Duration::from_secs(10), piped)
            .await
            .expect("idle pipe closed")
            .unwrap();
    }
}
