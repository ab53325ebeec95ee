//! [`MembershipCore`]: foca plus what it needs to run, without I/O.
//!
//! foca does SWIM (probes, suspicion, dissemination); this core gives it a
//! clock and a timer queue, turns its output into datagrams to send and
//! Up/Down events, re-announces to the seeds while the node sees no member,
//! and rescales the timing as the cluster grows. Time comes in as `now`;
//! datagrams come in through [`handle_datagram`](MembershipCore::handle_datagram)
//! and go out through [`poll_transmit`](MembershipCore::poll_transmit). The
//! same core runs under the tokio driver and in the deterministic simulator.
//!
//! Calling order (the shape of sync's `Engine` and of quinn-proto's
//! `Connection`): build it with [`MembershipCore::new`] from a
//! [`CoreConfig`]; feed every input through a `handle_*` method
//! ([`handle_datagram`](MembershipCore::handle_datagram) for each datagram
//! that crossed the cluster boundary, [`handle_timeout`](MembershipCore::handle_timeout)
//! once [`poll_timeout`](MembershipCore::poll_timeout) is reached,
//! [`leave`](MembershipCore::leave) to go); after each, drain
//! [`poll_transmit`](MembershipCore::poll_transmit) (send every
//! [`Transmit`]) and [`poll_event`](MembershipCore::poll_event), then ask
//! [`poll_timeout`](MembershipCore::poll_timeout) when to call
//! `handle_timeout` next (`None` once the node has left). Read the counters
//! with [`stats`](MembershipCore::stats), a copy: the driver never changes
//! them. Garbage the driver drops at the cluster boundary (another cluster,
//! a bad seal) never reaches the core; the driver counts it itself and adds
//! it when it reports stats (see `Membership::metrics`).
//!
//! Timers live in one min-heap of deadlines (ties broken by submission
//! order), so they fire in deadline order however late the caller is; never
//! one sleeping task per timer, which reorders them.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, VecDeque},
    net::SocketAddr,
    time::Instant,
};

use bytes::Bytes;
use foca::{AccumulatingRuntime, Foca, NoCustomBroadcast, OwnedNotification, PostcardCodec, Timer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::{DatagramError, MemberId, MembershipError, NodeId, Preset};

/// Whether a member is believed alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Answering probes.
    Alive,
    /// Failed a probe; declared down unless it refutes in time.
    Suspect,
    /// Declared down (or left).
    Down,
}

/// A member as the app sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct MemberInfo {
    /// Its node name.
    pub id: NodeId,
    /// Its SWIM (UDP) address.
    pub gossip_addr: SocketAddr,
    /// Its sync (TCP) address.
    pub sync_addr: SocketAddr,
    /// Alive, suspect or down.
    pub state: MemberState,
    /// Its identity's [`bump`](MemberId::bump): higher means a later start
    /// (the start time in milliseconds by default) or a later renewal. Of
    /// two live members with the same name, the lower bump is the one that
    /// was running first (see [`MembershipCore::distinct_members`]). Not
    /// foca's SWIM incarnation, which only refutes suspicions.
    pub bump: u64,
}

impl MemberInfo {
    fn new(id: &MemberId, state: MemberState) -> Self {
        MemberInfo {
            id: id.node.clone(),
            gossip_addr: id.gossip,
            sync_addr: id.sync,
            state,
            bump: id.bump,
        }
    }
}

/// The live `members` one per node name, `own` (this node's name) left
/// out, in the order given. Of several live members with one name the one
/// with the lowest `(bump, gossip_addr)` is kept: the earliest start, and
/// the lower gossip address if bumps tie, so every node keeps the same one.
pub(crate) fn distinct_by_name<'a>(
    members: impl Iterator<Item = &'a MemberInfo> + Clone,
    own: &NodeId,
) -> Vec<MemberInfo> {
    let mut first: BTreeMap<&NodeId, (u64, SocketAddr)> = BTreeMap::new();
    for m in members.clone().filter(|m| m.state != MemberState::Down) {
        let key = (m.bump, m.gossip_addr);
        first
            .entry(&m.id)
            .and_modify(|k| *k = (*k).min(key))
            .or_insert(key);
    }
    members
        .filter(|m| {
            &m.id != own
                && m.state != MemberState::Down
                && first.get(&m.id) == Some(&(m.bump, m.gossip_addr))
        })
        .cloned()
        .collect()
}

