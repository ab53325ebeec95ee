//! The wire protocol's messages.
//!
//! Every frame carries one [`Message`] encoded with rmp-serde. The first frame
//! on a connection is [`Message::Hello`] from the side that connected; the
//! listener answers [`Message::HelloOk`] or [`Message::Reject`] (and then
//! closes). After that the connecting side sends requests (`Pull`, `Notify`)
//! and the listener answers each `Pull`, in order, with zero or more
//! `Chunk`s and one `Delta`.
//!
//! **Versions.** A `Hello` carries the range of protocol versions the caller
//! speaks; the listener picks the highest version both speak and says which
//! in its `HelloOk`, or rejects the caller with the range it speaks itself.
//! `Hello` and `HelloOk` decode with fields appended after the ones this
//! version knows (ignored), so the next version can add to them and still
//! reach a node of this one. Version 2 (this one) added the range, `Chunk`
//! and the `(head, rows)` layout of a `Delta`'s answer; version 1 nodes
//! (exact version match, single-frame answers) are refused.
//!
//! The encoding is pinned by golden vectors in `sync/tests/golden/`: changing
//! a variant's name or a field's type is a protocol change and needs a new
//! [`PROTOCOL_VERSION`].

use std::fmt;

use bytes::Bytes;
use crdt::{CausalContext, Dot};
use serde::{Deserialize, Serialize};

use crate::NodeId;

/// The first field of every `Hello`: "VNTG".
pub const MAGIC: u32 = u32::from_be_bytes(*b"VNTG");

/// The most dots a `Notify` lists; larger news is announced without dots.
pub const MAX_NEWS: usize = 64;

/// The highest protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 2;

/// The lowest protocol version this crate speaks.
pub const MIN_PROTOCOL_VERSION: u16 = 2;

/// The opening frame's content: who is calling, for which cluster, and
/// which protocol versions it speaks. Decodes with trailing fields it does
/// not know (a later version's additions), which it ignores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Always [`MAGIC`].
    pub magic: u32,
    /// The highest version the caller speaks.
    pub max_version: u16,
    /// The cluster the caller belongs to; a listener of another cluster
    /// rejects it.
    pub cluster: String,
    /// The caller's node id.
    pub node: NodeId,
    /// The lowest version the caller speaks (a version-1 hello, which has no
    /// such field, speaks only `max_version`).
    pub min_version: u16,
}

impl Serialize for Hello {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (
            self.magic,
            self.max_version,
            &self.cluster,
            &self.node,
            self.min_version,
        )
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Hello {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Hello;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hello: magic, version, cluster, node[, min version, …]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Hello, A::Error> {
                use serde::de::Error;
                let missing = |i| A::Error::invalid_length(i, &self);
                let magic = seq.next_element()?.ok_or_else(|| missing(0))?;
                let max_version: u16 = seq.next_element()?.ok_or_else(|| missing(1))?;
                let cluster = seq.next_element()?.ok_or_else(|| missing(2))?;
                let node = seq.next_element()?.ok_or_else(|| missing(3))?;
                let min_version = seq.next_element()?.unwrap_or(max_version);
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Hello {
                    magic,
                    max_version,
                    cluster,
                    node,
                    min_version,
                })
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// The listener's acceptance: who it is and the version chosen. Decodes
/// with trailing fields it does not know, which it ignores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloOk {
    /// The listener's node id.
    pub node: NodeId,
    /// The protocol version of this connection from now on.
    pub version: u16,
}

impl Serialize for HelloOk {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.node, self.version).serialize(s)
    }
}

impl<'de> Deserialize<'de> for HelloOk {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = HelloOk;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hello_ok: node[, version, …]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<HelloOk, A::Error> {
                use serde::de::Error;
                let node = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let version = seq.next_element()?.unwrap_or(1);
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(HelloOk { node, version })
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// The version two peers speak: the highest both support, if any.
pub fn negotiate(mine: (u16, u16), theirs: (u16, u16)) -> Option<u16> {
    let chosen = mine.1.min(theirs.1);
    (chosen >= mine.0.max(theirs.0)).then_some(chosen)
}

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Opens a connection: who is calling, for which cluster, speaking
    /// which versions.
    Hello(Hello),
    /// The listener accepts the connection.
    HelloOk(HelloOk),
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
    /// Part of the answer to a `Pull`, when it is too large for one frame:
    /// some of its rows (a msgpack array of `(key, row)` pairs). More chunks
    /// or the answer's `Delta` follow; the receiver joins them together, as
    /// one answer, when the `Delta` arrives (and drops them if the
    /// connection is lost first).
    Chunk {
        /// The replica pulled.
        replica: String,
        /// The encoded rows.
        rows: Bytes,
    },
    /// The answer to a `Pull` (its last part, after any `Chunk`s), in the
    /// order the pulls arrived.
    Delta {
        /// The replica pulled.
        replica: String,
        /// The encoded pair `(head, rows)` of the `delta_since` answer (the
        /// rows after those of its chunks); `None` when the digest already
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
            | Message::Chunk { replica, .. }
            | Message::Delta { replica, .. }
            | Message::Notify { replica, .. } => Some(replica),
            _ => None,
        }
    }

    /// A short name of the variant, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::HelloOk(_) => "hello_ok",
            Message::Reject { .. } => "reject",
            Message::Pull { .. } => "pull",
            Message::Chunk { .. } => "chunk",
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
    /// The caller speaks no protocol version this listener does.
    UnsupportedVersion {
        /// The lowest version the listener speaks.
        min: u16,
        /// The highest version the listener speaks.
        max: u16,
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
            RejectReason::UnsupportedVersion { min, max } => {
                write!(
                    f,
                    "no common protocol version (listener speaks {min} to {max})"
                )
            }
            RejectReason::WrongCluster { expected } => {
                write!(f, "wrong cluster (listener is in {expected:?})")
            }
            RejectReason::Busy => f.write_str("too many inbound sessions"),
        }
    }
}
