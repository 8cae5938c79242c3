//! `<resources>` → [`Resource`]s: primitives (with `template=` expanded),
//! groups, clones and promotable clones (`<master>` or `promotable=true`),
//! and their operations. Bundles are noted as unsupported and skipped.
//!
//! Instance attributes written on a group or clone are inherited by every
//! primitive inside it (after the primitive's own sets, so those win), as
//! Pacemaker passes them down; the model keeps instance attributes only on
//! primitives.

use crate::nvset::{parse_nvset, sets_named};
use crate::xml::{duration_ms, elements, name, Ctx, Res};
use roxmltree::Node;
use tandem_model::config::first_value;
use tandem_model::{
    parse_bool, Clone, Group, NvPair, NvSet, Operation, Primitive, Resource, Score,
};

/// `<op>` attributes with a field of their own in [`Operation`]; any other
/// attribute becomes a meta attribute.
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

/// The top-level resources and the ids of templates, in document order.
pub(crate) fn parse_resources(ctx: &Ctx, node: Node) -> (Vec<Resource>, Vec<String>) {
    let mut resources = Vec::new();
    let mut templates = Vec::new();
    for child in elements(node) {
        match name(child) {
            "primitive" | "group" | "clone" | "master" => {
                resources.extend(ctx.keep(parse_resource(ctx, child)));
            }
            "template" => templates.extend(ctx.keep(ctx.req(child, "id")).map(str::to_owned)),
            "bundle" => skip_bundle(ctx, child),
            _ => ctx.unknown(child),
        }
    }
    (resources, templates)
}

fn skip_bundle(ctx: &Ctx, node: Node) {
    let id = node.attribute("id").unwrap_or("?");
    ctx.unsupported(node, &format!("bundle '{id}' is not modelled; skipped"));
}

fn parse_resource(ctx: &Ctx, node: Node) -> Res<Resource> {
    Ok(match name(node) {
        "primitive" => Resource::Primitive(parse_primitive(ctx, node)?),
        "group" => Resource::Group(parse_group(ctx, node)?),
        _ => Resource::Clone(parse_clone(ctx, node)?),
    })
}

/// What a primitive or a template declares by itself.
#[derive(Default)]
struct Body {
    class: Option<String>,
    provider: Option<String>,
    agent: Option<String>,
    meta: Vec<NvSet>,
    instance: Vec<NvSet>,
    utilization: Vec<NvSet>,
    operations: Vec<Operation>,
}

fn parse_primitive(ctx: &Ctx, node: Node) -> Res<Primitive> {
    let id = ctx.req(node, "id")?;
    let template = node.attribute("template");
    let base = match template {
        Some(t) => parse_body(ctx, template_node(ctx, node, t)?)?,
        None => Body::default(),
    };
    let own = parse_body(ctx, node)?;
    Ok(Primitive {
        id: id.to_owned(),
        class: ctx.required(node, "class", own.class.or(base.class))?,
        provider: own.provider.or(base.provider),
        agent: ctx.required(node, "type", own.agent.or(base.agent))?,
        template: template.map(str::to_owned),
        meta: concat(own.meta, base.meta),
        instance: concat(own.instance, base.instance),
        utilization: concat(own.utilization, base.utilization),
        operations: merge_ops(own.operations, base.operations),
    })
}

/// The `<template>` a primitive's `template=` names.
fn template_node<'a, 'i>(ctx: &Ctx<'a, 'i>, node: Node, id: &str) -> Res<Node<'a, 'i>> {
    let target = ctx.lookup(node, "template", id)?;
    if name(target) != "template" {
        let found = name(target);
        return Err(ctx.problem(
            node,
            format!("template \"{id}\" names a <{found}>, not a <template>"),
        ));
    }
    Ok(target)
}

fn parse_body(ctx: &Ctx, node: Node) -> Res<Body> {
    let mut body = Body {
        class: ctx.string(node, "class"),
        provider: ctx.string(node, "provider"),
        agent: ctx.string(node, "type"),
        ..Body::default()
    };
    for child in elements(node) {
        match name(child) {
            "meta_attributes" => body.meta.push(parse_nvset(ctx, child)?),
            "instance_attributes" => body.instance.push(parse_nvset(ctx, child)?),
            "utilization" => body.utilization.push(parse_nvset(ctx, child)?),
            "operations" => body.operations.extend(parse_operations(ctx, child)?),
            _ => ctx.unknown(child),
        }
    }
    Ok(body)
}

fn concat<T>(mut first: Vec<T>, second: Vec<T>) -> Vec<T> {
    first.extend(second);
    first
}

/// The primitive's operations, then the template's ones it does not
/// redefine (same name, interval and role).
fn merge_ops(own: Vec<Operation>, template: Vec<Operation>) -> Vec<Operation> {
    let redefined = |t: &Operation| {
        own.iter()
            .any(|o| o.name == t.name && o.interval_ms == t.interval_ms && o.role == t.role)
    };
    let inherited: Vec<Operation> = template.into_iter().filter(|t| !redefined(t)).collect();
    concat(own, inherited)
}

