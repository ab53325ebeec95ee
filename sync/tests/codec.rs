//! The wire codec: golden vectors pin the encoding of every message type;
//! decoding is checked on `BytesMut` and through `Framed`, with the input
//! split at every byte boundary; bad input is an error, never a panic.
//!
//! To regenerate the golden vectors after a deliberate protocol change (and a
//! new `PROTOCOL_VERSION`): `UPDATE_GOLDEN=1 cargo test -p sync --test codec`.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use crdt::{ActorId, CausalContext, DeltaCrdt, Dot, ORMap, Rows};
use futures_util::StreamExt;
use proptest::prelude::*;
use sync::{
    CodecError, Hello, HelloOk, MAGIC, MIN_PROTOCOL_VERSION, Message, MessageCodec, NodeId,
    PROTOCOL_VERSION, RejectReason, decode_message, encode_message, negotiate,
};
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::codec::{Decoder, Encoder, FramedRead};

fn digest() -> CausalContext {
    let mut c = CausalContext::new();
    c.extend([
        Dot::new(ActorId(1), 1).expect("non-zero"),
        Dot::new(ActorId(1), 2).expect("non-zero"),
        Dot::new(ActorId(7), 5).expect("non-zero"),
    ]);
    c
}

fn delta_bytes() -> Bytes {
    let mut a: ORMap<String, u32> = ORMap::new(ActorId(3));
    a.insert("origin-1".into(), 200);
    // An answer's last part: the pair (head, rows).
    let (head, _, rows) =
        <ORMap<String, u32> as Rows>::split(a.delta_since(&CausalContext::new()).expect("news"));
    Bytes::from(rmp_serde::to_vec(&(head, rows)).expect("encode"))
}

/// One example of every message type, named after its golden file.
fn examples() -> Vec<(&'static str, Message)> {
    vec![
        (
            "hello",
            Message::Hello(Hello {
                magic: MAGIC,
                max_version: PROTOCOL_VERSION,
                cluster: "dc1".into(),
                node: NodeId("hc-1".into()),
                min_version: MIN_PROTOCOL_VERSION,
            }),
        ),
        (
            "hello_ok",
            Message::HelloOk(HelloOk {
                node: NodeId("hc-2".into()),
                version: PROTOCOL_VERSION,
            }),
        ),
        (
            "reject_not_a_hello",
            Message::Reject {
                reason: RejectReason::NotAHello,
            },
        ),
        (
            "reject_version",
            Message::Reject {
                reason: RejectReason::UnsupportedVersion { min: 2, max: 2 },
            },
        ),
        (
            "reject_cluster",
            Message::Reject {
                reason: RejectReason::WrongCluster {
                    expected: "dc1".into(),
                },
            },
        ),
        (
            "reject_busy",
            Message::Reject {
                reason: RejectReason::Busy,
            },
        ),
        (
            "pull",
            Message::Pull {
                replica: "health".into(),
                digest: digest(),
            },
        ),
        (
            "delta",
            Message::Delta {
                replica: "health".into(),
                delta: Some(delta_bytes()),
                full: false,
            },
        ),
        (
            "delta_full",
            Message::Delta {
                replica: "origins".into(),
                delta: Some(delta_bytes()),
                full: true,
            },
        ),
        (
            "chunk",
            Message::Chunk {
                replica: "origins".into(),
                rows: Bytes::from_static(&[0x91, 0x92, 0x01, 0x02]),
            },
        ),
        (
            "delta_none",
            Message::Delta {
                replica: "health".into(),
                delta: None,
                full: false,
            },
        ),
        (
            "notify",
            Message::Notify {
                replica: "health".into(),
                news: vec![Dot::new(ActorId(7), 6).expect("non-zero")],
            },
        ),
        (
            "notify_unlisted",
            Message::Notify {
                replica: "health".into(),
                news: vec![],
            },
        ),
    ]
}

fn frame(message: &Message) -> BytesMut {
    let mut buf = BytesMut::new();
    MessageCodec::default()
        .encode(message, &mut buf)
        .expect("encode");
    buf
}

#[test]
fn golden_vectors_pin_every_message_type() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (name, message) in examples() {
        let path = dir.join(format!("{name}.hex"));
        let encoded = hex::encode(frame(&message));
        if update {
            std::fs::write(&path, format!("{encoded}\n")).expect("write golden file");
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 once)", path.display()));
        assert_eq!(encoded, golden.trim(), "encoding of {name} changed");
        let mut bytes = BytesMut::from(&hex::decode(golden.trim()).expect("hex")[..]);
        let decoded = MessageCodec::default()
            .decode(&mut bytes)
            .expect("decode")
            .expect("whole frame");
        assert_eq!(decoded, message, "{name}");
        assert!(bytes.is_empty());
    }
}

