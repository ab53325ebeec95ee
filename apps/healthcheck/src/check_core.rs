//! [`CheckCore`]: everything an agent decides about its checks, without I/O.
//!
//! Which origins this agent checks and when ([`Ownership`] over a
//! [`Schedule`]), the rise/fall streak of each ([`Streak`]), and when a
//! result becomes a record written to the health map (the verdict changed,
//! this agent just took the origin, or the refresh is due). Time and
//! randomness come from the caller: every input takes `now`, and the jitter
//! comes from an RNG seeded by the config. The agent's check loop
//! (`agent/checks.rs`) is a thin tokio driver of this core; the
//! `cluster-sim` bench and the unit tests below drive the same core in
//! virtual time, so no rule is written twice.
//!
//! # How to drive it
//! 1. Feed what happened, each with the current `now`:
//!    [`handle_origin`](CheckCore::handle_origin) (an origin added, changed
//!    or removed in the registry), [`handle_live`](CheckCore::handle_live)
//!    (the members that count as live for ownership),
//!    [`handle_record_seen`](CheckCore::handle_record_seen) (a record by
//!    some writer arrived), [`handle_result`](CheckCore::handle_result) (a
//!    check finished), [`handle_written`](CheckCore::handle_written) (a
//!    record asked for was written),
//!    [`handle_maintenance`](CheckCore::handle_maintenance), the second
//!    opinions of [`crate::confirm`]
//!    ([`handle_suspect`](CheckCore::handle_suspect): a record names this
//!    agent as the confirmer;
//!    [`handle_confirm_result`](CheckCore::handle_confirm_result);
//!    [`handle_answer`](CheckCore::handle_answer): an answer arrived), and
//!    [`handle_timeout`](CheckCore::handle_timeout) once
//!    [`poll_timeout`](CheckCore::poll_timeout) has passed.
//! 2. After each input, drain [`poll_action`](CheckCore::poll_action): start
//!    each [`Action::Check`] (its outcome comes back through `handle_result`)
//!    and [`Action::Confirm`] (through `handle_confirm_result`), write each
//!    [`Action::Write`] and [`Action::Answer`], and remove the expired
//!    maintenance of each [`Action::EndMaintenance`].
//! 3. Sleep until [`poll_timeout`](CheckCore::poll_timeout) or the next
//!    input. [`stats`](CheckCore::stats) is a copy of the counters.
//!
//! Two choices differ from quinn-proto's shape, on purpose:
//! `poll_timeout` takes `&mut self` (the schedule drops the stale entries
//! of moved due times when it is asked for the earliest one), and a record
//! to write is an [`Action`] rather than a transmit (the core does not know
//! the health map; the driver writes to it and reports back).

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    time::{Duration, Instant},
};

use rand::{RngExt, SeedableRng, rngs::SmallRng};

use crate::{
    checker::CheckOutcome,
    confirm::{Answer, Round, Suspect},
    ownership::{Decision, Ownership, OwnershipConfig},
    record::{HealthRecord, Status},
    schedule::{Schedule, Streak, fast_interval, first_due, next_due},
    spec::OriginSpec,
};

/// A newly registered origin is first checked within this long (or its
/// interval, if shorter).
pub const FIRST_CHECK_WITHIN: Duration = Duration::from_secs(1);

/// What the core needs to know of an origin's spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Time between two checks while the origin is settled up (or has no
    /// verdict yet).
    pub interval: Duration,
    /// Time between two checks while a streak settles (results disagree
    /// with the verdict, not enough of them yet).
    pub settling: Duration,
    /// Time between two checks while the origin is settled down.
    pub down: Duration,
    /// Each due time moves by up to ± this percentage of its interval.
    pub jitter_percent: u8,
    /// Successes in a row that make the origin up.
    pub rise: u32,
    /// Failures in a row that make the origin down.
    pub fall: u32,
    /// The verdict before any check, when no record is visible.
    pub initial: Status,
    /// A check's timeout (the confirmer's check takes at most this long).
    pub timeout: Duration,
    /// Whether a down is confirmed by a second agent first (see
    /// [`crate::confirm`]).
    pub confirm: bool,
}

