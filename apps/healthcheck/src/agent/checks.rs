//! The check loop: the one task that owns the schedule, the ownership state
//! and the rise/fall streaks. Every origin stays in the schedule on every
//! agent; at its due time the ownership rule decides whether this agent
//! checks it (a cheap decision), so a takeover happens at the next due time,
//! without any coordination. Checks run in spawned tasks (bounded by the
//! checker's semaphore) and report back over a channel.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use membership::MembershipEvent;
use rand::{RngExt, SeedableRng, rngs::SmallRng};
use sync::Event;
use tokio::sync::{broadcast, mpsc};

use super::Shared;
use crate::{
    checker::{CheckOutcome, Checker},
    ownership::{Decision, Ownership, OwnershipConfig},
    record::HealthRecord,
    registry::{HEALTH, HealthMap, ORIGINS, Registry, now_ms},
    schedule::{Schedule, Streak, first_due, next_due},
    spec::OriginSpec,
};

/// A finished check.
struct Done {
    origin: String,
    spec: OriginSpec,
    outcome: CheckOutcome,
}

struct Loop {
    shared: Arc<Shared>,
    checker: Checker,
    ownership: Ownership,
    schedule: Schedule,
    known: HashSet<String>,
    streaks: HashMap<String, Streak>,
    last_write: HashMap<String, Instant>,
    checking: HashSet<String>,
    in_flight: HashSet<String>,
    results: mpsc::Sender<Done>,
    rng: SmallRng,
}

pub(super) async fn run(
    shared: Arc<Shared>,
    checker: Checker,
    mut members: broadcast::Receiver<MembershipEvent>,
) {
    let (results, mut done) = mpsc::channel(4096);
    let mut sync_events = shared.node.subscribe();
    let config = OwnershipConfig {
        takeover_grace: shared.config.takeover_grace,
        record_refresh: shared.config.record_refresh,
    };
    let mut l = Loop {
        ownership: Ownership::new(shared.me(), config),
        shared,
        checker,
        schedule: Schedule::new(),
        known: HashSet::new(),
        streaks: HashMap::new(),
        last_write: HashMap::new(),
        checking: HashSet::new(),
        in_flight: HashSet::new(),
        results,
        rng: SmallRng::seed_from_u64(rand::random()),
    };
    l.refresh_members().await;
    l.sync_registry();
    loop {
        let deadline = l
            .schedule
            .earliest()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            () = l.shared.shutdown.cancelled() => return,
            () = tokio::time::sleep_until(deadline.into()) => {}
            Some(d) = done.recv() => l.finish(d),
            event = members.recv() => {
                if let Ok(MembershipEvent::NameConflict(other)) = &event {
                    l.name_conflict(other.clone());
                }
                if !matches!(event, Err(broadcast::error::RecvError::Closed)) {
                    l.refresh_members().await;
                }
            }
            event = sync_events.recv() => match event {
                Ok(Event::Changed { replica }) if replica == HEALTH => l.observe_health(),
                Ok(Event::Changed { replica }) if replica == ORIGINS => {
                    let keys = l
                        .shared
                        .node
                        .take_changes::<Registry>(ORIGINS)
                        .unwrap_or_default();
                    l.sync_keys(keys);
                }
                // A peer passed (or failed) the sync handshake: it counts as
                // live for ownership only once it passed.
                Ok(Event::PeerVerified(_) | Event::PeerFailed(_)) => l.refresh_members().await,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    l.observe_health();
                    l.sync_registry();
                    l.refresh_members().await;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = l.shared.registry_changed.notified() => {
                let keys = std::mem::take(
                    &mut *l.shared.registry_dirty.lock().unwrap_or_else(|p| p.into_inner()),
                );
                l.sync_keys(keys);
            }
        }
        l.run_due();
    }
}

