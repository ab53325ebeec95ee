//! The tokio driver: one task owns the core, one task reads the UDP socket,
//! and every input (datagrams, commands) reaches the owner over one channel;
//! timers come from the core's deadline heap.
//!
//! Every datagram crosses the cluster boundary framed: sealed with the
//! cluster key if there is one ([`seal::DatagramSealer`], which binds the
//! cluster name), otherwise tagged with the cluster name ([`ClusterTag`]).
//! The reader drops a datagram that does not open before the core sees it
//! and counts why in [`Membership::rejections`].
//!
//! Garbage (a datagram that does not open, or that the core cannot use) is
//! logged at `warn` once, then at most once per 10 s
//! with the number left out ([`sync::LogThrottle`]), and counted in
//! [`MembershipStats::garbage_datagrams`]: the core counts what it refuses,
//! the driver what it refuses at the boundary, and
//! [`Membership::metrics`] adds the two; the driver never changes the
//! core's counters.

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use seal::{DatagramSealer, RejectionCounts, Rejections};
use sync::LogThrottle;
use tokio::{
    net::UdpSocket,
    sync::{broadcast, mpsc, oneshot},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    ClusterTag, CoreConfig, MemberId, MemberInfo, MembershipConfig, MembershipCore,
    MembershipError, MembershipEvent, MembershipStats, PLAINTEXT_OVERHEAD, Transmit,
};

/// Garbage datagrams are logged at most once per this interval (with the
/// count of those left out).
const GARBAGE_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What reaches the task that owns the core.
enum Input {
    Datagram(SocketAddr, Bytes),
    Leave(oneshot::Sender<()>),
}

/// What the handle reads without going through the owner task.
#[derive(Default)]
struct View {
    identity: Option<MemberId>,
    members: Vec<MemberInfo>,
    /// `members` one per name, our own name left out (the peers).
    distinct: Vec<MemberInfo>,
    conflicts: Vec<MemberInfo>,
    all: Vec<MemberInfo>,
    stats: MembershipStats,
    dropped_inputs: u64,
}

/// A running SWIM member: the live view, Up/Down events, and a graceful
/// [`leave`](Membership::leave).
pub struct Membership {
    inputs: mpsc::Sender<Input>,
    view: Arc<RwLock<View>>,
    events: broadcast::Sender<MembershipEvent>,
    local_addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    rejections: Arc<Rejections>,
}

