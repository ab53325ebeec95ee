//! The wire protocol's messages.
//!
//! Every frame carries one [`Message`] encoded with rmp-serde. The first frame
//! on a connection is [`Message::Hello`] from the side that connected; the
//! listener answers [`Message::HelloOk`] or [`Message::Reject`] (and then
//! closes). After that the connecting side sends requests (`Pull`, `Notify`)
//! and the listener answers each `Pull` with one `Delta`, in order.
//!
//! The encoding is pinned by golden vectors in `sync/tests/golden/`: changing
//! a variant's position or a field's type is a protocol change and needs a
//! new [`PROTOCOL_VERSION`].

use std::fmt;

use bytes::Bytes;
use crdt::{CausalContext, Dot};
use serde::{Deserialize, Serialize};

use crate::NodeId;

/// The first field of every `Hello`: "VNTG".
pub const MAGIC: u32 = u32::from_be_bytes(*b"VNTG");

/// The most dots a `Notify` lists; larger news is announced without dots.
pub const MAX_NEWS: usize = 64;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Opens a connection: who is calling, for which cluster.
    Hello {
        /// Always [`MAGIC`].
        magic: u32,
        /// The caller's [`PROTOCOL_VERSION`].
        version: u16,
        /// The cluster the caller belongs to; a listener of another cluster
        /// rejects it.
        cluster: String,
        /// The caller's node id.
        node: NodeId,
    },
    /// The listener accepts the connection.
    HelloOk {
        /// The listener's node id.
        node: NodeId,
    },
    /// The listener refuses the connection and closes it.
    Reject {
        /// Why.
        reason: RejectReason,
    },
    /// "Here is everything I have seen of `replica`; send what I lack."
    Pull {
        /// The registered name of the replica.
        replica: String,
        /// The caller's causal context for it.
        digest: CausalContext,
    },
    /// The answer to a `Pull`, in the order the pulls arrived.
    Delta {
        /// The replica pulled.
        replica: String,
        /// The encoded `delta_since` answer; `None` when the digest already
        /// covers everything the listener has (steady state: no key state
        /// moves, only digests).
        delta: Option<Bytes>,
        /// Whether the answer is the full state (the digest predates a purge).
        full: bool,
    },
    /// "I have news for `replica`": unless the receiver has already seen
    /// every dot of `news`, it pulls from the sender at once, over its own
    /// connection. Never answered.
    Notify {
        /// The replica with news.
        replica: String,
        /// The events that are news (at most [`MAX_NEWS`]); empty when there
        /// were too many to list, and then the receiver always pulls.
        news: Vec<Dot>,
    },
}

impl Message {
    /// The replica a request or answer is about, if any.
    pub fn replica(&self) -> Option<&str> {
        match self {
            Message::Pull { replica, .. }
            | Message::Delta { replica, .. }
            | Message::Notify { replica, .. } => Some(replica),
            _ => None,
        }
    }

    /// A short name of the variant, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "hello",
            Message::HelloOk { .. } => "hello_ok",
            Message::Reject { .. } => "reject",
            Message::Pull { .. } => "pull",
            Message::Delta { .. } => "delta",
            Message::Notify { .. } => "notify",
        }
    }
}

/// Why a listener refused a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// The first frame was not a `Hello` with the right magic.
    NotAHello,
    /// The caller speaks a protocol version this listener does not.
    UnsupportedVersion {
        /// The version the listener speaks.
        supported: u16,
    },
    /// The caller belongs to another cluster.
    WrongCluster {
        /// The listener's cluster name.
        expected: String,
    },
    /// The listener has reached its limit of concurrent inbound sessions; try
    /// again later.
    Busy,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::NotAHello => f.write_str("first frame was not a valid Hello"),
            RejectReason::UnsupportedVersion { supported } => {
                write!(
                    f,
                    "unsupported protocol version (listener speaks {supported})"
                )
            }
            RejectReason::WrongCluster { expected } => {
                write!(f, "wrong cluster (listener is in {expected:?})")
            }
            RejectReason::Busy => f.write_str("too many inbound sessions"),
        }
    }
}
