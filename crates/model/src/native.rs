//! tandem's native configuration format: a readable, hand-writable TOML
//! document that maps onto the same [`Cluster`] model as a Pacemaker CIB.
//!
//! Entry points: [`parse_toml`] (text → model, every problem reported at
//! once) and [`to_toml`] (model → text). Main error type: [`NativeError`].
//! The full reference lives in `docs/config-format.md`; in brief:
//!
//! ```toml
//! [cluster]
//! name = "web"                                   # option cluster-name
//! options = { no-quorum-policy = "stop", fencing-enabled = false }
//! resource-defaults = { resource-stickiness = 100 }
//! op-defaults = { timeout = "20s" }
//!
//! [[node]]
//! name = "node1"                                 # id defaults to the name
//! attributes = { rack = "a" }
//!
//! [[resource]]                                   # a primitive
//! id = "vip"
//! agent = "ocf:heartbeat:IPaddr2"
//! params = { ip = "192.0.2.10" }
//! op = [{ name = "monitor", interval = "10s", timeout = "20s" }]
//!
//! [[group]]                                      # members are [[resource]] ids
//! id = "web"
//! members = ["vip", "site"]
//!
//! [[clone]]                                      # of = a [[resource]] or [[group]] id
//! id = "db-clone"
//! of = "db"
//! promotable = true
//!
//! [[location]]
//! resource = "vip"
//! node = "node1"
//! score = 100                                    # integer or "INFINITY" / "-INFINITY"
//!
//! [[colocation]]
//! resource = "site"
//! with = "vip"
//! score = "INFINITY"
//!
//! [[order]]
//! first = "vip"
//! then = "site"
//!
//! [status]                                       # optional: a snapshot to simulate
//! offline = ["node3"]
//! standby = ["node2"]
//! running = { vip = "node1", db-clone = { promoted = ["node1"], unpromoted = ["node2"] } }
//! failed = [{ resource = "site", node = "node1", op = "monitor", interval = "10s" }]
//! ```
//!
//! Attribute maps (`params`, `meta`, `attributes`, `options`, ...) are either
//! one inline table or an array of `{ id, score, rule, values }` sets.
//! Top-level resources keep the order of their first primitive in the file.
//! Not expressed (dropped by [`to_toml`]): ids of attribute sets, operations
//! and rules (regenerated), attribute pairs that unset a value, and status
//! details beyond membership, standby, running roles and failures.
//!
//! Must not: do I/O. Callers read the file and name it in their messages.

use crate::config::{
    Configuration, FencingLevel, FencingTarget, NodeConfig, NodeKind, NvPair, NvSet, Tag,
};
use crate::constraint::{
    Colocation, Constraint, Location, LocationTarget, Order, OrderKind, ResourceSet,
    TicketConstraint,
};
use crate::resource::{Clone as CloneRsc, Group, Operation, Primitive, Resource};
use crate::rule::{BoolOp, DateOp, DateSpec, Expression, Rule, ValueType};
use crate::score::Score;
use crate::status::{HistoryOp, NodeState, ResourceHistory, Status, TicketState};
use crate::{parse_duration_ms, Cluster, Role};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use toml::{Table, Value};

/// Agent classes tandem knows how to run (`class:provider:type` or `class:type`).
pub const AGENT_CLASSES: &[&str] = &[
    "ocf", "lsb", "systemd", "service", "stonith", "nagios", "upstart",
];

/// Why a native config could not be turned into a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NativeError {
    /// The text is not valid TOML.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// Valid TOML that does not describe a valid cluster; every problem found.
    #[error("{}", render_problems(.0))]
    Invalid(Vec<Problem>),
}

/// One semantic problem: where it is (table, entry, field) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// E.g. `[[location]] #2 (id "loc-vip")`.
    pub table: String,
    /// The field, e.g. `score` or `op[1].interval`; `None` for the whole entry.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: field \"{}\": {}", self.table, field, self.message),
            None => write!(f, "{}: {}", self.table, self.message),
        }
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    format!("{} problem(s):\n  {}", problems.len(), lines.join("\n  "))
}

/// Parses a native TOML config into a [`Cluster`].
pub fn parse_toml(text: &str) -> Result<Cluster, NativeError> {
    let doc: Table = text
        .parse()
        .map_err(|e: toml::de::Error| syntax_error(text, &e))?;
    let mut p = Parser::default();
    let cluster = p.document(&doc);
    if p.problems.is_empty() {
        Ok(cluster)
    } else {
        Err(NativeError::Invalid(p.problems))
    }
}

