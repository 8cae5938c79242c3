//! The admin API against inputs built to hurt the node (issue 12): an
//! 8,000-link colocation chain that once overflowed the scheduler's stack
//! on every DC in turn, request bodies of 10 MB, declared and streamed,
//! and the largest configuration the API accepts, which must commit and
//! schedule. After each, the node still answers `GET /status`.
//!
//! One node served in-process over mutual TLS, an admin and an operator
//! certificate from its CA. The tests share the process' scheduling
//! threads, so they run one at a time.

use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tandem_daemon::limits::{MAX_DOCUMENT_BODY_BYTES, MAX_PRIMITIVES, MAX_SMALL_BODY_BYTES};
use tandem_daemon::settings::MemberEntry;
use tandem_daemon::{AdminFile, ApiClient, Authority, ClientError, DaemonConfig, TlsFiles};

/// The body size of the attack on the API.
const HUGE_BODY_BYTES: usize = 10 << 20;

/// Held by the running test (each has its own runtime; tokio's mutex
/// works across them).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One node and clients for it; the node stops when this is dropped.
struct Node {
    dir: PathBuf,
    api: std::net::SocketAddr,
    admin: ApiClient,
    operator: ApiClient,
    admin_tls: TlsFiles,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn identity(ca: &Authority, dir: &Path, name: &str, role: &str) -> TlsFiles {
    let issued = ca.issue(name, role).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), issued.cert_pem).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), issued.key_pem).unwrap();
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    }
}

fn client(dir: &Path, api: std::net::SocketAddr, tls: TlsFiles, name: &str) -> ApiClient {
    let file = dir.join(format!("{name}-admin.toml"));
    let admin = AdminFile {
        endpoints: vec![api.to_string()],
        tls,
    };
    std::fs::write(&file, toml::to_string_pretty(&admin).unwrap()).unwrap();
    ApiClient::from_file(&file).unwrap()
}

