//! Errors of the CIB reader: XML syntax errors and problems in the CIB's
//! content, each saying what is wrong, where (element path), and at which
//! line and column.
//!
//! Main types: [`CibError`], [`Problem`].

use std::fmt;

/// The most problems one [`CibError::Invalid`] keeps; the rest are counted.
/// A broken generated CIB can have thousands of identical faults and the
/// first few are enough to fix it.
pub const MAX_PROBLEMS: usize = 50;

/// Why a CIB could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CibError {
    /// The text is not well-formed XML (or uses a DTD, which is refused).
    #[error("XML syntax error at line {line}, column {column}: {message}")]
    Xml {
        message: String,
        line: u32,
        column: u32,
    },
    /// The document is larger than [`crate::MAX_CIB_BYTES`].
    #[error("CIB is {bytes} bytes, more than the limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    /// Elements nest deeper than [`crate::MAX_ELEMENT_DEPTH`].
    #[error("elements nest deeper than {limit} levels (line {line}, column {column})")]
    TooDeep {
        limit: usize,
        line: u32,
        column: u32,
    },
    /// Well-formed XML whose content is not a valid CIB. Every problem found
    /// is listed (up to [`MAX_PROBLEMS`]; `omitted` counts the rest).
    #[error("{}", list_problems(problems, *omitted))]
    Invalid {
        problems: Vec<Problem>,
        omitted: usize,
    },
}

impl CibError {
    /// The content problems (empty for syntax and size errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            CibError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// One fault in a CIB's content, located by element path and text position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// XPath-like location, e.g.
    /// `/cib/configuration/resources/primitive[@id='rsc1']/operations/op[2]`.
    pub path: String,
    pub message: String,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (line {}, column {})",
            self.path, self.message, self.line, self.column
        )
    }
}

fn list_problems(problems: &[Problem], omitted: usize) -> String {
    let mut text = problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    if omitted > 0 {
        text.push_str(&format!("\n... and {omitted} more problems"));
    }
    text
}
