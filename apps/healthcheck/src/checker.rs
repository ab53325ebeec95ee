//! [`Checker`]: the network side of a health check — one HTTP, HTTPS or TCP
//! probe of an [`OriginSpec`], turned into a [`CheckOutcome`].
//!
//! This is the thin I/O edge of the agent: it decides nothing about `up` or
//! `down` (that is `rise`/`fall` bookkeeping elsewhere); it only reports what
//! one probe saw, with a `reason` from a fixed vocabulary ([`Failure`]).
//!
//! HTTP and HTTPS go through [`reqwest`] with keep-alive pools: one shared
//! client per `tls_verify` setting, so consecutive checks of an origin reuse
//! one connection. An HTTPS spec whose `host` differs from the address's host
//! is sent through a client pinned with [`reqwest::ClientBuilder::resolve`],
//! so the TLS server name (SNI and certificate name) is `host` while the
//! socket goes to `address`; those clients are kept in a small bounded cache.
//! TCP checks are a plain [`tokio::net::TcpStream`] connect.

use std::{
    collections::{HashMap, VecDeque},
    error::Error as StdError,
    fmt, io,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use reqwest::{
    Client, Method,
    header::{HOST, HeaderMap, HeaderName, HeaderValue, USER_AGENT},
};
use thiserror::Error;
use tokio::{
    net::TcpStream,
    sync::Semaphore,
    time::{Instant, timeout_at},
};

use crate::spec::{Kind, OriginSpec};

/// At most this much of a response body is read (and discarded); a longer
/// body ends the check without reading the rest, and its connection is not
/// reused.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// At most this many clients pinned to an address (HTTPS with a `host` that
/// is not the address's host) are kept; the oldest is dropped first.
pub const MAX_PINNED_CLIENTS: usize = 64;

/// Longest `detail` kept in a reason, in bytes.
const MAX_DETAIL: usize = 120;

/// How deep an error chain is walked when classifying it.
const MAX_CHAIN: usize = 16;

/// Settings of a [`Checker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerConfig {
    /// Most checks running at once (at least 1); more wait for a turn.
    pub max_concurrency: usize,
    /// `User-Agent` of every HTTP(S) check; it overrides a `User-Agent` in
    /// a spec's `headers`, so an origin can tell which agent checked it.
    pub user_agent: String,
}

impl Default for CheckerConfig {
    /// 64 concurrent checks, `User-Agent: vantage-healthcheck/<version>`.
    fn default() -> Self {
        CheckerConfig {
            max_concurrency: 64,
            user_agent: concat!("vantage-healthcheck/", env!("CARGO_PKG_VERSION")).into(),
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
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The origin answered as expected: a status in `expect_status`
    /// (HTTP/HTTPS), or an open connection (TCP).
    pub ok: bool,
    /// Time from the start of the check to the response headers (HTTP/HTTPS)
    /// or the open connection (TCP); `Some` whenever the origin answered,
    /// even with an unexpected status; `None` when it did not.
    pub latency: Option<Duration>,
    /// Why the check failed (`None` when `ok`): the [`Display`](fmt::Display)
    /// of a [`Failure`] — `timeout`, `refused`, `status 503`, `tls: …`,
    /// `connect: …` or `io: …`.
    pub reason: Option<String>,
    /// The HTTP status of the response, if there was one.
    pub status_code: Option<u16>,
}

impl CheckOutcome {
    fn failed(latency: Option<Duration>, status_code: Option<u16>, failure: Failure) -> Self {
        CheckOutcome {
            ok: false,
            latency,
            reason: Some(failure.to_string()),
            status_code,
        }
    }
}

/// Why a check failed. Its [`Display`](fmt::Display) is the `reason` of a
/// [`CheckOutcome`] and of a replicated
/// [`HealthRecord`](crate::record::HealthRecord).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `timeout`: no complete answer within `timeout_ms`.
    Timeout,
    /// `refused`: the connection was refused (nothing listens on the port).
    Refused,
    /// `status NNN`: a response whose status is not expected.
    Status(u16),
    /// `tls: <detail>`: the TLS handshake or the certificate failed.
    Tls(String),
    /// `connect: <detail>`: the connection failed otherwise (DNS, route,
    /// reset during connect).
    Connect(String),
    /// `io: <detail>`: anything else (connection lost mid-response, an
    /// invalid method or header in the spec).
    Io(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout => f.write_str("timeout"),
            Failure::Refused => f.write_str("refused"),
            Failure::Status(code) => write!(f, "status {code}"),
            Failure::Tls(detail) => write!(f, "tls: {detail}"),
            Failure::Connect(detail) => write!(f, "connect: {detail}"),
            Failure::Io(detail) => write!(f, "io: {detail}"),
        }
    }
}

