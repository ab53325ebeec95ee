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
//! * (d) the palette against its `crdts` counterpart, type by type:
//!   `GCounter`/`PNCounter` with 8 and 64 actors, `AWSet` against `Orswot`,
//!   `MVReg`, and a map of counters (`Map<u64, PosNeg>` against
//!   `crdts::Map<u64, PNCounter>`), at n = 10k and 100k elements with k = 10
//!   changed: the pull exchange (time, bytes), the full-state merge (time)
//!   and memory per element.
//!
//! Run: `cargo run --release -p benches --example crdt-compare`
//! (`-- palette` runs (d) only.)
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
    if std::env::args().nth(1).as_deref() == Some("palette") {
        palette::run();
        return;
    }
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
    palette::run();
}

/// (d): the palette against `crdts`, type by type.
mod palette {
    use std::time::Duration;

    use crdt::{
        AWSet, ActorId, Count, DeltaCrdt, GCounter, Lattice, MVReg, Map, PNCounter, PosNeg,
    };
    use crdts::{CmRDT, CvRDT};

    use super::{live_bytes, size, time, us};

    /// One row: a workload measured on both sides.
    struct Row {
        what: String,
        n: u64,
        pull: Duration,
        pull_bytes: usize,
        merge: Duration,
        theirs_merge: Duration,
        theirs_bytes: usize,
        ours_mem: f64,
        theirs_mem: f64,
    }

    fn print(rows: &[Row]) {
        println!(
            "| type | n | ours: pull (time) | ours: pull (bytes) | crdts: merge (time) | crdts: state (bytes) | crdts / ours time | crdts / ours bytes | ours: full merge | crdts / ours full merge | memory per element: ours | crdts | crdts / ours |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in rows {
            println!(
                "| {} | {} | {} | {} | {} | {} | {:.0}× | {:.0}× | {} | {:.2}× | {:.0} B | {:.0} B | {:.1}× |",
                r.what,
                r.n,
                us(r.pull),
                r.pull_bytes,
                us(r.theirs_merge),
                r.theirs_bytes,
                r.theirs_merge.as_secs_f64() / r.pull.as_secs_f64(),
                r.theirs_bytes as f64 / r.pull_bytes as f64,
                us(r.merge),
                r.theirs_merge.as_secs_f64() / r.merge.as_secs_f64(),
                r.ours_mem,
                r.theirs_mem,
                r.theirs_mem / r.ours_mem,
            );
        }
    }

    fn reps(n: u64) -> usize {
        if n >= 100_000 { 5 } else { 21 }
    }

    /// Ours: `a` is one write set behind `b`. Pull time (digest, answer,
    /// join), pull bytes (digest + answer) and full-state merge time.
    fn ours<T: DeltaCrdt + Lattice + Clone>(a: &T, b: &T, n: u64) -> (Duration, usize, Duration)
    where
        T::Delta: serde::Serialize,
    {
        let digest = a.digest();
        let answer = b.delta_since(&digest).expect("news");
        let bytes = size(&digest) + size(&answer);
        let pull = time(reps(n), a, |mut a| {
            let d = b.delta_since(&a.digest()).expect("news");
            let changes = a.join_delta(d);
            (a, changes)
        });
        let merge = time(reps(n), a, |mut a| {
            a.join(b);
            a
        });
        (pull, bytes, merge)
    }

    /// Theirs: the full-state merge of `b` into `a` (both copied untimed).
    fn theirs<T: CvRDT + Clone + serde::Serialize>(a: &T, b: &T, n: u64) -> (Duration, usize) {
        let merge = time(reps(n), &(a.clone(), b.clone()), |(mut x, y)| {
            x.merge(y);
            x
        });
        (merge, size(b))
    }

    /// Joins the states of per-actor writers into one replica of actor 1000.
    fn joined<T: DeltaCrdt + Lattice>(mut into: T, writers: &[T]) -> T {
        for w in writers {
            into.join(w);
        }
        into
    }

