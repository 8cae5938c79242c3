//! The `tandem` command: parses arguments, runs one subcommand, maps errors
//! to a message on stderr and a non-zero exit code. Thin by design: the
//! work happens in the library crates (`tandem-model`, `tandem-cib`,
//! `tandem-scheduler`); each subcommand lives in its own file under `cmd/`.

mod cmd;
mod load;

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "tandem",
    version,
    about = "Pacemaker-compatible HA cluster manager"
)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cmd::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
