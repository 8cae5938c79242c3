//! A pre-scan that bounds element nesting before the text reaches
//! roxmltree, whose parser recurses once per nesting level and would
//! overflow the stack on a hostile document. Pure function over bytes.

/// Deepest element nesting accepted. Real CIBs nest about 12 levels
/// (`cib/configuration/resources/clone/group/primitive/operations/op/
/// meta_attributes/rule/rule/expression`), rules at most 32 more.
pub const MAX_ELEMENT_DEPTH: usize = 128;

/// Byte offset of the first start tag nested deeper than
/// [`MAX_ELEMENT_DEPTH`], if any. Never under-counts: attribute values are
/// skipped with their quotes, and comments, CDATA and processing
/// instructions are skipped whole; malformed markup is left for the XML
/// parser to report.
pub(crate) fn too_deep_at(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(offset) = find(bytes, i, b"<") {
        let start = offset;
        let next = bytes.get(start + 1).copied();
        i = match next {
            Some(b'!') => skip_declaration(bytes, start),
            Some(b'?') => skip_past(bytes, start, b"?>"),
            Some(b'/') => {
                depth = depth.saturating_sub(1);
                skip_past(bytes, start, b">")
            }
            _ => {
                let (end, self_closing) = scan_start_tag(bytes, start);
                if !self_closing {
                    depth += 1;
                    if depth > MAX_ELEMENT_DEPTH {
                        return Some(start);
                    }
                }
                end
            }
        };
    }
    None
}

/// Comments, CDATA sections and `<!DOCTYPE …>` (the parser refuses DTDs).
fn skip_declaration(bytes: &[u8], start: usize) -> usize {
    let rest = &bytes[start..];
    if rest.starts_with(b"<!--") {
        skip_past(bytes, start + 4, b"-->")
    } else if rest.starts_with(b"<![CDATA[") {
        skip_past(bytes, start + 9, b"]]>")
    } else {
        skip_past(bytes, start, b">")
    }
}

/// End of a start tag (index after `>`), and whether it ends with `/>`.
/// Quoted attribute values may hold `>` and `/`, so quotes are tracked.
fn scan_start_tag(bytes: &[u8], start: usize) -> (usize, bool) {
    let mut quote: Option<u8> = None;
    let mut i = start + 1;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return (i + 1, bytes[i - 1] == b'/'),
            None => {}
        }
        i += 1;
    }
    (bytes.len(), false)
}

/// Index just after the next `pattern` at or after `from` (end of input
/// when there is none).
fn skip_past(bytes: &[u8], from: usize, pattern: &[u8]) -> usize {
    find(bytes, from, pattern).map_or(bytes.len(), |at| at + pattern.len())
}

fn find(bytes: &[u8], from: usize, pattern: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(pattern.len())
        .position(|w| w == pattern)
        .map(|at| from + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "<a x='/>'>".repeat(depth), "</a>".repeat(depth))
    }

    #[test]
    fn depth_at_the_limit_passes_and_beyond_it_is_found() {
        assert_eq!(too_deep_at(&nested(MAX_ELEMENT_DEPTH)), None);
        assert_eq!(
            too_deep_at(&nested(MAX_ELEMENT_DEPTH + 1)),
            Some(MAX_ELEMENT_DEPTH * 10)
        );
    }

    #[test]
    fn siblings_comments_and_self_closing_tags_do_not_add_depth() {
        let flat = "<r><!-- <a><a> --><![CDATA[<a>]]><?pi <a>?><b/><c></c></r>".repeat(1000);
        assert_eq!(too_deep_at(&flat), None);
    }
}
