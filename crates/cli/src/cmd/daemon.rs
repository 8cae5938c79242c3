//! `tandem daemon` and `tandem witness` (`--config FILE`, default
//! `/etc/tandem/node.toml`; `--data-dir DIR` overrides the file's data dir):
//! run one node until SIGINT/SIGTERM. [`NodeArgs`] is shared with the
//! offline commands that act on a node's files.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use tandem_daemon::DaemonConfig;

/// Which node, by its settings file and data dir.
#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// The node's settings file written by `tandem cluster setup`.
    #[arg(long, default_value = "/etc/tandem/node.toml")]
    pub config: PathBuf,
    /// The node's data dir (its Raft log and state), instead of the one
    /// named in the settings file.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl NodeArgs {
    /// The settings file with the `--data-dir` override applied.
    pub fn load(&self) -> Result<DaemonConfig> {
        let mut config = DaemonConfig::load(&self.config)?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        Ok(config)
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub node: NodeArgs,
}

pub fn run(args: Args, witness: bool) -> Result<()> {
    let config = args.node.load()?;
    let is_witness = config
        .members
        .iter()
        .any(|m| m.id == config.id && m.witness);
    if witness != is_witness {
        bail!(
            "{}: this node is {}a witness; use `tandem {}`",
            args.node.config.display(),
            if is_witness { "" } else { "not " },
            if is_witness { "witness" } else { "daemon" }
        );
    }
    crate::logging::init("TANDEM_LOG", "info,openraft=warn");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Registered before the node starts, so a stop during start-up is
        // a clean stop too (the default action would kill the process).
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            // A second signal while leaving: the operator wants out now.
            // What still runs here is left to fencing or confirm-down.
            tokio::spawn(async move {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
                eprintln!("tandem: second stop signal: leaving at once, without moving or stopping what still runs here");
                std::process::exit(143);
            });
        };
        tandem_daemon::serve(config, None, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(())
}
