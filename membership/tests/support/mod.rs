//! What membership's integration tests share (each test file has
//! `mod support;`): the config of a member on 127.0.0.1. Waiting comes from
//! `testkit`.

use std::net::SocketAddr;

use membership::{MembershipConfig, Preset};

/// Member `name` gossiping on 127.0.0.1 (port 0), announcing sync port
/// `sync_port`, with the local (fast) preset, sized for
/// `initial_cluster_size` members and seeded with `seeds`.
pub(crate) fn config(
    name: &str,
    sync_port: u16,
    initial_cluster_size: usize,
    seeds: Vec<SocketAddr>,
) -> MembershipConfig {
    let mut config = MembershipConfig::new(
        name,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::from(([127, 0, 0, 1], sync_port)),
    );
    config.preset = Preset::Local;
    config.initial_cluster_size = initial_cluster_size;
    config.seeds = seeds;
    config
}
