//! In-process timing of the policy engine over the Pacemaker corpus:
//! reads every scored case into memory, then times `parse_cib` and
//! `schedule` separately over all of them (no process spawn, no file I/O in
//! the timed part). Cases the parser cannot read yet are counted, not timed.
//!
//! `cargo bench -p tandem-tests --bench corpus_schedule -- [--rounds N]`
//! (also `bench/scheduler-vs-crm_simulate --in-process`).

use std::time::{Duration, Instant};
use tandem_tests::corpus::Corpus;
use tandem_tests::date::case_now;
use tandem_tests::workspace_root;

fn main() {
    let rounds = rounds_from_args().unwrap_or_else(|e| {
        eprintln!("corpus_schedule: {e}");
        std::process::exit(2);
    });
    let corpus = Corpus::locate(&workspace_root()).unwrap_or_else(|e| {
        eprintln!("corpus_schedule: {e}");
        std::process::exit(2);
    });
    let cases: Vec<_> = corpus
        .cases()
        .unwrap_or_else(|e| {
            eprintln!("corpus_schedule: {e}");
            std::process::exit(2);
        })
        .into_iter()
        .filter(|c| c.in_cts)
        .collect();
    let inputs: Vec<(String, Option<String>)> = cases
        .iter()
        .map(|c| {
            let xml = std::fs::read_to_string(corpus.xml_path(c)).unwrap_or_default();
            (xml, c.date_arg())
        })
        .collect();

    let (mut parse_time, mut schedule_time) = (Duration::ZERO, Duration::ZERO);
    let (mut parsed, mut failed) = (0usize, 0usize);
    for _ in 0..rounds {
        for (xml, date_arg) in &inputs {
            let started = Instant::now();
            let cluster = tandem_cib::parse_cib(xml);
            parse_time += started.elapsed();
            let Ok(cluster) = cluster else {
                failed += 1;
                continue;
            };
            let Ok(now) = case_now(date_arg.as_deref(), cluster.status.execution_date) else {
                failed += 1;
                continue;
            };
            parsed += 1;
            let started = Instant::now();
            let transition = tandem_scheduler::schedule(&cluster, now);
            schedule_time += started.elapsed();
            std::hint::black_box(transition);
        }
    }
    println!(
        "in-process over {} cases x {rounds} round(s): {parsed} scheduled, {failed} not parsed",
        inputs.len()
    );
    println!(
        "parse_cib total {:.1} ms, schedule total {:.1} ms, mean schedule {:.3} ms/case",
        parse_time.as_secs_f64() * 1000.0,
        schedule_time.as_secs_f64() * 1000.0,
        schedule_time.as_secs_f64() * 1000.0 / parsed.max(1) as f64
    );
}

/// `--rounds N` (default 1); cargo's own `--bench` flag is ignored.
fn rounds_from_args() -> Result<u32, String> {
    let mut rounds = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {}
            "--rounds" => {
                let value = args.next().ok_or("--rounds needs a value")?;
                rounds = value
                    .parse()
                    .map_err(|_| format!("{value:?} is not a number"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(rounds.max(1))
}
