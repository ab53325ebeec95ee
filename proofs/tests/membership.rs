//! SWIM membership (foca cores) on a simulated network with virtual time: no
//! sleeps, every run reproducible from its seed.

use std::time::Duration;

use membership::Preset;
use proofs::swim::SwimSim;

/// A cluster of `n` that has converged to one view.
fn joined(n: usize, preset: Preset, seed: u64) -> SwimSim {
    let mut sim = SwimSim::new(n, preset, seed);
    let took = sim.run_until(Duration::from_secs(120), SwimSim::one_view);
    assert!(
        took.is_some(),
        "seed {seed}: {n} nodes never formed one view"
    );
    // and stays that way for a while without false downs
    sim.run_for(Duration::from_secs(10));
    assert!(
        sim.one_view(),
        "seed {seed}: view broke up without failures"
    );
    sim
}

#[test]
fn a_crashed_node_is_declared_down_by_every_other_within_the_bound() {
    for (preset, n) in [
        (Preset::Local, 5),
        (Preset::Local, 16),
        (Preset::Lan, 16),
        (Preset::Lan, 50),
    ] {
        let bound = preset.detection_bound(n);
        for seed in 0..10 {
            let mut sim = joined(n, preset, seed);
            let victim = 1 + (seed as usize % (n - 1));
            sim.crash(victim);
            let took = sim.run_until(bound, |s| s.all_see_down(victim));
            assert!(
                took.is_some(),
                "{preset:?} n={n} seed {seed}: n{victim} not down everywhere within {bound:?}"
            );
            // nobody else was taken down with it
            let up: Vec<usize> = (0..n).filter(|&i| i != victim).collect();
            for &i in &up {
                let view = sim.view(i).expect("running");
                assert_eq!(
                    view.len(),
                    n - 2,
                    "{preset:?} n={n} seed {seed}: n{i} sees {view:?}"
                );
            }
        }
    }
}

#[test]
fn a_restarted_node_is_seen_up_again() {
    for seed in 0..10 {
        let mut sim = joined(6, Preset::Local, seed);
        sim.crash(4);
        assert!(
            sim.run_until(Preset::Local.detection_bound(6), |s| s.all_see_down(4))
                .is_some()
        );
        sim.restart(4);
        let took = sim.run_until(Duration::from_secs(10), SwimSim::one_view);
        assert!(
            took.is_some(),
            "seed {seed}: the restarted node never rejoined the view"
        );
        let ups = sim
            .seen
            .iter()
            .filter(|s| s.member == 4 && s.up && s.at >= sim.elapsed() - took.unwrap_or_default())
            .count();
        assert!(
            ups >= 5,
            "seed {seed}: only {ups} Up events for the restarted node"
        );
    }
}

#[test]
fn a_restart_at_the_same_address_replaces_the_old_identity_before_any_timeout() {
    // No crash detection needed: the new identity (higher bump, same
    // address) wins over the old one as soon as it announces itself.
    let mut sim = joined(6, Preset::Lan, 3);
    sim.crash(2);
    sim.restart(2);
    let took = sim
        .run_until(Duration::from_secs(30), |s| {
            (0..6).filter(|&i| i != 2).all(|i| {
                s.core(i).is_some_and(|c| {
                    c.members().any(|m| {
                        m.id == "n2"
                            && m.gossip_addr
                                == s.core(2)
                                    .map(|c| c.identity().gossip)
                                    .unwrap_or(m.gossip_addr)
                    })
                })
            }) && s.one_view()
        })
        .expect("rejoins");
    assert!(took < Preset::Lan.detection_bound(6), "took {took:?}");
}

#[test]
fn a_graceful_leave_propagates_at_once() {
    // Regression: with foca's own leave (3 direct datagrams, then gossip) a
    // member sometimes missed it and waited for failure detection (seed 1,
    // n = 8: 7.2 s). Now every member is told directly.
    for (n, seeds) in [(8, 30), (40, 5)] {
        for seed in 0..seeds {
            let mut sim = joined(n, Preset::Lan, seed);
            let leaver = 1 + seed as usize % (n - 1);
            sim.leave(leaver);
            let took = sim
                .run_until(Duration::from_secs(30), |s| s.all_see_down(leaver))
                .expect("propagates");
            // far sooner than failure detection: no probe has to time out
            let probe_period = Preset::Lan.foca_config(n).probe_period;
            assert!(
                took < probe_period,
                "n={n} seed {seed}: leave took {took:?}"
            );
        }
    }
}

#[test]
fn a_two_three_partition_heals_into_one_view() {
    for seed in 0..10 {
        let mut sim = joined(5, Preset::Local, seed);
        for i in 0..2 {
            sim.partition(i, 1);
        }
        let bound = Preset::Local.detection_bound(5);
        let split = sim.run_until(bound * 2, |s| {
            (0..2).all(|i| s.view(i).is_some_and(|v| v.iter().all(|&j| j < 2)))
                && (2..5).all(|i| s.view(i).is_some_and(|v| v.iter().all(|&j| j >= 2)))
        });
        assert!(
            split.is_some(),
            "seed {seed}: each side never saw the other down"
        );
        sim.heal();
        let healed = sim.run_until(Duration::from_secs(30), SwimSim::one_view);
        assert!(healed.is_some(), "seed {seed}: no single view after heal");
    }
}

#[test]
fn garbage_datagrams_change_nothing() {
    let mut sim = joined(3, Preset::Local, 1);
    let before = sim.view(0);
    let core_metrics = |s: &SwimSim| s.core(0).map(|c| c.stats().datagrams_rejected).unwrap_or(0);
    let rejected = core_metrics(&sim);
    // Feed node 0 garbage directly through the sans-IO API.
    let junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 10],
        vec![0; 2000],
        b"hello".to_vec(),
        (0..=255).collect(),
    ];
    assert!(sim.inject(0, &junk) >= 4);
    assert!(core_metrics(&sim) > rejected);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.view(0), before);
}

#[test]
fn a_crashed_node_is_suspected_before_it_is_declared_down() {
    for seed in 0..5 {
        let mut sim = joined(8, Preset::Lan, seed);
        sim.crash(3);
        let crashed = sim.elapsed();
        sim.run_until(Preset::Lan.detection_bound(8), |s| s.all_see_down(3))
            .expect("down");
        let first_suspect = sim
            .suspected
            .iter()
            .filter(|(at, _, m)| *m == 3 && *at >= crashed)
            .map(|(at, _, _)| *at)
            .min();
        let first_down = sim
            .seen
            .iter()
            .filter(|s| s.member == 3 && !s.up && s.at >= crashed)
            .map(|s| s.at)
            .min();
        let (Some(suspect), Some(down)) = (first_suspect, first_down) else {
            panic!("seed {seed}: suspect {first_suspect:?}, down {first_down:?}");
        };
        // suspicion comes at least the suspicion timeout before the verdict
        let suspicion = Preset::Lan.foca_config(8).suspect_to_down_after;
        assert!(
            down - suspect >= suspicion - Duration::from_millis(50),
            "seed {seed}: {suspect:?} then {down:?}"
        );
    }
}