/// The wall clock in milliseconds since the Unix epoch (sealed datagrams'
/// timestamps).
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Membership {
    /// Binds the UDP socket and starts the member; it joins through
    /// `config.seeds` at once and re-announces while isolated. Must be
    /// called within a tokio runtime.
    ///
    /// # Errors
    /// [`MembershipError::Bind`] if the socket cannot be bound.
    pub async fn start(config: MembershipConfig) -> Result<Membership, MembershipError> {
        let bind_error = |source| MembershipError::Bind {
            addr: config.gossip_listen,
            source,
        };
        let socket = Arc::new(
            UdpSocket::bind(config.gossip_listen)
                .await
                .map_err(bind_error)?,
        );
        let local_addr = socket.local_addr().map_err(bind_error)?;
        let bump = config.bump.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_millis() as u64)
        });
        let identity = MemberId {
            node: config.node.clone(),
            gossip: config.gossip_advertise.unwrap_or(local_addr),
            sync: config.sync_addr,
            bump,
        };
        // Sealing or tagging takes its overhead out of foca's packet budget.
        let payload_budget = match &config.keyring {
            Some(_) => config.max_datagram.saturating_sub(seal::DATAGRAM_OVERHEAD),
            None => config.max_datagram.saturating_sub(PLAINTEXT_OVERHEAD),
        };
        let tag = ClusterTag::new(&config.cluster);
        let framing = |config: &MembershipConfig| match &config.keyring {
            Some(k) => Framing::Sealed(DatagramSealer::new(
                k.clone(),
                &config.cluster,
                config.replay_window.as_millis() as u64,
                config.replay_capacity,
            )),
            None => Framing::Tagged(tag),
        };
        let rejections = Arc::new(Rejections::default());
        let core = MembershipCore::new(
            identity.clone(),
            CoreConfig {
                preset: config.preset,
                initial_cluster_size: config.initial_cluster_size,
                max_datagram: payload_budget,
                seeds: config.seeds.clone(),
            },
            config.seed.unwrap_or_else(rand::random),
            Instant::now(),
        );
        let (inputs, rx) = mpsc::channel(1024);
        let (events, _) = broadcast::channel(1024);
        let view = Arc::new(RwLock::new(View {
            identity: Some(identity),
            ..View::default()
        }));
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(read(
            socket.clone(),
            inputs.clone(),
            config.max_datagram,
            Opener {
                framing: framing(&config),
                rejections: rejections.clone(),
            },
            view.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(own(
            core,
            Sender {
                socket,
                framing: framing(&config),
            },
            rx,
            view.clone(),
            events.clone(),
            shutdown.clone(),
        ));
        tracing::info!(node = %config.node, %local_addr, "membership started");
        Ok(Membership {
            inputs,
            view,
            events,
            local_addr,
            shutdown,
            tasks,
            rejections,
        })
    }

    /// Datagrams refused at the cluster boundary, by reason, before the
    /// core saw them: with a keyring, those that did not open with the
    /// cluster key; without one, those tagged with another cluster's name
    /// (`wrong_cluster`) or without the plaintext header (`malformed`: too
    /// short, junk, sealed, or from a node that sends no header). Not in
    /// [`metrics`](Membership::metrics)' `datagrams_rejected`.
    pub fn rejections(&self) -> RejectionCounts {
        self.rejections.snapshot()
    }

    /// The live counters behind [`rejections`](Membership::rejections), for
    /// readers that outlive or do not hold this handle (e.g. a metrics
    /// endpoint).
    pub fn rejection_counters(&self) -> Arc<Rejections> {
        self.rejections.clone()
    }

    /// The address the UDP socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This node's current identity.
    pub fn identity(&self) -> Option<MemberId> {
        self.read(|v| v.identity.clone())
    }

    /// The live members (alive or suspect), this node excluded. Every live
    /// identity is listed, so a name can appear twice (see
    /// [`MembershipCore::members`]); [`distinct_members`](Self::distinct_members)
    /// keeps one per name.
    pub fn members(&self) -> Vec<MemberInfo> {
        self.read(|v| v.members.clone())
    }

    /// The live members, one per node name, this node's name left out; what
    /// [`peers`](Self::peers) lists. Of two live members with one name the
    /// one with the lower bump (the earlier start) is kept, every node
    /// keeping the same one; see [`MembershipCore::distinct_members`].
    pub fn distinct_members(&self) -> Vec<MemberInfo> {
        self.read(|v| v.distinct.clone())
    }

    /// The live members that carry this node's own name at another gossip
    /// address; empty while names are unique. Each is also raised once as
    /// [`MembershipEvent::NameConflict`]. If this node's bump is higher than
    /// a conflict's, this node is the newcomer and is expected to stop (the
    /// app decides); see [`MembershipCore::name_conflicts`].
    pub fn name_conflicts(&self) -> Vec<MemberInfo> {
        self.read(|v| v.conflicts.clone())
    }

    /// Every member known, down ones included, this node excluded.
    pub fn all_members(&self) -> Vec<MemberInfo> {
        self.read(|v| v.all.clone())
    }

    /// Membership events (up, suspect, down, name conflict) from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<MembershipEvent> {
        self.events.subscribe()
    }

    /// The core's counters, plus inputs dropped because the owner task was
    /// behind (in `datagrams_rejected`) and datagrams refused at the
    /// cluster boundary (in `garbage_datagrams`; by reason in
    /// [`rejections`](Self::rejections)).
    pub fn metrics(&self) -> MembershipStats {
        self.metrics_reader().get()
    }

    /// A handle that reads [`metrics`](Self::metrics) without this one (for
    /// a metrics endpoint that does not hold the membership).
    pub fn metrics_reader(&self) -> MetricsReader {
        MetricsReader {
            view: self.view.clone(),
            rejections: self.rejections.clone(),
        }
    }

    /// Leaves gracefully: tells a few members this node is down (they spread
    /// it at once), then stops.
    pub async fn leave(self) {
        let (done, wait) = oneshot::channel();
        if self.inputs.send(Input::Leave(done)).await.is_ok() {
            let _ = wait.await;
        }
        self.stop().await;
    }

    /// Stops at once without telling anyone (the others detect the failure).
    pub async fn shutdown(self) {
        self.stop().await;
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    fn read<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        match self.view.read() {
            Ok(v) => f(&v),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }
}

/// Reads a running [`Membership`]'s counters (see
/// [`Membership::metrics_reader`]); cheap to clone.
#[derive(Clone)]
pub struct MetricsReader {
    view: Arc<RwLock<View>>,
    rejections: Arc<Rejections>,
}

