//! The keep-alive admission: which connection keys may keep an idle
//! connection open between checks, so that the checks' descriptors stay
//! within [`Checker::descriptor_budget`](super::Checker::descriptor_budget).
//!
//! hyper's pools have no global cap: each of the checker's keep-alive
//! clients keeps up to one idle connection per pool key (its
//! `pool_max_idle_per_host(1)`), for as many keys as it has seen. So the
//! checker admits [`PoolKey`]s: at most
//! [`max_idle_connections`](super::CheckerConfig::max_idle_connections) of
//! them may use the keep-alive clients, one idle connection each. A key
//! stays admitted while checks use it and until it could no longer hold an
//! idle connection (unused for [`ADMISSION_EXPIRY`]: hyper closes an idle
//! connection after [`POOL_IDLE_TIMEOUT`], at a sweep of its pool that runs
//! every timeout); a check whose key is not admitted uses the clients that
//! close each connection after its request.
//!
//! [`Admission`] is a sans-IO core (time comes in as `now`); [`Admitted`]
//! is its guard in the checker, releasing a use when dropped.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use tokio::time::Instant;

use super::POOL_IDLE_TIMEOUT;
use crate::spec::tls_files::TlsStamp;

/// An admitted key unused for this long holds no idle connection any more:
/// two [`POOL_IDLE_TIMEOUT`]s (expiry, then the sweep that finds it) and a
/// margin for the sweep's scheduling.
pub(super) const ADMISSION_EXPIRY: Duration =
    Duration::from_secs(2 * POOL_IDLE_TIMEOUT.as_secs() + 5);

/// What identifies a kept-alive connection: which client (scheme,
/// `tls_verify`, HTTP version, TLS files) and that client's pool key (the
/// URL's authority). Each key holds at most one idle connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct PoolKey {
    /// `https` rather than `http`.
    pub(super) https: bool,
    /// The authority of the URL, which hyper's pool keys connections by.
    pub(super) endpoint: Endpoint,
    /// The `tls_verify` of the client used: always true for plain HTTP (one
    /// client, one pool, whatever the spec says).
    pub(super) tls_verify: bool,
    /// The client speaks HTTP/2.
    pub(super) http2: bool,
    /// The TLS files of the client, as on disk when it was built.
    pub(super) files: Option<TlsStamp>,
}

/// The authority of a check's URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Endpoint {
    /// The URL holds the address connected to.
    Addr(SocketAddr),
    /// The URL holds a TLS server name and a port (HTTPS by name): one pool
    /// key whatever address the name resolved to (see the
    /// [`pins`](super::pins) module).
    Name {
        /// The name as the URL holds it (lowercase, IDNA-encoded).
        name: String,
        /// The port connected to.
        port: u16,
    },
}

/// Which [`PoolKey`]s may keep a connection alive while idle: at most
/// `capacity`. A sans-IO core: time comes in as `now`.
///
/// [`acquire`](Admission::acquire) before a check, and, if it admitted the
/// key, [`release`](Admission::release) after it (once its connection went
/// back to the pool or was closed). A key is admitted while checks use it
/// and until it has been unused for [`ADMISSION_EXPIRY`]; only then may its
/// place go to another key.
#[derive(Debug)]
pub(super) struct Admission {
    capacity: usize,
    keys: HashMap<PoolKey, Use>,
    /// Keys no check uses, by the end of their last use.
    unused: BTreeMap<(Instant, u64), PoolKey>,
    /// Tells apart keys released at the same instant.
    seq: u64,
}

/// How an admitted key is used.
#[derive(Debug, Clone, Copy)]
enum Use {
    /// By this many checks (at least one).
    InUse(usize),
    /// By none since this entry of `unused`.
    Unused(Instant, u64),
}

impl Admission {
    /// Admits at most `capacity` keys; none is admitted yet.
    pub(super) fn new(capacity: usize) -> Self {
        Admission {
            capacity,
            keys: HashMap::new(),
            unused: BTreeMap::new(),
            seq: 0,
        }
    }

    /// Whether a check of `key` may use the keep-alive clients: the key is
    /// admitted already, or there is room for it once the keys unused for
    /// [`ADMISSION_EXPIRY`] are forgotten. `true` counts one use, to be
    /// given back with [`release`](Admission::release).
    pub(super) fn acquire(&mut self, key: &PoolKey, now: Instant) -> bool {
        if let Some(slot) = self.keys.get_mut(key) {
            *slot = match *slot {
                Use::InUse(n) => Use::InUse(n + 1),
                Use::Unused(since, seq) => {
                    self.unused.remove(&(since, seq));
                    Use::InUse(1)
                }
            };
            return true;
        }
        while let Some(entry) = self.unused.first_entry() {
            let (since, _) = *entry.key();
            if now.saturating_duration_since(since) <= ADMISSION_EXPIRY {
                break;
            }
            let expired = entry.remove();
            self.keys.remove(&expired);
        }
        if self.keys.len() >= self.capacity {
            return false;
        }
        self.keys.insert(key.clone(), Use::InUse(1));
        true
    }

