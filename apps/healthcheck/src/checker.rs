//! [`Checker`]: the network side of a health check — one HTTP, HTTPS or TCP
//! probe of an [`OriginSpec`], turned into a [`CheckOutcome`].
//!
//! This is the thin I/O edge of the agent: it decides nothing about `up` or
//! `down` (that is `rise`/`fall` bookkeeping elsewhere); it only reports what
//! one probe saw, with a `reason` from a fixed vocabulary ([`Failure`]).
//!
//! # Where a check goes
//!
//! Every check resolves its `address` itself, judges **every** resolved
//! address with the [`TargetPolicy`] of its [`CheckerConfig`] (a denied one
//! fails the check with `denied: …`, before any connection), then connects
//! only to the addresses it judged. The name is never resolved a second
//! time (by reqwest or tokio), so a name that resolves differently for the
//! connection than for the policy (DNS rebinding) cannot slip past it.
//!
//! - TCP checks are a plain [`tokio::net::TcpStream`] connect to the
//!   resolved addresses, in order until one accepts.
//! - HTTP requests go to a URL holding the resolved address
//!   (`http://10.0.0.7:8080/health`), one address after the other until
//!   one accepts, with an explicit `Host`: the spec's `host`, else the
//!   address as a URL would write it (the name, lowercase, without a
//!   default port).
//! - HTTPS keeps its TLS server name (SNI and certificate name): the DNS
//!   name of `host`, else of the address. The request goes to
//!   `https://name:port/…`; right before it is sent, the checker pins the
//!   name to the addresses it has just judged, in a table that is the only
//!   resolver of its clients (a name no check in flight pinned does not
//!   resolve), and removes the pin once the request has an answer. With
//!   concurrent checks of one name the table answers the union of their
//!   judged addresses, each allowed by the policy at the port asked for.
//!   With no name at all (an IP-literal address, no `host` name) the URL
//!   holds the address.
//!
//! # Connections kept alive, and the descriptor bound
//!
//! HTTP and HTTPS go through eight shared [`reqwest`] clients (keep-alive or
//! not, verifying certificates or not, HTTP/1.1 or HTTP/2), whatever the
//! number of origins, plus a bounded set for specs that name TLS files (see
//! the `clients` module), so
//! consecutive checks of an origin reuse one connection. hyper's pools have
//! no global cap, so the checker admits connection keys (scheme,
//! `tls_verify`, HTTP version, TLS files, and the URL's authority: the
//! address, or the TLS server name and port): at most
//! [`max_idle_connections`](CheckerConfig::max_idle_connections) keys may
//! keep a connection alive while idle, one each. A key stays admitted while
//! checks use it and until it could no longer hold an idle connection
//! (unused for twice [`POOL_IDLE_TIMEOUT`], plus a margin: hyper closes an
//! idle connection after the timeout, at a sweep that runs every timeout);
//! a check whose key is not admitted gets a connection that is closed after
//! it. So the checks hold at most
//! [`descriptor_budget`](Checker::descriptor_budget) = `max_concurrency +
//! max_idle_connections` sockets: one per check in flight, one per admitted
//! key. Not counted: the system resolver's own sockets during a lookup (it
//! runs on tokio's blocking pool, and may outlive a check that timed out),
//! and a connection for the moment between the end of its check and its
//! close.
//!
//! A kept-alive HTTPS connection to a name may have been opened to an
//! address an earlier check judged, not the one the name resolves to now:
//! the policy is fixed for the checker's life, so that address is still
//! allowed.

mod clients;
mod failure;
mod http;
mod keep_alive;
mod pins;
mod target;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::header::HeaderValue;
use thiserror::Error;
use tokio::{
    net::{TcpStream, lookup_host},
    sync::Semaphore,
    time::{Instant, timeout_at},
};

pub use self::failure::Failure;
use self::{clients::Clients, failure::short, keep_alive::Admission, pins::PinTable};
use crate::{
    spec::{BodyMatcher, Kind, OriginSpec, tls_files::TlsDir},
    targets::TargetPolicy,
};

