//! Replicas registered by name, behind one object-safe interface so that one
//! engine (and one connection) serves replicas of different types.

use std::{any::Any, collections::BTreeSet};

use bytes::Bytes;
use crdt::{CausalContext, DeltaCrdt};
use serde::{Serialize, de::DeserializeOwned};

/// What the engine needs from a replica, with its delta type erased to bytes.
pub(crate) trait ErasedReplica: Send {
    fn digest(&self) -> CausalContext;
    /// The encoded `delta_since` answer and whether it is a full state.
    fn answer(
        &self,
        digest: &CausalContext,
    ) -> Result<Option<(Bytes, bool)>, rmp_serde::encode::Error>;
    /// Decodes and joins an answer; returns whether anything was learned.
    /// On a decode error the replica is unchanged.
    fn join(&mut self, answer: &[u8]) -> Result<bool, rmp_serde::decode::Error>;
    fn purge(&mut self, stable: &CausalContext) -> usize;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A registered replica, the keys whose visible value changed through joins
/// since the app last took them, and the keys whose stored state changed
/// (sets: bounded by the key count).
pub(crate) struct Slot<T: DeltaCrdt> {
    pub(crate) replica: T,
    pub(crate) changed: BTreeSet<T::Key>,
    pub(crate) touched: BTreeSet<T::Key>,
}

impl<T> ErasedReplica for Slot<T>
where
    T: DeltaCrdt + Send + 'static,
    T::Delta: Serialize + DeserializeOwned,
    T::Key: Ord + Send + 'static,
{
    fn digest(&self) -> CausalContext {
        self.replica.digest()
    }

    fn answer(
        &self,
        digest: &CausalContext,
    ) -> Result<Option<(Bytes, bool)>, rmp_serde::encode::Error> {
        let Some(delta) = self.replica.delta_since(digest) else {
            return Ok(None);
        };
        let full = T::is_full_state(&delta);
        Ok(Some((Bytes::from(rmp_serde::to_vec(&delta)?), full)))
    }

    fn join(&mut self, answer: &[u8]) -> Result<bool, rmp_serde::decode::Error> {
        let delta: T::Delta = rmp_serde::from_slice(answer)?;
        let changes = self.replica.join_delta(delta);
        let learned = changes.learned();
        let (changed, touched) = changes.into_parts();
        self.changed.extend(changed);
        self.touched.extend(touched);
        Ok(learned)
    }

    fn purge(&mut self, stable: &CausalContext) -> usize {
        self.replica.purge(stable)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
