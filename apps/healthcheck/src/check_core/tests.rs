//! The core in virtual time: one `Instant` base, durations added to it.

use super::*;
use crate::rendezvous;

const REFRESH: Duration = Duration::from_secs(10);
const GRACE: Duration = Duration::from_secs(2);
const INTERVAL: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_millis(500);
const SLACK: Duration = Duration::from_secs(2);

fn params(rise: u32, fall: u32, initial: Status) -> Params {
    Params {
        interval: INTERVAL,
        settling: crate::schedule::fast_interval(INTERVAL),
        down: INTERVAL,
        jitter_percent: 10,
        rise,
        fall,
        initial,
        timeout: TIMEOUT,
        confirm: true,
    }
}

fn core(me: &str) -> CheckCore {
    CheckCore::new(CheckCoreConfig {
        me: me.to_owned(),
        ownership: OwnershipConfig {
            takeover_grace: GRACE,
            record_refresh: REFRESH,
        },
        seed: 7,
        round_start: 11,
        confirm_slack: SLACK,
    })
}

fn ok() -> CheckOutcome {
    CheckOutcome::success(Duration::from_millis(3), Some(200))
}

fn failed() -> CheckOutcome {
    CheckOutcome {
        ok: false,
        latency: None,
        reason: Some("refused".into()),
        status_code: None,
    }
}

fn actions(c: &mut CheckCore) -> Vec<Action> {
    std::iter::from_fn(|| c.poll_action()).collect()
}

/// Runs the core's timer up to `until`, stopping after the first check:
/// the actions it asked for (checks and ends of maintenance), and when.
fn run_actions(c: &mut CheckCore, until: Instant) -> Vec<(Instant, Action)> {
    let mut out = Vec::new();
    while let Some(at) = c.poll_timeout().filter(|at| *at <= until) {
        c.handle_timeout(at);
        let mut checked = false;
        for a in actions(c) {
            match a {
                Action::Write { .. } => panic!("a timeout writes nothing"),
                Action::Check { .. } => checked = true,
                Action::EndMaintenance { .. } | Action::Confirm { .. } | Action::Answer { .. } => {}
            }
            out.push((at, a));
        }
        if checked {
            break;
        }
    }
    out
}

/// Runs the core's timer up to `until`: returns the origins it asked to
/// check, and when (no maintenance ends on the way).
fn run_until(c: &mut CheckCore, until: Instant) -> Vec<(Instant, String)> {
    run_actions(c, until)
        .into_iter()
        .map(|(at, a)| match a {
            Action::Check { origin } => (at, origin),
            other => panic!("only checks expected, got {other:?}"),
        })
        .collect()
}

fn record(by: &str, status: Status, since_ms: u64) -> HealthRecord {
    HealthRecord {
        status,
        checked_by: by.to_owned(),
        checked_at_ms: since_ms,
        since_ms,
        latency_ms: None,
        reason: None,
        confirmation: None,
        suspect: None,
    }
}

/// The agent ranked second for "o" (the three agents, owner first, and its
/// core), seeing all three live and knowing "o" since `t`.
fn stand_in(t: Instant) -> (Vec<String>, CheckCore) {
    let r = ranked();
    let mut second = core(&r[1]);
    second.handle_live(t, r.clone());
    second.handle_origin(t, "o", Some(params(1, 1, Status::Up)));
    (r, second)
}

/// The three agents ranked for "o", owner first.
fn ranked() -> Vec<String> {
    let names = vec!["a".to_string(), "b".into(), "c".into()];
    rendezvous::rank("o", &names)
        .into_iter()
        .map(String::from)
        .collect()
}

