//! One daemon process as the simulation runs it: on a paused runtime of
//! its own, so it has its own clock (running fast or slow within the
//! stated bound on clock-rate error) and can be paused (`SIGSTOP`, a
//! stall) and killed (its runtime dropped: every task ends where it
//! stands, nothing runs on its way out).
//!
//! The driver moves true time on in small quanta and drives each process
//! to its own reading of it; messages between processes cross runtimes,
//! so one arrives at the next quantum of its target at the earliest.

use std::future::Future;
use std::time::Duration;

pub struct Process {
    runtime: tokio::runtime::Runtime,
    /// How far its clock is off the true rate, in parts per million
    /// (positive: fast).
    rate_ppm: i64,
    /// True time when it started (µs).
    born_us: u64,
    /// Its clock when it started.
    origin: tokio::time::Instant,
    /// Stopped until this true time (µs).
    paused_until: Option<u64>,
}

impl Process {
    /// A process started at true time `now_us` whose clock runs
    /// `rate_ppm` off.
    pub fn new(now_us: u64, rate_ppm: i64) -> Process {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime");
        let origin = runtime.block_on(async { tokio::time::Instant::now() });
        Process {
            runtime,
            rate_ppm,
            born_us: now_us,
            origin,
            paused_until: None,
        }
    }

    pub fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// Runs `f` as if inside the process (what it spawns runs there, and
    /// `Instant::now()` reads its clock).
    pub fn within<T>(&self, f: impl FnOnce() -> T) -> T {
        let _entered = self.runtime.enter();
        f()
    }

    /// Runs `future` to completion inside the process, its clock moving
    /// on while it waits (only for what needs no other process).
    pub fn block_on<T>(&mut self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(future)
    }

    /// Stops the process until true time `until_us` (a later pause
    /// extends it).
    pub fn pause(&mut self, until_us: u64) {
        self.paused_until = Some(self.paused_until.unwrap_or(0).max(until_us));
    }

    pub fn resume(&mut self) {
        if self.paused_until.is_some() {
            self.paused_until = Some(0);
        }
    }

    pub fn paused(&self) -> bool {
        self.paused_until.is_some()
    }

    /// What its clock reads at true time `now_us`.
    fn local_at(&self, now_us: u64) -> tokio::time::Instant {
        let elapsed = now_us.saturating_sub(self.born_us) as i128;
        let local = elapsed * (1_000_000 + self.rate_ppm as i128) / 1_000_000;
        self.origin + Duration::from_micros(local as u64)
    }

    /// Lets the process run up to true time `now_us`. A paused one does
    /// nothing; when it resumes, its clock jumps at once, as a stopped
    /// process finds every timer overdue together.
    ///
    /// The target is read against the runtime's own clock each time: its
    /// timers tick in whole milliseconds, so a sleep may overshoot by up
    /// to one, and counting steps instead would add those up.
    pub fn drive(&mut self, now_us: u64) {
        let target = self.local_at(now_us);
        let resumed = match self.paused_until {
            Some(until) if now_us < until => return,
            Some(_) => {
                self.paused_until = None;
                true
            }
            None => false,
        };
        self.runtime.block_on(async move {
            let now = tokio::time::Instant::now();
            if target <= now {
                return;
            }
            if resumed {
                tokio::time::advance(target - now).await;
            } else {
                tokio::time::sleep_until(target).await;
            }
        });
    }
}
