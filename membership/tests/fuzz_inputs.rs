//! Fuzz-style tests of `MembershipCore::handle_datagram`, so that
//! `cargo test` exercises what `fuzz/fuzz_targets/membership_datagram.rs`
//! fuzzes: arbitrary bytes and mutated real datagrams (captured from cores
//! talking to each other through `poll_transmit`) thrown at a core that is
//! part of a running cluster.
//!
//! Nothing may panic; a refused datagram is an error that names the sender
//! and says why; and the core must still work afterwards: it keeps running
//! its timers and a fresh peer can join the cluster through it.
//!
//! Time is simulated (`Instant` plus offsets) and the network is a queue, so
//! every run is the same. This crate has no proptest dev-dependency; inputs
//! come from a seeded ChaCha8 (already a dependency) and failures name the
//! case seed and the datagram (hex).

use std::{
    fmt::Write as _,
    net::SocketAddr,
    panic::{self, AssertUnwindSafe},
    time::Duration,
};

use membership::fuzzing::{MAX_DATAGRAM, Net, TICK, gossip, member as core};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A two-node cluster that has converged.
fn pair() -> Net {
    let mut net = Net::new(2);
    let joined = net.run_until(Duration::from_secs(10), |n| {
        n.sees(gossip(1), gossip(2)) && n.sees(gossip(2), gossip(1))
    });
    assert!(joined, "control: two real cores join");
    net
}

/// Real datagrams of every kind: joins, probes, indirect probes through a
/// third node, suspicion and down gossip after a crash, a graceful leave.
fn real_datagrams() -> Vec<(SocketAddr, Vec<u8>)> {
    let mut net = Net::new(4);
    let all = net.run_until(Duration::from_secs(15), |n| {
        (1..=4).all(|i| {
            (1..=4)
                .filter(|j| *j != i)
                .all(|j| n.sees(gossip(i), gossip(j)))
        })
    });
    assert!(all, "control: four real cores form one view");
    net.run(Duration::from_secs(3));
    net.down.push(gossip(4));
    let gone = net.run_until(Duration::from_secs(60), |n| !n.sees(gossip(1), gossip(4)));
    assert!(gone, "control: a crashed core is declared down");
    let now = net.now;
    net.core(gossip(3)).leave(now);
    net.deliver();
    let mut captured = std::mem::take(&mut net.captured);
    captured.sort();
    captured.dedup();
    assert!(captured.len() > 50, "captured {} datagrams", captured.len());
    captured
}

/// One random change to a datagram.
fn mutate(rng: &mut ChaCha8Rng, bytes: &mut Vec<u8>, pool: &[(SocketAddr, Vec<u8>)]) {
    let n = bytes.len();
    let at = rng.random_range(0..=n);
    match rng.random_range(0..7u8) {
        0 if n > 0 => bytes[at.min(n - 1)] ^= 1 << rng.random_range(0..8),
        1 if n > 0 => {
            let edge = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
            bytes[at.min(n - 1)] = if rng.random_bool(0.5) {
                edge[rng.random_range(0..edge.len())]
            } else {
                rng.random()
            };
        }
        2 => {
            let extra: Vec<u8> = (0..rng.random_range(1..6)).map(|_| rng.random()).collect();
            bytes.splice(at..at, extra);
        }
        3 if n > 0 => {
            let end = (at + rng.random_range(1..8)).min(n);
            bytes.drain(at.min(n - 1)..end);
        }
        4 if n > 0 => bytes.truncate(at),
        5 => {
            // splice in part of another real datagram
            let other = &pool[rng.random_range(0..pool.len())].1;
            let from = rng.random_range(0..other.len());
            let to = rng.random_range(from..=other.len());
            bytes.splice(at..at, other[from..to].iter().copied());
        }
        _ if n > 0 => {
            // a varint at its widest
            let end = (at + 1).min(n);
            bytes.splice(
                at.min(n - 1)..end,
                [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            );
        }
        _ => {}
    }
}

/// Hands `data` to the core at `to`; a panic fails the test and names the
/// datagram; a refusal must be a `Rejected` error naming the sender.
fn throw(net: &mut Net, case: u64, to: SocketAddr, from: SocketAddr, data: &[u8]) {
    if panic::catch_unwind(AssertUnwindSafe(|| net.throw(to, from, data))).is_err() {
        panic!(
            "case {case}: {} bytes from {from} to {to} broke a check (above): {}",
            data.len(),
            hex(data)
        );
    }
}

/// After the junk, the core still works: the pair sees each other again
/// (after refuting or renewing whatever the junk claimed), its timers still
/// run, and a fresh peer that has never been named by any input joins
/// through it.
fn still_works(net: &mut Net, case: u64, target: SocketAddr) {
    let pair_again = net.run_until(Duration::from_secs(120), |n| {
        n.sees(gossip(1), gossip(2)) && n.sees(gossip(2), gossip(1))
    });
    assert!(
        pair_again,
        "case {case}: the pair does not see each other again after the fuzzed datagrams"
    );
    net.run(Duration::from_secs(2));
    let now = net.now;
    assert!(
        net.core(target).poll_timeout().is_some(),
        "case {case}: the core still has timers"
    );
    let fresh = gossip(200);
    net.cores.push((fresh, core(200, vec![target], now)));
    let joined = net.run_until(Duration::from_secs(20), |n| {
        n.sees(target, fresh) && n.sees(fresh, target)
    });
    assert!(
        joined,
        "case {case}: a fresh peer could not join through {target} after the fuzzed datagrams"
    );
}

#[test]
fn control_replayed_real_datagrams_never_panic() {
    let pool = real_datagrams();
    let mut net = pair();
    // replayed real datagrams are handled (possibly refused as stale or not
    // addressed to this core), never a panic
    for (i, (from, data)) in pool.iter().enumerate() {
        throw(&mut net, i as u64, gossip(1), *from, data);
    }
    still_works(&mut net, 0, gossip(1));
}

#[test]
fn arbitrary_bytes_never_panic_and_the_core_still_works() {
    for case in 0..100u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(case);
        let mut net = pair();
        let mut first = true;
        for _ in 0..40 {
            let len = match rng.random_range(0..10u8) {
                0 => rng.random_range(MAX_DATAGRAM..=MAX_DATAGRAM + 64),
                1..=3 => rng.random_range(0..8),
                _ => rng.random_range(0..256),
            };
            let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let from = if rng.random_bool(0.5) {
                gossip(2)
            } else {
                SocketAddr::from(([10, 9, 9, rng.random()], rng.random()))
            };
            throw(&mut net, case, gossip(1), from, &data);
            if first {
                // the fuzz target's body on the case's first input
                membership::fuzzing::datagram(&data, true);
                first = false;
            }
            if rng.random_bool(0.2) {
                net.run(TICK);
            }
        }
        still_works(&mut net, case, gossip(1));
    }
}

