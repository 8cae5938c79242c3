//! Operator edits of the configuration (`tandem resource|constraint|property
//! ...`): one [`Edit`] names a change, [`apply`] makes it on a typed
//! [`Cluster`]. Pure: no I/O and no clock (`now` comes in), so the API can
//! apply an edit to the configuration it read, validate the result and
//! commit it with that read's version.
//!
//! Constraint ids follow pcs: `location-RSC-NODE-SCORE`,
//! `colocation-A-B-SCORE`, `order-A-B-kind`, and the `cli-prefer-RSC` /
//! `cli-ban-RSC-on-NODE` constraints that `move` and `ban` leave.

use serde::{Deserialize, Serialize};
use tandem_model::{
    BoolOp, Cluster, Colocation, Constraint, DateOp, Expression, Group, Location, LocationTarget,
    NvPair, NvSet, Operation, Order, OrderKind, Primitive, Resource, Role, Rule, Score,
};

/// One change an operator asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "edit")]
pub enum Edit {
    /// A new primitive, at the end or appended to `group` (created if new).
    CreateResource {
        id: String,
        /// `class:provider:type` or `class:type`.
        agent: String,
        #[serde(default)]
        params: Vec<(String, String)>,
        #[serde(default)]
        meta: Vec<(String, String)>,
        #[serde(default)]
        ops: Vec<OpSpec>,
        #[serde(default)]
        group: Option<String>,
    },
    /// Sets parameters and meta-attributes (an empty value deletes one) and
    /// replaces the operations with the names given.
    UpdateResource {
        id: String,
        #[serde(default)]
        params: Vec<(String, String)>,
        #[serde(default)]
        meta: Vec<(String, String)>,
        #[serde(default)]
        ops: Vec<OpSpec>,
    },
    /// Removes a resource (a group or clone with what it holds) and every
    /// constraint that names it.
    DeleteResource {
        id: String,
    },
    /// `enable` (`target-role` removed) or `disable` (`Stopped`).
    SetEnabled {
        id: String,
        enabled: bool,
    },
    /// `cli-prefer-RSC`: INFINITY on `node`, until `until` (epoch s) if set.
    Move {
        id: String,
        node: String,
        until: Option<i64>,
    },
    /// `cli-ban-RSC-on-NODE`: -INFINITY on `node`, until `until` if set.
    Ban {
        id: String,
        node: String,
        until: Option<i64>,
    },
    /// Removes the `cli-prefer`/`cli-ban` constraints of a resource (only
    /// those naming `node` if set).
    Clear {
        id: String,
        node: Option<String>,
    },
    /// `constraint location RSC prefers|avoids NODE=SCORE`.
    AddLocation {
        resource: String,
        node: String,
        score: String,
    },
    /// `constraint colocation add A with B SCORE`.
    AddColocation {
        resource: String,
        with: String,
        score: String,
    },
    /// `constraint order [ACTION] A then [ACTION] B kind=...`.
    AddOrder {
        first: String,
        first_action: String,
        then: String,
        then_action: String,
        kind: String,
    },
    DeleteConstraint {
        id: String,
    },
    /// A cluster option; `None` removes it.
    SetProperty {
        name: String,
        value: Option<String>,
    },
}

/// One operation as typed: `monitor interval=10s timeout=20s`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpSpec {
    pub name: String,
    #[serde(default)]
    pub attrs: Vec<(String, String)>,
}

/// Why an edit cannot be made.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct EditError(pub String);

fn fail<T>(message: String) -> Result<T, EditError> {
    Err(EditError(message))
}

impl Edit {
    /// Moving, banning, clearing, enabling and disabling, and cluster
    /// properties (as `POST /property` allowed) are day-to-day operations
    /// (role `operator`); the rest changes what the cluster is made of
    /// (role `admin`).
    pub fn is_operational(&self) -> bool {
        matches!(
            self,
            Edit::SetEnabled { .. }
                | Edit::Move { .. }
                | Edit::Ban { .. }
                | Edit::Clear { .. }
                | Edit::SetProperty { .. }
        )
    }
}

