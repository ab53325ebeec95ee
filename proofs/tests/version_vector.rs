//! Laws of `VersionVector`.

use crdt::{CausalOrder, Lattice, VersionVector, arbitrary::version_vector};
use proptest::prelude::*;

proptest! {
    #[test]
    fn join_is_associative_commutative_idempotent(
        a in version_vector(), b in version_vector(), c in version_vector()
    ) {
        prop_assert_eq!(a.clone().joined(&b).joined(&c), a.clone().joined(&b.clone().joined(&c)));
        prop_assert_eq!(a.clone().joined(&b), b.clone().joined(&a));
        prop_assert_eq!(a.clone().joined(&a), a.clone());
        prop_assert_eq!(VersionVector::new().joined(&a), a, "bottom is identity");
    }

    #[test]
    fn order_agrees_with_join_and_causal_comparison(a in version_vector(), b in version_vector()) {
        let leq = a.clone().joined(&b) == b;
        prop_assert_eq!(a.leq(&b), leq);
        let expected = match (a.leq(&b), b.leq(&a)) {
            (true, true) => CausalOrder::Equal,
            (true, false) => CausalOrder::Before,
            (false, true) => CausalOrder::After,
            (false, false) => CausalOrder::Concurrent,
        };
        prop_assert_eq!(a.causal_cmp(&b), expected);
    }

    #[test]
    fn meet_is_the_greatest_lower_bound(a in version_vector(), b in version_vector(), c in version_vector()) {
        let m = a.meet(&b);
        prop_assert!(m.leq(&a) && m.leq(&b));
        // any common lower bound is below the meet
        let lower = c.meet(&a).meet(&b);
        prop_assert!(lower.leq(&m));
    }

    #[test]
    fn increment_inflates_and_contains_the_new_dot(a in version_vector(), actor in crdt::arbitrary::actor_id()) {
        let mut b = a.clone();
        let dot = b.increment(actor);
        prop_assert!(a.leq(&b) && a != b);
        prop_assert!(b.contains(dot) && !a.contains(dot));
    }

    #[test]
    fn encoding_round_trips(a in version_vector()) {
        let bytes = rmp_serde::to_vec(&a).expect("encode");
        prop_assert_eq!(rmp_serde::from_slice::<VersionVector>(&bytes).expect("decode"), a);
    }
}