#[test]
fn decoding_a_stream_split_at_every_byte_boundary() {
    let messages: Vec<Message> = examples().into_iter().map(|(_, m)| m).collect();
    let stream: Vec<u8> = messages.iter().flat_map(|m| frame(m).to_vec()).collect();
    for split in 0..=stream.len() {
        let mut codec = MessageCodec::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for part in [&stream[..split], &stream[split..]] {
            buf.extend_from_slice(part);
            while let Some(m) = codec.decode(&mut buf).expect("valid stream") {
                out.push(m);
            }
        }
        assert_eq!(out, messages, "split at {split}");
        assert_eq!(codec.bytes_decoded(), stream.len() as u64);
    }
    // and one byte at a time
    let mut codec = MessageCodec::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for b in &stream {
        buf.extend_from_slice(&[*b]);
        while let Some(m) = codec.decode(&mut buf).expect("valid stream") {
            out.push(m);
        }
    }
    assert_eq!(out, messages);
}

/// An `AsyncRead` that hands out its input in the given chunk sizes.
struct Chunked {
    data: Vec<u8>,
    pos: usize,
    sizes: Vec<usize>,
    next: usize,
}

impl AsyncRead for Chunked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let size = self.sizes[self.next % self.sizes.len()].max(1);
        self.next += 1;
        let end = (self.pos + size)
            .min(self.data.len())
            .min(self.pos + buf.remaining());
        let pos = self.pos;
        buf.put_slice(&self.data[pos..end]);
        self.pos = end;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn framed_read_over_every_chunking() {
    let messages: Vec<Message> = examples().into_iter().map(|(_, m)| m).collect();
    let stream: Vec<u8> = messages.iter().flat_map(|m| frame(m).to_vec()).collect();
    for first in 1..=stream.len().min(64) {
        let reader = Chunked {
            data: stream.clone(),
            pos: 0,
            sizes: vec![first, 1, 3, 7],
            next: 0,
        };
        let out: Vec<Message> = FramedRead::new(reader, MessageCodec::default())
            .map(|m| m.expect("valid stream"))
            .collect()
            .await;
        assert_eq!(out, messages, "chunks starting with {first}");
    }
}

#[test]
fn an_oversize_length_prefix_is_refused_before_buffering() {
    let mut codec = MessageCodec::new(1024);
    let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xf0, 1, 2, 3][..]);
    assert!(matches!(codec.decode(&mut buf), Err(CodecError::Frame(_))));
    // the default limit is 16 MiB
    let mut buf = BytesMut::from(&(16u32 * 1024 * 1024 + 1).to_be_bytes()[..]);
    assert!(matches!(
        MessageCodec::default().decode(&mut buf),
        Err(CodecError::Frame(_))
    ));
    assert!(
        buf.capacity() < 1024 * 1024,
        "nothing was reserved for the claimed frame"
    );
}

#[test]
fn the_handshake_limit_applies_until_raised() {
    let hello = frame(&examples()[0].1);
    let pull = frame(&Message::Pull {
        replica: "x".repeat(5000),
        digest: digest(),
    });
    let mut codec = MessageCodec::new(sync::HANDSHAKE_MAX_FRAME_LENGTH);
    let mut buf = hello.clone();
    assert!(matches!(
        codec.decode(&mut buf),
        Ok(Some(Message::Hello { .. }))
    ));
    let mut buf = pull.clone();
    assert!(
        codec.decode(&mut buf).is_err(),
        "5 KB before the handshake is refused"
    );
    let mut codec = MessageCodec::new(sync::HANDSHAKE_MAX_FRAME_LENGTH);
    codec.set_max_frame_length(sync::DEFAULT_MAX_FRAME_LENGTH);
    let mut buf = pull;
    assert!(matches!(
        codec.decode(&mut buf),
        Ok(Some(Message::Pull { .. }))
    ));
}

#[test]
fn garbage_frames_are_errors() {
    for body in [
        &b"\xc1"[..],
        b"\x93\x01\x02\x03",
        b"not msgpack at all",
        b"",
    ] {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
        buf.extend_from_slice(body);
        assert!(
            matches!(
                MessageCodec::default().decode(&mut buf),
                Err(CodecError::Decode(_))
            ),
            "{body:?}"
        );
    }
    // a well-formed pull whose digest breaks an invariant (a zero counter)
    let pull = |counter: u64| {
        let body = std::collections::BTreeMap::from([(
            "Pull",
            ("health", (vec![(1u64, counter)], Vec::<(u64, u64)>::new())),
        )]);
        let body = rmp_serde::to_vec(&body).expect("encode");
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
        buf.extend_from_slice(&body);
        MessageCodec::default().decode(&mut buf)
    };
    assert!(
        matches!(pull(3), Ok(Some(Message::Pull { .. }))),
        "control: counter 3 is valid"
    );
    assert!(matches!(pull(0), Err(CodecError::Decode(_))));
}