/// Applies `edit` to `cluster`; returns a one-line description of what
/// changed. The caller validates the result as a whole (references, syntax).
pub fn apply(cluster: &mut Cluster, edit: &Edit) -> Result<String, EditError> {
    match edit {
        Edit::CreateResource {
            id,
            agent,
            params,
            meta,
            ops,
            group,
        } => create(cluster, id, agent, params, meta, ops, group.as_deref()),
        Edit::UpdateResource {
            id,
            params,
            meta,
            ops,
        } => {
            let p = primitive_mut(cluster, id)?;
            set_pairs(
                &mut p.instance,
                &format!("{id}-instance_attributes"),
                params,
            );
            set_pairs(&mut p.meta, &format!("{id}-meta_attributes"), meta);
            for op in ops {
                let op = operation(id, op)?;
                p.operations.retain(|o| o.name != op.name);
                p.operations.push(op);
            }
            Ok(format!("updated resource {id}"))
        }
        Edit::DeleteResource { id } => delete_resource(cluster, id),
        Edit::SetEnabled { id, enabled } => {
            let meta = meta_mut(cluster, id)?;
            let value = if *enabled { "" } else { "Stopped" };
            set_pairs(
                meta,
                &format!("{id}-meta_attributes"),
                &[("target-role".into(), value.into())],
            );
            Ok(format!(
                "{} {id}",
                if *enabled { "enabled" } else { "disabled" }
            ))
        }
        Edit::Move { id, node, until } => {
            let cid = format!("cli-prefer-{id}");
            cli_constraint(
                cluster,
                &cid,
                id,
                node,
                Score::new(tandem_model::INFINITY),
                *until,
            )?;
            Ok(format!("{cid}: {id} prefers {node}{}", until_text(*until)))
        }
        Edit::Ban { id, node, until } => {
            let cid = format!("cli-ban-{id}-on-{node}");
            cli_constraint(
                cluster,
                &cid,
                id,
                node,
                Score::new(-tandem_model::INFINITY),
                *until,
            )?;
            Ok(format!("{cid}: {id} avoids {node}{}", until_text(*until)))
        }
        Edit::Clear { id, node } => {
            resource(cluster, id)?;
            let prefer = format!("cli-prefer-{id}");
            let ban = format!("cli-ban-{id}-on-");
            let before = cluster.config.constraints.len();
            cluster.config.constraints.retain(|c| match c {
                Constraint::Location(l) => {
                    let ours = l.id == prefer || l.id.starts_with(&ban);
                    !(ours && node.as_ref().is_none_or(|n| location_node(l) == Some(n)))
                }
                _ => true,
            });
            let removed = before - cluster.config.constraints.len();
            Ok(format!("removed {removed} cli constraint(s) of {id}"))
        }
        Edit::AddLocation {
            resource: rsc,
            node,
            score,
        } => {
            resource(cluster, rsc)?;
            known_node(cluster, node)?;
            let score = parse_score(score)?;
            let id = format!("location-{rsc}-{node}-{}", score_text(score));
            push_constraint(
                cluster,
                Constraint::Location(location(&id, rsc, node, score)),
            )
        }
        Edit::AddColocation {
            resource: rsc,
            with,
            score,
        } => {
            resource(cluster, rsc)?;
            resource(cluster, with)?;
            let score = parse_score(score)?;
            let id = format!("colocation-{rsc}-{with}-{}", score_text(score));
            push_constraint(
                cluster,
                Constraint::Colocation(Colocation {
                    id: id.clone(),
                    score,
                    rsc: Some(rsc.clone()),
                    with_rsc: Some(with.clone()),
                    rsc_role: None,
                    with_rsc_role: None,
                    node_attribute: None,
                    influence: None,
                    sets: Vec::new(),
                }),
            )
        }
        Edit::AddOrder {
            first,
            first_action,
            then,
            then_action,
            kind,
        } => {
            resource(cluster, first)?;
            resource(cluster, then)?;
            for action in [first_action, then_action] {
                if !["start", "stop", "promote", "demote"].contains(&action.as_str()) {
                    return fail(format!(
                        "action {action:?}: expected start, stop, promote or demote"
                    ));
                }
            }
            let kind = match kind.to_ascii_lowercase().as_str() {
                "mandatory" => OrderKind::Mandatory,
                "optional" => OrderKind::Optional,
                "serialize" => OrderKind::Serialize,
                _ => {
                    return fail(format!(
                        "kind={kind}: expected Mandatory, Optional or Serialize"
                    ))
                }
            };
            let id = format!(
                "order-{first}-{then}-{}",
                format!("{kind:?}").to_lowercase()
            );
            push_constraint(
                cluster,
                Constraint::Order(Order {
                    id: id.clone(),
                    first: Some(first.clone()),
                    then: Some(then.clone()),
                    first_action: Some(first_action.clone()),
                    then_action: Some(then_action.clone()),
                    kind,
                    symmetrical: None,
                    require_all: None,
                    sets: Vec::new(),
                }),
            )
        }
        Edit::DeleteConstraint { id } => {
            let before = cluster.config.constraints.len();
            cluster.config.constraints.retain(|c| c.id() != id);
            if cluster.config.constraints.len() == before {
                return fail(format!("no constraint with id {id:?}"));
            }
            Ok(format!("deleted constraint {id}"))
        }
        Edit::SetProperty { name, value } => {
            let pair = (name.clone(), value.clone().unwrap_or_default());
            set_pairs(&mut cluster.config.options, "cluster-options", &[pair]);
            Ok(match value {
                Some(v) => format!("property {name} = {v}"),
                None => format!("property {name} removed"),
            })
        }
    }
}

