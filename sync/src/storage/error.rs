//! [`StorageError`]: why a store could not be opened, loaded or committed to.

use std::fmt;
use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why opening, loading or committing to a store failed.
///
/// No variant leaves a partial change behind: a failed `open` or `load`
/// changed nothing, and a failed `commit` applied nothing of the commit (see
/// [`Storage`](super::Storage)). Every message names the store and says what
/// an operator can do; the underlying cause, if any, is the
/// [`source`](std::error::Error::source), not repeated in the message.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The file exists but is empty: a crash while it was being created, or
    /// a wrong path. Nothing changed (it was not initialised as a new store).
    #[error(
        "store {path} is empty, not a database (a crash during its creation, or a wrong path): \
         remove it to start with a new store"
    )]
    Empty {
        /// The store's file.
        path: PathBuf,
    },
    /// The file does not start like a redb database: a wrong path, or a
    /// store overwritten from its first byte. Nothing changed.
    #[error(
        "{path} is not a redb database: check the path; to start with a new store, move it away"
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The file is a redb database but not a store of this crate (it has no
    /// format version): a wrong path, e.g. another program's database.
    /// Nothing changed.
    #[error(
        "{path} is a redb database but not a replica store (no format version): check the path"
    )]
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// The file is corrupt: redb's integrity check failed, redb panicked on
    /// it, or a value this crate wrote does not decode. Nothing changed. A
    /// store that panicked during a commit refuses every later commit with
    /// this error (redb's state in memory is not trusted after a panic).
    #[error(
        "store {path} is corrupt: move it away and restart; the node then starts with a fresh \
         identity and catches up from its peers (writes that only this node held are lost)"
    )]
    Corrupt {
        /// The store's file.
        path: PathBuf,
        /// What was found wrong.
        #[source]
        detail: Corruption,
    },
    /// The store was written by a newer version of this crate, in a format
    /// this build cannot read. Nothing changed.
    #[error(
        "store {path} has format version {found}, newer than version {supported} that this \
         build reads: run a newer build, or move the file away to start with a new store"
    )]
    NewerFormat {
        /// The store's file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The newest version this build reads and writes.
        supported: u32,
    },
    /// Another open handle holds the file's lock: another process (or
    /// another [`RedbStorage`](super::RedbStorage) in this one) has it open.
    /// Nothing changed.
    #[error(
        "store {path} is in use by another process? (it is locked): stop the other node, or \
         give this one another data directory"
    )]
    Locked {
        /// The store's file.
        path: PathBuf,
    },
    /// Reading or writing the file (or creating its directory) failed: a
    /// permission, a full disk, a failing device. Nothing changed.
    #[error("cannot read or write store {path}: check its permissions and free space")]
    Io {
        /// The store's file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Another redb failure (e.g. a value above redb's 3 GiB limit, a file
    /// of an older redb format). Nothing changed.
    #[error("store {path} failed")]
    Database {
        /// The store's file.
        path: PathBuf,
        /// What redb said.
        #[source]
        source: redb::Error,
    },
    /// A commit failed on purpose: [`MemoryStorage::fail_commits`]
    /// (tests only). Nothing changed.
    ///
    /// [`MemoryStorage::fail_commits`]: super::MemoryStorage::fail_commits
    #[error("commit to {location} failed on purpose (fail_commits)")]
    Injected {
        /// The store ([`Storage::location`](super::Storage::location)).
        location: String,
    },
}

/// What was found wrong in a corrupt store: redb's report, a panic's
/// message (with its location), or a value that does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption(String);

impl Corruption {
    /// A corruption described by `detail`.
    pub fn new(detail: impl Into<String>) -> Corruption {
        Corruption(detail.into())
    }

    /// The description.
    pub fn detail(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Corruption {}
