//! Rule evaluation: node-attribute, date, resource and operation
//! expressions combined with and/or, evaluated against a context.

use std::collections::BTreeMap;
use tandem_model::calendar::{civil_from_days, days_from_civil};
use tandem_model::{BoolOp, DateOp, DateSpec, Expression, Rule, ValueType};

/// What a rule is evaluated against. Fields that do not apply are `None`.
#[derive(Default)]
pub struct RuleContext<'a> {
    pub node_attrs: Option<&'a BTreeMap<String, String>>,
    pub now: i64,
    /// (class, provider, agent) of the resource, for `rsc_expression`.
    pub resource: Option<(&'a str, Option<&'a str>, &'a str)>,
    /// (name, interval_ms) of the operation, for `op_expression`.
    pub operation: Option<(&'a str, u64)>,
}

pub fn rule_matches(rule: &Rule, ctx: &RuleContext) -> bool {
    let mut results = rule.expressions.iter().map(|e| expression_matches(e, ctx));
    match rule.bool_op {
        // An empty rule matches (as Pacemaker treats it).
        BoolOp::And => results.all(|r| r),
        BoolOp::Or => rule.expressions.is_empty() || results.any(|r| r),
    }
}

fn expression_matches(expr: &Expression, ctx: &RuleContext) -> bool {
    match expr {
        Expression::Attribute {
            attribute,
            operation,
            value,
            value_type,
            ..
        } => {
            let actual = ctx
                .node_attrs
                .and_then(|a| a.get(attribute))
                .map(String::as_str);
            compare_attribute(actual, operation, value.as_deref(), *value_type)
        }
        Expression::Date {
            operation,
            start,
            end,
            duration_s,
            spec,
        } => date_matches(
            ctx.now,
            *operation,
            *start,
            *end,
            *duration_s,
            spec.as_ref(),
        ),
        Expression::Resource {
            class,
            provider,
            agent,
        } => match ctx.resource {
            Some((c, p, a)) => {
                class.as_deref().is_none_or(|x| x == c)
                    && provider.as_deref().is_none_or(|x| Some(x) == p)
                    && agent.as_deref().is_none_or(|x| x == a)
            }
            None => false,
        },
        Expression::Operation { name, interval_ms } => match ctx.operation {
            Some((n, i)) => n == name && interval_ms.is_none_or(|x| x == i),
            None => false,
        },
        Expression::Rule(inner) => rule_matches(inner, ctx),
    }
}

fn compare_attribute(
    actual: Option<&str>,
    operation: &str,
    expected: Option<&str>,
    value_type: Option<ValueType>,
) -> bool {
    match operation {
        "defined" => return actual.is_some(),
        "not_defined" => return actual.is_none(),
        _ => {}
    }
    let (Some(actual), Some(expected)) = (actual, expected) else {
        return operation == "ne";
    };
    let value_type = value_type.unwrap_or(match operation {
        "eq" | "ne" => ValueType::String,
        _ if actual.contains('.') || expected.contains('.') => ValueType::Number,
        _ => ValueType::Integer,
    });
    let ordering = match value_type {
        ValueType::String => Some(actual.cmp(expected)),
        ValueType::Integer => match (parse_int(actual), parse_int(expected)) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => Some(actual.cmp(expected)),
        },
        ValueType::Number => match (actual.trim().parse::<f64>(), expected.trim().parse::<f64>()) {
            (Ok(a), Ok(b)) => a.partial_cmp(&b),
            _ => Some(actual.cmp(expected)),
        },
        ValueType::Version => Some(compare_versions(actual, expected)),
    };
    let Some(ordering) = ordering else {
        return false;
    };
    use std::cmp::Ordering::*;
    match operation {
        "eq" => ordering == Equal,
        "ne" => ordering != Equal,
        "lt" => ordering == Less,
        "lte" => ordering != Greater,
        "gt" => ordering == Greater,
        "gte" => ordering != Less,
        _ => false,
    }
}

fn parse_int(text: &str) -> Option<i64> {
    let t = text.trim();
    let end = t
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(t.len(), |(i, _)| i);
    t[..end].parse().ok()
}

fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let o = pa.get(i).unwrap_or(&0).cmp(pb.get(i).unwrap_or(&0));
        if o.is_ne() {
            return o;
        }
    }
    std::cmp::Ordering::Equal
}

fn date_matches(
    now: i64,
    op: DateOp,
    start: Option<i64>,
    end: Option<i64>,
    duration_s: Option<i64>,
    spec: Option<&DateSpec>,
) -> bool {
    match op {
        DateOp::Gt => start.is_some_and(|s| now > s),
        DateOp::Lt => end.is_some_and(|e| now < e),
        DateOp::InRange => {
            let end = end.or_else(|| Some(start?.saturating_add(duration_s?)));
            start.is_none_or(|s| now >= s) && end.is_none_or(|e| now <= e)
        }
        DateOp::DateSpec => spec.is_some_and(|s| date_spec_matches(now, s)),
    }
}

/// Matches every field of a `date_spec` ("a-b" ranges or single values)
/// against the UTC calendar breakdown of `now`.
fn date_spec_matches(now: i64, spec: &DateSpec) -> bool {
    let cal = Calendar::from_epoch(now);
    spec.fields.iter().all(|(name, range)| {
        let value = match name.as_str() {
            "seconds" => cal.second,
            "minutes" => cal.minute,
            "hours" => cal.hour,
            "monthdays" => cal.day,
            "weekdays" => cal.weekday,
            "yeardays" => cal.yearday,
            "months" => cal.month,
            "weeks" => cal.iso_week,
            "years" => cal.year,
            "weekyears" => cal.iso_year,
            _ => return true,
        };
        in_range_text(value, range)
    })
}

fn in_range_text(value: i64, range: &str) -> bool {
    match range.split_once('-') {
        Some((lo, hi)) => {
            let lo = lo.trim().parse().unwrap_or(i64::MIN);
            let hi = hi.trim().parse().unwrap_or(i64::MAX);
            value >= lo && value <= hi
        }
        None => range.trim().parse() == Ok(value),
    }
}

struct Calendar {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    /// 1 = Monday .. 7 = Sunday.
    weekday: i64,
    yearday: i64,
    iso_week: i64,
    iso_year: i64,
}

impl Calendar {
    fn from_epoch(t: i64) -> Calendar {
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let weekday = (days + 3).rem_euclid(7) + 1;
        let yearday = days - days_from_civil(year, 1, 1) + 1;
        // ISO week: the week with the year's first Thursday is week 1.
        let thursday = days - (weekday - 4);
        let (iso_year, _, _) = civil_from_days(thursday);
        let iso_week = (thursday - days_from_civil(iso_year, 1, 1)) / 7 + 1;
        Calendar {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs % 3600 / 60,
            second: secs % 60,
            weekday,
            yearday,
            iso_week,
            iso_year,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untyped_comparisons_follow_pacemaker() {
        assert!(compare_attribute(Some("10"), "gt", Some("9"), None));
        assert!(!compare_attribute(Some("10"), "eq", Some("10.0"), None));
        assert!(compare_attribute(Some("1.5"), "lt", Some("2"), None));
        assert!(compare_attribute(None, "ne", Some("x"), None));
        assert!(!compare_attribute(None, "eq", Some("x"), None));
    }

    #[test]
    fn calendar_round_trips() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let cal = Calendar::from_epoch(1_136_073_600); // 2006-01-01, a Sunday
        assert_eq!((cal.year, cal.month, cal.day, cal.weekday), (2006, 1, 1, 7));
        assert_eq!((cal.iso_year, cal.iso_week), (2005, 52));
    }
}
