//! Rendezvous (highest random weight) hashing: which agent owns an origin.
//!
//! `weight(node, origin)` is XXH3-64 (seed 0) of a canonical encoding of both
//! names: a version tag, then each name as a little-endian `u32` length and
//! its UTF-8 bytes. It is fixed across versions, platforms and processes (no
//! `DefaultHasher`, no random seed): the golden vectors below pin it, and a
//! change to them is a change of every origin's owner in a mixed-version
//! cluster. The ranked list of an origin orders nodes by weight, highest
//! first, ties broken by name.

use xxhash_rust::xxh3::xxh3_64;

const TAG: &[u8] = b"vantage-rendezvous-v1";

/// The weight of `node` for `origin`.
pub fn weight(node: &str, origin: &str) -> u64 {
    let len = TAG.len() + 8 + node.len() + origin.len();
    // Names are short: hash from the stack (this runs for every origin and
    // member on every view change).
    let mut stack = [0u8; 256];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    let mut at = 0;
    for part in [
        TAG,
        &(node.len() as u32).to_le_bytes(),
        node.as_bytes(),
        &(origin.len() as u32).to_le_bytes(),
        origin.as_bytes(),
    ] {
        buf[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    xxh3_64(buf)
}

/// Whether `a` ranks above `b` for `origin`.
pub fn outranks(a: &str, b: &str, origin: &str) -> bool {
    (weight(a, origin), std::cmp::Reverse(a)) > (weight(b, origin), std::cmp::Reverse(b))
}

/// `nodes` ranked for `origin`: the owner first.
pub fn rank<'a, S: AsRef<str>>(origin: &str, nodes: &'a [S]) -> Vec<&'a str> {
    let mut ranked: Vec<(u64, &str)> = nodes
        .iter()
        .map(|n| (weight(n.as_ref(), origin), n.as_ref()))
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    ranked.dedup_by(|a, b| a.1 == b.1);
    ranked.into_iter().map(|(_, n)| n).collect()
}

/// The owner of `origin` among `nodes`, if any.
pub fn owner<'a, S: AsRef<str>>(origin: &str, nodes: &'a [S]) -> Option<&'a str> {
    nodes
        .iter()
        .map(AsRef::as_ref)
        .reduce(|best, n| if outranks(n, best, origin) { n } else { best })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// Golden vectors: these values must never change. They were computed
    /// independently with Python's `xxhash` package:
    /// `xxh3_64_intdigest(b"vantage-rendezvous-v1" + le32(len(n)) + n + le32(len(o)) + o)`.
    #[test]
    fn golden_vectors() {
        let cases = [
            ("hc-1", "origin-1", 0xe8c5_8446_87a2_ea18u64),
            ("hc-2", "origin-1", 0x0dd5_2a33_12a0_39dd),
            ("hc-1", "origin-2", 0xedb3_3f8a_3d53_8012),
            ("", "", 0x857d_f530_9920_e755),
            ("ä-node", "https://x/ü", 0x9a6d_d3b5_2ef3_a515),
        ];
        let got: Vec<String> = cases
            .iter()
            .map(|(n, o, _)| format!("(\"{n}\", \"{o}\", 0x{:016x})", weight(n, o)))
            .collect();
        for ((n, o, w), line) in cases.iter().zip(&got) {
            assert_eq!(weight(n, o), *w, "weight changed; now {line}");
        }
        // the length prefixes keep ("ab","c") and ("a","bc") apart
        assert_ne!(weight("ab", "c"), weight("a", "bc"));
        assert_eq!(
            rank("origin-1", &["hc-1", "hc-2", "hc-3"]),
            vec!["hc-1", "hc-3", "hc-2"]
        );
    }

    fn nodes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("node-{i}")).collect()
    }

    #[test]
    fn balance_at_170_nodes_and_50k_origins() {
        let nodes = nodes(170);
        let mut owned: HashMap<&str, usize> = HashMap::new();
        for o in 0..50_000 {
            let origin = format!("origin-{o}");
            *owned
                .entry(owner(&origin, &nodes).expect("nodes"))
                .or_default() += 1;
        }
        let mean = 50_000.0 / 170.0;
        let max = *owned.values().max().expect("nodes") as f64;
        assert_eq!(owned.len(), 170, "every node owns something");
        assert!(max / mean <= 1.25, "max/mean = {:.3}", max / mean);
    }

    proptest! {
        #[test]
        fn removing_a_node_moves_only_its_origins_and_keeps_the_order(
            n in 2usize..40, gone in any::<prop::sample::Index>(), origins in prop::collection::vec("[a-z0-9]{1,12}", 1..50)
        ) {
            let all = nodes(n);
            let gone = gone.get(&all).clone();
            let rest: Vec<String> = all.iter().filter(|x| **x != gone).cloned().collect();
            for o in &origins {
                let before = rank(o, &all);
                let after = rank(o, &rest);
                let expected: Vec<&str> = before.iter().copied().filter(|x| *x != gone).collect();
                prop_assert_eq!(&after, &expected);
                if before[0] != gone {
                    prop_assert_eq!(after[0], before[0]);
                }
            }
        }

        #[test]
        fn adding_a_node_moves_origins_only_onto_it(
            n in 1usize..40, origins in prop::collection::vec("[a-z0-9]{1,12}", 1..50)
        ) {
            let before_nodes = nodes(n);
            let mut after_nodes = before_nodes.clone();
            after_nodes.push("newcomer".into());
            for o in &origins {
                let before = owner(o, &before_nodes).expect("nodes");
                let after = owner(o, &after_nodes).expect("nodes");
                prop_assert!(after == before || after == "newcomer");
                prop_assert_eq!(rank(o, &after_nodes)[0], after);
            }
        }
    }
}
