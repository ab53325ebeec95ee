//! [`PinTable`]: the DNS resolver of every client of the checker. It
//! answers a name only from the pins that checks in flight set right before
//! sending, with addresses the [`TargetPolicy`] has just judged; it never
//! asks the system resolver.
//!
//! # Why
//!
//! An HTTPS check of a DNS name must keep the name in its URL (it is the
//! TLS server name and the certificate name), yet connect only to an
//! address the checker resolved and judged itself (no DNS rebinding past
//! the policy). A client per name pinned with
//! [`reqwest::ClientBuilder::resolve`] does that, but costs a root store and
//! a connection pool per name. Instead all the checker's clients share this
//! table as their [`Resolve`]r, and each check pins its name for the time
//! of its request: the clients are few and shared, so a name checked again
//! reuses its kept-alive connection.
//!
//! # Contract
//!
//! - A check of `name:port` whose addresses were judged calls
//!   [`pin`](PinTable::pin) before sending and keeps the [`Pin`] until its
//!   request has an answer or failed; dropping the [`Pin`] (also when the
//!   check is cancelled) removes it. The table holds at most one pin per
//!   check in flight, so it is bounded by `max_concurrency`.
//! - [`resolve`](Resolve::resolve) of a name with no pin fails (the
//!   connection fails with `connect: … is not pinned by a check in flight`).
//! - Otherwise it answers the union of the IP addresses pinned for the
//!   name, newest pin first, each pin's in resolved order, without
//!   duplicates, **keeping only the IPs that the policy allows at every
//!   port the name is pinned with**, each with port 0 — hyper-util then
//!   connects to the URL's port (`set_port`: an explicit port, or the
//!   scheme's default, replaces port 0).
//!
//! So a connection for `name:P` goes to `(ip, P)` where `ip` is an address
//! that a check in flight resolved `name` to, and `(ip, P)` is allowed by
//! the policy: for the check's own pin it was judged before the pin, for
//! another's the filter judged it at `P`. `P` is among the pinned ports
//! because the resolver is called while the check that asks is in flight:
//! hyper-util resolves in the first poll of its connect future, which runs
//! inside the request's future (its checkout/connect `select`), and the
//! check holds its pin for the whole of that future.
//!
//! Which address a connection uses: hyper-util tries the answer in order
//! (the first address's family first, the other family after its
//! happy-eyeballs delay) and keeps the first that accepts. A check pins and
//! then polls its request without yielding, so its own pin is almost always
//! the newest: with one check of the name in flight, or several that
//! resolved it alike, the connection goes to the check's own addresses in
//! its own resolved order; when concurrent checks resolved the name
//! differently (round-robin DNS, a change), it may go to an address
//! another of them resolved — judged allowed all the same.
//!
//! # Kept-alive connections
//!
//! hyper's pool keys a connection by scheme and authority (name and port),
//! so a later check of the name may reuse a connection opened to an address
//! an earlier check judged, even if the name resolves elsewhere now. That
//! is safe because the policy is fixed for the checker's life (the
//! [`CheckerConfig`](super::CheckerConfig) holds it): an address judged
//! allowed once stays allowed. A reused connection lives at most
//! [`POOL_IDLE_TIMEOUT`](super::POOL_IDLE_TIMEOUT) idle, so a name that
//! moved is followed within that time once its checks pause.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::targets::TargetPolicy;

/// Names pinned to judged addresses by the checks in flight; the resolver
/// of every client. See the [module doc](self) for its contract.
#[derive(Debug)]
pub(super) struct PinTable {
    /// The policy the pinned addresses were judged by; it judges an
    /// address pinned at one port before it is answered for another.
    policy: Arc<TargetPolicy>,
    pins: Mutex<Pins>,
}

/// The pins of a [`PinTable`], under its lock.
#[derive(Debug, Default)]
struct Pins {
    /// The pins of each name, oldest first; never an empty list.
    by_name: HashMap<String, Vec<Entry>>,
    /// The id of the next pin.
    next: u64,
}

