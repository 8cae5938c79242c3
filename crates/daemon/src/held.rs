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
//! parameters may hold secrets). When a save fails, a marker file says the
//! record may be incomplete until a later save succeeds; a daemon that
//! finds the marker, or a file it cannot read, knows less than it must
//! ([`Loaded::uncertain`]).

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
    held: Vec<ExecRequest>,
}

const VERSION: u32 = 1;

/// The file and its marker.
#[derive(Clone, Debug)]
pub struct HeldFile {
    path: PathBuf,
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
    pub fn new(path: PathBuf) -> HeldFile {
        HeldFile { path }
    }

    fn marker(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".incomplete");
        PathBuf::from(name)
    }

    /// Reads the record; a missing file holds nothing. A file that cannot
    /// be read is set aside (`.unreadable`) rather than lost.
    pub fn load(&self) -> Loaded {
        let mut loaded = Loaded::default();
        if self.marker().exists() {
            loaded.uncertain = Some(format!(
                "{} may be incomplete (a save failed before the daemon stopped)",
                self.path.display()
            ));
        }
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return loaded,
            Err(e) => {
                loaded.uncertain = Some(format!("cannot read {}: {e}", self.path.display()));
                return loaded;
            }
        };
        match serde_json::from_slice::<Record>(&text) {
            Ok(record) if record.version == VERSION => {
                loaded.held = record
                    .held
                    .into_iter()
                    .map(|r| (r.instance.clone(), r))
                    .collect();
            }
            Ok(record) => {
                loaded.uncertain = Some(format!(
                    "{} has format version {}, this daemon reads {VERSION}",
                    self.path.display(),
                    record.version
                ));
            }
            Err(e) => {
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

    /// Replaces the record with `held`. On failure the marker is left (or
    /// made), so the next daemon knows the record may miss something.
    pub fn save(&self, held: &BTreeMap<String, ExecRequest>) -> std::io::Result<()> {
        let result = self.write(held);
        match &result {
            Ok(()) => {
                let _ = std::fs::remove_file(self.marker());
            }
            Err(_) => {
                let _ = std::fs::File::create(self.marker());
            }
        }
        result
    }

    fn write(&self, held: &BTreeMap<String, ExecRequest>) -> std::io::Result<()> {
        let record = Record {
            version: VERSION,
            held: held.values().cloned().collect(),
        };
        let text = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut f = open_private(&tmp)?;
            f.write_all(&text)?;
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

    #[test]
    fn what_was_saved_is_what_a_restarted_daemon_loads() {
        let dir = Scratch::new("saved");
        let file = HeldFile::new(dir.path().join("held.json"));
        let fresh = file.load();
        assert!(fresh.held.is_empty() && fresh.uncertain.is_none());
        let held: BTreeMap<_, _> = [("web".to_string(), request("web"))].into();
        file.save(&held).unwrap();
        let loaded = file.load();
        assert_eq!(loaded.uncertain, None);
        assert_eq!(loaded.held.keys().collect::<Vec<_>>(), ["web"]);
        assert_eq!(loaded.held["web"].params["state"], "/run/web.state");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("held.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn an_unreadable_record_is_kept_aside_and_makes_the_daemon_uncertain() {
        let dir = Scratch::new("unreadable");
        let path = dir.path().join("held.json");
        std::fs::write(&path, b"{\"version\":1,\"held\":[{\"term\"").unwrap();
        let loaded = HeldFile::new(path.clone()).load();
        assert!(loaded.held.is_empty());
        let why = loaded.uncertain.unwrap();
        assert!(why.contains("is not a valid record"), "{why}");
        assert!(dir.path().join("held.json.unreadable").exists());
        assert!(!path.exists());
    }

    #[test]
    fn a_failed_save_leaves_a_marker_until_a_save_succeeds() {
        let dir = Scratch::new("failed");
        let file = HeldFile::new(dir.path().join("sub").join("held.json"));
        // The directory is missing, so the save fails.
        assert!(file.save(&BTreeMap::new()).is_err());
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        // The marker could not be made in a missing directory either;
        // make the failure again now that it can.
        std::fs::create_dir(dir.path().join("sub").join("held.json.tmp")).unwrap();
        assert!(file.save(&BTreeMap::new()).is_err());
        let why = file.load().uncertain.unwrap();
        assert!(why.contains("may be incomplete"), "{why}");
        std::fs::remove_dir(dir.path().join("sub").join("held.json.tmp")).unwrap();
        file.save(&BTreeMap::new()).unwrap();
        assert_eq!(file.load().uncertain, None);
    }
}
