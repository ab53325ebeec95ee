//! The check loop: a thin tokio driver of [`CheckCore`], the sans-IO core
//! that owns the schedule, the ownership rule and the rise/fall streaks.
//! Every origin stays in the schedule on every agent; at its due time the
//! ownership rule decides whether this agent checks it (a cheap decision),
//! so a takeover happens at the next due time, without any coordination.
//! This module only feeds the core (registry and health-map changes, the
//! live view, finished checks) and carries out what it asks: checks run in
//! spawned tasks (bounded by the checker's semaphore) that report back over
//! a channel; records are written to the node.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use membership::MembershipEvent;
use sync::Event;
use tokio::sync::{broadcast, mpsc};

use crate::{
    check_core::{Action, CheckCore, CheckCoreConfig, Params},
    checker::{CheckOutcome, Checker, Purpose},
    confirm::{
        AgentFormat, Answer, CONFIRM, ConfirmMap, FORMATS, FormatMap, RECORD_FORMAT, Round,
        Suspect, all_read_confirmations,
    },
    maintenance::{MAINTENANCE, MaintenanceMap},
    ownership::OwnershipConfig,
    registry::{HEALTH, HealthMap, ORIGINS, Registry, now_ms},
    shared::Shared,
    spec::OriginSpec,
};

/// The instant of wall time `until_ms`, seen at `now` (= `wall_ms`); an
/// expiry in the past is `now`.
fn until(now: Instant, wall_ms: u64, until_ms: u64) -> Instant {
    now + Duration::from_millis(until_ms.saturating_sub(wall_ms))
}

/// A finished check: the owner's, or a confirmer's (`confirm`: for which
/// asker and round).
struct Done {
    origin: String,
    outcome: CheckOutcome,
    confirm: Option<(String, Round)>,
}

/// How long an owner waits for a confirmer's answer beyond the check's
/// timeout: the suspect travels to the confirmer and the answer back, each
/// by a notify and a pull (milliseconds on a LAN), or by the periodic pull
/// at worst; plus a margin for a busy agent.
fn confirm_slack(pull_interval: Duration) -> Duration {
    2 * pull_interval + Duration::from_secs(1)
}

struct Loop {
    /// The node had caught up with its peers when last looked at: only
    /// then does this agent answer requests for a second opinion (as it
    /// writes records only then).
    caught_up: bool,
    /// The members not down (alive or suspect): who may receive records.
    members: Vec<String>,
    shared: Arc<Shared>,
    checker: Checker,
    core: CheckCore,
    results: mpsc::Sender<Done>,
}

pub(super) async fn run(
    shared: Arc<Shared>,
    checker: Checker,
    mut members: broadcast::Receiver<MembershipEvent>,
) {
    let (results, mut done) = mpsc::channel(4096);
    let mut sync_events = shared.node.subscribe();
    let core = CheckCore::new(CheckCoreConfig {
        me: shared.me().to_owned(),
        ownership: OwnershipConfig {
            takeover_grace: shared.config.takeover_grace,
            record_refresh: shared.config.record_refresh,
        },
        seed: rand::random(),
        round_start: rand::random(),
        confirm_slack: confirm_slack(shared.config.pull_interval),
    });
    let mut l = Loop {
        caught_up: false,
        members: Vec::new(),
        shared,
        checker,
        core,
        results,
    };
    l.refresh_members().await;
    l.sync_registry();
    loop {
        let deadline = l
            .core
            .poll_timeout()
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
                Ok(Event::Changed { replica }) if replica == CONFIRM => l.observe_answers(),
                Ok(Event::Changed { replica }) if replica == FORMATS => l.check_formats(),
                Ok(Event::Changed { replica }) if replica == MAINTENANCE => {
                    let keys = l
                        .shared
                        .node
                        .take_changes::<MaintenanceMap>(MAINTENANCE)
                        .unwrap_or_default();
                    l.sync_keys(keys);
                }
                // A peer passed (or failed) the sync handshake: it counts as
                // live for ownership only once it passed.
                Ok(Event::PeerVerified(_) | Event::PeerFailed(_)) => l.refresh_members().await,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    l.observe_health();
                    l.observe_answers();
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
        if !l.caught_up && l.shared.node.is_caught_up() {
            // Suspects that arrived before are answered now, and the others
            // learn that this agent reads second opinions.
            l.caught_up = true;
            l.announce_format();
            l.observe_suspects(None);
        }
        l.core.handle_timeout(Instant::now());
        l.drain();
    }
}