impl From<&OriginSpec> for Params {
    fn from(spec: &OriginSpec) -> Self {
        let interval = Duration::from_millis(spec.interval_ms);
        Params {
            interval,
            settling: spec
                .settling_interval_ms
                .map_or_else(|| fast_interval(interval), Duration::from_millis),
            down: spec
                .down_interval_ms
                .map_or(interval, Duration::from_millis),
            jitter_percent: spec.jitter_percent,
            rise: spec.rise,
            fall: spec.fall,
            initial: spec.initial,
            timeout: Duration::from_millis(spec.timeout_ms),
            confirm: spec.confirm,
        }
    }
}

impl Params {
    /// The interval before the next check in this state of the streak.
    pub fn interval_for(&self, status: Status, settling: bool) -> Duration {
        if settling {
            self.settling
        } else if status == Status::Down {
            self.down
        } else {
            self.interval
        }
    }

    /// When the check after one at `now` is due in this state (jittered by
    /// `unit`, a random number in [0, 1)).
    fn next_due(&self, now: Instant, status: Status, settling: bool, unit: f64) -> Instant {
        next_due(
            now,
            self.interval_for(status, settling),
            self.jitter_percent,
            unit,
        )
    }
}

/// How a [`CheckCore`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckCoreConfig {
    /// This agent's name (as in the records' `checked_by`).
    pub me: String,
    /// Timing of the takeover rule; `record_refresh` is also how often an
    /// owner rewrites an unchanged record.
    pub ownership: OwnershipConfig,
    /// Seed of the jitter of due times.
    pub seed: u64,
    /// Unique to this start of the agent (random): the rounds it asks for
    /// a second opinion are told apart from those of its earlier lives.
    pub round_start: u64,
    /// How long an owner waits for a confirmer's answer beyond the check's
    /// timeout (the suspect's and the answer's replication).
    pub confirm_slack: Duration,
}

/// What the driver is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Check `origin` now; hand its outcome to
    /// [`handle_result`](CheckCore::handle_result). At most one check of an
    /// origin is asked for until its result is in.
    Check {
        /// The origin's id.
        origin: String,
    },
    /// Write `record` for `origin` to the health map, then report with
    /// [`handle_written`](CheckCore::handle_written) if it was written.
    Write {
        /// The origin's id.
        origin: String,
        /// The record to write.
        record: HealthRecord,
    },
    /// The maintenance of `origin` has expired and this agent checks it:
    /// remove the expired entry from the maintenance map (not a newer one).
    EndMaintenance {
        /// The origin's id.
        origin: String,
    },
    /// Check `origin` now as `asker`'s confirmer in `round`; hand its
    /// outcome to [`handle_confirm_result`](CheckCore::handle_confirm_result).
    Confirm {
        /// The origin's id.
        origin: String,
        /// The owner that asked.
        asker: String,
        /// Its round.
        round: Round,
    },
    /// Write `answer` under `origin` in the confirm map.
    Answer {
        /// The origin's id.
        origin: String,
        /// The answer.
        answer: Answer,
    },
}

/// The core's counters (a copy: see [`CheckCore::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckStats {
    /// Origins this agent checks now.
    pub owned: u64,
    /// Times this agent took over a silent owner's origin.
    pub takeovers: u64,
    /// Checks whose outcome was a success.
    pub checks_ok: u64,
    /// Checks whose outcome was a failure.
    pub checks_failed: u64,
    /// Records written (reported by [`CheckCore::handle_written`]).
    pub records_written: u64,
    /// Rounds this agent opened: second opinions asked for.
    pub rounds: u64,
    /// Rounds answered with a failure: down, confirmed.
    pub confirmed: u64,
    /// Rounds answered with a success: up, disputed.
    pub disputed: u64,
    /// Rounds with no answer in time: the owner's verdict stood.
    pub unanswered: u64,
    /// Downs written with no other live agent to ask.
    pub alone: u64,
    /// Checks this agent ran as a confirmer (the cost of second opinions).
    pub confirm_checks: u64,
}

