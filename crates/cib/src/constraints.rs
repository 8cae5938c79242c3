//! `<constraints>` → [`Constraint`]s in document order: location,
//! colocation, order and ticket constraints, between named resources or
//! over resource sets.

use crate::rules::parse_rule;
use crate::xml::{elements, name, Ctx, Res};
use roxmltree::Node;
use tandem_model::{
    parse_bool, Colocation, Constraint, Location, LocationTarget, Order, OrderKind, ResourceSet,
    Score, TicketConstraint,
};

pub(crate) fn parse_constraints(ctx: &Ctx, node: Node) -> Vec<Constraint> {
    let mut constraints = Vec::new();
    for child in elements(node) {
        let constraint = match name(child) {
            "rsc_location" => location(ctx, child).map(Constraint::Location),
            "rsc_colocation" => colocation(ctx, child).map(Constraint::Colocation),
            "rsc_order" => order(ctx, child).map(Constraint::Order),
            "rsc_ticket" => ticket(ctx, child).map(Constraint::Ticket),
            _ => {
                ctx.unknown(child);
                continue;
            }
        };
        constraints.extend(ctx.keep(constraint));
    }
    constraints
}

fn location(ctx: &Ctx, node: Node) -> Res<Location> {
    let sets = resource_sets(ctx, node)?;
    let rules = elements(node)
        .filter(|c| name(*c) == "rule")
        .map(|c| parse_rule(ctx, c))
        .collect::<Res<_>>()?;
    Ok(Location {
        id: ctx.req(node, "id")?.to_owned(),
        target: location_target(ctx, node, sets)?,
        role: ctx.role(node, "role")?,
        node: ctx.string(node, "node"),
        score: ctx.score(node, "score"),
        rules,
        resource_discovery: ctx.string(node, "resource-discovery"),
    })
}

fn location_target(ctx: &Ctx, node: Node, sets: Vec<ResourceSet>) -> Res<LocationTarget> {
    if let Some(rsc) = node.attribute("rsc") {
        return Ok(LocationTarget::Resource(rsc.to_owned()));
    }
    if let Some(pattern) = node.attribute("rsc-pattern") {
        let (regex, negated) = match pattern.strip_prefix('!') {
            Some(rest) => (rest, true),
            None => (pattern, false),
        };
        return Ok(LocationTarget::Pattern {
            regex: regex.to_owned(),
            negated,
        });
    }
    if sets.is_empty() {
        return Err(ctx.problem(node, "needs 'rsc', 'rsc-pattern' or a resource_set"));
    }
    Ok(LocationTarget::Sets(sets))
}

fn colocation(ctx: &Ctx, node: Node) -> Res<Colocation> {
    Ok(Colocation {
        id: ctx.req(node, "id")?.to_owned(),
        score: ctx.score(node, "score").unwrap_or(Score::ZERO),
        rsc: ctx.string(node, "rsc"),
        with_rsc: ctx.string(node, "with-rsc"),
        rsc_role: ctx.role(node, "rsc-role")?,
        with_rsc_role: ctx.role(node, "with-rsc-role")?,
        node_attribute: ctx.string(node, "node-attribute"),
        influence: ctx.tolerant(
            node,
            "influence",
            "a boolean",
            "the default applies",
            parse_bool,
        ),
        sets: resource_sets(ctx, node)?,
    })
}

fn order(ctx: &Ctx, node: Node) -> Res<Order> {
    Ok(Order {
        id: ctx.req(node, "id")?.to_owned(),
        first: ctx.string(node, "first"),
        then: ctx.string(node, "then"),
        first_action: ctx.string(node, "first-action"),
        then_action: ctx.string(node, "then-action"),
        kind: order_kind(ctx, node),
        symmetrical: ctx.boolean(node, "symmetrical")?,
        require_all: ctx.boolean(node, "require-all")?,
        sets: resource_sets(ctx, node)?,
    })
}

/// `kind`, else the deprecated `score` (0 → Optional, other → Mandatory),
/// else Mandatory.
fn order_kind(ctx: &Ctx, node: Node) -> OrderKind {
    if node.attribute("kind").is_some() {
        return kind_attr(ctx, node).unwrap_or(OrderKind::Mandatory);
    }
    match node.attribute("score").map(Score::parse) {
        Some(Some(Score::ZERO)) => OrderKind::Optional,
        _ => OrderKind::Mandatory,
    }
}

/// An invalid `kind` is reset to Mandatory, as Pacemaker does.
fn kind_attr(ctx: &Ctx, node: Node) -> Option<OrderKind> {
    let what = "an order kind (Mandatory, Optional, Serialize)";
    ctx.tolerant(node, "kind", what, "Mandatory applies", |text| {
        match text.to_ascii_lowercase().as_str() {
            "mandatory" => Some(OrderKind::Mandatory),
            "optional" => Some(OrderKind::Optional),
            "serialize" => Some(OrderKind::Serialize),
            _ => None,
        }
    })
}

fn ticket(ctx: &Ctx, node: Node) -> Res<TicketConstraint> {
    Ok(TicketConstraint {
        id: ctx.req(node, "id")?.to_owned(),
        ticket: ctx.req(node, "ticket")?.to_owned(),
        rsc: ctx.string(node, "rsc"),
        rsc_role: ctx.role(node, "rsc-role")?,
        loss_policy: ctx.string(node, "loss-policy"),
        sets: resource_sets(ctx, node)?,
    })
}

/// The `resource_set` children of a constraint, in order.
fn resource_sets(ctx: &Ctx, node: Node) -> Res<Vec<ResourceSet>> {
    elements(node)
        .filter(|c| name(*c) == "resource_set")
        .map(|c| resource_set(ctx, c))
        .collect()
}

fn resource_set(ctx: &Ctx, node: Node) -> Res<ResourceSet> {
    let node = ctx.resolve(node)?;
    let resources = elements(node)
        .filter(|c| name(*c) == "resource_ref")
        .map(|c| ctx.req(c, "id").map(str::to_owned))
        .collect::<Res<_>>()?;
    Ok(ResourceSet {
        id: ctx.req(node, "id")?.to_owned(),
        resources,
        sequential: ctx.boolean(node, "sequential")?,
        require_all: ctx.boolean(node, "require-all")?,
        role: ctx.role(node, "role")?,
        action: ctx.string(node, "action"),
        ordering: ctx.string(node, "ordering"),
        kind: kind_attr(ctx, node),
        score: ctx.score(node, "score"),
    })
}
