//! Fuzz-style property tests of the wire decoder, so that `cargo test`
//! exercises what `fuzz/fuzz_targets/sync_codec.rs` fuzzes: arbitrary bytes,
//! arbitrary frames (exact, oversize, truncated, concatenated) and mutated
//! golden messages through [`MessageCodec`] and [`decode_message`].
//!
//! Every input is checked against a reference model of the framing (4-byte
//! big-endian length, then the body): a prefix above the limit is a
//! `CodecError::Frame` and reserves nothing; a frame still arriving is
//! `Ok(None)` with at most the limit reserved; a whole frame decodes exactly
//! as `decode_message` decodes its body, either a message that re-encodes to
//! itself or a `CodecError::Decode`. Nothing may panic.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use crdt::{ActorId, CausalContext, DeltaCrdt, Dot, ORMap};
use proptest::prelude::*;
use sync::fuzzing::{LIMITS, check_stream};
use sync::{
    CodecError, DEFAULT_MAX_FRAME_LENGTH, HANDSHAKE_MAX_FRAME_LENGTH, MAGIC, Message, MessageCodec,
    NodeId, PROTOCOL_VERSION, RejectReason, decode_message, encode_message,
};
use tokio_util::codec::Decoder;

/// A body on its own ([`sync::fuzzing::check_body`]), without measuring
/// allocation.
fn check_body(body: &[u8]) -> Result<Message, String> {
    sync::fuzzing::check_body(body, None)
}

/// The bodies of the golden vectors in `tests/golden/` (without prefix).
fn golden_bodies() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("tests/golden exists")
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let text = std::fs::read_to_string(&path).expect("a golden file");
            let frame = hex::decode(text.trim()).expect("golden files are hex");
            let name = path
                .file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            (name, frame[4..].to_vec())
        })
        .collect();
    out.sort();
    assert!(out.len() >= 12, "every message type has a golden vector");
    out
}

