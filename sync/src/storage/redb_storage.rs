//! [`RedbStorage`]: a [`Storage`] in a redb file (layout in the
//! [module docs](super)).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use redb::{Builder, Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};

use super::guard;
use super::{Commit, Corruption, Identity, Storage, StorageError, Stored, StoredReplica};

/// The format version this build reads and writes (the `format` row of the
/// `meta` table).
pub const FORMAT_VERSION: u32 = 1;

const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta");
const HEADS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("heads");
const FORMAT: &str = "format";
const IDENTITY: &str = "identity";
const ROWS_PREFIX: &str = "rows/";
/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// A [`Storage`] in a redb file: an embedded ACID store whose commits are
/// checksummed and fsynced.
///
/// * Every commit is one write transaction, fsynced before `commit`
///   returns; every load is one read transaction (a consistent snapshot).
/// * [`open`](Self::open) runs redb's integrity check
///   ([`Database::check_integrity`]: the checksum of every committed page is
///   verified and the allocator state rebuilt), so a file damaged outside
///   redb is refused as [`StorageError::Corrupt`] instead of being trusted.
///   The check reads the whole file. If redb repairs the file (for damage
///   to its last commit it rolls back to the commit before), the open
///   succeeds, logs a `tracing` warning and [`repaired`](Self::repaired)
///   says so.
/// * redb may panic on a corrupt file instead of returning an error. Every
///   redb call of `open`, `load` and `commit` runs inside a guard that
///   catches the panic and returns [`StorageError::Corrupt`] with the
///   panic's message. **On the first open a process-wide panic hook is
///   installed**: it chains to the hook installed before it, except for a
///   panic inside a guard, which it does not print (the error carries its
///   message). Panics outside a guard still reach the previous hook. This
///   needs `panic = "unwind"` (the default).
/// * After a [`StorageError::Corrupt`] from `load` or `commit` (a caught
///   panic, or corruption redb reported), the store is not touched again:
///   every later call returns the same error at once. After any other
///   failed `commit` (e.g. a full disk: redb refuses all I/O after one
///   failed), the next call reopens the file first (redb recovers as after
///   a crash, then the integrity check runs), so the node can retry.
/// * One process at a time: redb locks the file, and a second open (in
///   this process or another) fails with [`StorageError::Locked`].
///
/// As with any file store, if the final fsync of a commit fails the kernel
/// may still have written it: after a crash that follows such an `Err`, the
/// commit may be found whole on the next load (never a part of it).
#[derive(Debug)]
pub struct RedbStorage {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The open database; `None` after a failed commit (reopened by the
    /// next call).
    db: Option<Database>,
    /// Set by a [`StorageError::Corrupt`]: every later call returns it.
    broken: Option<Corruption>,
    /// Whether an open repaired the file.
    repaired: bool,
}

impl RedbStorage {
    /// Opens the store at `path`, creating it (and its parent directory) if
    /// the file does not exist, and checks its integrity.
    ///
    /// # Errors
    /// Never panics. On error an existing file is left as it was (and a
    /// file this call was creating may be left behind, with its directory).
    /// * [`StorageError::Empty`]: the file exists but is empty.
    /// * [`StorageError::NotADatabase`]: it is not a redb database.
    /// * [`StorageError::Foreign`]: it is a redb database of something else.
    /// * [`StorageError::Corrupt`]: it is corrupt (redb's check failed, or
    ///   redb panicked on it).
    /// * [`StorageError::NewerFormat`]: it is of a newer format than
    ///   [`FORMAT_VERSION`].
    /// * [`StorageError::Locked`]: another handle has it open.
    /// * [`StorageError::Io`], [`StorageError::Database`].
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStorage, StorageError> {
        let path = path.as_ref().to_path_buf();
        let (db, repaired) = open_database(&path)?;
        Ok(RedbStorage {
            path,
            state: Mutex::new(State {
                db: Some(db),
                broken: None,
                repaired,
            }),
        })
    }

    /// Whether redb repaired the file when this handle opened (or
    /// reopened) it: it had been damaged outside redb, and the last commits
    /// may have been rolled back (a `tracing` warning said so). A node that
    /// finds its store repaired SHOULD treat it like a store restored from
    /// an older copy (its own last dots may be missing from it).
    pub fn repaired(&self) -> bool {
        self.state().repaired
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every redb call runs inside a guard, so nothing panics while the
        // lock is held; the state is consistent even if it was poisoned.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn corrupt(&self, detail: Corruption) -> StorageError {
        StorageError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }

