//! The node-local attribute store the Pacemaker shims read and write until
//! the daemon serves them: one JSON file (path from `TANDEM_ATTR_STORE`,
//! default [`DEFAULT_STORE`]) holding node attributes (with their
//! lifetime), this node's name, the membership view, quorum and where
//! resources run. Every change is read-modify-write under an exclusive
//! `flock` on a sibling lock file and lands by atomic rename, so concurrent
//! agents (clone instances) never lose each other's updates.
//!
//! Later the daemon answers the shims over its API and this file becomes
//! its cache for agents on a node that lost its cluster connection.
//!
//! Main types: [`AttrStore`], [`AttrData`], [`Lifetime`].
//! Must not: interpret attributes (promotion scores are the scheduler's).

use crate::limits::ATTR_STORE_MAX_BYTES;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Where the store lives when `TANDEM_ATTR_STORE` is not set.
pub const DEFAULT_STORE: &str = "/run/tandem/attrs.json";

/// How long an attribute lives (Pacemaker's `--lifetime`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifetime {
    /// Transient: cleared when the node reboots (status section).
    Reboot,
    /// Permanent: kept in the configuration (nodes section).
    Forever,
}

impl Lifetime {
    /// Pacemaker's name of the CIB section holding such attributes.
    pub fn scope(self) -> &'static str {
        match self {
            Lifetime::Reboot => "status",
            Lifetime::Forever => "nodes",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attr {
    pub value: String,
    pub lifetime: Lifetime,
}

/// Everything in the store file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttrData {
    /// This node's name; `TANDEM_NODE_NAME` and the host name come first.
    pub local_node: Option<String>,
    /// Cluster members as this node sees them; empty means only itself.
    pub members: Vec<String>,
    /// Whether this node's partition has quorum; unknown means yes.
    pub quorate: Option<bool>,
    /// node → attribute name → attribute.
    pub attributes: BTreeMap<String, BTreeMap<String, Attr>>,
    /// resource → nodes where it is active (for `crm_resource --locate`).
    pub locations: BTreeMap<String, Vec<String>>,
}

impl AttrData {
    pub fn get(&self, node: &str, name: &str) -> Option<&Attr> {
        self.attributes.get(node).and_then(|m| m.get(name))
    }

    pub fn set(&mut self, node: &str, name: &str, value: &str, lifetime: Lifetime) {
        self.attributes.entry(node.to_string()).or_default().insert(
            name.to_string(),
            Attr {
                value: value.to_string(),
                lifetime,
            },
        );
    }

    /// Removes an attribute; true if it existed.
    pub fn delete(&mut self, node: &str, name: &str) -> bool {
        let Some(attrs) = self.attributes.get_mut(node) else {
            return false;
        };
        let existed = attrs.remove(name).is_some();
        if attrs.is_empty() {
            self.attributes.remove(node);
        }
        existed
    }

    /// Members, never empty: at least this node.
    pub fn members_or(&self, local: &str) -> Vec<String> {
        if self.members.is_empty() {
            vec![local.to_string()]
        } else {
            self.members.clone()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AttrError {
    #[error("attribute store {path}: {action}: {source}")]
    Io {
        path: String,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("attribute store {path} is {len} bytes, more than the {max} accepted")]
    TooLarge { path: String, len: u64, max: u64 },
    #[error("attribute store {path} is not valid: {detail}")]
    Corrupt { path: String, detail: String },
}

/// The store file.
#[derive(Clone, Debug)]
pub struct AttrStore {
    pub path: PathBuf,
}

impl AttrStore {
    pub fn new(path: impl Into<PathBuf>) -> AttrStore {
        AttrStore { path: path.into() }
    }

    /// The store named by `TANDEM_ATTR_STORE` (via `env`), or the default.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> AttrStore {
        AttrStore::new(
            env("TANDEM_ATTR_STORE")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| DEFAULT_STORE.to_string()),
        )
    }

    /// Reads the store; a missing file is an empty store.
    pub fn read(&self) -> Result<AttrData, AttrError> {
        let _lock = self.lock(libc::LOCK_SH)?;
        self.read_unlocked()
    }

    /// Applies `change` to the store atomically and returns its result.
    pub fn update<T>(&self, change: impl FnOnce(&mut AttrData) -> T) -> Result<T, AttrError> {
        let _lock = self.lock(libc::LOCK_EX)?;
        let mut data = self.read_unlocked()?;
        let out = change(&mut data);
        self.write_unlocked(&data)?;
        Ok(out)
    }

    fn io(&self, action: &'static str) -> impl FnOnce(std::io::Error) -> AttrError + '_ {
        move |source| AttrError::Io {
            path: self.path.display().to_string(),
            action,
            source,
        }
    }

    fn lock(&self, how: i32) -> Result<File, AttrError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(self.io("create its directory"))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(sibling(&self.path, ".lock"))
            .map_err(self.io("open the lock file"))?;
        // SAFETY: flock on a file descriptor this function owns; the lock
        // is released when the returned File is dropped.
        let rc = unsafe { libc::flock(file.as_raw_fd(), how) };
        if rc != 0 {
            return Err(self.io("lock")(std::io::Error::last_os_error()));
        }
        Ok(file)
    }

    fn read_unlocked(&self) -> Result<AttrData, AttrError> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AttrData::default()),
            Err(e) => return Err(self.io("open")(e)),
        };
        let len = file.metadata().map_err(self.io("stat"))?.len();
        if len > ATTR_STORE_MAX_BYTES {
            return Err(AttrError::TooLarge {
                path: self.path.display().to_string(),
                len,
                max: ATTR_STORE_MAX_BYTES,
            });
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(self.io("read"))?;
        if text.trim().is_empty() {
            return Ok(AttrData::default());
        }
        serde_json::from_str(&text).map_err(|e| AttrError::Corrupt {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        })
    }

    fn write_unlocked(&self, data: &AttrData) -> Result<(), AttrError> {
        let tmp = sibling(&self.path, ".tmp");
        let mut text = serde_json::to_string_pretty(data).map_err(|e| AttrError::Corrupt {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        })?;
        text.push('\n');
        let mut file = File::create(&tmp).map_err(self.io("create the temporary file"))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(self.io("write the temporary file"))?;
        fs::rename(&tmp, &self.path).map_err(self.io("replace"))
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(name: &str) -> AttrStore {
        let dir = std::env::temp_dir().join(format!("tandem-attrs-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        AttrStore::new(dir.join("attrs.json"))
    }

    #[test]
    fn updates_land_and_survive_a_reread() {
        let store = temp_store("roundtrip");
        assert_eq!(store.read().unwrap(), AttrData::default());
        store
            .update(|d| d.set("n1", "master-db", "10", Lifetime::Reboot))
            .unwrap();
        let data = store.read().unwrap();
        assert_eq!(data.get("n1", "master-db").unwrap().value, "10");
        assert!(store.update(|d| d.delete("n1", "master-db")).unwrap());
        assert!(store.read().unwrap().attributes.is_empty());
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let store = temp_store("concurrent");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for j in 0..10 {
                        store
                            .update(|d| d.set("n1", &format!("a{i}-{j}"), "1", Lifetime::Reboot))
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(store.read().unwrap().attributes["n1"].len(), 80);
    }

    #[test]
    fn a_corrupt_store_is_an_error_naming_the_file() {
        let store = temp_store("corrupt");
        fs::create_dir_all(store.path.parent().unwrap()).unwrap();
        fs::write(&store.path, "{not json").unwrap();
        let e = store.read().unwrap_err().to_string();
        assert!(e.contains("attrs.json") && e.contains("not valid"), "{e}");
    }
}
