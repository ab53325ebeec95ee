//! Agents in one process on 127.0.0.1 with local origin servers: real UDP
//! (SWIM), TCP (sync) and HTTP (API and checks). Waits are bounded polls of
//! observable state (the origins' hit counters, the API); nothing sleeps to
//! synchronise.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use healthcheck::testing::{LIMIT, cluster, fast_config, start_seeded};
use healthcheck::{
    agent::Agent,
    fake_origin::{Behaviour, FakeOrigin},
    record::Status,
    spec::OriginSpec,
};
use membership::Preset;
use serde_json::{Value, json};
use testkit::TempDir;
use testkit::wait::until;

const INTERVAL: Duration = Duration::from_millis(300);

fn spec_for(origin: &FakeOrigin) -> OriginSpec {
    let mut spec = OriginSpec::new(origin.addr().to_string());
    spec.interval_ms = INTERVAL.as_millis() as u64;
    spec.timeout_ms = 200;
    spec.rise = 1;
    spec.fall = 1;
    spec
}

/// Checkers of each origin (agent names) since the last reset.
fn checkers(origins: &[(String, FakeOrigin)]) -> BTreeMap<String, Vec<String>> {
    origins
        .iter()
        .map(|(id, o)| {
            let names = o
                .hits_by()
                .into_keys()
                .filter_map(|ua| {
                    ua.rsplit_once('(')
                        .and_then(|(_, r)| r.strip_suffix(')'))
                        .map(String::from)
                })
                .collect();
            (id.clone(), names)
        })
        .collect()
}

async fn register(agent: &Agent, origins: &[(String, FakeOrigin)]) {
    for (id, o) in origins {
        agent
            .shared()
            .put_origin(id, spec_for(o))
            .await
            .expect("persisted");
    }
}

async fn fake_origins(n: usize) -> Vec<(String, FakeOrigin)> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push((
            format!("o-{i:02}"),
            FakeOrigin::start(Behaviour::Healthy).await.expect("bind"),
        ));
    }
    v
}

