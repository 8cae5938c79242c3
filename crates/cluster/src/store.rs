//! Durable storage in one redb file: the Raft log, the vote, and the state
//! machine (applied state plus the latest snapshot). Every write commits
//! with fsync before openraft is told it is flushed. A file that cannot be
//! opened or decoded is refused with [`StoreError::Damaged`] rather than
//! served. The file is the production disk; [`MemDisk`] is the simulated
//! one (the storage seam): the same redb code over memory, where a crash
//! loses exactly what was written but not yet synced.

use crate::state::Replicated;
use crate::types::{CommandResult, Member, NodeId, TypeConfig};
use futures_util::StreamExt;
use openraft::alias::{EntryOf, LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{
    EntryResponder, IOFlushed, LogState, RaftLogReader, RaftLogStorage, RaftSnapshotBuilder,
    RaftStateMachine,
};
use openraft::OptionalSend;
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// v5: a node's newest call ids are bounded by a floor
/// (`NodeStatus::call_floor`).
const FORMAT: &str = "tandem-cluster-store-v5";
/// Earlier formats and what changed since: their bytes do not decode as
/// this one (postcard is not self-describing), so they are refused.
const EARLIER_FORMATS: [(&str, &str); 4] = [
    (
        "tandem-cluster-store-v1",
        "its Raft leader ids allowed two leaders in one term",
    ),
    (
        "tandem-cluster-store-v2",
        "its operation results did not say which rejoin of their node they belong to",
    ),
    (
        "tandem-cluster-store-v3",
        "its operation records did not carry the digest of their parameters",
    ),
    (
        "tandem-cluster-store-v4",
        "its record of each node's newest call ids had no floor",
    ),
];

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data file {path} is damaged or truncated ({detail}); refusing to start rather than serve wrong state. Restore it from a peer (delete the data dir and let the node rejoin) or from a backup")]
    Damaged { path: PathBuf, detail: String },
    #[error("data file {path} was written by an earlier tandem (store format {format}: {why}); this version reads {FORMAT} only and keeps the file as it is. Nodes of the two formats cannot form one cluster: with the earlier version still running, export the configuration (`tandem config export`), then upgrade every node with an empty data dir, re-create the cluster and apply the export")]
    OldFormat {
        path: PathBuf,
        format: &'static str,
        why: &'static str,
    },
    #[error("data file {path} is in use by another tandem process on this machine")]
    InUse { path: PathBuf },
    #[error("{path}: {detail}")]
    Recovery { path: PathBuf, detail: String },
    #[error("cannot create data dir {path}: {source}")]
    Dir { path: PathBuf, source: io::Error },
}

/// The state machine's durable content.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogIdOf<TypeConfig>>,
    membership: StoredMembershipOf<TypeConfig>,
    data: Replicated,
}

/// A snapshot as stored and shipped: metadata plus the encoded [`Applied`].
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMetaOf<TypeConfig>,
    data: Vec<u8>,
}

/// Opens the store file `data_dir/raft.redb` and checks every record.
pub fn open(data_dir: &Path) -> Result<(LogStore, StateMachine), StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Dir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let path = data_dir.join("raft.redb");
    let damaged = |detail: String| StoreError::Damaged {
        path: path.clone(),
        detail,
    };
    // An empty file is a store that lost everything (a disk fault, a bad
    // copy), not a new one: a voter that forgot its vote could vote twice
    // in one term. Only a missing file starts afresh.
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
        return Err(damaged(
            "the file is empty (a new store is made only where none exists; move it away to start this node afresh, as a new member)".into(),
        ));
    }
    // redb asserts (panics) on some truncated files; a panic here is a
    // damaged file, not a bug to crash on.
    let opened = std::panic::catch_unwind(|| Database::create(&path))
        .map_err(|_| damaged("the storage engine rejected the file layout".into()))?;
    let db = match opened {
        Ok(db) => db,
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(StoreError::InUse { path: path.clone() })
        }
        Err(e) => return Err(damaged(e.to_string())),
    };
    from_db(db, &path)
}

