//! [`Key`]: a 256-bit cluster key, and its public [`KeyId`].

use std::{fmt, str::FromStr};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305,
    aead::{OsRng, rand_core::RngCore},
};
use sha2::{Digest, Sha256};

use crate::KeyError;

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;

/// A cluster key. Its text form is standard base64 (44 characters); its
/// `Debug` form shows only its [`KeyId`], so keys do not end up in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    bytes: [u8; KEY_LEN],
    /// Computed once: it is looked up for every frame.
    id: KeyId,
}

/// The public name of a key on the wire: the first 4 bytes of
/// SHA-256("vantage-seal key id" ‖ key). Shown as 8 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl Key {
    /// A new random key from the operating system's CSPRNG.
    pub fn generate() -> Key {
        let mut bytes = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut bytes);
        Key::from_bytes(bytes)
    }

    /// A key from raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        let digest = Sha256::new()
            .chain_update(b"vantage-seal key id")
            .chain_update(bytes)
            .finalize();
        let id = KeyId(u32::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3],
        ]));
        Key { bytes, id }
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key's text form (standard base64).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    pub(crate) fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.bytes.into())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.id())
    }
}

impl FromStr for Key {
    type Err = KeyError;

    /// Parses the base64 text form (surrounding whitespace ignored).
    fn from_str(s: &str) -> Result<Key, KeyError> {
        let bytes = STANDARD.decode(s.trim()).map_err(KeyError::Encoding)?;
        let bytes: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Length(bytes.len()))?;
        Ok(Key::from_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_rejects_wrong_lengths() {
        let key = Key::generate();
        let text = key.to_base64();
        assert_eq!(text.len(), 44);
        assert_eq!(text.parse::<Key>(), Ok(key.clone()));
        assert_eq!(format!(" {text}\n").parse::<Key>(), Ok(key));
        assert_eq!(
            STANDARD.encode([7u8; 16]).parse::<Key>(),
            Err(KeyError::Length(16))
        );
        assert!(matches!(
            "not base64!".parse::<Key>(),
            Err(KeyError::Encoding(_))
        ));
    }

    #[test]
    fn a_bad_key_says_why_once() {
        let error = "not base64!".parse::<Key>().expect_err("not base64");
        let cause = std::error::Error::source(&error)
            .expect("the base64 error is the source")
            .to_string();
        assert!(!error.to_string().contains(&cause), "{error}");
    }

    #[test]
    fn generated_keys_differ_and_debug_hides_the_key() {
        let (a, b) = (Key::generate(), Key::generate());
        assert_ne!(a, b);
        assert_ne!(a.id(), b.id());
        let shown = format!("{a:?}");
        assert!(!shown.contains(&a.to_base64()));
        assert_eq!(shown, format!("Key({})", a.id()));
    }

    #[test]
    fn key_id_golden_vector() {
        // SHA-256("vantage-seal key id" ‖ 32 zero bytes), first 4 bytes;
        // cross-checked with Python's hashlib.
        assert_eq!(
            Key::from_bytes([0; KEY_LEN]).id().to_string(),
            GOLDEN_ZERO_KEY_ID
        );
    }

    const GOLDEN_ZERO_KEY_ID: &str = "c7f7c988";
}
