//! [`ReplayGuard`]: remembers accepted datagram nonces within a time window.

use std::collections::{HashSet, VecDeque};

use crate::Rejection;

/// Accepts a (timestamp, nonce) pair at most once.
///
/// A timestamp more than `window` away from the receiver's clock is
/// [`Rejection::Stale`]; a nonce accepted before is [`Rejection::Replayed`].
/// Memory is bounded by `capacity` remembered nonces: when full, the oldest
/// is forgotten and the floor rises to just above its timestamp, so any
/// datagram at or below a forgotten one's timestamp is stale — a replay can
/// never slip through a forgotten slot (at worst, under a flood of valid
/// datagrams, a legitimate late datagram is refused).
#[derive(Debug)]
pub struct ReplayGuard {
    window_ms: u64,
    capacity: usize,
    seen: HashSet<[u8; 24]>,
    /// In acceptance order.
    order: VecDeque<(u64, [u8; 24])>,
    /// Timestamps below this are stale.
    floor: u64,
}

impl ReplayGuard {
    /// A guard accepting timestamps within `window_ms` of the clock and
    /// remembering up to `capacity` nonces.
    pub fn new(window_ms: u64, capacity: usize) -> ReplayGuard {
        ReplayGuard {
            window_ms,
            capacity: capacity.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
            floor: 0,
        }
    }

    /// Nonces remembered now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Accepts `(timestamp_ms, nonce)` at `now_ms`, or says why not.
    pub fn accept(
        &mut self,
        now_ms: u64,
        timestamp_ms: u64,
        nonce: [u8; 24],
    ) -> Result<(), Rejection> {
        let oldest = now_ms.saturating_sub(self.window_ms);
        if timestamp_ms < oldest
            || timestamp_ms > now_ms.saturating_add(self.window_ms)
            || timestamp_ms < self.floor
        {
            return Err(Rejection::Stale);
        }
        // Forget what the window already refuses.
        while let Some(&(ts, n)) = self.order.front() {
            if ts >= oldest {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&n);
        }
        if !self.seen.insert(nonce) {
            return Err(Rejection::Replayed);
        }
        self.order.push_back((timestamp_ms, nonce));
        while self.seen.len() > self.capacity {
            let Some((ts, n)) = self.order.pop_front() else {
                break;
            };
            self.seen.remove(&n);
            self.floor = self.floor.max(ts.saturating_add(1));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u32) -> [u8; 24] {
        let mut n = [0u8; 24];
        n[..4].copy_from_slice(&i.to_be_bytes());
        n
    }

    #[test]
    fn window_and_nonce_memory() {
        let mut g = ReplayGuard::new(1_000, 100);
        let now = 1_000_000;
        g.accept(now, now, n(1)).expect("fresh");
        assert_eq!(g.accept(now, now, n(1)), Err(Rejection::Replayed));
        assert_eq!(g.accept(now + 10, now, n(1)), Err(Rejection::Replayed));
        assert_eq!(g.accept(now, now - 1_001, n(2)), Err(Rejection::Stale));
        assert_eq!(g.accept(now, now + 1_001, n(3)), Err(Rejection::Stale));
        g.accept(now, now - 999, n(4)).expect("late but inside");
        // After the window passes, the nonce is forgotten and its timestamp stale.
        assert_eq!(g.accept(now + 1_500, now, n(1)), Err(Rejection::Stale));
        g.accept(now + 1_500, now + 1_500, n(5)).expect("fresh");
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn a_full_guard_raises_its_floor_instead_of_forgetting_silently() {
        let mut g = ReplayGuard::new(60_000, 3);
        let now = 1_000_000;
        for i in 0..3 {
            g.accept(now, now + u64::from(i), n(i)).expect("fresh");
        }
        g.accept(now, now + 3, n(3)).expect("evicts n(0)");
        assert_eq!(g.len(), 3);
        // n(0) is forgotten, but its timestamp is now below the floor.
        assert_eq!(g.accept(now, now, n(0)), Err(Rejection::Stale));
        assert_eq!(g.accept(now, now + 1, n(1)), Err(Rejection::Replayed));
    }
}
