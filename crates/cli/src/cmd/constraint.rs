//! `tandem constraint location|colocation|order|list|delete` (pcs-like):
//! each change is one edit the daemon validates and commits; `list` reads
//! the running configuration.

use super::status::{edit, Conn};
use anyhow::{bail, Context, Result};
use tandem_daemon::edit::Edit;
use tandem_model::{Constraint, LocationTarget};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: ConstraintCommand,
    #[command(flatten)]
    conn: Conn,
}

#[derive(clap::Subcommand, Debug)]
enum ConstraintCommand {
    /// RSC prefers|avoids NODE[=SCORE]... (default score INFINITY).
    Location {
        /// The resource.
        resource: String,
        /// `prefers` (a positive score) or `avoids` (a negative one).
        #[arg(value_name = "prefers|avoids")]
        verb: String,
        /// Nodes, each with its score (INFINITY when left out).
        #[arg(required = true, value_name = "NODE[=SCORE]")]
        nodes: Vec<String>,
    },
    /// `add A with B [SCORE]`: A runs where B runs.
    Colocation {
        /// The word `add`.
        #[arg(value_name = "add")]
        add: String,
        /// The resource placed (A).
        resource: String,
        /// The word `with`.
        #[arg(value_name = "with")]
        with_word: String,
        /// The resource it follows (B).
        with: String,
        /// How much it wants to (INFINITY when left out; -INFINITY: never
        /// where B runs).
        score: Option<String>,
    },
    /// `[ACTION] A then [ACTION] B [kind=Mandatory|Optional|Serialize]`.
    Order {
        /// The order, as above.
        #[arg(required = true, value_name = "SPEC")]
        words: Vec<String>,
    },
    /// Every constraint, one per line.
    List,
    /// Delete the constraint with this id.
    Delete {
        /// The constraint's id (`constraint list` shows them).
        id: String,
    },
}

pub fn run(args: Args) -> Result<()> {
    let conn = &args.conn;
    match args.command {
        ConstraintCommand::Location {
            resource,
            verb,
            nodes,
        } => {
            let avoids = match verb.as_str() {
                "prefers" => false,
                "avoids" => true,
                _ => bail!("{verb:?}: expected `prefers` or `avoids`"),
            };
            for spec in nodes {
                let (node, score) = spec.split_once('=').unwrap_or((&spec, "INFINITY"));
                let score = if avoids {
                    format!("-{}", score.trim_start_matches(['+', '-']))
                } else {
                    score.to_string()
                };
                edit(
                    conn,
                    &Edit::AddLocation {
                        resource: resource.clone(),
                        node: node.to_string(),
                        score,
                    },
                )?;
            }
            Ok(())
        }
        ConstraintCommand::Colocation {
            add,
            resource,
            with_word,
            with,
            score,
        } => {
            if add != "add" || with_word != "with" {
                bail!("expected: constraint colocation add A with B [SCORE]");
            }
            let score = score.unwrap_or_else(|| "INFINITY".into());
            edit(
                conn,
                &Edit::AddColocation {
                    resource,
                    with,
                    score,
                },
            )
            .map(|_| ())
        }
        ConstraintCommand::Order { words } => edit(conn, &order(&words)?).map(|_| ()),
        ConstraintCommand::List => list(conn),
        ConstraintCommand::Delete { id } => edit(conn, &Edit::DeleteConstraint { id }).map(|_| ()),
    }
}

const ACTIONS: [&str; 4] = ["start", "stop", "promote", "demote"];

/// `[ACTION] A then [ACTION] B [kind=K]` as an edit.
fn order(words: &[String]) -> Result<Edit> {
    let usage =
        "expected: constraint order [ACTION] A then [ACTION] B [kind=Mandatory|Optional|Serialize]";
    let mut words: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut kind = "Mandatory".to_string();
    if let Some(k) = words.last().and_then(|w| w.strip_prefix("kind=")) {
        kind = k.to_string();
        words.pop();
    }
    let then = words.iter().position(|w| *w == "then").context(usage)?;
    let side = |part: &[&str]| -> Result<(String, String)> {
        match part {
            [rsc] => Ok(("start".into(), rsc.to_string())),
            [action, rsc] if ACTIONS.contains(action) => Ok((action.to_string(), rsc.to_string())),
            _ => bail!("{:?}: {usage}", part.join(" ")),
        }
    };
    let (first_action, first) = side(&words[..then])?;
    let (then_action, then) = side(&words[then + 1..])?;
    Ok(Edit::AddOrder {
        first,
        first_action,
        then,
        then_action,
        kind,
    })
}

