//! Proptest strategies for [`Replicated`] replicas of every type of the
//! palette (feature `proptest`), shared by `proofs/` and by users testing
//! their own types.
//!
//! States are not generated field by field: a random state would reuse dots
//! or hold dots its context lacks, which no real history produces. Instead a
//! random history of [`Step`]s is replayed over 2–8 replicas with distinct
//! actors ([`History`]): operations of the type and key removals through the
//! public mutators; pulls (`to` joins
//! `from.delta_since(&to.digest()).or_else(|| from.frontier_answer())`), at
//! once or as answers that go in flight and arrive late, twice or never;
//! purges with the stable context (the meet of every replica's digest, or of
//! all but one replica left out, as the ORMap strategies of
//! [`crate::arbitrary`] do); a replica away for a while (it exchanges
//! nothing, the others purge without it and it purges with its own digest,
//! as in `proofs`' ORMap cluster), so that it comes back below the purge
//! frontier; and lost stores (a replica replaced by an empty one with a
//! fresh actor). The replay records every mutation that changed
//! something, with what its replica had observed, for an oracle.
//!
//! States drawn from one history may be joined with each other; states from
//! two histories must not be (their dots collide).
//!
//! Every palette type draws its operations through [`ArbitraryEmbed`], at the
//! top level and nested in maps at any depth; keys, elements and register
//! values come from small domains ([`Domain`]) so that replicas collide. For
//! example, three replicas of a map of maps of counters:
//!
//! ```
//! use crdt::replicated::arbitrary::replicas;
//! use crdt::{MapOf, PosNeg};
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::deterministic();
//! let states = replicas::<u8, MapOf<u8, PosNeg>>(3, 60)
//!     .new_tree(&mut runner)
//!     .expect("a history")
//!     .current();
//! assert_eq!(states.len(), 3);
//! ```

use std::{fmt::Debug, ops::RangeInclusive};

use proptest::prelude::*;

use super::{Delta, Embed, Replicated};
use crate::{
    ActorId, CausalContext, Count, DeltaCrdt, DisableWins, EnableWins, GrowOnly, Lww, MapOf, MapOp,
    MultiValue, PosNeg, Presence, SetOf, SetOp, Tiebreak,
};

/// A type whose values proptest draws from a small domain (four values, or
/// one for `()`), so that the keys, elements and values of different
/// replicas collide often.
pub trait Domain: Ord + Clone + Debug + 'static {
    /// A value of the domain.
    fn small() -> BoxedStrategy<Self>;
}

impl Domain for () {
    fn small() -> BoxedStrategy<Self> {
        Just(()).boxed()
    }
}

impl Domain for bool {
    fn small() -> BoxedStrategy<Self> {
        any::<bool>().boxed()
    }
}

impl Domain for u8 {
    fn small() -> BoxedStrategy<Self> {
        (0u8..4).boxed()
    }
}

impl Domain for u32 {
    fn small() -> BoxedStrategy<Self> {
        (0u32..4).boxed()
    }
}

impl Domain for u64 {
    fn small() -> BoxedStrategy<Self> {
        (0u64..4).boxed()
    }
}

impl Domain for String {
    fn small() -> BoxedStrategy<Self> {
        prop::sample::select(&["a", "b", "c", "d"][..])
            .prop_map(String::from)
            .boxed()
    }
}

/// An [`Embed`] type whose operations proptest can draw.
pub trait ArbitraryEmbed: Embed<Op: Clone + Debug> + 'static {
    /// A random operation.
    fn op() -> BoxedStrategy<Self::Op>;
}

/// Increments of 1 to 5, and now and then 0 (which changes nothing).
impl ArbitraryEmbed for GrowOnly {
    fn op() -> BoxedStrategy<u64> {
        prop_oneof![9 => 1u64..=5, 1 => Just(0)].boxed()
    }
}

/// Increments and decrements of 0 to 5, increments twice as often.
impl ArbitraryEmbed for PosNeg {
    fn op() -> BoxedStrategy<Count> {
        prop_oneof![
            2 => (0u64..=5).prop_map(Count::Up),
            1 => (0u64..=5).prop_map(Count::Down),
        ]
        .boxed()
    }
}

