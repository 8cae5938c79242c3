//! The text side of the writer: [`El`], an element with its attributes, and
//! [`Out`], the indenting document buffer that escapes attribute values,
//! hands out unique generated ids and remembers which attribute sets were
//! already written (so a repeated set becomes an `id-ref`).
//!
//! Must not: know what any CIB element means (that is the other modules').

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use tandem_model::NvSet;

/// One element's tag and attributes, in the order they are written.
pub(crate) struct El<'a> {
    tag: &'static str,
    attrs: Vec<(&'a str, Cow<'a, str>)>,
    /// The `id` came from the model (not generated): generated ids of the
    /// next pass must avoid it.
    model_id: Option<Cow<'a, str>>,
}

impl<'a> El<'a> {
    pub fn new(tag: &'static str) -> Self {
        El {
            tag,
            attrs: Vec::new(),
            model_id: None,
        }
    }

    /// The element's `id` as the model holds it.
    pub fn id(mut self, id: impl Into<Cow<'a, str>>) -> Self {
        let id = id.into();
        self.model_id = Some(id.clone());
        self.attr("id", id)
    }

    pub fn attr(mut self, name: &'a str, value: impl Into<Cow<'a, str>>) -> Self {
        self.attrs.push((name, value.into()));
        self
    }

    /// The attribute when there is a value; nothing for `None`.
    pub fn opt<V: Into<Cow<'a, str>>>(self, name: &'a str, value: Option<V>) -> Self {
        match value {
            Some(v) => self.attr(name, v),
            None => self,
        }
    }

    /// `name="true"` when `on`; absent otherwise (every such flag defaults
    /// to false in Pacemaker).
    pub fn flag(self, name: &'a str, on: bool) -> Self {
        self.opt(name, on.then_some("true"))
    }
}

/// The document being written.
#[derive(Default)]
pub(crate) struct Out<'a> {
    text: String,
    depth: usize,
    /// Every model id of the whole document (from a first pass), so a
    /// generated id never collides with one written later.
    reserved: HashSet<Cow<'a, str>>,
    /// Model ids written in this pass (the next pass's `reserved`).
    model_ids: HashSet<Cow<'a, str>>,
    generated: HashSet<String>,
    /// The first set written under each (tag, id).
    sets: HashMap<(&'static str, &'a str), &'a NvSet>,
}

impl<'a> Out<'a> {
    /// A fresh buffer whose generated ids avoid `reserved`.
    pub fn avoiding(reserved: HashSet<Cow<'a, str>>) -> Self {
        Out {
            reserved,
            ..Out::default()
        }
    }

    /// The text and the model ids written.
    pub fn finish(self) -> (String, HashSet<Cow<'a, str>>) {
        (self.text, self.model_ids)
    }

    /// `<tag .../>`.
    pub fn leaf(&mut self, el: El<'a>) {
        self.start(el);
        self.text.push_str("/>\n");
    }

    /// `<tag ...>` + what `body` writes + `</tag>`, or `<tag .../>` when
    /// `body` writes nothing.
    pub fn node(&mut self, el: El<'a>, body: impl FnOnce(&mut Self)) {
        let tag = el.tag;
        self.start(el);
        let open_at = self.text.len();
        self.text.push_str(">\n");
        let body_at = self.text.len();
        self.depth += 1;
        body(self);
        self.depth -= 1;
        if self.text.len() == body_at {
            self.text.truncate(open_at);
            self.text.push_str("/>\n");
        } else {
            self.indent();
            self.text.push_str("</");
            self.text.push_str(tag);
            self.text.push_str(">\n");
        }
    }

    /// `<!-- text -->`, with what would end the comment early defused.
    pub fn comment(&mut self, text: &str) {
        self.indent();
        let mut safe: String = text.chars().map(xml_char).collect();
        while safe.contains("--") {
            safe = safe.replace("--", "- -");
        }
        self.text.push_str("<!-- ");
        self.text.push_str(&safe);
        self.text.push_str(" -->\n");
    }