/// One check's pin of a name.
#[derive(Debug)]
struct Entry {
    id: u64,
    /// The judged addresses (with the check's port), in resolved order.
    addrs: Vec<SocketAddr>,
}

impl PinTable {
    /// An empty table whose answers are filtered by `policy`, which MUST be
    /// the policy the pinned addresses are judged by.
    pub(super) fn new(policy: Arc<TargetPolicy>) -> PinTable {
        PinTable {
            policy,
            pins: Mutex::new(Pins::default()),
        }
    }

    /// Pins `name` (as the URL holds it) to `addrs` until the returned
    /// [`Pin`] is dropped. Every one of `addrs` MUST have been judged
    /// allowed by the table's policy.
    pub(super) fn pin(&self, name: &str, addrs: &[SocketAddr]) -> Pin<'_> {
        let mut pins = self.lock();
        let id = pins.next;
        pins.next += 1;
        pins.by_name
            .entry(name.to_owned())
            .or_default()
            .push(Entry {
                id,
                addrs: addrs.to_vec(),
            });
        Pin {
            table: self,
            name: name.to_owned(),
            id,
        }
    }

    /// What [`resolve`](Resolve::resolve) answers for `name`: `None` if it
    /// is not pinned, else the addresses of the [module doc](self) (port 0;
    /// possibly none, if the policy allows no pinned IP at every pinned
    /// port).
    pub(super) fn lookup(&self, name: &str) -> Option<Vec<SocketAddr>> {
        let pins = self.lock();
        let entries = pins.by_name.get(name)?;
        let mut ports: Vec<u16> = entries
            .iter()
            .flat_map(|e| e.addrs.iter().map(SocketAddr::port))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        let mut ips: Vec<IpAddr> = Vec::new();
        for addr in entries.iter().rev().flat_map(|e| &e.addrs) {
            let ip = addr.ip();
            let allowed = || {
                ports
                    .iter()
                    .all(|&port| self.policy.check(&[SocketAddr::new(ip, port)]).is_ok())
            };
            if !ips.contains(&ip) && allowed() {
                ips.push(ip);
            }
        }
        Some(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect())
    }

    /// How many names are pinned.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_name.len()
    }

    fn lock(&self) -> MutexGuard<'_, Pins> {
        self.pins.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Resolve for PinTable {
    /// Answers from the pins only (see the [module doc](self)); a name not
    /// pinned, or whose pinned IPs the policy allows at no pinned port,
    /// fails.
    fn resolve(&self, name: Name) -> Resolving {
        let name = name.as_str();
        let answer = match self.lookup(name) {
            Some(addrs) if !addrs.is_empty() => Ok(Box::new(addrs.into_iter()) as Addrs),
            Some(_) => {
                Err(format!("no address pinned for {name} is allowed at every pinned port").into())
            }
            None => Err(format!("{name} is not pinned by a check in flight").into()),
        };
        Box::pin(std::future::ready(answer))
    }
}

