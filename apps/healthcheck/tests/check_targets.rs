//! Issue 12 item 4 through a running agent: a `PUT` aimed at a denied
//! target is a 400 naming `address`; a configured origin with a denied
//! address stops the start; a name that resolves into a denied range fails
//! its checks with reason `denied` and is never connected to.

use std::time::Duration;

use healthcheck::testing::local_config;
use healthcheck::{
    agent::{Agent, StartError},
    config::AgentConfig,
    fake_origin::{Behaviour, FakeOrigin},
    record::Status,
    spec::OriginSpec,
};
use serde_json::{Value, json};
use testkit::TempDir;

/// Agent `hc-{name}` of its own cluster, with its data in the returned
/// directory (removed when it is dropped).
fn config(name: &str) -> (TempDir, AgentConfig) {
    let dir = TempDir::new(&format!("targets-{name}"));
    let c = local_config(
        format!("hc-{name}"),
        dir.join("data"),
        &format!("targets-{name}"),
    );
    (dir, c)
}

async fn put(http: &reqwest::Client, api: &str, id: &str, body: Value) -> (u16, Value) {
    let r = http
        .put(format!("{api}/v1/origins/{id}"))
        .json(&body)
        .send()
        .await
        .expect("PUT");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_aimed_at_a_denied_target_is_a_400_naming_the_address() {
    let (_dir, mut c) = config("put");
    c.checks.deny = vec![
        "127.0.0.0/8".parse().expect("net"),
        "::1/128".parse().expect("net"),
    ];
    let agent = Agent::start(c).await.expect("start");
    let api = agent.shared().api_url(agent.api_addr());
    let http = reqwest::Client::new();
    let own = agent.api_addr().to_string();
    for (address, says) in [
        (
            "169.254.169.254:80",
            "169.254.0.0/16 (link-local, denied by default)",
        ),
        ("[fe80::1]:80", "fe80::/10"),
        ("0.0.0.0:80", "0.0.0.0/8"),
        (own.as_str(), "listen.api"),
        ("127.0.0.9:80", "checks.deny 127.0.0.0/8"),
        // A name is resolved at PUT, and every address judged.
        ("localhost:80", "checks.deny"),
    ] {
        let (status, body) = put(&http, &api, "x", json!({ "address": address })).await;
        assert_eq!(status, 400, "{address}: {body}");
        assert_eq!(body["field"], "address", "{address}: {body}");
        let error = body["error"].as_str().unwrap_or("");
        assert!(error.contains(says), "{address}: {error}");
    }
    // Nothing was registered.
    assert!(agent.shared().origins().is_empty());
    // An allowed target is taken.
    let (status, body) = put(&http, &api, "ok", json!({ "address": "192.0.2.1:80" })).await;
    assert_eq!(status, 201, "{body}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_origin_with_a_denied_address_stops_the_start() {
    let (_dir, mut c) = config("configured");
    c.origins = vec![("meta".into(), OriginSpec::new("169.254.169.254:80"))];
    let err = match Agent::start(c).await {
        Ok(a) => {
            a.shutdown().await;
            panic!("started with a denied origin");
        }
        Err(e) => e,
    };
    assert!(matches!(err, StartError::Config(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("origins[0] (meta).address"), "{text}");
    assert!(text.contains("169.254.0.0/16"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_resolves_into_a_denied_range_fails_as_denied_without_a_connection() {
    let origin = FakeOrigin::start(Behaviour::Healthy)
        .await
        .expect("fake origin");
    let port = origin.addr().port();
    let (_dir, mut c) = config("later");
    c.checks.deny = vec![
        "127.0.0.0/8".parse().expect("net"),
        "::1/128".parse().expect("net"),
    ];
    // Configured names are judged at check time (as a name that resolved
    // elsewhere at PUT and into the range later is).
    let mut spec = OriginSpec::new(format!("localhost:{port}"));
    spec.interval_ms = 100;
    spec.timeout_ms = 100;
    spec.fall = 1;
    c.origins = vec![("by-name".into(), spec)];
    let agent = Agent::start(c).await.expect("start");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let record = loop {
        if let Some(r) = agent.shared().health("by-name")
            && r.status == Status::Down
        {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never down: {:?}",
            agent.shared().health("by-name")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = record.reason.unwrap_or_default();
    assert!(reason.starts_with("denied: localhost:"), "{reason}");
    assert!(reason.contains("checks.deny"), "{reason}");
    assert_eq!(
        origin.connections(),
        0,
        "the denied origin was connected to"
    );
    agent.shutdown().await;
    origin.shutdown().await;
}