/// A few more valid messages with larger digests and deltas than the golden
/// vectors carry.
fn extra_bodies() -> Vec<Vec<u8>> {
    let mut a: ORMap<String, u32> = ORMap::new(ActorId(3));
    let mut b: ORMap<String, u32> = ORMap::new(ActorId(9));
    for i in 0..6u32 {
        a.insert(format!("origin-{i}"), i);
        b.insert(format!("origin-{}", i % 3), 100 + i);
    }
    let _ = a.remove(&"origin-1".to_string());
    if let Some(d) = b.delta_since(&a.digest()) {
        a.join_delta(d);
    }
    let delta = a.delta_since(&CausalContext::new()).expect("news");
    let mut digest = a.digest();
    // cloud dots: one past a prefix (a single mutation of the prefix's
    // counter reaches its edges) and one of the largest actor id
    digest.extend([
        Dot::new(ActorId(3), 40).expect("non-zero"),
        Dot::new(ActorId(u64::MAX), 40).expect("non-zero"),
    ]);
    [
        Message::Pull {
            replica: "health".into(),
            digest,
        },
        Message::Delta {
            replica: "origins".into(),
            delta: Some(Bytes::from(rmp_serde::to_vec(&delta).expect("encode"))),
            full: true,
        },
        Message::Notify {
            replica: "health".into(),
            news: (1..=8)
                .map(|c| Dot::new(ActorId(c % 3), c).expect("non-zero"))
                .collect(),
        },
        Message::Hello(sync::Hello {
            magic: MAGIC,
            max_version: PROTOCOL_VERSION,
            cluster: "dc1".into(),
            node: NodeId("hc-7".into()),
            min_version: sync::MIN_PROTOCOL_VERSION,
        }),
        Message::Reject {
            reason: RejectReason::UnsupportedVersion {
                min: 2,
                max: u16::MAX,
            },
        },
    ]
    .iter()
    .map(|m| encode_message(m).expect("encode"))
    .collect()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// How a frame's length prefix relates to its body.
#[derive(Debug, Clone)]
enum Prefix {
    /// The body's length.
    Exact,
    /// Above the limit (by 1 up to `u32::MAX`).
    Oversize(u32),
    /// More than the body holds: the frame is truncated.
    Truncated(u16),
    /// Less than the body: the rest is read as the next frame.
    Short(u16),
    /// Anything.
    Any(u32),
}

fn prefix() -> impl Strategy<Value = Prefix> {
    prop_oneof![
        4 => Just(Prefix::Exact),
        2 => prop_oneof![Just(1u32), Just(u32::MAX), any::<u32>()].prop_map(Prefix::Oversize),
        2 => (1u16..=512).prop_map(Prefix::Truncated),
        1 => (1u16..=64).prop_map(Prefix::Short),
        1 => any::<u32>().prop_map(Prefix::Any),
    ]
}

fn framed(body: &[u8], prefix: &Prefix, limit: usize) -> Vec<u8> {
    let len = body.len() as u64;
    let claimed = match prefix {
        Prefix::Exact => len,
        Prefix::Oversize(over) => (limit as u64 + u64::from(*over)).min(u64::from(u32::MAX)),
        Prefix::Truncated(more) => len + u64::from(*more),
        Prefix::Short(less) => len.saturating_sub(u64::from(*less)),
        Prefix::Any(n) => u64::from(*n),
    };
    let mut out = (claimed as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// A random change to a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Delete(prop::sample::Index, usize),
    /// Splices in a msgpack integer at an edge of its range.
    Int(prop::sample::Index, u64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let edge = prop_oneof![
        Just(0u64),
        Just(1),
        Just(0xff),
        Just(0xffff),
        Just(0xffff_ffff),
        Just(u64::MAX - 1),
        Just(u64::MAX),
        any::<u64>(),
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..6)
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<prop::sample::Index>(), 1usize..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<prop::sample::Index>(), edge).prop_map(|(i, n)| Mutation::Int(i, n)),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len();
    match m {
        Mutation::Flip(i, bit) if n > 0 => bytes[i.index(n)] ^= 1 << bit,
        Mutation::Set(i, b) if n > 0 => bytes[i.index(n)] = *b,
        Mutation::Insert(i, extra) => {
            let at = i.index(n + 1);
            bytes.splice(at..at, extra.iter().copied());
        }
        Mutation::Delete(i, len) if n > 0 => {
            let at = i.index(n);
            bytes.drain(at..(at + len).min(n));
        }
        Mutation::Int(i, value) => {
            let at = i.index(n + 1);
            // replace the integer-looking byte there, if any, else insert
            let end = if at < n && bytes[at] < 0x80 {
                at + 1
            } else {
                at
            };
            bytes.splice(at..end, rmp_serde::to_vec(value).expect("encode"));
        }
        _ => {}
    }
}

fn all_bodies() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = golden_bodies().into_iter().map(|(_, b)| b).collect();
    bodies.extend(extra_bodies());
    bodies
}

proptest! {
    // No failure persistence: the named regression tests below keep what
    // was found.
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic_and_follow_the_framing(
        input in prop::collection::vec(any::<u8>(), 0..600),
        limit in prop::sample::select(&LIMITS[..]),
        chunk in prop_oneof![Just(usize::MAX), 1usize..16],
    ) {
        let _ = check_body(&input);
        check_stream(&input, limit, chunk);
        // the fuzz target's body
        sync::fuzzing::sync_codec(&input, None);
    }

    #[test]
    fn arbitrary_frames_never_panic_and_follow_the_framing(
        frames in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..200), prefix(), any::<prop::sample::Index>(), any::<bool>()),
            1..4,
        ),
        limit in prop::sample::select(&LIMITS[..]),
        chunk in prop_oneof![Just(usize::MAX), 1usize..64],
    ) {
        let bodies = all_bodies();
        let mut input = Vec::new();
        for (random, prefix, which, golden) in &frames {
            let body = if *golden { &bodies[which.index(bodies.len())] } else { random };
            input.extend(framed(body, prefix, limit));
        }
        check_stream(&input, limit, chunk);
    }

    #[test]
    fn mutated_golden_messages_never_panic(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
        in_frame in any::<bool>(),
        chunk in prop_oneof![Just(usize::MAX), 1usize..16],
    ) {
        let bodies = all_bodies();
        let mut bytes = bodies[which.index(bodies.len())].clone();
        if in_frame {
            // mutate the prefix too
            bytes = frame(&bytes);
            for m in &mutations {
                mutate(&mut bytes, m);
            }
            check_stream(&bytes, HANDSHAKE_MAX_FRAME_LENGTH, chunk);
        } else {
            for m in &mutations {
                mutate(&mut bytes, m);
            }
            let _ = check_body(&bytes);
            check_stream(&frame(&bytes), DEFAULT_MAX_FRAME_LENGTH, chunk);
        }
    }
}

