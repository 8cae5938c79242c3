//! `tandem lb`: run the traffic distribution layer from a config file
//! (`run`), validate one (`check`), or show a running lb's backends
//! (`status`, from its admin endpoint). The work is in `tandem-lb`.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;
use tandem_lb::{Config, Lb, Status};

#[derive(clap::Subcommand, Debug)]
pub enum LbCommand {
    /// Serve the listeners of a config file until interrupted (Ctrl-C).
    /// SIGHUP re-reads TLS certificates without dropping connections.
    Run {
        /// The lb's configuration (`examples/lb.toml`, docs/lb.md).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Worker threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Validate a config file and report every problem.
    Check {
        /// The lb's configuration to check.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Stop new traffic to a backend and show remaining connections until
    /// none are left (existing ones finish).
    Drain {
        /// The pool (`[[pool]] name`).
        pool: String,
        /// The backend, as its address in the pool (`IP:PORT`).
        backend: String,
        /// The lb's `[admin] bind` address.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9100")]
        admin: SocketAddr,
        /// Stop following after this long (the backend stays drained).
        #[arg(long, value_name = "MS")]
        timeout_ms: Option<u64>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Take traffic again (with the pool's slow start).
    Undrain {
        /// The pool (`[[pool]] name`).
        pool: String,
        /// The backend, as its address in the pool (`IP:PORT`).
        backend: String,
        /// The lb's `[admin] bind` address.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9100")]
        admin: SocketAddr,
    },
    /// Backends of a running lb: health, drain, active connections, requests.
    Status {
        /// The lb's `[admin] bind` address.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9100")]
        admin: SocketAddr,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: LbCommand) -> Result<()> {
    // Write errors (a closed pipe) become errors, not panics.
    let mut out = std::io::stdout().lock();
    match command {
        LbCommand::Check { config } => {
            let c = Config::load(&config)?;
            writeln!(
                out,
                "{}: ok ({} listener(s), {} pool(s))",
                config.display(),
                c.listeners.len(),
                c.pools.len()
            )?;
            Ok(())
        }
        LbCommand::Run { config, threads } => serve(Config::load(&config)?, threads),
        LbCommand::Status { admin, json } => status(admin, json),
        LbCommand::Drain {
            pool,
            backend,
            admin,
            timeout_ms,
            json,
        } => drain(admin, &format!("/drain/{pool}/{backend}"), timeout_ms, json),
        LbCommand::Undrain {
            pool,
            backend,
            admin,
        } => {
            let body = http_request(admin, "POST", &format!("/undrain/{pool}/{backend}"))?;
            write!(out, "{body}")?;
            Ok(())
        }
    }
}

fn serve(config: Config, threads: Option<usize>) -> Result<()> {
    crate::logging::init("RUST_LOG", "info");
    // One thread: a current-thread runtime, no cross-thread wake-ups (what
    // a pinned single-core lb wants). More: the work-stealing scheduler.
    let mut rt = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.max(1));
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let rt = rt.enable_all().build().context("starting the runtime")?;
    rt.block_on(async {
        let lb = Lb::start(config).await?;
        for l in lb.status().pools {
            eprintln!("pool {}: {} backend(s)", l.name, l.backends.len());
        }
        if let Some(a) = lb.admin_addr() {
            eprintln!("admin: http://{a}/metrics and /status");
        }
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = hup.recv() => {
                    if let Err(e) = lb.reload_tls() {
                        eprintln!("TLS reload failed, old certificates stay: {e}");
                    }
                }
            }
        }
        lb.shutdown();
        Ok(())
    })
}

fn status(admin: SocketAddr, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let body = http_request(admin, "GET", "/status")
        .with_context(|| format!("asking the lb at {admin}"))?;
    if json {
        writeln!(out, "{body}")?;
        return Ok(());
    }
    let status: Status = serde_json::from_str(&body).context("reading the lb's status")?;
    for p in status.pools {
        writeln!(out, "pool {} (skew {:.2})", p.name, p.skew)?;
        writeln!(
            out,
            "  {:<16} {:<22} {:>6} {:<8} {:>7} {:>10}",
            "BACKEND", "ADDRESS", "WEIGHT", "STATE", "ACTIVE", "REQUESTS"
        )?;
        for b in p.backends {
            let state = if b.lost {
                "lost"
            } else if b.drained {
                "drained"
            } else if !b.up {
                "down"
            } else if b.ejected {
                "ejected"
            } else {
                "up"
            };
            writeln!(
                out,
                "  {:<16} {:<22} {:>6} {:<8} {:>7} {:>10}",
                b.name,
                b.addr.to_string(),
                b.weight,
                state,
                b.active,
                b.requests
            )?;
        }
    }
    Ok(())
}

/// Follow a drain's JSON-lines progress as it arrives.
fn drain(admin: SocketAddr, path: &str, timeout_ms: Option<u64>, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    use std::io::BufRead;
    let mut s = TcpStream::connect_timeout(&admin, Duration::from_secs(3))
        .with_context(|| format!("asking the lb at {admin}"))?;
    // Progress arrives every 100 ms, so a read that waits this long means
    // the timeout has passed (or the lb is gone).
    s.set_read_timeout(timeout_ms.map(|ms| Duration::from_millis(ms.max(1))))?;
    let deadline = timeout_ms.map(|ms| std::time::Instant::now() + Duration::from_millis(ms));
    let mut remaining = None;
    write!(s, "POST {path} HTTP/1.0\r\nHost: {admin}\r\n\r\n")?;
    let mut lines = std::io::BufReader::new(s).lines();
    let status = lines.next().transpose()?.unwrap_or_default();
    let ok = status.contains(" 200 ");
    let mut in_body = false;
    for line in lines {
        let expired = deadline.is_some_and(|d| std::time::Instant::now() >= d);
        let line = match line {
            Ok(_) | Err(_) if expired => {
                bail!(
                    "drain not finished within the timeout; {} remaining (the backend stays drained)",
                    remaining.map_or("?".to_string(), |r: u64| r.to_string())
                )
            }
            Ok(l) => l,
            Err(e) => return Err(e.into()),
        };
        if !in_body {
            in_body = line.is_empty();
            continue;
        }
        if !ok {
            bail!("{}", line);
        }
        if json {
            writeln!(out, "{line}")?;
            continue;
        }
        let p: tandem_lb::DrainProgress = serde_json::from_str(&line)?;
        remaining = Some(p.remaining);
        if p.done {
            writeln!(
                out,
                "{}/{}: drained after {} ms",
                p.pool, p.backend, p.elapsed_ms
            )?;
        } else {
            writeln!(
                out,
                "{}/{}: {} remaining ({} ms)",
                p.pool, p.backend, p.remaining, p.elapsed_ms
            )?;
        }
    }
    if !ok {
        bail!("{status}");
    }
    Ok(())
}

/// A tiny blocking HTTP/1.0 request: the CLI needs no async client for this.
fn http_request(addr: SocketAddr, method: &str, path: &str) -> Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    s.take(16 << 20).read_to_string(&mut text)?;
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("no HTTP response");
    };
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("{}", head.lines().next().unwrap_or("bad response"));
    }
    Ok(body.to_string())
}