impl Loop {
    /// Carries out what the core asks, and publishes its counters.
    fn drain(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Check { origin } => {
                    let Some(spec) = self.shared.origin(&origin) else {
                        // Removed before the core heard of it.
                        self.core.handle_origin(Instant::now(), &origin, None);
                        continue;
                    };
                    self.spawn(origin, spec, None);
                }
                Action::Confirm {
                    origin,
                    asker,
                    round,
                } => {
                    let Some(spec) = self.shared.origin(&origin) else {
                        continue;
                    };
                    self.spawn(origin, spec, Some((asker, round)));
                }
                Action::Answer { origin, answer } => {
                    let _ = self.shared.node.write::<ConfirmMap, _>(CONFIRM, |m| {
                        m.insert(origin, answer);
                    });
                }
                Action::EndMaintenance { origin } => {
                    self.shared.remove_expired_maintenance(&origin, now_ms());
                }
                Action::Write { origin, record } => {
                    let written = self.shared.node.write::<HealthMap, _>(HEALTH, |m| {
                        m.insert(origin.clone(), record);
                    });
                    if written.is_ok() {
                        self.core.handle_written(Instant::now(), &origin);
                    }
                }
            }
        }
        self.shared.publish_check_stats(self.core.stats());
    }

    fn spawn(&self, origin: String, spec: OriginSpec, confirm: Option<(String, Round)>) {
        let checker = self.checker.clone();
        let results = self.results.clone();
        tokio::spawn(async move {
            let purpose = if confirm.is_some() {
                Purpose::Confirm
            } else {
                Purpose::Own
            };
            let outcome = checker.check_for(&spec, purpose).await;
            let _ = results
                .send(Done {
                    origin,
                    outcome,
                    confirm,
                })
                .await;
        });
    }

    /// Takes the live members from SWIM into the core and the members view.
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
        // Every member not down may receive this agent's records.
        self.members = all
            .iter()
            .filter(|x| x.state != membership::MemberState::Down)
            .map(|x| x.id.0.clone())
            .collect();
        self.core.handle_live(Instant::now(), live);
        self.check_formats();
        match self.shared.members_view.write() {
            Ok(mut v) => *v = all,
            Err(p) => *p.into_inner() = all,
        }
    }

    /// Tells the core whether every live agent reads records with a second
    /// opinion.
    fn check_formats(&mut self) {
        let _ = self.shared.node.take_changes::<FormatMap>(FORMATS);
        let me = self.shared.me();
        let members = self.members.iter().map(String::as_str).filter(|n| *n != me);
        let readable = self
            .shared
            .node
            .read::<FormatMap, _>(FORMATS, |m| all_read_confirmations(m, members))
            .unwrap_or(false);
        self.core.set_confirm_readable(readable);
    }

    /// Writes this agent's record format, unless it is there already.
    fn announce_format(&mut self) {
        let me = self.shared.me().to_owned();
        let _ = self.shared.node.write::<FormatMap, _>(FORMATS, |m| {
            if m.get(&me).is_none_or(|f| f.record != RECORD_FORMAT) {
                m.insert(
                    me.clone(),
                    AgentFormat {
                        record: RECORD_FORMAT,
                        since_ms: now_ms(),
                    },
                );
            }
        });
    }

    /// Hands the whole registry to the core.
    fn sync_registry(&mut self) {
        let all: Vec<(String, Params)> = self
            .shared
            .node
            .read::<Registry, _>(ORIGINS, |m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), Params::from(&v.spec)))
                    .collect()
            })
            .unwrap_or_default();
        let now = Instant::now();
        self.core.handle_registry(now, all);
        let wall = now_ms();
        let maintenance: Vec<(String, u64)> = self
            .shared
            .node
            .read::<MaintenanceMap, _>(MAINTENANCE, |m| {
                m.iter().map(|(k, v)| (k.clone(), v.until_ms)).collect()
            })
            .unwrap_or_default();
        let mut under: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (id, until_ms) in maintenance {
            self.core
                .handle_maintenance(now, &id, Some(until(now, wall, until_ms)));
            under.insert(id);
        }
        // What lagged may have ended some: the core forgets those.
        for (id, _) in self.shared.origins() {
            if !under.contains(&id) {
                self.core.handle_maintenance(now, &id, None);
            }
        }
    }

    /// Hands the registry entries `keys` to the core (a registry change):
    /// O(changes), not O(origins).
    fn sync_keys(&mut self, keys: Vec<String>) {
        let now = Instant::now();
        for id in keys {
            let params = self
                .shared
                .node
                .read::<Registry, _>(ORIGINS, |m| m.get(&id).map(|r| Params::from(&r.spec)))
                .ok()
                .flatten();
            if params.is_none() {
                self.shared
                    .last_checks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            }
            self.core.handle_origin(now, &id, params);
            let until_ms = self
                .shared
                .node
                .read::<MaintenanceMap, _>(MAINTENANCE, |m| m.get(&id).map(|x| x.until_ms))
                .ok()
                .flatten();
            let wall = now_ms();
            self.core
                .handle_maintenance(now, &id, until_ms.map(|u| until(now, wall, u)));
        }
    }

    /// Tells the core who wrote the health records that just changed, and
    /// which of them (any sibling) ask this agent for a second opinion.
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
                self.core.handle_record_seen(now, &origin, &writer);
            }
        }
        if self.caught_up {
            self.observe_suspects(Some(&keys));
        }
    }

    /// Hands the core the suspects naming this agent as the confirmer in
    /// any sibling of the records of `keys` (`None`: of every origin).
    fn observe_suspects(&mut self, keys: Option<&[String]>) {
        let me = self.shared.me().to_owned();
        let asks: Vec<(String, String, Suspect)> = self
            .shared
            .node
            .read::<HealthMap, _>(HEALTH, |m| {
                let suspects = |k: &String| {
                    m.siblings(k)
                        .iter()
                        .filter_map(|s| s.value.as_ref())
                        .filter_map(|r| {
                            r.suspect
                                .as_ref()
                                .filter(|s| s.confirmer == me)
                                .map(|s| (k.clone(), r.checked_by.clone(), s.clone()))
                        })
                        .collect::<Vec<_>>()
                };
                match keys {
                    Some(keys) => keys.iter().flat_map(suspects).collect(),
                    None => m.keys().flat_map(suspects).collect(),
                }
            })
            .unwrap_or_default();
        for (origin, asker, suspect) in asks {
            let answered = self.answered(&origin, &asker, suspect.round);
            self.core
                .handle_suspect(&origin, &asker, &suspect, answered);
        }
    }

    /// Whether an answer of this agent to `asker`'s `round` for `origin` is
    /// in the confirm map already.
    fn answered(&self, origin: &str, asker: &str, round: Round) -> bool {
        let me = self.shared.me();
        self.shared
            .node
            .read::<ConfirmMap, _>(CONFIRM, |m| {
                m.siblings(&origin.to_owned()).iter().any(|s| {
                    s.value
                        .as_ref()
                        .is_some_and(|a| a.by == me && a.asker == asker && a.round == round)
                })
            })
            .unwrap_or(false)
    }

    /// Hands the answers that just changed (every sibling) to the core.
    fn observe_answers(&mut self) {
        let Ok(keys) = self.shared.node.take_changes::<ConfirmMap>(CONFIRM) else {
            return;
        };
        let me = self.shared.me().to_owned();
        let answers: Vec<(String, Answer)> = self
            .shared
            .node
            .read::<ConfirmMap, _>(CONFIRM, |m| {
                keys.iter()
                    .flat_map(|k| {
                        m.siblings(k)
                            .iter()
                            .filter_map(|s| s.value.as_ref())
                            .filter(|a| a.asker == me)
                            .map(|a| (k.clone(), a.clone()))
                            .collect::<Vec<_>>()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let now = Instant::now();
        for (origin, answer) in answers {
            let visible = self.shared.health(&origin);
            self.core
                .handle_answer(now, &origin, &answer, visible.as_ref());
        }
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

    /// Hands a finished check to the core, with the record visible now and
    /// whether the node may publish (it has caught up with its peers).
    fn finish(&mut self, done: Done) {
        let Done {
            origin,
            outcome,
            confirm,
        } = done;
        if let Some((asker, round)) = confirm {
            self.core
                .handle_confirm_result(&origin, &asker, round, &outcome, now_ms());
            return;
        }
        let visible = self.shared.health(&origin);
        let publish = self.shared.node.is_caught_up();
        let wall_ms = now_ms();
        if self.shared.origin(&origin).is_some() {
            self.shared
                .last_checks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(origin.clone(), wall_ms);
        }
        self.core.handle_result(
            Instant::now(),
            &origin,
            &outcome,
            visible.as_ref(),
            publish,
            wall_ms,
        );
    }
}
