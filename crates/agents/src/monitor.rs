//! Recurring monitors: a timer thread keeps each (resource, interval)
//! monitor's next due time; a fixed pool of workers runs due monitors
//! through the [`Runner`] seam and sends every result on a bounded channel.
//! The next run is scheduled `interval` after the previous one finished,
//! so a slow agent is never run twice at once.
//!
//! Main types: [`MonitorScheduler`], [`MonitorSpec`], [`MonitorEvent`].
//! Must not: act on results; the executor decides what a failure means.

use crate::exec::{Action, OpRequest, Runner};
use crate::limits::{MAX_RECURRING, MIN_MONITOR_INTERVAL_MS, MONITOR_QUEUE_DEPTH, MONITOR_WORKERS};
use crate::result::{Expected, OpResult};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Identifies one recurring monitor.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonitorKey {
    pub resource: String,
    pub interval_ms: u64,
}

/// A recurring monitor to run.
#[derive(Clone, Debug)]
pub struct MonitorSpec {
    /// The monitor operation; its `interval_ms` is the period.
    pub request: OpRequest,
    /// What a healthy result is (running, or promoted).
    pub expected: Expected,
}

/// One monitor result.
#[derive(Clone, Debug)]
pub struct MonitorEvent {
    pub key: MonitorKey,
    pub expected: Expected,
    pub result: OpResult,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonitorError {
    #[error("monitor of {resource}: interval {interval_ms} ms is below the minimum {min} ms")]
    Interval {
        resource: String,
        interval_ms: u64,
        min: u64,
    },
    #[error("monitor of {resource}: action is {action}, expected monitor")]
    NotAMonitor { resource: String, action: Action },
    #[error("monitor of {resource}: already {max} recurring monitors on this node")]
    TooMany { resource: String, max: usize },
    #[error("the monitor scheduler has stopped")]
    Stopped,
}

enum Control {
    Schedule(Box<MonitorSpec>),
    Cancel(MonitorKey),
    CancelResource(String),
    Done(MonitorKey, u64),
    Shutdown,
}

struct Job {
    key: MonitorKey,
    generation: u64,
    spec: MonitorSpec,
}

/// Runs recurring monitors until shut down (or dropped).
pub struct MonitorScheduler {
    control: SyncSender<Control>,
    live: Live,
    threads: Vec<JoinHandle<()>>,
}

impl MonitorScheduler {
    /// Starts the timer and [`MONITOR_WORKERS`] workers; results go to
    /// `events` (a full channel slows the workers down, never drops).
    pub fn start(runner: Arc<dyn Runner>, events: SyncSender<MonitorEvent>) -> MonitorScheduler {
        let (control, control_rx) = mpsc::sync_channel(MONITOR_QUEUE_DEPTH);
        let (jobs, jobs_rx) = mpsc::sync_channel::<Job>(MONITOR_QUEUE_DEPTH);
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let live: Live = Arc::new(Mutex::new(BTreeMap::new()));
        let mut threads = Vec::new();
        for _ in 0..MONITOR_WORKERS {
            let worker = Worker {
                runner: runner.clone(),
                jobs: jobs_rx.clone(),
                events: events.clone(),
                control: control.clone(),
                live: live.clone(),
            };
            threads.push(std::thread::spawn(move || worker.run()));
        }
        let timer = Timer {
            control: control_rx,
            jobs,
            live: live.clone(),
            entries: BTreeMap::new(),
            due: BinaryHeap::new(),
            next_generation: 0,
        };
        threads.push(std::thread::spawn(move || timer.run()));
        MonitorScheduler {
            control,
            live,
            threads,
        }
    }

