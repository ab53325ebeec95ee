//! Agents with a cluster key file on 127.0.0.1: they form a cluster and
//! replicate; an agent without the key is refused on both transports (and
//! counted in /metrics); the key rotates across the running cluster by
//! editing key files and reloading, without a refused frame or a lost
//! origin. Waits are bounded polls of observable state.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use healthcheck::testing::{LIMIT, live, local_config, metric, start_seeded};
use healthcheck::{agent::Agent, config::AgentConfig, spec::OriginSpec};
use seal::Key;
use testkit::TempDir;
use testkit::wait::until;

fn config(
    name: &str,
    base: &Path,
    seeds: Vec<std::net::SocketAddr>,
    keys: Option<&[&Key]>,
) -> AgentConfig {
    let mut c = local_config(name, base.join(name), "it");
    c.pull_interval = Duration::from_millis(100);
    c.seeds = seeds;
    if let Some(keys) = keys {
        let path = base.join(format!("{name}.keys"));
        write_keys(&path, keys);
        c.key_file = Some(path);
    }
    c
}

fn write_keys(path: &Path, keys: &[&Key]) {
    let text: String = keys
        .iter()
        .map(|k| format!("{}\n", k.to_base64()))
        .collect();
    std::fs::write(path, format!("# cluster keys, primary first\n{text}")).expect("write keys");
}

async fn put(agent: &Agent, id: &str) {
    agent
        .shared()
        .put_origin(id, OriginSpec::new("127.0.0.1:9".to_owned()))
        .await
        .expect("persisted");
}

/// Registers `id` on the first agent and waits until every agent has it.
async fn replicated(agents: &[Agent], id: &str) {
    put(&agents[0], id).await;
    until(&format!("{id} on every agent"), LIMIT, || {
        agents.iter().all(|a| a.shared().origin(id).is_some())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_agents_refuse_a_keyless_one_and_rotate_their_key_live() {
    let base = TempDir::new("rotate");
    let old = Key::generate();
    let new = Key::generate();
    let agents = start_seeded(3, |i, seeds| {
        config(&format!("hc-{i}"), &base, seeds, Some(&[&old]))
    })
    .await;
    until("three keyed agents see each other", LIMIT, || {
        agents.iter().all(|a| live(a) == 3)
    })
    .await;
    replicated(&agents, "before").await;

    // An agent without the key, seeded at hc-0: refused, counted, isolated.
    let plain = Agent::start(config("plain", &base, vec![agents[0].gossip_addr()], None))
        .await
        .expect("agent starts");
    put(&plain, "from-plain").await;
    until("the keyless agent's datagrams are counted", LIMIT, || {
        agents[0].shared().swim_rejections().plaintext > 0
    })
    .await;
    assert!(
        metric(
            &agents[0],
            "cluster_key_rejected_total{transport=\"swim\",reason=\"plaintext\"}"
        )
        .await
            > 0
    );
    assert_eq!(metric(&agents[0], "cluster_keys").await, 1);
    assert_eq!(live(&plain), 1, "the keyless agent sees only itself");
    plain.kill().await;

    // Rotation: three edits of every agent's key file, each reloaded on
    // every agent before the next, with a registration in between.
    let steps: [&[&Key]; 3] = [&[&old, &new], &[&new, &old], &[&new]];
    for (s, keys) in steps.iter().enumerate() {
        for (i, a) in agents.iter().enumerate() {
            write_keys(&base.join(format!("hc-{i}.keys")), keys);
            a.shared().reload_keys().expect("valid key file");
            replicated(&agents, &format!("step{s}-agent{i}")).await;
        }
    }
    for a in &agents {
        assert_eq!(a.shared().keyring().map(|k| k.ids()), Some(vec![new.id()]));
        assert_eq!(live(a), 3, "no agent lost during the rotation");
        let sync = a.shared().node().rejections();
        let swim = a.shared().swim_rejections();
        assert_eq!(
            (
                sync.unknown_key,
                sync.forged,
                swim.unknown_key,
                swim.forged,
                swim.replayed,
                swim.stale
            ),
            (0, 0, 0, 0, 0, 0),
            "nothing between keyed agents was refused"
        );
        assert!(a.shared().origin("before").is_some());
        assert!(a.shared().origin("from-plain").is_none());
    }
    // A bad edit is refused and the keyring kept.
    std::fs::write(base.join("hc-0.keys"), "not a key\n").expect("write");
    assert!(agents[0].shared().reload_keys().is_err());
    assert_eq!(
        agents[0].shared().keyring().map(|k| k.primary_id()),
        Some(new.id())
    );
    for a in agents {
        a.shutdown().await;
    }
}

#[test]
fn the_key_file_is_read_from_the_config_and_a_bad_one_stops_the_start() {
    let c = AgentConfig::from_toml(
        "node = \"a\"\ndata_dir = \"/tmp/a\"\nkey_file = \"/etc/hc/keys\"\n[listen]\ngossip = \"127.0.0.1:1\"\nsync = \"127.0.0.1:2\"\napi = \"127.0.0.1:3\"\n",
        "t.toml",
    )
    .expect("valid");
    assert_eq!(c.key_file, Some(PathBuf::from("/etc/hc/keys")));
    let base = TempDir::new("badkey");
    let mut c = config("bad", &base, vec![], None);
    std::fs::write(base.join("bad.keys"), "c2hvcnQ=\n").expect("write");
    c.key_file = Some(base.join("bad.keys"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let err = rt
        .block_on(Agent::start(c))
        .err()
        .expect("a bad key file stops the start");
    // The error and its causes, each said once, as the binary prints them.
    let chain = sync::error_chain(&err);
    assert!(chain.contains("bad.keys:1"), "{chain}");
}