#[test]
fn an_owner_checks_within_one_interval_and_writes_its_first_verdict() {
    let t = Instant::now();
    let mut c = core("a");
    c.handle_origin(t, "o", Some(params(1, 1, Status::Unknown)));
    let due = c.poll_timeout().expect("scheduled");
    assert!(
        due >= t && due <= t + INTERVAL,
        "first check within an interval"
    );
    let checks = run_until(&mut c, t + INTERVAL);
    assert_eq!(checks, vec![(due, "o".to_string())]);
    assert_eq!(c.stats().owned, 1);
    assert!(c.checks("o"));
    c.handle_result(due, "o", &ok(), None, true, 1_000);
    let Some(Action::Write { origin, record: r }) = c.poll_action() else {
        panic!("the first verdict is written");
    };
    assert_eq!(origin, "o");
    assert_eq!(r.status, Status::Up);
    assert_eq!(r.checked_by, "a");
    assert_eq!((r.checked_at_ms, r.since_ms), (1_000, 1_000));
    assert_eq!(r.latency_ms, Some(3));
    c.handle_written(due, "o");
    let stats = c.stats();
    assert_eq!((stats.checks_ok, stats.records_written), (1, 1));
    // next check one interval later, ±10 %
    let next = c.poll_timeout().expect("rescheduled");
    let gap = next - due;
    assert!(
        gap >= INTERVAL.mul_f64(0.9) && gap <= INTERVAL.mul_f64(1.1),
        "{gap:?}"
    );
}

#[test]
fn an_unchanged_own_verdict_is_rewritten_only_when_the_refresh_is_due() {
    let t = Instant::now();
    let mut c = core("a");
    c.handle_origin(t, "o", Some(params(1, 1, Status::Up)));
    let mut visible: Option<HealthRecord> = None;
    let mut writes = Vec::new();
    let end = t + REFRESH * 2 + INTERVAL * 4;
    while let Some((at, origin)) = run_until(&mut c, end).pop() {
        c.handle_result(at, &origin, &ok(), visible.as_ref(), true, 5);
        for a in actions(&mut c) {
            if let Action::Write { record, .. } = a {
                c.handle_written(at, &origin);
                writes.push(at);
                visible = Some(record);
            }
        }
    }
    assert_eq!(
        writes.len(),
        3,
        "the first verdict and two refreshes: {writes:?}"
    );
    for w in writes.windows(2) {
        assert!(w[1] - w[0] >= REFRESH && w[1] - w[0] <= REFRESH + INTERVAL * 2);
    }
    assert!(c.stats().checks_ok > 15);
}

#[test]
fn an_owner_writes_over_another_agents_record_keeping_its_since() {
    let t = Instant::now();
    let mut c = core("a");
    c.handle_origin(t, "o", Some(params(1, 1, Status::Up)));
    let (at, _) = run_until(&mut c, t + INTERVAL).pop().expect("due");
    let theirs = record("z", Status::Up, 42);
    c.handle_result(at, "o", &ok(), Some(&theirs), true, 99);
    let Some(Action::Write { record: r, .. }) = c.poll_action() else {
        panic!("a record not its own is replaced");
    };
    assert_eq!(
        (r.checked_by.as_str(), r.since_ms, r.checked_at_ms),
        ("a", 42, 99)
    );
}

#[test]
fn rise_and_fall_count_results_in_a_row_at_the_fast_interval() {
    let t = Instant::now();
    let mut c = core("a");
    c.handle_origin(t, "o", Some(params(2, 3, Status::Up)));
    let mut visible = Some(record("a", Status::Up, 1));
    let mut verdicts = Vec::new();
    let mut gaps = Vec::new();
    let mut last = None;
    // fail, fail, fail (down at the third), succeed, succeed (up at the second)
    for outcome in [failed(), failed(), failed(), ok(), ok()] {
        let (at, origin) = run_until(&mut c, t + INTERVAL * 10).pop().expect("due");
        if let Some(prev) = last {
            gaps.push(at - prev);
        }
        last = Some(at);
        c.handle_result(at, &origin, &outcome, visible.as_ref(), true, 7);
        for a in actions(&mut c) {
            if let Action::Write { record, .. } = a {
                c.handle_written(at, &origin);
                verdicts.push(record.status);
                visible = Some(record);
            }
        }
    }
    // The first result writes (no write of its own since start); then only
    // the changes.
    assert_eq!(verdicts, vec![Status::Up, Status::Down, Status::Up]);
    let fast = crate::schedule::fast_interval(INTERVAL);
    // settling after the 1st and 2nd failure and after the 1st success
    for i in [0, 1, 3] {
        assert!(gaps[i] <= fast.mul_f64(1.1), "gap {i}: {:?}", gaps[i]);
    }
    // a settled verdict goes back to the interval
    assert!(gaps[2] >= INTERVAL.mul_f64(0.9), "{:?}", gaps[2]);
    assert_eq!(c.stats().checks_failed, 3);
}

