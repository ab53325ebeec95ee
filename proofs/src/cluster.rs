//! A set of ORMap replicas exchanging pull answers that may arrive late,
//! twice, or never, with purges and replicas that go away and come back.
//!
//! A pull is split in two steps, as over a real network: the answer is
//! computed when the request reaches the responder and joined whenever it
//! reaches the requester, possibly after both have changed.

use crdt::{ActorId, Delta, DeltaCrdt, ORMap};
use proptest::prelude::*;

use crate::{
    meet_all,
    oracle::{Event, Oracle},
    read,
};

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `replica` writes `key`: `Some(v)` inserts, `None` removes.
    Write {
        /// The writer.
        replica: usize,
        /// The key.
        key: u8,
        /// The value, `None` for a remove.
        value: Option<u8>,
    },
    /// `to` asks `from` for what it lacks; the answer goes in flight.
    Request {
        /// The responder.
        from: usize,
        /// The requester.
        to: usize,
    },
    /// An answer in flight (chosen by `pick`) reaches its requester; with
    /// `again` a copy stays in flight and arrives a second time later.
    Deliver {
        /// Which answer (modulo the number in flight).
        pick: usize,
        /// Whether to deliver it again later.
        again: bool,
    },
    /// An answer in flight is lost.
    Lose {
        /// Which answer (modulo the number in flight).
        pick: usize,
    },
    /// `replica` purges the tombstones stable among the replicas it can reach
    /// (the present ones when it is present; only itself when it is away).
    Purge {
        /// The purging replica.
        replica: usize,
    },
    /// `replica` is cut off: it stops counting as a member of the others and
    /// exchanges nothing until it returns, but may keep writing.
    Leave {
        /// The replica leaving.
        replica: usize,
    },
    /// `replica` is reachable again.
    Return {
        /// The replica returning.
        replica: usize,
    },
}

/// A random step for `n` replicas over 6 keys.
pub fn step(n: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..n, 0u8..6, prop::option::weighted(0.7, any::<u8>()))
            .prop_map(|(replica, key, value)| Step::Write { replica, key, value }),
        4 => (0..n, 0..n).prop_map(|(from, to)| Step::Request { from, to }),
        4 => (any::<usize>(), prop::bool::weighted(0.3))
            .prop_map(|(pick, again)| Step::Deliver { pick, again }),
        1 => any::<usize>().prop_map(|pick| Step::Lose { pick }),
        1 => (0..n).prop_map(|replica| Step::Purge { replica }),
        1 => (0..n).prop_map(|replica| Step::Leave { replica }),
        1 => (0..n).prop_map(|replica| Step::Return { replica }),
    ]
}

/// Replicas, the answers in flight between them, and the history of writes.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The replicas, owned by actors `1..=n`.
    pub maps: Vec<ORMap<u8, u8>>,
    /// Every write so far.
    pub oracle: Oracle,
    in_flight: Vec<(usize, Delta<u8, u8>)>,
    away: Vec<bool>,
    /// Full-state answers sent so far.
    pub full_answers: usize,
    /// Tombstones purged so far.
    pub purged: usize,
}

impl Cluster {
    /// `n` empty replicas, all present.
    pub fn new(n: usize) -> Self {
        Cluster {
            maps: (1..=n as u64).map(|a| ORMap::new(ActorId(a))).collect(),
            oracle: Oracle::default(),
            in_flight: Vec::new(),
            away: vec![false; n],
            full_answers: 0,
            purged: 0,
        }
    }

    /// Applies one step; steps that make no sense at this point (an away
    /// replica pulling, a delivery with nothing in flight) do nothing.
    pub fn step(&mut self, step: &Step) {
        match *step {
            Step::Write {
                replica,
                key,
                value,
            } => {
                let map = &mut self.maps[replica];
                let delta = match value {
                    Some(v) => Some(map.insert(key, v)),
                    None => map.remove(&key),
                };
                if delta.is_some() {
                    let sibling = map.siblings(&key)[0].clone();
                    self.oracle.record(Event {
                        key,
                        dot: sibling.dot,
                        value: sibling.value,
                        seen: map.context().clone(),
                    });
                }
            }
            Step::Request { from, to } => {
                if from == to || self.away[from] || self.away[to] {
                    return;
                }
                if let Some(answer) = self.maps[from].delta_since(&self.maps[to].digest()) {
                    self.full_answers += usize::from(answer.is_full());
                    self.in_flight.push((to, answer));
                }
            }
            Step::Deliver { pick, again } => {
                if self.in_flight.is_empty() {
                    return;
                }
                let i = pick % self.in_flight.len();
                let (to, answer) = if again {
                    self.in_flight[i].clone()
                } else {
                    self.in_flight.swap_remove(i)
                };
                if !self.away[to] {
                    self.maps[to].join_delta(answer);
                }
            }
            Step::Lose { pick } => {
                if !self.in_flight.is_empty() {
                    let i = pick % self.in_flight.len();
                    self.in_flight.swap_remove(i);
                }
            }
            Step::Purge { replica } => {
                let stable = if self.away[replica] {
                    self.maps[replica].digest()
                } else {
                    let digests: Vec<_> = (0..self.maps.len())
                        .filter(|&i| !self.away[i])
                        .map(|i| self.maps[i].digest())
                        .collect();
                    meet_all(&digests)
                };
                self.purged += self.maps[replica].purge(&stable);
            }
            Step::Leave { replica } => {
                // Keep at least one replica present.
                if self.away.iter().filter(|a| !**a).count() > 1 {
                    self.away[replica] = true;
                }
            }
            Step::Return { replica } => self.away[replica] = false,
        }
    }

    /// Heals everything: answers in flight are lost, every replica returns,
    /// and rounds of pulls between every ordered pair run until a round
    /// teaches nobody anything. Returns the number of rounds (the last one
    /// learns nothing), or `None` if `max_rounds` was not enough.
    pub fn settle(&mut self, max_rounds: usize) -> Option<usize> {
        self.in_flight.clear();
        self.away.iter_mut().for_each(|a| *a = false);
        for round in 1..=max_rounds {
            let mut learned = false;
            for to in 0..self.maps.len() {
                for from in 0..self.maps.len() {
                    if from == to {
                        continue;
                    }
                    if let Some(answer) = self.maps[from].delta_since(&self.maps[to].digest()) {
                        learned |= self.maps[to].join_delta(answer).learned();
                    }
                }
            }
            if !learned {
                return Some(round);
            }
        }
        None
    }

    /// What each replica reads.
    pub fn reads(&self) -> Vec<Vec<(u8, u8)>> {
        self.maps.iter().map(read).collect()
    }
}
