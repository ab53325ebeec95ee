//! The body of the `crdt_decode` fuzz target and the invariant checks it is
//! made of (behind the `fuzzing` feature): `fuzz/fuzz_targets/crdt_decode.rs`
//! runs [`crdt_decode`] under libFuzzer (with an allocator that measures),
//! and `tests/fuzz_decode.rs` runs it and the checks on generated input
//! under `cargo test`, so each check is written once.
//!
//! What arrives over the wire is decoded with rmp-serde as
//! `VersionVector`, `CausalContext`, `Delta` and `ORMap`. Decoding must never
//! panic, and whatever is accepted must keep the invariants the crate
//! documents (contexts compact, sibling dots in the context and under one
//! key, frontier inside the context, canonical encoding) and must be usable:
//! joined into a replica, answered from, and followed by local writes,
//! leaving a replica whose own encoding decodes.

use std::collections::BTreeSet;

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    ActorId, CausalContext, Delta, DeltaCrdt, Dot, Lattice, ORMap, Sibling, VersionVector,
};

/// Measures allocation: runs the closure and returns the most bytes it had
/// allocated at once. The fuzz target counts with a global allocator;
/// `cargo test` has none and passes `None`, which skips the bound.
pub type Measure<'a> = Option<&'a dyn Fn(&mut dyn FnMut()) -> usize>;

/// serde reserves at most 1 MiB per claimed sequence length, and a `Delta`
/// nests three sequences (entries, siblings, a `Vec<u8>` value).
pub const PREALLOC: usize = 3 * 1024 * 1024;

/// rmp-serde encoding of `value`.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec(value).expect("encoding to a Vec cannot fail")
}

/// Decodes untrusted `data` as `T`; a refusal says why. With `measure`, the
/// decoder allocates at most [`PREALLOC`] plus a small multiple of the input.
///
/// # Panics
/// When the decoder panics, an error has no text, or the bound is exceeded.
pub fn decode<T: DeserializeOwned>(data: &[u8], measure: Measure<'_>) -> Option<T> {
    let result = match measure {
        Some(measure) => {
            let mut out = None;
            let peak = measure(&mut || out = Some(rmp_serde::from_slice::<T>(data)));
            assert!(
                peak <= PREALLOC + 64 * 1024 + 64 * data.len(),
                "decoding {} allocated {peak} bytes for {} bytes",
                std::any::type_name::<T>(),
                data.len()
            );
            out.expect("the measured closure ran")
        }
        None => rmp_serde::from_slice::<T>(data),
    };
    match result {
        Ok(value) => Some(value),
        Err(e) => {
            assert!(
                !e.to_string().is_empty(),
                "decoding {}: an error says why",
                std::any::type_name::<T>()
            );
            None
        }
    }
}

/// The version vector invariants: actors strictly ascending, no zero counter.
pub fn check_vv(vv: &VersionVector) {
    let entries: Vec<_> = vv.iter().collect();
    assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "{vv:?}");
    assert!(entries.iter().all(|&(_, c)| c > 0), "{vv:?}");
}

/// Compactness as documented on `CausalContext`: no cloud dot is covered by
/// the version vector or directly extends it, and the cloud is ascending;
/// equal sets encode to equal bytes.
pub fn check_context(ctx: &CausalContext) {
    let vv = ctx.version_vector();
    check_vv(vv);
    let cloud: Vec<_> = ctx.cloud().collect();
    assert!(cloud.windows(2).all(|w| w[0] < w[1]), "{ctx:?}");
    for dot in &cloud {
        let seen = vv.get(dot.actor());
        assert!(
            seen.checked_add(1).is_some_and(|next| dot.counter() > next),
            "cloud dot {dot} is covered by or extends the prefix {seen}: {ctx:?}"
        );
        assert!(ctx.contains(*dot));
    }
    let bytes = encode(ctx);
    let again: CausalContext = rmp_serde::from_slice(&bytes).expect("re-decode a context");
    assert_eq!(&again, ctx);
    assert_eq!(encode(&again), bytes, "canonical");
}

/// The entry invariants `Delta` and `ORMap` decoding promises: keys with at
/// least one sibling, strictly ascending dots, every dot in the context and
/// under one key only, the purge frontier inside the context.
pub fn check_entries<'a, K: 'a, V: 'a>(
    entries: impl Iterator<Item = (&'a K, &'a [Sibling<V>])>,
    context: &CausalContext,
    frontier: &VersionVector,
) {
    check_context(context);
    check_vv(frontier);
    let mut seen = BTreeSet::new();
    for (_, siblings) in entries {
        assert!(!siblings.is_empty(), "a key without siblings");
        assert!(siblings.windows(2).all(|w| w[0].dot < w[1].dot));
        for s in siblings {
            assert!(context.contains(s.dot), "sibling {} outside context", s.dot);
            assert!(seen.insert(s.dot), "dot {} under two keys", s.dot);
        }
    }
    for (actor, counter) in frontier.iter() {
        assert!(
            Dot::new(actor, counter).is_ok_and(|d| context.contains(d)),
            "purge frontier {actor}:{counter} outside the context"
        );
    }
}

