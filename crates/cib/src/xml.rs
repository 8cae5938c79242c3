//! Element helpers shared by every part of the reader: the [`Ctx`] that
//! knows the document (id index for `id-ref`, element paths, text
//! positions) and collects problems and unsupported features, plus typed
//! attribute readers that turn a bad value into a located [`Problem`].
//!
//! Must not: know what any CIB element means (that is the other modules').

use crate::error::{Problem, MAX_PROBLEMS};
use roxmltree::{Document, Node};
use std::cell::RefCell;
use std::collections::HashMap;
use std::str::FromStr;
use tandem_model::{parse_bool, parse_duration_ms, Role, Score};

/// Result of reading one element: a value or the first problem in it.
pub(crate) type Res<T> = Result<T, Problem>;

/// How deep `id-ref` chains may go before we call them a cycle.
const MAX_IDREF_HOPS: usize = 8;

/// Reading state for one document.
pub(crate) struct Ctx<'a, 'i> {
    doc: &'a Document<'i>,
    /// Elements carrying an `id` (and no `id-ref`), in document order, by id:
    /// the targets of `id-ref`.
    ids: HashMap<&'a str, Vec<Node<'a, 'i>>>,
    unsupported: RefCell<Vec<String>>,
    problems: RefCell<Vec<Problem>>,
    omitted: RefCell<usize>,
}

impl<'a, 'i> Ctx<'a, 'i> {
    pub fn new(doc: &'a Document<'i>) -> Self {
        let mut ids: HashMap<&'a str, Vec<Node<'a, 'i>>> = HashMap::new();
        for node in doc.descendants().filter(Node::is_element) {
            if let (Some(id), None) = (node.attribute("id"), node.attribute("id-ref")) {
                ids.entry(id).or_default().push(node);
            }
        }
        Ctx {
            doc,
            ids,
            unsupported: RefCell::default(),
            problems: RefCell::default(),
            omitted: RefCell::default(),
        }
    }

    /// Problems recorded so far (`omitted` counts those over the limit) and
    /// the unsupported-feature notes, consuming the context.
    pub fn finish(self) -> (Vec<Problem>, usize, Vec<String>) {
        (
            self.problems.into_inner(),
            self.omitted.into_inner(),
            self.unsupported.into_inner(),
        )
    }

    // ---- locating -------------------------------------------------------

    /// A problem at `node`.
    pub fn problem(&self, node: Node, message: impl Into<String>) -> Problem {
        let pos = self.doc.text_pos_at(node.range().start);
        Problem {
            path: path(node),
            message: message.into(),
            line: pos.row,
            column: pos.col,
        }
    }

    /// Records a problem and carries on reading the rest of the document.
    pub fn record(&self, problem: Problem) {
        let mut problems = self.problems.borrow_mut();
        if problems.len() < MAX_PROBLEMS {
            problems.push(problem);
        } else {
            *self.omitted.borrow_mut() += 1;
        }
    }

    /// The value of a list item, or `None` after recording its problem, so
    /// one bad resource does not hide the faults of the next.
    pub fn keep<T>(&self, result: Res<T>) -> Option<T> {
        result.map_err(|p| self.record(p)).ok()
    }

    /// Notes a recognised-but-unmodelled feature at `node`.
    pub fn unsupported(&self, node: Node, what: &str) {
        let line = self.doc.text_pos_at(node.range().start).row;
        self.unsupported
            .borrow_mut()
            .push(format!("{}: {what} (line {line})", path(node)));
    }

    /// Notes an element this reader does not know.
    pub fn unknown(&self, node: Node) {
        let what = format!("element <{}> is not modelled; ignored", name(node));
        self.unsupported(node, &what);
    }

    // ---- structure ------------------------------------------------------

    /// Follows `id-ref` to the element it names (preferring one with the
    /// same tag); `node` itself when it has no `id-ref`.
    pub fn resolve(&self, node: Node<'a, 'i>) -> Res<Node<'a, 'i>> {
        let mut current = node;
        for _ in 0..MAX_IDREF_HOPS {
            let Some(target) = current.attribute("id-ref") else {
                return Ok(current);
            };
            current = self.lookup(current, name(node), target)?;
        }
        Err(self.problem(node, "id-ref chain is too long (a cycle?)"))
    }

    /// The element with id `id`, preferring tag `tag`; an error at `from`
    /// when no element has that id.
    pub fn lookup(&self, from: Node, tag: &str, id: &str) -> Res<Node<'a, 'i>> {
        let found = self.ids.get(id).and_then(|nodes| {
            nodes
                .iter()
                .find(|n| name(**n) == tag)
                .or_else(|| nodes.first())
        });
        found.copied().ok_or_else(|| {
            self.problem(
                from,
                format!("reference \"{id}\" does not match any element id"),
            )
        })
    }

    // ---- attributes -----------------------------------------------------