/// The one operation of a set element: add it (removing is the key's
/// removal).
impl ArbitraryEmbed for Presence {
    fn op() -> BoxedStrategy<()> {
        Just(()).boxed()
    }
}

/// Enables and disables, equally often.
impl ArbitraryEmbed for EnableWins {
    fn op() -> BoxedStrategy<bool> {
        any::<bool>().boxed()
    }
}

/// Enables and disables, equally often.
impl ArbitraryEmbed for DisableWins {
    fn op() -> BoxedStrategy<bool> {
        any::<bool>().boxed()
    }
}

/// Writes of a value of `V`'s small domain.
impl<V: Domain> ArbitraryEmbed for MultiValue<V> {
    fn op() -> BoxedStrategy<V> {
        V::small()
    }
}

/// Writes of a value of `V`'s small domain.
impl<V: Domain, B: Tiebreak<(), V> + Default + 'static> ArbitraryEmbed for Lww<V, B> {
    fn op() -> BoxedStrategy<V> {
        V::small()
    }
}

/// Adds twice as often as removes, of elements of `E`'s small domain.
impl<E: Domain> ArbitraryEmbed for SetOf<E> {
    fn op() -> BoxedStrategy<SetOp<E>> {
        prop_oneof![
            2 => E::small().prop_map(SetOp::Add),
            1 => E::small().prop_map(SetOp::Remove),
        ]
        .boxed()
    }
}

/// Updates (with `T`'s operations) four times as often as removes, of keys
/// of `K`'s small domain.
impl<K: Domain, T: ArbitraryEmbed> ArbitraryEmbed for MapOf<K, T> {
    fn op() -> BoxedStrategy<MapOp<K, T::Op>> {
        prop_oneof![
            4 => (K::small(), T::op()).prop_map(|(k, op)| MapOp::Update(k, op)),
            1 => K::small().prop_map(MapOp::Remove),
        ]
        .boxed()
    }
}

/// One step of a replicated history. Steps naming a replica out of range,
/// or a replica pulling from itself, do nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<K, O> {
    /// Replica `replica` applies `op` under `key` ([`Replicated::apply`]).
    Apply {
        /// Index of the replica.
        replica: usize,
        /// The top-level key.
        key: K,
        /// The operation.
        op: O,
    },
    /// Replica `replica` removes what it observed under `key`
    /// ([`Replicated::remove`]).
    Remove {
        /// Index of the replica.
        replica: usize,
        /// The top-level key.
        key: K,
    },
    /// Replica `to` pulls from replica `from` and joins the answer at once.
    Pull {
        /// The responder.
        from: usize,
        /// The requester.
        to: usize,
    },
    /// Replica `to` asks replica `from`; the answer goes in flight.
    Request {
        /// The responder.
        from: usize,
        /// The requester.
        to: usize,
    },
    /// An answer in flight reaches its requester (dropped if the requester
    /// lost its store since it asked); with `again`, a copy stays in flight
    /// and may arrive a second time later.
    Deliver {
        /// Which answer, modulo the number in flight.
        pick: usize,
        /// Whether a copy stays in flight.
        again: bool,
    },
    /// An answer in flight is lost.
    Lose {
        /// Which answer, modulo the number in flight.
        pick: usize,
    },
    /// Replica `replica` purges with the meet of the digests of every
    /// replica but `away` (every replica, for `None`) and but the replica
    /// that is away, if any; the replica that is away purges with its own
    /// digest.
    Purge {
        /// The purging replica.
        replica: usize,
        /// A replica left out of the stable context, if any.
        away: Option<usize>,
    },
    /// Replica `replica` loses its store: it is replaced by an empty replica
    /// with a fresh actor, and the answers in flight to it are lost.
    LoseStore {
        /// The replica whose store is lost.
        replica: usize,
    },
    /// Replica `replica` goes away, if no replica is away and at least two
    /// others remain: until [`Return`](Step::Return) it takes part in no
    /// exchange (answers reaching it are lost), may keep mutating, and is
    /// left out of every purge's stable context.
    Leave {
        /// The replica going away.
        replica: usize,
    },
    /// The replica that is away, if any, is reachable again.
    Return,
}

