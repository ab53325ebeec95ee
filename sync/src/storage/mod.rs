//! Durable replicas: where a node keeps its replicas between runs.
//!
//! A node persists every registered replica through a [`Storage`]: one row
//! per key (key bytes → row bytes), a *head* per replica (its causal context
//! and purge frontier), and the node's [`Identity`]. Everything is bytes,
//! encoded by the caller; this module only makes them durable, atomically.
//! The node does group commit itself: many writes share one [`Commit`].
//!
//! * [`Storage`]: the trait, and its contract (durable, all-or-nothing,
//!   one consistent cut per commit).
//! * [`MemoryStorage`]: in memory, shared between clones, with test hooks
//!   (failing commits, counting them, restoring an older copy).
//! * [`RedbStorage`]: a [redb](https://docs.rs/redb) file (an embedded ACID
//!   store with copy-on-write B-trees and checksummed commits).
//!
//! # Layout of a redb store
//!
//! | table | key → value | content |
//! |---|---|---|
//! | `meta` | `&str` → `&[u8]` | `format`: the format version, a `u32` little-endian ([`FORMAT_VERSION`]); `identity`: the actor id as a `u64` little-endian, then the node name in UTF-8 (absent until the first commit that carries an identity) |
//! | `heads` | `&str` → `&[u8]` | replica name → its head |
//! | `rows/<name>` | `&[u8]` → `&[u8]` | one table per replica: key → row |
//!
//! `format` is written when the file is created. A file with a higher
//! `format` is refused ([`StorageError::NewerFormat`]); a redb file without
//! one is refused as not a store ([`StorageError::Foreign`]), unless it has no
//! table at all (a creation that crashed before writing it), which is
//! initialised. A commit is one write transaction, fsynced at commit (redb's
//! default [`Durability::Immediate`](redb::Durability::Immediate)); a load
//! is one read transaction, so it sees one commit's consistent cut.

mod error;
mod guard;
mod memory;
mod redb_storage;

use std::collections::BTreeMap;

use crdt::ActorId;

pub use error::{Corruption, StorageError};
/// Runs a closure that may panic inside redb (on a corrupt file) and returns
/// the panic's message as an error, without printing it: for code that
/// reads redb files of its own (e.g. migrations). See the module's guard.
pub use guard::catch as catch_panics;
pub use memory::MemoryStorage;
pub use redb_storage::{FORMAT_VERSION, RedbStorage};

/// Where a node's replicas live between runs.
///
/// Contract, which every implementation MUST keep:
///
/// * `load` is called once, at start, before anything else; `commit` is
///   called from one thread at a time (the node's group-commit thread; it
///   may block).
/// * After `commit` returns `Ok`, everything in it is durable: it survives
///   a crash of the process or a power loss (it was fsynced).
/// * After `commit` returns `Err`, nothing of it is applied (all or
///   nothing) and the previous state stays loadable.
/// * A commit's rows and heads are one consistent cut: `load` never returns
///   a head without the rows committed with it, nor rows without their head.
/// * A commit applies its replicas in order, and each replica's rows in
///   order: if a name or a key appears twice, the later one wins.
pub trait Storage: Send + Sync + 'static {
    /// Where it lives, for messages (a file path, `"memory"`).
    fn location(&self) -> String;

    /// Everything stored (empty for a new store).
    ///
    /// # Errors
    /// The store cannot be read, or what it holds is corrupt; nothing
    /// changed.
    fn load(&self) -> Result<Stored, StorageError>;

    /// Applies `commit` atomically and durably (see the trait docs).
    ///
    /// # Errors
    /// Nothing of `commit` was applied; the previous state stays loadable.
    fn commit(&self, commit: &Commit) -> Result<(), StorageError>;

    /// Whether the store had to be repaired when it was opened, so that its
    /// latest commits may have been rolled back. A node then takes a fresh
    /// actor rather than reuse one whose last dots the store may have lost.
    fn repaired(&self) -> bool {
        false
    }
}

