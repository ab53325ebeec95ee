//! Confirm before down with real agents (UDP SWIM, TCP sync, HTTP checks
//! on 127.0.0.1) and a real origin that answers 503 to one agent only (a
//! bad vantage point, by the `(name)` in its checks' `User-Agent`): the
//! owner's failing checks never make the origin down on any agent; the
//! record stays up, disputed, with a `disputed` event and metric. When the
//! origin really dies it is down on every agent, confirmed by the
//! next-ranked agent; when it is back, the record is plain up. The network
//! version (a blocked route between one agent and the origins) is in
//! `scripts/fault-injection.sh`.

mod support;

use std::time::{Duration, Instant};

use healthcheck::{
    agent::Agent,
    confirm::Confirmation,
    fake_origin::{Behaviour, FakeOrigin},
    record::{HealthRecord, Status},
    rendezvous,
    testing::{LIMIT, cluster},
};
use serde_json::json;
use support::sse::{events_of, follow};
use testkit::{TempDir, wait::until};

const INTERVAL_MS: u64 = 300;
const TIMEOUT_MS: u64 = 200;
const FALL: u64 = 2;

fn api(agent: &Agent) -> String {
    format!("http://{}", agent.api_addr())
}

/// Waits until every agent's record of web-1 satisfies `ok`.
async fn all_show(agents: &[Agent], what: &str, ok: impl Fn(&HealthRecord) -> bool) {
    until(what, LIMIT, || {
        agents
            .iter()
            .all(|a| a.shared().health("web-1").is_some_and(|h| ok(&h)))
    })
    .await;
}

