//! The body of the `membership_datagram` fuzz target and the simulated
//! network it runs on (behind the `fuzzing` feature):
//! `fuzz/fuzz_targets/membership_datagram.rs` runs [`datagram`] under
//! libFuzzer, and `tests/fuzz_inputs.rs` runs it and its own scenarios on
//! [`Net`] under `cargo test`, so the body and the delivery loop are written
//! once.
//!
//! Time is simulated (an `Instant` plus ticks of [`TICK`]) and the network
//! is a lossless queue, so every run is the same.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use crate::{CoreConfig, MemberId, MembershipCore, MembershipError, Transmit};

/// The datagram size the simulated cores are built for.
pub const MAX_DATAGRAM: usize = 1400;

/// The step of simulated time in [`Net::run`].
pub const TICK: Duration = Duration::from_millis(100);

/// The gossip address of member `n{i}`: 10.0.0.`i`:7946.
pub fn gossip(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 7946))
}

/// A core for member `n{i}` at [`gossip`]`(i)` (LAN preset, RNG seed `i`).
pub fn member(i: u8, seeds: Vec<SocketAddr>, now: Instant) -> MembershipCore {
    let id = MemberId {
        node: format!("n{i}").into(),
        gossip: gossip(i),
        sync: SocketAddr::from(([10, 0, 0, i], 7100)),
        bump: 1,
    };
    MembershipCore::new(id, config(seeds), u64::from(i), now)
}

/// The simulated cores' config: LAN preset, three nodes, [`MAX_DATAGRAM`].
fn config(seeds: Vec<SocketAddr>) -> CoreConfig {
    CoreConfig {
        max_datagram: MAX_DATAGRAM,
        seeds,
        ..CoreConfig::default()
    }
}

/// Cores wired by a lossless in-memory network with simulated time.
pub struct Net {
    /// The simulated clock.
    pub now: Instant,
    /// Every core and its gossip address.
    pub cores: Vec<(SocketAddr, MembershipCore)>,
    /// Nodes whose traffic is dropped (crashed).
    pub down: Vec<SocketAddr>,
    /// Every datagram delivered: (sender, bytes).
    pub captured: Vec<(SocketAddr, Vec<u8>)>,
}

impl Net {
    /// Members `n1` … `n{n}`, each seeded with `n1`, not yet started.
    pub fn new(n: u8) -> Self {
        let now = Instant::now();
        let cores = (1..=n)
            .map(|i| {
                let seeds = if i == 1 { vec![] } else { vec![gossip(1)] };
                (gossip(i), member(i, seeds, now))
            })
            .collect();
        Self::of(now, cores)
    }

    /// The fuzz target's pair, with the identities its seed corpus was
    /// captured with: `x` at 10.0.0.1:1 and `y` at 10.0.0.1:2 (seeded with
    /// `x`), not yet started.
    pub fn x_and_y() -> Self {
        let x = SocketAddr::from(([10, 0, 0, 1], 1));
        let y = SocketAddr::from(([10, 0, 0, 1], 2));
        let now = Instant::now();
        let id = |node: &str, gossip| MemberId {
            node: node.into(),
            gossip,
            sync: x,
            bump: 1,
        };
        let core = |node, gossip, seeds, seed| {
            MembershipCore::new(id(node, gossip), config(seeds), seed, now)
        };
        Self::of(
            now,
            vec![(x, core("x", x, vec![], 1)), (y, core("y", y, vec![x], 2))],
        )
    }

    /// A network of `cores` at `now`, none down, nothing captured.
    pub fn of(now: Instant, cores: Vec<(SocketAddr, MembershipCore)>) -> Self {
        Net {
            now,
            cores,
            down: Vec::new(),
            captured: Vec::new(),
        }
    }

    /// The core at `addr`.
    ///
    /// # Panics
    /// When no core is at `addr`.
    pub fn core(&mut self, addr: SocketAddr) -> &mut MembershipCore {
        &mut self
            .cores
            .iter_mut()
            .find(|(a, _)| *a == addr)
            .expect("a core at this address")
            .1
    }