fn syntax_error(text: &str, e: &toml::de::Error) -> NativeError {
    let offset = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    NativeError::Syntax {
        line,
        column,
        message: e.message().trim().replace('\n', "; "),
    }
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Parser {
    problems: Vec<Problem>,
}

/// Where we are: the table label and a field path prefix.
#[derive(Clone)]
struct At {
    table: String,
    prefix: String,
}

impl At {
    fn top(table: &str) -> At {
        At {
            table: table.to_string(),
            prefix: String::new(),
        }
    }

    fn entry(kind: &str, index: usize, t: &Table) -> At {
        let table = match t
            .get("id")
            .or_else(|| t.get("name"))
            .and_then(Value::as_str)
        {
            Some(id) => format!("[[{kind}]] #{} (id \"{id}\")", index + 1),
            None => format!("[[{kind}]] #{}", index + 1),
        };
        At {
            table,
            prefix: String::new(),
        }
    }

    fn field(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn nested(&self, name: &str) -> At {
        At {
            table: self.table.clone(),
            prefix: self.field(name),
        }
    }
}

/// A primitive being assembled, before groups and clones claim it.
struct Pending {
    resource: Resource,
    /// Index of its first primitive in the file: the top-level order key.
    position: usize,
}

impl Parser {
    fn problem(&mut self, at: &At, field: Option<&str>, message: impl Into<String>) {
        self.problems.push(Problem {
            table: at.table.clone(),
            field: field.map(|f| at.field(f)),
            message: message.into(),
        });
    }

    fn document(&mut self, doc: &Table) -> Cluster {
        let top = At::top("top level");
        self.keys(
            &top,
            doc,
            &[
                "cluster",
                "node",
                "resource",
                "group",
                "clone",
                "location",
                "colocation",
                "order",
                "ticket",
                "tag",
                "fencing-level",
                "status",
            ],
        );
        let mut config = Configuration::default();
        if let Some(t) = self.table(&top, doc, "cluster") {
            self.cluster(&t, &mut config);
        }
        for (i, t) in self.entries(doc, "node").iter().enumerate() {
            let at = At::entry("node", i, t);
            if let Some(n) = self.node(&at, t) {
                config.nodes.push(n);
            }
        }
        config.resources = self.resources(doc);
        self.constraints(doc, &mut config);
        for (i, t) in self.entries(doc, "tag").iter().enumerate() {
            let at = At::entry("tag", i, t);
            self.keys(&at, t, &["id", "resources"]);
            let id = self.req_str(&at, t, "id");
            let refs = self.str_list(&at, t, "resources").unwrap_or_default();
            if let Some(id) = id {
                config.tags.push(Tag { id, refs });
            }
        }
        for (i, t) in self.entries(doc, "fencing-level").iter().enumerate() {
            let at = At::entry("fencing-level", i, t);
            if let Some(l) = self.fencing_level(&at, t, i) {
                config.fencing_topology.push(l);
            }
        }
        self.check_references(&config);
        let status = match self.table(&top, doc, "status") {
            Some(t) => self.status(&t, &config),
            None => Status::default(),
        };
        Cluster {
            config,
            status,
            unsupported: Vec::new(),
        }
    }

    // -- generic field access ------------------------------------------------

    fn keys(&mut self, at: &At, t: &Table, allowed: &[&str]) {
        for k in t.keys() {
            if !allowed.contains(&k.as_str()) {
                self.problem(
                    at,
                    Some(k),
                    format!("unknown field; expected one of: {}", allowed.join(", ")),
                );
            }
        }
    }

    fn table(&mut self, at: &At, t: &Table, key: &str) -> Option<Table> {
        match t.get(key)? {
            Value::Table(inner) => Some(inner.clone()),
            other => {
                self.problem(
                    at,
                    Some(key),
                    format!("expected a table, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// The entries of an array of tables (`[[key]]`); reports other shapes.
    fn entries(&mut self, doc: &Table, key: &str) -> Vec<Table> {
        match doc.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v {
                        Value::Table(t) => out.push(t.clone()),
                        other => self.problem(
                            &At::top(&format!("[[{key}]] #{}", i + 1)),
                            None,
                            format!("expected a table, found {}", kind(other)),
                        ),
                    }
                }
                out
            }
            Some(other) => {
                self.problem(
                    &At::top("top level"),
                    Some(key),
                    format!(
                        "expected an array of tables ([[{key}]]), found {}",
                        kind(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    fn str_field(&mut self, at: &At, t: &Table, key: &str) -> Option<String> {
        match t.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.problem(
                    at,
                    Some(key),
                    format!("expected a string, found {}", kind(other)),
                );
                None
            }
        }
    }

    fn req_str(&mut self, at: &At, t: &Table, key: &str) -> Option<String> {
        if !t.contains_key(key) {
            self.problem(at, Some(key), "is required");
            return None;
        }
        let s = self.str_field(at, t, key)?;
        if s.trim().is_empty() {
            self.problem(at, Some(key), "must not be empty");
            return None;
        }
        Some(s)
    }

    fn bool_field(&mut self, at: &At, t: &Table, key: &str) -> Option<bool> {
        match t.get(key)? {
            Value::Boolean(b) => Some(*b),
            Value::String(s) => match crate::parse_bool(s) {
                Some(b) => Some(b),
                None => {
                    self.problem(at, Some(key), format!("\"{s}\" is not a boolean"));
                    None
                }
            },
            other => {
                self.problem(
                    at,
                    Some(key),
                    format!("expected a boolean, found {}", kind(other)),
                );
                None
            }
        }
    }

    fn int_field(&mut self, at: &At, t: &Table, key: &str) -> Option<i64> {
        match t.get(key)? {
            Value::Integer(i) => Some(*i),
            Value::String(s) => match s.trim().parse() {
                Ok(i) => Some(i),
                Err(_) => {
                    self.problem(at, Some(key), format!("\"{s}\" is not an integer"));
                    None
                }
            },
            other => {
                self.problem(
                    at,
                    Some(key),
                    format!("expected an integer, found {}", kind(other)),
                );
                None
            }
        }
    }

    fn score_field(&mut self, at: &At, t: &Table, key: &str) -> Option<Score> {
        let v = t.get(key)?;
        match score_value(v) {
            Some(s) => Some(s),
            None => {
                self.problem(at, Some(key), format!("{} is not a score", show(v)));
                None
            }
        }
    }

    fn duration_field(&mut self, at: &At, t: &Table, key: &str) -> Option<u64> {
        let v = t.get(key)?;
        let parsed = match v {
            Value::Integer(i) if *i >= 0 => Some(*i as u64 * 1000),
            Value::String(s) => parse_duration_ms(s),
            _ => None,
        };
        if parsed.is_none() {
            self.problem(
                at,
                Some(key),
                format!(
                    "{} is not a duration (e.g. \"10s\", \"5min\", \"100ms\")",
                    show(v)
                ),
            );
        }
        parsed
    }

    fn role_field(&mut self, at: &At, t: &Table, key: &str) -> Option<Role> {
        let s = self.str_field(at, t, key)?;
        let role = Role::parse(&s);
        if role.is_none() {
            self.problem(
                at,
                Some(key),
                format!("\"{s}\" is not a role (Started, Stopped, Promoted, Unpromoted)"),
            );
        }
        role
    }

    fn str_list(&mut self, at: &At, t: &Table, key: &str) -> Option<Vec<String>> {
        let v = t.get(key)?;
        match string_list(v) {
            Some(l) => Some(l),
            None => {
                self.problem(
                    at,
                    Some(key),
                    format!("expected a list of strings, found {}", kind(v)),
                );
                None
            }
        }
    }

    /// `key = { name = value }` or `key = [{ id, score, rule, values }]`.
    fn nvsets(&mut self, at: &At, t: &Table, key: &str, default_id: &str) -> Vec<NvSet> {
        match t.get(key) {
            None => Vec::new(),
            Some(Value::Table(pairs)) => {
                let pairs = self.pairs(&at.nested(key), pairs);
                vec![NvSet {
                    id: default_id.to_string(),
                    score: Score::ZERO,
                    rule: None,
                    pairs,
                }]
            }
            Some(Value::Array(sets)) => {
                let mut out = Vec::new();
                for (i, v) in sets.iter().enumerate() {
                    let sat = at.nested(&format!("{key}[{i}]"));
                    let Some(st) = v.as_table() else {
                        self.problem(&sat, None, format!("expected a table, found {}", kind(v)));
                        continue;
                    };
                    self.keys(&sat, st, &["id", "score", "rule", "values"]);
                    let id = self
                        .str_field(&sat, st, "id")
                        .unwrap_or_else(|| format!("{default_id}-{}", i + 1));
                    let score = self.score_field(&sat, st, "score").unwrap_or_default();
                    let rule = match st.get("rule") {
                        Some(Value::Table(rt)) => {
                            self.rule(&sat.nested("rule"), rt, &format!("{id}-rule"))
                        }
                        Some(other) => {
                            self.problem(
                                &sat,
                                Some("rule"),
                                format!("expected a table, found {}", kind(other)),
                            );
                            None
                        }
                        None => None,
                    };
                    let pairs = match st.get("values") {
                        Some(Value::Table(p)) => self.pairs(&sat.nested("values"), p),
                        Some(other) => {
                            self.problem(
                                &sat,
                                Some("values"),
                                format!("expected a table, found {}", kind(other)),
                            );
                            Vec::new()
                        }
                        None => Vec::new(),
                    };
                    out.push(NvSet {
                        id,
                        score,
                        rule,
                        pairs,
                    });
                }
                out
            }
            Some(other) => {
                self.problem(
                    at,
                    Some(key),
                    format!("expected a table of name = value, found {}", kind(other)),
                );
                Vec::new()
            }
        }
    }

    fn pairs(&mut self, at: &At, t: &Table) -> Vec<NvPair> {
        let mut out = Vec::new();
        for (name, v) in t {
            match scalar_text(v) {
                Some(value) => out.push(NvPair {
                    name: name.clone(),
                    value: Some(value),
                }),
                None => self.problem(
                    at,
                    Some(name),
                    format!("expected a string, number or boolean, found {}", kind(v)),
                ),
            }
        }
        out
    }

    // -- sections --------------------------------------------------------------

    fn cluster(&mut self, t: &Table, config: &mut Configuration) {
        let at = At::top("[cluster]");
        self.keys(
            &at,
            t,
            &[
                "name",
                "options",
                "resource-defaults",
                "op-defaults",
                "templates",
            ],
        );
        config.options = self.nvsets(&at, t, "options", "cib-bootstrap-options");
        if let Some(name) = self.str_field(&at, t, "name") {
            let pair = NvPair {
                name: "cluster-name".into(),
                value: Some(name),
            };
            match config.options.iter_mut().find(|s| s.rule.is_none()) {
                Some(set) => set.pairs.insert(0, pair),
                None => config.options.insert(
                    0,
                    NvSet {
                        id: "cib-bootstrap-options".into(),
                        pairs: vec![pair],
                        ..NvSet::default()
                    },
                ),
            }
        }
        config.rsc_defaults = self.nvsets(&at, t, "resource-defaults", "rsc-options");
        config.op_defaults = self.nvsets(&at, t, "op-defaults", "op-options");
        config.templates = self.str_list(&at, t, "templates").unwrap_or_default();
    }

    fn node(&mut self, at: &At, t: &Table) -> Option<NodeConfig> {
        self.keys(
            at,
            t,
            &["name", "id", "kind", "score", "attributes", "utilization"],
        );
        let name = self.req_str(at, t, "name");
        let id = self.str_field(at, t, "id");
        let kind = match self.str_field(at, t, "kind").as_deref() {
            None | Some("member") => NodeKind::Member,
            Some("remote") => NodeKind::Remote,
            Some("ping") => NodeKind::Ping,
            Some(other) => {
                self.problem(
                    at,
                    Some("kind"),
                    format!("\"{other}\" is not a node kind (member, remote, ping)"),
                );
                NodeKind::Member
            }
        };
        let score = self.score_field(at, t, "score").unwrap_or_default();
        let name = name?;
        let id = id.unwrap_or_else(|| name.clone());
        let attributes = self.nvsets(at, t, "attributes", &format!("nodes-{id}"));
        let utilization = self.nvsets(at, t, "utilization", &format!("nodes-{id}-utilization"));
        Some(NodeConfig {
            id,
            uname: name,
            kind,
            score,
            attributes,
            utilization,
        })
    }

    fn primitive(&mut self, at: &At, t: &Table) -> Option<Primitive> {
        self.keys(
            at,
            t,
            &[
                "id",
                "agent",
                "template",
                "params",
                "meta",
                "utilization",
                "op",
            ],
        );
        let id = self.req_str(at, t, "id");
        let agent = self.req_str(at, t, "agent");
        let template = self.str_field(at, t, "template");
        let (class, provider, agent_type) = match agent {
            Some(a) => match split_agent(&a) {
                Ok(parts) => parts,
                Err(msg) => {
                    self.problem(at, Some("agent"), msg);
                    return None;
                }
            },
            None => return None,
        };
        let id = id?;
        let instance = self.nvsets(at, t, "params", &format!("{id}-instance_attributes"));
        let meta = self.nvsets(at, t, "meta", &format!("{id}-meta_attributes"));
        let utilization = self.nvsets(at, t, "utilization", &format!("{id}-utilization"));
        let mut operations = Vec::new();
        match t.get("op") {
            None => {}
            Some(Value::Array(ops)) => {
                for (i, v) in ops.iter().enumerate() {
                    let oat = at.nested(&format!("op[{i}]"));
                    match v.as_table() {
                        Some(ot) => {
                            if let Some(op) = self.operation(&oat, ot, &id) {
                                operations.push(op);
                            }
                        }
                        None => {
                            self.problem(&oat, None, format!("expected a table, found {}", kind(v)))
                        }
                    }
                }
            }
            Some(other) => {
                self.problem(
                    at,
                    Some("op"),
                    format!("expected an array of tables, found {}", kind(other)),
                );
            }
        }
        Some(Primitive {
            id,
            class,
            provider,
            agent: agent_type,
            template,
            meta,
            instance,
            utilization,
            operations,
        })
    }

    fn operation(&mut self, at: &At, t: &Table, rsc: &str) -> Option<Operation> {
        self.keys(
            at,
            t,
            &[
                "name", "interval", "timeout", "role", "on-fail", "enabled", "meta",
            ],
        );
        let name = self.req_str(at, t, "name");
        let interval_ms = self.duration_field(at, t, "interval").unwrap_or(0);
        let timeout_ms = self.duration_field(at, t, "timeout");
        let role = self.role_field(at, t, "role");
        let on_fail = self.str_field(at, t, "on-fail");
        if let Some(of) = &on_fail {
            const ON_FAIL: &[&str] = &[
                "ignore", "block", "stop", "restart", "standby", "fence", "demote", "reset",
            ];
            if !ON_FAIL.contains(&of.as_str()) {
                self.problem(
                    at,
                    Some("on-fail"),
                    format!("\"{of}\" is not one of {}", ON_FAIL.join(", ")),
                );
            }
        }
        let enabled = self.bool_field(at, t, "enabled").unwrap_or(true);
        let name = name?;
        let id = op_id(rsc, &name, interval_ms, role);
        let meta = self.nvsets(at, t, "meta", &format!("{id}-meta_attributes"));
        Some(Operation {
            id,
            name,
            interval_ms,
            role,
            on_fail,
            timeout_ms,
            enabled,
            meta,
        })
    }

    /// Primitives, then groups claim members, then clones claim children.
    fn resources(&mut self, doc: &Table) -> Vec<Resource> {
        let mut pool: BTreeMap<String, Pending> = BTreeMap::new();
        let mut seen_ids: BTreeSet<String> = BTreeSet::new();
        for (i, t) in self.entries(doc, "resource").iter().enumerate() {
            let at = At::entry("resource", i, t);
            if let Some(p) = self.primitive(&at, t) {
                if !seen_ids.insert(p.id.clone()) {
                    self.problem(
                        &at,
                        Some("id"),
                        format!("duplicate resource id \"{}\"", p.id),
                    );
                    continue;
                }
                pool.insert(
                    p.id.clone(),
                    Pending {
                        resource: Resource::Primitive(p),
                        position: i,
                    },
                );
            }
        }
        for (i, t) in self.entries(doc, "group").iter().enumerate() {
            let at = At::entry("group", i, t);
            self.keys(&at, t, &["id", "members", "meta"]);
            let id = self.req_str(&at, t, "id");
            let members = self.str_list(&at, t, "members");
            if members.as_ref().is_some_and(|m| m.is_empty())
                || (members.is_none() && !t.contains_key("members"))
            {
                self.problem(&at, Some("members"), "a group needs at least one member");
            }
            let Some(id) = id else { continue };
            if !seen_ids.insert(id.clone()) {
                self.problem(&at, Some("id"), format!("duplicate resource id \"{id}\""));
                continue;
            }
            let meta = self.nvsets(&at, t, "meta", &format!("{id}-meta_attributes"));
            let mut group = Group {
                id: id.clone(),
                meta,
                members: Vec::new(),
            };
            let mut position = usize::MAX;
            for m in members.unwrap_or_default() {
                match pool.remove(&m) {
                    Some(Pending {
                        resource: Resource::Primitive(p),
                        position: pos,
                    }) => {
                        position = position.min(pos);
                        group.members.push(p);
                    }
                    Some(other) => {
                        self.problem(&at, Some("members"), format!("\"{m}\" is not a primitive"));
                        pool.insert(m, other);
                    }
                    None if seen_ids.contains(&m) => self.problem(
                        &at,
                        Some("members"),
                        format!("\"{m}\" already belongs to another group or clone"),
                    ),
                    None => self.problem(
                        &at,
                        Some("members"),
                        format!("unknown resource \"{m}\" (members must be [[resource]] ids)"),
                    ),
                }
            }
            pool.insert(
                id,
                Pending {
                    resource: Resource::Group(group),
                    position,
                },
            );
        }
        for (i, t) in self.entries(doc, "clone").iter().enumerate() {
            let at = At::entry("clone", i, t);
            self.keys(&at, t, &["id", "of", "promotable", "meta"]);
            let id = self.req_str(&at, t, "id");
            let of = self.req_str(&at, t, "of");
            let promotable = self.bool_field(&at, t, "promotable").unwrap_or(false);
            let (Some(id), Some(of)) = (id, of) else {
                continue;
            };
            if !seen_ids.insert(id.clone()) {
                self.problem(&at, Some("id"), format!("duplicate resource id \"{id}\""));
                continue;
            }
            let meta = self.nvsets(&at, t, "meta", &format!("{id}-meta_attributes"));
            match pool.remove(&of) {
                Some(Pending {
                    resource: Resource::Clone(c),
                    position,
                }) => {
                    self.problem(&at, Some("of"), format!("\"{of}\" is already a clone"));
                    pool.insert(
                        of,
                        Pending {
                            resource: Resource::Clone(c),
                            position,
                        },
                    );
                }
                Some(Pending { resource, position }) => {
                    pool.insert(
                        id.clone(),
                        Pending {
                            resource: Resource::Clone(CloneRsc {
                                id,
                                promotable,
                                meta,
                                child: Box::new(resource),
                            }),
                            position,
                        },
                    );
                }
                None if seen_ids.contains(&of) => self.problem(
                    &at,
                    Some("of"),
                    format!("\"{of}\" already belongs to another group or clone"),
                ),
                None => self.problem(
                    &at,
                    Some("of"),
                    format!("unknown resource \"{of}\" (expected a [[resource]] or [[group]] id)"),
                ),
            }
        }
        let mut top: Vec<Pending> = pool.into_values().collect();
        top.sort_by_key(|p| p.position);
        top.into_iter().map(|p| p.resource).collect()
    }

    // -- constraints -----------------------------------------------------------

    fn constraints(&mut self, doc: &Table, config: &mut Configuration) {
        let mut ids = BTreeSet::new();
        let mut out = Vec::new();
        for (i, t) in self.entries(doc, "location").iter().enumerate() {
            let at = At::entry("location", i, t);
            if let Some(c) = self.location(&at, t) {
                out.push((at, Constraint::Location(c)));
            }
        }
        for (i, t) in self.entries(doc, "colocation").iter().enumerate() {
            let at = At::entry("colocation", i, t);
            if let Some(c) = self.colocation(&at, t) {
                out.push((at, Constraint::Colocation(c)));
            }
        }
        for (i, t) in self.entries(doc, "order").iter().enumerate() {
            let at = At::entry("order", i, t);
            if let Some(c) = self.order(&at, t) {
                out.push((at, Constraint::Order(c)));
            }
        }
        for (i, t) in self.entries(doc, "ticket").iter().enumerate() {
            let at = At::entry("ticket", i, t);
            if let Some(c) = self.ticket(&at, t) {
                out.push((at, Constraint::Ticket(c)));
            }
        }
        for (at, c) in out {
            if !ids.insert(c.id().to_string()) {
                self.problem(
                    &at,
                    Some("id"),
                    format!("duplicate constraint id \"{}\"", c.id()),
                );
                continue;
            }
            config.constraints.push(c);
        }
    }

    fn location(&mut self, at: &At, t: &Table) -> Option<Location> {
        self.keys(
            at,
            t,
            &[
                "id",
                "resource",
                "resource-pattern",
                "sets",
                "node",
                "score",
                "role",
                "rules",
                "resource-discovery",
            ],
        );
        let rsc = self.str_field(at, t, "resource");
        let pattern = self.str_field(at, t, "resource-pattern");
        let sets = self.sets(at, t, "loc");
        let targets = rsc.is_some() as u8 + pattern.is_some() as u8 + (!sets.is_empty()) as u8;
        if targets != 1 {
            self.problem(
                at,
                None,
                "give exactly one of \"resource\", \"resource-pattern\" or \"sets\"",
            );
        }
        let node = self.str_field(at, t, "node");
        let score = self.score_field(at, t, "score");
        let role = self.role_field(at, t, "role");
        let discovery = self.str_field(at, t, "resource-discovery");
        if let Some(d) = &discovery {
            if !["always", "never", "exclusive"].contains(&d.as_str()) {
                self.problem(
                    at,
                    Some("resource-discovery"),
                    format!("\"{d}\" is not one of always, never, exclusive"),
                );
            }
        }
        let default_id = format!(
            "location-{}-{}",
            rsc.as_deref().or(pattern.as_deref()).unwrap_or("set"),
            node.as_deref().unwrap_or("rule")
        );
        let id = self.str_field(at, t, "id").unwrap_or(default_id);
        let mut rules = Vec::new();
        if let Some(v) = t.get("rules") {
            match v.as_array() {
                Some(items) => {
                    for (i, r) in items.iter().enumerate() {
                        let rat = at.nested(&format!("rules[{i}]"));
                        match r.as_table() {
                            Some(rt) => {
                                if let Some(rule) =
                                    self.rule(&rat, rt, &format!("{id}-rule-{}", i + 1))
                                {
                                    if rule.score.is_none() && rule.score_attribute.is_none() {
                                        self.problem(&rat, None, "a location rule needs \"score\" or \"score-attribute\"");
                                    }
                                    rules.push(rule);
                                }
                            }
                            None => self.problem(
                                &rat,
                                None,
                                format!("expected a table, found {}", kind(r)),
                            ),
                        }
                    }
                }
                None => self.problem(
                    at,
                    Some("rules"),
                    format!("expected an array of tables, found {}", kind(v)),
                ),
            }
        }
        match (&node, rules.is_empty(), t.contains_key("rules")) {
            (Some(_), true, false) if score.is_none() && !t.contains_key("score") => {
                self.problem(at, Some("score"), "is required with \"node\"")
            }
            (None, true, false) => {
                self.problem(at, None, "give \"node\" and \"score\", or \"rules\"")
            }
            (Some(_), _, true) => {
                self.problem(at, None, "give either \"node\" or \"rules\", not both")
            }
            _ => {}
        }
        let target = if let Some(r) = rsc {
            LocationTarget::Resource(r)
        } else if let Some(p) = pattern {
            let (negated, regex) = match p.strip_prefix('!') {
                Some(rest) => (true, rest.to_string()),
                None => (false, p),
            };
            LocationTarget::Pattern { regex, negated }
        } else {
            LocationTarget::Sets(sets)
        };
        Some(Location {
            id,
            target,
            role,
            node,
            score,
            rules,
            resource_discovery: discovery,
        })
    }

    fn colocation(&mut self, at: &At, t: &Table) -> Option<Colocation> {
        self.keys(
            at,
            t,
            &[
                "id",
                "resource",
                "with",
                "score",
                "resource-role",
                "with-role",
                "node-attribute",
                "influence",
                "sets",
            ],
        );
        let rsc = self.str_field(at, t, "resource");
        let with = self.str_field(at, t, "with");
        let sets = self.sets(at, t, "col");
        match (&rsc, &with, sets.is_empty()) {
            (Some(_), Some(_), true) | (None, None, false) => {}
            _ => self.problem(at, None, "give \"resource\" and \"with\", or \"sets\""),
        }
        if !t.contains_key("score") {
            self.problem(at, Some("score"), "is required");
        }
        let score = self.score_field(at, t, "score").unwrap_or_default();
        let rsc_role = self.role_field(at, t, "resource-role");
        let with_rsc_role = self.role_field(at, t, "with-role");
        let node_attribute = self.str_field(at, t, "node-attribute");
        let influence = self.bool_field(at, t, "influence");
        let id = self.str_field(at, t, "id").unwrap_or_else(|| {
            format!(
                "colocation-{}-{}",
                rsc.as_deref().unwrap_or("set"),
                with.as_deref().unwrap_or("set")
            )
        });
        Some(Colocation {
            id,
            score,
            rsc,
            with_rsc: with,
            rsc_role,
            with_rsc_role,
            node_attribute,
            influence,
            sets,
        })
    }

    fn order(&mut self, at: &At, t: &Table) -> Option<Order> {
        self.keys(
            at,
            t,
            &[
                "id",
                "first",
                "then",
                "first-action",
                "then-action",
                "kind",
                "symmetrical",
                "require-all",
                "sets",
            ],
        );
        let first = self.str_field(at, t, "first");
        let then = self.str_field(at, t, "then");
        let sets = self.sets(at, t, "ord");
        match (&first, &then, sets.is_empty()) {
            (Some(_), Some(_), true) | (None, None, false) => {}
            _ => self.problem(at, None, "give \"first\" and \"then\", or \"sets\""),
        }
        let first_action = self.action_field(at, t, "first-action");
        let then_action = self.action_field(at, t, "then-action");
        let kind = match t.get("kind") {
            None => OrderKind::Mandatory,
            Some(v) => match v.as_str().and_then(parse_order_kind) {
                Some(k) => k,
                None => {
                    self.problem(
                        at,
                        Some("kind"),
                        format!(
                            "{} is not an order kind (Mandatory, Optional, Serialize)",
                            show(v)
                        ),
                    );
                    OrderKind::Mandatory
                }
            },
        };
        let symmetrical = self.bool_field(at, t, "symmetrical");
        let require_all = self.bool_field(at, t, "require-all");
        let id = self.str_field(at, t, "id").unwrap_or_else(|| {
            format!(
                "order-{}-{}",
                first.as_deref().unwrap_or("set"),
                then.as_deref().unwrap_or("set")
            )
        });
        Some(Order {
            id,
            first,
            then,
            first_action,
            then_action,
            kind,
            symmetrical,
            require_all,
            sets,
        })
    }

    fn ticket(&mut self, at: &At, t: &Table) -> Option<TicketConstraint> {
        self.keys(
            at,
            t,
            &["id", "ticket", "resource", "role", "loss-policy", "sets"],
        );
        let ticket = self.req_str(at, t, "ticket");
        let rsc = self.str_field(at, t, "resource");
        let sets = self.sets(at, t, "tkt");
        if rsc.is_some() != sets.is_empty() {
            self.problem(at, None, "give exactly one of \"resource\" or \"sets\"");
        }
        let rsc_role = self.role_field(at, t, "role");
        let loss_policy = self.str_field(at, t, "loss-policy");
        if let Some(lp) = &loss_policy {
            if !["stop", "demote", "fence", "freeze"].contains(&lp.as_str()) {
                self.problem(
                    at,
                    Some("loss-policy"),
                    format!("\"{lp}\" is not one of stop, demote, fence, freeze"),
                );
            }
        }
        let ticket = ticket?;
        let id = self
            .str_field(at, t, "id")
            .unwrap_or_else(|| format!("ticket-{ticket}-{}", rsc.as_deref().unwrap_or("set")));
        Some(TicketConstraint {
            id,
            ticket,
            rsc,
            rsc_role,
            loss_policy,
            sets,
        })
    }

    fn action_field(&mut self, at: &At, t: &Table, key: &str) -> Option<String> {
        let a = self.str_field(at, t, key)?;
        if !["start", "stop", "promote", "demote"].contains(&a.as_str()) {
            self.problem(
                at,
                Some(key),
                format!("\"{a}\" is not an action (start, stop, promote, demote)"),
            );
        }
        Some(a)
    }

    fn sets(&mut self, at: &At, t: &Table, prefix: &str) -> Vec<ResourceSet> {
        let Some(v) = t.get("sets") else {
            return Vec::new();
        };
        let Some(items) = v.as_array() else {
            self.problem(
                at,
                Some("sets"),
                format!("expected an array of tables, found {}", kind(v)),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let sat = at.nested(&format!("sets[{i}]"));
            let Some(st) = item.as_table() else {
                self.problem(
                    &sat,
                    None,
                    format!("expected a table, found {}", kind(item)),
                );
                continue;
            };
            self.keys(
                &sat,
                st,
                &[
                    "id",
                    "resources",
                    "sequential",
                    "require-all",
                    "role",
                    "action",
                    "ordering",
                    "kind",
                    "score",
                ],
            );
            let resources = self.str_list(&sat, st, "resources").unwrap_or_default();
            if resources.is_empty() {
                self.problem(&sat, Some("resources"), "a set needs at least one resource");
            }
            let kind_v = match st.get("kind") {
                None => None,
                Some(v) => {
                    let k = v.as_str().and_then(parse_order_kind);
                    if k.is_none() {
                        self.problem(
                            &sat,
                            Some("kind"),
                            format!(
                                "{} is not an order kind (Mandatory, Optional, Serialize)",
                                show(v)
                            ),
                        );
                    }
                    k
                }
            };
            out.push(ResourceSet {
                id: self
                    .str_field(&sat, st, "id")
                    .unwrap_or_else(|| format!("{prefix}-set-{}", i + 1)),
                resources,
                sequential: self.bool_field(&sat, st, "sequential"),
                require_all: self.bool_field(&sat, st, "require-all"),
                role: self.role_field(&sat, st, "role"),
                action: self.action_field(&sat, st, "action"),
                ordering: self.str_field(&sat, st, "ordering"),
                kind: kind_v,
                score: self.score_field(&sat, st, "score"),
            });
        }
        out
    }

    // -- rules -------------------------------------------------------------------

    fn rule(&mut self, at: &At, t: &Table, id: &str) -> Option<Rule> {
        self.keys(
            at,
            t,
            &[
                "score",
                "score-attribute",
                "boolean-op",
                "role",
                "expressions",
            ],
        );
        let score = self.score_field(at, t, "score");
        let score_attribute = self.str_field(at, t, "score-attribute");
        let bool_op = match self.str_field(at, t, "boolean-op").as_deref() {
            None | Some("and") => BoolOp::And,
            Some("or") => BoolOp::Or,
            Some(other) => {
                self.problem(
                    at,
                    Some("boolean-op"),
                    format!("\"{other}\" is not \"and\" or \"or\""),
                );
                BoolOp::And
            }
        };
        let role = self.role_field(at, t, "role");
        let mut expressions = Vec::new();
        match t.get("expressions") {
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let eat = at.nested(&format!("expressions[{i}]"));
                    match item.as_table() {
                        Some(et) => {
                            if let Some(e) =
                                self.expression(&eat, et, &format!("{id}-expr-{}", i + 1))
                            {
                                expressions.push(e);
                            }
                        }
                        None => self.problem(
                            &eat,
                            None,
                            format!("expected a table, found {}", kind(item)),
                        ),
                    }
                }
            }
            Some(other) => self.problem(
                at,
                Some("expressions"),
                format!("expected an array of tables, found {}", kind(other)),
            ),
            None => self.problem(at, Some("expressions"), "is required"),
        }
        Some(Rule {
            id: id.to_string(),
            score,
            score_attribute,
            bool_op,
            role,
            expressions,
        })
    }

    fn expression(&mut self, at: &At, t: &Table, id: &str) -> Option<Expression> {
        if t.contains_key("attribute") {
            self.keys(at, t, &["attribute", "op", "value", "type", "value-source"]);
            let attribute = self.req_str(at, t, "attribute")?;
            let operation = self.req_str(at, t, "op")?;
            const OPS: &[&str] = &[
                "lt",
                "gt",
                "lte",
                "gte",
                "eq",
                "ne",
                "defined",
                "not_defined",
            ];
            if !OPS.contains(&operation.as_str()) {
                self.problem(
                    at,
                    Some("op"),
                    format!("\"{operation}\" is not one of {}", OPS.join(", ")),
                );
            }
            let value = match t.get("value") {
                None => None,
                Some(v) => match scalar_text(v) {
                    Some(s) => Some(s),
                    None => {
                        self.problem(
                            at,
                            Some("value"),
                            format!("expected a string or number, found {}", kind(v)),
                        );
                        None
                    }
                },
            };
            let value_type = match self.str_field(at, t, "type").as_deref() {
                None => None,
                Some("string") => Some(ValueType::String),
                Some("integer") => Some(ValueType::Integer),
                Some("number") => Some(ValueType::Number),
                Some("version") => Some(ValueType::Version),
                Some(other) => {
                    self.problem(
                        at,
                        Some("type"),
                        format!("\"{other}\" is not one of string, integer, number, version"),
                    );
                    None
                }
            };
            let value_source = self.str_field(at, t, "value-source");
            return Some(Expression::Attribute {
                attribute,
                operation,
                value,
                value_type,
                value_source,
            });
        }
        if t.contains_key("date") {
            self.keys(at, t, &["date", "start", "end", "duration", "spec"]);
            let op = self.str_field(at, t, "date");
            let operation = match op.as_deref() {
                Some("in_range") => DateOp::InRange,
                Some("gt") => DateOp::Gt,
                Some("lt") => DateOp::Lt,
                Some("date_spec") => DateOp::DateSpec,
                other => {
                    self.problem(
                        at,
                        Some("date"),
                        format!(
                            "{:?} is not one of in_range, gt, lt, date_spec",
                            other.unwrap_or("")
                        ),
                    );
                    return None;
                }
            };
            let start = self.time_field(at, t, "start");
            let end = self.time_field(at, t, "end");
            let duration_s = self
                .duration_field(at, t, "duration")
                .map(|ms| (ms / 1000) as i64);
            let spec = match t.get("spec") {
                None => None,
                Some(Value::Table(st)) => Some(DateSpec {
                    fields: self
                        .pairs(&at.nested("spec"), st)
                        .into_iter()
                        .map(|p| (p.name, p.value.unwrap_or_default()))
                        .collect(),
                }),
                Some(other) => {
                    self.problem(
                        at,
                        Some("spec"),
                        format!("expected a table, found {}", kind(other)),
                    );
                    None
                }
            };
            return Some(Expression::Date {
                operation,
                start,
                end,
                duration_s,
                spec,
            });
        }
        if t.contains_key("resource-agent") {
            self.keys(at, t, &["resource-agent"]);
            let spec = self.req_str(at, t, "resource-agent")?;
            let parts: Vec<&str> = spec.split(':').collect();
            let opt = |s: &str| (!s.is_empty() && s != "*").then(|| s.to_string());
            let (class, provider, agent) = match parts.as_slice() {
                [c, p, a] => (opt(c), opt(p), opt(a)),
                [c, a] => (opt(c), None, opt(a)),
                [c] => (opt(c), None, None),
                _ => {
                    self.problem(
                        at,
                        Some("resource-agent"),
                        format!("\"{spec}\" is not class[:provider]:type"),
                    );
                    return None;
                }
            };
            return Some(Expression::Resource {
                class,
                provider,
                agent,
            });
        }
        if t.contains_key("operation") {
            self.keys(at, t, &["operation", "interval"]);
            let name = self.req_str(at, t, "operation")?;
            let interval_ms = self.duration_field(at, t, "interval");
            return Some(Expression::Operation { name, interval_ms });
        }
        if let Some(v) = t.get("rule") {
            self.keys(at, t, &["rule"]);
            return match v.as_table() {
                Some(rt) => self.rule(&at.nested("rule"), rt, id).map(Expression::Rule),
                None => {
                    self.problem(
                        at,
                        Some("rule"),
                        format!("expected a table, found {}", kind(v)),
                    );
                    None
                }
            };
        }
        self.problem(
            at,
            None,
            "an expression needs one of \"attribute\", \"date\", \"resource-agent\", \"operation\" or \"rule\"",
        );
        None
    }

    /// A TOML datetime (UTC offset required) or epoch seconds.
    fn time_field(&mut self, at: &At, t: &Table, key: &str) -> Option<i64> {
        let v = t.get(key)?;
        let parsed = match v {
            Value::Integer(i) => Some(*i),
            Value::Datetime(dt) => datetime_to_epoch(dt),
            _ => None,
        };
        if parsed.is_none() {
            self.problem(
                at,
                Some(key),
                format!(
                    "{} is not a time (a datetime like 2024-05-01T00:00:00Z, or epoch seconds)",
                    show(v)
                ),
            );
        }
        parsed
    }

    fn fencing_level(&mut self, at: &At, t: &Table, i: usize) -> Option<FencingLevel> {
        self.keys(
            at,
            t,
            &[
                "id",
                "index",
                "target",
                "target-pattern",
                "target-attribute",
                "devices",
            ],
        );
        let index = self.int_field(at, t, "index").unwrap_or(1);
        let devices = self.str_list(at, t, "devices").unwrap_or_default();
        if devices.is_empty() {
            self.problem(at, Some("devices"), "needs at least one fencing device");
        }
        let target = if let Some(n) = self.str_field(at, t, "target") {
            FencingTarget::Node(n)
        } else if let Some(p) = self.str_field(at, t, "target-pattern") {
            FencingTarget::Pattern(p)
        } else if let Some(Value::Table(a)) = t.get("target-attribute") {
            match a.iter().next() {
                Some((name, v)) if a.len() == 1 && scalar_text(v).is_some() => {
                    FencingTarget::Attribute {
                        name: name.clone(),
                        value: scalar_text(v).unwrap_or_default(),
                    }
                }
                _ => {
                    self.problem(
                        at,
                        Some("target-attribute"),
                        "expected one { name = value }",
                    );
                    return None;
                }
            }
        } else {
            self.problem(
                at,
                None,
                "give one of \"target\", \"target-pattern\" or \"target-attribute\"",
            );
            return None;
        };
        let index = match u32::try_from(index) {
            Ok(i) if i >= 1 => i,
            _ => {
                self.problem(
                    at,
                    Some("index"),
                    format!("{index} is not a level index (1 or more)"),
                );
                1
            }
        };
        let id = self
            .str_field(at, t, "id")
            .unwrap_or_else(|| format!("fencing-level-{}", i + 1));
        Some(FencingLevel {
            id,
            index,
            target,
            devices,
        })
    }

    // -- references ----------------------------------------------------------

    fn check_references(&mut self, config: &Configuration) {
        let mut known: BTreeSet<&str> = BTreeSet::new();
        for r in &config.resources {
            collect_ids(r, &mut known);
        }
        known.extend(config.tags.iter().map(|t| t.id.as_str()));
        known.extend(config.templates.iter().map(String::as_str));
        let nodes: BTreeSet<&str> = config.nodes.iter().map(|n| n.uname.as_str()).collect();
        let mut node_ids = BTreeSet::new();
        for (i, n) in config.nodes.iter().enumerate() {
            if !node_ids.insert(n.uname.as_str()) {
                self.problem(
                    &At::top(&format!("[[node]] #{} (id \"{}\")", i + 1, n.uname)),
                    Some("name"),
                    format!("duplicate node name \"{}\"", n.uname),
                );
            }
        }
        for (i, tag) in config.tags.iter().enumerate() {
            let at = At::top(&format!("[[tag]] #{} (id \"{}\")", i + 1, tag.id));
            for r in &tag.refs {
                if !known.contains(r.as_str()) {
                    self.problem(&at, Some("resources"), format!("unknown resource \"{r}\""));
                }
            }
        }
        let mut counters: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &config.constraints {
            let kind = match c {
                Constraint::Location(_) => "location",
                Constraint::Colocation(_) => "colocation",
                Constraint::Order(_) => "order",
                Constraint::Ticket(_) => "ticket",
            };
            let n = counters.entry(kind).or_default();
            *n += 1;
            let at = At::top(&format!("[[{kind}]] #{} (id \"{}\")", n, c.id()));
            let mut refs: Vec<(&str, &str)> = Vec::new();
            match c {
                Constraint::Location(l) => {
                    match &l.target {
                        LocationTarget::Resource(r) => refs.push(("resource", r)),
                        LocationTarget::Sets(s) => {
                            for r in set_ids(s) {
                                refs.push(("sets", r));
                            }
                        }
                        LocationTarget::Pattern { .. } => {}
                    }
                    if let Some(n) = &l.node {
                        if !nodes.contains(n.as_str()) {
                            self.problem(&at, Some("node"), format!("unknown node \"{n}\""));
                        }
                    }
                }
                Constraint::Colocation(co) => {
                    if let Some(r) = &co.rsc {
                        refs.push(("resource", r));
                    }
                    if let Some(r) = &co.with_rsc {
                        refs.push(("with", r));
                    }
                    for r in set_ids(&co.sets) {
                        refs.push(("sets", r));
                    }
                }
                Constraint::Order(o) => {
                    if let Some(r) = &o.first {
                        refs.push(("first", r));
                    }
                    if let Some(r) = &o.then {
                        refs.push(("then", r));
                    }
                    for r in set_ids(&o.sets) {
                        refs.push(("sets", r));
                    }
                }
                Constraint::Ticket(tk) => {
                    if let Some(r) = &tk.rsc {
                        refs.push(("resource", r));
                    }
                    for r in set_ids(&tk.sets) {
                        refs.push(("sets", r));
                    }
                }
            }
            for (field, r) in refs {
                if !known.contains(r) {
                    self.problem(&at, Some(field), format!("unknown resource \"{r}\""));
                }
            }
        }
    }

    // -- status ----------------------------------------------------------------

    fn status(&mut self, t: &Table, config: &Configuration) -> Status {
        let at = At::top("[status]");
        self.keys(
            &at,
            t,
            &[
                "quorum",
                "dc",
                "execution-date",
                "online",
                "offline",
                "unclean",
                "standby",
                "running",
                "failed",
                "tickets",
            ],
        );
        let mut status = Status {
            have_quorum: self.bool_field(&at, t, "quorum").unwrap_or(true),
            execution_date: self.time_field(&at, t, "execution-date"),
            ..Status::default()
        };
        let by_name: BTreeMap<&str, &NodeConfig> =
            config.nodes.iter().map(|n| (n.uname.as_str(), n)).collect();
        let mut lists: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for key in ["online", "offline", "unclean", "standby"] {
            let list = self.str_list(&at, t, key).unwrap_or_default();
            for n in &list {
                if !by_name.contains_key(n.as_str()) {
                    self.problem(&at, Some(key), format!("unknown node \"{n}\""));
                }
            }
            lists.insert(key, list);
        }
        let in_list = |key: &str, n: &str| lists.get(key).is_some_and(|l| l.iter().any(|x| x == n));
        if let Some(dc) = self.str_field(&at, t, "dc") {
            match by_name.get(dc.as_str()) {
                Some(n) => status.dc_uuid = Some(n.id.clone()),
                None => self.problem(&at, Some("dc"), format!("unknown node \"{dc}\"")),
            }
        }
        let (running, failed) = self.status_resources(&at, t, config, &by_name);
        let mut call_id = 0;
        for node in &config.nodes {
            let name = node.uname.as_str();
            let down = in_list("offline", name) || in_list("unclean", name);
            if in_list("online", name) && down {
                self.problem(
                    &at,
                    Some("online"),
                    format!("node \"{name}\" is also listed as offline or unclean"),
                );
            }
            if in_list("standby", name) && down {
                self.problem(
                    &at,
                    Some("standby"),
                    format!("node \"{name}\" is in standby but not online"),
                );
            }
            let mut state = if down {
                let expected = if in_list("unclean", name) {
                    "member"
                } else {
                    "down"
                };
                NodeState {
                    id: node.id.clone(),
                    uname: Some(node.uname.clone()),
                    in_ccm: Some("false".into()),
                    crmd: Some("offline".into()),
                    join: Some("down".into()),
                    expected: Some(expected.into()),
                    ..NodeState::default()
                }
            } else {
                NodeState {
                    id: node.id.clone(),
                    uname: Some(node.uname.clone()),
                    in_ccm: Some("true".into()),
                    crmd: Some("online".into()),
                    join: Some("member".into()),
                    expected: Some("member".into()),
                    ..NodeState::default()
                }
            };
            let mut transient = Vec::new();
            if in_list("standby", name) {
                transient.push(NvPair {
                    name: "standby".into(),
                    value: Some("on".into()),
                });
            }
            state.history = synthesize_history(
                config,
                name,
                &running,
                &failed,
                &mut call_id,
                status.execution_date,
                &mut transient,
            );
            if !transient.is_empty() {
                state.transient.push(NvSet {
                    id: format!("status-{}", node.id),
                    pairs: transient,
                    ..NvSet::default()
                });
            }
            status.nodes.push(state);
        }
        if let Some(v) = t.get("tickets") {
            match v.as_table() {
                Some(tt) => {
                    for (id, v) in tt {
                        let (granted, standby) = match v.as_str() {
                            Some("granted") => (true, false),
                            Some("revoked") => (false, false),
                            Some("standby") => (true, true),
                            _ => {
                                self.problem(
                                    &at.nested("tickets"),
                                    Some(id),
                                    format!(
                                        "{} is not one of \"granted\", \"revoked\", \"standby\"",
                                        show(v)
                                    ),
                                );
                                continue;
                            }
                        };
                        status.tickets.push(TicketState {
                            id: id.clone(),
                            granted,
                            standby,
                            last_granted: None,
                        });
                    }
                }
                None => self.problem(
                    &at,
                    Some("tickets"),
                    format!("expected a table, found {}", kind(v)),
                ),
            }
        }
        status
    }

    /// `running` and `failed`, resolved to primitive-level facts.
    fn status_resources(
        &mut self,
        at: &At,
        t: &Table,
        config: &Configuration,
        nodes: &BTreeMap<&str, &NodeConfig>,
    ) -> (Vec<RunningFact>, Vec<FailedFact>) {
        let mut running = Vec::new();
        if let Some(v) = t.get("running") {
            match v.as_table() {
                None => self.problem(
                    at,
                    Some("running"),
                    format!("expected a table of resource = node(s), found {}", kind(v)),
                ),
                Some(rt) => {
                    for (rsc, v) in rt {
                        let rat = at.nested("running");
                        let Some(found) = find_resource(config, rsc) else {
                            self.problem(&rat, Some(rsc), format!("unknown resource \"{rsc}\""));
                            continue;
                        };
                        let placements = match role_placements(v) {
                            Some(p) => p,
                            None => {
                                self.problem(&rat, Some(rsc), format!("{} is not a node, a list of nodes, or {{ started|promoted|unpromoted = [nodes] }}", show(v)));
                                continue;
                            }
                        };
                        let mut unique_counter: BTreeMap<String, usize> = BTreeMap::new();
                        for (role, node) in placements {
                            if !nodes.contains_key(node.as_str()) {
                                self.problem(&rat, Some(rsc), format!("unknown node \"{node}\""));
                                continue;
                            }
                            if role == Role::Promoted && !found.promotable {
                                self.problem(
                                    &rat,
                                    Some(rsc),
                                    "only a promotable clone can be promoted",
                                );
                            }
                            for p in &found.primitives {
                                let history_id = if found.unique {
                                    let n = unique_counter.entry(p.id.clone()).or_default();
                                    *n += 1;
                                    format!("{}:{}", p.id, *n - 1)
                                } else {
                                    p.id.clone()
                                };
                                running.push(RunningFact {
                                    history_id,
                                    primitive: p.id.clone(),
                                    node: node.clone(),
                                    role,
                                });
                            }
                        }
                    }
                }
            }
        }
        let mut failed = Vec::new();
        if let Some(v) = t.get("failed") {
            match v.as_array() {
                None => self.problem(
                    at,
                    Some("failed"),
                    format!("expected an array of tables, found {}", kind(v)),
                ),
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let fat = at.nested(&format!("failed[{i}]"));
                        let Some(ft) = item.as_table() else {
                            self.problem(
                                &fat,
                                None,
                                format!("expected a table, found {}", kind(item)),
                            );
                            continue;
                        };
                        self.keys(
                            &fat,
                            ft,
                            &[
                                "resource",
                                "node",
                                "op",
                                "interval",
                                "rc",
                                "count",
                                "last-failure",
                            ],
                        );
                        let rsc = self.req_str(&fat, ft, "resource");
                        let node = self.req_str(&fat, ft, "node");
                        let op = self
                            .str_field(&fat, ft, "op")
                            .unwrap_or_else(|| "monitor".into());
                        let interval = self.duration_field(&fat, ft, "interval");
                        let rc = self.int_field(&fat, ft, "rc").unwrap_or(1);
                        let count = match ft.get("count") {
                            None => None,
                            Some(_) => self.score_field(&fat, ft, "count"),
                        };
                        let last_failure = self.time_field(&fat, ft, "last-failure");
                        let rc = match i32::try_from(rc) {
                            Ok(rc) if (1..=255).contains(&rc) => rc,
                            _ => {
                                self.problem(
                                    &fat,
                                    Some("rc"),
                                    format!("{rc} is not a failure exit code (1-255)"),
                                );
                                1
                            }
                        };
                        let (Some(rsc), Some(node)) = (rsc, node) else {
                            continue;
                        };
                        if !nodes.contains_key(node.as_str()) {
                            self.problem(&fat, Some("node"), format!("unknown node \"{node}\""));
                            continue;
                        }
                        let prim = config
                            .resources
                            .iter()
                            .flat_map(|r| r.primitives())
                            .find(|p| p.id == rsc)
                            .cloned();
                        let Some(prim) = prim else {
                            self.problem(&fat, Some("resource"), format!("unknown primitive \"{rsc}\" (name a [[resource]], not a group or clone)"));
                            continue;
                        };
                        let interval_ms = interval.unwrap_or_else(|| {
                            if op == "monitor" {
                                prim.operations
                                    .iter()
                                    .find(|o| o.name == "monitor" && o.interval_ms > 0)
                                    .map(|o| o.interval_ms)
                                    .unwrap_or(0)
                            } else {
                                0
                            }
                        });
                        let default_count = if op == "start" {
                            Score::INFINITY
                        } else {
                            Score::new(1)
                        };
                        failed.push(FailedFact {
                            primitive: prim.id.clone(),
                            node,
                            op,
                            interval_ms,
                            rc,
                            count: count.unwrap_or(default_count),
                            last_failure,
                        });
                    }
                }
            }
        }
        (running, failed)
    }
}

/// "this primitive (history id) runs on node in role".
struct RunningFact {
    history_id: String,
    primitive: String,
    node: String,
    role: Role,
}

struct FailedFact {
    primitive: String,
    node: String,
    op: String,
    interval_ms: u64,
    rc: i32,
    count: Score,
    last_failure: Option<i64>,
}

struct FoundResource<'a> {
    primitives: Vec<&'a Primitive>,
    promotable: bool,
    unique: bool,
}

fn find_resource<'a>(config: &'a Configuration, id: &str) -> Option<FoundResource<'a>> {
    config.resources.iter().find_map(|r| find_in(r, id, None))
}

fn find_in<'a>(
    r: &'a Resource,
    id: &str,
    clone: Option<&'a CloneRsc>,
) -> Option<FoundResource<'a>> {
    let own = match r {
        Resource::Clone(c) => Some(c),
        _ => clone,
    };
    let (promotable, unique) = own.map(clone_flags).unwrap_or((false, false));
    if r.id() == id {
        return Some(FoundResource {
            primitives: r.primitives(),
            promotable,
            unique,
        });
    }
    match r {
        Resource::Primitive(_) => None,
        Resource::Group(g) => g
            .members
            .iter()
            .find(|m| m.id == id)
            .map(|m| FoundResource {
                primitives: vec![m],
                promotable,
                unique,
            }),
        Resource::Clone(c) => find_in(&c.child, id, Some(c)),
    }
}

