//! Every bound the admin API and the scheduler guard keep, with its
//! reason, and [`check_document`], which holds a parsed configuration to
//! the size limits before it is scheduled in preview and committed.
//!
//! The sizes are chosen together: the largest document the API accepts
//! (every count at its limit, resources in one colocation and order chain,
//! the slowest shape the scheduler knows) schedules within
//! [`ADMISSION_WORK`] and, on the machine that set these numbers (2
//! cores), well within [`ADMISSION_BUDGET`] (`tests/api_limits.rs`
//! measures it). Pacemaker's own guidance stops far below them (clusters
//! of tens of nodes and hundreds to a few thousand resources).

use std::time::Duration;
use tandem_model::{Cluster, Constraint, LocationTarget, Resource, ResourceSet};

/// Request body of `PUT /config`, `POST /plan` and `POST /edit`: a whole
/// configuration document, JSON-escaped. A [`MAX_DOCUMENT_BYTES`] text
/// grows by about a tenth when escaped (quotes and newlines); twice the
/// text leaves room for documents that escape more.
pub const MAX_DOCUMENT_BODY_BYTES: usize = 2 * MAX_DOCUMENT_BYTES;

/// A configuration document's text. 2,000 primitives with a constraint
/// or two each take about 600 KiB in the native format; 1 MiB leaves room
/// for parameters and rules, and parsing it takes milliseconds.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// `POST /execute`: one operation with its resource's parameters and meta
/// attributes, which come from the configuration document, so they are
/// bounded by it.
pub const MAX_EXECUTE_BODY_BYTES: usize = MAX_DOCUMENT_BODY_BYTES;

/// Every other request (attributes, properties, fencing, cleanup,
/// membership changes): a few names and values. 64 KiB is a thousand
/// times what they need and small enough to hold for every connection.
pub const MAX_SMALL_BODY_BYTES: usize = 64 << 10;

/// What the API reads and drops of a refused body after its 413, so a
/// client that sends the whole body before reading sees the answer
/// instead of a reset connection. Bandwidth only, nothing is kept; a
/// client sending more finds the connection closed.
pub const MAX_DISCARDED_BODY_BYTES: usize = 16 << 20;

/// How long the API goes on reading a refused body (a slow sender holds
/// a task at most this long).
pub const DISCARD_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Configured nodes (cluster members, remote and guest nodes). Every
/// resource keeps a score per node, so this multiplies the scheduler's
/// memory and work; Pacemaker supports 32 full members and remote nodes
/// in the low hundreds.
pub const MAX_NODES: usize = 256;

/// Primitives, counting group members and the primitive inside each
/// clone once. A chain of this many colocated and ordered resources (the
/// slowest shape: every placement merges the preferences of the whole
/// rest of the chain) still schedules within [`ADMISSION_WORK`] on a few
/// nodes; the 8,000-link chain that crashed the daemon does not.
pub const MAX_PRIMITIVES: usize = 2_000;

/// Clone instances of all clones together, counting each clone's highest
/// configured `clone-max` (or the node count). Each instance is a
/// resource to the scheduler: without this, a few clones with a huge
/// `clone-max` would be millions of them.
pub const MAX_CLONE_INSTANCES: usize = 10_000;

/// Constraints of every kind. Twice [`MAX_PRIMITIVES`] covers a location
/// and a colocation or order per resource, with room to spare.
pub const MAX_CONSTRAINTS: usize = 2 * MAX_PRIMITIVES;

/// Resource references in resource sets and tags together. A set of `n`
/// unordered members expands to `n²` pairs, so this bounds that product
/// along with [`ADMISSION_WORK`].
pub const MAX_SET_MEMBERS: usize = 2 * MAX_PRIMITIVES;

/// Units of scheduler work (`tandem_scheduler::schedule_with_limit`) a
/// configuration may need in preview before it is committed. About 1.7 s
/// of one core here (release build); the 2,000-link chain at
/// [`MAX_PRIMITIVES`] on three nodes needs a sixth of it (0.2 s), an
/// 8,000-link one is refused when it runs out.
pub const ADMISSION_WORK: u64 = 50_000_000;

/// Units of work a run on a committed configuration may take (status,
/// the controller). Four times [`ADMISSION_WORK`]: the live state (failed
/// nodes, operation history) can make a run somewhat more work than its
/// preview was, and a committed configuration must keep scheduling.
pub const RUN_WORK: u64 = 4 * ADMISSION_WORK;

/// Wall time for a preview of a document on its way in. The work limit
/// decides first in practice; this catches a machine far slower than
/// expected (or a debug build), so a request never hangs.
pub const ADMISSION_BUDGET: Duration = Duration::from_secs(10);

/// Wall time for the placement `GET /status` and `GET /resources` show.
pub const STATUS_BUDGET: Duration = Duration::from_secs(10);