/// Opens a store on a simulated disk (see [`MemDisk`]), checked like a file.
pub fn open_on(disk: &MemDisk) -> Result<(LogStore, StateMachine), StoreError> {
    let path = PathBuf::from("<simulated disk>");
    let db = Database::builder()
        .create_with_backend(MemBackend(disk.0.clone()))
        .map_err(|e| StoreError::Damaged {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    from_db(db, &path)
}

fn from_db(db: Database, path: &Path) -> Result<(LogStore, StateMachine), StoreError> {
    let db = Arc::new(db);
    let found = marker(&db).ok().flatten();
    if let Some((format, why)) = EARLIER_FORMATS
        .iter()
        .find(|(format, _)| found.as_deref() == Some(format.as_bytes()))
    {
        return Err(StoreError::OldFormat {
            path: path.to_path_buf(),
            format,
            why,
        });
    }
    let applied = verify(&db).map_err(|e| StoreError::Damaged {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let log = LogStore { db: db.clone() };
    let sm = StateMachine {
        db,
        applied: Arc::new(RwLock::new(applied)),
    };
    Ok((log, sm))
}

/// A disk in memory for the simulation. Writes land at once but stay
/// undoable until the next sync, like a page cache before fsync;
/// [`MemDisk::after_crash`] is what a reboot would find.
#[derive(Clone, Debug, Default)]
pub struct MemDisk(Arc<Mutex<DiskState>>);

#[derive(Debug, Default)]
struct DiskState {
    bytes: Vec<u8>,
    /// How to take back every change since the last sync, oldest first.
    unsynced: Vec<Undo>,
}

#[derive(Debug)]
enum Undo {
    Write {
        offset: usize,
        old: Vec<u8>,
    },
    /// The length before a resize, and the bytes a shrink cut off.
    Resize {
        old_len: usize,
        cut: Vec<u8>,
    },
}

impl MemDisk {
    /// The disk a node finds after crashing now: every synced write, none
    /// of the others. The old disk stays with whatever still holds it.
    pub fn after_crash(&self) -> MemDisk {
        let state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut bytes = state.bytes.clone();
        for undo in state.unsynced.iter().rev() {
            match undo {
                Undo::Write { offset, old } => {
                    bytes[*offset..*offset + old.len()].copy_from_slice(old);
                }
                Undo::Resize { old_len, cut } => {
                    bytes.truncate(old_len - cut.len());
                    bytes.extend_from_slice(cut);
                }
            }
        }
        MemDisk(Arc::new(Mutex::new(DiskState {
            bytes,
            unsynced: Vec::new(),
        })))
    }
}

/// redb's view of a [`MemDisk`].
#[derive(Debug)]
struct MemBackend(Arc<Mutex<DiskState>>);

impl MemBackend {
    fn state(&self) -> std::sync::MutexGuard<'_, DiskState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl redb::StorageBackend for MemBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.state().bytes.len() as u64)
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let state = self.state();
        let start = offset as usize;
        state
            .bytes
            .get(start..start + len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.state();
        let old_len = state.bytes.len();
        let cut = state.bytes.get(len as usize..).unwrap_or_default().to_vec();
        state.unsynced.push(Undo::Resize { old_len, cut });
        state.bytes.resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self, _eventual: bool) -> io::Result<()> {
        self.state().unsynced.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        let start = offset as usize;
        let Some(old) = state
            .bytes
            .get(start..start + data.len())
            .map(<[u8]>::to_vec)
        else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "write past the end",
            ));
        };
        state.unsynced.push(Undo::Write { offset: start, old });
        state.bytes[start..start + data.len()].copy_from_slice(data);
        Ok(())
    }
}

/// Offline disaster recovery (`tandem quorum force-single-node`): appends
/// a membership entry that makes `me` the only voter, under a new term for
/// which `me` holds a committed vote, so on its next start the node leads
/// alone and commits that entry by itself. Returns the new term.
///
/// Dangerous by nature: if the other voters still run, there are now two
/// groups that can each commit. Refuses when another process holds the
/// file (a running daemon) or when there is no data file.
pub fn force_single_node(data_dir: &Path, me: NodeId, member: Member) -> Result<u64, StoreError> {
    use openraft::vote::RaftLeaderIdExt;
    use std::collections::{BTreeMap, BTreeSet};
    let path = data_dir.join("raft.redb");
    if !path.is_file() {
        return Err(StoreError::Recovery {
            path,
            detail: "no data file here, so nothing to recover".into(),
        });
    }
    let (log, _sm) = open(data_dir)?;
    let fail = |e: io::Error| StoreError::Recovery {
        path: path.clone(),
        detail: e.to_string(),
    };
    let vote: Option<VoteOf<TypeConfig>> = get_meta(&log.db, "vote").map_err(fail)?;
    let purged: Option<LogIdOf<TypeConfig>> =
        get_meta::<Option<LogIdOf<TypeConfig>>>(&log.db, "purged")
            .map_err(fail)?
            .flatten();
    let last = log.last_entry_log_id().map_err(fail)?.or(purged);
    let term = vote
        .map_or(0, |v| v.leader_id().term)
        .max(last.map_or(0, |l| l.leader_id.term))
        + 1;
    let index = last.map_or(0, |l| l.index() + 1);
    let membership =
        openraft::Membership::new(vec![BTreeSet::from([me])], BTreeMap::from([(me, member)]))
            .map_err(|e| fail(io::Error::other(e.to_string())))?;
    let log_id = LogIdOf::<TypeConfig>::new(
        openraft::alias::LeaderIdOf::<TypeConfig>::new_committed(term, me),
        index,
    );
    let entry = EntryOf::<TypeConfig>::new_membership(log_id, membership);
    let vote = VoteOf::<TypeConfig>::new_committed(term, me);
    let write = || -> io::Result<()> {
        let txn = log.db.begin_write().map_err(io::Error::other)?;
        {
            let mut table = txn.open_table(LOG).map_err(io::Error::other)?;
            table
                .insert(index, encode(&entry)?.as_slice())
                .map_err(io::Error::other)?;
            let mut meta = txn.open_table(META).map_err(io::Error::other)?;
            meta.insert("vote", encode(&vote)?.as_slice())
                .map_err(io::Error::other)?;
        }
        txn.commit().map_err(io::Error::other)
    };
    write().map_err(fail)?;
    Ok(term)
}

/// The format marker, if the file has one.
fn marker(db: &Database) -> io::Result<Option<Vec<u8>>> {
    let txn = db.begin_read().map_err(io::Error::other)?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(io::Error::other(e)),
    };
    let value = meta.get("format").map_err(io::Error::other)?;
    Ok(value.map(|v| v.value().to_vec()))
}

