//! The [`TargetPolicy`] at work in the [`Checker`] and at PUT: real sockets
//! on 127.0.0.1; a denied target never sees a connection.

use std::{net::SocketAddr, sync::Arc};

use healthcheck::{
    checker::{CheckOutcome, Checker, CheckerConfig},
    fake_origin::{Behaviour, FakeOrigin},
    spec::{Kind, OriginSpec},
    targets::{TargetPolicy, TargetsConfig},
};

fn checker_with(policy: TargetPolicy) -> Checker {
    Checker::new(CheckerConfig {
        targets: Arc::new(policy),
        ..CheckerConfig::default()
    })
    .expect("checker")
}

fn deny(ranges: &[&str]) -> TargetPolicy {
    let config = TargetsConfig {
        deny: ranges.iter().map(|r| r.parse().expect("range")).collect(),
        ..TargetsConfig::default()
    };
    TargetPolicy::new(&config, &[]).expect("policy")
}

fn spec(address: &str, kind: Kind) -> OriginSpec {
    let mut spec = OriginSpec::new(address);
    spec.kind = kind;
    spec.tls_verify = false;
    spec.timeout_ms = 2000;
    spec
}

fn reason(outcome: &CheckOutcome) -> &str {
    outcome.reason.as_deref().unwrap_or("")
}