    /// A required attribute.
    pub fn req(&self, node: Node<'a, 'i>, attr: &str) -> Res<&'a str> {
        self.required(node, attr, node.attribute(attr))
    }

    /// `value`, or the "missing required attribute" problem when it is
    /// `None` (for required attributes that are also converted or merged).
    pub fn required<T>(&self, node: Node, attr: &str, value: Option<T>) -> Res<T> {
        value.ok_or_else(|| self.problem(node, format!("missing required attribute '{attr}'")))
    }

    /// An optional attribute as an owned string.
    pub fn string(&self, node: Node, attr: &str) -> Option<String> {
        node.attribute(attr).map(str::to_owned)
    }

    /// An optional attribute converted by `parse`; `what` completes
    /// "attribute 'x' = "v" is not ...".
    pub fn parsed<T>(
        &self,
        node: Node,
        attr: &str,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Res<Option<T>> {
        match node.attribute(attr) {
            None => Ok(None),
            Some(text) => parse(text).map(Some).ok_or_else(|| {
                self.problem(node, format!("attribute '{attr}' = {text:?} is not {what}"))
            }),
        }
    }

    pub fn boolean(&self, node: Node, attr: &str) -> Res<Option<bool>> {
        self.parsed(node, attr, "a boolean", parse_bool)
    }

    pub fn number<T: FromStr>(&self, node: Node, attr: &str) -> Res<Option<T>> {
        self.parsed(node, attr, "an integer", |t| t.trim().parse().ok())
    }

    pub fn duration_ms(&self, node: Node, attr: &str) -> Res<Option<u64>> {
        self.parsed(node, attr, "a duration", duration_ms)
    }

    pub fn role(&self, node: Node, attr: &str) -> Res<Option<Role>> {
        self.parsed(node, attr, "a role", Role::parse)
    }

    /// An optional attribute whose invalid values Pacemaker tolerates: a
    /// bad value reads as `None` and is noted in `unsupported` together
    /// with what happens instead (`fallback`).
    pub fn tolerant<T>(
        &self,
        node: Node,
        attr: &str,
        what: &str,
        fallback: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        self.parsed(node, attr, what, parse)
            .unwrap_or_else(|problem| {
                self.unsupported(node, &format!("{}; {fallback}", problem.message));
                None
            })
    }

    /// A score attribute. Pacemaker ignores a score without digits, and
    /// health colours depend on the node-health strategy (the scheduler's
    /// business): both read as unset, noted in `unsupported`.
    pub fn score(&self, node: Node, attr: &str) -> Option<Score> {
        self.tolerant(
            node,
            attr,
            "a numeric score",
            "treated as unset",
            Score::parse,
        )
    }

    /// The spelling of an attribute that is present: `modern`, else the
    /// `legacy` spelling if that one is written, else `modern`.
    pub fn spelling<'s>(&self, node: Node, modern: &'s str, legacy: &'s str) -> &'s str {
        if node.attribute(modern).is_none() && node.attribute(legacy).is_some() {
            legacy
        } else {
            modern
        }
    }
}

/// A Pacemaker duration in milliseconds. Besides what `parse_duration_ms`
/// reads, Pacemaker takes hours and seconds in an ISO-8601 duration without
/// the `T` designator ("P10S", as those units are unambiguous), so such
/// text is read as if `T` stood before the first hour or second field.
pub(crate) fn duration_ms(text: &str) -> Option<u64> {
    if is_iso(text) && has_huge_field(text) {
        return None;
    }
    parse_duration_ms(text).or_else(|| parse_duration_ms(&with_time_designator(text)?))
}

/// Longest ISO-8601 duration field passed on: `parse_duration_ms`
/// multiplies fields unchecked, and 9 digits of years cannot overflow it.
const MAX_ISO_FIELD_DIGITS: usize = 9;

fn is_iso(text: &str) -> bool {
    text.trim_start().starts_with(['P', 'p'])
}

fn has_huge_field(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|digits| digits.len() > MAX_ISO_FIELD_DIGITS)
}

fn with_time_designator(text: &str) -> Option<String> {
    let text = text.trim();
    if !is_iso(text) || text.contains(['T', 't']) {
        return None;
    }
    let unit = text.find(['H', 'h', 'S', 's'])?;
    let start = text[..unit]
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .len();
    Some(format!("{}T{}", &text[..start], &text[start..]))
}

/// Element children of `node` (comments and text skipped).
pub(crate) fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(Node::is_element)
}

/// The first element child named `tag`.
pub(crate) fn child<'a, 'i>(node: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    elements(node).find(|c| name(*c) == tag)
}

/// The local tag name.
pub(crate) fn name<'a>(node: Node<'a, '_>) -> &'a str {
    node.tag_name().name()
}

/// XPath-like location of an element: `[@id='…']` when it has an id, else
/// `[n]` (1-based) when it has same-named siblings.
pub(crate) fn path(node: Node) -> String {
    let mut steps: Vec<String> = node
        .ancestors()
        .filter(Node::is_element)
        .map(step)
        .collect();
    steps.reverse();
    format!("/{}", steps.join("/"))
}

fn step(node: Node) -> String {
    let tag = name(node);
    if let Some(id) = node.attribute("id") {
        return format!("{tag}[@id='{id}']");
    }
    let same = |n: &Node| n.is_element() && name(*n) == tag;
    let before = node.prev_siblings().skip(1).filter(same).count();
    let after = node.next_siblings().skip(1).filter(same).count();
    if before + after == 0 {
        tag.to_owned()
    } else {
        format!("{tag}[{}]", before + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::duration_ms;

    #[test]
    fn iso_durations_without_time_designator_read_hours_and_seconds() {
        assert_eq!(duration_ms("P10S"), Some(10_000));
        assert_eq!(duration_ms("P1D10S"), Some(86_410_000));
        assert_eq!(duration_ms("p2h"), Some(7_200_000));
        assert_eq!(duration_ms("PT40S"), Some(40_000));
        assert_eq!(duration_ms("28s"), Some(28_000));
        assert_eq!(duration_ms("0"), Some(0));
        assert_eq!(duration_ms("P"), Some(0));
        assert_eq!(duration_ms("bad"), None);
        assert_eq!(duration_ms("PS"), None);
        assert_eq!(duration_ms("Pé10S"), None);
    }

    #[test]
    fn huge_iso_durations_are_refused_not_overflowing() {
        assert_eq!(duration_ms("P99999999999999999Y"), None);
        assert_eq!(duration_ms("PT99999999999999999H"), None);
        assert_eq!(duration_ms("P999999999Y"), None);
        assert_eq!(duration_ms("P999999999D"), Some(999_999_999 * 86_400_000));
    }
}
