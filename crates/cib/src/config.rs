//! `<configuration>` → [`Configuration`]: dispatches each section to its
//! reader and reads the small ones itself (cluster options, nodes,
//! defaults, tags, fencing topology).

use crate::constraints::parse_constraints;
use crate::nvset::{parse_nvset, sets_named};
use crate::resources::parse_resources;
use crate::xml::{elements, name, Ctx, Res};
use roxmltree::Node;
use tandem_model::config::FencingTarget;
use tandem_model::{Configuration, FencingLevel, NodeConfig, NodeKind, NvSet, Score, Tag};

/// Configuration sections that are valid but mean nothing to placement.
const IGNORED_SECTIONS: [&str; 2] = ["alerts", "acls"];

pub(crate) fn parse_configuration(ctx: &Ctx, node: Node) -> Configuration {
    let mut config = Configuration::default();
    for section in elements(node) {
        match name(section) {
            "crm_config" => config.options = set_list(ctx, section, "cluster_property_set"),
            "nodes" => config.nodes = item_list(ctx, section, "node", parse_node),
            "resources" => (config.resources, config.templates) = parse_resources(ctx, section),
            "constraints" => config.constraints = parse_constraints(ctx, section),
            "rsc_defaults" => config.rsc_defaults = set_list(ctx, section, "meta_attributes"),
            "op_defaults" => config.op_defaults = set_list(ctx, section, "meta_attributes"),
            "tags" => config.tags = item_list(ctx, section, "tag", parse_tag),
            "fencing-topology" => {
                config.fencing_topology = item_list(ctx, section, "fencing-level", parse_level)
            }
            s if IGNORED_SECTIONS.contains(&s) => {
                ctx.unsupported(section, &format!("<{s}> is not used by tandem; ignored"))
            }
            _ => ctx.unknown(section),
        }
    }
    config
}

/// Children named `tag` read by `parse`; faulty items are recorded and
/// skipped, other children are noted as unknown.
pub(crate) fn item_list<'a, 'i, T>(
    ctx: &Ctx<'a, 'i>,
    parent: Node<'a, 'i>,
    tag: &str,
    parse: impl Fn(&Ctx<'a, 'i>, Node<'a, 'i>) -> Res<T>,
) -> Vec<T> {
    let mut items = Vec::new();
    for child in elements(parent) {
        if name(child) == tag {
            items.extend(ctx.keep(parse(ctx, child)));
        } else {
            ctx.unknown(child);
        }
    }
    items
}

fn set_list(ctx: &Ctx, parent: Node, tag: &str) -> Vec<NvSet> {
    item_list(ctx, parent, tag, |ctx, n| parse_nvset(ctx, n))
}

fn parse_node(ctx: &Ctx, node: Node) -> Res<NodeConfig> {
    Ok(NodeConfig {
        id: ctx.req(node, "id")?.to_owned(),
        uname: ctx.req(node, "uname")?.to_owned(),
        kind: ctx
            .parsed(
                node,
                "type",
                "a node type (member, remote, ping)",
                node_kind,
            )?
            .unwrap_or(NodeKind::Member),
        score: ctx.score(node, "score").unwrap_or(Score::ZERO),
        attributes: sets_named(ctx, node, "instance_attributes")?,
        utilization: sets_named(ctx, node, "utilization")?,
    })
}

fn node_kind(text: &str) -> Option<NodeKind> {
    match text {
        "member" | "normal" => Some(NodeKind::Member),
        "remote" => Some(NodeKind::Remote),
        "ping" => Some(NodeKind::Ping),
        _ => None,
    }
}

fn parse_tag(ctx: &Ctx, node: Node) -> Res<Tag> {
    let refs = elements(node)
        .filter(|c| name(*c) == "obj_ref")
        .map(|c| ctx.req(c, "id").map(str::to_owned))
        .collect::<Res<_>>()?;
    Ok(Tag {
        id: ctx.req(node, "id")?.to_owned(),
        refs,
    })
}

fn parse_level(ctx: &Ctx, node: Node) -> Res<FencingLevel> {
    let devices = ctx.req(node, "devices")?;
    Ok(FencingLevel {
        id: ctx.req(node, "id")?.to_owned(),
        index: ctx.required(node, "index", ctx.number(node, "index")?)?,
        target: fencing_target(ctx, node)?,
        devices: devices
            .split(',')
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
            .collect(),
    })
}

fn fencing_target(ctx: &Ctx, node: Node) -> Res<FencingTarget> {
    if let Some(target) = node.attribute("target") {
        return Ok(FencingTarget::Node(target.to_owned()));
    }
    if let Some(pattern) = node.attribute("target-pattern") {
        return Ok(FencingTarget::Pattern(pattern.to_owned()));
    }
    match (
        node.attribute("target-attribute"),
        node.attribute("target-value"),
    ) {
        (Some(name), Some(value)) => Ok(FencingTarget::Attribute {
            name: name.to_owned(),
            value: value.to_owned(),
        }),
        _ => Err(ctx.problem(
            node,
            "needs 'target', 'target-pattern' or 'target-attribute' with 'target-value'",
        )),
    }
}