#[test]
fn a_stand_in_takes_over_a_silent_owner_then_hands_back() {
    let t = Instant::now();
    let (r, mut second) = stand_in(t);
    second.handle_record_seen(t, "o", &r[0]);
    // stands by for record_refresh + 1 × grace after the owner's record
    let patience = REFRESH + GRACE;
    let checks = run_until(&mut second, t + patience);
    assert!(checks.is_empty(), "{checks:?}");
    assert_eq!(second.stats().owned, 0);
    let (at, _) = run_until(&mut second, t + patience + INTERVAL * 2)
        .pop()
        .expect("takes over");
    assert!(at > t + patience);
    assert_eq!(second.stats().takeovers, 1);
    second.handle_result(at, "o", &ok(), None, true, 1);
    assert!(matches!(second.poll_action(), Some(Action::Write { .. })));
    // the owner is back at work: the stand-in stops at its next due time
    second.handle_record_seen(at, "o", &r[0]);
    let checks = run_until(&mut second, at + INTERVAL * 3);
    assert!(checks.is_empty(), "handed back: {checks:?}");
    assert_eq!(second.stats().owned, 0);
    assert!(!second.checks("o"));
}

#[test]
fn when_the_owner_leaves_the_view_its_origin_is_due_at_once() {
    let t = Instant::now();
    let (r, mut second) = stand_in(t);
    second.handle_record_seen(t, "o", &r[0]);
    let leave = t + Duration::from_millis(10);
    assert!(run_until(&mut second, leave).is_empty());
    second.handle_live(leave, vec![r[1].clone(), r[2].clone()]);
    assert_eq!(second.poll_timeout(), Some(leave), "due at once");
    assert_eq!(
        run_until(&mut second, leave),
        vec![(leave, "o".to_string())]
    );
    assert_eq!(second.stats().takeovers, 0, "it owns it: not a takeover");
    // the same view again changes nothing
    second.handle_live(leave, vec![r[1].clone(), r[2].clone()]);
    assert!(second.poll_action().is_none());
}

#[test]
fn nothing_is_written_until_the_agent_may_publish() {
    let t = Instant::now();
    let mut c = core("a");
    c.handle_origin(t, "o", Some(params(1, 1, Status::Unknown)));
    let (at, origin) = run_until(&mut c, t + INTERVAL).pop().expect("due");
    c.handle_result(at, &origin, &ok(), None, false, 1);
    assert!(c.poll_action().is_none(), "not caught up: nothing written");
    let next = c.poll_timeout().expect("rescheduled");
    assert!(next - at <= crate::schedule::fast_interval(INTERVAL).mul_f64(1.1));
    // the streak was kept: once caught up the verdict is written
    let (at, origin) = run_until(&mut c, next).pop().expect("due");
    c.handle_result(at, &origin, &ok(), None, true, 2);
    let Some(Action::Write { record, .. }) = c.poll_action() else {
        panic!("written once it may publish");
    };
    assert_eq!(record.status, Status::Up);
}

