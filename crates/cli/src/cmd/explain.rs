//! `tandem explain RESOURCE --cib FILE`: per node, the score of each of the
//! resource's primitives with every contribution (locations, stickiness,
//! bans, colocations), the verdict, where it runs before and after the
//! transition, and the transition summary lines that touch it.

use crate::load::{effective_now, load_cluster, warn_unsupported};
use anyhow::{bail, Result};
use serde_json::json;
use std::path::PathBuf;
use tandem_scheduler::view::{collect_primitives, strip_instance};
use tandem_scheduler::{ActiveOn, ClusterView, SummaryLine};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Resource id: a primitive, group or clone (or a group member).
    pub resource: String,
    /// Cluster snapshot: a Pacemaker CIB (.xml) or a tandem config (.toml).
    #[arg(long, value_name = "FILE")]
    pub cib: PathBuf,
    /// Effective "now" in epoch seconds.
    #[arg(long, value_name = "EPOCH")]
    pub now: Option<i64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One primitive (or instance) and where it is active.
struct Placement {
    id: String,
    active: Vec<ActiveOn>,
}

pub fn run(args: Args) -> Result<()> {
    let cluster = load_cluster(&args.cib)?;
    warn_unsupported(&args.cib, &cluster);
    let members = member_ids(&cluster, &args.resource);
    if members.is_empty() {
        bail!(
            "{}: no resource \"{}\" in the configuration",
            args.cib.display(),
            args.resource
        );
    }
    let now = effective_now(args.now, &cluster);
    let Some(explanation) = tandem_scheduler::explain(&cluster, now, &args.resource) else {
        bail!(
            "{}: no resource \"{}\" in the scheduler's view",
            args.cib.display(),
            args.resource
        );
    };
    let t = &explanation.transition;
    let before = placements(&t.current, &members);
    let after = placements(&t.revised, &members);
    let lines: Vec<&SummaryLine> = t
        .summary
        .iter()
        .filter(|l| members.iter().any(|m| m == strip_instance(&l.resource)))
        .collect();
    if args.json {
        let side = |ps: &[Placement]| -> serde_json::Value {
            ps.iter()
                .map(|p| json!({ "id": p.id, "active": p.active }))
                .collect()
        };
        let doc = json!({
            "resource": args.resource,
            "primitives": members,
            "before": side(&before),
            "after": side(&after),
            "summary": lines,
            "scores": explanation.primitives,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("Resource {} ({})", args.resource, members.join(", "));
    for p in &explanation.primitives {
        print_scores(p);
    }
    println!("Before:");
    print_side(&before);
    println!("After:");
    print_side(&after);
    println!("Transition Summary:");
    if lines.is_empty() {
        println!("  (no change)");
    }
    for l in lines {
        let reason = l
            .reason
            .as_deref()
            .map(|r| format!("  {r}"))
            .unwrap_or_default();
        println!("  * {} {} ( {} ){reason}", l.verb, l.resource, l.detail);
    }
    Ok(())
}

fn print_scores(p: &tandem_scheduler::explain::PrimitiveExplanation) {
    let show = |s: Option<tandem_model::Score>| s.map_or("-".to_string(), |s| s.to_string());
    println!("{}: {}", p.id, p.verdict);
    if let Some(pr) = &p.promotion {
        let role = pr.role.map_or("-".to_string(), |r| r.to_string());
        println!(
            "  promotion score on {}: {} (role: {role})",
            pr.node, pr.score
        );
    }
    println!(
        "  {:<20} {:>10} {:>10} {:>10}  usable  contributions",
        "node", "base", "locations", "final"
    );
    for n in &p.nodes {
        let parts: Vec<String> = n
            .contributions
            .iter()
            .map(|c| format!("{} {}", c.source, c.score))
            .collect();
        println!(
            "  {:<20} {:>10} {:>10} {:>10}  {:<6}  {}",
            n.node,
            n.base.to_string(),
            show(n.before_colocation),
            show(n.final_score),
            if n.available { "yes" } else { "no" },
            if parts.is_empty() {
                "-".to_string()
            } else {
                parts.join(", ")
            }
        );
    }
    println!("  (final = locations + colocation influence; a node is used only if usable with final >= 0)");
}

fn print_side(ps: &[Placement]) {
    if ps.is_empty() {
        println!("  (not in the scheduler's view)");
    }
    for p in ps {
        let where_: Vec<String> = p
            .active
            .iter()
            .map(|a| {
                let failed = if a.failed { "FAILED " } else { "" };
                format!("{failed}{} on {}", a.role, a.node)
            })
            .collect();
        let text = if where_.is_empty() {
            "Stopped".to_string()
        } else {
            where_.join(", ")
        };
        println!("  * {}: {text}", p.id);
    }
}

/// Primitive ids making up `id` (itself, a group's members, a clone's child).
fn member_ids(cluster: &tandem_model::Cluster, id: &str) -> Vec<String> {
    fn find(r: &tandem_model::Resource, id: &str) -> Option<Vec<String>> {
        if r.id() == id {
            return Some(r.primitives().iter().map(|p| p.id.clone()).collect());
        }
        match r {
            tandem_model::Resource::Primitive(_) => None,
            tandem_model::Resource::Group(g) => g
                .members
                .iter()
                .find(|m| m.id == id)
                .map(|m| vec![m.id.clone()]),
            tandem_model::Resource::Clone(c) => find(&c.child, id),
        }
    }
    cluster
        .config
        .resources
        .iter()
        .find_map(|r| find(r, id))
        .unwrap_or_default()
}

fn placements(view: &ClusterView, members: &[String]) -> Vec<Placement> {
    let mut out = Vec::new();
    for r in &view.resources {
        collect_primitives(r, &mut |p| {
            if members.iter().any(|m| m == strip_instance(&p.id)) {
                out.push(Placement {
                    id: p.id.clone(),
                    active: p.active.clone(),
                });
            }
        });
    }
    out
}
