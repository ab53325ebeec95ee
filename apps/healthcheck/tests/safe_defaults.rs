//! Secure by default: an agent with a listener on a non-loopback address
//! refuses to start without an API token file and a cluster key, unless its
//! config says `insecure = true` (then it starts and says what it gives up).
//! Loopback-only agents (the demo, the examples) start as they are.

use std::net::SocketAddr;

use healthcheck::testing::local_config;
use healthcheck::{
    agent::{Agent, StartError},
    config::AgentConfig,
};
use membership::Preset;
use testkit::TempDir;

/// An agent whose sync listener binds every address (0.0.0.0).
fn exposed(base: &std::path::Path) -> AgentConfig {
    let mut c = local_config("hc-safe", base.join("data"), "safe");
    c.sync_listen = SocketAddr::from(([0, 0, 0, 0], 0));
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_on_the_network_needs_tokens_and_a_key_or_insecure() {
    let base = TempDir::new("exposed");
    let err = match Agent::start(exposed(&base)).await {
        Ok(a) => {
            a.shutdown().await;
            panic!("started open on the network");
        }
        Err(e) => e,
    };
    let StartError::Insecure(what) = &err else {
        panic!("not a refusal: {err}");
    };
    assert_eq!(what.len(), 2, "{what:?}");
    let text = err.to_string();
    for expected in [
        "token_file",
        "key_file",
        "listen.sync = 0.0.0.0:0",
        "insecure = true",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    // A token file alone is not enough.
    std::fs::write(base.join("tokens"), "write token-for-the-safe-test\n").expect("write");
    let mut c = exposed(&base);
    c.token_file = Some(base.join("tokens"));
    match Agent::start(c.clone()).await {
        Ok(a) => {
            a.shutdown().await;
            panic!("started without a cluster key");
        }
        Err(StartError::Insecure(what)) => {
            assert!(what.len() == 1 && what[0].contains("key_file"), "{what:?}");
        }
        Err(e) => panic!("{e}"),
    }
    // Both: it starts.
    std::fs::write(
        base.join("keys"),
        format!("{}\n", seal::Key::generate().to_base64()),
    )
    .expect("write");
    c.key_file = Some(base.join("keys"));
    Agent::start(c)
        .await
        .expect("tokens and a key")
        .shutdown()
        .await;
    // Neither, but insecure = true in so many words: it starts.
    let mut c = exposed(&base);
    c.data_dir = base.join("data-insecure");
    c.insecure = true;
    Agent::start(c)
        .await
        .expect("insecure on purpose")
        .shutdown()
        .await;
    // Loopback only: no refusal, no key or token needed.
    let mut c = AgentConfig::local("hc-local", base.join("data-local"));
    c.preset = Preset::Local;
    assert!(c.exposures().is_empty());
    Agent::start(c).await.expect("loopback").shutdown().await;
}

#[test]
fn insecure_is_read_from_the_config_file() {
    let text = "node = \"a\"\ndata_dir = \"/tmp/a\"\ninsecure = true\n[listen]\ngossip = \"0.0.0.0:7946\"\nsync = \"0.0.0.0:7947\"\napi = \"127.0.0.1:8080\"\n";
    let c = AgentConfig::from_toml(text, "t.toml").expect("valid");
    assert!(c.insecure);
    assert_eq!(c.exposures().len(), 2);
    let c =
        AgentConfig::from_toml(&text.replace("insecure = true\n", ""), "t.toml").expect("valid");
    assert!(!c.insecure);
}
