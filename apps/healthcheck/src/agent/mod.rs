//! [`Agent`]: one health-check agent, wired from the library crates.
//!
//! * a `sync::Node` replicating two maps: `origins` (the registry) and
//!   `health` (the results);
//! * a `membership::Membership` (SWIM) whose live members are the sync
//!   node's peers and the ownership's live view;
//! * its store ([`crate::store`]): both maps and the node's identity,
//!   committed by the sync node in groups; a write to the registry is
//!   acknowledged once durable;
//! * the check loop (`checks`), the only owner of the schedule, the
//!   ownership state and the rise/fall streaks; it writes no health record
//!   before the node has caught up with its peers after starting;
//! * the HTTP API ([`crate::api`]).
//!
//! At start, before checking anything, an agent looks for another live
//! agent with its own name (SWIM shows it at another address): if that one
//! answers a sync handshake under the name, this agent refuses to start
//! ([`StartError::DuplicateName`]), and the running one keeps its origins.

mod checks;
mod error;
mod events;
mod start;

pub use error::StartError;
pub use start::CLUSTER_OUTBOUND_RESERVE;

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::Instant,
};

use sync::Node;
use tokio::sync::{Mutex, Notify};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::AgentConfig,
    confirm::{CONFIRM, ConfirmMap, FORMATS, FormatMap},
    maintenance::{MAINTENANCE, MaintenanceMap},
    registry::{HEALTH, HealthMap, ORIGINS, Registry},
    shared::Shared,
};
use start::{LatePeers, Secrets, join_and_bind, node_config, plan_descriptors, start_membership};

/// Events `GET /v1/events` can resume from (see [`crate::events`]).
pub const EVENT_LOG_CAPACITY: usize = 10_000;

/// Events a `GET /v1/events` client may be behind before it is sent a
/// `resync`.
pub const EVENT_FEED_CAPACITY: usize = 4096;

/// A running agent.
pub struct Agent {
    shared: Arc<Shared>,
    api_addr: SocketAddr,
    tasks: TaskTracker,
}

impl Agent {
    /// Opens the store, starts sync, membership, the check loop and the API.
    ///
    /// # Errors
    /// [`StartError`] naming what failed; nothing is left running.
    pub async fn start(config: AgentConfig) -> Result<Agent, StartError> {
        let secrets = Secrets::load(&config)?;
        let (storage, migrated) = crate::store::open(&config.data_dir)?;
        let sync_config = node_config(&config, &secrets);
        let descriptors = plan_descriptors(&config, &sync_config)?;
        let peers = Arc::new(LatePeers::default());
        let node = Node::builder(sync_config)
            .storage(storage)?
            .durable(ORIGINS, Registry::new)?
            .durable(HEALTH, HealthMap::new)?
            .durable(MAINTENANCE, MaintenanceMap::new)?
            .durable(CONFIRM, ConfirmMap::new)?
            .durable(FORMATS, FormatMap::new)?
            .start(peers.clone())
            .await?;
        let membership = match start_membership(&config, &secrets, &node).await {
            Ok(m) => m,
            Err(e) => {
                node.shutdown().await;
                return Err(e);
            }
        };
        let (api_listener, api_addr, targets, checker) =
            match join_and_bind(&config, &node, &membership, &peers, &descriptors).await {
                Ok(bound) => bound,
                Err(e) => {
                    membership.shutdown().await;
                    node.shutdown().await;
                    return Err(e);
                }
            };
        let gossip_addr = config
            .gossip_advertise
            .unwrap_or_else(|| membership.local_addr());
        let membership_events = membership.subscribe();
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            gossip_addr,
            bump: membership.identity().map_or(0, |id| id.bump),
            swim_rejections: membership.rejection_counters(),
            membership_metrics: membership.metrics_reader(),
            last_checks: std::sync::Mutex::default(),
            events: std::sync::Mutex::new(crate::events::EventLog::new(
                crate::registry::now_ms(),
                EVENT_LOG_CAPACITY,
                Default::default(),
            )),
            event_feed: tokio::sync::broadcast::channel(EVENT_FEED_CAPACITY).0,
            index: tokio::sync::watch::Sender::new(0),
            membership: Mutex::new(Some(membership)),
            node,
            members_view: Arc::new(RwLock::new(Vec::new())),
            check_stats: std::sync::Mutex::default(),
            migrated,
            started: Instant::now(),
            registry_changed: Notify::new(),
            registry_dirty: std::sync::Mutex::new(Vec::new()),
            list: crate::list_cache::ListCache::default(),
            shutdown: shutdown.clone(),
            fatal: std::sync::Mutex::new(None),
            fatal_signal: CancellationToken::new(),
            keyring: secrets.keyring,
            tokens: RwLock::new(secrets.tokens),
            api_tls: secrets.api_tls,
            api_limits: crate::api_server::ApiLimits {
                max_connections: descriptors.api,
                header_timeout: config.api_header_timeout,
                idle_timeout: config.api_idle_timeout,
            },
            api_connections: std::sync::OnceLock::new(),
            descriptors,
            targets,
            tls_dir: checker.tls_dir().clone(),
            config,
        });
        let tasks = TaskTracker::new();
        tasks.spawn(checks::run(shared.clone(), checker, membership_events));
        tasks.spawn(events::run(shared.clone()));
        tasks.spawn(register_configured(shared.clone()));
        tasks.spawn(crate::api::serve(shared.clone(), api_listener, shutdown));
        tracing::info!(
            node = %shared.config.node, %api_addr, gossip = %gossip_addr,
            sync = %shared.node.local_addr(), actor = %shared.actor(), migrated, "agent started"
        );
        Ok(Agent {
            shared,
            api_addr,
            tasks,
        })
    }

    /// The HTTP API's address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The SWIM (UDP) address.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.shared.gossip_addr
    }

    /// The sync (TCP) address.
    pub fn sync_addr(&self) -> SocketAddr {
        self.shared.node.local_addr()
    }

    /// The agent's name.
    pub fn node(&self) -> &str {
        self.shared.me()
    }

    /// What the tasks share (for the API, the demo and tests).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Returns when the agent has stopped working on its own, with why: it
    /// found another live agent with its name after starting (the later of
    /// the two stops). Never returns otherwise.
    pub async fn fatal(&self) -> String {
        self.shared.fatal_signal.cancelled().await;
        self.shared
            .fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default()
    }

    /// Stops gracefully: leaves the SWIM cluster (others learn at once),
    /// finishes persisting, stops every task.
    pub async fn shutdown(self) {
        self.stop(true).await;
    }

    /// Stops abruptly, as a crash would: no goodbye (others detect the
    /// failure), but the store is closed cleanly.
    pub async fn kill(self) {
        self.stop(false).await;
    }

    async fn stop(self, graceful: bool) {
        if let Some(m) = self.shared.membership.lock().await.take() {
            if graceful {
                m.leave().await;
            } else {
                m.shutdown().await;
            }
        }
        self.shared.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.shared.node.shutdown().await;
        tracing::info!(node = %self.shared.config.node, graceful, "agent stopped");
    }
}

/// Registers the origins of the config file, once the node accepts writes.
async fn register_configured(shared: Arc<Shared>) {
    for (id, spec) in shared.config.origins.clone() {
        if shared.origin(&id).as_ref() == Some(&spec) {
            continue;
        }
        if let Err(e) = shared.put_origin(&id, spec).await {
            tracing::error!(origin = %id, error = %sync::error_chain(&e), "cannot register an origin of the config file");
        }
    }
}
