//! Laws of the small lattices: `Max`, `Min`, set union.

use std::collections::BTreeSet;

use crdt::{Lattice, Max, Min};
use proptest::prelude::*;

fn laws<L: Lattice + std::fmt::Debug>(a: &L, b: &L, c: &L) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        a.clone().joined(b).joined(c),
        a.clone().joined(&b.clone().joined(c))
    );
    prop_assert_eq!(a.clone().joined(b), b.clone().joined(a));
    prop_assert_eq!(a.clone().joined(a), a.clone());
    let ab = a.clone().joined(b);
    prop_assert!(a.leq(&ab) && b.leq(&ab));
    prop_assert_eq!(a.leq(b), a.clone().joined(b) == *b);
    Ok(())
}

proptest! {
    #[test]
    fn max_is_a_lattice(a: u32, b: u32, c: u32) {
        laws(&Max(a), &Max(b), &Max(c))?;
        prop_assert_eq!(Max::<u32>::default().joined(&Max(a)), Max(a), "bottom is identity");
    }

    #[test]
    fn min_is_a_lattice(a: i64, b: i64, c: i64) {
        laws(&Min(a), &Min(b), &Min(c))?;
    }

    #[test]
    fn set_union_is_a_lattice(a: BTreeSet<u8>, b: BTreeSet<u8>, c: BTreeSet<u8>) {
        laws(&a, &b, &c)?;
        prop_assert_eq!(BTreeSet::new().joined(&a), a);
    }
}
