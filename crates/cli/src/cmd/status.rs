//! `tandem status`, `tandem quorum status`, `tandem node standby|unstandby|
//! maintenance|unmaintenance`, `tandem property set|list`, and the calls
//! every admin command shares ([`call`], [`edit`]): the admin API with the
//! identity in `admin.toml`; human output or `--json`.

use anyhow::{Context, Result};
use hyper::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
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
    print_fail_counts(&doc["transient"]);
    print_failures(&doc["failures"]);
    print_fencing(&doc["fence_history"]);
    print_node_loss(&doc["node_loss"]);
    Ok(())
}

/// How each node's loss is settled, and what a lost node waits for.
fn print_node_loss(loss: &Value) {
    let nodes = loss.as_array().into_iter().flatten();
    let lines: Vec<String> = nodes
        .map(|n| {
            format!(
                "  {:<12} {}: {}",
                n["node"].as_str().unwrap_or("?"),
                n["settled_by"].as_str().unwrap_or("?"),
                n["state"].as_str().unwrap_or("?")
            )
        })
        .collect();
    if !lines.is_empty() {
        println!("\nNode loss settled by:\n{}", lines.join("\n"));
    }
}

pub fn confirm_down(conn: &Conn, node: &str) -> Result<()> {
    let answer = call(
        conn,
        Method::POST,
        "/node/confirm-down",
        Some(json!({ "node": node })),
    )?;
    if conn.json {
        println!("{answer}");
    } else {
        println!("{}", answer["message"].as_str().unwrap_or("confirmed"));
    }
    Ok(())
}

/// crm_mon's "Migration Summary": fail counts per node and resource.
fn print_fail_counts(transient: &Value) {
    let mut lines = Vec::new();
    for (node, attrs) in transient.as_object().into_iter().flatten() {
        for (name, value) in attrs.as_object().into_iter().flatten() {
            if let Some(key) = name.strip_prefix("fail-count-") {
                lines.push(format!(
                    "  * {node}: {key}: fail-count={}",
                    value.as_str().unwrap_or("?")
                ));
            }
        }
    }
    if !lines.is_empty() {
        println!("Migration Summary:\n{}", lines.join("\n"));
    }
}

/// The latest fencing attempts (and nodes recovered by the lease rule).
fn print_fencing(history: &Value) {
    let Some(list) = history.as_array().filter(|l| !l.is_empty()) else {
        return;
    };
    println!("Fencing History:");
    for r in list.iter().rev().take(10) {
        let by = match r["device"].as_str() {
            Some("") | None => "the lease rule".to_string(),
            Some(device) => format!("{device} from {}", r["executor"].as_str().unwrap_or("?")),
        };
        println!(
            "  * {} of {} by {by}: {} ({})",
            r["action"].as_str().unwrap_or("?"),
            r["target"].as_str().unwrap_or("?"),
            if r["ok"] == true { "done" } else { "FAILED" },
            r["detail"].as_str().unwrap_or("")
        );
    }
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
    let voters = c["voters"].as_array().into_iter().flatten();
    let learners = c["learners"].as_array().into_iter().flatten();
    let members = voters
        .map(|v| (v, ""))
        .chain(learners.map(|v| (v, " learner")));
    for (v, learner) in members {
        let state = if v["alive"].as_bool() == Some(true) {
            "online"
        } else {
            "LOST"
        };
        let witness = if v["witness"].as_bool() == Some(true) {
            " witness"
        } else {
            ""
        };
        let role = format!("{witness}{learner}");
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

/// Commits one operator edit (`POST /edit`); prints what changed and the
/// scheduler's summary of what it sets in motion.
pub fn edit(conn: &Conn, edit: &tandem_daemon::edit::Edit) -> Result<Value> {
    let body = json!({ "edit": edit, "dry_run": false });
    let answer = call(conn, Method::POST, "/edit", Some(body))?;
    if conn.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!(
            "{} (config version {})",
            answer["message"].as_str().unwrap_or("done"),
            answer["config_version"]
        );
        print_summary(&answer["plan"]);
    }
    Ok(answer)
}

/// The Transition Summary of a preview (`config plan`, `apply`, edits).
pub fn print_summary(plan: &Value) {
    match plan["summary_text"].as_str() {
        Some("") => println!("Transition Summary: nothing to do"),
        Some(text) => print!("Transition Summary:\n{text}"),
        None => {}
    }
    for w in plan["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", w.as_str().unwrap_or_default());
    }
}

fn done(conn: &Conn, answer: Value, what: &str) -> Result<()> {
    if conn.json {
        println!("{answer}");
    } else {
        println!("{what} (config version {})", answer["config_version"]);
    }
    Ok(())
}

/// Sets (`on`) or removes a node attribute such as `standby` or `maintenance`.
pub fn node_flag(conn: &Conn, node: &str, name: &str, on: bool) -> Result<()> {
    let body = json!({ "node": node, "name": name, "value": on.then_some("on") });
    let answer = call(conn, Method::POST, "/node/attribute", Some(body))?;
    done(
        conn,
        answer,
        &format!("{node}: {name} {}", if on { "on" } else { "off" }),
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

/// The running configuration (empty before one was loaded).
pub fn running(conn: &Conn) -> Result<tandem_model::Cluster> {
    let doc = call(conn, Method::GET, "/config", None)?;
    match doc["text"].as_str().unwrap_or_default() {
        "" => Ok(tandem_model::Cluster::default()),
        text => tandem_model::native::parse_toml(text).context("the running configuration"),
    }
}

pub fn property_list(conn: &Conn) -> Result<()> {
    let options = running(conn)?.config.options;
    let pairs: Vec<(String, String)> = options
        .iter()
        .flat_map(|s| &s.pairs)
        .filter_map(|p| Some((p.name.clone(), p.value.clone()?)))
        .collect();
    if conn.json {
        let map: serde_json::Map<String, Value> = pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        println!("{}", serde_json::to_string_pretty(&map)?);
    } else if pairs.is_empty() {
        println!("No cluster properties set.");
    } else {
        for (k, v) in pairs {
            println!("{k}: {v}");
        }
    }
    Ok(())
}

pub fn property_set(conn: &Conn, kv: &str) -> Result<()> {
    let (k, v) = kv
        .split_once('=')
        .with_context(|| format!("{kv:?}: expected NAME=VALUE"))?;
    let value = (!v.is_empty()).then(|| v.to_string());
    edit(
        conn,
        &tandem_daemon::edit::Edit::SetProperty {
            name: k.to_string(),
            value,
        },
    )
    .map(|_| ())
}
