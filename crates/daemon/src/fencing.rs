//! Fencing a node: which devices may act on it (the fencing topology's
//! levels in index order, or every device whose host list, host map or
//! dynamic `list` names the target), with each device's configured delay,
//! until one level succeeds. The DC runs the devices; every attempt goes
//! into the replicated fencing history.

use crate::opspec::parse_ms;
use std::collections::BTreeMap;
use tandem_agents::fence::{FenceAction, FenceRequest};
use tandem_agents::ExecConfig;
use tandem_cluster::FenceRecord;
use tandem_model::config::FencingTarget;
use tandem_model::{Cluster, Primitive};

/// How long a fencing record may wait for a DC to commit it.
const RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// A fence device as configured.
struct Device<'c> {
    primitive: &'c Primitive,
    params: BTreeMap<String, String>,
}

impl Device<'_> {
    fn id(&self) -> &str {
        &self.primitive.id
    }

    /// The plug name for `target` (pcmk_host_map `node:plug;...`), or the
    /// node name itself.
    fn plug_for(&self, target: &str) -> String {
        self.params
            .get("pcmk_host_map")
            .and_then(|map| {
                map.split([';', ' ', ','])
                    .filter_map(|e| e.split_once([':', '=']))
                    .find(|(node, _)| *node == target)
                    .map(|(_, plug)| plug.to_string())
            })
            .unwrap_or_else(|| target.to_string())
    }

    /// Whether the device can fence `target`: a static host list or map
    /// decides; without either, the device's own `list` is asked (and a
    /// device that cannot list is assumed to reach every node, as
    /// Pacemaker's `pcmk_host_check=status` does).
    fn can_fence(&self, config: &ExecConfig, target: &str) -> bool {
        if let Some(list) = self.params.get("pcmk_host_list") {
            return list.split([' ', ',', ';']).any(|n| n == target);
        }
        if let Some(map) = self.params.get("pcmk_host_map") {
            return map
                .split([';', ' ', ','])
                .filter_map(|e| e.split_once([':', '=']))
                .any(|(node, _)| node == target);
        }
        match tandem_agents::fence::list(config, &self.request(FenceAction::List, None)) {
            Ok(plugs) => plugs.iter().any(|p| p == target),
            Err(_) => true,
        }
    }

    fn request(&self, action: FenceAction, target: Option<String>) -> FenceRequest {
        let timeout_ms = self
            .params
            .get("pcmk_reboot_timeout")
            .or_else(|| self.params.get("timeout"))
            .and_then(|v| parse_ms(v))
            .unwrap_or(60_000);
        let params = self
            .params
            .iter()
            .filter(|(k, _)| !k.starts_with("pcmk_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        FenceRequest {
            agent: self.primitive.agent.clone(),
            action,
            target,
            params,
            timeout_ms,
        }
    }

    /// `pcmk_delay_base` plus a random share of `pcmk_delay_max`, so two
    /// partitions fencing each other do not shoot at the same instant.
    fn delay_ms(&self, target: &str) -> u64 {
        let get = |k: &str| self.params.get(k).and_then(|v| parse_ms(v)).unwrap_or(0);
        let base = get("pcmk_delay_base");
        let max = get("pcmk_delay_max");
        // A deterministic spread per (device, target) is enough here.
        let spread = if max > base {
            let h = target
                .bytes()
                .chain(self.id().bytes())
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
            h % (max - base)
        } else {
            0
        };
        base + spread
    }
}

fn devices(cluster: &Cluster) -> Vec<Device<'_>> {
    cluster
        .config
        .resources
        .iter()
        .flat_map(|r| r.primitives())
        .filter(|p| p.is_fencing_device())
        .map(|p| Device {
            primitive: p,
            params: p
                .instance
                .iter()
                .flat_map(|s| &s.pairs)
                .filter_map(|pair| Some((pair.name.clone(), pair.value.clone()?)))
                .collect(),
        })
        .collect()
}

/// The ids of the configured fence devices.
pub fn device_ids(cluster: &Cluster) -> Vec<String> {
    devices(cluster)
        .iter()
        .map(|d| d.primitive.id.clone())
        .collect()
}

