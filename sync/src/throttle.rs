//! [`LogThrottle`]: a repeated warning logged once, then at most once per
//! interval with a count of the ones left out.
//!
//! Sans-IO, like the engine: the caller passes `now` in, so a flood in a
//! test or a simulation is throttled by virtual time. Written here rather
//! than taken from a crate because it is a counter and a deadline (the
//! `tracing` ecosystem has no rate-limited event in a well-kept crate), and
//! because it is shared with the membership driver.

use std::time::{Duration, Instant};

/// Decides which occurrences of a repeated event are logged: the first, then
/// the first after each `interval`, each with the number of occurrences
/// suppressed since the previous logged one.
///
/// ```
/// use std::time::{Duration, Instant};
/// use sync::LogThrottle;
///
/// let t0 = Instant::now();
/// let mut throttle = LogThrottle::new(Duration::from_secs(10));
/// assert_eq!(throttle.allow(t0), Some(0)); // the first is logged
/// assert_eq!(throttle.allow(t0 + Duration::from_secs(1)), None);
/// assert_eq!(throttle.allow(t0 + Duration::from_secs(2)), None);
/// // 10 s later: logged, with the two left out
/// assert_eq!(throttle.allow(t0 + Duration::from_secs(10)), Some(2));
/// ```
#[derive(Debug, Clone)]
pub struct LogThrottle {
    interval: Duration,
    /// When the next occurrence may be logged; `None` before the first.
    next: Option<Instant>,
    suppressed: u64,
}

impl LogThrottle {
    /// A throttle that logs at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        LogThrottle {
            interval,
            next: None,
            suppressed: 0,
        }
    }

    /// Records one occurrence at `now`. `Some(n)` if it is to be logged,
    /// `n` being how many occurrences were suppressed since the last logged
    /// one (log it with the event); `None` if it is suppressed (counted for
    /// the next). `now` going backwards is treated as no time passing.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.next {
            Some(next) if now < next => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.next = Some(now + self.interval);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }

    /// Occurrences suppressed since the last logged one.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_logged_once_per_interval_with_the_count_left_out() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut throttle = LogThrottle::new(Duration::from_secs(10));
        // 1,518 occurrences over 40 s, one every ~26 ms
        let logged: Vec<(u64, u64)> = (0..1518u64)
            .filter_map(|i| {
                let at = i * 40_000 / 1518;
                throttle.allow(ms(at)).map(|n| (at, n))
            })
            .collect();
        assert_eq!(logged.len(), 4, "{logged:?}");
        assert_eq!(logged[0], (0, 0));
        let total: u64 = logged.iter().map(|(_, n)| n + 1).sum::<u64>() + throttle.suppressed();
        assert_eq!(total, 1518, "every occurrence logged or counted once");
        assert!(logged.windows(2).all(|w| w[1].0 - w[0].0 >= 10_000));
    }

    #[test]
    fn a_clock_going_backwards_does_not_log_early() {
        let t0 = Instant::now() + Duration::from_secs(60);
        let mut throttle = LogThrottle::new(Duration::from_secs(5));
        assert_eq!(throttle.allow(t0), Some(0));
        assert_eq!(throttle.allow(t0 - Duration::from_secs(30)), None);
        assert_eq!(throttle.allow(t0 + Duration::from_secs(5)), Some(1));
    }
}
