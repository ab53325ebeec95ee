//! Errors and rejections.

use thiserror::Error;

use crate::KeyId;

/// Why sealed input was refused. Each is counted in [`crate::Rejections`].
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not sealed at all: plaintext, or another protocol.
    #[error("not sealed (plaintext, or a node without the cluster key)")]
    Plaintext,
    /// Sealed, but the header is truncated or inconsistent (unknown
    /// version, missing or unexpected session salt, an unbound frame).
    #[error("malformed sealed header")]
    Malformed,
    /// Sealed with a key this node does not have.
    #[error("sealed with unknown key {0}")]
    UnknownKey(KeyId),
    /// Authentication failed: tampered, another cluster's name, or a frame
    /// out of sequence or from another connection.
    #[error("authentication failed (tampered, other cluster, or out of sequence)")]
    Forged,
    /// A datagram whose timestamp is outside the accepted window.
    #[error("timestamp outside the accepted window")]
    Stale,
    /// A datagram already accepted once.
    #[error("replayed datagram")]
    Replayed,
}

impl Rejection {
    /// A short label, e.g. for a metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Plaintext => "plaintext",
            Rejection::Malformed => "malformed",
            Rejection::UnknownKey(_) => "unknown_key",
            Rejection::Forged => "forged",
            Rejection::Stale => "stale",
            Rejection::Replayed => "replayed",
        }
    }
}

/// Sealing failed; nothing was produced.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    /// A stream session's frames after the first must be bound to the
    /// peer's session salt, which has not arrived yet: send one frame, then
    /// read the peer's first frame.
    #[error("the peer's session salt has not arrived yet")]
    AwaitingPeer,
    /// The session has sent 2^64 − 1 frames.
    #[error("session sequence exhausted")]
    Exhausted,
    /// The AEAD refused (input larger than the cipher's limit).
    #[error("encryption failed")]
    Encrypt,
}

/// A key's text form is invalid.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Not base64.
    #[error("a cluster key is 32 bytes in base64: {0}")]
    Encoding(String),
    /// Base64 of the wrong length.
    #[error("a cluster key is 32 bytes in base64, this one is {0} bytes")]
    Length(usize),
}

/// A keyring operation was refused; the keyring is unchanged.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum KeyringError {
    /// No key with this id is installed.
    #[error("no key {0} in the keyring")]
    UnknownKey(KeyId),
    /// The primary key cannot be removed: make another key primary first.
    #[error("key {0} is the primary key; make another key primary first")]
    RemovePrimary(KeyId),
}