/// The node a single-node location constraint names, directly or through
/// the `#uname eq NODE` rule a lifetime adds.
pub fn location_node(l: &Location) -> Option<&String> {
    l.node.as_ref().or_else(|| {
        l.rules
            .iter()
            .flat_map(|r| &r.expressions)
            .find_map(|e| match e {
                Expression::Attribute {
                    attribute, value, ..
                } if attribute == "#uname" => value.as_ref(),
                _ => None,
            })
    })
}

fn create(
    cluster: &mut Cluster,
    id: &str,
    agent: &str,
    params: &[(String, String)],
    meta: &[(String, String)],
    ops: &[OpSpec],
    group: Option<&str>,
) -> Result<String, EditError> {
    if exists(cluster, id) {
        return fail(format!("a resource with id {id:?} exists already"));
    }
    let (class, provider, kind) = match agent.split(':').collect::<Vec<_>>()[..] {
        [class, provider, kind] => (class, Some(provider.to_string()), kind),
        [class, kind] => (class, None, kind),
        _ => {
            return fail(format!(
                "agent {agent:?}: expected class:provider:type (e.g. ocf:heartbeat:IPaddr2) or class:type"
            ))
        }
    };
    let mut p = Primitive {
        id: id.to_string(),
        class: class.to_string(),
        provider,
        agent: kind.to_string(),
        ..Default::default()
    };
    set_pairs(
        &mut p.instance,
        &format!("{id}-instance_attributes"),
        params,
    );
    set_pairs(&mut p.meta, &format!("{id}-meta_attributes"), meta);
    for op in ops {
        p.operations.push(operation(id, op)?);
    }
    let Some(group) = group else {
        cluster.config.resources.push(Resource::Primitive(p));
        return Ok(format!("created resource {id} ({agent})"));
    };
    let is_group = |r: &Resource| matches!(r, Resource::Group(g) if g.id == group);
    match cluster.config.resources.iter().position(is_group) {
        Some(at) => {
            if let Resource::Group(g) = &mut cluster.config.resources[at] {
                g.members.push(p);
            }
        }
        None if exists(cluster, group) => {
            return fail(format!("{group:?} is a resource but not a group"))
        }
        None => cluster.config.resources.push(Resource::Group(Group {
            id: group.to_string(),
            meta: Vec::new(),
            members: vec![p],
        })),
    }
    Ok(format!("created resource {id} ({agent}) in group {group}"))
}

fn delete_resource(cluster: &mut Cluster, id: &str) -> Result<String, EditError> {
    let Some(gone) = resource(cluster, id)?.cloned() else {
        // A group member: take it out of its group, and the group if empty.
        for r in &mut cluster.config.resources {
            if let Resource::Group(g) = r {
                g.members.retain(|m| m.id != id);
            }
        }
        cluster
            .config
            .resources
            .retain(|r| !matches!(r, Resource::Group(g) if g.members.is_empty()));
        forget_constraints(cluster, &[id.to_string()]);
        return Ok(format!("deleted resource {id}"));
    };
    let mut ids = vec![id.to_string()];
    ids.extend(gone.primitives().iter().map(|p| p.id.clone()));
    if let Resource::Clone(c) = &gone {
        ids.push(c.child.id().to_string());
    }
    cluster.config.resources.retain(|r| r.id() != id);
    forget_constraints(cluster, &ids);
    Ok(format!("deleted resource {id}"))
}

