//! Identity across restarts, with real agents on 127.0.0.1 (UDP, TCP, HTTP):
//! no dot is ever reused, whatever happens to an agent's data dir.
//!
//! Regression for issue 11 item 1: the actor id used to be derived from the
//! node name and a start generation kept only in the data dir, so an agent
//! whose data dir was lost came back with the actor id of its first start,
//! reused its dots, and every registration it acknowledged afterwards
//! vanished on every agent.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use healthcheck::{agent::Agent, config::AgentConfig, spec::OriginSpec};
use membership::Preset;

const LIMIT: Duration = Duration::from_secs(30);

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "vantage-id-{name}-{}-{}",
        std::process::id(),
        healthcheck::registry::now_ms()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(i: usize, base: &Path, seeds: Vec<std::net::SocketAddr>) -> AgentConfig {
    let mut c = AgentConfig::local(format!("hc-{i}"), base.join(format!("hc-{i}")));
    c.cluster = "id".into();
    c.preset = Preset::Local;
    c.pull_interval = Duration::from_millis(200);
    c.takeover_grace = Duration::from_millis(500);
    c.record_refresh = Duration::from_secs(5);
    c.seeds = seeds;
    c
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An origin nobody listens on (checks fail; only the registry matters here).
fn spec() -> OriginSpec {
    let mut spec = OriginSpec::new("127.0.0.1:9");
    spec.interval_ms = 60_000;
    spec
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
    let base = temp_dir("lost");
    let mut agents: Vec<Option<Agent>> = Vec::new();
    for i in 0..3 {
        let seeds = agents
            .first()
            .and_then(|a| a.as_ref().map(|a| vec![a.gossip_addr()]))
            .unwrap_or_default();
        agents.push(Some(
            Agent::start(config(i, &base, seeds))
                .await
                .expect("agent starts"),
        ));
    }
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
        let a = Agent::start(config(2, &base, vec![seed]))
            .await
            .expect("restart after a lost data dir");
        until("hc-2 sees the cluster", || {
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
    let mut restarted: Vec<Agent> = Vec::new();
    for i in 0..3 {
        let seeds = restarted
            .first()
            .map(|a| vec![a.gossip_addr()])
            .unwrap_or_default();
        restarted.push(
            Agent::start(config(i, &base, seeds))
                .await
                .expect("restart"),
        );
    }
    for (i, a) in restarted.iter().enumerate() {
        let ids: Vec<String> = a.shared().origins().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, acknowledged, "agent {i} after a full restart");
    }
    for a in restarted {
        a.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&base);
}