/// At most this much of a response body is read (and matched, if the spec
/// has a body matcher, else discarded); a longer body ends the check
/// without reading the rest, and its connection is not reused.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Most compiled body matchers kept (past it, the cache starts over).
pub const MAX_MATCHERS: usize = 4096;

/// How long the keep-alive clients keep an idle connection (hyper closes it
/// at the first sweep of its pool after this; sweeps run this often).
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default [`CheckerConfig::max_idle_connections`].
pub const DEFAULT_MAX_IDLE_CONNECTIONS: usize = 1024;

/// Settings of a [`Checker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerConfig {
    /// Most checks running at once (at least 1); more wait for a turn.
    pub max_concurrency: usize,
    /// `User-Agent` of every HTTP(S) check; it overrides a `User-Agent` in
    /// a spec's `headers`, so an origin can tell which agent checked it.
    pub user_agent: String,
    /// Where checks may go: every address a target resolves to is judged
    /// before any connection, and a denied one fails the check with
    /// `denied: …`.
    pub targets: Arc<TargetPolicy>,
    /// Most connections kept open between checks (keep-alive), over all
    /// origins; 0 closes every connection after its check. See
    /// [`Checker::descriptor_budget`].
    pub max_idle_connections: usize,
    /// Where the TLS files that specs name (`tls_ca`, `tls_client_cert`,
    /// `tls_client_key`) are read from.
    pub tls_dir: TlsDir,
}

impl Default for CheckerConfig {
    /// 64 concurrent checks, `User-Agent: vantage-healthcheck/<version>`,
    /// the default [`TargetPolicy`] (the built-in ranges denied, no
    /// listener of its own known: loopback origins are allowed), and
    /// [`DEFAULT_MAX_IDLE_CONNECTIONS`] kept alive.
    fn default() -> Self {
        CheckerConfig {
            max_concurrency: 64,
            user_agent: concat!("vantage-healthcheck/", env!("CARGO_PKG_VERSION")).into(),
            targets: Arc::new(TargetPolicy::default()),
            max_idle_connections: DEFAULT_MAX_IDLE_CONNECTIONS,
            tls_dir: TlsDir::default(),
        }
    }
}

/// Why a [`Checker`] could not be built. Nothing was started.
#[derive(Debug, Error)]
pub enum CheckerError {
    /// `max_concurrency` was 0 (no check could ever run) or above
    /// [`Semaphore::MAX_PERMITS`].
    #[error("max_concurrency {0} must be between 1 and {max}", max = Semaphore::MAX_PERMITS)]
    InvalidConcurrency(usize),
    /// `user_agent` is not a valid header value (control characters or
    /// non-ASCII).
    #[error("user_agent {0:?} is not a valid header value")]
    InvalidUserAgent(String),
    /// The HTTP client (its TLS configuration) could not be built.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The origin answered as expected: a status in `expect_status`, the
    /// `expect_headers` and a body that matches `expect_body` and
    /// `expect_body_regex` (HTTP/HTTPS), or an open connection (TCP).
    pub ok: bool,
    /// Time from the start of the check to the response headers (HTTP/HTTPS)
    /// or the open connection (TCP); `Some` whenever the origin answered,
    /// even with an unexpected status; `None` when it did not.
    pub latency: Option<Duration>,
    /// Why the check failed (`None` when `ok`): the [`Display`](std::fmt::Display)
    /// of a [`Failure`] — `timeout`, `refused`, `status 503`, `header: …`,
    /// `body: …`, `tls: …`, `connect: …`, `denied: …` or `io: …`.
    pub reason: Option<String>,
    /// The HTTP status of the response, if there was one.
    pub status_code: Option<u16>,
}

impl CheckOutcome {
    /// A check that got the answer it expected after `latency` (with HTTP
    /// status `status_code`, for HTTP and HTTPS).
    pub fn success(latency: Duration, status_code: Option<u16>) -> Self {
        CheckOutcome {
            ok: true,
            latency: Some(latency),
            reason: None,
            status_code,
        }
    }

