//! SWIM figures from the deterministic simulator (foca cores, simulated UDP,
//! virtual time): time from a crash until every other node declares it
//! down, and false downs under packet loss.
//!
//! Run: `cargo run --release -p benches --bin swim-sim [-- --trials T]`

use std::time::Duration;

use membership::Preset;
use proofs::swim::SwimSim;

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// A cluster of `n` that has formed one view, with `loss` applied from then on.
fn joined(n: usize, loss: f64, seed: u64) -> SwimSim {
    let mut sim = SwimSim::new(n, Preset::Lan, seed);
    sim.run_until(Duration::from_secs(300), SwimSim::one_view)
        .expect("the cluster forms one view");
    sim.loss = loss;
    sim.run_for(Duration::from_secs(5));
    sim
}

fn detection(trials: u64) {
    println!("| N | loss | trials | median | p99 | max | bound (no loss) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in [16usize, 168] {
        let trials = if n > 100 { trials.div_ceil(4) } else { trials };
        for loss in [0.0, 0.01, 0.05] {
            let mut times: Vec<f64> = (0..trials)
                .map(|seed| {
                    let mut sim = joined(n, loss, seed);
                    let victim = 1 + seed as usize % (n - 1);
                    sim.crash(victim);
                    sim.run_until(Duration::from_secs(600), |s| s.all_see_down(victim))
                        .expect("declared down within 10 minutes")
                        .as_secs_f64()
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!(
                "| {n} | {:.0} % | {trials} | {:.2} s | {:.2} s | {:.2} s | {:.1} s |",
                loss * 100.0,
                percentile(&times, 0.5),
                percentile(&times, 0.99),
                percentile(&times, 1.0),
                Preset::Lan.detection_bound(n).as_secs_f64(),
            );
        }
    }
}

fn false_downs() {
    println!();
    println!(
        "| N | loss | simulated time | false Down events (all nodes) | members ever missing from a view |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for n in [16usize, 168] {
        for loss in [0.01, 0.05] {
            let mut sim = joined(n, loss, 99);
            let before = sim.down_events();
            let mut missing = 0usize;
            for _ in 0..600 {
                sim.run_for(Duration::from_secs(1));
                missing = missing.max(
                    (0..n)
                        .filter_map(|i| sim.view(i))
                        .map(|v| n - 1 - v.len())
                        .max()
                        .unwrap_or(0),
                );
            }
            println!(
                "| {n} | {:.0} % | 10 min | {} | {missing} |",
                loss * 100.0,
                sim.down_events() - before
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let trials = args
        .iter()
        .position(|a| a == "--trials")
        .and_then(|i| args.get(i + 1))
        .and_then(|t| t.parse().ok())
        .unwrap_or(100);
    detection(trials);
    false_downs();
}
