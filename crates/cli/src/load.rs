//! Reading a cluster file: Pacemaker CIB XML or tandem's native TOML,
//! chosen by extension and, failing that, by sniffing the content.

use anyhow::{bail, Context, Result};
use std::path::Path;
use tandem_model::Cluster;

/// The two input formats `tandem` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    CibXml,
    NativeToml,
}

/// Reads and parses `path`; every error names the file.
pub fn load_cluster(path: &Path) -> Result<Cluster> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    match detect(path, &text) {
        Format::CibXml => tandem_cib::parse_cib(&text)
            .with_context(|| format!("{}: not a valid Pacemaker CIB", path.display())),
        Format::NativeToml => tandem_model::native::parse_toml(&text)
            .with_context(|| format!("{}: invalid tandem config", path.display())),
    }
}

/// By extension (`.xml`, `.toml`), else by the first significant character.
pub fn detect(path: &Path, text: &str) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("xml") => Format::CibXml,
        Some(e) if e.eq_ignore_ascii_case("toml") => Format::NativeToml,
        _ if text.trim_start().starts_with('<') => Format::CibXml,
        _ => Format::NativeToml,
    }
}

/// Format for an output path, by extension only.
pub fn output_format(path: &Path) -> Result<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("toml") => Ok(Format::NativeToml),
        Some(e) if e.eq_ignore_ascii_case("xml") => Ok(Format::CibXml),
        _ => bail!(
            "{}: cannot tell the output format; use a .toml (or .xml) extension",
            path.display()
        ),
    }
}

/// "now" for a simulation: explicit, else the CIB's execution date, else the clock.
pub fn effective_now(explicit: Option<i64>, cluster: &Cluster) -> i64 {
    explicit
        .or(cluster.status.execution_date)
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        })
}

/// Reports input the model recognised but does not handle.
pub fn warn_unsupported(path: &Path, cluster: &Cluster) {
    for u in &cluster.unsupported {
        eprintln!("warning: {}: {u}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_detected_by_extension_then_content() {
        assert_eq!(detect(Path::new("a.xml"), "x = 1"), Format::CibXml);
        assert_eq!(detect(Path::new("a.TOML"), "<cib/>"), Format::NativeToml);
        assert_eq!(detect(Path::new("a.cfg"), "  <cib>"), Format::CibXml);
        assert_eq!(detect(Path::new("a"), "[cluster]"), Format::NativeToml);
    }
}
