//! Convergence: random writes on 2–8 replicas, exchanged by pulls whose
//! answers arrive late, twice or never, with purges and replicas cut off
//! across them; then a full exchange. Every replica must read the same map,
//! equal to the oracle built from the history of writes alone.

use proofs::cluster::{Cluster, Step, step};
use proptest::prelude::*;

fn run(n: usize, steps: &[Step]) -> Result<Cluster, TestCaseError> {
    let mut cluster = Cluster::new(n);
    for s in steps {
        cluster.step(s);
    }
    let rounds = cluster.settle(10);
    prop_assert!(rounds.is_some(), "no quiescence after 10 full rounds");
    let reads = cluster.reads();
    for (i, r) in reads.iter().enumerate() {
        prop_assert_eq!(r, &reads[0], "replica {} differs from replica 0", i);
    }
    prop_assert_eq!(
        &reads[0],
        &cluster.oracle.read(),
        "replicas differ from the oracle"
    );
    Ok(cluster)
}

fn history() -> impl Strategy<Value = (usize, Vec<Step>)> {
    (2usize..=8).prop_flat_map(|n| (Just(n), prop::collection::vec(step(n), 0..300)))
}

proptest! {
    #[test]
    fn replicas_converge_to_the_oracle((n, steps) in history()) {
        run(n, &steps)?;
    }
}

/// Over many random histories, the interesting paths must actually be taken:
/// purges happen and peers behind a purge get full states. Otherwise the
/// property above could pass without exercising them.
#[test]
fn random_histories_exercise_purges_and_full_state_answers() {
    use proptest::{strategy::ValueTree, test_runner::TestRunner};
    let mut runner = TestRunner::deterministic();
    let (mut purged, mut full) = (0, 0);
    for _ in 0..200 {
        let (n, steps) = history().new_tree(&mut runner).expect("strategy").current();
        let cluster = run(n, &steps).expect("converges");
        purged += cluster.purged;
        full += cluster.full_answers;
    }
    eprintln!("200 runs: {purged} tombstones purged, {full} full-state answers");
    assert!(purged > 100, "only {purged} tombstones purged in 200 runs");
    assert!(full > 20, "only {full} full-state answers in 200 runs");
}
