//! Runs the scheduler where it cannot hurt the node: on a thread of its
//! own with a large stack (never on a runtime worker, whose lease loop and
//! API must keep answering), within a wall-time budget and a work limit,
//! with a panic caught and turned into an error, and with a fixed number
//! of such threads per [`Purpose`], so a flood of requests is told the
//! scheduler is busy instead of starting threads without end.
//!
//! [`schedule_bounded`] is the controller's entry; the API previews
//! documents and computes status through [`schedule_for`].

use crate::limits;
use std::panic::AssertUnwindSafe;
use std::time::Duration;
use tandem_model::Cluster;
use tandem_scheduler::Transition;
use tokio::sync::Semaphore;

/// Why no transition came back.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("the scheduler is busy with other {0} requests; try again shortly")]
    Busy(Purpose),
    #[error("scheduling took longer than {} ms", .0.as_millis())]
    OverBudget(Duration),
    #[error(transparent)]
    TooMuchWork(#[from] tandem_scheduler::ScheduleError),
    #[error("the scheduler failed on this input ({0}); this is a bug in tandem")]
    Panicked(String),
    #[error("cannot start a scheduling thread: {0}")]
    Spawn(String),
}

/// What a run is for. Each purpose has its own threads, so status reads
/// cannot keep the controller or a preview waiting, nor the other way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The controller's plan on the DC.
    Control,
    /// A document on its way in: `PUT /config`, `POST /plan`, `POST /edit`.
    Admission,
    /// The placement `GET /status` and `GET /resources` show.
    Status,
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Purpose::Control => "controller",
            Purpose::Admission => "configuration preview",
            Purpose::Status => "status",
        })
    }
}

impl Purpose {
    /// The threads this purpose may use. Process-wide: one daemon is one
    /// process (nodes served in-process by tests share them, which only
    /// makes them wait for each other).
    fn threads(self) -> &'static Semaphore {
        static CONTROL: Semaphore = Semaphore::const_new(limits::CONTROL_THREADS);
        static ADMISSION: Semaphore = Semaphore::const_new(limits::ADMISSION_THREADS);
        static STATUS: Semaphore = Semaphore::const_new(limits::STATUS_THREADS);
        match self {
            Purpose::Control => &CONTROL,
            Purpose::Admission => &ADMISSION,
            Purpose::Status => &STATUS,
        }
    }

    /// Work a run may do: a document on its way in gets less than one
    /// already committed, which must keep scheduling (see `limits`).
    fn work_limit(self) -> u64 {
        match self {
            Purpose::Admission => limits::ADMISSION_WORK,
            Purpose::Control | Purpose::Status => limits::RUN_WORK,
        }
    }
}

/// Schedules `cluster` at `now` for the controller: off the runtime, at
/// most `budget` of wall time, at most [`limits::RUN_WORK`].
pub async fn schedule_bounded(
    cluster: Cluster,
    now: i64,
    budget: Duration,
) -> Result<Transition, ScheduleError> {
    schedule_for(Purpose::Control, cluster, now, budget).await
}

/// Schedules `cluster` at `now` on one of `purpose`'s threads, waiting at
/// most `budget` for one to be free and `budget` for the answer.
///
/// A run past its budget goes on until its work limit ends it (a thread
/// cannot be stopped from outside) and keeps its place until then, so the
/// number of threads stays bounded.
pub async fn schedule_for(
    purpose: Purpose,
    cluster: Cluster,
    now: i64,
    budget: Duration,
) -> Result<Transition, ScheduleError> {
    let work_limit = purpose.work_limit();
    let run = move || tandem_scheduler::schedule_with_limit(&cluster, now, work_limit);
    Ok(run_guarded(purpose, budget, run).await??)
}