fn clone_flags(c: &CloneRsc) -> (bool, bool) {
    let unique = crate::config::first_value(&c.meta, "globally-unique")
        .and_then(crate::parse_bool)
        .unwrap_or(false);
    (c.promotable, unique)
}

fn role_placements(v: &Value) -> Option<Vec<(Role, String)>> {
    if let Some(list) = string_list(v) {
        return Some(list.into_iter().map(|n| (Role::Started, n)).collect());
    }
    let t = v.as_table()?;
    let mut out = Vec::new();
    for (k, nodes) in t {
        let role = match k.as_str() {
            "started" => Role::Started,
            "promoted" => Role::Promoted,
            "unpromoted" => Role::Unpromoted,
            _ => return None,
        };
        out.extend(string_list(nodes)?.into_iter().map(|n| (role, n)));
    }
    Some(out)
}

/// The history one node would have recorded for the stated facts: a start
/// (and promote) for each running instance, and a failed operation plus fail
/// count and last-failure attributes for each failure.
fn synthesize_history(
    config: &Configuration,
    node: &str,
    running: &[RunningFact],
    failed: &[FailedFact],
    call_id: &mut i64,
    now: Option<i64>,
    transient: &mut Vec<NvPair>,
) -> Vec<ResourceHistory> {
    let mut out: Vec<ResourceHistory> = Vec::new();
    let prims: Vec<&Primitive> = config
        .resources
        .iter()
        .flat_map(|r| r.primitives())
        .collect();
    for p in &prims {
        for r in running
            .iter()
            .filter(|r| r.primitive == p.id && r.node == node)
        {
            let h = history_entry(&mut out, p, &r.history_id);
            push_op(h, &r.history_id, "start", 0, 0, call_id, node, now);
            if r.role == Role::Promoted {
                push_op(h, &r.history_id, "promote", 0, 0, call_id, node, now);
            }
        }
        for f in failed
            .iter()
            .filter(|f| f.primitive == p.id && f.node == node)
        {
            let h = history_entry(&mut out, p, &p.id);
            if f.op != "start" && !h.ops.iter().any(|o| o.operation == "start") {
                push_op(h, &p.id, "start", 0, 0, call_id, node, now);
            }
            let when = f.last_failure.or(now);
            push_op(h, &p.id, &f.op, f.interval_ms, f.rc, call_id, node, when);
            let key = format!("{}#{}_{}", p.id, f.op, f.interval_ms);
            transient.push(NvPair {
                name: format!("fail-count-{key}"),
                value: Some(f.count.to_string()),
            });
            if let Some(t) = when {
                transient.push(NvPair {
                    name: format!("last-failure-{key}"),
                    value: Some(t.to_string()),
                });
            }
        }
    }
    out
}

