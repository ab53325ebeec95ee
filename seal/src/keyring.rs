//! [`Keyring`]: the keys a node seals and opens with.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::{Key, KeyId, KeyringError};

/// One primary key that seals, and other keys that still open.
///
/// A `Keyring` is a shared handle: clones see the same keys, so the keyring
/// a node's connections and sockets hold changes for all of them at once.
/// Rotating a cluster's key without losing a message:
///
/// 1. [`install`](Keyring::install) the new key on every node (every node
///    now opens both);
/// 2. [`use_primary`](Keyring::use_primary) the new key on every node
///    (nodes that switched seal with it, and everyone can open it);
/// 3. [`remove`](Keyring::remove) the old key on every node, once no node
///    seals with it.
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<RwLock<Ring>>,
}

struct Ring {
    primary: Key,
    /// Every installed key, the primary included.
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary_id())
            .field("keys", &self.ids())
            .finish()
    }
}

impl Keyring {
    /// A keyring with one key, which is primary.
    pub fn new(primary: Key) -> Keyring {
        Keyring::with_keys(primary, [])
    }

    /// A keyring sealing with `primary` and also opening with `others`.
    pub fn with_keys(primary: Key, others: impl IntoIterator<Item = Key>) -> Keyring {
        let ring = Ring {
            keys: vec![primary.clone()],
            primary,
        };
        let keyring = Keyring {
            inner: Arc::new(RwLock::new(ring)),
        };
        for key in others {
            keyring.install(key);
        }
        keyring
    }

    // No code panics while holding the lock, so a poisoned lock still
    // holds a consistent ring.
    fn read(&self) -> RwLockReadGuard<'_, Ring> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Ring> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a key that opens (idempotent). Returns its id.
    pub fn install(&self, key: Key) -> KeyId {
        let id = key.id();
        let mut ring = self.write();
        if !ring.keys.iter().any(|k| k.id() == id) {
            ring.keys.push(key);
        }
        id
    }

    /// Makes the installed key `id` the one that seals.
    pub fn use_primary(&self, id: KeyId) -> Result<(), KeyringError> {
        let mut ring = self.write();
        let key = ring
            .keys
            .iter()
            .find(|k| k.id() == id)
            .cloned()
            .ok_or(KeyringError::UnknownKey(id))?;
        ring.primary = key;
        Ok(())
    }

    /// Removes key `id`; it no longer opens anything.
    pub fn remove(&self, id: KeyId) -> Result<(), KeyringError> {
        let mut ring = self.write();
        if ring.primary.id() == id {
            return Err(KeyringError::RemovePrimary(id));
        }
        let before = ring.keys.len();
        ring.keys.retain(|k| k.id() != id);
        if ring.keys.len() == before {
            return Err(KeyringError::UnknownKey(id));
        }
        Ok(())
    }

    /// The key that seals.
    pub fn primary(&self) -> Key {
        self.read().primary.clone()
    }

    /// The id of the key that seals.
    pub fn primary_id(&self) -> KeyId {
        self.read().primary.id()
    }

    /// The ids of every installed key, the primary included.
    pub fn ids(&self) -> Vec<KeyId> {
        self.read().keys.iter().map(Key::id).collect()
    }

    /// The installed key `id`.
    pub fn find(&self, id: KeyId) -> Option<Key> {
        self.read().keys.iter().find(|k| k.id() == id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_steps_and_their_refusals() {
        let (old, new) = (Key::generate(), Key::generate());
        let ring = Keyring::new(old.clone());
        let shared = ring.clone();
        assert_eq!(
            ring.use_primary(new.id()),
            Err(KeyringError::UnknownKey(new.id()))
        );
        assert_eq!(shared.install(new.clone()), new.id());
        assert_eq!(ring.ids(), vec![old.id(), new.id()]);
        ring.install(new.clone());
        assert_eq!(ring.ids().len(), 2, "install is idempotent");
        assert_eq!(
            ring.remove(old.id()),
            Err(KeyringError::RemovePrimary(old.id()))
        );
        ring.use_primary(new.id()).expect("installed");
        assert_eq!(shared.primary_id(), new.id(), "clones share the ring");
        ring.remove(old.id()).expect("no longer primary");
        assert!(shared.find(old.id()).is_none());
        assert_eq!(
            ring.remove(old.id()),
            Err(KeyringError::UnknownKey(old.id()))
        );
    }
}
