//! From a scheduler action to the operation an executor runs: finds the
//! primitive behind an action's target (`db:1` → `db`), its agent,
//! instance attributes, meta-attributes (the clone's included, as
//! `CRM_meta_*`), the configured timeout, and what a healthy result is.

use crate::executor::ExecRequest;
use std::collections::BTreeMap;
use tandem_agents::Expected;
use tandem_cluster::ResourceAgent;
use tandem_model::{Cluster, NvSet, Primitive, Resource, Role};

/// The operation timeout when neither the operation nor `op_defaults`
/// sets one (Pacemaker's default).
const DEFAULT_OP_TIMEOUT_MS: u64 = 20_000;

/// A primitive and the clone it belongs to, if any.
pub struct Located<'c> {
    pub primitive: &'c Primitive,
    pub clone: Option<&'c tandem_model::Clone>,
}

/// Finds the primitive behind `target` (an id, or a clone instance id).
pub fn locate<'c>(cluster: &'c Cluster, target: &str) -> Option<Located<'c>> {
    let id = tandem_scheduler::view::strip_instance(target);
    for r in &cluster.config.resources {
        let clone = match r {
            Resource::Clone(c) => Some(c),
            _ => None,
        };
        if let Some(p) = r.primitives().into_iter().find(|p| p.id == id) {
            return Some(Located {
                primitive: p,
                clone,
            });
        }
    }
    None
}

impl Located<'_> {
    /// The agent, as recorded with the history.
    pub fn agent(&self, history_id: &str) -> ResourceAgent {
        ResourceAgent {
            id: history_id.to_string(),
            class: Some(self.primitive.class.clone()),
            provider: self.primitive.provider.clone(),
            agent: Some(self.primitive.agent.clone()),
        }
    }

    fn unique_clone(&self) -> bool {
        self.clone.is_some_and(|c| {
            tandem_model::config::first_value(&c.meta, "globally-unique").is_some_and(is_true)
        })
    }

    /// The id the history is recorded under and the executor and agent
    /// know the instance by (`OCF_RESOURCE_INSTANCE`): anonymous clone
    /// instances share their primitive's id, as in Pacemaker, so a probe
    /// (made before any instance number is known) and the actions of
    /// `web:2` act on the same thing; the number is `CRM_meta_clone`.
    pub fn history_id(&self, target: &str) -> String {
        if self.unique_clone() {
            target.to_string()
        } else {
            self.primitive.id.clone()
        }
    }

    /// The request for `action` with `interval_ms` of `target`.
    pub fn request(
        &self,
        cluster: &Cluster,
        target: &str,
        action: &str,
        interval_ms: u64,
        term: u64,
    ) -> ExecRequest {
        let mut meta = BTreeMap::new();
        if let Some(c) = self.clone {
            merge(&mut meta, &c.meta);
            let instance = target.rsplit_once(':').map_or("0", |(_, n)| n);
            meta.insert("clone".into(), instance.into());
            meta.entry("clone-max".into())
                .or_insert_with(|| cluster.config.nodes.len().to_string());
            meta.entry("clone-node-max".into())
                .or_insert_with(|| "1".into());
            if c.promotable {
                meta.entry("promoted-max".into())
                    .or_insert_with(|| "1".into());
                meta.entry("promoted-node-max".into())
                    .or_insert_with(|| "1".into());
            }
        }
        merge(&mut meta, &self.primitive.meta);
        let params = self.primitive.params();
        let probe = action == "monitor" && interval_ms == 0;
        let op = self
            .primitive
            .operations
            .iter()
            .find(|o| o.name == action && o.interval_ms == interval_ms);
        let expected = match (probe, op.and_then(|o| o.role)) {
            (true, _) => Expected::NotRunning,
            (false, Some(Role::Promoted)) if action == "monitor" => Expected::Promoted,
            _ => Expected::Ok,
        };
        let timeout_ms = op
            .and_then(|o| o.timeout_ms)
            .unwrap_or_else(|| default_timeout_ms(cluster));
        let id = self.history_id(target);
        ExecRequest {
            term,
            resource: self.agent(&id),
            instance: id,
            action: action.to_string(),
            interval_ms,
            timeout_ms,
            expected,
            params,
            meta,
            seq: 0,
            rejoin: 0,
        }
    }
}

