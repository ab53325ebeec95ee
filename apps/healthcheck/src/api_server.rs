//! Serving the API: connections under a cap, with header-read and idle
//! timeouts, so that a flood of connections can neither starve the API nor
//! take the descriptors the checks need.
//!
//! - **A cap** ([`ApiLimits::max_connections`]): at most that many API
//!   connections are open at once. A connection arriving at the cap evicts
//!   the connection that has been idle longest (no request in progress: it
//!   is between requests, still sending its request head, or still in its
//!   TLS handshake), as nginx does with its keep-alive connections when it
//!   runs out; if every connection is busy, the new one waits (up to
//!   [`FULL_WAIT`]) for one to finish, then is closed.
//! - **Header-read timeout** ([`ApiLimits::header_timeout`]): a request
//!   head must arrive whole within it (slowloris).
//! - **Idle timeout** ([`ApiLimits::idle_timeout`]): a connection without a
//!   request in progress for that long is closed.
//! - An accept error (out of descriptors) is logged at most every
//!   [`ACCEPT_ERROR_LOG_EVERY`] and backed off, never spun on.
//!
//! [`ConnectionTable`] is the decision core (no I/O, time passed in); the
//! rest of the module drives it with hyper's HTTP/1 server.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Body};
use http_body_util::BodyExt;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::Notify,
    time::Instant,
};
use tokio_rustls::TlsAcceptor;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

/// How long a connection arriving while every connection is busy waits for
/// one to finish before it is closed.
pub const FULL_WAIT: Duration = Duration::from_secs(1);

/// The shortest time between two log lines about failing accepts.
pub const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// How long a stopping server waits for requests in progress.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long a client may take over its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `[api]` limits of the agent's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// Most API connections open at once (1–65536; default: 512, or less
    /// when the descriptor limit is low, see [`crate::descriptors`]).
    pub max_connections: usize,
    /// Time allowed for a whole request head, from the connection's start
    /// or the end of the previous response (default 10 s).
    pub header_timeout: Duration,
    /// A connection without a request in progress for this long is closed
    /// (default 60 s).
    pub idle_timeout: Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// One connection's state in the [`ConnectionTable`].
#[derive(Debug)]
struct Entry<T> {
    /// Requests in progress (a response not yet written whole).
    busy: u32,
    /// Since when it has had no request in progress.
    idle_since: Instant,
    /// The caller's handle on it (what is handed back on eviction).
    handle: T,
}

/// What [`ConnectionTable::admit`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission<T> {
    /// Under the cap: open it.
    Open(u64),
    /// At the cap: open it, and close this idle one (its handle).
    OpenEvicting(u64, T),
    /// Every connection is busy: it cannot be opened now.
    Full,
}

/// Counters of a [`ConnectionTable`] (a copy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Connections open now.
    pub open: usize,
    /// Connections opened since start.
    pub opened: u64,
    /// Idle connections closed to make room for a new one.
    pub evicted: u64,
    /// Connections closed for being idle past the idle timeout.
    pub idle_closed: u64,
    /// Connections closed because every connection was busy.
    pub refused: u64,
}

/// The open API connections, and who goes when a new one arrives at the
/// cap. No I/O: the driver tells it what happens (`admit`, `busy`, `idle`,
/// `close`) and acts on its answers.
#[derive(Debug)]
pub struct ConnectionTable<T> {
    cap: usize,
    next_id: u64,
    entries: HashMap<u64, Entry<T>>,
    stats: ConnectionStats,
}

impl<T> ConnectionTable<T> {
    /// A table admitting at most `cap` connections (at least 1).
    pub fn new(cap: usize) -> Self {
        ConnectionTable {
            cap: cap.max(1),
            next_id: 0,
            entries: HashMap::new(),
            stats: ConnectionStats::default(),
        }
    }