#[test]
fn golden_and_extra_messages_decode_through_the_model() {
    let bodies = all_bodies();
    let stream: Vec<u8> = bodies.iter().flat_map(|b| frame(b)).collect();
    for chunk in [usize::MAX, 1, 7] {
        let out = check_stream(&stream, DEFAULT_MAX_FRAME_LENGTH, chunk);
        assert_eq!(out.len(), bodies.len(), "every valid frame decodes");
    }
}

/// The documented limit behaviour, at the edges: a prefix at the limit
/// waits for its body (and reserves at most that), one byte above is refused
/// before anything is reserved, also after the limit is raised or lowered.
#[test]
fn the_limit_is_exact_and_reserves_at_most_one_frame() {
    for limit in [1usize, 64, HANDSHAKE_MAX_FRAME_LENGTH] {
        let mut codec = MessageCodec::new(limit);
        let mut buf = BytesMut::from(&(limit as u32).to_be_bytes()[..]);
        assert!(matches!(codec.decode(&mut buf), Ok(None)), "{limit}");
        assert!(buf.capacity() <= limit + 64, "{}", buf.capacity());
        let mut codec = MessageCodec::new(limit);
        let mut buf = BytesMut::from(&(limit as u32 + 1).to_be_bytes()[..]);
        assert!(matches!(codec.decode(&mut buf), Err(CodecError::Frame(_))));
        assert!(buf.capacity() <= 64);
    }
    let mut codec = MessageCodec::new(DEFAULT_MAX_FRAME_LENGTH);
    codec.set_max_frame_length(HANDSHAKE_MAX_FRAME_LENGTH);
    let mut buf = BytesMut::from(&(HANDSHAKE_MAX_FRAME_LENGTH as u32 + 1).to_be_bytes()[..]);
    assert!(matches!(codec.decode(&mut buf), Err(CodecError::Frame(_))));
    assert!(buf.capacity() <= 64, "the lowered limit applies");
    // the largest prefix with the default limit
    let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
    assert!(matches!(
        MessageCodec::default().decode(&mut buf),
        Err(CodecError::Frame(_))
    ));
    assert!(buf.capacity() <= 64);
}

/// Regression (found by `crdt/tests/fuzz_decode.rs`, reachable from the
/// wire here): a `Pull` whose digest has a prefix of `u64::MAX` for an actor
/// and a cloud dot of the same actor makes the digest's compactness check
/// compute `u64::MAX + 1` (crdt `CausalContext` decoding): a panic in debug
/// builds, and in release a non-compact digest accepted. It must be a
/// `Decode` error.
#[test]
fn regression_pull_digest_with_a_prefix_at_u64_max() {
    // {"Pull": ["health", [[[1, u64::MAX]], [[1, 5]]]]}
    let body =
        hex::decode("81a450756c6c92a66865616c746892919201cfffffffffffffffff91920105").expect("hex");
    let wire = std::collections::BTreeMap::from([(
        "Pull",
        ("health", (vec![(1u64, u64::MAX)], vec![(1u64, 5u64)])),
    )]);
    assert_eq!(body, rmp_serde::to_vec(&wire).expect("encode"));
    let result = std::panic::catch_unwind(|| decode_message(&body));
    assert!(
        matches!(result, Ok(Err(CodecError::Decode(_)))),
        "decoding {} must be a Decode error, not a panic nor a message",
        hex::encode(&body)
    );
}