fn parse_operations(ctx: &Ctx, node: Node) -> Res<Vec<Operation>> {
    let node = ctx.resolve(node)?;
    let mut operations = Vec::new();
    for child in elements(node) {
        match name(child) {
            "op" => operations.push(parse_op(ctx, child)?),
            _ => ctx.unknown(child),
        }
    }
    Ok(operations)
}

fn parse_op(ctx: &Ctx, node: Node) -> Res<Operation> {
    let node = ctx.resolve(node)?;
    let id = ctx.req(node, "id")?;
    let mut meta: Vec<NvSet> = op_attribute_meta(id, node).into_iter().collect();
    for child in elements(node) {
        match name(child) {
            "meta_attributes" => meta.push(parse_nvset(ctx, child)?),
            "instance_attributes" => ctx.unsupported(
                child,
                "operation instance attributes are not modelled; ignored",
            ),
            _ => ctx.unknown(child),
        }
    }
    Ok(Operation {
        id: id.to_owned(),
        name: ctx.req(node, "name")?.to_owned(),
        interval_ms: ctx.duration_ms(node, "interval")?.unwrap_or(0),
        role: ctx.role(node, "role")?,
        on_fail: ctx.string(node, "on-fail"),
        timeout_ms: ctx.tolerant(
            node,
            "timeout",
            "a duration",
            "the default timeout applies",
            duration_ms,
        ),
        enabled: ctx.boolean(node, "enabled")?.unwrap_or(true),
        meta,
    })
}

/// XML attributes of an `<op>` without a field of their own (`requires`,
/// `record-pending`, `start-delay`...) as a meta set `<op id>-xml-attributes`.
/// Its score is INFINITY because Pacemaker lets attributes written on the
/// element override every meta_attributes block.
fn op_attribute_meta(op_id: &str, node: Node) -> Option<NvSet> {
    let pairs: Vec<NvPair> = node
        .attributes()
        .filter(|a| !OP_FIELDS.contains(&a.name()) && a.namespace().is_none())
        .map(|a| NvPair {
            name: a.name().to_owned(),
            value: Some(a.value().to_owned()),
        })
        .collect();
    (!pairs.is_empty()).then(|| NvSet {
        id: format!("{op_id}-xml-attributes"),
        score: Score::INFINITY,
        rule: None,
        pairs,
    })
}

fn parse_group(ctx: &Ctx, node: Node) -> Res<Group> {
    let mut group = Group {
        id: ctx.req(node, "id")?.to_owned(),
        ..Group::default()
    };
    for child in elements(node) {
        match name(child) {
            "primitive" => group.members.push(parse_primitive(ctx, child)?),
            "meta_attributes" => group.meta.push(parse_nvset(ctx, child)?),
            "instance_attributes" => {}
            _ => ctx.unknown(child),
        }
    }
    let inherited = sets_named(ctx, node, "instance_attributes")?;
    group
        .members
        .iter_mut()
        .for_each(|p| add_sets(p, &inherited));
    Ok(group)
}

fn parse_clone(ctx: &Ctx, node: Node) -> Res<Clone> {
    let id = ctx.req(node, "id")?;
    let mut meta = Vec::new();
    let mut child: Option<Resource> = None;
    for element in elements(node) {
        match name(element) {
            "primitive" | "group" if child.is_some() => {
                return Err(ctx.problem(
                    element,
                    format!("clone '{id}' has more than one child resource"),
                ));
            }
            "primitive" | "group" => child = Some(parse_resource(ctx, element)?),
            "meta_attributes" => meta.push(parse_nvset(ctx, element)?),
            "instance_attributes" => {}
            _ => ctx.unknown(element),
        }
    }
    let mut child = child
        .ok_or_else(|| ctx.problem(node, format!("clone '{id}' has no primitive or group")))?;
    inherit_instance(&mut child, &sets_named(ctx, node, "instance_attributes")?);
    let promotable = name(node) == "master"
        || first_value(&meta, "promotable").and_then(parse_bool) == Some(true);
    Ok(Clone {
        id: id.to_owned(),
        promotable,
        meta,
        child: Box::new(child),
    })
}

/// Appends a parent's instance sets to every primitive below it.
fn inherit_instance(resource: &mut Resource, sets: &[NvSet]) {
    match resource {
        Resource::Primitive(p) => add_sets(p, sets),
        Resource::Group(g) => g.members.iter_mut().for_each(|p| add_sets(p, sets)),
        Resource::Clone(c) => inherit_instance(&mut c.child, sets),
    }
}

fn add_sets(primitive: &mut Primitive, sets: &[NvSet]) {
    primitive.instance.extend(sets.iter().cloned());
}
