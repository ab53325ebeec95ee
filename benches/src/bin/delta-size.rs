//! Encoded size (rmp-serde) of a `delta_since` answer with k changed keys
//! against the full state, for maps of 10k, 100k and 1M keys.
//!
//! Run: `cargo run --release -p benches --bin delta-size`

use benches::{build_map, change_keys};
use crdt::DeltaCrdt;

fn main() {
    println!("| keys | changed k | delta bytes | full state bytes | full / delta |");
    println!("|---:|---:|---:|---:|---:|");
    for n in [10_000u64, 100_000, 1_000_000] {
        let base = build_map(n, 8);
        let full = rmp_serde::to_vec(&base.state())
            .map(|b| b.len())
            .unwrap_or(0);
        for k in [1u64, 10, 100, 1000] {
            let mut map = base.clone();
            let digest = change_keys(&mut map, n, k);
            let delta = map
                .delta_since(&digest)
                .map_or(0, |d| rmp_serde::to_vec(&d).map(|b| b.len()).unwrap_or(0));
            println!(
                "| {n} | {k} | {delta} | {full} | {:.0}× |",
                full as f64 / delta.max(1) as f64
            );
        }
    }
}
