//! L4 relaying on loopback, with real sockets: bytes sent at connect
//! arrive first and in order, multi-megabyte transfers both ways to slow
//! readers arrive intact, a stalled reader holds the sender back (bounded
//! buffering), half-close in both directions, the idle timeout, PROXY
//! headers, and drain accounting.

mod lb_common;

use lb_common::{scripted, start};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tandem_lb::config::ProxyVersion;
use tandem_lb::proxy_protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn l4_config(backend: SocketAddr, listener_extra: &str, pool_extra: &str) -> tandem_lb::Config {
    let text = format!(
        "[[listener]]\nname = \"front\"\nbind = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"app\"\n{listener_extra}\n[[pool]]\nname = \"app\"\n{pool_extra}\n[pool.health]\nkind = \"none\"\n[[pool.backend]]\nname = \"b\"\naddr = \"{backend}\"\n"
    );
    tandem_lb::Config::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

async fn echo(mut s: TcpStream) {
    let mut buf = vec![0u8; 4096];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

/// Deterministic bytes: a stream `seed` of any length, checkable anywhere.
struct Pattern(u64);

impl Pattern {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            // xorshift64
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

/// Write `total` pattern bytes, then shut the write side.
async fn send_pattern<W: AsyncWriteExt + Unpin>(w: &mut W, seed: u64, total: usize) {
    let mut p = Pattern(seed);
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = total;
    while left > 0 {
        let n = left.min(buf.len());
        p.fill(&mut buf[..n]);
        w.write_all(&buf[..n]).await.unwrap();
        left -= n;
    }
    w.shutdown().await.unwrap();
}

/// Read to EOF slowly (16 KiB, then a 1 ms pause) and check every byte
/// against the pattern; returns the count.
async fn check_pattern_slowly<R: AsyncReadExt + Unpin>(r: &mut R, seed: u64) -> usize {
    let mut p = Pattern(seed);
    let mut buf = vec![0u8; 16 * 1024];
    let mut want = vec![0u8; 16 * 1024];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            return total;
        }
        p.fill(&mut want[..n]);
        assert!(buf[..n] == want[..n], "byte mismatch after {total} bytes");
        total += n;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .expect("bytes within 5 s")
        .unwrap();
    buf
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Bytes written at connect (before the backend even accepted) come back
/// first and in order, then many small exchanges.
async fn round_trip(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"early-bytes;").await.unwrap();
    assert_eq!(read_exactly(&mut s, 12).await, b"early-bytes;");
    for i in 0..200u32 {
        let msg = format!("message {i:05};");
        s.write_all(msg.as_bytes()).await.unwrap();
        assert_eq!(read_exactly(&mut s, msg.len()).await, msg.as_bytes());
    }
    s
}

#[tokio::test]
async fn l4_round_trips_bytes_sent_at_connect_in_order() {
    let b = scripted(echo).await;
    let (lb, addr) = start(l4_config(b, "", "")).await;
    let s = round_trip(addr).await;
    assert_eq!(
        lb.relayed_connections(),
        1,
        "a relay thread moves its bytes"
    );
    drop(s);
    wait_for("the relay to let go", || lb.relayed_connections() == 0).await;
}

#[tokio::test]
async fn l4_moves_megabytes_both_ways_to_slow_readers_intact() {
    const UP: usize = 12 * 1024 * 1024 + 123;
    const DOWN: usize = 9 * 1024 * 1024 + 7;
    let (got_tx, mut got_rx) = tokio::sync::mpsc::channel(1);
    let b = scripted(move |s| {
        let got = got_tx.clone();
        async move {
            let (mut r, mut w) = s.into_split();
            let send = tokio::spawn(async move { send_pattern(&mut w, 2, DOWN).await });
            let n = check_pattern_slowly(&mut r, 1).await;
            send.await.unwrap();
            let _ = got.send(n).await;
        }
    })
    .await;
    let (lb, addr) = start(l4_config(b, "", "")).await;
    let s = TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let up = tokio::spawn(async move { send_pattern(&mut w, 1, UP).await });
    let down = check_pattern_slowly(&mut r, 2).await;
    up.await.unwrap();
    assert_eq!(down, DOWN);
    let backend_got = tokio::time::timeout(Duration::from_secs(30), got_rx.recv())
        .await
        .unwrap();
    assert_eq!(backend_got, Some(UP));
    wait_for("the relay to let go", || lb.relayed_connections() == 0).await;
}

/// While the backend reads nothing, the client is held back once the socket
/// buffers and the relay's one buffer are full (no unbounded queue in the
/// relay); then every byte arrives intact.
#[tokio::test]
async fn a_stalled_reader_holds_the_sender_back() {
    // The backend reads nothing for 2 s, then everything.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let b = scripted(move |mut s| {
        let tx = tx.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut sink = vec![0u8; 1 << 16];
            let mut total = 0usize;
            loop {
                match tokio::time::timeout(Duration::from_secs(3), s.read(&mut sink)).await {
                    Ok(Ok(n)) if n > 0 => {
                        assert!(sink[..n].iter().all(|&b| b == 7), "corrupted bytes");
                        total += n;
                    }
                    _ => break,
                }
            }
            let _ = tx.send(total).await;
        }
    })
    .await;
    let (_lb, addr) = start(l4_config(b, "", "")).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let mut written = 0usize;
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), s.write_all(&chunk)).await {
            Ok(Ok(())) => written += chunk.len(),
            Ok(Err(_)) => break,
            Err(_) => break, // blocked: backpressure reached the client
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), s.shutdown()).await;
    let read = tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
    assert!(read >= written, "wrote {written}, backend read {read}");
    // Loopback socket buffers autotune to a few MiB each; four of them and
    // one 16 KiB relay buffer lie between the client and the backend.
    assert!(
        written < 48 << 20,
        "{} KiB went out while the backend read nothing",
        written / 1024
    );
}

