//! Node unpacking: configured nodes plus `node_state` → online, unclean,
//! pending, standby, maintenance, shutdown, and the node's attributes.

use crate::options::Options;
use crate::rules::{rule_matches, RuleContext};
use crate::working::Node;
use std::collections::BTreeMap;
use tandem_model::{parse_bool, Cluster, NodeKind, NodeState, NvSet, Score};

/// Builds the node list in configuration order, then the remote and guest
/// nodes that only exist through their connection resource.
pub fn unpack_nodes(cluster: &Cluster, opts: &Options, now: i64) -> Vec<Node> {
    let mut nodes = unpack_configured_nodes(cluster, opts, now);
    for (name, connection) in remote_connections(cluster) {
        let state = cluster
            .status
            .nodes
            .iter()
            .find(|s| s.id == name || s.uname.as_deref() == Some(&name));
        let node = match nodes.iter().position(|n| n.name == name) {
            Some(i) => &mut nodes[i],
            None => {
                nodes.push(Node {
                    id: name.clone(),
                    name: name.clone(),
                    ..Node::default()
                });
                nodes.last_mut().expect("just pushed")
            }
        };
        node.remote = true;
        node.connection = Some(connection);
        // Online once its connection is known to run (set after history).
        node.online = false;
        node.unclean = false;
        node.fence_reason = None;
        if let Some(state) = state {
            apply_sets(&mut node.attrs, &state.transient, now);
            node.standby = node
                .attrs
                .get("standby")
                .and_then(|v| parse_bool(v))
                .unwrap_or(false);
            node.maintenance = node
                .attrs
                .get("maintenance")
                .and_then(|v| parse_bool(v))
                .unwrap_or(false);
        }
        node.attrs.insert("#uname".into(), name.clone());
        node.attrs.insert("#kind".into(), "remote".into());
        node.attrs
            .entry("#is_dc".into())
            .or_insert_with(|| "false".into());
    }
    nodes
}

/// (node name, connection resource id) for every remote connection
/// (`ocf:pacemaker:remote` primitive, named after the node) and every guest
/// (a resource with the `remote-node` meta attribute).
pub fn remote_connections(cluster: &Cluster) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for top in &cluster.config.resources {
        for p in top.primitives() {
            if p.class == "ocf" && p.provider.as_deref() == Some("pacemaker") && p.agent == "remote"
            {
                out.push((p.id.clone(), p.id.clone()));
            }
            if let Some(name) = tandem_model::config::first_value(&p.meta, "remote-node") {
                out.push((name.to_string(), p.id.clone()));
            }
        }
    }
    out
}

fn unpack_configured_nodes(cluster: &Cluster, opts: &Options, now: i64) -> Vec<Node> {
    let status = &cluster.status;
    let mut nodes = Vec::new();
    for cfg in &cluster.config.nodes {
        if cfg.kind == NodeKind::Ping {
            continue;
        }
        let state = status.nodes.iter().find(|s| s.id == cfg.id).or_else(|| {
            status
                .nodes
                .iter()
                .find(|s| s.uname.as_deref() == Some(&cfg.uname))
        });
        let mut node = Node {
            id: cfg.id.clone(),
            name: cfg.uname.clone(),
            remote: cfg.kind == NodeKind::Remote,
            base: cfg.score,
            ..Node::default()
        };
        let mut attrs = BTreeMap::new();
        apply_sets(&mut attrs, &cfg.attributes, now);
        if let Some(state) = state {
            apply_sets(&mut attrs, &state.transient, now);
        }
        let mut util = BTreeMap::new();
        apply_sets(&mut util, &cfg.utilization, now);
        node.utilization = util
            .iter()
            .map(|(k, v)| (k.clone(), Score::parse(v).map_or(0, Score::value)))
            .collect();
        node.standby = attrs
            .get("standby")
            .and_then(|v| parse_bool(v))
            .unwrap_or(false);
        node.maintenance = attrs
            .get("maintenance")
            .and_then(|v| parse_bool(v))
            .unwrap_or(false);
        node.shutdown = attrs
            .get("shutdown")
            .is_some_and(|v| v != "0" && !v.is_empty());
        attrs.insert("#uname".into(), cfg.uname.clone());
        attrs.insert("#id".into(), cfg.id.clone());
        attrs.insert(
            "#kind".into(),
            if node.remote { "remote" } else { "cluster" }.into(),
        );
        let is_dc = status.dc_uuid.as_deref() == Some(cfg.id.as_str());
        attrs.insert("#is_dc".into(), is_dc.to_string());
        if let Some(name) = cluster.config.option("cluster-name") {
            attrs.insert("#cluster-name".into(), name.to_string());
        }
        node.attrs = attrs;
        match state {
            Some(state) if !node.remote => determine_state(&mut node, state, opts, now),
            Some(state) => remote_state(&mut node, state),
            None if node.remote => {}
            None if opts.fencing_enabled && opts.startup_fencing => {
                node.unclean = true;
                node.fence_reason = Some("node is unclean".into());
            }
            None => {}
        }
        if !node.online || node.shutdown {
            node.base = Score::NEG_INFINITY;
        }
        nodes.push(node);
    }
    nodes
}