    /// Ends one use of `key` (admitted by [`acquire`](Admission::acquire))
    /// at `now`. A key not admitted, or not in use, is left as it is.
    pub(super) fn release(&mut self, key: &PoolKey, now: Instant) {
        let Some(slot) = self.keys.get_mut(key) else {
            return;
        };
        match *slot {
            Use::InUse(n) if n > 1 => *slot = Use::InUse(n - 1),
            Use::InUse(_) => {
                self.seq += 1;
                self.unused.insert((now, self.seq), key.clone());
                *slot = Use::Unused(now, self.seq);
            }
            // Not in use: nothing to end.
            Use::Unused(..) => {}
        }
    }

    /// How many keys are admitted.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.len()
    }
}

/// An admitted use of a [`PoolKey`]; released when dropped (also when the
/// check is cancelled), at the time of the drop.
#[derive(Debug)]
pub(super) struct Admitted<'a> {
    admission: &'a Mutex<Admission>,
    key: PoolKey,
}

impl<'a> Admitted<'a> {
    /// One use of `key`, if `admission` admits it at `now`; `None` if the
    /// check must not keep its connection.
    pub(super) fn acquire(
        admission: &'a Mutex<Admission>,
        key: PoolKey,
        now: Instant,
    ) -> Option<Admitted<'a>> {
        let admitted = admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .acquire(&key, now);
        admitted.then_some(Admitted { admission, key })
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release(&self.key, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> PoolKey {
        PoolKey {
            https: false,
            endpoint: Endpoint::Addr(SocketAddr::from(([127, 0, 0, 1], port))),
            tls_verify: true,
            http2: false,
            files: None,
        }
    }

    #[test]
    fn admission_keeps_at_most_capacity_keys() {
        let t0 = Instant::now();
        let mut a = Admission::new(2);
        assert!(a.acquire(&key(1), t0));
        assert!(a.acquire(&key(2), t0));
        assert!(!a.acquire(&key(3), t0), "full");
        // An admitted key is admitted again, even while in use.
        assert!(a.acquire(&key(1), t0));
        a.release(&key(1), t0);
        a.release(&key(1), t0);
        a.release(&key(2), t0);
        assert_eq!(a.len(), 2);
        // Unused, but possibly still holding an idle connection.
        assert!(!a.acquire(&key(3), t0 + ADMISSION_EXPIRY));
        // Unused for longer than a connection can stay idle: forgotten.
        let later = t0 + ADMISSION_EXPIRY + Duration::from_millis(1);
        assert!(a.acquire(&key(3), later));
        assert!(a.acquire(&key(4), later));
        assert!(!a.acquire(&key(1), later), "its place went to 3 and 4");
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn admission_never_forgets_a_key_in_use() {
        let t0 = Instant::now();
        let mut a = Admission::new(1);
        assert!(a.acquire(&key(1), t0));
        let much_later = t0 + ADMISSION_EXPIRY * 10;
        assert!(!a.acquire(&key(2), much_later), "1 is still in use");
        a.release(&key(1), much_later);
        assert!(!a.acquire(&key(2), much_later), "1 was just used");
        // The expiry counts from the end of the last use; the oldest goes
        // first.
        assert!(a.acquire(&key(2), much_later + ADMISSION_EXPIRY * 2));
        // A release of a key not admitted changes nothing.
        a.release(&key(7), much_later);
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn no_idle_connections_admits_nothing() {
        let mut a = Admission::new(0);
        assert!(!a.acquire(&key(1), Instant::now()));
    }

    /// HTTPS by name is one key per name, port and `tls_verify`, whatever
    /// address the name resolved to: hyper's pool key.
    #[test]
    fn a_name_is_one_key_per_port_and_tls_verify() {
        let t0 = Instant::now();
        let by_name = |port, tls_verify| PoolKey {
            https: true,
            endpoint: Endpoint::Name {
                name: "origin.example".into(),
                port,
            },
            tls_verify,
            http2: false,
            files: None,
        };
        let mut a = Admission::new(3);
        assert!(a.acquire(&by_name(443, true), t0));
        assert!(a.acquire(&by_name(443, true), t0));
        assert!(a.acquire(&by_name(8443, true), t0));
        assert!(a.acquire(&by_name(443, false), t0));
        assert_eq!(a.len(), 3);
        assert!(!a.acquire(&key(443), t0), "full");
    }

    #[test]
    fn an_admitted_guard_releases_when_dropped() {
        let admission = Mutex::new(Admission::new(1));
        let first = Admitted::acquire(&admission, key(1), Instant::now());
        assert!(first.is_some());
        assert!(Admitted::acquire(&admission, key(2), Instant::now()).is_none());
        drop(first);
        let lock = admission.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(matches!(lock.keys.get(&key(1)), Some(Use::Unused(..))));
    }
}
