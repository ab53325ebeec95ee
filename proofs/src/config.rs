//! The proptest configuration the palette proofs share: `cases` per
//! property unless `PROPTEST_CASES` says otherwise, a fixed seed (a failure
//! replays), and no persistence files.

use proptest::{
    prelude::ProptestConfig,
    test_runner::{RngAlgorithm, RngSeed},
};

/// `cases` cases (or `PROPTEST_CASES`), seeded with `seed`.
pub fn seeded(cases: u32, seed: u64) -> ProptestConfig {
    let default = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            cases
        },
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..default
    }
}
