//! Replicas registered by name, behind one object-safe interface so that one
//! engine (and one connection) serves replicas of different types.
//!
//! Everything that needs the replica's type happens here: encoding answers
//! (in chunks when large), decoding and joining them, encoding rows and heads
//! for the store and restoring from them.

use std::{any::Any, collections::BTreeSet};

use bytes::Bytes;
use crdt::{ActorId, CausalContext, KeyedRows, Rows, VersionVector};
use serde::Serialize;

use crate::storage::{ReplicaCommit, StoredReplica};

/// Why an answer, a chunk or a stored replica could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PartError {
    /// Not valid msgpack for this replica's types, or an invariant broken.
    #[error(transparent)]
    Decode(#[from] rmp_serde::decode::Error),
    /// The parts decoded but do not assemble into a valid answer.
    #[error(transparent)]
    Invariant(#[from] crdt::InvariantError),
}

/// One piece of an answer, encoded, ready to be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Rows of the answer (a msgpack array of `(key, row)` pairs); more
    /// follow.
    Chunk(Bytes),
    /// The answer's last part: an encoded delta carrying the remaining rows
    /// and the head; `full` if it is a full state.
    Last { delta: Bytes, full: bool },
}

/// An answer being encoded piece by piece: a copy of the answer's rows and
/// head taken under the engine lock (one consistent cut), encoded into
/// chunks of about `chunk_bytes` outside it.
pub(crate) trait PartStream: Send {
    /// The next piece, `None` after the last.
    fn next_part(&mut self) -> Option<Result<Part, rmp_serde::encode::Error>>;
}