/// Registers web-1 (on `origin`) through hc-0 and waits until every agent
/// shows it up, checked by its owner: the owner and the next-ranked agent.
async fn register(agents: &[Agent], origin: &FakeOrigin) -> (String, String) {
    let spec = json!({
        "address": origin.addr().to_string(), "interval_ms": INTERVAL_MS,
        "timeout_ms": TIMEOUT_MS, "rise": 1, "fall": FALL
    });
    let r = reqwest::Client::new()
        .put(format!("{}/v1/origins/web-1", api(&agents[0])))
        .json(&spec)
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status().as_u16(), 201);
    let names: Vec<String> = (0..agents.len()).map(|i| format!("hc-{i}")).collect();
    let ranked = rendezvous::rank("web-1", &names);
    let (owner, confirmer) = (ranked[0].to_owned(), ranked[1].to_owned());
    all_show(agents, "web-1 up on every agent, by its owner", |h| {
        h.status == Status::Up && h.checked_by == owner
    })
    .await;
    (owner, confirmer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_vantage_point_disputes_a_down_and_a_real_death_is_confirmed() {
    let base = TempDir::new("confirm");
    let agents = cluster(3, "cf", &base).await;
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let (owner, confirmer) = register(&agents, &origin).await;
    let streams: Vec<_> = agents
        .iter()
        .map(|a| follow(format!("{}/v1/events", api(a))))
        .collect();

    // The owner's route goes bad: its checks fail, the confirmer's pass.
    origin.fail_for(&[&owner]);
    let disputed = Some(Confirmation::Disputed {
        by: confirmer.clone(),
    });
    all_show(&agents, "the record is disputed on every agent", |h| {
        h.status == Status::Up && h.confirmation == disputed
    })
    .await;
    // It stays so for several rounds: the owner asks again at each failing
    // check, the confirmer answers each, and no agent ever shows down.
    let owner_agent = agents
        .iter()
        .find(|a| a.shared().me() == owner)
        .expect("owner");
    let rounds = owner_agent.shared().check_stats().rounds;
    until("three more rounds", LIMIT, || {
        owner_agent.shared().check_stats().rounds >= rounds + 3
    })
    .await;
    for (a, events) in agents.iter().zip(&streams) {
        let downs: Vec<_> = events_of(events, "health")
            .into_iter()
            .filter(|e| e["origin"] == "web-1" && e["to"] == "down")
            .collect();
        assert!(
            downs.is_empty(),
            "{} showed down: {downs:?}",
            a.shared().me()
        );
        assert_eq!(
            a.shared().health("web-1").map(|h| h.status),
            Some(Status::Up),
            "{}",
            a.shared().me()
        );
    }
    until("a disputed event on every agent", LIMIT, || {
        streams.iter().all(|s| {
            events_of(s, "disputed")
                .iter()
                .any(|e| e["origin"] == "web-1" && e["record"]["checked_by"] == owner.as_str())
        })
    })
    .await;
    let metrics = reqwest::get(format!("{}/metrics", api(&agents[2])))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("healthcheck_origin_disputed{origin=\"web-1\"} 1"),
        "{metrics}"
    );
    let confirmer_agent = agents
        .iter()
        .find(|a| a.shared().me() == confirmer)
        .expect("confirmer");
    let s = owner_agent.shared().check_stats();
    assert!(s.disputed >= 3 && s.confirmed == 0, "{s:?}");
    // `healthcheck status` says so too.
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_healthcheck"))
            .args(["status", "--api", &api(&agents[1])])
            .env_remove("HEALTHCHECK_TOKEN")
            .output()
            .expect("healthcheck status")
    });
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.lines().any(|l| l.starts_with("web-1")
            && l.contains(" up ")
            && l.contains(&format!("disputed: {confirmer} saw it up"))),
        "{table}"
    );
    // The origin can tell a second opinion from a check of the confirmer's own.
    let marked = format!("({confirmer}; second opinion)");
    assert!(
        origin.hits_by().keys().any(|ua| ua.ends_with(&marked)),
        "{:?}",
        origin.hits_by()
    );
    assert!(confirmer_agent.shared().check_stats().confirm_checks >= 3);

    // The origin really dies: down on every agent, confirmed, within
    // fall × settling + a timeout + the round trip of the second opinion.
    let died = Instant::now();
    origin.set_behaviour(Behaviour::Failing).await;
    let confirmed = Some(Confirmation::Confirmed {
        by: confirmer.clone(),
    });
    all_show(&agents, "web-1 down on every agent, confirmed", |h| {
        h.status == Status::Down && h.confirmation == confirmed
    })
    .await;
    let took = died.elapsed();
    println!("down on every agent {took:?} after the origin died");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // Back, and the route is good again: plain up everywhere.
    origin.fail_for(&[]);
    origin.set_behaviour(Behaviour::Healthy).await;
    all_show(&agents, "web-1 plain up on every agent", |h| {
        h.status == Status::Up && h.confirmation.is_none() && h.suspect.is_none()
    })
    .await;
    for a in agents {
        a.shutdown().await;
    }
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_an_agent_of_the_release_before_is_live_downs_are_written_as_before() {
    use healthcheck::confirm::{FORMATS, FormatMap};
    let base = TempDir::new("confirm-old");
    let agents = cluster(3, "cfo", &base).await;
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let names: Vec<String> = (0..3).map(|i| format!("hc-{i}")).collect();
    until(
        "every agent knows the others read second opinions",
        LIMIT,
        || {
            agents.iter().all(|a| {
                a.shared()
                    .node()
                    .read::<FormatMap, _>(FORMATS, |m| names.iter().all(|n| m.get(n).is_some()))
                    .unwrap_or(false)
            })
        },
    )
    .await;
    // hc-2 stands for an agent of the release before: it has no entry.
    agents[2]
        .shared()
        .node()
        .write::<FormatMap, _>(FORMATS, |m| {
            m.remove(&"hc-2".to_owned());
        })
        .expect("written");
    until("the entry is gone everywhere", LIMIT, || {
        agents.iter().all(|a| {
            a.shared()
                .node()
                .read::<FormatMap, _>(FORMATS, |m| m.get(&"hc-2".to_owned()).is_none())
                .unwrap_or(false)
        })
    })
    .await;
    let (owner, _) = register(&agents, &origin).await;
    // The owner's route goes bad: with an agent that could not read a
    // second opinion, its verdict is written as the release before wrote it.
    origin.fail_for(&[&owner]);
    all_show(&agents, "web-1 down on every agent, plain", |h| {
        h.status == Status::Down && h.confirmation.is_none() && h.suspect.is_none()
    })
    .await;
    let owner_agent = agents
        .iter()
        .find(|a| a.shared().me() == owner)
        .expect("owner");
    assert_eq!(owner_agent.shared().check_stats().rounds, 0);
    for a in agents {
        a.shutdown().await;
    }
    origin.shutdown().await;
}