    /// A connection arrives at `now` with this handle: open it (it starts
    /// idle), evicting the longest-idle connection at the cap; or
    /// [`Admission::Full`] (the handle is dropped) when every open
    /// connection has a request in progress.
    pub fn admit(&mut self, now: Instant, handle: T) -> Admission<T> {
        let mut victim = None;
        if self.entries.len() >= self.cap {
            let oldest = self
                .entries
                .iter()
                .filter(|(_, e)| e.busy == 0)
                .min_by_key(|(id, e)| (e.idle_since, **id))
                .map(|(id, _)| *id);
            let Some(oldest) = oldest else {
                return Admission::Full;
            };
            victim = self.entries.remove(&oldest).map(|e| e.handle);
            self.stats.evicted += 1;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(
            id,
            Entry {
                busy: 0,
                idle_since: now,
                handle,
            },
        );
        self.stats.opened += 1;
        match victim {
            Some(v) => Admission::OpenEvicting(id, v),
            None => Admission::Open(id),
        }
    }

    /// Counts a connection that could not be admitted and was closed.
    pub fn refused(&mut self) {
        self.stats.refused += 1;
    }

    /// A request starts on connection `id`.
    pub fn busy(&mut self, id: u64) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.busy += 1;
        }
    }

    /// A request on connection `id` ended (its response written or
    /// abandoned) at `now`.
    pub fn idle(&mut self, id: u64, now: Instant) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.busy = e.busy.saturating_sub(1);
            if e.busy == 0 {
                e.idle_since = now;
            }
        }
    }

    /// When connection `id`, idle, passes `timeout`: `Some(at)`; `None` if
    /// it is busy or not in the table (evicted or closed).
    pub fn idle_deadline(&self, id: u64, timeout: Duration) -> Option<Instant> {
        let e = self.entries.get(&id)?;
        (e.busy == 0).then(|| e.idle_since + timeout)
    }

    /// Whether connection `id` is still in the table.
    pub fn contains(&self, id: u64) -> bool {
        self.entries.contains_key(&id)
    }

    /// Connection `id` closed (`idle_timeout`: for being idle too long).
    pub fn close(&mut self, id: u64, idle_timeout: bool) {
        if self.entries.remove(&id).is_some() && idle_timeout {
            self.stats.idle_closed += 1;
        }
    }

    /// The counters.
    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            open: self.entries.len(),
            ..self.stats
        }
    }
}

/// What every connection task shares.
struct Context {
    router: Router,
    limits: ApiLimits,
    table: Arc<Table>,
    /// Signalled when a connection closes or goes idle (room may exist).
    room: Notify,
    shutdown: CancellationToken,
}

type Table = Mutex<ConnectionTable<CancellationToken>>;

fn lock(table: &Table) -> std::sync::MutexGuard<'_, ConnectionTable<CancellationToken>> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Context {
    fn table(&self) -> std::sync::MutexGuard<'_, ConnectionTable<CancellationToken>> {
        lock(&self.table)
    }
}

/// A server's connection counters, readable while it runs. It holds the
/// connection table only (not the router, which may hold its owner).
#[derive(Clone)]
pub struct ServerStats(Arc<Table>);

impl ServerStats {
    /// The counters now.
    pub fn get(&self) -> ConnectionStats {
        lock(&self.0).stats()
    }
}

/// Marks a request in progress on a connection until dropped.
struct Busy {
    ctx: Arc<Context>,
    id: u64,
}

impl Busy {
    fn new(ctx: Arc<Context>, id: u64) -> Self {
        ctx.table().busy(id);
        Busy { ctx, id }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.ctx.table().idle(self.id, Instant::now());
        self.ctx.room.notify_one();
    }
}

/// The API server on `listener`: each connection (over TLS with `tls`)
/// served by `router` under `limits`, until `shutdown`; then requests in
/// progress get [`SHUTDOWN_GRACE`].
pub struct ApiServer {
    ctx: Arc<Context>,
}

