//! `tandem status`, `tandem quorum status`, `tandem node standby|unstandby`,
//! `tandem property set`, `tandem config show|apply`: calls to the admin API
//! with the identity in `admin.toml`; human output or `--json`.

use anyhow::{Context, Result};
use hyper::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tandem_daemon::ApiClient;

#[derive(clap::Args, Debug, Clone)]
pub struct Conn {
    /// `admin.toml` written by `tandem cluster setup`.
    #[arg(
        long,
        env = "TANDEM_ADMIN",
        default_value = "tandem-cluster/admin.toml",
        global = true
    )]
    pub admin: PathBuf,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

pub fn call(conn: &Conn, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
    let client = ApiClient::from_file(&conn.admin)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(client.call(method, path, body))?)
}

pub fn status(conn: &Conn) -> Result<()> {
    let doc = call(conn, Method::GET, "/status", None)?;
    if conn.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    print_membership(&doc["cluster"]);
    println!("Config version: {}", doc["config_version"]);
    let (Some(running), Some(planned)) =
        (doc["running_text"].as_str(), doc["placement_text"].as_str())
    else {
        println!("\nNo configuration loaded (tandem config apply FILE).");
        return Ok(());
    };
    println!("\n{running}");
    if planned != running {
        println!("Transition in progress; when it is done:\n{planned}");
    }
    print_failures(&doc["failures"]);
    Ok(())
}

fn print_failures(failures: &Value) {
    let Some(list) = failures.as_array().filter(|l| !l.is_empty()) else {
        return;
    };
    println!("Failed Resource Actions:");
    for f in list {
        println!(
            "  * {}_{}_{} on {}: rc={} {}",
            f["resource"].as_str().unwrap_or("?"),
            f["operation"].as_str().unwrap_or("?"),
            f["interval_ms"],
            f["node"].as_str().unwrap_or("?"),
            f["rc"],
            f["reason"].as_str().unwrap_or("")
        );
    }
}

fn print_membership(c: &Value) {
    let quorum = if c["quorum"].as_bool() == Some(true) {
        "yes"
    } else {
        "NO"
    };
    println!(
        "Cluster: DC {} (term {}), quorum {quorum} ({}/{} votes needed)",
        c["dc"].as_str().unwrap_or("none"),
        c["term"],
        c["votes_needed"],
        c["voters"].as_array().map_or(0, Vec::len)
    );
    println!(
        "Answered by: {} ({})",
        c["node_name"].as_str().unwrap_or("?"),
        c["state"].as_str().unwrap_or("?")
    );
    for v in c["voters"].as_array().into_iter().flatten() {
        let state = if v["alive"].as_bool() == Some(true) {
            "online"
        } else {
            "LOST"
        };
        let role = if v["witness"].as_bool() == Some(true) {
            " witness"
        } else {
            ""
        };
        let heard = v["last_heard_ms"]
            .as_u64()
            .map_or("never".to_string(), |ms| format!("{ms} ms ago"));
        println!(
            "  {:<12} {:<7}{role}  {}  heard {heard}",
            v["name"].as_str().unwrap_or("?"),
            state,
            v["addr"].as_str().unwrap_or("?")
        );
    }
}

pub fn quorum(conn: &Conn) -> Result<()> {
    let view = call(conn, Method::GET, "/quorum", None)?;
    if conn.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print_membership(&view);
    }
    Ok(())
}

fn done(conn: &Conn, answer: Value, what: &str) -> Result<()> {
    if conn.json {
        println!("{answer}");
    } else {
        println!("{what} (config version {})", answer["config_version"]);
    }
    Ok(())
}

pub fn standby(conn: &Conn, node: &str, on: bool) -> Result<()> {
    let body = json!({ "node": node, "name": "standby", "value": on.then_some("on") });
    let answer = call(conn, Method::POST, "/node/attribute", Some(body))?;
    done(
        conn,
        answer,
        &format!("{node}: standby {}", if on { "on" } else { "off" }),
    )
}

pub fn fence(conn: &Conn, node: &str, off: bool) -> Result<()> {
    let body = json!({ "node": node, "action": if off { "off" } else { "reboot" } });
    let client = ApiClient::from_file(&conn.admin)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Any node but the target runs the devices; try them in turn.
    let mut answer = None;
    let mut refusals = Vec::new();
    for endpoint in client.endpoints() {
        let reply = rt.block_on(client.call_one(
            endpoint,
            Method::POST,
            "/node/fence",
            Some(body.clone()),
            std::time::Duration::from_secs(120),
        ));
        match reply {
            Ok((200, value)) => {
                answer = Some(value);
                break;
            }
            Ok((status, value)) if status == 409 || status >= 500 => refusals.push(format!(
                "{endpoint}: {}",
                value["error"].as_str().unwrap_or("?")
            )),
            Ok((status, value)) => anyhow::bail!(
                "{status}: {}",
                value["error"].as_str().unwrap_or("fencing refused")
            ),
            Err(e) => refusals.push(format!("{endpoint}: {e}")),
        }
    }
    let Some(answer) = answer else {
        anyhow::bail!("no node could fence {node}: {}", refusals.join("; "));
    };
    if conn.json {
        println!("{answer}");
    } else {
        println!("{node}: fenced ({})", if off { "off" } else { "reboot" });
        for r in answer["history"].as_array().into_iter().flatten() {
            println!(
                "  {} by {} on {}: {} {}",
                r["action"].as_str().unwrap_or("?"),
                r["device"].as_str().unwrap_or("?"),
                r["executor"].as_str().unwrap_or("?"),
                if r["ok"] == true { "ok" } else { "FAILED" },
                r["detail"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

pub fn property_set(conn: &Conn, kv: &str) -> Result<()> {
    let (k, v) = kv
        .split_once('=')
        .with_context(|| format!("{kv:?}: expected NAME=VALUE"))?;
    let answer = call(
        conn,
        Method::POST,
        "/property",
        Some(json!({ "name": k, "value": v })),
    )?;
    done(conn, answer, &format!("property {k} = {v}"))
}

pub fn config_show(conn: &Conn) -> Result<()> {
    let doc = call(conn, Method::GET, "/config", None)?;
    if conn.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", doc["text"].as_str().unwrap_or(""));
    }
    Ok(())
}

pub fn config_apply(conn: &Conn, file: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    tandem_model::native::parse_toml(&text)
        .with_context(|| format!("{}: not applied", file.display()))?;
    let current = call(conn, Method::GET, "/config", None)?;
    let body = json!({ "expected_version": current["expected_version"], "text": text });
    let answer = call(conn, Method::PUT, "/config", Some(body))?;
    done(conn, answer, &format!("applied {}", file.display()))
}
