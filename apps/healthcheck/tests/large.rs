//! A registry larger than a frame, with real agents on 127.0.0.1.
//!
//! Regression for issue 11 item 6: an answer used to be one frame (16 MiB),
//! so from about 136,000 registered origins a new agent never caught up (the
//! responder failed to encode the answer every round). It now travels in
//! chunks joined as one answer.

use std::time::{Duration, Instant};

use healthcheck::testing::local_config;
use healthcheck::{
    agent::Agent,
    config::AgentConfig,
    registry::{ORIGINS, Registered, Registry},
    spec::OriginSpec,
};
use testkit::TempDir;

const ORIGINS_N: usize = 200_000;

fn config(i: usize, base: &std::path::Path, seeds: Vec<std::net::SocketAddr>) -> AgentConfig {
    let mut c = local_config(format!("hc-{i}"), base.join(format!("hc-{i}")), "large");
    c.pull_interval = Duration::from_millis(200);
    c.seeds = seeds;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_agent_joins_a_cluster_of_200_000_registered_origins() {
    let base = TempDir::new("join");
    let a = Agent::start(config(0, &base, vec![]))
        .await
        .expect("starts");
    a.shared().node().ready().await;
    // Checked once a day: this test is about the registry, not the checks.
    let mut spec = OriginSpec::new("10.255.255.1:80");
    spec.interval_ms = 86_400_000;
    let ids: Vec<String> = (0..ORIGINS_N).map(|i| format!("origin-{i:06}")).collect();
    for batch in ids.chunks(20_000) {
        a.shared()
            .node()
            .write::<Registry, _>(ORIGINS, |m| {
                for id in batch {
                    m.insert(
                        id.clone(),
                        Registered {
                            spec: spec.clone(),
                            updated_at_ms: 1,
                        },
                    );
                }
            })
            .expect("ready");
    }
    a.shared().node().flush().await.expect("durable");
    let size = |agent: &Agent| {
        agent
            .shared()
            .node()
            .read::<Registry, _>(ORIGINS, |m| m.len())
            .expect("registered")
    };
    assert_eq!(size(&a), ORIGINS_N);

    let t = Instant::now();
    let b = Agent::start(config(1, &base, vec![a.gossip_addr()]))
        .await
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(240);
    while size(&b) < ORIGINS_N {
        assert!(
            Instant::now() < deadline,
            "the new agent has {} of {ORIGINS_N} origins",
            size(&b)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = b.shared().node().metrics();
    eprintln!(
        "{ORIGINS_N} origins on the new agent after {:.1} s: {} chunks, {} bytes",
        t.elapsed().as_secs_f64(),
        m.chunks_received,
        m.replicas.get(ORIGINS).map_or(0, |r| r.received)
    );
    let received = m.replicas.get(ORIGINS).map_or(0, |r| r.received);
    assert!(
        received > sync::DEFAULT_MAX_FRAME_LENGTH as u64,
        "more than a frame ({received} bytes)"
    );
    assert!(m.chunks_received > 1 && m.answers_dropped == 0);
    let equal = b
        .shared()
        .node()
        .read::<Registry, _>(ORIGINS, |mine| {
            a.shared()
                .node()
                .read::<Registry, _>(ORIGINS, |theirs| mine == theirs)
                .expect("registered")
        })
        .expect("registered");
    assert!(equal, "the same registry");
    b.shutdown().await;
    a.shutdown().await;
}
