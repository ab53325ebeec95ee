//! [`FakeOrigin`]: a local HTTP or HTTPS origin on `127.0.0.1` whose health
//! is scripted ([`Behaviour`]), for tests and for the `demo` command.
//!
//! It counts what a health checker does to it — requests by `User-Agent`,
//! TCP connections (to show keep-alive reuse), the most requests handled at
//! once (to show bounded concurrency) — and remembers the last request (to
//! show that method, path, `Host` and headers arrive).
//!
//! Built on hyper's HTTP/1 connection driver with a hand-written accept loop
//! rather than `axum::serve`, because the fake must count connections, close
//! its listener to refuse connections ([`Behaviour::Down`]) and re-open it on
//! the same port, and record the TLS server name of each connection. The
//! accept loop is one task that owns the listener and takes commands from
//! [`FakeOrigin::set_behaviour`]; each connection is a task of its own.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    io,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode, body::Incoming, header, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpSocket, TcpStream},
    sync::{mpsc, oneshot},
    task::{JoinHandle, JoinSet},
    time::Instant,
};
use tokio_rustls::{TlsAcceptor, rustls};
use tokio_util::sync::CancellationToken;

/// Pending connections a listener queues.
const BACKLOG: u32 = 1024;

/// Pause after a failed `accept`.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// How a [`FakeOrigin`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `200 OK` at once.
    Healthy,
    /// `503 Service Unavailable` at once.
    Failing,
    /// No listener: connections are refused, and open ones are closed.
    Down,
    /// Healthy for `period`, then failing (503) for `period`, and so on,
    /// counted from when the behaviour was set. A zero period is healthy.
    Flapping {
        /// Length of each healthy or failing phase.
        period: Duration,
    },
    /// `200 OK` after `delay`.
    Slow {
        /// How long each request waits before its answer.
        delay: Duration,
    },
}

impl Behaviour {
    /// The status answered `elapsed` after this behaviour was set, or `None`
    /// for [`Behaviour::Down`] (no answer). Pure: [`Behaviour::Slow`] is 200
    /// (its delay is not modelled here).
    pub fn status_at(self, elapsed: Duration) -> Option<u16> {
        match self {
            Behaviour::Healthy | Behaviour::Slow { .. } => Some(200),
            Behaviour::Failing => Some(503),
            Behaviour::Down => None,
            Behaviour::Flapping { period } => {
                let phase = elapsed
                    .as_nanos()
                    .checked_div(period.as_nanos())
                    .unwrap_or(0);
                Some(if phase % 2 == 0 { 200 } else { 503 })
            }
        }
    }
}

/// A request as the origin saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// Path and query, e.g. `/health?deep=1`.
    pub path: String,
    /// The `Host` header, if any.
    pub host: Option<String>,
    /// Every header, names lower-case; repeated headers joined by `, `.
    pub headers: BTreeMap<String, String>,
    /// The TLS server name (SNI) the client sent; `None` over plain HTTP or
    /// when the client sent none (it connected by IP address).
    pub sni: Option<String>,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// The request body (at most [`MAX_SEEN_BODY`] bytes of it).
    pub body: Vec<u8>,
}

/// Most bytes of a request body kept in [`SeenRequest::body`].
pub const MAX_SEEN_BODY: usize = 64 * 1024;

/// What a healthy answer holds, when set with [`FakeOrigin::set_answer`]
/// (default: the body `ok\n`, `Content-Type: text/plain`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    /// The body.
    pub body: String,
    /// Headers, in order (a name may repeat).
    pub headers: Vec<(String, String)>,
}

/// The state shared by the handle, the accept loop and the connections.
#[derive(Debug)]
struct Shared {
    /// The behaviour and when it was set.
    script: Mutex<(Behaviour, Instant)>,
    hits: AtomicU64,
    connections: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    hits_by: Mutex<BTreeMap<String, u64>>,
    last_request: Mutex<Option<SeenRequest>>,
    answer: Mutex<Option<Answer>>,
    /// Requests whose `User-Agent` names one of these agents (`(name)`) get
    /// a 503, whatever the behaviour: a bad vantage point.
    failing_for: Mutex<Vec<String>>,
}

/// Locks a mutex whose data stays consistent even if a holder panicked
/// (every critical section here is a single assignment or increment).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn new(behaviour: Behaviour) -> Self {
        Shared {
            script: Mutex::new((behaviour, Instant::now())),
            hits: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            hits_by: Mutex::new(BTreeMap::new()),
            last_request: Mutex::new(None),
            answer: Mutex::new(None),
            failing_for: Mutex::new(Vec::new()),
        }
    }

    fn behaviour(&self) -> (Behaviour, Duration) {
        let (behaviour, since) = *lock(&self.script);
        (behaviour, since.elapsed())
    }
}

