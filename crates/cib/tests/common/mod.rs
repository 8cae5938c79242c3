//! Shared test helpers: where Pacemaker's scheduler corpus lives. It is GPL
//! test data kept outside the repository, read at test time; a missing
//! directory fails the test instead of passing it silently.

use std::fs;
use std::path::PathBuf;

pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pcmk-scheduler/cases")
}

/// Every `*.xml` case, sorted by name.
#[allow(dead_code)]
pub fn corpus_files() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "corpus directory {} is missing ({e}); it holds Pacemaker's scheduler cases",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.xml cases in {}", dir.display());
    files
}

/// One corpus case's text.
#[allow(dead_code)]
pub fn corpus_case(name: &str) -> String {
    let path = corpus_dir().join(format!("{name}.xml"));
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("corpus case {} is missing ({e})", path.display()))
}