/// One origin's state in the core.
#[derive(Debug)]
struct Origin {
    params: Params,
    /// This agent's streak, while it checks the origin.
    streak: Option<Streak>,
    /// When this agent last wrote a record for the origin.
    last_write: Option<Instant>,
    /// This agent checks the origin (owns it or took it over).
    checking: bool,
    /// A check asked for is not back yet.
    in_flight: bool,
    /// Under maintenance until then: not checked.
    maintenance: Option<Instant>,
    /// This agent's verdict while it checks the origin (from its streak
    /// and the rounds' answers).
    verdict: Option<Verdict>,
    /// The round open for a second opinion, if any.
    round: Option<OpenRound>,
    /// This agent's last check of the origin.
    last: Option<LastCheck>,
    /// The last record this agent wrote for it (while it checks it).
    written: Option<HealthRecord>,
}

/// The check decisions of one agent (see the module docs).
#[derive(Debug)]
pub struct CheckCore {
    me: String,
    record_refresh: Duration,
    ownership: Ownership,
    schedule: Schedule,
    origins: HashMap<String, Origin>,
    actions: VecDeque<Action>,
    rng: SmallRng,
    stats: CheckStats,
    round_start: u64,
    next_round: u64,
    /// Every live agent reads records with a second opinion.
    confirm_readable: bool,
    confirm_slack: Duration,
    /// When open rounds time out (stale entries are skipped).
    deadlines: BTreeSet<(Instant, String)>,
    /// Per origin, the last round of each recent asker this agent was
    /// asked to confirm (at most [`confirm::ASKERS_REMEMBERED`]).
    answered: HashMap<String, Vec<(String, Round)>>,
}

impl CheckCore {
    /// A core that knows no origin yet and sees only itself as live.
    pub fn new(config: CheckCoreConfig) -> Self {
        CheckCore {
            ownership: Ownership::new(config.me.clone(), config.ownership),
            me: config.me,
            record_refresh: config.ownership.record_refresh,
            schedule: Schedule::new(),
            origins: HashMap::new(),
            actions: VecDeque::new(),
            rng: SmallRng::seed_from_u64(config.seed),
            stats: CheckStats::default(),
            round_start: config.round_start,
            next_round: 0,
            confirm_readable: true,
            confirm_slack: config.confirm_slack,
            deadlines: BTreeSet::new(),
            answered: HashMap::new(),
        }
    }

    /// This agent's name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Origin `id` was registered or changed (`Some`), or removed (`None`),
    /// in the registry. A newly registered origin is first checked within
    /// [`FIRST_CHECK_WITHIN`] (spread by a hash of the agent's and the
    /// origin's names), however long its interval; a changed one keeps its
    /// due time and uses the new parameters from its next check.
    pub fn handle_origin(&mut self, now: Instant, id: &str, params: Option<Params>) {
        match params {
            Some(params) => self.add(now, id, params, params.interval.min(FIRST_CHECK_WITHIN)),
            None => self.forget(id),
        }
    }

    /// Knows `id` with `params`; a new one is first due within `spread`.
    fn add(&mut self, now: Instant, id: &str, params: Params, spread: Duration) {
        match self.origins.get_mut(id) {
            Some(origin) => origin.params = params,
            None => {
                self.origins.insert(
                    id.to_owned(),
                    Origin {
                        params,
                        streak: None,
                        last_write: None,
                        checking: false,
                        in_flight: false,
                        maintenance: None,
                        verdict: None,
                        round: None,
                        last: None,
                        written: None,
                    },
                );
                self.schedule.add(id, first_due(&self.me, id, spread, now));
            }
        }
    }

