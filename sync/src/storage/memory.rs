//! [`MemoryStorage`]: a [`Storage`] in memory, for tests and simulations.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Commit, Storage, StorageError, Stored};

/// A [`Storage`] in memory.
///
/// Clones share their content, so a test can drop a node (a "crash": every
/// successful commit is kept, nothing else) and start another on a clone of
/// the same storage. It keeps the [`Storage`] contract, except that
/// "durable" means "until the last clone is dropped".
///
/// Test hooks: [`fail_commits`](Self::fail_commits) makes commits fail,
/// [`commits`](Self::commits) counts the successful ones,
/// [`snapshot`](Self::snapshot) and [`replace`](Self::replace) copy and
/// restore the content (e.g. a data directory restored from an older copy).
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    shared: Arc<Mutex<Content>>,
}

#[derive(Debug, Default)]
struct Content {
    stored: Stored,
    fail_next: usize,
    commits: u64,
}

impl MemoryStorage {
    /// A new, empty storage.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    fn content(&self) -> MutexGuard<'_, Content> {
        // Nothing panics while the lock is held, and every change is applied
        // whole, so a poisoned lock still guards consistent content.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the next `n` commits (through any clone) fail with
    /// [`StorageError::Injected`] and change nothing. Replaces a count set
    /// before; `0` stops failing.
    pub fn fail_commits(&self, n: usize) {
        self.content().fail_next = n;
    }

    /// How many commits succeeded (through any clone) since this storage
    /// was created. [`replace`](Self::replace) does not count.
    pub fn commits(&self) -> u64 {
        self.content().commits
    }

    /// A copy of the content: what [`Storage::load`] would return now.
    pub fn snapshot(&self) -> Stored {
        self.content().stored.clone()
    }

    /// Replaces the content with `stored` (for every clone), e.g. to
    /// simulate a data directory restored from an older copy.
    pub fn replace(&self, stored: Stored) {
        self.content().stored = stored;
    }
}

impl Storage for MemoryStorage {
    fn location(&self) -> String {
        "memory".to_owned()
    }

    fn load(&self) -> Result<Stored, StorageError> {
        Ok(self.snapshot())
    }

    fn commit(&self, commit: &Commit) -> Result<(), StorageError> {
        let mut content = self.content();
        if content.fail_next > 0 {
            content.fail_next -= 1;
            return Err(StorageError::Injected {
                location: self.location(),
            });
        }
        content.stored.apply(commit);
        content.commits += 1;
        Ok(())
    }
}