/// A random step over `replicas` replicas, keys of `K` and operations of
/// `T`: operations and exchanges are frequent, removals and purges rarer,
/// replicas going away and lost stores rare.
pub fn step<K: Domain, T: ArbitraryEmbed>(
    replicas: usize,
) -> impl Strategy<Value = Step<K, T::Op>> {
    let r = 0..replicas.max(1);
    prop_oneof![
        40 => (r.clone(), K::small(), T::op())
            .prop_map(|(replica, key, op)| Step::Apply { replica, key, op }),
        12 => (r.clone(), K::small()).prop_map(|(replica, key)| Step::Remove { replica, key }),
        40 => (r.clone(), r.clone()).prop_map(|(from, to)| Step::Pull { from, to }),
        20 => (r.clone(), r.clone()).prop_map(|(from, to)| Step::Request { from, to }),
        20 => (any::<usize>(), prop::bool::weighted(0.3))
            .prop_map(|(pick, again)| Step::Deliver { pick, again }),
        4 => any::<usize>().prop_map(|pick| Step::Lose { pick }),
        16 => (r.clone(), prop::option::weighted(0.4, r.clone()))
            .prop_map(|(replica, away)| Step::Purge { replica, away }),
        1 => r.clone().prop_map(|replica| Step::LoseStore { replica }),
        2 => r.prop_map(|replica| Step::Leave { replica }),
        3 => Just(Step::Return),
    ]
}

/// A number of replicas in `replicas` and a history of up to `len` steps
/// over them.
pub fn history<K: Domain, T: ArbitraryEmbed>(
    replicas: RangeInclusive<usize>,
    len: usize,
) -> impl Strategy<Value = (usize, Vec<Step<K, T::Op>>)> {
    replicas.prop_flat_map(move |n| (Just(n), prop::collection::vec(step::<K, T>(n), 0..len)))
}

/// `n` replicas of one random history of up to `len` steps. States drawn
/// together may be joined with each other.
pub fn replicas<K: Domain, T: ArbitraryEmbed>(
    n: usize,
    len: usize,
) -> impl Strategy<Value = Vec<Replicated<K, T>>> {
    prop::collection::vec(step::<K, T>(n), 0..len).prop_map(move |steps| replay(n, &steps).replicas)
}

/// Replays `steps` over `n` empty replicas owned by actors `1..=n`.
pub fn replay<K: Ord + Clone, T: Embed<Op: Clone>>(
    n: usize,
    steps: &[Step<K, T::Op>],
) -> History<K, T> {
    let mut history = History::new(n);
    for s in steps {
        history.step(s);
    }
    history
}

/// A mutation, as the replay recorded it: who did what under which key, the
/// delta it returned, and what its replica had observed right after it (the
/// delta's dot included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation<K, O, S> {
    /// Index of the replica.
    pub replica: usize,
    /// The actor that minted the mutation's dot.
    pub actor: ActorId,
    /// The top-level key.
    pub key: K,
    /// The operation; `None` for a removal of the key.
    pub op: Option<O>,
    /// The delta the mutator returned; `None` when it changed nothing (a
    /// removal that observed nothing, an increment by 0).
    pub delta: Option<Delta<K, S>>,
    /// The replica's context right after the mutation.
    pub seen: CausalContext,
}

/// What a replay went through, to check that the interesting paths were
/// taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Answers that were full states (a digest below the purge frontier).
    pub full_answers: usize,
    /// Answers that were the frontier alone (a digest with every dot).
    pub frontier_answers: usize,
    /// Answers joined after their requester's context had changed since it
    /// asked (late, or delivered a second time).
    pub late_answers: usize,
    /// Answers delivered with a copy kept in flight.
    pub duplicated: usize,
    /// Tomb dots dropped by purges.
    pub purged: usize,
    /// Times a replica went away.
    pub departures: usize,
    /// Stores lost.
    pub lost_stores: usize,
}

