//! A start failure reads once: the chain an operator sees (`error: {:#}`,
//! as `main` prints it) names the address that could not be bound and says
//! its cause exactly once.

use std::net::{SocketAddr, TcpListener, UdpSocket};

use healthcheck::{agent::Agent, config::AgentConfig};

/// Which listener is given a port already taken.
#[derive(Clone, Copy)]
enum Listener {
    Api,
    Sync,
    Gossip,
}

/// Starts an agent whose `listener` is on a port taken by another socket;
/// returns the failure as `main` prints it, and the address.
async fn start_on_a_busy_port(listener: Listener) -> (String, SocketAddr) {
    let (_tcp, _udp, addr) = match listener {
        Listener::Gossip => {
            let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
            let addr = taken.local_addr().expect("addr");
            (None, Some(taken), addr)
        }
        Listener::Api | Listener::Sync => {
            let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = taken.local_addr().expect("addr");
            (Some(taken), None, addr)
        }
    };
    let dir = testkit::TempDir::new("start-errors");
    let mut c = AgentConfig::local("busy", dir.join("data"));
    match listener {
        Listener::Api => c.api_listen = addr,
        Listener::Sync => c.sync_listen = addr,
        Listener::Gossip => c.gossip_listen = addr,
    }
    let Err(e) = Agent::start(c).await else {
        panic!("started on a busy port");
    };
    (format!("{:#}", anyhow::Error::from(e)), addr)
}

async fn assert_busy_port_reads_once(listener: Listener) -> String {
    let (chain, addr) = start_on_a_busy_port(listener).await;
    testkit::assert_reads_once(&chain, &addr.to_string(), "Address already in use");
    chain
}

#[tokio::test]
async fn a_busy_api_port_is_named_and_its_cause_said_once() {
    let chain = assert_busy_port_reads_once(Listener::Api).await;
    assert!(chain.contains("api listener"), "{chain}");
}

#[tokio::test]
async fn a_busy_sync_port_is_named_and_its_cause_said_once() {
    assert_busy_port_reads_once(Listener::Sync).await;
}

#[tokio::test]
async fn a_busy_gossip_port_is_named_and_its_cause_said_once() {
    assert_busy_port_reads_once(Listener::Gossip).await;
}