/// Whether fencing is enabled and any fence device is configured.
pub fn configured(cluster: &Cluster) -> bool {
    fencing_enabled(cluster) && !devices(cluster).is_empty()
}

/// `stonith-enabled` (or its new name `fencing-enabled`), default true.
pub fn fencing_enabled(cluster: &Cluster) -> bool {
    let value = cluster
        .config
        .option("fencing-enabled")
        .or_else(|| cluster.config.option("stonith-enabled"));
    !crate::opspec::is_false(value)
}

/// The topology levels for `target` in index order, as device id lists.
fn levels(cluster: &Cluster, target: &str) -> Vec<Vec<String>> {
    let mut levels: Vec<_> = cluster
        .config
        .fencing_topology
        .iter()
        .filter(|l| match &l.target {
            FencingTarget::Node(n) => n == target,
            FencingTarget::Pattern(p) => pattern_matches(p, target),
            FencingTarget::Attribute { name, value } => cluster
                .config
                .nodes
                .iter()
                .find(|n| n.uname == target)
                .is_some_and(|n| {
                    tandem_model::config::first_value(&n.attributes, name) == Some(value.as_str())
                }),
        })
        .collect();
    levels.sort_by_key(|l| l.index);
    levels.into_iter().map(|l| l.devices.clone()).collect()
}

/// Topology patterns are regular expressions in Pacemaker; tandem accepts
/// the common forms: a literal, `prefix.*`, and `^...$` anchors.
fn pattern_matches(pattern: &str, name: &str) -> bool {
    let p = pattern.trim_start_matches('^').trim_end_matches('$');
    match p.strip_suffix(".*") {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    }
}

/// Fences `target` with `action` (`reboot` or `off`), trying the levels in
/// order; returns every attempt, the last one telling the outcome.
pub fn fence(
    cluster: &Cluster,
    config: &ExecConfig,
    target: &str,
    action: FenceAction,
    executor: &str,
) -> Vec<FenceRecord> {
    let all = devices(cluster);
    let by_id = |id: &str| all.iter().find(|d| d.id() == id);
    let mut plan: Vec<Vec<&Device>> = levels(cluster, target)
        .iter()
        .map(|ids| ids.iter().filter_map(|id| by_id(id)).collect())
        .collect();
    if plan.is_empty() {
        plan = all
            .iter()
            .filter(|d| d.can_fence(config, target))
            .map(|d| vec![d])
            .collect();
    }
    let mut records = Vec::new();
    for level in plan {
        let mut level_ok = !level.is_empty();
        for device in level {
            std::thread::sleep(std::time::Duration::from_millis(device.delay_ms(target)));
            let request = device.request(action, Some(device.plug_for(target)));
            let result = tandem_agents::fence::fence(config, &request);
            let ok = result.succeeded();
            records.push(FenceRecord {
                target: target.to_string(),
                action: action.as_str().to_string(),
                device: device.id().to_string(),
                executor: executor.to_string(),
                ok,
                at_ms: now_ms(),
                detail: result
                    .exit_reason
                    .clone()
                    .unwrap_or_else(|| format!("{:?}", result.status)),
            });
            if !ok {
                level_ok = false;
                break;
            }
        }
        if level_ok {
            return records;
        }
    }
    if records.is_empty() {
        records.push(FenceRecord {
            target: target.to_string(),
            action: action.as_str().to_string(),
            device: String::new(),
            executor: executor.to_string(),
            ok: false,
            at_ms: now_ms(),
            detail: "no fence device can act on this node".into(),
        });
    }
    records
}

/// The action `fencing-action` (old name `stonith-action`) asks for.
pub fn configured_action(cluster: &Cluster) -> FenceAction {
    match cluster
        .config
        .option("fencing-action")
        .or_else(|| cluster.config.option("stonith-action"))
    {
        Some("off" | "poweroff") => FenceAction::Off,
        _ => FenceAction::Reboot,
    }
}

