//! Fuzz-style tests of what arrives over the wire: arbitrary bytes, values in
//! the wire shape with extreme integers, and mutated valid encodings, decoded
//! with rmp-serde as `VersionVector`, `CausalContext`, `Delta` and `ORMap`.
//!
//! Decoding must never panic, and whatever is accepted must keep the
//! invariants the crate documents (contexts compact, sibling dots in the
//! context and under one key, frontier inside the context, canonical
//! encoding) and must be usable: joined into a replica, answered from, and
//! followed by local writes, leaving a replica whose own encoding decodes.
//!
//! The body of `fuzz/fuzz_targets/crdt_decode.rs` is
//! `crdt::fuzzing::crdt_decode`, and the checks here are the ones it is made
//! of (`crdt::fuzzing`); this crate has no proptest dev-dependency, so inputs come from a seeded
//! SplitMix64 and every failure names the input (hex) that caused it.

use std::{
    fmt::Write as _,
    panic::{self, AssertUnwindSafe},
};

use crdt::{
    ActorId, CausalContext, Delta, DeltaCrdt, ORMap,
    fuzzing::{check_context, check_map, encode, use_delta, use_map},
};
use serde::de::DeserializeOwned;

/// A tiny deterministic generator (SplitMix64): the same inputs every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Integers at the edges of every msgpack width and of the counter range.
const EDGES: [u64; 17] = [
    0,
    1,
    2,
    3,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xffff,
    0x1_0000,
    0xffff_ffff,
    0x1_0000_0000,
    i64::MAX as u64,
    u64::MAX - 2,
    u64::MAX - 1,
    u64::MAX,
    1 << 63,
];

/// Bytes that start msgpack values: fixarray/fixmap/fixstr headers, nil,
/// bools, bin/str/array/map headers of every width, integers of every width.
const TOKENS: [u8; 28] = [
    0x90, 0x91, 0x92, 0x93, 0x94, 0x80, 0x81, 0xa0, 0xa1, 0xc0, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xcc,
    0xcd, 0xce, 0xcf, 0xd0, 0xd3, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Decodes untrusted bytes; a panic fails the test and names the input.
fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Option<T> {
    match panic::catch_unwind(|| crdt::fuzzing::decode::<T>(bytes, None)) {
        Ok(value) => value,
        Err(_) => panic!("decoding {what} panicked on input {}", hex(bytes)),
    }
}

/// Runs `f` on a value decoded from `bytes`; a panic names the input.
fn exercise(what: &str, bytes: &[u8], f: impl FnOnce()) {
    if panic::catch_unwind(AssertUnwindSafe(f)).is_err() {
        panic!(
            "{what} panicked on a value decoded from input {}",
            hex(bytes)
        );
    }
}

/// The fuzz target's body on `bytes`, joined with `populated`; a panic names
/// the input.
fn decode_all(bytes: &[u8], populated: &ORMap<u8, u8>) {
    exercise("crdt::fuzzing::crdt_decode", bytes, || {
        crdt::fuzzing::crdt_decode(bytes, populated, None)
    });
}

/// Replicas after a random history of writes, removes, pulls and purges.
fn history(rng: &mut Rng, ops: usize) -> Vec<ORMap<u8, u8>> {
    let mut maps: Vec<ORMap<u8, u8>> = (1..=3).map(|a| ORMap::new(ActorId(a))).collect();
    for _ in 0..ops {
        let r = rng.below(3);
        match rng.below(10) {
            0..=3 => {
                let (k, v) = (rng.below(8) as u8, rng.next() as u8);
                maps[r].insert(k, v);
            }
            4..=5 => {
                let k = rng.below(8) as u8;
                let _ = maps[r].remove(&k);
            }
            6..=8 => {
                let from = rng.below(3);
                if let Some(d) = maps[from].delta_since(&maps[r].digest()) {
                    maps[r].join_delta(d);
                }
            }
            _ => {
                let stable = maps[0]
                    .context()
                    .meet(maps[1].context())
                    .meet(maps[2].context());
                maps[r].purge(&stable);
            }
        }
    }
    maps
}

/// Valid encodings of every wire type from one history.
fn goldens(rng: &mut Rng) -> Vec<Vec<u8>> {
    let ops = 5 + rng.below(40);
    let maps = history(rng, ops);
    let mut out = vec![
        encode(&maps[0]),
        encode(&maps[1].state()),
        encode(maps[2].context()),
        encode(maps[0].purge_frontier()),
        encode(maps[1].context().version_vector()),
    ];
    if let Some(d) = maps[2].delta_since(&maps[0].digest()) {
        out.push(encode(&d));
    }
    let mut writer = maps[1].clone();
    out.push(encode(&writer.insert(3, 3)));
    out
}

/// One random change to a byte string: flip, set, insert, delete, duplicate,
/// or splice in a msgpack integer at an edge.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let n = bytes.len();
    let at = rng.below(n + 1);
    match rng.below(7) {
        0 if n > 0 => bytes[at.min(n - 1)] ^= 1 << rng.below(8),
        1 if n > 0 => {
            let b = if rng.chance(50) {
                rng.pick(&TOKENS)
            } else {
                rng.next() as u8
            };
            bytes[at.min(n - 1)] = b;
        }
        2 => {
            let extra: Vec<u8> = (0..1 + rng.below(4)).map(|_| rng.next() as u8).collect();
            bytes.splice(at..at, extra);
        }
        3 if n > 0 => {
            let end = (at + 1 + rng.below(6)).min(n);
            bytes.drain(at.min(n - 1)..end);
        }
        4 if n > 0 => {
            let end = (at + 1 + rng.below(8)).min(n);
            let copy = bytes[at.min(n - 1)..end].to_vec();
            let to = rng.below(n + 1);
            bytes.splice(to..to, copy);
        }
        5 => {
            let int = encode(&rng.pick(&EDGES));
            bytes.splice(at..at, int);
        }
        _ => {
            // replace an integer-looking byte with a wide edge integer
            if let Some(i) = (0..n).map(|i| (at + i) % n).find(|&i| bytes[i] < 0x80) {
                let int = encode(&rng.pick(&EDGES));
                bytes.splice(i..=i, int);
            }
        }
    }
}