/// What the engine needs from a replica, with its types erased to bytes.
pub(crate) trait ErasedReplica: Send {
    fn digest(&self) -> CausalContext;
    fn actor(&self) -> ActorId;
    fn set_actor(&mut self, actor: ActorId);
    fn max_counter(&self, actor: ActorId) -> u64;
    /// The `delta_since` answer to `digest`, to be encoded in pieces of
    /// about `chunk_bytes`; `None` when there is nothing to send. The second
    /// value says whether it is a full state.
    fn answer(
        &self,
        digest: &CausalContext,
        chunk_bytes: usize,
    ) -> Option<(Box<dyn PartStream>, bool)>;
    /// The replica's purge frontier.
    fn frontier(&self) -> VersionVector;
    /// The answer that ships only the context and the purge frontier (see
    /// [`DeltaCrdt::frontier_answer`]); `None` if the frontier is empty.
    fn frontier_answer(&self, chunk_bytes: usize) -> Option<(Box<dyn PartStream>, bool)>;
    /// Decodes and joins an answer made of `chunks` (rows, in order) and its
    /// `last` part (head and the remaining rows); `full` if it is a full
    /// state. Returns whether anything was learned. On an error the replica
    /// is unchanged.
    fn join(&mut self, chunks: &[Bytes], last: &[u8], full: bool) -> Result<bool, PartError>;
    fn purge(&mut self, stable: &CausalContext) -> usize;
    /// A local write changed the replica since `before` (its digest then):
    /// if it is watched, its keys are noted for the watchers.
    fn note_write(&mut self, before: &CausalContext);
    /// The rows of the keys touched since the last call and the head, from
    /// this one state (a consistent cut), for replica `name`.
    fn commit_rows(&mut self, name: &str) -> Result<ReplicaCommit, rmp_serde::encode::Error>;
    /// Every row and the head (a replica's first commit).
    fn all_rows(&mut self, name: &str) -> Result<ReplicaCommit, rmp_serde::encode::Error>;
    /// Marks the keys of `rows` (encoded) as touched again, after their
    /// commit failed.
    fn retouch(&mut self, rows: &[(Vec<u8>, Option<Vec<u8>>)]);
    /// Replaces the (empty) state with a stored one.
    fn restore(&mut self, stored: &StoredReplica) -> Result<(), PartError>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A registered replica, and the keys whose visible value changed through
/// joins since the app last took them (a set: bounded by the key count).
pub(crate) struct Slot<T: Rows> {
    pub(crate) replica: T,
    pub(crate) changed: BTreeSet<T::Key>,
    /// Keys to rewrite at the next commit whose last commit failed.
    pub(crate) retry: BTreeSet<T::Key>,
    /// While watched: the keys changed by joins and local writes since the
    /// watchers last took them (a set: bounded by the key count).
    pub(crate) watched: Option<BTreeSet<T::Key>>,
}

impl<T: Rows> Slot<T> {
    pub(crate) fn new(replica: T) -> Self {
        Slot {
            replica,
            changed: BTreeSet::new(),
            retry: BTreeSet::new(),
            watched: None,
        }
    }
}

/// The [`PartStream`] of a typed answer.
///
/// Layout: a chunk is a msgpack array of `(key, row)` pairs; the last part
/// is the pair `(head, rows)`. An answer that fits in one chunk is one last
/// part. The receiver concatenates the rows of every part in order and
/// assembles them with the head ([`Rows::assemble`]).
struct TypedParts<T: Rows> {
    head: Option<T::Head>,
    full: bool,
    rows: std::vec::IntoIter<(T::Key, T::Row)>,
    chunk_bytes: usize,
}

impl<T> PartStream for TypedParts<T>
where
    T: Rows + Send,
    T::Key: Serialize + Send,
{
    fn next_part(&mut self) -> Option<Result<Part, rmp_serde::encode::Error>> {
        self.head.as_ref()?;
        let mut body = Vec::new();
        let mut count: u32 = 0;
        while body.len() < self.chunk_bytes {
            let Some(row) = self.rows.next() else {
                break;
            };
            if let Err(e) = rmp_serde::encode::write(&mut body, &row) {
                return Some(Err(e));
            }
            count += 1;
        }
        let more = self.rows.len() > 0;
        let mut out = Vec::with_capacity(body.len() + 16);
        if !more {
            let head = self.head.take()?;
            let written = rmp::encode::write_array_len(&mut out, 2)
                .map_err(rmp_serde::encode::Error::InvalidValueWrite)
                .and_then(|_| rmp_serde::encode::write(&mut out, &head));
            if let Err(e) = written {
                return Some(Err(e));
            }
        }
        if let Err(e) = rmp::encode::write_array_len(&mut out, count) {
            return Some(Err(rmp_serde::encode::Error::InvalidValueWrite(e)));
        }
        out.extend_from_slice(&body);
        let out = Bytes::from(out);
        Some(Ok(if more {
            Part::Chunk(out)
        } else {
            Part::Last {
                delta: out,
                full: self.full,
            }
        }))
    }
}

/// An answer, to be encoded in pieces of about `chunk_bytes`, and whether
/// it is a full state.
fn parts<T>(delta: T::Delta, chunk_bytes: usize) -> (Box<dyn PartStream>, bool)
where
    T: Rows + Send + 'static,
    T::Delta: Serialize + serde::de::DeserializeOwned,
    T::Key: Ord + Clone + Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let (head, full, rows) = T::split(delta);
    (
        Box::new(TypedParts::<T> {
            head: Some(head),
            full,
            rows: rows.into_iter(),
            chunk_bytes: chunk_bytes.max(1),
        }),
        full,
    )
}

