//! Durable replicas: commit cuts for the store, and the rule that this
//! node's own dots leave it only once they are durable (see the module docs
//! of [`Engine`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crdt::{CausalContext, Rows};
use serde::{Serialize, de::DeserializeOwned};

use super::{Announcement, Answer, Engine};
use crate::{
    SyncError,
    replica::Slot,
    storage::{Commit, Identity, StoredReplica},
};

/// What a commit taken with [`Engine::take_commit`] covers; hand it back
/// with [`Engine::handle_committed`] or [`Engine::handle_commit_failed`].
#[derive(Debug)]
pub struct CommitTicket {
    cut: u64,
    /// Local writes up to this one are in the commit.
    seq: u64,
    /// Per durable replica, its own counter at the cut.
    counters: Vec<(String, u64)>,
    identity: bool,
}

impl CommitTicket {
    /// The local writes covered: every write up to this sequence number
    /// (see [`Engine::write_seq`]) is durable once the commit is.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// A pull waiting for this node's own dots to be durable.
struct ParkedPull {
    id: u64,
    replica: String,
    digest: CausalContext,
}

#[derive(Default)]
pub(super) struct Durability {
    /// Durable replicas, and the highest own counter known durable.
    durable: BTreeMap<String, u64>,
    /// Durable replicas changed since the last cut.
    dirty: BTreeSet<String>,
    /// Durable replicas whose next commit writes every row.
    whole: BTreeSet<String>,
    /// The identity to write with the next commit.
    identity: Option<Identity>,
    write_seq: u64,
    committed_seq: u64,
    /// Local writes' announcements, held until the own counter they need is
    /// durable.
    held: Vec<(String, u64, Announcement)>,
    next_id: u64,
    parked: Vec<ParkedPull>,
    /// The cut in flight and the answers taken from it.
    in_flight: Option<(u64, Vec<(ParkedPull, Answer)>)>,
    ready: HashMap<u64, Answer>,
}

impl Durability {
    pub(super) fn is_durable(&self, name: &str) -> bool {
        self.durable.contains_key(name)
    }

    pub(super) fn wrote(&mut self, name: &str, own: u64, announcement: Announcement) {
        self.write_seq += 1;
        self.dirty.insert(name.to_owned());
        self.held.push((name.to_owned(), own, announcement));
    }

    pub(super) fn joined(&mut self, name: &str) {
        if self.durable.contains_key(name) {
            self.dirty.insert(name.to_owned());
        }
    }

    pub(super) fn park(&mut self, replica: String, digest: CausalContext) -> u64 {
        self.next_id += 1;
        self.parked.push(ParkedPull {
            id: self.next_id,
            replica,
            digest,
        });
        self.next_id
    }
}

impl Engine {
    /// Registers `replica` under `name` as a durable replica: every change
    /// to it is committed to the caller's store (see
    /// [`take_commit`](Self::take_commit)), and its own dots are exposed only
    /// once durable. With `stored` (what the store held for it) the replica
    /// is restored from it first; without, its first commit writes all of
    /// it.
    ///
    /// # Errors
    /// [`SyncError::DuplicateReplica`] if `name` is taken;
    /// [`SyncError::Restore`] if `stored` cannot be decoded or breaks an
    /// invariant. Nothing is registered on error.
    pub fn register_durable<T>(
        &mut self,
        name: &str,
        mut replica: T,
        stored: Option<&StoredReplica>,
    ) -> Result<(), SyncError>
    where
        T: Rows + Send + 'static,
        T::Delta: Serialize + DeserializeOwned,
        T::Key: Ord + Clone + Serialize + DeserializeOwned + Send + 'static,
    {
        if self.replicas.contains_key(name) {
            return Err(SyncError::DuplicateReplica(name.to_owned()));
        }
        replica.track_touched(true);
        let mut slot = Slot::new(replica);
        if let Some(stored) = stored {
            use crate::replica::ErasedReplica;
            slot.restore(stored).map_err(|e| SyncError::Restore {
                replica: name.to_owned(),
                source: Box::new(e),
            })?;
        } else {
            self.durable.whole.insert(name.to_owned());
            self.durable.dirty.insert(name.to_owned());
        }
        let own = slot.replica.max_counter(slot.replica.actor());
        self.durable.durable.insert(name.to_owned(), own);
        self.register(name, slot.replica)?;
        // `register` built a fresh slot around the replica: keep tracking.
        Ok(())
    }

    /// Asks for `identity` (this node's name and actor) to be written with
    /// the next commit.
    pub fn persist_identity(&mut self, identity: Identity) {
        self.durable.identity = Some(identity);
    }

    /// The number of local writes to durable replicas so far. A write is
    /// durable once [`committed_seq`](Self::committed_seq) reaches its
    /// number.
    pub fn write_seq(&self) -> u64 {
        self.durable.write_seq
    }

    /// The number of local writes known durable.
    pub fn committed_seq(&self) -> u64 {
        self.durable.committed_seq
    }

    /// Whether replica `name`'s own dots may leave this node now: it is not
    /// durable, or every dot this node minted for it is in a commit that is
    /// durable.
    pub(super) fn exposable(&self, name: &str) -> bool {
        let Some(durable) = self.durable.durable.get(name) else {
            return true;
        };
        self.replicas
            .get(name)
            .is_none_or(|slot| slot.max_counter(slot.actor()) <= *durable)
    }

