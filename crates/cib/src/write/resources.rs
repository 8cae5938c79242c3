//! `<resources>`: templates, primitives (instance, meta and utilization
//! sets, operations with their meta attributes), groups and clones.
//! Promotable clones are written the way Pacemaker 2.1 does: a `<clone>`
//! with the meta attribute `promotable=true`.

use super::sets::sets;
use super::xml::{is_attribute_name, El, Out};
use tandem_model::config::first_value;
use tandem_model::native::format_duration;
use tandem_model::{parse_bool, Clone, Configuration, Operation, Primitive, Resource, Score};

/// `<op>` attributes the model keeps as fields: a meta attribute of one of
/// these names cannot become an XML attribute of the op.
const OP_FIELDS: [&str; 8] = [
    "id",
    "name",
    "interval",
    "role",
    "on-fail",
    "timeout",
    "enabled",
    "description",
];

/// What the model flattened and the document shares: templates (the
/// model merged a template's sets and operations into its users and keeps
/// only its id) and operation lists several primitives hold alike (an
/// `<operations id-ref>` in the source), which written twice would repeat
/// the op ids.
struct Plan<'a> {
    templates: Vec<Template<'a>>,
    /// Repeated operation lists, the id of their `<operations>` element,
    /// and whether it was written yet (later ones refer to it).
    shared_ops: Vec<(&'a [Operation], String, bool)>,
}

struct Template<'a> {
    id: &'a str,
    /// The first primitive built from it, whose agent the template carries.
    first_user: Option<&'a Primitive>,
    /// The operations every user ends with, written on the template once.
    operations: &'a [Operation],
}

pub(crate) fn resources<'a>(out: &mut Out<'a>, config: &'a Configuration) {
    let all: Vec<&Primitive> = config
        .resources
        .iter()
        .flat_map(Resource::primitives)
        .collect();
    let templates = templates(config, &all);
    let shared_ops = shared_ops(out, &all, &templates);
    let mut plan = Plan {
        templates,
        shared_ops,
    };
    out.node(El::new("resources"), |out| {
        for t in &plan.templates {
            let el = El::new("template").id(t.id);
            let el = match t.first_user {
                Some(p) => agent(el, p),
                None => el,
            };
            out.node(el, |out| operations(out, t.operations, &mut Vec::new()));
        }
        for r in &config.resources {
            resource(out, r, &mut plan);
        }
    });
}

/// The listed templates, then any a primitive names that the list lacks
/// (the parser refuses a `template=` naming no `<template>`).
fn templates<'a>(config: &'a Configuration, all: &[&'a Primitive]) -> Vec<Template<'a>> {
    let mut ids: Vec<&str> = config.templates.iter().map(String::as_str).collect();
    for id in all.iter().filter_map(|p| p.template.as_deref()) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.into_iter()
        .map(|id| {
            let users: Vec<&Primitive> = all
                .iter()
                .copied()
                .filter(|p| p.template.as_deref() == Some(id))
                .collect();
            Template {
                id,
                first_user: users.first().copied(),
                operations: common_operations(&users),
            }
        })
        .collect()
}

/// The longest tail of operations all `users` share such that no user's
/// own operations redefine one of them (same name, interval and role):
/// the parser appends a template's operations minus the redefined ones,
/// so exactly these read back in place.
fn common_operations<'a>(users: &[&'a Primitive]) -> &'a [Operation] {
    let Some(first) = users.first().map(|p| p.operations.as_slice()) else {
        return &[];
    };
    let shared_tail = |ops: &[Operation]| {
        let pairs = first.iter().rev().zip(ops.iter().rev());
        pairs.take_while(|(a, b)| a == b).count()
    };
    let mut len = users
        .iter()
        .map(|p| shared_tail(&p.operations))
        .min()
        .unwrap_or(0);
    let tail = |len: usize| &first[first.len() - len..];
    let redefines = |p: &Primitive, len: usize| {
        let own = &p.operations[..p.operations.len() - len];
        own.iter().any(|o| tail(len).iter().any(|t| same_key(o, t)))
    };
    while len > 0 && users.iter().any(|p| redefines(p, len)) {
        len -= 1;
    }
    tail(len)
}

fn same_key(a: &Operation, b: &Operation) -> bool {
    (&a.name, a.interval_ms, a.role) == (&b.name, b.interval_ms, b.role)
}

