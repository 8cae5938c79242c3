//! `tandem config ...`: configuration file tools (`convert` turns a
//! Pacemaker CIB into tandem's native TOML) and the running cluster's
//! configuration: `show`/`export`, `plan` (diff and the scheduler's
//! preview, changes nothing), `apply`/`import` (validated, committed with
//! the version read, the same preview printed).

use super::status::{call, print_summary, Conn};
use crate::load::{detect, load_cluster, output_format, warn_unsupported, Format};
use anyhow::{bail, Context, Result};
use hyper::Method;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// Convert a cluster file between formats (CIB XML → native TOML).
    Convert {
        /// Input: a Pacemaker CIB (.xml) or a tandem config (.toml).
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Output path; its extension picks the format (.toml). `-` for stdout.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Print the running cluster's configuration.
    Show(Conn),
    /// Print the running configuration in a format (toml; cib is not
    /// written yet).
    Export {
        #[arg(long, default_value = "toml", value_name = "toml|cib")]
        format: String,
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

pub fn run(command: ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Convert { from, to } => convert(from, to),
        ConfigCommand::Show(conn) => export(&conn, "toml"),
        ConfigCommand::Export { format, conn } => export(&conn, &format),
        ConfigCommand::Plan { file, conn } => plan(&conn, &file),
        ConfigCommand::Apply { file, conn } | ConfigCommand::Import { file, conn } => {
            apply(&conn, &file)
        }
    }
}

fn export(conn: &Conn, format: &str) -> Result<()> {
    if format != "toml" {
        bail!(
            "--format {format}: only toml is written today (writing CIB XML is not supported yet)"
        );
    }
    let doc = call(conn, Method::GET, "/config", None)?;
    if conn.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", doc["text"].as_str().unwrap_or(""));
    }
    Ok(())
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
        Format::CibXml => bail!("{}: writing CIB XML is not supported yet", to.display()),
    };
    if to_stdout {
        print!("{text}");
    } else {
        std::fs::write(&to, text).with_context(|| format!("cannot write {}", to.display()))?;
    }
    Ok(())
}