    /// Takes a commit: the rows of every key of a durable replica touched
    /// since the last commit (by a local write, a join or a purge), every
    /// such replica's head, and the identity if one is to be written, all
    /// from the current state (one consistent cut). Pulls parked until now
    /// are answered from this same cut, once it is durable. `None` when
    /// there is nothing to write, or while the previous commit has not been
    /// reported (one commit at a time).
    ///
    /// # Errors
    /// [`SyncError::Encode`] if a row or head cannot be encoded; nothing is
    /// taken (the keys stay touched).
    pub fn take_commit(&mut self) -> Result<Option<(Commit, CommitTicket)>, SyncError> {
        let d = &mut self.durable;
        if d.in_flight.is_some() || (d.dirty.is_empty() && d.identity.is_none()) {
            return Ok(None);
        }
        let mut commit = Commit {
            identity: d.identity.clone(),
            replicas: Vec::new(),
        };
        let mut counters = Vec::new();
        for name in std::mem::take(&mut d.dirty) {
            let Some(slot) = self.replicas.get_mut(&name) else {
                continue;
            };
            let rows = if d.whole.remove(&name) {
                slot.all_rows(&name)
            } else {
                slot.commit_rows(&name)
            };
            let rows = rows.map_err(|source| SyncError::Encode {
                replica: name.clone(),
                source,
            })?;
            counters.push((name.clone(), slot.max_counter(slot.actor())));
            commit.replicas.push(rows);
        }
        d.next_id += 1;
        let cut = d.next_id;
        let ticket = CommitTicket {
            cut,
            seq: d.write_seq,
            counters,
            identity: d.identity.is_some(),
        };
        let parked = std::mem::take(&mut self.durable.parked);
        let mut answers = Vec::with_capacity(parked.len());
        for pull in parked {
            let answer = self.answer_parked(&pull);
            answers.push((pull, answer));
        }
        self.durable.in_flight = Some((cut, answers));
        Ok(Some((commit, ticket)))
    }

    /// The commit of `ticket` is durable: its own dots may leave, its local
    /// writes are acknowledged, the pulls answered from its cut are ready
    /// ([`take_parked`](Self::take_parked)) and so are those parked while it
    /// was in flight whose replica has no own dot left to commit, and the notifications of its
    /// writes are sent at the next [`handle_timeout`](Self::handle_timeout).
    pub fn handle_committed(&mut self, ticket: CommitTicket) {
        self.metrics.commits += 1;
        let d = &mut self.durable;
        for (name, counter) in ticket.counters {
            if let Some(durable) = d.durable.get_mut(&name) {
                *durable = (*durable).max(counter);
            }
        }
        d.committed_seq = d.committed_seq.max(ticket.seq);
        if ticket.identity {
            d.identity = None;
        }
        if let Some((cut, answers)) = d.in_flight.take() {
            debug_assert_eq!(cut, ticket.cut);
            for (pull, answer) in answers {
                d.ready.insert(pull.id, answer);
            }
        }
        // Pulls parked while this commit was in flight waited for it: those
        // whose replica's own dots are now all durable are answered from the
        // current state (no later cut may come to answer them). The others
        // wait for a later write, which is dirty, so a next commit comes.
        let parked = std::mem::take(&mut self.durable.parked);
        let (now, later): (Vec<_>, Vec<_>) = parked
            .into_iter()
            .partition(|pull| self.exposable(&pull.replica));
        self.durable.parked = later;
        for pull in now {
            let answer = self.answer_parked(&pull);
            self.durable.ready.insert(pull.id, answer);
        }
        let d = &mut self.durable;
        let durable = &d.durable;
        let (release, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut d.held)
            .into_iter()
            .partition(|(name, own, _)| durable.get(name).is_some_and(|d| d >= own));
        d.held = keep;
        for (name, _, announcement) in release {
            self.announce(&name, announcement);
        }
    }

    /// The answer to a parked pull, from the current state (a frontier owed
    /// is sent at the member's next pull).
    fn answer_parked(&mut self, pull: &ParkedPull) -> Answer {
        match self.answer(None, &pull.replica, &pull.digest) {
            super::Reply::Answer(answer) => answer,
            _ => Answer::empty(&pull.replica),
        }
    }

    /// The commit of `ticket` failed: nothing of it is durable. Its rows are
    /// taken again by the next commit, and the pulls answered from its cut
    /// wait for that one.
    pub fn handle_commit_failed(&mut self, commit: &Commit, ticket: CommitTicket) {
        self.metrics.commit_failures += 1;
        for rc in &commit.replicas {
            if let Some(slot) = self.replicas.get_mut(&rc.name) {
                slot.retouch(&rc.rows);
                self.durable.dirty.insert(rc.name.clone());
            }
        }
        let d = &mut self.durable;
        if let Some((_, answers)) = d.in_flight.take() {
            d.parked.extend(answers.into_iter().map(|(pull, _)| pull));
        }
        let _ = ticket;
    }

    /// The answer of pull `id` (see [`Reply::Parked`](super::Reply::Parked)),
    /// once the commit it was taken from is durable.
    pub fn take_parked(&mut self, id: u64) -> Option<Answer> {
        self.durable.ready.remove(&id)
    }

    /// Forgets parked pull `id` (its connection is gone).
    pub fn cancel_parked(&mut self, id: u64) {
        let d = &mut self.durable;
        d.ready.remove(&id);
        d.parked.retain(|p| p.id != id);
        if let Some((_, answers)) = &mut d.in_flight {
            answers.retain(|(p, _)| p.id != id);
        }
    }

    pub(super) fn durable_counters_mut(&mut self) -> impl Iterator<Item = (&String, &mut u64)> {
        self.durable.durable.iter_mut()
    }
}
