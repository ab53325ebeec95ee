//! The [`Checker`] against [`FakeOrigin`]s on 127.0.0.1: real sockets, real
//! HTTP, real TLS.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use healthcheck::{
    checker::{CheckOutcome, Checker, CheckerConfig},
    fake_origin::{Behaviour, FakeOrigin},
    spec::{Kind, OriginSpec},
};
use tokio::task::JoinSet;

const AGENT: &str = "vantage-test/1 (node-a)";

fn checker(max_concurrency: usize) -> Checker {
    Checker::new(CheckerConfig {
        max_concurrency,
        user_agent: AGENT.into(),
        ..CheckerConfig::default()
    })
    .expect("checker")
}

fn spec(origin: &FakeOrigin, kind: Kind) -> OriginSpec {
    let mut spec = OriginSpec::new(origin.addr().to_string());
    spec.kind = kind;
    spec.timeout_ms = 2000;
    spec
}

fn reason(outcome: &CheckOutcome) -> &str {
    outcome.reason.as_deref().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_origin_is_ok_with_its_status_and_latency() {
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let outcome = checker(4).check(&spec(&origin, Kind::Http)).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.status_code, Some(200));
    assert!(outcome.latency.is_some());
    assert_eq!(outcome.reason, None);
    assert_eq!(origin.hits(), 1);
    assert_eq!(origin.hits_by(), BTreeMap::from([(AGENT.to_owned(), 1)]));
    origin.reset_hits();
    assert_eq!((origin.hits(), origin.hits_by().len()), (0, 0));
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unexpected_status_fails_unless_it_is_expected() {
    let origin = FakeOrigin::start(Behaviour::Failing).await.expect("origin");
    let checker = checker(4);
    let mut spec = spec(&origin, Kind::Http);

    let outcome = checker.check(&spec).await;
    assert!(!outcome.ok);
    assert_eq!(reason(&outcome), "status 503");
    assert_eq!(outcome.status_code, Some(503));
    assert!(
        outcome.latency.is_some(),
        "the origin answered: {outcome:?}"
    );

    spec.expect_status = vec!["503".into()];
    let outcome = checker.check(&spec).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.status_code, Some(503));
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_times_out_within_the_budget() {
    let origin = FakeOrigin::start(Behaviour::Slow {
        delay: Duration::from_secs(30),
    })
    .await
    .expect("origin");
    let mut spec = spec(&origin, Kind::Http);
    spec.timeout_ms = 300;

    let started = Instant::now();
    let outcome = checker(4).check(&spec).await;
    let took = started.elapsed();
    assert_eq!(reason(&outcome), "timeout", "{outcome:?}");
    assert!(!outcome.ok);
    assert_eq!((outcome.latency, outcome.status_code), (None, None));
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(800), "{took:?}");
    // The origin got the request and was still handling it.
    assert_eq!(origin.max_in_flight(), 1);
    assert_eq!(origin.hits(), 0);
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_origin_is_refused_over_http_https_and_tcp() {
    let http = FakeOrigin::start(Behaviour::Down).await.expect("origin");
    let https = FakeOrigin::start_tls(Behaviour::Down)
        .await
        .expect("origin");
    let checker = checker(4);
    for spec in [
        spec(&http, Kind::Http),
        spec(&http, Kind::Tcp),
        spec(&https, Kind::Https),
    ] {
        let outcome = checker.check(&spec).await;
        assert_eq!(reason(&outcome), "refused", "{:?}: {outcome:?}", spec.kind);
        assert_eq!(outcome.latency, None);
    }
    assert_eq!(http.connections() + https.connections(), 0);
    http.shutdown().await;
    https.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_goes_down_and_comes_back_on_the_same_port() {
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let addr = origin.addr();
    let checker = checker(4);
    let spec = spec(&origin, Kind::Http);
    assert!(checker.check(&spec).await.ok);

    // Its pooled connection is closed with the listener: the same checker
    // now finds nothing listening.
    origin.set_behaviour(Behaviour::Down).await;
    let outcome = checker.check(&spec).await;
    assert_eq!(reason(&outcome), "refused", "{outcome:?}");

    origin.set_behaviour(Behaviour::Healthy).await;
    assert_eq!(origin.addr(), addr);
    let outcome = checker.check(&spec).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(origin.hits(), 2);
    assert_eq!(origin.connections(), 2, "one before going down, one after");
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_path_host_and_headers_reach_the_origin() {
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let mut spec = spec(&origin, Kind::Http);
    spec.method = "HEAD".into();
    spec.path = "/health/deep?probe=1".into();
    spec.host = Some("origin.example".into());
    spec.headers.insert("X-Check".into(), "vantage".into());
    spec.headers.insert("User-Agent".into(), "spoofed".into());

    let outcome = checker(4).check(&spec).await;
    assert!(outcome.ok, "{outcome:?}");
    let seen = origin.last_request().expect("a request");
    assert_eq!(seen.method, "HEAD");
    assert_eq!(seen.path, "/health/deep?probe=1");
    assert_eq!(seen.host.as_deref(), Some("origin.example"));
    assert_eq!(
        seen.headers.get("x-check").map(String::as_str),
        Some("vantage")
    );
    // The checker's User-Agent wins, so the origin can tell who checked it.
    assert_eq!(
        seen.headers.get("user-agent").map(String::as_str),
        Some(AGENT)
    );
    assert_eq!(seen.sni, None);
    origin.shutdown().await;
}

// One thread, on purpose: the client's pool takes a connection back in a
// task of its own once the response is read. On one thread that task always
// runs before the next check starts, so the count is exact; on several
// threads a back-to-back check can race it and open a second connection
// (harmless for the agent, whose checks of an origin are an interval apart).
#[tokio::test(flavor = "current_thread")]
async fn sequential_checks_reuse_a_kept_alive_connection() {
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let checker = checker(4);
    let spec = spec(&origin, Kind::Http);
    for i in 0..20 {
        let outcome = checker.check(&spec).await;
        assert!(outcome.ok, "check {i}: {outcome:?}");
    }
    assert_eq!(origin.hits(), 20);
    assert_eq!(origin.connections(), 1);
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_is_resolved_by_the_checker_and_kept_as_the_host() {
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let mut spec = spec(&origin, Kind::Http);
    spec.address = format!("localhost:{}", origin.addr().port());
    let outcome = checker(4).check(&spec).await;
    assert!(outcome.ok, "{outcome:?}");
    // The request went to the resolved address, with the `Host` that a URL
    // holding the name would have sent.
    let seen = origin.last_request().expect("a request");
    assert_eq!(seen.host, Some(spec.address.clone()));
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_does_not_resolve_is_a_connect_failure() {
    let checker = checker(4);
    for kind in [Kind::Http, Kind::Https, Kind::Tcp] {
        let mut spec = OriginSpec::new("no-such-origin.invalid:80");
        spec.kind = kind;
        spec.timeout_ms = 5000;
        let outcome = checker.check(&spec).await;
        assert!(
            reason(&outcome).starts_with("connect: "),
            "{kind}: {outcome:?}"
        );
        assert_eq!(outcome.latency, None);
    }
}

// One thread, to count connections exactly: see
// `sequential_checks_reuse_a_kept_alive_connection`.
#[tokio::test(flavor = "current_thread")]
async fn only_max_idle_connections_are_kept_alive() {
    let checker = Checker::new(CheckerConfig {
        max_idle_connections: 2,
        ..CheckerConfig::default()
    })
    .expect("checker");
    assert_eq!(checker.descriptor_budget(), 64 + 2);
    let mut origins = Vec::new();
    for _ in 0..5 {
        origins.push(FakeOrigin::start(Behaviour::Healthy).await.expect("origin"));
    }
    for round in 0..2 {
        for origin in &origins {
            let outcome = checker.check(&spec(origin, Kind::Http)).await;
            assert!(outcome.ok, "round {round}: {outcome:?}");
        }
    }
    // The first two origins were admitted and kept their connection; the
    // other three got one that was closed after each check.
    let accepted: Vec<u64> = origins.iter().map(FakeOrigin::connections).collect();
    assert_eq!(accepted, [1, 1, 2, 2, 2]);
    for origin in origins {
        assert_eq!(origin.hits(), 2);
        origin.shutdown().await;
    }
}

/// Runs 20 checks of a slow origin at once; returns the outcomes and how
/// long they took.
async fn twenty_at_once(checker: &Checker, spec: &OriginSpec) -> (Vec<CheckOutcome>, Duration) {
    let started = Instant::now();
    let mut checks = JoinSet::new();
    for _ in 0..20 {
        let (checker, spec) = (checker.clone(), spec.clone());
        checks.spawn(async move { checker.check(&spec).await });
    }
    let outcomes = checks.join_all().await;
    (outcomes, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded() {
    let delay = Duration::from_millis(100);
    let origin = FakeOrigin::start(Behaviour::Slow { delay })
        .await
        .expect("origin");
    let spec = spec(&origin, Kind::Http);

    let bounded = checker(4);
    let (outcomes, took) = twenty_at_once(&bounded, &spec).await;
    assert!(outcomes.iter().all(|o| o.ok), "{outcomes:?}");
    assert_eq!(origin.hits(), 20);
    let most = origin.max_in_flight();
    assert!((2..=4).contains(&most), "{most} requests at once");
    // 20 requests of 100 ms, 4 at a time, cannot take less than 5 rounds.
    assert!(took >= delay * 5, "{took:?}");
    assert_eq!(bounded.in_flight(), 0);

    // The control: without the bound the origin sees more at once.
    let unbounded = checker(64);
    let (outcomes, _) = twenty_at_once(&unbounded, &spec).await;
    assert!(outcomes.iter().all(|o| o.ok), "{outcomes:?}");
    assert!(origin.max_in_flight() > 4, "{}", origin.max_in_flight());
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_checks_verify_the_certificate_unless_told_not_to() {
    let origin = FakeOrigin::start_tls(Behaviour::Healthy)
        .await
        .expect("origin");
    let checker = checker(4);
    let mut spec = spec(&origin, Kind::Https);

    spec.tls_verify = false;
    let outcome = checker.check(&spec).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.status_code, Some(200));
    // Connected by IP address: no server name is sent.
    assert_eq!(origin.last_request().expect("a request").sni, None);

    spec.tls_verify = true;
    let outcome = checker.check(&spec).await;
    assert!(!outcome.ok);
    assert!(reason(&outcome).starts_with("tls: "), "{outcome:?}");
    assert_eq!((outcome.latency, outcome.status_code), (None, None));
    assert_eq!(origin.hits(), 1);
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_a_tls_port_is_an_io_error_whatever_the_url_says() {
    let origin = FakeOrigin::start_tls(Behaviour::Healthy)
        .await
        .expect("origin");
    let mut spec = spec(&origin, Kind::Http);
    // The URL is quoted in reqwest's error message; it must not make the
    // failure look like a TLS one.
    spec.path = "/tls/certificate/handshake".into();
    let outcome = checker(4).check(&spec).await;
    assert!(!outcome.ok);
    assert!(reason(&outcome).starts_with("io: "), "{outcome:?}");
    origin.shutdown().await;
}

// One thread, to count connections exactly: see
// `sequential_checks_reuse_a_kept_alive_connection`.
#[tokio::test(flavor = "current_thread")]
async fn an_https_host_is_the_tls_server_name() {
    let origin = FakeOrigin::start_tls(Behaviour::Healthy)
        .await
        .expect("origin");
    let checker = checker(4);
    let mut spec = spec(&origin, Kind::Https);
    spec.host = Some("localhost".into());
    spec.tls_verify = false;

    for _ in 0..3 {
        let outcome = checker.check(&spec).await;
        assert!(outcome.ok, "{outcome:?}");
    }
    let seen = origin.last_request().expect("a request");
    assert_eq!(seen.sni.as_deref(), Some("localhost"));
    assert_eq!(seen.host.as_deref(), Some("localhost"));
    // The shared client keeps the connection of `localhost:port`, so it is
    // reused.
    assert_eq!(origin.connections(), 1);

    // With verification the self-signed certificate is still refused.
    spec.tls_verify = true;
    let outcome = checker.check(&spec).await;
    assert!(reason(&outcome).starts_with("tls: "), "{outcome:?}");
    origin.shutdown().await;
}

// One thread, to count connections exactly: see
// `sequential_checks_reuse_a_kept_alive_connection`.
//
// Regression: HTTPS by name used a client per name, cached up to 64; with
// more names checked, every check built a client again (its root store
// loaded once more, its connection lost). Now the clients are shared and
// each name keeps its connection.
#[tokio::test(flavor = "current_thread")]
async fn https_checks_of_many_names_keep_a_connection_each() {
    const NAMES: usize = 70;
    let origin = FakeOrigin::start_tls(Behaviour::Healthy)
        .await
        .expect("origin");
    let checker = checker(4);
    let specs: Vec<OriginSpec> = (0..NAMES)
        .map(|i| {
            let mut spec = spec(&origin, Kind::Https);
            spec.host = Some(format!("origin-{i}.example"));
            spec.tls_verify = false;
            spec
        })
        .collect();
    for round in 0..2 {
        for spec in &specs {
            let outcome = checker.check(spec).await;
            assert!(outcome.ok, "round {round}, {:?}: {outcome:?}", spec.host);
            let seen = origin.last_request().expect("a request");
            assert_eq!(seen.sni, spec.host, "the name is the TLS server name");
        }
    }
    assert_eq!(origin.hits(), 2 * NAMES as u64);
    assert_eq!(
        origin.connections(),
        NAMES as u64,
        "one connection per name, kept between the rounds"
    );
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_check_is_ok_when_the_port_accepts() {
    let origin = FakeOrigin::start(Behaviour::Failing).await.expect("origin");
    let outcome = checker(4).check(&spec(&origin, Kind::Tcp)).await;
    // Only the connection matters: the origin's 503 is never asked for.
    assert!(outcome.ok, "{outcome:?}");
    assert!(outcome.latency.is_some());
    assert_eq!((outcome.status_code, outcome.reason), (None, None));
    assert_eq!(origin.hits(), 0, "a TCP check sends no request");
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_origin_is_seen_up_and_down() {
    let period = Duration::from_millis(150);
    let origin = FakeOrigin::start(Behaviour::Flapping { period })
        .await
        .expect("origin");
    let checker = checker(4);
    let spec = spec(&origin, Kind::Http);
    let (mut ups, mut downs) = (0, 0);
    // Checks every half period, for at most 8 periods.
    for _ in 0..16 {
        let outcome = checker.check(&spec).await;
        if outcome.ok {
            ups += 1;
        } else {
            assert_eq!(reason(&outcome), "status 503");
            downs += 1;
        }
        if ups > 0 && downs > 0 {
            break;
        }
        tokio::time::sleep(period / 2).await;
    }
    assert!(ups > 0 && downs > 0, "{ups} up, {downs} down");
    origin.shutdown().await;
}
