//! A node's settings file (TOML, written by `tandem cluster setup`): who it
//! is, where it listens, its certificates, the members and the timing.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tandem_cluster::{Member, NodeId, NodeSettings, Timing, TlsFiles};

/// Why a settings file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("{path}: node id {id} is not listed under [[member]]")]
    NotAMember { path: PathBuf, id: NodeId },
}

/// One node's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    pub cluster: String,
    pub id: NodeId,
    pub data_dir: PathBuf,
    /// Raft transport address.
    pub listen: SocketAddr,
    /// Admin API (HTTPS, client certificates) address.
    pub api_listen: SocketAddr,
    pub tls: TlsFiles,
    #[serde(default)]
    pub timing: Timing,
    /// How long before its lease ends a node that was not granted a new
    /// one starts stopping its resources: the time its stops have to
    /// finish (see `lease.rs`).
    #[serde(default = "default_lease_margin_ms")]
    pub lease_margin_ms: u64,
    /// How long a clean stop (`SIGTERM`, `tandem cluster stop`) waits for
    /// this node's resources to move or stop before it stops them here.
    #[serde(default = "default_shutdown_timeout_ms")]
    pub shutdown_timeout_ms: u64,
    /// A watchdog device (`/dev/watchdog`) to feed: it resets this
    /// machine when the node holds resources without a lease (cut off,
    /// stuck, paused or dead), and the DC then recovers them after the
    /// timeout without fencing (`crate::watchdog`). Off by default.
    #[serde(default)]
    pub watchdog: Option<PathBuf>,
    /// The watchdog's timeout, set by the daemon (whole seconds; the DC
    /// waits 2.5 times this after the node's lease before recovering; longer
    /// than the slowest stop, or a node that loses its lease while
    /// stopping is reset).
    #[serde(default = "default_watchdog_timeout_ms")]
    pub watchdog_timeout_ms: u64,
    /// Where resource and fence agents live.
    #[serde(default)]
    pub agents: crate::executor::AgentSettings,
    /// The load balancer this node runs, if any.
    #[serde(default)]
    pub traffic: crate::traffic::TrafficSettings,
    /// Written by `tandem node add`: this node was added to a running
    /// cluster and must not initialize a group of its own; it waits for
    /// the DC to replicate the log to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub joining: bool,
    /// The voters to bootstrap with (every voter, this node included, at
    /// setup). Once the group formed, the replicated membership rules;
    /// this node's own entry still names it and says if it is a witness.
    #[serde(rename = "member")]
    pub members: Vec<MemberEntry>,
    /// Only on the node `tandem cluster init` made: where it serves joins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<crate::join::JoinFiles>,
}

fn default_lease_margin_ms() -> u64 {
    // A DC crash leaves nodes on their last grant (at most `lease_ms`)
    // while the others elect a successor (300-500 ms) that grants again
    // at once: 150 ms of stop time keeps them clear of that gap.
    150
}

fn default_watchdog_timeout_ms() -> u64 {
    // SBD's default: a reset must not come from a stop that merely takes
    // a few seconds after the lease ends.
    5000
}

fn default_shutdown_timeout_ms() -> u64 {
    // systemd gives a unit 90 s to stop by default.
    60_000
}

/// One voter as written in the settings file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberEntry {
    pub id: NodeId,
    pub name: String,
    pub addr: String,
    pub api: String,
    #[serde(default)]
    pub witness: bool,
}

impl MemberEntry {
    /// The member as the cluster records it.
    pub fn member(&self) -> Member {
        Member {
            name: self.name.clone(),
            addr: self.addr.clone(),
            api: self.api.clone(),
            witness: self.witness,
        }
    }

    pub fn new(id: NodeId, member: Member) -> MemberEntry {
        MemberEntry {
            id,
            name: member.name,
            addr: member.addr,
            api: member.api,
            witness: member.witness,
        }
    }
}

impl DaemonConfig {
    /// Settings with every optional part at its default.
    pub fn new(
        cluster: &str,
        id: NodeId,
        data_dir: PathBuf,
        (listen, api_listen): (SocketAddr, SocketAddr),
        tls: TlsFiles,
        members: Vec<MemberEntry>,
    ) -> DaemonConfig {
        DaemonConfig {
            cluster: cluster.to_string(),
            id,
            data_dir,
            listen,
            api_listen,
            tls,
            timing: Timing::default(),
            lease_margin_ms: default_lease_margin_ms(),
            shutdown_timeout_ms: default_shutdown_timeout_ms(),
            watchdog: None,
            watchdog_timeout_ms: default_watchdog_timeout_ms(),
            agents: Default::default(),
            traffic: Default::default(),
            joining: false,
            members,
            join: None,
        }
    }

    /// Reads and checks a settings file; relative paths are taken from the
    /// file's directory.
    pub fn load(path: &Path) -> Result<DaemonConfig, SettingsError> {
        let read_err = |detail: String| SettingsError::Read {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
        let mut config: DaemonConfig =
            toml::from_str(&text).map_err(|e| read_err(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let traffic = config.traffic.config.iter_mut();
        let join = config.join.as_mut().map(|j| [&mut j.ca_key, &mut j.tokens]);
        for p in [
            &mut config.data_dir,
            &mut config.tls.ca,
            &mut config.tls.cert,
            &mut config.tls.key,
        ]
        .into_iter()
        .chain(traffic)
        .chain(join.into_iter().flatten())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if !config.members.iter().any(|m| m.id == config.id) {
            return Err(SettingsError::NotAMember {
                path: path.to_path_buf(),
                id: config.id,
            });
        }
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The settings the cluster member starts with.
    pub fn node_settings(&self) -> Result<NodeSettings, SettingsError> {
        let members: BTreeMap<NodeId, Member> =
            self.members.iter().map(|m| (m.id, m.member())).collect();
        Ok(NodeSettings {
            id: self.id,
            data_dir: self.data_dir.clone(),
            listen: self.listen,
            tls: self.tls.clone(),
            members,
            timing: self.timing.clone(),
            joining: self.joining,
        })
    }
}
