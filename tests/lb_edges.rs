//! The lb at its edges, on loopback: client identity headers with trusted
//! and untrusted peers, PROXY v1/v2 on receive and send, TLS termination
//! and certificate reload, and hostile clients (slowloris, garbage,
//! oversized heads, bad PROXY headers) that must not affect anyone else.

mod lb_common;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use lb_common::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_lb::config::ProxyVersion;
use tandem_lb::proxy_protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Send raw bytes, return everything read until close (or 3 s).
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn forwarding_headers_are_appended_for_trusted_peers_and_replaced_for_others() {
    let a = Backend::start("a", Duration::ZERO).await;
    let spoof = [
        ("x-forwarded-for", "203.0.113.7"),
        ("forwarded", "for=203.0.113.7;proto=https"),
        ("x-forwarded-proto", "https"),
    ];
    let (_lb, addr) = start(config(
        "http",
        &[&a],
        "trusted_proxies = [\"127.0.0.0/8\"]",
        "",
        "",
    ))
    .await;
    let (_, _, body) = get(&client(), addr, "/", &spoof).await.unwrap();
    assert_eq!(field(&body, "xff"), "203.0.113.7, 127.0.0.1");
    assert_eq!(
        field(&body, "forwarded"),
        "for=203.0.113.7;proto=https, for=127.0.0.1;proto=http"
    );
    assert_eq!(field(&body, "proto"), "https");

    let (_lb, addr) = start(config(
        "http",
        &[&a],
        "trusted_proxies = [\"10.0.0.0/8\"]",
        "",
        "",
    ))
    .await;
    let (_, _, body) = get(&client(), addr, "/", &spoof).await.unwrap();
    assert_eq!(field(&body, "xff"), "127.0.0.1");
    assert_eq!(field(&body, "forwarded"), "for=127.0.0.1;proto=http");
    assert_eq!(field(&body, "proto"), "http");
}

#[tokio::test]
async fn a_proxy_header_on_receive_sets_the_client_identity() {
    let a = Backend::start("a", Duration::ZERO).await;
    let (_lb, addr) = start(config("http", &[&a], "", "accept_proxy = true", "")).await;
    for v in [ProxyVersion::V1, ProxyVersion::V2] {
        let mut bytes = proxy_protocol::encode(v, "198.51.100.4:4242".parse().unwrap(), addr);
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let resp = raw(addr, &bytes).await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{v:?}: {resp}");
        assert!(resp.contains("xff=198.51.100.4\n"), "{v:?}: {resp}");
    }
    // A bad header closes that connection only.
    let resp = raw(addr, b"PROXY TCP4 nonsense here\r\nGET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(resp, "", "bad PROXY header: closed without a response");
    let resp = raw(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(resp, "", "missing PROXY header: closed");
    let mut ok = proxy_protocol::encode(ProxyVersion::V1, "192.0.2.1:1".parse().unwrap(), addr);
    ok.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(raw(addr, &ok).await.starts_with("HTTP/1.1 200"));
}

/// A raw TCP backend that reads a PROXY header and answers with the client
/// address it declared, then echoes.
async fn proxy_reading_backend() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let declared = proxy_protocol::read_header(&mut s).await;
                let line = format!("declared={declared:?}\n");
                let _ = s.write_all(line.as_bytes()).await;
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn proxy_protocol_round_trips_through_an_l4_listener() {
    let (backend, task) = proxy_reading_backend().await;
    for (recv, send) in [(ProxyVersion::V1, "v2"), (ProxyVersion::V2, "v1")] {
        let text = format!(
            "[[listener]]\nname = \"front\"\nbind = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"app\"\naccept_proxy = true\n[[pool]]\nname = \"app\"\nsend_proxy = \"{send}\"\n[pool.health]\nkind = \"none\"\n[[pool.backend]]\nname = \"p\"\naddr = \"{backend}\"\n"
        );
        let (_lb, addr) = start(tandem_lb::Config::parse(&text, "t.toml").unwrap()).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&proxy_protocol::encode(
            recv,
            "192.0.2.55:6000".parse().unwrap(),
            addr,
        ))
        .await
        .unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut got = vec![0u8; 256];
        let mut n = 0;
        let deadline = Instant::now() + Duration::from_secs(3);
        while !String::from_utf8_lossy(&got[..n]).ends_with("ping") {
            assert!(
                Instant::now() < deadline,
                "{}",
                String::from_utf8_lossy(&got[..n])
            );
            n += s.read(&mut got[n..]).await.unwrap();
        }
        let text = String::from_utf8_lossy(&got[..n]);
        assert_eq!(
            text, "declared=Ok(Some(192.0.2.55:6000))\nping",
            "recv {recv:?} send {send}"
        );
    }
    task.abort();
}

#[tokio::test]
async fn l4_proxy_copies_bytes_and_enforces_the_connection_limit() {
    let (backend, task) = proxy_reading_backend().await;
    let text = format!(
        "[[listener]]\nname = \"front\"\nbind = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"app\"\nmax_connections = 1\n[[pool]]\nname = \"app\"\n[[pool.backend]]\nname = \"p\"\naddr = \"{backend}\"\n"
    );
    let (lb, addr) = start(tandem_lb::Config::parse(&text, "t.toml").unwrap()).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    first
        .write_all(b"hello, this is plain payload")
        .await
        .unwrap();
    let mut buf = vec![0u8; 128];
    let n = first.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("declared=Err"),
        "no PROXY sent to it"
    );
    // The second connection is over the limit: closed at once.
    let over = raw(addr, b"x").await;
    assert_eq!(over, "");
    assert!(lb
        .metrics_text()
        .contains("tandem_lb_rejected_connections_total 1"));
    drop(first);
    task.abort();
}

