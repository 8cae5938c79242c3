//! What this node's executor holds (started or found running, and not yet
//! stopped), kept in a file so that a daemon restarted after a crash knows
//! what its predecessor left running: the lease rule stops those too when
//! the node holds no lease, and the watchdog is fed without a lease only
//! while nothing is held (`crate::lease`). Pacemaker's executor forgets
//! everything when it dies and relies on the DC's probes; a node cut off
//! from the DC gets none, so it must know on its own.
//!
//! Saved before an operation that may make a resource active runs (a crash
//! during it can leave a process) and after every change, replaced
//! atomically (write, fsync, rename, fsync the directory), mode 0600 (the
//! parameters may hold secrets), with the machine's boot id: a record from
//! an earlier boot holds nothing (a reboot ended every process).
//!
//! A daemon that finds no record (a first start, or a data directory made
//! anew), one it cannot read, or the marker a failed save leaves, is
//! uncertain ([`Loaded::uncertain`]) until it has learnt what runs here
//! (`LocalExecutor::learn_certainty`: every configured resource probed or
//! operated since it started); only then is the marker removed
//! ([`HeldFile::complete`]).

use crate::executor::ExecRequest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The on-disk record: instance → the request that started it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    version: u32,
    /// `/proc/sys/kernel/random/boot_id` when it was written.
    boot_id: String,
    held: Vec<ExecRequest>,
}

const VERSION: u32 = 1;

/// The file and its marker.
#[derive(Debug)]
pub struct HeldFile {
    path: PathBuf,
    boot_id: String,
    /// What the last successful save wrote (unchanged records are not
    /// written again).
    last: std::sync::Mutex<Option<Vec<u8>>>,
}

/// This machine's boot id (empty if the kernel does not say).
pub fn this_boot() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// What a restarted daemon learns from the file.
#[derive(Debug, Default)]
pub struct Loaded {
    pub held: BTreeMap<String, ExecRequest>,
    /// The record could not be read or may miss something: what runs here
    /// is unknown until the DC has probed it.
    pub uncertain: Option<String>,
}

impl HeldFile {
    /// The record at `path` on the machine booted as `boot_id`
    /// ([`this_boot`]; a simulation's hosts have their own).
    pub fn new(path: PathBuf, boot_id: String) -> HeldFile {
        HeldFile {
            path,
            boot_id,
            last: std::sync::Mutex::new(None),
        }
    }

