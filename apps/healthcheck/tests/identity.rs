//! Identity and lifetime, with real agents on 127.0.0.1 (UDP, TCP, HTTP): no
//! dot is ever reused whatever happens to an agent's data dir, contexts do
//! not grow with restarts, a restarted owner publishes no guess, a member
//! that fails the sync handshake owns nothing, and a second agent with a
//! live agent's name is refused.
//!
//! Regression for issue 11 item 1: the actor id used to be derived from the
//! node name and a start generation kept only in the data dir, so an agent
//! whose data dir was lost came back with the actor id of its first start,
//! reused its dots, and every registration it acknowledged afterwards
//! vanished on every agent.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use std::collections::BTreeSet;

use healthcheck::testing::{LIMIT, alive, cluster, fast_config, start_seeded};
use healthcheck::{
    agent::{Agent, StartError},
    fake_origin::{Behaviour, FakeOrigin},
    record::Status,
    registry::{HEALTH, HealthMap, ORIGINS, Registry},
    spec::OriginSpec,
};
use membership::Preset;
use testkit::TempDir;
use testkit::wait::until;

/// An origin nobody listens on (checks fail; only the registry matters here).
fn spec() -> OriginSpec {
    let mut spec = OriginSpec::new("127.0.0.1:9");
    spec.interval_ms = 60_000;
    spec
}

/// [`cluster`] of `n` agents of cluster "id", as slots an agent can be
/// taken out of (stopped) and put back in (restarted).
async fn slots(n: usize, base: &Path) -> Vec<Option<Agent>> {
    cluster(n, "id", base).await.into_iter().map(Some).collect()
}

/// What happens to the data dir between two runs of an agent.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// `rm -rf` of the data dir.
    Deleted,
    /// Every file in it removed, the directory kept.
    Emptied,
    /// Replaced by a new, empty directory (a new disk or volume).
    Replaced,
}