#[cfg(feature = "sim")]
thread_local! {
    static INLINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs every schedule on this thread inline (feature `sim`). A
/// simulation on tokio's paused clock needs it: while a run computes on
/// another thread the runtime is idle, so virtual time would jump past
/// the budget; inline, no virtual time passes while it computes.
#[cfg(feature = "sim")]
pub fn run_inline_on_this_thread() {
    INLINE.with(|inline| inline.set(true));
}

/// Runs `run` on one of `purpose`'s threads (see [`schedule_for`]).
async fn run_guarded<T: Send + 'static>(
    purpose: Purpose,
    budget: Duration,
    run: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ScheduleError> {
    #[cfg(feature = "sim")]
    if INLINE.with(|inline| inline.get()) {
        return std::panic::catch_unwind(AssertUnwindSafe(run))
            .map_err(|panic| ScheduleError::Panicked(panic_message(&*panic)));
    }
    let permit = match tokio::time::timeout(budget, purpose.threads().acquire()).await {
        Ok(Ok(permit)) => permit,
        _ => return Err(ScheduleError::Busy(purpose)),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("schedule-{purpose}"))
        .stack_size(limits::SCHEDULER_STACK_BYTES)
        .spawn(move || {
            let _place = permit;
            let answer = std::panic::catch_unwind(AssertUnwindSafe(run));
            // The caller may have stopped waiting (over budget).
            let _ = tx.send(answer.map_err(|panic| panic_message(&*panic)));
        })
        .map_err(|e| ScheduleError::Spawn(e.to_string()))?;
    match tokio::time::timeout(budget, rx).await {
        Err(_) => Err(ScheduleError::OverBudget(budget)),
        Ok(Err(_)) => Err(ScheduleError::Panicked(
            "the scheduling thread ended without an answer".into(),
        )),
        Ok(Ok(answer)) => answer.map_err(ScheduleError::Panicked),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(resources: usize) -> Cluster {
        let mut text = String::from(
            "[cluster]\noptions = { fencing-enabled = false }\n[[node]]\nname = \"n1\"\n",
        );
        for i in 0..resources {
            text.push_str(&format!(
                "[[resource]]\nid = \"r{i}\"\nagent = \"ocf:heartbeat:Dummy\"\n"
            ));
        }
        text.push_str("[status]\n");
        tandem_model::native::parse_toml(&text).unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_run_happens_off_the_runtime_and_answers_the_transition() {
        // A current-thread runtime would be blocked by a run on it; the
        // timer below still fires, so the run is elsewhere.
        let t = schedule_for(Purpose::Status, cluster(3), 0, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(t.summary.len(), 3, "three starts: {:?}", t.summary);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_in_the_run_is_an_error_naming_it_not_a_crash() {
        let run = run_guarded(Purpose::Status, Duration::from_secs(30), || {
            panic!("boom");
        });
        let err = run.await.unwrap_err();
        assert!(
            matches!(&err, ScheduleError::Panicked(m) if m == "boom"),
            "{err}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_run_over_budget_is_refused_and_keeps_its_thread_until_it_ends() {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let run = run_guarded(Purpose::Control, Duration::from_millis(50), move || {
            let _ = wait.recv();
        });
        let err = run.await.unwrap_err();
        assert!(matches!(err, ScheduleError::OverBudget(_)), "{err}");
        assert!(err.to_string().contains("longer than 50 ms"), "{err}");
        // The run still holds the controller's only thread.
        let next = run_guarded(Purpose::Control, Duration::from_millis(50), || ());
        assert!(matches!(next.await, Err(ScheduleError::Busy(_))));
        release.send(()).unwrap();
        let after = run_guarded(Purpose::Control, Duration::from_secs(30), || 7);
        assert_eq!(after.await.unwrap(), 7);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_purpose_whose_threads_are_taken_is_busy_after_the_budget() {
        let held = Purpose::Admission.threads().acquire().await.unwrap();
        let run = schedule_for(Purpose::Admission, cluster(1), 0, Duration::from_millis(50));
        let err = run.await.unwrap_err();
        assert!(
            matches!(err, ScheduleError::Busy(Purpose::Admission)),
            "{err}"
        );
        assert!(err.to_string().contains("busy"), "{err}");
        drop(held);
        let again = schedule_for(Purpose::Admission, cluster(1), 0, Duration::from_secs(30));
        assert!(again.await.is_ok(), "free again once released");
    }
}
