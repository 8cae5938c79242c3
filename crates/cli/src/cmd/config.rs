//! `tandem config ...`: configuration file tools (`convert` between a
//! Pacemaker CIB and tandem's native TOML, either way) and the running
//! cluster's configuration: `show`/`export` (TOML or CIB), `plan` (diff and the scheduler's
//! preview, changes nothing), `apply`/`import` (validated, committed with
//! the version read, the same preview printed).

use super::status::{call, print_summary, Conn};
use crate::load::{detect, load_cluster, output_format, warn_unsupported, Format};
use anyhow::{Context, Result};
use hyper::Method;
use serde_json::json;
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
        #[arg(long, value_enum, default_value_t = ExportFormat::Toml)]
        format: ExportFormat,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show what applying FILE would change: the diff against the running
    /// configuration and the scheduler's preview. Changes nothing.
    Plan {
        file: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Validate FILE (TOML, or a CIB converted) and commit it atomically
    /// (fails with a conflict if the configuration changed meanwhile).
    Apply {
        file: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// The same as apply (pcs' name).
    Import {
        file: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
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
        ConfigCommand::Apply { file, conn } | ConfigCommand::Import { file, conn } => {
            apply(&conn, &file)
        }
    }
}

fn export(conn: &Conn, format: ExportFormat) -> Result<()> {
    let mut doc = call(conn, Method::GET, "/config", None)?;
    let text = exported(doc["text"].as_str().unwrap_or(""), format)?;
    if conn.json {
        doc["text"] = json!(text);
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{text}");
    }
    Ok(())
}

/// The running configuration (the daemon keeps TOML) in `format`.
fn exported(toml: &str, format: ExportFormat) -> Result<String> {
    match format {
        ExportFormat::Toml => Ok(toml.to_owned()),
        ExportFormat::Cib => {
            let cluster = tandem_model::native::parse_toml(toml)
                .context("the running configuration does not parse")?;
            Ok(tandem_cib::write_cib(&cluster))
        }
    }
}

/// FILE as a native TOML document, validated; a CIB is converted.
fn document(file: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let cluster = match detect(file, &text) {
        Format::NativeToml => {
            tandem_model::native::parse_toml(&text)
                .with_context(|| format!("{}: rejected, nothing changed", file.display()))?;
            return Ok(text);
        }
        Format::CibXml => tandem_cib::parse_cib(&text)
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

fn apply(conn: &Conn, file: &Path) -> Result<()> {
    let text = document(file)?;
    let plan = call(conn, Method::POST, "/plan", Some(json!({ "text": text })))?;
    let body = json!({ "expected_version": plan["config_version"], "text": text });
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
        let xml = exported(RUNNING, ExportFormat::Cib).unwrap();
        assert!(xml.contains("validate-with=\"pacemaker-3."), "{xml}");
        let from_cib = tandem_cib::parse_cib(&xml).unwrap();
        let from_toml = tandem_model::native::parse_toml(RUNNING).unwrap();
        assert_eq!(from_cib.config, from_toml.config);
        assert_eq!(exported(RUNNING, ExportFormat::Toml).unwrap(), RUNNING);
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
