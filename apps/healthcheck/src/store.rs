//! [`Store`]: what an agent persists in its data dir (redb, an embedded ACID
//! store): the origin registry and the start generation.
//!
//! **Why a generation and not a counter lease.** A replica must never reuse
//! a dot. Leasing counters in blocks would, after a crash, skip the unused
//! rest of the block: those dots never exist, so every replica's causal
//! context keeps a gap for them and its compact prefix can never grow past
//! it again (every later dot of this actor would sit in the cloud forever).
//! Marking the skipped dots as seen avoids the gap but loses a write that was
//! replicated and not yet persisted before the crash (this agent would claim
//! to have seen it). So each start instead takes a fresh actor id derived
//! from the node name and a generation counter that is persisted (and
//! fsynced) before it is used: no dot is reused, no gap is created, and a
//! write replicated just before a crash is pulled back like any other.

use std::path::{Path, PathBuf};

use crdt::{ActorId, Delta};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use thiserror::Error;

use crate::registry::Registered;

const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const STATE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("state");
const GENERATION: &str = "generation";
const REGISTRY: &str = "registry";

/// A failure of the store; the store's content is unchanged.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be opened, read or written.
    #[error("store {path}: {message}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// What redb said.
        message: String,
    },
    /// The persisted registry could not be decoded (corruption, or a newer
    /// format).
    #[error("store {path}: registry cannot be decoded: {message}")]
    Decode {
        /// The database file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// The persisted state of an agent.
pub struct Store {
    db: Database,
    path: PathBuf,
}

/// The full state of the registry, as persisted.
pub type RegistryState = Delta<String, Registered>;

impl Store {
    /// Opens (or creates) `healthcheck.redb` in `data_dir`, creating the
    /// directory if needed.
    ///
    /// # Errors
    /// [`StoreError::Database`] if it cannot be created or opened (e.g.
    /// another agent holds it).
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join("healthcheck.redb");
        let err = |e: &dyn std::fmt::Display| StoreError::Database {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(data_dir).map_err(|e| err(&e))?;
        let db = Database::create(&path).map_err(|e| err(&e))?;
        Ok(Store { db, path })
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Database {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Increments the start generation, durably, and returns it (1 on the
    /// first start).
    ///
    /// # Errors
    /// [`StoreError::Database`]; nothing changed.
    pub fn next_generation(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        let next = {
            let mut table = tx.open_table(META).map_err(|e| self.err(e))?;
            let current = table
                .get(GENERATION)
                .map_err(|e| self.err(e))?
                .map_or(0, |v| v.value());
            table
                .insert(GENERATION, current + 1)
                .map_err(|e| self.err(e))?;
            current + 1
        };
        tx.commit().map_err(|e| self.err(e))?;
        Ok(next)
    }

    /// The persisted registry, if any.
    ///
    /// # Errors
    /// [`StoreError::Database`] or [`StoreError::Decode`].
    pub fn load_registry(&self) -> Result<Option<RegistryState>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = match tx.open_table(STATE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let Some(bytes) = table.get(REGISTRY).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        rmp_serde::from_slice(bytes.value())
            .map(Some)
            .map_err(|e| StoreError::Decode {
                path: self.path.clone(),
                message: e.to_string(),
            })
    }

    /// Replaces the persisted registry with `state`, durably (the write is
    /// committed and fsynced before this returns).
    ///
    /// # Errors
    /// [`StoreError::Database`]; the previous registry stays persisted.
    pub fn save_registry(&self, state: &RegistryState) -> Result<(), StoreError> {
        let bytes = rmp_serde::to_vec(state).map_err(|e| self.err(e))?;
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = tx.open_table(STATE).map_err(|e| self.err(e))?;
            table
                .insert(REGISTRY, bytes.as_slice())
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }
}

/// The actor id of `node` in start `generation`: unique per (node, start).
pub fn actor_id(node: &str, generation: u64) -> ActorId {
    let mut bytes = Vec::with_capacity(node.len() + 16);
    bytes.extend_from_slice(b"vantage-actor-v1");
    bytes.extend_from_slice(&(node.len() as u32).to_le_bytes());
    bytes.extend_from_slice(node.as_bytes());
    bytes.extend_from_slice(&generation.to_le_bytes());
    ActorId(xxhash_rust::xxh3::xxh3_64(&bytes))
}

#[cfg(test)]
mod tests {
    use crdt::DeltaCrdt;

    use super::*;
    use crate::{
        registry::{Registered, Registry},
        spec::OriginSpec,
    };

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vantage-store-{name}-{}-{}",
            std::process::id(),
            crate::registry::now_ms()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn generations_increase_across_reopens() {
        let dir = temp_dir("gen");
        let store = Store::open(&dir).expect("open");
        assert_eq!(store.next_generation().expect("write"), 1);
        assert_eq!(store.next_generation().expect("write"), 2);
        drop(store);
        let store = Store::open(&dir).expect("reopen");
        assert_eq!(store.next_generation().expect("write"), 3);
        assert_ne!(actor_id("a", 1), actor_id("a", 2));
        assert_ne!(actor_id("a", 1), actor_id("b", 1));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_registry_survives_a_reopen_and_a_fresh_actor_keeps_it() {
        let dir = temp_dir("registry");
        let store = Store::open(&dir).expect("open");
        assert!(store.load_registry().expect("read").is_none());
        let mut registry = Registry::new(actor_id("a", 1));
        registry.insert(
            "o1".into(),
            Registered {
                spec: OriginSpec::new("h:1"),
                updated_at_ms: 1,
            },
        );
        registry.insert(
            "o2".into(),
            Registered {
                spec: OriginSpec::new("h:2"),
                updated_at_ms: 2,
            },
        );
        registry.remove(&"o2".to_string());
        store.save_registry(&registry.state()).expect("write");
        drop(store);

        let store = Store::open(&dir).expect("reopen");
        let state = store.load_registry().expect("read").expect("saved");
        let mut restored = Registry::new(actor_id("a", 2));
        restored.join_delta(state);
        assert_eq!(restored.keys().collect::<Vec<_>>(), vec!["o1"]);
        assert_eq!(restored.context(), registry.context());
        // the new actor writes without reusing the old one's dots
        let delta = restored.insert(
            "o3".into(),
            Registered {
                spec: OriginSpec::new("h:3"),
                updated_at_ms: 3,
            },
        );
        let dot = delta.iter().next().map(|(_, s)| s[0].dot).expect("one");
        assert_eq!(dot.actor(), actor_id("a", 2));
        assert_eq!(dot.counter(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_registry_is_an_error_not_a_panic() {
        let dir = temp_dir("corrupt");
        let store = Store::open(&dir).expect("open");
        let tx = store.db.begin_write().expect("tx");
        {
            let mut t = tx.open_table(STATE).expect("table");
            t.insert(REGISTRY, &b"\xc1garbage"[..]).expect("insert");
        }
        tx.commit().expect("commit");
        assert!(matches!(
            store.load_registry(),
            Err(StoreError::Decode { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
