//! tandem's model → Pacemaker CIB XML ([`write_cib`]), the inverse of
//! [`crate::parse_cib`]: `parse_cib(&write_cib(&c))` gives back `c`'s
//! configuration and status (see the round-trip tests for the exact
//! promise).
//!
//! The document validates against `pacemaker-3.9` (the newest schema
//! Pacemaker 2.1 knows) and uses its spellings: promotable clones are
//! `<clone>` with `promotable=true`, roles are Promoted/Unpromoted. Ids the
//! model does not keep (nvpairs, expressions) are generated and never
//! collide with the model's ids: the document is rendered twice, the first
//! pass only collecting those ids. The CIB's version counters (epoch,
//! num_updates, admin_epoch) are not in the model and start at 1/0/0; a
//! configuration exported from a running cluster carries its version as
//! the epoch ([`write_cib_at_version`]).
//!
//! Modules: `xml` (element builder, escaping, ids), `sets` (attribute sets
//! and rules), `resources`, `constraints`, `status`; the small
//! configuration sections are here.
//!
//! Must not: parse, or know about the scheduler.

mod constraints;
mod resources;
mod sets;
mod status;
mod xml;

use sets::{nonzero, sets};
use std::borrow::Cow;
use std::collections::HashSet;
use tandem_model::config::FencingTarget;
use tandem_model::{Cluster, Configuration, NodeKind};
use xml::{El, Out};

/// The schema the written CIB declares.
pub const VALIDATE_WITH: &str = "pacemaker-3.9";

/// Renders `cluster` as a complete CIB document (configuration and status).
/// Features the source had but the model does not hold (listed in
/// [`Cluster::unsupported`]) are named in a comment before `<cib>`.
pub fn write_cib(cluster: &Cluster) -> String {
    let (_, model_ids) = render(cluster, HashSet::new(), None);
    render(cluster, model_ids, None).0
}

/// The same for the configuration a running tandem cluster holds at
/// `config_version`: the epoch carries that version and
/// `update-client="tandem"` says so, so that an import of the file can
/// tell which version it was based on ([`crate::tandem_version`]; a
/// Pacemaker CIB's epoch counts Pacemaker's changes, not tandem's).
pub fn write_cib_at_version(cluster: &Cluster, config_version: u64) -> String {
    let (_, model_ids) = render(cluster, HashSet::new(), Some(config_version));
    render(cluster, model_ids, Some(config_version)).0
}

/// What `update-client` says on a CIB that tandem exported.
pub const TANDEM_CLIENT: &str = "tandem";

fn render<'a>(
    cluster: &'a Cluster,
    reserved: HashSet<Cow<'a, str>>,
    version: Option<u64>,
) -> (String, HashSet<Cow<'a, str>>) {
    let mut out = Out::avoiding(reserved);
    for note in &cluster.unsupported {
        out.comment(&format!("tandem: not carried over from the source: {note}"));
    }
    let s = &cluster.status;
    let el = El::new("cib")
        .attr("validate-with", VALIDATE_WITH)
        .attr("epoch", version.unwrap_or(1).to_string())
        .attr("num_updates", "0")
        .attr("admin_epoch", "0")
        .opt("update-client", version.map(|_| TANDEM_CLIENT))
        .attr("have-quorum", if s.have_quorum { "1" } else { "0" })
        .opt("dc-uuid", s.dc_uuid.as_deref())
        .opt("execution-date", s.execution_date.map(|d| d.to_string()))
        .flag("no-quorum-panic", s.no_quorum_panic)
        .flag("have-watchdog", s.have_watchdog);
    out.node(el, |out| {
        out.node(El::new("configuration"), |out| {
            configuration(out, &cluster.config)
        });
        status::status(out, s);
    });
    out.finish()
}

fn configuration<'a>(out: &mut Out<'a>, c: &'a Configuration) {
    out.node(El::new("crm_config"), |out| {
        sets(out, "cluster_property_set", &c.options);
    });
    nodes(out, c);
    resources::resources(out, c);
    constraints::constraints(out, &c.constraints);
    for (tag, defaults) in [
        ("rsc_defaults", &c.rsc_defaults),
        ("op_defaults", &c.op_defaults),
    ] {
        if !defaults.is_empty() {
            out.node(El::new(tag), |out| sets(out, "meta_attributes", defaults));
        }
    }
    if !c.fencing_topology.is_empty() {
        out.node(El::new("fencing-topology"), |out| fencing_levels(out, c));
    }
    if !c.tags.is_empty() {
        out.node(El::new("tags"), |out| {
            for tag in &c.tags {
                out.node(El::new("tag").id(&tag.id), |out| {
                    for id in &tag.refs {
                        out.leaf(El::new("obj_ref").attr("id", id));
                    }
                });
            }
        });
    }
}

fn nodes<'a>(out: &mut Out<'a>, c: &'a Configuration) {
    out.node(El::new("nodes"), |out| {
        for node in &c.nodes {
            let kind = match node.kind {
                NodeKind::Member => None,
                NodeKind::Remote => Some("remote"),
                NodeKind::Ping => Some("ping"),
            };
            let el = El::new("node")
                .id(&node.id)
                .attr("uname", &node.uname)
                .opt("type", kind)
                .opt("score", nonzero(node.score));
            out.node(el, |out| {
                sets(out, "instance_attributes", &node.attributes);
                sets(out, "utilization", &node.utilization);
            });
        }
    });
}

fn fencing_levels<'a>(out: &mut Out<'a>, c: &'a Configuration) {
    for level in &c.fencing_topology {
        let el = El::new("fencing-level")
            .id(&level.id)
            .attr("index", level.index.to_string());
        let el = match &level.target {
            FencingTarget::Node(node) => el.attr("target", node),
            FencingTarget::Pattern(pattern) => el.attr("target-pattern", pattern),
            FencingTarget::Attribute { name, value } => el
                .attr("target-attribute", name)
                .attr("target-value", value),
        };
        out.leaf(el.attr("devices", level.devices.join(",")));
    }
}
