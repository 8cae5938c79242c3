//! The CIBs `write_cib` produces pass Pacemaker's own schema check:
//! `crm_verify` (Debian package pacemaker-cli-utils) reads every written
//! corpus CIB on stdin. Only schema findings count: most corpus cases are
//! semantically incomplete on purpose (no fencing device, say), which
//! `crm_verify` reports as errors too. Cases with bundles are skipped: the
//! model does not hold bundles, so constraints naming one point nowhere.
//! Without `crm_verify` on the machine the test says so loudly and passes.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where Debian installs `crm_verify` (often not on a user's PATH).
const CANDIDATES: [&str; 2] = ["/usr/sbin/crm_verify", "/usr/bin/crm_verify"];

fn crm_verify() -> Option<PathBuf> {
    CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// The schema complaints `crm_verify -V` prints for `cib`.
fn schema_findings(tool: &Path, cib: &str) -> Vec<String> {
    let mut child = Command::new(tool)
        .args(["-V", "--xml-pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("crm_verify starts");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(cib.as_bytes())
        .expect("crm_verify reads the CIB");
    drop(stdin);
    let output = child.wait_with_output().expect("crm_verify finishes");
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    text.lines()
        .filter(|l| l.contains("validity error") || l.contains("did not pass schema validation"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn written_corpus_cibs_pass_crm_verify_schema_validation() {
    let Some(tool) = crm_verify() else {
        eprintln!(
            "\n!!!!!!!! SKIPPED: crm_verify not found (looked at {CANDIDATES:?}); \
             install pacemaker-cli-utils to check written CIBs against Pacemaker's schema !!!!!!!!\n"
        );
        return;
    };
    let (mut valid, mut bundles) = (0, 0);
    let mut failures = Vec::new();
    for file in common::corpus_files() {
        let text = std::fs::read_to_string(&file).expect("corpus file is UTF-8");
        let Ok(cluster) = tandem_cib::parse_cib(&text) else {
            continue;
        };
        if cluster.unsupported.iter().any(|u| u.contains("bundle")) {
            bundles += 1;
            continue;
        }
        let findings = schema_findings(&tool, &tandem_cib::write_cib(&cluster));
        if findings.is_empty() {
            valid += 1;
        } else {
            let case = file.file_stem().unwrap_or_default().to_string_lossy();
            failures.push(format!(
                "{case}:\n  {}",
                findings[..findings.len().min(4)].join("\n  ")
            ));
        }
    }
    println!("crm_verify: {valid} written CIBs schema-valid, {bundles} bundle cases skipped");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
