//! Join-semilattices, dots, causal contexts, and delta-state CRDTs on one
//! causal dot-store core.
//!
//! The building blocks of coordination-free replicated state:
//!
//! * [`Lattice`]: a join-semilattice, with [`Max`], [`Min`] and set union.
//! * [`ActorId`], [`Dot`], [`VersionVector`], [`CausalContext`]: who did
//!   what, and what a replica has seen.
//! * [`dot_store`]: causal dot stores ([`DotSet`], [`DotFun`], [`DotMap`])
//!   and their one join rule; [`Replicated`]: the delta layer on them (tomb
//!   dots, a dot index for `delta_since` in O(delta), purge and frontier).
//! * [`types`]: the palette, each a [`Replicated`]: [`GCounter`],
//!   [`PNCounter`], [`AWSet`], [`EWFlag`], [`DWFlag`], [`MVReg`],
//!   [`LwwReg`], and [`Map`]s of any of them (maps of maps included).
//! * [`ORMap`]: a delta-state observed-remove map with dotted siblings per
//!   key and a pluggable [`Tiebreak`] ([`ActorOrder`], [`LastWriterWins`], or
//!   your own) that resolves concurrent writes at read time.
//! * [`DeltaCrdt`]: digest → `delta_since` → `join_delta`, the contract pull
//!   anti-entropy (the `sync` crate) programs against.
//! * [`Rows`]: a replica's state and answers as one row per key plus a head,
//!   so that `sync` stores it key by key and sends large answers in pieces.
//!
//! # Example
//!
//! Two replicas write concurrently, then each pulls from the other by sending
//! its digest and joining the answer. They end up reading the same map.
//!
//! ```
//! use crdt::{ActorId, DeltaCrdt, ORMap};
//!
//! let mut a: ORMap<String, u32> = ORMap::new(ActorId(1));
//! let mut b: ORMap<String, u32> = ORMap::new(ActorId(2));
//!
//! a.insert("apples".into(), 3);
//! b.insert("apples".into(), 5); // concurrent with a's write
//! b.insert("pears".into(), 7);
//! a.remove(&"apples".to_string()); // removes only what a has seen
//!
//! // a pulls from b, then b pulls from a.
//! if let Some(delta) = b.delta_since(&a.digest()) {
//!     a.join_delta(delta);
//! }
//! if let Some(delta) = a.delta_since(&b.digest()) {
//!     b.join_delta(delta);
//! }
//!
//! assert_eq!(a, b);
//! // b's concurrent write survives a's remove of the value a had seen.
//! assert_eq!(a.get(&"apples".to_string()), Some(&5));
//! assert_eq!(b.get(&"pears".to_string()), Some(&7));
//! // Nothing is left to send.
//! assert!(a.delta_since(&b.digest()).is_none());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

#[cfg(feature = "proptest")]
pub mod arbitrary;
mod causal_context;
mod delta_crdt;
mod dot;
pub mod dot_store;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod lattice;
pub mod ormap;
pub mod replicated;
mod rows;
mod tiebreak;
pub mod types;
mod version_vector;

pub use causal_context::CausalContext;
pub use delta_crdt::{Changes, DeltaCrdt};
pub use dot::{ActorId, Dot, MAX_COUNTER};
pub use dot_store::{Causal, DotFun, DotMap, DotSet, DotStore};
pub use error::InvariantError;
pub use lattice::{Lattice, Max, Min};
pub use ormap::{Delta, ORMap, Sibling, Siblings};
pub use replicated::{Effect, Embed, Entry, Replicated};
pub use rows::{KeyedRows, Rows};
pub use tiebreak::{ActorOrder, Candidate, LastWriterWins, Tiebreak, Timestamped};
pub use types::{
    AWSet, Count, DWFlag, DisableWins, EWFlag, EnableWins, GCounter, GrowOnly, Lww, LwwReg, MVReg,
    Map, MapOf, MapOp, MultiValue, PNCounter, PosNeg, Presence, SetOf, SetOp, Totals,
};
pub use version_vector::{CausalOrder, VersionVector};
