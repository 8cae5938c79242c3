//! L7 for HTTP/2 clients (TLS with ALPN h2): hyper serves the client
//! connection and each request is forwarded over a keep-alive HTTP/1.1
//! connection to the backend (`upstream`). HTTP/1.x clients go to `h1`,
//! which relays raw bytes; the rules (hop-by-hop fields, identity,
//! persistence, retries) are the same. Connect failures are retried on
//! another backend when the request has no body (nothing was sent), and so
//! are idempotent bodiless requests whose backend died before answering.

use crate::h1codec;
use crate::identity;
use crate::limits;
use crate::listener::ListenerCtx;
use crate::metrics::ErrorClass;
use crate::persistence;
use crate::pool::Lease;
use crate::upstream::{self, Failure, Sender};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, HOST, SET_COOKIE};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};

pub type ProxyBody = BoxBody<Bytes, hyper::Error>;
pub async fn serve_connection<IO>(io: IO, client: SocketAddr, ctx: &ListenerCtx)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = Arc::new(Shared {
        pool: ctx.pool.clone(),
        identity: identity::ClientIdentity::new(
            client,
            if ctx.tls.is_some() { "https" } else { "http" },
            &ctx.trusted,
        ),
        connect: Duration::from_millis(ctx.cfg.timeouts.connect_ms),
        idle: Duration::from_millis(ctx.cfg.timeouts.idle_ms),
        client_addr: client,
    });
    let svc = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(shared.forward(req).await) }
    });
    let result = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(io), svc)
        .await;
    if let Err(e) = result {
        tracing::debug!(listener = ctx.cfg.name, %client, error = %e, "client connection ended with an error");
    }
}

struct Shared {
    pool: Arc<crate::pool::Pool>,
    identity: identity::ClientIdentity,
    connect: Duration,
    idle: Duration,
    client_addr: SocketAddr,
}

impl Shared {
    async fn forward(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        let pool = &self.pool;
        let hint = persistence::placement(
            &pool.cfg,
            persistence::map_fields(req.headers()),
            self.client_addr.ip(),
        );
        let (parts, body) = req.into_parts();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        if !headers.contains_key(HOST) {
            if let Some(v) = parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            {
                headers.insert(HOST, v);
            }
        }
        self.identity.apply(&mut headers);
        let target = origin_form(&parts.uri);
        // Nothing to resend and safe to repeat (RFC 9110 §9.2.2): a failed
        // exchange may be retried on another backend.
        let retryable = body.is_end_stream() && parts.method.is_idempotent();
        let mut next = Some(body.boxed());
        let mut tries = crate::pool::Tries::default();
        loop {
            let Some(lease) = pool.pick_or_hold(hint, &mut tries).await else {
                // Told apart: nothing to try, or what was tried failed and
                // nothing else may be tried.
                return if tries.attempts() == 0 {
                    plain(StatusCode::SERVICE_UNAVAILABLE, "no backend available\n")
                } else {
                    plain(
                        StatusCode::BAD_GATEWAY,
                        "backend failed and no other is available\n",
                    )
                };
            };
            let b = lease.backend.clone();
            let last_try = !retryable || tries.attempts() + 1 >= limits::MAX_CONNECT_ATTEMPTS;
            let mut up = Request::new(next.take().unwrap_or_else(empty));
            *up.method_mut() = parts.method.clone();
            *up.uri_mut() = target.clone();
            *up.version_mut() = Version::HTTP_11;
            *up.headers_mut() = if last_try {
                std::mem::take(&mut headers)
            } else {
                headers.clone()
            };
            if !up.headers().contains_key(HOST) {
                if let Ok(v) = HeaderValue::from_str(&b.addr.to_string()) {
                    up.headers_mut().insert(HOST, v);
                }
            }
            let started = Instant::now();
            let sent = upstream::send(&b.upstream, b.addr, self.connect, up);
            match tokio::time::timeout(self.idle, sent).await {
                Ok(Ok((resp, sender))) => {
                    pool.record_answer(&b, resp.status().as_u16(), started.elapsed());
                    let cookie = persistence::set_cookie(&pool.cfg.persistence, hint, b.id_hash);
                    return respond(resp, lease, sender, cookie);
                }
                Ok(Err(Failure::Connect(unsent))) => {
                    pool.record_failure(&b, ErrorClass::Connect);
                    if tries.failed_on(b.id_hash) >= limits::MAX_CONNECT_ATTEMPTS {
                        return plain(StatusCode::BAD_GATEWAY, "backend unreachable\n");
                    }
                    // Never sent: the same request (and body) goes to the next pick.
                    let (p, body) = (*unsent).into_parts();
                    headers = p.headers;
                    next = Some(body);
                }
                Ok(Err(Failure::Exchange(e))) => {
                    pool.record_failure(&b, ErrorClass::Protocol);
                    tracing::debug!(backend = b.name, error = %e, "backend exchange failed");
                    tries.failed_on(b.id_hash);
                    if last_try {
                        return plain(StatusCode::BAD_GATEWAY, "backend failed\n");
                    }
                }
                Err(_) => {
                    pool.record_failure(&b, ErrorClass::Timeout);
                    return plain(StatusCode::GATEWAY_TIMEOUT, "backend timed out\n");
                }
            }
        }
    }
}

