//! `tandem node drain NODE [--timeout]` and `tandem node undrain NODE`:
//! the graceful way to take a node out of service. Drain sets the
//! replicated `drain` attribute, so every node's load balancer stops
//! sending the node new connections and requests while existing ones
//! finish; the command shows what is left on every load balancer and, once
//! nothing is (or the timeout passes), puts the node in standby so the
//! cluster moves its resources. Undrain reverses both; the load balancers
//! ramp the node up again (slow start).

use super::status::{call, Conn};
use anyhow::Result;
use hyper::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tandem_daemon::ApiClient;

/// How often the load balancers are asked for progress.
const POLL: Duration = Duration::from_millis(200);

pub fn drain(conn: &Conn, node: &str, timeout: Duration) -> Result<()> {
    set(conn, node, "drain", Some("on"))?;
    let client = ApiClient::from_file(&conn.admin)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut last_report = None;
    let outcome = loop {
        let progress = rt.block_on(progress(&client, node));
        if last_report.as_ref() != Some(&progress) {
            report(conn, node, &progress, started.elapsed());
            last_report = Some(progress.clone());
        }
        if progress.done() {
            break "drained";
        }
        if started.elapsed() >= timeout {
            break "timed out";
        }
        std::thread::sleep(POLL);
    };
    set(conn, node, "standby", Some("on"))?;
    let summary = json!({
        "node": node,
        "result": outcome,
        "seconds": started.elapsed().as_secs_f64(),
        "remaining": last_report.map_or(0, |p| p.remaining),
        "standby": true,
    });
    if conn.json {
        println!("{summary}");
    } else {
        println!(
            "{node}: {outcome} after {:.1} s; now in standby (its resources move)",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

pub fn undrain(conn: &Conn, node: &str) -> Result<()> {
    set(conn, node, "standby", None)?;
    set(conn, node, "drain", None)?;
    if conn.json {
        println!(
            "{}",
            json!({ "node": node, "drain": false, "standby": false })
        );
    } else {
        println!("{node}: out of standby and taking traffic again (slow start)");
    }
    Ok(())
}

fn set(conn: &Conn, node: &str, name: &str, value: Option<&str>) -> Result<Value> {
    let body = json!({ "node": node, "name": name, "value": value });
    call(conn, Method::POST, "/node/attribute", Some(body))
}

/// What the load balancers report about one backend, summed.
#[derive(Clone, Debug, PartialEq)]
struct Progress {
    /// Load balancers that have the node as a backend.
    balancers: usize,
    /// Of those, the ones that already stopped sending it new traffic.
    draining: usize,
    /// Connections (L4) or requests (L7) still open to it.
    remaining: u64,
    /// Endpoints that did not answer.
    unreachable: usize,
}

impl Progress {
    fn done(&self) -> bool {
        self.draining == self.balancers && self.remaining == 0
    }
}

async fn progress(client: &ApiClient, node: &str) -> Progress {
    let mut p = Progress {
        balancers: 0,
        draining: 0,
        remaining: 0,
        unreachable: 0,
    };
    for endpoint in client.endpoints() {
        let answer = client
            .call_one(
                endpoint,
                Method::GET,
                "/traffic",
                None,
                Duration::from_secs(2),
            )
            .await;
        let Ok((200, status)) = answer else {
            p.unreachable += 1;
            continue;
        };
        let backends = status["pools"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|pool| pool["backends"].as_array().into_iter().flatten())
            .filter(|b| b["name"] == node);
        let mut here = false;
        let mut drained_here = true;
        for b in backends {
            here = true;
            drained_here &= b["drained"] == true || b["lost"] == true;
            p.remaining += b["active"].as_u64().unwrap_or(0);
        }
        if here {
            p.balancers += 1;
            p.draining += usize::from(drained_here);
        }
    }
    p
}

fn report(conn: &Conn, node: &str, p: &Progress, elapsed: Duration) {
    if conn.json {
        println!(
            "{}",
            json!({
                "node": node,
                "elapsed_s": elapsed.as_secs_f64(),
                "balancers": p.balancers,
                "draining": p.draining,
                "remaining": p.remaining,
                "unreachable": p.unreachable,
            })
        );
    } else {
        println!(
            "{node}: {} connection(s) left; {}/{} load balancer(s) draining{}",
            p.remaining,
            p.draining,
            p.balancers,
            if p.unreachable > 0 {
                format!(" ({} node(s) did not answer)", p.unreachable)
            } else {
                String::new()
            }
        );
    }
}
