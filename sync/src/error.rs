//! Errors of the sync crate.

use std::io;

use thiserror::Error;

use crate::RejectReason;

/// A frame could not be read or written.
#[derive(Debug, Error)]
pub enum CodecError {
    /// The framing layer failed: an I/O error, or a length prefix above the
    /// maximum frame length (nothing was buffered for it). The connection
    /// must be closed.
    #[error("framing")]
    Frame(#[source] io::Error),
    /// A frame's body is not a valid message (malformed msgpack, unknown
    /// variant, or a value that breaks an invariant). The connection must be
    /// closed.
    #[error("malformed message")]
    Decode(#[source] rmp_serde::decode::Error),
    /// A message could not be encoded; nothing was written.
    #[error("cannot encode message")]
    Encode(#[source] rmp_serde::encode::Error),
    /// A sealed frame did not open: plaintext from a node without the
    /// cluster key, another key, tampered, replayed or out of order. The
    /// connection must be closed.
    #[error("rejected frame")]
    Rejected(#[source] seal::Rejection),
    /// A frame could not be sealed; nothing was written.
    #[error("cannot seal frame")]
    Seal(#[source] seal::SealError),
    /// An encoded message is larger than the maximum frame length; nothing
    /// was written. (A replica's state outgrew `max_frame_length`.)
    #[error("message of {len} bytes exceeds the {max}-byte frame limit")]
    TooLarge {
        /// Encoded size.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl From<io::Error> for CodecError {
    fn from(e: io::Error) -> Self {
        CodecError::Frame(e)
    }
}

/// What can go wrong when using the sync engine or a node.
#[derive(Debug, Error)]
pub enum SyncError {
    /// No replica is registered under this name.
    #[error("no replica named {0:?}")]
    UnknownReplica(String),
    /// A replica is already registered under this name; nothing changed.
    #[error("a replica named {0:?} is already registered")]
    DuplicateReplica(String),
    /// The replica registered under this name has another type.
    #[error("replica {0:?} has another type")]
    WrongType(String),
    /// A `delta_since` answer, a row or a head could not be encoded;
    /// nothing was sent or committed.
    #[error("encoding replica {replica:?}")]
    Encode {
        /// The replica.
        replica: String,
        /// Why.
        #[source]
        source: rmp_serde::encode::Error,
    },
    /// A received answer could not be decoded or assembled; it was dropped
    /// and the replica is unchanged.
    #[error("decoding an answer for replica {replica:?}")]
    Decode {
        /// The replica.
        replica: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A chunked answer grew past the limit; it was dropped and the replica
    /// is unchanged.
    #[error("an answer for replica {replica:?} reached {bytes} bytes, above the {max}-byte limit")]
    AnswerTooLarge {
        /// The replica.
        replica: String,
        /// Bytes received when it was dropped.
        bytes: usize,
        /// The limit (`EngineConfig::max_answer_bytes`).
        max: usize,
    },
    /// What the store holds for a replica cannot be decoded or breaks an
    /// invariant; nothing was registered.
    #[error("restoring replica {replica:?} from the store")]
    Restore {
        /// The replica.
        replica: String,
        /// What is wrong with it (undecodable, or an invariant broken).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The commit that held a write failed: the write stays applied in
    /// memory and is retried with the next commit (flush again).
    #[error("the commit holding the write failed")]
    CommitFailed(#[source] std::sync::Arc<crate::storage::StorageError>),
    /// The node is still verifying the actor it restored from its store
    /// (see `Node::ready`); nothing was written.
    #[error("not ready to write: verifying the restored actor with the peers")]
    NotReady,
    /// A replica's store failed; see the source. What was not committed
    /// stays pending and is retried.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The listener could not be bound to this address.
    #[error("binding the sync listener to {addr}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A socket error.
    #[error("i/o")]
    Io(#[from] io::Error),
    /// A frame could not be read or written.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The peer refused the connection.
    #[error("rejected by peer: {0}")]
    Rejected(RejectReason),
    /// The peer broke the protocol (e.g. an answer before any hello).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A read or write did not complete in time.
    #[error("timed out")]
    Timeout,
    /// The node is shutting down.
    #[error("the node is stopping")]
    Stopped,
}

/// `error` and its sources (walking [`std::error::Error::source`]), joined
/// by ": ": what to print or log for an error of this workspace, whose
/// messages leave their cause to the source, so each cause appears once.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

/// [`error_chain`], by its short name inside the crate.
pub(crate) use error_chain as chain;

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;
    use crate::{Node, NodeConfig, StaticPeers};

    #[tokio::test]
    async fn a_busy_port_names_the_address_and_its_cause_once() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = taken.local_addr().expect("bound");
        let config = NodeConfig::new("a", "test", addr);
        let error = match Node::builder(config)
            .start(std::sync::Arc::new(StaticPeers::default()))
            .await
        {
            Ok(_) => panic!("the port is taken: start must fail"),
            Err(e) => e,
        };
        assert!(matches!(error, SyncError::Bind { .. }), "{error:?}");
        let cause = std::error::Error::source(&error)
            .expect("the i/o error is the source")
            .to_string();
        testkit::assert_reads_once(&chain(&error), &addr.to_string(), &cause);
    }

    #[test]
    fn codec_errors_leave_their_cause_to_the_source() {
        let io = io::Error::other("disk on fire");
        let printed = chain(&SyncError::from(CodecError::Frame(io)));
        assert_eq!(printed, "framing: disk on fire");
    }
}