/// A change in who is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipEvent {
    /// A member joined, came back, restarted under a renewed identity, or
    /// refuted a suspicion.
    Up(MemberInfo),
    /// A member failed a probe and is suspected; it is declared down after
    /// the suspicion timeout unless it refutes. Apps that prefer a moment of
    /// redundancy to a gap (like the health checker) act on this.
    Suspect(MemberInfo),
    /// A member was declared down or left.
    Down(MemberInfo),
    /// Another live member has this node's own name, at another gossip
    /// address (see [`MembershipCore::name_conflicts`]). Raised once when
    /// it appears (again if it reappears after being declared down), after
    /// its `Up`.
    NameConflict(MemberInfo),
}

/// Counters of the core (monotonic), as [`MembershipCore::stats`] copies
/// them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MembershipStats {
    /// Datagrams handed to foca.
    pub datagrams_received: u64,
    /// Datagrams produced by foca.
    pub datagrams_sent: u64,
    /// Datagrams foca rejected (undecodable, from ourselves, malformed) or
    /// that were larger than the maximum; dropped. The driver adds the
    /// datagrams it dropped because the core was behind.
    pub datagrams_rejected: u64,
    /// Datagrams dropped as garbage: in the core, those larger than the
    /// maximum or that foca could not use (undecodable, from ourselves);
    /// the driver adds those it dropped at the cluster boundary (not of this
    /// cluster, not sealed with its key, no plaintext header), which its
    /// `rejections` counts by reason.
    pub garbage_datagrams: u64,
    /// Announcements to seeds while isolated.
    pub announces: u64,
}

/// A datagram the core wants sent ([`MembershipCore::poll_transmit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The member's gossip address.
    pub to: SocketAddr,
    /// foca's payload, to be framed (sealed or tagged) by the driver.
    pub data: Bytes,
}

/// What a [`MembershipCore`] needs besides its identity: timing, size and
/// seeds. Defaults: the LAN preset, a cluster of 3, 1400-byte datagrams,
/// no seeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreConfig {
    /// Timing preset.
    pub preset: Preset,
    /// Expected cluster size at start; the timing is rescaled as the
    /// cluster grows or shrinks.
    pub initial_cluster_size: usize,
    /// Largest foca payload sent or accepted (the driver's framing already
    /// taken out); at least 64 bytes are used.
    pub max_datagram: usize,
    /// Gossip addresses to announce to at the first
    /// [`handle_timeout`](MembershipCore::handle_timeout), and again while
    /// the node sees no member. This node's own address is skipped.
    pub seeds: Vec<SocketAddr>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            preset: Preset::Lan,
            initial_cluster_size: 3,
            max_datagram: 1400,
            seeds: Vec::new(),
        }
    }
}

/// A timer foca asked for, ordered by deadline then submission order.
struct Scheduled {
    at: Instant,
    seq: u64,
    timer: Timer<MemberId>,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

type Swim = Foca<MemberId, PostcardCodec, ChaCha8Rng, NoCustomBroadcast>;

/// Whether live member `m` carries `me`'s name under another identity.
fn is_name_conflict(me: &MemberId, m: &MemberInfo) -> bool {
    m.id == me.node && m.gossip_addr != me.gossip && m.state != MemberState::Down
}

/// The sans-IO membership core of one node. See the module docs.
pub struct MembershipCore {
    foca: Swim,
    runtime: AccumulatingRuntime<MemberId>,
    timers: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    preset: Preset,
    /// The cluster size the current timing was computed for.
    sized_for: usize,
    max_datagram: usize,
    seeds: Vec<SocketAddr>,
    next_announce: Instant,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MembershipEvent>,
    /// Live members (alive or suspect) by gossip address.
    view: BTreeMap<SocketAddr, MemberInfo>,
    /// Incremented whenever `view` is rebuilt.
    view_generation: u64,
    left: bool,
    stats: MembershipStats,
}

impl MembershipCore {
    /// A core for `identity`, joining through `config.seeds` (announced to
    /// at the first [`handle_timeout`](Self::handle_timeout)). `seed` drives
    /// every random choice of foca.
    pub fn new(identity: MemberId, config: CoreConfig, seed: u64, now: Instant) -> Self {
        let CoreConfig {
            preset,
            initial_cluster_size,
            max_datagram,
            seeds,
        } = config;
        let sized_for = initial_cluster_size.max(1);
        let mut config = preset.foca_config(sized_for);
        config.max_packet_size =
            std::num::NonZeroUsize::new(max_datagram.max(64)).unwrap_or(config.max_packet_size);
        let seeds = seeds
            .into_iter()
            .filter(|s| *s != identity.gossip)
            .collect();
        MembershipCore {
            foca: Foca::new(
                identity,
                config,
                ChaCha8Rng::seed_from_u64(seed),
                PostcardCodec,
            ),
            runtime: AccumulatingRuntime::new(),
            timers: BinaryHeap::new(),
            seq: 0,
            preset,
            sized_for,
            max_datagram: max_datagram.max(64),
            seeds,
            next_announce: now,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            view: BTreeMap::new(),
            view_generation: 0,
            left: false,
            stats: MembershipStats::default(),
        }
    }

