//! Errors and rejections.

use thiserror::Error;

use crate::KeyId;

/// Why input was refused at the cluster boundary: a sealed frame or
/// datagram that does not open, or, in a cluster without a key, a
/// plaintext datagram without this cluster's name tag. Each is counted in
/// [`crate::Rejections`].
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not sealed at all: plaintext, or another protocol.
    #[error("not sealed (plaintext, or a node without the cluster key)")]
    Plaintext,
    /// The header is truncated or inconsistent: sealed with an unknown
    /// version, a missing or unexpected session salt, an unbound frame; or,
    /// in a cluster without a key, a datagram too short for the plaintext
    /// header or without its magic and version (e.g. a sealed datagram, or
    /// a node of a version that sends no header).
    #[error("malformed header")]
    Malformed,
    /// In a cluster without a key: a well-formed plaintext datagram tagged
    /// with another cluster's name. (With a key, another cluster's datagram
    /// does not authenticate: [`Rejection::Forged`].)
    #[error("another cluster's datagram (cluster name tag differs)")]
    WrongCluster,
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
            Rejection::WrongCluster => "wrong_cluster",
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
    /// Not base64 (the source says where).
    #[error("a cluster key is 32 bytes in base64")]
    Encoding(#[source] base64::DecodeError),
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
