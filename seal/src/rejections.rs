//! [`Rejections`]: counts of refused input, by reason.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Rejection;

/// Counters of rejected frames or datagrams, one per [`Rejection`] kind.
/// Share one per transport (e.g. in an `Arc`) and export a snapshot.
#[derive(Debug, Default)]
pub struct Rejections {
    plaintext: AtomicU64,
    malformed: AtomicU64,
    wrong_cluster: AtomicU64,
    unknown_key: AtomicU64,
    forged: AtomicU64,
    stale: AtomicU64,
    replayed: AtomicU64,
}

/// A snapshot of [`Rejections`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RejectionCounts {
    /// [`Rejection::Plaintext`].
    pub plaintext: u64,
    /// [`Rejection::Malformed`].
    pub malformed: u64,
    /// [`Rejection::WrongCluster`].
    pub wrong_cluster: u64,
    /// [`Rejection::UnknownKey`].
    pub unknown_key: u64,
    /// [`Rejection::Forged`].
    pub forged: u64,
    /// [`Rejection::Stale`].
    pub stale: u64,
    /// [`Rejection::Replayed`].
    pub replayed: u64,
}

impl RejectionCounts {
    /// `(reason label, count)` for each kind, labels as
    /// [`Rejection::reason`].
    pub fn by_reason(&self) -> [(&'static str, u64); 7] {
        [
            ("plaintext", self.plaintext),
            ("malformed", self.malformed),
            ("wrong_cluster", self.wrong_cluster),
            ("unknown_key", self.unknown_key),
            ("forged", self.forged),
            ("stale", self.stale),
            ("replayed", self.replayed),
        ]
    }

    /// All rejections.
    pub fn total(&self) -> u64 {
        self.by_reason().iter().map(|(_, n)| n).sum()
    }
}

impl Rejections {
    /// Counts one rejection.
    pub fn record(&self, rejection: &Rejection) {
        let counter = match rejection {
            Rejection::Plaintext => &self.plaintext,
            Rejection::Malformed => &self.malformed,
            Rejection::WrongCluster => &self.wrong_cluster,
            Rejection::UnknownKey(_) => &self.unknown_key,
            Rejection::Forged => &self.forged,
            Rejection::Stale => &self.stale,
            Rejection::Replayed => &self.replayed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> RejectionCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RejectionCounts {
            plaintext: get(&self.plaintext),
            malformed: get(&self.malformed),
            wrong_cluster: get(&self.wrong_cluster),
            unknown_key: get(&self.unknown_key),
            forged: get(&self.forged),
            stale: get(&self.stale),
            replayed: get(&self.replayed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyId;

    #[test]
    fn every_rejection_is_counted_under_its_own_label() {
        let all = [
            Rejection::Plaintext,
            Rejection::Malformed,
            Rejection::WrongCluster,
            Rejection::UnknownKey(KeyId(7)),
            Rejection::Forged,
            Rejection::Stale,
            Rejection::Replayed,
        ];
        let counters = Rejections::default();
        for (i, rejection) in all.iter().enumerate() {
            for _ in 0..=i {
                counters.record(rejection);
            }
        }
        let counts = counters.snapshot();
        assert_eq!(counts.by_reason().len(), all.len());
        for (i, rejection) in all.iter().enumerate() {
            let label = rejection.reason();
            let n = counts
                .by_reason()
                .iter()
                .find(|(l, _)| *l == label)
                .map(|(_, n)| *n);
            assert_eq!(n, Some(i as u64 + 1), "{label}");
        }
        assert_eq!(counts.total(), 28);
    }
}
