//! The controller's reach in the simulation: its operations travel to the
//! target's executor over the simulated network (the same cuts, loss and
//! delays as Raft's messages) and are served there by the production
//! handler (`executor::serve_request`); a fence is a simulated power
//! switch, out of band like a real one, that powers the target off.

use crate::hosts::Hosts;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tandem_cluster::sim::SimNet;
use tandem_cluster::{BoxFuture, ClusterNode, FenceRecord, NodeId};
use tandem_daemon::executor::{serve_request, ExecRequest, LocalExecutor};
use tandem_daemon::oprecord::Outcome;
use tandem_daemon::Reach;
use tandem_model::Cluster;

/// The daemons alive now, by node name.
pub type Daemons = Arc<Mutex<BTreeMap<String, (Arc<ClusterNode>, Arc<LocalExecutor>)>>>;

pub fn id_of(name: &str) -> NodeId {
    name.trim_start_matches("node")
        .parse()
        .expect("simulated nodes are named nodeN")
}

/// One daemon life's reach.
pub struct SimReach {
    pub me: NodeId,
    /// This daemon's life on the network.
    pub inc: u64,
    pub node: Arc<ClusterNode>,
    pub net: SimNet,
    pub hosts: Hosts,
    pub daemons: Daemons,
}

/// Cuts `node` off from every other of `ids`, both ways.
pub fn isolate(net: &SimNet, node: NodeId, ids: &[NodeId]) {
    let mut net = net.state();
    for other in ids.iter().copied().filter(|o| *o != node) {
        net.cuts.insert((node, other));
        net.cuts.insert((other, node));
    }
}

/// Isolates `to` if the world asked for a cut at the next start and no
/// other node is isolated so already.
fn cut_if_asked(hosts: &Hosts, net: &SimNet, to: NodeId) {
    let mut state = hosts.state();
    if state.isolated.is_some() {
        return;
    }
    let Some(lasting) = state.cut_at_next_start.take() else {
        return;
    };
    state.isolated = Some((to, state.now_ms() + lasting));
    let ids: Vec<NodeId> = state.hosts.keys().map(|n| id_of(n)).collect();
    drop(state);
    isolate(net, to, &ids);
}

impl Reach for SimReach {
    fn execute(
        &self,
        node: &str,
        request: ExecRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Outcome, String>> {
        let (net, daemons) = (self.net.clone(), self.daemons.clone());
        let (from, inc, to) = (self.me, self.inc, id_of(node));
        let target = node.to_string();
        let hosts = self.hosts.clone();
        Box::pin(async move {
            // Timed with the sending, after the DC recorded it pending.
            if matches!(request.action.as_str(), "start" | "promote") {
                cut_if_asked(&hosts, &net, to);
            }
            let frame = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
            let answer = move |_endpoint, frame: Vec<u8>| async move {
                let daemon = daemons.lock().unwrap().get(&target).cloned();
                let Some((node, executor)) = daemon else {
                    return Err(std::io::Error::other("no daemon"));
                };
                let request: ExecRequest =
                    serde_json::from_slice(&frame).map_err(std::io::Error::other)?;
                let served = serve_request(&node, &executor, request).await;
                serde_json::to_vec(&served).map_err(std::io::Error::other)
            };
            let carried =
                tokio::time::timeout(timeout, net.carry_held(from, inc, to, frame, answer));
            let reply = match carried.await {
                Err(_) => return Err("timed out".into()),
                Ok(Err(e)) => return Err(format!("cannot reach the executor: {e}")),
                Ok(Ok(reply)) => reply,
            };
            let served: Result<Outcome, String> =
                serde_json::from_slice(&reply).map_err(|e| format!("bad reply: {e}"))?;
            served.map_err(|e| format!("refused: {e}"))
        })
    }

    fn fence(&self, _cluster: &Cluster, target: &str) -> BoxFuture<'static, Result<(), String>> {
        let (hosts, net, node) = (self.hosts.clone(), self.net.clone(), self.node.clone());
        let target = target.to_string();
        let me = self.node.view().node_name;
        Box::pin(async move {
            let (took, fails) = {
                let mut h = hosts.state();
                let failing = h.agents_fail;
                let took = h.rng().range(50, 800);
                (took, failing && h.rng().chance(150))
            };
            tokio::time::sleep(Duration::from_millis(took)).await;
            let lies = hosts.state().lying_fence;
            if !fails && !lies {
                hosts.power_off(&target);
                hosts.state().fenced += 1;
                net.down(id_of(&target));
            }
            let record = FenceRecord {
                target: target.clone(),
                action: "off".into(),
                device: "sim-power".into(),
                executor: me,
                ok: !fails,
                at_ms: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64),
                detail: if fails {
                    "the switch did not answer".into()
                } else {
                    String::new()
                },
            };
            tandem_daemon::record_fence(&node, target, vec![record])
                .await
                .map(drop)
        })
    }
}
