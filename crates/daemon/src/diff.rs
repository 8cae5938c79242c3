//! A line diff of two configuration documents in unified style (`-`/`+`
//! lines with `@@` hunk headers and [`CONTEXT`] lines around each change),
//! for `config plan`. A longest-common-subsequence table; documents longer
//! than [`MAX_LINES`] get a whole-document replacement instead, so the
//! table stays bounded (MAX_LINES² cells).

/// Lines of context around a change, as `diff -u` prints.
pub const CONTEXT: usize = 3;
/// Above this many lines on either side the diff is not computed line by line.
pub const MAX_LINES: usize = 4000;

/// The unified diff of `old` to `new`, labelled `a` and `b`; empty when equal.
pub fn unified(old: &str, new: &str, a: &str, b: &str) -> String {
    if old == new {
        return String::new();
    }
    let (x, y): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let ops = if x.len() > MAX_LINES || y.len() > MAX_LINES {
        let mut ops: Vec<Op> = x.iter().map(|l| Op::Del(l)).collect();
        ops.extend(y.iter().map(|l| Op::Add(l)));
        ops
    } else {
        edit_script(&x, &y)
    };
    let mut out = format!("--- {a}\n+++ {b}\n");
    for hunk in hunks(&ops) {
        let (mut old_at, mut new_at) = (hunk.old_start, hunk.new_start);
        let (old_len, new_len) = counts(&hunk.ops);
        old_at += usize::from(old_len > 0);
        new_at += usize::from(new_len > 0);
        out.push_str(&format!("@@ -{old_at},{old_len} +{new_at},{new_len} @@\n"));
        for op in hunk.ops {
            let (mark, line) = match op {
                Op::Same(l) => (' ', l),
                Op::Del(l) => ('-', l),
                Op::Add(l) => ('+', l),
            };
            out.push(mark);
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op<'a> {
    Same(&'a str),
    Del(&'a str),
    Add(&'a str),
}

struct Hunk<'a> {
    old_start: usize,
    new_start: usize,
    ops: Vec<Op<'a>>,
}

fn edit_script<'a>(x: &[&'a str], y: &[&'a str]) -> Vec<Op<'a>> {
    // lcs[i][j]: length of the LCS of x[i..] and y[j..].
    let w = y.len() + 1;
    let mut lcs = vec![0u32; (x.len() + 1) * w];
    for i in (0..x.len()).rev() {
        for j in (0..y.len()).rev() {
            lcs[i * w + j] = if x[i] == y[j] {
                lcs[(i + 1) * w + j + 1] + 1
            } else {
                lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
            };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, Vec::new());
    while i < x.len() || j < y.len() {
        if i < x.len() && j < y.len() && x[i] == y[j] {
            ops.push(Op::Same(x[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < x.len() && (j == y.len() || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
            // Deletions before additions, as diff -u prints them.
            ops.push(Op::Del(x[i]));
            i += 1;
        } else {
            ops.push(Op::Add(y[j]));
            j += 1;
        }
    }
    ops
}

/// How many old and new lines `ops` span.
fn counts(ops: &[Op]) -> (usize, usize) {
    ops.iter().fold((0, 0), |(o, n), op| match op {
        Op::Same(_) => (o + 1, n + 1),
        Op::Del(_) => (o + 1, n),
        Op::Add(_) => (o, n + 1),
    })
}

/// Groups changes with up to CONTEXT unchanged lines around them.
fn hunks<'a>(ops: &[Op<'a>]) -> Vec<Hunk<'a>> {
    let changed: Vec<usize> = (0..ops.len())
        .filter(|&k| !matches!(ops[k], Op::Same(_)))
        .collect();
    let mut out: Vec<Hunk> = Vec::new();
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(CONTEXT);
        let mut end = changed[k];
        while k + 1 < changed.len() && changed[k + 1] <= end + 2 * CONTEXT + 1 {
            k += 1;
            end = changed[k];
        }
        let end = (end + CONTEXT + 1).min(ops.len());
        let (old_start, new_start) = counts(&ops[..start]);
        out.push(Hunk {
            old_start,
            new_start,
            ops: ops[start..end].to_vec(),
        });
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_documents_have_no_diff() {
        assert_eq!(unified("a\nb\n", "a\nb\n", "x", "y"), "");
    }

    #[test]
    fn one_changed_line_is_a_hunk_with_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
        assert_eq!(
            unified(old, new, "running", "new"),
            "--- running\n+++ new\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"
        );
    }

    #[test]
    fn an_addition_to_an_empty_document_is_all_plus() {
        assert_eq!(
            unified("", "a\n", "x", "y"),
            "--- x\n+++ y\n@@ -0,0 +1,1 @@\n+a\n"
        );
    }
}
