//! Garbage on the gossip port (random bytes, another cluster's tag, an
//! oversize datagram) is dropped, counted in `/metrics` as
//! `membership_garbage_datagrams`, and changes nothing: the agent keeps
//! answering and sees no new member.

use std::net::UdpSocket;

use healthcheck::{
    agent::Agent,
    testing::{LIMIT, alive, local_config, metric},
};
use testkit::{TempDir, wait::until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_are_counted_in_metrics_and_change_nothing() {
    let dir = TempDir::new("garbage");
    let agent = Agent::start(local_config("g-1", dir.join("g-1"), "garbage"))
        .await
        .expect("agent starts");
    let before = metric(&agent, "membership_garbage_datagrams_total").await;
    let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let to = agent.gossip_addr();
    let sent = [
        b"not a datagram".to_vec(),
        vec![0u8; 3],
        vec![0xff; 64],
        vec![7u8; 65_000],
    ];
    for d in &sent {
        sender.send_to(d, to).expect("send");
    }
    let want = before + sent.len() as u64;
    until("the garbage is counted", LIMIT, || {
        agent.shared().membership_metrics().garbage_datagrams >= want
    })
    .await;
    let shown = metric(&agent, "membership_garbage_datagrams_total").await;
    assert!(
        shown >= want,
        "/metrics shows {shown}, want at least {want}"
    );
    assert_eq!(alive(&agent), 1, "no member made up from garbage");
    agent.shutdown().await;
}
