//! `tandem resource ...` (pcs-like): create/update/delete/show, enable and
//! disable, move/ban/clear, cleanup and failcount. Every change is one
//! [`Edit`] the daemon applies to the configuration it read and commits with
//! that version; this file parses arguments and prints.

use super::status::{call, edit, Conn};
use anyhow::{bail, Context, Result};
use hyper::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tandem_daemon::edit::{Edit, OpSpec};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: ResourceCommand,
    #[command(flatten)]
    conn: Conn,
}

#[derive(clap::Subcommand, Debug)]
enum ResourceCommand {
    /// Create a primitive: ID class:provider:type [name=value...] [meta
    /// name=value...] [op NAME interval=10s timeout=20s ...].
    Create {
        /// The new resource's id (letters, digits, `_`, `-`, `.`).
        id: String,
        /// Its agent, `class:provider:type` (`ocf:heartbeat:IPaddr2`,
        /// `systemd:nginx`, `stonith:fence_ipmilan`).
        agent: String,
        /// `name=value` parameters, then `meta name=value ...` and
        /// `op NAME name=value ...` groups.
        #[arg(value_name = "ATTRIBUTES")]
        rest: Vec<String>,
        /// Append it to this group (created if it does not exist).
        #[arg(long)]
        group: Option<String>,
    },
    /// Change parameters (`name=` removes one), meta-attributes (`meta
    /// name=value`) or operations (`op NAME ...` replaces those named NAME).
    Update {
        /// The resource to change.
        id: String,
        /// `name=value` parameters (`name=` removes one), then `meta
        /// name=value ...` and `op NAME name=value ...` groups.
        #[arg(value_name = "ATTRIBUTES")]
        rest: Vec<String>,
    },
    /// Delete a resource and every constraint that names it.
    Delete {
        /// The resource (a group or clone with what it holds).
        id: String,
    },
    /// Show one resource or all: configuration, where it runs, constraints.
    Show {
        /// The resource (a group or clone with its members); every one
        /// without.
        id: Option<String>,
    },
    /// Let the cluster start it (removes target-role).
    Enable {
        /// The resource.
        id: String,
    },
    /// Stop it and keep it stopped (target-role=Stopped).
    Disable {
        /// The resource.
        id: String,
    },
    /// Move it to NODE: a `cli-prefer-ID` constraint, kept until the
    /// resource runs there, then removed (unless --keep-constraint or
    /// --lifetime).
    Move {
        /// The resource to move.
        id: String,
        /// The node to run it on.
        node: String,
        /// The constraint expires by itself after this (e.g. 30min, PT1H).
        #[arg(long)]
        lifetime: Option<String>,
        /// Keep the `cli-prefer-ID` constraint after the move.
        #[arg(long)]
        keep_constraint: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 60)]
        wait: u64,
    },
    /// Keep it off NODE: a `cli-ban-ID-on-NODE` constraint (-INFINITY).
    Ban {
        /// The resource to keep off NODE.
        id: String,
        /// The node it must not run on.
        node: String,
        /// The ban expires by itself after this (e.g. 30min, PT1H).
        #[arg(long)]
        lifetime: Option<String>,
    },
    /// Remove the `cli-prefer`/`cli-ban` constraints of a resource.
    Clear {
        /// The resource.
        id: String,
        /// Only those naming this node.
        #[arg(long)]
        node: Option<String>,
    },
    /// Forget its operation history and fail counts so the cluster probes
    /// it again (every resource without ID).
    Cleanup {
        /// The resource (a clone: every instance); every one without.
        id: Option<String>,
        /// Only on this node.
        #[arg(long)]
        node: Option<String>,
    },
    /// Fail counts: `failcount [show] [ID]`, `failcount reset [ID]`.
    Failcount {
        /// `show` (the default) or `reset`.
        #[arg(value_name = "show|reset")]
        action: Option<String>,
        /// The resource; every one without.
        id: Option<String>,
        /// Only on this node.
        #[arg(long)]
        node: Option<String>,
    },
}

