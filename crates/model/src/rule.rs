//! Rules: boolean expressions over node attributes, dates, resources and
//! operations, used by location constraints and attribute sets.

use crate::score::Score;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    /// Score to apply when the rule matches (location rules).
    pub score: Option<Score>,
    /// Node attribute whose value is the score (location rules).
    pub score_attribute: Option<String>,
    pub bool_op: BoolOp,
    pub role: Option<crate::Role>,
    pub expressions: Vec<Expression>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoolOp {
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValueType {
    String,
    Integer,
    Number,
    Version,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Expression {
    /// Compare a node attribute (`#uname`, `#kind`, `#is_dc`, or any other).
    Attribute {
        attribute: String,
        /// lt, gt, lte, gte, eq, ne, defined, not_defined.
        operation: String,
        value: Option<String>,
        value_type: Option<ValueType>,
        /// `value-source`: literal (default), param, meta.
        value_source: Option<String>,
    },
    Date {
        operation: DateOp,
        /// Seconds since the epoch, UTC.
        start: Option<i64>,
        end: Option<i64>,
        /// `duration` element, as seconds, added to start when `end` is absent.
        duration_s: Option<i64>,
        spec: Option<DateSpec>,
    },
    /// `rsc_expression`: matches a resource's agent.
    Resource {
        class: Option<String>,
        provider: Option<String>,
        agent: Option<String>,
    },
    /// `op_expression`: matches an operation name and interval.
    Operation {
        name: String,
        interval_ms: Option<u64>,
    },
    Rule(Rule),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DateOp {
    InRange,
    Gt,
    Lt,
    DateSpec,
}

/// A `date_spec`: each field a range "a-b" or a single value, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateSpec {
    pub fields: Vec<(String, String)>,
}
