//! Every limit of the agent layer in one place, each with its reason.
//!
//! Must not: hold behaviour; only numbers other modules read.

/// Bytes of stdout and of stderr kept per operation. Agents print status
/// text and metadata (the largest Debian agent metadata is ~40 KiB); the
/// rest is read and dropped so a chatty agent never blocks on a full pipe
/// and never grows the executor's memory.
pub const OUTPUT_CAP_BYTES: usize = 64 * 1024;

/// Bytes of stderr kept past the cap, from its end: agents print their
/// `ocf-exit-reason:` last, so a flood of output must not hide it.
pub const OUTPUT_TAIL_BYTES: usize = 4 * 1024;

/// Time between SIGTERM to an agent's process group at its timeout and the
/// SIGKILL that follows. Pacemaker gives no grace at all; a short one lets
/// well-behaved agents clean up their temporary files.
pub const KILL_GRACE_MS: u64 = 2_000;

/// After SIGKILL, how long to wait for the kernel to reap the agent before
/// reporting it unkillable (a process stuck in uninterruptible sleep).
pub const REAP_WAIT_MS: u64 = 2_000;

/// How long to keep reading the pipes after the agent itself exited. What
/// it wrote before exiting is already buffered and reads at once; a
/// daemon it started may inherit its stdout and keep it open forever (the
/// IPaddr2 agent leaves `send_arp` running), and the operation must not
/// wait for that. 200 ms here cost every IPaddr2 start 200 ms of fail-over.
pub const DRAIN_AFTER_EXIT_MS: u64 = 10;

/// Longest wait in one poll(2) round, so the child's exit is noticed promptly
/// even when it prints nothing (each operation on the fail-over path pays
/// up to this much).
pub const POLL_SLICE_MS: u64 = 5;

/// Operation timeout when none is configured (Pacemaker's default, 20 s).
pub const DEFAULT_TIMEOUT_MS: u64 = 20_000;

/// Upper bound for any operation timeout: a typo of "3600000s" must not park
/// an operation for years.
pub const MAX_TIMEOUT_MS: u64 = 24 * 3_600_000;

/// Bytes written to a fence agent's stdin. Stays below the pipe buffer
/// (64 KiB on Linux) so writing never blocks on an agent that reads nothing.
pub const FENCE_STDIN_MAX_BYTES: usize = 16 * 1024;

/// Size of agent metadata accepted by the parser; larger XML is refused.
pub const METADATA_MAX_BYTES: usize = OUTPUT_CAP_BYTES;

/// Length of one exit reason (`ocf-exit-reason:` line), as Pacemaker caps it.
pub const EXIT_REASON_MAX_CHARS: usize = 128;

/// Recurring monitors one scheduler holds (10 000 resources × a couple of
/// monitors each, with room).
pub const MAX_RECURRING: usize = 50_000;

/// Agent processes the monitor scheduler runs at once: the machine has few
/// cores and agents are mostly shell scripts; more only adds contention.
pub const MONITOR_WORKERS: usize = 4;

/// Due monitors waiting for a worker. A full queue means workers are behind;
/// the monitor is then rescheduled rather than queued without bound.
pub const MONITOR_QUEUE_DEPTH: usize = 256;

/// Shortest recurring interval accepted; shorter ones would busy-loop agents.
pub const MIN_MONITOR_INTERVAL_MS: u64 = 100;

/// Size of the attribute store file the shims read; a larger file is corrupt
/// or hostile.
pub const ATTR_STORE_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Length of an attribute name or value accepted by the shims.
pub const ATTR_TEXT_MAX_BYTES: usize = 4096;
