//! `tandem node add|remove`: membership changes at run time, made by the
//! DC (`POST /node/add|remove`). `add` then writes what the new node needs
//! into DIR, as `cluster join` would receive it: its settings file (with
//! `joining = true`, so it waits to be replicated to instead of starting a
//! group of its own) and, when the CA key is there, its certificate.
//! `remove` drops the node from DIR's `admin.toml` endpoints.

use super::cluster::{files_of, issue, write};
use super::status::{call, Conn};
use anyhow::{bail, Context, Result};
use hyper::Method;
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tandem_daemon::membership::NodeChanged;
use tandem_daemon::{AdminFile, Authority, DaemonConfig};

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// The new node's name.
    pub name: String,
    /// Its Raft transport address, IP:PORT.
    pub addr: String,
    /// Its admin API address, IP:PORT (default: its port plus the offset
    /// the other members' API ports have).
    #[arg(long)]
    pub api: Option<String>,
    /// A witness: votes, never DC, runs no resources.
    #[arg(long)]
    pub witness: bool,
    /// The cluster's files (ca.pem, ca.key, the nodes' settings): the new
    /// node's settings and certificate are written here.
    #[arg(long, default_value = "tandem-cluster")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(clap::Args, Debug)]
pub struct RemoveArgs {
    /// The node to remove.
    pub name: String,
    /// Allow leaving fewer than three voters, or voters that make no
    /// quorum among those heard (never the last data node).
    #[arg(long)]
    pub force: bool,
    /// Where `admin.toml` lists the API endpoints (the node's is dropped).
    #[arg(long, default_value = "tandem-cluster")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub conn: Conn,
}

pub fn add(args: &AddArgs) -> Result<()> {
    let addr: SocketAddr = args
        .addr
        .parse()
        .with_context(|| format!("{:?} is not IP:PORT", args.addr))?;
    let api = match &args.api {
        Some(api) => api.clone(),
        None => default_api(&args.conn, addr)?,
    };
    let body = json!({ "name": args.name, "addr": args.addr, "api": api, "witness": args.witness });
    let answer: NodeChanged =
        serde_json::from_value(call(&args.conn, Method::POST, "/node/add", Some(body))?)?;
    let files = write_node_files(&args.dir, &answer)?;
    if !args.witness {
        update_endpoints(&args.dir, |e| e.push(api.clone()))?;
    }
    if args.conn.json {
        let mut doc = serde_json::to_value(&answer)?;
        doc["settings"] = json!(files.settings);
        doc["certificate"] = json!(files.certificate);
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!(
        "Added {} (id {}) at {}: a learner now, a voter once it has caught up.",
        answer.node.name, answer.node.id, args.addr
    );
    let run = if args.witness { "witness" } else { "daemon" };
    println!(
        "Its settings: {}; start it: tandem {run} --config {}",
        files.settings.display(),
        files.settings.display()
    );
    match &files.certificate {
        Some(cert) => println!("Its certificate: {}", cert.display()),
        None => println!(
            "No CA key in {}: issue its certificate ({}.pem/.key, role node) where ca.key is kept, \
             e.g. run this command there with --dir, before starting it.",
            args.dir.display(),
            answer.node.name
        ),
    }
    Ok(())
}

pub fn remove(args: &RemoveArgs) -> Result<()> {
    let body = json!({ "name": args.name, "force": args.force });
    let answer: NodeChanged =
        serde_json::from_value(call(&args.conn, Method::POST, "/node/remove", Some(body))?)?;
    update_endpoints(&args.dir, |e| e.retain(|a| *a != answer.node.api))?;
    if args.conn.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    println!(
        "Removed {} (id {}); voters now: {}",
        answer.node.name,
        answer.node.id,
        answer.voters.join(", ")
    );
    for w in &answer.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

/// The new node's API address: its IP, and its port plus the offset a
/// current voter's API port has from its Raft port.
fn default_api(conn: &Conn, addr: SocketAddr) -> Result<String> {
    let view = call(conn, Method::GET, "/quorum", None)?;
    let offset = view["voters"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|v| {
            let raft: SocketAddr = v["addr"].as_str()?.parse().ok()?;
            let api: SocketAddr = v["api"].as_str()?.parse().ok()?;
            Some(api.port() as i32 - raft.port() as i32)
        })
        .context("cannot derive the API port from the other members; give --api IP:PORT")?;
    let port = u16::try_from(addr.port() as i32 + offset)
        .ok()
        .filter(|p| *p != 0)
        .context("the derived API port is out of range; give --api IP:PORT")?;
    Ok(SocketAddr::new(addr.ip(), port).to_string())
}

/// What `add` wrote.
struct Written {
    settings: PathBuf,
    certificate: Option<PathBuf>,
}

/// `DIR/NAME.toml` (joining; cluster name, timing, margin and agent dirs
/// copied from another member's settings file in DIR when there is one)
/// and, with `DIR/ca.key`, the node certificate.
fn write_node_files(dir: &Path, answer: &NodeChanged) -> Result<Written> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let me = &answer.node;
    let mut config = DaemonConfig::new(
        "tandem",
        me.id,
        PathBuf::from(format!("{}-data", me.name)),
        (me.addr.parse()?, me.api.parse()?),
        files_of(&me.name),
        answer.members.clone(),
    );
    if let Some(like) = sibling_settings(dir, answer) {
        config.cluster = like.cluster;
        config.timing = like.timing;
        config.lease_margin_ms = like.lease_margin_ms;
        config.agents = like.agents;
    }
    config.joining = true;
    let settings = dir.join(format!("{}.toml", me.name));
    write(&settings, &config.to_toml())?;
    let ca_key = dir.join("ca.key");
    let certificate = if ca_key.exists() {
        let read = |p: &Path| {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
        };
        let ca = Authority::load(&read(&dir.join("ca.pem"))?, &read(&ca_key)?)?;
        issue(&ca, dir, &me.name, "node")?;
        Some(dir.join(format!("{}.pem", me.name)))
    } else {
        None
    };
    Ok(Written {
        settings,
        certificate,
    })
}

/// Another member's settings file in DIR, to take shared settings from.
fn sibling_settings(dir: &Path, answer: &NodeChanged) -> Option<DaemonConfig> {
    answer
        .members
        .iter()
        .filter(|m| m.id != answer.node.id)
        .find_map(|m| {
            let text = std::fs::read_to_string(dir.join(format!("{}.toml", m.name))).ok()?;
            toml::from_str(&text).ok()
        })
}

/// Edits `DIR/admin.toml`'s endpoints, if that file exists.
fn update_endpoints(dir: &Path, edit: impl FnOnce(&mut Vec<String>)) -> Result<()> {
    let path = dir.join("admin.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let mut admin: AdminFile =
        toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    edit(&mut admin.endpoints);
    admin.endpoints.dedup();
    if admin.endpoints.is_empty() {
        bail!("{} would list no endpoint; left as it was", path.display());
    }
    write(&path, &toml::to_string_pretty(&admin)?)
}