/// The request for `action` of `target` on `node` when the configuration
/// no longer has it (an orphan, which Pacemaker stops unless
/// `stop-orphan-resources=false`): the agent is the one its history there
/// names, and the executor stops it with the parameters it was started
/// with (`LocalExecutor::execute`). Only what takes a resource away.
pub fn orphan_request(
    cluster: &Cluster,
    node: &str,
    target: &str,
    action: &str,
    term: u64,
) -> Option<ExecRequest> {
    if !matches!(action, "stop" | "demote") {
        return None;
    }
    let state = cluster
        .status
        .nodes
        .iter()
        .find(|n| n.uname.as_deref() == Some(node))?;
    let history = [target, tandem_scheduler::view::strip_instance(target)]
        .into_iter()
        .find_map(|id| state.history.iter().find(|h| h.id == id))?;
    Some(ExecRequest {
        term,
        resource: ResourceAgent {
            id: history.id.clone(),
            class: history.class.clone(),
            provider: history.provider.clone(),
            agent: history.agent.clone(),
        },
        instance: history.id.clone(),
        action: action.to_string(),
        interval_ms: 0,
        timeout_ms: default_timeout_ms(cluster),
        expected: Expected::Ok,
        params: BTreeMap::new(),
        meta: BTreeMap::new(),
        seq: 0,
        rejoin: 0,
    })
}

/// `op_defaults`' timeout, else Pacemaker's default.
fn default_timeout_ms(cluster: &Cluster) -> u64 {
    tandem_model::config::first_value(&cluster.config.op_defaults, "timeout")
        .and_then(parse_ms)
        .unwrap_or(DEFAULT_OP_TIMEOUT_MS)
}

/// Adds every pair of `sets` (rules are not evaluated: instance and meta
/// attributes with rules are rare and the first set wins, as configured).
fn merge(into: &mut BTreeMap<String, String>, sets: &[NvSet]) {
    for set in sets {
        for pair in &set.pairs {
            if let Some(v) = &pair.value {
                into.entry(pair.name.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

fn is_true(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "yes" | "on" | "1" | "y"
    )
}

/// Whether a boolean option is set to false, in any of the spellings
/// Pacemaker accepts; unset or anything else is not false.
pub fn is_false(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        ["false", "no", "off", "0", "n"].contains(&v.to_ascii_lowercase().as_str())
    })
}

/// `20s`, `500ms`, `2min`, `1h` or plain seconds, as Pacemaker reads them.
pub fn parse_ms(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let factor = match unit.trim() {
        "" | "s" | "sec" => 1000,
        "ms" | "msec" => 1,
        "m" | "min" => 60_000,
        "h" | "hr" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_pacemakers() {
        assert_eq!(parse_ms("20s"), Some(20_000));
        assert_eq!(parse_ms("90"), Some(90_000));
        assert_eq!(parse_ms("500ms"), Some(500));
        assert_eq!(parse_ms("2min"), Some(120_000));
        assert_eq!(parse_ms("soon"), None);
    }

    #[test]
    fn clone_instances_map_to_their_primitive_and_its_timeouts() {
        let cluster = tandem_model::native::parse_toml(
            r#"
[[node]]
name = "n1"

[[resource]]
id = "web"
agent = "ocf:tandem:HttpService"
params = { port = "8080" }
op = [{ name = "monitor", interval = "5s", timeout = "3s" }]

[[clone]]
id = "web-clone"
of = "web"
"#,
        );
        let cluster = match cluster {
            Ok(c) => c,
            Err(e) => panic!("test config: {e}"),
        };
        let located = locate(&cluster, "web:1").expect("web:1 is an instance of web");
        let r = located.request(&cluster, "web:1", "monitor", 5000, 3);
        assert_eq!(r.resource.id, "web", "anonymous instances share history");
        assert_eq!(r.instance, "web", "and are one instance to the executor");
        assert_eq!(r.timeout_ms, 3000);
        assert_eq!(r.params["port"], "8080");
        assert_eq!(r.meta["clone"], "1");
        assert_eq!(r.expected, Expected::Ok);
        let probe = located.request(&cluster, "web:1", "monitor", 0, 3);
        assert_eq!(probe.expected, Expected::NotRunning);
    }
}
