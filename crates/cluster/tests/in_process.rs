//! Three and two-plus-witness clusters in one process on loopback: a DC is
//! elected, a committed config survives the loss of the DC, a stale write
//! conflicts, a damaged data file and a foreign certificate are refused.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tandem_cluster::{
    Authority, ClusterNode, Command, CommandResult, Member, NodeSettings, Timing, TlsFiles,
};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn write_identity(ca: &Authority, dir: &Path, name: &str) -> TlsFiles {
    let issued = ca.issue(name, "node").unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), issued.cert_pem).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), issued.key_pem).unwrap();
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    }
}

struct Setup {
    dir: PathBuf,
    members: BTreeMap<u64, Member>,
    tls: BTreeMap<u64, TlsFiles>,
}

/// A test's files go with it, passed or failed (a panic unwinds through here).
impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn setup(name: &str, witnesses: &[u64], n: u64) -> Setup {
    let dir = scratch(name);
    let ca = Authority::generate(name).unwrap();
    let mut members = BTreeMap::new();
    let mut tls = BTreeMap::new();
    for id in 1..=n {
        let node = format!("node{id}");
        members.insert(
            id,
            Member {
                name: node.clone(),
                addr: free_addr().to_string(),
                api: String::new(),
                witness: witnesses.contains(&id),
            },
        );
        tls.insert(id, write_identity(&ca, &dir, &node));
    }
    Setup { dir, members, tls }
}

impl Setup {
    fn settings(&self, id: u64) -> NodeSettings {
        NodeSettings {
            id,
            data_dir: self.dir.join(format!("data{id}")),
            listen: self.members[&id].addr.parse().unwrap(),
            tls: self.tls[&id].clone(),
            members: self.members.clone(),
            timing: Timing::default(),
            joining: false,
        }
    }

    async fn start(&self, id: u64) -> ClusterNode {
        ClusterNode::start(self.settings(id)).await.unwrap()
    }
}

async fn dc_among(nodes: &BTreeMap<u64, ClusterNode>) -> u64 {
    for _ in 0..250 {
        let dcs: Vec<_> = nodes.values().filter_map(|n| n.view().dc_id).collect();
        if let Some(&dc) = dcs.first() {
            if nodes.contains_key(&dc) && dcs.iter().all(|d| *d == dc) && dcs.len() == nodes.len() {
                return dc;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no agreed DC within 5 s");
}

fn put(expected: Option<u64>, text: &str) -> Command {
    Command::PutConfig {
        expected_version: expected,
        text: text.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_dc_elects_another_and_keeps_the_committed_config() {
    let s = setup("failover", &[], 3);
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, s.start(id).await);
    }
    let dc = dc_among(&nodes).await;
    let r = nodes[&1].propose(put(Some(0), "v1")).await.unwrap();
    assert_eq!(r, CommandResult::Applied { config_version: 1 });
    let stale = nodes[&2].propose(put(Some(0), "v1-other")).await.unwrap();
    assert_eq!(
        stale,
        CommandResult::Conflict {
            expected: 0,
            actual: 1
        }
    );
    nodes.remove(&dc).unwrap().shutdown().await;
    let new_dc = dc_among(&nodes).await;
    assert_ne!(new_dc, dc);
    for _ in 0..100 {
        if nodes.values().all(|n| n.view().quorum) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in nodes.values() {
        assert_eq!(n.replicated().config_text, "v1");
        assert!(n.view().quorum, "{:?}", n.view());
    }
    for n in nodes.into_values() {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_never_becomes_dc_and_keeps_quorum_with_either_data_node() {
    for lost in [1u64, 2] {
        let s = setup(&format!("witness{lost}"), &[3], 3);
        let keep = 3 - lost;
        let mut nodes = BTreeMap::new();
        for id in 1..=3 {
            nodes.insert(id, s.start(id).await);
        }
        let dc = dc_among(&nodes).await;
        assert_ne!(dc, 3, "the witness must never be DC");
        nodes.remove(&lost).unwrap().shutdown().await;
        let dc = dc_among(&nodes).await;
        assert_eq!(dc, keep);
        let mut applied = false;
        for _ in 0..100 {
            let r = nodes[&keep].propose(put(None, "after-loss")).await;
            if matches!(r, Ok(CommandResult::Applied { .. })) {
                applied = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(applied, "the surviving data node must commit within 5 s");
        for n in nodes.into_values() {
            n.shutdown().await;
        }
    }
}

#[tokio::test]
async fn a_damaged_data_file_is_refused_with_a_clear_message() {
    let s = setup("damaged", &[], 1);
    let node = s.start(1).await;
    node.wait_for_dc(Duration::from_secs(5)).await.unwrap();
    node.shutdown().await;
    let file = s.dir.join("data1/raft.redb");
    let len = std::fs::metadata(&file).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len / 3).unwrap();
    drop(f);
    let err = ClusterNode::start(s.settings(1))
        .await
        .err()
        .expect("must refuse");
    let msg = err.to_string();
    assert!(
        msg.contains("damaged or truncated") && msg.contains("raft.redb"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_certificate_from_another_ca_cannot_join() {
    let s = setup("wrong-ca", &[], 3);
    let foreign = Authority::generate("other").unwrap();
    let mut bad = s.settings(3);
    let foreign_dir = scratch("wrong-ca-foreign");
    bad.tls = write_identity(&foreign, &foreign_dir, "node3");
    let n1 = s.start(1).await;
    let n2 = s.start(2).await;
    let n3 = ClusterNode::start(bad).await.unwrap();
    n1.wait_for_dc(Duration::from_secs(5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let view = n1.view();
    let third = view.voters.iter().find(|v| v.id == 3).unwrap();
    assert!(
        !third.alive,
        "node3 with a foreign CA must not be heard: {view:?}"
    );
    assert_eq!(n3.view().dc_id, None);
    for n in [n1, n2, n3] {
        n.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(foreign_dir);
}