    /// A unique id starting with `base` for an element the model keeps no
    /// id for (nvpairs, expressions): Pacemaker's schema requires one.
    /// Characters an XML id cannot hold (`:`, `#`, spaces...) become `-`.
    pub fn fresh(&mut self, base: String) -> String {
        let taken = |out: &Self, id: &str| out.reserved.contains(id) || out.generated.contains(id);
        let base = ncname(&base);
        let mut id = base.clone();
        let mut n = 1;
        while taken(self, &id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        self.generated.insert(id.clone());
        id
    }

    /// True when a set equal to `set` was already written as the first
    /// `tag` with its id: an `id-ref` then reads back as the same set.
    /// (The parser resolves an `id-ref` to the first element with that id,
    /// preferring the same tag.)
    pub fn written_before(&mut self, tag: &'static str, set: &'a NvSet) -> bool {
        match self.sets.get(&(tag, set.id.as_str())) {
            Some(first) => *first == set,
            None => {
                self.sets.insert((tag, &set.id), set);
                false
            }
        }
    }

    fn start(&mut self, el: El<'a>) {
        self.indent();
        self.text.push('<');
        self.text.push_str(el.tag);
        for (name, value) in &el.attrs {
            self.text.push(' ');
            self.text.push_str(name);
            self.text.push_str("=\"");
            escape_into(value, &mut self.text);
            self.text.push('"');
        }
        if let Some(id) = el.model_id {
            self.model_ids.insert(id);
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.text.push_str("  ");
        }
    }
}

/// `text` as an XML id (an NCName): other characters become `-`, and a
/// start that is not a letter or `_` gets an `id-` prefix.
fn ncname(text: &str) -> String {
    let kept: String = text
        .chars()
        .map(|c| match c {
            c if c.is_alphanumeric() || matches!(c, '-' | '.' | '_') => c,
            _ => '-',
        })
        .collect();
    match kept.chars().next() {
        Some(c) if c.is_alphabetic() || c == '_' => kept,
        _ => format!("id-{kept}"),
    }
}

/// Appends `value` escaped for a double-quoted attribute. Whitespace other
/// than the space is written as a character reference, because a parser
/// normalises literal tabs and newlines in attributes to spaces.
pub(crate) fn escape_into(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(xml_char(c)),
        }
    }
}

/// `c`, or U+FFFD for what XML 1.0 cannot hold at all, not even as a
/// character reference (control characters, U+FFFE, U+FFFF).
fn xml_char(c: char) -> char {
    let allowed = matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}';
    if allowed {
        c
    } else {
        '\u{FFFD}'
    }
}

/// Pacemaker's canonical boolean spelling.
pub(crate) fn boolean(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// True when `name` can be written as an attribute name: an XML name
/// without a namespace prefix (a `:` would need a declared prefix).
pub(crate) fn is_attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let start = |c: char| c == '_' || c.is_alphabetic();
    (start(first) && chars.all(|c| start(c) || c.is_alphanumeric() || c == '-' || c == '.'))
        && !name.to_ascii_lowercase().starts_with("xml")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(value: &str) -> String {
        let mut out = String::new();
        escape_into(value, &mut out);
        out
    }

    #[test]
    fn attribute_values_escape_markup_quotes_and_whitespace() {
        assert_eq!(
            escaped(r#"a<b & "c">'d'"#),
            "a&lt;b &amp; &quot;c&quot;&gt;'d'"
        );
        assert_eq!(escaped("x\ny\tz\r"), "x&#10;y&#9;z&#13;");
        assert_eq!(escaped("bell\u{7}"), "bell\u{FFFD}");
    }

    #[test]
    fn empty_bodies_collapse_and_comments_cannot_end_early() {
        let mut out = Out::default();
        out.node(El::new("a").attr("x", "1"), |out| {
            out.node(El::new("b"), |_| {});
            out.comment("x -- y --> z-");
        });
        let (text, _) = out.finish();
        assert_eq!(
            text,
            "<a x=\"1\">\n  <b/>\n  <!-- x - - y - -> z- -->\n</a>\n"
        );
    }

    #[test]
    fn generated_ids_avoid_reserved_and_earlier_ones() {
        let mut out = Out::avoiding([Cow::Borrowed("n")].into_iter().collect());
        assert_eq!(out.fresh("n".into()), "n-1");
        assert_eq!(out.fresh("n".into()), "n-2");
        assert_eq!(out.fresh("m".into()), "m");
        assert_eq!(out.fresh("set-#health:0".into()), "set--health-0");
        assert_eq!(out.fresh("1".into()), "id-1");
    }

    #[test]
    fn attribute_names_are_checked() {
        assert!(is_attribute_name("record-pending"));
        assert!(is_attribute_name("_x.1"));
        assert!(!is_attribute_name("1x"));
        assert!(!is_attribute_name("a b"));
        assert!(!is_attribute_name("ns:x"));
        assert!(!is_attribute_name("xmlns"));
        assert!(!is_attribute_name(""));
    }
}