    /// Delivers every queued datagram (and what the answers produce), at
    /// most 100 rounds; traffic from or to a node in [`Net::down`] is
    /// dropped.
    pub fn deliver(&mut self) {
        for _ in 0..100 {
            let mut queued = Vec::new();
            for (from, core) in &mut self.cores {
                while let Some(Transmit { to, data }) = core.poll_transmit() {
                    queued.push((*from, to, data));
                }
            }
            if queued.is_empty() {
                return;
            }
            for (from, to, data) in queued {
                if self.down.contains(&from) || self.down.contains(&to) {
                    continue;
                }
                let now = self.now;
                if let Some((_, core)) = self.cores.iter_mut().find(|(a, _)| *a == to) {
                    self.captured.push((from, data.to_vec()));
                    let _ = core.handle_datagram(now, from, &data);
                }
            }
        }
    }

    /// Advances simulated time by `d` in ticks of [`TICK`], firing timers
    /// and delivering.
    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += TICK;
            let now = self.now;
            for (addr, core) in &mut self.cores {
                if !self.down.contains(addr) {
                    core.handle_timeout(now);
                }
            }
            self.deliver();
        }
    }

    /// Whether `who` lists `whom` as a member.
    pub fn sees(&self, who: SocketAddr, whom: SocketAddr) -> bool {
        self.cores
            .iter()
            .find(|(a, _)| *a == who)
            .is_some_and(|(_, c)| c.members().any(|m| m.gossip_addr == whom))
    }

    /// Hands `data` to the core at `to` as a datagram from `from`, checked:
    /// a refusal is a `Rejected` error naming the sender with a reason and
    /// is counted; an oversize datagram never reaches foca.
    ///
    /// # Panics
    /// When `handle_datagram` panics or one of those does not hold.
    pub fn throw(&mut self, to: SocketAddr, from: SocketAddr, data: &[u8]) {
        let now = self.now;
        let core = self.core(to);
        let before = core.stats();
        let result = core.handle_datagram(now, from, data);
        let after = core.stats();
        match result {
            Ok(()) => {}
            Err(MembershipError::Rejected {
                from: named,
                reason,
            }) => {
                assert_eq!(named, from, "the error names the sender");
                assert!(!reason.to_string().is_empty(), "the error says why");
                assert_eq!(
                    after.datagrams_rejected,
                    before.datagrams_rejected + 1,
                    "a refusal is counted"
                );
            }
            Err(other) => panic!("a datagram can only be refused, got {other}"),
        }
        if data.len() > MAX_DATAGRAM {
            assert_eq!(
                after.datagrams_received, before.datagrams_received,
                "oversize datagrams never reach foca"
            );
        }
    }

    /// Whether the first two cores see each other.
    pub fn pair_joined(&self) -> bool {
        let (a, b) = (self.cores[0].0, self.cores[1].0);
        self.sees(a, b) && self.sees(b, a)
    }

    /// Runs until `done` holds, at most `limit` of simulated time; returns
    /// whether it held.
    pub fn run_until(&mut self, limit: Duration, done: impl Fn(&Net) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.run(TICK);
        }
        done(self)
    }
}

/// The `membership_datagram` fuzz target: `data` as a datagram handed to
/// both cores of a converged pair ([`Net::x_and_y`]), each from the other,
/// whose consequences then play out in simulated time.
///
/// # Panics
/// When the pair does not join before the datagram (a control); when a
/// [`Net::throw`] check fails; and, with `check_liveness`, when the
/// two no longer see each other within 120 s (simulated) afterwards.
pub fn datagram(data: &[u8], check_liveness: bool) {
    let mut net = Net::x_and_y();
    assert!(
        net.run_until(Duration::from_secs(10), Net::pair_joined),
        "control: x and y join"
    );
    for i in 0..2 {
        let (to, from) = (net.cores[i].0, net.cores[1 - i].0);
        net.throw(to, from, data);
    }
    let joined = net.run_until(Duration::from_secs(120), Net::pair_joined);
    assert!(
        joined || !check_liveness,
        "x and y no longer see each other after the datagram"
    );
}
