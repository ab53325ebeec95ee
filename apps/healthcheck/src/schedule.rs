//! When to check each origin ([`Schedule`]), and the rise/fall state
//! machine of one origin ([`Streak`]). No I/O: time comes in as arguments.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    time::{Duration, Instant},
};

use crate::{record::Status, rendezvous};

/// Consecutive results of an origin, HAProxy style: `rise` successes in a
/// row make it `up`, `fall` failures in a row make it `down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streak {
    /// The current verdict.
    pub status: Status,
    successes: u32,
    failures: u32,
}

impl Streak {
    /// A streak starting from `status` (the visible record's, or the spec's
    /// initial status).
    pub fn new(status: Status) -> Self {
        Streak {
            status,
            successes: 0,
            failures: 0,
        }
    }

    /// Counts one result; returns whether the status changed.
    pub fn record(&mut self, ok: bool, rise: u32, fall: u32) -> bool {
        let before = self.status;
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            if self.successes >= rise.max(1) {
                self.status = Status::Up;
            }
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            if self.failures >= fall.max(1) {
                self.status = Status::Down;
            }
        }
        self.status != before
    }

    /// Whether a change is under way (results disagree with the status but
    /// not enough of them yet): checks then run at the fast interval.
    pub fn settling(&self) -> bool {
        (self.status != Status::Up && self.successes > 0)
            || (self.status != Status::Down && self.failures > 0)
    }
}

/// The interval used while a streak is settling: a quarter of the interval,
/// at least 100 ms (HAProxy's `fastinter`).
pub fn fast_interval(interval: Duration) -> Duration {
    (interval / 4).max(Duration::from_millis(100)).min(interval)
}

/// The first check of `origin` by `node`: spread over one interval by a hash
/// of both names, so that a cold start does not check everything at once,
/// and so that agents do not all look at an origin at the same moment.
pub fn first_due(node: &str, origin: &str, interval: Duration, now: Instant) -> Instant {
    let fraction = rendezvous::weight(node, origin) as f64 / u64::MAX as f64;
    now + interval.mul_f64(fraction)
}

/// The next check after one at `now`: `interval` moved by up to
/// ±`jitter_percent` % of it, by `unit` (a random number in [0, 1)).
pub fn next_due(now: Instant, interval: Duration, jitter_percent: u8, unit: f64) -> Instant {
    let jitter = f64::from(jitter_percent.min(100)) / 100.0;
    now + interval.mul_f64(1.0 - jitter + 2.0 * jitter * unit.clamp(0.0, 1.0))
}

/// Due times of origins, earliest first; an origin is in it at most once.
/// An origin's due time can be moved earlier ([`advance`](Self::advance));
/// the entry it replaces stays in the heap and is skipped when reached.
#[derive(Debug, Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(Instant, u64, String)>>,
    /// Each scheduled origin: the sequence number and time of its live entry.
    queued: HashMap<String, (u64, Instant)>,
    seq: u64,
}

impl Schedule {
    /// An empty schedule.
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedules `origin` at `at`, unless it is already scheduled.
    pub fn add(&mut self, origin: &str, at: Instant) -> bool {
        if self.queued.contains_key(origin) {
            return false;
        }
        self.push(origin, at);
        true
    }

    /// Moves `origin` to `at` if it is scheduled later, or schedules it if it
    /// is not scheduled. Returns whether anything changed.
    pub fn advance(&mut self, origin: &str, at: Instant) -> bool {
        if self.due(origin).is_some_and(|current| current <= at) {
            return false;
        }
        self.push(origin, at);
        true
    }

    fn push(&mut self, origin: &str, at: Instant) {
        self.seq += 1;
        self.queued.insert(origin.to_owned(), (self.seq, at));
        self.heap.push(Reverse((at, self.seq, origin.to_owned())));
        // Stale entries are skipped lazily; compact if they pile up.
        if self.heap.len() > 2 * self.queued.len() + 1024 {
            let queued = &self.queued;
            self.heap
                .retain(|Reverse((_, seq, o))| queued.get(o).is_some_and(|(s, _)| s == seq));
        }
    }

    /// When `origin` is due, if it is scheduled.
    pub fn due(&self, origin: &str) -> Option<Instant> {
        self.queued.get(origin).map(|(_, at)| *at)
    }

    /// Whether `origin` is scheduled.
    pub fn contains(&self, origin: &str) -> bool {
        self.queued.contains_key(origin)
    }

