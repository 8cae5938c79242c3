//! L7 for HTTP/1.x clients: one task per client connection reads each
//! request head into its buffer, rewrites it once into the bytes the
//! backend gets (hop-by-hop fields out, identity fields in), and relays the
//! exchange over a kept-alive backend connection owned by the same task:
//! no per-request allocation of header maps, no second task per backend
//! connection. Bodies are relayed as they come (`h1codec::BodyCursor`
//! finds their end). HTTP/2 clients (TLS with ALPN h2) go to `h2`.
//!
//! Answers of its own: 400 for a malformed head, 431 for an oversized one,
//! 408 for a head not complete within `header_read_ms`, 503 when no backend
//! is eligible, 502 when backends refuse or answer garbage, 504 when a
//! backend does not answer within `idle_ms`. A request whose exchange
//! failed before any answer is retried on another backend when it is
//! idempotent and has no body (RFC 9110 §9.2.2), so a backend that dies
//! costs no request. `Upgrade` (WebSocket) is relayed, and after a 101 the
//! connection becomes a byte pipe.

use crate::h1codec::{
    self, BodyCursor, Framing, FramingError, RequestHead, ResponseHead, MAX_HEADERS,
};
use crate::identity::{Chains, ClientIdentity};
use crate::limits;
use crate::listener::{self, ListenerCtx};
use crate::metrics::ErrorClass;
use crate::persistence;
use crate::pool::{Backend, Hint, Lease};
use crate::upstream;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

/// Serve HTTP/1.x requests from one client connection until it closes.
pub async fn serve_connection<IO>(io: IO, client: SocketAddr, local: SocketAddr, ctx: &ListenerCtx)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut session = Session {
        identity: ClientIdentity::new(
            client,
            if ctx.tls.is_some() { "https" } else { "http" },
            &ctx.trusted,
        ),
        io,
        client,
        local,
        ctx,
        inb: Buf::new(limits::MAX_HEADER_BYTES),
        ub: Buf::new(limits::MAX_HEADER_BYTES),
        out: Vec::with_capacity(1024),
        idle: Duration::from_millis(ctx.cfg.timeouts.idle_ms),
        header_read: Duration::from_millis(ctx.cfg.timeouts.header_read_ms),
    };
    if let Err(e) = session.run().await {
        tracing::debug!(listener = ctx.cfg.name, %client, error = %e, "client connection ended");
    }
}

/// A byte buffer read into at its end and consumed from its front. It
/// starts unallocated and grows from [`BUF_MIN`] to its limit only when a
/// read filled it, so idle keep-alive connections hold a few KiB, not two
/// full buffers.
struct Buf {
    data: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
}

/// How long and how much a closing connection reads and discards.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_MAX_BYTES: usize = 256 * 1024;

/// First allocation of a [`Buf`]: a typical head and a small body.
const BUF_MIN: usize = 4096;

