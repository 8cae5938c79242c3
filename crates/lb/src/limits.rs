//! Every limit of the distribution layer in one place, each with its reason.
//! Config validation rejects values beyond these; the proxy enforces them.

/// Listeners per process: each one is an accept loop and a socket; more
/// than this is a configuration mistake, not a deployment.
pub const MAX_LISTENERS: usize = 64;
/// Pools per process: each pool runs one health-check task per backend.
pub const MAX_POOLS: usize = 256;
/// Backends per pool: the Maglev table (below) stays ≥ 60× this, which keeps
/// the per-backend share within ~2 % of fair.
pub const MAX_BACKENDS_PER_POOL: usize = 1024;
/// Largest backend weight; weights are relative, 1..=1000 is plenty and keeps
/// the smooth weighted round robin sums far from overflow.
pub const MAX_WEIGHT: u32 = 1000;
/// Default and maximum concurrent client connections per listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const MAX_CONNECTIONS: usize = 1_000_000;
/// Bytes of request line + headers an HTTP client may send before it gets a
/// 431: HAProxy's default `tune.bufsize` is 16 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Maglev lookup table size: prime and ≥ 60 × MAX_BACKENDS_PER_POOL.
pub const MAGLEV_TABLE_SIZE: usize = 65_537;
/// PROXY v1 is at most 107 bytes (spec §2.1); v2 headers carry TLVs, we accept
/// up to 16 + 512 bytes and close connections that announce more.
pub const PROXY_V1_MAX_BYTES: usize = 107;
pub const PROXY_V2_MAX_BYTES: usize = 16 + 512;
/// Depth of the cluster → lb event channel. The daemon uses `try_send`/`send`;
/// the lb drains it continuously, so the bound only absorbs bursts.
pub const EVENT_QUEUE_DEPTH: usize = 1024;
/// Depth of a drain progress stream: a slow reader misses intermediate
/// reports (they are snapshots), never blocks the drain.
pub const DRAIN_PROGRESS_DEPTH: usize = 16;
/// How often a drain reports remaining connections.
pub const DRAIN_REPORT_INTERVAL_MS: u64 = 100;
/// Bytes of a health-check response we read: only the status line matters.
pub const HEALTH_RESPONSE_MAX_BYTES: usize = 1024;
/// Connect attempts per request/connection when a backend refuses: the first
/// pick plus retries on other backends (only before any byte was sent).
pub const MAX_CONNECT_ATTEMPTS: usize = 3;
/// Longest a pool may hold a request waiting for a backend: a planned
/// move takes a second or two; a client should not wait longer.
pub const MAX_HOLD_MS: u64 = 30_000;
/// Most requests one pool may hold at once (each is a task and a socket).
pub const MAX_HELD: usize = 100_000;
/// How long a request is held while the only eligible backends are ones
/// that failed it: long enough for a stopping backend to leave the pool.
pub const HOLD_FAILED_MS: u64 = 200;
/// How often a held request looks again for a backend, besides being woken
/// when the pool's backends change.
pub const HOLD_RECHECK_MS: u64 = 25;
/// Flap damping: this many state changes within the window hold a backend
/// down for `FLAP_HOLD_INTERVALS` check intervals after it recovers.
pub const FLAP_CHANGES: usize = 4;
pub const FLAP_WINDOW_INTERVALS: u32 = 20;
pub const FLAP_HOLD_INTERVALS: u32 = 6;
/// Passive outlier ejection backs off exponentially up to this multiple of
/// the configured ejection time.
pub const MAX_EJECT_MULTIPLIER: u32 = 8;
/// Idle keep-alive connections kept per backend by the L7 client.
pub const BACKEND_POOL_IDLE_PER_HOST: usize = 256;
/// A backend connection idle this long is closed instead of reused: below
/// common server keep-alive timeouts (Apache's 5 s), so a reused
/// connection is rarely one the backend is closing at that moment.
pub const BACKEND_CONN_IDLE_MS: u64 = 4_000;
/// Copy buffer for L4 proxying, per direction.
pub const L4_BUFFER_BYTES: usize = 16 * 1024;
/// Largest DNS query we read (classic UDP DNS is 512 bytes; EDNS0 queries
/// stay far below this).
pub const DNS_DATAGRAM_MAX_BYTES: usize = 4096;
