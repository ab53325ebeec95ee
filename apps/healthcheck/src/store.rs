//! An agent's store: `node.redb` in its data dir, a [`sync::storage::RedbStorage`]
//! holding both replicas (the registry and the health records) and the
//! node's identity; and the one-time migration of the first release's store.
//!
//! The first release kept only the registry, in `healthcheck.redb` (tables
//! `registry_entries`: origin id → siblings, `registry_state`: context and
//! purge frontier, `meta`: a start generation). At the first start of this
//! version that file is read, its registry written into `node.redb` as the
//! `origins` replica in one commit (rows as they were: the encoding of a
//! key's siblings did not change), and the old file renamed
//! `healthcheck.redb.migrated`. The migrated store has no identity: the
//! agent takes a fresh actor (the first release's actor, derived from a
//! generation, may have exposed dots it never persisted).

use std::path::{Path, PathBuf};

use crdt::{CausalContext, VersionVector, ormap::Head};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use sync::storage::{Commit, RedbStorage, ReplicaCommit, Storage, StorageError};
use thiserror::Error;

use crate::registry::ORIGINS;

const OLD_STATE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("registry_state");
const OLD_ENTRIES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("registry_entries");

/// A row as stored: encoded key, encoded siblings.
type EncodedRow = (Vec<u8>, Vec<u8>);

/// The store's file in a data dir.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("node.redb")
}

/// The first release's store in a data dir.
pub fn legacy_path(data_dir: &Path) -> PathBuf {
    data_dir.join("healthcheck.redb")
}