impl Loop {
    /// Takes the live members from SWIM into the ownership rule and the
    /// members view.
    async fn refresh_members(&mut self) {
        let guard = self.shared.membership.lock().await;
        let Some(m) = guard.as_ref() else {
            return;
        };
        // A suspected member is not counted as live for ownership: its
        // origins are taken over at once rather than after the suspicion
        // timeout (a moment with two checkers if the suspicion was false,
        // rather than a gap if it was not). Nor is a member whose sync
        // handshake has not succeeded: its results could not reach anyone
        // (another cluster, version or key, or a blocked port), so it must
        // not be the one that checks.
        let verified = self.shared.node.verified_peers();
        let live: Vec<String> = m
            .distinct_members()
            .into_iter()
            .filter(|x| x.state == membership::MemberState::Alive)
            .filter(|x| verified.contains(&x.id))
            .map(|x| x.id.0)
            .collect();
        let all = m.all_members();
        drop(guard);
        let before: Vec<String> = {
            let mut v: Vec<String> = self.ownership.live().map(String::from).collect();
            v.sort();
            v
        };
        self.ownership.set_live(live);
        let mut after: Vec<String> = self.ownership.live().map(String::from).collect();
        after.sort();
        if before != after {
            // Origins this agent owns now and did not check: check them at
            // once rather than at their next due time (up to an interval).
            let now = Instant::now();
            let known: Vec<String> = self.known.iter().cloned().collect();
            for origin in known {
                if !self.checking.contains(&origin) && self.ownership.decide(&origin, now).checks()
                {
                    self.schedule.advance(&origin, now);
                }
            }
        }
        match self.shared.members_view.write() {
            Ok(mut v) => *v = all,
            Err(p) => *p.into_inner() = all,
        }
    }

