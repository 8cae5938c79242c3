//! HTTP/1.x relaying through the L7 listener, byte for byte, against
//! scripted backends on loopback: chunked bodies both ways, HTTP/1.0
//! clients, 100 Continue, upgrades, pipelining, HEAD, close-delimited
//! responses and request smuggling attempts.

mod lb_common;

use lb_common::{scripted, start};
use std::net::SocketAddr;
use std::time::Duration;
use tandem_lb::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(5);

/// One L7 listener in front of `backend`, health checked by TCP connect
/// only (the scripts answer just what the tests send).
async fn lb_for(backend: SocketAddr) -> (tandem_lb::Lb, SocketAddr) {
    lb_with(backend, "").await
}

async fn lb_with(backend: SocketAddr, listener_extra: &str) -> (tandem_lb::Lb, SocketAddr) {
    let text = format!(
        "[[listener]]\nname = \"front\"\nbind = \"127.0.0.1:0\"\nmode = \"http\"\npool = \"app\"\n{listener_extra}\n\
         [[pool]]\nname = \"app\"\n[pool.health]\nkind = \"tcp\"\ninterval_ms = 60000\n\
         [[pool.backend]]\nname = \"b\"\naddr = \"{backend}\"\n"
    );
    start(Config::parse(&text, "t.toml").unwrap()).await
}

/// Read into `buf` until `done` says so; the peer must not close first.
async fn read_until(s: &mut TcpStream, buf: &mut Vec<u8>, done: impl Fn(&[u8]) -> bool) {
    while !done(buf) {
        let mut chunk = [0u8; 4096];
        let got = tokio::time::timeout(WAIT, s.read(&mut chunk))
            .await
            .expect("bytes in time")
            .unwrap();
        assert!(
            got > 0,
            "closed early; got {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..got]);
    }
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Read up to the end of a head and return it; what came after it stays
/// in `buf`.
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    read_until(s, buf, |b| head_end(b).is_some()).await;
    let end = head_end(buf).unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    head
}

async fn read_at_least(s: &mut TcpStream, buf: &mut Vec<u8>, n: usize) {
    read_until(s, buf, |b| b.len() >= n).await;
}

async fn read_until_suffix(s: &mut TcpStream, buf: &mut Vec<u8>, end: &[u8]) {
    read_until(s, buf, |b| b.ends_with(end)).await;
}

async fn read_to_close(s: &mut TcpStream, buf: &mut Vec<u8>) {
    tokio::time::timeout(WAIT, s.read_to_end(buf))
        .await
        .expect("closed in time")
        .unwrap();
}

fn has_field(head: &str, line: &str) -> bool {
    head.lines().any(|l| l.eq_ignore_ascii_case(line))
}

fn has_name(head: &str, name: &str) -> bool {
    head.lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
    })
}