fn history_entry<'a>(
    out: &'a mut Vec<ResourceHistory>,
    p: &Primitive,
    id: &str,
) -> &'a mut ResourceHistory {
    let pos = match out.iter().position(|h| h.id == id) {
        Some(pos) => pos,
        None => {
            out.push(ResourceHistory {
                id: id.to_string(),
                class: Some(p.class.clone()),
                provider: p.provider.clone(),
                agent: Some(p.agent.clone()),
                container: None,
                shutdown_lock: None,
                ops: Vec::new(),
            });
            out.len() - 1
        }
    };
    &mut out[pos]
}

#[allow(clippy::too_many_arguments)]
fn push_op(
    h: &mut ResourceHistory,
    id: &str,
    op: &str,
    interval_ms: u64,
    rc: i32,
    call_id: &mut i64,
    node: &str,
    when: Option<i64>,
) {
    *call_id += 1;
    let suffix = if rc == 0 { "last" } else { "last_failure" };
    let op_id = if interval_ms > 0 {
        format!("{id}_{op}_{interval_ms}")
    } else {
        format!("{id}_{suffix}_0")
    };
    // Like Pacemaker's history, one record per id: the latest wins (a
    // promote replaces the start as `RSC_last_0`).
    h.ops.retain(|o| o.id != op_id);
    h.ops.push(HistoryOp {
        id: op_id,
        operation: op.to_string(),
        call_id: *call_id,
        rc_code: rc,
        op_status: 0,
        interval_ms,
        last_rc_change: when,
        last_run: when,
        exec_time_ms: Some(0),
        transition_key: Some(format!(
            "0:{}:0:00000000-0000-0000-0000-000000000000",
            *call_id
        )),
        on_node: Some(node.to_string()),
        migrate_source: None,
        migrate_target: None,
        exit_reason: None,
        op_digest: None,
    });
}

