//! Answers to pulls: [`Reply`] and [`Answer`] on the responder's side (an
//! answer is encoded piece by piece, outside the engine lock), and the
//! assembly of chunked answers on the requester's side.

use std::collections::HashMap;

use bytes::Bytes;

use crate::{
    Message, NodeId, SyncError,
    replica::{Part, PartStream},
};

/// What [`Engine::handle_request`](super::Engine::handle_request) says to do
/// with a request.
pub enum Reply {
    /// Nothing to send back.
    Nothing,
    /// Send this answer's messages, in order, on the connection the request
    /// came in on.
    Answer(Answer),
    /// A pull that found this node's own dots not yet durable: its answer
    /// will be taken from the next commit's cut. Once that commit is
    /// reported with [`handle_committed`](super::Engine::handle_committed),
    /// [`take_parked`](super::Engine::take_parked) with this ticket returns
    /// it.
    Parked(u64),
}

impl Reply {
    /// The messages of an immediate answer, all encoded now (for simulators
    /// and tests; the transport streams them with [`Answer::next_message`]).
    /// Empty for [`Reply::Nothing`] and [`Reply::Parked`].
    ///
    /// # Errors
    /// [`SyncError::Encode`] if a part cannot be encoded.
    pub fn into_messages(self) -> Result<Vec<Message>, SyncError> {
        match self {
            Reply::Answer(answer) => answer.into_messages(),
            Reply::Nothing | Reply::Parked(_) => Ok(Vec::new()),
        }
    }
}

/// An answer to a pull, produced message by message: zero or more
/// `Chunk`s, then exactly one `Delta`. It holds a copy of what it answers
/// with (one consistent cut), so it can be encoded without the engine.
pub struct Answer {
    replica: String,
    parts: Option<Box<dyn PartStream>>,
    done: bool,
}

impl Answer {
    pub(super) fn new(replica: &str, parts: Box<dyn PartStream>) -> Answer {
        Answer {
            replica: replica.to_owned(),
            parts: Some(parts),
            done: false,
        }
    }

    /// The answer "nothing new": one empty `Delta`.
    pub(super) fn empty(replica: &str) -> Answer {
        Answer {
            replica: replica.to_owned(),
            parts: None,
            done: false,
        }
    }

    /// The replica answered.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The next message to send, `None` after the last (a `Delta`).
    ///
    /// # Errors
    /// [`SyncError::Encode`] if a part cannot be encoded; stop sending then
    /// (the requester drops what it received of this answer when the
    /// connection closes).
    pub fn next_message(&mut self) -> Option<Result<Message, SyncError>> {
        if self.done {
            return None;
        }
        let Some(parts) = &mut self.parts else {
            self.done = true;
            return Some(Ok(Message::Delta {
                replica: self.replica.clone(),
                delta: None,
                full: false,
            }));
        };
        let part = match parts.next_part() {
            Some(Ok(part)) => part,
            Some(Err(source)) => {
                self.done = true;
                return Some(Err(SyncError::Encode {
                    replica: self.replica.clone(),
                    source,
                }));
            }
            None => {
                self.done = true;
                return None;
            }
        };
        Some(Ok(match part {
            Part::Chunk(rows) => Message::Chunk {
                replica: self.replica.clone(),
                rows,
            },
            Part::Last { delta, full } => {
                self.done = true;
                Message::Delta {
                    replica: self.replica.clone(),
                    delta: Some(delta),
                    full,
                }
            }
        }))
    }

    /// Every message, encoded now.
    ///
    /// # Errors
    /// [`SyncError::Encode`] if a part cannot be encoded.
    pub fn into_messages(mut self) -> Result<Vec<Message>, SyncError> {
        let mut out = Vec::new();
        while let Some(m) = self.next_message() {
            out.push(m?);
        }
        Ok(out)
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("replica", &self.replica)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Chunks received of answers not complete yet: at most one per peer (a
/// connection carries one answer at a time, in order).
#[derive(Default)]
pub(super) struct Assembly {
    partial: HashMap<NodeId, Partial>,
}

struct Partial {
    replica: String,
    chunks: Vec<Bytes>,
    bytes: usize,
}

impl Assembly {
    /// Keeps a chunk of `from`'s answer for `replica`.
    pub(super) fn push(
        &mut self,
        from: NodeId,
        replica: String,
        rows: Bytes,
        max_bytes: usize,
    ) -> Result<(), SyncError> {
        let partial = self.partial.entry(from.clone()).or_insert_with(|| Partial {
            replica: replica.clone(),
            chunks: Vec::new(),
            bytes: 0,
        });
        if partial.replica != replica {
            // The previous answer's sequence was cut short (a protocol
            // error of the peer): start over with this one.
            tracing::warn!(peer = %from, dropped = %partial.replica, "an answer's chunks were interleaved with another's: dropped the first");
            *partial = Partial {
                replica: replica.clone(),
                chunks: Vec::new(),
                bytes: 0,
            };
        }
        partial.bytes += rows.len();
        if partial.bytes > max_bytes {
            let bytes = partial.bytes;
            self.partial.remove(&from);
            tracing::warn!(peer = %from, %replica, bytes, max_bytes, "dropping an answer larger than the limit");
            return Err(SyncError::AnswerTooLarge {
                replica,
                bytes,
                max: max_bytes,
            });
        }
        partial.chunks.push(rows);
        Ok(())
    }

    /// The chunks received before `from`'s last part for `replica`.
    pub(super) fn finish(&mut self, from: &NodeId, replica: &str) -> Vec<Bytes> {
        match self.partial.remove(from) {
            Some(p) if p.replica == replica => p.chunks,
            Some(p) => {
                tracing::warn!(peer = %from, dropped = %p.replica, %replica, "an answer ended without its own last part: dropped its chunks");
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// Drops what was received from `peer`; whether there was anything.
    pub(super) fn drop_peer(&mut self, peer: &NodeId) -> bool {
        self.partial.remove(peer).is_some()
    }
}