pub fn run(args: Args) -> Result<()> {
    let conn = &args.conn;
    let done = |e: Edit| edit(conn, &e).map(|_| ());
    match args.command {
        ResourceCommand::Create {
            id,
            agent,
            rest,
            group,
        } => {
            let (params, meta, ops) = attributes(&rest)?;
            done(Edit::CreateResource {
                id,
                agent,
                params,
                meta,
                ops,
                group,
            })
        }
        ResourceCommand::Update { id, rest } => {
            let (params, meta, ops) = attributes(&rest)?;
            if params.is_empty() && meta.is_empty() && ops.is_empty() {
                bail!("nothing to update: give name=value, meta name=value or op NAME ...");
            }
            done(Edit::UpdateResource {
                id,
                params,
                meta,
                ops,
            })
        }
        ResourceCommand::Delete { id } => done(Edit::DeleteResource { id }),
        ResourceCommand::Show { id } => show(conn, id.as_deref()),
        ResourceCommand::Enable { id } => done(Edit::SetEnabled { id, enabled: true }),
        ResourceCommand::Disable { id } => done(Edit::SetEnabled { id, enabled: false }),
        ResourceCommand::Move {
            id,
            node,
            lifetime,
            keep_constraint,
            wait,
        } => move_to(conn, &id, &node, lifetime.as_deref(), keep_constraint, wait),
        ResourceCommand::Ban { id, node, lifetime } => done(Edit::Ban {
            id,
            node,
            until: until(lifetime.as_deref())?,
        }),
        ResourceCommand::Clear { id, node } => done(Edit::Clear { id, node }),
        ResourceCommand::Cleanup { id, node } => cleanup(conn, id, node),
        ResourceCommand::Failcount { action, id, node } => {
            // `failcount ID` reads as `failcount show ID`.
            let (action, id) = match action.as_deref() {
                Some("show") | None => ("show", id),
                Some("reset") => ("reset", id),
                Some(other) => ("show", Some(other.to_string()).or(id)),
            };
            match action {
                "reset" => cleanup(conn, id, node),
                _ => failcount(conn, id.as_deref(), node.as_deref()),
            }
        }
    }
}

type Pairs = Vec<(String, String)>;

/// Splits `a=1 meta b=2 op monitor interval=10s` into params, meta, ops.
fn attributes(rest: &[String]) -> Result<(Pairs, Pairs, Vec<OpSpec>)> {
    enum Into {
        Params,
        Meta,
        Op,
    }
    let (mut params, mut meta, mut ops) = (Vec::new(), Vec::new(), Vec::<OpSpec>::new());
    let mut into = Into::Params;
    let mut words = rest.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "meta" => into = Into::Meta,
            "op" => {
                let name = words
                    .next()
                    .context("`op` needs an operation name, e.g. op monitor interval=10s")?;
                ops.push(OpSpec {
                    name: name.clone(),
                    attrs: Vec::new(),
                });
                into = Into::Op;
            }
            _ => {
                let (k, v) = word.split_once('=').with_context(|| {
                    format!("{word:?}: expected name=value, `meta` or `op NAME`")
                })?;
                let pair = (k.to_string(), v.to_string());
                match into {
                    Into::Params => params.push(pair),
                    Into::Meta => meta.push(pair),
                    Into::Op => ops
                        .last_mut()
                        .map(|o| o.attrs.push(pair))
                        .unwrap_or_default(),
                }
            }
        }
    }
    Ok((params, meta, ops))
}

