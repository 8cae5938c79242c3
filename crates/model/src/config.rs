//! The configuration half of the model: options, nodes, resources,
//! constraints, defaults, tags and fencing topology.

use crate::constraint::Constraint;
use crate::resource::Resource;
use crate::rule::Rule;
use crate::score::Score;
use serde::{Deserialize, Serialize};

/// A cluster's configuration, in document order everywhere (order matters
/// to Pacemaker's tie-breaking).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Configuration {
    /// `crm_config` property sets (cluster options), possibly rule-guarded.
    pub options: Vec<NvSet>,
    pub nodes: Vec<NodeConfig>,
    /// Top-level resources in document order.
    pub resources: Vec<Resource>,
    /// Constraints in document order, all kinds interleaved as written.
    pub constraints: Vec<Constraint>,
    /// `rsc_defaults` meta-attribute sets.
    pub rsc_defaults: Vec<NvSet>,
    /// `op_defaults` meta-attribute sets.
    pub op_defaults: Vec<NvSet>,
    /// Tags: named lists of resource ids usable in constraints.
    pub tags: Vec<Tag>,
    /// Ids of resource templates (their attributes are already merged into
    /// the primitives that use them; constraints may still name them).
    pub templates: Vec<String>,
    pub fencing_topology: Vec<FencingLevel>,
}

impl Configuration {
    /// First value of a cluster option, ignoring rule-guarded sets (the
    /// scheduler evaluates those itself when it needs to).
    pub fn option(&self, name: &str) -> Option<&str> {
        first_value(&self.options, name)
    }
}

/// The first value of `name` in sets without rules, in set order.
pub fn first_value<'a>(sets: &'a [NvSet], name: &str) -> Option<&'a str> {
    sets.iter()
        .filter(|s| s.rule.is_none())
        .flat_map(|s| s.pairs.iter())
        .find(|p| p.name == name)
        .and_then(|p| p.value.as_deref())
}

/// A named set of name/value pairs (instance, meta, utilization attributes,
/// cluster options), optionally guarded by a rule and ranked by a score.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NvSet {
    pub id: String,
    /// Sets are applied in descending score order; ties keep document order.
    pub score: Score,
    pub rule: Option<Rule>,
    pub pairs: Vec<NvPair>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvPair {
    pub name: String,
    /// `None` means the pair unsets the attribute (no value attribute).
    pub value: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    Member,
    Remote,
    /// Pacemaker's "ping" quorum-only nodes: they never run resources.
    Ping,
}

/// A node as configured in `<nodes>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeConfig {
    pub id: String,
    pub uname: String,
    pub kind: NodeKind,
    /// Base score copied into every resource's table for this node.
    pub score: Score,
    pub attributes: Vec<NvSet>,
    pub utilization: Vec<NvSet>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub id: String,
    pub refs: Vec<String>,
}

/// One fencing topology level: to fence `target`, try `devices` together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FencingLevel {
    pub id: String,
    pub index: u32,
    pub target: FencingTarget,
    pub devices: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FencingTarget {
    Node(String),
    Pattern(String),
    Attribute { name: String, value: String },
}