    fn counters(rows: &mut Vec<Row>) {
        for actors in [8u64, 64] {
            // Every actor incremented; b is a plus one increment by actor 1.
            let build = || {
                let writers: Vec<PNCounter> = (1..=actors)
                    .map(|a| {
                        let mut c = PNCounter::new(ActorId(a));
                        c.increment(a);
                        c.decrement(1);
                        c
                    })
                    .collect();
                joined(PNCounter::new(ActorId(1000)), &writers)
            };
            let (a, ours_mem) = live_bytes(build);
            let mut b = a.clone();
            b.increment(5);
            let (pull, pull_bytes, merge) = ours(&a, &b, actors);
            let build_theirs = || {
                let mut c = crdts::PNCounter::<u64>::new();
                for a in 1..=actors {
                    c.apply(c.inc_many(a, a));
                    c.apply(c.dec(a));
                }
                c
            };
            let (ta, theirs_mem) = live_bytes(build_theirs);
            let mut tb = ta.clone();
            tb.apply(tb.inc_many(1000, 5));
            let (theirs_merge, theirs_bytes) = theirs(&ta, &tb, actors);
            rows.push(Row {
                what: format!("PNCounter, {actors} actors (n = actors)"),
                n: actors,
                pull,
                pull_bytes,
                merge,
                theirs_merge,
                theirs_bytes,
                ours_mem: ours_mem as f64 / actors as f64,
                theirs_mem: theirs_mem as f64 / actors as f64,
            });

            let build = || {
                let writers: Vec<GCounter> = (1..=actors)
                    .map(|a| {
                        let mut c = GCounter::new(ActorId(a));
                        c.increment(a);
                        c
                    })
                    .collect();
                joined(GCounter::new(ActorId(1000)), &writers)
            };
            let (a, ours_mem) = live_bytes(build);
            let mut b = a.clone();
            b.increment(5);
            let (pull, pull_bytes, merge) = ours(&a, &b, actors);
            let build_theirs = || {
                let mut c = crdts::GCounter::<u64>::new();
                for a in 1..=actors {
                    c.apply(c.inc_many(a, a));
                }
                c
            };
            let (ta, theirs_mem) = live_bytes(build_theirs);
            let mut tb = ta.clone();
            tb.apply(tb.inc_many(1000, 5));
            let (theirs_merge, theirs_bytes) = theirs(&ta, &tb, actors);
            rows.push(Row {
                what: format!("GCounter, {actors} actors (n = actors)"),
                n: actors,
                pull,
                pull_bytes,
                merge,
                theirs_merge,
                theirs_bytes,
                ours_mem: ours_mem as f64 / actors as f64,
                theirs_mem: theirs_mem as f64 / actors as f64,
            });
        }
    }

    fn sets(rows: &mut Vec<Row>, n: u64, k: u64) {
        let build = || {
            let mut writers: Vec<AWSet<u64>> = (1..=8).map(|a| AWSet::new(ActorId(a))).collect();
            for e in 0..n {
                writers[(e % 8) as usize].insert(e);
            }
            joined(AWSet::new(ActorId(1000)), &writers)
        };
        let (a, ours_mem) = live_bytes(build);
        let mut b = AWSet::new(ActorId(2000));
        b.join(&a);
        for i in 0..k {
            b.insert(n + i);
        }
        let (pull, pull_bytes, merge) = ours(&a, &b, n);
        let build_theirs = || {
            let mut s = crdts::Orswot::<u64, u64>::new();
            for e in 0..n {
                let ctx = s.read_ctx().derive_add_ctx(e % 8 + 1);
                s.apply(s.add(e, ctx));
            }
            s
        };
        let (ta, theirs_mem) = live_bytes(build_theirs);
        let mut tb = ta.clone();
        for i in 0..k {
            let ctx = tb.read_ctx().derive_add_ctx(2000);
            tb.apply(tb.add(n + i, ctx));
        }
        let (theirs_merge, theirs_bytes) = theirs(&ta, &tb, n);
        rows.push(Row {
            what: format!("AWSet vs Orswot, 8 actors, k = {k} added"),
            n,
            pull,
            pull_bytes,
            merge,
            theirs_merge,
            theirs_bytes,
            ours_mem: ours_mem as f64 / n as f64,
            theirs_mem: theirs_mem as f64 / n as f64,
        });
    }