fn lose(dir: &Path, loss: Loss) {
    match loss {
        Loss::Deleted => std::fs::remove_dir_all(dir).expect("rm -rf"),
        Loss::Emptied => {
            for entry in std::fs::read_dir(dir).expect("read dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    std::fs::remove_dir_all(&path).expect("rm dir");
                } else {
                    std::fs::remove_file(&path).expect("rm file");
                }
            }
        }
        Loss::Replaced => {
            let old = dir.with_extension("old");
            std::fs::rename(dir, &old).expect("move away");
            std::fs::create_dir_all(dir).expect("new dir");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_a_lost_data_dir() {
    let base = TempDir::new("lost");
    let mut agents: Vec<Option<Agent>> =
        start_seeded(3, |i, seeds| fast_config(i, "id", &base, seeds))
            .await
            .into_iter()
            .map(Some)
            .collect();
    let seed = agents[0].as_ref().map(Agent::gossip_addr).expect("agent 0");
    let mut acknowledged: Vec<String> = Vec::new();
    // Each round: stop hc-2, lose its data dir, start it again, register 20
    // origins through it. Before the fix, the second round's writes reused
    // the first round's dots and were lost everywhere.
    for (round, loss) in [Loss::Deleted, Loss::Deleted, Loss::Emptied, Loss::Replaced]
        .into_iter()
        .enumerate()
    {
        if let Some(a) = agents[2].take() {
            a.shutdown().await;
        }
        lose(&base.join("hc-2"), loss);
        let a = Agent::start(fast_config(2, "id", &base, vec![seed]))
            .await
            .expect("restart after a lost data dir");
        until("hc-2 sees the cluster", LIMIT, || {
            a.shared()
                .members()
                .iter()
                .filter(|m| m.state == membership::MemberState::Alive)
                .count()
                == 3
        })
        .await;
        for j in 0..20 {
            let id = format!("r{round}-{j:02}");
            a.shared().put_origin(&id, spec()).await.expect("persisted");
            acknowledged.push(id);
        }
        agents[2] = Some(a);
        until(
            &format!("round {round} ({loss:?}): every write on every agent"),
            LIMIT,
            || {
                agents.iter().flatten().all(|a| {
                    let ids = a.shared().origins();
                    acknowledged
                        .iter()
                        .all(|id| ids.iter().any(|(have, _)| have == id))
                })
            },
        )
        .await;
    }
    // And once more after a restart of everyone, from their own disks.
    for a in agents.iter_mut() {
        if let Some(a) = a.take() {
            a.shutdown().await;
        }
    }
    let restarted = start_seeded(3, |i, seeds| fast_config(i, "id", &base, seeds)).await;
    for (i, a) in restarted.iter().enumerate() {
        let ids: Vec<String> = a.shared().origins().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, acknowledged, "agent {i} after a full restart");
    }
    for a in restarted {
        a.shutdown().await;
    }
}

/// The actors in the causal contexts of an agent's two replicas.
fn context_actors(a: &Agent) -> (usize, usize) {
    let origins = a
        .shared()
        .node()
        .read::<Registry, _>(ORIGINS, |m| m.context().actors().count())
        .expect("registered");
    let health = a
        .shared()
        .node()
        .read::<HealthMap, _>(HEALTH, |m| m.context().actors().count())
        .expect("registered");
    (origins, health)
}

fn healthy_spec(origin: &FakeOrigin) -> OriginSpec {
    let mut spec = OriginSpec::new(origin.addr().to_string());
    spec.interval_ms = 300;
    spec.timeout_ms = 200;
    spec.rise = 1;
    spec.fall = 1;
    spec
}

/// Issue 11 item 3: a fresh actor per start made every context grow by one
/// entry per start of any agent (1,522 B/s of steady sync traffic after 40
/// restarts instead of 74). One actor per data dir keeps them at one entry
/// per agent, through graceful stops and crashes alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_do_not_grow_with_restarts() {
    let base = TempDir::new("restarts");
    let mut agents = slots(3, &base).await;
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("bind");
    let first = agents[0].as_ref().expect("agent 0");
    first
        .shared()
        .put_origin("web", healthy_spec(&origin))
        .await
        .expect("persisted");
    let seed = first.gossip_addr();
    let mut actors = BTreeSet::new();
    for round in 0..8 {
        let a = agents[2].take().expect("agent 2");
        actors.insert(a.shared().actor());
        if round % 2 == 0 {
            a.shutdown().await;
        } else {
            a.kill().await; // no goodbye: the others detect the failure
        }
        let a = Agent::start(fast_config(2, "id", &base, vec![seed]))
            .await
            .expect("restart");
        a.shared().node().ready().await;
        actors.insert(a.shared().actor());
        // every restart writes: a registration and (as owner or stand-in)
        // health records
        a.shared()
            .put_origin(&format!("r{round}"), spec())
            .await
            .expect("persisted");
        agents[2] = Some(a);
        until(
            &format!("round {round}: the registration everywhere"),
            LIMIT,
            || {
                agents
                    .iter()
                    .flatten()
                    .all(|a| a.shared().origin(&format!("r{round}")).is_some())
            },
        )
        .await;
    }
    assert_eq!(actors.len(), 1, "hc-2 kept one actor through 8 restarts");
    until("all contexts settle", LIMIT, || {
        agents.iter().flatten().all(|a| {
            let (origins, health) = context_actors(a);
            origins <= 3 && health <= 3
        })
    })
    .await;
    for a in agents.iter().flatten() {
        let (origins, health) = context_actors(a);
        assert!(
            origins <= 3 && health <= 3,
            "{}: {origins} and {health} actors",
            a.node()
        );
    }
    for a in agents.into_iter().flatten() {
        a.shutdown().await;
    }
    origin.shutdown().await;
}

/// Issue 11 item 4: health records were not persisted and a restarted owner
/// wrote before it had synced: a dead origin with `initial = "up"` showed up
/// on the other agents for 0.5-1.8 s. Now the owner comes back with the
/// persisted record and writes nothing before it has caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_owner_never_publishes_a_guess() {
    let base = TempDir::new("guess");
    let mut agents = slots(3, &base).await;
    // A dead origin whose owner is hc-2.
    let names = ["hc-0", "hc-1", "hc-2"];
    let id = (0..)
        .map(|i| format!("dead-{i}"))
        .find(|id| healthcheck::rendezvous::rank(id, &names)[0] == "hc-2")
        .expect("some origin is hc-2's");
    let mut dead = OriginSpec::new("127.0.0.1:9");
    dead.interval_ms = 300;
    dead.timeout_ms = 200;
    dead.rise = 3;
    dead.fall = 3;
    dead.initial = Status::Up;
    let a0 = agents[0].as_ref().expect("agent 0");
    a0.shared().put_origin(&id, dead).await.expect("persisted");
    until("hc-2 finds it down, and everyone sees it", LIMIT, || {
        agents.iter().flatten().all(|a| {
            a.shared()
                .health(&id)
                .is_some_and(|r| r.status == Status::Down && r.checked_by == "hc-2")
        })
    })
    .await;
    let seed = a0.gossip_addr();
    let a2 = agents[2].take().expect("agent 2");
    a2.kill().await;
    let a2 = Agent::start(fast_config(2, "id", &base, vec![seed]))
        .await
        .expect("restart");
    assert_eq!(
        a2.shared().health(&id).map(|r| r.status),
        Some(Status::Down),
        "the restarted agent serves its persisted view at once"
    );
    // Watch the others' view while hc-2 restarts and takes its origin back.
    let t = Instant::now();
    let mut seen = BTreeSet::new();
    while t.elapsed() < Duration::from_secs(3) {
        for a in agents.iter().flatten() {
            if let Some(r) = a.shared().health(&id) {
                seen.insert(r.status.as_str());
            }
        }
        if let Some(r) = a2.shared().health(&id) {
            seen.insert(r.status.as_str());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen, BTreeSet::from(["down"]), "never up, never unknown");
    agents[2] = Some(a2);
    for a in agents.into_iter().flatten() {
        a.shutdown().await;
    }
}

