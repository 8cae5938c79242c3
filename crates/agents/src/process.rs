//! Runs one agent process: its own process group, a deadline, SIGTERM then
//! SIGKILL to the whole group at the deadline, capped stdout/stderr capture
//! that keeps draining so the agent never blocks, optional stdin text.
//!
//! Main types: [`Spawn`] (what to run) and [`Finished`] (how it ended).
//! Must not: interpret exit codes; that is each agent class's job.

use crate::limits::{DRAIN_AFTER_EXIT_MS, OUTPUT_TAIL_BYTES, POLL_SLICE_MS, REAP_WAIT_MS};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Asks a running agent to end now, the way its timeout would (SIGTERM to
/// its group, SIGKILL after the grace): a start still running when the node
/// loses its lease must not finish after the DC has recovered the resource
/// elsewhere. Clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Two handles are equal when they share the flag.
impl PartialEq for Cancel {
    fn eq(&self, other: &Cancel) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Cancel {}

/// One process to run.
#[derive(Clone, Debug)]
pub struct Spawn {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments (the action for OCF/LSB agents).
    pub args: Vec<String>,
    /// The whole environment: agents get exactly this, nothing inherited.
    pub env: Vec<(String, String)>,
    /// Text fed on stdin then closed (fence agents); `None` gives /dev/null.
    pub stdin: Option<String>,
    /// When SIGTERM goes to the process group.
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Bytes of stdout and of stderr kept.
    pub output_cap: usize,
    /// Ends the process early, as its timeout would.
    pub cancel: Option<Cancel>,
}

/// How the process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Exited by itself with this code.
    Exited(i32),
    /// Killed by a signal nobody here sent (e.g. a segfault).
    Signaled(i32),
    /// Reached its timeout; `killed` says whether SIGKILL was needed after
    /// SIGTERM, `reaped` whether the kernel gave the process back at all.
    TimedOut { killed: bool, reaped: bool },
    /// Ended early through its [`Cancel`]; the fields as for `TimedOut`.
    Cancelled { killed: bool, reaped: bool },
}

/// What one run produced.
#[derive(Clone, Debug)]
pub struct Finished {
    pub ending: Ending,
    /// Captured stdout, at most the cap, lossily decoded.
    pub stdout: String,
    /// Captured stderr, lossily decoded: at most the cap, and past it also
    /// its last `OUTPUT_TAIL_BYTES` after a marker.
    pub stderr: String,
    /// Bytes read past the cap and dropped (stdout + stderr).
    pub dropped_bytes: u64,
    /// Wall time from spawn to the end.
    pub elapsed: Duration,
}

/// Why a process could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot execute {program}: {source}")]
    Exec {
        program: String,
        source: std::io::Error,
    },
    #[error("stdin for {program} is {len} bytes; at most {max} are allowed")]
    StdinTooLarge {
        program: String,
        len: usize,
        max: usize,
    },
}

/// Runs `spawn` to completion (or to its kill) and reports how it ended.
pub fn run(spawn: &Spawn, stdin_max: usize) -> Result<Finished, SpawnError> {
    let program = spawn.program.display().to_string();
    if let Some(text) = &spawn.stdin {
        if text.len() > stdin_max {
            return Err(SpawnError::StdinTooLarge {
                program,
                len: text.len(),
                max: stdin_max,
            });
        }
    }
    let started = Instant::now();
    let start = || {
        Command::new(&spawn.program)
            .args(&spawn.args)
            .env_clear()
            .envs(spawn.env.iter().map(|(k, v)| (k, v)))
            .stdin(if spawn.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
    };
    // ETXTBSY: a script just written here is still open for writing in a
    // child another thread forked before its exec; it passes at once.
    let mut tries = 0;
    let mut child = loop {
        match start() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 10 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => {
                break other.map_err(|source| SpawnError::Exec {
                    program: program.clone(),
                    source,
                })?
            }
        }
    };
    if let (Some(text), Some(mut pipe)) = (&spawn.stdin, child.stdin.take()) {
        // Below the pipe buffer size (checked above), so this never blocks;
        // an agent that exits without reading gives EPIPE, which is fine.
        let _ = pipe.write_all(text.as_bytes());
    }
    let mut capture = Capture::new(&mut child, spawn.output_cap);
    let ending = supervise(&mut child, &mut capture, spawn, started);
    Ok(Finished {
        ending,
        stdout: capture.streams[0].text(),
        stderr: capture.streams[1].text(),
        dropped_bytes: capture.streams.iter().map(|s| s.dropped).sum(),
        elapsed: started.elapsed(),
    })
}

