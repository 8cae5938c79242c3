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

/// A template id and the first primitive built from it, whose agent the
/// template carries (the model merged the template's sets into its users
/// and keeps only the id).
type Template<'a> = (&'a str, Option<&'a Primitive>);

pub(crate) fn resources<'a>(out: &mut Out<'a>, config: &'a Configuration) {
    let templates = templates(config);
    out.node(El::new("resources"), |out| {
        for (id, user) in &templates {
            let el = El::new("template").id(*id);
            out.leaf(match user {
                Some(p) => agent(el, p),
                None => el,
            });
        }
        for r in &config.resources {
            resource(out, r, &templates);
        }
    });
}

/// The listed templates, then any a primitive names that the list lacks
/// (the parser refuses a `template=` naming no `<template>`).
fn templates(config: &Configuration) -> Vec<Template<'_>> {
    let users: Vec<&Primitive> = config
        .resources
        .iter()
        .flat_map(Resource::primitives)
        .filter(|p| p.template.is_some())
        .collect();
    let mut ids: Vec<&str> = config.templates.iter().map(String::as_str).collect();
    for p in &users {
        let id = p.template.as_deref().unwrap_or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.into_iter()
        .map(|id| {
            let first = users.iter().find(|p| p.template.as_deref() == Some(id));
            (id, first.copied())
        })
        .collect()
}

fn agent<'a>(el: El<'a>, p: &'a Primitive) -> El<'a> {
    el.attr("class", &p.class)
        .opt("provider", p.provider.as_deref())
        .attr("type", &p.agent)
}

fn resource<'a>(out: &mut Out<'a>, r: &'a Resource, templates: &[Template<'a>]) {
    match r {
        Resource::Primitive(p) => primitive(out, p, templates),
        Resource::Group(g) => out.node(El::new("group").id(&g.id), |out| {
            sets(out, "meta_attributes", &g.meta);
            for p in &g.members {
                primitive(out, p, templates);
            }
        }),
        Resource::Clone(c) => out.node(El::new("clone").id(&c.id), |out| {
            promotable_meta(out, c);
            sets(out, "meta_attributes", &c.meta);
            resource(out, &c.child, templates);
        }),
    }
}

/// A primitive built from a template names it and, as the schema wants,
/// leaves the agent to the template when it is the same.
fn primitive<'a>(out: &mut Out<'a>, p: &'a Primitive, templates: &[Template<'a>]) {
    let from = templates
        .iter()
        .find(|(id, _)| Some(*id) == p.template.as_deref())
        .and_then(|(_, first)| *first);
    let same_agent = from
        .is_some_and(|t| (&t.class, &t.provider, &t.agent) == (&p.class, &p.provider, &p.agent));
    let el = El::new("primitive").id(&p.id);
    let el = if same_agent { el } else { agent(el, p) };
    out.node(el.opt("template", p.template.as_deref()), |out| {
        sets(out, "meta_attributes", &p.meta);
        sets(out, "instance_attributes", &p.instance);
        sets(out, "utilization", &p.utilization);
        if !p.operations.is_empty() {
            out.node(El::new("operations"), |out| {
                for op in &p.operations {
                    operation(out, op);
                }
            });
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
