//! Reads every CIB of Pacemaker's scheduler regression corpus (kept outside
//! the repository, GPL test data) and requires each to parse, apart from the
//! cases listed in `EXPECTED_FAILURES` with the reason.

mod common;

use common::corpus_files;
use std::fs;

/// Corpus cases that are expected not to parse, with why.
const EXPECTED_FAILURES: &[(&str, &str)] = &[];

/// `cases.tsv` rows: (case, n_primitives, n_top_resources, features).
fn case_table() -> Vec<(String, usize, usize, String)> {
    let path = common::corpus_dir().join("../cases.tsv");
    let table =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{} is missing ({e})", path.display()));
    table
        .lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let count = |i: usize| cols[i].parse::<usize>().expect("a count");
            (cols[0].to_owned(), count(2), count(3), cols[7].to_owned())
        })
        .collect()
}

/// The corpus table counts primitives and top-level resources (templates
/// included) from the XML; without bundles (which we skip) our model must
/// hold the same.
#[test]
fn resource_counts_match_the_corpus_table() {
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for (case, primitives, top, features) in case_table() {
        if features.split(',').any(|f| f == "bundle") {
            continue;
        }
        let text = common::corpus_case(&case);
        let config = tandem_cib::parse_cib(&text).expect("parses").config;
        let ours = config
            .resources
            .iter()
            .map(|r| r.primitives().len())
            .sum::<usize>();
        let our_top = config.resources.len() + config.templates.len();
        if (ours, our_top) != (primitives, top) {
            mismatches.push(format!(
                "{case}: primitives {ours} vs {primitives}, top-level {our_top} vs {top}"
            ));
        }
        checked += 1;
    }
    println!("resource counts checked on {checked} cases");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn every_corpus_cib_parses_except_the_listed_ones() {
    let mut parsed = 0;
    let mut with_unsupported = 0;
    let mut with_execution_date = 0;
    let mut failures = Vec::new();
    for file in corpus_files() {
        let case = file.file_stem().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&file).expect("corpus file is UTF-8");
        let expected_to_fail = EXPECTED_FAILURES.iter().any(|(name, _)| *name == case);
        match (tandem_cib::parse_cib(&text), expected_to_fail) {
            (Ok(cluster), false) => {
                parsed += 1;
                with_unsupported += usize::from(!cluster.unsupported.is_empty());
                with_execution_date += usize::from(cluster.status.execution_date.is_some());
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
    // The corpus README: 51 cases here set `execution-date` on <cib>.
    assert_eq!(with_execution_date, 51);
}