impl MetricsReader {
    /// The counters now, as [`Membership::metrics`] returns them.
    pub fn get(&self) -> MembershipStats {
        let boundary = self.rejections.snapshot().total();
        let read = |v: &View| {
            let mut m = v.stats;
            m.datagrams_rejected += v.dropped_inputs;
            m.garbage_datagrams += boundary;
            m
        };
        match self.view.read() {
            Ok(v) => read(&v),
            Err(poisoned) => read(&poisoned.into_inner()),
        }
    }
}

fn write_view(view: &RwLock<View>, f: impl FnOnce(&mut View)) {
    match view.write() {
        Ok(mut v) => f(&mut v),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

/// How datagrams cross the cluster boundary.
enum Framing {
    /// Sealed with the cluster key (binds the cluster name).
    Sealed(DatagramSealer),
    /// Plaintext behind the cluster name's tag.
    Tagged(ClusterTag),
}

/// Opens datagrams as they are read.
struct Opener {
    framing: Framing,
    rejections: Arc<Rejections>,
}

/// Frames datagrams as they are sent.
struct Sender {
    socket: Arc<UdpSocket>,
    framing: Framing,
}

impl Sender {
    async fn send(&self, to: SocketAddr, data: &[u8]) {
        let datagram = match &self.framing {
            Framing::Tagged(tag) => tag.tag_datagram(data),
            Framing::Sealed(sealer) => match sealer.seal(unix_ms(), data) {
                Ok(sealed) => sealed,
                Err(e) => {
                    tracing::warn!(%to, error = %e, "cannot seal a datagram");
                    return;
                }
            },
        };
        if let Err(e) = self.socket.send_to(&datagram, to).await {
            tracing::debug!(%to, error = %e, "send_to failed");
        }
    }
}

/// Reads datagrams into the owner's channel. A datagram larger than the
/// maximum arrives truncated to `max + 1` bytes: sealed, it does not open;
/// tagged, its payload exceeds the core's budget by one byte, so the core
/// drops it. A datagram that does not open (another key or cluster, no
/// header, ...) is counted and dropped here.
async fn read(
    socket: Arc<UdpSocket>,
    inputs: mpsc::Sender<Input>,
    max_datagram: usize,
    mut opener: Opener,
    view: Arc<RwLock<View>>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; max_datagram + 1];
    let mut garbage = LogThrottle::new(GARBAGE_LOG_INTERVAL);
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        match received {
            Ok((n, from)) => {
                let opened = match &mut opener.framing {
                    Framing::Tagged(tag) => {
                        tag.open_datagram(&buf[..n]).map(Bytes::copy_from_slice)
                    }
                    Framing::Sealed(sealer) => sealer.open(unix_ms(), &buf[..n]).map(Bytes::from),
                };
                let data = match opened {
                    Ok(data) => data,
                    Err(rejection) => {
                        opener.rejections.record(&rejection);
                        if let Some(suppressed) = garbage.allow(Instant::now()) {
                            tracing::warn!(
                                %from,
                                %rejection,
                                suppressed,
                                "dropped a datagram not of this cluster (logged at most once per \
                                 10 s; `suppressed` left out since the last)"
                            );
                        }
                        continue;
                    }
                };
                let datagram = Input::Datagram(from, data);
                if inputs.try_send(datagram).is_err() {
                    write_view(&view, |v| v.dropped_inputs += 1);
                }
            }
            // e.g. ICMP port unreachable reported on a later recv: harmless.
            Err(e) => tracing::trace!(error = %e, "recv_from failed"),
        }
    }
}

/// Owns the core: feeds it inputs and timers, sends what it produces,
/// publishes its events and view.
async fn own(
    mut core: MembershipCore,
    socket: Sender,
    mut inputs: mpsc::Receiver<Input>,
    view: Arc<RwLock<View>>,
    events: broadcast::Sender<MembershipEvent>,
    shutdown: CancellationToken,
) {
    core.handle_timeout(Instant::now());
    let mut published = core.view_generation();
    let mut garbage = LogThrottle::new(GARBAGE_LOG_INTERVAL);
    loop {
        flush(&mut core, &socket, &view, &events, &mut published).await;
        let deadline = core.poll_timeout();
        tokio::select! {
            () = shutdown.cancelled() => return,
            input = inputs.recv() => match input {
                None => return,
                Some(Input::Datagram(from, data)) => {
                    let now = Instant::now();
                    if let Err(e) = core.handle_datagram(now, from, &data)
                        && let Some(suppressed) = garbage.allow(now)
                    {
                        tracing::warn!(
                            error = %sync::error_chain(&e),
                            suppressed,
                            "dropped a datagram SWIM cannot use (logged at most once per 10 s; \
                             `suppressed` left out since the last)"
                        );
                    }
                }
                Some(Input::Leave(done)) => {
                    core.leave(Instant::now());
                    flush(&mut core, &socket, &view, &events, &mut published).await;
                    let _ = done.send(());
                    return;
                }
            },
            () = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => core.handle_timeout(Instant::now()),
        }
    }
}