/// `--lifetime DUR` as the epoch second it ends.
fn until(lifetime: Option<&str>) -> Result<Option<i64>> {
    let Some(text) = lifetime else {
        return Ok(None);
    };
    let ms = tandem_model::parse_duration_ms(text)
        .with_context(|| format!("--lifetime {text:?}: not a duration (30min, 1h, PT1H)"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    Ok(Some(now + (ms / 1000) as i64))
}

fn resources(conn: &Conn) -> Result<Vec<Value>> {
    let answer = call(conn, Method::GET, "/resources", None)?;
    Ok(answer.as_array().cloned().unwrap_or_default())
}

fn find(conn: &Conn, id: &str) -> Result<Value> {
    resources(conn)?
        .into_iter()
        .find(|r| r["id"] == id)
        .with_context(|| format!("no resource {id:?} in the configuration"))
}

fn show(conn: &Conn, id: Option<&str>) -> Result<()> {
    let list: Vec<Value> = match id {
        // A group or clone with what it holds.
        Some(id) => {
            let held: Vec<Value> = resources(conn)?
                .into_iter()
                .filter(|r| r["id"] == id || r["parent"] == id)
                .collect();
            if held.is_empty() {
                bail!("no resource {id:?} in the configuration");
            }
            held
        }
        None => resources(conn)?,
    };
    if conn.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        println!("No resources configured.");
    }
    for r in &list {
        let indent = if r["parent"].is_string() { "  " } else { "" };
        let agent = r["agent"]
            .as_str()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        println!(
            "{indent}{} [{}]{agent}: {}",
            r["id"].as_str().unwrap_or("?"),
            r["kind"].as_str().unwrap_or("?"),
            placement(r)
        );
        for (label, key) in [("params", "params"), ("meta", "meta")] {
            let pairs: Vec<String> = r[key]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            if !pairs.is_empty() {
                println!("{indent}  {label}: {}", pairs.join(" "));
            }
        }
        for op in r["ops"].as_array().into_iter().flatten() {
            println!("{indent}  op {}", op.as_str().unwrap_or_default());
        }
        let constraints: Vec<&str> = r["constraints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !constraints.is_empty() {
            println!("{indent}  constraints: {}", constraints.join(", "));
        }
    }
    Ok(())
}

/// `Started node1` from a role → nodes map (current if recorded, else the plan).
fn placement(r: &Value) -> String {
    let (map, source) = if r["recorded"] == true {
        (&r["current"], "")
    } else {
        (&r["planned"], " (planned)")
    };
    let parts: Vec<String> = map
        .as_object()
        .into_iter()
        .flatten()
        .map(|(role, nodes)| {
            let nodes: Vec<&str> = nodes
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!("{role} {}", nodes.join(" "))
        })
        .collect();
    if parts.is_empty() {
        format!("Stopped{source}")
    } else {
        format!("{}{source}", parts.join(", "))
    }
}

/// Whether the cluster reports `r` active on `node`: recorded operations
/// when there are any, else (nothing executes yet) the planned placement.
fn runs_on(r: &Value, node: &str) -> bool {
    let map = if r["recorded"] == true {
        &r["current"]
    } else {
        &r["planned"]
    };
    map.as_object()
        .into_iter()
        .flatten()
        .filter(|(role, _)| !role.starts_with("FAILED"))
        .any(|(_, nodes)| nodes.as_array().into_iter().flatten().any(|n| n == node))
}

/// The primitives resource `id` is made of (itself if it is one, or if
/// the configuration does not have it: the edit will say so).
fn primitive_ids(cluster: &tandem_model::Cluster, id: &str) -> Vec<String> {
    let found = cluster.config.resources.iter().find_map(|r| match r {
        _ if r.id() == id => Some(r),
        tandem_model::Resource::Clone(c) if c.child.id() == id => Some(&*c.child),
        _ => None,
    });
    found.map_or_else(
        || vec![id.to_string()],
        |r| r.primitives().iter().map(|p| p.id.clone()).collect(),
    )
}

/// Whether a preview's placement (primitive → role → nodes) has every one
/// of `primitives` on `node` (for a clone: an instance).
fn all_placed_on(placement: &Value, primitives: &[String], node: &str) -> bool {
    primitives.iter().all(|p| {
        placement[p]
            .as_object()
            .into_iter()
            .flatten()
            .any(|(_, n)| n.as_array().into_iter().flatten().any(|n| n == node))
    })
}

/// The location constraints that ban resource `id` from `node`.
fn bans_on<'a>(cluster: &'a tandem_model::Cluster, id: &str, node: &str) -> Vec<&'a str> {
    cluster
        .config
        .constraints
        .iter()
        .filter_map(|c| match c {
            tandem_model::Constraint::Location(l)
                if matches!(&l.target, tandem_model::LocationTarget::Resource(r) if r == id)
                    && tandem_daemon::edit::location_node(l).is_some_and(|n| n == node)
                    && l.score.is_some_and(|s| s.is_neg_infinity()) =>
            {
                Some(l.id.as_str())
            }
            _ => None,
        })
        .collect()
}