/// A check's pin of a name in a [`PinTable`]; removed when dropped.
#[derive(Debug)]
pub(super) struct Pin<'a> {
    table: &'a PinTable,
    name: String,
    id: u64,
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        let mut pins = self.table.lock();
        if let Some(entries) = pins.by_name.get_mut(&self.name) {
            entries.retain(|e| e.id != self.id);
            if entries.is_empty() {
                pins.by_name.remove(&self.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::TargetsConfig;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| addr(a)).collect()
    }

    fn table() -> PinTable {
        PinTable::new(Arc::new(TargetPolicy::default()))
    }

    async fn resolve(table: &PinTable, name: &str) -> Result<Vec<SocketAddr>, String> {
        let name: Name = name.parse().expect("a name");
        match table.resolve(name).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// More names than the 64 pinned clients the checker used to cache:
    /// each is answered while pinned, and the table is empty once the
    /// checks are over.
    #[tokio::test]
    async fn only_pinned_names_resolve_and_only_while_pinned() {
        let table = table();
        let names: Vec<String> = (0..70).map(|i| format!("origin-{i}.example")).collect();
        let pins: Vec<Pin<'_>> = names
            .iter()
            .map(|name| table.pin(name, &addrs(&["127.0.0.1:8443"])))
            .collect();
        assert_eq!(table.len(), 70);
        for name in &names {
            assert_eq!(
                resolve(&table, name).await,
                Ok(addrs(&["127.0.0.1:0"])),
                "{name}"
            );
        }
        assert_eq!(
            resolve(&table, "other.example").await,
            Err("other.example is not pinned by a check in flight".into()),
            "a name not pinned never reaches the system resolver"
        );
        drop(pins);
        assert_eq!(table.len(), 0);
        for name in &names {
            assert!(resolve(&table, name).await.is_err(), "{name}");
        }
        assert!(resolve(&table, "localhost").await.is_err());
    }

    #[test]
    fn concurrent_pins_of_a_name_answer_their_union_newest_first() {
        let table = table();
        let first = table.pin("origin.example", &addrs(&["10.0.0.1:443", "10.0.0.2:443"]));
        let second = table.pin("origin.example", &addrs(&["10.0.0.3:443", "10.0.0.1:443"]));
        assert_eq!(
            table.lookup("origin.example"),
            Some(addrs(&["10.0.0.3:0", "10.0.0.1:0", "10.0.0.2:0"]))
        );
        // Each pin goes with its own check: the other stays.
        drop(second);
        assert_eq!(
            table.lookup("origin.example"),
            Some(addrs(&["10.0.0.1:0", "10.0.0.2:0"]))
        );
        let again = table.pin("origin.example", &addrs(&["10.0.0.1:443"]));
        drop(first);
        assert_eq!(table.lookup("origin.example"), Some(addrs(&["10.0.0.1:0"])));
        drop(again);
        assert_eq!(table.lookup("origin.example"), None);
        assert_eq!(table.len(), 0);
    }

    /// A name pinned at two ports at once: an IP is answered only if the
    /// policy allows it at both, whichever check's connection asks.
    #[test]
    fn an_ip_pinned_at_one_port_is_judged_at_the_others() {
        // 10.0.0.1:9443 is the agent's own listener.
        let own = [("listen.api", addr("10.0.0.1:9443"))];
        let policy = TargetPolicy::new(&TargetsConfig::default(), &own).expect("policy");
        let table = PinTable::new(Arc::new(policy));
        let at_8443 = table.pin("origin.example", &addrs(&["10.0.0.1:8443"]));
        assert_eq!(table.lookup("origin.example"), Some(addrs(&["10.0.0.1:0"])));
        let at_9443 = table.pin("origin.example", &addrs(&["10.0.0.2:9443"]));
        // 10.0.0.1 is allowed at 8443 only, so answered no more: a
        // connection to origin.example:9443 must not reach it.
        assert_eq!(table.lookup("origin.example"), Some(addrs(&["10.0.0.2:0"])));
        drop(at_9443);
        assert_eq!(table.lookup("origin.example"), Some(addrs(&["10.0.0.1:0"])));
        drop(at_8443);
    }

    #[tokio::test]
    async fn a_name_with_no_ip_allowed_at_every_port_fails() {
        let own = [
            ("listen.api", addr("10.0.0.1:9443")),
            ("listen.gossip", addr("10.0.0.2:8443")),
        ];
        let policy = TargetPolicy::new(&TargetsConfig::default(), &own).expect("policy");
        let table = PinTable::new(Arc::new(policy));
        let _a = table.pin("origin.example", &addrs(&["10.0.0.1:8443"]));
        let _b = table.pin("origin.example", &addrs(&["10.0.0.2:9443"]));
        assert_eq!(table.lookup("origin.example"), Some(Vec::new()));
        assert!(resolve(&table, "origin.example").await.is_err());
    }
}
