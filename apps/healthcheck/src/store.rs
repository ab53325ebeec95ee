//! [`Store`]: what an agent persists in its data dir (redb, an embedded ACID
//! store): the origin registry and the start generation.
//!
//! The registry is stored key by key (one row per origin: its siblings) plus
//! its causal context and purge frontier, so a change costs a write of the
//! keys it touched, not of the whole registry. Rows and context are always
//! written together, from one consistent cut of the map: a dot is never in
//! the persisted context without its sibling in the persisted rows.
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

use crdt::{ActorId, CausalContext, Delta, Sibling, VersionVector};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use thiserror::Error;

use crate::registry::Registered;

const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const STATE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("registry_state");
const ENTRIES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("registry_entries");
const GENERATION: &str = "generation";
const CONTEXT: &str = "context";
const FRONTIER: &str = "frontier";

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

    /// The persisted registry as a full state, if one was ever saved.
    ///
    /// # Errors
    /// [`StoreError::Database`] or [`StoreError::Decode`] (corrupt rows, or
    /// rows and context that break an invariant).
    pub fn load_registry(&self) -> Result<Option<RegistryState>, StoreError> {
        let decode = |message: String| StoreError::Decode {
            path: self.path.clone(),
            message,
        };
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let state = match tx.open_table(STATE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let Some(context) = state.get(CONTEXT).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        let context: CausalContext =
            rmp_serde::from_slice(context.value()).map_err(|e| decode(e.to_string()))?;
        let frontier: VersionVector = match state.get(FRONTIER).map_err(|e| self.err(e))? {
            Some(v) => rmp_serde::from_slice(v.value()).map_err(|e| decode(e.to_string()))?,
            None => VersionVector::new(),
        };
        let mut entries = Vec::new();
        match tx.open_table(ENTRIES) {
            Ok(table) => {
                for row in table.iter().map_err(|e| self.err(e))? {
                    let (key, value) = row.map_err(|e| self.err(e))?;
                    let siblings: Vec<Sibling<Registered>> =
                        rmp_serde::from_slice(value.value())
                            .map_err(|e| decode(format!("origin {:?}: {e}", key.value())))?;
                    entries.push((key.value().to_owned(), siblings));
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(self.err(e)),
        }
        Delta::from_parts(entries, context, frontier, true)
            .map(Some)
            .map_err(|e| decode(e.to_string()))
    }

    /// Writes the rows of `rows` (a key with no siblings is deleted), and the
    /// registry's `context` and `frontier`, in one durable transaction.
    ///
    /// # Errors
    /// [`StoreError::Database`]; nothing of this call is persisted.
    pub fn save_registry_rows(
        &self,
        rows: &[(String, Vec<Sibling<Registered>>)],
        context: &CausalContext,
        frontier: &VersionVector,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut entries = tx.open_table(ENTRIES).map_err(|e| self.err(e))?;
            for (key, siblings) in rows {
                if siblings.is_empty() {
                    entries.remove(key.as_str()).map_err(|e| self.err(e))?;
                } else {
                    let bytes = rmp_serde::to_vec(siblings).map_err(|e| self.err(e))?;
                    entries
                        .insert(key.as_str(), bytes.as_slice())
                        .map_err(|e| self.err(e))?;
                }
            }
            let mut state = tx.open_table(STATE).map_err(|e| self.err(e))?;
            let context = rmp_serde::to_vec(context).map_err(|e| self.err(e))?;
            let frontier = rmp_serde::to_vec(frontier).map_err(|e| self.err(e))?;
            state
                .insert(CONTEXT, context.as_slice())
                .map_err(|e| self.err(e))?;
            state
                .insert(FRONTIER, frontier.as_slice())
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Replaces the whole persisted registry with `registry` (at start: drops
    /// rows of tombstones purged since they were written).
    ///
    /// # Errors
    /// [`StoreError::Database`]; the previous registry stays persisted.
    pub fn replace_registry(&self, registry: &crate::registry::Registry) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        match tx.delete_table(ENTRIES) {
            Ok(_) => {}
            Err(e) => return Err(self.err(e)),
        }
        tx.commit().map_err(|e| self.err(e))?;
        let rows: Vec<(String, Vec<Sibling<Registered>>)> = registry
            .entries()
            .map(|(k, s)| (k.clone(), s.to_vec()))
            .collect();
        self.save_registry_rows(&rows, registry.context(), registry.purge_frontier())
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

    fn entry(address: &str, at: u64) -> Registered {
        Registered {
            spec: OriginSpec::new(address),
            updated_at_ms: at,
        }
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
    fn the_registry_survives_a_reopen_row_by_row_and_a_fresh_actor_keeps_it() {
        let dir = temp_dir("registry");
        let store = Store::open(&dir).expect("open");
        assert!(store.load_registry().expect("read").is_none());
        let mut registry = Registry::new(actor_id("a", 1));
        registry.insert("o1".into(), entry("h:1", 1));
        registry.insert("o2".into(), entry("h:2", 2));
        registry.remove(&"o2".to_string());
        store.replace_registry(&registry).expect("write");
        // a later change writes only the rows it touched
        registry.insert("o3".into(), entry("h:3", 3));
        let row = (
            "o3".to_string(),
            registry.siblings(&"o3".to_string()).to_vec(),
        );
        store
            .save_registry_rows(&[row], registry.context(), registry.purge_frontier())
            .expect("write");
        drop(store);

        let store = Store::open(&dir).expect("reopen");
        let state = store.load_registry().expect("read").expect("saved");
        let mut restored = Registry::new(actor_id("a", 2));
        restored.join_delta(state);
        assert_eq!(restored.keys().collect::<Vec<_>>(), vec!["o1", "o3"]);
        assert_eq!(
            restored, registry,
            "entries, tombstone, context and frontier"
        );
        // the new actor writes without reusing the old one's dots
        let delta = restored.insert("o4".into(), entry("h:4", 4));
        let dot = delta.iter().next().map(|(_, s)| s[0].dot).expect("one");
        assert_eq!(dot.actor(), actor_id("a", 2));
        assert_eq!(dot.counter(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_or_inconsistent_registry_is_an_error_not_a_panic() {
        let dir = temp_dir("corrupt");
        let store = Store::open(&dir).expect("open");
        let registry = Registry::new(actor_id("a", 1));
        store.replace_registry(&registry).expect("write");
        let tx = store.db.begin_write().expect("tx");
        {
            let mut t = tx.open_table(ENTRIES).expect("table");
            t.insert("o1", &b"\xc1garbage"[..]).expect("insert");
        }
        tx.commit().expect("commit");
        assert!(matches!(
            store.load_registry(),
            Err(StoreError::Decode { .. })
        ));
        // a row whose dot is not in the persisted context is refused too
        let mut other = Registry::new(actor_id("b", 1));
        other.insert("o1".into(), entry("h:1", 1));
        let row = ("o1".to_string(), other.siblings(&"o1".to_string()).to_vec());
        store
            .save_registry_rows(&[row], registry.context(), registry.purge_frontier())
            .expect("write");
        assert!(matches!(
            store.load_registry(),
            Err(StoreError::Decode { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