    fn failed(latency: Option<Duration>, status_code: Option<u16>, failure: Failure) -> Self {
        CheckOutcome {
            ok: false,
            latency,
            reason: Some(failure.to_string()),
            status_code,
        }
    }
}

/// A spec's (`expect_body`, `expect_body_regex`).
type MatcherKey = (Option<String>, Option<String>);

/// Why a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Purpose {
    /// This agent's own check of an origin it checks.
    #[default]
    Own,
    /// A second opinion asked for by the origin's owner
    /// ([`crate::confirm`]).
    Confirm,
}

/// The `User-Agent` of a second opinion: `ua` with `; second opinion` in
/// its last parenthesis (`agent/1 (hc-2)` → `agent/1 (hc-2; second
/// opinion)`), or appended as one.
pub fn second_opinion(ua: &str) -> String {
    match ua.strip_suffix(')') {
        Some(head) if head.contains('(') => format!("{head}; second opinion)"),
        _ => format!("{ua} (second opinion)"),
    }
}

/// What the clones of a [`Checker`] share.
#[derive(Debug)]
struct Inner {
    permits: Semaphore,
    max_concurrency: usize,
    max_idle_connections: usize,
    user_agent: HeaderValue,
    /// The `User-Agent` of a second opinion's checks.
    confirm_user_agent: HeaderValue,
    targets: Arc<TargetPolicy>,
    /// Names pinned to judged addresses by the HTTPS checks in flight: the
    /// resolver of `clients`.
    pins: Arc<PinTable>,
    clients: Clients,
    admission: Mutex<Admission>,
    tls_dir: TlsDir,
    /// Compiled body matchers by (`expect_body`, `expect_body_regex`).
    matchers: Mutex<HashMap<MatcherKey, Arc<BodyMatcher>>>,
}

/// Runs health checks. Cheap to clone (the clones share their connection
/// pools and their concurrency limit); `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Checker {
    inner: Arc<Inner>,
}