    /// Runs `f` on the open database (reopening it if a failed commit
    /// closed it), unless the store is broken. A `Corrupt` error (from `f`
    /// or the reopen) breaks the store; another error from `f` closes the
    /// database if `close_on_error`, so that the next call reopens it.
    fn with_db<T>(
        &self,
        close_on_error: bool,
        f: impl FnOnce(&Database, &Path) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut state = self.state();
        if let Some(detail) = &state.broken {
            return Err(self.corrupt(detail.clone()));
        }
        let db = match state.db.take() {
            Some(db) => Ok(db),
            None => open_database(&self.path).map(|(db, repaired)| {
                state.repaired |= repaired;
                db
            }),
        };
        let (db, result) = match db {
            Ok(db) => {
                let result = guarded(&self.path, || f(&db, &self.path));
                (Some(db), result)
            }
            Err(error) => (None, Err(error)),
        };
        match &result {
            Err(StorageError::Corrupt { detail, .. }) => state.broken = Some(detail.clone()),
            Err(_) if close_on_error => {
                if let Some(db) = db {
                    close(db, &self.path);
                }
                return result;
            }
            _ => {}
        }
        state.db = db;
        result
    }
}

impl Storage for RedbStorage {
    fn repaired(&self) -> bool {
        RedbStorage::repaired(self)
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> Result<Stored, StorageError> {
        self.with_db(false, read_all)
    }

    fn commit(&self, commit: &Commit) -> Result<(), StorageError> {
        // redb refuses all I/O after one failed (e.g. a full disk): the
        // next call reopens the file, which recovers as after a crash.
        self.with_db(true, |db, path| write(db, path, commit))
    }
}

impl Drop for RedbStorage {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(db) = state.db.take() {
            // Also after a caught panic: redb discards the allocator state a
            // panic interrupted, so the close does not persist it.
            close(db, &self.path);
        }
    }
}

/// Closes `db` inside a guard; a failure is only logged (nothing is lost:
/// every commit was already durable).
fn close(db: Database, path: &Path) {
    match guard::catch(|| db.close()) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(path = %path.display(), %error, "closing store failed"),
        Err(panic) => tracing::warn!(path = %path.display(), %panic, "closing store failed"),
    }
}

/// Runs `f` inside the panic guard; a panic becomes [`StorageError::Corrupt`].
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, StorageError>) -> Result<T, StorageError> {
    guard::catch(f).unwrap_or_else(|panic| {
        Err(StorageError::Corrupt {
            path: path.to_owned(),
            detail: Corruption::new(panic),
        })
    })
}

/// Classifies a redb error.
fn redb_error(path: &Path, error: impl Into<redb::Error>) -> StorageError {
    let path = path.to_owned();
    match error.into() {
        redb::Error::Corrupted(detail) => StorageError::Corrupt {
            path,
            detail: Corruption::new(detail),
        },
        redb::Error::Io(source) => StorageError::Io { path, source },
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => {
            StorageError::Locked { path }
        }
        source => StorageError::Database { path, source },
    }
}

/// Attaches the store's path to a redb result.
trait At<T> {
    /// The error classified by [`redb_error`].
    fn at(self, path: &Path) -> Result<T, StorageError>;
}

impl<T, E: Into<redb::Error>> At<T> for Result<T, E> {
    fn at(self, path: &Path) -> Result<T, StorageError> {
        self.map_err(|error| redb_error(path, error))
    }
}

