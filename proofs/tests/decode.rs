//! Decoding untrusted bytes: never a panic, never a huge allocation, and
//! nothing accepted that breaks an invariant.

use std::collections::BTreeSet;

use crdt::{
    ActorId, CausalContext, CausalOrder, Changes, Delta, DeltaCrdt, Dot, Lattice, Max, Min, ORMap,
    Sibling, VersionVector, arbitrary::replicas,
};
use proofs::mutation::{mutate, mutation};
use proptest::prelude::*;
use serde::de::DeserializeOwned;

/// Decodes `bytes` as every public type; only the absence of a panic is
/// checked here (the harness fails the case on a panic).
fn decode_all(bytes: &[u8]) {
    fn try_decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
        rmp_serde::from_slice(bytes).ok()
    }
    let _ = try_decode::<ActorId>(bytes);
    let _ = try_decode::<Dot>(bytes);
    let _ = try_decode::<VersionVector>(bytes);
    let _ = try_decode::<CausalContext>(bytes);
    let _ = try_decode::<CausalOrder>(bytes);
    let _ = try_decode::<Sibling<u8>>(bytes);
    let _ = try_decode::<Changes<u8>>(bytes);
    let _ = try_decode::<Max<u64>>(bytes);
    let _ = try_decode::<Min<u64>>(bytes);
    let _ = try_decode::<BTreeSet<u8>>(bytes);
    if let Some(d) = try_decode::<Delta<u8, u8>>(bytes) {
        check_delta(&d);
    }
    if let Some(d) = try_decode::<Delta<String, Vec<u8>>>(bytes) {
        let mut m = ORMap::<String, Vec<u8>>::new(ActorId(99));
        m.join_delta(d);
    }
    if let Some(m) = try_decode::<ORMap<u8, u8>>(bytes) {
        check_map(&m);
    }
}

/// An accepted delta keeps the invariants the join relies on, and joining it
/// into a replica leaves a map that still keeps them.
fn check_delta(d: &Delta<u8, u8>) {
    let mut seen = BTreeSet::new();
    for (_, siblings) in d.iter() {
        assert!(!siblings.is_empty());
        assert!(siblings.windows(2).all(|w| w[0].dot < w[1].dot));
        for s in siblings {
            assert!(d.context().contains(s.dot));
            assert!(seen.insert(s.dot), "dot under two keys");
        }
    }
    let mut m = ORMap::<u8, u8>::new(ActorId(99));
    m.join_delta(d.clone());
    check_map(&m);
    assert_eq!(
        encode(&decode::<Delta<u8, u8>>(&encode(d))),
        encode(d),
        "canonical"
    );
}

fn check_map(m: &ORMap<u8, u8>) {
    let mut seen = BTreeSet::new();
    for (_, siblings) in m.entries() {
        for s in siblings {
            assert!(m.context().contains(s.dot));
            assert!(seen.insert(s.dot));
        }
    }
    assert_eq!(m.len(), m.iter().count());
    let back: ORMap<u8, u8> = decode(&encode(m));
    assert_eq!(&back, m);
    // the rebuilt index answers like the original
    assert_eq!(
        back.delta_since(&CausalContext::new()).map(|d| encode(&d)),
        m.delta_since(&CausalContext::new()).map(|d| encode(&d))
    );
}

fn encode<T: serde::Serialize>(t: &T) -> Vec<u8> {
    rmp_serde::to_vec(t).expect("encoding to a Vec cannot fail")
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> T {
    rmp_serde::from_slice(bytes).expect("re-decoding an encoded value")
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn mutated_encodings_never_panic_nor_break_invariants(
        r in replicas(3, 60),
        mutations in prop::collection::vec(mutation(), 1..4),
        which in 0usize..3,
    ) {
        let mut encodings = [
            encode(&r[0]),
            encode(&r[1].state()),
            encode(&r[2].delta_since(&r[0].digest()).unwrap_or_else(|| r[2].state())),
        ];
        let bytes = &mut encodings[which];
        for m in &mutations {
            mutate(bytes, m);
        }
        decode_all(bytes);
    }
}

/// Length prefixes claiming billions of elements or bytes must fail fast
/// without reserving memory for them (serde's cautious size hints: at most
/// 1 MiB is reserved up front, whatever the prefix claims).
#[test]
fn huge_length_prefixes_are_rejected_without_allocating() {
    let array32 = [0xdd, 0xff, 0xff, 0xff, 0xff];
    let map32 = [0xdf, 0xff, 0xff, 0xff, 0xff];
    let str32 = [0xdb, 0xff, 0xff, 0xff, 0xff, b'a'];
    let bin32 = [0xc6, 0xff, 0xff, 0xff, 0xff, 0x00];
    // a delta whose entry list claims 2^32-1 entries
    let delta = [&[0x94][..], &array32[..]].concat();
    for bytes in [&array32[..], &map32, &str32, &bin32, &delta] {
        decode_all(bytes);
        assert!(rmp_serde::from_slice::<Delta<String, Vec<u8>>>(bytes).is_err());
        assert!(rmp_serde::from_slice::<VersionVector>(bytes).is_err());
        assert!(rmp_serde::from_slice::<CausalContext>(bytes).is_err());
    }
}

/// Values that are well-formed msgpack but break an invariant are rejected.
#[test]
fn invariant_breaking_values_are_rejected() {
    let dot = |a, c| (ActorId(a), c);
    // counter 0
    assert!(rmp_serde::from_slice::<Dot>(&encode(&dot(1, 0))).is_err());
    // version vector: unsorted, duplicate, zero
    for vv in [
        vec![dot(2, 1), dot(1, 1)],
        vec![dot(1, 1), dot(1, 2)],
        vec![dot(1, 0)],
    ] {
        assert!(
            rmp_serde::from_slice::<VersionVector>(&encode(&vv)).is_err(),
            "{vv:?}"
        );
    }
    // a map whose sibling is outside its context
    let map = (
        ActorId(1),
        vec![(1u8, vec![(dot(1, 1), Some(1u8))])],
        (Vec::<(ActorId, u64)>::new(), Vec::<(ActorId, u64)>::new()),
        Vec::<(ActorId, u64)>::new(),
    );
    assert!(rmp_serde::from_slice::<ORMap<u8, u8>>(&encode(&map)).is_err());
    // the same map with the dot in its context is accepted
    let ok = (
        ActorId(1),
        vec![(1u8, vec![(dot(1, 1), Some(1u8))])],
        (vec![dot(1, 1)], Vec::<(ActorId, u64)>::new()),
        Vec::<(ActorId, u64)>::new(),
    );
    let m: ORMap<u8, u8> = rmp_serde::from_slice(&encode(&ok)).expect("valid");
    assert_eq!(m.get(&1), Some(&1));
    // joining a decoded map is the same as joining the original
    let mut fresh = ORMap::<u8, u8>::new(ActorId(2));
    fresh.join(&m);
    assert_eq!(fresh.get(&1), Some(&1));
}