fn list(conn: &Conn) -> Result<()> {
    let constraints = super::status::running(conn)?.config.constraints;
    if conn.json {
        let shown: Vec<serde_json::Value> =
            constraints.iter().map(as_json).collect::<Result<_>>()?;
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(());
    }
    if constraints.is_empty() {
        println!("No constraints.");
    }
    for c in &constraints {
        println!("{:<40} {}", c.id(), describe(c));
    }
    Ok(())
}

/// The table name of `c`'s kind in the configuration format.
fn kind(c: &Constraint) -> &'static str {
    match c {
        Constraint::Location(_) => "location",
        Constraint::Colocation(_) => "colocation",
        Constraint::Order(_) => "order",
        Constraint::Ticket(_) => "ticket",
    }
}

/// `c` as JSON in the shape the configuration format gives it (the
/// fields of its `[[location]]`, `[[colocation]]`, … table, documented in
/// docs/config-format.md), with its `kind`.
fn as_json(c: &Constraint) -> Result<serde_json::Value> {
    let mut alone = tandem_model::Cluster::default();
    alone.config.constraints.push(c.clone());
    let text = tandem_model::native::to_toml(&alone);
    let doc: toml::Table = toml::from_str(&text)?;
    let table = doc
        .get(kind(c))
        .and_then(|v| v.as_array())
        .and_then(|tables| tables.first())
        .cloned()
        .with_context(|| {
            format!(
                "constraint {} did not write as a [[{}]] table",
                c.id(),
                kind(c)
            )
        })?;
    let mut json = serde_json::to_value(table)?;
    json["kind"] = kind(c).into();
    Ok(json)
}

fn describe(c: &Constraint) -> String {
    let score = |s: Option<tandem_model::Score>| s.map_or("rule".to_string(), |s| s.to_string());
    match c {
        Constraint::Location(l) => {
            let target = match &l.target {
                LocationTarget::Resource(r) => r.clone(),
                LocationTarget::Pattern { regex, .. } => format!("/{regex}/"),
                LocationTarget::Sets(_) => "(sets)".into(),
            };
            let node =
                tandem_daemon::edit::location_node(l).map_or("(rule)".to_string(), Clone::clone);
            let expires = if l.rules.is_empty() {
                ""
            } else {
                " (with rules)"
            };
            format!(
                "location  {target} on {node} score {}{expires}",
                score(l.score)
            )
        }
        Constraint::Colocation(c) => format!(
            "colocation {} with {} score {}",
            c.rsc.as_deref().unwrap_or("(sets)"),
            c.with_rsc.as_deref().unwrap_or("(sets)"),
            c.score
        ),
        Constraint::Order(o) => format!(
            "order     {} {} then {} {} ({:?})",
            o.first_action.as_deref().unwrap_or("start"),
            o.first.as_deref().unwrap_or("(sets)"),
            o.then_action.as_deref().unwrap_or("start"),
            o.then.as_deref().unwrap_or("(sets)"),
            o.kind
        ),
        Constraint::Ticket(t) => format!(
            "ticket    {} for {}",
            t.ticket,
            t.rsc.as_deref().unwrap_or("(sets)")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn order_reads_optional_actions_and_kind() {
        assert_eq!(
            order(&words("promote db then start web kind=Optional")).unwrap(),
            Edit::AddOrder {
                first: "db".into(),
                first_action: "promote".into(),
                then: "web".into(),
                then_action: "start".into(),
                kind: "Optional".into(),
            }
        );
        assert!(order(&words("a b c")).is_err());
    }

    #[test]
    fn constraints_show_as_the_configuration_writes_them() {
        let text = "[[node]]\nname = \"n1\"\n\n[[resource]]\nid = \"vip\"\nagent = \"ocf:heartbeat:IPaddr2\"\n\n\
                    [[resource]]\nid = \"web\"\nagent = \"ocf:heartbeat:apache\"\n\n\
                    [[location]]\nid = \"vip-on-n1\"\nresource = \"vip\"\nnode = \"n1\"\nscore = \"INFINITY\"\n\n\
                    [[colocation]]\nid = \"web-with-vip\"\nresource = \"web\"\nwith = \"vip\"\nscore = \"INFINITY\"\n";
        let cluster = tandem_model::native::parse_toml(text).unwrap();
        let [location, colocation] = &cluster.config.constraints[..] else {
            panic!("two constraints: {:?}", cluster.config.constraints);
        };
        let json = as_json(location).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "location", "id": "vip-on-n1", "resource": "vip", "node": "n1", "score": "INFINITY"})
        );
        assert_eq!(as_json(colocation).unwrap()["with"], "vip");
        assert_eq!(
            describe(colocation),
            "colocation web with vip score INFINITY"
        );
    }
}
