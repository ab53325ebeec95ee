//! The cluster key file: which keys seal and open the agent's cluster
//! traffic (see the `seal` crate).
//!
//! One base64 key per line (`healthcheck keygen` prints one); the first key
//! is the primary, which seals; the others only open. Blank lines and lines
//! starting with `#` are ignored. The agent reads the file at start and
//! again on `SIGHUP`, so a key rotates across a running cluster in three
//! edits, each applied on every agent before the next:
//!
//! 1. append the new key (every agent opens both);
//! 2. move it to the first line (agents seal with it; all can open it);
//! 3. delete the old key.

use std::path::{Path, PathBuf};

use seal::{Key, KeyId, Keyring};
use thiserror::Error;

/// The key file could not be used; the keyring is unchanged.
#[derive(Debug, Error)]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("cannot read the key file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a key.
    #[error("{path}:{line}: not a key")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Why.
        #[source]
        source: seal::KeyError,
    },
    /// The agent has no `key_file` configured (its traffic is plaintext);
    /// a key cannot be added to a running plaintext cluster.
    #[error("no key_file is configured: cluster traffic is plaintext")]
    NotConfigured,
    /// No key in the file.
    #[error("{path}: no key (one base64 key per line; `healthcheck keygen` makes one)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// The keys of a key file: the primary first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    /// Seals and opens.
    pub primary: Key,
    /// Only open.
    pub others: Vec<Key>,
}

impl KeyFile {
    /// Parses key file text; `path` is used in errors.
    ///
    /// # Errors
    /// [`KeyFileError::BadKey`] naming the line, or [`KeyFileError::Empty`].
    pub fn parse(text: &str, path: &Path) -> Result<KeyFile, KeyFileError> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = line.parse::<Key>().map_err(|source| KeyFileError::BadKey {
                path: path.to_owned(),
                line: i + 1,
                source,
            })?;
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let mut keys = keys.into_iter();
        let primary = keys.next().ok_or_else(|| KeyFileError::Empty {
            path: path.to_owned(),
        })?;
        Ok(KeyFile {
            primary,
            others: keys.collect(),
        })
    }

    /// Reads and parses a key file.
    ///
    /// # Errors
    /// As [`KeyFile::parse`], or [`KeyFileError::Read`].
    pub fn read(path: &Path) -> Result<KeyFile, KeyFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        KeyFile::parse(&text, path)
    }

    /// A new keyring holding these keys.
    pub fn keyring(&self) -> Keyring {
        Keyring::with_keys(self.primary.clone(), self.others.iter().cloned())
    }

    /// Makes `keyring` hold exactly these keys, in an order that never
    /// leaves it without its primary: install all, switch the primary,
    /// then remove the keys no longer listed. Returns the primary's id and
    /// the ids removed.
    pub fn apply(&self, keyring: &Keyring) -> (KeyId, Vec<KeyId>) {
        keyring.install(self.primary.clone());
        for key in &self.others {
            keyring.install(key.clone());
        }
        let primary = self.primary.id();
        // Installed just above, so this cannot fail.
        let _ = keyring.use_primary(primary);
        let keep: Vec<KeyId> = std::iter::once(primary)
            .chain(self.others.iter().map(Key::id))
            .collect();
        let mut removed = Vec::new();
        for id in keyring.ids() {
            if !keep.contains(&id) && keyring.remove(id).is_ok() {
                removed.push(id);
            }
        }
        (primary, removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comments_blank_lines_and_names_the_bad_line() {
        let (a, b) = (Key::generate(), Key::generate());
        let text = format!(
            "# rotated 2026-11\n\n{}\n  {}  \n{}\n",
            a.to_base64(),
            b.to_base64(),
            a.to_base64()
        );
        let file = KeyFile::parse(&text, Path::new("keys")).expect("valid");
        assert_eq!(file.primary, a);
        assert_eq!(file.others, vec![b.clone()], "duplicates dropped");

        let bad = format!("{}\nnot-a-key\n", a.to_base64());
        let err = KeyFile::parse(&bad, Path::new("keys")).expect_err("bad line");
        assert!(err.to_string().starts_with("keys:2: "), "{err}");
        let err = KeyFile::parse("# nothing\n", Path::new("keys")).expect_err("empty");
        assert!(matches!(err, KeyFileError::Empty { .. }));
    }

    #[test]
    fn applying_the_three_rotation_edits() {
        let (old, new) = (Key::generate(), Key::generate());
        let ring = KeyFile::parse(&old.to_base64(), Path::new("k"))
            .expect("valid")
            .keyring();
        let step = |text: String| {
            KeyFile::parse(&text, Path::new("k"))
                .expect("valid")
                .apply(&ring)
        };
        assert_eq!(
            step(format!("{}\n{}", old.to_base64(), new.to_base64())),
            (old.id(), vec![])
        );
        assert_eq!(ring.ids(), vec![old.id(), new.id()]);
        assert_eq!(
            step(format!("{}\n{}", new.to_base64(), old.to_base64())),
            (new.id(), vec![])
        );
        assert_eq!(ring.primary_id(), new.id());
        assert_eq!(step(new.to_base64()), (new.id(), vec![old.id()]));
        assert_eq!(ring.ids(), vec![new.id()]);
        // Replacing the primary outright in one edit also works.
        let other = Key::generate();
        assert_eq!(step(other.to_base64()), (other.id(), vec![new.id()]));
    }
}
