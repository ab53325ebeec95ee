//! [`MembershipConfig`] and the timing [`Preset`]s, scaled to cluster size.

use std::{
    net::SocketAddr,
    num::{NonZeroU32, NonZeroUsize},
    time::Duration,
};

use crate::NodeId;

/// Timing presets. `Lan` and `Wan` are foca's versions of memberlist's
/// `DefaultLANConfig` and `DefaultWANConfig`; `Local` is `Lan` sped up ten
/// times, for tests and demos on one machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Probe every 1 s, probe RTT 500 ms, suspicion 4 × log10(N) s.
    Lan,
    /// Probe every 5 s, probe RTT 3 s, suspicion 6 × 5 × log10(N) s.
    Wan,
    /// Probe every 100 ms, probe RTT 50 ms, suspicion 0.4 × log10(N) s.
    Local,
}

impl Preset {
    /// foca's configuration for a cluster of about `cluster_size` members.
    ///
    /// One change to foca's presets: updates are retransmitted
    /// `4 × ⌈log10(N + 1)⌉` times, memberlist's `RetransmitMult` rule, where
    /// foca rounds `4 × log10(N + 1)` down (4 instead of 8 at N = 16, 8
    /// instead of 12 at N = 168). With foca's count, a Down update missed
    /// some member often enough that it learned only by probing the dead
    /// node itself, up to N probe periods later (see BENCHMARKS.md).
    pub fn foca_config(self, cluster_size: usize) -> foca::Config {
        let mut config = self.base_config(cluster_size);
        let n = cluster_size.max(1) as f64;
        let retransmits = 4.0 * (n + 1.0).log10().ceil();
        config.max_transmissions = std::num::NonZeroU8::new(retransmits.clamp(1.0, 255.0) as u8)
            .unwrap_or(config.max_transmissions);
        config
    }

    fn base_config(self, cluster_size: usize) -> foca::Config {
        let size = NonZeroU32::new(u32::try_from(cluster_size).unwrap_or(u32::MAX).max(1))
            .unwrap_or(NonZeroU32::MIN);
        match self {
            // Members declared down are re-announced to as often as Serf
            // reconnects to failed members (30 s on a WAN), and 3× as often
            // on a LAN: this is what merges the two sides of a healed
            // partition (foca's 65 s default made heals take 25–46 s in
            // scripts/fault-injection.sh).
            Preset::Lan => foca::Config {
                periodic_announce_to_down_members: Some(foca::PeriodicParams {
                    frequency: Duration::from_secs(10),
                    num_members: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
                }),
                ..foca::Config::new_lan(size)
            },
            Preset::Wan => foca::Config {
                periodic_announce_to_down_members: Some(foca::PeriodicParams {
                    frequency: Duration::from_secs(30),
                    num_members: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
                }),
                ..foca::Config::new_wan(size)
            },
            Preset::Local => {
                let lan = foca::Config::new_lan(size);
                let speed_up = |d: Duration| d / 10;
                foca::Config {
                    probe_period: speed_up(lan.probe_period),
                    probe_rtt: speed_up(lan.probe_rtt),
                    suspect_to_down_after: speed_up(lan.suspect_to_down_after),
                    periodic_announce: Some(foca::PeriodicParams {
                        frequency: Duration::from_secs(3),
                        num_members: NonZeroUsize::MIN,
                    }),
                    periodic_announce_to_down_members: Some(foca::PeriodicParams {
                        frequency: Duration::from_millis(500),
                        num_members: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
                    }),
                    periodic_gossip: Some(foca::PeriodicParams {
                        frequency: Duration::from_millis(20),
                        num_members: NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
                    }),
                    remove_down_after: Some(Duration::from_secs(60)),
                    ..lan
                }
            }
        }
    }

    /// How often an isolated node re-announces itself to its seeds.
    pub fn announce_interval(self) -> Duration {
        match self {
            Preset::Lan => Duration::from_secs(2),
            Preset::Wan => Duration::from_secs(10),
            Preset::Local => Duration::from_millis(200),
        }
    }

    /// An upper bound on the time from a member's crash until every other
    /// member of a cluster of `cluster_size` declares it down, on a network
    /// without loss: a full round of probes (foca probes members in a
    /// shuffled round-robin, so each member is probed at least once every
    /// N periods), the probe and its indirect probes timing out, the
    /// suspicion timeout, and the down update's dissemination by gossip.
    pub fn detection_bound(self, cluster_size: usize) -> Duration {
        let c = self.foca_config(cluster_size);
        let gossip = c.periodic_gossip.map_or(c.probe_period, |g| g.frequency);
        let n = u32::try_from(cluster_size).unwrap_or(u32::MAX);
        c.probe_period * (n + 1) + c.probe_rtt * 2 + c.suspect_to_down_after + gossip * 10
    }
}

