//! Classifying case runs, tallying them per tier, and the regression guard.
//!
//! A case's [`Outcome`] combines our run ([`RunResult`]) with what
//! `placement.py` said ([`Verdict`]); for cases whose placement matches, the
//! Transition Summary actions are compared too.

use crate::placement::Verdict;
use crate::run::{CaseRun, RunResult};
use crate::summary::PlannedAction;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

/// The final classification of one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Same final placement as Pacemaker; `actions_match` says whether the
    /// Transition Summary actions are the same too.
    Match {
        actions_match: bool,
    },
    Differ(String),
    Error(String),
    Panic(String),
}

/// One case after classification.
#[derive(Clone, Debug)]
pub struct Classified {
    pub name: String,
    pub tier: u8,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// Combines each run with `placement.py`'s verdict and, for placement
/// matches, compares actions with `expected_actions(case name)`.
pub fn classify(
    runs: Vec<CaseRun>,
    verdicts: &BTreeMap<String, Verdict>,
    expected_actions: impl Fn(&str) -> Vec<PlannedAction>,
) -> Vec<Classified> {
    runs.into_iter()
        .map(|run| {
            let name = run.case.name;
            let outcome = match run.result {
                RunResult::Error(e) => Outcome::Error(e),
                RunResult::Panic(e) => Outcome::Panic(e),
                RunResult::Scheduled { actions, .. } => match verdicts.get(&name) {
                    None => Outcome::Match {
                        actions_match: actions == expected_actions(&name),
                    },
                    Some(Verdict::Differ(d)) => Outcome::Differ(d.clone()),
                    Some(Verdict::Error(e)) => Outcome::Differ(format!("placement.py: {e}")),
                    Some(Verdict::Missing) => {
                        Outcome::Error("placement.py did not find our output".into())
                    }
                },
            };
            Classified {
                name,
                tier: run.case.tier,
                outcome,
                elapsed: run.elapsed,
            }
        })
        .collect()
}

/// Counts for one tier (or the total).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub cases: usize,
    pub matched: usize,
    pub differ: usize,
    pub error: usize,
    pub panic: usize,
    /// Placement matches whose Transition Summary actions match too.
    pub actions_match: usize,
}

impl Tally {
    fn add(&mut self, outcome: &Outcome) {
        self.cases += 1;
        match outcome {
            Outcome::Match { actions_match } => {
                self.matched += 1;
                self.actions_match += usize::from(*actions_match);
            }
            Outcome::Differ(_) => self.differ += 1,
            Outcome::Error(_) => self.error += 1,
            Outcome::Panic(_) => self.panic += 1,
        }
    }

    pub fn percent_matched(&self) -> f64 {
        if self.cases == 0 {
            0.0
        } else {
            100.0 * self.matched as f64 / self.cases as f64
        }
    }
}

/// Tallies per tier 1..=5 (always all five rows) and the total.
pub fn tally(cases: &[Classified]) -> (BTreeMap<u8, Tally>, Tally) {
    let mut tiers: BTreeMap<u8, Tally> = (1..=5).map(|t| (t, Tally::default())).collect();
    let mut total = Tally::default();
    for case in cases {
        tiers.entry(case.tier).or_default().add(&case.outcome);
        total.add(&case.outcome);
    }
    (tiers, total)
}

/// The per-tier table as printed by the corpus test.
pub fn render_table(tiers: &BTreeMap<u8, Tally>, total: &Tally) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>14}",
        "tier", "cases", "match", "differ", "error", "panic", "% match", "actions-match"
    );
    let row = |out: &mut String, label: &str, t: &Tally| {
        let _ = writeln!(
            out,
            "{:<6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6.1}% {:>14}",
            label,
            t.cases,
            t.matched,
            t.differ,
            t.error,
            t.panic,
            t.percent_matched(),
            t.actions_match
        );
    };
    for (tier, t) in tiers {
        row(&mut out, &tier.to_string(), t);
    }
    row(&mut out, "total", total);
    out
}

/// Names of the cases whose placement matched, sorted.
pub fn matching_names(cases: &[Classified]) -> BTreeSet<String> {
    cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Match { .. }))
        .map(|c| c.name.clone())
        .collect()
}

/// Reads a baseline file: one case name per line; blank lines and `#`
/// comments are ignored.
pub fn parse_baseline(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// What the regression guard found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guard {
    /// Listed as passing but not matching now (only among the cases run).
    pub regressed: Vec<String>,
    /// Matching now but not yet listed.
    pub newly_passing: Vec<String>,
}

