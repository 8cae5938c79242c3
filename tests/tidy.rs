//! Tidy checks that keep DESIGN.md's rules true as code lands:
//! the allowed dependency edges between tandem crates, a `//!` doc comment
//! at the top of every Rust file, and a scheduler that touches no disk,
//! network or clock. Each failure names the file and the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use tandem_tests::workspace_root;

/// Which tandem crates each crate may depend on (DESIGN.md, "Allowed edges
/// between our crates"). A crate missing here fails the check until its
/// edges are written down.
const ALLOWED_EDGES: &[(&str, &[&str])] = &[
    ("tandem-model", &[]),
    ("tandem-cib", &["tandem-model"]),
    ("tandem-scheduler", &["tandem-model"]),
    ("tandem-agents", &["tandem-model"]),
    ("tandem-lb", &["tandem-model"]),
    ("tandem-cluster", &["tandem-model"]),
    (
        "tandem-daemon",
        &[
            "tandem-model",
            "tandem-cib",
            "tandem-scheduler",
            "tandem-agents",
            "tandem-lb",
            "tandem-cluster",
        ],
    ),
    (
        "tandem-cli",
        &[
            "tandem-daemon",
            "tandem-agents",
            "tandem-cib",
            "tandem-scheduler",
            "tandem-model",
            // `tandem lb run` embeds the lb until the daemon runs it.
            "tandem-lb",
        ],
    ),
];

/// Source text that means the scheduler reads disk, network or the clock.
const SCHEDULER_FORBIDDEN: &[&str] = &["std::fs", "std::net", "SystemTime", "Instant::now"];

/// Third-party crates that would give the scheduler I/O, time or randomness.
const SCHEDULER_FORBIDDEN_DEPS: &[&str] = &["tokio", "rand", "chrono", "time", "openraft", "redb"];

#[test]
fn crates_depend_only_on_allowed_tandem_crates() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED_EDGES.iter().copied().collect();
    let mut problems = Vec::new();
    for manifest in crate_manifests() {
        let (name, deps) = read_manifest(&manifest);
        let Some(ok) = allowed.get(name.as_str()) else {
            problems.push(format!(
                "{}: crate {name} has no entry in ALLOWED_EDGES (tests/tidy.rs); add its allowed edges from DESIGN.md",
                manifest.display()
            ));
            continue;
        };
        // A crate's dev-dependency on itself only turns on a test feature
        // (`sim`): not an edge.
        for dep in deps
            .iter()
            .filter(|d| d.starts_with("tandem-") && **d != name)
        {
            if !ok.contains(&dep.as_str()) {
                problems.push(format!(
                    "{}: {name} must not depend on {dep} (allowed: {})",
                    manifest.display(),
                    if ok.is_empty() {
                        "none".to_string()
                    } else {
                        ok.join(", ")
                    }
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_rust_file_opens_with_a_module_doc_comment() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in crate_dirs() {
        rust_files(&dir.join("src"), &mut files);
    }
    rust_files(&root.join("tests"), &mut files);
    assert!(
        files.len() > 10,
        "found only {} Rust files under {}",
        files.len(),
        root.display()
    );
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !fs::read_to_string(f).unwrap_or_default().starts_with("//!"))
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "these files must start with a `//!` comment saying what they do:\n{}",
        missing.join("\n")
    );
}

#[test]
fn scheduler_touches_no_disk_network_or_clock() {
    let dir = workspace_root().join("crates/scheduler");
    let mut files = Vec::new();
    rust_files(&dir.join("src"), &mut files);
    assert!(
        !files.is_empty(),
        "no scheduler sources under {}",
        dir.display()
    );
    let mut problems = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap_or_default();
        for found in forbidden_uses(&text) {
            problems.push(format!("{}: uses {found}", file.display()));
        }
    }
    let (_, deps) = read_manifest(&dir.join("Cargo.toml"));
    for dep in deps
        .iter()
        .filter(|d| SCHEDULER_FORBIDDEN_DEPS.contains(&d.as_str()))
    {
        problems.push(format!("crates/scheduler/Cargo.toml: depends on {dep}"));
    }
    assert!(
        problems.is_empty(),
        "the scheduler must be pure (DESIGN.md: no network, disk or time):\n{}",
        problems.join("\n")
    );
}

#[test]
fn forbidden_use_detection_sees_through_comments_and_grouped_imports() {
    assert_eq!(forbidden_uses("use std::fs::read;"), ["std::fs"]);
    assert_eq!(
        forbidden_uses("use std::{collections::BTreeMap, net};"),
        ["std::net"]
    );
    assert_eq!(
        forbidden_uses("let t = std::time::Instant::now();"),
        ["Instant::now"]
    );
    assert_eq!(
        forbidden_uses("// std::fs is not used\nlet x = 1; // SystemTime"),
        Vec::<String>::new()
    );
    assert_eq!(
        forbidden_uses("/// never calls Instant::now\nfn f() {}"),
        Vec::<String>::new()
    );
    let with_tests = "fn f() {}\n#[cfg(test)]\nmod tests {\n fn t() { let s = \"}\"; \
                      let c = '{'; std::fs::write(\"x\", s); }\n}\nfn g() { std::net::x(); }";
    assert_eq!(forbidden_uses(with_tests), ["std::net"]);
    assert_eq!(
        forbidden_uses("#[cfg(test)]\nuse std::fs;\nfn g() {}"),
        Vec::<String>::new()
    );
}

/// The forbidden names used in `source` outside comments and outside
/// `#[cfg(test)]` items (tests may use files and processes), including `fs`
/// and `net` imported through a `std::{...}` group.
fn forbidden_uses(source: &str) -> Vec<String> {
    let code: String = without_test_items(source)
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let mut found: BTreeSet<String> = SCHEDULER_FORBIDDEN
        .iter()
        .filter(|pattern| compact.contains(*pattern))
        .map(|p| p.to_string())
        .collect();
    for group in compact.split("std::{").skip(1) {
        let items = group.split('}').next().unwrap_or("");
        for item in items.split(',') {
            let head = item.split("::").next().unwrap_or("");
            if head == "fs" || head == "net" {
                found.insert(format!("std::{head}"));
            }
        }
    }
    found.into_iter().collect()
}

/// `source` with every `#[cfg(test)]` item (up to its matching closing
/// brace, or its `;`) removed. Braces inside string and character literals
/// are skipped; raw strings are not understood, which is good enough here.
fn without_test_items(source: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::new();
    let mut rest = source;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        rest = &rest[at + MARK.len()..];
        rest = &rest[item_end(rest)..];
    }
    out.push_str(rest);
    out
}

