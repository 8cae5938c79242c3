//! `tandem daemon` and `tandem witness` (`--config FILE`, default
//! `/etc/tandem/node.toml`; `--data-dir DIR` overrides the file's data dir):
//! run one node until SIGINT/SIGTERM. [`NodeArgs`] is shared with the
//! offline commands that act on a node's files.

use anyhow::{bail, Result};
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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TANDEM_LOG")
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
            }
        };
        tandem_daemon::serve(config, None, shutdown).await
    })?;
    Ok(())
}