    /// The registry now holds exactly `all` (at the agent's start, or after
    /// the registry's change feed lagged): origins not in it are forgotten,
    /// changed ones updated, and the ones new to this agent are first
    /// checked spread over one interval each (a cold start does not check
    /// everything at once; each agent's hash spreads them differently).
    pub fn handle_registry(&mut self, now: Instant, all: Vec<(String, Params)>) {
        let current: std::collections::HashSet<&str> =
            all.iter().map(|(id, _)| id.as_str()).collect();
        let gone: Vec<String> = self
            .origins
            .keys()
            .filter(|id| !current.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            self.forget(&id);
        }
        for (id, params) in all {
            self.add(now, &id, params, params.interval);
        }
    }

    /// The members that count as live for ownership are now `live` (this
    /// agent is always included). Origins this agent owns now and did not
    /// check are due at once, rather than at their next due time (up to an
    /// interval later).
    pub fn handle_live(&mut self, now: Instant, live: Vec<String>) {
        if !self.ownership.set_live(live) {
            return;
        }
        for (id, origin) in &self.origins {
            if !origin.checking && self.ownership.decide(id, now).checks() {
                self.schedule.advance(id, now);
            }
        }
        self.repick_confirmers(now);
    }

    /// Origin `id` is under maintenance until `until` (`Some`), or not
    /// (`None`: it ended or was never set). While it lasts the origin is
    /// not checked and no record is written for it; when it ends (here, or
    /// at `until`) the origin is checked within [`FIRST_CHECK_WITHIN`],
    /// starting from the visible record, and the stand-ins wait a whole
    /// patience before they take over (the owner wrote nothing meanwhile).
    /// At `until` the agent that checks it asks for the expired entry to be
    /// removed ([`Action::EndMaintenance`]).
    pub fn handle_maintenance(&mut self, now: Instant, id: &str, until: Option<Instant>) {
        if !self.origins.contains_key(id) {
            return;
        }
        // An expiry already past is no maintenance; the checker removes it.
        let until = match until {
            Some(at) if at <= now => {
                if self.ownership.decide(id, now).checks() {
                    self.actions.push_back(Action::EndMaintenance {
                        origin: id.to_owned(),
                    });
                }
                None
            }
            other => other,
        };
        let Some(origin) = self.origins.get_mut(id) else {
            return;
        };
        let was = std::mem::replace(&mut origin.maintenance, until);
        match (was, until) {
            (None, Some(at)) => {
                if origin.checking {
                    origin.checking = false;
                    self.stats.owned -= 1;
                }
                origin.stop_checking();
                // Due when it ends, at the latest.
                self.schedule.advance(id, at);
            }
            (Some(_), None) => {
                self.ownership.forget(id);
                let spread = origin.params.interval.min(FIRST_CHECK_WITHIN);
                self.schedule
                    .advance(id, first_due(&self.me, id, spread, now));
            }
            (Some(_), Some(at)) => {
                self.schedule.advance(id, at);
            }
            (None, None) => {}
        }
    }

    /// Whether `origin` is under maintenance (for this core).
    pub fn in_maintenance(&self, origin: &str) -> bool {
        self.origins
            .get(origin)
            .is_some_and(|o| o.maintenance.is_some())
    }

    /// A record of `origin` written by `writer` arrived at `now` (for the
    /// takeover rule: a higher-ranked agent at work, or a stand-in).
    pub fn handle_record_seen(&mut self, now: Instant, origin: &str, writer: &str) {
        self.ownership.observe(origin, writer, now);
    }

