//! Drain: stop new connections/requests to a backend, let existing ones
//! finish, and report the remaining count as a stream of [`DrainProgress`]
//! until it reaches zero. Undrain starts the pool's slow start. The stream
//! is a bounded channel; a slow or vanished reader never stalls the drain.

use crate::limits;
use crate::pool::Backend;
use crate::Clock;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DrainProgress {
    pub pool: String,
    pub backend: String,
    /// Connections (L4) or in-flight requests (L7) still open.
    pub remaining: u64,
    pub elapsed_ms: u64,
    /// True in the last report: nothing remains.
    pub done: bool,
}

/// Mark `backend` drained and report progress until its count reaches zero
/// (or it is undrained, which ends the stream with `done = false`).
pub fn start(pool: &str, backend: Arc<Backend>, clock: Clock) -> mpsc::Receiver<DrainProgress> {
    let (tx, rx) = mpsc::channel(limits::DRAIN_PROGRESS_DEPTH);
    let started = clock.now_ms();
    backend.set_drained(true, started);
    tracing::info!(
        pool,
        backend = backend.name,
        active = backend.active(),
        "drain started"
    );
    let pool = pool.to_string();
    tokio::spawn(async move {
        loop {
            let remaining = backend.active();
            let done = remaining == 0;
            let report = DrainProgress {
                pool: pool.clone(),
                backend: backend.name.clone(),
                remaining,
                elapsed_ms: clock.now_ms().saturating_sub(started),
                done,
            };
            let stop = done || !backend.is_drained();
            if stop {
                if done {
                    tracing::info!(pool, backend = backend.name, "drain complete");
                }
                // The final report must arrive; wait for room.
                let _ = tx.send(report).await;
                return;
            }
            // Intermediate reports are snapshots: drop one rather than block.
            let _ = tx.try_send(report);
            tokio::time::sleep(Duration::from_millis(limits::DRAIN_REPORT_INTERVAL_MS)).await;
        }
    });
    rx
}