/// Drops constraints naming any of `ids`, and those ids from resource sets.
fn forget_constraints(cluster: &mut Cluster, ids: &[String]) {
    let named = |x: &Option<String>| x.as_ref().is_some_and(|x| ids.contains(x));
    cluster.config.constraints.retain_mut(|c| {
        let sets = match c {
            Constraint::Location(l) => match &mut l.target {
                LocationTarget::Resource(r) => return !ids.contains(r),
                LocationTarget::Pattern { .. } => return true,
                LocationTarget::Sets(sets) => sets,
            },
            Constraint::Colocation(c) if named(&c.rsc) || named(&c.with_rsc) => return false,
            Constraint::Colocation(c) => &mut c.sets,
            Constraint::Order(o) if named(&o.first) || named(&o.then) => return false,
            Constraint::Order(o) => &mut o.sets,
            Constraint::Ticket(t) if named(&t.rsc) => return false,
            Constraint::Ticket(t) => &mut t.sets,
        };
        if sets.is_empty() {
            return true;
        }
        for set in sets.iter_mut() {
            set.resources.retain(|r| !ids.contains(r));
        }
        sets.retain(|s| !s.resources.is_empty());
        !sets.is_empty()
    });
}

/// Replaces (or, for `until`, adds a date rule to) a `cli-*` constraint.
fn cli_constraint(
    cluster: &mut Cluster,
    cid: &str,
    rsc: &str,
    node: &str,
    score: Score,
    until: Option<i64>,
) -> Result<(), EditError> {
    resource(cluster, rsc)?;
    known_node(cluster, node)?;
    cluster.config.constraints.retain(|c| c.id() != cid);
    let mut location = location(cid, rsc, node, score);
    if let Some(end) = until {
        // pcs' form: a rule so the constraint stops applying by itself.
        location.node = None;
        location.score = None;
        location.rules.push(Rule {
            id: format!("{cid}-rule"),
            score: Some(score),
            score_attribute: None,
            bool_op: BoolOp::And,
            role: None,
            expressions: vec![
                Expression::Attribute {
                    attribute: "#uname".into(),
                    operation: "eq".into(),
                    value: Some(node.to_string()),
                    value_type: None,
                    value_source: None,
                },
                Expression::Date {
                    operation: DateOp::Lt,
                    start: None,
                    end: Some(end),
                    duration_s: None,
                    spec: None,
                },
            ],
        });
    }
    cluster
        .config
        .constraints
        .push(Constraint::Location(location));
    Ok(())
}

/// `rsc` on `node` with `score`.
fn location(id: &str, rsc: &str, node: &str, score: Score) -> Location {
    Location {
        id: id.to_string(),
        target: LocationTarget::Resource(rsc.to_string()),
        role: None,
        node: Some(node.to_string()),
        score: Some(score),
        rules: Vec::new(),
        resource_discovery: None,
    }
}

fn until_text(until: Option<i64>) -> String {
    until.map_or(String::new(), |t| {
        format!(" until {}", tandem_model::native::epoch_to_rfc3339(t))
    })
}

fn push_constraint(cluster: &mut Cluster, c: Constraint) -> Result<String, EditError> {
    if cluster.config.constraints.iter().any(|x| x.id() == c.id()) {
        return fail(format!("constraint {:?} exists already", c.id()));
    }
    let message = format!("added {}", c.id());
    cluster.config.constraints.push(c);
    Ok(message)
}

fn parse_score(text: &str) -> Result<Score, EditError> {
    Score::parse(text).ok_or_else(|| {
        EditError(format!(
            "score {text:?}: expected an integer or INFINITY / -INFINITY"
        ))
    })
}

fn score_text(score: Score) -> String {
    match score.value() {
        v if v >= tandem_model::INFINITY => "INFINITY".into(),
        v if v <= -tandem_model::INFINITY => "-INFINITY".into(),
        v => v.to_string(),
    }
}

fn exists(cluster: &Cluster, id: &str) -> bool {
    cluster.config.resources.iter().any(|r| {
        r.id() == id
            || r.primitives().iter().any(|p| p.id == id)
            || matches!(r, Resource::Clone(c) if c.child.id() == id)
    })
}

