//! Property tests of Vantage's laws; the tests live in `tests/`, one file per
//! type. This library holds the oracle models they compare against.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
