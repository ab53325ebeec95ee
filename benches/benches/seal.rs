//! What the cluster key costs: sealing and opening a sync frame (stream
//! session) and a SWIM datagram, by size.
//!
//! Run: `cargo bench -p benches --bench seal`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use seal::{DatagramSealer, Key, Keyring, Role, StreamSession};

fn stream(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_seal_open");
    let keys = Keyring::new(Key::generate());
    for size in [100usize, 1_400, 64 * 1024] {
        let body = vec![7u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &body, |b, body| {
            let mut client = StreamSession::new(keys.clone(), "bench", Role::Client);
            let mut server = StreamSession::new(keys.clone(), "bench", Role::Server);
            let hello = client.seal(b"hello").expect("seal");
            server.open(&hello).expect("open");
            let ok = server.seal(b"ok").expect("seal");
            client.open(&ok).expect("open");
            b.iter(|| {
                let frame = client.seal(black_box(body)).expect("seal");
                black_box(server.open(&frame).expect("open"))
            });
        });
    }
    group.finish();
}

fn datagram(c: &mut Criterion) {
    let mut group = c.benchmark_group("datagram_seal_open");
    let keys = Keyring::new(Key::generate());
    for size in [100usize, 1_346] {
        let body = vec![7u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &body, |b, body| {
            let tx = DatagramSealer::new(keys.clone(), "bench", 30_000, 65_536);
            let mut rx = DatagramSealer::new(keys.clone(), "bench", 30_000, 65_536);
            let mut now = 1_800_000_000_000u64;
            b.iter(|| {
                now += 1;
                let d = tx.seal(now, black_box(body)).expect("seal");
                black_box(rx.open(now, &d).expect("open"))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, stream, datagram);
criterion_main!(benches);