/// Reads the pipes until the child exits, killing its group at the deadline.
fn supervise(child: &mut Child, capture: &mut Capture, spawn: &Spawn, started: Instant) -> Ending {
    let pgid = child.id() as i32;
    let term_at = started + spawn.timeout;
    let cancel = spawn.cancel.as_ref();
    if let Some(status) = wait_until(child, capture, term_at, cancel) {
        return ending_of(status);
    }
    let cancelled = cancel.is_some_and(Cancel::is_cancelled);
    let ended = |killed, reaped| match cancelled {
        true => Ending::Cancelled { killed, reaped },
        false => Ending::TimedOut { killed, reaped },
    };
    signal_group(pgid, libc::SIGTERM);
    if wait_until(child, capture, Instant::now() + spawn.kill_grace, None).is_some() {
        return ended(false, true);
    }
    signal_group(pgid, libc::SIGKILL);
    let reap_by = Instant::now() + Duration::from_millis(REAP_WAIT_MS);
    let reaped = wait_until(child, capture, reap_by, None).is_some();
    ended(true, reaped)
}

/// Polls until the child exits (then drains briefly), `deadline` passes or
/// `cancel` is set.
fn wait_until(
    child: &mut Child,
    capture: &mut Capture,
    deadline: Instant,
    cancel: Option<&Cancel>,
) -> Option<ExitStatus> {
    loop {
        if cancel.is_some_and(Cancel::is_cancelled) {
            return None;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let drain_by = Instant::now() + Duration::from_millis(DRAIN_AFTER_EXIT_MS);
            while capture.open() && Instant::now() < drain_by {
                capture.poll_once(drain_by);
            }
            return Some(status);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        let slice = (now + Duration::from_millis(POLL_SLICE_MS)).min(deadline);
        if capture.open() {
            capture.poll_once(slice);
        } else {
            std::thread::sleep(slice - now);
        }
    }
}

fn ending_of(status: ExitStatus) -> Ending {
    match (status.code(), status.signal()) {
        (Some(code), _) => Ending::Exited(code),
        (None, Some(sig)) => Ending::Signaled(sig),
        (None, None) => Ending::Signaled(0),
    }
}

fn signal_group(pgid: i32, signal: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals that process group;
        // the group was created for this child alone (process_group(0)).
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// stdout and stderr of one child, read without blocking.
struct Capture {
    streams: [Stream; 2],
}

struct Stream {
    pipe: Option<Box<dyn ReadFd>>,
    kept: Vec<u8>,
    dropped: u64,
    cap: usize,
    /// The last bytes past the cap, at most `tail_cap` (stderr only: the
    /// exit reason is what an agent prints last, after any flood).
    tail: Vec<u8>,
    tail_cap: usize,
}

trait ReadFd: Read + AsRawFd {}
impl<T: Read + AsRawFd> ReadFd for T {}

impl Capture {
    fn new(child: &mut Child, cap: usize) -> Capture {
        let out = child.stdout.take().map(|p| Box::new(p) as Box<dyn ReadFd>);
        let err = child.stderr.take().map(|p| Box::new(p) as Box<dyn ReadFd>);
        let streams = [(out, 0), (err, OUTPUT_TAIL_BYTES)].map(|(pipe, tail_cap)| {
            if let Some(p) = &pipe {
                set_nonblocking(p.as_raw_fd());
            }
            Stream {
                pipe,
                kept: Vec::new(),
                dropped: 0,
                cap,
                tail: Vec::new(),
                tail_cap,
            }
        });
        Capture { streams }
    }

    fn open(&self) -> bool {
        self.streams.iter().any(|s| s.pipe.is_some())
    }

    /// One poll(2) on the open pipes, waiting at most until `until`, then
    /// reads whatever is ready.
    fn poll_once(&mut self, until: Instant) {
        let mut fds: Vec<libc::pollfd> = self
            .streams
            .iter()
            .filter_map(|s| s.pipe.as_ref())
            .map(|p| libc::pollfd {
                fd: p.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let wait_ms = until.saturating_duration_since(Instant::now()).as_millis();
        let wait_ms = wait_ms.min(POLL_SLICE_MS as u128) as i32;
        // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd.
        unsafe {
            libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms);
        }
        for stream in &mut self.streams {
            stream.read_available();
        }
    }
}

impl Stream {
    fn read_available(&mut self) {
        let Some(pipe) = self.pipe.as_mut() else {
            return;
        };
        let mut buf = [0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => {
                    self.pipe = None;
                    return;
                }
                Ok(n) => {
                    let room = self.cap.saturating_sub(self.kept.len());
                    let keep = n.min(room);
                    self.kept.extend_from_slice(&buf[..keep]);
                    self.dropped += (n - keep) as u64;
                    if self.tail_cap > 0 && keep < n {
                        self.tail.extend_from_slice(&buf[keep..n]);
                        let excess = self.tail.len().saturating_sub(self.tail_cap);
                        self.tail.drain(..excess);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.pipe = None;
                    return;
                }
            }
        }
    }
}

impl Stream {
    /// What was kept, lossily decoded; past the cap, the head, a marker
    /// and the tail.
    fn text(&self) -> String {
        if self.tail.is_empty() {
            return String::from_utf8_lossy(&self.kept).into_owned();
        }
        let skipped = self.dropped - self.tail.len() as u64;
        format!(
            "{}\n[... {skipped} bytes not kept ...]\n{}",
            String::from_utf8_lossy(&self.kept),
            String::from_utf8_lossy(&self.tail)
        )
    }
}

fn set_nonblocking(fd: i32) {
    // SAFETY: fcntl on a pipe fd this process owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh_spawn(script: &str, timeout_ms: u64) -> Spawn {
        Spawn {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            stdin: None,
            timeout: Duration::from_millis(timeout_ms),
            kill_grace: Duration::from_millis(300),
            output_cap: 1024,
            cancel: None,
        }
    }

    fn sh(script: &str, timeout_ms: u64) -> Finished {
        run(&sh_spawn(script, timeout_ms), 1024).unwrap()
    }

    #[test]
    fn a_cancelled_process_group_is_killed_before_its_timeout() {
        let dir = std::env::temp_dir().join(format!("tandem-cancel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("child.pid");
        // A child in the agent's group that would outlive a plain kill of
        // the agent: the whole group must go.
        let script = format!("sleep 30 & echo $! > {}; wait", marker.display());
        let mut spawn = sh_spawn(&script, 30_000);
        let cancel = Cancel::default();
        spawn.cancel = Some(cancel.clone());
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            cancel.cancel();
        });
        let f = run(&spawn, 1024).unwrap();
        canceller.join().unwrap();
        assert_eq!(
            f.ending,
            Ending::Cancelled {
                killed: false,
                reaped: true
            }
        );
        assert!(f.elapsed < Duration::from_secs(5), "{:?}", f.elapsed);
        let child: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // Gone, or a zombie waiting for its new parent to reap it.
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let alive = stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!alive, "the agent's child {child} survived the cancel");
    }

    #[test]
    fn exit_code_and_output_are_captured() {
        let f = sh("echo out; echo err >&2; exit 3", 5_000);
        assert_eq!(f.ending, Ending::Exited(3));
        assert_eq!(f.stdout, "out\n");
        assert_eq!(f.stderr, "err\n");
    }

    #[test]
    fn output_past_the_cap_is_dropped_and_counted() {
        let f = sh("head -c 100000 /dev/zero", 5_000);
        assert_eq!(f.ending, Ending::Exited(0));
        assert_eq!(f.stdout.len(), 1024);
        assert_eq!(f.dropped_bytes, 100_000 - 1024);
    }

    #[test]
    fn the_end_of_a_flooded_stderr_is_kept_for_the_exit_reason() {
        let f = sh(
            "head -c 100000 /dev/zero | tr '\\0' y >&2; echo 'ocf-exit-reason:late' >&2; exit 1",
            5_000,
        );
        assert_eq!(f.ending, Ending::Exited(1));
        assert!(
            f.stderr.starts_with(&"y".repeat(1024)),
            "{}",
            &f.stderr[..40]
        );
        assert!(f.stderr.ends_with("ocf-exit-reason:late\n"), "{}", f.stderr);
        assert!(f.stderr.len() <= 1024 + OUTPUT_TAIL_BYTES + 64);
        assert_eq!(f.dropped_bytes, 100_000 + 21 - 1024);
    }

    #[test]
    fn a_hanging_process_is_terminated_at_its_timeout() {
        let f = sh("sleep 30", 200);
        assert_eq!(
            f.ending,
            Ending::TimedOut {
                killed: false,
                reaped: true
            }
        );
        assert!(f.elapsed < Duration::from_secs(10));
    }

    #[test]
    fn a_missing_program_is_an_exec_error_naming_it() {
        let spawn = Spawn {
            program: "/nonexistent/agent".into(),
            args: vec![],
            env: vec![],
            stdin: None,
            timeout: Duration::from_secs(1),
            kill_grace: Duration::from_secs(1),
            output_cap: 10,
            cancel: None,
        };
        let e = run(&spawn, 10).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/agent"), "{e}");
    }
}
