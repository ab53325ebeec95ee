//! The core's side of confirm before down (the rules: [`crate::confirm`]):
//! the owner's rounds (opened, answered, timed out, moved to another
//! confirmer) and the confirmer's checks.

use std::time::Instant;

use super::{Action, CheckCore, Origin};
use crate::{
    checker::CheckOutcome,
    confirm::{Answer, Confirmation, Round, Suspect, Unconfirmed},
    record::{HealthRecord, Status},
    rendezvous,
};

/// Per origin, the askers whose last round this agent remembers having
/// answered (the oldest is forgotten first).
pub(super) const ASKERS_REMEMBERED: usize = 3;

/// An owner's verdict: what its record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Verdict {
    pub(super) status: Status,
    pub(super) confirmation: Option<Confirmation>,
}

impl Verdict {
    /// A verdict with no second opinion.
    pub(super) fn plain(status: Status) -> Verdict {
        Verdict {
            status,
            confirmation: None,
        }
    }

    /// Where a new streak starts: a visible down keeps how it was reached
    /// (confirmed, unconfirmed), anything else is the streak's status.
    pub(super) fn from_visible(visible: Option<&HealthRecord>, status: Status) -> Verdict {
        match visible {
            Some(v) if v.status == Status::Down => Verdict {
                status: Status::Down,
                confirmation: v
                    .confirmation
                    .clone()
                    .filter(|c| !matches!(c, Confirmation::Disputed { .. })),
            },
            Some(v) => Verdict::plain(v.status),
            None => Verdict::plain(status),
        }
    }
}

/// A round waiting for its answer.
#[derive(Debug, Clone)]
pub(super) struct OpenRound {
    pub(super) round: Round,
    pub(super) confirmer: String,
    /// When the owner stops waiting.
    pub(super) deadline: Instant,
    /// When it was opened, on both clocks (for the wall time of later
    /// writes).
    pub(super) opened: Instant,
    pub(super) opened_wall_ms: u64,
}

impl OpenRound {
    /// The wall clock at `now`, from the round's opening.
    fn wall_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.opened).as_millis();
        self.opened_wall_ms
            .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }
}

/// What a record says of the owner's last check.
#[derive(Debug, Clone)]
pub(super) struct LastCheck {
    pub(super) checked_at_ms: u64,
    pub(super) latency_ms: Option<u64>,
    pub(super) reason: Option<String>,
}

impl Origin {
    /// This agent stops checking the origin (handed over, usurped, under
    /// maintenance): the streak, verdict and open round go; the next owner
    /// starts from the visible record.
    pub(super) fn stop_checking(&mut self) {
        self.streak = None;
        self.last_write = None;
        self.verdict = None;
        self.round = None;
        self.written = None;
    }

    /// The owner's down stands without a second opinion (`why`); a verdict
    /// already down is kept as it is. Whether it changed.
    fn stands(&mut self, why: Unconfirmed) -> bool {
        if self
            .verdict
            .as_ref()
            .is_some_and(|v| v.status == Status::Down)
        {
            return false;
        }
        self.verdict = Some(Verdict {
            status: Status::Down,
            confirmation: Some(Confirmation::Unconfirmed { why }),
        });
        true
    }
}

impl CheckCore {
    /// Whether every live agent reads records with a second opinion (see
    /// [`crate::confirm::all_read_confirmations`]); while one does not,
    /// downs are written as the release before wrote them (default: yes).
    pub fn set_confirm_readable(&mut self, readable: bool) {
        self.confirm_readable = readable;
    }

    /// The owner's streak says `id` is down (a failing check, no round
    /// open): opens a round with the next-ranked live agent, or, alone,
    /// writes down unconfirmed. The caller writes the record.
    pub(super) fn ask(&mut self, now: Instant, id: &str, wall_ms: u64) {
        let live: Vec<String> = self.ownership.live().map(str::to_owned).collect();
        let confirmer = {
            let order = rendezvous::rank(id, &live);
            let at = order.iter().position(|n| *n == self.me);
            match at {
                Some(i) if i + 1 < order.len() => Some(order[i + 1]),
                Some(i) if i > 0 => Some(order[i - 1]),
                _ => order.iter().copied().find(|n| *n != self.me),
            }
            .map(str::to_owned)
        };
        let Some(origin) = self.origins.get_mut(id) else {
            return;
        };
        let Some(confirmer) = confirmer else {
            // Alone: the owner's verdict stands.
            if origin.stands(Unconfirmed::Alone) {
                self.stats.alone += 1;
            }
            return;
        };
        self.next_round += 1;
        let deadline = now + origin.params.timeout + self.confirm_slack;
        origin.round = Some(OpenRound {
            round: Round {
                start: self.round_start,
                seq: self.next_round,
            },
            confirmer,
            deadline,
            opened: now,
            opened_wall_ms: wall_ms,
        });
        self.deadlines.insert((deadline, id.to_owned()));
        self.stats.rounds += 1;
    }

