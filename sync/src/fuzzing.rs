//! The body of the `sync_codec` fuzz target and the checks it is made of
//! (behind the `fuzzing` feature): `fuzz/fuzz_targets/sync_codec.rs` runs
//! [`sync_codec`] under libFuzzer (with an allocator that measures), and
//! `tests/fuzz_inputs.rs` runs it, [`check_body`] and [`check_stream`] on
//! generated input under `cargo test`, so each check is written once.
//!
//! The framing model: a 4-byte big-endian length, then the body. A prefix
//! above the limit is a `CodecError::Frame` and reserves nothing; a frame
//! still arriving is `Ok(None)` with at most the limit reserved; a whole
//! frame decodes exactly as `decode_message` decodes its body, either a
//! message that re-encodes to itself or a `CodecError::Decode`.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::{CodecError, HANDSHAKE_MAX_FRAME_LENGTH, Message, MessageCodec};

/// Measures allocation: runs the closure and returns the most bytes it had
/// allocated at once. The fuzz targets count with a global allocator;
/// `cargo test` has none and passes `None`, which skips the bound.
pub type Measure<'a> = Option<&'a dyn Fn(&mut dyn FnMut()) -> usize>;

/// serde's cautious size hint: at most 1 MiB reserved for a claimed length.
pub const PREALLOC: usize = 1024 * 1024;

/// The frame limits the target picks from (by the input's first byte):
/// tiny, the handshake limit, a session limit.
pub const LIMITS: [usize; 3] = [64, HANDSHAKE_MAX_FRAME_LENGTH, 64 * 1024];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A body decoded on its own: no panic; an accepted message re-encodes to a
/// body that decodes to the same message; a refused one is a `Decode` error
/// that says why (returned as text). With `measure`, `decode_message`
/// allocates at most [`PREALLOC`] plus a small multiple of the body.
///
/// # Panics
/// When one of those does not hold.
pub fn check_body(body: &[u8], measure: Measure<'_>) -> Result<Message, String> {
    let decoded = match measure {
        Some(measure) => {
            let mut out = None;
            let peak = measure(&mut || out = Some(crate::decode_message(body)));
            assert!(
                peak <= PREALLOC + 64 * 1024 + 64 * body.len(),
                "decode_message allocated {peak} bytes for a {}-byte body",
                body.len()
            );
            out.expect("the measured closure ran")
        }
        None => crate::decode_message(body),
    };
    match decoded {
        Ok(message) => {
            let again = crate::encode_message(&message).expect("a decoded message encodes");
            assert_eq!(
                crate::decode_message(&again).expect("its encoding decodes"),
                message,
                "round trip of body {}",
                hex(body)
            );
            Ok(message)
        }
        Err(CodecError::Decode(e)) => {
            let text = e.to_string();
            assert!(!text.is_empty());
            Err(text)
        }
        Err(other) => panic!("a body can only fail to decode, got {other:?}"),
    }
}

/// Feeds `input` to a codec with frame limit `limit`, all at once
/// (`usize::MAX`) or in `chunk`-sized pieces, and checks every step against
/// the framing model. Returns the messages decoded.
///
/// # Panics
/// When the codec departs from the model.
pub fn check_stream(input: &[u8], limit: usize, chunk: usize) -> Vec<Message> {
    let mut codec = MessageCodec::new(limit);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    // what the model says is left to decode
    let mut pos = 0;
    let mut out = Vec::new();
    // never more than the input plus one frame, whatever the prefixes claim
    let bound = 2 * input.len() + limit + 64;
    loop {
        let before = buf.capacity();
        let result = codec.decode(&mut buf);
        let available = &input[pos..fed];
        if available.len() < 4 {
            assert!(
                matches!(result, Ok(None)),
                "a partial prefix waits: {result:?}"
            );
        } else {
            let claimed =
                u32::from_be_bytes([available[0], available[1], available[2], available[3]])
                    as usize;
            if claimed > limit {
                assert!(
                    matches!(result, Err(CodecError::Frame(_))),
                    "a prefix of {claimed} > {limit} is a framing error: {result:?}"
                );
                assert!(
                    buf.capacity() <= before.max(input.len()),
                    "nothing reserved for an oversize claim of {claimed}: {} > {}",
                    buf.capacity(),
                    before.max(input.len())
                );
                return out;
            }
            if available.len() - 4 < claimed {
                assert!(
                    matches!(result, Ok(None)),
                    "a frame of {claimed} with {} bytes in waits: {result:?}",
                    available.len() - 4
                );
            } else {
                let body = &available[4..4 + claimed];
                pos += 4 + claimed;
                match (check_body(body, None), result) {
                    (Ok(expected), Ok(Some(got))) => {
                        assert_eq!(got, expected);
                        out.push(got);
                        assert_eq!(codec.bytes_decoded(), pos as u64);
                        assert!(buf.capacity() <= bound, "{} > {bound}", buf.capacity());
                        continue;
                    }
                    (Err(_), Err(CodecError::Decode(_))) => return out,
                    (model, codec) => {
                        panic!("codec disagrees with decode_message: {model:?} vs {codec:?}")
                    }
                }
            }
        }
        assert!(
            buf.capacity() <= bound,
            "decoder reserved {} bytes for a {}-byte input with limit {limit}",
            buf.capacity(),
            input.len()
        );
        if fed == input.len() {
            return out;
        }
        let next = (fed + chunk.max(1)).min(input.len());
        buf.extend_from_slice(&input[fed..next]);
        fed = next;
    }
}

/// The `sync_codec` fuzz target: `data` as a message body
/// ([`check_body`], allocation bounded with `measure`), then, after a first
/// byte that picks the frame limit from [`LIMITS`], as a stream of
/// length-prefixed frames through `MessageCodec` ([`check_stream`], all at
/// once).
///
/// # Panics
/// When a check fails.
pub fn sync_codec(data: &[u8], measure: Measure<'_>) {
    let _ = check_body(data, measure);
    let Some((&pick, stream)) = data.split_first() else {
        return;
    };
    let limit = LIMITS[usize::from(pick) % LIMITS.len()];
    check_stream(stream, limit, usize::MAX);
}