impl<T> ErasedReplica for Slot<T>
where
    T: Rows + Send + 'static,
    T::Delta: Serialize + serde::de::DeserializeOwned,
    T::Key: Ord + Clone + Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    fn digest(&self) -> CausalContext {
        self.replica.digest()
    }

    fn actor(&self) -> ActorId {
        self.replica.actor()
    }

    fn set_actor(&mut self, actor: ActorId) {
        self.replica.set_actor(actor);
    }

    fn max_counter(&self, actor: ActorId) -> u64 {
        self.replica.max_counter(actor)
    }

    fn answer(
        &self,
        digest: &CausalContext,
        chunk_bytes: usize,
    ) -> Option<(Box<dyn PartStream>, bool)> {
        let delta = self.replica.delta_since(digest)?;
        Some(parts::<T>(delta, chunk_bytes))
    }

    fn frontier(&self) -> VersionVector {
        self.replica.purge_frontier()
    }

    fn frontier_answer(&self, chunk_bytes: usize) -> Option<(Box<dyn PartStream>, bool)> {
        let delta = self.replica.frontier_answer()?;
        Some(parts::<T>(delta, chunk_bytes))
    }

    fn join(&mut self, chunks: &[Bytes], last: &[u8], full: bool) -> Result<bool, PartError> {
        let (head, tail): (T::Head, KeyedRows<T>) = rmp_serde::from_slice(last)?;
        let rows = if chunks.is_empty() {
            tail
        } else {
            let mut rows: Vec<(T::Key, T::Row)> = Vec::new();
            for chunk in chunks {
                rows.extend(rmp_serde::from_slice::<Vec<(T::Key, T::Row)>>(chunk)?);
            }
            rows.extend(tail);
            rows
        };
        let delta = T::assemble(head, full, rows)?;
        let changes = self.replica.join_delta(delta);
        let learned = changes.learned();
        let keys = changes.into_keys();
        if let Some(watched) = &mut self.watched {
            watched.extend(keys.iter().cloned());
        }
        self.changed.extend(keys);
        Ok(learned)
    }

    fn purge(&mut self, stable: &CausalContext) -> usize {
        self.replica.purge(stable)
    }

    fn note_write(&mut self, before: &CausalContext) {
        let Some(watched) = &mut self.watched else {
            return;
        };
        // The keys of the write: those its delta carries.
        if let Some(delta) = self.replica.delta_since(before) {
            let (_, _, rows) = T::split(delta);
            watched.extend(rows.into_iter().map(|(key, _)| key));
        }
    }

    fn commit_rows(&mut self, name: &str) -> Result<ReplicaCommit, rmp_serde::encode::Error> {
        let mut keys: BTreeSet<T::Key> = std::mem::take(&mut self.retry);
        keys.extend(self.replica.take_touched());
        let mut rows = Vec::with_capacity(keys.len());
        for key in &keys {
            let row = match self.replica.row(key) {
                Some(row) => Some(rmp_serde::to_vec(&row)?),
                None => None,
            };
            rows.push((rmp_serde::to_vec(key)?, row));
        }
        Ok(ReplicaCommit {
            name: name.to_owned(),
            head: rmp_serde::to_vec(&self.replica.head())?,
            rows,
        })
    }

    fn all_rows(&mut self, name: &str) -> Result<ReplicaCommit, rmp_serde::encode::Error> {
        let _ = self.replica.take_touched();
        self.retry.clear();
        let mut rows = Vec::new();
        for (key, row) in self.replica.rows() {
            rows.push((rmp_serde::to_vec(&key)?, Some(rmp_serde::to_vec(&row)?)));
        }
        Ok(ReplicaCommit {
            name: name.to_owned(),
            head: rmp_serde::to_vec(&self.replica.head())?,
            rows,
        })
    }

    fn retouch(&mut self, rows: &[(Vec<u8>, Option<Vec<u8>>)]) {
        for (key, _) in rows {
            if let Ok(key) = rmp_serde::from_slice::<T::Key>(key) {
                self.retry.insert(key);
            }
        }
    }

    fn restore(&mut self, stored: &StoredReplica) -> Result<(), PartError> {
        let head: T::Head = rmp_serde::from_slice(&stored.head)?;
        let mut rows = Vec::with_capacity(stored.rows.len());
        for (key, row) in &stored.rows {
            rows.push((
                rmp_serde::from_slice::<T::Key>(key)?,
                rmp_serde::from_slice::<T::Row>(row)?,
            ));
        }
        // Stored keys are ordered by their encoding, not by `Ord`.
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        self.replica.restore(head, rows)?;
        let _ = self.replica.take_touched();
        self.changed.clear();
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
