//! One file per subcommand, behind one [`Command`] enum.

pub mod agent;
mod cluster;
mod config;
mod daemon;
mod demo;
mod drain;
mod explain;
mod force_single_node;
mod lb;
mod simulate;
mod status;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compute what the scheduler would do with a cluster snapshot and print
    /// it the way `crm_simulate -S` does.
    Simulate(simulate::Args),
    /// Show where one resource runs before and after the transition, and why.
    Explain(explain::Args),
    /// Work with configuration files, or the running cluster's configuration.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Run resource and fence agents on this node; install the Pacemaker
    /// CLI shims and the built-in demo agents.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Run or inspect the traffic distribution layer (L4/L7 load balancer).
    #[command(subcommand)]
    Lb(lb::LbCommand),
    /// Create a cluster: CA, certificates and per-node settings.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Run a cluster node.
    Daemon(daemon::Args),
    /// Run a witness: a voter that never becomes DC and runs no resources.
    Witness(daemon::Args),
    /// Start a real 3-node cluster on loopback and show it (`--check`: fail-over test).
    Demo(demo::Args),
    /// Nodes, quorum, DC and the planned placement (crm_mon-like).
    Status(status::Conn),
    /// Quorum and membership.
    #[command(subcommand)]
    Quorum(QuorumCommand),
    /// Node standby.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Cluster properties.
    #[command(subcommand)]
    Property(PropertyCommand),
}

#[derive(Subcommand, Debug)]
pub enum QuorumCommand {
    /// Quorum, voters and who is heard.
    Status(status::Conn),
    /// Offline disaster recovery: make this node the only voter (the
    /// daemon must be stopped; needs --yes-i-know).
    ForceSingleNode(force_single_node::Args),
}

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Put a node in standby: it keeps its vote but runs no resources.
    Standby {
        node: String,
        #[command(flatten)]
        conn: status::Conn,
    },
    /// Take a node out of standby.
    Unstandby {
        node: String,
        #[command(flatten)]
        conn: status::Conn,
    },
    /// Stop new traffic to a node on every load balancer, wait for open
    /// connections to finish (or the timeout), then put it in standby.
    Drain {
        node: String,
        /// Give up waiting after this long (e.g. 30s, 2m) and standby anyway.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        timeout: std::time::Duration,
        #[command(flatten)]
        conn: status::Conn,
    },
    /// Take a node out of standby and send it traffic again (slow start).
    Undrain {
        node: String,
        #[command(flatten)]
        conn: status::Conn,
    },
    /// Fence a node now with the configured fence devices (reboot, or
    /// power off with --off); its resources then start elsewhere.
    Fence {
        node: String,
        #[arg(long)]
        off: bool,
        #[command(flatten)]
        conn: status::Conn,
    },
}

/// `30s`, `500ms`, `2m`, `1h`, or plain seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30s, 500ms or 2m"))?;
    let ms = match unit {
        "" | "s" => n * 1000,
        "ms" => n,
        "m" | "min" => n * 60_000,
        "h" => n * 3_600_000,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use ms, s, m or h)"
            ))
        }
    };
    Ok(std::time::Duration::from_millis(ms))
}

#[derive(Subcommand, Debug)]
pub enum PropertyCommand {
    /// Set a cluster option: NAME=VALUE.
    Set {
        pair: String,
        #[command(flatten)]
        conn: status::Conn,
    },
}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Simulate(args) => simulate::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Config(c) => config::run(c),
        Command::Agent(c) => agent::run(c),
        Command::Cluster(c) => cluster::run(c),
        Command::Daemon(args) => daemon::run(args, false),
        Command::Witness(args) => daemon::run(args, true),
        Command::Demo(args) => demo::run(args),
        Command::Status(conn) => status::status(&conn),
        Command::Quorum(QuorumCommand::Status(conn)) => status::quorum(&conn),
        Command::Quorum(QuorumCommand::ForceSingleNode(args)) => force_single_node::run(&args),
        Command::Node(NodeCommand::Standby { node, conn }) => status::standby(&conn, &node, true),
        Command::Node(NodeCommand::Unstandby { node, conn }) => {
            status::standby(&conn, &node, false)
        }
        Command::Node(NodeCommand::Drain {
            node,
            timeout,
            conn,
        }) => drain::drain(&conn, &node, timeout),
        Command::Node(NodeCommand::Undrain { node, conn }) => drain::undrain(&conn, &node),
        Command::Node(NodeCommand::Fence { node, off, conn }) => status::fence(&conn, &node, off),
        Command::Property(PropertyCommand::Set { pair, conn }) => {
            status::property_set(&conn, &pair)
        }
        Command::Lb(c) => lb::run(c),
    }
}

/// `tandem config show|apply` against the running cluster.
pub(crate) fn config_show(conn: &status::Conn) -> Result<()> {
    status::config_show(conn)
}

pub(crate) fn config_apply(conn: &status::Conn, file: &std::path::Path) -> Result<()> {
    status::config_apply(conn, file)
}
