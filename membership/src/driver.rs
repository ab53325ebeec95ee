//! The tokio driver: one task owns the core, one task reads the UDP socket,
//! and every input (datagrams, commands) reaches the owner over one channel;
//! timers come from the core's deadline heap.

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use seal::{DatagramSealer, RejectionCounts, Rejections};
use tokio::{
    net::UdpSocket,
    sync::{broadcast, mpsc, oneshot},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    CoreMetrics, MemberId, MemberInfo, MembershipConfig, MembershipCore, MembershipError,
    MembershipEvent,
};

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
    all: Vec<MemberInfo>,
    metrics: CoreMetrics,
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
    /// [`MembershipError::Io`] if the socket cannot be bound.
    pub async fn start(config: MembershipConfig) -> Result<Membership, MembershipError> {
        let socket = Arc::new(UdpSocket::bind(config.gossip_listen).await?);
        let local_addr = socket.local_addr()?;
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
        // Sealing takes its overhead out of foca's packet budget.
        let payload_budget = match &config.keyring {
            Some(_) => config.max_datagram.saturating_sub(seal::DATAGRAM_OVERHEAD),
            None => config.max_datagram,
        };
        let sealer = |config: &MembershipConfig| {
            config.keyring.as_ref().map(|k| {
                DatagramSealer::new(
                    k.clone(),
                    &config.cluster,
                    config.replay_window.as_millis() as u64,
                    config.replay_capacity,
                )
            })
        };
        let rejections = Arc::new(Rejections::default());
        let core = MembershipCore::new(
            identity.clone(),
            config.preset,
            config.initial_cluster_size,
            payload_budget,
            config.seeds.clone(),
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
                sealer: sealer(&config),
                rejections: rejections.clone(),
            },
            view.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(own(
            core,
            Sender {
                socket,
                sealer: sealer(&config),
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

    /// Datagrams refused because they did not open with the cluster key,
    /// by reason (all zero without a keyring).
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

    /// The live members (alive or suspect), this node excluded.
    pub fn members(&self) -> Vec<MemberInfo> {
        self.read(|v| v.members.clone())
    }

    /// Every member known, down ones included, this node excluded.
    pub fn all_members(&self) -> Vec<MemberInfo> {
        self.read(|v| v.all.clone())
    }

    /// Up/Down events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<MembershipEvent> {
        self.events.subscribe()
    }

    /// The core's counters, plus inputs dropped because the owner task was
    /// behind (in `datagrams_rejected`).
    pub fn metrics(&self) -> CoreMetrics {
        self.read(|v| {
            let mut m = v.metrics.clone();
            m.datagrams_rejected += v.dropped_inputs;
            m
        })
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

fn write_view(view: &RwLock<View>, f: impl FnOnce(&mut View)) {
    match view.write() {
        Ok(mut v) => f(&mut v),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

/// Opens sealed datagrams as they are read (if a key is configured).
struct Opener {
    sealer: Option<DatagramSealer>,
    rejections: Arc<Rejections>,
}

/// Seals datagrams as they are sent (if a key is configured).
struct Sender {
    socket: Arc<UdpSocket>,
    sealer: Option<DatagramSealer>,
}

impl Sender {
    async fn send(&self, to: SocketAddr, data: &[u8]) {
        let sealed;
        let data = match &self.sealer {
            None => data,
            Some(sealer) => match sealer.seal(unix_ms(), data) {
                Ok(s) => {
                    sealed = s;
                    &sealed
                }
                Err(e) => {
                    tracing::warn!(%to, error = %e, "cannot seal a datagram");
                    return;
                }
            },
        };
        if let Err(e) = self.socket.send_to(data, to).await {
            tracing::debug!(%to, error = %e, "send_to failed");
        }
    }
}

/// Reads datagrams into the owner's channel. A datagram larger than the
/// maximum arrives truncated to `max + 1` bytes, so the core sees it is too
/// big and drops it. With a key, a datagram that does not open is counted
/// and dropped here.
async fn read(
    socket: Arc<UdpSocket>,
    inputs: mpsc::Sender<Input>,
    max_datagram: usize,
    mut opener: Opener,
    view: Arc<RwLock<View>>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; max_datagram + 1];
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        match received {
            Ok((n, from)) => {
                let data = match &mut opener.sealer {
                    None => Bytes::copy_from_slice(&buf[..n]),
                    Some(sealer) => match sealer.open(unix_ms(), &buf[..n]) {
                        Ok(plain) => Bytes::from(plain),
                        Err(rejection) => {
                            tracing::debug!(%from, %rejection, "dropped a datagram");
                            opener.rejections.record(&rejection);
                            continue;
                        }
                    },
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
    loop {
        flush(&mut core, &socket, &view, &events).await;
        let deadline = core.poll_timeout();
        tokio::select! {
            () = shutdown.cancelled() => return,
            input = inputs.recv() => match input {
                None => return,
                Some(Input::Datagram(from, data)) => {
                    if let Err(e) = core.handle_datagram(Instant::now(), from, &data) {
                        tracing::debug!(error = %e, "dropped a datagram");
                    }
                }
                Some(Input::Leave(done)) => {
                    core.leave(Instant::now());
                    flush(&mut core, &socket, &view, &events).await;
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

async fn flush(
    core: &mut MembershipCore,
    socket: &Sender,
    view: &RwLock<View>,
    events: &broadcast::Sender<MembershipEvent>,
) {
    while let Some((to, data)) = core.poll_transmit() {
        socket.send(to, &data).await;
    }
    let mut any = false;
    while let Some(event) = core.poll_event() {
        any = true;
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
        }
        let _ = events.send(event);
    }
    let metrics = core.metrics().clone();
    let members: Option<(Vec<MemberInfo>, Vec<MemberInfo>)> =
        any.then(|| (core.members().cloned().collect(), core.all_members()));
    let identity = core.identity().clone();
    write_view(view, |v| {
        v.metrics = metrics;
        v.identity = Some(identity);
        if let Some((members, all)) = members {
            v.members = members;
            v.all = all;
        }
    });
}

#[cfg(feature = "sync")]
pub use peers::MembershipPeers;

#[cfg(feature = "sync")]
mod peers {
    use std::sync::{Arc, RwLock};

    use sync::{NodeId, Peer, PeerSource};

    use super::View;

    /// The live members as a [`sync::PeerSource`]: each member's node name
    /// and sync address.
    #[derive(Clone)]
    pub struct MembershipPeers {
        pub(super) view: Arc<RwLock<View>>,
    }

    impl PeerSource for MembershipPeers {
        fn members(&self) -> Vec<Peer> {
            let read = |v: &View| {
                v.members
                    .iter()
                    .map(|m| Peer {
                        id: NodeId(m.id.clone()),
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
