//! Reads every CIB of Pacemaker's scheduler regression corpus (kept outside
//! the repository, GPL test data) and requires each to parse, apart from the
//! cases listed in `EXPECTED_FAILURES` with the reason.

mod common;

use common::corpus_files;
use std::fs;

/// Corpus cases that are expected not to parse, with why.
const EXPECTED_FAILURES: &[(&str, &str)] = &[];

#[test]
fn every_corpus_cib_parses_except_the_listed_ones() {
    let mut parsed = 0;
    let mut with_unsupported = 0;
    let mut failures = Vec::new();
    for file in corpus_files() {
        let case = file.file_stem().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&file).expect("corpus file is UTF-8");
        let expected_to_fail = EXPECTED_FAILURES.iter().any(|(name, _)| *name == case);
        match (tandem_cib::parse_cib(&text), expected_to_fail) {
            (Ok(cluster), false) => {
                parsed += 1;
                with_unsupported += usize::from(!cluster.unsupported.is_empty());
            }
            (Ok(_), true) => failures.push(format!(
                "{case}: parses now; drop it from EXPECTED_FAILURES"
            )),
            (Err(e), false) => failures.push(format!("{case}: {e}")),
            (Err(_), true) => {}
        }
    }
    println!("corpus: {parsed} parsed, {with_unsupported} reported unsupported features");
    assert!(
        failures.is_empty(),
        "{} cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
