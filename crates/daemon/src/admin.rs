//! The operator endpoints of the admin API (`tandem resource|constraint|
//! property|config plan`): `POST /edit` applies one [`Edit`] to the
//! configuration it read and commits it with that read's version (a
//! concurrent change is retried once on the new version), `POST /plan`
//! previews a document, `GET /resources` lists resources with where they
//! run and their fail counts, `POST /cleanup` forgets a resource's history
//! and fail counts in one batch so the cluster re-probes it.
//!
//! Validation happens before anything is proposed: a bad edit or document
//! is answered 422 with the reason and changes nothing.

use crate::api::{error, json, now, Reply, Role};
use crate::edit::{self, Edit};
use crate::limits;
use crate::schedule_guard::{schedule_for, Purpose};
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use tandem_cluster::{ClusterNode, Command, CommandResult, Replicated};
use tandem_model::{Cluster, NodeConfig, Resource};

/// `POST /edit`.
#[derive(Serialize, Deserialize)]
pub struct EditRequest {
    pub edit: Edit,
    /// Validate and preview only; commit nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /plan`.
#[derive(Serialize, Deserialize)]
pub struct PlanRequest {
    pub text: String,
}

/// `POST /cleanup`: every resource / every node when `None`.
#[derive(Serialize, Deserialize)]
pub struct CleanupRequest {
    pub resource: Option<String>,
    pub node: Option<String>,
}

/// One resource as `GET /resources` lists it.
#[derive(Serialize, Deserialize)]
pub struct ResourceInfo {
    pub id: String,
    /// `primitive`, `group` or `clone`.
    pub kind: String,
    pub agent: Option<String>,
    /// The group or clone holding it.
    pub parent: Option<String>,
    pub params: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub ops: Vec<String>,
    /// For a group or clone: the primitives it holds.
    pub members: Vec<String>,
    /// Where it is active now: role → nodes (from the recorded operations;
    /// for a group or clone, wherever one of its primitives is).
    pub current: serde_json::Value,
    /// Where the scheduler places it.
    pub planned: serde_json::Value,
    /// Whether any node recorded an operation of it (until the cluster
    /// executes resources, `current` is empty and `planned` is all there is).
    pub recorded: bool,
    /// Ids of the constraints that name it.
    pub constraints: Vec<String>,
    /// Node → `fail-count-…` / `last-failure-…` attribute → value.
    pub failures: BTreeMap<String, BTreeMap<String, String>>,
}

/// Whether this module serves `method path`.
pub fn serves(method: &Method, path: &str) -> bool {
    matches!(
        (method, path),
        (&Method::POST, "/edit")
            | (&Method::POST, "/plan")
            | (&Method::GET, "/resources")
            | (&Method::POST, "/cleanup")
    )
}

pub async fn handle(
    node: &ClusterNode,
    role: Role,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Reply {
    match (method, path) {
        (&Method::POST, "/edit") => match serde_json::from_slice::<EditRequest>(body) {
            Ok(req) => edit(node, role, req).await,
            Err(e) => error(StatusCode::BAD_REQUEST, format!("body: {e}")),
        },
        (&Method::POST, "/plan") => match serde_json::from_slice::<PlanRequest>(body) {
            Ok(req) => {
                let state = crate::api::read_current(node).await;
                match crate::preview::plan(&node.view(), &state, &req.text, now()).await {
                    Ok(plan) => json(StatusCode::OK, &plan),
                    Err(e) => preview_refused("configuration rejected", &e),
                }
            }
            Err(e) => error(StatusCode::BAD_REQUEST, format!("body: {e}")),
        },
        (&Method::GET, "/resources") => resources(node).await,
        (&Method::POST, "/cleanup") => match serde_json::from_slice::<CleanupRequest>(body) {
            Ok(req) => cleanup(node, req).await,
            Err(e) => error(StatusCode::BAD_REQUEST, format!("body: {e}")),
        },
        (m, p) => error(StatusCode::NOT_FOUND, format!("no endpoint {m} {p}")),
    }
}

async fn edit(node: &ClusterNode, role: Role, req: EditRequest) -> Reply {
    if !req.edit.is_operational() && role < Role::Admin {
        return error(
            StatusCode::FORBIDDEN,
            format!("role {role:?} may not change what the cluster is made of; needs Admin"),
        );
    }
    for attempt in 0..2 {
        let state = node.replicated();
        let (text, message) = match edited(node, &state, &req.edit) {
            Ok(done) => done,
            Err(e) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("rejected, nothing changed: {e}"),
                )
            }
        };
        let plan = match crate::preview::plan(&node.view(), &state, &text, now()).await {
            Ok(plan) => plan,
            Err(e) => return preview_refused("rejected, nothing changed", &e),
        };
        if req.dry_run {
            let answer = serde_json::json!({ "message": message, "config_version": state.config_version, "plan": plan });
            return json(StatusCode::OK, &answer);
        }
        let put = Command::PutConfig {
            expected_version: Some(state.config_version),
            text,
        };
        match node.propose(put).await {
            Ok(CommandResult::Applied { config_version }) => {
                let answer = serde_json::json!({ "message": message, "config_version": config_version, "plan": plan });
                return json(StatusCode::OK, &answer);
            }
            Ok(CommandResult::Conflict { actual, .. }) if attempt == 0 => {
                // Another writer got in first: wait to apply its change, redo ours on it.
                caught_up(node, actual).await;
            }
            Ok(CommandResult::Conflict { expected, actual }) => {
                return error(
                    StatusCode::CONFLICT,
                    format!("configuration changed concurrently twice (expected version {expected}, it is now {actual}); nothing changed, try again"),
                )
            }
            // Only operation records can be stale.
            Ok(CommandResult::Stale) => {
                return error(StatusCode::CONFLICT, "nothing changed (stale)".to_string())
            }
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    }
    error(StatusCode::CONFLICT, "configuration changed concurrently")
}

/// The answer to a document without a preview: 422 when the document is
/// at fault, 503 when the node could not judge it now (busy scheduler).
pub(crate) fn preview_refused(what: &str, e: &crate::preview::PreviewError) -> Reply {
    let status = if e.is_refusal() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    error(status, format!("{what}: {e}"))
}

/// Waits (at most a second) until this node applied config version `version`.
async fn caught_up(node: &ClusterNode, version: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while node.replicated().config_version < version && tokio::time::Instant::now() < deadline {
        node.changed(Duration::from_millis(100)).await;
    }
}

/// The document after `edit`, validated by writing and re-reading it.
fn edited(node: &ClusterNode, state: &Replicated, e: &Edit) -> Result<(String, String), String> {
    let mut cluster = base(node, state)?;
    let message = edit::apply(&mut cluster, e).map_err(|e| e.to_string())?;
    let text = tandem_model::native::to_toml(&cluster);
    tandem_model::native::parse_toml(&text).map_err(|e| e.to_string())?;
    Ok((text, message))
}

/// The running configuration; before one was loaded, an empty one with
/// the data nodes of the membership.
fn base(node: &ClusterNode, state: &Replicated) -> Result<Cluster, String> {
    if !state.config_text.is_empty() {
        return tandem_model::native::parse_toml(&state.config_text)
            .map_err(|e| format!("the running configuration is invalid: {e}"));
    }
    let mut cluster = Cluster::default();
    for m in node.members().values().filter(|m| !m.witness) {
        cluster.config.nodes.push(NodeConfig {
            id: m.name.clone(),
            uname: m.name.clone(),
            kind: tandem_model::NodeKind::Member,
            score: tandem_model::Score::default(),
            attributes: Vec::new(),
            utilization: Vec::new(),
        });
    }
    Ok(cluster)
}

async fn resources(node: &ClusterNode) -> Reply {
    let (view, state) = (node.view(), node.replicated());
    let cluster = match crate::live::cluster_of(&view, &state) {
        None => return json(StatusCode::OK, &Vec::<ResourceInfo>::new()),
        Some(Err(e)) => {
            return error(
                StatusCode::CONFLICT,
                format!("the running configuration is invalid: {e}"),
            )
        }
        Some(Ok(c)) => c,
    };
    let run = schedule_for(
        Purpose::Status,
        cluster.clone(),
        now(),
        limits::STATUS_BUDGET,
    );
    let t = match run.await {
        Ok(t) => t,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let (current, planned) = (t.current.placement_json(), t.revised.placement_json());
    let mut out = Vec::new();
    for r in &cluster.config.resources {
        let held: Vec<String> = r.primitives().iter().map(|p| p.id.clone()).collect();
        for (info, parent) in entries(r) {
            let id = info.id.clone();
            let members = if info.kind == "primitive" {
                Vec::new()
            } else {
                held.clone()
            };
            let of = |placement: &serde_json::Value| match members.is_empty() {
                true => placement["resources"][&id].clone(),
                false => merged(&placement["resources"], &members),
            };
            out.push(ResourceInfo {
                parent,
                current: of(&current),
                planned: of(&planned),
                members,
                recorded: state.status.values().any(|s| s.resources.contains_key(&id)),
                constraints: cluster
                    .config
                    .constraints
                    .iter()
                    .filter(|c| names(c, &id))
                    .map(|c| c.id().to_string())
                    .collect(),
                failures: failures(&state, Some(&id), None),
                ..info
            });
        }
    }
    json(StatusCode::OK, &out)
}

/// Where any of `ids` is, from a placement (primitive → role → nodes):
/// role → nodes; null when none of them has an entry.
fn merged(placement: &serde_json::Value, ids: &[String]) -> serde_json::Value {
    let mut roles: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut any = false;
    for id in ids {
        let Some(by_role) = placement[id].as_object() else {
            continue;
        };
        any = true;
        for (role, nodes) in by_role {
            let at = roles.entry(role.clone()).or_default();
            at.extend(
                nodes
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n.as_str().map(String::from)),
            );
        }
    }
    if any {
        serde_json::json!(roles)
    } else {
        serde_json::Value::Null
    }
}

/// A resource and, for a group or clone, what it holds, with its parent.
fn entries(r: &Resource) -> Vec<(ResourceInfo, Option<String>)> {
    let pairs = |sets: &[tandem_model::NvSet]| -> BTreeMap<String, String> {
        sets.iter()
            .flat_map(|s| &s.pairs)
            .filter_map(|p| Some((p.name.clone(), p.value.clone()?)))
            .collect()
    };
    let info = |id: &str, kind: &str, meta| ResourceInfo {
        id: id.to_string(),
        kind: kind.to_string(),
        agent: None,
        parent: None,
        params: BTreeMap::new(),
        meta,
        ops: Vec::new(),
        members: Vec::new(),
        current: serde_json::Value::Null,
        planned: serde_json::Value::Null,
        recorded: false,
        constraints: Vec::new(),
        failures: BTreeMap::new(),
    };
    let mut out = vec![(
        info(
            r.id(),
            &format!("{:?}", r.kind()).to_lowercase(),
            pairs(r.meta()),
        ),
        None,
    )];
    let parent = (!matches!(r, Resource::Primitive(_))).then(|| r.id().to_string());
    for p in r.primitives() {
        let ops = p
            .operations
            .iter()
            .map(|o| {
                let mut s = format!(
                    "{} interval={}",
                    o.name,
                    tandem_model::native::format_duration(o.interval_ms)
                );
                if let Some(t) = o.timeout_ms {
                    s.push_str(&format!(
                        " timeout={}",
                        tandem_model::native::format_duration(t)
                    ));
                }
                s
            })
            .collect();
        let entry = ResourceInfo {
            agent: Some(p.agent_spec()),
            params: pairs(&p.instance),
            ops,
            ..info(&p.id, "primitive", pairs(&p.meta))
        };
        if parent.is_none() {
            out[0].0 = entry;
        } else {
            out.push((entry, parent.clone()));
        }
    }
    out
}

fn names(c: &tandem_model::Constraint, id: &str) -> bool {
    use tandem_model::{Constraint, LocationTarget};
    let is = |x: &Option<String>| x.as_deref() == Some(id);
    let in_sets = |sets: &[tandem_model::ResourceSet]| {
        sets.iter().any(|s| s.resources.iter().any(|r| r == id))
    };
    match c {
        Constraint::Location(l) => match &l.target {
            LocationTarget::Resource(r) => r == id,
            LocationTarget::Pattern { .. } => false,
            LocationTarget::Sets(s) => in_sets(s),
        },
        Constraint::Colocation(c) => is(&c.rsc) || is(&c.with_rsc) || in_sets(&c.sets),
        Constraint::Order(o) => is(&o.first) || is(&o.then) || in_sets(&o.sets),
        Constraint::Ticket(t) => is(&t.rsc) || in_sets(&t.sets),
    }
}

/// Node → fail-count/last-failure attributes of `resource` (all when `None`).
fn failures(
    state: &Replicated,
    resource: Option<&str>,
    node: Option<&str>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let ours = |name: &str| {
        ["fail-count-", "last-failure-"].iter().any(|prefix| {
            name.strip_prefix(prefix).is_some_and(|rest| {
                resource.is_none_or(|r| rest.strip_prefix(r).is_some_and(|t| t.starts_with('#')))
            })
        })
    };
    state
        .status
        .iter()
        .filter(|(n, _)| node.is_none_or(|want| want == n.as_str()))
        .map(|(n, s)| {
            let attrs: BTreeMap<String, String> = s
                .transient
                .iter()
                .filter(|(k, _)| ours(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (n.clone(), attrs)
        })
        .filter(|(_, attrs)| !attrs.is_empty())
        .collect()
}

/// One batch: forget the history, delete the failure attributes (listed).
fn cleanup_batch(state: &Replicated, req: &CleanupRequest) -> (Vec<Command>, Vec<String>) {
    let failures = failures(state, req.resource.as_deref(), req.node.as_deref());
    let mut batch = vec![Command::ForgetHistory {
        node: req.node.clone(),
        resource: req.resource.clone(),
    }];
    let mut cleared = Vec::new();
    for (n, attrs) in &failures {
        for name in attrs.keys() {
            cleared.push(format!("{n}: {name}"));
            batch.push(Command::SetTransient {
                node: n.clone(),
                name: name.clone(),
                value: None,
            });
        }
    }
    (batch, cleared)
}

async fn cleanup(node: &ClusterNode, req: CleanupRequest) -> Reply {
    let state = node.replicated();
    if let Some(r) = &req.resource {
        let configured = tandem_model::native::parse_toml(&state.config_text).is_ok_and(|c| {
            c.config
                .resources
                .iter()
                .any(|x| x.id() == r || x.primitives().iter().any(|p| &p.id == r))
        });
        let recorded = state.status.values().any(|s| s.resources.contains_key(r));
        if !configured && !recorded {
            return error(
                StatusCode::NOT_FOUND,
                format!("no resource {r:?} in the configuration or the recorded status"),
            );
        }
    }
    let (batch, cleared) = cleanup_batch(&state, &req);
    match node.propose(Command::Batch(batch)).await {
        Ok(_) => json(StatusCode::OK, &serde_json::json!({ "cleared": cleared })),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_forgets_only_that_resources_failures_in_one_batch() {
        let mut state = Replicated::default();
        for (node, name) in [
            ("n1", "fail-count-web#monitor_10000"),
            ("n1", "last-failure-web#monitor_10000"),
            ("n1", "fail-count-webserver#start_0"),
            ("n2", "master-web"),
        ] {
            state.apply(&Command::SetTransient {
                node: node.into(),
                name: name.into(),
                value: Some("1".into()),
            });
        }
        let req = CleanupRequest {
            resource: Some("web".into()),
            node: None,
        };
        let (batch, cleared) = cleanup_batch(&state, &req);
        assert_eq!(cleared.len(), 2, "{cleared:?}");
        state.apply(&Command::Batch(batch));
        let left: Vec<&String> = state
            .status
            .values()
            .flat_map(|s| s.transient.keys())
            .collect();
        assert_eq!(left, ["fail-count-webserver#start_0", "master-web"]);
    }
}
