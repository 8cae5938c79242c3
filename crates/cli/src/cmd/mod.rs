//! One file per subcommand, behind one [`Command`] enum.

pub mod agent;
mod config;
mod explain;
mod simulate;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compute what the scheduler would do with a cluster snapshot and print
    /// it the way `crm_simulate -S` does.
    Simulate(simulate::Args),
    /// Show where one resource runs before and after the transition, and why.
    Explain(explain::Args),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Run resource and fence agents on this node; install the Pacemaker
    /// CLI shims and the built-in demo agents.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Simulate(args) => simulate::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Config(c) => config::run(c),
        Command::Agent(c) => agent::run(c),
    }
}
