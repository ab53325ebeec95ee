//! Catching up after a start, and verifying an actor restored from the
//! store (see the module docs of [`Engine`]).
//!
//! At start the engine pulls every replica from one live member (that
//! answer may be the whole state: only one peer sends it), then from every
//! other live member (small answers: the digest is now up to date). It is
//! caught up once all of them have answered. No other pull is sent before
//! the first answer. With an actor restored from the store, the node also
//! mints nothing until then: an answer holding a dot of its actor above
//! what the store held, or a member that does not answer within
//! `startup_timeout`, makes it take a fresh actor.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Instant,
};

use crdt::ActorId;
use rand::{RngExt, seq::IndexedRandom};

use super::{Engine, EngineConfig, Event};
use crate::{NodeId, Peer, storage::Identity};

/// How the start-up exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupOutcome {
    /// Every member live at start answered.
    CaughtUp,
    /// No member was seen within `startup_timeout`: this node is alone (a
    /// restored actor is trusted).
    Alone,
    /// Some member did not answer within `startup_timeout` (a restored actor
    /// was replaced by a fresh one).
    TimedOut,
}

pub(super) struct Startup {
    started: Instant,
    state: State,
    /// Members whose handshake failed during the start-up: not asked first.
    failed: BTreeSet<NodeId>,
    /// A member that might have seen this node's dots could not be asked.
    unsure: bool,
    /// The catch-up is over (as caught up, alone or timed out); a restored
    /// actor may still be being verified.
    caught_up: bool,
    /// While verifying a restored actor: per replica, the highest counter of
    /// the actor the store held.
    verify: Option<(ActorId, BTreeMap<String, u64>)>,
}

enum State {
    /// No member asked yet.
    Waiting,
    /// The first member's answers are awaited (no other pull goes out).
    First {
        member: NodeId,
        replicas: BTreeSet<String>,
    },
    /// The other members' answers are awaited.
    Rest {
        waiting: BTreeMap<NodeId, BTreeSet<String>>,
    },
    Done,
}

impl Startup {
    pub(super) fn new(now: Instant) -> Self {
        Startup {
            started: now,
            state: State::Waiting,
            failed: BTreeSet::new(),
            unsure: false,
            caught_up: false,
            verify: None,
        }
    }

    pub(super) fn done(&self) -> bool {
        self.caught_up
    }

    pub(super) fn verifying(&self) -> bool {
        self.verify.is_some()
    }

    /// Whether pulls other than the start-up ones may go out.
    pub(super) fn lets_pull(&self) -> bool {
        self.caught_up || !matches!(self.state, State::Waiting | State::First { .. })
    }

    /// Whether the next step can be taken at once (the answers it waited
    /// for are in).
    pub(super) fn step_due(&self) -> bool {
        match &self.state {
            State::First { replicas, .. } => replicas.is_empty(),
            State::Rest { waiting } => waiting.is_empty(),
            _ => false,
        }
    }

    pub(super) fn deadline(&self, config: &EngineConfig) -> Option<Instant> {
        if !self.caught_up {
            Some(self.started + config.startup_timeout)
        } else if self.verify.is_some() {
            Some(self.started + config.verify_timeout)
        } else {
            None
        }
    }

    /// `peer` cannot be asked: it refused the handshake (`rejected`: another
    /// cluster, version or key, so it never synced with this node) or could
    /// not be reached (it may have: this node is then unsure).
    pub(super) fn peer_failed(&mut self, peer: &NodeId, rejected: bool) {
        self.failed.insert(peer.clone());
        let waited = match &mut self.state {
            State::First { member, .. } if member == peer => {
                self.state = State::Waiting;
                true
            }
            State::Rest { waiting } => waiting.remove(peer).is_some(),
            _ => false,
        };
        if waited && !rejected {
            self.unsure = true;
        }
    }

    /// A chunk of an answer the start-up waits for arrived from `from` at
    /// `now`: a large answer in progress is not a member that does not
    /// answer, so the wait starts over.
    pub(super) fn progress(&mut self, from: &NodeId, now: Instant) {
        let waited = match &self.state {
            State::First { member, .. } => member == from,
            State::Rest { waiting } => waiting.contains_key(from),
            _ => false,
        };
        if waited {
            self.started = now;
        }
    }