impl Checker {
    /// A checker with these settings; it opens no connection until
    /// [`check`](Checker::check). Needs no runtime.
    pub fn new(config: CheckerConfig) -> Result<Checker, CheckerError> {
        if !(1..=Semaphore::MAX_PERMITS).contains(&config.max_concurrency) {
            return Err(CheckerError::InvalidConcurrency(config.max_concurrency));
        }
        let user_agent = HeaderValue::from_str(&config.user_agent)
            .map_err(|_| CheckerError::InvalidUserAgent(config.user_agent.clone()))?;
        let confirm_user_agent = HeaderValue::from_str(&second_opinion(&config.user_agent))
            .map_err(|_| CheckerError::InvalidUserAgent(config.user_agent.clone()))?;
        let pins = Arc::new(PinTable::new(Arc::clone(&config.targets)));
        let clients = Clients::new(&pins).map_err(CheckerError::Client)?;
        Ok(Checker {
            inner: Arc::new(Inner {
                permits: Semaphore::new(config.max_concurrency),
                max_concurrency: config.max_concurrency,
                max_idle_connections: config.max_idle_connections,
                user_agent,
                confirm_user_agent,
                targets: config.targets,
                pins,
                clients,
                admission: Mutex::new(Admission::new(config.max_idle_connections)),
                tls_dir: config.tls_dir,
                matchers: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Checks `spec` once.
    ///
    /// First waits for one of the `max_concurrency` turns (that wait is
    /// unbounded and does not count toward the timeout), then starts the
    /// clock: the whole check — resolving the address, connect, TLS,
    /// headers, body — is given `spec.timeout_ms`, after which it is
    /// abandoned with reason `timeout`. A target denied by the
    /// [`TargetPolicy`] fails with `denied: …` without a connection. Never
    /// panics; a spec that cannot be sent (invalid method or header) fails
    /// with `io: …`. Cancel-safe: dropping the future gives the turn back.
    pub async fn check(&self, spec: &OriginSpec) -> CheckOutcome {
        self.check_for(spec, Purpose::Own).await
    }

    /// Checks `spec` once, as [`check`](Checker::check), for `purpose`: a
    /// second opinion's HTTP request says so in its `User-Agent` (`(name;
    /// second opinion)`), so that origin logs and tests tell it apart.
    pub async fn check_for(&self, spec: &OriginSpec, purpose: Purpose) -> CheckOutcome {
        let Ok(_permit) = self.inner.permits.acquire().await else {
            // The semaphore is never closed.
            return CheckOutcome::failed(None, None, Failure::Io("checker closed".into()));
        };
        let started = Instant::now();
        let deadline = started + Duration::from_millis(spec.timeout_ms);
        match spec.kind {
            Kind::Tcp => self.check_tcp(spec, started, deadline).await,
            Kind::Http | Kind::Https => self.check_http(spec, purpose, started, deadline).await,
        }
    }

    /// The directory TLS files of specs are read from (what a `PUT`
    /// checks them against).
    pub fn tls_dir(&self) -> &TlsDir {
        &self.inner.tls_dir
    }

    /// The compiled body matchers of `spec` (`None`: it has none), cached:
    /// at most [`MAX_MATCHERS`] distinct ones are kept.
    fn body_matcher(&self, spec: &OriginSpec) -> Result<Option<Arc<BodyMatcher>>, Failure> {
        if spec.expect_body.is_none() && spec.expect_body_regex.is_none() {
            return Ok(None);
        }
        let key = (spec.expect_body.clone(), spec.expect_body_regex.clone());
        let mut cache = self
            .inner
            .matchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(m) = cache.get(&key) {
            return Ok(Some(Arc::clone(m)));
        }
        let Some(matcher) = BodyMatcher::of(spec).map_err(|m| Failure::Io(short(&m)))? else {
            return Ok(None);
        };
        if cache.len() >= MAX_MATCHERS {
            cache.clear();
        }
        let matcher = Arc::new(matcher);
        cache.insert(key, Arc::clone(&matcher));
        Ok(Some(matcher))
    }

    /// How many checks are running now (holding one of the
    /// `max_concurrency` turns); checks waiting for a turn are not counted.
    pub fn in_flight(&self) -> usize {
        self.inner.max_concurrency - self.inner.permits.available_permits()
    }

    /// The most sockets the checks hold: `max_concurrency` (one per check
    /// in flight) + `max_idle_connections` (one per connection kept alive
    /// between checks). What the agent reserves of its descriptor limit
    /// for the checks; see the [module doc](self) for what it leaves out.
    pub fn descriptor_budget(&self) -> usize {
        self.inner
            .max_concurrency
            .saturating_add(self.inner.max_idle_connections)
    }

    /// The addresses of `spec.address`, resolved before `deadline`, every
    /// one allowed by the policy.
    async fn resolve(
        &self,
        spec: &OriginSpec,
        deadline: Instant,
    ) -> Result<Vec<SocketAddr>, Failure> {
        let denied = |d: crate::targets::Denied| Failure::Denied(short(&d.to_string()));
        if let Ok(addr) = spec.address.parse::<SocketAddr>() {
            self.inner.targets.check(&[addr]).map_err(denied)?;
            return Ok(vec![addr]);
        }
        let addrs: Vec<SocketAddr> =
            match timeout_at(deadline, lookup_host(spec.address.as_str())).await {
                Err(_elapsed) => return Err(Failure::Timeout),
                Ok(Err(e)) => return Err(Failure::classify(&e, true)),
                Ok(Ok(addrs)) => addrs.collect(),
            };
        if addrs.is_empty() {
            return Err(Failure::Connect(short(&format!(
                "{} resolves to no address",
                spec.address
            ))));
        }
        self.inner
            .targets
            .check_resolved(&spec.address, &addrs)
            .map_err(denied)?;
        Ok(addrs)
    }

    /// A TCP check: resolve, judge, connect to the addresses in order
    /// before the deadline (the first that accepts wins), then close.
    async fn check_tcp(
        &self,
        spec: &OriginSpec,
        started: Instant,
        deadline: Instant,
    ) -> CheckOutcome {
        let addrs = match self.resolve(spec, deadline).await {
            Ok(addrs) => addrs,
            Err(failure) => return CheckOutcome::failed(None, None, failure),
        };
        let mut last = None;
        for addr in addrs {
            match timeout_at(deadline, TcpStream::connect(addr)).await {
                Err(_elapsed) => return CheckOutcome::failed(None, None, Failure::Timeout),
                Ok(Err(e)) => last = Some(Failure::classify(&e, true)),
                Ok(Ok(stream)) => {
                    let latency = started.elapsed();
                    drop(stream);
                    return CheckOutcome::success(latency, None);
                }
            }
        }
        let failure = last.unwrap_or_else(|| Failure::Connect("no address".into()));
        CheckOutcome::failed(None, None, failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_opinion_says_so_in_the_user_agent() {
        assert_eq!(
            second_opinion("vantage-healthcheck/0.1.0 (hc-2)"),
            "vantage-healthcheck/0.1.0 (hc-2; second opinion)"
        );
        assert_eq!(second_opinion("probe/1"), "probe/1 (second opinion)");
    }

    #[test]
    fn the_descriptor_budget_is_checks_plus_idle_connections() {
        let checker = Checker::new(CheckerConfig {
            max_concurrency: 8,
            max_idle_connections: 0,
            ..CheckerConfig::default()
        })
        .expect("valid");
        assert_eq!(checker.descriptor_budget(), 8);
        let default = Checker::new(CheckerConfig::default()).expect("valid");
        assert_eq!(
            default.descriptor_budget(),
            64 + DEFAULT_MAX_IDLE_CONNECTIONS
        );
    }

    #[tokio::test]
    async fn a_denied_target_fails_without_a_connection() {
        let checker = Checker::new(CheckerConfig::default()).expect("valid");
        for kind in [Kind::Http, Kind::Https, Kind::Tcp] {
            let mut metadata = OriginSpec::new("169.254.169.254:80");
            metadata.kind = kind;
            // Were it contacted, this would time out instead.
            metadata.timeout_ms = 50;
            let outcome = checker.check(&metadata).await;
            assert_eq!(
                outcome.reason.as_deref(),
                Some(
                    "denied: 169.254.169.254:80 is in 169.254.0.0/16 (link-local, denied by default)"
                ),
                "{kind}"
            );
            assert_eq!((outcome.ok, outcome.latency), (false, None));
        }
    }

    #[test]
    fn configs_are_validated() {
        let zero = CheckerConfig {
            max_concurrency: 0,
            ..CheckerConfig::default()
        };
        assert!(matches!(
            Checker::new(zero),
            Err(CheckerError::InvalidConcurrency(0))
        ));
        let huge = CheckerConfig {
            max_concurrency: usize::MAX,
            ..CheckerConfig::default()
        };
        assert!(matches!(
            Checker::new(huge),
            Err(CheckerError::InvalidConcurrency(usize::MAX))
        ));
        let bad_agent = CheckerConfig {
            user_agent: "a\nb".into(),
            ..CheckerConfig::default()
        };
        assert!(matches!(
            Checker::new(bad_agent),
            Err(CheckerError::InvalidUserAgent(_))
        ));
        let checker = Checker::new(CheckerConfig::default()).expect("valid");
        assert_eq!(checker.in_flight(), 0);
    }

    #[tokio::test]
    async fn an_unsendable_spec_fails_without_a_connection() {
        let checker = Checker::new(CheckerConfig::default()).expect("valid");
        // Port 9 (discard) is never contacted: the method is rejected first.
        let mut bad = OriginSpec::new("127.0.0.1:9");
        bad.method = "GE T".into();
        let outcome = checker.check(&bad).await;
        assert!(!outcome.ok);
        assert_eq!(outcome.latency, None);
        assert!(
            outcome
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("io: invalid method")),
            "{outcome:?}"
        );
        assert_eq!(checker.in_flight(), 0);
    }

    #[test]
    fn checkers_are_shareable() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Checker>();
    }
}
