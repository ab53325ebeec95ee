//! Sync figures from the deterministic simulator (real `sync::Engine`s over a
//! simulated network; virtual time, so the figures do not depend on this
//! machine's load).
//!
//! Run: `cargo run --release -p benches --bin sync-sim [-- spread|bytes] [--trials T]`
//!
//! * `spread`: rounds and simulated time for one write to reach every node,
//!   for N = 16, 64, 168, with periodic pulls only and with notify-then-pull,
//!   next to log2 N. One-way latency is uniform in 0.4–0.6 ms, so a network
//!   round trip (RTT) is about 1 ms; the pull interval is 1 s.
//! * `bytes`: bytes sent per node per round in steady state, for 16 nodes
//!   holding the same 100k-key map, with no writes and with k writes per
//!   round spread over the cluster.

use std::time::Duration;

use crdt::{ActorId, DeltaCrdt};
use proofs::sim::{NetConfig, Sim, SimMap};
use sync::EngineConfig;

const PULL: Duration = Duration::from_secs(1);

fn engine(notify_fanout: usize) -> EngineConfig {
    EngineConfig {
        pull_interval: PULL,
        pull_jitter: 0.1,
        pull_fanout: 1,
        notify_fanout,
        purge_interval: Duration::from_secs(30),
        request_timeout: Duration::from_secs(5),
        ..EngineConfig::default()
    }
}

fn net() -> NetConfig {
    NetConfig {
        latency_min: Duration::from_micros(400),
        latency_max: Duration::from_micros(600),
        loss: 0.0,
        duplicate: 0.0,
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Simulated time for one write at node 0 to be visible on all `n` nodes,
/// and the notifications and pulls sent meanwhile.
fn spread_once(n: usize, notify_fanout: usize, seed: u64) -> (Duration, u64, u64) {
    let mut sim = Sim::new(n, engine(notify_fanout), net(), seed);
    // Let rounds desynchronise first (each node's first round is jittered).
    sim.run_for(Duration::from_secs(3) + Duration::from_millis(seed % 1000));
    let before = messages(&sim);
    sim.write(0, 1, Some(1));
    let took = sim
        .run_until(Duration::from_secs(120), |s| {
            (0..s.len()).all(|i| s.map(i).is_some_and(|m| m.get(&1).is_some()))
        })
        .expect("a write reaches every node within 120 s");
    let after = messages(&sim);
    (took, after.0 - before.0, after.1 - before.1)
}

/// Notifications and pulls sent so far, over all nodes.
fn messages(sim: &Sim) -> (u64, u64) {
    (0..sim.len())
        .filter_map(|i| sim.engine(i))
        .fold((0, 0), |(n, p), e| {
            (n + e.stats().notifies_sent, p + e.stats().pulls_sent)
        })
}

fn spread(trials: u64) {
    println!(
        "| N | log2 N | mode | p50 time | p99 time | p50 rounds | p99 rounds | p50 RTTs | p99 RTTs | notifies / node | pulls / node |"
    );
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in [16usize, 64, 168] {
        for (mode, fanout) in [
            ("periodic pulls only", 0usize),
            ("notify-then-pull, fan-out 1 × ⌈log2(N+1)⌉", 1),
            ("notify-then-pull, fan-out 2 × ⌈log2(N+1)⌉ (default)", 2),
        ] {
            let runs: Vec<(Duration, u64, u64)> = (0..trials)
                .map(|seed| spread_once(n, fanout, seed))
                .collect();
            let mut times: Vec<f64> = runs.iter().map(|r| r.0.as_secs_f64()).collect();
            times.sort_by(f64::total_cmp);
            let per_node = |f: fn(&(Duration, u64, u64)) -> u64| {
                runs.iter().map(f).sum::<u64>() as f64 / (trials as f64 * n as f64)
            };
            let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
            let rtt = 2.0 * 0.5e-3;
            println!(
                "| {n} | {:.1} | {mode} | {:.3} s | {:.3} s | {:.2} | {:.2} | {:.0} | {:.0} | {:.1} | {:.1} |",
                (n as f64).log2(),
                p50,
                p99,
                p50 / PULL.as_secs_f64(),
                p99 / PULL.as_secs_f64(),
                p50 / rtt,
                p99 / rtt,
                per_node(|r| r.1),
                per_node(|r| r.2),
            );
        }
    }
}

fn bytes() {
    let nodes = 16;
    let keys = 100_000u32;
    let mut base = SimMap::new(ActorId(1));
    for k in 0..keys {
        base.insert(k, k);
    }
    let maps: Vec<Option<SimMap>> = (0..nodes)
        .map(|i| {
            let mut m = SimMap::new(ActorId(100 + i as u64));
            m.join_delta(base.state());
            Some(m)
        })
        .collect();
    println!(
        "| writes per round (cluster) | bytes per node per round | answers with keys per round (cluster) |"
    );
    println!("|---:|---:|---:|");
    for k in [0u32, 1, 10, 100] {
        let mut sim = Sim::with_maps(maps.clone(), engine(2), net(), 7);
        // Every node writes once, so that digests name all 16 actors (plus
        // the one that wrote the 100k keys), as in a cluster that has run a
        // while; then let it settle.
        for i in 0..nodes {
            sim.write(i, i as u32, Some(0));
        }
        sim.run_for(Duration::from_secs(5));
        let (bytes0, rounds0, deltas0) = totals(&sim);
        let secs = 30;
        for s in 0..secs {
            for j in 0..k {
                let node = ((s * k + j) as usize) % nodes;
                sim.write(node, (s * 7919 + j * 104_729) % keys, Some(s));
            }
            sim.run_for(PULL);
        }
        let (bytes1, rounds1, deltas1) = totals(&sim);
        if k == 0 {
            let digest = sim.map(0).map(|m| m.digest()).unwrap_or_default();
            let pull = sync::encode_message(&sync::Message::Pull {
                replica: "m".into(),
                digest: digest.clone(),
            })
            .map_or(0, |b| b.len() + 4);
            let empty = sync::encode_message(&sync::Message::Delta {
                replica: "m".into(),
                delta: None,
                full: false,
            })
            .map_or(0, |b| b.len() + 4);
            eprintln!(
                "steady state: a pull with this {}-actor digest is {pull} bytes framed, an empty answer {empty}: {} per round trip",
                digest.version_vector().len(),
                pull + empty
            );
        }
        let per_node_round = (bytes1 - bytes0) as f64 / (rounds1 - rounds0) as f64;
        println!(
            "| {k} | {per_node_round:.0} | {:.1} |",
            (deltas1 - deltas0) as f64 / f64::from(secs)
        );
    }
}

/// Bytes sent, rounds run and answers with keys, summed over all nodes.
fn totals(sim: &Sim) -> (u64, u64, u64) {
    let (mut rounds, mut deltas) = (0, 0);
    for i in 0..sim.len() {
        if let Some(e) = sim.engine(i) {
            rounds += e.stats().rounds;
            deltas += e.stats().deltas_sent;
        }
    }
    (sim.bytes, rounds, deltas)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let trials = args
        .iter()
        .position(|a| a == "--trials")
        .and_then(|i| args.get(i + 1))
        .and_then(|t| t.parse().ok())
        .unwrap_or(200);
    let what = args
        .first()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"));
    if what.is_none_or(|w| w == "spread") {
        spread(trials);
    }
    if what.is_none_or(|w| w == "bytes") {
        println!();
        bytes();
    }
}