/// Compares this run's matches with the baseline, over the cases that ran.
pub fn guard(baseline: &BTreeSet<String>, ran: &[Classified]) -> Guard {
    let matching = matching_names(ran);
    let ran: BTreeSet<&str> = ran.iter().map(|c| c.name.as_str()).collect();
    Guard {
        regressed: baseline
            .iter()
            .filter(|n| ran.contains(n.as_str()) && !matching.contains(*n))
            .cloned()
            .collect(),
        newly_passing: matching.difference(baseline).cloned().collect(),
    }
}

/// One line per case for `target/corpus-report.tsv`:
/// name, tier, outcome, actions, milliseconds, detail.
pub fn render_report_tsv(cases: &[Classified]) -> String {
    let mut out = String::from("name\ttier\toutcome\tactions\tms\tdetail\n");
    for c in cases {
        let (outcome, actions, detail) = match &c.outcome {
            Outcome::Match { actions_match } => {
                ("match", if *actions_match { "match" } else { "differ" }, "")
            }
            Outcome::Differ(d) => ("differ", "", d.as_str()),
            Outcome::Error(e) => ("error", "", e.as_str()),
            Outcome::Panic(p) => ("panic", "", p.as_str()),
        };
        let detail = detail.replace(['\t', '\n'], " ");
        let _ = writeln!(
            out,
            "{}\t{}\t{outcome}\t{actions}\t{}\t{detail}",
            c.name,
            c.tier,
            c.elapsed.as_millis()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, tier: u8, outcome: Outcome) -> Classified {
        Classified {
            name: name.into(),
            tier,
            outcome,
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn tally_counts_each_outcome_in_its_tier_and_the_total() {
        let cases = [
            case(
                "a",
                1,
                Outcome::Match {
                    actions_match: true,
                },
            ),
            case(
                "b",
                1,
                Outcome::Match {
                    actions_match: false,
                },
            ),
            case("c", 2, Outcome::Differ("x".into())),
            case("d", 5, Outcome::Panic("boom".into())),
            case("e", 5, Outcome::Error("bad".into())),
        ];
        let (tiers, total) = tally(&cases);
        assert_eq!(tiers.len(), 5);
        assert_eq!((tiers[&1].matched, tiers[&1].actions_match), (2, 1));
        assert_eq!(tiers[&2].differ, 1);
        assert_eq!(tiers[&3], Tally::default());
        assert_eq!((tiers[&5].panic, tiers[&5].error), (1, 1));
        assert_eq!((total.cases, total.matched), (5, 2));
        assert_eq!(tiers[&1].percent_matched(), 100.0);
        let table = render_table(&tiers, &total);
        assert!(table
            .lines()
            .any(|l| l.starts_with("total") && l.contains("40.0%")));
    }

    #[test]
    fn guard_names_regressions_among_the_cases_that_ran() {
        let baseline = parse_baseline("# known\na\nb\n\nzz-not-run\n");
        let ran = [
            case(
                "a",
                1,
                Outcome::Match {
                    actions_match: false,
                },
            ),
            case("b", 1, Outcome::Differ("moved".into())),
            case(
                "c",
                1,
                Outcome::Match {
                    actions_match: true,
                },
            ),
        ];
        assert_eq!(
            guard(&baseline, &ran),
            Guard {
                regressed: vec!["b".into()],
                newly_passing: vec!["c".into()],
            }
        );
    }

    #[test]
    fn classify_treats_unmentioned_cases_as_matches() {
        use crate::corpus::Case;
        let run = |name: &str, result| CaseRun {
            case: Case {
                name: name.into(),
                tier: 1,
                crm_simulate_args: String::new(),
                in_cts: true,
            },
            result,
            elapsed: Duration::ZERO,
        };
        let scheduled = || RunResult::Scheduled {
            placement: serde_json::Value::Null,
            actions: vec![],
        };
        let verdicts = BTreeMap::from([("b".to_string(), Verdict::Differ("d".into()))]);
        let classified = classify(
            vec![
                run("a", scheduled()),
                run("b", scheduled()),
                run("c", RunResult::Error("parse".into())),
            ],
            &verdicts,
            |_| vec![],
        );
        let outcomes: Vec<_> = classified.into_iter().map(|c| c.outcome).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Match {
                    actions_match: true
                },
                Outcome::Differ("d".into()),
                Outcome::Error("parse".into()),
            ]
        );
    }
}
