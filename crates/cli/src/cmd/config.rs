//! `tandem config ...`: configuration file tools (`convert` between a
//! Pacemaker CIB and tandem's native TOML, either way) and the running
//! cluster's configuration: `show`/`export` (TOML or CIB), `plan` (diff and the scheduler's
//! preview, changes nothing), `apply`/`import` (validated, committed with
//! the version the file was exported at, the same preview printed).
//!
//! An exported file says which configuration version it was taken from
//! (a first comment line in TOML, the epoch of a CIB that tandem wrote),
//! so applying it after someone else changed the configuration is refused
//! instead of silently undoing their change (Pacemaker refuses an older
//! CIB epoch the same way); so is a file that would delete most of what
//! runs. `--force` overrides both.

use super::status::{call, print_summary, Conn};
use crate::load::{detect, load_cluster, output_format, warn_unsupported, Format};
use anyhow::{bail, Context, Result};
use hyper::Method;
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// Convert a cluster file between formats (CIB XML ↔ native TOML).
    Convert {
        /// Input: a Pacemaker CIB (.xml) or a tandem config (.toml).
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Output path; its extension picks the format (.toml or .xml).
        /// `-` for stdout (TOML).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Print the running cluster's configuration.
    Show(Conn),
    /// Print the running configuration as tandem TOML or as a Pacemaker
    /// CIB (XML, for Pacemaker's tools: crm_verify, crm_simulate, cibadmin).
    Export {
        /// `toml` (tandem's) or `cib` (Pacemaker's XML).
        #[arg(long, value_enum, default_value_t = ExportFormat::Toml)]
        format: ExportFormat,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show what applying FILE would change: the diff against the running
    /// configuration and the scheduler's preview. Changes nothing.
    Plan {
        /// The configuration to compare (tandem TOML, or a Pacemaker CIB).
        file: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Validate FILE (TOML, or a CIB converted) and commit it atomically.
    /// Refused if the configuration changed since FILE was exported, or if
    /// it would delete most resources, unless --force. On a terminal, shows
    /// the plan and asks first.
    Apply(ApplyArgs),
    /// The same as apply (pcs' name).
    Import(ApplyArgs),
}

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// The configuration to commit (tandem TOML, or a Pacemaker CIB).
    file: PathBuf,
    /// Apply even if the configuration changed since FILE was exported
    /// (their change is undone) or FILE deletes most resources.
    #[arg(long)]
    force: bool,
    /// Do not ask on a terminal.
    #[arg(long, short = 'y')]
    yes: bool,
    #[command(flatten)]
    conn: Conn,
}

/// What `config export` writes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Toml,
    Cib,
}

pub fn run(command: ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Convert { from, to } => convert(from, to),
        ConfigCommand::Show(conn) => export(&conn, ExportFormat::Toml),
        ConfigCommand::Export { format, conn } => export(&conn, format),
        ConfigCommand::Plan { file, conn } => plan(&conn, &file),
        ConfigCommand::Apply(args) | ConfigCommand::Import(args) => apply(&args),
    }
}

fn export(conn: &Conn, format: ExportFormat) -> Result<()> {
    let mut doc = call(conn, Method::GET, "/config", None)?;
    // `GET /config` answers what a `PUT /config` would send back.
    let version = doc["expected_version"].as_u64().unwrap_or(0);
    let text = exported(doc["text"].as_str().unwrap_or(""), version, format)?;
    if conn.json {
        doc["text"] = json!(text);
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{text}");
    }
    Ok(())
}

/// The running configuration (the daemon keeps TOML) at `version`, in
/// `format`, saying which version it is.
fn exported(toml: &str, version: u64, format: ExportFormat) -> Result<String> {
    match format {
        ExportFormat::Toml => Ok(format!("{}{}", version_line(version), unmarked(toml))),
        ExportFormat::Cib => {
            let cluster = tandem_model::native::parse_toml(toml)
                .context("the running configuration does not parse")?;
            Ok(tandem_cib::write_cib_at_version(&cluster, version))
        }
    }
}

/// How an exported TOML file begins.
const VERSION_MARK: &str = "# tandem: exported at config version ";

fn version_line(version: u64) -> String {
    format!("{VERSION_MARK}{version}; `config apply` refuses this file once the configuration changed (--force overrides)\n")
}

