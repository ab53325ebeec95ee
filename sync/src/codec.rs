//! [`MessageCodec`]: length-delimited frames carrying rmp-serde [`Message`]s.

use bytes::{BufMut, BytesMut};
use seal::StreamSession;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use crate::{Message, error::CodecError};

/// The default largest frame accepted or sent: 16 MiB.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 16 * 1024 * 1024;

/// The largest frame accepted before the handshake completes: a `Hello`, a
/// `HelloOk` or a `Reject` is far smaller. The framing layer reserves a
/// frame's declared length as soon as it reads the prefix, so this keeps an
/// unauthenticated connection from costing more than a few KiB.
pub const HANDSHAKE_MAX_FRAME_LENGTH: usize = 4 * 1024;

/// A tokio-util codec: each frame is a 4-byte big-endian length followed by
/// one rmp-serde encoded [`Message`].
///
/// A length prefix above `max_frame_length` is rejected before anything is
/// buffered for it (tokio-util's `LengthDelimitedCodec`), and a frame that is
/// not a valid message is an error; either way the connection must be closed,
/// since the stream can no longer be trusted. It counts the bytes it encodes
/// and decodes, length prefixes included, for metrics.
///
/// With a [`StreamSession`] (a cluster key is configured), every frame body
/// is sealed on the way out and must open on the way in: a frame that does
/// not (plaintext, another key, tampered, replayed, out of order) is a
/// [`CodecError::Rejected`] and nothing of it is decoded. The frame limit
/// applies to sealed frames.
#[derive(Debug)]
pub struct MessageCodec {
    frames: LengthDelimitedCodec,
    max_frame_length: usize,
    session: Option<StreamSession>,
    bytes_decoded: u64,
    bytes_encoded: u64,
}

impl MessageCodec {
    /// A codec that accepts and sends frames of at most `max_frame_length`
    /// bytes (without the 4-byte prefix).
    pub fn new(max_frame_length: usize) -> Self {
        MessageCodec {
            frames: LengthDelimitedCodec::builder()
                .length_field_length(4)
                .max_frame_length(max_frame_length)
                .new_codec(),
            max_frame_length,
            session: None,
            bytes_decoded: 0,
            bytes_encoded: 0,
        }
    }

    /// A codec whose frames are sealed by `session` (one per connection).
    pub fn sealed(max_frame_length: usize, session: StreamSession) -> Self {
        MessageCodec {
            session: Some(session),
            ..MessageCodec::new(max_frame_length)
        }
    }

    /// Changes the largest frame accepted and sent from now on (e.g. from
    /// [`HANDSHAKE_MAX_FRAME_LENGTH`] to the session's limit once the
    /// handshake has succeeded).
    pub fn set_max_frame_length(&mut self, max_frame_length: usize) {
        self.frames.set_max_frame_length(max_frame_length);
        self.max_frame_length = max_frame_length;
    }

    /// Bytes of whole frames decoded so far, prefixes included.
    pub fn bytes_decoded(&self) -> u64 {
        self.bytes_decoded
    }

    /// Bytes of frames encoded so far, prefixes included.
    pub fn bytes_encoded(&self) -> u64 {
        self.bytes_encoded
    }
}

impl Default for MessageCodec {
    fn default() -> Self {
        MessageCodec::new(DEFAULT_MAX_FRAME_LENGTH)
    }
}

impl Decoder for MessageCodec {
    type Item = Message;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CodecError> {
        let Some(frame) = self.frames.decode(src).map_err(CodecError::Frame)? else {
            return Ok(None);
        };
        self.bytes_decoded += 4 + frame.len() as u64;
        match &mut self.session {
            None => decode_message(&frame).map(Some),
            Some(session) => {
                let body = session.open(&frame).map_err(CodecError::Rejected)?;
                decode_message(&body).map(Some)
            }
        }
    }
}

impl Encoder<&Message> for MessageCodec {
    type Error = CodecError;

    fn encode(&mut self, message: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        let mut body = encode_message(message)?;
        // Checked before sealing: a sealed frame that is then not sent
        // would leave a gap in the session's sequence.
        let overhead = self.session.as_ref().map_or(0, |_| seal::STREAM_OVERHEAD);
        if body.len() + overhead > self.max_frame_length {
            return Err(CodecError::TooLarge {
                len: body.len() + overhead,
                max: self.max_frame_length,
            });
        }
        if let Some(session) = &mut self.session {
            body = session.seal(&body).map_err(CodecError::Seal)?;
        }
        dst.reserve(4 + body.len());
        let len = u32::try_from(body.len()).map_err(|_| CodecError::TooLarge {
            len: body.len(),
            max: self.max_frame_length,
        })?;
        dst.put_u32(len);
        dst.put_slice(&body);
        self.bytes_encoded += 4 + body.len() as u64;
        Ok(())
    }
}

impl Encoder<Message> for MessageCodec {
    type Error = CodecError;

    fn encode(&mut self, message: Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&message, dst)
    }
}

/// Encodes one message body (without the length prefix).
pub fn encode_message(message: &Message) -> Result<Vec<u8>, CodecError> {
    rmp_serde::to_vec(message).map_err(CodecError::Encode)
}

/// Decodes one message body (without the length prefix). Never panics; a
/// claimed sequence length is not trusted: serde pre-reserves at most about
/// 1 MiB per sequence whatever the body claims, so a small frame costs at
/// most a few MiB transiently (measured by the `sync_codec` fuzz target's
/// counting allocator), and a decoded message is never larger than the body
/// allows.
pub fn decode_message(body: &[u8]) -> Result<Message, CodecError> {
    rmp_serde::from_slice(body).map_err(CodecError::Decode)
}