/// Byte length of the item at the start of `text`: through the brace that
/// closes its first `{`, or through a `;` that comes before any `{`.
fn item_end(text: &str) -> usize {
    let mut depth = 0usize;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => skip_string(&mut chars),
            '\'' if matches!(chars.peek(), Some((_, '{' | '}'))) => {
                chars.next();
            }
            ';' if depth == 0 => return i + 1,
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// Consumes the rest of a string literal whose opening quote was read.
fn skip_string(chars: &mut impl Iterator<Item = (usize, char)>) {
    while let Some((_, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => return,
            _ => {}
        }
    }
}

/// `crates/*` directories that hold a Cargo.toml.
fn crate_dirs() -> Vec<PathBuf> {
    let crates = workspace_root().join("crates");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&crates)
        .unwrap_or_else(|e| panic!("{}: {e}", crates.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn crate_manifests() -> Vec<PathBuf> {
    let manifests: Vec<PathBuf> = crate_dirs().iter().map(|d| d.join("Cargo.toml")).collect();
    assert!(
        manifests.len() >= 8,
        "expected the 8 crates of DESIGN.md, found {manifests:?}"
    );
    manifests
}

/// The package name and every dependency's package name (normal, dev,
/// build and target-specific), with `package = ".."` renames resolved.
fn read_manifest(path: &Path) -> (String, BTreeSet<String>) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or_else(|| panic!("{}: no package.name", path.display()))
        .to_string();
    let mut tables: Vec<&toml::Table> = vec![&doc];
    if let Some(targets) = doc.get("target").and_then(|t| t.as_table()) {
        tables.extend(targets.values().filter_map(|t| t.as_table()));
    }
    let mut deps = BTreeSet::new();
    for table in tables {
        for kind in ["dependencies", "dev-dependencies", "build-dependencies"] {
            for (key, spec) in table
                .get(kind)
                .and_then(|d| d.as_table())
                .into_iter()
                .flatten()
            {
                let package = spec.get("package").and_then(|p| p.as_str()).unwrap_or(key);
                deps.insert(package.to_string());
            }
        }
    }
    (name, deps)
}

/// Every `.rs` file under `dir`, recursively, skipping build output.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.is_dir() && path.file_name().is_some_and(|n| n != "target") {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