/// Decrements the in-flight count when a request is answered or dropped.
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(&shared.in_flight)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A command to the accept loop, acknowledged once carried out.
#[derive(Debug)]
struct SetBehaviour(Behaviour, oneshot::Sender<()>);

/// A local HTTP(S) origin with a scripted [`Behaviour`]. Stop it with
/// [`shutdown`](FakeOrigin::shutdown); dropping it also stops it, without
/// waiting.
#[derive(Debug)]
pub struct FakeOrigin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    commands: mpsc::Sender<SetBehaviour>,
    stop: CancellationToken,
    driver: Option<JoinHandle<()>>,
}

impl FakeOrigin {
    /// Starts a plain HTTP origin on `127.0.0.1`, on a port chosen by the
    /// OS. It is listening when this returns (unless `behaviour` is
    /// [`Behaviour::Down`]: then the port is reserved but refuses
    /// connections). Must be called within a tokio runtime.
    pub async fn start(behaviour: Behaviour) -> io::Result<FakeOrigin> {
        Self::start_with(behaviour, None, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts a plain HTTP origin on `addr` (as [`start`](FakeOrigin::start)
    /// otherwise): a stand-in origin to point agents at while trying them
    /// out (`healthcheck origin`).
    ///
    /// # Errors
    /// `addr` cannot be bound.
    pub async fn start_at(addr: SocketAddr, behaviour: Behaviour) -> io::Result<FakeOrigin> {
        Self::start_with(behaviour, None, addr).await
    }

    /// Starts an HTTPS origin, as [`start`](FakeOrigin::start), with a fresh
    /// self-signed certificate for `localhost` (so a client must skip
    /// verification). HTTP/1.1 only.
    pub async fn start_tls(behaviour: Behaviour) -> io::Result<FakeOrigin> {
        Self::start_with(
            behaviour,
            Some(self_signed_acceptor()?),
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        )
        .await
    }

    /// Starts an HTTPS origin with this TLS configuration (its certificate,
    /// its client authentication, and its ALPN protocols: `h2` in them
    /// makes it serve HTTP/2 to a client that negotiates it).
    pub async fn start_tls_with(
        behaviour: Behaviour,
        config: rustls::ServerConfig,
    ) -> io::Result<FakeOrigin> {
        Self::start_with(
            behaviour,
            Some(TlsAcceptor::from(Arc::new(config))),
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        )
        .await
    }

    async fn start_with(
        behaviour: Behaviour,
        tls: Option<TlsAcceptor>,
        at: SocketAddr,
    ) -> io::Result<FakeOrigin> {
        let socket = bind_socket(at)?;
        let addr = socket.local_addr()?;
        let port = if behaviour == Behaviour::Down {
            Port::Reserved(socket)
        } else {
            Port::Listening(socket.listen(BACKLOG)?)
        };
        let shared = Arc::new(Shared::new(behaviour));
        let (commands, rx) = mpsc::channel(8);
        let stop = CancellationToken::new();
        let driver = Driver {
            addr,
            port,
            tls,
            shared: shared.clone(),
            stop: stop.clone(),
            tasks: JoinSet::new(),
        };
        let driver = tokio::spawn(driver.run(rx));
        Ok(FakeOrigin {
            addr,
            shared,
            commands,
            stop,
            driver: Some(driver),
        })
    }

    /// Where the origin listens (the same port for its whole life).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes the behaviour; done when this returns. Entering
    /// [`Behaviour::Down`] closes the listener and every open connection, so
    /// new connections are refused; leaving it listens on the same port again
    /// (the port stays reserved while down, so no one else can take it). If
    /// the port cannot be listened on again, a warning is logged and the
    /// origin stays unreachable.
    pub async fn set_behaviour(&self, b: Behaviour) {
        let (ack, done) = oneshot::channel();
        if self.commands.send(SetBehaviour(b, ack)).await.is_ok() {
            // An error means the origin stopped: nothing left to change.
            let _ = done.await;
        }
    }

    /// Requests answered since the start or the last
    /// [`reset_hits`](FakeOrigin::reset_hits).
    pub fn hits(&self) -> u64 {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// Requests answered, by `User-Agent` (`""` for none).
    pub fn hits_by(&self) -> BTreeMap<String, u64> {
        lock(&self.shared.hits_by).clone()
    }

    /// Sets the request counts ([`hits`](FakeOrigin::hits),
    /// [`hits_by`](FakeOrigin::hits_by)) to zero.
    pub fn reset_hits(&self) {
        let mut by = lock(&self.shared.hits_by);
        by.clear();
        self.shared.hits.store(0, Ordering::SeqCst);
    }

    /// TCP connections accepted since the start.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The most requests being handled at the same time since the start.
    pub fn max_in_flight(&self) -> u64 {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// What healthy answers hold from now on (`None`: the default, `ok\n`).
    pub fn set_answer(&self, answer: Option<Answer>) {
        *lock(&self.shared.answer) = answer;
    }

    /// From now on, answers 503 to the checks of the agents named in
    /// `agents` (by the `(name)` in their `User-Agent`), and as its
    /// behaviour says to everyone else: what a bad route from one vantage
    /// point looks like to that agent.
    pub fn fail_for(&self, agents: &[&str]) {
        *lock(&self.shared.failing_for) = agents.iter().map(|a| (*a).to_owned()).collect();
    }

    /// The last request received, if any.
    pub fn last_request(&self) -> Option<SeenRequest> {
        lock(&self.shared.last_request).clone()
    }

    /// Stops the origin: closes the listener and every connection (requests
    /// being handled get no answer) and waits until all its tasks ended.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(driver) = self.driver.take() {
            // A panic of the driver has nothing left to clean up.
            let _ = driver.await;
        }
    }
}

impl Drop for FakeOrigin {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A TLS acceptor with a new self-signed certificate for `localhost`.
fn self_signed_acceptor() -> io::Result<TlsAcceptor> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).map_err(io::Error::other)?;
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(io::Error::other)?
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key.into())
    .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A socket bound to `addr` that can share it with the origin's other
/// sockets, so the port can be reserved before the listener is closed.
fn bind_socket(addr: SocketAddr) -> io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// The origin's port: listening, or bound without listening (refusing
/// connections, but kept so the origin can listen on it again).
#[derive(Debug)]
enum Port {
    Listening(TcpListener),
    Reserved(TcpSocket),
    Lost,
}

/// The accept loop: owns the port and the connection tasks.
struct Driver {
    addr: SocketAddr,
    port: Port,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    stop: CancellationToken,
    /// The connections, one task each.
    tasks: JoinSet<()>,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<SetBehaviour>) {
        loop {
            let listener = match &self.port {
                Port::Listening(listener) => Some(listener),
                Port::Reserved(_) | Port::Lost => None,
            };
            tokio::select! {
                () = self.stop.cancelled() => break,
                command = commands.recv() => match command {
                    Some(SetBehaviour(behaviour, ack)) => {
                        self.set(behaviour).await;
                        let _ = ack.send(());
                    }
                    None => break,
                },
                accepted = accept(listener) => match accepted {
                    Ok(stream) => self.spawn(stream),
                    Err(e) => {
                        // Out of file descriptors, or a connection aborted
                        // while queued: pause rather than spin.
                        tracing::debug!(addr = %self.addr, "fake origin: accept failed: {e}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
        // Dropping the port closes it; aborting the tasks closes the
        // connections.
        self.port = Port::Lost;
        self.tasks.shutdown().await;
    }

    async fn set(&mut self, behaviour: Behaviour) {
        // Requests racing with the change see the new behaviour.
        *lock(&self.shared.script) = (behaviour, Instant::now());
        let port = std::mem::replace(&mut self.port, Port::Lost);
        self.port = match (port, behaviour) {
            (Port::Listening(listener), Behaviour::Down) => {
                // Reserve the port before closing the listener where the
                // OS allows it (SO_REUSEPORT), otherwise just after.
                let reserved = bind_socket(self.addr).or_else(|_| {
                    drop(listener);
                    bind_socket(self.addr)
                });
                // Close every connection, and wait until they are closed.
                std::mem::take(&mut self.tasks).shutdown().await;
                match reserved {
                    Ok(socket) => Port::Reserved(socket),
                    Err(e) => {
                        tracing::warn!(addr = %self.addr, "fake origin: cannot reserve the port: {e}");
                        Port::Lost
                    }
                }
            }
            (port @ (Port::Reserved(_) | Port::Lost), b) if b != Behaviour::Down => {
                let socket = match port {
                    Port::Reserved(socket) => Ok(socket),
                    _ => bind_socket(self.addr),
                };
                match socket.and_then(|s| s.listen(BACKLOG)) {
                    Ok(listener) => Port::Listening(listener),
                    Err(e) => {
                        tracing::warn!(addr = %self.addr, "fake origin: cannot listen again: {e}");
                        Port::Lost
                    }
                }
            }
            (port, _) => port,
        };
    }

    fn spawn(&mut self, stream: TcpStream) {
        self.shared.connections.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_nodelay(true);
        self.tasks
            .spawn(serve(stream, self.tls.clone(), self.shared.clone()));
    }
}

/// Accepts from the listener, or waits forever without one.
async fn accept(listener: Option<&TcpListener>) -> io::Result<TcpStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

/// Serves one connection until the client closes it.
async fn serve(stream: TcpStream, tls: Option<TlsAcceptor>, shared: Arc<Shared>) {
    match tls {
        None => serve_http(stream, None, shared).await,
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(stream) => {
                let sni = stream.get_ref().1.server_name().map(str::to_owned);
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                if h2 {
                    serve_h2(stream, sni, shared).await;
                } else {
                    serve_http(stream, sni, shared).await;
                }
            }
            Err(e) => tracing::debug!("fake origin: TLS handshake failed: {e}"),
        },
    }
}

async fn serve_http<S>(stream: S, sni: Option<String>, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| answer(request, sni.clone(), shared.clone()));
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!("fake origin: connection ended: {e}");
    }
}

async fn serve_h2<S>(stream: S, sni: Option<String>, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| answer(request, sni.clone(), shared.clone()));
    if let Err(e) = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!("fake origin: HTTP/2 connection ended: {e}");
    }
}

/// Records a request and answers it as the current behaviour says.
async fn answer(
    request: Request<Incoming>,
    sni: Option<String>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _in_flight = InFlight::enter(&shared);
    let mut seen = seen(&request, sni);
    let body = Limited::new(request.into_body(), MAX_SEEN_BODY)
        .collect()
        .await;
    seen.body = body.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    let agent = seen.headers.get("user-agent").cloned().unwrap_or_default();
    *lock(&shared.last_request) = Some(seen);

    let (behaviour, elapsed) = shared.behaviour();
    if let Behaviour::Slow { delay } = behaviour {
        tokio::time::sleep(delay).await;
    }
    // Down: the request raced with the listener closing.
    let code = behaviour.status_at(elapsed).unwrap_or(503);
    let blocked = lock(&shared.failing_for)
        .iter()
        .any(|name| agent.contains(&format!("({name})")));
    let code = if blocked { 503 } else { code };
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let custom = lock(&shared.answer).clone().filter(|_| status.is_success());
    let body = match &custom {
        Some(answer) => Bytes::from(answer.body.clone()),
        None if status.is_success() => Bytes::from_static(b"ok\n"),
        None => Bytes::from_static(b"failing\n"),
    };

    shared.hits.fetch_add(1, Ordering::SeqCst);
    *lock(&shared.hits_by).entry(agent).or_default() += 1;
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    match custom {
        Some(answer) => {
            for (name, value) in answer.headers {
                if let (Ok(name), Ok(value)) = (
                    header::HeaderName::from_bytes(name.as_bytes()),
                    header::HeaderValue::from_str(&value),
                ) {
                    response.headers_mut().append(name, value);
                }
            }
        }
        None => {
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain"),
            );
        }
    }
    Ok(response)
}

