//! One file per subcommand, behind one [`Command`] enum.

mod config;
mod explain;
mod lb;
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
    /// Run or inspect the traffic distribution layer (L4/L7 load balancer).
    #[command(subcommand)]
    Lb(lb::LbCommand),
}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Simulate(args) => simulate::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Config(c) => config::run(c),
        Command::Lb(c) => lb::run(c),
    }
}