#[test]
fn a_message_over_the_limit_is_not_sent() {
    let mut codec = MessageCodec::new(16);
    let mut buf = BytesMut::new();
    let big = Message::Notify {
        replica: "x".repeat(100),
        news: vec![],
    };
    assert!(matches!(
        codec.encode(&big, &mut buf),
        Err(CodecError::TooLarge { .. })
    ));
    assert!(buf.is_empty());
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<u32>(),
            any::<u16>(),
            ".{0,20}",
            ".{0,20}",
            any::<u16>()
        )
            .prop_map(|(magic, max_version, cluster, node, min_version)| {
                Message::Hello(Hello {
                    magic,
                    max_version,
                    cluster,
                    node: NodeId(node),
                    min_version,
                })
            }),
        (".{0,20}", any::<u16>()).prop_map(|(n, version)| Message::HelloOk(HelloOk {
            node: NodeId(n),
            version
        })),
        (".{0,20}", prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(replica, rows)| {
            Message::Chunk {
                replica,
                rows: Bytes::from(rows),
            }
        }),
        (".{0,20}", crdt::arbitrary::causal_context())
            .prop_map(|(replica, digest)| Message::Pull { replica, digest }),
        (
            ".{0,20}",
            prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
            any::<bool>()
        )
            .prop_map(|(replica, delta, full)| Message::Delta {
                replica,
                delta: delta.map(Bytes::from),
                full
            }),
        (
            ".{0,20}",
            prop::collection::vec(crdt::arbitrary::dot(), 0..8)
        )
            .prop_map(|(replica, news)| Message::Notify { replica, news }),
    ]
}

proptest! {
    #[test]
    fn messages_round_trip(m in message()) {
        let mut buf = frame(&m);
        prop_assert_eq!(MessageCodec::default().decode(&mut buf).expect("decode"), Some(m.clone()));
        prop_assert_eq!(encode_message(&m).expect("encode").len() + 4, frame(&m).len());
    }

    #[test]
    fn random_frames_never_panic(body in prop::collection::vec(any::<u8>(), 0..256), prefix: bool) {
        let mut buf = BytesMut::new();
        if prefix {
            buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
        }
        buf.extend_from_slice(&body);
        let mut codec = MessageCodec::new(4096);
        // decode until an error or no progress
        for _ in 0..8 {
            match codec.decode(&mut buf) {
                Ok(Some(_)) => continue,
                _ => break,
            }
        }
    }
}

/// What a later version may send: a hello and a hello_ok with fields this
/// version does not know, appended. They decode, the extra fields ignored;
/// a version-1 hello (no range) speaks only its one version.
#[test]
fn hellos_of_other_versions_decode() {
    let later_hello = rmp_serde::to_vec(&std::collections::BTreeMap::from([(
        "Hello",
        (
            MAGIC,
            3u16,
            "dc1",
            "hc-9",
            2u16,
            "a field of version 3",
            [1u8, 2, 3],
        ),
    )]))
    .expect("encode");
    match decode_message(&later_hello).expect("decodes") {
        Message::Hello(h) => {
            assert_eq!((h.min_version, h.max_version), (2, 3));
            assert_eq!((h.cluster.as_str(), h.node.0.as_str()), ("dc1", "hc-9"));
            assert_eq!(
                negotiate((MIN_PROTOCOL_VERSION, PROTOCOL_VERSION), (2, 3)),
                Some(2)
            );
        }
        other => panic!("not a hello: {other:?}"),
    }
    let v1_hello = rmp_serde::to_vec(&std::collections::BTreeMap::from([(
        "Hello",
        (MAGIC, 1u16, "dc1", "hc-1"),
    )]))
    .expect("encode");
    match decode_message(&v1_hello).expect("decodes") {
        Message::Hello(h) => {
            assert_eq!((h.min_version, h.max_version), (1, 1));
            assert_eq!(
                negotiate((MIN_PROTOCOL_VERSION, PROTOCOL_VERSION), (1, 1)),
                None
            );
        }
        other => panic!("not a hello: {other:?}"),
    }
    let later_ok = rmp_serde::to_vec(&std::collections::BTreeMap::from([(
        "HelloOk",
        ("hc-2", 2u16, "more"),
    )]))
    .expect("encode");
    assert_eq!(
        decode_message(&later_ok).expect("decodes"),
        Message::HelloOk(HelloOk {
            node: NodeId("hc-2".into()),
            version: 2
        })
    );
}