/// A replica keeps every invariant, and its own encoding decodes to itself.
pub fn check_map<K, V>(m: &ORMap<K, V>)
where
    K: Serialize + DeserializeOwned + Ord + Clone + std::fmt::Debug,
    V: Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug,
{
    check_entries(m.entries(), m.context(), m.purge_frontier());
    assert_eq!(m.len(), m.iter().count());
    let bytes = encode(m);
    let back: ORMap<K, V> =
        rmp_serde::from_slice(&bytes).expect("a replica's own encoding decodes");
    assert!(back == *m, "a replica round-trips");
    assert_eq!(encode(&back), bytes, "canonical");
}

/// Everything a node does with an answer it received: join it into a fresh
/// and into a populated replica, answer from the result, purge, write.
pub fn use_delta(d: &Delta<u8, u8>, populated: &ORMap<u8, u8>) {
    check_entries(d.iter(), d.context(), d.purge_frontier());
    assert_eq!(
        encode(&rmp_serde::from_slice::<Delta<u8, u8>>(&encode(d)).expect("re-decode")),
        encode(d),
        "canonical"
    );
    for base in [ORMap::<u8, u8>::new(ActorId(1)), populated.clone()] {
        let mut m = base;
        m.join_delta(d.clone());
        check_map(&m);
        let _ = m.delta_since(&CausalContext::new());
        let _ = m.delta_since(d.context());
        m.purge(&m.context().clone());
        check_map(&m);
        m.insert(7, 7);
        let _ = m.remove(&7);
        check_map(&m);
    }
}

/// A decoded replica: its invariants, a local write on a copy, and a join of
/// its state into an empty replica that copies it.
pub fn use_map(m: &ORMap<u8, u8>) {
    check_map(m);
    let mut local = m.clone();
    local.insert(7, 7);
    check_map(&local);
    let mut other = ORMap::<u8, u8>::new(ActorId(2));
    other.join_delta(m.state());
    assert_eq!(other.len(), m.len());
    assert!(
        other == *m,
        "joining a full state into an empty replica copies it"
    );
}

/// A decoded `Delta<String, Vec<u8>>` (what the healthcheck registry
/// receives): its context, a round trip, a join into a fresh replica that
/// then answers and writes.
pub fn use_bytes_delta(delta: Delta<String, Vec<u8>>) {
    check_context(delta.context());
    let again: Delta<String, Vec<u8>> = rmp_serde::from_slice(&encode(&delta)).expect("re-decode");
    assert_eq!(again, delta);
    let mut map = ORMap::<String, Vec<u8>>::new(ActorId(1));
    map.join_delta(delta);
    check_map(&map);
    let _ = map.delta_since(&CausalContext::new());
    map.insert("k".into(), vec![1]);
    let _ = map.remove(&"k".to_string());
    check_map(&map);
}

/// A small replica to join decoded values into when the caller has no
/// other: actor 1, one key.
pub fn small_replica() -> ORMap<u8, u8> {
    let mut m = ORMap::new(ActorId(1));
    m.insert(1, 1);
    m
}

/// The `crdt_decode` fuzz target: `data` decoded as every wire type (each
/// decode bounded with `measure`), and whatever is accepted checked and
/// used, joined with `populated` where a replica is needed.
///
/// # Panics
/// When a decoder or a check panics (see the module doc).
pub fn crdt_decode(data: &[u8], populated: &ORMap<u8, u8>, measure: Measure<'_>) {
    if let Some(vv) = decode::<VersionVector>(data, measure) {
        check_vv(&vv);
    }
    if let Some(ctx) = decode::<CausalContext>(data, measure) {
        check_context(&ctx);
        let mut joined = populated.context().clone();
        Lattice::join(&mut joined, &ctx);
        check_context(&joined);
        check_context(&ctx.meet(populated.context()));
        let _ = ctx.difference(populated.context(), 64);
        let _ = populated.delta_since(&ctx);
    }
    if let Some(d) = decode::<Delta<u8, u8>>(data, measure) {
        use_delta(&d, populated);
    }
    if let Some(d) = decode::<Delta<String, Vec<u8>>>(data, measure) {
        use_bytes_delta(d);
    }
    if let Some(m) = decode::<ORMap<u8, u8>>(data, measure) {
        use_map(&m);
    }
}