#[test]
fn a_result_for_a_removed_or_usurped_origin_is_not_written() {
    let t = Instant::now();
    let r = ranked();
    // removed while its check ran
    let mut c = core("a");
    c.handle_origin(t, "o", Some(params(1, 1, Status::Up)));
    let (at, origin) = run_until(&mut c, t + INTERVAL).pop().expect("due");
    c.handle_origin(at, "o", None);
    c.handle_result(at, &origin, &ok(), None, true, 1);
    assert!(c.poll_action().is_none());
    assert_eq!(c.poll_timeout(), None, "forgotten");
    assert_eq!((c.stats().owned, c.len()), (0, 0));
    // usurped: the second agent took over, then the owner's record came
    let mut second = core(&r[1]);
    second.handle_live(t, r.clone());
    second.handle_origin(t, "o", Some(params(1, 1, Status::Up)));
    let (at, origin) = run_until(&mut second, t + REFRESH * 2)
        .pop()
        .expect("takes over");
    second.handle_record_seen(at, "o", &r[0]);
    second.handle_result(at, &origin, &ok(), None, true, 1);
    assert!(second.poll_action().is_none(), "not ours to write");
    assert_eq!(second.stats().owned, 0);
}

#[test]
fn one_check_of_an_origin_at_a_time() {
    let t = Instant::now();
    let (r, mut second) = stand_in(t);
    second.handle_live(t, vec![r[1].clone()]);
    assert_eq!(run_until(&mut second, t).len(), 1);
    // views change while the check runs: no second check is asked for
    second.handle_live(t, vec![r[1].clone(), r[2].clone()]);
    second.handle_live(t, vec![r[1].clone()]);
    assert!(second.poll_action().is_none());
    assert_eq!(
        second.poll_timeout(),
        None,
        "due again only once the result is in"
    );
    second.handle_result(t, "o", &ok(), None, true, 1);
    assert!(second.poll_timeout().is_some());
}

#[test]
fn a_full_registry_sync_forgets_the_removed_and_schedules_the_new() {
    let t = Instant::now();
    let mut c = core("a");
    c.handle_registry(
        t,
        vec![
            ("x".into(), params(1, 1, Status::Up)),
            ("y".into(), params(1, 1, Status::Up)),
        ],
    );
    assert_eq!(c.len(), 2);
    let slower = Params {
        interval: INTERVAL * 4,
        ..params(1, 1, Status::Up)
    };
    c.handle_registry(
        t,
        vec![("y".into(), slower), ("z".into(), params(1, 1, Status::Up))],
    );
    assert_eq!(c.len(), 2);
    let mut seen: Vec<String> = Vec::new();
    let end = t + INTERVAL;
    while let Some((at, origin)) = run_until(&mut c, end).pop() {
        c.handle_result(at, &origin, &ok(), None, true, 1);
        let _ = actions(&mut c);
        seen.push(origin);
    }
    seen.sort();
    assert_eq!(seen, vec!["y".to_string(), "z".to_string()], "x is gone");
    // y's next check uses its new interval
    let due_y = {
        let mut c2 = c;
        let mut due = None;
        while let Some((at, origin)) = run_until(&mut c2, t + INTERVAL * 6).pop() {
            if origin == "y" {
                due = Some(at);
                break;
            }
            c2.handle_result(at, &origin, &ok(), None, true, 1);
            let _ = actions(&mut c2);
        }
        due.expect("y is checked again")
    };
    assert!(
        due_y >= t + INTERVAL * 4 * 9 / 10 - INTERVAL,
        "{:?}",
        due_y - t
    );
}

/// Issue 16: an origin with a 120 s interval was first checked 78–120 s
/// after it was registered; now within a second of it, while a cold start
/// (the whole registry at once) still spreads first checks over the
/// interval.
#[test]
fn regression_a_newly_registered_origin_is_checked_within_a_second() {
    let t = Instant::now();
    let slow = Params {
        interval: Duration::from_secs(120),
        ..params(1, 1, Status::Unknown)
    };
    let mut c = core("a");
    for i in 0..50 {
        c.handle_origin(t, &format!("new-{i}"), Some(slow));
    }
    let checks = run_all_until(&mut c, t + FIRST_CHECK_WITHIN);
    assert_eq!(checks.len(), 50, "every new origin checked within a second");
    // a cold start: spread over the interval
    let mut cold = core("a");
    cold.handle_registry(t, (0..50).map(|i| (format!("old-{i}"), slow)).collect());
    let early = run_all_until(&mut cold, t + Duration::from_secs(10));
    assert!(
        early.len() < 15,
        "{} of 50 in the first 10 s of 120",
        early.len()
    );
    let mut all = early;
    all.extend(run_all_until(&mut cold, t + Duration::from_secs(120)));
    assert_eq!(all.len(), 50, "all within one interval");
}

