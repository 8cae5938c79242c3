//! `<rule>` elements → [`Rule`]: boolean-op, score / score-attribute, role,
//! and the expressions (node attribute, date, resource, operation, nested
//! rule). Rules are kept as written; evaluating them is the scheduler's job.

use crate::xml::{child, elements, name, Ctx, Res};
use roxmltree::Node;
use tandem_model::calendar::parse_iso8601;
use tandem_model::{BoolOp, DateOp, DateSpec, Expression, Rule, ValueType};

/// How deeply rules may nest. Real CIBs use two or three levels; the limit
/// keeps a hostile document from exhausting the stack.
const MAX_RULE_DEPTH: usize = 32;

/// Seconds per `<duration>` field. Years and months are calendar units in
/// Pacemaker; like `parse_duration_ms` we use 365 and 30 days.
const DURATION_FIELDS: [(&str, i64); 7] = [
    ("years", 365 * 86_400),
    ("months", 30 * 86_400),
    ("weeks", 7 * 86_400),
    ("days", 86_400),
    ("hours", 3600),
    ("minutes", 60),
    ("seconds", 1),
];

/// One `<rule>` (possibly an `id-ref` to a rule elsewhere).
pub(crate) fn parse_rule(ctx: &Ctx, node: Node) -> Res<Rule> {
    parse_rule_at(ctx, node, 0)
}

fn parse_rule_at(ctx: &Ctx, node: Node, depth: usize) -> Res<Rule> {
    let node = ctx.resolve(node)?;
    if depth >= MAX_RULE_DEPTH {
        return Err(ctx.problem(
            node,
            format!("rules nest deeper than {MAX_RULE_DEPTH} levels"),
        ));
    }
    let mut expressions = Vec::new();
    for child in elements(node) {
        if let Some(expression) = parse_expression(ctx, child, depth)? {
            expressions.push(expression);
        }
    }
    Ok(Rule {
        id: ctx.req(node, "id")?.to_owned(),
        score: ctx.score(node, "score"),
        score_attribute: ctx.string(node, "score-attribute"),
        bool_op: ctx
            .parsed(node, "boolean-op", "'and' or 'or'", bool_op)?
            .unwrap_or(BoolOp::And),
        role: ctx.role(node, "role")?,
        expressions,
    })
}

/// One child of a rule; `None` (noted as unsupported) for unknown elements.
fn parse_expression(ctx: &Ctx, node: Node, depth: usize) -> Res<Option<Expression>> {
    let node = ctx.resolve(node)?;
    let expression = match name(node) {
        "expression" => attribute_expression(ctx, node)?,
        "date_expression" => date_expression(ctx, node)?,
        "rsc_expression" => Expression::Resource {
            class: ctx.string(node, "class"),
            provider: ctx.string(node, "provider"),
            agent: ctx.string(node, "type"),
        },
        "op_expression" => Expression::Operation {
            name: ctx.req(node, "name")?.to_owned(),
            interval_ms: ctx.duration_ms(node, "interval")?,
        },
        "rule" => Expression::Rule(parse_rule_at(ctx, node, depth + 1)?),
        _ => {
            ctx.unknown(node);
            return Ok(None);
        }
    };
    Ok(Some(expression))
}

fn attribute_expression(ctx: &Ctx, node: Node) -> Res<Expression> {
    Ok(Expression::Attribute {
        attribute: ctx.req(node, "attribute")?.to_owned(),
        operation: ctx.req(node, "operation")?.to_owned(),
        value: ctx.string(node, "value"),
        value_type: ctx.parsed(
            node,
            "type",
            "a value type (string, integer, number, version)",
            value_type,
        )?,
        value_source: ctx.string(node, "value-source"),
    })
}

fn date_expression(ctx: &Ctx, node: Node) -> Res<Expression> {
    let operation = ctx.parsed(
        node,
        "operation",
        "a date operation (in_range, gt, lt, date_spec)",
        date_op,
    )?;
    let spec = child(node, "date_spec")
        .map(|s| date_spec(ctx, s))
        .transpose()?;
    let duration_s = child(node, "duration")
        .map(|d| duration_s(ctx, d))
        .transpose()?;
    Ok(Expression::Date {
        operation: operation.unwrap_or(DateOp::InRange),
        start: ctx.parsed(node, "start", "an ISO-8601 date", parse_iso8601)?,
        end: ctx.parsed(node, "end", "an ISO-8601 date", parse_iso8601)?,
        duration_s,
        spec,
    })
}

/// `<date_spec>`: every attribute but `id`, as written, in order.
fn date_spec(ctx: &Ctx, node: Node) -> Res<DateSpec> {
    let node = ctx.resolve(node)?;
    let fields = node
        .attributes()
        .filter(|a| a.name() != "id")
        .map(|a| (a.name().to_owned(), a.value().to_owned()))
        .collect();
    Ok(DateSpec { fields })
}

/// `<duration>` → seconds (saturating: absurd values must not panic).
fn duration_s(ctx: &Ctx, node: Node) -> Res<i64> {
    let node = ctx.resolve(node)?;
    let mut total: i64 = 0;
    for (field, unit_s) in DURATION_FIELDS {
        let amount: i64 = ctx.number(node, field)?.unwrap_or(0);
        total = total.saturating_add(amount.saturating_mul(unit_s));
    }
    Ok(total)
}

fn bool_op(text: &str) -> Option<BoolOp> {
    match text.to_ascii_lowercase().as_str() {
        "and" => Some(BoolOp::And),
        "or" => Some(BoolOp::Or),
        _ => None,
    }
}

fn value_type(text: &str) -> Option<ValueType> {
    match text.to_ascii_lowercase().as_str() {
        "string" => Some(ValueType::String),
        "integer" | "int" => Some(ValueType::Integer),
        "number" => Some(ValueType::Number),
        "version" => Some(ValueType::Version),
        _ => None,
    }
}

fn date_op(text: &str) -> Option<DateOp> {
    match text {
        "in_range" => Some(DateOp::InRange),
        "gt" => Some(DateOp::Gt),
        "lt" => Some(DateOp::Lt),
        "date_spec" => Some(DateOp::DateSpec),
        _ => None,
    }
}
