//! Model → native TOML text ([`to_toml`]). Hand-formatted rather than
//! serialized so the output reads like a file a person would write: one
//! `[[table]]` per object, attribute maps as inline tables.

use super::{epoch_to_rfc3339, format_duration};
use crate::config::{FencingTarget, NvSet};
use crate::constraint::{Constraint, LocationTarget, OrderKind, ResourceSet};
use crate::resource::{Primitive, Resource};
use crate::rule::{BoolOp, DateOp, Expression, Rule, ValueType};
use crate::score::Score;
use crate::status::{NodeState, Status};
use crate::{Cluster, NodeKind, Role};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Renders a cluster in the native format. Parsing the result gives back the
/// same model, up to what the format does not express (see the module doc).
pub fn to_toml(cluster: &Cluster) -> String {
    let mut w = Writer::default();
    let c = &cluster.config;
    w.cluster(cluster);
    for n in &c.nodes {
        w.line("[[node]]");
        w.kv("name", &q(&n.uname));
        if n.id != n.uname {
            w.kv("id", &q(&n.id));
        }
        match n.kind {
            NodeKind::Member => {}
            NodeKind::Remote => w.kv("kind", "\"remote\""),
            NodeKind::Ping => w.kv("kind", "\"ping\""),
        }
        if n.score != Score::ZERO {
            w.kv("score", &score(n.score));
        }
        w.sets("attributes", &n.attributes);
        w.sets("utilization", &n.utilization);
        w.blank();
    }
    for r in &c.resources {
        for p in r.primitives() {
            w.primitive(p);
        }
    }
    for r in &c.resources {
        w.containers(r);
    }
    for con in &c.constraints {
        w.constraint(con);
    }
    for t in &c.tags {
        w.line("[[tag]]");
        w.kv("id", &q(&t.id));
        w.kv("resources", &list(&t.refs));
        w.blank();
    }
    for l in &c.fencing_topology {
        w.line("[[fencing-level]]");
        w.kv("id", &q(&l.id));
        w.kv("index", &l.index.to_string());
        match &l.target {
            FencingTarget::Node(n) => w.kv("target", &q(n)),
            FencingTarget::Pattern(p) => w.kv("target-pattern", &q(p)),
            FencingTarget::Attribute { name, value } => w.kv(
                "target-attribute",
                &format!("{{ {} = {} }}", key(name), q(value)),
            ),
        }
        w.kv("devices", &list(&l.devices));
        w.blank();
    }
    if cluster.status != Status::default() {
        w.status(cluster);
    }
    let mut out = w.out.trim_end().to_string();
    out.push('\n');
    out
}

