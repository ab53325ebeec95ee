//! [`Rejections`]: counts of refused input, by reason.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Rejection;

/// Counters of rejected frames or datagrams, one per [`Rejection`] kind.
/// Share one per transport (e.g. in an `Arc`) and export a snapshot.
#[derive(Debug, Default)]
pub struct Rejections {
    plaintext: AtomicU64,
    malformed: AtomicU64,
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
    pub fn by_reason(&self) -> [(&'static str, u64); 6] {
        [
            ("plaintext", self.plaintext),
            ("malformed", self.malformed),
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
            unknown_key: get(&self.unknown_key),
            forged: get(&self.forged),
            stale: get(&self.stale),
            replayed: get(&self.replayed),
        }
    }
}