/// Why the agent's store could not be opened or migrated; nothing changed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store (`node.redb`) failed: see the source, which names the file
    /// and what to do.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The first release's store could not be read.
    #[error(
        "cannot migrate {path}: {message}; move it away to start without the registry it holds"
    )]
    Legacy {
        /// The old file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The migrated old file could not be renamed.
    #[error("cannot rename {path} after migrating it")]
    Rename {
        /// The old file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Opens the agent's store in `data_dir` (creating it if needed), first
/// migrating the first release's store if there is one. Returns the store
/// and how many origins were migrated (0 without an old store).
///
/// # Errors
/// [`StoreError`]: a corrupt, locked or unreadable store names its file and
/// what to do; nothing is changed.
pub fn open(data_dir: &Path) -> Result<(RedbStorage, usize), StoreError> {
    let storage = RedbStorage::open(path(data_dir))?;
    let legacy = legacy_path(data_dir);
    if !legacy.exists() {
        return Ok((storage, 0));
    }
    let migrated = migrate(&legacy, &storage)?;
    let done = legacy.with_extension("redb.migrated");
    std::fs::rename(&legacy, &done).map_err(|source| StoreError::Rename {
        path: legacy.clone(),
        source,
    })?;
    tracing::info!(from = %legacy.display(), to = %storage.location(), origins = migrated, "migrated the registry of the first release's store");
    Ok((storage, migrated))
}

/// Writes the old store's registry into `storage` as the `origins`
/// replica, unless `storage` already has one (a migration interrupted after
/// its commit).
fn migrate(legacy: &Path, storage: &RedbStorage) -> Result<usize, StoreError> {
    let bad = |message: String| StoreError::Legacy {
        path: legacy.to_owned(),
        message,
    };
    if storage.load()?.replicas.contains_key(ORIGINS) {
        return Ok(0);
    }
    let db = guarded(|| Database::open(legacy))
        .map_err(&bad)?
        .map_err(|e| bad(e.to_string()))?;
    let read = guarded(|| -> Result<(Head, Vec<EncodedRow>), String> {
        let tx = db.begin_read().map_err(|e| e.to_string())?;
        let state = match tx.open_table(OLD_STATE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Ok((
                    Head {
                        context: CausalContext::new(),
                        frontier: VersionVector::new(),
                    },
                    Vec::new(),
                ));
            }
            Err(e) => return Err(e.to_string()),
        };
        let context: CausalContext = match state.get("context").map_err(|e| e.to_string())? {
            Some(v) => rmp_serde::from_slice(v.value()).map_err(|e| format!("context: {e}"))?,
            None => CausalContext::new(),
        };
        let frontier: VersionVector = match state.get("frontier").map_err(|e| e.to_string())? {
            Some(v) => rmp_serde::from_slice(v.value()).map_err(|e| format!("frontier: {e}"))?,
            None => VersionVector::new(),
        };
        let mut rows = Vec::new();
        match tx.open_table(OLD_ENTRIES) {
            Ok(table) => {
                for row in table.iter().map_err(|e| e.to_string())? {
                    let (key, value) = row.map_err(|e| e.to_string())?;
                    let key = rmp_serde::to_vec(key.value()).map_err(|e| e.to_string())?;
                    rows.push((key, value.value().to_vec()));
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
        Ok((Head { context, frontier }, rows))
    })
    .map_err(&bad)?
    .map_err(&bad)?;
    let (head, rows) = read;
    let count = rows.len();
    let commit = Commit {
        identity: None,
        replicas: vec![ReplicaCommit {
            name: ORIGINS.to_owned(),
            head: rmp_serde::to_vec(&head).map_err(|e| bad(e.to_string()))?,
            rows: rows.into_iter().map(|(k, v)| (k, Some(v))).collect(),
        }],
    };
    storage.commit(&commit)?;
    Ok(count)
}

/// Runs `f`, turning a panic of redb (which panics on some corrupt files)
/// into an error with its message, printed nowhere.
fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    sync::storage::catch_panics(f)
}

#[cfg(test)]
mod tests {
    use crdt::{ActorId, DeltaCrdt, ORMap, Sibling};
    use redb::TableDefinition;

    use super::*;
    use crate::{
        registry::{Registered, Registry},
        spec::OriginSpec,
    };

    /// Writes a registry the way the first release did.
    fn write_legacy(dir: &Path, registry: &Registry) {
        std::fs::create_dir_all(dir).expect("dir");
        let db = Database::create(legacy_path(dir)).expect("create");
        let tx = db.begin_write().expect("tx");
        {
            let meta: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
            tx.open_table(meta)
                .expect("meta")
                .insert("generation", 3)
                .expect("insert");
            let mut entries = tx.open_table(OLD_ENTRIES).expect("entries");
            for (k, s) in registry.entries() {
                let bytes = rmp_serde::to_vec(&s.to_vec()).expect("encode");
                entries
                    .insert(k.as_str(), bytes.as_slice())
                    .expect("insert");
            }
            let mut state = tx.open_table(OLD_STATE).expect("state");
            let ctx = rmp_serde::to_vec(registry.context()).expect("encode");
            let frontier = rmp_serde::to_vec(registry.purge_frontier()).expect("encode");
            state.insert("context", ctx.as_slice()).expect("insert");
            state
                .insert("frontier", frontier.as_slice())
                .expect("insert");
        }
        tx.commit().expect("commit");
    }

    #[test]
    fn the_first_releases_registry_is_migrated_once_and_the_old_file_renamed() {
        let dir = testkit::TempDir::new("store-migrate");
        let mut old = Registry::new(ActorId(42));
        for i in 0..50 {
            old.insert(
                format!("o{i}"),
                Registered {
                    spec: OriginSpec::new(format!("h:{}", 1000 + i)),
                    updated_at_ms: i,
                },
            );
        }
        old.remove(&"o7".to_string());
        write_legacy(&dir, &old);
        let (storage, migrated) = open(&dir).expect("migrates");
        assert_eq!(migrated, 50, "49 live origins and a tombstone");
        assert!(!legacy_path(&dir).exists());
        assert!(dir.join("healthcheck.redb.migrated").exists());
        let stored = storage.load().expect("loads");
        assert!(stored.identity.is_none(), "a fresh actor will be taken");
        let replica = &stored.replicas[ORIGINS];
        let head: Head = rmp_serde::from_slice(&replica.head).expect("head");
        let mut rows: Vec<(String, Vec<Sibling<Registered>>)> = replica
            .rows
            .iter()
            .map(|(k, v)| {
                (
                    rmp_serde::from_slice(k).expect("key"),
                    rmp_serde::from_slice(v).expect("row"),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut restored: Registry = ORMap::new(ActorId(7));
        crdt::Rows::restore(&mut restored, head, rows).expect("valid");
        assert_eq!(restored, old);
        assert_eq!(restored.len(), 49);
        drop(storage);
        // a second start does nothing more
        let (_, again) = open(&dir).expect("opens");
        assert_eq!(again, 0);
        let _ = restored.digest();
    }

    #[test]
    fn a_corrupt_old_store_is_an_error_naming_it() {
        let dir = testkit::TempDir::new("store-corrupt-legacy");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(legacy_path(&dir), vec![0x5a; 10_000]).expect("write");
        let Err(e) = open(&dir) else {
            panic!("a corrupt old store was accepted");
        };
        let text = e.to_string();
        assert!(text.contains("healthcheck.redb"), "{text}");
        assert!(legacy_path(&dir).exists(), "left in place");
    }
}
