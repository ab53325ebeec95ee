//! Pull anti-entropy for [`crdt::DeltaCrdt`] replicas.
//!
//! Every round a node picks a random live peer, sends its digest (causal
//! context) for each registered replica, and joins the delta it gets back.
//! After a local write it notifies a few peers, which pull from it at once.
//!
//! * [`Engine`]: the sans-IO core: time, randomness and messages go in,
//!   requests to send come out. It runs unchanged in the deterministic
//!   simulator in `proofs/`.
//! * [`MessageCodec`]: length-delimited frames (tokio-util) of rmp-serde
//!   [`Message`]s, with an explicit maximum frame length.
//! * [`Node`]: the tokio transport: a listener, persistent outbound
//!   connections with reconnect and backoff, handshakes, timeouts, bounded
//!   inbound sessions, metrics.
//! * [`PeerSource`]: where live peers come from ([`StaticPeers`], or SWIM
//!   membership in an app).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod codec;
mod engine;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod message;
mod metrics;
mod node;
mod peer;
mod replica;
pub mod storage;
mod throttle;

pub use codec::{
    DEFAULT_MAX_FRAME_LENGTH, HANDSHAKE_MAX_FRAME_LENGTH, MessageCodec, decode_message,
    encode_message,
};
pub use engine::{
    Answer, CommitTicket, Engine, EngineConfig, Event, Reply, StartupOutcome, Transmit,
};
pub use error::{CodecError, SyncError, error_chain};
pub use message::{
    Hello, HelloOk, MAGIC, MAX_NEWS, MIN_PROTOCOL_VERSION, Message, PROTOCOL_VERSION, RejectReason,
    negotiate,
};
pub use metrics::{Metrics, ReplicaBytes};
pub use node::{Node, NodeBuilder, NodeConfig, WATCH_CAPACITY, Watch, WatchEvent};
pub use peer::{NodeId, Peer, PeerSource, StaticPeers};
/// The cluster-key crate, re-exported for [`NodeConfig::keyring`].
pub use seal;
pub use throttle::LogThrottle;