#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn line(&mut self, s: &str) {
        self.out.push_str(s);
        self.out.push('\n');
    }

    fn blank(&mut self) {
        self.out.push('\n');
    }

    fn kv(&mut self, k: &str, v: &str) {
        let _ = writeln!(self.out, "{} = {v}", key(k));
    }

    fn sets(&mut self, k: &str, sets: &[NvSet]) {
        if let Some(v) = sets_value(sets) {
            self.kv(k, &v);
        }
    }

    fn cluster(&mut self, cluster: &Cluster) {
        let c = &cluster.config;
        let mut options = c.options.clone();
        let mut name = None;
        if let Some(set) = options.iter_mut().find(|s| s.rule.is_none()) {
            if let Some(pos) = set.pairs.iter().position(|p| p.name == "cluster-name") {
                name = set.pairs.remove(pos).value;
            }
        }
        options.retain(|s| !(s.pairs.is_empty() && s.rule.is_none()));
        let empty = name.is_none()
            && options.is_empty()
            && c.rsc_defaults.is_empty()
            && c.op_defaults.is_empty()
            && c.templates.is_empty();
        if empty {
            return;
        }
        self.line("[cluster]");
        if let Some(n) = name {
            self.kv("name", &q(&n));
        }
        self.sets("options", &options);
        self.sets("resource-defaults", &c.rsc_defaults);
        self.sets("op-defaults", &c.op_defaults);
        if !c.templates.is_empty() {
            self.kv("templates", &list(&c.templates));
        }
        self.blank();
    }

    fn primitive(&mut self, p: &Primitive) {
        self.line("[[resource]]");
        self.kv("id", &q(&p.id));
        self.kv("agent", &q(&p.agent_spec()));
        if let Some(t) = &p.template {
            self.kv("template", &q(t));
        }
        self.sets("params", &p.instance);
        self.sets("meta", &p.meta);
        self.sets("utilization", &p.utilization);
        if !p.operations.is_empty() {
            self.line("op = [");
            for o in &p.operations {
                let mut fields = vec![format!("name = {}", q(&o.name))];
                if o.interval_ms > 0 || o.name == "monitor" {
                    fields.push(format!("interval = {}", q(&format_duration(o.interval_ms))));
                }
                if let Some(t) = o.timeout_ms {
                    fields.push(format!("timeout = {}", q(&format_duration(t))));
                }
                if let Some(r) = o.role {
                    fields.push(format!("role = {}", q(r.as_str())));
                }
                if let Some(f) = &o.on_fail {
                    fields.push(format!("on-fail = {}", q(f)));
                }
                if !o.enabled {
                    fields.push("enabled = false".into());
                }
                if let Some(m) = sets_value(&o.meta) {
                    fields.push(format!("meta = {m}"));
                }
                let _ = writeln!(self.out, "  {{ {} }},", fields.join(", "));
            }
            self.line("]");
        }
        self.blank();
    }

    /// Groups and clones, inner first so a clone's `of` names a known id.
    fn containers(&mut self, r: &Resource) {
        match r {
            Resource::Primitive(_) => {}
            Resource::Group(g) => {
                self.line("[[group]]");
                self.kv("id", &q(&g.id));
                let ids: Vec<String> = g.members.iter().map(|m| m.id.clone()).collect();
                self.kv("members", &list(&ids));
                self.sets("meta", &g.meta);
                self.blank();
            }
            Resource::Clone(c) => {
                self.containers(&c.child);
                self.line("[[clone]]");
                self.kv("id", &q(&c.id));
                self.kv("of", &q(c.child.id()));
                if c.promotable {
                    self.kv("promotable", "true");
                }
                self.sets("meta", &c.meta);
                self.blank();
            }
        }
    }

    fn constraint(&mut self, c: &Constraint) {
        match c {
            Constraint::Location(l) => {
                self.line("[[location]]");
                self.kv("id", &q(&l.id));
                match &l.target {
                    LocationTarget::Resource(r) => self.kv("resource", &q(r)),
                    LocationTarget::Pattern { regex, negated } => {
                        let p = if *negated {
                            format!("!{regex}")
                        } else {
                            regex.clone()
                        };
                        self.kv("resource-pattern", &q(&p));
                    }
                    LocationTarget::Sets(s) => self.resource_sets(s),
                }
                if let Some(r) = l.role {
                    self.kv("role", &q(r.as_str()));
                }
                if let Some(n) = &l.node {
                    self.kv("node", &q(n));
                }
                if let Some(s) = l.score {
                    self.kv("score", &score(s));
                }
                if !l.rules.is_empty() {
                    self.line("rules = [");
                    for r in &l.rules {
                        let _ = writeln!(self.out, "  {},", rule(r));
                    }
                    self.line("]");
                }
                if let Some(d) = &l.resource_discovery {
                    self.kv("resource-discovery", &q(d));
                }
            }
            Constraint::Colocation(co) => {
                self.line("[[colocation]]");
                self.kv("id", &q(&co.id));
                if let Some(r) = &co.rsc {
                    self.kv("resource", &q(r));
                }
                if let Some(r) = &co.with_rsc {
                    self.kv("with", &q(r));
                }
                self.kv("score", &score(co.score));
                if let Some(r) = co.rsc_role {
                    self.kv("resource-role", &q(r.as_str()));
                }
                if let Some(r) = co.with_rsc_role {
                    self.kv("with-role", &q(r.as_str()));
                }
                if let Some(a) = &co.node_attribute {
                    self.kv("node-attribute", &q(a));
                }
                if let Some(i) = co.influence {
                    self.kv("influence", &i.to_string());
                }
                self.resource_sets(&co.sets);
            }
            Constraint::Order(o) => {
                self.line("[[order]]");
                self.kv("id", &q(&o.id));
                if let Some(r) = &o.first {
                    self.kv("first", &q(r));
                }
                if let Some(r) = &o.then {
                    self.kv("then", &q(r));
                }
                if let Some(a) = &o.first_action {
                    self.kv("first-action", &q(a));
                }
                if let Some(a) = &o.then_action {
                    self.kv("then-action", &q(a));
                }
                if o.kind != OrderKind::Mandatory {
                    self.kv("kind", &q(order_kind(o.kind)));
                }
                if let Some(s) = o.symmetrical {
                    self.kv("symmetrical", &s.to_string());
                }
                if let Some(r) = o.require_all {
                    self.kv("require-all", &r.to_string());
                }
                self.resource_sets(&o.sets);
            }
            Constraint::Ticket(t) => {
                self.line("[[ticket]]");
                self.kv("id", &q(&t.id));
                self.kv("ticket", &q(&t.ticket));
                if let Some(r) = &t.rsc {
                    self.kv("resource", &q(r));
                }
                if let Some(r) = t.rsc_role {
                    self.kv("role", &q(r.as_str()));
                }
                if let Some(l) = &t.loss_policy {
                    self.kv("loss-policy", &q(l));
                }
                self.resource_sets(&t.sets);
            }
        }
        self.blank();
    }

    fn resource_sets(&mut self, sets: &[ResourceSet]) {
        if sets.is_empty() {
            return;
        }
        self.line("sets = [");
        for s in sets {
            let mut f = vec![
                format!("id = {}", q(&s.id)),
                format!("resources = {}", list(&s.resources)),
            ];
            if let Some(v) = s.sequential {
                f.push(format!("sequential = {v}"));
            }
            if let Some(v) = s.require_all {
                f.push(format!("require-all = {v}"));
            }
            if let Some(r) = s.role {
                f.push(format!("role = {}", q(r.as_str())));
            }
            if let Some(a) = &s.action {
                f.push(format!("action = {}", q(a)));
            }
            if let Some(o) = &s.ordering {
                f.push(format!("ordering = {}", q(o)));
            }
            if let Some(k) = s.kind {
                f.push(format!("kind = {}", q(order_kind(k))));
            }
            if let Some(sc) = s.score {
                f.push(format!("score = {}", score(sc)));
            }
            let _ = writeln!(self.out, "  {{ {} }},", f.join(", "));
        }
        self.line("]");
    }

    fn status(&mut self, cluster: &Cluster) {
        let s = &cluster.status;
        let derived = derive_status(cluster);
        self.line("# Status: membership, standby, running roles and failures only;");
        self.line("# operation history is regenerated from these facts when parsed.");
        self.line("[status]");
        if !s.have_quorum {
            self.kv("quorum", "false");
        }
        if let Some(dc) = &s.dc_uuid {
            let name = cluster
                .config
                .nodes
                .iter()
                .find(|n| &n.id == dc)
                .map(|n| n.uname.clone())
                .unwrap_or_else(|| dc.clone());
            self.kv("dc", &q(&name));
        }
        if let Some(t) = s.execution_date {
            self.kv("execution-date", &epoch_to_rfc3339(t));
        }
        for (k, l) in [
            ("offline", &derived.offline),
            ("unclean", &derived.unclean),
            ("standby", &derived.standby),
        ] {
            if !l.is_empty() {
                self.kv(k, &list(l));
            }
        }
        if !derived.running.is_empty() {
            self.blank();
            self.line("[status.running]");
            for (rsc, roles) in &derived.running {
                self.kv(rsc, &placement(roles));
            }
        }
        if !derived.failed.is_empty() {
            self.blank();
            for f in &derived.failed {
                self.line("[[status.failed]]");
                self.kv("resource", &q(&f.resource));
                self.kv("node", &q(&f.node));
                self.kv("op", &q(&f.op));
                self.kv("interval", &q(&format_duration(f.interval_ms)));
                self.kv("rc", &f.rc.to_string());
                if let Some(c) = &f.count {
                    self.kv("count", &score(*c));
                }
                if let Some(t) = f.last_failure {
                    self.kv("last-failure", &epoch_to_rfc3339(t));
                }
            }
        }
        if !s.tickets.is_empty() {
            self.blank();
            self.line("[status.tickets]");
            for t in &s.tickets {
                let v = match (t.granted, t.standby) {
                    (true, true) => "standby",
                    (true, false) => "granted",
                    _ => "revoked",
                };
                self.kv(&t.id, &q(v));
            }
        }
    }
}