fn io_error(path: &Path, source: io::Error) -> StorageError {
    StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Opens (or creates) the database, checks it, and checks or writes its
/// format version.
fn open_database(path: &Path) -> Result<(Database, bool), StorageError> {
    let exists = match fs::metadata(path) {
        Ok(_) => {
            check_header(path)?;
            true
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent()
                && !parent.as_os_str().is_empty()
            {
                fs::create_dir_all(parent).map_err(|e| io_error(path, e))?;
            }
            false
        }
        Err(error) => return Err(io_error(path, error)),
    };
    let (db, repaired) = if exists {
        open_checked(path)?
    } else {
        (guarded(path, || Database::create(path).at(path))?, false)
    };
    if let Err(error) = guarded(path, || check_format(&db, path)) {
        close(db, path);
        return Err(error);
    }
    Ok((db, repaired))
}

/// Opens an existing file and checks its integrity, returning whether redb
/// repaired it.
///
/// A plain open trusts a file that was closed cleanly; redb's check then
/// verifies the checksum of every committed page, and says whether it had
/// to repair. A plain open may panic (or fail) on a file damaged outside
/// redb: then the file is opened again with the check run inside the open,
/// which reports the damage as an error rather than panicking, or repairs
/// it.
fn open_checked(path: &Path) -> Result<(Database, bool), StorageError> {
    let (db, repair) = match guarded(path, || Database::open(path).at(path)) {
        Ok(mut db) => match guarded(path, || db.check_integrity().at(path)) {
            Ok(true) => (db, None),
            Ok(false) => (db, Some("its integrity check failed".to_owned())),
            Err(error) => {
                close(db, path);
                return Err(error);
            }
        },
        Err(StorageError::Corrupt { detail, .. }) => {
            let checked = guarded(path, || {
                Builder::new()
                    .set_check_integrity_on_open(true)
                    .open(path)
                    .at(path)
            });
            match checked {
                Ok(db) => (db, Some(detail.to_string())),
                // The first open's panic left the file locked: report it.
                Err(StorageError::Locked { .. }) => {
                    return Err(StorageError::Corrupt {
                        path: path.to_owned(),
                        detail,
                    });
                }
                Err(StorageError::Corrupt { detail: found, .. }) => {
                    return Err(StorageError::Corrupt {
                        path: path.to_owned(),
                        detail: Corruption::new(format!("{found} (a plain open: {detail})")),
                    });
                }
                Err(error) => return Err(error),
            }
        }
        Err(error) => return Err(error),
    };
    if let Some(found) = &repair {
        tracing::warn!(
            path = %path.display(),
            %found,
            "store was damaged outside redb and redb repaired it (damage to the last commit is \
             repaired by rolling back to the commit before): check the disk"
        );
    }
    Ok((db, repair.is_some()))
}

/// Refuses an empty file, or one that does not start like a redb file.
fn check_header(path: &Path) -> Result<(), StorageError> {
    let mut file = File::open(path).map_err(|e| io_error(path, e))?;
    let mut magic = [0; REDB_MAGIC.len()];
    let mut read = 0;
    while read < magic.len() {
        match file.read(&mut magic[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(io_error(path, error)),
        }
    }
    let path = path.to_owned();
    match read {
        0 => Err(StorageError::Empty { path }),
        _ if magic != REDB_MAGIC => Err(StorageError::NotADatabase { path }),
        _ => Ok(()),
    }
}

/// Checks the format version; writes it into a database without tables.
fn check_format(db: &Database, path: &Path) -> Result<(), StorageError> {
    let tx = db.begin_read().at(path)?;
    let mut tables = tx.list_tables().at(path)?.peekable();
    if tables.peek().is_none() {
        drop(tables);
        drop(tx);
        let tx = db.begin_write().at(path)?;
        tx.open_table(META)
            .at(path)?
            .insert(FORMAT, FORMAT_VERSION.to_le_bytes().as_slice())
            .at(path)?;
        return tx.commit().at(path);
    }
    if !tables.any(|table| table.name() == META.name()) {
        return Err(StorageError::Foreign {
            path: path.to_owned(),
        });
    }
    let meta = tx.open_table(META).at(path)?;
    let found = match meta.get(FORMAT).at(path)? {
        Some(format) => {
            let bytes = <[u8; 4]>::try_from(format.value()).map_err(|_| {
                corrupt(
                    path,
                    format!("format version of {} bytes", format.value().len()),
                )
            })?;
            u32::from_le_bytes(bytes)
        }
        None => return Err(corrupt(path, "the meta table has no format version")),
    };
    match found {
        FORMAT_VERSION => Ok(()),
        found if found > FORMAT_VERSION => Err(StorageError::NewerFormat {
            path: path.to_owned(),
            found,
            supported: FORMAT_VERSION,
        }),
        found => Err(corrupt(path, format!("invalid format version {found}"))),
    }
}

fn corrupt(path: &Path, detail: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        path: path.to_owned(),
        detail: Corruption::new(detail),
    }
}

fn rows_table(replica: &str) -> String {
    format!("{ROWS_PREFIX}{replica}")
}

/// Reads everything, in one read transaction.
fn read_all(db: &Database, path: &Path) -> Result<Stored, StorageError> {
    let tx = db.begin_read().at(path)?;
    let tables: BTreeSet<String> = tx
        .list_tables()
        .at(path)?
        .map(|table| table.name().to_owned())
        .collect();
    let mut stored = Stored::default();
    if tables.contains(META.name()) {
        let meta = tx.open_table(META).at(path)?;
        if let Some(identity) = meta.get(IDENTITY).at(path)? {
            stored.identity =
                Some(decode_identity(identity.value()).map_err(|d| corrupt(path, d))?);
        }
    }
    if tables.contains(HEADS.name()) {
        let heads = tx.open_table(HEADS).at(path)?;
        for entry in heads.iter().at(path)? {
            let (name, head) = entry.at(path)?;
            let name = name.value().to_owned();
            let mut replica = StoredReplica {
                head: head.value().to_vec(),
                rows: BTreeMap::new(),
            };
            let table = rows_table(&name);
            if tables.contains(&table) {
                let rows = tx
                    .open_table(TableDefinition::<&[u8], &[u8]>::new(&table))
                    .at(path)?;
                for row in rows.iter().at(path)? {
                    let (key, value) = row.at(path)?;
                    replica
                        .rows
                        .insert(key.value().to_vec(), value.value().to_vec());
                }
            }
            stored.replicas.insert(name, replica);
        }
    }
    if let Some(orphan) = tables.iter().find(|table| {
        table
            .strip_prefix(ROWS_PREFIX)
            .is_some_and(|name| !stored.replicas.contains_key(name))
    }) {
        return Err(corrupt(path, format!("table {orphan} has no head")));
    }
    Ok(stored)
}

/// Applies `commit` in one write transaction (fsynced at commit).
fn write(db: &Database, path: &Path, commit: &Commit) -> Result<(), StorageError> {
    let tx = db.begin_write().at(path)?;
    {
        if let Some(identity) = &commit.identity {
            tx.open_table(META)
                .at(path)?
                .insert(IDENTITY, encode_identity(identity).as_slice())
                .at(path)?;
        }
        let mut heads = tx.open_table(HEADS).at(path)?;
        for change in &commit.replicas {
            heads
                .insert(change.name.as_str(), change.head.as_slice())
                .at(path)?;
            let table = rows_table(&change.name);
            let mut rows = tx
                .open_table(TableDefinition::<&[u8], &[u8]>::new(&table))
                .at(path)?;
            for (key, row) in &change.rows {
                match row {
                    Some(row) => rows.insert(key.as_slice(), row.as_slice()).map(drop),
                    None => rows.remove(key.as_slice()).map(drop),
                }
                .at(path)?;
            }
        }
    }
    tx.commit().at(path)
}

/// The actor id (`u64` little-endian), then the node name (UTF-8).
fn encode_identity(identity: &Identity) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + identity.node.len());
    bytes.extend_from_slice(&identity.actor.0.to_le_bytes());
    bytes.extend_from_slice(identity.node.as_bytes());
    bytes
}

fn decode_identity(bytes: &[u8]) -> Result<Identity, String> {
    let (actor, node) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| format!("identity of {} bytes", bytes.len()))?;
    let node =
        std::str::from_utf8(node).map_err(|error| format!("identity: node name: {error}"))?;
    Ok(Identity {
        node: node.to_owned(),
        actor: crdt::ActorId(u64::from_le_bytes(*actor)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips() {
        let identity = Identity {
            node: "node-é".to_owned(),
            actor: crdt::ActorId(u64::MAX - 3),
        };
        assert_eq!(decode_identity(&encode_identity(&identity)), Ok(identity));
        let empty = Identity {
            node: String::new(),
            actor: crdt::ActorId(0),
        };
        assert_eq!(decode_identity(&encode_identity(&empty)), Ok(empty));
    }

    #[test]
    fn malformed_identity_is_refused() {
        assert!(decode_identity(&[1, 2, 3]).is_err());
        let mut bytes = 7u64.to_le_bytes().to_vec();
        bytes.push(0xFF);
        assert!(decode_identity(&bytes).is_err());
    }

    #[test]
    fn storage_error_is_send_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<StorageError>();
        assert_send_sync::<RedbStorage>();
    }
}