// ---------------------------------------------------------------------------
// Small pure helpers
// ---------------------------------------------------------------------------

fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Table(_) | Value::Array(_) => kind(v).to_string(),
        other => other.to_string(),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

/// A score: an integer, or a string Pacemaker would accept as a whole
/// (`INFINITY`, `+INFINITY`, `-INFINITY`, `inf`, `-inf`, or an integer).
fn score_value(v: &Value) -> Option<Score> {
    match v {
        Value::Integer(i) => Some(Score::new(*i)),
        Value::String(s) => {
            let t = s.trim();
            match t.to_ascii_lowercase().as_str() {
                "inf" | "+inf" | "infinity" | "+infinity" => return Some(Score::INFINITY),
                "-inf" | "-infinity" => return Some(Score::NEG_INFINITY),
                _ => {}
            }
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Score::parse(t)
        }
        _ => None,
    }
}

fn parse_order_kind(s: &str) -> Option<OrderKind> {
    match s.to_ascii_lowercase().as_str() {
        "mandatory" => Some(OrderKind::Mandatory),
        "optional" => Some(OrderKind::Optional),
        "serialize" => Some(OrderKind::Serialize),
        _ => None,
    }
}

/// `ocf:heartbeat:IPaddr2` → (ocf, heartbeat, IPaddr2); `systemd:nginx`.
fn split_agent(spec: &str) -> Result<(String, Option<String>, String), String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let bad = || {
        format!("\"{spec}\" is not an agent (class:provider:type for ocf, class:type otherwise)")
    };
    let class = parts.first().copied().unwrap_or("");
    if !AGENT_CLASSES.contains(&class) {
        return Err(format!(
            "\"{spec}\": unknown agent class \"{class}\" (expected one of {})",
            AGENT_CLASSES.join(", ")
        ));
    }
    match (class, parts.as_slice()) {
        ("ocf", [_, p, t]) if !p.is_empty() && !t.is_empty() => {
            Ok((class.into(), Some(p.to_string()), t.to_string()))
        }
        ("ocf", _) => Err(bad()),
        (_, [_, t]) if !t.is_empty() => Ok((class.into(), None, t.to_string())),
        (_, [_, p, t]) if !p.is_empty() && !t.is_empty() => {
            Ok((class.into(), Some(p.to_string()), t.to_string()))
        }
        _ => Err(bad()),
    }
}

