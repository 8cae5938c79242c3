//! `tandem cluster start|stop|destroy`: the local daemon as a service.
//! Start and stop go through systemd when it runs `tandem.service` here;
//! otherwise they say what to run. Destroy wipes this node's data dir and
//! settings, only with `--yes-i-know` and never while the daemon runs.

use super::daemon::NodeArgs;
use anyhow::{bail, Context, Result};
use std::process::Command;

const UNIT: &str = "tandem.service";

#[derive(clap::Args, Debug)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Confirms that this node's cluster state may be deleted for good.
    #[arg(long)]
    pub yes_i_know: bool,
}

/// Whether systemd is PID 1 and knows `tandem.service`.
fn systemd_runs_tandem() -> bool {
    std::path::Path::new("/run/systemd/system").exists()
        && Command::new("systemctl")
            .args(["cat", UNIT])
            .output()
            .is_ok_and(|o| o.status.success())
}

pub fn start_stop(verb: &str) -> Result<()> {
    if !systemd_runs_tandem() {
        match verb {
            "start" => println!("systemd does not run {UNIT} here; start the node with: tandem daemon --config /etc/tandem/node.toml (or install packaging/{UNIT})"),
            _ => println!("systemd does not run {UNIT} here; stop the node by ending its `tandem daemon` process (Ctrl-C or SIGTERM)"),
        }
        return Ok(());
    }
    let status = Command::new("systemctl")
        .args([verb, UNIT])
        .status()
        .context("cannot run systemctl")?;
    if !status.success() {
        bail!("systemctl {verb} {UNIT} failed ({status}); see journalctl -u {UNIT}");
    }
    println!("{UNIT}: {verb} done");
    Ok(())
}

const WARNING: &str = "\
WARNING: destroy DELETES this node's cluster state: its data dir (the
replicated log, configuration and status) and its settings file. The node
leaves the cluster for good; the other nodes still count it as a voter.";

pub fn destroy(args: &DestroyArgs) -> Result<()> {
    eprintln!("{WARNING}");
    let config = args.node.load()?;
    if !args.yes_i_know {
        bail!("refusing without --yes-i-know (nothing was deleted)");
    }
    // A daemon that answers on its API port still uses the data dir.
    let timeout = std::time::Duration::from_millis(500);
    if std::net::TcpStream::connect_timeout(&config.api_listen, timeout).is_ok() {
        bail!(
            "the daemon still runs (its API answers on {}): stop it first (tandem cluster stop); nothing was deleted",
            config.api_listen
        );
    }
    if config.data_dir.exists() {
        std::fs::remove_dir_all(&config.data_dir)
            .with_context(|| format!("cannot remove {}", config.data_dir.display()))?;
        eprintln!("removed {}", config.data_dir.display());
    }
    std::fs::remove_file(&args.node.config)
        .with_context(|| format!("cannot remove {}", args.node.config.display()))?;
    eprintln!("removed {}", args.node.config.display());
    Ok(())
}
