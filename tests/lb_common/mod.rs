//! Shared fixtures for the lb integration tests: HTTP backends that answer
//! with their name and echo identity headers, scripted raw TCP backends, a
//! keep-alive client, and a config builder. Everything listens on 127.0.0.1 port 0.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tandem_lb::{Config, Lb};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A test backend: answers every request with `name` (after `delay`), or
/// 503 on `/ready` when `ready` is false. Dropping it stops it.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub hits: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    pub async fn start(name: &str, delay: Duration) -> Backend {
        Self::start_on(name, "127.0.0.1:0".parse().unwrap(), delay).await
    }

    pub async fn start_on(name: &str, addr: SocketAddr, delay: Duration) -> Backend {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let (n, h) = (name.to_string(), hits.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (n, h) = (n.clone(), h.clone());
                conns.spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let (n, h) = (n.clone(), h.clone());
                            async move { Ok::<_, Infallible>(answer(&n, &h, req, delay).await) }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Backend {
            name: name.into(),
            addr,
            hits,
            task,
        }
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

async fn answer(
    name: &str,
    hits: &AtomicU64,
    req: Request<hyper::body::Incoming>,
    delay: Duration,
) -> Response<Full<Bytes>> {
    if req.uri().path() == "/ready" {
        return Response::new(Full::new(Bytes::from("ready")));
    }
    hits.fetch_add(1, Ordering::Relaxed);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let h = req.headers();
    let get = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string()
    };
    let body = format!(
        "backend={name}\nxff={}\nforwarded={}\nproto={}\n",
        get("x-forwarded-for"),
        get("forwarded"),
        get("x-forwarded-proto")
    );
    let mut r = Response::new(Full::new(Bytes::from(body)));
    if req.uri().path() == "/fail" {
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    }
    r
}

pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// GET and return (status, Set-Cookie, body).
pub async fn get(
    c: &HttpClient,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, Option<String>, String), String> {
    let mut b = Request::get(format!("http://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Empty::new()).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), c.request(req))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, cookie, String::from_utf8_lossy(&body).into_owned()))
}

/// The `backend=` line of a test backend's answer.
pub fn served_by(body: &str) -> &str {
    body.lines()
        .find_map(|l| l.strip_prefix("backend="))
        .unwrap_or("?")
}

/// The value of `key=` in a test backend's answer.
pub fn field<'a>(body: &'a str, key: &str) -> &'a str {
    body.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or("?")
}

/// A one-listener, one-pool config in TOML; `pool_extra` goes in the [[pool]]
/// table, `listener_extra` in the [[listener]] table, `top` before both.
pub fn config(
    mode: &str,
    backends: &[&Backend],
    top: &str,
    listener_extra: &str,
    pool_extra: &str,
) -> Config {
    let mut text = format!(
        "{top}\n[admin]\nbind = \"127.0.0.1:0\"\n[[listener]]\nname = \"front\"\nbind = \"127.0.0.1:0\"\nmode = \"{mode}\"\npool = \"app\"\n{listener_extra}\n[[pool]]\nname = \"app\"\n{pool_extra}\n"
    );
    for b in backends {
        text.push_str(&format!(
            "[[pool.backend]]\nname = \"{}\"\naddr = \"{}\"\n",
            b.name, b.addr
        ));
    }
    Config::parse(&text, "test.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

pub async fn start(config: Config) -> (Lb, SocketAddr) {
    let lb = Lb::start(config).await.unwrap();
    let addr = lb.listener_addr("front").unwrap();
    (lb, addr)
}

/// Fast health checks for tests: every 50 ms, out after 2 failures.
pub const FAST_HEALTH: &str = "[pool.health]\nkind = \"http\"\npath = \"/ready\"\ninterval_ms = 50\nfast_interval_ms = 25\ntimeout_ms = 200\nfall = 2\nrise = 1\n";

/// A raw TCP backend that runs `serve` on every connection it accepts.
pub async fn scripted<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s));
        }
    });
    addr
}