#[tokio::test]
async fn l4_passes_half_close_both_ways() {
    // Client closes first: the backend sees the request then EOF, and the
    // reply still reaches the client, then EOF.
    let b = scripted(|mut s| async move {
        let mut req = Vec::new();
        s.read_to_end(&mut req).await.unwrap();
        s.write_all(format!("got {} bytes", req.len()).as_bytes())
            .await
            .unwrap();
        s.shutdown().await.unwrap();
    })
    .await;
    let (lb, addr) = start(l4_config(b, "", "")).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[1u8; 5000]).await.unwrap();
    s.shutdown().await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut reply))
        .await
        .expect("reply and EOF")
        .unwrap();
    assert_eq!(reply, "got 5000 bytes");
    wait_for("the relay to let go", || lb.relayed_connections() == 0).await;

    // Backend closes first (a banner, then FIN): the client sees EOF and
    // can still send; the backend receives it.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let b = scripted(move |mut s| {
        let tx = tx.clone();
        async move {
            s.write_all(b"banner").await.unwrap();
            s.shutdown().await.unwrap();
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).await.unwrap();
            let _ = tx.send(rest).await;
        }
    })
    .await;
    let (_lb, addr) = start(l4_config(b, "", "")).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut banner = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut banner))
        .await
        .expect("banner and EOF")
        .unwrap();
    assert_eq!(banner, "banner");
    s.write_all(b"after the backend's FIN").await.unwrap();
    s.shutdown().await.unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the backend got the client's bytes and EOF");
    assert_eq!(rest.as_deref(), Some(&b"after the backend's FIN"[..]));
}

#[tokio::test]
async fn l4_closes_when_idle_and_not_while_bytes_move() {
    let b = scripted(echo).await;
    let (lb, addr) = start(l4_config(b, "timeouts = { idle_ms = 400 }", "")).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // A byte every 100 ms for well over idle_ms: stays open.
    for _ in 0..12 {
        s.write_all(b"x").await.unwrap();
        assert_eq!(read_exactly(&mut s, 1).await, b"x");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(lb.relayed_connections(), 1);
    // Then nothing: closed 400..500 ms after the last byte, which was
    // 100 ms before this (plus scheduling).
    let quiet = Instant::now();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .expect("idle connection closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    let after = quiet.elapsed();
    assert!(
        after >= Duration::from_millis(250) && after < Duration::from_millis(1500),
        "closed {after:?} after the last pause began"
    );
    wait_for("the relay to let go", || lb.relayed_connections() == 0).await;
}

#[tokio::test]
async fn l4_sends_the_proxy_header_before_relayed_bytes() {
    for (send, version) in [("v1", ProxyVersion::V1), ("v2", ProxyVersion::V2)] {
        let b = scripted(move |mut s| async move {
            let declared = proxy_protocol::read_header(&mut s).await;
            let line = format!("declared={declared:?}\n");
            let _ = s.write_all(line.as_bytes()).await;
            echo(s).await;
        })
        .await;
        let (lb, addr) = start(l4_config(
            b,
            "accept_proxy = true",
            &format!("send_proxy = \"{send}\""),
        ))
        .await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut first = proxy_protocol::encode(version, "192.0.2.55:6000".parse().unwrap(), addr);
        first.extend_from_slice(b"ping");
        s.write_all(&first).await.unwrap();
        let want = "declared=Ok(Some(192.0.2.55:6000))\nping";
        let got = read_exactly(&mut s, want.len()).await;
        assert_eq!(String::from_utf8_lossy(&got), want, "send_proxy {send}");
        assert_eq!(lb.relayed_connections(), 1);
    }
}

#[tokio::test]
async fn drain_counts_a_relayed_connection_until_it_ends() {
    let b = scripted(echo).await;
    let (lb, addr) = start(l4_config(b, "", "")).await;
    let s = round_trip(addr).await;
    let mut progress = lb.drain("app", "b").unwrap();
    let first = progress.recv().await.unwrap();
    assert_eq!(first.remaining, 1, "{first:?}");
    assert!(!first.done);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lb.status().pools[0].backends[0].active, 1);
    drop(s);
    let last = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let p = progress.recv().await.unwrap();
            if p.done {
                return p;
            }
        }
    })
    .await
    .expect("drain completes once the relayed connection ends");
    assert_eq!(last.remaining, 0);
}

#[tokio::test]
async fn urgent_data_does_not_stall_the_bytes_behind_it() {
    let b = scripted(echo).await;
    let (_lb, addr) = start(l4_config(b, "", "")).await;
    let s = TcpStream::connect(addr).await.unwrap().into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        // Each round: "aaaa" + an urgent byte in one segment, "bbbb" right
        // behind it. A read stops short at the urgent mark; when "bbbb" is
        // already queued then, no new event announces it.
        for round in 0..50u8 {
            let first = [b'a' + round % 26; 5];
            // SAFETY: a valid socket fd owned by `s`, and a buffer that
            // outlives the call.
            let sent = unsafe {
                libc::send(
                    s.as_raw_fd(),
                    first.as_ptr().cast(),
                    first.len(),
                    libc::MSG_OOB,
                )
            };
            assert_eq!(sent, 5, "send MSG_OOB: {}", std::io::Error::last_os_error());
            let second = [b'A' + round % 26; 4];
            (&s).write_all(&second).unwrap();
            // The urgent (last) byte is out of band, not relayed.
            let mut got = [0u8; 8];
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            (&s).read_exact(&mut got)
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(&got[..4], &first[..4], "round {round}");
            assert_eq!(&got[4..], &second, "round {round}");
        }
    })
    .await
    .unwrap();
}