impl ApiServer {
    /// A server for `router` under `limits`.
    pub fn new(router: Router, limits: ApiLimits, shutdown: CancellationToken) -> Self {
        ApiServer {
            ctx: Arc::new(Context {
                router,
                limits,
                table: Arc::new(Mutex::new(ConnectionTable::new(limits.max_connections))),
                room: Notify::new(),
                shutdown,
            }),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> ServerStats {
        ServerStats(self.ctx.table.clone())
    }

    /// Accepts and serves connections until shutdown.
    pub async fn run(self, listener: TcpListener, tls: Option<TlsAcceptor>) {
        let ctx = self.ctx;
        let tasks = TaskTracker::new();
        // Cancels every connection, after the grace at shutdown.
        let hard_stop = CancellationToken::new();
        let accept_errors = AtomicU64::new(0);
        let mut last_log: Option<Instant> = None;
        loop {
            let (stream, peer) = tokio::select! {
                () = ctx.shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors (EMFILE/ENFILE) or a connection
                        // reset before accept: back off, log rarely.
                        let n = accept_errors.fetch_add(1, Ordering::Relaxed) + 1;
                        let now = Instant::now();
                        if last_log.is_none_or(|t| now - t >= ACCEPT_ERROR_LOG_EVERY) {
                            tracing::warn!(error = %e, errors_so_far = n, "api accept failed");
                            last_log = Some(now);
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let evicted = hard_stop.child_token();
            let Some(id) = admit(&ctx, &evicted).await else {
                tracing::debug!(%peer, "every api connection is busy: closing");
                continue;
            };
            let ctx = ctx.clone();
            let tls = tls.clone();
            tasks.spawn(async move {
                match tls {
                    None => connection(&ctx, id, evicted, stream).await,
                    Some(acceptor) => {
                        let handshake = tokio::select! {
                            () = evicted.cancelled() => None,
                            done = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => Some(done),
                        };
                        match handshake {
                            Some(Ok(Ok(tls))) => connection(&ctx, id, evicted, tls).await,
                            Some(Ok(Err(e))) => {
                                tracing::debug!(%peer, error = %e, "api TLS handshake failed");
                            }
                            Some(Err(_)) => tracing::debug!(%peer, "api TLS handshake timed out"),
                            None => {}
                        }
                    }
                }
                ctx.table().close(id, false);
                ctx.room.notify_one();
            });
        }
        tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
            .await
            .is_err()
        {
            tracing::debug!("api requests still in progress at shutdown: dropped");
            hard_stop.cancel();
            tasks.wait().await;
        }
    }
}

/// Admits a new connection: its id, or `None` (counted as refused) if every
/// connection stayed busy for [`FULL_WAIT`].
async fn admit(ctx: &Context, handle: &CancellationToken) -> Option<u64> {
    let deadline = Instant::now() + FULL_WAIT;
    loop {
        // Registered before trying, so a connection going idle meanwhile is
        // not missed.
        let room = ctx.room.notified();
        let decision = ctx.table().admit(Instant::now(), handle.clone());
        match decision {
            Admission::Open(id) => return Some(id),
            Admission::OpenEvicting(id, victim) => {
                victim.cancel();
                return Some(id);
            }
            Admission::Full => {
                if tokio::time::timeout_at(deadline, room).await.is_err() {
                    ctx.table().refused();
                    return None;
                }
            }
        }
    }
}

/// Serves HTTP/1 on one connection until it ends, is evicted, idles past
/// the idle timeout, or the server stops (gracefully).
async fn connection<S>(ctx: &Arc<Context>, id: u64, evicted: CancellationToken, io: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let ctx = ctx.clone();
        service_fn(move |request: hyper::Request<Incoming>| {
            let busy = Busy::new(ctx.clone(), id);
            let router = ctx.router.clone();
            async move {
                let response = match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                // The request stays in progress until its body is written.
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _ = &busy;
                        frame
                    }))
                }))
            }
        })
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(ctx.limits.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let idle_timeout = ctx.limits.idle_timeout;
    let mut check_at = Instant::now() + idle_timeout;
    let mut stopping = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "api connection ended");
                }
                return;
            }
            () = evicted.cancelled() => return,
            () = ctx.shutdown.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(check_at) => {
                let now = Instant::now();
                let deadline = ctx.table().idle_deadline(id, idle_timeout);
                match deadline {
                    Some(at) if at <= now => {
                        ctx.table().close(id, true);
                        return;
                    }
                    Some(at) => check_at = at,
                    None => check_at = now + idle_timeout,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        // A fixed origin: tests never read the clock for decisions.
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *ORIGIN.get_or_init(Instant::now) + Duration::from_millis(ms)
    }

    #[test]
    fn under_the_cap_connections_open() {
        let mut t = ConnectionTable::new(2);
        assert_eq!(t.admit(at(0), "a"), Admission::Open(0));
        assert_eq!(t.admit(at(1), "b"), Admission::Open(1));
        assert_eq!(t.stats().open, 2);
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_is_evicted() {
        let mut t = ConnectionTable::new(2);
        let Admission::Open(a) = t.admit(at(0), "a") else {
            panic!("open")
        };
        let Admission::Open(b) = t.admit(at(1), "b") else {
            panic!("open")
        };
        // a serves a request that ends after b went idle: b is the oldest.
        t.busy(a);
        t.idle(a, at(5));
        assert_eq!(t.admit(at(6), "c"), Admission::OpenEvicting(2, "b"));
        assert!(!t.contains(b) && t.contains(a));
        assert_eq!(t.stats().evicted, 1);
    }

    #[test]
    fn busy_connections_are_never_evicted() {
        let mut t = ConnectionTable::new(2);
        let Admission::Open(a) = t.admit(at(0), "a") else {
            panic!("open")
        };
        let Admission::Open(b) = t.admit(at(1), "b") else {
            panic!("open")
        };
        t.busy(a);
        t.busy(b);
        assert_eq!(t.admit(at(2), "c"), Admission::Full);
        t.refused();
        assert_eq!(t.stats().refused, 1);
        // One finishes: room again, by evicting it (it is now idle).
        t.idle(b, at(3));
        assert_eq!(t.admit(at(4), "d"), Admission::OpenEvicting(2, "b"));
        assert!(t.contains(a));
    }

    #[test]
    fn idle_deadlines_follow_requests() {
        let mut t = ConnectionTable::new(4);
        let Admission::Open(a) = t.admit(at(0), ()) else {
            panic!("open")
        };
        let timeout = Duration::from_millis(100);
        assert_eq!(t.idle_deadline(a, timeout), Some(at(100)));
        t.busy(a);
        assert_eq!(t.idle_deadline(a, timeout), None);
        t.busy(a);
        t.idle(a, at(50));
        assert_eq!(t.idle_deadline(a, timeout), None, "one request still runs");
        t.idle(a, at(70));
        assert_eq!(t.idle_deadline(a, timeout), Some(at(170)));
        t.close(a, true);
        assert_eq!(t.idle_deadline(a, timeout), None);
        assert_eq!(t.stats().idle_closed, 1);
        assert_eq!(t.stats().open, 0);
    }
}