/// `text` without the version lines an export added.
fn unmarked(text: &str) -> String {
    text.lines()
        .filter(|line| !line.starts_with(VERSION_MARK))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// The configuration version a file was exported at, if it says.
fn based_on(format: Format, text: &str) -> Option<u64> {
    match format {
        Format::NativeToml => text.lines().find_map(|line| {
            let rest = line.strip_prefix(VERSION_MARK)?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        }),
        Format::CibXml => tandem_cib::tandem_version(text),
    }
}

/// FILE's text and format.
fn read(file: &Path) -> Result<(String, Format)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let format = detect(file, &text);
    Ok((text, format))
}

/// FILE as a native TOML document, validated; a CIB is converted.
fn document(file: &Path) -> Result<String> {
    let (text, format) = read(file)?;
    document_of(file, &text, format)
}

fn document_of(file: &Path, text: &str, format: Format) -> Result<String> {
    let cluster = match format {
        Format::NativeToml => {
            tandem_model::native::parse_toml(text)
                .with_context(|| format!("{}: rejected, nothing changed", file.display()))?;
            return Ok(unmarked(text));
        }
        Format::CibXml => tandem_cib::parse_cib(text)
            .with_context(|| format!("{}: rejected, nothing changed", file.display()))?,
    };
    warn_unsupported(file, &cluster);
    Ok(tandem_model::native::to_toml(&cluster))
}

fn plan(conn: &Conn, file: &Path) -> Result<()> {
    let text = document(file)?;
    let plan = call(conn, Method::POST, "/plan", Some(json!({ "text": text })))?;
    if conn.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(());
    }
    match plan["diff"].as_str() {
        Some("") | None => println!(
            "No change to the running configuration (version {}).",
            plan["config_version"]
        ),
        Some(diff) => print!("{diff}"),
    }
    print_summary(&plan);
    Ok(())
}

fn apply(args: &ApplyArgs) -> Result<()> {
    let (conn, file) = (&args.conn, args.file.as_path());
    let (raw, format) = read(file)?;
    let text = document_of(file, &raw, format)?;
    let running = call(conn, Method::GET, "/config", None)?;
    let now = running["expected_version"].as_u64().unwrap_or(0);
    let base = based_on(format, &raw);
    if let (Some(base), false) = (base, args.force) {
        if base != now {
            bail!(
                "{} was exported at config version {base}; the configuration is at version {now} now: \
                 applying it would undo what changed since. Export it again and redo your change \
                 (`tandem config plan {}` shows the difference), or --force to replace it anyway; nothing changed",
                file.display(),
                file.display()
            );
        }
    }
    if !args.force {
        wipe_refused(running["text"].as_str().unwrap_or(""), &text, file)?;
    }
    let plan = call(conn, Method::POST, "/plan", Some(json!({ "text": text })))?;
    let asks = !args.yes
        && !conn.json
        && std::io::stdin().is_terminal()
        && std::io::stdout().is_terminal();
    if asks && !confirmed(&plan)? {
        bail!("not applied; nothing changed");
    }
    // The version the file was based on, so that a change made meanwhile
    // is refused by the cluster itself, not only by the check above.
    let expected = match (base, args.force) {
        (Some(base), false) => base,
        _ => plan["config_version"].as_u64().unwrap_or(now),
    };
    let body = json!({ "expected_version": expected, "text": text });
    let mut answer = call(conn, Method::PUT, "/config", Some(body))?;
    if conn.json {
        answer["plan"] = plan;
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!(
            "applied {} (config version {})",
            file.display(),
            answer["config_version"]
        );
        print_summary(&plan);
    }
    Ok(())
}

