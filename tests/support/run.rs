//! Parsing and scheduling corpus cases with failures contained.
//!
//! Each case runs on its own thread inside `catch_unwind`, so a panic in the
//! parser or scheduler becomes a [`RunResult::Panic`] with its message and
//! location, and a case that exceeds the time limit is abandoned and
//! reported the same way instead of hanging the whole run. A few worker
//! threads share the case list; after [`MAX_HUNG_CASES`] hangs the rest of
//! the cases are not started and are reported as panics too.

use crate::corpus::{Case, Corpus};
use crate::date::case_now;
use crate::summary::{scheduler_actions, PlannedAction};
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Once};
use std::thread;
use std::time::{Duration, Instant};

/// After this many cases exceed the time limit, no further case starts: an
/// abandoned case thread keeps spinning, and a few of them take every core,
/// so later cases would time out only because of the earlier ones.
pub const MAX_HUNG_CASES: usize = 2;

/// Stack for case threads: generous, since a scheduler may recurse over
/// deep resource trees, and a stack overflow aborts the whole process.
const CASE_STACK_BYTES: usize = 64 * 1024 * 1024;

/// The outcome of parsing and scheduling one case.
#[derive(Debug)]
pub enum RunResult {
    Scheduled {
        /// `revised.placement_json()`.
        placement: serde_json::Value,
        /// The Transition Summary, normalised and sorted.
        actions: Vec<PlannedAction>,
    },
    /// The input could not be read (CIB parse error, unreadable `-t`).
    Error(String),
    /// The parser or scheduler panicked or exceeded the time limit.
    Panic(String),
}

/// One case's result and how long it took.
#[derive(Debug)]
pub struct CaseRun {
    pub case: Case,
    pub result: RunResult,
    pub elapsed: Duration,
}

/// Runs every case on `jobs` worker threads; each case may take at most
/// `limit`. Results come back in the order of `cases`.
pub fn run_all(corpus: &Corpus, cases: &[Case], jobs: usize, limit: Duration) -> Vec<CaseRun> {
    install_panic_recorder();
    let next = AtomicUsize::new(0);
    let hung = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel();
    thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let sender = sender.clone();
            let (next, hung) = (&next, &hung);
            scope.spawn(move || loop {
                let at = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(at) else { break };
                let started = Instant::now();
                let result = if hung.load(Ordering::Relaxed) >= MAX_HUNG_CASES {
                    RunResult::Panic(format!("not run: {MAX_HUNG_CASES} cases hung before it"))
                } else {
                    run_with_limit(corpus, case, limit)
                };
                if matches!(&result, RunResult::Panic(m) if m.starts_with(HUNG)) {
                    hung.fetch_add(1, Ordering::Relaxed);
                }
                let run = CaseRun {
                    case: case.clone(),
                    result,
                    elapsed: started.elapsed(),
                };
                if sender.send((at, run)).is_err() {
                    break;
                }
            });
        }
    });
    drop(sender);
    let mut runs: Vec<(usize, CaseRun)> = receiver.into_iter().collect();
    runs.sort_by_key(|(at, _)| *at);
    runs.into_iter().map(|(_, run)| run).collect()
}

/// How a timed-out case's message starts.
const HUNG: &str = "hung: did not finish within";

/// Runs one case on a fresh thread and waits at most `limit` for it.
fn run_with_limit(corpus: &Corpus, case: &Case, limit: Duration) -> RunResult {
    let (sender, receiver) = mpsc::channel();
    let (corpus, case_owned) = (corpus.clone(), case.clone());
    let spawned = thread::Builder::new()
        .name(format!("case {}", case.name))
        .stack_size(CASE_STACK_BYTES)
        .spawn(move || {
            let _ = sender.send(run_case(&corpus, &case_owned));
        });
    if let Err(e) = spawned {
        return RunResult::Panic(format!("could not start a thread: {e}"));
    }
    match receiver.recv_timeout(limit) {
        Ok(result) => result,
        // The thread keeps running; it is abandoned and dies with the process.
        Err(mpsc::RecvTimeoutError::Timeout) => {
            RunResult::Panic(format!("{HUNG} {} s", limit.as_secs_f64()))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            RunResult::Panic("case thread ended without a result".into())
        }
    }
}

/// Parses, picks "now", schedules: the whole pipeline for one case.
pub fn run_case(corpus: &Corpus, case: &Case) -> RunResult {
    let xml = match std::fs::read_to_string(corpus.xml_path(case)) {
        Ok(xml) => xml,
        Err(e) => return RunResult::Error(format!("{}: {e}", corpus.xml_path(case).display())),
    };
    IN_CASE.with(|flag| *flag.borrow_mut() = Some(String::new()));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let cluster = tandem_cib::parse_cib(&xml).map_err(|e| format!("parse: {e}"))?;
        let now = case_now(case.date_arg().as_deref(), cluster.status.execution_date)?;
        let transition = tandem_scheduler::schedule(&cluster, now);
        Ok::<_, String>(RunResult::Scheduled {
            placement: transition.revised.placement_json(),
            actions: scheduler_actions(&transition.summary),
        })
    }));
    let message = IN_CASE
        .with(|flag| flag.borrow_mut().take())
        .unwrap_or_default();
    match outcome {
        Ok(Ok(scheduled)) => scheduled,
        Ok(Err(error)) => RunResult::Error(error),
        Err(payload) if message.is_empty() => RunResult::Panic(payload_text(&*payload)),
        Err(_) => RunResult::Panic(message),
    }
}

thread_local! {
    /// Set while a case runs on this thread: the panic recorder stores the
    /// panic's message and location here instead of printing it.
    static IN_CASE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Wraps the panic hook once per process: panics on case threads are
/// recorded (they are reported in the table), all others print as usual.
fn install_panic_recorder() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let recorded = IN_CASE.with(|flag| match flag.borrow_mut().as_mut() {
                Some(slot) => {
                    *slot = info.to_string().replace('\n', " ");
                    true
                }
                None => false,
            });
            if !recorded {
                previous(info);
            }
        }));
    });
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-text payload".into())
}
