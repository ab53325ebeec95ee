//! The API's origin spec parser (`spec::parse_json`, what the PUT handler
//! runs on the body) on arbitrary bytes: the body is
//! `healthcheck::fuzzing::spec_parser`, which `cargo test` also runs
//! (`apps/healthcheck/tests/fuzz_spec.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = healthcheck::fuzzing::spec_parser(data);
});
