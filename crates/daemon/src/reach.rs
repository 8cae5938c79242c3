//! How the controller reaches beyond its own process: a node's executor
//! and the fence devices. [`Remote`] does it for real (HTTPS to each
//! node's `POST /execute`, fence agents run here); a simulation can carry
//! the same calls over a simulated network to simulated agents, so the
//! controller under test is the production one.

use crate::executor::ExecRequest;
use crate::oprecord::Outcome;
use hyper::Method;
use std::sync::Arc;
use std::time::Duration;
use tandem_cluster::{BoxFuture, ClusterNode};
use tandem_model::Cluster;

/// The controller's reach. Both calls must act only when their future is
/// first polled: the controller commits an operation's pending record
/// between making the call and polling it, so an operation never runs
/// unrecorded.
pub trait Reach: Send + Sync + 'static {
    /// Sends `request` to `node`'s executor, waiting at most `timeout`.
    /// `Err` when no result came back (unreachable, refused, garbled): the
    /// operation may or may not have run, which is not the resource's
    /// failure.
    fn execute(
        &self,
        node: &str,
        request: ExecRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Outcome, String>>;

    /// Fences `target` with the devices `cluster` configures and records
    /// the attempts (a success records the node down).
    fn fence(&self, cluster: &Cluster, target: &str) -> BoxFuture<'static, Result<(), String>>;
}

/// The real thing: executors over HTTPS, fence agents on this node.
pub struct Remote {
    pub node: Arc<ClusterNode>,
    pub client: Arc<crate::ApiClient>,
    /// The agent settings fence devices run with.
    pub agents: tandem_agents::ExecConfig,
}

impl Reach for Remote {
    fn execute(
        &self,
        node: &str,
        request: ExecRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Outcome, String>> {
        let client = self.client.clone();
        // The replicated membership carries each node's API address, so a
        // node added at run time is reachable at once.
        let endpoint = self
            .node
            .members()
            .into_values()
            .find(|m| m.name == node && !m.witness && !m.api.is_empty())
            .map(|m| m.api);
        let node = node.to_string();
        Box::pin(async move {
            let endpoint = endpoint.ok_or_else(|| format!("no API address known for {node}"))?;
            let body = serde_json::to_value(&request).map_err(|e| e.to_string())?;
            match client
                .call_one(&endpoint, Method::POST, "/execute", Some(body), timeout)
                .await
            {
                Ok((200, value)) => {
                    serde_json::from_value::<Outcome>(value).map_err(|e| format!("bad reply: {e}"))
                }
                Ok((status, value)) => Err(format!(
                    "refused: {status} {}",
                    value["error"].as_str().unwrap_or("")
                )),
                Err(e) => Err(format!("cannot reach the executor: {e}")),
            }
        })
    }

    fn fence(&self, cluster: &Cluster, target: &str) -> BoxFuture<'static, Result<(), String>> {
        let action = crate::fencing::configured_action(cluster);
        let fenced = crate::fencing::fence_and_record(
            self.node.clone(),
            cluster.clone(),
            self.agents.clone(),
            target.to_string(),
            action,
        );
        Box::pin(async move { fenced.await.map(drop) })
    }
}
