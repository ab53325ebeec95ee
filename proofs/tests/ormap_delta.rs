//! Laws of ORMap mutator deltas: they form a lattice (delta groups), and a
//! replica's deltas, joined in order into its earlier state, rebuild it.

use crdt::{
    Delta, DeltaCrdt, Lattice,
    arbitrary::{MapOp, apply, map_op, replay},
};
use proptest::prelude::*;

/// Replays a history and collects every mutator delta it produced, with the
/// index of the writing replica.
fn deltas(ops: &[MapOp]) -> Vec<(usize, Delta<u8, u8>)> {
    let mut maps = replay(3, &[]);
    let mut out = Vec::new();
    for op in ops {
        match *op {
            MapOp::Insert {
                replica,
                key,
                value,
            } => out.push((replica, maps[replica].insert(key, value))),
            MapOp::Remove { replica, key } => {
                if let Some(d) = maps[replica].remove(&key) {
                    out.push((replica, d));
                }
            }
            ref op => apply(&mut maps, op),
        }
    }
    out
}

proptest! {
    #[test]
    fn mutator_deltas_form_a_lattice(
        ops in prop::collection::vec(map_op(3, 6), 1..60),
        picks in (any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<prop::sample::Index>()),
    ) {
        let all = deltas(&ops);
        prop_assume!(!all.is_empty());
        let a = &all[picks.0.index(all.len())].1;
        let b = &all[picks.1.index(all.len())].1;
        let c = &all[picks.2.index(all.len())].1;
        prop_assert_eq!(a.clone().joined(b).joined(c), a.clone().joined(&b.clone().joined(c)));
        prop_assert_eq!(a.clone().joined(b), b.clone().joined(a));
        prop_assert_eq!(a.clone().joined(a), a.clone());
    }

    #[test]
    fn a_delta_group_joined_in_causal_order_rebuilds_the_writer(
        ops in prop::collection::vec(map_op(3, 6), 0..40),
        writes in prop::collection::vec((0u8..6, proptest::option::of(any::<u8>())), 1..20),
    ) {
        // A replica's own consecutive deltas are causally ordered: their group
        // joined into the starting state gives the final state.
        let start = replay(3, &ops).remove(0);
        let mut writer = start.clone();
        let mut group: Option<Delta<u8, u8>> = None;
        for (key, value) in writes {
            let d = match value {
                Some(v) => Some(writer.insert(key, v)),
                None => writer.remove(&key),
            };
            if let Some(d) = d {
                group = Some(match group {
                    Some(g) => g.joined(&d),
                    None => d,
                });
            }
        }
        let mut rebuilt = start;
        if let Some(g) = group {
            rebuilt.join_delta(g);
        }
        prop_assert_eq!(rebuilt, writer);
    }
}
