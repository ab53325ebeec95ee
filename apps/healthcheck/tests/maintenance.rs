//! Maintenance with real agents (UDP SWIM, TCP sync, HTTP API and checks on
//! 127.0.0.1) and a real origin: `PUT /v1/origins/{id}/maintenance` on one
//! agent is seen on every agent (API, events, metrics, page), the origin is
//! not checked while it lasts, `DELETE` ends it, it survives a full restart,
//! and it ends by itself at its expiry, its entry removed everywhere. Waits
//! are bounded polls of observable state; the only sleeps are the windows
//! in which "no check" is measured.

mod support;

use std::time::{Duration, Instant};

use healthcheck::{
    agent::Agent,
    fake_origin::{Behaviour, FakeOrigin},
    maintenance::{MAINTENANCE, MaintenanceMap},
    record::Status,
    testing::{LIMIT, cluster, fast_config, start_seeded},
};
use serde_json::{Value, json};
use support::sse::{events_of, follow};
use testkit::{TempDir, wait::until};

const INTERVAL: Duration = Duration::from_millis(300);

fn api(agent: &Agent) -> String {
    format!("http://{}", agent.api_addr())
}

/// Whether `agent`'s replica holds a maintenance entry for `id`, in force
/// or expired.
fn has_entry(agent: &Agent, id: &str) -> bool {
    agent
        .shared()
        .node()
        .read::<MaintenanceMap, _>(MAINTENANCE, |m| m.contains_key(&id.to_owned()))
        .unwrap_or(false)
}

async fn get(url: String) -> (u16, String) {
    let r = reqwest::get(url).await.expect("GET");
    (r.status().as_u16(), r.text().await.expect("body"))
}

