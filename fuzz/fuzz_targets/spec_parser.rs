//! The API's origin spec parser (`spec::parse_json`, what the PUT handler
//! runs on the body) on arbitrary bytes: an error names a field and says
//! why; an accepted spec validates and round-trips through JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match healthcheck::spec::parse_json(data) {
        Ok(spec) => {
            assert!(spec.validate().is_ok());
            let json = serde_json::to_vec(&spec).expect("a spec encodes");
            let again = healthcheck::spec::parse_json(&json).expect("its JSON parses");
            assert_eq!(again, spec);
        }
        Err(e) => {
            assert!(!e.field.is_empty(), "no field named: {e:?}");
            assert!(!e.message.is_empty(), "no reason given: {e:?}");
        }
    }
    if let Ok(id) = std::str::from_utf8(data) {
        match healthcheck::spec::validate_id(id) {
            Ok(()) => assert!(!id.is_empty() && id.len() <= 128),
            Err(e) => assert_eq!(e.field, "id"),
        }
    }
});
