//! [`Causal`]: a top-level dot store with its replica's causal context, the
//! state-based lattice of every dot-store type.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

use super::DotStore;
use crate::{CausalContext, Dot, InvariantError, Lattice, VersionVector};

/// A replica's dot store paired with its one causal context: every dot the
/// replica has seen, whether it still holds it or saw it removed.
///
/// **Invariant:** every dot of the store is in the context, and no dot is
/// held in two places (a dot names one event). Every value built by
/// [`from_parts`](Self::from_parts), decoded, or joined from such values
/// keeps it; [`validate`](Self::validate) checks it.
///
/// Join ([`Lattice::join`]) is the store join under both contexts (see
/// [`DotStore::join`]), then the union of the contexts. It is associative,
/// commutative and idempotent on states reachable by mutations and joins;
/// `Default` (empty store, empty context) is bottom. A mutation is the join
/// of a delta `Causal` (its new dot at its path, and a context of that dot
/// plus the dots it removes).
///
/// This is the state-based lattice only: `delta_since`, tomb dots and the
/// purge frontier are [`Replicated`](crate::Replicated)'s (see the
/// [module docs](super#the-delta-layer)).
///
/// It encodes as `(store, context)`; decoding checks the invariant and
/// rejects the value as a whole when it fails.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Causal<S> {
    store: S,
    context: CausalContext,
}

impl<S: DotStore> Causal<S> {
    /// Bottom: an empty store under an empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pairs `store` with `context`, checking the invariant as
    /// [`validate`](Self::validate) does (for a delta, `context` is the
    /// dots it adds and the dots it removes).
    ///
    /// # Errors
    /// [`InvariantError::DotNotInContext`] when the store holds a dot the
    /// context lacks, [`InvariantError::DuplicateDot`] when it holds a dot in
    /// two places; nothing is built.
    pub fn from_parts(store: S, context: CausalContext) -> Result<Self, InvariantError> {
        let causal = Causal { store, context };
        causal.validate()?;
        Ok(causal)
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Every dot this replica has seen.
    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// The store and the context.
    pub fn into_parts(self) -> (S, CausalContext) {
        (self.store, self.context)
    }

    /// Checks the invariant: every dot of the store is in the context, and
    /// no dot is held twice (under two keys of a map). Costs
    /// O(d log d) for d dots held. Decoding calls it; values built by this
    /// crate's operations always pass.
    ///
    /// # Errors
    /// [`InvariantError::DotNotInContext`] naming the least dot the context
    /// lacks, else [`InvariantError::DuplicateDot`] naming the least dot
    /// held twice. Nothing is changed.
    pub fn validate(&self) -> Result<(), InvariantError> {
        let mut dots: Vec<Dot> = Vec::with_capacity(self.store.dot_count());
        self.store.dots(&mut |d| dots.push(d));
        crate::error::check_dots(&mut dots, &self.context, &VersionVector::new())?;
        Ok(())
    }
}

impl<S: DotStore> Lattice for Causal<S> {
    fn join(&mut self, other: &Self) {
        self.store.join(&self.context, &other.store, &other.context);
        self.context.join(&other.context);
    }
}

/// The encoded form, borrowed.
#[derive(Serialize)]
struct CausalRef<'a, S> {
    store: &'a S,
    context: &'a CausalContext,
}

/// The encoded form, decoded before the invariant is checked.
#[derive(Deserialize)]
struct CausalWire<S> {
    store: S,
    context: CausalContext,
}

impl<S: Serialize> Serialize for Causal<S> {
    fn serialize<Ser: Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        CausalRef {
            store: &self.store,
            context: &self.context,
        }
        .serialize(s)
    }
}

impl<'de, S> Deserialize<'de> for Causal<S>
where
    S: Deserialize<'de> + DotStore,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = CausalWire::<S>::deserialize(d)?;
        Causal::from_parts(wire.store, wire.context).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ActorId,
        dot_store::{DotMap, DotSet},
    };

    fn dot(a: u64, c: u64) -> Dot {
        Dot::new(ActorId(a), c).expect("non-zero")
    }

    fn ctx(dots: &[Dot]) -> CausalContext {
        let mut c = CausalContext::new();
        c.extend(dots.iter().copied());
        c
    }

    #[test]
    fn from_parts_rejects_dots_outside_the_context_and_dots_held_twice() {
        let store: DotSet = [dot(1, 1), dot(1, 2)].into_iter().collect();
        assert_eq!(
            Causal::from_parts(store.clone(), ctx(&[dot(1, 1)])),
            Err(InvariantError::DotNotInContext {
                actor: 1,
                counter: 2
            })
        );
        assert!(Causal::from_parts(store, ctx(&[dot(1, 1), dot(1, 2)])).is_ok());

        let one: DotSet = [dot(2, 1)].into_iter().collect();
        let twice: DotMap<u8, DotSet> = [(1, one.clone()), (2, one)].into_iter().collect();
        assert_eq!(
            Causal::from_parts(twice, ctx(&[dot(2, 1)])),
            Err(InvariantError::DuplicateDot {
                actor: 2,
                counter: 1
            })
        );
    }

    #[test]
    fn decoding_checks_the_invariant() {
        let store: DotSet = [dot(1, 3)].into_iter().collect();
        let bytes = rmp_serde::to_vec(&(store.clone(), ctx(&[dot(1, 1)]))).expect("encode");
        let err = rmp_serde::from_slice::<Causal<DotSet>>(&bytes).expect_err("dot outside");
        assert!(err.to_string().contains("1:3"), "{err}");

        let good = Causal::from_parts(store, ctx(&[dot(1, 3)])).expect("valid");
        let bytes = rmp_serde::to_vec(&good).expect("encode");
        assert_eq!(
            rmp_serde::from_slice::<Causal<DotSet>>(&bytes).expect("decode"),
            good
        );
    }
}
