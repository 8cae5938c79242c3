//! `tandem cluster setup`: a cluster CA, a certificate and a settings file
//! per node, and an admin certificate with `admin.toml` for the CLI.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tandem_daemon::settings::MemberEntry;
use tandem_daemon::{AdminFile, Authority, DaemonConfig, TlsFiles};

#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Create the CA, node certificates and settings files under DIR.
    Setup(SetupArgs),
}

#[derive(clap::Args, Debug)]
pub struct SetupArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub dir: PathBuf,
    /// A witness (votes, never DC, never runs resources): NAME=HOST:PORT.
    #[arg(long)]
    pub witness: Option<String>,
    /// The admin API listens on the Raft port plus this offset.
    #[arg(long, default_value_t = 100)]
    pub api_port_offset: u16,
    /// Data nodes: NAME=HOST:PORT (the Raft transport address).
    #[arg(required = true)]
    pub nodes: Vec<String>,
}

pub fn run(command: ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Setup(args) => setup(&args).map(|_| ()),
    }
}

fn parse_member(spec: &str, id: u64, witness: bool, offset: u16) -> Result<MemberEntry> {
    let Some((name, addr)) = spec.split_once('=') else {
        bail!("{spec:?}: expected NAME=HOST:PORT");
    };
    let sock: std::net::SocketAddr = addr.parse().with_context(|| {
        format!("{spec:?}: {addr:?} is not HOST:PORT (an IP address and a port)")
    })?;
    let api = std::net::SocketAddr::new(
        sock.ip(),
        sock.port()
            .checked_add(offset)
            .context("API port overflows")?,
    );
    Ok(MemberEntry {
        id,
        name: name.to_string(),
        addr: addr.to_string(),
        api: api.to_string(),
        witness,
    })
}

/// Writes everything; returns the node settings file paths.
pub fn setup(args: &SetupArgs) -> Result<Vec<PathBuf>> {
    let mut members = Vec::new();
    for (i, spec) in args.nodes.iter().enumerate() {
        members.push(parse_member(
            spec,
            i as u64 + 1,
            false,
            args.api_port_offset,
        )?);
    }
    if let Some(w) = &args.witness {
        members.push(parse_member(
            w,
            members.len() as u64 + 1,
            true,
            args.api_port_offset,
        )?);
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let ca = Authority::generate(&args.name)?;
    write(&args.dir.join("ca.pem"), &ca.cert_pem())?;
    let mut files = Vec::new();
    for m in &members {
        let tls = issue(&ca, &args.dir, &m.name, "node")?;
        let config = DaemonConfig::new(
            &args.name,
            m.id,
            PathBuf::from(format!("{}-data", m.name)),
            (m.addr.parse()?, m.api.parse()?),
            tls,
            members.clone(),
        );
        let path = args.dir.join(format!("{}.toml", m.name));
        write(&path, &config.to_toml())?;
        files.push(path);
    }
    let admin = AdminFile {
        endpoints: members
            .iter()
            .filter(|m| !m.witness)
            .map(|m| m.api.clone())
            .collect(),
        tls: issue(&ca, &args.dir, "admin", "admin")?,
    };
    write(
        &args.dir.join("admin.toml"),
        &toml::to_string_pretty(&admin)?,
    )?;
    Ok(files)
}

fn issue(ca: &Authority, dir: &Path, name: &str, role: &str) -> Result<TlsFiles> {
    let issued = ca.issue(name, role)?;
    write(&dir.join(format!("{name}.pem")), &issued.cert_pem)?;
    write(&dir.join(format!("{name}.key")), &issued.key_pem)?;
    Ok(TlsFiles {
        ca: "ca.pem".into(),
        cert: format!("{name}.pem").into(),
        key: format!("{name}.key").into(),
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