fn op_id(rsc: &str, name: &str, interval_ms: u64, role: Option<Role>) -> String {
    let mut id = format!("{rsc}-{name}-interval-{}", format_duration(interval_ms));
    if let Some(r) = role {
        id.push('-');
        id.push_str(r.as_str());
    }
    id
}

fn set_ids(sets: &[ResourceSet]) -> impl Iterator<Item = &str> {
    sets.iter()
        .flat_map(|s| s.resources.iter().map(String::as_str))
}

fn collect_ids<'a>(r: &'a Resource, out: &mut BTreeSet<&'a str>) {
    out.insert(r.id());
    match r {
        Resource::Primitive(_) => {}
        Resource::Group(g) => out.extend(g.members.iter().map(|m| m.id.as_str())),
        Resource::Clone(c) => collect_ids(&c.child, out),
    }
}

/// Milliseconds as the shortest exact Pacemaker duration: `10s`, `5min`, `100ms`.
pub fn format_duration(ms: u64) -> String {
    if ms == 0 {
        "0s".into()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}min", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn datetime_to_epoch(dt: &toml::value::Datetime) -> Option<i64> {
    let date = dt.date?;
    let time = dt.time.unwrap_or(toml::value::Time {
        hour: 0,
        minute: 0,
        second: 0,
        nanosecond: 0,
    });
    let offset_min = match dt.offset? {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => minutes as i64,
    };
    let days =
        crate::calendar::days_from_civil(date.year as i64, date.month as i64, date.day as i64);
    Some(
        days * 86_400 + time.hour as i64 * 3600 + time.minute as i64 * 60 + time.second as i64
            - offset_min * 60,
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` for epoch seconds (UTC).
pub fn epoch_to_rfc3339(epoch: i64) -> String {
    let secs = epoch.rem_euclid(86_400);
    let (y, m, d) = crate::calendar::civil_from_days(epoch.div_euclid(86_400));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

mod write;
pub use write::to_toml;

#[cfg(test)]
mod tests;