impl Failure {
    /// Classifies an error of a check. `connecting` says the error happened
    /// while opening the connection (it makes an unrecognised error
    /// `connect: …` rather than `io: …`); a [`reqwest::Error`] anywhere in
    /// the chain that says it is a connect error does the same.
    ///
    /// The chain is walked through [`StdError::source`] and through the
    /// error wrapped in an [`io::Error`] (whose `source` skips it). In order:
    /// a timed-out error is [`Failure::Timeout`]; a [`rustls::Error`] is
    /// [`Failure::Tls`] with its message; a refused connection is
    /// [`Failure::Refused`]; a message that mentions a certificate, TLS or a
    /// handshake is [`Failure::Tls`] (the message of a [`reqwest::Error`]
    /// itself is not read: it quotes the URL); then connect or I/O with the
    /// message of the innermost error, shortened.
    pub fn classify(err: &(dyn StdError + 'static), connecting: bool) -> Failure {
        let mut tls: Option<String> = None;
        let mut refused = false;
        let mut timed_out = false;
        let mut connect = connecting;
        let mut mentions_tls = false;
        let mut root = err;
        for e in chain(err) {
            root = e;
            if let Some(r) = e.downcast_ref::<rustls::Error>() {
                tls.get_or_insert_with(|| r.to_string());
            }
            if let Some(io) = e.downcast_ref::<io::Error>() {
                match io.kind() {
                    io::ErrorKind::ConnectionRefused => refused = true,
                    io::ErrorKind::TimedOut => timed_out = true,
                    _ => {}
                }
            }
            if let Some(r) = e.downcast_ref::<reqwest::Error>() {
                connect |= r.is_connect();
                timed_out |= r.is_timeout();
                // Its message holds the URL, which may mention anything.
                continue;
            }
            let message = e.to_string().to_ascii_lowercase();
            mentions_tls |= ["certificate", "tls", "handshake"]
                .iter()
                .any(|w| message.contains(w));
        }
        let detail = || short(&root.to_string());
        if timed_out {
            Failure::Timeout
        } else if let Some(t) = tls {
            Failure::Tls(short(&t))
        } else if refused {
            Failure::Refused
        } else if mentions_tls {
            Failure::Tls(detail())
        } else if connect {
            Failure::Connect(detail())
        } else {
            Failure::Io(detail())
        }
    }
}

/// The errors of a chain, outermost first, looking inside [`io::Error`]s.
fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    let mut next = Some(err);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.downcast_ref::<io::Error>() {
            // io::Error::source() is the wrapped error's source: step into
            // the wrapped error itself so that it is seen too.
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn StdError + 'static)),
                None => current.source(),
            },
            None => current.source(),
        };
        Some(current)
    })
    .take(MAX_CHAIN)
}

/// Whether a connection was closed or reset before any answer came: what a
/// request sent on a stale pooled connection sees.
fn closed_before_answer(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(|e| {
        e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
            || e.downcast_ref::<io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                )
            })
    })
}

/// One line of at most [`MAX_DETAIL`] bytes.
fn short(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    if line.len() <= MAX_DETAIL {
        return line.to_owned();
    }
    let mut end = MAX_DETAIL;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// Where an HTTP(S) check goes: the URL, and the address to pin the URL's
/// host to (HTTPS with a `host` other than the address's host).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    url: String,
    pin: Option<Pin>,
}

/// A client's DNS override: `domain` resolves to `addr`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Pin {
    domain: String,
    addr: SocketAddr,
}

/// The URL and pinning of an HTTP(S) spec. Pure.
fn target(spec: &OriginSpec) -> Target {
    let scheme = if spec.kind == Kind::Https {
        "https"
    } else {
        "http"
    };
    let plain = Target {
        url: format!("{scheme}://{}{}", spec.address, spec.path),
        pin: None,
    };
    if spec.kind != Kind::Https {
        return plain;
    }
    let Some(domain) = spec.host.as_deref().and_then(host_domain) else {
        return plain;
    };
    if domain.eq_ignore_ascii_case(spec.address_host()) {
        return plain;
    }
    let Ok(addr) = spec.address.parse::<SocketAddr>() else {
        // A name in the address: connect by name (no pinning).
        return plain;
    };
    let domain = domain.to_ascii_lowercase();
    Target {
        url: format!("https://{domain}:{}{}", addr.port(), spec.path),
        pin: Some(Pin { domain, addr }),
    }
}

