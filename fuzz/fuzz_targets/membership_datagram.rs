//! SWIM datagrams from arbitrary bytes, handed to both cores of a converged
//! two-node cluster (the identities the seed corpus was captured with: `x`
//! at 10.0.0.1:1 and `y` at 10.0.0.1:2), whose consequences then play out in
//! simulated time. The body is `membership::fuzzing::datagram`, which
//! `cargo test` also runs (`membership/tests/fuzz_inputs.rs`).
//!
//! Checked: nothing panics; a refused datagram is a `Rejected` error naming
//! the sender with a reason; afterwards the two cores see each other again
//! (after refuting or renewing whatever the datagram claimed). Set
//! `FUZZ_SKIP_LIVENESS=1` to look for panics only, while a known liveness
//! failure is open (see `fuzz/README.md`).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

static CHECK_LIVENESS: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("FUZZ_SKIP_LIVENESS").is_none());

fuzz_target!(|data: &[u8]| {
    membership::fuzzing::datagram(data, *CHECK_LIVENESS);
});
