//! The Pacemaker regression corpus as an acceptance test.
//!
//! Parses and schedules every scored case of `../shared/pcmk-scheduler`,
//! writes each revised placement to `TARGET/corpus-out/NAME.json`, lets the
//! corpus' `placement.py compare-dirs` judge them all in one run, compares
//! Transition Summary actions for the matching cases, and prints a table per
//! tier. It fails if the corpus is missing, if any case panics or hangs, or
//! if a case listed in `tests/corpus/passing.txt` no longer matches.
//!
//! Outputs: `TARGET/corpus-passing.txt` (matching names, the input of
//! `scripts/update-corpus-baseline`) and `TARGET/corpus-report.tsv` (one
//! line per case with the reason it did not match).
//!
//! Knobs: `TANDEM_CORPUS=substring` runs only cases whose name contains it
//! (the passing list is then not written); `TANDEM_CORPUS_TIMEOUT_SECS`
//! (default 60) is the time limit per case; `TANDEM_CORPUS_DIR` moves the
//! corpus.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};
use tandem_tests::corpus::{Case, Corpus};
use tandem_tests::placement::compare_dirs;
use tandem_tests::report::{self, Classified, Outcome};
use tandem_tests::run::{run_all, CaseRun, RunResult};
use tandem_tests::summary::expected_actions;
use tandem_tests::{target_dir, workspace_root};

/// Prints to the real stdout, past libtest's output capture: the tier table
/// is the point of this test, so it shows on every run, passing or not.
macro_rules! show {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

const BASELINE: &str = "tests/corpus/passing.txt";
const DEFAULT_TIMEOUT_SECS: u64 = 60;

#[test]
fn pacemaker_corpus_placements_match_and_known_passes_stay_passing() {
    let started = Instant::now();
    let corpus = Corpus::locate(&workspace_root()).unwrap_or_else(|e| panic!("{e}"));
    let filter = std::env::var("TANDEM_CORPUS")
        .ok()
        .filter(|f| !f.is_empty());
    let cases = scored_cases(&corpus, filter.as_deref());
    assert!(
        !cases.is_empty(),
        "no corpus case selected (filter {filter:?})"
    );

    let out_dir = target_dir().join("corpus-out");
    let runs = run_all(&corpus, &cases, worker_count(), case_time_limit());
    write_placements(&out_dir, &runs);
    let verdicts = compare_dirs(&corpus.placement_py(), &corpus.cases_dir(), &out_dir)
        .unwrap_or_else(|e| panic!("{e}"));
    let classified = report::classify(runs, &verdicts, |name| {
        let path = corpus.cases_dir().join(format!("{name}.summary"));
        expected_actions(&fs::read_to_string(&path).unwrap_or_default())
    });

    let (tiers, total) = report::tally(&classified);
    show!("\nPacemaker scheduler corpus ({})", corpus.root.display());
    show!("{}", report::render_table(&tiers, &total).trim_end());
    show!("(actions-match: placement matches whose Transition Summary actions match too)");
    print_failures(&classified);
    write_reports(filter.is_none(), &classified);

    let baseline_path = workspace_root().join(BASELINE);
    let baseline = report::parse_baseline(&fs::read_to_string(&baseline_path).unwrap_or_default());
    let guard = report::guard(&baseline, &classified);
    if !guard.newly_passing.is_empty() {
        const NAMES_SHOWN: usize = 20;
        let more = guard.newly_passing.len().saturating_sub(NAMES_SHOWN);
        show!(
            "\n{} case(s) now match but are not in {BASELINE}: {}{}\n\
             Run scripts/update-corpus-baseline to record them.",
            guard.newly_passing.len(),
            guard.newly_passing[..guard.newly_passing.len() - more].join(" "),
            if more > 0 {
                format!(" ... and {more} more")
            } else {
                String::new()
            }
        );
    }
    show!("corpus run took {:.1} s", started.elapsed().as_secs_f64());

    let panicked: Vec<&str> = classified
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Panic(_)))
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        guard.regressed.is_empty(),
        "{} case(s) listed in {BASELINE} no longer match:\n{}",
        guard.regressed.len(),
        regression_details(&guard.regressed, &classified)
    );
    assert!(
        panicked.is_empty(),
        "{} case(s) panicked or hung: {}",
        panicked.len(),
        panicked.join(" ")
    );
}