    /// Closes the rounds whose deadline passed at `now` with no answer: the
    /// owner's verdict stands (down, unconfirmed); a record already down
    /// stays as it is.
    pub(super) fn expire_rounds(&mut self, now: Instant) {
        while let Some((at, id)) = self.deadlines.first().cloned() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(origin) = self.origins.get_mut(&id) else {
                continue;
            };
            if origin.round.as_ref().is_none_or(|r| r.deadline != at) {
                continue; // answered, moved or dropped since
            }
            let Some(open) = origin.round.take() else {
                continue;
            };
            self.stats.unanswered += 1;
            origin.stands(Unconfirmed::NoAnswer);
            tracing::info!(origin = %id, confirmer = %open.confirmer, "no answer from the confirmer in time");
            self.write(now, &id, None, open.wall_at(now), false);
        }
    }

    /// After a change of the live view: a round whose confirmer left it
    /// moves to the agent now next-ranked, at once (alone: down,
    /// unconfirmed).
    pub(super) fn repick_confirmers(&mut self, now: Instant) {
        let moved: Vec<(String, u64)> = self
            .origins
            .iter_mut()
            .filter_map(|(id, o)| {
                let gone = o
                    .round
                    .as_ref()
                    .is_some_and(|r| !self.ownership.live().any(|n| n == r.confirmer));
                if !gone {
                    return None;
                }
                o.round.take().map(|r| (id.clone(), r.wall_at(now)))
            })
            .collect();
        for (id, wall_ms) in moved {
            self.ask(now, &id, wall_ms);
            self.write(now, &id, None, wall_ms, false);
        }
    }

    /// An answer in the confirm map for `id` arrived at `now` (any sibling
    /// of the key; `visible` is the origin's record now). It decides only
    /// this agent's open round, and only if it names it: failed, down
    /// confirmed; passed, up disputed.
    pub fn handle_answer(
        &mut self,
        now: Instant,
        id: &str,
        answer: &Answer,
        visible: Option<&HealthRecord>,
    ) {
        if answer.asker != self.me {
            return;
        }
        let Some(origin) = self.origins.get_mut(id) else {
            return;
        };
        if origin
            .round
            .as_ref()
            .is_none_or(|r| r.round != answer.round)
        {
            return; // another round, or none open
        }
        let Some(open) = origin.round.take() else {
            return;
        };
        let by = answer.by.clone();
        if answer.ok {
            tracing::warn!(origin = %id, confirmer = %by, "disputed: this agent's checks fail, the confirmer's passed");
            origin.verdict = Some(Verdict {
                status: Status::Up,
                confirmation: Some(Confirmation::Disputed { by }),
            });
            self.stats.disputed += 1;
        } else {
            origin.verdict = Some(Verdict {
                status: Status::Down,
                confirmation: Some(Confirmation::Confirmed { by }),
            });
            self.stats.confirmed += 1;
        }
        self.write(now, id, visible, open.wall_at(now), false);
    }

    /// A record of `id` by `asker` names this agent as the confirmer of
    /// `suspect`'s round (`answered`: an answer of this agent to that round
    /// is already in the confirm map, e.g. from before a restart). Asks
    /// for a check at once ([`Action::Confirm`]), once per round.
    pub fn handle_suspect(&mut self, id: &str, asker: &str, suspect: &Suspect, answered: bool) {
        if suspect.confirmer != self.me || asker == self.me {
            return;
        }
        let Some(origin) = self.origins.get(id) else {
            return;
        };
        if origin.maintenance.is_some() {
            return;
        }
        let asked = self.answered.entry(id.to_owned()).or_default();
        match asked.iter_mut().find(|(a, _)| a == asker) {
            Some((_, round)) if *round == suspect.round => return,
            Some((_, round)) => *round = suspect.round,
            None => {
                // Askers of one origin change only with ownership: a few.
                if asked.len() == ASKERS_REMEMBERED {
                    asked.remove(0);
                }
                asked.push((asker.to_owned(), suspect.round));
            }
        }
        if !answered {
            self.actions.push_back(Action::Confirm {
                origin: id.to_owned(),
                asker: asker.to_owned(),
                round: suspect.round,
            });
        }
    }

    /// The confirmer's check asked for by [`Action::Confirm`] finished with
    /// `outcome` at `wall_ms`: its answer is to be written
    /// ([`Action::Answer`]).
    pub fn handle_confirm_result(
        &mut self,
        id: &str,
        asker: &str,
        round: Round,
        outcome: &CheckOutcome,
        wall_ms: u64,
    ) {
        self.stats.confirm_checks += 1;
        if !self.origins.contains_key(id) {
            return;
        }
        self.actions.push_back(Action::Answer {
            origin: id.to_owned(),
            answer: Answer {
                round,
                asker: asker.to_owned(),
                ok: outcome.ok,
                by: self.me.clone(),
                checked_at_ms: wall_ms,
                reason: outcome.reason.clone(),
            },
        });
    }
}