/// The top-level resource `id`; `Ok(None)` for a group member or a cloned
/// resource; an error naming the id when nothing has it.
fn resource<'a>(cluster: &'a Cluster, id: &str) -> Result<Option<&'a Resource>, EditError> {
    if let Some(r) = cluster.config.resources.iter().find(|r| r.id() == id) {
        return Ok(Some(r));
    }
    if exists(cluster, id) {
        return Ok(None);
    }
    fail(format!("no resource with id {id:?}"))
}

fn known_node(cluster: &Cluster, node: &str) -> Result<(), EditError> {
    if cluster.config.nodes.iter().any(|n| n.uname == node) {
        return Ok(());
    }
    let known: Vec<&str> = cluster
        .config
        .nodes
        .iter()
        .map(|n| n.uname.as_str())
        .collect();
    fail(format!(
        "no node named {node:?} in the configuration (nodes: {})",
        known.join(", ")
    ))
}

fn primitive_mut<'a>(cluster: &'a mut Cluster, id: &str) -> Result<&'a mut Primitive, EditError> {
    fn find<'a>(r: &'a mut Resource, id: &str) -> Option<&'a mut Primitive> {
        match r {
            Resource::Primitive(p) => (p.id == id).then_some(p),
            Resource::Group(g) => g.members.iter_mut().find(|m| m.id == id),
            Resource::Clone(c) => find(&mut c.child, id),
        }
    }
    cluster
        .config
        .resources
        .iter_mut()
        .find_map(|r| find(r, id))
        .ok_or_else(|| EditError(format!("no primitive resource with id {id:?}")))
}

fn meta_mut<'a>(cluster: &'a mut Cluster, id: &str) -> Result<&'a mut Vec<NvSet>, EditError> {
    fn find<'a>(r: &'a mut Resource, id: &str) -> Option<&'a mut Vec<NvSet>> {
        match r {
            Resource::Primitive(p) => (p.id == id).then_some(&mut p.meta),
            Resource::Group(g) => {
                if g.id == id {
                    return Some(&mut g.meta);
                }
                g.members
                    .iter_mut()
                    .find(|m| m.id == id)
                    .map(|m| &mut m.meta)
            }
            Resource::Clone(c) => {
                if c.id == id {
                    return Some(&mut c.meta);
                }
                find(&mut c.child, id)
            }
        }
    }
    cluster
        .config
        .resources
        .iter_mut()
        .find_map(|r| find(r, id))
        .ok_or_else(|| EditError(format!("no resource with id {id:?}")))
}

/// Sets pairs in the first rule-less set (made if missing); an empty value
/// removes the pair.
fn set_pairs(sets: &mut Vec<NvSet>, id: &str, pairs: &[(String, String)]) {
    if pairs.is_empty() {
        return;
    }
    let at = match sets.iter().position(|s| s.rule.is_none()) {
        Some(at) => at,
        None => {
            sets.push(NvSet {
                id: id.to_string(),
                ..Default::default()
            });
            sets.len() - 1
        }
    };
    let set = &mut sets[at].pairs;
    for (name, value) in pairs {
        set.retain(|p| &p.name != name);
        if !value.is_empty() {
            set.push(NvPair {
                name: name.clone(),
                value: Some(value.clone()),
            });
        }
    }
    sets.retain(|s| s.rule.is_some() || !s.pairs.is_empty());
}

