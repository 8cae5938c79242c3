//! Keep-alive HTTP/1.1 connections to one backend: a small stack of idle
//! connections per backend ([`Idle`]: raw streams for `h1`, hyper senders
//! for `h2`), reused newest first, put back only when a response body was
//! read to its end (so a reused connection is always between messages),
//! closed once idle too long. For `h2`, a stale idle sender hands the
//! request back unsent and the next one is tried ([`send`]). Lighter than a
//! general-purpose client pool: no host map, no hashing, no connector
//! service.

use crate::h2::ProxyBody;
use crate::limits;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

pub type Sender = SendRequest<ProxyBody>;

/// Idle connections to one backend, newest on top: HTTP/1 streams (`h1`)
/// or hyper senders (`h2`). Connections idle longer than
/// [`limits::BACKEND_CONN_IDLE_MS`] are closed, not reused.
pub struct Idle<C>(Mutex<VecDeque<(C, Instant)>>);

impl<C> Default for Idle<C> {
    fn default() -> Self {
        Idle(Mutex::new(VecDeque::new()))
    }
}

const MAX_IDLE: Duration = Duration::from_millis(limits::BACKEND_CONN_IDLE_MS);

impl<C> Idle<C> {
    /// The most recently used connection that has not idled too long.
    pub fn pop(&self) -> Option<C> {
        let mut idle = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (c, since) = idle.pop_back()?;
        if since.elapsed() < MAX_IDLE {
            return Some(c);
        }
        // The newest is too old: so are all the others.
        idle.clear();
        None
    }

    /// Return a connection that finished its exchange; the ones idle too
    /// long are closed on the way.
    pub fn put(&self, c: C) {
        let now = Instant::now();
        let mut idle = self.0.lock().unwrap_or_else(|e| e.into_inner());
        while idle
            .front()
            .is_some_and(|(_, since)| now.duration_since(*since) >= MAX_IDLE)
        {
            idle.pop_front();
        }
        if idle.len() < limits::BACKEND_POOL_IDLE_PER_HOST {
            idle.push_back((c, now));
        }
    }
}

/// Why an exchange failed; `Connect` and unsent requests are safe to retry.
pub enum Failure {
    /// No connection could be made; the request comes back unsent.
    Connect(Box<Request<ProxyBody>>),
    /// Sent (or partly sent) and then failed; the request is gone.
    Exchange(hyper::Error),
}

/// Send `req` over an idle connection or a new one.
pub async fn send(
    idle: &Idle<Sender>,
    addr: SocketAddr,
    connect_timeout: Duration,
    mut req: Request<ProxyBody>,
) -> Result<(Response<Incoming>, Sender), Failure> {
    while let Some(mut s) = idle.pop() {
        if s.is_closed() || s.ready().await.is_err() {
            continue;
        }
        match s.try_send_request(req).await {
            Ok(resp) => return Ok((resp, s)),
            Err(mut e) => match e.take_message() {
                Some(unsent) => req = unsent, // closed while idle: try the next
                None => return Err(Failure::Exchange(e.into_error())),
            },
        }
    }
    let mut s = match connect(addr, connect_timeout).await {
        Some(s) => s,
        None => return Err(Failure::Connect(Box::new(req))),
    };
    match s.try_send_request(req).await {
        Ok(resp) => Ok((resp, s)),
        Err(mut e) => match e.take_message() {
            Some(unsent) => Err(Failure::Connect(Box::new(unsent))),
            None => Err(Failure::Exchange(e.into_error())),
        },
    }
}

/// A new connection to a backend within `timeout`, Nagle off (requests and
/// answers are small and complete: nothing gains from waiting). `None` when
/// it refused or did not answer in time.
pub async fn dial(addr: SocketAddr, timeout: Duration) -> Option<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let _ = stream.set_nodelay(true);
    Some(stream)
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Option<Sender> {
    let stream = dial(addr, timeout).await?;
    let (s, conn) = http1::Builder::new()
        // Small heads and bodies: one flattened write beats writev.
        .writev(false)
        .handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(s)
}
