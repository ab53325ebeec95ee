//! Side by side with the `crdts` crate (rust-crdt 7, `Map<K, MVReg<V, A>, A>`)
//! and with a naive baseline that ships the whole state, on the same
//! workloads, in one run:
//!
//! * (a) bringing a replica up to date with a peer whose map of n keys
//!   differs in k keys (written by another actor): ours pulls (digest →
//!   `delta_since` → `join_delta`); the naive baseline joins the peer's full
//!   state; `crdts` merges the peer's full map (it has no delta protocol).
//!   Time: median over repetitions of the exchange alone (the copies the
//!   benchmark needs are made outside the timing).
//! * (b) bytes on the wire for that exchange, rmp-serde for all: ours is the
//!   digest plus the answer; the others are the whole state.
//! * (c) memory per entry, measured with a counting global allocator, for
//!   n = 10k and 100k with 1, 8 and 64 writing actors.
//!
//! Run: `cargo run --release -p benches --example crdt-compare`
//! It also writes `target/bench-data/compare.csv` for `scripts/plot_compare.py`.
//! (An example rather than a bin: `crdts` is a dev-dependency of `benches`
//! only.)

use std::{
    alloc::System,
    hint::black_box,
    io::Write,
    time::{Duration, Instant},
};

use crdt::{ActorId, DeltaCrdt, ORMap};
use crdts::{CmRDT, CvRDT, MVReg};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

/// Counts allocations (stats_alloc wraps the system allocator).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Live heap bytes added while `build` ran and its result is alive.
fn live_bytes<T>(build: impl FnOnce() -> T) -> (T, isize) {
    let region = Region::new(GLOBAL);
    let value = build();
    let change = region.change();
    let live = change.bytes_allocated as isize - change.bytes_deallocated as isize
        + change.bytes_reallocated;
    (value, live)
}

type Ours = ORMap<u64, u64>;
type Theirs = crdts::Map<u64, MVReg<u64, u64>, u64>;

/// Our map of `n` keys, key i written by actor i % actors, joined into one
/// replica owned by actor 1000.
fn ours(n: u64, actors: u64) -> Ours {
    benches::build_map(n, actors)
}

/// The same with `crdts`.
fn theirs(n: u64, actors: u64) -> Theirs {
    let mut map = Theirs::new();
    for k in 0..n {
        let actor = k % actors + 1;
        let ctx = map.read_ctx().derive_add_ctx(actor);
        let op = map.update(k, ctx, |reg, ctx| reg.write(k, ctx));
        map.apply(op);
    }
    map
}

/// Overwrites `k` keys spread over the map, as actor 2000.
fn change_theirs(map: &mut Theirs, n: u64, k: u64) {
    let step = (n / k.max(1)).max(1);
    for i in 0..k {
        let key = (i * step) % n;
        let ctx = map.read_ctx().derive_add_ctx(2000);
        let op = map.update(key, ctx, |reg, ctx| reg.write(u64::MAX - i, ctx));
        map.apply(op);
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Times `f` on a fresh copy of `input` per repetition (copy not timed).
fn time<T: Clone, R>(reps: usize, input: &T, mut f: impl FnMut(T) -> R) -> Duration {
    median(
        (0..reps)
            .map(|_| {
                let copy = input.clone();
                let t = Instant::now();
                let out = f(copy);
                let took = t.elapsed();
                black_box(out);
                took
            })
            .collect(),
    )
}

fn size<T: serde::Serialize>(t: &T) -> usize {
    rmp_serde::to_vec(t).map_or(0, |b| b.len())
}

fn us(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

fn main() {
    let mut csv = String::from("impl,n,k,merge_us,bytes\n");
    println!("## (a) + (b): bring a replica up to date with a peer that differs in k keys\n");
    println!(
        "| n keys | k changed | ours: pull (time) | ours (bytes) | full state (time) | full state (bytes) | crdts merge (time) | crdts (bytes) | crdts / ours time | crdts / ours bytes |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in [1_000u64, 10_000, 100_000] {
        let reps = if n >= 100_000 { 5 } else { 21 };
        let a = ours(n, 8);
        let ta = theirs(n, 8);
        for k in [1u64, 10, 100] {
            // ours: b = a + k overwrites by actor 2000
            let mut b = Ours::new(ActorId(2000));
            b.join_delta(a.state());
            let step = (n / k).max(1);
            for i in 0..k {
                b.insert((i * step) % n, u64::MAX - i);
            }
            let digest = a.digest();
            let answer = b.delta_since(&digest).expect("k changes");
            let pull_bytes = size(&digest) + size(&answer);
            // Each closure returns the map it consumed, so dropping it is not timed.
            let pull = time(reps, &a, |mut a| {
                let d = b.delta_since(&a.digest()).expect("k changes");
                let changes = a.join_delta(d);
                (a, changes)
            });
            let full_state = b.state();
            let full_bytes = size(&full_state);
            let full = time(reps, &a, |mut a| {
                let changes = a.join_delta(full_state.clone());
                (a, changes)
            });
            // crdts: tb = ta + k overwrites
            let mut tb = ta.clone();
            change_theirs(&mut tb, n, k);
            let theirs_bytes = size(&tb);
            // The peer's map is copied outside the timing; merge consumes it.
            let merge = time(reps, &(ta.clone(), tb.clone()), |(mut x, y)| {
                x.merge(y);
                x
            });
            println!(
                "| {n} | {k} | {} | {pull_bytes} | {} | {full_bytes} | {} | {theirs_bytes} | {:.0}× | {:.0}× |",
                us(pull),
                us(full),
                us(merge),
                merge.as_secs_f64() / pull.as_secs_f64(),
                theirs_bytes as f64 / pull_bytes as f64,
            );
            for (name, t, bytes) in [
                ("ours-delta", pull, pull_bytes),
                ("ours-full-state", full, full_bytes),
                ("crdts", merge, theirs_bytes),
            ] {
                csv.push_str(&format!(
                    "{name},{n},{k},{:.3},{bytes}\n",
                    t.as_secs_f64() * 1e6
                ));
            }
        }
    }

    println!("\n## (c) memory per entry (live heap bytes / keys)\n");
    println!("| n keys | writing actors | ours | crdts | crdts / ours |");
    println!("|---:|---:|---:|---:|---:|");
    for n in [10_000u64, 100_000] {
        for actors in [1u64, 8, 64] {
            let (a, ours_bytes) = live_bytes(|| ours(n, actors));
            let (t, theirs_bytes) = live_bytes(|| theirs(n, actors));
            println!(
                "| {n} | {actors} | {:.0} B | {:.0} B | {:.1}× |",
                ours_bytes as f64 / n as f64,
                theirs_bytes as f64 / n as f64,
                theirs_bytes as f64 / ours_bytes as f64
            );
            csv.push_str(&format!("mem-ours-{actors},{n},0,0,{ours_bytes}\nmem-crdts-{actors},{n},0,0,{theirs_bytes}\n"));
            drop((a, t));
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::File::create(dir.join("compare.csv")) {
        let _ = f.write_all(csv.as_bytes());
        eprintln!("wrote {}", dir.join("compare.csv").display());
    }
}
