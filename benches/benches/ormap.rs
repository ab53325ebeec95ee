//! ORMap benches: `delta_since` against a scan-every-key baseline, and
//! `join_delta` throughput. Run: `cargo bench -p benches --bench ormap`.

use std::hint::black_box;

use benches::{Map, build_map, change_keys, scan_delta_since};
use crdt::{ActorId, DeltaCrdt};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const ACTORS: u64 = 8;
const CHANGED: u64 = 10;

fn delta_since(c: &mut Criterion) {
    let mut group = c.benchmark_group("delta_since_10_changed");
    group.sample_size(20);
    for n in [10_000u64, 100_000, 1_000_000] {
        let mut map = build_map(n, ACTORS);
        let digest = change_keys(&mut map, n, CHANGED);
        assert_eq!(
            map.delta_since(&digest).map(|d| d.len()),
            Some(CHANGED as usize)
        );
        group.bench_with_input(BenchmarkId::new("indexed", n), &n, |b, _| {
            b.iter(|| black_box(map.delta_since(black_box(&digest))))
        });
        group.bench_with_input(BenchmarkId::new("scan", n), &n, |b, _| {
            b.iter(|| black_box(scan_delta_since(&map, black_box(&digest))))
        });
    }
    group.finish();
}

fn join_delta(c: &mut Criterion) {
    let mut group = c.benchmark_group("join_delta");
    group.sample_size(20);
    for (n, k) in [(100_000u64, 1_000u64), (100_000, 10_000)] {
        let base = build_map(n, ACTORS);
        let mut writer = base.clone();
        let digest = change_keys(&mut writer, n, k);
        let delta = writer.delta_since(&digest).expect("changes");
        let mut receiver = Map::new(ActorId(2000));
        receiver.join_delta(base.state());
        group.throughput(Throughput::Elements(k));
        group.bench_function(BenchmarkId::new(format!("into_{n}_keys"), k), |b| {
            b.iter_batched(
                || (receiver.clone(), delta.clone()),
                |(mut r, d)| {
                    // return the map so that dropping it is not timed
                    let changes = r.join_delta(d);
                    (r, changes)
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_function(BenchmarkId::new("into_empty", k), |b| {
            b.iter_batched(
                || (Map::new(ActorId(2000)), delta.clone()),
                |(mut r, d)| {
                    // return the map so that dropping it is not timed
                    let changes = r.join_delta(d);
                    (r, changes)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, delta_since, join_delta);
criterion_main!(benches);
