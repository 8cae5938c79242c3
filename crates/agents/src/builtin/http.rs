//! `ocf:tandem:HttpService`: an HTTP server on `bind:port` (parameters
//! `port`, required; `bind`, default the node's own address when the
//! daemon runs it (`TANDEM_NODE_ADDRESS`), else 127.0.0.1; `state_dir` for its pid
//! file, default `$HA_RSCTMP` or /run/tandem). start launches `tandem agent
//! serve-http` in its own session and waits for `/ready`; monitor is
//! `GET /ready` → 200; stop sends SIGTERM then SIGKILL. [`serve`] is the
//! server: `/ready` answers 200 "ready", `/` names the node serving.
//!
//! Must not: serve anything but these two paths.

use super::{fail, metadata_xml, rc};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long start waits for `/ready` and stop for the process to exit.
const SETTLE: Duration = Duration::from_secs(5);
/// Timeout of one health request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Request bytes read per connection by the server.
const MAX_REQUEST_BYTES: u64 = 8 * 1024;
/// Connections served at once, each on a thread of its own; more are
/// closed at once.
const MAX_CONNECTIONS: usize = 64;

pub fn action(
    action: &str,
    param: &dyn Fn(&str) -> Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> i32 {
    if action == "meta-data" {
        print!(
            "{}",
            metadata_xml(
                "HttpService",
                "Demo HTTP service (monitor: GET /ready)",
                &[
                    ("port", true, ""),
                    ("bind", false, "the node's address"),
                    ("state_dir", false, "")
                ],
            )
        );
        return rc::OK;
    }
    let Some(port) = param("port") else {
        return fail(rc::CONFIGURED, "parameter port is required");
    };
    let Ok(port) = port.parse::<u16>() else {
        return fail(
            rc::CONFIGURED,
            &format!("port `{port}` is not a port number"),
        );
    };
    // A clone serves on every node's own address with one configuration.
    let bind = param("bind")
        .or_else(|| env("TANDEM_NODE_ADDRESS").filter(|a| !a.is_empty()))
        .unwrap_or_else(|| "127.0.0.1".into());
    let instance = env("OCF_RESOURCE_INSTANCE").unwrap_or_else(|| "http".into());
    let state_dir = param("state_dir")
        .or_else(|| env("HA_RSCTMP"))
        .unwrap_or_else(|| "/run/tandem".into());
    let pidfile =
        PathBuf::from(state_dir).join(format!("HttpService-{}.pid", instance.replace('/', "_")));
    match action {
        "validate-all" => rc::OK,
        "monitor" | "status" => monitor(&pidfile, &bind, port),
        "start" => start(&pidfile, &bind, port),
        "stop" => stop(&pidfile),
        other => fail(
            rc::UNIMPLEMENTED,
            &format!("action `{other}` not supported"),
        ),
    }
}

fn monitor(pidfile: &PathBuf, bind: &str, port: u16) -> i32 {
    let pid = match read_pid(pidfile) {
        Some(pid) if alive(pid) => pid,
        _ => return rc::NOT_RUNNING,
    };
    // One retry: a single slow answer on a loaded machine is not a failure.
    let answer =
        get_with_body(bind, port, "/ready").or_else(|_| get_with_body(bind, port, "/ready"));
    // A process dying as it was asked (killed: its sockets close before it
    // is a zombie) is not running, not failed.
    if answer.is_err() && dies_soon(pid) {
        return rc::NOT_RUNNING;
    }
    match answer {
        Ok((200, body)) if body == format!("ready {pid}") => rc::OK,
        Ok((200, _)) => fail(
            rc::GENERIC,
            &format!("port {port} is served by another process"),
        ),
        Ok((code, _)) => fail(rc::GENERIC, &format!("GET /ready answered {code}")),
        Err(e) => fail(rc::GENERIC, &format!("GET /ready failed: {e}")),
    }
}

fn start(pidfile: &PathBuf, bind: &str, port: u16) -> i32 {
    if monitor(pidfile, bind, port) == rc::OK {
        return rc::OK;
    }
    let Ok(exe) = std::env::current_exe() else {
        return fail(rc::GENERIC, "cannot find the tandem binary");
    };
    if let Some(dir) = pidfile.parent() {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return fail(
                rc::GENERIC,
                &format!("cannot create {}: {e}", dir.display()),
            );
        }
    }
    let child = Command::new(exe)
        .args([
            "agent",
            "serve-http",
            "--bind",
            bind,
            "--port",
            &port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0) // outlives the agent's process group
        .spawn();
    let pid = match child {
        Ok(c) => c.id() as i32,
        Err(e) => return fail(rc::GENERIC, &format!("cannot start the server: {e}")),
    };
    if let Err(e) = std::fs::write(pidfile, format!("{pid}\n")) {
        return fail(
            rc::GENERIC,
            &format!("cannot write {}: {e}", pidfile.display()),
        );
    }
    let deadline = Instant::now() + SETTLE;
    let ours = format!("ready {pid}");
    while Instant::now() < deadline {
        match get_with_body(bind, port, "/ready") {
            Ok((200, body)) if body == ours => return rc::OK,
            Ok((_, body)) if !body.is_empty() => {
                return fail(
                    rc::GENERIC,
                    &format!("port {port} on {bind} is served by another process"),
                );
            }
            _ => {}
        }
        if !alive(pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    fail(
        rc::GENERIC,
        &format!(
            "server on {bind}:{port} did not become ready{}",
            exit_of(pid)
        ),
    )
}

fn stop(pidfile: &PathBuf) -> i32 {
    let Some(pid) = read_pid(pidfile) else {
        return rc::OK;
    };
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        // SAFETY: kill(2) on the pid this agent started and recorded.
        unsafe {
            libc::kill(pid, signal);
        }
        let deadline = Instant::now() + SETTLE;
        while Instant::now() < deadline && alive(pid) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !alive(pid) {
            let _ = std::fs::remove_file(pidfile);
            return rc::OK;
        }
    }
    fail(rc::GENERIC, &format!("process {pid} survived SIGKILL"))
}

fn read_pid(pidfile: &PathBuf) -> Option<i32> {
    std::fs::read_to_string(pidfile)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 1)
}

/// How our server child ended, if it did (it is reaped here).
fn exit_of(pid: i32) -> String {
    let mut status = 0;
    // SAFETY: waitpid on our own child with WNOHANG only reads its status.
    let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if reaped != pid {
        return String::new();
    }
    if libc::WIFSIGNALED(status) {
        format!(" (it was killed by signal {})", libc::WTERMSIG(status))
    } else {
        format!(" (it exited with code {})", libc::WEXITSTATUS(status))
    }
}

/// Whether `pid` is gone within half a second.
fn dies_soon(pid: i32) -> bool {
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    !alive(pid)
}

fn alive(pid: i32) -> bool {
    // A zombie (our own exited child) counts as dead.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    match stat.rsplit_once(") ") {
        Some((_, rest)) => !rest.starts_with('Z') && !rest.starts_with('X'),
        None => false,
    }
}