fn seen(request: &Request<Incoming>, sni: Option<String>) -> SeenRequest {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in request.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    SeenRequest {
        method: request.method().as_str().to_owned(),
        path: request.uri().path_and_query().map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        ),
        host: headers.get("host").cloned(),
        headers,
        sni,
        version: format!("{:?}", request.version()),
        body: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flapping_alternates_starting_healthy() {
        let b = Behaviour::Flapping {
            period: Duration::from_millis(100),
        };
        let at = |ms| b.status_at(Duration::from_millis(ms));
        assert_eq!(at(0), Some(200));
        assert_eq!(at(99), Some(200));
        assert_eq!(at(100), Some(503));
        assert_eq!(at(199), Some(503));
        assert_eq!(at(200), Some(200));
        let zero = Behaviour::Flapping {
            period: Duration::ZERO,
        };
        assert_eq!(zero.status_at(Duration::from_secs(5)), Some(200));
    }

    #[test]
    fn other_behaviours_have_fixed_answers() {
        let t = Duration::from_secs(1);
        assert_eq!(Behaviour::Healthy.status_at(t), Some(200));
        assert_eq!(Behaviour::Failing.status_at(t), Some(503));
        assert_eq!(Behaviour::Down.status_at(t), None);
        assert_eq!(Behaviour::Slow { delay: t }.status_at(t), Some(200));
    }

    #[tokio::test]
    async fn a_tls_certificate_can_be_made() {
        assert!(self_signed_acceptor().is_ok());
    }
}