/// Refuses a document that would delete every resource, or more than half
/// of them where there are four or more: an empty or truncated file is a
/// likelier cause than an intent.
fn wipe_refused(running: &str, new: &str, file: &Path) -> Result<()> {
    let ids = |text: &str| -> Vec<String> {
        tandem_model::native::parse_toml(text)
            .map(|c| {
                c.config
                    .resources
                    .iter()
                    .map(|r| r.id().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (before, after) = (ids(running), ids(new));
    let deleted: Vec<&String> = before.iter().filter(|id| !after.contains(id)).collect();
    let wipes = !before.is_empty() && after.is_empty();
    let most = before.len() >= 4 && deleted.len() * 2 > before.len();
    if wipes || most {
        let names: Vec<&str> = deleted.iter().take(8).map(|s| s.as_str()).collect();
        let more = deleted.len().saturating_sub(names.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        bail!(
            "{} would delete {} of the {} resources ({}{more}); --force if that is what you want; nothing changed",
            file.display(),
            deleted.len(),
            before.len(),
            names.join(", ")
        );
    }
    Ok(())
}

/// Shows the plan and asks whether to apply it.
fn confirmed(plan: &serde_json::Value) -> Result<bool> {
    match plan["diff"].as_str() {
        Some("") | None => println!("No change to the configuration text."),
        Some(diff) => print!("{diff}"),
    }
    print_summary(plan);
    print!("Apply this to the cluster? [y/N] ");
    std::io::Write::flush(&mut std::io::stdout())?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn convert(from: PathBuf, to: PathBuf) -> Result<()> {
    let cluster = load_cluster(&from)?;
    warn_unsupported(&from, &cluster);
    let to_stdout = to.as_os_str() == "-";
    let format = if to_stdout {
        Format::NativeToml
    } else {
        output_format(&to)?
    };
    let text = match format {
        Format::NativeToml => tandem_model::native::to_toml(&cluster),
        Format::CibXml => tandem_cib::write_cib(&cluster),
    };
    if to_stdout {
        print!("{text}");
    } else {
        std::fs::write(&to, text).with_context(|| format!("cannot write {}", to.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNING: &str = "[[node]]\nname = \"n1\"\n\n[[resource]]\nid = \"vip\"\n\
                           agent = \"ocf:heartbeat:IPaddr2\"\nparams = { ip = \"192.0.2.10\" }\n";

    #[test]
    fn cib_export_is_the_running_toml_as_a_cib_that_reads_back_the_same() {
        let xml = exported(RUNNING, 7, ExportFormat::Cib).unwrap();
        assert!(xml.contains("validate-with=\"pacemaker-3."), "{xml}");
        let from_cib = tandem_cib::parse_cib(&xml).unwrap();
        let from_toml = tandem_model::native::parse_toml(RUNNING).unwrap();
        assert_eq!(from_cib.config, from_toml.config);
        assert_eq!(based_on(Format::CibXml, &xml), Some(7));
    }

    #[test]
    fn an_exported_file_says_its_version_once_and_reads_back_as_written() {
        let toml = exported(RUNNING, 7, ExportFormat::Toml).unwrap();
        assert_eq!(toml, format!("{}{RUNNING}", version_line(7)));
        assert_eq!(based_on(Format::NativeToml, &toml), Some(7));
        // Applied as exported, then exported again: one line, the newer.
        let again = exported(&unmarked(&toml), 8, ExportFormat::Toml).unwrap();
        assert_eq!(again, format!("{}{RUNNING}", version_line(8)));
        assert_eq!(unmarked(&toml), RUNNING);
        // Files tandem did not export say nothing.
        assert_eq!(based_on(Format::NativeToml, RUNNING), None);
        let pacemakers =
            "<cib epoch=\"42\" admin_epoch=\"0\" update-client=\"cibadmin\"><configuration/></cib>";
        assert_eq!(based_on(Format::CibXml, pacemakers), None);
    }

    #[test]
    fn a_file_that_deletes_every_or_most_resources_is_refused() {
        let resources = |ids: &[&str]| -> String {
            ids.iter()
                .map(|id| {
                    format!("[[resource]]\nid = \"{id}\"\nagent = \"ocf:heartbeat:Dummy\"\n\n")
                })
                .collect()
        };
        let file = Path::new("f.toml");
        let four = resources(&["a", "b", "c", "d"]);
        assert!(wipe_refused(&four, "", file).is_err());
        let err = wipe_refused(&four, &resources(&["a"]), file).unwrap_err();
        assert!(
            err.to_string()
                .contains("would delete 3 of the 4 resources (b, c, d)"),
            "{err}"
        );
        // Half, or a small configuration losing some: an edit.
        assert!(wipe_refused(&four, &resources(&["a", "b"]), file).is_ok());
        let two = resources(&["a", "b"]);
        assert!(wipe_refused(&two, &resources(&["a"]), file).is_ok());
        assert!(wipe_refused(&two, "", file).is_err());
        assert!(wipe_refused("", "", file).is_ok());
    }

    #[test]
    fn convert_writes_a_cib_for_an_xml_destination() {
        let dir = std::env::temp_dir().join(format!("tandem-convert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (toml, xml) = (dir.join("in.toml"), dir.join("out.xml"));
        std::fs::write(&toml, RUNNING).unwrap();
        convert(toml.clone(), xml.clone()).unwrap();
        let cluster = tandem_cib::parse_cib(&std::fs::read_to_string(&xml).unwrap()).unwrap();
        assert_eq!(cluster.config.resources[0].id(), "vip");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