/// Sends what the core produced, publishes its events, and copies its view
/// into the handle's if it changed since generation `published`.
async fn flush(
    core: &mut MembershipCore,
    socket: &Sender,
    view: &RwLock<View>,
    events: &broadcast::Sender<MembershipEvent>,
    published: &mut u64,
) {
    while let Some(Transmit { to, data }) = core.poll_transmit() {
        socket.send(to, &data).await;
    }
    let events_now: Vec<MembershipEvent> = std::iter::from_fn(|| core.poll_event()).collect();
    // The view first, then the events: a subscriber woken by an event reads
    // a view that already holds what the event announced.
    let stats = core.stats();
    let changed = core.view_generation() != *published;
    let members = changed.then(|| {
        *published = core.view_generation();
        (
            core.members().cloned().collect(),
            core.distinct_members(),
            core.name_conflicts(),
            core.all_members(),
        )
    });
    let identity = core.identity().clone();
    write_view(view, |v| {
        v.stats = stats;
        v.identity = Some(identity);
        if let Some((members, distinct, conflicts, all)) = members {
            v.members = members;
            v.distinct = distinct;
            v.conflicts = conflicts;
            v.all = all;
        }
    });
    for event in events_now {
        match &event {
            MembershipEvent::Up(m) => {
                tracing::info!(member = %m.id, addr = %m.gossip_addr, "member up")
            }
            MembershipEvent::Down(m) => {
                tracing::warn!(member = %m.id, addr = %m.gossip_addr, "member down")
            }
            MembershipEvent::Suspect(m) => {
                tracing::info!(member = %m.id, addr = %m.gossip_addr, "member suspected")
            }
            MembershipEvent::NameConflict(m) => tracing::warn!(
                node = %m.id,
                ours = %core.identity().gossip,
                theirs = %m.gossip_addr,
                our_bump = core.identity().bump,
                their_bump = m.bump,
                "another live member has this node's name"
            ),
        }
        let _ = events.send(event);
    }
}

pub use peers::MembershipPeers;

mod peers {
    use std::sync::{Arc, RwLock};

    use sync::{Peer, PeerSource};

    use super::View;

    /// The live members as a [`sync::PeerSource`]: each member's node name
    /// and sync address, one per name (the
    /// [`distinct_members`](super::Membership::distinct_members)).
    ///
    /// Of two live members with one name (a duplicate, or a node restarted
    /// at a new address before its old identity is declared down) the one
    /// with the lower bump, the earlier start, is the peer, and every node
    /// picks the same one: the running member keeps its origins, and the
    /// newcomer, which is expected to refuse to start (the app's job), is
    /// never pulled from. A member with this node's own name is never a
    /// peer: `sync` would take it for this node.
    #[derive(Clone)]
    pub struct MembershipPeers {
        pub(super) view: Arc<RwLock<View>>,
    }

    impl PeerSource for MembershipPeers {
        fn members(&self) -> Vec<Peer> {
            let read = |v: &View| {
                v.distinct
                    .iter()
                    .map(|m| Peer {
                        id: m.id.clone(),
                        addr: m.sync_addr,
                    })
                    .collect()
            };
            match self.view.read() {
                Ok(v) => read(&v),
                Err(poisoned) => read(&poisoned.into_inner()),
            }
        }
    }

    impl super::Membership {
        /// The live members as a peer source for `sync`.
        pub fn peers(&self) -> MembershipPeers {
            MembershipPeers {
                view: self.view.clone(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn garbage_at_the_boundary_is_counted_in_the_stats() {
        let loopback: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let members = Membership::start(MembershipConfig::new("a", loopback, loopback))
            .await
            .expect("starts");
        let to = members.local_addr();
        let junk = std::net::UdpSocket::bind(loopback).expect("a socket");
        let other_cluster = ClusterTag::new("another").tag_datagram(b"swim");
        for datagram in [&b"junk"[..], &other_cluster] {
            junk.send_to(datagram, to).expect("sent");
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while members.metrics().garbage_datagrams < 2 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stats = members.metrics();
        assert_eq!(stats.garbage_datagrams, 2, "{stats:?}");
        assert_eq!(members.rejections().total(), 2);
        assert_eq!(stats.datagrams_received, 0, "foca saw none of them");
        members.shutdown().await;
    }
}