    /// Schedules origins new to the registry, forgets removed ones.
    fn sync_registry(&mut self) {
        let ids: Vec<(String, u64)> = self
            .shared
            .node
            .read::<Registry, _>(ORIGINS, |m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.spec.interval_ms))
                    .collect()
            })
            .unwrap_or_default();
        let now = Instant::now();
        let current: HashSet<&str> = ids.iter().map(|(k, _)| k.as_str()).collect();
        let gone: Vec<String> = self
            .known
            .iter()
            .filter(|k| !current.contains(k.as_str()))
            .cloned()
            .collect();
        for id in gone {
            self.forget(&id);
        }
        for (id, interval_ms) in &ids {
            if self.known.insert(id.clone()) {
                let at = first_due(
                    self.shared.me(),
                    id,
                    Duration::from_millis(*interval_ms),
                    now,
                );
                self.schedule.add(id, at);
            }
        }
    }

    /// Brings the schedule up to date for the origins `keys` only (a
    /// registry change): O(changes), not O(origins).
    fn sync_keys(&mut self, keys: Vec<String>) {
        let now = Instant::now();
        for id in keys {
            let interval = self
                .shared
                .node
                .read::<Registry, _>(ORIGINS, |m| m.get(&id).map(|r| r.spec.interval_ms))
                .ok()
                .flatten();
            match interval {
                Some(interval_ms) => {
                    if self.known.insert(id.clone()) {
                        let at = first_due(
                            self.shared.me(),
                            &id,
                            Duration::from_millis(interval_ms),
                            now,
                        );
                        self.schedule.add(&id, at);
                    }
                }
                None => {
                    if self.known.contains(&id) {
                        self.forget(&id);
                    }
                }
            }
        }
    }

    fn forget(&mut self, id: &str) {
        self.known.remove(id);
        self.ownership.forget(id);
        self.streaks.remove(id);
        self.last_write.remove(id);
        self.checking.remove(id);
        self.shared
            .stats
            .owned
            .store(self.checking.len() as u64, Ordering::Relaxed);
    }

    /// Records who wrote the health records that just changed, for the
    /// ownership rule (a higher-ranked agent at work, or a stand-in).
    fn observe_health(&mut self) {
        let Ok(keys) = self.shared.node.take_changes::<HealthMap>(HEALTH) else {
            return;
        };
        if keys.is_empty() {
            return;
        }
        let writers: Vec<(String, Vec<String>)> = self
            .shared
            .node
            .read::<HealthMap, _>(HEALTH, |m| {
                keys.iter()
                    .map(|k| {
                        let w = m
                            .siblings(k)
                            .iter()
                            .filter_map(|s| s.value.as_ref().map(|r| r.checked_by.clone()))
                            .collect();
                        (k.clone(), w)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let now = Instant::now();
        for (origin, writers) in writers {
            for writer in writers {
                self.ownership.observe(&origin, &writer, now);
            }
        }
    }

    /// Starts the checks that are due and this agent should run; reschedules
    /// the others for their next interval.
    fn run_due(&mut self) {
        let now = Instant::now();
        while let Some(origin) = self.schedule.pop_due(now) {
            let Some(spec) = self.shared.origin(&origin) else {
                self.forget(&origin);
                continue;
            };
            let decision = self.ownership.decide(&origin, now);
            if decision.checks() {
                if matches!(decision, Decision::TakeOver { .. }) && !self.checking.contains(&origin)
                {
                    self.shared.stats.takeovers.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%origin, ?decision, "taking over a silent owner's origin");
                }
                self.checking.insert(origin.clone());
                if self.in_flight.insert(origin.clone()) {
                    let checker = self.checker.clone();
                    let results = self.results.clone();
                    tokio::spawn(async move {
                        let outcome = checker.check(&spec).await;
                        let _ = results
                            .send(Done {
                                origin,
                                spec,
                                outcome,
                            })
                            .await;
                    });
                }
            } else {
                if self.checking.remove(&origin) {
                    // Handed over: start from the visible record next time.
                    self.streaks.remove(&origin);
                    self.last_write.remove(&origin);
                }
                let interval = Duration::from_millis(spec.interval_ms);
                let at = next_due(now, interval, false, self.rng.random());
                self.schedule.add(&origin, at);
            }
        }
        self.shared
            .stats
            .owned
            .store(self.checking.len() as u64, Ordering::Relaxed);
    }

    /// Another live member has this agent's name: if it answers a sync
    /// handshake under it and started first (lower bump), this agent is the
    /// duplicate and stops (the one running first keeps its origins).
    fn name_conflict(&mut self, other: membership::MemberInfo) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            if other.bump >= shared.bump {
                tracing::warn!(
                    other = %other.gossip_addr, "another agent with this agent's name joined after it; it should refuse to start"
                );
                return;
            }
            if let Ok(name) = shared.node.probe(other.sync_addr).await
                && name.0 == shared.config.node
            {
                shared.fail(format!(
                    "another agent named {:?} is alive at {} (gossip; sync {}), running since before this one (gossip {}): stopping",
                    shared.config.node, other.gossip_addr, other.sync_addr, shared.gossip_addr
                ));
            }
        });
    }

    /// Counts a finished check, writes a record if the verdict changed (or
    /// this agent just took the origin, or the refresh is due), reschedules.
    fn finish(&mut self, done: Done) {
        let Done {
            origin,
            spec,
            outcome,
        } = done;
        self.in_flight.remove(&origin);
        let counter = if outcome.ok {
            &self.shared.stats.checks_ok
        } else {
            &self.shared.stats.checks_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if !self.known.contains(&origin) {
            return; // removed while the check ran
        }
        let now = Instant::now();
        let interval = Duration::from_millis(spec.interval_ms);
        // Usurped while the check ran? Then its result is not ours to write.
        if !self.ownership.decide(&origin, now).checks() {
            self.checking.remove(&origin);
            self.streaks.remove(&origin);
            self.schedule
                .add(&origin, next_due(now, interval, false, self.rng.random()));
            return;
        }
        // Until the node has caught up with its peers after starting, what
        // it holds may be older than the cluster's view: check, keep the
        // streak, but publish nothing.
        if !self.shared.node.is_caught_up() {
            let visible = self.shared.health(&origin);
            self.streaks
                .entry(origin.clone())
                .or_insert_with(|| Streak::new(visible.as_ref().map_or(spec.initial, |v| v.status)))
                .record(outcome.ok, spec.rise, spec.fall);
            self.schedule
                .add(&origin, next_due(now, interval, true, self.rng.random()));
            return;
        }
        let me = self.shared.me().to_owned();
        let visible = self.shared.health(&origin);
        let streak = self
            .streaks
            .entry(origin.clone())
            .or_insert_with(|| Streak::new(visible.as_ref().map_or(spec.initial, |v| v.status)));
        streak.record(outcome.ok, spec.rise, spec.fall);
        let status = streak.status;
        let settling = streak.settling();
        let ours = visible.as_ref().is_some_and(|v| v.checked_by == me);
        let differs = visible.as_ref().is_none_or(|v| v.status != status);
        let refresh_due = self
            .last_write
            .get(&origin)
            .is_none_or(|t| now.saturating_duration_since(*t) >= self.shared.config.record_refresh);
        if !ours || differs || refresh_due {
            let checked_at_ms = now_ms();
            let since_ms = match &visible {
                Some(v) if v.status == status => v.since_ms,
                _ => checked_at_ms,
            };
            let record = HealthRecord {
                status,
                checked_by: me,
                checked_at_ms,
                since_ms,
                latency_ms: outcome.latency.map(|l| l.as_millis() as u64),
                reason: outcome.reason,
            };
            if differs {
                tracing::info!(%origin, status = status.as_str(), reason = ?record.reason, "origin status changed");
            }
            let written = self.shared.node.write::<HealthMap, _>(HEALTH, |m| {
                m.insert(origin.clone(), record);
            });
            if written.is_ok() {
                self.last_write.insert(origin.clone(), now);
                self.shared
                    .stats
                    .records_written
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        self.schedule.add(
            &origin,
            next_due(now, interval, settling, self.rng.random()),
        );
    }
}
