//! `tandem daemon --config FILE` and `tandem witness --config FILE`: run one
//! node until SIGINT/SIGTERM.

use anyhow::{bail, Result};
use std::path::PathBuf;
use tandem_daemon::DaemonConfig;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The node's settings file written by `tandem cluster setup`.
    #[arg(long)]
    pub config: PathBuf,
}

pub fn run(args: Args, witness: bool) -> Result<()> {
    let config = DaemonConfig::load(&args.config)?;
    let is_witness = config
        .members
        .iter()
        .any(|m| m.id == config.id && m.witness);
    if witness != is_witness {
        bail!(
            "{}: this node is {}a witness; use `tandem {}`",
            args.config.display(),
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