/// Applies name/value sets to `attrs` in score order; earlier sets win.
fn apply_sets(attrs: &mut BTreeMap<String, String>, sets: &[NvSet], now: i64) {
    let mut ordered: Vec<&NvSet> = sets.iter().collect();
    ordered.sort_by_key(|s| std::cmp::Reverse(s.score));
    let mut seen = BTreeMap::new();
    for set in ordered {
        let ctx = RuleContext {
            now,
            ..Default::default()
        };
        if set.rule.as_ref().is_some_and(|r| !rule_matches(r, &ctx)) {
            continue;
        }
        for pair in &set.pairs {
            if seen.insert(pair.name.clone(), ()).is_none() {
                if let Some(v) = &pair.value {
                    attrs.insert(pair.name.clone(), v.clone());
                }
            }
        }
    }
}

/// "true", "false" or a timestamp (member/online since) → since, or 0.
fn since(value: Option<&str>, online_word: &str) -> i64 {
    match value {
        None => -1,
        Some(v) if v.eq_ignore_ascii_case(online_word) || v == "true" => 1,
        Some(v) => v.parse::<i64>().ok().filter(|&t| t > 0).unwrap_or(0),
    }
}

fn fence(node: &mut Node, reason: &str) {
    node.unclean = true;
    node.fence_reason = Some(reason.to_string());
}

fn determine_state(node: &mut Node, state: &NodeState, opts: &Options, now: i64) {
    let member = since(state.in_ccm.as_deref(), "true");
    let online = since(state.crmd.as_deref(), "online").max(0);
    let join = state.join.as_deref();
    let expected = state.expected.as_deref();
    node.member = member > 0;
    if !opts.fencing_enabled {
        if member <= 0 {
            return;
        }
        if online > 0 {
            if join == Some("member") {
                node.online = true;
            } else {
                node.pending = true;
            }
        } else if expected == Some("member") {
            fence(node, "peer is unexpectedly down");
        }
        return;
    }
    if node.shutdown && member > 0 {
        node.online = online > 0;
        return;
    }
    if member < 0 {
        fence(node, "peer has not been seen by the cluster");
    } else if matches!(join, Some("nack") | Some("banned")) {
        fence(node, "peer failed Pacemaker membership criteria");
    } else if expected.is_none_or(|e| e == "down") {
        let pending_too_long = opts
            .node_pending_timeout_s
            .is_some_and(|t| t > 0 && member > 1 && now >= member.saturating_add(t));
        if pending_too_long {
            fence(node, "peer pending timed out on joining the process group");
        } else if member > 0 || online > 0 {
            node.pending = true;
        }
    } else if member == 0 {
        fence(node, "peer is no longer part of the cluster");
    } else if online == 0 {
        fence(node, "peer process is no longer available");
    } else if join == Some("member") {
        node.online = true;
    } else if matches!(join, Some("down") | Some("pending")) {
        node.pending = true;
    } else {
        fence(node, "peer was in an unknown state");
    }
}

fn remote_state(node: &mut Node, _state: &NodeState) {
    // Remote nodes are online when their connection resource runs; the
    // connection resources are not modelled yet, so treat them as offline.
    node.online = false;
}
