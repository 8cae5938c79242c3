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
        resource: String,
        #[arg(value_name = "prefers|avoids")]
        verb: String,
        #[arg(required = true, value_name = "NODE[=SCORE]")]
        nodes: Vec<String>,
    },
    /// `add A with B [SCORE]`: A runs where B runs.
    Colocation {
        #[arg(value_name = "add")]
        add: String,
        resource: String,
        #[arg(value_name = "with")]
        with_word: String,
        with: String,
        score: Option<String>,
    },
    /// `[ACTION] A then [ACTION] B [kind=Mandatory|Optional|Serialize]`.
    Order {
        #[arg(required = true, value_name = "SPEC")]
        words: Vec<String>,
    },
    /// Every constraint, one per line.
    List,
    /// Delete the constraint with this id.
    Delete { id: String },
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
        println!("{}", serde_json::to_string_pretty(&constraints)?);
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

fn describe(c: &Constraint) -> String {
    let score =
        |s: Option<tandem_model::Score>| s.map_or("rule".to_string(), |s| s.value().to_string());
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
            c.score.value()
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
}
