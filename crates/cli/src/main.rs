//! The `tandem` command: parses arguments, runs one subcommand, maps errors
//! to a message on stderr and a non-zero exit code. Thin by design: the
//! work happens in the library crates (`tandem-model`, `tandem-cib`,
//! `tandem-scheduler`, `tandem-agents`); each subcommand lives in its own
//! file under `cmd/`. Invoked under a Pacemaker tool's name (a symlink
//! named `crm_attribute`, …) it runs that shim instead.

mod cmd;
mod load;
mod logging;

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
    let (args, json) = json_anywhere(std::env::args_os().collect());
    let cli = Cli::parse_from(args);
    if !cli.command.serves() {
        // A command whose output is piped into `head` ends quietly when
        // `head` exits, as every Unix filter does (Rust ignores SIGPIPE,
        // and a write then fails and `println!` panics). Servers keep
        // ignoring it: a peer that closes a socket must not kill them.
        // SAFETY: no other thread runs yet; SIG_DFL is a valid handler.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match cmd::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if json => {
            let error = serde_json::json!({ "error": format!("{e:#}") });
            println!("{error}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--json` is accepted anywhere on the line (`tandem --json status` as
/// well as `tandem status --json`): it is moved to the end, before a `--`
/// if there is one, where every command that prints JSON takes it.
/// Returns the arguments and whether `--json` was given.
fn json_anywhere(mut args: Vec<std::ffi::OsString>) -> (Vec<std::ffi::OsString>, bool) {
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let before = args.len();
    let mut i = 0;
    let mut kept_end = end;
    while i < kept_end {
        if args[i] == "--json" {
            args.remove(i);
            kept_end -= 1;
        } else {
            i += 1;
        }
    }
    let json = args.len() < before;
    if json {
        args.insert(kept_end, "--json".into());
    }
    (args, json)
}

#[cfg(test)]
mod tests {
    use super::json_anywhere;

    /// Every argument of every command says what it is in `--help`.
    #[test]
    fn every_argument_has_help() {
        fn missing(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    out.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                missing(sub, &format!("{path} {}", sub.get_name()), out);
            }
        }
        let mut out = Vec::new();
        missing(
            &<super::Cli as clap::CommandFactory>::command(),
            "tandem",
            &mut out,
        );
        assert!(out.is_empty(), "arguments without help: {out:#?}");
    }

    fn hoisted(line: &str) -> (String, bool) {
        let args = line.split(' ').map(Into::into).collect();
        let (args, json) = json_anywhere(args);
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        (args.join(" "), json)
    }

    #[test]
    fn json_moves_to_the_end_of_the_line_before_a_double_dash() {
        assert_eq!(
            hoisted("tandem --json status"),
            ("tandem status --json".into(), true)
        );
        assert_eq!(
            hoisted("tandem resource --json show vip"),
            ("tandem resource show vip --json".into(), true)
        );
        assert_eq!(
            hoisted("tandem --json agent run x -- --json"),
            ("tandem agent run x --json -- --json".into(), true)
        );
        assert_eq!(hoisted("tandem status"), ("tandem status".into(), false));
    }
}
