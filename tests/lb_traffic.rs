//! The lb under real traffic on loopback: planned drain under continuous
//! load fails no request and empties the backend; a killed backend leaves
//! the pool after fall × interval while traffic continues; cookie and
//! source-IP persistence hold (and let go on drain); cluster events and the
//! all-down policy act at once. Load is bounded in time and count.

mod lb_common;

use lb_common::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_lb::{BackendChange, LbEvent};

/// Concurrent clients hammering `addr` until `stop`, at most `cap` requests
/// each. Returns (ok, failed) counters.
fn load(
    addr: std::net::SocketAddr,
    clients: usize,
    cap: u64,
    stop: Arc<AtomicBool>,
) -> (Arc<AtomicU64>, Arc<AtomicU64>, tokio::task::JoinSet<()>) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
        set.spawn(async move {
            let c = client();
            for _ in 0..cap {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match get(&c, addr, "/", &[]).await {
                    Ok((200, _, _)) => ok.fetch_add(1, Ordering::Relaxed),
                    Ok((s, _, b)) => {
                        eprintln!("failed: {s} {b}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        eprintln!("failed: {e}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        });
    }
    (ok, failed, set)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_under_load_fails_no_request_and_empties_the_backend() {
    let delay = Duration::from_millis(5);
    let b = [
        Backend::start("a", delay).await,
        Backend::start("b", delay).await,
        Backend::start("c", delay).await,
    ];
    let (lb, addr) = start(config(
        "http",
        &[&b[0], &b[1], &b[2]],
        "",
        "",
        "algorithm = \"least-connections\"",
    ))
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, mut set) = load(addr, 8, 2_000, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(b[0].hits() > 0, "a served before the drain");
    let mut progress = lb.drain("app", "a").unwrap();
    let mut last = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(p) = tokio::time::timeout_at(deadline.into(), progress.recv())
        .await
        .unwrap()
    {
        last = Some(p);
    }
    let last = last.unwrap();
    assert!(last.done && last.remaining == 0, "{last:?}");
    let hits_after_drain = b[0].hits();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        b[0].hits(),
        hits_after_drain,
        "no new request reached the drained backend"
    );
    // Undrain: traffic returns (slow start off here).
    lb.undrain("app", "a").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    while set.join_next().await.is_some() {}
    assert!(
        b[0].hits() > hits_after_drain,
        "undrained backend takes traffic again"
    );
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("drain under load: {ok} ok, {failed} failed");
    assert_eq!(failed, 0);
    assert!(ok > 100);
    let status = lb.status();
    assert_eq!(status.pools[0].backends[0].active, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backend_leaves_after_fall_times_interval_and_traffic_continues() {
    let a = Backend::start("a", Duration::ZERO).await;
    let bk = Backend::start("b", Duration::ZERO).await;
    let (lb, addr) = start(config("http", &[&a, &bk], "", "", FAST_HEALTH)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, mut set) = load(addr, 4, 5_000, stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed_at = Instant::now();
    drop(bk);
    let removed = loop {
        let s = lb.status();
        if !s.pools[0].backends[1].up {
            break killed_at.elapsed();
        }
        assert!(killed_at.elapsed() < Duration::from_secs(3), "not removed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // fall (2) × interval (50 ms) plus one probe timeout (200 ms); the 3 s
    // bound above leaves room for a loaded CI machine and still tells the
    // configured checks from the default ones (5 s interval).
    eprintln!("killed backend removed after {removed:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    while set.join_next().await.is_some() {}
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "connect failures are retried on another backend"
    );
    assert!(ok.load(Ordering::Relaxed) > 50);
    let metrics = lb.metrics_text();
    assert!(
        metrics.contains("tandem_lb_backend_up{pool=\"app\",backend=\"b\"} 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn cookie_persistence_holds_survives_restart_and_is_released_by_drain() {
    let a = Backend::start("a", Duration::ZERO).await;
    let mut bk = Backend::start("b", Duration::ZERO).await;
    let pool = format!("[pool.persistence]\nkind = \"cookie\"\nname = \"SRV\"\n{FAST_HEALTH}");
    let (lb, addr) = start(config("http", &[&a, &bk], "", "", &pool)).await;
    let c = client();
    let (_, cookie, body) = get(&c, addr, "/", &[]).await.unwrap();
    let cookie = cookie.expect("first response pins the client");
    let pinned = served_by(&body).to_string();
    let pair = cookie.split(';').next().unwrap().to_string();
    for _ in 0..20 {
        let (s, again, body) = get(&c, addr, "/", &[("cookie", &pair)]).await.unwrap();
        assert_eq!((s, served_by(&body)), (200, pinned.as_str()));
        assert_eq!(again, None, "no new cookie while pinned");
    }
    // Restart b on the same address: a cookie for b still leads to b.
    let b_addr = bk.addr;
    let b_pair = if pinned == "b" {
        pair.clone()
    } else {
        // learn b's cookie by draining a briefly
        let _ = lb.drain("app", "a").unwrap();
        let (_, ck, _) = get(&c, addr, "/", &[("cookie", &pair)]).await.unwrap();
        lb.undrain("app", "a").unwrap();
        ck.unwrap().split(';').next().unwrap().to_string()
    };
    drop(bk);
    tokio::time::sleep(Duration::from_millis(300)).await;
    bk = Backend::start_on("b", b_addr, Duration::ZERO).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while !lb.status().pools[0].backends[1].up {
        assert!(Instant::now() < deadline, "b never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, _, body) = get(&c, addr, "/", &[("cookie", &b_pair)]).await.unwrap();
    assert_eq!(
        served_by(&body),
        "b",
        "persistence survives a backend restart"
    );
    // Drain b: its clients are re-placed and re-pinned.
    let _ = lb.drain("app", "b").unwrap();
    let (_, new_cookie, body) = get(&c, addr, "/", &[("cookie", &b_pair)]).await.unwrap();
    assert_eq!(served_by(&body), "a");
    assert!(new_cookie.is_some());
    drop(bk);
}

#[tokio::test]
async fn source_ip_persistence_holds_at_l7_and_l4() {
    let b: Vec<Backend> = futures_join(["a", "b", "c", "d"]).await;
    let refs: Vec<&Backend> = b.iter().collect();
    for mode in ["http", "tcp"] {
        let (_lb, addr) = start(config(
            mode,
            &refs,
            "",
            "",
            "[pool.persistence]\nkind = \"source-ip\"",
        ))
        .await;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let c = client(); // a new connection each time
            let (_, _, body) = get(&c, addr, "/", &[]).await.unwrap();
            seen.insert(served_by(&body).to_string());
        }
        assert_eq!(
            seen.len(),
            1,
            "{mode}: one client address, one backend: {seen:?}"
        );
    }
}

async fn futures_join<const N: usize>(names: [&str; N]) -> Vec<Backend> {
    let mut v = Vec::new();
    for n in names {
        v.push(Backend::start(n, Duration::ZERO).await);
    }
    v
}

#[tokio::test]
async fn a_lost_node_leaves_every_pool_at_once_and_rejoins() {
    let a = Backend::start("a", Duration::ZERO).await;
    let bk = Backend::start("b", Duration::ZERO).await;
    let (lb, addr) = start(config("http", &[&a, &bk], "", "", "")).await;
    lb.events()
        .send(LbEvent::Backend {
            pool: None,
            backend: "b".into(),
            change: BackendChange::Lost,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let c = client();
    for _ in 0..10 {
        let (_, _, body) = get(&c, addr, "/", &[]).await.unwrap();
        assert_eq!(served_by(&body), "a");
    }
    lb.events()
        .send(LbEvent::Backend {
            pool: None,
            backend: "b".into(),
            change: BackendChange::Rejoined,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let (_, _, body) = get(&c, addr, "/", &[]).await.unwrap();
        seen.insert(served_by(&body).to_string());
    }
    assert_eq!(seen.len(), 2);
}

#[tokio::test]
async fn all_down_policy_is_explicit() {
    let a = Backend::start("a", Duration::ZERO).await;
    let failing = format!("{FAST_HEALTH}expect_status = 418\n");
    for (policy, expect) in [("fail-closed", 503), ("serve-all", 200)] {
        let pool = format!("all_down = \"{policy}\"\n{failing}");
        let (lb, addr) = start(config("http", &[&a], "", "", &pool)).await;
        let deadline = Instant::now() + Duration::from_secs(3);
        while lb.status().pools[0].backends[0].up {
            assert!(Instant::now() < deadline, "health check never failed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (s, _, _) = get(&client(), addr, "/", &[]).await.unwrap();
        assert_eq!(s, expect, "{policy}");
        // A lost node is never served, whatever the policy.
        lb.events()
            .send(LbEvent::Backend {
                pool: None,
                backend: "a".into(),
                change: BackendChange::Lost,
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (s, _, _) = get(&client(), addr, "/", &[]).await.unwrap();
        assert_eq!(s, 503, "{policy}: lost backends are excluded");
    }
}

#[tokio::test]
async fn pool_updates_replace_backends_without_losing_state() {
    let a = Backend::start("a", Duration::ZERO).await;
    let bk = Backend::start("b", Duration::ZERO).await;
    let (lb, addr) = start(config("http", &[&a], "", "", "")).await;
    lb.events()
        .send(LbEvent::Pool(tandem_lb::PoolUpdate {
            pool: "app".into(),
            backends: vec![
                tandem_lb::BackendConfig {
                    name: "a".into(),
                    addr: a.addr,
                    weight: 1,
                },
                tandem_lb::BackendConfig {
                    name: "b".into(),
                    addr: bk.addr,
                    weight: 1,
                },
            ],
        }))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let c = client();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let (_, _, body) = get(&c, addr, "/", &[]).await.unwrap();
        seen.insert(served_by(&body).to_string());
    }
    assert_eq!(seen.len(), 2);
    assert_eq!(
        lb.status().pools[0].backends[0].requests,
        3,
        "a kept its counters"
    );
}

#[tokio::test]
async fn consecutive_5xx_eject_a_backend_passively() {
    let a = Backend::start("a", Duration::ZERO).await;
    let b = Backend::start("b", Duration::ZERO).await;
    let pool =
        "[pool.outlier]\nconsecutive_errors = 3\neject_ms = 60000\nmax_ejection_percent = 50\n[pool.health]\nkind = \"none\"";
    let (lb, addr) = start(config("http", &[&a, &b], "", "", pool)).await;
    let c = client();
    for _ in 0..6 {
        assert_eq!(
            get(&c, addr, "/fail", &[]).await.unwrap().0,
            500,
            "5xx passed through"
        );
    }
    let ejected: Vec<String> = lb.status().pools[0]
        .backends
        .iter()
        .filter(|b| b.ejected)
        .map(|b| b.name.clone())
        .collect();
    assert_eq!(
        ejected.len(),
        1,
        "one ejected, the other is the last: {ejected:?}"
    );
    for _ in 0..4 {
        let (status, _, body) = get(&c, addr, "/", &[]).await.unwrap();
        assert_eq!(status, 200);
        assert_ne!(served_by(&body), ejected[0], "the ejected one gets nothing");
    }
    let m = lb.metrics_text();
    assert!(
        m.contains(&format!(
            "tandem_lb_backend_errors_total{{pool=\"app\",backend=\"{}\",class=\"Status5xx\"}} 3",
            ejected[0]
        )),
        "{m}"
    );
}

/// Errors from every backend at once (a network fault, this lb's own
/// trouble) never eject the pool's last eligible backend: passive
/// detection alone never empties a pool.
#[tokio::test]
async fn passive_ejection_never_takes_the_last_backend() {
    let a = Backend::start("a", Duration::ZERO).await;
    let pool =
        "[pool.outlier]\nconsecutive_errors = 2\neject_ms = 60000\n[pool.health]\nkind = \"none\"";
    let (lb, addr) = start(config("http", &[&a], "", "", pool)).await;
    let c = client();
    for _ in 0..8 {
        assert_eq!(get(&c, addr, "/fail", &[]).await.unwrap().0, 500);
    }
    assert!(!lb.status().pools[0].backends[0].ejected);
    assert_eq!(
        get(&c, addr, "/", &[]).await.unwrap().0,
        200,
        "still served"
    );
}

/// The pool of a fail-over service is empty between its stop on one node
/// and its start on the next: with `hold_ms`, requests (HTTP) and
/// connections (TCP) wait for the new backend instead of failing; past
/// the hold, or beyond `hold_max`, they fail as before.
#[tokio::test]
async fn an_empty_pool_holds_requests_until_a_backend_joins() {
    let next = Backend::start("next", Duration::ZERO).await;
    for mode in ["http", "tcp"] {
        let (lb, addr) = start(config(mode, &[], "", "", "hold_ms = 3000")).await;
        let c = client();
        let joined = Instant::now();
        let join = {
            let events = lb.events();
            let addr = next.addr;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(400)).await;
                events
                    .send(LbEvent::Pool(tandem_lb::PoolUpdate {
                        pool: "app".into(),
                        backends: vec![tandem_lb::BackendConfig {
                            name: "next".into(),
                            addr,
                            weight: 1,
                        }],
                    }))
                    .await
                    .unwrap();
            })
        };
        let (status, _, body) = get(&c, addr, "/", &[]).await.unwrap();
        assert_eq!(status, 200, "{mode}: held, then served");
        assert_eq!(served_by(&body), "next", "{mode}");
        let waited = joined.elapsed();
        assert!(
            waited >= Duration::from_millis(350) && waited < Duration::from_millis(2500),
            "{mode}: held about until the backend joined, not the whole hold: {waited:?}"
        );
        join.await.unwrap();
    }
    // Nothing joins: the hold ends in a failure after about hold_ms.
    let (_lb, addr) = start(config("http", &[], "", "", "hold_ms = 300")).await;
    let began = Instant::now();
    let (status, _, _) = get(&client(), addr, "/", &[]).await.unwrap();
    assert_eq!(status, 503);
    assert!(
        began.elapsed() >= Duration::from_millis(280),
        "{:?}",
        began.elapsed()
    );
    // No hold configured: fails at once.
    let (_lb, addr) = start(config("http", &[], "", "", "")).await;
    let began = Instant::now();
    assert_eq!(get(&client(), addr, "/", &[]).await.unwrap().0, 503);
    assert!(
        began.elapsed() < Duration::from_millis(250),
        "{:?}",
        began.elapsed()
    );
}

/// A held request does not wait for nothing: when the only eligible
/// backend is one that just failed it (a one-backend pool whose server is
/// down), it is held only briefly, not the whole `hold_ms`.
#[tokio::test]
async fn a_request_whose_only_backend_failed_is_not_held_long() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let text = format!(
        "[admin]\nbind = \"127.0.0.1:0\"\n[[listener]]\nname = \"front\"\nbind = \"127.0.0.1:0\"\nmode = \"http\"\npool = \"app\"\n[[pool]]\nname = \"app\"\nhold_ms = 5000\n[pool.health]\nkind = \"none\"\n[[pool.backend]]\nname = \"gone\"\naddr = \"{closed}\"\n"
    );
    let (_lb, addr) = start(tandem_lb::Config::parse(&text, "t.toml").unwrap()).await;
    let began = Instant::now();
    let (status, _, _) = get(&client(), addr, "/", &[]).await.unwrap();
    assert_eq!(status, 502, "its backend refused it");
    assert!(
        began.elapsed() < Duration::from_millis(2500),
        "not held for hold_ms: {:?}",
        began.elapsed()
    );
}

#[tokio::test]
async fn a_hold_beyond_hold_max_fails_at_once() {
    let (_lb, addr) = start(config("http", &[], "", "", "hold_ms = 2000\nhold_max = 1")).await;
    let first = tokio::spawn(async move { get(&client(), addr, "/", &[]).await.unwrap().0 });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let began = Instant::now();
    assert_eq!(get(&client(), addr, "/", &[]).await.unwrap().0, 503);
    assert!(
        began.elapsed() < Duration::from_millis(1000),
        "the second is not held: {:?}",
        began.elapsed()
    );
    assert_eq!(first.await.unwrap(), 503, "the first was held, then failed");
}

/// Ask the lb's DNS responder; returns (response code, addresses, TTLs).
async fn resolve(
    dns: std::net::SocketAddr,
    name: &str,
    qtype: hickory_proto::rr::RecordType,
) -> (hickory_proto::op::ResponseCode, Vec<String>, Vec<u32>) {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::Name;
    use std::str::FromStr;
    let mut q = Message::new();
    q.set_id(7)
        .add_query(Query::query(Name::from_str(name).unwrap(), qtype));
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&q.to_vec().unwrap(), dns).await.unwrap();
    let mut buf = vec![0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let r = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(r.id(), 7);
    assert!(r.authoritative());
    let mut ips: Vec<String> = r.answers().iter().map(|a| a.data().to_string()).collect();
    ips.sort();
    (
        r.response_code(),
        ips,
        r.answers().iter().map(|a| a.ttl()).collect(),
    )
}

#[tokio::test]
async fn dns_answers_only_with_healthy_undrained_backends() {
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::RecordType;
    let a = Backend::start_on("a", "127.0.0.2:0".parse().unwrap(), Duration::ZERO).await;
    let bk = Backend::start_on("b", "127.0.0.3:0".parse().unwrap(), Duration::ZERO).await;
    let top = "[dns]\nbind = \"127.0.0.1:0\"\nttl_s = 3\n[[dns.name]]\nname = \"app.test.\"\npool = \"app\"";
    let (lb, _) = start(config("http", &[&a, &bk], top, "", FAST_HEALTH)).await;
    let dns = lb.dns_addr().unwrap();
    let (rc, ips, ttls) = resolve(dns, "app.test.", RecordType::A).await;
    assert_eq!(
        (rc, ips),
        (
            ResponseCode::NoError,
            vec!["127.0.0.2".to_string(), "127.0.0.3".to_string()]
        )
    );
    assert_eq!(ttls, vec![3, 3]);
    assert_eq!(
        resolve(dns, "APP.test.", RecordType::A).await.1.len(),
        2,
        "names are case-insensitive"
    );
    assert_eq!(
        resolve(dns, "other.test.", RecordType::A).await.0,
        ResponseCode::NXDomain
    );
    assert_eq!(
        resolve(dns, "app.test.", RecordType::AAAA).await,
        (ResponseCode::NoError, vec![], vec![])
    );
    // A node fails: its address leaves the answer.
    drop(bk);
    let deadline = Instant::now() + Duration::from_secs(3);
    while lb.status().pools[0].backends[1].up {
        assert!(Instant::now() < deadline, "b never went down");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        resolve(dns, "app.test.", RecordType::A).await.1,
        vec!["127.0.0.2".to_string()]
    );
    // Drained: out of DNS as well.
    let _ = lb.drain("app", "a").unwrap();
    assert_eq!(
        resolve(dns, "app.test.", RecordType::A).await,
        (ResponseCode::NoError, vec![], vec![])
    );
}

// Multi-threaded: the wait loop below sleeps its thread while checks run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_check_can_drain_weigh_and_take_down_a_backend() {
    use std::sync::Mutex;
    let a = Backend::start("a", Duration::ZERO).await;
    let bk = Backend::start("b", Duration::ZERO).await;
    // One agent answers for both backends (same address, one port).
    let says = Arc::new(Mutex::new("up\n".to_string()));
    let agent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent_port = agent.local_addr().unwrap().port();
    let s2 = says.clone();
    let agent_task = tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = agent.accept().await else {
                continue;
            };
            let line = s2.lock().unwrap().clone();
            let _ = tokio::io::AsyncWriteExt::write_all(&mut c, line.as_bytes()).await;
        }
    });
    let pool = format!(
        "[pool.health]\nkind = \"agent\"\nagent_port = {agent_port}\ninterval_ms = 30\nfast_interval_ms = 20\ntimeout_ms = 200\nfall = 1\nrise = 1\n"
    );
    let (lb, _) = start(config("http", &[&a, &bk], "", "", &pool)).await;
    let wait_for = |pred: &dyn Fn(&tandem_lb::BackendStatus) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let s = lb.status();
            if s.pools[0].backends.iter().all(pred) {
                return;
            }
            assert!(Instant::now() < deadline, "{:?}", s.pools[0].backends);
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    *says.lock().unwrap() = "up 40%\n".into();
    wait_for(&|b| b.agent_weight_pct == 40 && b.up);
    *says.lock().unwrap() = "drain\n".into();
    wait_for(&|b| b.agent_weight_pct == 0);
    *says.lock().unwrap() = "down maintenance\n".into();
    wait_for(&|b| !b.up);
    *says.lock().unwrap() = "ready\n".into();
    wait_for(&|b| b.up && b.agent_weight_pct == 100);
    agent_task.abort();
}
