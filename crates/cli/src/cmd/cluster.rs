//! `tandem cluster setup|init|join|cert`: the cluster CA (its key kept in
//! `ca.key`, mode 0600), a certificate and a settings file per node, an
//! admin certificate with `admin.toml` for the CLI, one-time join tokens,
//! and client certificates by role. `status`, `start`, `stop` and
//! `destroy` are in `service.rs`.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tandem_daemon::join::{JoinFiles, TokenEntry, Tokens};
use tandem_daemon::settings::MemberEntry;
use tandem_daemon::{AdminFile, Authority, DaemonConfig, TlsFiles};

#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Create the CA, node certificates and settings files under DIR.
    Setup(SetupArgs),
    /// Like setup, on the first node only: its certificate and settings,
    /// and a one-time join token for every other node (`cluster join`).
    Init(InitArgs),
    /// Join with a token from `cluster init`: fetches this node's
    /// certificate and settings from the init node into DIR.
    Join {
        /// The token `cluster init` printed for this node.
        #[arg(long)]
        token: String,
        /// Where to write its certificate and settings.
        #[arg(long, default_value = "tandem-cluster")]
        dir: PathBuf,
    },
    /// Issue a client certificate from the cluster CA (DIR/ca.key) and an
    /// admin file `DIR/NAME.toml` for it.
    Cert {
        /// Whose certificate: names the file DIR/NAME.toml and the
        /// certificate's subject.
        name: String,
        /// What it may do: admin (everything), operator (move, standby,
        /// cleanup, properties), read-only.
        #[arg(long, value_parser = ["admin", "operator", "read-only"])]
        role: String,
        /// The cluster's directory (with ca.key); the files go there.
        #[arg(long, default_value = "tandem-cluster")]
        dir: PathBuf,
    },
    /// The same as `tandem status`.
    Status(super::status::Conn),
    /// Start the local daemon (systemd's tandem.service when it has one).
    Start,
    /// Stop the local daemon.
    Stop,
    /// Remove this node's data dir and settings (needs --yes-i-know).
    Destroy(super::service::DestroyArgs),
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    pub setup: SetupArgs,
    /// The port the first node serves joins on (default: its Raft port
    /// plus twice the API port offset, beyond every API port).
    #[arg(long)]
    pub join_port: Option<u16>,
}

#[derive(clap::Args, Debug)]
pub struct SetupArgs {
    /// The cluster's name.
    #[arg(long)]
    pub name: String,
    /// Where to write the CA, certificates and settings files.
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
        ClusterCommand::Init(args) => init(&args),
        ClusterCommand::Join { token, dir } => join(&token, &dir),
        ClusterCommand::Cert { name, role, dir } => cert(&name, &role, &dir),
        ClusterCommand::Status(conn) => super::status::status(&conn),
        ClusterCommand::Start => super::service::start_stop("start"),
        ClusterCommand::Stop => super::service::start_stop("stop"),
        ClusterCommand::Destroy(args) => super::service::destroy(&args),
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

fn members(args: &SetupArgs) -> Result<Vec<MemberEntry>> {
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
    Ok(members)
}

/// A new CA under `dir`: `ca.pem` and its key `ca.key` (owner-only).
fn new_ca(name: &str, dir: &Path) -> Result<Authority> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca = Authority::generate(name)?;
    write(&dir.join("ca.pem"), &ca.cert_pem())?;
    write_private(&dir.join("ca.key"), &ca.key_pem())?;
    Ok(ca)
}

/// One node's settings; its certificate files are `NAME.pem`/`NAME.key`.
fn settings(name: &str, m: &MemberEntry, members: &[MemberEntry]) -> Result<DaemonConfig> {
    Ok(DaemonConfig::new(
        name,
        m.id,
        PathBuf::from(format!("{}-data", m.name)),
        (m.addr.parse()?, m.api.parse()?),
        files_of(&m.name),
        members.to_vec(),
    ))
}

/// `admin.toml` with an admin certificate, every data node an endpoint.
fn admin_file(ca: &Authority, dir: &Path, members: &[MemberEntry]) -> Result<()> {
    let admin = AdminFile {
        endpoints: members
            .iter()
            .filter(|m| !m.witness)
            .map(|m| m.api.clone())
            .collect(),
        tls: issue(ca, dir, "admin", "admin")?,
    };
    write(&dir.join("admin.toml"), &toml::to_string_pretty(&admin)?)
}