async fn put_maintenance(http: &reqwest::Client, url: &str, body: &str) -> (u16, Value) {
    let r = http
        .put(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("PUT");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Lets `d` of wall time pass (a window in which checks are counted).
async fn window(d: Duration) {
    tokio::time::sleep(d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_is_replicated_stops_checks_survives_a_restart_and_ends_by_itself() {
    let base = TempDir::new("maintenance");
    let agents = cluster(3, "mt", &base).await;
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let http = reqwest::Client::new();
    let spec = json!({
        "address": origin.addr().to_string(), "interval_ms": INTERVAL.as_millis() as u64,
        "timeout_ms": 200, "rise": 1, "fall": 1
    });
    let r = http
        .put(format!("{}/v1/origins/web-1", api(&agents[0])))
        .json(&spec)
        .send()
        .await
        .expect("PUT origin");
    assert_eq!(r.status().as_u16(), 201);
    until("web-1 up on every agent", LIMIT, || {
        agents.iter().all(|a| {
            a.shared()
                .health("web-1")
                .is_some_and(|h| h.status == Status::Up)
        })
    })
    .await;
    let events = follow(format!("{}/v1/events", api(&agents[2])));

    // Bad requests: a 400 naming the field, a 404 for an unknown origin.
    let url = |a: &Agent, id: &str| format!("{}/v1/origins/{id}/maintenance", api(a));
    for (body, field) in [
        (r#"{"duration_ms": 60000}"#, "reason"),
        (r#"{"reason": "x", "duration_ms": 10}"#, "duration_ms"),
        (
            r#"{"reason": "x", "duration_ms": 60000, "until": 1}"#,
            "until",
        ),
        ("not json", "body"),
    ] {
        let (status, e) = put_maintenance(&http, &url(&agents[0], "web-1"), body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(e["field"], field, "{body}: {e}");
    }
    let ok = r#"{"reason": "kernel upgrade", "duration_ms": 600000}"#;
    let (status, e) = put_maintenance(&http, &url(&agents[0], "nope"), ok).await;
    assert_eq!(status, 404, "{e}");
    assert_eq!(get(url(&agents[1], "web-1")).await.0, 404, "none yet");

    // PUT on hc-0: seen on every agent.
    let (status, m) = put_maintenance(&http, &url(&agents[0], "web-1"), ok).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["reason"], "kernel upgrade");
    assert_eq!(m["set_by"], "hc-0");
    assert_eq!(
        m["until_ms"].as_u64().expect("until_ms") - m["since_ms"].as_u64().expect("since_ms"),
        600_000
    );
    until("the maintenance reaches every agent", LIMIT, || {
        agents
            .iter()
            .all(|a| a.shared().maintenance("web-1").is_some())
    })
    .await;
    let (status, one) = get(format!("{}/v1/origins/web-1", api(&agents[1]))).await;
    assert_eq!(status, 200);
    let one: Value = serde_json::from_str(&one).expect("JSON");
    assert_eq!(one["status"], "maintenance", "{one}");
    assert_eq!(one["maintenance"]["reason"], "kernel upgrade");
    assert_eq!(one["health"]["status"], "up", "the last verdict is kept");
    until("the maintenance event on hc-2's stream", LIMIT, || {
        events_of(&events, "maintenance")
            .iter()
            .any(|e| e["origin"] == "web-1" && e["maintenance"]["reason"] == "kernel upgrade")
    })
    .await;
    let (_, metrics) = get(format!("{}/metrics", api(&agents[1]))).await;
    assert!(
        metrics.contains("healthcheck_origin_maintenance{origin=\"web-1\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("healthcheck_origins{status=\"maintenance\"} 1"));
    assert!(!metrics.contains("healthcheck_origin_up{origin=\"web-1\"}"));
    let (_, page) = get(format!("{}/?status=maintenance", api(&agents[2]))).await;
    assert!(page.contains("kernel upgrade"), "{page}");
    assert!(page.contains("class=maintenance"), "{page}");

    // Not checked while it lasts (a check already running may land).
    window(Duration::from_millis(250)).await;
    origin.reset_hits();
    window(INTERVAL * 6).await;
    assert_eq!(origin.hits(), 0, "checked under maintenance");

    // DELETE on hc-1 ends it everywhere; checks resume at once.
    let r = http
        .delete(url(&agents[1], "web-1"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 204);
    let ended = Instant::now();
    let r = http
        .delete(url(&agents[1], "web-1"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 404, "ended already");
    until("checked again after the DELETE", LIMIT, || {
        origin.hits() > 0
    })
    .await;
    assert!(
        ended.elapsed() < Duration::from_secs(5),
        "resumed {:?} after the DELETE",
        ended.elapsed()
    );
    until("no agent shows maintenance", LIMIT, || {
        agents.iter().all(|a| !has_entry(a, "web-1"))
    })
    .await;
    until("the event of its end", LIMIT, || {
        events_of(&events, "maintenance")
            .iter()
            .any(|e| e["origin"] == "web-1" && e["maintenance"].is_null())
    })
    .await;

    // A maintenance survives a full restart of every agent.
    let (status, _) = put_maintenance(&http, &url(&agents[2], "web-1"), ok).await;
    assert_eq!(status, 200);
    until("the second maintenance reaches every agent", LIMIT, || {
        agents
            .iter()
            .all(|a| a.shared().maintenance("web-1").is_some())
    })
    .await;
    for a in agents {
        a.shutdown().await;
    }
    let agents = start_seeded(3, |i, seeds| fast_config(i, "mt", &base, seeds)).await;
    for (i, a) in agents.iter().enumerate() {
        a.shared().node().ready().await;
        let m = a.shared().maintenance("web-1");
        assert!(
            m.as_ref()
                .is_some_and(|m| m.reason == "kernel upgrade" && m.set_by == "hc-2"),
            "agent {i} lost the maintenance: {m:?}"
        );
    }
    window(Duration::from_millis(250)).await;
    origin.reset_hits();
    window(INTERVAL * 4).await;
    assert_eq!(
        origin.hits(),
        0,
        "checked under maintenance after a restart"
    );

    // Replaced by a short one: it ends by itself, its entry removed on
    // every agent, and checks resume.
    let short = r#"{"reason": "reboot", "duration_ms": 1500}"#;
    let (status, m) = put_maintenance(&http, &url(&agents[1], "web-1"), short).await;
    assert_eq!(status, 200, "{m}");
    let expiry = Instant::now() + Duration::from_millis(1500);
    until("the short maintenance reaches every agent", LIMIT, || {
        agents.iter().all(|a| {
            a.shared()
                .maintenance("web-1")
                .is_some_and(|m| m.reason == "reboot")
        })
    })
    .await;
    until("the expired entry is removed everywhere", LIMIT, || {
        agents.iter().all(|a| !has_entry(a, "web-1"))
    })
    .await;
    assert!(Instant::now() >= expiry, "removed before its expiry");
    until("checked again after the expiry", LIMIT, || {
        origin.hits() > 0
    })
    .await;
    until("web-1 shows up again", LIMIT, || {
        agents.iter().all(|a| {
            a.shared().maintenance("web-1").is_none()
                && a.shared()
                    .health("web-1")
                    .is_some_and(|h| h.status == Status::Up)
        })
    })
    .await;
    for a in agents {
        a.shutdown().await;
    }
    origin.shutdown().await;
}