/// The actor a starting node takes, given what its store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorChoice {
    /// The store's own actor: the node reuses it once verified with its
    /// peers ([`Engine::verify_restored_actor`](crate::Engine::verify_restored_actor)).
    Restored(ActorId),
    /// A fresh actor, to be persisted with the first commit
    /// ([`Engine::persist_identity`](crate::Engine::persist_identity)), and why.
    Fresh(ActorId, FreshBecause),
}

/// Why a starting node takes a fresh actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreshBecause {
    /// The store holds no identity: new, or lost (emptied, replaced).
    NoIdentity,
    /// The store was written by a node of another name (a copied data dir).
    OtherNode,
    /// The store had to be repaired at open: its last commits, and so the
    /// actor's last dots, may be gone.
    Repaired,
}

impl ActorChoice {
    /// The rule, for a node named `node` whose store holds `stored` (and was
    /// `repaired` at open); `fresh` draws a new random actor id.
    pub fn for_store(
        stored: &Stored,
        node: &str,
        repaired: bool,
        fresh: impl FnOnce() -> ActorId,
    ) -> ActorChoice {
        match &stored.identity {
            None => ActorChoice::Fresh(fresh(), FreshBecause::NoIdentity),
            Some(_) if repaired => ActorChoice::Fresh(fresh(), FreshBecause::Repaired),
            Some(identity) if identity.node != node => {
                ActorChoice::Fresh(fresh(), FreshBecause::OtherNode)
            }
            Some(identity) => ActorChoice::Restored(identity.actor),
        }
    }

    /// The actor chosen.
    pub fn actor(&self) -> ActorId {
        match self {
            ActorChoice::Restored(a) | ActorChoice::Fresh(a, _) => *a,
        }
    }
}

/// Who a store belongs to: the node's name and its actor id (the id its
/// replicas mint dots with).
///
/// Written once, with the store's first commit, and again only when the
/// node takes a fresh actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The node's name.
    pub node: String,
    /// The actor id its replicas mint dots with.
    pub actor: crdt::ActorId,
}

/// What [`Storage::load`] returns: everything committed so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The last identity committed, if any commit carried one.
    pub identity: Option<Identity>,
    /// Every replica ever committed, by name.
    pub replicas: BTreeMap<String, StoredReplica>,
}

impl Stored {
    /// Applies `commit` to this content, as a successful
    /// [`Storage::commit`] does to what [`Storage::load`] returns: sets the
    /// identity if the commit has one; for each replica in order, creates it
    /// if needed, replaces its head, and puts (`Some`) or deletes (`None`)
    /// each row in order.
    pub fn apply(&mut self, commit: &Commit) {
        if let Some(identity) = &commit.identity {
            self.identity = Some(identity.clone());
        }
        for change in &commit.replicas {
            let replica = self.replicas.entry(change.name.clone()).or_default();
            replica.head.clone_from(&change.head);
            for (key, row) in &change.rows {
                match row {
                    Some(row) => {
                        replica.rows.insert(key.clone(), row.clone());
                    }
                    None => {
                        replica.rows.remove(key);
                    }
                }
            }
        }
    }
}

/// One replica as stored: its head and its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredReplica {
    /// The head committed last (causal context and purge frontier, encoded
    /// by the caller).
    pub head: Vec<u8>,
    /// Key bytes → row bytes, ascending by key bytes.
    pub rows: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// One atomic change: applied entirely, durably, or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    /// A new identity to store, or `None` to keep the stored one.
    pub identity: Option<Identity>,
    /// The changed replicas, applied in order.
    pub replicas: Vec<ReplicaCommit>,
}

/// The change to one replica: its new head, and rows to put (`Some`) or
/// delete (`None`). A replica not in the store yet is created. Deleting a
/// key that is not stored is not an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaCommit {
    /// The replica's name.
    pub name: String,
    /// Its new head (replaces the stored one).
    pub head: Vec<u8>,
    /// Rows to put or delete, applied in order.
    pub rows: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}
