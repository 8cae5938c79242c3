//! The admin API's roles, end to end over mutual TLS: one node served
//! in-process, callers holding read-only, operator and admin certificates
//! from the cluster CA. Reads are open to every role; operator actions
//! need `operator`; replacing the configuration needs `admin`; a refusal is
//! a 403 that names the role, the request and the role it needs.

use std::path::{Path, PathBuf};
use std::time::Duration;
use tandem_daemon::settings::MemberEntry;
use tandem_daemon::{AdminFile, ApiClient, Authority, ClientError, DaemonConfig, Timing, TlsFiles};

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
    let file: PathBuf = dir.join(format!("{name}-admin.toml"));
    let admin = AdminFile {
        endpoints: vec![api.to_string()],
        tls,
    };
    std::fs::write(&file, toml::to_string_pretty(&admin).unwrap()).unwrap();
    ApiClient::from_file(&file).unwrap()
}

fn forbidden(result: Result<serde_json::Value, ClientError>, request: &str, needs: &str) {
    match result {
        Err(ClientError::Api { status, message }) => {
            assert_eq!(status, 403, "{message}");
            assert!(
                message.contains(request) && message.contains(needs),
                "the refusal must name the request and the role it needs: {message}"
            );
        }
        other => panic!("{request} must be refused with 403, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_may_do_only_what_it_is_allowed_and_a_refusal_is_a_clear_403() {
    let dir = std::env::temp_dir().join(format!("tandem-roles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ca = Authority::generate("roles").unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
    let config = DaemonConfig {
        cluster: "roles".into(),
        id: 1,
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        tls: identity(&ca, &dir, "node1", "node"),
        timing: Timing::default(),
        members: vec![MemberEntry {
            id: 1,
            name: "node1".into(),
            addr: "127.0.0.1:1".into(),
            api: "127.0.0.1:2".into(),
            witness: false,
        }],
        join: None,
    };
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let node = tokio::spawn(tandem_daemon::serve(config, Some(ready_tx), async {
        let _ = stop_rx.await;
    }));
    let (_, api) = tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .expect("node ready within 30 s")
        .expect("node started");
    let viewer = client(
        &dir,
        api,
        identity(&ca, &dir, "viewer", "read-only"),
        "viewer",
    );
    let operator = client(&dir, api, identity(&ca, &dir, "op", "operator"), "op");
    let admin = client(&dir, api, identity(&ca, &dir, "admin", "admin"), "admin");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = viewer.call(hyper::Method::GET, "/status", None).await;
        if status
            .as_ref()
            .is_ok_and(|s| s["cluster"]["dc"].is_string())
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no DC: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let config = include_str!("../../../examples/web-cluster.toml");
    let put = serde_json::json!({ "expected_version": 0, "text": config });
    let property = serde_json::json!({ "name": "stonith-enabled", "value": "false" });

    forbidden(
        viewer
            .call(hyper::Method::PUT, "/config", Some(put.clone()))
            .await,
        "PUT /config",
        "Admin",
    );
    forbidden(
        viewer
            .call(hyper::Method::POST, "/property", Some(property.clone()))
            .await,
        "POST /property",
        "Operator",
    );
    forbidden(
        operator
            .call(hyper::Method::PUT, "/config", Some(put.clone()))
            .await,
        "PUT /config",
        "Admin",
    );
    let read = viewer
        .call(hyper::Method::GET, "/config", None)
        .await
        .unwrap();
    assert_eq!(
        read["expected_version"], 0,
        "refused writes changed nothing"
    );

    admin
        .call(hyper::Method::PUT, "/config", Some(put))
        .await
        .unwrap();
    operator
        .call(hyper::Method::POST, "/property", Some(property))
        .await
        .unwrap();

    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), node).await;
    let _ = std::fs::remove_dir_all(&dir);
}
