//! The bodies of the fuzz targets on this crate (behind the `fuzzing`
//! feature): `fuzz/fuzz_targets/spec_parser.rs` runs them under libFuzzer
//! and `tests/fuzz_spec.rs` runs them on generated input under `cargo test`,
//! so what is checked is written once.
//!
//! A body panics (an assertion) when the code under test breaks its
//! contract; that is how a fuzzer or a property test sees a failure.

use crate::spec::{self, OriginSpec, SpecError};

/// The API's origin spec parser (`spec::parse_json`, what
/// `PUT /v1/origins/{id}` runs on its body) on `data`, and, when `data` is
/// UTF-8, the id check on it. Returns what the parser returned.
///
/// # Panics
/// When a contract is broken: an accepted spec must validate, round-trip
/// through JSON and have status ranges and a host; a refused body must be a
/// `SpecError` that names a field and says why (and prints as
/// `field: message`); an accepted id is 1 to 128 bytes, a refused one names
/// the field `id`.
pub fn spec_parser(data: &[u8]) -> Result<OriginSpec, SpecError> {
    let result = spec::parse_json(data);
    match &result {
        Ok(spec) => {
            assert_eq!(spec.validate(), Ok(()), "an accepted spec validates");
            let json = serde_json::to_vec(spec).expect("a spec encodes");
            assert_eq!(
                spec::parse_json(&json).as_ref(),
                Ok(spec),
                "an accepted spec round-trips"
            );
            assert!(!spec.status_ranges().is_empty());
            assert!(!spec.address_host().is_empty());
        }
        Err(e) => {
            assert!(
                !e.field.is_empty(),
                "the error names a field: {e:?} for body {:?}",
                String::from_utf8_lossy(data)
            );
            assert!(!e.message.is_empty(), "the error says why: {e:?}");
            assert_eq!(e.to_string(), format!("{}: {}", e.field, e.message));
        }
    }
    if let Ok(id) = std::str::from_utf8(data) {
        match spec::validate_id(id) {
            Ok(()) => assert!(!id.is_empty() && id.len() <= 128, "accepted id {id:?}"),
            Err(e) => assert_eq!(e.field, "id"),
        }
    }
    result
}