/// The DNS name of a `Host` value (a trailing `:port` removed), or `None`
/// if it is an IP literal (which cannot be a TLS server name).
fn host_domain(host: &str) -> Option<&str> {
    if host.starts_with('[') {
        return None;
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    if name.is_empty() || name.parse::<IpAddr>().is_ok() {
        None
    } else {
        Some(name)
    }
}

/// Clients pinned to an address, oldest first in `order`.
#[derive(Debug, Default)]
struct PinnedClients {
    clients: HashMap<(Pin, bool), Client>,
    order: VecDeque<(Pin, bool)>,
}

#[derive(Debug)]
struct Inner {
    permits: Semaphore,
    max_concurrency: usize,
    user_agent: HeaderValue,
    verified: Client,
    unverified: Client,
    pinned: Mutex<PinnedClients>,
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
        let verified = build_client(true, None).map_err(CheckerError::Client)?;
        let unverified = build_client(false, None).map_err(CheckerError::Client)?;
        Ok(Checker {
            inner: Arc::new(Inner {
                permits: Semaphore::new(config.max_concurrency),
                max_concurrency: config.max_concurrency,
                user_agent,
                verified,
                unverified,
                pinned: Mutex::new(PinnedClients::default()),
            }),
        })
    }

    /// Checks `spec` once.
    ///
    /// First waits for one of the `max_concurrency` turns (that wait is
    /// unbounded and does not count toward the timeout), then starts the
    /// clock: the whole check — connect, TLS, headers, body — is given
    /// `spec.timeout_ms`, after which it is abandoned with reason `timeout`.
    /// Never panics; a spec that cannot be sent (invalid method or header)
    /// fails with `io: …`. Cancel-safe: dropping the future gives the turn
    /// back.
    pub async fn check(&self, spec: &OriginSpec) -> CheckOutcome {
        let Ok(_permit) = self.inner.permits.acquire().await else {
            // The semaphore is never closed.
            return CheckOutcome::failed(None, None, Failure::Io("checker closed".into()));
        };
        let started = Instant::now();
        let deadline = started + Duration::from_millis(spec.timeout_ms);
        match spec.kind {
            Kind::Tcp => check_tcp(spec, started, deadline).await,
            Kind::Http | Kind::Https => self.check_http(spec, started, deadline).await,
        }
    }

    /// How many checks are running now (holding one of the
    /// `max_concurrency` turns); checks waiting for a turn are not counted.
    pub fn in_flight(&self) -> usize {
        self.inner.max_concurrency - self.inner.permits.available_permits()
    }

    async fn check_http(
        &self,
        spec: &OriginSpec,
        started: Instant,
        deadline: Instant,
    ) -> CheckOutcome {
        let target = target(spec);
        let client = match target.pin {
            // Plain HTTP uses one pool whatever `tls_verify` says.
            None if spec.tls_verify || spec.kind == Kind::Http => self.inner.verified.clone(),
            None => self.inner.unverified.clone(),
            Some(pin) => match self.pinned_client(pin, spec.tls_verify) {
                Ok(client) => client,
                Err(e) => return CheckOutcome::failed(None, None, Failure::classify(&e, false)),
            },
        };
        let request = match self.request(&client, spec, &target.url) {
            Ok(request) => request,
            Err(failure) => return CheckOutcome::failed(None, None, failure),
        };
        // An idle pooled connection that the origin has just closed fails a
        // request sent on it before any answer; an idempotent request is
        // then sent once more (on a new connection), as browsers and Go's
        // net/http do, so the origin's keep-alive timeout is not a failure.
        let retry = request
            .method()
            .is_idempotent()
            .then(|| request.try_clone())
            .flatten();
        let mut sent = timeout_at(deadline, client.execute(request)).await;
        if let (Ok(Err(e)), Some(retry)) = (&sent, retry)
            && closed_before_answer(e)
        {
            sent = timeout_at(deadline, client.execute(retry)).await;
        }
        let mut response = match sent {
            Err(_elapsed) => return CheckOutcome::failed(None, None, Failure::Timeout),
            Ok(Err(e)) => return CheckOutcome::failed(None, None, Failure::classify(&e, false)),
            Ok(Ok(response)) => response,
        };
        let latency = started.elapsed();
        let code = response.status().as_u16();
        let expected = spec.status_ranges().iter().any(|r| r.contains(code));
        // Read the body even after an unexpected status, so that the
        // connection goes back to the pool.
        let drained = timeout_at(deadline, async {
            let mut read = 0;
            while read < MAX_BODY_BYTES {
                match response.chunk().await? {
                    Some(chunk) => read += chunk.len(),
                    None => break,
                }
            }
            Ok::<(), reqwest::Error>(())
        })
        .await;
        let failure = if !expected {
            Some(Failure::Status(code))
        } else {
            match drained {
                Err(_elapsed) => Some(Failure::Timeout),
                Ok(Err(e)) => Some(Failure::classify(&e, false)),
                Ok(Ok(())) => None,
            }
        };
        CheckOutcome {
            ok: failure.is_none(),
            latency: Some(latency),
            reason: failure.map(|f| f.to_string()),
            status_code: Some(code),
        }
    }

    /// The request of an HTTP(S) spec: its method, URL, headers, then
    /// `User-Agent` and `Host` (which override the spec's headers).
    fn request(
        &self,
        client: &Client,
        spec: &OriginSpec,
        url: &str,
    ) -> Result<reqwest::Request, Failure> {
        let method = Method::from_bytes(spec.method.as_bytes())
            .map_err(|_| Failure::Io(short(&format!("invalid method {:?}", spec.method))))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &spec.headers {
            let invalid = || Failure::Io(short(&format!("invalid header {name:?}")));
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
            headers.insert(name, value);
        }
        headers.insert(USER_AGENT, self.inner.user_agent.clone());
        if let Some(host) = &spec.host {
            let value = HeaderValue::from_str(host)
                .map_err(|_| Failure::Io(short(&format!("invalid host {host:?}"))))?;
            headers.insert(HOST, value);
        }
        client
            .request(method, url)
            .headers(headers)
            .build()
            .map_err(|e| Failure::classify(&e, false))
    }

    /// The cached client pinned to `pin`, built on first use.
    fn pinned_client(&self, pin: Pin, tls_verify: bool) -> Result<Client, reqwest::Error> {
        let key = (pin, tls_verify);
        let lock = || {
            self.inner
                .pinned
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if let Some(client) = lock().clients.get(&key) {
            return Ok(client.clone());
        }
        // Built without the lock: it loads the root certificates.
        let client = build_client(tls_verify, Some(&key.0))?;
        let mut cache = lock();
        if let Some(existing) = cache.clients.get(&key) {
            return Ok(existing.clone());
        }
        while cache.order.len() >= MAX_PINNED_CLIENTS {
            if let Some(oldest) = cache.order.pop_front() {
                cache.clients.remove(&oldest);
            }
        }
        cache.order.push_back(key.clone());
        cache.clients.insert(key, client.clone());
        Ok(client)
    }
}

/// A keep-alive client: no proxy (checks go straight to the origin), no
/// redirects (a 3xx is a status to judge), optionally without certificate
/// verification, optionally with `pin.domain` resolving to `pin.addr`.
fn build_client(tls_verify: bool, pin: Option<&Pin>) -> Result<Client, reqwest::Error> {
    let mut builder = Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(!tls_verify)
        .tcp_nodelay(true);
    if let Some(pin) = pin {
        builder = builder.resolve(&pin.domain, pin.addr);
    }
    builder.build()
}

/// A TCP check: connect before the deadline, then close.
async fn check_tcp(spec: &OriginSpec, started: Instant, deadline: Instant) -> CheckOutcome {
    match timeout_at(deadline, TcpStream::connect(spec.address.as_str())).await {
        Err(_elapsed) => CheckOutcome::failed(None, None, Failure::Timeout),
        Ok(Err(e)) => CheckOutcome::failed(None, None, Failure::classify(&e, true)),
        Ok(Ok(stream)) => {
            let latency = started.elapsed();
            drop(stream);
            CheckOutcome {
                ok: true,
                latency: Some(latency),
                reason: None,
                status_code: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a message and a source, like the layers of reqwest.
    #[derive(Debug)]
    struct Layer(&'static str, Box<dyn StdError + Send + Sync>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Layer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.1)
        }
    }

    fn classify(e: impl StdError + 'static, connecting: bool) -> Failure {
        Failure::classify(&e, connecting)
    }

    #[test]
    fn reasons_render_in_the_documented_shapes() {
        assert_eq!(Failure::Timeout.to_string(), "timeout");
        assert_eq!(Failure::Refused.to_string(), "refused");
        assert_eq!(Failure::Status(503).to_string(), "status 503");
        assert_eq!(Failure::Tls("bad cert".into()).to_string(), "tls: bad cert");
        assert_eq!(Failure::Connect("dns".into()).to_string(), "connect: dns");
        assert_eq!(Failure::Io("reset".into()).to_string(), "io: reset");
    }

    #[test]
    fn a_refused_connection_is_found_under_layers() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let err = Layer(
            "client error (Connect)",
            Box::new(Layer("tcp connect error", Box::new(refused))),
        );
        assert_eq!(classify(err, false), Failure::Refused);
    }

    #[test]
    fn a_rustls_error_inside_an_io_error_is_tls() {
        // tokio-rustls reports handshake failures as io::Error(InvalidData,
        // rustls::Error); io::Error::source() skips the rustls error.
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = io::Error::new(io::ErrorKind::InvalidData, cert);
        let err = Layer("error sending request", Box::new(io));
        assert_eq!(
            classify(err, false),
            Failure::Tls("invalid peer certificate: UnknownIssuer".into())
        );
    }

    #[test]
    fn a_message_about_certificates_is_tls() {
        let err = Layer(
            "handshake",
            Box::new(io::Error::other("certificate expired")),
        );
        assert_eq!(
            classify(err, true),
            Failure::Tls("certificate expired".into())
        );
    }

    #[test]
    fn timeouts_win_over_everything() {
        let err = Layer(
            "tls handshake",
            Box::new(io::Error::from(io::ErrorKind::TimedOut)),
        );
        assert_eq!(classify(err, true), Failure::Timeout);
    }

    #[test]
    fn other_errors_are_connect_or_io_with_the_innermost_message() {
        let dns = || {
            Layer(
                "dns error",
                Box::new(io::Error::other("failed to lookup address")),
            )
        };
        assert_eq!(
            classify(dns(), true),
            Failure::Connect("failed to lookup address".into())
        );
        assert_eq!(
            classify(dns(), false),
            Failure::Io("failed to lookup address".into())
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(matches!(classify(reset, false), Failure::Io(_)));
    }

    #[test]
    fn stale_connections_are_recognised() {
        let reset = Layer(
            "client error",
            Box::new(io::Error::from(io::ErrorKind::ConnectionReset)),
        );
        assert!(closed_before_answer(&reset));
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(!closed_before_answer(&refused));
    }

    #[test]
    fn details_are_one_short_line() {
        assert_eq!(short("a\nb"), "a");
        let long = "é".repeat(100);
        let s = short(&long);
        assert!(s.len() <= MAX_DETAIL + "…".len(), "{}", s.len());
        assert!(s.ends_with('…'));
    }

    fn spec(kind: Kind, address: &str, host: Option<&str>) -> OriginSpec {
        let mut spec = OriginSpec::new(address);
        spec.kind = kind;
        spec.path = "/health?x=1".into();
        spec.host = host.map(str::to_owned);
        spec
    }

    #[test]
    fn urls_go_to_the_address() {
        assert_eq!(
            target(&spec(Kind::Http, "10.0.0.1:8080", Some("example.com"))),
            Target {
                url: "http://10.0.0.1:8080/health?x=1".into(),
                pin: None
            }
        );
        assert_eq!(
            target(&spec(Kind::Https, "[::1]:8443", None)).url,
            "https://[::1]:8443/health?x=1"
        );
    }

    #[test]
    fn https_with_a_host_is_pinned_to_the_address() {
        let t = target(&spec(
            Kind::Https,
            "10.0.0.1:8443",
            Some("Example.COM:8443"),
        ));
        assert_eq!(t.url, "https://example.com:8443/health?x=1");
        assert_eq!(
            t.pin,
            Some(Pin {
                domain: "example.com".into(),
                addr: "10.0.0.1:8443".parse().expect("addr"),
            })
        );
        // Nothing to pin: the host is the address's host, an IP, or the
        // address is a name.
        for (address, host) in [
            ("example.com:443", "example.com"),
            ("10.0.0.1:443", "10.0.0.2"),
            ("10.0.0.1:443", "[::1]:443"),
            ("origin.internal:443", "example.com"),
        ] {
            assert_eq!(
                target(&spec(Kind::Https, address, Some(host))).pin,
                None,
                "{host}"
            );
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
