//! The sync wire codec on arbitrary bytes: the input as a message body
//! (`decode_message`), then, after a first byte that picks the frame limit,
//! as a stream of length-prefixed frames through `MessageCodec`.
//!
//! Checked: nothing panics; a decoded message re-encodes to a body that
//! decodes to the same message; `decode_message` allocates at most the 1 MiB
//! serde may reserve up front for one claimed sequence length plus a small
//! multiple of the body; a prefix above the limit is a framing error that
//! reserves nothing; a frame still arriving reserves at most the limit.
#![no_main]

#[path = "common/alloc.rs"]
mod alloc;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sync::{CodecError, HANDSHAKE_MAX_FRAME_LENGTH, Message, MessageCodec};
use tokio_util::codec::Decoder;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// serde's cautious size hint: at most 1 MiB reserved for a claimed length.
const PREALLOC: usize = 1024 * 1024;

const LIMITS: [usize; 3] = [64, HANDSHAKE_MAX_FRAME_LENGTH, 64 * 1024];

fn round_trip(message: &Message) {
    let body = sync::encode_message(message).expect("a decoded message encodes");
    let again = sync::decode_message(&body).expect("its encoding decodes");
    assert_eq!(&again, message, "round trip");
}

fn check_body(body: &[u8]) {
    let (decoded, peak) = alloc::peak_during(|| sync::decode_message(body));
    assert!(
        peak <= PREALLOC + 64 * 1024 + 64 * body.len(),
        "decode_message allocated {peak} bytes for a {}-byte body",
        body.len()
    );
    match decoded {
        Ok(message) => round_trip(&message),
        Err(CodecError::Decode(e)) => assert!(!e.to_string().is_empty()),
        Err(other) => panic!("a body can only fail to decode: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    check_body(data);

    let Some((&pick, stream)) = data.split_first() else {
        return;
    };
    let limit = LIMITS[usize::from(pick) % LIMITS.len()];
    let bound = 2 * stream.len() + limit + 64;
    let mut codec = MessageCodec::new(limit);
    let mut buf = BytesMut::from(stream);
    let mut decoded = 0u64;
    loop {
        let before = buf.capacity();
        let prefix = (buf.len() >= 4).then(|| u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
        match codec.decode(&mut buf) {
            Ok(Some(message)) => {
                round_trip(&message);
                assert!(codec.bytes_decoded() > decoded);
                decoded = codec.bytes_decoded();
            }
            Ok(None) => break,
            Err(CodecError::Frame(_)) => {
                let claimed = prefix.expect("a framing error needs a whole prefix");
                assert!(
                    claimed as usize > limit,
                    "prefix {claimed} <= limit {limit}"
                );
                assert!(
                    buf.capacity() <= before,
                    "nothing reserved for an oversize claim"
                );
                break;
            }
            Err(CodecError::Decode(_)) => break,
            Err(other) => panic!("decoding can only fail to frame or decode: {other:?}"),
        }
        assert!(
            buf.capacity() <= bound,
            "reserved {} > {bound}",
            buf.capacity()
        );
    }
    assert!(
        buf.capacity() <= bound,
        "reserved {} > {bound}",
        buf.capacity()
    );
});
