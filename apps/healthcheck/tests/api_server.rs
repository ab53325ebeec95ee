//! The API server's connection handling with real sockets: the cap evicts
//! idle connections (never busy ones), and header-read and idle timeouts
//! close what says nothing.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, routing::get};
use healthcheck::api_server::{ApiLimits, ApiServer, ServerStats};
use testkit::wait::until;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_util::sync::CancellationToken;

/// How long any one step may take before the test fails (generous: shared
/// machines).
const PATIENCE: Duration = Duration::from_secs(10);

struct Server {
    addr: std::net::SocketAddr,
    stats: ServerStats,
    stop: CancellationToken,
    /// Permits a `/slow` request waits for.
    gate: Arc<Semaphore>,
    /// `/slow` requests that have started.
    slow_started: Arc<AtomicUsize>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn server(limits: ApiLimits) -> Server {
    let gate = Arc::new(Semaphore::new(0));
    let slow_started = Arc::new(AtomicUsize::new(0));
    let (g, s) = (gate.clone(), slow_started.clone());
    let router = Router::new().route("/", get(|| async { "ok" })).route(
        "/slow",
        get(move || {
            let (g, s) = (g.clone(), s.clone());
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                let _permit = g.acquire().await;
                "slow"
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let server = ApiServer::new(router, limits, stop.clone());
    let stats = server.stats();
    tokio::spawn(server.run(listener, None));
    Server {
        addr,
        stats,
        stop,
        gate,
        slow_started,
    }
}

fn limits(cap: usize) -> ApiLimits {
    ApiLimits {
        max_connections: cap,
        ..ApiLimits::default()
    }
}

/// One `GET path` on a new connection: the response's first line.
async fn get_once(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out).into_owned();
    Ok(text.lines().next().unwrap_or("").to_owned())
}

/// Waits until `stream` is closed by the server (EOF or reset).
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn more_idle_connections_than_the_cap_do_not_keep_a_request_out() {
    let s = server(limits(8)).await;
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(TcpStream::connect(s.addr).await.expect("connect"));
    }
    until("50 connections seen", PATIENCE, || {
        s.stats.get().opened >= 50
    })
    .await;
    let answer = tokio::time::timeout(Duration::from_secs(1), get_once(s.addr, "/"))
        .await
        .expect("answered within a second")
        .expect("answered");
    assert_eq!(answer, "HTTP/1.1 200 OK");
    let stats = s.stats.get();
    assert!(stats.open <= 8, "{stats:?}");
    assert!(stats.evicted >= 43, "{stats:?}");
    // The evicted ones were closed by the server, oldest first.
    assert!(closed(&mut idle[0]).await);
}

#[tokio::test]
async fn busy_connections_are_not_evicted() {
    let s = server(limits(2)).await;
    let slow = |addr| tokio::spawn(get_once(addr, "/slow"));
    let a = slow(s.addr);
    let b = slow(s.addr);
    until("two slow requests running", PATIENCE, || {
        s.slow_started.load(Ordering::SeqCst) == 2
    })
    .await;
    // A third connection finds both busy: it waits, then is closed.
    let third = get_once(s.addr, "/").await;
    assert!(
        third.as_deref().map_or(true, str::is_empty),
        "closed without an answer: {third:?}"
    );
    assert_eq!(s.stats.get().refused, 1);
    // The busy ones complete.
    s.gate.add_permits(2);
    for h in [a, b] {
        let line = h.await.expect("task").expect("answered");
        assert_eq!(line, "HTTP/1.1 200 OK");
    }
}

#[tokio::test]
async fn a_connection_that_waits_for_a_busy_one_gets_its_slot() {
    let s = server(limits(1)).await;
    let a = tokio::spawn(get_once(s.addr, "/slow"));
    until("slow request running", PATIENCE, || {
        s.slow_started.load(Ordering::SeqCst) == 1
    })
    .await;
    let b = tokio::spawn(get_once(s.addr, "/"));
    // Let the slow one finish well within FULL_WAIT.
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.gate.add_permits(1);
    assert_eq!(a.await.expect("task").expect("a"), "HTTP/1.1 200 OK");
    assert_eq!(b.await.expect("task").expect("b"), "HTTP/1.1 200 OK");
    assert_eq!(s.stats.get().refused, 0);
}

#[tokio::test]
async fn a_partial_request_head_is_cut_off_at_the_header_timeout() {
    let s = server(ApiLimits {
        max_connections: 8,
        header_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(60),
    })
    .await;
    let mut c = TcpStream::connect(s.addr).await.expect("connect");
    c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("write");
    let started = tokio::time::Instant::now();
    assert!(closed(&mut c).await, "the server closed it");
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let s = server(ApiLimits {
        max_connections: 8,
        header_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_millis(300),
    })
    .await;
    let mut c = TcpStream::connect(s.addr).await.expect("connect");
    c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 256];
    let n = c.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 OK"));
    let answered = tokio::time::Instant::now();
    assert!(closed(&mut c).await, "the server closed it");
    assert!(answered.elapsed() >= Duration::from_millis(250));
    until("counted as an idle close", PATIENCE, || {
        s.stats.get().idle_closed == 1
    })
    .await;
}
