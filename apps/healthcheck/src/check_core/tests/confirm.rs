//! Confirm before down, in virtual time: the owner's rounds and the
//! confirmer's checks, as `proofs/models/confirm_model.py` states them.

use super::*;
use crate::confirm::{Answer, Confirmation, Unconfirmed};

/// The owner of "o" among the three agents (all live), its first check
/// due, the record `visible` (up, its own) in place.
fn owner(p: Params) -> (Vec<String>, CheckCore, Instant) {
    let t = Instant::now();
    let r = ranked();
    let mut c = core(&r[0]);
    c.handle_live(t, r.clone());
    c.handle_origin(t, "o", Some(p));
    let (at, _) = run_until(&mut c, t + INTERVAL).pop().expect("due");
    (r, c, at)
}

fn up_by(by: &str) -> HealthRecord {
    record(by, Status::Up, 1)
}

/// The single record write the core asks for now.
fn written(c: &mut CheckCore) -> HealthRecord {
    let acts = actions(c);
    let writes: Vec<HealthRecord> = acts
        .iter()
        .filter_map(|a| match a {
            Action::Write { record, .. } => Some(record.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(writes.len(), 1, "one write expected: {acts:?}");
    writes[0].clone()
}

/// A failing check of "o" at `at` seeing `visible`: the record it writes.
fn fail(c: &mut CheckCore, at: Instant, visible: &HealthRecord) -> HealthRecord {
    c.handle_result(at, "o", &failed(), Some(visible), true, 10);
    written(c)
}

/// The confirmer's side of a round: asked once, checks, answers.
fn confirm_round(r: &[String], suspect_record: &HealthRecord, outcome: &CheckOutcome) -> Answer {
    let t = Instant::now();
    let mut confirmer = core(&r[1]);
    confirmer.handle_live(t, r.to_vec());
    confirmer.handle_origin(t, "o", Some(params(1, 1, Status::Up)));
    let suspect = suspect_record.suspect.clone().expect("a suspect");
    confirmer.handle_suspect("o", &r[0], &suspect, false);
    let Some(Action::Confirm {
        origin,
        asker,
        round,
    }) = confirmer.poll_action()
    else {
        panic!("the confirmer checks at once");
    };
    assert_eq!((origin.as_str(), asker.as_str()), ("o", r[0].as_str()));
    assert_eq!(round, suspect.round);
    confirmer.handle_suspect("o", &r[0], &suspect, false);
    assert!(confirmer.poll_action().is_none(), "once per round");
    confirmer.handle_confirm_result("o", &asker, round, outcome, 20);
    let Some(Action::Answer { answer, .. }) = confirmer.poll_action() else {
        panic!("an answer is written");
    };
    assert_eq!(confirmer.stats().confirm_checks, 1);
    assert_eq!((answer.by.as_str(), answer.ok), (r[1].as_str(), outcome.ok));
    answer
}

#[test]
fn a_down_is_suspected_then_confirmed_by_the_next_ranked_agent() {
    let (r, mut c, at) = owner(params(1, 1, Status::Up));
    let visible = up_by(&r[0]);
    let suspect = fail(&mut c, at, &visible);
    assert_eq!(
        suspect.status,
        Status::Up,
        "not down before the second opinion"
    );
    let s = suspect.suspect.clone().expect("suspect");
    assert_eq!(s.confirmer, r[1], "the next-ranked live agent");
    assert_eq!(s.round.start, 11, "this start's nonce");
    assert_eq!(c.stats().rounds, 1);
    let answer = confirm_round(&r, &suspect, &failed());
    c.handle_answer(at, "o", &answer, Some(&suspect));
    let down = written(&mut c);
    assert_eq!(down.status, Status::Down);
    assert_eq!(
        down.confirmation,
        Some(Confirmation::Confirmed { by: r[1].clone() })
    );
    assert_eq!(down.suspect, None);
    assert_eq!(c.stats().confirmed, 1);
    // the same answer again decides nothing
    c.handle_answer(at, "o", &answer, Some(&down));
    assert!(c.poll_action().is_none(), "an answer to a closed round");
}

#[test]
fn a_confirmer_that_sees_it_up_disputes_and_a_later_real_death_is_confirmed() {
    let (r, mut c, at) = owner(params(1, 1, Status::Up));
    let suspect = fail(&mut c, at, &up_by(&r[0]));
    let answer = confirm_round(&r, &suspect, &ok());
    c.handle_answer(at, "o", &answer, Some(&suspect));
    let disputed = written(&mut c);
    assert_eq!(disputed.status, Status::Up, "the record stays up");
    assert!(disputed.disputed());
    assert_eq!(c.stats().disputed, 1);
    // the next failing check opens a new round (re-asked while disputed)
    let again = fail(&mut c, at + INTERVAL, &disputed);
    let s2 = again.suspect.clone().expect("a new round");
    assert_ne!(s2.round, suspect.suspect.as_ref().expect("first").round);
    assert_eq!(again.status, Status::Up);
    assert!(again.disputed(), "still disputed while it asks");
    // the old answer does not decide the new round
    c.handle_answer(at + INTERVAL, "o", &answer, Some(&again));
    assert!(c.poll_action().is_none(), "an answer to another round");
    let dead = confirm_round(&r, &again, &failed());
    c.handle_answer(at + INTERVAL, "o", &dead, Some(&again));
    let down = written(&mut c);
    assert_eq!(down.status, Status::Down);
    assert!(matches!(
        down.confirmation,
        Some(Confirmation::Confirmed { .. })
    ));
}

#[test]
fn no_answer_within_the_bound_leaves_the_owners_verdict_unconfirmed() {
    let (r, mut c, at) = owner(params(1, 1, Status::Up));
    let suspect = fail(&mut c, at, &up_by(&r[0]));
    let deadline = at + TIMEOUT + SLACK;
    assert!(c.poll_timeout().expect("timer") <= deadline);
    // nothing before the bound
    let mut t = c.poll_timeout().expect("timer");
    while t < deadline {
        c.handle_timeout(t);
        assert!(
            !actions(&mut c)
                .iter()
                .any(|a| matches!(a, Action::Write { .. })),
            "written before the deadline"
        );
        t = c
            .poll_timeout()
            .expect("timer")
            .max(t + Duration::from_millis(1));
    }
    c.handle_timeout(deadline);
    let acts = actions(&mut c);
    let down = acts
        .iter()
        .find_map(|a| match a {
            Action::Write { record, .. } => Some(record.clone()),
            _ => None,
        })
        .expect("the owner's verdict is written at the deadline");
    assert_eq!(down.status, Status::Down);
    assert_eq!(
        down.confirmation,
        Some(Confirmation::Unconfirmed {
            why: Unconfirmed::NoAnswer
        })
    );
    assert_eq!(c.stats().unanswered, 1);
    // a late answer decides nothing
    let late = confirm_round(&r, &suspect, &ok());
    c.handle_answer(deadline, "o", &late, Some(&down));
    assert!(c.poll_action().is_none());
}

#[test]
fn alone_or_with_confirm_off_the_owners_streak_decides() {
    let t = Instant::now();
    let mut alone = core("a");
    alone.handle_origin(t, "o", Some(params(1, 1, Status::Up)));
    let (at, _) = run_until(&mut alone, t + INTERVAL).pop().expect("due");
    let down = fail(&mut alone, at, &up_by("a"));
    assert_eq!(down.status, Status::Down);
    assert_eq!(
        down.confirmation,
        Some(Confirmation::Unconfirmed {
            why: Unconfirmed::Alone
        })
    );
    assert_eq!((alone.stats().alone, alone.stats().rounds), (1, 0));
    let off = Params {
        confirm: false,
        ..params(1, 1, Status::Up)
    };
    let (r, mut c, at) = owner(off);
    let down = fail(&mut c, at, &up_by(&r[0]));
    assert_eq!((down.status, down.confirmation), (Status::Down, None));
    assert_eq!(c.stats().rounds, 0);
}

#[test]
fn a_confirmer_that_leaves_the_view_is_replaced_at_once() {
    let (r, mut c, at) = owner(params(1, 1, Status::Up));
    let first = fail(&mut c, at, &up_by(&r[0]));
    assert_eq!(
        first.suspect.as_ref().map(|s| s.confirmer.as_str()),
        Some(r[1].as_str())
    );
    let later = at + Duration::from_millis(100);
    c.handle_live(later, vec![r[0].clone(), r[2].clone()]);
    let moved = written(&mut c);
    let s = moved.suspect.clone().expect("a new round");
    assert_eq!(s.confirmer, r[2]);
    assert_ne!(Some(s.round), first.suspect.as_ref().map(|s| s.round));
    assert_eq!(moved.status, Status::Up);
    // and alone, the owner's verdict stands at once
    c.handle_live(later, vec![r[0].clone()]);
    let down = written(&mut c);
    assert_eq!(down.status, Status::Down);
    assert_eq!(
        down.confirmation,
        Some(Confirmation::Unconfirmed {
            why: Unconfirmed::Alone
        })
    );
    assert_eq!(down.suspect, None);
}

#[test]
fn a_down_only_the_owner_sees_is_lifted_and_a_rise_clears_the_dispute() {
    let (r, mut c, at) = owner(params(1, 1, Status::Up));
    // the visible record: down, confirmed earlier (by this owner)
    let mut visible = record(&r[0], Status::Down, 1);
    visible.confirmation = Some(Confirmation::Confirmed { by: r[1].clone() });
    let asks = fail(&mut c, at, &visible);
    assert_eq!(asks.status, Status::Down, "stays down while it asks");
    assert!(asks.suspect.is_some(), "asked again while down");
    let answer = confirm_round(&r, &asks, &ok());
    c.handle_answer(at, "o", &answer, Some(&asks));
    let lifted = written(&mut c);
    assert_eq!(
        lifted.status,
        Status::Up,
        "lifted: the confirmer sees it up"
    );
    assert!(lifted.disputed());
    // the owner's own checks pass again: plain up, no round
    c.handle_result(at + INTERVAL, "o", &ok(), Some(&lifted), true, 30);
    let up = written(&mut c);
    assert_eq!(
        (up.status, up.confirmation, up.suspect),
        (Status::Up, None, None)
    );
}

#[test]
fn answers_of_other_askers_or_earlier_lives_decide_nothing() {
    let (r, mut c, at) = owner(params(1, 1, Status::Up));
    let suspect = fail(&mut c, at, &up_by(&r[0]));
    let mut answer = confirm_round(&r, &suspect, &failed());
    let mut other = answer.clone();
    other.asker = r[2].clone();
    c.handle_answer(at, "o", &other, Some(&suspect));
    assert!(c.poll_action().is_none(), "another asker's answer");
    answer.round.start ^= 1; // the same seq, from another start
    c.handle_answer(at, "o", &answer, Some(&suspect));
    assert!(c.poll_action().is_none(), "an earlier life's round");
    // the confirmer answers once even when told again after a restart
    let t = Instant::now();
    let mut confirmer = core(&r[1]);
    confirmer.handle_live(t, r.clone());
    confirmer.handle_origin(t, "o", Some(params(1, 1, Status::Up)));
    let s = suspect.suspect.clone().expect("suspect");
    confirmer.handle_suspect("o", &r[0], &s, true);
    assert!(
        confirmer.poll_action().is_none(),
        "its answer is in the map already"
    );
}