    /// The earliest due time.
    pub fn earliest(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns the next origin due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<String> {
        self.drop_stale();
        if self
            .heap
            .peek()
            .is_some_and(|Reverse((at, _, _))| *at <= now)
        {
            let Reverse((_, _, origin)) = self.heap.pop()?;
            self.queued.remove(&origin);
            return Some(origin);
        }
        None
    }

    fn drop_stale(&mut self) {
        while let Some(Reverse((_, seq, origin))) = self.heap.peek() {
            if self.queued.get(origin).is_some_and(|(s, _)| s == seq) {
                break;
            }
            self.heap.pop();
        }
    }

    /// The number of scheduled origins.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall_need_consecutive_results() {
        let mut s = Streak::new(Status::Unknown);
        assert!(!s.record(true, 2, 3));
        assert!(s.settling());
        assert!(s.record(true, 2, 3));
        assert_eq!(s.status, Status::Up);
        assert!(!s.settling());
        assert!(!s.record(false, 2, 3));
        assert!(!s.record(false, 2, 3));
        assert!(!s.record(true, 2, 3), "a success resets the failures");
        for _ in 0..2 {
            assert!(!s.record(false, 2, 3));
        }
        assert!(s.record(false, 2, 3));
        assert_eq!(s.status, Status::Down);
        let mut up = Streak::new(Status::Up);
        assert!(!up.record(true, 2, 3), "already up");
    }

    #[test]
    fn first_checks_spread_over_the_interval() {
        let now = Instant::now();
        let interval = Duration::from_secs(10);
        let dues: Vec<Duration> = (0..1000)
            .map(|i| first_due("hc-1", &format!("o{i}"), interval, now) - now)
            .collect();
        assert!(dues.iter().all(|d| *d <= interval));
        // each tenth of the interval gets about a tenth of the origins
        for tenth in 0..10 {
            let lo = interval * tenth / 10;
            let hi = interval * (tenth + 1) / 10;
            let n = dues.iter().filter(|d| **d >= lo && **d < hi).count();
            assert!((60..=140).contains(&n), "tenth {tenth}: {n}");
        }
    }

    #[test]
    fn next_due_jitters_by_its_percentage() {
        let now = Instant::now();
        let i = Duration::from_secs(4);
        assert_eq!(next_due(now, i, 10, 0.0) - now, Duration::from_millis(3600));
        assert_eq!(next_due(now, i, 10, 1.0) - now, Duration::from_millis(4400));
        assert_eq!(next_due(now, i, 10, 0.5) - now, i);
        assert_eq!(next_due(now, i, 0, 0.9) - now, i);
        assert_eq!(next_due(now, i, 50, 0.0) - now, Duration::from_secs(2));
        assert_eq!(fast_interval(i), Duration::from_secs(1));
        assert_eq!(
            fast_interval(Duration::from_millis(200)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn the_schedule_pops_in_time_order_and_once_per_origin() {
        let t = Instant::now();
        let mut s = Schedule::new();
        assert!(s.add("b", t + Duration::from_secs(2)));
        assert!(s.add("a", t + Duration::from_secs(1)));
        assert!(!s.add("a", t), "already scheduled");
        assert_eq!(s.pop_due(t), None);
        assert_eq!(s.pop_due(t + Duration::from_secs(5)).as_deref(), Some("a"));
        assert_eq!(s.pop_due(t + Duration::from_secs(5)).as_deref(), Some("b"));
        assert!(s.is_empty());
    }

    #[test]
    fn advance_moves_an_origin_earlier_and_never_later() {
        let t = Instant::now();
        let mut s = Schedule::new();
        s.add("a", t + Duration::from_secs(5));
        s.add("b", t + Duration::from_secs(3));
        assert!(s.advance("a", t + Duration::from_secs(1)));
        assert!(!s.advance("a", t + Duration::from_secs(4)), "never later");
        assert_eq!(s.due("a"), Some(t + Duration::from_secs(1)));
        assert_eq!(s.earliest(), Some(t + Duration::from_secs(1)));
        assert_eq!(s.pop_due(t + Duration::from_secs(10)).as_deref(), Some("a"));
        assert_eq!(s.pop_due(t + Duration::from_secs(10)).as_deref(), Some("b"));
        // the stale entry of "a" is skipped, not returned twice
        assert_eq!(s.pop_due(t + Duration::from_secs(10)), None);
        assert!(s.is_empty());
        assert!(s.advance("c", t), "an unscheduled origin is scheduled");
        assert_eq!(s.len(), 1);
    }
}
