//! `tandem quorum force-single-node --yes-i-know`: offline disaster
//! recovery. Rewrites the node's stored membership so it is the only voter,
//! for when the other voters are gone for good. Refuses without the flag,
//! for a witness, and while the node's daemon runs (the data file is
//! locked).

use super::daemon::NodeArgs;
use anyhow::{bail, Context, Result};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Confirms that every other voter is stopped for good (or will be
    /// wiped before it starts again).
    #[arg(long)]
    pub yes_i_know: bool,
}

const WARNING: &str = "\
WARNING: force-single-node makes this node the ONLY voter of the cluster.
If any other voter is still running, or starts again with its old data,
there will be two clusters that each believe they are in charge: both may
start the same resources (split-brain; shared data can be corrupted).
Use it only when the other nodes are gone for good; wipe their data dirs
before they rejoin, and re-create the cluster from this node.";

pub fn run(args: &Args) -> Result<()> {
    eprintln!("{WARNING}");
    if !args.yes_i_know {
        bail!("refused: nothing changed; re-run with --yes-i-know once you are sure");
    }
    let config = args.node.load()?;
    let me = config
        .members
        .iter()
        .find(|m| m.id == config.id)
        .context("this node is not in its own member list")?;
    if me.witness {
        bail!(
            "{} is a witness: it cannot run the cluster alone; recover a data node instead",
            me.name
        );
    }
    let member = tandem_daemon::Member {
        witness: false,
        ..me.member()
    };
    let term = tandem_daemon::force_single_node(&config.data_dir, config.id, member)?;
    eprintln!(
        "{} ({}) is now the only voter (term {term}); start its daemon. Wipe every other node's data dir before it starts again.",
        me.name,
        config.data_dir.display()
    );
    Ok(())
}