    /// Starts (or replaces) a recurring monitor; the first run is one
    /// interval from now, as after a start operation.
    pub fn schedule(&self, spec: MonitorSpec) -> Result<MonitorKey, MonitorError> {
        let request = &spec.request;
        if request.action != Action::Monitor {
            return Err(MonitorError::NotAMonitor {
                resource: request.resource.clone(),
                action: request.action,
            });
        }
        if request.interval_ms < MIN_MONITOR_INTERVAL_MS {
            return Err(MonitorError::Interval {
                resource: request.resource.clone(),
                interval_ms: request.interval_ms,
                min: MIN_MONITOR_INTERVAL_MS,
            });
        }
        let key = MonitorKey {
            resource: request.resource.clone(),
            interval_ms: request.interval_ms,
        };
        let count = self.live.lock().unwrap_or_else(|p| p.into_inner()).len();
        if count >= MAX_RECURRING {
            return Err(MonitorError::TooMany {
                resource: key.resource,
                max: MAX_RECURRING,
            });
        }
        self.send(Control::Schedule(Box::new(spec)))?;
        Ok(key)
    }

    /// Stops one recurring monitor. A run already in progress finishes but
    /// its result is not sent.
    pub fn cancel(&self, key: &MonitorKey) -> Result<(), MonitorError> {
        self.send(Control::Cancel(key.clone()))
    }

    /// Stops every recurring monitor of a resource (before its stop).
    pub fn cancel_resource(&self, resource: &str) -> Result<(), MonitorError> {
        self.send(Control::CancelResource(resource.to_string()))
    }

    fn send(&self, message: Control) -> Result<(), MonitorError> {
        self.control
            .send(message)
            .map_err(|_| MonitorError::Stopped)
    }