struct DerivedFailure {
    resource: String,
    node: String,
    op: String,
    interval_ms: u64,
    rc: i32,
    count: Option<Score>,
    last_failure: Option<i64>,
}

#[derive(Default)]
struct Derived {
    offline: Vec<String>,
    unclean: Vec<String>,
    standby: Vec<String>,
    /// Resource (primitive or clone) → role → nodes, in configuration order.
    running: Vec<(String, BTreeMap<Role, Vec<String>>)>,
    failed: Vec<DerivedFailure>,
}

fn node_up(n: &NodeState) -> bool {
    let yes = |v: &Option<String>, word: &str| {
        v.as_deref()
            .is_some_and(|s| s == word || s.parse::<i64>().is_ok_and(|t| t > 0))
    };
    yes(&n.in_ccm, "true") && yes(&n.crmd, "online") && n.join.as_deref() == Some("member")
}

/// A simplified reading of the recorded status, for conversion only: the
/// last successful start/promote/demote/stop of each resource decides its
/// role; failed operations become `failed` entries.
fn derive_status(cluster: &Cluster) -> Derived {
    let mut d = Derived::default();
    let mut facts: BTreeMap<String, BTreeMap<Role, Vec<String>>> = BTreeMap::new();
    for n in &cluster.status.nodes {
        let name = n.uname.clone().unwrap_or_else(|| n.id.clone());
        if !node_up(n) {
            if n.expected.as_deref() == Some("member") {
                d.unclean.push(name.clone());
            } else {
                d.offline.push(name.clone());
            }
        }
        let transient: Vec<_> = n.transient.iter().flat_map(|s| s.pairs.iter()).collect();
        let standby = transient.iter().any(|p| {
            p.name == "standby" && p.value.as_deref().and_then(crate::parse_bool) == Some(true)
        });
        if standby && node_up(n) {
            d.standby.push(name.clone());
        }
        for h in &n.history {
            let mut ops: Vec<_> = h.ops.iter().collect();
            ops.sort_by_key(|o| o.call_id);
            let mut role = Role::Stopped;
            for o in &ops {
                let expected = o.expected_rc().unwrap_or(0);
                let ok = o.rc_code == 0
                    || o.rc_code == 8
                    || (o.rc_code == 7 && o.interval_ms == 0 && o.operation == "monitor");
                if o.rc_code != expected && !(o.rc_code == 7 && o.interval_ms == 0) {
                    let base = base_id(&h.id);
                    let key = format!("{base}#{}_{}", o.operation, o.interval_ms);
                    let count = transient
                        .iter()
                        .find(|p| p.name == format!("fail-count-{key}"))
                        .and_then(|p| p.value.as_deref())
                        .and_then(Score::parse);
                    let last_failure = transient
                        .iter()
                        .find(|p| p.name == format!("last-failure-{key}"))
                        .and_then(|p| p.value.as_deref())
                        .and_then(|v| v.parse().ok());
                    d.failed.push(DerivedFailure {
                        resource: base.to_string(),
                        node: name.clone(),
                        op: o.operation.clone(),
                        interval_ms: o.interval_ms,
                        rc: o.rc_code,
                        count,
                        last_failure,
                    });
                    if o.operation == "start" {
                        role = Role::Stopped;
                    }
                    continue;
                }
                if !ok {
                    continue;
                }
                role = match (o.operation.as_str(), o.rc_code) {
                    ("start", 0) | ("migrate_from", 0) | ("demote", 0) => Role::Started,
                    ("promote", 0) => Role::Promoted,
                    ("monitor", 8) => Role::Promoted,
                    ("monitor", 0) if role == Role::Stopped => Role::Started,
                    ("monitor", 7) | ("stop", 0) | ("migrate_to", 0) => Role::Stopped,
                    _ => role,
                };
            }
            if role != Role::Stopped {
                facts
                    .entry(h.id.clone())
                    .or_default()
                    .entry(role)
                    .or_default()
                    .push(name.clone());
            }
        }
    }
    // Attribute facts to configured resources, clones by their id.
    for r in &cluster.config.resources {
        match r {
            Resource::Clone(c) => {
                let prims = c.child.primitives();
                let Some(first) = prims.first() else { continue };
                let mut roles: BTreeMap<Role, Vec<String>> = BTreeMap::new();
                for (id, by_role) in &facts {
                    if base_id(id) == first.id {
                        for (role, nodes) in by_role {
                            let role = if *role == Role::Started || !c.promotable {
                                if c.promotable {
                                    Role::Unpromoted
                                } else {
                                    Role::Started
                                }
                            } else {
                                *role
                            };
                            roles.entry(role).or_default().extend(nodes.iter().cloned());
                        }
                    }
                }
                if !roles.is_empty() {
                    d.running.push((c.id.clone(), roles));
                }
            }
            _ => {
                for p in r.primitives() {
                    if let Some(by_role) = facts.get(&p.id) {
                        d.running.push((p.id.clone(), by_role.clone()));
                    }
                }
            }
        }
    }
    d
}

