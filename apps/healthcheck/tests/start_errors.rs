//! A start failure reads once: the chain an operator sees (`error: {:#}`,
//! as `main` prints it) names the address that could not be bound and says
//! its cause exactly once.

use std::net::{SocketAddr, TcpListener, UdpSocket};

use healthcheck::{agent::Agent, config::AgentConfig};

/// The chain as `main` prints it.
fn printed(e: healthcheck::agent::StartError) -> String {
    format!("{:#}", anyhow::Error::from(e))
}

fn config(name: &str, dir: &testkit::TempDir) -> AgentConfig {
    AgentConfig::local(name, dir.join("data"))
}

fn assert_reads_once(chain: &str, addr: SocketAddr) {
    assert!(chain.contains(&addr.to_string()), "names {addr}: {chain}");
    let cause = "Address already in use";
    assert_eq!(
        chain.matches(cause).count(),
        1,
        "says its cause once: {chain}"
    );
}

#[tokio::test]
async fn a_busy_api_port_is_named_and_its_cause_said_once() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = testkit::TempDir::new("start-errors-api");
    let mut c = config("api", &dir);
    c.api_listen = addr;
    let Err(e) = Agent::start(c).await else {
        panic!("started on a busy port");
    };
    let chain = printed(e);
    assert_reads_once(&chain, addr);
    assert!(chain.contains("api listener"), "{chain}");
}

#[tokio::test]
async fn a_busy_sync_port_is_named_and_its_cause_said_once() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = testkit::TempDir::new("start-errors-sync");
    let mut c = config("sync", &dir);
    c.sync_listen = addr;
    let Err(e) = Agent::start(c).await else {
        panic!("started on a busy port");
    };
    assert_reads_once(&printed(e), addr);
}

#[tokio::test]
async fn a_busy_gossip_port_is_named_and_its_cause_said_once() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = testkit::TempDir::new("start-errors-gossip");
    let mut c = config("gossip", &dir);
    c.gossip_listen = addr;
    let Err(e) = Agent::start(c).await else {
        panic!("started on a busy port");
    };
    assert_reads_once(&printed(e), addr);
}
