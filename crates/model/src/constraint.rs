//! Constraints: location, colocation, order and ticket, each either between
//! named resources or over resource sets.

use crate::rule::Rule;
use crate::score::Score;
use crate::Role;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Constraint {
    Location(Location),
    Colocation(Colocation),
    Order(Order),
    Ticket(TicketConstraint),
}

impl Constraint {
    pub fn id(&self) -> &str {
        match self {
            Constraint::Location(c) => &c.id,
            Constraint::Colocation(c) => &c.id,
            Constraint::Order(c) => &c.id,
            Constraint::Ticket(c) => &c.id,
        }
    }
}

/// A role condition as written (`role`, `rsc-role`, `with-rsc-role`).
/// `None` in a field of this type means "any role".
pub type RoleSpec = Option<Role>;

/// What a location constraint applies to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LocationTarget {
    /// A resource, tag or template id.
    Resource(String),
    /// `rsc-pattern`: a POSIX extended regex over top-level resource ids;
    /// `negated` when the pattern starts with `!`.
    Pattern { regex: String, negated: bool },
    /// Resource sets (all resources of all sets).
    Sets(Vec<ResourceSet>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub id: String,
    pub target: LocationTarget,
    pub role: RoleSpec,
    /// Simple form: `node` + `score`.
    pub node: Option<String>,
    pub score: Option<Score>,
    /// Rule form: each rule carries its own score or score-attribute.
    pub rules: Vec<Rule>,
    /// `resource-discovery`: always (default), never, exclusive.
    pub resource_discovery: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Colocation {
    pub id: String,
    pub score: Score,
    /// Dependent (`rsc`) and primary (`with-rsc`); `None` when `sets` is used.
    pub rsc: Option<String>,
    pub with_rsc: Option<String>,
    pub rsc_role: RoleSpec,
    pub with_rsc_role: RoleSpec,
    /// `node-attribute`, default `#uname`.
    pub node_attribute: Option<String>,
    /// Explicit `influence`; `None` means "use the dependent's `critical`".
    pub influence: Option<bool>,
    pub sets: Vec<ResourceSet>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderKind {
    Mandatory,
    Optional,
    Serialize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub first: Option<String>,
    pub then: Option<String>,
    /// start, stop, promote, demote (default start; `then_action` defaults
    /// to the first action).
    pub first_action: Option<String>,
    pub then_action: Option<String>,
    pub kind: OrderKind,
    /// `None`: default (true except for Serialize).
    pub symmetrical: Option<bool>,
    pub require_all: Option<bool>,
    pub sets: Vec<ResourceSet>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TicketConstraint {
    pub id: String,
    pub ticket: String,
    pub rsc: Option<String>,
    pub rsc_role: RoleSpec,
    /// stop (default), demote, fence, freeze.
    pub loss_policy: Option<String>,
    pub sets: Vec<ResourceSet>,
}

/// A `resource_set` inside a constraint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceSet {
    pub id: String,
    /// Resource, tag or template ids in order.
    pub resources: Vec<String>,
    /// `None` when not written: the default differs between colocation
    /// (sequential) and ordering across sets.
    pub sequential: Option<bool>,
    pub require_all: Option<bool>,
    pub role: RoleSpec,
    pub action: Option<String>,
    pub ordering: Option<String>,
    pub kind: Option<OrderKind>,
    pub score: Option<Score>,
}
