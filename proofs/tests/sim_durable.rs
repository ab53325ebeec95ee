//! Durable sync engines in the deterministic simulator: crashes at any
//! point of a write's life (before its commit completes, after, after a
//! peer pulled), restarts from the store, lost stores, partitions, loss,
//! duplication and reordering. After a heal every replica reads the same,
//! equal to the oracle of the writes that survived; no acknowledged write is
//! lost; no acknowledged dot is minted again; every causal context holds at
//! most one actor per node plus one per lost store or replaced actor.
//!
//! The same rules as `proofs/models/identity_model.py`, run on the real
//! engine. `SIM_SEEDS` sets the number of seeds (default 60), `SIM_SEED`
//! replays one with a trace.

use std::{collections::HashMap, time::Duration};

use proofs::{
    read,
    sim::{NetConfig, Sim},
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sync::EngineConfig;

const PULL: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
struct Run {
    writes: usize,
    acked: usize,
    crashes: usize,
    restarts: usize,
    stores_lost: u64,
    retired: u64,
}

fn durable_chaos(seed: u64, trace: bool) -> Result<Run, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xd0ab1e);
    let nodes = 3 + (seed % 4) as usize;
    let engine = EngineConfig {
        pull_interval: PULL,
        pull_jitter: 0.2,
        purge_interval: Duration::from_secs(5),
        request_timeout: Duration::from_secs(3),
        chunk_bytes: 128,
        startup_timeout: Duration::from_secs(1),
        verify_timeout: Duration::from_secs(4),
        ..EngineConfig::default()
    };
    let net = NetConfig {
        latency_min: Duration::from_millis(1),
        latency_max: Duration::from_millis(40),
        loss: 0.05,
        duplicate: 0.05,
    };
    let mut sim = Sim::new_durable(nodes, engine, net, seed);
    let mut run = Run::default();
    let up = |sim: &Sim| (0..sim.len()).filter(|&i| sim.is_up(i)).count();
    for step in 0..300 {
        let roll: f64 = rng.random();
        let i = rng.random_range(0..nodes);
        if roll < 0.5 {
            let key = rng.random_range(0..16);
            let value = rng.random_bool(0.75).then(|| rng.random_range(0..1000));
            sim.write(i, key, value);
        } else if roll < 0.55 && sim.is_up(i) && up(&sim) > 1 {
            if trace {
                eprintln!("{:?} step {step}: crash n{i}", sim.elapsed());
            }
            sim.crash(i);
            run.crashes += 1;
        } else if roll < 0.62 && !sim.is_up(i) {
            // mostly from the store; now and then the store is lost
            let keep = rng.random_bool(0.85);
            if trace {
                eprintln!(
                    "{:?} step {step}: restart n{i} keep_store={keep}",
                    sim.elapsed()
                );
            }
            sim.restart(i, keep);
            run.restarts += 1;
        } else if roll < 0.64 && sim.is_up(i) && up(&sim) > 1 {
            // a crash and a restart at once, the store kept (kill -9 and up)
            if trace {
                eprintln!("{:?} step {step}: crash+restart n{i}", sim.elapsed());
            }
            sim.restart(i, true);
            run.restarts += 1;
        } else if roll < 0.67 && sim.is_up(i) && up(&sim) > 1 {
            // a write, then a crash within its commit's fsync window or
            // just after it (peers may have pulled meanwhile)
            sim.write(i, rng.random_range(0..16), Some(rng.random_range(0..1000)));
            sim.run_for(Duration::from_millis(rng.random_range(0..40)));
            if trace {
                eprintln!("{:?} step {step}: write then crash n{i}", sim.elapsed());
            }
            sim.crash(i);
            run.crashes += 1;
        } else if roll < 0.7 {
            sim.partition(i, rng.random_range(1..3));
        } else if roll < 0.72 {
            sim.heal();
        }
        sim.run_for(Duration::from_millis(rng.random_range(1..300)));
    }
    sim.heal();
    sim.net.loss = 0.0;
    sim.net.duplicate = 0.0;
    for i in 0..nodes {
        if !sim.is_up(i) {
            sim.restart(i, true);
            run.restarts += 1;
        }
    }
    let settled = |s: &Sim| {
        s.converged()
            && (0..s.len()).all(|i| s.engine(i).is_some_and(|e| e.ready() && e.caught_up()))
            && (1..s.len()).all(|i| s.map(i).map(|m| m.context()) == s.map(0).map(|m| m.context()))
    };
    sim.run_until(Duration::from_secs(120), settled)
        .ok_or_else(|| format!("seed {seed}: no convergence within 120 s after the heal"))?;
    let map = sim.map(0).ok_or("node 0 is down")?.clone();
    let context = map.context().clone();
    // Surviving writes: per dot, the last one minted with it (a dot may be
    // minted again only if its first write never left a node that crashed
    // before committing it), if the dot is still known.
    let mut left: HashMap<crdt::Dot, usize> = HashMap::new();
    for w in &sim.written {
        *left.entry(w.dot).or_default() += 1;
    }
    let all_events = sim.oracle.events().to_vec();
    let mut left_for_oracle = left.clone();
    sim.oracle.retain(|e| {
        let n = left_for_oracle.entry(e.dot).or_default();
        *n = n.saturating_sub(1);
        *n == 0 && context.contains(e.dot)
    });
    let expected = sim.oracle.read();
    let got = read(&map);
    if got != expected {
        if trace {
            for (k, _) in got.iter().chain(&expected) {
                if got.iter().find(|(g, _)| g == k) != expected.iter().find(|(e, _)| e == k) {
                    eprintln!("key {k}: siblings {:?}", map.siblings(k));
                    for e in all_events.iter().filter(|e| e.key == *k) {
                        let w = sim.written.iter().find(|w| w.dot == e.dot);
                        eprintln!(
                            "  write {} = {:?} acked {:?} in context {} seen {:?}",
                            e.dot,
                            e.value,
                            w.map(|w| (w.acked, w.node, w.incarnation)),
                            context.contains(e.dot),
                            e.seen
                        );
                    }
                }
            }
        }
        return Err(format!(
            "seed {seed}: replicas agree but differ from the oracle of surviving writes\n got      {got:?}\n expected {expected:?}"
        ));
    }
    for w in &sim.written {
        let n = left.entry(w.dot).or_default();
        *n = n.saturating_sub(1);
        if w.acked {
            run.acked += 1;
            if !context.contains(w.dot) && !w.store_lost_after {
                return Err(format!("seed {seed}: acknowledged write {} lost", w.dot));
            }
            if *n > 0 {
                return Err(format!(
                    "seed {seed}: the dot {} of an acknowledged write was minted again",
                    w.dot
                ));
            }
        }
    }
    run.writes = sim.written.len();
    run.stores_lost = sim.stores_lost;
    run.retired = sim.retired;
    if sim.retired_stale > 0 {
        return Err(format!(
            "seed {seed}: {} restored actors found stale, with no store ever restored from a copy: a dot left a node before it was durable",
            sim.retired_stale
        ));
    }
    let actors = context.actors().count() as u64;
    let bound = nodes as u64 + sim.stores_lost + sim.retired;
    if actors > bound {
        return Err(format!(
            "seed {seed}: {actors} actors in the context, bound {bound} ({nodes} nodes, {} stores lost, {} actors replaced)",
            sim.stores_lost, sim.retired
        ));
    }
    Ok(run)
}

