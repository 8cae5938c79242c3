//! Transition Summary lines as comparable actions.
//!
//! Pacemaker prints one line per planned change, e.g.
//! `  * Move       rsc1          ( node1 -> node2 )  due to node availability`
//! or `  * Fence (reboot) node1 'peer is no longer part of the cluster'`.
//! Both the expected text and the scheduler's [`SummaryLine`]s are reduced
//! to a [`PlannedAction`] `(verb, resource, detail)` with whitespace
//! collapsed; the trailing reason is not compared. A fence becomes
//! `("Fence", node, action)`.

use std::fmt;
use tandem_scheduler::SummaryLine;

/// One planned change, normalised for comparison.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlannedAction {
    /// Start, Stop, Move, Recover, Restart, Migrate, Promote, Demote,
    /// Re-promote, Reload, Fence, ...
    pub verb: String,
    /// The resource (with instance suffix), or the node for a fence.
    pub resource: String,
    /// The text inside the parentheses (`node1 -> node2`), or the fence
    /// action (`reboot`).
    pub detail: String,
}

impl fmt::Display for PlannedAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.verb == "Fence" {
            write!(f, "Fence ({}) {}", self.detail, self.resource)
        } else {
            write!(f, "{} {} ( {} )", self.verb, self.resource, self.detail)
        }
    }
}

/// The planned actions of an expected `.summary`, sorted (display order is
/// not compared). Lines that are not actions are skipped.
pub fn expected_actions(summary: &str) -> Vec<PlannedAction> {
    let mut actions: Vec<PlannedAction> = transition_summary_lines(summary)
        .filter_map(parse_summary_line)
        .collect();
    actions.sort();
    actions
}

/// The scheduler's summary lines as sorted planned actions.
pub fn scheduler_actions(lines: &[SummaryLine]) -> Vec<PlannedAction> {
    let mut actions: Vec<PlannedAction> = lines.iter().map(from_summary_line).collect();
    actions.sort();
    actions
}

/// The lines of the `Transition Summary:` section: everything after that
/// header up to the next unindented, non-empty line.
pub fn transition_summary_lines(summary: &str) -> impl Iterator<Item = &str> {
    summary
        .lines()
        .skip_while(|l| l.trim_end() != "Transition Summary:")
        .skip(1)
        .take_while(|l| l.trim().is_empty() || l.starts_with(char::is_whitespace))
        .filter(|l| !l.trim().is_empty())
}

/// Parses one Transition Summary line (leading `*` bullet optional).
pub fn parse_summary_line(line: &str) -> Option<PlannedAction> {
    let line = line.trim();
    let line = line.strip_prefix('*').unwrap_or(line).trim_start();
    if let Some(rest) = line.strip_prefix("Fence") {
        return parse_fence(rest.trim_start());
    }
    let (verb, rest) = split_word(line)?;
    let (resource, rest) = split_word(rest)?;
    let detail = rest
        .strip_prefix('(')
        .and_then(|inner| inner.split_once(')'))
        .map_or("", |(inside, _reason)| inside);
    Some(PlannedAction {
        verb: verb.to_string(),
        resource: resource.to_string(),
        detail: collapse(detail),
    })
}

/// `(reboot) node1 [(resource: X)] 'reason'` after the word `Fence`.
fn parse_fence(rest: &str) -> Option<PlannedAction> {
    let (action, rest) = rest.strip_prefix('(')?.split_once(')')?;
    let (node, _) = split_word(rest.trim_start())?;
    Some(PlannedAction {
        verb: "Fence".to_string(),
        resource: node.to_string(),
        detail: collapse(action),
    })
}

