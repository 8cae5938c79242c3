//! `tandem config ...`: configuration file tools. `convert` turns a
//! Pacemaker CIB (or a native file) into tandem's native TOML.

use crate::load::{load_cluster, output_format, warn_unsupported, Format};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

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
    Show(super::status::Conn),
    /// Validate FILE and commit it to the running cluster atomically (fails
    /// with a conflict if the configuration changed meanwhile).
    Apply {
        file: PathBuf,
        #[command(flatten)]
        conn: super::status::Conn,
    },
}

pub fn run(command: ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Convert { from, to } => convert(from, to),
        ConfigCommand::Show(conn) => super::config_show(&conn),
        ConfigCommand::Apply { file, conn } => super::config_apply(&conn, &file),
    }
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