#[test]
fn durable_engines_keep_every_acknowledged_write_through_crashes() {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        match durable_chaos(seed, true) {
            Ok(run) => eprintln!("seed {seed}: {run:?}"),
            Err(e) => panic!("{e}"),
        }
        return;
    }
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut runs = Vec::new();
    let mut failures = Vec::new();
    for seed in 0..seeds {
        match durable_chaos(seed, false) {
            Ok(run) => runs.push(run),
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed (replay one with SIM_SEED=<seed>):\n{}",
        failures.len(),
        failures.join("\n")
    );
    let sum = |f: fn(&Run) -> u64| runs.iter().map(f).sum::<u64>();
    eprintln!(
        "{seeds} seeds: {} writes ({} acknowledged), {} crashes, {} restarts, {} stores lost, {} actors replaced",
        sum(|r| r.writes as u64),
        sum(|r| r.acked as u64),
        sum(|r| r.crashes as u64),
        sum(|r| r.restarts as u64),
        sum(|r| r.stores_lost),
        sum(|r| r.retired),
    );
    // The interesting paths were taken.
    assert!(sum(|r| r.crashes as u64) > 50);
    assert!(sum(|r| r.stores_lost) > 0);
    assert!(sum(|r| r.acked as u64) > 1000);
}