#[test]
fn mutated_real_datagrams_never_panic_and_the_core_still_works() {
    let pool = real_datagrams();
    for case in 0..300u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + case);
        let mut net = pair();
        let mut first = true;
        for _ in 0..40 {
            let (from, original) = &pool[rng.random_range(0..pool.len())];
            let mut data = original.clone();
            for _ in 0..rng.random_range(1..4) {
                mutate(&mut rng, &mut data, &pool);
            }
            // to either node of the pair: each is the sender or a stranger
            let to = gossip(rng.random_range(1..=2));
            throw(&mut net, case, to, *from, &data);
            if first {
                // the fuzz target's body on the case's first input
                membership::fuzzing::datagram(&data, true);
                first = false;
            }
            if rng.random_bool(0.2) {
                net.run(TICK);
            }
        }
        still_works(&mut net, case, gossip(1));
    }
}

/// Regression (found by `cargo fuzz run membership_datagram`, minimised to
/// 55 bytes, `fuzz/regressions/membership_datagram/`): a single Ping from
/// `y` to `x` carrying a member update for a node `"}"` at `x`'s own gossip
/// address with a far higher bump (2839842104). `x` accepts it; from then on
/// `y` takes `"}"` for the member at that address and, once `"}"` is
/// declared down, ignores `x`; `x` is told it is down and renews its identity
/// (bump + 1) over and over, each renewal losing the address conflict again:
/// the two never see each other again, and they exchange ~500 datagrams a
/// second (simulated; in reality as fast as the round trip) instead of ~2.
#[test]
fn regression_a_forged_member_at_a_peers_address_with_a_higher_bump() {
    let datagram = [
        0x01, 0x79, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x01, 0x01,
        0x00, 0x01, 0x78, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x01,
        0x01, 0x00, 0x01, 0x00, 0x01, 0x01, 0x7d, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x01, 0x00, 0x9b,
        0x01, 0x00, 0x04, 0x71, 0xb8, 0x9a, 0x12, 0xca, 0x0a, 0x00,
    ];
    // the identities of the fuzz target and its seed corpus
    let mut net = Net::x_and_y();
    let (x, y) = (net.cores[0].0, net.cores[1].0);
    let joined = |n: &Net| n.sees(x, y) && n.sees(y, x);
    assert!(net.run_until(Duration::from_secs(10), joined), "control");
    let sent = |n: &Net| -> u64 { n.cores.iter().map(|(_, c)| c.stats().datagrams_sent).sum() };
    let before = sent(&net);
    net.run(Duration::from_secs(10));
    let quiet = sent(&net) - before;

    throw(&mut net, 0, x, y, &datagram);
    let before = sent(&net);
    net.run(Duration::from_secs(10));
    let after = sent(&net) - before;
    assert!(
        after <= 4 * quiet.max(10),
        "{after} datagrams in 10 s after the forged one, {quiet} before"
    );
    assert!(
        net.run_until(Duration::from_secs(120), joined),
        "x and y no longer see each other after one forged datagram"
    );
    // and through the fuzz target's own body
    membership::fuzzing::datagram(&datagram, true);
}