impl std::ops::AddAssign for Stats {
    /// Adds the counts of another replay (totals over many histories).
    fn add_assign(&mut self, other: Stats) {
        self.full_answers += other.full_answers;
        self.frontier_answers += other.frontier_answers;
        self.late_answers += other.late_answers;
        self.duplicated += other.duplicated;
        self.purged += other.purged;
        self.departures += other.departures;
        self.lost_stores += other.lost_stores;
    }
}

/// An answer in flight: the requester's index, actor and digest when it
/// asked, and the answer.
struct InFlight<K, S> {
    to: usize,
    actor: ActorId,
    asked: CausalContext,
    answer: Delta<K, S>,
}

impl<K: Clone, S: Clone> Clone for InFlight<K, S> {
    fn clone(&self) -> Self {
        InFlight {
            to: self.to,
            actor: self.actor,
            asked: self.asked.clone(),
            answer: self.answer.clone(),
        }
    }
}

/// Replicas of one history, the answers in flight between them, and the log
/// of the mutations that changed something.
pub struct History<K, T: Embed> {
    /// The replicas; replica `i` starts as actor `i + 1`, and a replica that
    /// lost its store continues with a fresh actor above every other.
    pub replicas: Vec<Replicated<K, T>>,
    /// Every mutation tried, in order.
    pub log: Vec<Mutation<K, T::Op, T::Store>>,
    /// What the replay went through.
    pub stats: Stats,
    in_flight: Vec<InFlight<K, T::Store>>,
    away: Option<usize>,
    next_actor: u64,
}

impl<K: Clone, T: Embed<Op: Clone>> Clone for History<K, T> {
    fn clone(&self) -> Self {
        History {
            replicas: self.replicas.clone(),
            log: self.log.clone(),
            stats: self.stats,
            in_flight: self.in_flight.clone(),
            away: self.away,
            next_actor: self.next_actor,
        }
    }
}

impl<K: Ord + Clone, T: Embed<Op: Clone>> History<K, T> {
    /// `n` empty replicas owned by actors `1..=n`.
    pub fn new(n: usize) -> Self {
        let n64 = n as u64;
        History {
            replicas: (1..=n64).map(|a| Replicated::new(ActorId(a))).collect(),
            log: Vec::new(),
            stats: Stats::default(),
            in_flight: Vec::new(),
            away: None,
            next_actor: n64 + 1,
        }
    }

    /// Applies one step (see [`Step`]).
    pub fn step(&mut self, step: &Step<K, T::Op>) {
        let n = self.replicas.len();
        match step {
            Step::Apply { replica, key, op } => {
                let Some(r) = self.replicas.get_mut(*replica) else {
                    return;
                };
                let delta = r.apply(key.clone(), op.clone());
                self.log.push(Mutation {
                    replica: *replica,
                    actor: r.actor(),
                    key: key.clone(),
                    op: Some(op.clone()),
                    delta,
                    seen: r.context().clone(),
                });
            }
            Step::Remove { replica, key } => {
                let Some(r) = self.replicas.get_mut(*replica) else {
                    return;
                };
                let delta = r.remove(key);
                self.log.push(Mutation {
                    replica: *replica,
                    actor: r.actor(),
                    key: key.clone(),
                    op: None,
                    delta,
                    seen: r.context().clone(),
                });
            }
            Step::Pull { from, to } => {
                if let Some(answer) = self.answer(*from, *to) {
                    self.replicas[*to].join_delta(answer);
                }
            }
            Step::Request { from, to } => {
                if let Some(answer) = self.answer(*from, *to) {
                    let to_replica = &self.replicas[*to];
                    self.in_flight.push(InFlight {
                        to: *to,
                        actor: to_replica.actor(),
                        asked: to_replica.context().clone(),
                        answer,
                    });
                }
            }
            Step::Deliver { pick, again } => {
                if self.in_flight.is_empty() {
                    return;
                }
                let i = pick % self.in_flight.len();
                let m = if *again {
                    self.in_flight[i].clone()
                } else {
                    self.in_flight.swap_remove(i)
                };
                self.stats.duplicated += usize::from(*again);
                let to = &mut self.replicas[m.to];
                if to.actor() == m.actor && self.away != Some(m.to) {
                    self.stats.late_answers += usize::from(*to.context() != m.asked);
                    to.join_delta(m.answer);
                }
            }
            Step::Lose { pick } => {
                if !self.in_flight.is_empty() {
                    let i = pick % self.in_flight.len();
                    self.in_flight.swap_remove(i);
                }
            }
            Step::Purge { replica, away } => {
                if *replica >= n {
                    return;
                }
                let stable = if self.away == Some(*replica) {
                    self.replicas[*replica].digest()
                } else {
                    self.stable_context(*away)
                };
                self.stats.purged += self.replicas[*replica].purge(&stable);
            }
            Step::LoseStore { replica } => {
                if *replica >= n {
                    return;
                }
                self.replicas[*replica] = Replicated::new(ActorId(self.next_actor));
                self.next_actor += 1;
                self.in_flight.retain(|m| m.to != *replica);
                self.stats.lost_stores += 1;
            }
            Step::Leave { replica } => {
                if self.away.is_none() && *replica < n && n > 2 {
                    self.set_away(Some(*replica));
                }
            }
            Step::Return => self.set_away(None),
        }
    }