/// Settings of a [`Membership`](crate::Membership).
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// This node's name, unique in the cluster.
    pub node: NodeId,
    /// Where to bind the SWIM (UDP) socket; port 0 picks one.
    pub gossip_listen: SocketAddr,
    /// The gossip address to advertise, if not the bound one (e.g. behind
    /// NAT, or when binding 0.0.0.0).
    pub gossip_advertise: Option<SocketAddr>,
    /// This node's sync (TCP) address, carried in its identity.
    pub sync_addr: SocketAddr,
    /// Gossip addresses of nodes to join through. Re-announced to while this
    /// node sees no other member.
    pub seeds: Vec<SocketAddr>,
    /// Timing preset.
    pub preset: Preset,
    /// Expected cluster size when starting; the timing is rescaled as the
    /// cluster grows or shrinks.
    pub initial_cluster_size: usize,
    /// Largest datagram sent or accepted. foca's `max_packet_size` is this
    /// less the framing: [`seal::DATAGRAM_OVERHEAD`] with a keyring,
    /// [`PLAINTEXT_OVERHEAD`](crate::PLAINTEXT_OVERHEAD) without.
    pub max_datagram: usize,
    /// Seed of the core's RNG; `None` takes one from the OS.
    pub seed: Option<u64>,
    /// The identity bump (see [`MemberId`](crate::MemberId)); `None` uses the
    /// current time in milliseconds, so that a restart wins over the
    /// previous run.
    pub bump: Option<u64>,
    /// The cluster key: with a keyring every datagram is sealed (see
    /// [`seal::DatagramSealer`]), and datagrams that do not open —
    /// plaintext, another key, another `cluster`, tampered, outside the
    /// replay window or replayed — are dropped before foca sees them and
    /// counted in [`Membership::rejections`](crate::Membership::rejections).
    /// Sealing takes [`seal::DATAGRAM_OVERHEAD`] bytes of `max_datagram`.
    pub keyring: Option<seal::Keyring>,
    /// The cluster name: bound into every sealed datagram with a keyring;
    /// without one, its [`ClusterTag`](crate::ClusterTag) heads every
    /// plaintext datagram. Either way a datagram of another cluster is
    /// dropped before foca sees it and counted in
    /// [`Membership::rejections`](crate::Membership::rejections)
    /// (`forged` with a keyring, `wrong_cluster` without), so nodes of two
    /// clusters sharing seeds never join each other.
    pub cluster: String,
    /// With a keyring: accepted distance between a datagram's timestamp and
    /// this node's clock (clocks must agree to within it).
    pub replay_window: Duration,
    /// With a keyring: most datagram nonces remembered for replay
    /// detection (bounded memory; see [`seal::ReplayGuard`]).
    pub replay_capacity: usize,
}

impl MembershipConfig {
    /// Defaults: LAN preset, 1400-byte datagrams, no seeds.
    pub fn new(node: impl Into<NodeId>, gossip_listen: SocketAddr, sync_addr: SocketAddr) -> Self {
        MembershipConfig {
            node: node.into(),
            gossip_listen,
            gossip_advertise: None,
            sync_addr,
            seeds: Vec::new(),
            preset: Preset::Lan,
            initial_cluster_size: 3,
            max_datagram: 1400,
            seed: None,
            bump: None,
            keyring: None,
            cluster: "vantage".into(),
            replay_window: Duration::from_secs(30),
            replay_capacity: 65_536,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmissions_follow_memberlist_and_grow_with_the_cluster() {
        let tx = |n| Preset::Lan.foca_config(n).max_transmissions.get();
        assert_eq!(tx(8), 4); // 4 × ⌈log10(9)⌉
        assert_eq!(tx(16), 8); // 4 × ⌈log10(17)⌉
        assert_eq!(tx(168), 12); // 4 × ⌈log10(169)⌉
        assert!(Preset::Lan.detection_bound(168) > Preset::Lan.detection_bound(16));
        assert!(Preset::Local.detection_bound(16) < Preset::Lan.detection_bound(16));
        // foca forbids changing the probe period at runtime: rescaling keeps it
        assert_eq!(
            Preset::Lan.foca_config(4).probe_period,
            Preset::Lan.foca_config(400).probe_period
        );
    }
}