/// Runs the core's timer up to `until`, answering every check at once;
/// returns the origins it asked to check.
fn run_all_until(c: &mut CheckCore, until: Instant) -> std::collections::BTreeSet<String> {
    let mut n = std::collections::BTreeSet::new();
    while let Some(at) = c.poll_timeout().filter(|at| *at <= until) {
        c.handle_timeout(at);
        for a in actions(c) {
            if let Action::Check { origin } = a {
                c.handle_result(at, &origin, &ok(), None, true, 1);
                n.insert(origin);
                let _ = actions(c);
            }
        }
    }
    n
}

/// Issue 16 item 2: each state has its interval (settled up, settling,
/// settled down), and the jitter is the spec's percentage.
#[test]
fn each_state_of_the_streak_has_its_interval_and_the_jitter_its_percentage() {
    let t = Instant::now();
    let per_state = Params {
        interval: Duration::from_secs(10),
        settling: Duration::from_secs(1),
        down: Duration::from_secs(30),
        jitter_percent: 0,
        ..params(2, 2, Status::Up)
    };
    let mut c = core("a");
    c.handle_origin(t, "o", Some(per_state));
    let mut visible = Some(record("a", Status::Up, 1));
    let mut gaps: Vec<u64> = Vec::new();
    let mut last: Option<Instant> = None;
    // ok (settled up), fail (settling), fail (down), fail (settled down),
    // ok (settling), ok (up)
    for outcome in [ok(), failed(), failed(), failed(), ok(), ok(), ok()] {
        let (at, origin) = run_until(&mut c, t + Duration::from_secs(600))
            .pop()
            .expect("due");
        if let Some(prev) = last {
            gaps.push((at - prev).as_secs());
        }
        last = Some(at);
        c.handle_result(at, &origin, &outcome, visible.as_ref(), true, 7);
        for a in actions(&mut c) {
            if let Action::Write { record, .. } = a {
                c.handle_written(at, &origin);
                visible = Some(record);
            }
        }
    }
    assert_eq!(gaps, vec![10, 1, 30, 30, 1, 10]);

    // Jitter: within ± the percentage, and spread over it.
    let jittery = Params {
        jitter_percent: 50,
        ..per_state
    };
    let mut c = core("a");
    c.handle_origin(t, "o", Some(jittery));
    let mut at = run_until(&mut c, t + Duration::from_secs(2))
        .pop()
        .expect("due")
        .0;
    let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
    for _ in 0..200 {
        c.handle_result(at, "o", &ok(), Some(&record("a", Status::Up, 1)), true, 7);
        let _ = actions(&mut c);
        let next = run_until(&mut c, at + Duration::from_secs(60))
            .pop()
            .expect("due")
            .0;
        lo = lo.min(next - at);
        hi = hi.max(next - at);
        at = next;
    }
    assert!(
        lo >= Duration::from_secs(5) && hi <= Duration::from_secs(15),
        "{lo:?}..{hi:?}"
    );
    assert!(
        lo < Duration::from_secs(6) && hi > Duration::from_secs(14),
        "{lo:?}..{hi:?}"
    );
}

/// An owner ("a" alone) that checked "o" once and wrote its verdict.
fn owner_at_work(t: Instant) -> (CheckCore, Instant) {
    let mut c = core("a");
    c.handle_origin(t, "o", Some(params(1, 1, Status::Unknown)));
    let (at, _) = run_until(&mut c, t + INTERVAL).pop().expect("due");
    c.handle_result(at, "o", &ok(), None, true, 1);
    assert!(matches!(c.poll_action(), Some(Action::Write { .. })));
    (c, at)
}