/// Fences `target` from this node and records every attempt in the
/// replicated fencing history; a success also records the node down, so
/// its resources may start elsewhere. `Ok` carries the attempts made;
/// `Err` the last failure.
pub async fn fence_and_record(
    node: std::sync::Arc<tandem_cluster::ClusterNode>,
    cluster: Cluster,
    config: ExecConfig,
    target: String,
    action: FenceAction,
) -> Result<Vec<FenceRecord>, String> {
    let me = node.view().node_name;
    tracing::warn!(node = %target, "fencing ({})", action.as_str());
    let fenced = target.clone();
    let records =
        tokio::task::spawn_blocking(move || fence(&cluster, &config, &fenced, action, &me))
            .await
            .map_err(|e| e.to_string())?;
    record_fence(&node, target, records).await
}

/// Records the attempts a fence made (a success also records `target`
/// down); the result as [`fence_and_record`] gives it.
pub async fn record_fence(
    node: &tandem_cluster::ClusterNode,
    target: String,
    records: Vec<FenceRecord>,
) -> Result<Vec<FenceRecord>, String> {
    let ok = records.last().is_some_and(|r| r.ok);
    let detail = records.last().map(|r| r.detail.clone()).unwrap_or_default();
    let mut commands: Vec<tandem_cluster::Command> = records
        .iter()
        .cloned()
        .map(tandem_cluster::Command::RecordFence)
        .collect();
    if ok {
        commands.push(tandem_cluster::Command::NodeDown { node: target });
    }
    // The fence happened: its record must not be lost because the DC just
    // changed (the target may have been the DC).
    let batch = tandem_cluster::Command::Batch(commands);
    let deadline = tokio::time::Instant::now() + RECORD_WAIT;
    while let Err(e) = node.propose(batch.clone()).await {
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "fenced, but the record could not be committed: {e}"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    if ok {
        Ok(records)
    } else {
        Err(detail)
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_patterns_cover_the_common_forms() {
        assert!(pattern_matches("node.*", "node3"));
        assert!(pattern_matches("^node1$", "node1"));
        assert!(!pattern_matches("node1", "node10"));
    }
}

/// `tandem node confirm-down NODE` (the analogue of `stonith_admin
/// --confirm`): an operator states that a lost node is powered off, or
/// otherwise runs nothing. Recorded in the fencing history and as a
/// transient attribute of the node that the DC settles it by (once every
/// lease the node could hold has expired) and that the node withdraws
/// when it holds a lease again. Refused for a node this node still hears.
pub async fn confirm_down(
    node: &tandem_cluster::ClusterNode,
    target: &str,
) -> Result<String, ConfirmError> {
    let view = node.view();
    let peer = view
        .peers()
        .find(|p| p.name == target && !p.witness)
        .ok_or_else(|| ConfirmError::Unknown(target.to_string()))?;
    // On the DC, a node heard but without a lease counts as lost and may
    // be confirmed; elsewhere, any node heard is refused. The DC honours
    // only a confirmation made after it counted the node lost.
    if peer.id == view.node_id || view.online(peer) {
        return Err(ConfirmError::Alive(target.to_string()));
    }
    if !node.replicated().status.contains_key(target) {
        return Ok(format!("{target} is already recorded down"));
    }
    let record = FenceRecord {
        target: target.to_string(),
        action: "confirm-down".into(),
        device: "operator".into(),
        executor: view.node_name.clone(),
        ok: true,
        at_ms: now_ms(),
        detail: "an operator confirmed the node down".into(),
    };
    let confirm = tandem_cluster::Command::Batch(vec![
        tandem_cluster::Command::RecordFence(record),
        tandem_cluster::Command::SetTransient {
            node: target.to_string(),
            name: crate::lease::CONFIRMED_DOWN.to_string(),
            value: Some(now_ms().to_string()),
        },
    ]);
    node.propose(confirm)
        .await
        .map_err(|e| ConfirmError::NotCommitted(e.to_string()))?;
    Ok(format!(
        "{target} confirmed down; the DC recovers its resources once its lease has expired"
    ))
}

/// Why `confirm-down` was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("no data node named {0:?}")]
    Unknown(String),
    #[error("{0} is heard from (or is this node): it is not down (a node the DC hears but that holds no lease can be confirmed through the DC)")]
    Alive(String),
    #[error("the confirmation was not committed: {0}")]
    NotCommitted(String),
}