/// `/path?query` of a request target in any form (HTTP/2 and proxy-style
/// requests carry an absolute URI).
fn origin_form(uri: &Uri) -> Uri {
    match uri.path_and_query() {
        Some(_) if uri.scheme().is_none() && uri.authority().is_none() => uri.clone(),
        Some(pq) => Uri::from(pq.clone()),
        None => Uri::from_static("/"),
    }
}

fn respond(
    resp: Response<Incoming>,
    lease: Lease,
    sender: Sender,
    cookie: Option<HeaderValue>,
) -> Response<ProxyBody> {
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if let Some(c) = cookie {
        parts.headers.append(SET_COOKIE, c);
    }
    // The lease (active count, which drain waits on) lives until the body is sent.
    let body = LeasedBody {
        inner: body,
        sender: Some(sender),
        lease,
    };
    Response::from_parts(parts, body.boxed())
}

/// Remove the hop-by-hop headers and those the Connection header lists.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    // One pass over the few names present, then removals of only those
    // found: most messages carry none or only `Connection`, and seven
    // hashed removals per message were a visible share of the L7 path.
    let found = h
        .keys()
        .filter_map(|name| h1codec::hop_by_hop_index(name.as_str()))
        .fold(0u8, |found, i| found | 1 << i);
    if found == 0 {
        return;
    }
    let listed: Vec<HeaderName> = h1codec::connection_listed(persistence::map_fields(h))
        .into_iter()
        .filter_map(|n| HeaderName::from_bytes(n).ok())
        .collect();
    for name in listed {
        h.remove(name);
    }
    for (i, name) in h1codec::HOP_BY_HOP.iter().enumerate() {
        if found & (1 << i) != 0 {
            h.remove(*name);
        }
    }
}

fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

fn plain(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    r
}

/// A backend response body that keeps the backend's lease until it is
/// done, then returns its connection to the backend's idle list.
struct LeasedBody {
    inner: Incoming,
    /// Back to the idle list once the body has been read to its end.
    sender: Option<Sender>,
    lease: Lease,
}

impl LeasedBody {
    fn finished(&mut self) {
        if let Some(s) = self.sender.take() {
            self.lease.backend.upstream.put(s);
        }
    }
}

impl Body for LeasedBody {
    type Data = Bytes;
    type Error = hyper::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.finished(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.finished(),
            Poll::Ready(Some(Err(_))) => self.sender = None,
            _ => {}
        }
        polled
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_connection_listed_ones_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            hyper::header::CONNECTION,
            "keep-alive, x-secret".parse().unwrap(),
        );
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn every_hop_by_hop_header_is_removed() {
        let mut h = HeaderMap::new();
        h.insert(hyper::header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert("proxy-connection", "close".parse().unwrap());
        h.insert(HOST, "a".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
    }
}