    /// Sends `replica` away (see [`Step::Leave`]), or brings the replica
    /// that is away back with `None`.
    pub fn set_away(&mut self, replica: Option<usize>) {
        self.stats.departures += usize::from(replica.is_some() && self.away != replica);
        self.away = replica;
    }

    /// The replica that is away, if any.
    pub fn away(&self) -> Option<usize> {
        self.away
    }

    /// `from`'s answer to `to`'s digest: `delta_since`, or the frontier
    /// alone when the digest has every dot (as the sync engine sends it);
    /// `None` for a replica out of range, itself, or one that is away.
    pub fn answer(&mut self, from: usize, to: usize) -> Option<Delta<K, T::Store>> {
        if from == to
            || from >= self.replicas.len()
            || to >= self.replicas.len()
            || self.away == Some(from)
            || self.away == Some(to)
        {
            return None;
        }
        let responder = &self.replicas[from];
        let digest = self.replicas[to].digest();
        let answer = match responder.delta_since(&digest) {
            Some(answer) => {
                self.stats.full_answers += usize::from(answer.is_full());
                answer
            }
            None => {
                let answer = responder.frontier_answer()?;
                self.stats.frontier_answers += 1;
                answer
            }
        };
        Some(answer)
    }

    /// The meet of the digests of every replica but `away` and the replica
    /// that is away, if any.
    pub fn stable_context(&self, away: Option<usize>) -> CausalContext {
        let mut members = self
            .replicas
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != away && Some(*i) != self.away)
            .map(|(_, r)| r.digest());
        let first = members.next().unwrap_or_default();
        members.fold(first, |acc, d| acc.meet(&d))
    }

    /// The full exchange: the answers in flight are lost, the replica that
    /// is away returns, then rounds of pulls between every ordered pair run
    /// until a round teaches nobody anything. Returns the number of rounds
    /// (the last learned nothing), or `None` if `max_rounds` were not enough.
    pub fn settle(&mut self, max_rounds: usize) -> Option<usize> {
        self.in_flight.clear();
        self.away = None;
        let n = self.replicas.len();
        for round in 1..=max_rounds {
            let mut learned = false;
            for to in 0..n {
                for from in 0..n {
                    if let Some(answer) = self.answer(from, to) {
                        learned |= self.replicas[to].join_delta(answer).learned();
                    }
                }
            }
            if !learned {
                return Some(round);
            }
        }
        None
    }

    /// Every replica purges with the meet of all digests.
    pub fn purge_all(&mut self) {
        let stable = self.stable_context(None);
        for r in &mut self.replicas {
            self.stats.purged += r.purge(&stable);
        }
    }

    /// The number of answers in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}
