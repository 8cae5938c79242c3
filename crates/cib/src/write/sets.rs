//! Attribute sets and rules: [`NvSet`] → `meta_attributes` /
//! `instance_attributes` / `utilization` / `cluster_property_set` with
//! their nvpairs, and [`Rule`] → `<rule>` with its expressions, date
//! expressions, date specs and durations. The model keeps no ids for
//! nvpairs and expressions; the schema wants them, so they are generated.

use super::xml::{is_attribute_name, El, Out};
use tandem_model::native::{epoch_to_rfc3339, format_duration};
use tandem_model::{BoolOp, DateOp, DateSpec, Expression, NvSet, Rule, Score, ValueType};

/// Every set of `sets` as a `tag` element, in order.
pub(crate) fn sets<'a>(out: &mut Out<'a>, tag: &'static str, sets: &'a [NvSet]) {
    for set in sets {
        nvset(out, tag, set);
    }
}

/// One set. A set already written under the same tag and id (a group's
/// or clone's instance attributes, which the model copies into each
/// member) becomes an `id-ref`, keeping ids unique.
fn nvset<'a>(out: &mut Out<'a>, tag: &'static str, set: &'a NvSet) {
    if out.written_before(tag, set) {
        out.leaf(El::new(tag).attr("id-ref", &set.id));
        return;
    }
    let el = El::new(tag).id(&set.id).opt("score", nonzero(set.score));
    out.node(el, |out| {
        for r in guards(set) {
            rule(out, r);
        }
        for pair in &set.pairs {
            let id = out.fresh(format!("{}-{}", set.id, pair.name));
            let el = El::new("nvpair").attr("id", id).attr("name", &pair.name);
            out.leaf(el.opt("value", pair.value.as_deref()));
        }
    });
}

/// The rules a set is guarded by. The reader joins several rules into one
/// `or` rule named `<set id>-rules`; that one is written back as the rules
/// it joined, the way the source had them.
fn guards(set: &NvSet) -> Vec<&Rule> {
    let Some(rule) = &set.rule else {
        return Vec::new();
    };
    let joined: Option<Vec<&Rule>> = (rule.id == format!("{}-rules", set.id)
        && rule.bool_op == BoolOp::Or
        && rule.score.is_none()
        && rule.score_attribute.is_none()
        && rule.role.is_none()
        && rule.expressions.len() > 1)
        .then(|| {
            rule.expressions
                .iter()
                .map(|e| match e {
                    Expression::Rule(r) => Some(r),
                    _ => None,
                })
                .collect()
        })
        .flatten();
    joined.unwrap_or_else(|| vec![rule])
}

/// A score worth writing: sets and nodes default to 0.
pub(crate) fn nonzero(score: Score) -> Option<String> {
    (score != Score::ZERO).then(|| score.to_string())
}

/// One `<rule>` with everything inside it.
pub(crate) fn rule<'a>(out: &mut Out<'a>, rule: &'a Rule) {
    let el = El::new("rule")
        .id(&rule.id)
        .opt("score", rule.score.map(|s| s.to_string()))
        .opt("score-attribute", rule.score_attribute.as_deref())
        .attr("boolean-op", bool_op(rule.bool_op))
        .opt("role", rule.role.map(|r| r.as_str()));
    out.node(el, |out| {
        for e in &rule.expressions {
            expression(out, &rule.id, e);
        }
    });
}

fn expression<'a>(out: &mut Out<'a>, rule_id: &str, e: &'a Expression) {
    match e {
        Expression::Attribute {
            attribute,
            operation,
            value,
            value_type,
            value_source,
        } => {
            let id = out.fresh(format!("{rule_id}-expression"));
            let el = El::new("expression")
                .attr("id", id)
                .attr("attribute", attribute)
                .attr("operation", operation)
                .opt("value", value.as_deref())
                .opt("type", value_type.map(type_name))
                .opt("value-source", value_source.as_deref());
            out.leaf(el);
        }
        Expression::Date {
            operation,
            start,
            end,
            duration_s,
            spec,
        } => {
            let id = out.fresh(format!("{rule_id}-date_expression"));
            let el = El::new("date_expression")
                .attr("id", id.clone())
                .attr("operation", date_op(*operation))
                .opt("start", start.map(epoch_to_rfc3339))
                .opt("end", end.map(epoch_to_rfc3339));
            out.node(el, |out| {
                if let Some(seconds) = duration_s {
                    let id = out.fresh(format!("{id}-duration"));
                    let el = El::new("duration").attr("id", id);
                    out.leaf(el.attr("seconds", seconds.to_string()));
                }
                if let Some(spec) = spec {
                    date_spec(out, &id, spec);
                }
            });
        }
        Expression::Resource {
            class,
            provider,
            agent,
        } => {
            let id = out.fresh(format!("{rule_id}-rsc_expression"));
            let el = El::new("rsc_expression")
                .attr("id", id)
                .opt("class", class.as_deref())
                .opt("provider", provider.as_deref())
                .opt("type", agent.as_deref());
            out.leaf(el);
        }
        Expression::Operation { name, interval_ms } => {
            let id = out.fresh(format!("{rule_id}-op_expression"));
            let el = El::new("op_expression")
                .attr("id", id)
                .attr("name", name)
                .opt("interval", interval_ms.map(format_duration));
            out.leaf(el);
        }
        Expression::Rule(nested) => rule(out, nested),
    }
}

/// `<date_spec>`: its fields are attributes. A field name that cannot be
/// an XML attribute (possible only from a hand-written TOML file) is left
/// out, with a comment saying so.
fn date_spec<'a>(out: &mut Out<'a>, expression_id: &str, spec: &'a DateSpec) {
    let id = out.fresh(format!("{expression_id}-date_spec"));
    let mut el = El::new("date_spec").attr("id", id);
    for (name, value) in &spec.fields {
        if is_attribute_name(name) && name != "id" {
            el = el.attr(name, value);
        } else {
            out.comment(&format!(
                "tandem: date_spec field {name:?} = {value:?} is not an XML attribute name; left out"
            ));
        }
    }
    out.leaf(el);
}

fn bool_op(op: BoolOp) -> &'static str {
    match op {
        BoolOp::And => "and",
        BoolOp::Or => "or",
    }
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::String => "string",
        ValueType::Integer => "integer",
        ValueType::Number => "number",
        ValueType::Version => "version",
    }
}

fn date_op(op: DateOp) -> &'static str {
    match op {
        DateOp::InRange => "in_range",
        DateOp::Gt => "gt",
        DateOp::Lt => "lt",
        DateOp::DateSpec => "date_spec",
    }
}