pub(crate) fn move_to(
    conn: &Conn,
    id: &str,
    node: &str,
    lifetime: Option<&str>,
    keep: bool,
    wait_s: u64,
) -> Result<()> {
    let quiet = Conn {
        json: true,
        ..conn.clone()
    };
    let until = until(lifetime)?;
    let edit = Edit::Move {
        id: id.into(),
        node: node.into(),
        until,
    };
    // A move onto a node the resource is banned from is refused at once
    // rather than waited out (a preview alone would also refuse moves
    // that a transition in progress only delays).
    let cluster = super::status::running(conn)?;
    let bans = bans_on(&cluster, id, node);
    if !bans.is_empty() {
        bail!(
            "{id} cannot move to {node}: {} bans it there (`tandem resource clear {id} --node {node}` lifts it); nothing changed",
            bans.join(", ")
        );
    }
    let primitives = primitive_ids(&cluster, id);
    call_edit(&quiet, &edit)?;
    let constraint = format!("cli-prefer-{id}");
    if !conn.json {
        println!("{constraint}: {id} prefers {node}; waiting for it to run there");
    }
    let started = Instant::now();
    let mut last_report = 0;
    loop {
        if runs_on(&find(conn, id)?, node) {
            break;
        }
        let waited = started.elapsed().as_secs();
        if waited >= wait_s {
            bail!("{id} is not running on {node} after {wait_s} s; {constraint} stays (tandem resource clear {id} removes it)");
        }
        if waited > last_report && !conn.json {
            eprintln!("  ... {id} not yet on {node} ({waited} s)");
            last_report = waited;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut warning = None;
    let removed = !keep && until.is_none();
    if removed {
        // What the scheduler does once the constraint is gone: does
        // stickiness keep the resource where it was moved?
        let clear = Edit::Clear {
            id: id.into(),
            node: None,
        };
        let preview = call(
            conn,
            Method::POST,
            "/edit",
            Some(json!({ "edit": clear, "dry_run": true })),
        )?;
        let after = &preview["plan"]["placement"][id];
        if !all_placed_on(&preview["plan"]["placement"], &primitives, node) {
            warning = Some(format!(
                "without {constraint} the scheduler places {id} {}: resource-stickiness does not hold it on {node} (use --keep-constraint or --lifetime to keep it there)",
                match placement(&json!({ "planned": after })).as_str() {
                    "Stopped (planned)" => "nowhere (stopped)".to_string(),
                    p => format!("as {}", p.trim_end_matches(" (planned)")),
                }
            ));
        }
        call_edit(&quiet, &clear)?;
    }
    if conn.json {
        println!(
            "{}",
            json!({ "resource": id, "node": node, "constraint": constraint, "constraint_removed": removed, "warning": warning })
        );
        return Ok(());
    }
    println!("{id} runs on {node}");
    if removed {
        println!("removed {constraint}");
    } else {
        println!(
            "kept {constraint}{}",
            lifetime
                .map(|l| format!(" (expires in {l})"))
                .unwrap_or_default()
        );
    }
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    Ok(())
}

fn call_edit(conn: &Conn, e: &Edit) -> Result<Value> {
    call(
        conn,
        Method::POST,
        "/edit",
        Some(json!({ "edit": e, "dry_run": false })),
    )
}

fn cleanup(conn: &Conn, id: Option<String>, node: Option<String>) -> Result<()> {
    let answer = call(
        conn,
        Method::POST,
        "/cleanup",
        Some(json!({ "resource": id, "node": node })),
    )?;
    if conn.json {
        println!("{answer}");
        return Ok(());
    }
    let what = id.as_deref().unwrap_or("every resource");
    let cleared: Vec<&str> = answer["cleared"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!(
        "cleaned up {what}{}: history forgotten, {} failure attribute(s) removed",
        node.map(|n| format!(" on {n}")).unwrap_or_default(),
        cleared.len()
    );
    for c in cleared {
        println!("  {c}");
    }
    Ok(())
}

fn failcount(conn: &Conn, id: Option<&str>, node: Option<&str>) -> Result<()> {
    let list = match id {
        Some(id) => vec![find(conn, id)?],
        None => resources(conn)?,
    };
    let mut out = serde_json::Map::new();
    for r in &list {
        let mut per_node = r["failures"].as_object().cloned().unwrap_or_default();
        per_node.retain(|n, _| node.is_none_or(|want| want == n));
        if !per_node.is_empty() {
            out.insert(
                r["id"].as_str().unwrap_or("?").to_string(),
                Value::Object(per_node),
            );
        }
    }
    if conn.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if out.is_empty() {
        println!("No failures recorded.");
    } else {
        for (rsc, nodes) in &out {
            for (n, attrs) in nodes.as_object().into_iter().flatten() {
                for (name, value) in attrs.as_object().into_iter().flatten() {
                    println!(
                        "{rsc} on {n}: {name} = {}",
                        value.as_str().unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}
