//! CRDT values decoded from arbitrary bytes (rmp-serde, as they arrive in a
//! sync `Delta` or `Pull`): a decoder never panics nor allocates more than
//! serde's up-front reservations plus a small multiple of the input, and
//! whatever is accepted keeps the documented invariants (compact contexts,
//! canonical encoding), joins into a replica, and leaves a replica that can
//! still write and whose own encoding decodes. The body is
//! `crdt::fuzzing::crdt_decode`, which `cargo test` also runs
//! (`crdt/tests/fuzz_decode.rs`); here it measures allocation.
#![no_main]

#[path = "common/alloc.rs"]
mod alloc;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

static POPULATED: LazyLock<crdt::ORMap<u8, u8>> = LazyLock::new(crdt::fuzzing::small_replica);

fuzz_target!(|data: &[u8]| {
    crdt::fuzzing::crdt_decode(data, &POPULATED, Some(&alloc::peak));
});