    /// This node's current identity (renewed if it was declared down).
    pub fn identity(&self) -> &MemberId {
        self.foca.identity()
    }

    /// Handles a datagram from `from`. Oversize or undecodable datagrams are
    /// counted (in `datagrams_rejected` and `garbage_datagrams`) and dropped;
    /// the state is unchanged.
    ///
    /// # Errors
    /// [`MembershipError::Rejected`] saying why the datagram was dropped.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), MembershipError> {
        if self.left {
            return Ok(());
        }
        if data.len() > self.max_datagram {
            self.stats.datagrams_rejected += 1;
            self.stats.garbage_datagrams += 1;
            return Err(MembershipError::Rejected {
                from,
                reason: DatagramError::TooLarge {
                    len: data.len(),
                    max: self.max_datagram,
                },
            });
        }
        self.stats.datagrams_received += 1;
        let result = self.foca.handle_data(data, &mut self.runtime);
        self.drain(now);
        result.map_err(|e| {
            self.stats.datagrams_rejected += 1;
            self.stats.garbage_datagrams += 1;
            MembershipError::Rejected {
                from,
                reason: DatagramError::Refused(e),
            }
        })
    }

    /// Fires every timer due at `now`, in deadline order, and re-announces
    /// to the seeds if the node is isolated and it is time to.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.left {
            return;
        }
        if now >= self.next_announce {
            if self.foca.num_members() == 0 {
                for seed in self.seeds.clone() {
                    self.stats.announces += 1;
                    if let Err(e) = self.foca.announce(MemberId::seed(seed), &mut self.runtime) {
                        tracing::debug!(%seed, error = %e, "announce failed");
                    }
                }
            }
            self.next_announce = now + self.preset.announce_interval();
            self.drain(now);
        }
        while self.timers.peek().is_some_and(|Reverse(t)| t.at <= now) {
            let Some(Reverse(due)) = self.timers.pop() else {
                break;
            };
            if let Err(e) = self.foca.handle_timer(due.timer, &mut self.runtime) {
                tracing::debug!(error = %e, "timer failed");
            }
            self.drain(now);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called;
    /// `None` once the node has left.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.left {
            return None;
        }
        let timer = self.timers.peek().map(|Reverse(t)| t.at);
        Some(timer.map_or(self.next_announce, |t| t.min(self.next_announce)))
    }

    /// The next datagram to send. Drain it after every `handle_*` call.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next membership event (up, suspect, down, name conflict). Drain
    /// it after every `handle_*` call.
    pub fn poll_event(&mut self) -> Option<MembershipEvent> {
        self.events.pop_front()
    }

    /// Leaves the cluster: tells every live member that this node is down,
    /// and stops handling anything afterwards. Send what
    /// [`poll_transmit`](Self::poll_transmit) returns, then stop.
    ///
    /// foca's `leave_cluster` tells `num_indirect_probes` (3) members and
    /// relies on gossip for the rest, which misses a member often enough
    /// (each update is retransmitted about 4 × log10(N) times) that the
    /// leave then waits for failure detection. So the fan-out and the
    /// retransmissions are raised to the member count first: one datagram
    /// per member, and everyone knows at once.
    pub fn leave(&mut self, now: Instant) {
        if self.left {
            return;
        }
        let members = self.foca.num_members();
        if members > 0 {
            let mut config = self.preset.foca_config(self.sized_for);
            config.max_packet_size =
                std::num::NonZeroUsize::new(self.max_datagram).unwrap_or(config.max_packet_size);
            config.num_indirect_probes =
                std::num::NonZeroUsize::new(members).unwrap_or(config.num_indirect_probes);
            config.max_transmissions =
                std::num::NonZeroU8::new(u8::try_from(members).unwrap_or(u8::MAX))
                    .unwrap_or(config.max_transmissions);
            if let Err(e) = self.foca.set_config(config) {
                tracing::debug!(error = %e, "cannot widen the leave announcement");
            }
        }
        self.left = true;
        if let Err(e) = self.foca.leave_cluster(&mut self.runtime) {
            tracing::debug!(error = %e, "leave failed");
        }
        self.drain(now);
        self.timers.clear();
    }

    /// Live members (alive or suspect), other than this node, by gossip
    /// address. Every live identity is listed: two members with the same
    /// name at different gossip addresses (a duplicate, or a node restarted
    /// at a new address before its old identity is declared down) are both
    /// here; [`distinct_members`](Self::distinct_members) keeps one.
    pub fn members(&self) -> impl Iterator<Item = &MemberInfo> + '_ {
        self.view.values()
    }

    /// The live members, one per node name, members with this node's own
    /// name left out (they are [`name_conflicts`](Self::name_conflicts)),
    /// ordered by gossip address.
    ///
    /// Of several live identities with one name, the one with the lowest
    /// bump is kept, the gossip address breaking ties, so every node keeps
    /// the same one: the member that was running first keeps its place (and
    /// what the app gave it, e.g. its origins) and a newcomer with a name
    /// already alive is not a peer. The newcomer is expected to see the
    /// conflict and refuse to start; the app does that, not this crate. A
    /// node restarted at a new address is listed at its old identity until
    /// that one is declared down.
    pub fn distinct_members(&self) -> Vec<MemberInfo> {
        distinct_by_name(self.view.values(), &self.foca.identity().node)
    }

    /// The live members (alive or suspect) whose node name is this node's
    /// own but whose identity is not ours (another gossip address), by
    /// gossip address; empty while names are unique. Each is raised once as
    /// [`MembershipEvent::NameConflict`].
    ///
    /// foca tells identities apart by gossip address, so a second node
    /// started under a live member's name at another address joins as a
    /// member of its own. The later of the two has the higher
    /// [`bump`](MemberInfo::bump): if this node's bump is higher than a
    /// conflict's, this node is the newcomer. A node restarted at a new
    /// address sees its own previous identity here until that one is
    /// declared down.
    pub fn name_conflicts(&self) -> Vec<MemberInfo> {
        let me = self.foca.identity();
        self.view
            .values()
            .filter(|m| is_name_conflict(me, m))
            .cloned()
            .collect()
    }

    /// Changes whenever the live view changes (a new member, a new state, a
    /// renewed identity), so a driver knows when to copy it.
    pub(crate) fn view_generation(&self) -> u64 {
        self.view_generation
    }

    /// Every member foca knows of, down ones included (for status pages).
    pub fn all_members(&self) -> Vec<MemberInfo> {
        self.foca
            .iter_membership_state()
            .map(|m| {
                let state = match m.state() {
                    foca::State::Alive => MemberState::Alive,
                    foca::State::Suspect => MemberState::Suspect,
                    foca::State::Down => MemberState::Down,
                };
                MemberInfo::new(m.id(), state)
            })
            .collect()
    }

    /// A copy of the counters so far.
    pub fn stats(&self) -> MembershipStats {
        self.stats
    }

    /// Moves foca's output into our queues, refreshes the member view and
    /// rescales the timing if the cluster size changed a lot.
    fn drain(&mut self, now: Instant) {
        while let Some((to, data)) = self.runtime.to_send() {
            self.stats.datagrams_sent += 1;
            self.transmits.push_back(Transmit {
                to: to.gossip,
                data,
            });
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            self.seq += 1;
            self.timers.push(Reverse(Scheduled {
                at: now + after,
                seq: self.seq,
                timer,
            }));
        }
        while let Some(notification) = self.runtime.to_notify() {
            match notification {
                OwnedNotification::MemberUp(id) => {
                    self.events.push_back(MembershipEvent::Up(MemberInfo::new(
                        &id,
                        MemberState::Alive,
                    )));
                }
                OwnedNotification::MemberDown(id) => {
                    self.events.push_back(MembershipEvent::Down(MemberInfo::new(
                        &id,
                        MemberState::Down,
                    )));
                }
                OwnedNotification::Rename(old, new) => {
                    // Restarted (or renewed) at the same address: it is up
                    // under its new identity (its new bump).
                    tracing::debug!(?old, ?new, "member renewed its identity");
                    self.events.push_back(MembershipEvent::Up(MemberInfo::new(
                        &new,
                        MemberState::Alive,
                    )));
                }
                OwnedNotification::Rejoin(id) => {
                    tracing::info!(
                        ?id,
                        "we were declared down; rejoined under a renewed identity"
                    );
                }
                OwnedNotification::Defunct if self.left => {
                    tracing::debug!("left the cluster");
                }
                OwnedNotification::Defunct => {
                    tracing::warn!("declared down and cannot renew: defunct");
                }
                OwnedNotification::Active => tracing::debug!("joined the cluster"),
                OwnedNotification::Idle => tracing::info!("no live member left: isolated"),
            }
        }
        // Suspicion changes no membership count and raises no foca
        // notification: compare states on every drain (O(members)).
        self.refresh_view();
        self.rescale();
    }

    /// Rebuilds the live view from foca, raising `Suspect` when a member
    /// starts being suspected and `Up` when it refutes (joins and downs are
    /// raised from foca's notifications).
    fn refresh_view(&mut self) {
        // Fast path, no allocation: the same members in the same states.
        let unchanged = self.foca.num_members() == self.view.len()
            && self.foca.iter_members().all(|m| {
                let state = if m.state() == foca::State::Suspect {
                    MemberState::Suspect
                } else {
                    MemberState::Alive
                };
                self.view.get(&m.id().gossip).is_some_and(|v| {
                    v.state == state
                        && v.id == m.id().node
                        && v.sync_addr == m.id().sync
                        && v.bump == m.id().bump
                })
            });
        if unchanged {
            return;
        }
        let view: BTreeMap<SocketAddr, MemberInfo> = self
            .foca
            .iter_members()
            .map(|m| {
                let state = if m.state() == foca::State::Suspect {
                    MemberState::Suspect
                } else {
                    MemberState::Alive
                };
                (m.id().gossip, MemberInfo::new(m.id(), state))
            })
            .collect();
        let me = self.foca.identity();
        for (addr, now) in &view {
            let before = self.view.get(addr);
            match (before.map(|m| m.state), now.state) {
                (Some(MemberState::Alive), MemberState::Suspect) => {
                    self.events.push_back(MembershipEvent::Suspect(now.clone()));
                }
                (Some(MemberState::Suspect), MemberState::Alive) => {
                    self.events.push_back(MembershipEvent::Up(now.clone()));
                }
                _ => {}
            }
            if is_name_conflict(me, now) && !before.is_some_and(|b| is_name_conflict(me, b)) {
                self.events
                    .push_back(MembershipEvent::NameConflict(now.clone()));
            }
        }
        self.view = view;
        self.view_generation += 1;
    }

    /// Recomputes the preset for the current size when it has doubled or
    /// halved since the last time (retransmissions and suspicion scale with
    /// log N; the probe period never changes, as foca requires).
    fn rescale(&mut self) {
        let size = self.foca.num_members() + 1;
        if size <= self.sized_for * 2 && size * 2 >= self.sized_for {
            return;
        }
        let mut config = self.preset.foca_config(size);
        config.max_packet_size =
            std::num::NonZeroUsize::new(self.max_datagram).unwrap_or(config.max_packet_size);
        match self.foca.set_config(config) {
            Ok(()) => {
                tracing::debug!(size, "rescaled SWIM timing to the cluster size");
                self.sized_for = size;
            }
            Err(e) => tracing::warn!(error = %e, "cannot rescale SWIM timing"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config(preset: Preset, size: usize, seeds: Vec<SocketAddr>) -> CoreConfig {
        CoreConfig {
            preset,
            initial_cluster_size: size,
            max_datagram: 1400,
            seeds,
        }
    }

    #[test]
    fn timers_pop_in_deadline_order_then_submission_order() {
        let t0 = Instant::now();
        let mut heap = BinaryHeap::new();
        let deadlines = [5u64, 1, 3, 1, 9, 0, 3];
        for (seq, ms) in deadlines.iter().enumerate() {
            heap.push(Reverse(Scheduled {
                at: t0 + Duration::from_millis(*ms),
                seq: seq as u64,
                timer: Timer::ProbeRandomMember(seq as u8),
            }));
        }
        let order: Vec<(u64, u64)> = std::iter::from_fn(|| heap.pop())
            .map(|Reverse(s)| ((s.at - t0).as_millis() as u64, s.seq))
            .collect();
        assert_eq!(
            order,
            vec![(0, 5), (1, 1), (1, 3), (3, 2), (3, 6), (5, 0), (9, 4)]
        );
    }

    #[test]
    fn a_lone_node_announces_to_its_seeds_until_it_has_company() {
        let t0 = Instant::now();
        let id = MemberId {
            node: "a".into(),
            gossip: "10.0.0.1:7946".parse().expect("addr"),
            sync: "10.0.0.1:7100".parse().expect("addr"),
            bump: 1,
        };
        let seed: SocketAddr = "10.0.0.2:7946".parse().expect("addr");
        let mut core = MembershipCore::new(id, config(Preset::Local, 3, vec![seed]), 1, t0);
        core.handle_timeout(t0);
        let sent: Vec<_> = std::iter::from_fn(|| core.poll_transmit()).collect();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, seed);
        assert_eq!(core.stats().announces, 1);
        // again after the announce interval, not before
        core.handle_timeout(t0 + Duration::from_millis(10));
        assert!(core.poll_transmit().is_none());
        core.handle_timeout(t0 + Preset::Local.announce_interval());
        assert_eq!(core.poll_transmit().map(|t| t.to), Some(seed));
    }

    #[test]
    fn oversize_datagrams_are_rejected_before_foca_sees_them() {
        let t0 = Instant::now();
        let id = MemberId {
            node: "a".into(),
            gossip: "10.0.0.1:7946".parse().expect("addr"),
            sync: "10.0.0.1:7100".parse().expect("addr"),
            bump: 1,
        };
        let mut core = MembershipCore::new(id, config(Preset::Lan, 3, vec![]), 1, t0);
        let from: SocketAddr = "10.0.0.9:1".parse().expect("addr");
        assert!(core.handle_datagram(t0, from, &[0u8; 1401]).is_err());
        assert!(core.handle_datagram(t0, from, &[0xffu8; 40]).is_err());
        assert_eq!(core.stats().datagrams_rejected, 2);
        assert_eq!(core.stats().garbage_datagrams, 2);
        assert_eq!(
            core.stats().datagrams_received,
            1,
            "only the right-sized one reached foca"
        );
        assert_eq!(core.members().count(), 0);
    }

    fn info(name: &str, port: u16, bump: u64, state: MemberState) -> MemberInfo {
        MemberInfo {
            id: name.into(),
            gossip_addr: SocketAddr::from(([10, 0, 0, 1], port)),
            sync_addr: SocketAddr::from(([10, 0, 0, 2], port)),
            state,
            bump,
        }
    }

    #[test]
    fn distinct_members_keep_the_lowest_bump_then_the_lowest_address_per_name() {
        let members = [
            info("b", 4, 30, MemberState::Alive),
            info("a", 1, 20, MemberState::Alive),
            info("a", 2, 10, MemberState::Suspect),
            info("b", 3, 30, MemberState::Alive),
            info("c", 5, 1, MemberState::Down),
            info("c", 6, 2, MemberState::Alive),
            info("me", 7, 1, MemberState::Alive),
        ];
        let kept = |members: &[MemberInfo]| -> Vec<(String, u16)> {
            distinct_by_name(members.iter(), &NodeId::from("me"))
                .into_iter()
                .map(|m| (m.id.0, m.gossip_addr.port()))
                .collect()
        };
        let expected = vec![("a".into(), 2), ("b".into(), 3), ("c".into(), 6)];
        let mut sorted = kept(&members);
        sorted.sort();
        assert_eq!(sorted, expected);
        // the same whatever the order of the input
        let mut reversed = members.to_vec();
        reversed.reverse();
        let mut again = kept(&reversed);
        again.sort();
        assert_eq!(again, expected);
    }

    /// Delivers every queued datagram between `cores` (by gossip address)
    /// and fires their timers, `ticks` times 100 ms of simulated time.
    fn run(cores: &mut [MembershipCore], now: &mut Instant, ticks: u32) {
        for _ in 0..ticks {
            *now += Duration::from_millis(100);
            for core in cores.iter_mut() {
                core.handle_timeout(*now);
            }
            for _ in 0..50 {
                let mut queued = Vec::new();
                for core in cores.iter_mut() {
                    let from = core.identity().gossip;
                    while let Some(Transmit { to, data }) = core.poll_transmit() {
                        queued.push((from, to, data));
                    }
                }
                if queued.is_empty() {
                    break;
                }
                for (from, to, data) in queued {
                    if let Some(core) = cores.iter_mut().find(|c| c.identity().gossip == to) {
                        let _ = core.handle_datagram(*now, from, &data);
                    }
                }
            }
        }
    }

    #[test]
    fn a_second_live_member_with_our_name_is_a_conflict_and_is_listed_once() {
        let mut now = Instant::now();
        let id = |name: &str, port: u16, bump: u64| MemberId {
            node: name.into(),
            gossip: SocketAddr::from(([10, 0, 0, 1], port)),
            sync: SocketAddr::from(([10, 0, 0, 2], port)),
            bump,
        };
        let seed = vec![id("seed", 1, 1).gossip];
        let mut cores = vec![
            MembershipCore::new(id("seed", 1, 1), config(Preset::Lan, 4, vec![]), 1, now),
            MembershipCore::new(
                id("alpha", 2, 10),
                config(Preset::Lan, 4, seed.clone()),
                2,
                now,
            ),
            MembershipCore::new(
                id("alpha", 3, 20),
                config(Preset::Lan, 4, seed.clone()),
                3,
                now,
            ),
            MembershipCore::new(id("seed2", 4, 99), config(Preset::Lan, 4, seed), 4, now),
        ];
        for _ in 0..100 {
            if cores.iter().all(|c| c.members().count() == 3) {
                break;
            }
            run(&mut cores, &mut now, 1);
        }
        assert!(cores.iter().all(|c| c.members().count() == 3), "control");
        let conflicts = |c: &MembershipCore| -> Vec<u16> {
            c.name_conflicts()
                .iter()
                .map(|m| m.gossip_addr.port())
                .collect()
        };
        assert_eq!(conflicts(&cores[1]), vec![3], "the older sees the newcomer");
        assert_eq!(conflicts(&cores[2]), vec![2], "the newcomer sees the older");
        assert!(conflicts(&cores[0]).is_empty() && conflicts(&cores[3]).is_empty());
        for observer in [&cores[0], &cores[3]] {
            let alphas: Vec<MemberInfo> = observer
                .distinct_members()
                .into_iter()
                .filter(|m| m.id == "alpha")
                .collect();
            assert_eq!(alphas.len(), 1);
            assert_eq!((alphas[0].bump, alphas[0].sync_addr.port()), (10, 2));
            assert_eq!(observer.members().filter(|m| m.id == "alpha").count(), 2);
        }
        assert!(
            cores[1].distinct_members().iter().all(|m| m.id != "alpha"),
            "our own name is never a peer"
        );
        // raised once each, however long they run together
        run(&mut cores, &mut now, 50);
        for (i, other) in [(1, 3u16), (2, 2)] {
            let raised: Vec<u16> = std::iter::from_fn(|| cores[i].poll_event())
                .filter_map(|e| match e {
                    MembershipEvent::NameConflict(m) => Some(m.gossip_addr.port()),
                    _ => None,
                })
                .collect();
            assert_eq!(raised, vec![other], "core {i}");
        }
        for i in [0, 3] {
            assert!(
                !std::iter::from_fn(|| cores[i].poll_event())
                    .any(|e| matches!(e, MembershipEvent::NameConflict(_)))
            );
        }
    }
}