#[test]
fn an_origin_under_maintenance_is_not_checked_and_nothing_is_written() {
    let t = Instant::now();
    let (mut c, at) = owner_at_work(t);
    let hour = Duration::from_secs(3600);
    // a check in flight when the maintenance begins writes nothing
    let (due, _) = run_until(&mut c, at + INTERVAL * 2).pop().expect("due");
    c.handle_maintenance(due, "o", Some(due + hour));
    assert!(c.in_maintenance("o") && !c.checks("o"));
    assert_eq!(c.stats().owned, 0);
    c.handle_result(due, "o", &failed(), None, true, 2);
    assert!(c.poll_action().is_none(), "a result under maintenance");
    // an hour passes: no check, no write, no timer before its end
    assert_eq!(c.poll_timeout(), Some(due + hour));
    assert!(run_actions(&mut c, due + hour - Duration::from_millis(1)).is_empty());
}

#[test]
fn the_end_of_a_maintenance_is_checked_within_a_second() {
    let t = Instant::now();
    let (mut c, at) = owner_at_work(t);
    let long = params(1, 1, Status::Unknown);
    let long = Params {
        interval: Duration::from_secs(120),
        down: Duration::from_secs(120),
        ..long
    };
    c.handle_origin(at, "o", Some(long));
    c.handle_maintenance(at, "o", Some(at + Duration::from_secs(3600)));
    // ended by DELETE ten minutes in: checked within a second, however long
    // its interval
    let end = at + Duration::from_secs(600);
    assert!(run_actions(&mut c, end).is_empty());
    c.handle_maintenance(end, "o", None);
    assert!(!c.in_maintenance("o"));
    let checks = run_until(&mut c, end + FIRST_CHECK_WITHIN);
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert!(checks[0].0 >= end);
    // and the check is written again
    c.handle_result(checks[0].0, "o", &ok(), None, true, 3);
    assert!(matches!(c.poll_action(), Some(Action::Write { .. })));
}

#[test]
fn an_expired_maintenance_ends_by_itself_and_only_the_checker_removes_it() {
    let t = Instant::now();
    let r = ranked();
    let until = t + Duration::from_secs(60);
    let mut owner = core(&r[0]);
    owner.handle_live(t, r.clone());
    owner.handle_origin(t, "o", Some(params(1, 1, Status::Up)));
    owner.handle_maintenance(t, "o", Some(until));
    let (_, mut second) = stand_in(t);
    second.handle_maintenance(t, "o", Some(until));
    // the owner: at expiry it removes the entry and checks at once
    let acts = run_actions(&mut owner, until + FIRST_CHECK_WITHIN);
    let at = acts.first().map(|(at, _)| *at).expect("ended");
    assert!(at >= until && at <= until + FIRST_CHECK_WITHIN, "{acts:?}");
    assert!(
        acts.iter()
            .any(|(_, a)| matches!(a, Action::EndMaintenance { origin } if origin == "o")),
        "{acts:?}"
    );
    assert!(acts.iter().any(|(_, a)| matches!(a, Action::Check { .. })));
    assert!(!owner.in_maintenance("o"));
    // the stand-in: neither removes it nor takes over when it ends (the
    // owner wrote nothing for an hour), but waits a whole patience
    let acts = run_actions(&mut second, until + REFRESH);
    assert!(acts.is_empty(), "{acts:?}");
    assert!(!second.in_maintenance("o"));
    // a maintenance that had expired before it was seen: ended at once
    let mut late = core(&r[0]);
    late.handle_live(t, r.clone());
    late.handle_origin(t, "o", Some(params(1, 1, Status::Up)));
    late.handle_maintenance(until, "o", Some(t));
    assert!(!late.in_maintenance("o"));
    assert!(matches!(
        late.poll_action(),
        Some(Action::EndMaintenance { .. })
    ));
}

mod confirm;