/// Reads every record once so a damaged file is found at start, not later.
fn verify(db: &Database) -> io::Result<Applied> {
    init_tables(db)?;
    let txn = db.begin_read().map_err(io::Error::other)?;
    let meta = txn.open_table(META).map_err(io::Error::other)?;
    match meta.get("format").map_err(io::Error::other)? {
        Some(v) if v.value() == FORMAT.as_bytes() => {}
        Some(_) => return Err(io::Error::other("unknown format marker")),
        None => return Err(io::Error::other("format marker missing")),
    }
    for key in ["vote", "committed", "purged", "snapshot"] {
        if let Some(v) = meta.get(key).map_err(io::Error::other)? {
            check_meta(key, v.value())?;
        }
    }
    let log = txn.open_table(LOG).map_err(io::Error::other)?;
    let mut prev: Option<u64> = None;
    for row in log.iter().map_err(io::Error::other)? {
        let (k, v) = row.map_err(io::Error::other)?;
        let entry: EntryOf<TypeConfig> = decode(v.value())?;
        if entry.index() != k.value() || prev.is_some_and(|p| p + 1 != k.value()) {
            return Err(io::Error::other(format!(
                "log gap or mismatch at index {}",
                k.value()
            )));
        }
        prev = Some(k.value());
    }
    match meta.get("applied").map_err(io::Error::other)? {
        Some(v) => decode(v.value()),
        None => Ok(Applied::default()),
    }
}

fn check_meta(key: &str, bytes: &[u8]) -> io::Result<()> {
    match key {
        "vote" => decode::<VoteOf<TypeConfig>>(bytes).map(drop),
        "snapshot" => decode::<StoredSnapshot>(bytes).map(drop),
        _ => decode::<Option<LogIdOf<TypeConfig>>>(bytes).map(drop),
    }
}

fn init_tables(db: &Database) -> io::Result<()> {
    let txn = db.begin_write().map_err(io::Error::other)?;
    {
        let mut meta = txn.open_table(META).map_err(io::Error::other)?;
        let fresh = meta.len().map_err(io::Error::other)? == 0;
        txn.open_table(LOG).map_err(io::Error::other)?;
        if fresh {
            meta.insert("format", FORMAT.as_bytes())
                .map_err(io::Error::other)?;
        }
    }
    txn.commit().map_err(io::Error::other)
}

fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(io::Error::other)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn get_meta<T: DeserializeOwned>(db: &Database, key: &str) -> io::Result<Option<T>> {
    let txn = db.begin_read().map_err(io::Error::other)?;
    let meta = txn.open_table(META).map_err(io::Error::other)?;
    let value = meta.get(key).map_err(io::Error::other)?;
    value.map(|v| decode(v.value())).transpose()
}

/// Writes meta records in one fsynced transaction.
fn put_meta(db: &Database, records: &[(&str, Vec<u8>)]) -> io::Result<()> {
    let txn = db.begin_write().map_err(io::Error::other)?;
    {
        let mut meta = txn.open_table(META).map_err(io::Error::other)?;
        for (key, bytes) in records {
            meta.insert(*key, bytes.as_slice())
                .map_err(io::Error::other)?;
        }
    }
    txn.commit().map_err(io::Error::other)
}

/// The Raft log and vote. Cloning shares the file.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    fn remove_range(&self, range: impl RangeBounds<u64>) -> io::Result<()> {
        let txn = self.db.begin_write().map_err(io::Error::other)?;
        {
            let mut log = txn.open_table(LOG).map_err(io::Error::other)?;
            let keys: Vec<u64> = log
                .range(range)
                .map_err(io::Error::other)?
                .map(|r| r.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()
                .map_err(io::Error::other)?;
            for k in keys {
                log.remove(k).map_err(io::Error::other)?;
            }
        }
        txn.commit().map_err(io::Error::other)
    }

    fn last_entry_log_id(&self) -> io::Result<Option<LogIdOf<TypeConfig>>> {
        let txn = self.db.begin_read().map_err(io::Error::other)?;
        let log = txn.open_table(LOG).map_err(io::Error::other)?;
        let last = log.last().map_err(io::Error::other)?;
        last.map(|(_, v)| decode::<EntryOf<TypeConfig>>(v.value()).map(|e| e.log_id()))
            .transpose()
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<TypeConfig>>, io::Error> {
        let txn = self.db.begin_read().map_err(io::Error::other)?;
        let log = txn.open_table(LOG).map_err(io::Error::other)?;
        let mut out = Vec::new();
        for row in log.range(range).map_err(io::Error::other)? {
            let (_, v) = row.map_err(io::Error::other)?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<TypeConfig>>, io::Error> {
        get_meta(&self.db, "vote")
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let purged: Option<LogIdOf<TypeConfig>> = get_meta(&self.db, "purged")?.flatten();
        let last = self.last_entry_log_id()?.or(purged);
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<TypeConfig>) -> Result<(), io::Error> {
        put_meta(&self.db, &[("vote", encode(vote)?)])
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        put_meta(&self.db, &[("committed", encode(&committed)?)])
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<TypeConfig>>, io::Error> {
        Ok(get_meta(&self.db, "committed")?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let result = (|| {
            let txn = self.db.begin_write().map_err(io::Error::other)?;
            {
                let mut log = txn.open_table(LOG).map_err(io::Error::other)?;
                for entry in entries {
                    log.insert(entry.index(), encode(&entry)?.as_slice())
                        .map_err(io::Error::other)?;
                }
            }
            txn.commit().map_err(io::Error::other)
        })();
        let reported = result
            .as_ref()
            .map(|_| ())
            .map_err(|e| io::Error::other(e.to_string()));
        callback.io_completed(reported);
        result
    }

    async fn truncate_after(
        &mut self,
        last_log_id: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |id| id.index() + 1);
        self.remove_range(from..)
    }

    async fn purge(&mut self, log_id: LogIdOf<TypeConfig>) -> Result<(), io::Error> {
        put_meta(&self.db, &[("purged", encode(&Some(log_id))?)])?;
        self.remove_range(..=log_id.index())
    }
}

/// The state machine. `reader()` hands out a read view for the API.
pub struct StateMachine {
    db: Arc<Database>,
    applied: Arc<RwLock<Applied>>,
}

/// A read-only view of the applied replicated state.
#[derive(Clone)]
pub struct StateReader {
    applied: Arc<RwLock<Applied>>,
}

impl StateReader {
    /// A copy of the replicated configuration and status as applied here.
    pub fn replicated(&self) -> Replicated {
        self.applied().1
    }

    /// Reads the state in place, with the index of the last applied entry:
    /// no copy, for a look many times a second.
    pub fn read<T>(&self, f: impl FnOnce(Option<u64>, &Replicated) -> T) -> T {
        let a = self.applied.read().unwrap_or_else(|p| p.into_inner());
        f(a.last_applied.map(|l| l.index), &a.data)
    }

    /// The last applied log id and the state it produced, read together.
    pub fn applied(&self) -> (Option<LogIdOf<TypeConfig>>, Replicated) {
        let a = self.applied.read().unwrap_or_else(|p| p.into_inner());
        (a.last_applied, a.data.clone())
    }
}

impl StateMachine {
    pub fn reader(&self) -> StateReader {
        StateReader {
            applied: self.applied.clone(),
        }
    }

    fn persist(&self, applied: &Applied) -> io::Result<()> {
        put_meta(&self.db, &[("applied", encode(applied)?)])
    }

    fn snapshot_of(applied: &Applied) -> io::Result<SnapshotOf<TypeConfig, Vec<u8>>> {
        let meta = SnapshotMetaOf::<TypeConfig> {
            last_log_id: applied.last_applied,
            last_membership: applied.membership.clone(),
        };
        Ok(SnapshotOf::<TypeConfig, Vec<u8>> {
            meta,
            snapshot: encode(applied)?,
        })
    }
}

/// Builds snapshots from a copy of the applied state.
pub struct SnapshotBuilder {
    db: Arc<Database>,
    applied: Applied,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, Vec<u8>>, io::Error> {
        let snap = StateMachine::snapshot_of(&self.applied)?;
        let stored = StoredSnapshot {
            meta: snap.meta.clone(),
            data: snap.snapshot.clone(),
        };
        put_meta(&self.db, &[("snapshot", encode(&stored)?)])?;
        Ok(snap)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>), io::Error> {
        let a = self.applied.read().unwrap_or_else(|p| p.into_inner());
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures_util::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>>
            + Unpin
            + OptionalSend,
    {
        let mut next = self
            .applied
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut responders = Vec::new();
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            next.last_applied = Some(entry.log_id());
            let result = match entry.payload {
                openraft::EntryPayload::Blank => CommandResult::Applied {
                    config_version: next.data.config_version,
                },
                openraft::EntryPayload::Normal(ref cmd) => next.data.apply(cmd),
                openraft::EntryPayload::Membership(ref m) => {
                    next.membership =
                        StoredMembershipOf::<TypeConfig>::new(Some(entry.log_id()), m.clone());
                    CommandResult::Applied {
                        config_version: next.data.config_version,
                    }
                }
            };
            if let Some(r) = responder {
                responders.push((r, result));
            }
        }
        self.persist(&next)?;
        *self.applied.write().unwrap_or_else(|p| p.into_inner()) = next;
        for (r, result) in responders {
            r.send(result);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            applied: self
                .applied
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: Vec<u8>,
    ) -> Result<(), io::Error> {
        let applied: Applied = decode(&snapshot)?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot,
        };
        put_meta(
            &self.db,
            &[
                ("snapshot", encode(&stored)?),
                ("applied", encode(&applied)?),
            ],
        )?;
        *self.applied.write().unwrap_or_else(|p| p.into_inner()) = applied;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, Vec<u8>>>, io::Error> {
        let stored: Option<StoredSnapshot> = get_meta(&self.db, "snapshot")?;
        Ok(stored.map(|s| SnapshotOf::<TypeConfig, Vec<u8>> {
            meta: s.meta,
            snapshot: s.data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_of_the_earlier_format_is_refused_untouched_with_what_to_do() {
        let dir = std::env::temp_dir().join(format!("tandem-store-v1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        drop(open(&dir).expect("a fresh store"));
        let path = dir.join("raft.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("format", EARLIER_FORMATS[0].0.as_bytes())
                .unwrap();
            txn.commit().unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = open(&dir).err().expect("refused").to_string();
        assert!(
            err.contains("format tandem-cluster-store-v1") && err.contains("tandem config export"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "left untouched");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_empty_store_file_is_damaged_not_a_new_store() {
        let dir = std::env::temp_dir().join(format!("tandem-store-empty-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("raft.redb");
        std::fs::write(&path, b"").unwrap();
        let err = open(&dir).err().expect("refused").to_string();
        assert!(
            err.contains("is empty") && err.contains("raft.redb"),
            "{err}"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "kept as it was");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