/// Lets `d` of wall time pass while the agents work (what is measured
/// here is what happens during a window of time).
async fn window(d: Duration) {
    tokio::time::sleep(d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_origin_has_exactly_one_checker_and_a_killed_owner_is_replaced() {
    let base = TempDir::new("owners");
    let mut agents = cluster(4, "it", &base).await;
    let origins = fake_origins(24).await;
    register(&agents[0], &origins).await;
    // Let ownership settle: every agent has the registry and has checked.
    until("every origin is checked", LIMIT, || {
        origins.iter().all(|(_, o)| o.hits() > 0)
    })
    .await;
    window(INTERVAL * 4).await;
    origins.iter().for_each(|(_, o)| o.reset_hits());
    let totals = |agents: &[Agent]| -> (u64, u64) {
        agents.iter().fold((0, 0), |(c, r), a| {
            let s = a.shared().check_stats();
            (c + s.checks_ok + s.checks_failed, r + s.records_written)
        })
    };
    let (checks_before, records_before) = totals(&agents);
    // A window of several intervals: exactly one checker per origin.
    let started = Instant::now();
    window(INTERVAL * 6).await;
    // Nothing changed: checks ran, but no record was rewritten (records are
    // written on a change, a takeover or a refresh, every 5 s here).
    let (checks_after, records_after) = totals(&agents);
    assert!(checks_after - checks_before >= 24 * 4, "checks ran");
    assert_eq!(
        records_after - records_before,
        0,
        "steady state writes no records"
    );
    let seen = checkers(&origins);
    for (id, by) in &seen {
        assert_eq!(by.len(), 1, "{id} checked by {by:?}");
    }
    let per_interval: f64 = origins.iter().map(|(_, o)| o.hits() as f64).sum::<f64>()
        / (origins.len() as f64 * (started.elapsed().as_secs_f64() / INTERVAL.as_secs_f64()));
    assert!(
        per_interval < 1.2,
        "{per_interval:.2} checks per origin per interval"
    );

    // Kill the agent that owns the most origins (not hc-0).
    let victim = (1..agents.len())
        .max_by_key(|&i| seen.values().filter(|by| by[0] == agents[i].node()).count())
        .expect("agents");
    let name = agents[victim].node().to_owned();
    let orphans: Vec<String> = seen
        .iter()
        .filter(|(_, by)| by[0] == name)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!orphans.is_empty());
    origins.iter().for_each(|(_, o)| o.reset_hits());
    let killed = Instant::now();
    agents.remove(victim).kill().await;
    until("every orphan is checked by another agent", LIMIT, || {
        let seen = checkers(&origins);
        orphans.iter().all(|id| seen[id].iter().any(|n| *n != name))
    })
    .await;
    let gap = killed.elapsed();
    // The acceptance bound: the suspicion timeout plus two intervals.
    let bound = Preset::Local.foca_config(4).suspect_to_down_after + INTERVAL * 2;
    eprintln!("takeover gap {gap:?} (bound {bound:?})");
    assert!(gap <= bound, "took {gap:?}, bound {bound:?}");
    for a in agents {
        a.shutdown().await;
    }
    for (_, o) in origins {
        o.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_going_down_shows_down_on_every_agent() {
    let base = TempDir::new("down");
    let agents = cluster(3, "it", &base).await;
    let origins = fake_origins(3).await;
    register(&agents[1], &origins).await;
    let id = origins[0].0.clone();
    until("the origin is up everywhere", LIMIT, || {
        agents.iter().all(|a| {
            a.shared()
                .health(&id)
                .is_some_and(|r| r.status == Status::Up)
        })
    })
    .await;
    origins[0].1.set_behaviour(Behaviour::Failing).await;
    until("the origin is down everywhere", LIMIT, || {
        agents.iter().all(|a| {
            a.shared()
                .health(&id)
                .is_some_and(|r| r.status == Status::Down)
        })
    })
    .await;
    let record = agents[2].shared().health(&id).expect("record");
    assert_eq!(record.reason.as_deref(), Some("status 503"));
    for a in agents {
        a.shutdown().await;
    }
    for (_, o) in origins {
        o.shutdown().await;
    }
}

async fn get(url: String) -> (u16, Value) {
    let r = reqwest::get(&url).await.expect("request");
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_contract_and_a_registry_that_survives_a_full_restart() {
    let base = TempDir::new("api");
    let agents = cluster(3, "it", &base).await;
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("bind");
    let http = reqwest::Client::new();
    let api = |i: usize| format!("http://{}", agents[i].api_addr());

    // PUT on agent 1: 201, then 200 on replace
    let body = json!({ "address": origin.addr().to_string(), "interval_ms": 300, "timeout_ms": 200, "rise": 1 });
    let r = http
        .put(format!("{}/v1/origins/web-1", api(1)))
        .json(&body)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 201);
    let created: Value = r.json().await.expect("json");
    assert_eq!(created["id"], "web-1");
    assert_eq!(created["spec"]["kind"], "http");
    let r = http
        .put(format!("{}/v1/origins/web-1", api(1)))
        .json(&body)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 200);
    // 400 naming the field, and nothing registered is lost
    for (bad, field) in [
        (json!({ "address": "nope" }), "address"),
        (
            json!({ "address": "h:1", "interval_ms": "x" }),
            "interval_ms",
        ),
        (json!({ "address": "h:1", "bogus": 1 }), "bogus"),
        (
            json!({ "address": "h:1", "expect_status": ["700"] }),
            "expect_status[0]",
        ),
    ] {
        let r = http
            .put(format!("{}/v1/origins/web-1", api(0)))
            .json(&bad)
            .send()
            .await
            .expect("put");
        assert_eq!(r.status().as_u16(), 400, "{bad}");
        let e: Value = r.json().await.expect("json");
        assert_eq!(e["field"], field, "{e}");
        assert!(e["error"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let r = http
        .put(format!("{}/v1/origins/bad%20id", api(0)))
        .json(&body)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 400);
    let r = http
        .put(format!("{}/v1/origins/big", api(0)))
        .body(vec![b' '; 100_000])
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 413, "oversize bodies are refused");

    // visible on every agent, with health once checked
    for i in 0..3 {
        let url = format!("{}/v1/origins/web-1", api(i));
        let deadline = Instant::now() + LIMIT;
        loop {
            let (status, v) = get(url.clone()).await;
            if status == 200 && v["health"]["status"] == "up" {
                assert_eq!(v["spec"]["address"], origin.addr().to_string());
                for key in [
                    "checked_by",
                    "checked_at_ms",
                    "since_ms",
                    "latency_ms",
                    "reason",
                ] {
                    assert!(v["health"].get(key).is_some(), "health.{key} missing: {v}");
                }
                break;
            }
            assert!(Instant::now() < deadline, "agent {i}: {status} {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (status, list) = get(format!("{}/v1/origins", api(2))).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let (status, e) = get(format!("{}/v1/origins/nope", api(0))).await;
    assert_eq!((status, e["error"].is_string()), (404, true));
    let (_, members) = get(format!("{}/v1/members", api(0))).await;
    let members = members.as_array().cloned().unwrap_or_default();
    assert_eq!(members.len(), 3);
    for key in ["id", "gossip_addr", "sync_addr", "state"] {
        assert!(members[0].get(key).is_some(), "members[].{key}");
    }
    let (_, node) = get(format!("{}/v1/node", api(0))).await;
    for key in ["id", "owned_origins", "checks_total"] {
        assert!(node.get(key).is_some(), "node.{key}");
    }
    let metrics = http
        .get(format!("{}/metrics", api(0)))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    for name in [
        "healthcheck_checks_total{result=\"ok\"}",
        "healthcheck_owned_origins",
        "healthcheck_origins{status=\"up\"}",
        "sync_rounds_total",
        "sync_bytes_sent_total",
        "sync_bytes_received_total",
        "membership_members{state=\"alive\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    let page = http
        .get(format!("{}/", api(0)))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(page.contains("web-1") && page.contains("http-equiv=refresh"));

    // DELETE: 204 then 404; a second origin stays
    let r = http
        .put(format!("{}/v1/origins/web-2", api(0)))
        .json(&body)
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 201);
    let r = http
        .delete(format!("{}/v1/origins/web-2", api(0)))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 204);
    let r = http
        .delete(format!("{}/v1/origins/web-2", api(0)))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 404);
    until("the delete reaches every agent", LIMIT, || {
        agents
            .iter()
            .all(|a| a.shared().origin("web-2").is_none() && a.shared().origin("web-1").is_some())
    })
    .await;

    // Full restart of every agent: the registry is back, from disk.
    let actors: Vec<crdt::ActorId> = agents.iter().map(|a| a.shared().actor()).collect();
    for a in agents {
        a.shutdown().await;
    }
    let restarted = start_seeded(3, |i, seeds| fast_config(i, "it", &base, seeds)).await;
    for (i, a) in restarted.iter().enumerate() {
        a.shared().node().ready().await;
        let ids: Vec<String> = a.shared().origins().into_iter().map(|(id, _)| id).collect();
        assert_eq!(
            ids,
            vec!["web-1".to_string()],
            "agent {i} lost its registry"
        );
        assert_eq!(
            a.shared().actor(),
            actors[i],
            "agent {i}: one actor across restarts (contexts do not grow with them)"
        );
    }
    // …and they work together again
    until("the restarted cluster checks web-1", LIMIT, || {
        restarted.iter().all(|a| {
            a.shared()
                .health("web-1")
                .is_some_and(|r| r.status == Status::Up)
        })
    })
    .await;
    assert!(
        restarted
            .iter()
            .map(|a| a.shared().check_stats().checks_ok)
            .sum::<u64>()
            > 0
    );
    for a in restarted {
        a.shutdown().await;
    }
    origin.shutdown().await;
}