    fn marker(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".incomplete");
        PathBuf::from(name)
    }

    /// Reads the record. A file that cannot be read is set aside
    /// (`.unreadable`) rather than lost, the marker made first.
    pub fn load(&self) -> Loaded {
        let mut loaded = Loaded::default();
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                loaded.uncertain = Some(format!(
                    "no record of what runs here ({} is missing: a first start, or a new data directory)",
                    self.path.display()
                ));
                return loaded;
            }
            Err(e) => {
                self.mark_incomplete();
                loaded.uncertain = Some(format!("cannot read {}: {e}", self.path.display()));
                return loaded;
            }
        };
        match serde_json::from_slice::<Record>(&text) {
            Ok(record) if record.version == VERSION && record.boot_id != self.boot_id => {
                // Written before the machine last booted: nothing of it
                // runs, whatever a failed save may have left out.
                let _ = std::fs::remove_file(self.marker());
            }
            Ok(record) if record.version == VERSION => {
                loaded.held = record
                    .held
                    .into_iter()
                    .map(|r| (r.instance.clone(), r))
                    .collect();
                if self.marker().exists() {
                    loaded.uncertain = Some(format!(
                        "{} may be incomplete (a save failed, and nothing since learnt what runs here)",
                        self.path.display()
                    ));
                }
            }
            Ok(record) => {
                loaded.uncertain = Some(format!(
                    "{} has format version {}, this daemon reads {VERSION}",
                    self.path.display(),
                    record.version
                ));
            }
            Err(e) => {
                self.mark_incomplete();
                let aside = self.path.with_extension("json.unreadable");
                let _ = std::fs::rename(&self.path, &aside);
                loaded.uncertain = Some(format!(
                    "{} is not a valid record ({e}); kept as {}",
                    self.path.display(),
                    aside.display()
                ));
            }
        }
        loaded
    }

    /// Replaces the record with `held` (unless it says that already). On
    /// failure the marker is made, so a later daemon knows the record may
    /// miss something.
    pub fn save(&self, held: &BTreeMap<String, ExecRequest>) -> std::io::Result<()> {
        let record = Record {
            version: VERSION,
            boot_id: self.boot_id.clone(),
            held: held.values().cloned().collect(),
        };
        let text = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() == Some(&text) {
            return Ok(());
        }
        let result = self.write(&text);
        match &result {
            Ok(()) => *last = Some(text),
            Err(_) => {
                *last = None;
                self.mark_incomplete();
            }
        }
        result
    }

    /// The record is complete again (the daemon learnt what runs here).
    pub fn complete(&self) {
        let _ = std::fs::remove_file(self.marker());
    }

    fn mark_incomplete(&self) {
        let _ = std::fs::File::create(self.marker());
    }

    fn write(&self, text: &[u8]) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut f = open_private(&tmp)?;
            f.write_all(text)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory of this test's own (removed when dropped).
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("tandem-held-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn request(instance: &str) -> ExecRequest {
        serde_json::from_value(serde_json::json!({
            "term": 3,
            "resource": {"id": "web", "class": "ocf", "provider": "heartbeat", "agent": "Dummy"},
            "instance": instance,
            "action": "start",
            "interval_ms": 0,
            "timeout_ms": 20000,
            "expected": "ok",
            "params": {"state": "/run/web.state"},
            "meta": {}
        }))
        .unwrap()
    }

    fn file(dir: &Scratch, boot: &str) -> HeldFile {
        HeldFile::new(dir.path().join("held.json"), boot.into())
    }

    #[test]
    fn what_was_saved_is_what_a_restarted_daemon_loads() {
        let dir = Scratch::new("saved");
        let fresh = file(&dir, "boot-a").load();
        assert!(fresh.held.is_empty());
        let why = fresh.uncertain.unwrap();
        assert!(why.starts_with("no record of what runs here"), "{why}");
        let held: BTreeMap<_, _> = [("web".to_string(), request("web"))].into();
        file(&dir, "boot-a").save(&held).unwrap();
        let loaded = file(&dir, "boot-a").load();
        assert_eq!(loaded.uncertain, None);
        assert_eq!(loaded.held.keys().collect::<Vec<_>>(), ["web"]);
        assert_eq!(loaded.held["web"].params["state"], "/run/web.state");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("held.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // After a reboot nothing of it runs.
        let rebooted = file(&dir, "boot-b").load();
        assert!(rebooted.held.is_empty() && rebooted.uncertain.is_none());
    }

    #[test]
    fn an_unreadable_record_is_kept_aside_and_the_doubt_outlives_the_next_daemon() {
        let dir = Scratch::new("unreadable");
        let path = dir.path().join("held.json");
        std::fs::write(&path, b"{\"version\":1,\"held\":[{\"term\"").unwrap();
        let loaded = file(&dir, "boot-a").load();
        assert!(loaded.held.is_empty());
        let why = loaded.uncertain.unwrap();
        assert!(why.contains("is not a valid record"), "{why}");
        assert!(dir.path().join("held.json.unreadable").exists());
        assert!(!path.exists());
        // That daemon saves once, then dies: the next one still doubts.
        file(&dir, "boot-a").save(&BTreeMap::new()).unwrap();
        let why = file(&dir, "boot-a").load().uncertain.unwrap();
        assert!(why.contains("may be incomplete"), "{why}");
    }

    #[test]
    fn a_failed_save_leaves_a_marker_until_the_daemon_learnt_what_runs() {
        let dir = Scratch::new("failed");
        let held = file(&dir, "boot-a");
        held.save(&BTreeMap::new()).unwrap();
        std::fs::create_dir(dir.path().join("held.json.tmp")).unwrap();
        assert!(held
            .save(&[("web".to_string(), request("web"))].into())
            .is_err());
        std::fs::remove_dir(dir.path().join("held.json.tmp")).unwrap();
        // A later save succeeds, but the record may still miss something.
        held.save(&BTreeMap::new()).unwrap();
        let why = file(&dir, "boot-a").load().uncertain.unwrap();
        assert!(why.contains("may be incomplete"), "{why}");
        held.complete();
        assert_eq!(file(&dir, "boot-a").load().uncertain, None);
    }
}