fn populated() -> ORMap<u8, u8> {
    let mut rng = Rng(7);
    history(&mut rng, 30).swap_remove(0)
}

#[test]
fn arbitrary_bytes_never_panic() {
    let populated = populated();
    let mut rng = Rng(1);
    for _ in 0..3000 {
        let len = rng.below(64);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.chance(40) {
                    rng.pick(&TOKENS)
                } else if rng.chance(50) {
                    rng.below(8) as u8
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        decode_all(&bytes, &populated);
    }
}

#[test]
fn mutated_valid_encodings_never_panic_nor_break_invariants() {
    let populated = populated();
    let mut rng = Rng(2);
    for _ in 0..150 {
        for golden in goldens(&mut rng) {
            for _ in 0..4 {
                let mut bytes = golden.clone();
                for _ in 0..1 + rng.below(3) {
                    mutate(&mut rng, &mut bytes);
                }
                decode_all(&bytes, &populated);
            }
        }
    }
}

#[test]
fn valid_encodings_are_accepted_and_keep_their_invariants() {
    let populated = populated();
    let mut rng = Rng(3);
    for _ in 0..40 {
        let maps = history(&mut rng, 40);
        for m in &maps {
            let bytes = encode(m);
            let back: ORMap<u8, u8> = decode("ORMap", &bytes).expect("a valid map decodes");
            use_map(&back);
            let state: Delta<u8, u8> =
                decode("Delta", &encode(&m.state())).expect("a valid state decodes");
            use_delta(&state, &populated);
            let ctx: CausalContext =
                decode("CausalContext", &encode(m.context())).expect("a valid context decodes");
            check_context(&ctx);
        }
    }
}

/// A counter drawn from the edges, or small.
fn counter(rng: &mut Rng) -> u64 {
    if rng.chance(40) {
        rng.pick(&EDGES)
    } else {
        1 + rng.below(6) as u64
    }
}

fn actor(rng: &mut Rng) -> u64 {
    if rng.chance(15) {
        rng.pick(&EDGES)
    } else {
        1 + rng.below(3) as u64
    }
}

type Pairs = Vec<(u64, u64)>;

/// A map or delta entry in its wire shape: a key and its siblings
/// `((actor, counter), value)`.
type EntryWire = (u8, Vec<((u64, u64), Option<u8>)>);

/// Version vector entries, usually sorted and deduplicated so that the
/// decoder's later checks are reached.
fn pairs(rng: &mut Rng, max: usize) -> Pairs {
    let mut out: Pairs = (0..rng.below(max + 1))
        .map(|_| (actor(rng), counter(rng)))
        .collect();
    if rng.chance(85) {
        out.sort_unstable();
        out.dedup_by_key(|p| p.0);
    }
    out
}

/// A context in its wire shape `(vv, cloud)`, usually sorted so that the
/// compactness check is what decides.
fn context_wire(rng: &mut Rng) -> (Pairs, Pairs) {
    let vv = pairs(rng, 3);
    let mut cloud: Pairs = (0..rng.below(4))
        .map(|_| (actor(rng), counter(rng)))
        .collect();
    if rng.chance(85) {
        cloud.sort_unstable();
        cloud.dedup();
    }
    (vv, cloud)
}

/// Values in the wire shapes of the crate's types (tuples encode like the
/// derived structs), with integers at the edges of their ranges.
#[test]
fn wire_shaped_values_with_edge_integers_never_panic_nor_break_invariants() {
    let populated = populated();
    let mut rng = Rng(4);
    for _ in 0..2500 {
        let context = context_wire(&mut rng);
        let mut dots: Pairs = context.0.clone();
        dots.extend(context.1.iter().copied());
        let entries: Vec<EntryWire> = (0..rng.below(3))
            .map(|k| {
                let siblings = (0..1 + rng.below(2))
                    .map(|_| {
                        let dot = if !dots.is_empty() && rng.chance(80) {
                            dots[rng.below(dots.len())]
                        } else {
                            (actor(&mut rng), counter(&mut rng))
                        };
                        (dot, rng.chance(70).then_some(k as u8))
                    })
                    .collect();
                (k as u8, siblings)
            })
            .collect();
        let frontier = if rng.chance(50) {
            Vec::new()
        } else {
            pairs(&mut rng, 2)
        };
        let inputs = [
            encode(&context.0),
            encode(&context),
            encode(&(&entries, &context, &frontier, rng.chance(50))),
            encode(&(actor(&mut rng), &entries, &context, &frontier)),
        ];
        for bytes in &inputs {
            decode_all(bytes, &populated);
        }
    }
}

/// Regression: a context whose prefix for an actor is `u64::MAX` and whose
/// cloud holds a dot of the same actor. The compactness check computes
/// `prefix + 1`, which overflows: a panic in debug builds, and in release
/// the check wraps and accepts a non-compact context. Found by
/// `wire_shaped_values_with_edge_integers_never_panic_nor_break_invariants`.
#[test]
fn regression_context_prefix_at_u64_max_with_a_cloud_dot() {
    // ([(1, u64::MAX)], [(1, 5)])
    let bytes = [
        0x92, 0x91, 0x92, 0x01, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x91, 0x92,
        0x01, 0x05,
    ];
    assert_eq!(
        bytes[..],
        encode(&(vec![(1u64, u64::MAX)], vec![(1u64, 5u64)]))[..]
    );
    let decoded = decode::<CausalContext>("CausalContext", &bytes);
    assert!(
        decoded.is_none(),
        "the cloud dot 1:5 is covered by the prefix 1:u64::MAX: {decoded:?}"
    );
}

/// Regression: an answer whose context holds the receiver's own dot at a
/// counter near `u64::MAX` is accepted; the receiver's next writes then
/// compute `u64::MAX + 1`: in `CausalContext::next_dot` (context at
/// `u64::MAX`) or in `CausalContext::insert` (context at `u64::MAX - 1`, the
/// write of dot `u64::MAX`). A panic in debug builds; in release a dot with
/// counter 0, which no peer will decode. Either decoding refuses such
/// counters or the replica must survive its next writes.
#[test]
fn regression_local_writes_after_joining_own_counter_near_u64_max() {
    for counter in [u64::MAX, u64::MAX - 1] {
        // Delta<u8, u8>: entries [], context ([(1, counter)], []), frontier [], full false
        let bytes = encode(&(
            Vec::<(u8, Vec<((u64, u64), Option<u8>)>)>::new(),
            (vec![(1u64, counter)], Vec::<(u64, u64)>::new()),
            Vec::<(u64, u64)>::new(),
            false,
        ));
        if let Some(delta) = decode::<Delta<u8, u8>>("Delta<u8, u8>", &bytes) {
            exercise("local writes after the join", &bytes, || {
                let mut m = ORMap::<u8, u8>::new(ActorId(1));
                m.join_delta(delta);
                m.insert(1, 1);
                let _ = m.remove(&1);
                check_map(&m);
            });
        }
    }
}