/// Serves a one-node cluster and waits until it is DC.
async fn start(name: &str) -> Node {
    let dir = std::env::temp_dir().join(format!("tandem-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ca = Authority::generate(name).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
    let config = DaemonConfig::new(
        name,
        1,
        dir.join("data"),
        (
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        ),
        identity(&ca, &dir, "node1", "node"),
        vec![MemberEntry {
            id: 1,
            name: "node1".into(),
            addr: "127.0.0.1:1".into(),
            api: "127.0.0.1:2".into(),
            witness: false,
        }],
    );
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(tandem_daemon::serve(config, Some(ready_tx), async {
        let _ = stop_rx.await;
    }));
    let (_, api) = tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .expect("node ready within 30 s")
        .expect("node started");
    let admin_tls = identity(&ca, &dir, "admin", "admin");
    let node = Node {
        admin: client(&dir, api, admin_tls.clone(), "admin"),
        operator: client(&dir, api, identity(&ca, &dir, "op", "operator"), "op"),
        admin_tls,
        dir,
        api,
        stop: Some(stop_tx),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !status(&node).await["cluster"]["dc"].is_string() {
        assert!(Instant::now() < deadline, "no DC within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node
}

/// `GET /status`, which must answer.
async fn status(node: &Node) -> Value {
    node.admin
        .call(Method::GET, "/status", None)
        .await
        .expect("the node answers GET /status")
}

fn refusal(result: Result<Value, ClientError>, status: u16) -> String {
    match result {
        Err(ClientError::Api { status: s, message }) if s == status => message,
        other => panic!("expected a {status} refusal, got {other:?}"),
    }
}

/// `text` as `PUT /config` (admin) and as `POST /plan` (operator): both
/// refused with `status`; their messages.
async fn refused_both_ways(node: &Node, text: &str, status: u16) -> [String; 2] {
    let put = json!({ "expected_version": null, "text": text });
    let put = node.admin.call(Method::PUT, "/config", Some(put)).await;
    let plan = json!({ "text": text });
    let plan = node.operator.call(Method::POST, "/plan", Some(plan)).await;
    [refusal(put, status), refusal(plan, status)]
}

/// A node, `count` primitives, and a mandatory colocation (and, with
/// `orders`, an order) from each to the one before: the slowest shape for
/// the scheduler. Arrays of inline tables keep the text small.
fn chain(count: usize, orders: bool) -> String {
    let mut text = String::from("resource = [\n");
    for i in 0..count {
        let _ = writeln!(
            text,
            "{{ id = \"r{i}\", agent = \"ocf:heartbeat:Dummy\" }},"
        );
    }
    text.push_str("]\ncolocation = [\n");
    for i in 1..count {
        let _ = writeln!(
            text,
            "{{ id = \"c{i}\", resource = \"r{i}\", with = \"r{}\", score = \"INFINITY\" }},",
            i - 1
        );
    }
    text.push_str("]\n");
    if orders {
        text.push_str("order = [\n");
        for i in 1..count {
            let _ = writeln!(
                text,
                "{{ id = \"o{i}\", first = \"r{}\", then = \"r{i}\" }},",
                i - 1
            );
        }
        text.push_str("]\n");
    }
    // Tables after the top-level arrays, as TOML wants.
    text.push_str("[cluster]\noptions = { fencing-enabled = false }\n[[node]]\nname = \"node1\"\n");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_8000_link_chain_is_refused_with_the_reason_and_the_node_keeps_answering() {
    let _serial = SERIAL.lock().await;
    let node = start("limits-chain").await;
    let text = chain(8_000, false);
    let before = status(&node).await["config_version"].clone();

    let expected = format!("8000 primitives, more than the {MAX_PRIMITIVES} allowed");
    for message in refused_both_ways(&node, &text, 422).await {
        assert!(
            message.contains(&expected),
            "the refusal names the count and the limit: {message}"
        );
    }

    let after = status(&node).await;
    assert_eq!(after["config_version"], before, "nothing was committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_body_gets_413_before_it_is_read_and_the_node_keeps_answering() {
    let _serial = SERIAL.lock().await;
    let node = start("limits-body").await;
    let huge = "x".repeat(HUGE_BODY_BYTES);

    // Declared lengths: refused from the header.
    let [put, plan] = refused_both_ways(&node, &huge, 413).await;
    let limit = format!("accepts at most {MAX_DOCUMENT_BODY_BYTES} bytes");
    assert!(put.contains(&format!("/config {limit}")), "{put}");
    assert!(plan.contains(&format!("/plan {limit}")), "{plan}");
    // A small endpoint takes far less than a document.
    let attribute = json!({ "node": "node1", "name": "a", "value": "x".repeat(100 << 10) });
    let message = refusal(
        node.operator
            .call(Method::POST, "/node/attribute", Some(attribute))
            .await,
        413,
    );
    assert!(
        message.contains(&format!("at most {MAX_SMALL_BODY_BYTES} bytes")),
        "{message}"
    );

    // An undeclared (chunked) length: refused once it passes the limit,
    // long before the whole body is sent. Far more than loopback's socket
    // buffers can hold (several MB on a busy machine): a client can only
    // finish sending it if the node reads it all.
    let endless = 16 * HUGE_BODY_BYTES;
    let (status_code, sent) = stream_body(&node, "/plan", endless).await;
    assert_eq!(status_code, 413);
    assert!(
        sent < endless,
        "the node answered after {sent} of {endless} bytes"
    );

    assert!(status(&node).await["cluster"]["dc"].is_string());
    let valid = json!({ "text": chain(3, true) });
    let plan = node.operator.call(Method::POST, "/plan", Some(valid)).await;
    assert!(plan.is_ok(), "a small document still previews: {plan:?}");
}

/// POSTs a chunked body of `total` bytes in 64 KiB chunks, stopping when
/// the answer comes; answers its status and how many bytes were handed
/// to the connection by then.
async fn stream_body(node: &Node, path: &str, total: usize) -> (u16, usize) {
    let config = node.admin_tls.client_config().unwrap();
    let tcp = tokio::net::TcpStream::connect(node.api).await.unwrap();
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("tandem-node").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let sent = Arc::new(AtomicUsize::new(0));
    let feeder = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let chunk = Bytes::from(vec![b' '; 64 << 10]);
            while sent.load(Ordering::SeqCst) < total {
                if tx.send(chunk.clone()).await.is_err() {
                    return;
                }
                sent.fetch_add(chunk.len(), Ordering::SeqCst);
            }
        })
    };
    let body = Streamed(rx);
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", "tandem")
        .body(body)
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req))
        .await
        .expect("an answer within 30 s")
        .expect("an HTTP answer, not a dropped connection");
    let status = resp.status().as_u16();
    feeder.abort();
    let _ = resp.into_body().collect().await;
    (status, sent.load(Ordering::SeqCst))
}

/// A request body of unknown length (sent chunked), fed by a channel.
struct Streamed(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for Streamed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_accepted_configuration_commits_and_is_scheduled() {
    let _serial = SERIAL.lock().await;
    let node = start("limits-largest").await;
    let text = chain(MAX_PRIMITIVES, true);
    let started = Instant::now();
    let put = json!({ "expected_version": null, "text": text });
    let committed = node.admin.call(Method::PUT, "/config", Some(put)).await;
    assert!(committed.is_ok(), "accepted: {committed:?}");
    eprintln!(
        "{MAX_PRIMITIVES}-link chain ({} KiB): previewed and committed in {:?}",
        text.len() >> 10,
        started.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let started = Instant::now();
        let doc = status(&node).await;
        let started_on_node1 = doc["placement"]["resources"].as_object().map_or(0, |r| {
            r.values()
                .filter(|roles| roles["Started"] == json!(["node1"]))
                .count()
        });
        eprintln!(
            "status: {started_on_node1} resources placed, in {:?}",
            started.elapsed()
        );
        if started_on_node1 == MAX_PRIMITIVES {
            break;
        }
        assert!(Instant::now() < deadline, "no placement: {doc}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
