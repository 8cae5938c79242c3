//! Carries the attributes agents set through the Pacemaker shims
//! (`crm_attribute`, `crm_master`, `attrd_updater` write the node-local
//! attribute store) into the replicated status, and keeps the store's
//! view of the cluster (members, quorum, where resources run) current for
//! `crm_node` and `crm_resource`. Polled: agents are processes, not tasks.

use crate::executor::LocalExecutor;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tandem_agents::attrs::{AttrStore, Lifetime};
use tandem_cluster::{ClusterNode, Command};

const SYNC_EVERY: Duration = Duration::from_millis(250);

/// Attribute names the cluster itself owns; agents do not set them.
fn owned_by_cluster(name: &str) -> bool {
    // Also the daemon's own (`shutdown` while it leaves cleanly) and the
    // operator's (`#confirmed-down`): agents never set those.
    name.starts_with("fail-count-")
        || name.starts_with("last-failure-")
        || name.starts_with('#')
        || name == crate::controller::SHUTDOWN
}

/// Runs until `shutdown` resolves.
pub async fn run(
    node: Arc<ClusterNode>,
    executor: Arc<LocalExecutor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let store = AttrStore::new(executor.attr_store.clone());
    let me = executor.node_name().to_string();
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(SYNC_EVERY) => {}
        }
        let view = node.view();
        let state = node.replicated();
        let members: Vec<String> = view
            .voters
            .iter()
            .filter(|v| !v.witness && v.alive)
            .map(|v| v.name.clone())
            .collect();
        let mut locations: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, status) in &state.status {
            for (rsc, ops) in &status.resources {
                let running = ops
                    .ops
                    .get(&format!("{rsc}_last_0"))
                    .is_some_and(|op| matches!(op.rc_code, 0 | 8) && op.operation != "stop");
                if running {
                    locations.entry(rsc.clone()).or_default().push(name.clone());
                }
            }
        }
        let local = store.update(|data| {
            data.local_node = Some(me.clone());
            data.members = members;
            data.quorate = Some(view.quorum);
            data.locations = locations;
            data.attributes.get(&me).cloned().unwrap_or_default()
        });
        let Ok(local) = local else { continue };
        let replicated_transient = state.status.get(&me).map(|s| &s.transient);
        let replicated_permanent = state.node_attributes.get(&me);
        let mut changes = Vec::new();
        for (name, attr) in local.iter().filter(|(n, _)| !owned_by_cluster(n)) {
            let (current, permanent) = match attr.lifetime {
                Lifetime::Reboot => (replicated_transient.and_then(|t| t.get(name)), false),
                Lifetime::Forever => (replicated_permanent.and_then(|t| t.get(name)), true),
            };
            if current != Some(&attr.value) {
                changes.push(change(&me, name, Some(attr.value.clone()), permanent));
            }
        }
        // Deleted through a shim (crm_master -D): gone locally, still
        // replicated as transient.
        if let Some(t) = replicated_transient {
            for name in t
                .keys()
                .filter(|n| !owned_by_cluster(n) && !local.contains_key(*n))
            {
                changes.push(change(&me, name, None, false));
            }
        }
        if !changes.is_empty() && view.quorum {
            if let Err(e) = node.propose(Command::Batch(changes)).await {
                tracing::debug!("attribute sync postponed: {e}");
            }
        }
    }
}

fn change(node: &str, name: &str, value: Option<String>, permanent: bool) -> Command {
    if permanent {
        Command::SetNodeAttribute {
            node: node.into(),
            name: name.into(),
            value,
        }
    } else {
        Command::SetTransient {
            node: node.into(),
            name: name.into(),
            value,
        }
    }
}