/// Stack of a scheduling thread. The scheduler's walks keep their own
/// stacks, so it needs little; the remaining recursion is bounded by the
/// nesting the parsers allow (rules inside rules). A large stack costs
/// only address space until it is touched.
pub const SCHEDULER_STACK_BYTES: usize = 64 << 20;

/// Scheduling threads at a time for previews of incoming documents
/// (`PUT /config`, `POST /plan`, `POST /edit`): a flood of them waits for
/// this many, then is told the scheduler is busy.
pub const ADMISSION_THREADS: usize = 1;

/// Scheduling threads at a time for status reads, which every client
/// polls; two keep one slow read from holding up the rest.
pub const STATUS_THREADS: usize = 2;

/// Scheduling threads at a time for the controller (only the DC's runs).
pub const CONTROL_THREADS: usize = 1;

/// What in a document is over a limit, all of it at once.
#[derive(Debug, thiserror::Error)]
#[error("configuration too large: {}", .0.join("; "))]
pub struct TooLarge(pub Vec<String>);

/// Holds `text` and the configuration parsed from it to the limits above.
pub fn check_document(text: &str, cluster: &Cluster) -> Result<(), TooLarge> {
    let config = &cluster.config;
    let primitives: usize = config.resources.iter().map(|r| r.primitives().len()).sum();
    let instances: usize = config
        .resources
        .iter()
        .filter_map(|r| match r {
            Resource::Clone(c) => Some(clone_max(c, config)),
            _ => None,
        })
        .map(|max| max.unwrap_or(config.nodes.len()))
        .sum();
    let set_members: usize = config
        .constraints
        .iter()
        .map(|c| sets_of(c).iter().map(|s| s.resources.len()).sum::<usize>())
        .chain(config.tags.iter().map(|t| t.refs.len()))
        .sum();
    let counts = [
        (text.len(), MAX_DOCUMENT_BYTES, "bytes of text"),
        (config.nodes.len(), MAX_NODES, "nodes"),
        (primitives, MAX_PRIMITIVES, "primitives"),
        (instances, MAX_CLONE_INSTANCES, "clone instances"),
        (config.constraints.len(), MAX_CONSTRAINTS, "constraints"),
        (set_members, MAX_SET_MEMBERS, "resource set and tag members"),
    ];
    let over: Vec<String> = counts
        .iter()
        .filter(|(n, max, _)| n > max)
        .map(|(n, max, what)| format!("{n} {what}, more than the {max} allowed"))
        .collect();
    if over.is_empty() {
        Ok(())
    } else {
        Err(TooLarge(over))
    }
}

/// The highest `clone-max` the clone or the resource defaults set, under
/// any rule (the scheduler may pick any of them); `None` when none does.
fn clone_max(c: &tandem_model::Clone, config: &tandem_model::Configuration) -> Option<usize> {
    c.meta
        .iter()
        .chain(&config.rsc_defaults)
        .flat_map(|set| &set.pairs)
        .filter(|p| p.name == "clone-max")
        .filter_map(|p| p.value.as_deref()?.trim().parse::<usize>().ok())
        .max()
}

fn sets_of(c: &Constraint) -> &[ResourceSet] {
    match c {
        Constraint::Location(l) => match &l.target {
            LocationTarget::Sets(sets) => sets,
            _ => &[],
        },
        Constraint::Colocation(c) => &c.sets,
        Constraint::Order(o) => &o.sets,
        Constraint::Ticket(t) => &t.sets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(primitives: usize, clone_max: Option<usize>) -> String {
        let mut text = String::from("[[node]]\nname = \"n1\"\n");
        for i in 0..primitives {
            text.push_str(&format!(
                "[[resource]]\nid = \"r{i}\"\nagent = \"ocf:heartbeat:Dummy\"\n"
            ));
        }
        if let Some(max) = clone_max {
            text.push_str(&format!(
                "[[clone]]\nid = \"c\"\nof = \"r0\"\nmeta = {{ clone-max = {max} }}\n"
            ));
        }
        text
    }

    fn check(text: &str) -> Result<(), TooLarge> {
        let cluster = tandem_model::native::parse_toml(text).unwrap();
        check_document(text, &cluster)
    }

    #[test]
    fn a_document_at_the_limits_passes() {
        assert!(check(&document(MAX_PRIMITIVES, Some(MAX_CLONE_INSTANCES))).is_ok());
    }

    #[test]
    fn every_count_over_its_limit_is_named_at_once() {
        let err = check(&document(MAX_PRIMITIVES + 1, Some(MAX_CLONE_INSTANCES + 1))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("2001 primitives, more than the 2000 allowed"),
            "{text}"
        );
        assert!(text.contains("10001 clone instances"), "{text}");
    }
}