const KINDS: [Kind; 3] = [Kind::Http, Kind::Https, Kind::Tcp];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_own_listener_is_never_checked() {
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let addr = origin.addr();
    let own: [(&'static str, SocketAddr); 1] = [("listen.api", addr)];
    let checker = checker_with(TargetPolicy::new(&TargetsConfig::default(), &own).expect("policy"));
    for kind in KINDS {
        let outcome = checker.check(&spec(&addr.to_string(), kind)).await;
        assert_eq!(
            reason(&outcome),
            format!("denied: {addr} is this agent's listen.api"),
            "{kind}"
        );
        assert_eq!((outcome.ok, outcome.latency), (false, None));
    }
    assert_eq!(origin.connections(), 0, "no connection was opened");

    // Another port of the same address is someone else's.
    let other = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let outcome = checker
        .check(&spec(&other.addr().to_string(), Kind::Http))
        .await;
    assert!(outcome.ok, "{outcome:?}");
    origin.shutdown().await;
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_range_fails_the_check_without_a_connection() {
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let addr = origin.addr();
    let checker = checker_with(deny(&["127.0.0.1/32"]));
    for kind in KINDS {
        let outcome = checker.check(&spec(&addr.to_string(), kind)).await;
        assert_eq!(
            reason(&outcome),
            format!("denied: {addr} is in checks.deny 127.0.0.1/32"),
            "{kind}"
        );
    }
    // Nor with an allow list that does not hold it.
    let config = TargetsConfig {
        allow: vec!["10.0.0.0/8".parse().expect("range")],
        ..TargetsConfig::default()
    };
    let checker = checker_with(TargetPolicy::new(&config, &[]).expect("policy"));
    let outcome = checker.check(&spec(&addr.to_string(), Kind::Http)).await;
    assert_eq!(
        reason(&outcome),
        format!("denied: {addr} is not in checks.allow")
    );
    assert_eq!(origin.connections(), 0, "no connection was opened");
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_resolves_into_a_denied_range_is_denied() {
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let port = origin.addr().port();
    let name = format!("localhost:{port}");
    let checker = checker_with(deny(&["127.0.0.0/8", "::1/128"]));
    for kind in KINDS {
        let outcome = checker.check(&spec(&name, kind)).await;
        let reason = reason(&outcome);
        assert!(
            reason.starts_with(&format!("denied: {name} resolves to ")),
            "{kind}: {reason}"
        );
        assert!(reason.contains(", which is in checks.deny "), "{reason}");
    }
    assert_eq!(origin.connections(), 0, "no connection was opened");

    // The same origin under the default policy, by address and by name.
    let checker = checker_with(TargetPolicy::default());
    for address in [origin.addr().to_string(), name] {
        for kind in [Kind::Http, Kind::Tcp] {
            let outcome = checker.check(&spec(&address, kind)).await;
            assert!(outcome.ok, "{address} {kind}: {outcome:?}");
        }
    }
    assert_eq!(origin.hits(), 2);
    origin.shutdown().await;
}

// One thread, to count connections exactly (see tests/checker.rs,
// `sequential_checks_reuse_a_kept_alive_connection`).
#[tokio::test(flavor = "current_thread")]
async fn https_to_a_name_keeps_the_name_for_tls_and_reuses_its_connection() {
    let origin = FakeOrigin::start_tls(Behaviour::Healthy)
        .await
        .expect("origin");
    let name = format!("localhost:{}", origin.addr().port());
    let checker = checker_with(TargetPolicy::default());
    let spec = spec(&name, Kind::Https);
    for _ in 0..3 {
        let outcome = checker.check(&spec).await;
        assert!(outcome.ok, "{outcome:?}");
    }
    let seen = origin.last_request().expect("a request");
    // Resolved by the checker, yet the server name is the name.
    assert_eq!(seen.sni.as_deref(), Some("localhost"));
    assert_eq!(seen.host.as_deref(), Some(name.as_str()));
    assert_eq!(origin.connections(), 1);
    origin.shutdown().await;
}

// One thread, to count connections exactly (see tests/checker.rs,
// `sequential_checks_reuse_a_kept_alive_connection`).
#[tokio::test(flavor = "current_thread")]
async fn https_checks_of_one_name_share_its_connection_whatever_the_spec() {
    let origin = FakeOrigin::start_tls(Behaviour::Healthy)
        .await
        .expect("origin");
    let port = origin.addr().port();
    let checker = checker_with(TargetPolicy::default());
    // `localhost:port` resolved by the checker, and the address with
    // `localhost` as its `host`: one name, one port, one connection.
    let by_name = spec(&format!("localhost:{port}"), Kind::Https);
    let mut by_host = spec(&origin.addr().to_string(), Kind::Https);
    by_host.host = Some("localhost".into());
    for spec in [&by_name, &by_host, &by_name, &by_host] {
        let outcome = checker.check(spec).await;
        assert!(
            outcome.ok,
            "{:?} {:?}: {outcome:?}",
            spec.address, spec.host
        );
        let seen = origin.last_request().expect("a request");
        assert_eq!(seen.sni.as_deref(), Some("localhost"));
    }
    assert_eq!(origin.hits(), 4);
    assert_eq!(origin.connections(), 1);
    // A check that verifies certificates uses another client, so another
    // connection (refused here: the certificate is self-signed).
    let mut verified = by_name.clone();
    verified.tls_verify = true;
    let outcome = checker.check(&verified).await;
    assert!(reason(&outcome).starts_with("tls: "), "{outcome:?}");
    assert_eq!(origin.connections(), 2);
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_of_a_denied_target_names_the_address() {
    let policy = deny(&["127.0.0.0/8", "::1/128"]);
    let err = TargetPolicy::default()
        .check_spec(&OriginSpec::new("169.254.169.254:80"))
        .await
        .expect_err("metadata");
    assert_eq!(err.field, "address");
    assert_eq!(
        err.to_string(),
        "address: 169.254.169.254:80 is in 169.254.0.0/16 (link-local, denied by default)"
    );
    let err = policy
        .check_spec(&OriginSpec::new("localhost:8080"))
        .await
        .expect_err("localhost");
    assert_eq!(err.field, "address");
    assert!(
        err.message.starts_with("localhost:8080 resolves to "),
        "{err}"
    );
    // A name that does not resolve (yet) is left to the checks.
    assert_eq!(
        policy
            .check_spec(&OriginSpec::new("no-such-origin.invalid:80"))
            .await,
        Ok(())
    );
    assert_eq!(
        policy.check_spec(&OriginSpec::new("10.0.0.1:80")).await,
        Ok(())
    );
}
