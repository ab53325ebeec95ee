//! The sync wire codec on arbitrary bytes: the input as a message body
//! (`decode_message`), then, after a first byte that picks the frame limit,
//! as a stream of length-prefixed frames through `MessageCodec`. The body is
//! `sync::fuzzing::sync_codec`, which `cargo test` also runs
//! (`sync/tests/fuzz_inputs.rs`); here it measures allocation.
//!
//! Checked: nothing panics; a decoded message re-encodes to a body that
//! decodes to the same message; `decode_message` allocates at most the 1 MiB
//! serde may reserve up front for one claimed sequence length plus a small
//! multiple of the body; a prefix above the limit is a framing error that
//! reserves nothing; a frame still arriving reserves at most the limit.
#![no_main]

#[path = "common/alloc.rs"]
mod alloc;

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

fuzz_target!(|data: &[u8]| {
    sync::fuzzing::sync_codec(data, Some(&alloc::peak));
});