fn operation(rsc: &str, spec: &OpSpec) -> Result<Operation, EditError> {
    let mut op = Operation {
        name: spec.name.clone(),
        enabled: true,
        ..Default::default()
    };
    let duration = |k: &str, v: &str| {
        tandem_model::parse_duration_ms(v).ok_or_else(|| {
            EditError(format!(
                "op {} {k}={v}: not a duration (10s, 5min, 1h, PT1M)",
                spec.name
            ))
        })
    };
    for (k, v) in &spec.attrs {
        match k.as_str() {
            "interval" => op.interval_ms = duration(k, v)?,
            "timeout" => op.timeout_ms = Some(duration(k, v)?),
            "on-fail" => op.on_fail = Some(v.clone()),
            "role" => {
                op.role =
                    Some(Role::parse(v).ok_or_else(|| {
                        EditError(format!("op {} role={v}: not a role", spec.name))
                    })?)
            }
            "enabled" => op.enabled = tandem_model::parse_bool(v).unwrap_or(true),
            _ => {
                return fail(format!(
                    "op {} {k}={v}: unknown option (interval, timeout, on-fail, role, enabled)",
                    spec.name
                ))
            }
        }
    }
    op.id = format!("{rsc}-{}-interval-{}", op.name, op.interval_ms);
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Cluster {
        tandem_model::native::parse_toml(
            "[[node]]\nname = \"n1\"\n[[node]]\nname = \"n2\"\n\
             [[resource]]\nid = \"a\"\nagent = \"ocf:pacemaker:Dummy\"\n",
        )
        .unwrap()
    }

    fn round_trip(c: &Cluster) -> Cluster {
        let text = tandem_model::native::to_toml(c);
        tandem_model::native::parse_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn create_in_a_new_group_then_delete_drops_the_group_and_its_constraints() {
        let mut c = base();
        let create = Edit::CreateResource {
            id: "b".into(),
            agent: "ocf:heartbeat:IPaddr2".into(),
            params: vec![("ip".into(), "192.0.2.1".into())],
            meta: vec![],
            ops: vec![OpSpec {
                name: "monitor".into(),
                attrs: vec![("interval".into(), "10s".into())],
            }],
            group: Some("g".into()),
        };
        apply(&mut c, &create).unwrap();
        assert_eq!(
            apply(&mut c, &create),
            Err(EditError("a resource with id \"b\" exists already".into()))
        );
        let colo = Edit::AddColocation {
            resource: "a".into(),
            with: "b".into(),
            score: "INFINITY".into(),
        };
        assert_eq!(
            apply(&mut c, &colo).unwrap(),
            "added colocation-a-b-INFINITY"
        );
        let c2 = round_trip(&c);
        assert_eq!(c2.config.resources.len(), 2);
        apply(&mut c, &Edit::DeleteResource { id: "b".into() }).unwrap();
        assert_eq!(c.config.resources.len(), 1, "the empty group went too");
        assert!(c.config.constraints.is_empty());
    }

    #[test]
    fn move_with_a_lifetime_is_a_date_rule_and_clear_removes_it() {
        let mut c = base();
        let mv = Edit::Move {
            id: "a".into(),
            node: "n2".into(),
            until: Some(2_000_000_000),
        };
        apply(&mut c, &mv).unwrap();
        let c2 = round_trip(&c);
        let Constraint::Location(l) = &c2.config.constraints[0] else {
            panic!()
        };
        assert_eq!(l.id, "cli-prefer-a");
        assert_eq!(location_node(l).map(String::as_str), Some("n2"));
        assert!(l.rules[0].expressions.iter().any(|e| matches!(
            e,
            Expression::Date {
                operation: DateOp::Lt,
                end: Some(2_000_000_000),
                ..
            }
        )));
        let ban = Edit::Ban {
            id: "a".into(),
            node: "n1".into(),
            until: None,
        };
        apply(&mut c, &ban).unwrap();
        let clear = Edit::Clear {
            id: "a".into(),
            node: None,
        };
        assert_eq!(
            apply(&mut c, &clear).unwrap(),
            "removed 2 cli constraint(s) of a"
        );
    }

    #[test]
    fn bad_input_names_what_is_wrong() {
        let mut c = base();
        let cases = [
            (
                Edit::Move {
                    id: "a".into(),
                    node: "n9".into(),
                    until: None,
                },
                "no node named \"n9\"",
            ),
            (
                Edit::AddLocation {
                    resource: "zz".into(),
                    node: "n1".into(),
                    score: "1".into(),
                },
                "no resource with id \"zz\"",
            ),
            (
                Edit::AddLocation {
                    resource: "a".into(),
                    node: "n1".into(),
                    score: "lots".into(),
                },
                "score \"lots\"",
            ),
            (
                Edit::DeleteConstraint { id: "x".into() },
                "no constraint with id \"x\"",
            ),
        ];
        for (edit, wanted) in cases {
            let e = apply(&mut c, &edit).unwrap_err();
            assert!(e.0.contains(wanted), "{e} lacks {wanted}");
        }
    }

    #[test]
    fn disable_sets_target_role_stopped_and_enable_removes_it() {
        let mut c = base();
        let set = |enabled| Edit::SetEnabled {
            id: "a".into(),
            enabled,
        };
        apply(&mut c, &set(false)).unwrap();
        assert_eq!(
            tandem_model::config::first_value(c.config.resources[0].meta(), "target-role"),
            Some("Stopped")
        );
        apply(&mut c, &set(true)).unwrap();
        assert!(c.config.resources[0].meta().is_empty());
    }
}
