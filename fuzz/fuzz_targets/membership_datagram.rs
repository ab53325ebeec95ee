//! SWIM datagrams from arbitrary bytes, handed to both cores of a converged
//! two-node cluster (the identities the seed corpus was captured with: `x`
//! at 10.0.0.1:1 and `y` at 10.0.0.1:2), whose consequences then play out in
//! simulated time.
//!
//! Checked: nothing panics; a refused datagram is a `Rejected` error naming
//! the sender with a reason; afterwards the two cores see each other again
//! (after refuting or renewing whatever the datagram claimed). Set
//! `FUZZ_SKIP_LIVENESS=1` to look for panics only, while a known liveness
//! failure is open (see `fuzz/README.md`).
#![no_main]

use std::{
    net::SocketAddr,
    sync::LazyLock,
    time::{Duration, Instant},
};

use libfuzzer_sys::fuzz_target;
use membership::{CoreConfig, MemberId, MembershipCore, MembershipError, Transmit};

static CHECK_LIVENESS: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("FUZZ_SKIP_LIVENESS").is_none());

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

fn core(node: &str, port: u16, seeds: Vec<SocketAddr>, now: Instant) -> MembershipCore {
    let id = MemberId {
        node: node.into(),
        gossip: addr(port),
        sync: addr(1),
        bump: 1,
    };
    let config = CoreConfig {
        seeds,
        ..CoreConfig::default()
    };
    MembershipCore::new(id, config, u64::from(port), now)
}

struct Pair {
    now: Instant,
    cores: [(SocketAddr, MembershipCore); 2],
}

impl Pair {
    fn deliver(&mut self) {
        for _ in 0..64 {
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
                let now = self.now;
                if let Some((_, core)) = self.cores.iter_mut().find(|(a, _)| *a == to) {
                    let _ = core.handle_datagram(now, from, &data);
                }
            }
        }
    }

    fn joined(&self) -> bool {
        let [(xa, x), (ya, y)] = &self.cores;
        x.members().any(|m| m.gossip_addr == *ya) && y.members().any(|m| m.gossip_addr == *xa)
    }

    /// Fires timers in order and delivers, until joined or `limit` passes.
    fn run_until_joined(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        loop {
            self.deliver();
            if self.joined() {
                return true;
            }
            let next = self
                .cores
                .iter()
                .filter_map(|(_, c)| c.poll_timeout())
                .min()
                .unwrap_or(end);
            self.now = self.now.max(next);
            if self.now >= end {
                return self.joined();
            }
            let now = self.now;
            for (_, core) in &mut self.cores {
                core.handle_timeout(now);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut pair = Pair {
        now,
        cores: [
            (addr(1), core("x", 1, vec![], now)),
            (addr(2), core("y", 2, vec![addr(1)], now)),
        ],
    };
    let now = pair.now;
    for (_, core) in &mut pair.cores {
        core.handle_timeout(now);
    }
    assert!(
        pair.run_until_joined(Duration::from_secs(10)),
        "control: x and y join"
    );

    for i in 0..2 {
        let from = pair.cores[1 - i].0;
        let now = pair.now;
        match pair.cores[i].1.handle_datagram(now, from, data) {
            Ok(()) => {}
            Err(MembershipError::Rejected {
                from: named,
                reason,
            }) => {
                assert_eq!(named, from);
                assert!(!reason.to_string().is_empty());
            }
            Err(other) => panic!("a datagram can only be refused: {other}"),
        }
    }
    let joined = pair.run_until_joined(Duration::from_secs(120));
    assert!(
        joined || !*CHECK_LIVENESS,
        "x and y no longer see each other after the datagram"
    );
});