/// One GET; returns the status code.
pub fn get(host: &str, port: u16, path: &str) -> Result<u16, String> {
    get_with_body(host, port, path).map(|(code, _)| code)
}

/// `GET path` over HTTP/1.0: the status code and the first line of the body.
pub fn get_with_body(host: &str, port: u16, path: &str) -> Result<(u16, String), String> {
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{host} resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(PROBE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    // One write: `write!` may split the request over several syscalls.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.take(4096));
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let code = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line `{}`", line.trim()))?;
    // Skip the headers; the body's first line follows the blank line.
    let mut body = String::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).map_err(|e| e.to_string())? == 0 {
            break;
        }
        if header.trim().is_empty() {
            reader.read_line(&mut body).map_err(|e| e.to_string())?;
            break;
        }
    }
    Ok((code, body.trim().to_string()))
}

/// Serves `/ready` and `/` on `bind:port` until killed.
pub fn serve(bind: &str, port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind((bind, port))?;
    let node = std::env::var("TANDEM_NODE_NAME").unwrap_or_else(|_| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .to_string()
    });
    let node = std::sync::Arc::new(node);
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for stream in listener.incoming().flatten() {
        // One thread per connection, so a slow client (or a burst of
        // load) does not hold up the load balancer's health checks; past
        // the cap, a connection is closed at once (the accept loop never
        // waits on a client).
        let Some(slot) = Slot::take(&busy) else {
            continue;
        };
        let node = node.clone();
        // No thread to be had: that connection is dropped.
        let _ = std::thread::Builder::new().spawn(move || {
            let _slot = slot;
            let _ = answer(stream, &node);
        });
    }
    Ok(())
}

/// One connection's place among [`MAX_CONNECTIONS`].
struct Slot(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Slot {
    fn take(busy: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Option<Slot> {
        use std::sync::atomic::Ordering::Relaxed;
        busy.fetch_update(Relaxed, Relaxed, |n| (n < MAX_CONNECTIONS).then_some(n + 1))
            .ok()?;
        Some(Slot(busy.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A connection read against one deadline for the whole request head, so
/// a client trickling bytes cannot hold its thread for long.
struct Deadline {
    stream: TcpStream,
    until: std::time::Instant,
}

impl std::io::Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self
            .until
            .saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

fn answer(stream: TcpStream, node: &str) -> std::io::Result<()> {
    let head = Deadline {
        stream: stream.try_clone()?,
        until: std::time::Instant::now() + PROBE_TIMEOUT,
    };
    let mut reader = BufReader::new(head.take(MAX_REQUEST_BYTES));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Read the headers too: closing with unread request bytes makes the
    // kernel reset the connection under a client still writing them.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 0 && !header.trim().is_empty() {
        header.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = match path {
        // The pid lets start tell its own server from another process
        // that happens to listen on the same port.
        "/ready" => ("200 OK", format!("ready {}\n", std::process::id())),
        "/" => ("200 OK", format!("tandem demo service on {node}\n")),
        _ => ("404 Not Found", "not found\n".to_string()),
    };
    let mut stream = stream;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    write!(
        stream,
        "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
