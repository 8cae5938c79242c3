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

    /// The instance attributes its agent is given: the first value of each
    /// name across the sets, in order (rules are not evaluated).
    pub fn params(&self) -> std::collections::BTreeMap<String, String> {
        let mut params = std::collections::BTreeMap::new();
        for pair in self.instance.iter().flat_map(|set| &set.pairs) {
            if let Some(v) = &pair.value {
                params.entry(pair.name.clone()).or_insert_with(|| v.clone());
            }
        }
        params
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

/// What tandem's digests begin with: Pacemaker's `op-digest` values (MD5s
/// of its XML form) are not comparable with them and are never compared.
pub const DIGEST_PREFIX: &str = "tandem1:";

/// The digest of the parameters an operation ran with, recorded with its
/// result so that a changed definition is noticed (the instance is
/// restarted): FNV-1a (64 bits) over the sorted pairs, which is enough to
/// notice a change, not to resist a forger.
pub fn params_digest(params: &std::collections::BTreeMap<String, String>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, value) in params {
        // Lengths first, so ("ab", "c") and ("a", "bc") differ.
        for part in [name.as_bytes(), value.as_bytes()] {
            for byte in (part.len() as u64).to_le_bytes().iter().chain(part) {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    format!("{DIGEST_PREFIX}{hash:016x}")
}

#[cfg(test)]
mod digest_tests {
    use super::*;
    use std::collections::BTreeMap;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_digest_changes_with_any_parameter_and_only_then() {
        let base = params_digest(&params(&[("ip", "10.0.0.1"), ("cidr", "24")]));
        assert!(base.starts_with(DIGEST_PREFIX));
        assert_eq!(
            base,
            params_digest(&params(&[("cidr", "24"), ("ip", "10.0.0.1")]))
        );
        for other in [
            params(&[("ip", "10.0.0.2"), ("cidr", "24")]),
            params(&[("ip", "10.0.0.1")]),
            params(&[("ip", "10.0.0.1"), ("cidr", "24"), ("nic", "eth0")]),
            params(&[("ip", "10.0.0.12"), ("cidr", "4")]),
        ] {
            assert_ne!(base, params_digest(&other), "{other:?}");
        }
    }
}