    /// Stops the timer, lets running monitors finish, joins every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.control.send(Control::Shutdown);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for MonitorScheduler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Current generation of each live monitor, read by workers so a cancelled
/// or replaced monitor's last result is not reported.
type Live = Arc<Mutex<BTreeMap<MonitorKey, u64>>>;

struct Entry {
    spec: MonitorSpec,
    generation: u64,
    running: bool,
}

struct Timer {
    control: Receiver<Control>,
    jobs: SyncSender<Job>,
    live: Live,
    entries: BTreeMap<MonitorKey, Entry>,
    due: BinaryHeap<Reverse<(Instant, MonitorKey, u64)>>,
    next_generation: u64,
}

impl Timer {
    fn run(mut self) {
        loop {
            self.dispatch_due();
            let wait = match self.due.peek() {
                Some(Reverse((at, _, _))) => at.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            match self.control.recv_timeout(wait) {
                Ok(Control::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(message) => self.handle(message),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        drop(self.jobs); // workers see the closed queue and exit
    }

    fn handle(&mut self, message: Control) {
        match message {
            Control::Schedule(spec) => {
                let key = MonitorKey {
                    resource: spec.request.resource.clone(),
                    interval_ms: spec.request.interval_ms,
                };
                self.next_generation += 1;
                let generation = self.next_generation;
                let period = Duration::from_millis(key.interval_ms);
                self.due
                    .push(Reverse((Instant::now() + period, key.clone(), generation)));
                self.set_live(&key, Some(generation));
                self.entries.insert(
                    key,
                    Entry {
                        spec: *spec,
                        generation,
                        running: false,
                    },
                );
            }
            Control::Cancel(key) => {
                self.entries.remove(&key);
                self.set_live(&key, None);
            }
            Control::CancelResource(resource) => {
                let keys: Vec<MonitorKey> = self
                    .entries
                    .keys()
                    .filter(|k| k.resource == resource)
                    .cloned()
                    .collect();
                for key in keys {
                    self.entries.remove(&key);
                    self.set_live(&key, None);
                }
            }
            Control::Done(key, generation) => {
                if let Some(entry) = self.entries.get_mut(&key) {
                    if entry.generation == generation {
                        entry.running = false;
                        let at = Instant::now() + Duration::from_millis(key.interval_ms);
                        self.due.push(Reverse((at, key, generation)));
                    }
                }
            }
            Control::Shutdown => {}
        }
    }

    fn dispatch_due(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, _, _))) = self.due.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, key, generation))) = self.due.pop() else {
                break;
            };
            let Some(entry) = self.entries.get_mut(&key) else {
                continue; // cancelled
            };
            if entry.generation != generation || entry.running {
                continue; // replaced, or a stale timer
            }
            let job = Job {
                key: key.clone(),
                generation,
                spec: entry.spec.clone(),
            };
            match self.jobs.try_send(job) {
                Ok(()) => entry.running = true,
                Err(TrySendError::Full(_)) => {
                    // Workers are behind: try again shortly instead of
                    // queueing without bound.
                    let retry = Duration::from_millis(MIN_MONITOR_INTERVAL_MS);
                    self.due.push(Reverse((now + retry, key, generation)));
                    break;
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }

    fn set_live(&self, key: &MonitorKey, generation: Option<u64>) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        match generation {
            Some(g) => live.insert(key.clone(), g),
            None => live.remove(key),
        };
    }
}

struct Worker {
    runner: Arc<dyn Runner>,
    jobs: Arc<Mutex<Receiver<Job>>>,
    events: SyncSender<MonitorEvent>,
    control: SyncSender<Control>,
    live: Live,
}

impl Worker {
    fn run(self) {
        loop {
            let job = {
                let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
                match jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            };
            let result = self.runner.execute(&job.spec.request);
            let current = {
                let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
                live.get(&job.key) == Some(&job.generation)
            };
            if current {
                let event = MonitorEvent {
                    key: job.key.clone(),
                    expected: job.spec.expected,
                    result,
                };
                if self.events.send(event).is_err() {
                    return; // nobody listens any more
                }
            }
            if self
                .control
                .send(Control::Done(job.key, job.generation))
                .is_err()
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::AgentStatus;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Answers Ok for the first `ok_runs` runs, then NotRunning.
    struct Scripted {
        runs: AtomicU32,
        ok_runs: u32,
    }

    impl Runner for Scripted {
        fn execute(&self, _: &OpRequest) -> OpResult {
            let n = self.runs.fetch_add(1, Ordering::SeqCst);
            let mut r = OpResult::exec_failed("");
            r.status = if n < self.ok_runs {
                AgentStatus::Ok
            } else {
                AgentStatus::NotRunning
            };
            r
        }
    }

    fn spec(resource: &str, interval_ms: u64) -> MonitorSpec {
        let mut request = OpRequest::new(resource, "ocf:x:y".parse().unwrap(), Action::Monitor);
        request.interval_ms = interval_ms;
        MonitorSpec {
            request,
            expected: Expected::Ok,
        }
    }

    #[test]
    fn monitors_recur_until_cancelled_and_report_each_result() {
        let runner = Arc::new(Scripted {
            runs: AtomicU32::new(0),
            ok_runs: 2,
        });
        let (tx, rx) = mpsc::sync_channel(8);
        let scheduler = MonitorScheduler::start(runner.clone(), tx);
        let key = scheduler.schedule(spec("web", 100)).unwrap();
        let statuses: Vec<AgentStatus> = (0..3)
            .map(|_| {
                rx.recv_timeout(Duration::from_secs(10))
                    .unwrap()
                    .result
                    .status
            })
            .collect();
        assert_eq!(
            statuses,
            [AgentStatus::Ok, AgentStatus::Ok, AgentStatus::NotRunning]
        );
        scheduler.cancel(&key).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        while rx.try_recv().is_ok() {}
        let runs = runner.runs.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(400));
        assert!(runner.runs.load(Ordering::SeqCst) <= runs + 1);
        assert!(rx.try_recv().is_err());
        scheduler.shutdown();
    }

    #[test]
    fn bad_specs_are_refused_with_the_resource_named() {
        let (tx, _rx) = mpsc::sync_channel(1);
        let runner = Arc::new(Scripted {
            runs: AtomicU32::new(0),
            ok_runs: 0,
        });
        let scheduler = MonitorScheduler::start(runner, tx);
        let e = scheduler.schedule(spec("db", 5)).unwrap_err().to_string();
        assert!(e.contains("db") && e.contains("5 ms"), "{e}");
        let mut s = spec("db", 1000);
        s.request.action = Action::Start;
        assert!(scheduler.schedule(s).is_err());
    }
}