#[tokio::test]
async fn hostile_clients_get_clean_errors_and_do_not_affect_others() {
    let a = Backend::start("a", Duration::ZERO).await;
    let (_lb, addr) = start(config(
        "http",
        &[&a],
        "",
        "timeouts = { header_read_ms = 300 }",
        "",
    ))
    .await;
    // Slowloris: a head that never finishes, one byte at a time.
    let slow = tokio::spawn(async move {
        let started = Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        for _ in 0..40 {
            if s.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
        started.elapsed()
    });
    // Meanwhile everyone else is served.
    let c = client();
    for _ in 0..20 {
        assert_eq!(get(&c, addr, "/", &[]).await.unwrap().0, 200);
    }
    let garbage = raw(addr, b"\x16\x03\x01garbage that is not http\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    let resp = raw(addr, huge.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");
    let cut_after = slow.await.unwrap();
    assert!(
        cut_after < Duration::from_millis(1500),
        "slowloris cut at the header timeout, took {cut_after:?}"
    );
    assert_eq!(get(&c, addr, "/", &[]).await.unwrap().0, 200);
}

/// A fresh directory named after `tag` with a self-signed certificate, the
/// certificate, and the `[listener.tls]` table that serves it.
fn tls_listener(
    tag: &str,
    http2: bool,
) -> (
    std::path::PathBuf,
    rustls::pki_types::CertificateDer<'static>,
    String,
) {
    let dir = std::env::temp_dir().join(format!("tandem-lb-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = write_cert(&dir);
    let tls = format!(
        "[listener.tls]\ncert = \"{}\"\nkey = \"{}\"\nhttp2 = {http2}",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    );
    (dir, cert, tls)
}

fn write_cert(dir: &std::path::Path) -> rustls::pki_types::CertificateDer<'static> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    ck.cert.der().clone()
}

async fn tls_connect(
    addr: SocketAddr,
    roots: &[rustls::pki_types::CertificateDer<'static>],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    tls_connect_alpn(addr, roots, Vec::new()).await
}

async fn tls_connect_alpn(
    addr: SocketAddr,
    roots: &[rustls::pki_types::CertificateDer<'static>],
    alpn: Vec<Vec<u8>>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn tls_is_terminated_and_a_reload_keeps_existing_connections() {
    let a = Backend::start("a", Duration::ZERO).await;
    let (dir, old, tls) = tls_listener("tls", false);
    let (lb, addr) = start(config("http", &[&a], "", &tls, "")).await;
    let stream = tls_connect(addr, std::slice::from_ref(&old)).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = || {
        hyper::Request::get("/")
            .header("host", "localhost")
            .body(Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    let resp = sender.send_request(req()).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(field(&body, "proto"), "https");
    assert_eq!(served_by(&body), "a");

    let new = write_cert(&dir);
    lb.reload_tls().unwrap();
    // The established connection still works.
    let resp = sender.send_request(req()).await.unwrap();
    assert_eq!(resp.status(), 200);
    // New connections get the new certificate.
    let s = tls_connect(addr, &[new]).await;
    assert_eq!(
        s.get_ref().1.peer_certificates().unwrap()[0],
        write_back(&dir)
    );
    // A broken file leaves the current certificate in place.
    std::fs::write(dir.join("cert.pem"), "not a cert").unwrap();
    assert!(lb.reload_tls().is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The DER of the certificate currently in `dir` (what new handshakes present).
fn write_back(dir: &std::path::Path) -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_file(dir.join("cert.pem")).unwrap()
}

#[tokio::test]
async fn http2_clients_are_served_over_tls() {
    let a = Backend::start("a", Duration::ZERO).await;
    let (dir, cert, tls) = tls_listener("h2", true);
    let (_lb, addr) = start(config("http", &[&a], "", &tls, "")).await;
    let stream = tls_connect_alpn(addr, &[cert], vec![b"h2".to_vec()]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    for _ in 0..3 {
        let req = hyper::Request::get("https://localhost/h2")
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(served_by(&body), "a");
        assert_eq!(field(&body, "proto"), "https");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_admin_endpoint_drains_with_streamed_progress_and_serves_metrics() {
    let a = Backend::start("a", Duration::ZERO).await;
    let (lb, addr) = start(config("http", &[&a], "", "", "")).await;
    assert_eq!(get(&client(), addr, "/", &[]).await.unwrap().0, 200);
    let admin = lb.admin_addr().unwrap();
    let drained = raw(admin, b"POST /drain/app/a HTTP/1.0\r\n\r\n").await;
    assert!(drained.starts_with("HTTP/1.0 200"), "{drained}");
    assert!(drained.contains("\"done\":true"), "{drained}");
    assert_eq!(get(&client(), addr, "/", &[]).await.unwrap().0, 503);
    let missing = raw(admin, b"POST /drain/app/zz HTTP/1.0\r\n\r\n").await;
    assert!(
        missing.contains("pool \"app\" has no backend \"zz\""),
        "{missing}"
    );
    let undrained = raw(admin, b"POST /undrain/app/a HTTP/1.0\r\n\r\n").await;
    assert!(undrained.starts_with("HTTP/1.0 200"), "{undrained}");
    assert_eq!(get(&client(), addr, "/", &[]).await.unwrap().0, 200);
    let status = raw(admin, b"GET /status HTTP/1.0\r\n\r\n").await;
    assert!(status.contains("\"requests\": 2"), "{status}");
    let metrics = raw(admin, b"GET /metrics HTTP/1.0\r\n\r\n").await;
    assert!(
        metrics.contains("tandem_lb_pool_skew{pool=\"app\"} 1.0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tandem_lb_backend_latency_seconds_count{pool=\"app\",backend=\"a\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn tls_is_terminated_at_l4_too() {
    let a = Backend::start("a", Duration::ZERO).await;
    let (dir, cert, tls) = tls_listener("tls4", false);
    let (lb, addr) = start(config("tcp", &[&a], "", &tls, "")).await;
    let mut stream = tls_connect(addr, std::slice::from_ref(&cert)).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    assert_eq!(served_by(body), "a", "{text}");
    // TLS stays on the async pipe: relay threads move bytes between plain sockets.
    assert_eq!(lb.relayed_connections(), 0);
    std::fs::remove_dir_all(&dir).ok();
}
