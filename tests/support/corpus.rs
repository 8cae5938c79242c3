//! Finding the shared Pacemaker scheduler corpus and reading `cases.tsv`.
//!
//! The corpus lives outside the repository, in `../shared/pcmk-scheduler`
//! beside the workspace root (CI clones the repository with `shared/` next
//! to it). `TANDEM_CORPUS_DIR` points elsewhere if needed.

use std::path::{Path, PathBuf};

/// The environment variable that overrides where the corpus is looked for.
pub const CORPUS_DIR_ENV: &str = "TANDEM_CORPUS_DIR";

/// A located corpus directory (holds `cases/`, `cases.tsv`, `placement.py`).
#[derive(Clone, Debug)]
pub struct Corpus {
    pub root: PathBuf,
}

/// One row of `cases.tsv`: the columns the harness uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    /// Implementation tier 1..=5 (see the corpus README).
    pub tier: u8,
    /// Extra `crm_simulate` arguments, e.g. `-t 2005-020`.
    pub crm_simulate_args: String,
    /// False for the 2 cases upstream's harness does not run; not scored.
    pub in_cts: bool,
}

impl Corpus {
    /// Finds the corpus: `$TANDEM_CORPUS_DIR`, else
    /// `<workspace>/../shared/pcmk-scheduler`. The error says where it looked.
    pub fn locate(workspace_root: &Path) -> Result<Corpus, String> {
        let root = match std::env::var_os(CORPUS_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => workspace_root
                .join("..")
                .join("shared")
                .join("pcmk-scheduler"),
        };
        if !root.join("cases.tsv").is_file() || !root.join("cases").is_dir() {
            return Err(format!(
                "Pacemaker scheduler corpus not found at {} (expected cases.tsv and cases/ there). \
                 Check out the project's shared/ directory beside the workspace root, \
                 or set {CORPUS_DIR_ENV} to the pcmk-scheduler directory.",
                root.display()
            ));
        }
        let root = root.canonicalize().unwrap_or(root);
        Ok(Corpus { root })
    }

    pub fn cases_dir(&self) -> PathBuf {
        self.root.join("cases")
    }

    pub fn placement_py(&self) -> PathBuf {
        self.root.join("placement.py")
    }

    pub fn xml_path(&self, case: &Case) -> PathBuf {
        self.cases_dir().join(format!("{}.xml", case.name))
    }

    pub fn summary_path(&self, case: &Case) -> PathBuf {
        self.cases_dir().join(format!("{}.summary", case.name))
    }

    /// Every case listed in `cases.tsv`, in file order.
    pub fn cases(&self) -> Result<Vec<Case>, String> {
        let path = self.root.join("cases.tsv");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        parse_cases_tsv(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl Case {
    /// The value of `-t DATE` in the case's crm_simulate arguments.
    pub fn date_arg(&self) -> Option<String> {
        let words = shell_words(&self.crm_simulate_args);
        let at = words
            .iter()
            .position(|w| w == "-t" || w == "--set-datetime")?;
        words.get(at + 1).cloned()
    }
}

/// Parses `cases.tsv`, finding columns by their header names.
pub fn parse_cases_tsv(text: &str) -> Result<Vec<Case>, String> {
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or("empty file")?;
    let columns: Vec<&str> = header.split('\t').collect();
    let column = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or(format!("line 1: no column named {name:?}"))
    };
    let (name_at, tier_at) = (column("name")?, column("tier")?);
    let (args_at, in_cts_at) = (column("crm_simulate_args")?, column("in_cts")?);

    let mut cases = Vec::new();
    for (index, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let field = |at: usize| {
            fields.get(at).copied().ok_or(format!(
                "line {}: only {} columns",
                index + 1,
                fields.len()
            ))
        };
        let tier = field(tier_at)?;
        cases.push(Case {
            name: field(name_at)?.to_string(),
            tier: tier
                .parse()
                .map_err(|_| format!("line {}: tier {tier:?} is not a number", index + 1))?,
            crm_simulate_args: field(args_at)?.to_string(),
            in_cts: field(in_cts_at)? != "no",
        });
    }
    Ok(cases)
}

/// Splits a command line the way a POSIX shell would for simple words:
/// whitespace separates, single and double quotes group.
pub fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_group_quoted_text() {
        assert_eq!(
            shell_words("-t '2014-05-07 00:28:00'  -x \"a b\""),
            ["-t", "2014-05-07 00:28:00", "-x", "a b"]
        );
        assert_eq!(shell_words("  "), Vec::<String>::new());
    }

    #[test]
    fn cases_tsv_columns_are_found_by_name() {
        let text = "name\ttier\tx\tcrm_simulate_args\tin_cts\n\
                    date-2\t5\t1\t-t 2005-020T12:30\tyes\n\
                    bundle-order-partial\t5\t1\t\tno\n";
        let cases = parse_cases_tsv(text).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].tier, 5);
        assert_eq!(cases[0].date_arg().as_deref(), Some("2005-020T12:30"));
        assert!(cases[0].in_cts);
        assert!(!cases[1].in_cts);
        assert_eq!(cases[1].date_arg(), None);
    }

    #[test]
    fn cases_tsv_without_a_needed_column_is_an_error() {
        assert!(parse_cases_tsv("name\ttier\n")
            .unwrap_err()
            .contains("crm_simulate_args"));
    }
}