impl Buf {
    fn new(max: usize) -> Self {
        Buf {
            data: Vec::new(),
            start: 0,
            end: 0,
            max,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn consume(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Holding its limit of unread bytes.
    fn is_full(&self) -> bool {
        self.end - self.start == self.max
    }

    /// One read into the free space; `Ok(0)` at EOF (or when full).
    async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> io::Result<usize> {
        if self.end == self.data.len() && self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.data.len() && self.data.len() < self.max {
            let grown = (self.data.len() * 2).clamp(BUF_MIN, self.max);
            self.data.resize(grown, 0);
        }
        let n = r.read(&mut self.data[self.end..]).await?;
        self.end += n;
        Ok(n)
    }
}

/// Why an exchange stopped.
#[derive(Debug)]
enum Stop {
    /// The peer closed or reset.
    Closed,
    /// Nothing arrived in time.
    Timeout,
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Closed => write!(f, "closed by the peer"),
            Stop::Timeout => write!(f, "timed out"),
            Stop::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Read more into `buf` by `deadline`; EOF is [`Stop::Closed`].
async fn fill_by<R: AsyncRead + Unpin>(
    buf: &mut Buf,
    r: &mut R,
    deadline: Instant,
) -> Result<(), Stop> {
    match timeout_at(deadline.into(), buf.fill(r)).await {
        Ok(Ok(0)) => Err(Stop::Closed),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Stop::Io(e)),
        Err(_) => Err(Stop::Timeout),
    }
}

/// Write all of `bytes` and flush within `idle`: a peer that stops
/// reading must not hold an exchange (and its backend lease) forever.
async fn send_all<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
    idle: Duration,
) -> Result<(), Stop> {
    let write = async {
        w.write_all(bytes).await?;
        w.flush().await
    };
    match tokio::time::timeout(idle, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Stop::Io(e)),
        Err(_) => Err(Stop::Timeout),
    }
}

/// What the request head said, kept once its bytes are rewritten.
struct Request {
    hint: Hint,
    framing: Framing,
    keep_alive: bool,
    head_method: bool,
    /// Safe to send again to another backend (idempotent, no body).
    retryable: bool,
    upgrade: bool,
    /// HTTP/1.0 client: gets no chunked coding and no interim responses.
    http10: bool,
}

/// What to answer the client after an exchange with the backends.
enum Exchange {
    /// Relayed; keep serving the client if true.
    Done(bool),
    /// Our own answer, then keep serving the client if true.
    Answer(u16, &'static str, bool),
}

struct Session<'c, IO> {
    io: IO,
    client: SocketAddr,
    local: SocketAddr,
    ctx: &'c ListenerCtx,
    identity: ClientIdentity,
    /// Client bytes not yet relayed.
    inb: Buf,
    /// Backend bytes not yet relayed.
    ub: Buf,
    /// Bytes being prepared for one write.
    out: Vec<u8>,
    /// `idle_ms`: the longest wait for a peer to send or take bytes.
    idle: Duration,
    /// `header_read_ms`: the longest a request head may take.
    header_read: Duration,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Session<'_, IO> {
    async fn run(&mut self) -> Result<(), Stop> {
        let (header_read, idle) = (self.header_read, self.idle);
        let mut first = true;
        loop {
            // A new connection must send its head within `header_read`; a
            // kept-alive one may idle for `idle`, then has `header_read`
            // from its first byte.
            if self.inb.is_empty() {
                let wait = if first { header_read } else { idle };
                match fill_by(&mut self.inb, &mut self.io, Instant::now() + wait).await {
                    Ok(()) => {}
                    Err(Stop::Timeout) if first => {
                        return self
                            .answer(408, "request head not received in time\n", false)
                            .await
                    }
                    // Closing or going quiet between requests is how
                    // keep-alive connections end.
                    Err(Stop::Closed | Stop::Timeout) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            first = false;
            let deadline = Instant::now() + header_read;
            let req = match self.read_head(deadline).await? {
                Ok(req) => req,
                Err((code, text)) => {
                    self.ctx.metrics.bad_requests.inc();
                    return self.answer(code, text, false).await;
                }
            };
            match self.exchange(&req).await? {
                Exchange::Done(true) => {}
                Exchange::Done(false) => return self.close(true).await,
                Exchange::Answer(code, text, keep) => {
                    // A body we did not read cannot be skipped safely.
                    let keep = keep && req.keep_alive && req.framing == Framing::Empty;
                    self.answer(code, text, keep).await?;
                    if !keep {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Parse the request head at the front of `inb` and rewrite it into
    /// `out`. `Ok(Err(..))`: the answer for a bad head.
    async fn read_head(
        &mut self,
        deadline: Instant,
    ) -> Result<Result<Request, (u16, &'static str)>, Stop> {
        loop {
            let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match h1codec::parse_request(self.inb.bytes(), &mut storage) {
                Ok(Some(head)) => {
                    let len = head.len;
                    let req = rewrite_request(
                        &head,
                        self.ctx,
                        &self.identity,
                        self.client,
                        self.local,
                        &mut self.out,
                    );
                    self.inb.consume(len);
                    return Ok(Ok(req));
                }
                Ok(None) if self.inb.is_full() => {
                    return Ok(Err((431, "request head too large\n")))
                }
                Ok(None) => {}
                Err(FramingError::TooManyHeaders) => {
                    return Ok(Err((431, "too many header fields\n")))
                }
                Err(e) => {
                    tracing::debug!(listener = self.ctx.cfg.name, client = %self.client, error = %e, "bad request");
                    return Ok(Err((400, "malformed request\n")));
                }
            }
            match fill_by(&mut self.inb, &mut self.io, deadline).await {
                Ok(()) => {}
                Err(Stop::Timeout) => return Ok(Err((408, "request head not received in time\n"))),
                Err(e) => return Err(e),
            }
        }
    }

    /// Send the request in `out` (and its body) to a backend and relay the
    /// answer.
    async fn exchange(&mut self, req: &Request) -> Result<Exchange, Stop> {
        let ctx = self.ctx;
        let pool = &ctx.pool;
        let connect = Duration::from_millis(ctx.cfg.timeouts.connect_ms);
        let idle = self.idle;
        let mut body = BodyCursor::new(req.framing);
        // The body bytes that came with the head go in the same write.
        let taken = match body.take(self.inb.bytes(), false, &mut self.out) {
            Ok(n) => n,
            Err(e) => return Ok(bad_body(ctx, e)),
        };
        self.inb.consume(taken);
        let mut tries = crate::pool::Tries::default();
        loop {
            let Some(lease) = pool.pick_or_hold(req.hint, &mut tries).await else {
                // Told apart: nothing to try, or what was tried failed and
                // nothing else may be tried.
                return Ok(if tries.attempts() == 0 {
                    Exchange::Answer(503, "no backend available\n", true)
                } else {
                    Exchange::Answer(502, "backend failed and no other is available\n", true)
                });
            };
            let b = lease.backend.clone();
            let mut reuse = true;
            let (class, stop) = loop {
                let Some((mut up, reused)) = self.connection(&b, connect, reuse).await else {
                    break (ErrorClass::Connect, Stop::Closed);
                };
                let started = Instant::now();
                self.ub.consume(usize::MAX);
                let head = match self.send_request(&mut up, &mut body, req.http10).await {
                    Ok(()) => {
                        let reply = Reply {
                            body_sent: body.is_done(),
                            cookie: persistence::set_cookie(
                                &pool.cfg.persistence,
                                req.hint,
                                b.id_hash,
                            ),
                        };
                        let deadline = Instant::now() + idle;
                        self.response_head(&mut up, req, &reply, deadline).await
                    }
                    Err(e) => Err(e),
                };
                match head {
                    Ok(head) => {
                        pool.record_answer(&b, head.code, started.elapsed());
                        return self.relay_response(up, head, lease).await;
                    }
                    Err(Relay::Client(stop)) => return Err(stop),
                    Err(Relay::BadBody(e)) => return Ok(bad_body(ctx, e)),
                    // A kept-alive connection the backend closed meanwhile
                    // (it may, between requests): no fault of the backend,
                    // the request goes again on a fresh connection.
                    Err(Relay::Backend(Stop::Closed | Stop::Io(_)))
                        if reused && req.retryable && self.ub.is_empty() =>
                    {
                        reuse = false;
                    }
                    Err(Relay::Backend(Stop::Timeout)) => {
                        break (ErrorClass::Timeout, Stop::Timeout)
                    }
                    Err(Relay::Backend(stop)) => break (ErrorClass::Protocol, stop),
                }
            };
            pool.record_failure(&b, class);
            tracing::debug!(backend = b.name, error = %stop, ?class, "backend exchange failed");
            let more = tries.failed_on(b.id_hash) < limits::MAX_CONNECT_ATTEMPTS;
            match class {
                ErrorClass::Timeout => {
                    return Ok(Exchange::Answer(504, "backend timed out\n", false))
                }
                // Nothing was sent: any request may go elsewhere.
                ErrorClass::Connect if more => {}
                ErrorClass::Connect => {
                    return Ok(Exchange::Answer(502, "backend unreachable\n", true))
                }
                _ if more && req.retryable => {}
                _ => return Ok(Exchange::Answer(502, "backend failed\n", false)),
            }
        }
    }

    /// An idle kept-alive connection to `b` (when `reuse`), or a new one;
    /// and whether it was reused.
    async fn connection(
        &self,
        b: &Backend,
        connect: Duration,
        reuse: bool,
    ) -> Option<(TcpStream, bool)> {
        while let Some(s) = reuse.then(|| b.conns.pop()).flatten() {
            // Between messages a backend sends nothing: readable means it
            // closed (or broke the protocol). Tokio knows without a syscall
            // when nothing arrived since the last read.
            match s.try_read(&mut [0u8; 1]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some((s, true)),
                _ => continue,
            }
        }
        Some((upstream::dial(b.addr, connect).await?, false))
    }

    /// Write the head in `out` and the request body to the backend. While
    /// the body flows, the backend may answer early or send interim
    /// responses (100 Continue), which go to the client at once.
    async fn send_request(
        &mut self,
        up: &mut TcpStream,
        body: &mut BodyCursor,
        http10: bool,
    ) -> Result<(), Relay> {
        send_all(up, &self.out, self.idle)
            .await
            .map_err(Relay::Backend)?;
        let mut chunk = Vec::new();
        while !body.is_done() {
            let deadline = Instant::now() + self.idle.max(self.header_read);
            tokio::select! {
                filled = self.ub.fill(up) => {
                    // The backend spoke before the body was complete: an
                    // early final answer ends the upload (the client
                    // connection then closes), an interim one is relayed.
                    match filled {
                        Ok(0) => return Err(Relay::Backend(Stop::Closed)),
                        Ok(_) => {}
                        Err(e) => return Err(Relay::Backend(Stop::Io(e))),
                    }
                    if !self.relay_interim(http10).await? {
                        return Ok(());
                    }
                }
                filled = fill_by(&mut self.inb, &mut self.io, deadline) => {
                    filled.map_err(Relay::Client)?;
                    chunk.clear();
                    let n = body
                        .take(self.inb.bytes(), false, &mut chunk)
                        .map_err(Relay::BadBody)?;
                    self.inb.consume(n);
                    send_all(up, &chunk, self.idle).await.map_err(Relay::Backend)?;
                }
            }
        }
        Ok(())
    }

    /// Relay complete interim (1xx) responses at the front of `ub` to the
    /// client. False once a final response head is there (or only part of
    /// one).
    async fn relay_interim(&mut self, http10: bool) -> Result<bool, Relay> {
        loop {
            let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let len = match h1codec::parse_response(self.ub.bytes(), &mut storage, false) {
                Ok(Some(h)) if h.is_interim() => h.len,
                Ok(Some(_)) => return Ok(false),
                Ok(None) => return Ok(!self.ub.is_full()),
                Err(e) => return Err(Relay::backend(invalid(e))),
            };
            // HTTP/1.0 clients know no interim responses (RFC 9110 §15.2).
            if !http10 {
                send_all(&mut self.io, &self.ub.bytes()[..len], self.idle)
                    .await
                    .map_err(Relay::Client)?;
            }
            self.ub.consume(len);
        }
    }

    /// Wait for the final response head (relaying interim ones) and write
    /// the head the client gets into `out`.
    async fn response_head(
        &mut self,
        up: &mut TcpStream,
        req: &Request,
        reply: &Reply,
        deadline: Instant,
    ) -> Result<ParsedResponse, Relay> {
        loop {
            let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match h1codec::parse_response(self.ub.bytes(), &mut storage, req.head_method) {
                Ok(Some(h)) if h.is_interim() => {
                    let len = h.len;
                    if !req.http10 {
                        send_all(&mut self.io, &self.ub.bytes()[..len], self.idle)
                            .await
                            .map_err(Relay::Client)?;
                    }
                    self.ub.consume(len);
                    continue;
                }
                Ok(Some(h)) => {
                    let parsed = ParsedResponse::new(&h, req, reply);
                    self.out.clear();
                    write_response_head(&mut self.out, &h, &parsed, req.http10);
                    if let Some(c) = &reply.cookie {
                        write_field(&mut self.out, b"set-cookie", c.as_bytes());
                    }
                    self.out.extend_from_slice(b"\r\n");
                    self.ub.consume(parsed.len);
                    return Ok(parsed);
                }
                Ok(None) if self.ub.is_full() => {
                    return Err(Relay::backend(invalid("response head too large")))
                }
                Ok(None) => {}
                Err(e) => return Err(Relay::backend(invalid(e))),
            }
            fill_by(&mut self.ub, up, deadline)
                .await
                .map_err(Relay::Backend)?;
        }
    }

    /// Relay the response body after the head in `out`; the backend
    /// connection goes back to the idle list when the exchange ended
    /// cleanly.
    async fn relay_response(
        &mut self,
        mut up: TcpStream,
        head: ParsedResponse,
        lease: Lease,
    ) -> Result<Exchange, Stop> {
        if head.upgraded {
            self.write_out().await?;
            return self.pipe(up, lease).await;
        }
        let pool = &self.ctx.pool;
        let idle = self.idle;
        let mut body = BodyCursor::new(head.framing);
        loop {
            let n = body
                .take(self.ub.bytes(), head.dechunk, &mut self.out)
                .map_err(invalid)?;
            self.ub.consume(n);
            self.write_out().await?;
            if body.is_done() {
                break;
            }
            match fill_by(&mut self.ub, &mut up, Instant::now() + idle).await {
                Ok(()) => {}
                Err(Stop::Closed) if body.close() => break,
                Err(e) => {
                    pool.record_failure(&lease.backend, ErrorClass::Protocol);
                    return Err(e);
                }
            }
        }
        if head.reusable && self.ub.is_empty() {
            lease.backend.conns.put(up);
        }
        drop(lease);
        Ok(Exchange::Done(head.keep_client))
    }

    /// After a 101: bytes both ways until either side closes.
    async fn pipe(&mut self, mut up: TcpStream, lease: Lease) -> Result<Exchange, Stop> {
        // Bytes that came after the heads belong to the new protocol.
        if !self.inb.is_empty() {
            send_all(&mut up, self.inb.bytes(), self.idle).await?;
            self.inb.consume(usize::MAX);
        }
        if !self.ub.is_empty() {
            send_all(&mut self.io, self.ub.bytes(), self.idle).await?;
            self.ub.consume(usize::MAX);
        }
        listener::pipe(&mut self.io, &mut up, self.idle, self.ctx.clock).await;
        drop(lease);
        Ok(Exchange::Done(false))
    }

    async fn write_out(&mut self) -> Result<(), Stop> {
        if !self.out.is_empty() {
            send_all(&mut self.io, &self.out, self.idle).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// One of our own answers; the connection closes after it unless `keep`.
    async fn answer(&mut self, code: u16, text: &str, keep: bool) -> Result<(), Stop> {
        self.out.clear();
        let reason = match code {
            400 => "Bad Request",
            408 => "Request Timeout",
            431 => "Request Header Fields Too Large",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            _ => "Error",
        };
        let connection = if keep { "keep-alive" } else { "close" };
        self.out.extend_from_slice(
            format!(
                "HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: {connection}\r\n\r\n{text}",
                text.len()
            )
            .as_bytes(),
        );
        self.write_out().await?;
        if !keep {
            // A client too slow to send its head gets no more time.
            self.close(code != 408).await?;
        }
        Ok(())
    }

    /// Close after the last answer: end our side, then (with `linger`) read
    /// and discard what the client still sends for a moment, so that
    /// closing with unread bytes (an RST) cannot destroy the answer before
    /// the client read it (RFC 9112 §9.6). Bounded in time and bytes.
    async fn close(&mut self, linger: bool) -> Result<(), Stop> {
        let linger = async {
            self.io.shutdown().await?;
            if !linger {
                return Ok(());
            }
            let mut sink = [0u8; 4096];
            let mut left = LINGER_MAX_BYTES;
            while left > 0 {
                match self.io.read(&mut sink).await? {
                    0 => break,
                    n => left = left.saturating_sub(n),
                }
            }
            Ok::<(), io::Error>(())
        };
        match tokio::time::timeout(LINGER, linger).await {
            Ok(r) => r.map_err(Stop::Io),
            Err(_) => Ok(()),
        }
    }
}

/// The head the backend gets, into `out`: origin-form target, HTTP/1.1,
/// no hop-by-hop fields, identity fields rewritten, our own framing.
fn rewrite_request(
    head: &RequestHead<'_, '_>,
    ctx: &ListenerCtx,
    identity: &ClientIdentity,
    client: SocketAddr,
    local: SocketAddr,
    out: &mut Vec<u8>,
) -> Request {
    let pool = &ctx.pool;
    let fields = head.headers.iter().map(|h| (h.name, h.value));
    let hint = persistence::placement(&pool.cfg, fields, client.ip());
    let (target, authority) = origin_form(head.target);
    out.clear();
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    if target.starts_with('?') {
        out.push(b'/');
    }
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let listed = h1codec::connection_listed(head.headers.iter().map(|h| (h.name, h.value)));
    let mut chains = Chains::default();
    for h in head.headers {
        if !relayed_field(h.name, &listed, |name| {
            // Transfer codings pass as sent (the body is relayed as is).
            (head.upgrade && name.eq_ignore_ascii_case("upgrade"))
                || (head.framing == Framing::Chunked
                    && name.eq_ignore_ascii_case("transfer-encoding"))
        }) || (authority.is_some() && h.name.eq_ignore_ascii_case("host"))
            || !identity.keep(h.name, h.value, &mut chains)
        {
            continue;
        }
        write_field(out, h.name.as_bytes(), h.value);
    }
    if let Some(n) = head.content_length {
        write_length(out, n);
    }
    match authority {
        // An absolute-form target names the host; a Host field cannot
        // contradict it (RFC 9112 §3.2.2).
        Some(a) => write_field(out, b"host", a.as_bytes()),
        // HTTP/1.0 clients may omit it; name what they connected to.
        None if !head.has_host => write_field(out, b"host", local.to_string().as_bytes()),
        None => {}
    }
    identity.write_fields(&chains, out);
    if head.upgrade {
        out.extend_from_slice(b"connection: upgrade\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let idempotent = matches!(
        head.method,
        "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
    );
    Request {
        hint,
        framing: head.framing,
        keep_alive: head.keep_alive,
        head_method: head.method == "HEAD",
        retryable: idempotent && head.framing == Framing::Empty && !head.upgrade,
        upgrade: head.upgrade,
        http10: head.minor == 0,
    }
}

/// The answer to a request whose body broke its framing.
fn bad_body(ctx: &ListenerCtx, e: FramingError) -> Exchange {
    ctx.metrics.bad_requests.inc();
    tracing::debug!(listener = ctx.cfg.name, error = %e, "bad request body");
    Exchange::Answer(400, "malformed request body\n", false)
}

/// Which side of an exchange failed.
enum Relay {
    Client(Stop),
    Backend(Stop),
    /// The client's body broke its framing (a 400 for the client).
    BadBody(FramingError),
}

impl Relay {
    fn backend(e: io::Error) -> Self {
        Relay::Backend(Stop::Io(e))
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// What the client's answer depends on besides the response head.
struct Reply {
    /// The whole request body reached the backend.
    body_sent: bool,
    /// Persistence cookie to add.
    cookie: Option<hyper::header::HeaderValue>,
}

/// How a final response is relayed, decided from its head.
struct ParsedResponse {
    code: u16,
    len: usize,
    framing: Framing,
    /// The backend connection can serve another request afterwards.
    reusable: bool,
    /// 101 to an upgrade request: the connection becomes a byte pipe.
    upgraded: bool,
    /// An HTTP/1.0 client cannot read chunked: it gets the data and a close.
    dechunk: bool,
    keep_client: bool,
}

impl ParsedResponse {
    fn new(h: &ResponseHead<'_, '_>, req: &Request, reply: &Reply) -> Self {
        let upgraded = h.code == 101 && req.upgrade;
        let dechunk = req.http10 && h.framing == Framing::Chunked;
        ParsedResponse {
            code: h.code,
            len: h.len,
            framing: h.framing,
            reusable: h.reusable && reply.body_sent && !upgraded,
            upgraded,
            dechunk,
            keep_client: req.keep_alive
                && reply.body_sent
                && !upgraded
                && !dechunk
                && h.framing != Framing::UntilClose,
        }
    }
}

/// The response head the client gets (without the final CRLF).
fn write_response_head(
    out: &mut Vec<u8>,
    h: &ResponseHead<'_, '_>,
    p: &ParsedResponse,
    http10: bool,
) {
    out.extend_from_slice(if http10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
    out.extend_from_slice(itoa3(h.code).as_slice());
    out.push(b' ');
    out.extend_from_slice(h.reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let listed = h1codec::connection_listed(h.headers.iter().map(|f| (f.name, f.value)));
    for f in h.headers {
        if relayed_field(f.name, &listed, |name| {
            (p.upgraded && name.eq_ignore_ascii_case("upgrade"))
                // Codings pass as sent, unless the chunked one is removed
                // for an HTTP/1.0 client (which knows no codings).
                || (!http10 && !p.dechunk && name.eq_ignore_ascii_case("transfer-encoding"))
        }) {
            write_field(out, f.name.as_bytes(), f.value);
        }
    }
    if let Some(n) = h.content_length {
        write_length(out, n);
    }
    out.extend_from_slice(match (p.upgraded, p.keep_client, http10) {
        (true, _, _) => b"connection: upgrade\r\n".as_slice(),
        (false, false, _) => b"connection: close\r\n",
        (false, true, true) => b"connection: keep-alive\r\n",
        (false, true, false) => b"",
    });
}

/// A status code's three digits (httparse guarantees 100..=999).
fn itoa3(code: u16) -> [u8; 3] {
    let c = code.min(999);
    [
        b'0' + (c / 100) as u8,
        b'0' + (c / 10 % 10) as u8,
        b'0' + (c % 10) as u8,
    ]
}

/// Whether a field of a head passes to the next hop as it is: not when it
/// describes this hop (hop-by-hop, or listed in Connection) unless `keep`
/// says the relay passes it on, and never Content-Length, which the relay
/// writes itself from the one length it judged.
fn relayed_field(name: &str, listed: &[&[u8]], keep: impl Fn(&str) -> bool) -> bool {
    if name.eq_ignore_ascii_case("content-length") {
        return false;
    }
    let hop = h1codec::hop_by_hop_index(name).is_some()
        || listed
            .iter()
            .any(|l| l.eq_ignore_ascii_case(name.as_bytes()));
    !hop || keep(name)
}

fn write_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"content-length: ");
    // Decimal digits without a String per message.
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut rest = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `/path?query` of a request target, and the authority of an
/// absolute-form one (proxy-style requests carry a full URI).
fn origin_form(target: &str) -> (&str, Option<&str>) {
    let rest = match target.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            rest
        }
        _ => return (target, None),
    };
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[i..], Some(&rest[..i])),
        // `http://host?q` has the empty path: "/" with the query.
        Some(i) => (&rest[i..], Some(&rest[..i])),
        None => ("/", Some(rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_written_in_decimal() {
        for n in [0, 7, 10, 4096, u64::MAX] {
            let mut out = Vec::new();
            write_length(&mut out, n);
            assert_eq!(out, format!("content-length: {n}\r\n").as_bytes());
        }
    }

    #[test]
    fn targets_become_origin_form() {
        assert_eq!(origin_form("/a?b"), ("/a?b", None));
        assert_eq!(origin_form("http://h:8/p?q"), ("/p?q", Some("h:8")));
        assert_eq!(origin_form("HTTPS://h"), ("/", Some("h")));
        assert_eq!(origin_form("http://h?q"), ("?q", Some("h")));
        assert_eq!(origin_form("*"), ("*", None));
    }
}
