//! Wires a node together: the cluster member ([`tandem_cluster`]) and the
//! HTTPS admin API ([`api`]) that reads the membership view, the replicated
//! configuration and the scheduler's planned placement, and commits
//! validated changes through the log. [`serve`] runs a whole node until a
//! shutdown future resolves, so tests run nodes in-process.
//!
//! Holds no logic that belongs to a crate below it: consensus lives in
//! `tandem-cluster`, placement in `tandem-scheduler`.

pub mod admin;
pub mod api;
pub mod client;
mod diff;
pub mod edit;
pub mod join;
pub mod live;
pub mod preview;
pub mod settings;
mod view;

pub use client::{AdminFile, ApiClient, ClientError};
pub use settings::{DaemonConfig, SettingsError};
pub use tandem_cluster::{force_single_node, Authority, Member, Timing, TlsFiles};

use std::future::Future;
use std::net::SocketAddr;
use tandem_cluster::{ClusterError, ClusterNode};

/// Why a node stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot listen for the admin API on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Runs one node until `shutdown` resolves. `ready` receives the bound
/// Raft and API addresses once both listen.
pub async fn serve(
    config: DaemonConfig,
    ready: Option<tokio::sync::oneshot::Sender<(SocketAddr, SocketAddr)>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let node = ClusterNode::start(config.node_settings()?).await?;
    let tls = config.tls.server_config().map_err(ClusterError::from)?;
    let listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.api_listen,
            source,
        })?;
    let api_addr = listener
        .local_addr()
        .map_err(|source| DaemonError::Listen {
            addr: config.api_listen,
            source,
        })?;
    tracing::info!(node = config.id, raft = %node.local_addr(), api = %api_addr, "node started");
    if let Some(tx) = ready {
        let _ = tx.send((node.local_addr(), api_addr));
    }
    let node = std::sync::Arc::new(node);
    let joins = config
        .join
        .clone()
        .map(|files| tokio::spawn(join::serve(files, config.tls.clone())));
    api::run(listener, tls, node.clone(), shutdown).await;
    if let Some(joins) = joins {
        joins.abort();
    }
    if let Ok(node) = std::sync::Arc::try_unwrap(node) {
        node.shutdown().await;
    }
    Ok(())
}
