//! Benchmarks and simulation binaries; see `BENCHMARKS.md` for the figures
//! and the commands that produced them. This library holds the workloads
//! they share and the baselines ours is measured against.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod procs;

use crdt::{ActorId, CausalContext, DeltaCrdt, ORMap, Sibling};

/// The map type the benches use: `u64` keys and values.
pub type Map = ORMap<u64, u64>;

/// A map of `n` keys written by `actors` replicas (key `i` by actor
/// `i % actors`), all joined into one replica owned by actor 1000.
pub fn build_map(n: u64, actors: u64) -> Map {
    let mut writers: Vec<Map> = (0..actors).map(|a| Map::new(ActorId(a + 1))).collect();
    for k in 0..n {
        let w = (k % actors) as usize;
        writers[w].insert(k, k);
    }
    let mut map = Map::new(ActorId(1000));
    for w in &writers {
        map.join_delta(w.state());
    }
    map
}

/// Overwrites `k` keys spread evenly over the map's `n` keys, as `map`'s own
/// actor. Returns the digest `map` had before, i.e. that of a peer which is
/// exactly `k` writes behind.
pub fn change_keys(map: &mut Map, n: u64, k: u64) -> CausalContext {
    let before = map.digest();
    let step = (n / k.max(1)).max(1);
    for i in 0..k {
        map.insert((i * step) % n.max(1), u64::MAX - i);
    }
    before
}

/// The baseline `delta_since` without a dot index: visit every key and ship
/// those with a sibling the digest has not seen. Same answer, O(n).
pub fn scan_delta_since(map: &Map, digest: &CausalContext) -> Vec<(u64, Vec<Sibling<u64>>)> {
    map.entries()
        .filter(|(_, s)| s.iter().any(|s| !digest.contains(s.dot)))
        .map(|(k, s)| (*k, s.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_baseline_ships_the_same_keys_as_delta_since() {
        let mut map = build_map(1000, 4);
        let digest = change_keys(&mut map, 1000, 10);
        let indexed = map.delta_since(&digest).expect("ten changes");
        let scanned = scan_delta_since(&map, &digest);
        let keys: Vec<u64> = indexed.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, scanned.iter().map(|(k, _)| *k).collect::<Vec<_>>());
        assert_eq!(keys.len(), 10);
    }
}
