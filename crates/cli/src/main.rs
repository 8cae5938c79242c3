//! The `tandem` command: parses arguments, runs one subcommand, maps errors
//! to a message on stderr and a non-zero exit code. Thin by design: the
//! work happens in the library crates (`tandem-model`, `tandem-cib`,
//! `tandem-scheduler`, `tandem-agents`); each subcommand lives in its own
//! file under `cmd/`. Invoked under a Pacemaker tool's name (a symlink
//! named `crm_attribute`, …) it runs that shim instead.

mod cmd;
mod load;

use clap::Parser;
use std::process::ExitCode;

// The lb allocates a few small objects per request (header maps, bodies,
// futures); mimalloc serves them in fewer instructions than glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    // Invoked as crm_attribute, crm_master, … (a symlink in the shim dir).
    if let Some(code) = cmd::agent::run_shim_if_invoked_as_one() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    match cmd::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
