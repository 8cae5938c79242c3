//! Resources: primitives, groups, clones (incl. promotable) and their
//! operations. Bundles are recognised by the parsers but not modelled yet.

use crate::config::NvSet;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Resource {
    Primitive(Primitive),
    Group(Group),
    Clone(Clone),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceKind {
    Primitive,
    Group,
    Clone,
}

impl Resource {
    pub fn id(&self) -> &str {
        match self {
            Resource::Primitive(p) => &p.id,
            Resource::Group(g) => &g.id,
            Resource::Clone(c) => &c.id,
        }
    }

    pub fn kind(&self) -> ResourceKind {
        match self {
            Resource::Primitive(_) => ResourceKind::Primitive,
            Resource::Group(_) => ResourceKind::Group,
            Resource::Clone(_) => ResourceKind::Clone,
        }
    }

    pub fn meta(&self) -> &[NvSet] {
        match self {
            Resource::Primitive(p) => &p.meta,
            Resource::Group(g) => &g.meta,
            Resource::Clone(c) => &c.meta,
        }
    }

    /// Every primitive in this resource, depth first, in document order.
    pub fn primitives(&self) -> Vec<&Primitive> {
        match self {
            Resource::Primitive(p) => vec![p],
            Resource::Group(g) => g.members.iter().collect(),
            Resource::Clone(c) => c.child.primitives(),
        }
    }
}

/// A single service managed through one resource agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Primitive {
    pub id: String,
    /// Agent standard: ocf, lsb, systemd, service, stonith, ...
    pub class: String,
    pub provider: Option<String>,
    /// Agent name (Pacemaker's `type` attribute).
    pub agent: String,
    /// The template this primitive was built from, if any.
    pub template: Option<String>,
    pub meta: Vec<NvSet>,
    pub instance: Vec<NvSet>,
    pub utilization: Vec<NvSet>,
    pub operations: Vec<Operation>,
}

impl Primitive {
    /// `class:provider:type` as Pacemaker prints it.
    pub fn agent_spec(&self) -> String {
        match &self.provider {
            Some(p) => format!("{}:{}:{}", self.class, p, self.agent),
            None => format!("{}:{}", self.class, self.agent),
        }
    }

    pub fn is_fencing_device(&self) -> bool {
        self.class == "stonith"
    }
}

/// An ordered set of primitives that start in order and run together.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub meta: Vec<NvSet>,
    pub members: Vec<Primitive>,
}

/// A clone of a primitive or group; `promotable` clones have roles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Clone {
    pub id: String,
    /// True for `<master>` elements and clones with `promotable=true` meta
    /// (the parser resolves the latter only when it is unconditional).
    pub promotable: bool,
    pub meta: Vec<NvSet>,
    pub child: Box<Resource>,
}

/// A configured operation (`<op>`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub id: String,
    pub name: String,
    pub interval_ms: u64,
    pub role: Option<crate::Role>,
    /// Raw `on-fail` value (ignore, block, stop, restart, standby, fence, demote).
    pub on_fail: Option<String>,
    pub timeout_ms: Option<u64>,
    pub enabled: bool,
    /// Meta attributes (including those written as XML attributes that are
    /// not modelled above, e.g. `requires`, `record-pending`).
    pub meta: Vec<NvSet>,
}
