//! Cluster keys: authenticated encryption of cluster traffic.
//!
//! Every sync frame and every SWIM datagram of a cluster that has a key is
//! sealed with XChaCha20-Poly1305 (RustCrypto), with the cluster name bound
//! as associated data, so a node of another cluster, a node without the key,
//! a tampered frame and a replayed one are all rejected before anything is
//! decoded.
//!
//! - [`Key`] / [`KeyId`]: a 256-bit key (base64 text form, see
//!   [`Key::generate`]) and the short id that names it on the wire.
//! - [`Keyring`]: one primary key that seals, other keys that still open;
//!   shared by every connection of a node, so a rotation (install the new
//!   key everywhere → make it primary everywhere → remove the old one) takes
//!   effect on live connections and loses no message.
//! - [`StreamSession`]: one TCP connection. Each side sends a random 16-byte
//!   session salt in its first frame; nonces are `salt ‖ sequence`, and every
//!   frame after the first is bound to both salts and to its sequence
//!   number, so frames cannot be replayed, reordered or moved between
//!   connections.
//! - [`DatagramSealer`]: UDP. A random 192-bit nonce and a sealed
//!   millisecond timestamp per datagram; a receiver accepts a timestamp
//!   within a window of its own clock and remembers the nonces it accepted
//!   in that window ([`ReplayGuard`], bounded memory).
//! - [`Rejection`] says why input was refused; [`Rejections`] counts them
//!   for metrics.
//!
//! All of it is sans-IO: callers pass bytes and, for datagrams, the wall
//! clock.

mod datagram;
mod error;
mod key;
mod keyring;
mod rejections;
mod replay;
mod stream;

pub use datagram::{DATAGRAM_OVERHEAD, DatagramSealer};
pub use error::{KeyError, KeyringError, Rejection, SealError};
pub use key::{KEY_LEN, Key, KeyId};
pub use keyring::Keyring;
pub use rejections::{RejectionCounts, Rejections};
pub use replay::ReplayGuard;
pub use stream::{Role, STREAM_OVERHEAD, StreamSession};

/// First byte of every sealed frame and datagram. `0xC1` is the one byte
/// MessagePack never uses, so a sealed frame is never mistaken for a
/// plaintext message and vice versa.
pub const MAGIC: u8 = 0xC1;

/// Version of the sealed formats.
pub const VERSION: u8 = 1;

/// Appends `cluster` length-prefixed, so no two (label, cluster) pairs
/// give the same associated data.
pub(crate) fn push_cluster(aad: &mut Vec<u8>, cluster: &[u8]) {
    aad.extend_from_slice(&(cluster.len() as u32).to_be_bytes());
    aad.extend_from_slice(cluster);
}
