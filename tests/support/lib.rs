//! Support code for tandem's workspace-level tests: the Pacemaker regression
//! corpus harness (used by `tests/corpus.rs`), the process-cluster harness
//! (used by `tests/cluster_processes.rs`) and helpers shared by the
//! benchmarks.
//!
//! Main pieces: [`corpus`] finds `../shared/pcmk-scheduler` and reads its
//! case list, [`date`] turns a case's `-t DATE` into epoch seconds,
//! [`summary`] parses the expected `Transition Summary` into comparable
//! actions, [`placement`] runs the corpus' own `placement.py compare-dirs`
//! once and reads its verdicts, [`run`] parses and schedules every case
//! with panics and hangs contained, [`report`] tallies and prints,
//! [`synth`] generates large CIBs for the scale benchmark, and
//! [`processes`] runs clusters of real `tandem` daemon processes, and
//! [`netns`] runs them as separate hosts in network namespaces.
//!
//! Must not: be compiled into anything tandem ships (the corpus is GPL test
//! data), or re-implement the comparison that `placement.py` owns.

pub mod corpus;
pub mod date;
pub mod netns;
pub mod placement;
pub mod processes;
pub mod report;
pub mod run;
pub mod summary;
pub mod synth;

use std::path::{Path, PathBuf};

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// The cargo target directory the running test or bench binary was built
/// into (binaries live in `TARGET/<profile>/deps/`), so outputs land next to
/// the build whatever `CARGO_TARGET_DIR` says.
pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .filter(|dir| dir.join("CACHEDIR.TAG").exists())
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The process's peak resident memory so far (`VmHWM` in
/// `/proc/self/status`), in KiB; `None` where procfs is not available.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
