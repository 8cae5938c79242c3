//! `tandem simulate --cib FILE`: run the scheduler on a snapshot and print
//! the crm_simulate-style report, the transition as JSON, or the revised
//! placement as `pcmk-placement/1` JSON.

use crate::load::{effective_now, load_cluster, warn_unsupported};
use anyhow::Result;
use std::path::PathBuf;
use tandem_scheduler::summary;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Cluster snapshot: a Pacemaker CIB (.xml) or a tandem config (.toml).
    #[arg(long, value_name = "FILE")]
    pub cib: PathBuf,
    /// Effective "now" in epoch seconds (default: the CIB's execution-date,
    /// else the current time).
    #[arg(long, value_name = "EPOCH")]
    pub now: Option<i64>,
    /// Print the whole transition as JSON.
    #[arg(long, conflicts_with = "placement_json")]
    pub json: bool,
    /// Print the revised placement as pcmk-placement/1 JSON.
    #[arg(long)]
    pub placement_json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let cluster = load_cluster(&args.cib)?;
    warn_unsupported(&args.cib, &cluster);
    let now = effective_now(args.now, &cluster);
    let transition = tandem_scheduler::schedule(&cluster, now);
    for w in &transition.warnings {
        eprintln!("warning: {}: {w}", args.cib.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&transition)?);
    } else if args.placement_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&transition.revised.placement_json())?
        );
    } else {
        if let (None, Some(date)) = (args.now, cluster.status.execution_date) {
            println!("{}", summary::execution_date_line(date));
        }
        print!("{}", summary::render(&transition));
    }
    Ok(())
}