/// Issue 11 item 2: a member live in SWIM whose sync handshake fails (here:
/// nothing listens on its sync address) used to take part in ownership, so
/// its origins had no checker until a stand-in's patience ran out. It owns
/// nothing now: its origins are checked by the agents at once, not taken
/// over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_sync_handshake_fails_owns_nothing() {
    let base = TempDir::new("ghost");
    let agents = cluster(2, "id", &base).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    }; // dropped: nothing listens there
    let mut ghost =
        membership::MembershipConfig::new("ghost", "127.0.0.1:0".parse().expect("addr"), closed);
    ghost.cluster = "id".into();
    ghost.preset = Preset::Local;
    ghost.seeds = vec![agents[0].gossip_addr()];
    let ghost = membership::Membership::start(ghost)
        .await
        .expect("ghost joins");
    until("the agents see the ghost alive in SWIM", LIMIT, || {
        agents.iter().all(|a| alive(a) == 3)
    })
    .await;
    let names = ["hc-0", "hc-1", "ghost"];
    let mut origins = Vec::new();
    for i in 0..40 {
        let id = format!("o{i:02}");
        let o = FakeOrigin::start(Behaviour::Healthy).await.expect("bind");
        agents[i % 2]
            .shared()
            .put_origin(&id, healthy_spec(&o))
            .await
            .expect("persisted");
        origins.push((id, o));
    }
    let ghosts: Vec<&String> = origins
        .iter()
        .map(|(id, _)| id)
        .filter(|id| healthcheck::rendezvous::rank(id, &names)[0] == "ghost")
        .collect();
    assert!(
        ghosts.len() >= 5,
        "the ghost would own {} origins",
        ghosts.len()
    );
    until("every origin is up on both agents", LIMIT, || {
        origins.iter().all(|(id, _)| {
            agents.iter().all(|a| {
                a.shared()
                    .health(id)
                    .is_some_and(|r| r.status == Status::Up)
            })
        })
    })
    .await;
    let takeovers: u64 = agents
        .iter()
        .map(|a| a.shared().check_stats().takeovers)
        .sum();
    assert_eq!(
        takeovers, 0,
        "the ghost's origins were owned, not taken over"
    );
    for a in &agents {
        assert!(
            !a.shared()
                .node()
                .verified_peers()
                .contains(&sync::NodeId("ghost".into()))
        );
    }
    ghost.shutdown().await;
    for a in agents {
        a.shutdown().await;
    }
    for (_, o) in origins {
        o.shutdown().await;
    }
}

/// Issue 11 item 2: a second agent started with a live agent's name showed
/// as alive with no warning, and every origin of that name was checked
/// twice. It is refused now, naming both addresses; the running one goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_with_a_live_name_is_refused() {
    let base = TempDir::new("dup");
    let agents = cluster(2, "id", &base).await;
    let mut twin = fast_config(1, "id", &base.join("twin"), vec![agents[0].gossip_addr()]);
    twin.data_dir = base.join("twin-data");
    let err = match Agent::start(twin).await {
        Ok(a) => {
            a.shutdown().await;
            panic!("a second hc-1 started");
        }
        Err(e) => e,
    };
    match &err {
        StartError::DuplicateName { name, theirs, .. } => {
            assert_eq!(name, "hc-1");
            assert_eq!(*theirs, agents[1].gossip_addr());
        }
        other => panic!("not a duplicate-name refusal: {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&agents[1].gossip_addr().to_string()),
        "names the running agent's address: {text}"
    );
    // The running hc-1 is still a member and still checks.
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("bind");
    agents[0]
        .shared()
        .put_origin("after", healthy_spec(&origin))
        .await
        .expect("persisted");
    until("the cluster still works", LIMIT, || {
        agents.iter().all(|a| {
            a.shared()
                .health("after")
                .is_some_and(|r| r.status == Status::Up)
        }) && agents.iter().all(|a| alive(a) == 2)
    })
    .await;
    for a in agents {
        a.shutdown().await;
    }
    origin.shutdown().await;
}