    /// Records that `from` answered its pull of `replica`.
    pub(super) fn answered(&mut self, from: &NodeId, replica: &str) {
        match &mut self.state {
            State::First { member, replicas } if member == from => {
                replicas.remove(replica);
            }
            State::Rest { waiting } => {
                if let Some(left) = waiting.get_mut(from) {
                    left.remove(replica);
                    if left.is_empty() {
                        waiting.remove(from);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Engine {
    /// Tells the engine the transport could not complete a handshake with
    /// `peer`: it refused (`rejected`: another cluster, version or key) or
    /// could not be reached. Its outstanding pulls are forgotten, and the
    /// start-up exchange does not wait for it (a member that could not be
    /// reached leaves a restored actor unverified: see the module docs).
    pub fn handle_peer_failed(&mut self, peer: &NodeId, rejected: bool) {
        self.pending.retain(|(p, _), _| p != peer);
        self.assembly.drop_peer(peer);
        if !self.startup.done() || self.startup.verifying() {
            self.startup.peer_failed(peer, rejected);
        }
    }

    /// Starts verifying this node's actor, restored from the store: until
    /// the start-up exchange is over, [`write`](Self::write) refuses, and an
    /// answer showing a dot of the actor beyond what the store held (or a
    /// member that does not answer) makes the engine take a fresh actor
    /// ([`Event::ActorRetired`]). Call after registering every replica and
    /// before the first [`handle_timeout`](Self::handle_timeout).
    pub fn verify_restored_actor(&mut self, actor: ActorId) {
        let held = self
            .replicas
            .iter()
            .map(|(name, slot)| (name.clone(), slot.max_counter(actor)))
            .collect();
        self.startup.verify = Some((actor, held));
    }

    /// The start-up exchange: first pull, then the others, then done.
    pub(super) fn step_startup(&mut self, now: Instant, members: &[Peer]) {
        let names: BTreeSet<String> = self.replicas.keys().cloned().collect();
        loop {
            match &mut self.startup.state {
                State::Done => return,
                State::Waiting => {
                    let candidates: Vec<&Peer> = members
                        .iter()
                        .filter(|p| !self.startup.failed.contains(&p.id))
                        .collect();
                    let Some(first) = candidates.choose(&mut self.rng).map(|p| (*p).clone()) else {
                        break;
                    };
                    for name in &names {
                        self.pull(now, &first, name);
                    }
                    self.greeted.insert(first.id.clone());
                    self.startup.state = State::First {
                        member: first.id,
                        replicas: names.clone(),
                    };
                }
                State::First { member, replicas } => {
                    let gone = !members.iter().any(|p| &p.id == member);
                    if gone && !replicas.is_empty() {
                        // It left before answering: ask another one.
                        self.startup.state = State::Waiting;
                        continue;
                    }
                    if !replicas.is_empty() {
                        break;
                    }
                    let first = member.clone();
                    let mut waiting = BTreeMap::new();
                    for peer in members.iter().filter(|p| p.id != first) {
                        for name in &names {
                            self.pull(now, peer, name);
                        }
                        self.greeted.insert(peer.id.clone());
                        waiting.insert(peer.id.clone(), names.clone());
                    }
                    self.startup.state = State::Rest { waiting };
                }
                State::Rest { waiting } => {
                    if waiting.is_empty() {
                        let outcome = if self.startup.unsure {
                            StartupOutcome::TimedOut
                        } else {
                            StartupOutcome::CaughtUp
                        };
                        self.finish_startup(outcome);
                        return;
                    }
                    break;
                }
            }
        }
        let elapsed = now.saturating_duration_since(self.startup.started);
        if !self.startup.caught_up && elapsed >= self.config.startup_timeout {
            let alone = matches!(self.startup.state, State::Waiting)
                && !self.startup.unsure
                && members.iter().all(|p| self.startup.failed.contains(&p.id));
            if alone || self.startup.verify.is_none() {
                self.finish_startup(if alone {
                    StartupOutcome::Alone
                } else {
                    StartupOutcome::TimedOut
                });
                return;
            }
            // Caught up as far as the app is concerned; the restored actor
            // is still being verified: ask every live member not asked yet,
            // and wait for them until `verify_timeout`.
            self.startup.caught_up = true;
            tracing::info!("start-up exchange timed out; still verifying the restored actor");
            self.events
                .push_back(Event::CaughtUp(StartupOutcome::TimedOut));
            let mut waiting = match std::mem::replace(&mut self.startup.state, State::Done) {
                State::Rest { waiting } => waiting,
                State::First { member, replicas } if !replicas.is_empty() => {
                    BTreeMap::from([(member, replicas)])
                }
                _ => BTreeMap::new(),
            };
            for peer in members {
                if !self.greeted.contains(&peer.id) && !self.startup.failed.contains(&peer.id) {
                    for name in &names {
                        self.pull(now, peer, name);
                    }
                    self.greeted.insert(peer.id.clone());
                    waiting.insert(peer.id.clone(), names.clone());
                }
            }
            self.startup.state = State::Rest { waiting };
        }
        if self.startup.caught_up
            && self.startup.verify.is_some()
            && elapsed >= self.config.verify_timeout
        {
            self.retire_actor("unsure");
            self.startup.verify = None;
            self.startup.state = State::Done;
        }
    }

    fn finish_startup(&mut self, outcome: StartupOutcome) {
        self.startup.state = State::Done;
        if outcome != StartupOutcome::Alone && self.startup.verify.is_some() && self.startup.unsure
        {
            self.retire_actor("unsure");
        }
        self.startup.verify = None;
        if !self.startup.caught_up {
            self.startup.caught_up = true;
            tracing::info!(?outcome, "start-up exchange over");
            self.events.push_back(Event::CaughtUp(outcome));
        }
    }

    /// After a join during verification: a dot of our actor that the store
    /// did not hold means the store is older than what we exposed.
    pub(super) fn verify_after_join(&mut self) {
        let Some((actor, held)) = &self.startup.verify else {
            return;
        };
        let stale = self
            .replicas
            .iter()
            .any(|(name, slot)| slot.max_counter(*actor) > held.get(name).copied().unwrap_or(0));
        if stale {
            self.retire_actor("stale store");
            self.startup.verify = None;
        }
    }

    /// Replaces the actor of every replica with a fresh random one, written
    /// with the next commit.
    fn retire_actor(&mut self, reason: &'static str) {
        let Some(old) = self.replicas.values().next().map(|s| s.actor()) else {
            return;
        };
        let new = ActorId(self.rng.random());
        for slot in self.replicas.values_mut() {
            slot.set_actor(new);
        }
        for (_, durable) in self.durable_counters_mut() {
            *durable = 0;
        }
        self.persist_identity(Identity {
            node: self.node.0.clone(),
            actor: new,
        });
        tracing::warn!(%old, %new, reason, "the actor restored from the store cannot be trusted: minting with a fresh one");
        self.events
            .push_back(Event::ActorRetired { old, new, reason });
    }
}