/// `rsc:2` → `rsc`.
pub(super) fn base_id(id: &str) -> &str {
    match id.rsplit_once(':') {
        Some((b, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => b,
        _ => id,
    }
}

fn placement(roles: &BTreeMap<Role, Vec<String>>) -> String {
    if roles.len() == 1 {
        if let Some(nodes) = roles.get(&Role::Started) {
            return if nodes.len() == 1 {
                q(&nodes[0])
            } else {
                list(nodes)
            };
        }
    }
    let parts: Vec<String> = roles
        .iter()
        .map(|(r, n)| format!("{} = {}", r.as_str().to_ascii_lowercase(), list(n)))
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

fn sets_value(sets: &[NvSet]) -> Option<String> {
    match sets {
        [] => None,
        [one] if one.rule.is_none() && one.score == Score::ZERO => Some(pairs(one)),
        many => {
            let items: Vec<String> = many
                .iter()
                .map(|s| {
                    let mut f = vec![format!("id = {}", q(&s.id))];
                    if s.score != Score::ZERO {
                        f.push(format!("score = {}", score(s.score)));
                    }
                    if let Some(r) = &s.rule {
                        f.push(format!("rule = {}", rule(r)));
                    }
                    f.push(format!("values = {}", pairs(s)));
                    format!("{{ {} }}", f.join(", "))
                })
                .collect();
            Some(format!("[{}]", items.join(", ")))
        }
    }
}

fn pairs(set: &NvSet) -> String {
    let items: Vec<String> = set
        .pairs
        .iter()
        .filter_map(|p| {
            Some(format!(
                "{} = {}",
                key(&p.name),
                scalar(p.value.as_deref()?)
            ))
        })
        .collect();
    if items.is_empty() {
        "{}".into()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}

fn rule(r: &Rule) -> String {
    let mut f = Vec::new();
    if let Some(s) = r.score {
        f.push(format!("score = {}", score(s)));
    }
    if let Some(a) = &r.score_attribute {
        f.push(format!("score-attribute = {}", q(a)));
    }
    if r.bool_op == BoolOp::Or {
        f.push("boolean-op = \"or\"".into());
    }
    if let Some(role) = r.role {
        f.push(format!("role = {}", q(role.as_str())));
    }
    let exprs: Vec<String> = r.expressions.iter().map(expression).collect();
    f.push(format!("expressions = [{}]", exprs.join(", ")));
    format!("{{ {} }}", f.join(", "))
}

fn expression(e: &Expression) -> String {
    let mut f = Vec::new();
    match e {
        Expression::Attribute {
            attribute,
            operation,
            value,
            value_type,
            value_source,
        } => {
            f.push(format!("attribute = {}", q(attribute)));
            f.push(format!("op = {}", q(operation)));
            if let Some(v) = value {
                f.push(format!("value = {}", q(v)));
            }
            if let Some(t) = value_type {
                let t = match t {
                    ValueType::String => "string",
                    ValueType::Integer => "integer",
                    ValueType::Number => "number",
                    ValueType::Version => "version",
                };
                f.push(format!("type = {}", q(t)));
            }
            if let Some(s) = value_source {
                f.push(format!("value-source = {}", q(s)));
            }
        }
        Expression::Date {
            operation,
            start,
            end,
            duration_s,
            spec,
        } => {
            let op = match operation {
                DateOp::InRange => "in_range",
                DateOp::Gt => "gt",
                DateOp::Lt => "lt",
                DateOp::DateSpec => "date_spec",
            };
            f.push(format!("date = {}", q(op)));
            if let Some(s) = start {
                f.push(format!("start = {}", epoch_to_rfc3339(*s)));
            }
            if let Some(s) = end {
                f.push(format!("end = {}", epoch_to_rfc3339(*s)));
            }
            if let Some(d) = duration_s {
                f.push(format!(
                    "duration = {}",
                    q(&format_duration((*d).max(0) as u64 * 1000))
                ));
            }
            if let Some(spec) = spec {
                let items: Vec<String> = spec
                    .fields
                    .iter()
                    .map(|(k, v)| format!("{} = {}", key(k), q(v)))
                    .collect();
                f.push(format!("spec = {{ {} }}", items.join(", ")));
            }
        }
        Expression::Resource {
            class,
            provider,
            agent,
        } => {
            let part = |s: &Option<String>| s.clone().unwrap_or_else(|| "*".into());
            let spec = match provider {
                Some(p) => format!("{}:{}:{}", part(class), p, part(agent)),
                None => format!("{}:{}", part(class), part(agent)),
            };
            f.push(format!("resource-agent = {}", q(&spec)));
        }
        Expression::Operation { name, interval_ms } => {
            f.push(format!("operation = {}", q(name)));
            if let Some(i) = interval_ms {
                f.push(format!("interval = {}", q(&format_duration(*i))));
            }
        }
        Expression::Rule(r) => f.push(format!("rule = {}", rule(r))),
    }
    format!("{{ {} }}", f.join(", "))
}

fn order_kind(k: OrderKind) -> &'static str {
    match k {
        OrderKind::Mandatory => "Mandatory",
        OrderKind::Optional => "Optional",
        OrderKind::Serialize => "Serialize",
    }
}

fn score(s: Score) -> String {
    if s.is_pos_infinity() || s.is_neg_infinity() {
        q(&s.to_string())
    } else {
        s.value().to_string()
    }
}

/// A TOML basic string with escapes.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        k.to_string()
    } else {
        q(k)
    }
}

/// Attribute values keep their type when it reads naturally: integers and
/// booleans bare, everything else quoted.
fn scalar(v: &str) -> String {
    if v == "true" || v == "false" {
        return v.to_string();
    }
    match v.parse::<i64>() {
        Ok(i) if i.to_string() == v => v.to_string(),
        _ => q(v),
    }
}

fn list(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|i| q(i)).collect();
    format!("[{}]", q.join(", "))
}
