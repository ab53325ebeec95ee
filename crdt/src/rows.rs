//! [`Rows`]: a replica whose state and answers are made of independent rows,
//! one per key, plus a head. What lets a replica be stored key by key and
//! sent in pieces.

use serde::{Serialize, de::DeserializeOwned};

use crate::{ActorId, DeltaCrdt, InvariantError};

/// The rows of a [`Rows`] replica or answer: `(key, row)` pairs, ascending
/// by key.
pub type KeyedRows<T> = Vec<(<T as DeltaCrdt>::Key, <T as Rows>::Row)>;

/// A [`DeltaCrdt`] whose state splits into one *row* per key (everything the
/// replica holds for that key) and a *head* (what is not per key: the causal
/// context, the purge frontier), owned by one actor.
///
/// Two uses, both in the `sync` crate:
/// * **Storage, row by row.** A store persists [`row`](Self::row) for the
///   keys [`take_touched`](Self::take_touched) reports, and the
///   [`head`](Self::head), from one consistent cut (taken without any change
///   in between); at start it rebuilds the replica with
///   [`restore`](Self::restore). A change costs a write of the keys it
///   touched, not of the whole state.
/// * **Answers in pieces.** An answer too large for one frame is
///   [`split`](Self::split) into rows sent in chunks and reassembled with
///   [`assemble`](Self::assemble) into the same answer, then joined as one
///   (never joined piece by piece: the head covers keys of every piece).
///
/// Contract for implementors:
/// * `assemble(split(d))` MUST equal `d`, whatever the order in which the
///   rows are split into groups, as long as they are given back in their
///   original order;
/// * `assemble` MUST validate its input as decoding does (an invariant
///   broken by a peer or a corrupt store is an error, never a panic) and
///   build nothing on error;
/// * after `restore(head, rows)` from the head and rows of a consistent cut
///   of a replica `r`, the replica MUST equal `r`;
/// * the touched set MUST name every key whose row changed (by a mutator, a
///   join or a purge) since the last [`take_touched`](Self::take_touched)
///   while tracking is on.
pub trait Rows: DeltaCrdt {
    /// One key's stored state (for the ORMap: its siblings).
    type Row: Serialize + DeserializeOwned + Send + 'static;
    /// Everything that is not a row (for the ORMap: the causal context and
    /// the purge frontier).
    type Head: Serialize + DeserializeOwned + Send + 'static;

    /// The actor this replica mints dots for.
    fn actor(&self) -> ActorId;

    /// Makes the replica mint its next dots for `actor`. Only for an owner
    /// that finds its actor cannot be trusted (a store older than what its
    /// peers have seen of it) before it minted anything with it; the state
    /// is unchanged.
    fn set_actor(&mut self, actor: ActorId);

    /// The highest counter of `actor` this replica has seen. Cheap (no copy
    /// of the context).
    fn max_counter(&self, actor: ActorId) -> u64;

    /// The head of the current state.
    fn head(&self) -> Self::Head;

    /// The row of `key`, or `None` when the replica holds nothing for it
    /// (never written, or purged): a store deletes it.
    fn row(&self, key: &Self::Key) -> Option<Self::Row>;

    /// Every row of the current state, ascending by key.
    fn rows(&self) -> KeyedRows<Self>;

    /// Starts (or stops) recording which keys' rows change.
    fn track_touched(&mut self, on: bool);

    /// The keys whose rows changed since the last call (ascending, each
    /// once), and forgets them. Empty while tracking is off.
    fn take_touched(&mut self) -> Vec<Self::Key>;

    /// Splits an answer (or a full state) into its head, whether it is a
    /// full state, and its rows, ascending by key.
    fn split(delta: Self::Delta) -> (Self::Head, bool, KeyedRows<Self>);

    /// Rebuilds an answer from [`split`](Self::split)'s parts.
    ///
    /// # Errors
    /// [`InvariantError`] if the parts break an invariant (e.g. keys out of
    /// order, a row's dot outside the head's context); nothing is built.
    fn assemble(
        head: Self::Head,
        full: bool,
        rows: KeyedRows<Self>,
    ) -> Result<Self::Delta, InvariantError>;

    /// Replaces this (empty) replica's state with the stored `head` and
    /// `rows`, keeping its actor: a full-state join of the assembled parts.
    ///
    /// # Errors
    /// [`InvariantError`] as for [`assemble`](Self::assemble); the replica is
    /// unchanged.
    fn restore(&mut self, head: Self::Head, rows: KeyedRows<Self>) -> Result<(), InvariantError> {
        let state = Self::assemble(head, true, rows)?;
        self.join_delta(state);
        Ok(())
    }
}