    /// Runs what is due at `now`: the origins this agent should check are
    /// asked for ([`Action::Check`]); the others are rescheduled for their
    /// next interval (and forgotten by the streaks if this agent just
    /// handed them over).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_rounds(now);
        while let Some(id) = self.schedule.pop_due(now) {
            let Some(origin) = self.origins.get_mut(&id) else {
                continue; // removed since it was scheduled
            };
            let mut expired = false;
            if let Some(until) = origin.maintenance {
                if now < until {
                    // Not checked; due again when it ends.
                    self.schedule.add(&id, until);
                    continue;
                }
                origin.maintenance = None;
                expired = true;
                self.ownership.forget(&id);
            }
            let decision = self.ownership.decide(&id, now);
            if expired && decision.checks() {
                self.actions
                    .push_back(Action::EndMaintenance { origin: id.clone() });
            }
            if decision.checks() {
                if matches!(decision, Decision::TakeOver { .. }) && !origin.checking {
                    self.stats.takeovers += 1;
                    tracing::info!(origin = %id, ?decision, "taking over a silent owner's origin");
                }
                if !origin.checking {
                    origin.checking = true;
                    self.stats.owned += 1;
                }
                if !origin.in_flight {
                    origin.in_flight = true;
                    self.actions.push_back(Action::Check { origin: id });
                }
            } else {
                if origin.checking {
                    // Handed over: start from the visible record next time.
                    origin.checking = false;
                    origin.stop_checking();
                    self.stats.owned -= 1;
                }
                // Not checking: look again (at ownership) an interval later.
                let at = origin
                    .params
                    .next_due(now, Status::Up, false, self.rng.random());
                self.schedule.add(&id, at);
            }
        }
    }

    /// A check of `origin` asked for by [`Action::Check`] finished at `now`
    /// with `outcome`. `visible` is the origin's record as this agent sees
    /// it now; `publish` is false while the agent has not caught up with
    /// its peers after starting (what it holds may be older than the
    /// cluster's view: the streak counts the result, nothing is written).
    /// `wall_ms` is the wall clock (ms since the Unix epoch) for the record.
    ///
    /// Asks for a write ([`Action::Write`]) when this agent still checks the
    /// origin and the visible record is not its own, or says another
    /// status, or was written `record_refresh` ago or more. Reschedules the
    /// origin: at the settling interval while the streak settles (or until
    /// the agent may publish), at the down interval while it is settled
    /// down, else at its interval.
    pub fn handle_result(
        &mut self,
        now: Instant,
        id: &str,
        outcome: &CheckOutcome,
        visible: Option<&HealthRecord>,
        publish: bool,
        wall_ms: u64,
    ) {
        if outcome.ok {
            self.stats.checks_ok += 1;
        } else {
            self.stats.checks_failed += 1;
        }
        let Some(origin) = self.origins.get_mut(id) else {
            return; // removed while the check ran
        };
        origin.in_flight = false;
        let params = origin.params;
        if origin.maintenance.is_some() {
            // Put under maintenance while the check ran: nothing to write;
            // `handle_maintenance` scheduled it.
            return;
        }
        // Usurped while the check ran? Then its result is not ours to write.
        if !self.ownership.decide(id, now).checks() {
            if origin.checking {
                origin.checking = false;
                self.stats.owned -= 1;
            }
            origin.stop_checking();
            self.schedule.add(
                id,
                params.next_due(now, Status::Up, false, self.rng.random()),
            );
            return;
        }
        let streak = origin
            .streak
            .get_or_insert_with(|| Streak::new(visible.map_or(params.initial, |v| v.status)));
        streak.record(outcome.ok, params.rise, params.fall);
        let (status, settling) = (streak.status, streak.settling());
        // A new streak starts from the visible verdict: a down keeps how it
        // was reached (confirmed, unconfirmed), anything else is plain.
        origin
            .verdict
            .get_or_insert_with(|| Verdict::from_visible(visible, status));
        origin.last = Some(LastCheck {
            checked_at_ms: wall_ms,
            latency_ms: outcome.latency.map(|l| l.as_millis() as u64),
            reason: outcome.reason.clone(),
        });
        if !publish {
            self.schedule
                .add(id, params.next_due(now, status, true, self.rng.random()));
            return;
        }
        let mut ask = false;
        match status {
            // Rises need no confirmation; the open round is dropped.
            Status::Up | Status::Unknown => {
                origin.round = None;
                origin.verdict = Some(Verdict::plain(status));
            }
            Status::Down if !params.confirm || !self.confirm_readable => {
                origin.round = None;
                origin.verdict = Some(Verdict::plain(status));
            }
            // Each failing check with no round open asks (again).
            Status::Down => ask = !outcome.ok && origin.round.is_none(),
        }
        if ask {
            self.ask(now, id, wall_ms);
        }
        self.write(now, id, visible, wall_ms, true);
        self.schedule.add(
            id,
            params.next_due(now, status, settling, self.rng.random()),
        );
    }

    /// Asks for a write of this agent's verdict on `id` if it checks it and
    /// the record differs from `base` (the visible record, else the last one
    /// this agent wrote): another writer, status, confirmation or suspect;
    /// or, at a result (`at_result`), if the refresh is due.
    fn write(
        &mut self,
        now: Instant,
        id: &str,
        visible: Option<&HealthRecord>,
        wall_ms: u64,
        at_result: bool,
    ) {
        let Some(origin) = self.origins.get_mut(id) else {
            return;
        };
        let (Some(verdict), Some(last), true) = (&origin.verdict, &origin.last, origin.checking)
        else {
            return;
        };
        let suspect = origin.round.as_ref().map(|r| Suspect {
            round: r.round,
            confirmer: r.confirmer.clone(),
        });
        let base = visible.or(origin.written.as_ref());
        let ours = base.is_some_and(|v| v.checked_by == self.me);
        let differs = base.is_none_or(|v| {
            v.status != verdict.status
                || v.confirmation != verdict.confirmation
                || v.suspect != suspect
        });
        let refresh_due = at_result
            && origin
                .last_write
                .is_none_or(|t| now.saturating_duration_since(t) >= self.record_refresh);
        if ours && !differs && !refresh_due {
            return;
        }
        let since_ms = match base {
            Some(v) if v.status == verdict.status => v.since_ms,
            _ => wall_ms,
        };
        let record = HealthRecord {
            status: verdict.status,
            checked_by: self.me.clone(),
            checked_at_ms: last.checked_at_ms,
            since_ms,
            latency_ms: last.latency_ms,
            reason: last.reason.clone(),
            confirmation: verdict.confirmation.clone(),
            suspect,
        };
        if base.is_none_or(|v| v.status != record.status) {
            tracing::info!(origin = %id, status = record.status.as_str(), reason = ?record.reason, confirmation = ?record.confirmation, "origin status changed");
        }
        origin.written = Some(record.clone());
        self.actions.push_back(Action::Write {
            origin: id.to_owned(),
            record,
        });
    }

    /// The record of `origin` asked for by [`Action::Write`] was written at
    /// `now`: the refresh is counted from here.
    pub fn handle_written(&mut self, now: Instant, id: &str) {
        if let Some(origin) = self.origins.get_mut(id) {
            origin.last_write = Some(now);
        }
        self.stats.records_written += 1;
    }

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called:
    /// the earliest due time or round deadline, `None` while there is none.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let deadline = self.deadlines.first().map(|(at, _)| *at);
        match (self.schedule.earliest(), deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A copy of the counters.
    pub fn stats(&self) -> CheckStats {
        self.stats
    }

    /// The number of origins known.
    pub fn len(&self) -> usize {
        self.origins.len()
    }

    /// Whether no origin is known.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    /// Whether this agent checks `origin` now.
    pub fn checks(&self, origin: &str) -> bool {
        self.origins.get(origin).is_some_and(|o| o.checking)
    }

    fn forget(&mut self, id: &str) {
        if let Some(origin) = self.origins.remove(id)
            && origin.checking
        {
            self.stats.owned -= 1;
        }
        self.answered.remove(id);
        self.ownership.forget(id);
    }
}

mod confirm;

use confirm::{LastCheck, OpenRound, Verdict};

#[cfg(test)]
mod tests;