    fn counter_maps(rows: &mut Vec<Row>, n: u64, k: u64) {
        type Ours = Map<u64, PosNeg>;
        type Theirs = crdts::Map<u64, crdts::PNCounter<u64>, u64>;
        let build = || {
            let mut writers: Vec<Ours> = (1..=8).map(|a| Ours::new(ActorId(a))).collect();
            for key in 0..n {
                writers[(key % 8) as usize].apply(key, Count::Up(key + 1));
            }
            joined(Ours::new(ActorId(1000)), &writers)
        };
        let (a, ours_mem) = live_bytes(build);
        let mut b = Ours::new(ActorId(2000));
        b.join(&a);
        let step = (n / k).max(1);
        for i in 0..k {
            b.apply((i * step) % n, Count::Down(1));
        }
        let (pull, pull_bytes, merge) = ours(&a, &b, n);
        let build_theirs = || {
            let mut m = Theirs::new();
            for key in 0..n {
                let actor = key % 8 + 1;
                let ctx = m.read_ctx().derive_add_ctx(actor);
                let op = m.update(key, ctx, |c, _| c.inc_many(actor, key + 1));
                m.apply(op);
            }
            m
        };
        let (ta, theirs_mem) = live_bytes(build_theirs);
        let mut tb = ta.clone();
        for i in 0..k {
            let ctx = tb.read_ctx().derive_add_ctx(2000);
            let op = tb.update((i * step) % n, ctx, |c, _| c.dec(2000));
            tb.apply(op);
        }
        let (theirs_merge, theirs_bytes) = theirs(&ta, &tb, n);
        rows.push(Row {
            what: format!(
                "Map of PNCounters vs crdts::Map<_, PNCounter>, 8 actors, k = {k} changed"
            ),
            n,
            pull,
            pull_bytes,
            merge,
            theirs_merge,
            theirs_bytes,
            ours_mem: ours_mem as f64 / n as f64,
            theirs_mem: theirs_mem as f64 / n as f64,
        });
    }

    fn registers(rows: &mut Vec<Row>) {
        for actors in [8u64, 64] {
            // `actors` concurrent writes; b then overwrites them all.
            let build = || {
                let writers: Vec<MVReg<u64>> = (1..=actors)
                    .map(|a| {
                        let mut r = MVReg::new(ActorId(a));
                        r.write(a);
                        r
                    })
                    .collect();
                joined(MVReg::new(ActorId(1000)), &writers)
            };
            let (a, ours_mem) = live_bytes(build);
            let mut b = MVReg::new(ActorId(2000));
            b.join(&a);
            b.write(0);
            let (pull, pull_bytes, merge) = ours(&a, &b, actors);
            let build_theirs = || {
                let mut r = crdts::MVReg::<u64, u64>::new();
                for a in 1..=actors {
                    let mut w = crdts::MVReg::<u64, u64>::new();
                    let ctx = w.read_ctx().derive_add_ctx(a);
                    w.apply(w.write(a, ctx));
                    r.merge(w);
                }
                r
            };
            let (ta, theirs_mem) = live_bytes(build_theirs);
            let mut tb = ta.clone();
            let ctx = tb.read_ctx().derive_add_ctx(2000);
            tb.apply(tb.write(0, ctx));
            let (theirs_merge, theirs_bytes) = theirs(&ta, &tb, actors);
            rows.push(Row {
                what: format!("MVReg, {actors} concurrent values (n = values)"),
                n: actors,
                pull,
                pull_bytes,
                merge,
                theirs_merge,
                theirs_bytes,
                ours_mem: ours_mem as f64 / actors as f64,
                theirs_mem: theirs_mem as f64 / actors as f64,
            });
        }
    }

    pub(super) fn run() {
        println!("\n## (d) the palette against crdts 7, type by type\n");
        let mut rows = Vec::new();
        counters(&mut rows);
        registers(&mut rows);
        for n in [10_000u64, 100_000] {
            sets(&mut rows, n, 10);
            counter_maps(&mut rows, n, 10);
        }
        print(&rows);
    }
}
