//! CRDT values decoded from arbitrary bytes (rmp-serde, as they arrive in a
//! sync `Delta` or `Pull`): a decoder never panics nor allocates more than
//! serde's up-front reservations plus a small multiple of the input, and
//! whatever is accepted keeps the documented invariants (compact contexts,
//! canonical encoding), joins into a replica, and leaves a replica that can
//! still write and whose own encoding decodes.
#![no_main]

#[path = "common/alloc.rs"]
mod alloc;

use crdt::{ActorId, CausalContext, Delta, DeltaCrdt, ORMap, VersionVector};
use libfuzzer_sys::fuzz_target;
use serde::{Serialize, de::DeserializeOwned};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// serde reserves at most 1 MiB per claimed sequence length, and a `Delta`
/// nests three sequences (entries, siblings, a `Vec<u8>` value).
const PREALLOC: usize = 3 * 1024 * 1024;

fn decode<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    let (result, peak) = alloc::peak_during(|| rmp_serde::from_slice::<T>(data));
    assert!(
        peak <= PREALLOC + 64 * 1024 + 64 * data.len(),
        "decoding {} allocated {peak} bytes for {} bytes",
        std::any::type_name::<T>(),
        data.len()
    );
    result.ok()
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec(value).expect("encoding to a Vec cannot fail")
}

/// Compact: no cloud dot is covered by the prefix or directly extends it.
fn check_context(ctx: &CausalContext) {
    for dot in ctx.cloud() {
        let seen = ctx.version_vector().get(dot.actor());
        assert!(
            seen.checked_add(1).is_some_and(|next| dot.counter() > next),
            "cloud dot {dot} next to or under prefix {seen}"
        );
    }
    let bytes = encode(ctx);
    let again: CausalContext = rmp_serde::from_slice(&bytes).expect("re-decode");
    assert_eq!(&again, ctx);
}

/// A replica whose own encoding decodes to itself (the decoder checks every
/// invariant the join relies on).
fn check_map<K, V>(m: &ORMap<K, V>)
where
    K: Serialize + DeserializeOwned + Ord + Clone + std::fmt::Debug,
    V: Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug,
{
    check_context(m.context());
    let back: ORMap<K, V> = rmp_serde::from_slice(&encode(m)).expect("own encoding decodes");
    assert!(back == *m, "a replica round-trips");
}

fuzz_target!(|data: &[u8]| {
    let _ = decode::<VersionVector>(data);
    if let Some(ctx) = decode::<CausalContext>(data) {
        check_context(&ctx);
    }
    if let Some(delta) = decode::<Delta<String, Vec<u8>>>(data) {
        check_context(delta.context());
        let again: Delta<String, Vec<u8>> =
            rmp_serde::from_slice(&encode(&delta)).expect("re-decode");
        assert_eq!(again, delta);
        let mut map = ORMap::<String, Vec<u8>>::new(ActorId(1));
        map.join_delta(delta);
        check_map(&map);
        let _ = map.delta_since(&CausalContext::new());
        map.insert("k".into(), vec![1]);
        let _ = map.remove(&"k".to_string());
        check_map(&map);
    }
    if let Some(delta) = decode::<Delta<u8, u8>>(data) {
        let mut map = ORMap::<u8, u8>::new(ActorId(1));
        map.insert(1, 1);
        map.join_delta(delta);
        map.purge(&map.context().clone());
        map.insert(2, 2);
        check_map(&map);
    }
    if let Some(map) = decode::<ORMap<u8, u8>>(data) {
        check_map(&map);
        let mut other = ORMap::<u8, u8>::new(ActorId(2));
        other.join_delta(map.state());
        assert_eq!(other.len(), map.len());
        assert!(
            other == map,
            "joining a full state into an empty replica copies it"
        );
        let mut local = map.clone();
        local.insert(1, 1);
        check_map(&local);
    }
});