/// Writes everything; returns the node settings file paths.
pub fn setup(args: &SetupArgs) -> Result<Vec<PathBuf>> {
    let members = members(args)?;
    let ca = new_ca(&args.name, &args.dir)?;
    let mut files = Vec::new();
    for m in &members {
        issue(&ca, &args.dir, &m.name, "node")?;
        let path = args.dir.join(format!("{}.toml", m.name));
        write(&path, &settings(&args.name, m, &members)?.to_toml())?;
        files.push(path);
    }
    admin_file(&ca, &args.dir, &members)?;
    Ok(files)
}

fn init(args: &InitArgs) -> Result<()> {
    let setup = &args.setup;
    let members = members(setup)?;
    let ca = new_ca(&setup.name, &setup.dir)?;
    let first = &members[0];
    issue(&ca, &setup.dir, &first.name, "node")?;
    let raft: std::net::SocketAddr = first.addr.parse()?;
    let port = match args.join_port {
        Some(p) => p,
        None => raft
            .port()
            .checked_add(setup.api_port_offset.saturating_mul(2))
            .context("join port overflows; give --join-port")?,
    };
    let listen = std::net::SocketAddr::new(raft.ip(), port);
    let mut tokens = Tokens::default();
    let mut printed = Vec::new();
    for m in &members[1..] {
        let (hash, secret) = tandem_daemon::join::new_secret().map_err(anyhow::Error::msg)?;
        tokens.tokens.push(TokenEntry {
            hash,
            node: m.name.clone(),
            used: false,
            settings: settings(&setup.name, m, &members)?.to_toml(),
        });
        let token = tandem_daemon::join::token(&secret, &ca.cert_pem(), listen)
            .map_err(anyhow::Error::msg)?;
        printed.push((m.name.clone(), token));
    }
    write_private(
        &setup.dir.join("join-tokens.toml"),
        &toml::to_string_pretty(&tokens)?,
    )?;
    let mut config = settings(&setup.name, first, &members)?;
    config.join = Some(JoinFiles {
        listen,
        ca_key: "ca.key".into(),
        tokens: "join-tokens.toml".into(),
    });
    write(
        &setup.dir.join(format!("{}.toml", first.name)),
        &config.to_toml(),
    )?;
    admin_file(&ca, &setup.dir, &members)?;
    println!(
        "Initialized cluster {} in {}; start this node: tandem daemon --config {}",
        setup.name,
        setup.dir.display(),
        setup.dir.join(format!("{}.toml", first.name)).display()
    );
    println!("On each other node, once (the tokens work one time each):");
    for (name, token) in printed {
        println!("  {name}: tandem cluster join --token {token}");
    }
    Ok(())
}

fn join(token: &str, dir: &Path) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = rt.block_on(tandem_daemon::join::join(token))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write(&dir.join("ca.pem"), &answer.ca_pem)?;
    write(&dir.join(format!("{}.pem", answer.node)), &answer.cert_pem)?;
    write_private(&dir.join(format!("{}.key", answer.node)), &answer.key_pem)?;
    let path = dir.join(format!("{}.toml", answer.node));
    write(&path, &answer.settings)?;
    println!(
        "Joined as {}; start it: tandem daemon --config {}",
        answer.node,
        path.display()
    );
    Ok(())
}

fn cert(name: &str, role: &str, dir: &Path) -> Result<()> {
    let read = |f: &str| {
        let p = dir.join(f);
        std::fs::read_to_string(&p).with_context(|| {
            format!(
                "cannot read {} (the CA and its key, kept by cluster setup/init)",
                p.display()
            )
        })
    };
    let ca = Authority::load(&read("ca.pem")?, &read("ca.key")?)?;
    let admin: AdminFile = toml::from_str(&read("admin.toml")?).context("admin.toml")?;
    let file = AdminFile {
        endpoints: admin.endpoints,
        tls: issue(&ca, dir, name, role)?,
    };
    let path = dir.join(format!("{name}.toml"));
    write(&path, &toml::to_string_pretty(&file)?)?;
    println!(
        "issued {name} ({role}): use it with --admin {}",
        path.display()
    );
    Ok(())
}

pub(super) fn files_of(name: &str) -> TlsFiles {
    TlsFiles {
        ca: "ca.pem".into(),
        cert: format!("{name}.pem").into(),
        key: format!("{name}.key").into(),
    }
}

pub(super) fn issue(ca: &Authority, dir: &Path, name: &str, role: &str) -> Result<TlsFiles> {
    let issued = ca.issue(name, role)?;
    write(&dir.join(format!("{name}.pem")), &issued.cert_pem)?;
    write_private(&dir.join(format!("{name}.key")), &issued.key_pem)?;
    Ok(files_of(name))
}

pub(super) fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A file only its owner may read (private keys, tokens).
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