/// A keep-alive backend that reads each request with its body (by
/// Content-Length, or a chunked one through its final CRLF), sends (head,
/// body) to the returned channel, and answers `reply`.
async fn recording(
    reply: &'static [u8],
) -> (SocketAddr, mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let backend = scripted(move |mut s| {
        let seen_tx = seen_tx.clone();
        async move {
            let mut buf = Vec::new();
            loop {
                let mut probe = [0u8; 1];
                if buf.is_empty() && s.peek(&mut probe).await.map_or(true, |n| n == 0) {
                    return;
                }
                let head = read_head(&mut s, &mut buf).await;
                let body: Vec<u8> = if has_field(&head, "transfer-encoding: chunked") {
                    read_until_suffix(&mut s, &mut buf, b"\r\n\r\n").await;
                    std::mem::take(&mut buf)
                } else {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (n, v) = l.split_once(':')?;
                            n.eq_ignore_ascii_case("content-length").then(|| v.trim())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    read_at_least(&mut s, &mut buf, len).await;
                    buf.drain(..len).collect()
                };
                seen_tx.send((head, body)).unwrap();
                if s.write_all(reply).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    (backend, seen)
}

#[tokio::test]
async fn chunked_bodies_are_relayed_intact_and_dechunked_for_http10_clients() {
    let (backend, mut seen) = recording(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    let (_lb, addr) = lb_for(backend).await;

    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    for part in [
        &b"3\r\nabc\r\n"[..],
        b"4;ext=1\r\ndefg\r\n",
        b"0\r\nX-Trailer: t\r\n\r\n",
    ] {
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.write_all(part).await.unwrap();
    }
    let (head, body) = seen.recv().await.unwrap();
    assert!(has_field(&head, "transfer-encoding: chunked"), "{head}");
    assert_eq!(
        String::from_utf8_lossy(&body),
        "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n"
    );
    let mut buf = Vec::new();
    let head = read_head(&mut c, &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(has_field(&head, "transfer-encoding: chunked"), "{head}");
    read_until_suffix(&mut c, &mut buf, b"0\r\n\r\n").await;
    assert_eq!(buf, b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");

    // HTTP/1.0 cannot read chunked: the data, then the connection closes.
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    read_to_close(&mut c, &mut buf).await;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert!(!has_name(head, "transfer-encoding"), "{head}");
    assert_eq!(body, "hello world");
}

#[tokio::test]
async fn interim_100_continue_reaches_the_client_before_it_sends_the_body() {
    let backend = scripted(|mut s| async move {
        let mut buf = Vec::new();
        let head = read_head(&mut s, &mut buf).await;
        assert!(has_field(&head, "expect: 100-continue"), "{head}");
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.unwrap();
        read_at_least(&mut s, &mut buf, 5).await;
        let reply = format!(
            "HTTP/1.1 201 Created\r\nContent-Length: {}\r\n\r\n{}",
            buf.len(),
            String::from_utf8_lossy(&buf)
        );
        s.write_all(reply.as_bytes()).await.unwrap();
        let _ = s.read(&mut [0u8; 1]).await;
    })
    .await;
    let (_lb, addr) = lb_for(backend).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"PUT /f HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let interim = read_head(&mut c, &mut buf).await;
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    c.write_all(b"12345").await.unwrap();
    let head = read_head(&mut c, &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 201 Created"), "{head}");
    read_at_least(&mut c, &mut buf, 5).await;
    assert_eq!(buf, b"12345");
}

#[tokio::test]
async fn an_upgrade_turns_the_connection_into_a_byte_pipe() {
    let backend = scripted(|mut s| async move {
        let mut buf = Vec::new();
        let head = read_head(&mut s, &mut buf).await;
        assert!(has_field(&head, "upgrade: websocket"), "{head}");
        assert!(has_field(&head, "connection: upgrade"), "{head}");
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            .await
            .unwrap();
        // Echo whatever the new protocol sends.
        let mut chunk = [0u8; 1024];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => s.write_all(&chunk[..n]).await.unwrap(),
            }
        }
    })
    .await;
    let (_lb, addr) = lb_for(backend).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut c, &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(has_field(&head, "upgrade: websocket"), "{head}");
    for msg in [&b"ping"[..], b"\x00\xff binary \r\n\r\n"] {
        c.write_all(msg).await.unwrap();
        read_at_least(&mut c, &mut buf, msg.len()).await;
        assert_eq!(buf, msg);
        buf.clear();
    }
}

/// A keep-alive backend answering each request with its target and the
/// names of the fields it got.
async fn echo_backend() -> SocketAddr {
    scripted(|mut s| async move {
        let mut buf = Vec::new();
        loop {
            let mut probe = [0u8; 1];
            if buf.is_empty() && s.peek(&mut probe).await.map_or(true, |n| n == 0) {
                return;
            }
            let head = read_head(&mut s, &mut buf).await;
            let target = head.split(' ').nth(1).unwrap_or("").to_string();
            let names: Vec<String> = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_ascii_lowercase()))
                .collect();
            let body = format!("{target} {}", names.join(","));
            let head_only = head.starts_with("HEAD");
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
                body.len(),
                if head_only { "" } else { &body }
            );
            if s.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_without_hop_by_hop_fields() {
    let (_lb, addr) = lb_for(echo_backend().await).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(
        b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n\r\n\
          HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n\
          GET http://example.test/c?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let mut bodies = Vec::new();
    for head_request in [false, true, false] {
        let head = read_head(&mut c, &mut buf).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim())
            })
            .unwrap()
            .parse()
            .unwrap();
        if head_request {
            bodies.push(String::new());
            continue;
        }
        read_at_least(&mut c, &mut buf, len).await;
        bodies.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        buf.drain(..len);
    }
    let (target, names) = bodies[0].split_once(' ').unwrap();
    assert_eq!(target, "/a");
    for hop in ["connection", "x-secret", "keep-alive", "te"] {
        assert!(
            !names.split(',').any(|n| n == hop),
            "{hop} forwarded: {names}"
        );
    }
    assert!(names.split(',').any(|n| n == "x-forwarded-for"), "{names}");
    assert_eq!(bodies[1], "", "HEAD answer carried no body");
    assert!(
        bodies[2].starts_with("/c?q=1 "),
        "absolute form → origin form: {}",
        bodies[2]
    );
}

#[tokio::test]
async fn smuggling_attempts_are_refused_or_made_harmless() {
    let (backend, mut seen) = recording(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
    let (_lb, addr) = lb_for(backend).await;

    // Both lengths: relayed as chunked without Content-Length, then closed
    // (RFC 9112 §6.1), so nothing hides behind the body.
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = seen.recv().await.unwrap();
    assert!(!has_name(&head, "content-length"), "{head}");
    assert!(has_field(&head, "transfer-encoding: chunked"), "{head}");
    assert_eq!(body, b"0\r\n\r\n");
    let mut buf = Vec::new();
    read_to_close(&mut c, &mut buf).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(has_field(&text, "connection: close"), "{text}");
    assert!(!text.contains("smuggled"), "{text}");

    for bad in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    ] {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(bad).await.unwrap();
        let mut buf = Vec::new();
        read_to_close(&mut c, &mut buf).await;
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.starts_with("HTTP/1.1 400"),
            "{}: {text}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(
        seen.try_recv().is_err(),
        "a refused request reached the backend"
    );
}

#[tokio::test]
async fn a_close_delimited_response_reaches_the_client_whole_then_closes() {
    let backend = scripted(|mut s| async move {
        let mut buf = Vec::new();
        read_head(&mut s, &mut buf).await;
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
            .await
            .unwrap();
        for part in ["all ", "of ", "it"] {
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.write_all(part.as_bytes()).await.unwrap();
        }
    })
    .await;
    let (_lb, addr) = lb_for(backend).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    read_to_close(&mut c, &mut buf).await;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(has_field(head, "connection: close"), "{head}");
    assert_eq!(body, "all of it");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_after_the_idle_timeout() {
    // 64 MiB: far more than the socket buffers between the three parties.
    const BODY: usize = 64 << 20;
    let backend = scripted(|mut s| async move {
        let mut buf = Vec::new();
        read_head(&mut s, &mut buf).await;
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        let block = vec![b'x'; 1 << 16];
        for _ in 0..BODY / block.len() {
            if s.write_all(&block).await.is_err() {
                return;
            }
        }
    })
    .await;
    let (lb, addr) = lb_with(backend, "timeouts = { idle_ms = 400 }").await;
    let active = || lb.status().pools[0].backends[0].active;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    read_head(&mut c, &mut buf).await;
    assert_eq!(active(), 1, "the exchange holds its backend");
    // Read nothing more: the relay must give up, not wait forever.
    let deadline = tokio::time::Instant::now() + WAIT;
    while active() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still active after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(WAIT, c.read_to_end(&mut rest)).await;
    assert!(
        buf.len() + rest.len() < BODY,
        "the whole body cannot have arrived"
    );
}

#[tokio::test]
async fn mutated_requests_get_clean_answers_and_leak_nothing() {
    let (lb, addr) = lb_with(
        echo_backend().await,
        "timeouts = { header_read_ms = 300, idle_ms = 600 }",
    )
    .await;
    let valid = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi";
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut clients = Vec::new();
    for _ in 0..200 {
        let mut bytes = valid.to_vec();
        for _ in 0..1 + next() % 4 {
            let i = next() as usize % bytes.len();
            bytes[i] = next() as u8;
        }
        bytes.truncate(bytes.len() - next() as usize % 8);
        clients.push(tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            let _ = c.write_all(&bytes).await;
            let mut out = Vec::new();
            let _ = tokio::time::timeout(WAIT, c.read_to_end(&mut out)).await;
            (bytes, out)
        }));
    }
    for client in clients {
        let (sent, got) = client.await.unwrap();
        assert!(
            got.is_empty() || got.starts_with(b"HTTP/1.1 "),
            "sent {:?}\ngot {:?}",
            String::from_utf8_lossy(&sent),
            String::from_utf8_lossy(&got)
        );
    }
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    assert!(read_head(&mut c, &mut buf)
        .await
        .starts_with("HTTP/1.1 200"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while lb.status().pools[0].backends[0].active != 0 {
        assert!(tokio::time::Instant::now() < deadline, "leases leaked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn connection_cannot_strip_the_framing_fields() {
    let (backend, mut seen) =
        recording(b"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 2\r\n\r\nok")
            .await;
    let (_lb, addr) = lb_for(backend).await;
    let smuggled = "GET /admin HTTP/1.1\r\nHost: internal\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n";
    let request = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length, Host\r\nContent-Length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(request.as_bytes()).await.unwrap();
    let (head, body) = seen.recv().await.unwrap();
    assert!(
        has_field(&head, &format!("content-length: {}", smuggled.len())),
        "{head}"
    );
    assert_eq!(body, smuggled.as_bytes(), "the smuggled request stays body");
    assert!(
        has_field(&head, "host: a"),
        "Connection cannot remove Host: {head}"
    );
    // The answer keeps its length too, and the connection stays usable.
    let mut buf = Vec::new();
    let head = read_head(&mut c, &mut buf).await;
    assert!(has_field(&head, "content-length: 2"), "{head}");
    read_at_least(&mut c, &mut buf, 2).await;
    assert_eq!(buf, b"ok");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        seen.try_recv().is_err(),
        "a second request reached the backend"
    );
}

/// Send `first`, then after a pause `second`; everything read until close.
async fn send_in_two(addr: SocketAddr, first: &[u8], second: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.write_all(second).await.unwrap();
    let mut buf = Vec::new();
    read_to_close(&mut c, &mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn http10_clients_get_no_interim_responses() {
    let backend = scripted(|mut s| async move {
        let mut buf = Vec::new();
        read_head(&mut s, &mut buf).await;
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.unwrap();
        read_at_least(&mut s, &mut buf, 5).await;
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .await
            .unwrap();
    })
    .await;
    let (_lb, addr) = lb_for(backend).await;
    let text = send_in_two(
        addr,
        b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        b"hello",
    )
    .await;
    assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
}

#[tokio::test]
async fn a_malformed_chunked_body_gets_a_400() {
    // Reads the head, then waits: never answers before the body is judged.
    let backend = scripted(|mut s| async move {
        let mut buf = Vec::new();
        read_head(&mut s, &mut buf).await;
        let _ = s.read_to_end(&mut buf).await;
    })
    .await;
    let (lb, addr) = lb_for(backend).await;
    let text = send_in_two(
        addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        b"zz\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert_eq!(lb.status().pools[0].backends[0].active, 0);
}
