//! Name/value sets (`meta_attributes`, `instance_attributes`,
//! `utilization`, `cluster_property_set`) → [`NvSet`], with their optional
//! score and rule, and `id-ref` resolved for sets and pairs.

use crate::rules::parse_rule;
use crate::xml::{elements, name, Ctx, Res};
use roxmltree::Node;
use tandem_model::{BoolOp, Expression, NvPair, NvSet, Rule, Score};

/// Every child of `parent` named `tag`, read as a set, in document order.
pub(crate) fn sets_named(ctx: &Ctx, parent: Node, tag: &str) -> Res<Vec<NvSet>> {
    elements(parent)
        .filter(|c| name(*c) == tag)
        .map(|c| parse_nvset(ctx, c))
        .collect()
}

/// One set element (possibly an `id-ref` to a set elsewhere).
pub(crate) fn parse_nvset(ctx: &Ctx, node: Node) -> Res<NvSet> {
    let node = ctx.resolve(node)?;
    let id = ctx.req(node, "id")?.to_owned();
    let mut pairs = Vec::new();
    let mut rules = Vec::new();
    for child in elements(node) {
        match name(child) {
            "nvpair" => pairs.push(parse_nvpair(ctx, child)?),
            "rule" => rules.push(parse_rule(ctx, child)?),
            _ => ctx.unknown(child),
        }
    }
    Ok(NvSet {
        rule: any_of(&id, rules),
        id,
        score: ctx.score(node, "score").unwrap_or(Score::ZERO),
        pairs,
    })
}

/// A set applies when any of its rules passes; several rules become one
/// `or` rule (id `<set id>-rules`) so the model keeps a single guard.
fn any_of(set_id: &str, mut rules: Vec<Rule>) -> Option<Rule> {
    if rules.len() <= 1 {
        return rules.pop();
    }
    Some(Rule {
        id: format!("{set_id}-rules"),
        score: None,
        score_attribute: None,
        bool_op: BoolOp::Or,
        role: None,
        expressions: rules.into_iter().map(Expression::Rule).collect(),
    })
}

fn parse_nvpair(ctx: &Ctx, node: Node) -> Res<NvPair> {
    let node = ctx.resolve(node)?;
    Ok(NvPair {
        name: ctx.req(node, "name")?.to_owned(),
        value: ctx.string(node, "value"),
    })
}
