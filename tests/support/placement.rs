//! Placement comparison, delegated to the corpus' own `placement.py`.
//!
//! `placement.py compare-dirs EXPECTED ACTUAL -q` runs once over the whole
//! output directory. With `-q` it prints one tab-separated line per case
//! that does not match (`NAME\tDIFFER\tdiffs`, `NAME\tERROR\tmessage`,
//! `NAME\tMISSING`) and a final `# match=.. differ=.. missing=.. total=..`
//! line; a case it does not mention matched. Exit status 0 or 1 is a
//! verdict, anything else is a failure of the tool itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// What `placement.py` said about a case it mentioned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Placements differ; the text lists the differences.
    Differ(String),
    /// One of the two documents could not be read.
    Error(String),
    /// No output file for this case (we wrote none).
    Missing,
}

/// Runs `python3 placement.py compare-dirs expected actual -q` and returns
/// the verdict for every case it mentioned (unmentioned cases matched).
pub fn compare_dirs(
    placement_py: &Path,
    expected_dir: &Path,
    actual_dir: &Path,
) -> Result<BTreeMap<String, Verdict>, String> {
    let output = Command::new("python3")
        .arg(placement_py)
        .arg("compare-dirs")
        .arg(expected_dir)
        .arg(actual_dir)
        .arg("-q")
        .output()
        .map_err(|e| format!("cannot run python3 {}: {e}", placement_py.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0 | 1) => parse_compare_output(&stdout),
        _ => Err(format!(
            "placement.py compare-dirs failed ({}):\n{stderr}{stdout}",
            output.status
        )),
    }
}

/// Reads `compare-dirs -q` output. Fails if the closing totals line is
/// absent (a truncated or changed output format).
pub fn parse_compare_output(stdout: &str) -> Result<BTreeMap<String, Verdict>, String> {
    let mut verdicts = BTreeMap::new();
    let mut saw_totals = false;
    for line in stdout.lines() {
        if line.starts_with("# match=") {
            saw_totals = true;
            continue;
        }
        let mut fields = line.splitn(3, '\t');
        let (name, kind, text) = (fields.next(), fields.next(), fields.next().unwrap_or(""));
        let verdict = match kind {
            Some("DIFFER") => Verdict::Differ(text.to_string()),
            Some("ERROR") => Verdict::Error(text.to_string()),
            Some("MISSING") => Verdict::Missing,
            _ => return Err(format!("unexpected placement.py output line: {line:?}")),
        };
        verdicts.insert(name.unwrap_or_default().to_string(), verdict);
    }
    if !saw_totals {
        return Err(format!("placement.py printed no totals line:\n{stdout}"));
    }
    Ok(verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmentioned_cases_are_absent_and_kinds_are_read() {
        let out = "a\tDIFFER\tresources[x]: expected {}, got {\"Started\": [\"n1\"]}\n\
                   b\tMISSING\n\
                   c\tERROR\tc.summary: no revised section\n\
                   # match=1 differ=2 missing=1 total=4\n";
        let verdicts = parse_compare_output(out).unwrap();
        assert_eq!(verdicts.len(), 3);
        assert!(matches!(&verdicts["a"], Verdict::Differ(t) if t.starts_with("resources[x]")));
        assert_eq!(verdicts["b"], Verdict::Missing);
        assert!(matches!(&verdicts["c"], Verdict::Error(_)));
    }

    #[test]
    fn output_without_totals_or_with_unknown_lines_is_rejected() {
        assert!(parse_compare_output("a\tDIFFER\tx\n").is_err());
        assert!(parse_compare_output("a\tMATCH\n# match=1 differ=0 missing=0 total=1\n").is_err());
    }
}