/// Operation lists (after the template's share) that more than one
/// primitive holds, each with a generated `<operations>` id.
fn shared_ops<'a>(
    out: &mut Out<'a>,
    all: &[&'a Primitive],
    templates: &[Template<'a>],
) -> Vec<(&'a [Operation], String, bool)> {
    let mut seen: Vec<&[Operation]> = Vec::new();
    let mut shared = Vec::new();
    for p in all {
        let own = own_operations(p, templates);
        if own.is_empty() || shared.iter().any(|(ops, _, _)| *ops == own) {
            continue;
        }
        if seen.contains(&own) {
            let id = out.fresh(format!("{}-operations", own[0].id));
            shared.push((own, id, false));
        } else {
            seen.push(own);
        }
    }
    shared
}

/// A primitive's operations without those its template carries.
fn own_operations<'a>(p: &'a Primitive, templates: &[Template<'a>]) -> &'a [Operation] {
    let inherited = template_of(p, templates).map_or(0, |t| t.operations.len());
    &p.operations[..p.operations.len() - inherited]
}

fn template_of<'t, 'a>(p: &Primitive, templates: &'t [Template<'a>]) -> Option<&'t Template<'a>> {
    let id = p.template.as_deref()?;
    templates.iter().find(|t| t.id == id)
}

fn agent<'a>(el: El<'a>, p: &'a Primitive) -> El<'a> {
    el.attr("class", &p.class)
        .opt("provider", p.provider.as_deref())
        .attr("type", &p.agent)
}

fn resource<'a>(out: &mut Out<'a>, r: &'a Resource, plan: &mut Plan<'a>) {
    match r {
        Resource::Primitive(p) => primitive(out, p, plan),
        Resource::Group(g) => out.node(El::new("group").id(&g.id), |out| {
            sets(out, "meta_attributes", &g.meta);
            for p in &g.members {
                primitive(out, p, plan);
            }
        }),
        Resource::Clone(c) => out.node(El::new("clone").id(&c.id), |out| {
            promotable_meta(out, c);
            sets(out, "meta_attributes", &c.meta);
            resource(out, &c.child, plan);
        }),
    }
}

/// A primitive built from a template names it and, as the schema wants,
/// leaves the agent (and the shared operations) to the template.
fn primitive<'a>(out: &mut Out<'a>, p: &'a Primitive, plan: &mut Plan<'a>) {
    let template = template_of(p, &plan.templates);
    let same_agent = template
        .and_then(|t| t.first_user)
        .is_some_and(|t| (&t.class, &t.provider, &t.agent) == (&p.class, &p.provider, &p.agent));
    let own = own_operations(p, &plan.templates);
    let el = El::new("primitive").id(&p.id);
    let el = if same_agent { el } else { agent(el, p) };
    out.node(el.opt("template", p.template.as_deref()), |out| {
        sets(out, "meta_attributes", &p.meta);
        sets(out, "instance_attributes", &p.instance);
        sets(out, "utilization", &p.utilization);
        operations(out, own, &mut plan.shared_ops);
    });
}

/// `<operations>`, or an `id-ref` to the same list written before.
fn operations<'a>(
    out: &mut Out<'a>,
    ops: &'a [Operation],
    shared: &mut [(&'a [Operation], String, bool)],
) {
    if ops.is_empty() {
        return;
    }
    let mut el = El::new("operations");
    if let Some((_, id, written)) = shared.iter_mut().find(|(list, _, _)| *list == ops) {
        if *written {
            out.leaf(el.attr("id-ref", id.clone()));
            return;
        }
        *written = true;
        el = el.attr("id", id.clone());
    }
    out.node(el, |out| {
        for op in ops {
            operation(out, op);
        }
    });
}

/// The reader marks a clone promotable for `<master>` too, without a meta
/// attribute; Pacemaker 2.1 spells it `promotable=true`, written here in a
/// set of its own, first, so it is the value read back.
fn promotable_meta(out: &mut Out, c: &Clone) {
    let said = first_value(&c.meta, "promotable").and_then(parse_bool);
    if !c.promotable || said == Some(true) {
        return;
    }
    let set_id = out.fresh(format!("{}-meta_attributes-promotable", c.id));
    let pair_id = out.fresh(format!("{set_id}-promotable"));
    out.node(El::new("meta_attributes").attr("id", set_id), |out| {
        let el = El::new("nvpair").attr("id", pair_id);
        out.leaf(el.attr("name", "promotable").attr("value", "true"));
    });
}

fn operation<'a>(out: &mut Out<'a>, op: &'a Operation) {
    let mut el = El::new("op")
        .id(&op.id)
        .attr("name", &op.name)
        .attr("interval", format_duration(op.interval_ms))
        .opt("role", op.role.map(|r| r.as_str()))
        .opt("on-fail", op.on_fail.as_deref())
        .opt("timeout", op.timeout_ms.map(format_duration));
    if !op.enabled {
        el = el.attr("enabled", "false");
    }
    let (inline, rest) = match op.meta.split_first() {
        Some((first, rest)) if written_on_element(op, first) => (Some(first), rest),
        _ => (None, op.meta.as_slice()),
    };
    for pair in inline.iter().flat_map(|set| &set.pairs) {
        el = el.opt(&pair.name, pair.value.as_deref());
    }
    out.node(el, |out| sets(out, "meta_attributes", rest));
}

/// True for the set the reader made of an op's extra XML attributes
/// (`requires`, `start-delay`...): it goes back onto the element, unless
/// its content could not be written there.
fn written_on_element(op: &Operation, set: &tandem_model::NvSet) -> bool {
    let mut names: Vec<&str> = set.pairs.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    set.id == format!("{}-xml-attributes", op.id)
        && set.score == Score::INFINITY
        && set.rule.is_none()
        && names.len() == set.pairs.len()
        && set.pairs.iter().all(|p| {
            p.value.is_some() && is_attribute_name(&p.name) && !OP_FIELDS.contains(&p.name.as_str())
        })
}