/// One line per regressed case: its name and why it no longer matches.
fn regression_details(regressed: &[String], classified: &[Classified]) -> String {
    const DETAIL_CHARS: usize = 300;
    let mut lines = Vec::new();
    for c in classified.iter().filter(|c| regressed.contains(&c.name)) {
        let why = match &c.outcome {
            Outcome::Differ(d) => format!("differs: {d}"),
            Outcome::Error(e) => format!("error: {e}"),
            Outcome::Panic(p) => format!("panic: {p}"),
            Outcome::Match { .. } => continue,
        };
        lines.push(format!(
            "  {}: {}",
            c.name,
            why.chars().take(DETAIL_CHARS).collect::<String>()
        ));
    }
    lines.join("\n")
}

/// The cases that are scored (`in_cts` only), narrowed by the filter.
fn scored_cases(corpus: &Corpus, filter: Option<&str>) -> Vec<Case> {
    let cases = corpus.cases().unwrap_or_else(|e| panic!("{e}"));
    let skipped: Vec<&str> = cases
        .iter()
        .filter(|c| !c.in_cts)
        .map(|c| c.name.as_str())
        .collect();
    show!("not scored (in_cts=no): {}", skipped.join(" "));
    cases
        .into_iter()
        .filter(|c| c.in_cts && filter.is_none_or(|f| c.name.contains(f)))
        .collect()
}

/// Writes `NAME.json` for every scheduled case into a fresh directory, so
/// no stale output from an earlier run is judged.
fn write_placements(out_dir: &Path, runs: &[CaseRun]) {
    let _ = fs::remove_dir_all(out_dir);
    fs::create_dir_all(out_dir).unwrap_or_else(|e| panic!("{}: {e}", out_dir.display()));
    for run in runs {
        if let RunResult::Scheduled { placement, .. } = &run.result {
            let path = out_dir.join(format!("{}.json", run.case.name));
            let text = serde_json::to_string_pretty(placement).expect("JSON values serialise");
            fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

/// Prints panics in full and a sample of the other failures.
fn print_failures(classified: &[Classified]) {
    const SAMPLE: usize = 5;
    const PANIC_SAMPLE: usize = 20;
    let panics: Vec<_> = classified
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Panic(p) => Some((c, p)),
            _ => None,
        })
        .collect();
    for (c, message) in panics.iter().take(PANIC_SAMPLE) {
        show!("PANIC {}: {message}", c.name);
    }
    if panics.len() > PANIC_SAMPLE {
        show!("... and {} more panics", panics.len() - PANIC_SAMPLE);
    }
    let errors: Vec<_> = classified
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Error(e) => Some((c, e)),
            _ => None,
        })
        .collect();
    for (c, e) in errors.iter().take(SAMPLE) {
        show!("error {}: {e}", c.name);
    }
    if errors.len() > SAMPLE {
        show!("... and {} more errors", errors.len() - SAMPLE);
    }
    let mut slowest: Vec<&Classified> = classified.iter().collect();
    slowest.sort_by_key(|c| std::cmp::Reverse(c.elapsed));
    let slowest: Vec<String> = slowest
        .iter()
        .take(3)
        .map(|c| format!("{} {} ms", c.name, c.elapsed.as_millis()))
        .collect();
    show!("slowest: {}", slowest.join(", "));
}

/// Writes the report, and the passing list unless only some cases ran.
fn write_reports(all_cases: bool, classified: &[Classified]) {
    let target = target_dir();
    let report_path = target.join("corpus-report.tsv");
    let _ = fs::write(&report_path, report::render_report_tsv(classified));
    show!("per-case report: {}", report_path.display());
    if all_cases {
        let passing: BTreeSet<String> = report::matching_names(classified);
        let text: String = passing.iter().map(|n| format!("{n}\n")).collect();
        let path = target.join("corpus-passing.txt");
        fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        show!("passing list: {}", path.display());
    }
}

fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

fn case_time_limit() -> Duration {
    let secs = std::env::var("TANDEM_CORPUS_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    Duration::from_secs(secs)
}