/// Normalises a scheduler summary line the same way as parsed text. A verb
/// written as `Fence (reboot)` is split into verb and action, a `Fence`
/// with no detail is a reboot (the scheduler's convention), and parentheses
/// around the detail are dropped.
pub fn from_summary_line(line: &SummaryLine) -> PlannedAction {
    let verb = collapse(&line.verb);
    let detail = collapse(&line.detail);
    let detail = detail
        .strip_prefix('(')
        .and_then(|d| d.strip_suffix(')'))
        .map_or(detail.clone(), collapse);
    match verb
        .strip_prefix("Fence (")
        .and_then(|a| a.strip_suffix(')'))
    {
        Some(action) if detail.is_empty() => PlannedAction {
            verb: "Fence".to_string(),
            resource: collapse(&line.resource),
            detail: collapse(action),
        },
        // The scheduler leaves a fence's kind empty when it is the default.
        _ if verb == "Fence" && detail.is_empty() => PlannedAction {
            verb,
            resource: collapse(&line.resource),
            detail: "reboot".to_string(),
        },
        _ => PlannedAction {
            verb,
            resource: collapse(&line.resource),
            detail,
        },
    }
}

/// The first whitespace-separated word and the trimmed rest.
fn split_word(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    Some((&text[..end], text[end..].trim_start()))
}

/// Trims and collapses every run of whitespace to one space.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(verb: &str, resource: &str, detail: &str) -> PlannedAction {
        PlannedAction {
            verb: verb.into(),
            resource: resource.into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn move_line_keeps_the_arrow_detail() {
        assert_eq!(
            parse_summary_line("  * Move       rsc1          ( node1 -> node2 )"),
            Some(action("Move", "rsc1", "node1 -> node2"))
        );
    }

    #[test]
    fn trailing_reason_is_dropped_and_padding_collapsed() {
        assert_eq!(
            parse_summary_line(
                "  * Stop       child_DoFencing:0     (           hadev2 )  due to node availability"
            ),
            Some(action("Stop", "child_DoFencing:0", "hadev2"))
        );
        assert_eq!(
            parse_summary_line("  * Demote     rsc1:0     ( Promoted -> Unpromoted node1 )"),
            Some(action("Demote", "rsc1:0", "Promoted -> Unpromoted node1"))
        );
    }

    #[test]
    fn fence_line_becomes_verb_node_and_action() {
        assert_eq!(
            parse_summary_line("  * Fence (reboot) node1 'peer is no longer part of the cluster'"),
            Some(action("Fence", "node1", "reboot"))
        );
        assert_eq!(
            parse_summary_line("  * Fence (reboot) lxc1 (resource: container1) 'guest is unclean'"),
            Some(action("Fence", "lxc1", "reboot"))
        );
    }

    #[test]
    fn empty_or_verb_only_lines_are_not_actions() {
        assert_eq!(parse_summary_line("   "), None);
        assert_eq!(parse_summary_line("  * Start"), None);
    }

    #[test]
    fn section_ends_at_the_next_header() {
        let summary = "Current cluster status:\n  * Node List:\n\n\
                       Transition Summary:\n  * Start      B     ( n2 )\n\n  * Stop  A ( n1 )  blocked\n\n\
                       Executing Cluster Transition:\n  * Resource action: B start on n2\n";
        assert_eq!(
            expected_actions(summary),
            [action("Start", "B", "n2"), action("Stop", "A", "n1")]
        );
        assert_eq!(expected_actions("Current cluster status:\n"), []);
    }

    #[test]
    fn scheduler_lines_normalise_like_text() {
        let line = |verb: &str, resource: &str, detail: &str| SummaryLine {
            verb: verb.into(),
            resource: resource.into(),
            detail: detail.into(),
            reason: Some("due to node availability".into()),
        };
        assert_eq!(
            from_summary_line(&line("Move", "rsc1", "  node1  ->   node2 ")),
            action("Move", "rsc1", "node1 -> node2")
        );
        assert_eq!(
            from_summary_line(&line("Stop", "rsc1", "( node1 )")),
            action("Stop", "rsc1", "node1")
        );
        assert_eq!(
            from_summary_line(&line("Fence (reboot)", "node1", "")),
            action("Fence", "node1", "reboot")
        );
        assert_eq!(
            from_summary_line(&line("Fence", "node1", "reboot")),
            action("Fence", "node1", "reboot")
        );
        assert_eq!(
            from_summary_line(&line("Fence", "node1", "")),
            action("Fence", "node1", "reboot")
        );
        assert_eq!(
            from_summary_line(&line("Fence", "node1", "off")),
            action("Fence", "node1", "off")
        );
    }
}
