//! The log of a serving process (`tandem daemon`, `witness`, `lb run`):
//! lines on stderr, filtered by an env variable, and rate-limited per
//! cause. A peer that is down makes openraft's heartbeat worker warn
//! every 50 ms; a cause (a log statement in the code) that fires more
//! than [`BURST`] times in [`WINDOW`] is muted for the rest of the window,
//! and the next line it is allowed says how many were left out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::callsite::Identifier;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Lines one cause may log per window.
const BURST: u32 = 5;
/// The window.
const WINDOW: Duration = Duration::from_secs(10);

/// Logs to stderr with the filter in `env` (else `default`), rate-limited
/// per cause.
pub fn init(env: &str, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(env)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    // Colours only for a person at a terminal who did not turn them off
    // (NO_COLOR): never into log files or the journal.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_filter(PerCause::default());
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .try_init();
}

/// Mutes a cause beyond [`BURST`] lines per [`WINDOW`].
#[derive(Default)]
struct PerCause {
    causes: Mutex<HashMap<Identifier, Window>>,
}

struct Window {
    started: Instant,
    lines: u32,
    /// Muted in the window before this one, not reported yet.
    muted_before: u32,
}

impl PerCause {
    /// Whether a line of `cause` at `now` is logged, and how many of its
    /// lines were muted before it (to say so once it is).
    fn admit(&self, cause: Identifier, now: Instant) -> (bool, u32) {
        let mut causes = self.causes.lock().unwrap_or_else(|p| p.into_inner());
        let w = causes.entry(cause).or_insert(Window {
            started: now,
            lines: 0,
            muted_before: 0,
        });
        if now.duration_since(w.started) >= WINDOW {
            w.muted_before += w.lines.saturating_sub(BURST);
            w.started = now;
            w.lines = 0;
        }
        w.lines += 1;
        if w.lines > BURST {
            return (false, 0);
        }
        (true, std::mem::take(&mut w.muted_before))
    }
}

impl<S> Filter<S> for PerCause {
    fn enabled(&self, _: &tracing::Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &tracing::Event<'_>, _: &Context<'_, S>) -> bool {
        let meta = event.metadata();
        let (admitted, muted) = self.admit(meta.callsite(), Instant::now());
        if admitted && muted > 0 {
            // A line of our own: an event raised while this one is
            // dispatched would be dropped.
            eprintln!(
                "  (the next line's cause, {}:{}, logged {muted} more lines that were left out: at most {BURST} per {} s)",
                meta.file().unwrap_or(meta.target()),
                meta.line().unwrap_or(0),
                WINDOW.as_secs()
            );
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_logs_a_burst_per_window_then_says_how_many_it_muted() {
        let limit = PerCause::default();
        struct Here;
        impl tracing::Callsite for Here {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                unreachable!()
            }
        }
        static HERE: Here = Here;
        let cause = || Identifier(&HERE);
        let t0 = Instant::now();
        let admitted: Vec<(bool, u32)> = (0..8)
            .map(|i| limit.admit(cause(), t0 + Duration::from_millis(i)))
            .collect();
        assert_eq!(admitted[..5], [(true, 0); 5]);
        assert_eq!(admitted[5..], [(false, 0); 3]);
        // The next window: the first line says three were muted.
        assert_eq!(limit.admit(cause(), t0 + WINDOW), (true, 3));
        assert_eq!(limit.admit(cause(), t0 + WINDOW), (true, 0));
    }
}
