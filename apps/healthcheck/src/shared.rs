//! [`Shared`]: what the agent's tasks (the check loop, the API, the
//! registration of configured origins) share, and the operations on it.
//!
//! Its fields are crate-private: the public surface is its methods (the
//! registry and health reads and writes, the members, the counters, the
//! reloads), which the API, the demo and tests use. It imports neither the
//! agent's lifecycle ([`crate::agent`]) nor the API ([`crate::api`]): both
//! depend on it, never the other way.

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::Instant,
};

use crdt::ActorId;
use membership::{MemberInfo, Membership};
use sync::{Node, SyncError};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::{
    check_core::CheckStats,
    config::AgentConfig,
    confirm::{CONFIRM, ConfirmMap},
    list_cache::ListCache,
    maintenance::{MAINTENANCE, Maintenance, MaintenanceMap, MaintenanceRequest},
    record::HealthRecord,
    registry::{HEALTH, HealthMap, ORIGINS, Registered, Registry, now_ms},
    spec::OriginSpec,
};

/// Why a registry change could not be acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The change is applied in memory (and replicated once durable) but
    /// its commit failed; it is retried with the next one.
    #[error("persisting the registry")]
    Store(#[source] SyncError),
    /// The agent is verifying its identity with its peers after a restart;
    /// nothing changed. Retry in a moment.
    #[error("not ready: this agent is verifying its identity with its peers; retry shortly")]
    NotReady,
    /// The agent is shutting down.
    #[error("the agent is stopping")]
    Stopped,
    /// A replica missing or of another type: a bug.
    #[error("internal")]
    Internal(#[source] SyncError),
}

impl From<SyncError> for PersistError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::NotReady => PersistError::NotReady,
            SyncError::Stopped => PersistError::Stopped,
            SyncError::CommitFailed(_) | SyncError::Storage(_) => PersistError::Store(e),
            other => PersistError::Internal(other),
        }
    }
}

/// What the agent's tasks and the API share.
pub struct Shared {
    /// The configuration the agent started with.
    pub(crate) config: AgentConfig,
    /// The sync node holding both replicas.
    pub(crate) node: Node,
    pub(crate) membership: Mutex<Option<Membership>>,
    pub(crate) members_view: Arc<RwLock<Vec<MemberInfo>>>,
    pub(crate) gossip_addr: SocketAddr,
    /// This agent's SWIM identity bump (its start time in ms).
    pub(crate) bump: u64,
    /// The check core's counters, as the check loop last published them.
    pub(crate) check_stats: std::sync::Mutex<CheckStats>,
    /// Origins migrated from the first release's store at this start.
    pub(crate) migrated: usize,
    /// When the agent started.
    pub(crate) started: Instant,
    /// Woken when the registry changes locally (the check loop re-reads it).
    pub(crate) registry_changed: Notify,
    /// Ids changed locally since the check loop last looked.
    pub(crate) registry_dirty: std::sync::Mutex<Vec<String>>,
    /// The API's cached origins list.
    pub(crate) list: ListCache,
    pub(crate) shutdown: CancellationToken,
    /// Set when the agent must stop on its own (see [`Agent::fatal`](crate::agent::Agent::fatal)).
    pub(crate) fatal: std::sync::Mutex<Option<String>>,
    pub(crate) fatal_signal: CancellationToken,
    /// The cluster keys, if a key file is configured.
    pub(crate) keyring: Option<seal::Keyring>,
    /// The API tokens, if a token file is configured (replaced on reload).
    pub(crate) tokens: RwLock<Option<crate::tokens::TokenFile>>,
    /// The API's TLS, if configured.
    pub(crate) api_tls: Option<crate::api_tls::ApiTls>,
    /// The API's connection limits (its cap from the descriptor budget).
    pub(crate) api_limits: crate::api_server::ApiLimits,
    /// The API server's connection counters, once it runs.
    pub(crate) api_connections: std::sync::OnceLock<crate::api_server::ServerStats>,
    /// How the descriptor limit is shared.
    pub(crate) descriptors: crate::descriptors::Budget,
    /// Where checks may go (what the checker and `PUT` judge).
    pub(crate) targets: Arc<crate::targets::TargetPolicy>,
    /// Where the TLS files specs name are read (what `PUT` loads them from).
    pub(crate) tls_dir: crate::spec::tls_files::TlsDir,
    /// Health transitions and registry changes, in order (see
    /// [`crate::events`]).
    pub(crate) events: std::sync::Mutex<crate::events::EventLog>,
    /// Each event as it enters the log, for `GET /v1/events`.
    pub(crate) event_feed: tokio::sync::broadcast::Sender<Arc<crate::events::Event>>,
    /// The log's index, for blocking reads.
    pub(crate) index: tokio::sync::watch::Sender<u64>,
    /// When this agent last checked each origin it checks (wall ms), for
    /// the status page: a record is rewritten only on a change or the
    /// refresh, so its time is not the last check's.
    pub(crate) last_checks: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// SWIM's counters (garbage datagrams among them).
    pub(crate) membership_metrics: membership::MetricsReader,
    /// SWIM datagrams refused by the cluster key.
    pub(crate) swim_rejections: Arc<seal::Rejections>,
}

impl Shared {
    /// Re-reads the key file and makes the keyring match it (see
    /// [`crate::keys`]). Returns the primary key's id and the ids removed.
    ///
    /// # Errors
    /// The file is unreadable or invalid (the keyring is unchanged), or no
    /// key file is configured.
    pub fn reload_keys(
        &self,
    ) -> Result<(seal::KeyId, Vec<seal::KeyId>), crate::keys::KeyFileError> {
        let (Some(path), Some(keyring)) = (&self.config.key_file, &self.keyring) else {
            return Err(crate::keys::KeyFileError::NotConfigured);
        };
        let file = crate::keys::KeyFile::read(path)?;
        Ok(file.apply(keyring))
    }

    /// Re-reads the token file and replaces the tokens in force; returns
    /// how many it holds.
    ///
    /// # Errors
    /// The file is unreadable or invalid (the tokens in force are kept), or
    /// no token file is configured.
    pub fn reload_tokens(&self) -> Result<usize, crate::tokens::TokenFileError> {
        let Some(path) = &self.config.token_file else {
            return Err(crate::tokens::TokenFileError::NotConfigured);
        };
        let file = crate::tokens::TokenFile::read(path)?;
        let n = file.len();
        match self.tokens.write() {
            Ok(mut t) => *t = Some(file),
            Err(p) => *p.into_inner() = Some(file),
        }
        Ok(n)
    }

    /// Re-reads the API's certificate and key; new connections get them.
    ///
    /// # Errors
    /// They are unreadable or do not fit (the ones in force are kept); or
    /// the API has no TLS (`Ok(false)`).
    pub fn reload_tls(&self) -> Result<bool, crate::api_tls::TlsError> {
        match &self.api_tls {
            Some(tls) => tls.reload().map(|()| true),
            None => Ok(false),
        }
    }

    /// The API's base URL (`https://` with TLS).
    pub fn api_url(&self, addr: SocketAddr) -> String {
        let scheme = if self.api_tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{addr}")
    }

    /// The scope `presented` grants: `Some(Write)` for any request while no
    /// token file is configured (the API is open), else the token's scope,
    /// or `None` for no or an unknown token.
    pub fn scope_of(&self, presented: Option<&str>) -> Option<crate::tokens::Scope> {
        let read = |t: &Option<crate::tokens::TokenFile>| match t {
            None => Some(crate::tokens::Scope::Write),
            Some(file) => presented.and_then(|p| file.scope_of(p)),
        };
        match self.tokens.read() {
            Ok(t) => read(&t),
            Err(p) => read(&p.into_inner()),
        }
    }

    /// The check core's counters, as the check loop last published them.
    pub fn check_stats(&self) -> CheckStats {
        *self.check_stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes the check core's counters (the check loop, after each step).
    pub(crate) fn publish_check_stats(&self, stats: CheckStats) {
        *self.check_stats.lock().unwrap_or_else(|p| p.into_inner()) = stats;
    }

    /// The configuration the agent started with.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The sync node holding both replicas (registry and health).
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// When the agent started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Origins migrated from the first release's store at this start.
    pub fn migrated(&self) -> usize {
        self.migrated
    }

    /// The cluster keys, if a key file is configured.
    pub fn keyring(&self) -> Option<&seal::Keyring> {
        self.keyring.as_ref()
    }

    /// SWIM datagrams refused by the cluster key or name, so far.
    pub fn swim_rejections(&self) -> seal::RejectionCounts {
        self.swim_rejections.snapshot()
    }

    /// SWIM's counters now.
    pub fn membership_metrics(&self) -> membership::MembershipStats {
        self.membership_metrics.get()
    }

    /// The event log's index now (see [`crate::events`]).
    pub fn index(&self) -> u64 {
        *self.index.borrow()
    }

    /// Waits until the index passes `index` or `wait` has passed; returns
    /// the index then.
    pub async fn wait_for_index(&self, index: u64, wait: std::time::Duration) -> u64 {
        let mut rx = self.index.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|i| *i > index)).await;
        self.index()
    }

    /// The agent's name.
    pub fn me(&self) -> &str {
        &self.config.node
    }

    /// The actor this agent's replicas mint dots for: one per data dir,
    /// kept across restarts (a fresh one only for a lost, stale or copied
    /// store).
    pub fn actor(&self) -> ActorId {
        self.node
            .read::<Registry, _>(ORIGINS, |m| m.actor())
            .unwrap_or_default()
    }

    /// Per replica, how many actors its causal context holds (see
    /// [`crate::node_view::NodeView::context_actors`]).
    pub fn context_actors(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let origins = self
            .node
            .read::<Registry, _>(ORIGINS, |m| m.context().actors().count())
            .unwrap_or_default();
        let health = self
            .node
            .read::<HealthMap, _>(HEALTH, |m| m.context().actors().count())
            .unwrap_or_default();
        [(ORIGINS, origins), (HEALTH, health)].into_iter().collect()
    }

    /// Registers or replaces origin `id` and returns once the change is
    /// durable. Returns whether it was new.
    ///
    /// # Errors
    /// [`PersistError`]: [`NotReady`](PersistError::NotReady) if the agent
    /// is still verifying its identity after the bound; [`Store`](PersistError::Store)
    /// if the commit failed (the change is applied in memory and retried).
    pub async fn put_origin(&self, id: &str, spec: OriginSpec) -> Result<bool, PersistError> {
        self.ready().await?;
        let entry = Registered {
            spec,
            updated_at_ms: now_ms(),
        };
        let created = self.node.write::<Registry, _>(ORIGINS, |m| {
            let created = !m.contains_key(&id.to_owned());
            m.insert(id.to_owned(), entry);
            created
        })?;
        self.local_registry_change(id);
        self.node.flush().await?;
        Ok(created)
    }

    /// Removes origin `id` and returns once that is durable; `false` if it
    /// was not registered.
    ///
    /// # Errors
    /// [`PersistError`], as for [`put_origin`](Self::put_origin).
    pub async fn delete_origin(&self, id: &str) -> Result<bool, PersistError> {
        self.ready().await?;
        let removed = self
            .node
            .write::<Registry, _>(ORIGINS, |m| m.remove(&id.to_owned()).is_some())?;
        if removed {
            // Its maintenance goes with it (a later origin of that id
            // starts without).
            self.node.write::<MaintenanceMap, _>(MAINTENANCE, |m| {
                if m.contains_key(&id.to_owned()) {
                    m.remove(&id.to_owned());
                }
            })?;
            // And so does its last second opinion.
            self.node.write::<ConfirmMap, _>(CONFIRM, |m| {
                if m.contains_key(&id.to_owned()) {
                    m.remove(&id.to_owned());
                }
            })?;
            self.local_registry_change(id);
            self.node.flush().await?;
        }
        Ok(removed)
    }

    /// Puts origin `id` under maintenance as `request` says, from now, and
    /// returns it once that is durable; `None` if the origin is not
    /// registered.
    ///
    /// # Errors
    /// [`PersistError`], as for [`put_origin`](Self::put_origin).
    pub async fn put_maintenance(
        &self,
        id: &str,
        request: &MaintenanceRequest,
    ) -> Result<Option<Maintenance>, PersistError> {
        self.ready().await?;
        if self.origin(id).is_none() {
            return Ok(None);
        }
        let maintenance = request.at(now_ms(), self.me());
        let entry = maintenance.clone();
        self.node.write::<MaintenanceMap, _>(MAINTENANCE, |m| {
            m.insert(id.to_owned(), entry);
        })?;
        self.local_registry_change(id);
        self.node.flush().await?;
        Ok(Some(maintenance))
    }

    /// Ends the maintenance of origin `id` and returns once that is
    /// durable; `false` if it was not under maintenance (or it had
    /// expired).
    ///
    /// # Errors
    /// [`PersistError`], as for [`put_origin`](Self::put_origin).
    pub async fn end_maintenance(&self, id: &str) -> Result<bool, PersistError> {
        self.ready().await?;
        let now = now_ms();
        let ended = self.node.write::<MaintenanceMap, _>(MAINTENANCE, |m| {
            let key = id.to_owned();
            let active = m.get(&key).is_some_and(|x| x.active(now));
            if m.contains_key(&key) {
                m.remove(&key);
            }
            active
        })?;
        self.local_registry_change(id);
        self.node.flush().await?;
        Ok(ended)
    }

    /// Removes the maintenance of `id` if it has expired at `now_ms` (the
    /// checker's clean-up at expiry; a newer maintenance is kept).
    pub(crate) fn remove_expired_maintenance(&self, id: &str, now_ms: u64) {
        let _ = self.node.write::<MaintenanceMap, _>(MAINTENANCE, |m| {
            let key = id.to_owned();
            if m.get(&key).is_some_and(|x| !x.active(now_ms)) {
                m.remove(&key);
            }
        });
    }

    /// The maintenance of `id` in force now, if any.
    pub fn maintenance(&self, id: &str) -> Option<Maintenance> {
        let now = now_ms();
        self.node
            .read::<MaintenanceMap, _>(MAINTENANCE, |m| {
                m.get(&id.to_owned()).filter(|x| x.active(now)).cloned()
            })
            .ok()
            .flatten()
    }

    /// Every maintenance in force now, by origin.
    pub fn all_maintenance(&self) -> std::collections::BTreeMap<String, Maintenance> {
        let now = now_ms();
        self.node
            .read::<MaintenanceMap, _>(MAINTENANCE, |m| {
                m.iter()
                    .filter(|(_, x)| x.active(now))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits (at most the verification bound, plus a margin) for the node
    /// to accept writes.
    async fn ready(&self) -> Result<(), PersistError> {
        let bound = verify_bound(&self.config) + startup_bound(&self.config);
        tokio::time::timeout(bound, self.node.ready())
            .await
            .map_err(|_| PersistError::NotReady)
    }

    fn local_registry_change(&self, id: &str) {
        self.list.invalidate();
        self.registry_dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(id.to_owned());
        self.registry_changed.notify_one();
    }

    /// The registered origins, ascending by id.
    pub fn origins(&self) -> Vec<(String, OriginSpec)> {
        self.node
            .read::<Registry, _>(ORIGINS, |m| {
                m.iter().map(|(k, v)| (k.clone(), v.spec.clone())).collect()
            })
            .unwrap_or_default()
    }

    /// How many origins are registered.
    pub fn origins_len(&self) -> usize {
        self.node
            .read::<Registry, _>(ORIGINS, |m| m.len())
            .unwrap_or_default()
    }

    /// One registered origin.
    pub fn origin(&self, id: &str) -> Option<OriginSpec> {
        self.node
            .read::<Registry, _>(ORIGINS, |m| m.get(&id.to_owned()).map(|r| r.spec.clone()))
            .ok()
            .flatten()
    }

    /// The visible health record of an origin.
    pub fn health(&self, id: &str) -> Option<HealthRecord> {
        self.node
            .read::<HealthMap, _>(HEALTH, |m| m.get(&id.to_owned()).cloned())
            .ok()
            .flatten()
    }

    /// Every visible health record.
    pub fn all_health(&self) -> std::collections::BTreeMap<String, HealthRecord> {
        self.node
            .read::<HealthMap, _>(HEALTH, |m| {
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
            })
            .unwrap_or_default()
    }

    /// Every member known to SWIM (down ones included), this agent first.
    pub fn members(&self) -> Vec<MemberInfo> {
        let mut out = vec![MemberInfo {
            id: self.config.node.clone().into(),
            gossip_addr: self.gossip_addr,
            sync_addr: self
                .config
                .sync_advertise
                .unwrap_or_else(|| self.node.local_addr()),
            state: membership::MemberState::Alive,
            bump: self.bump,
        }];
        match self.members_view.read() {
            Ok(v) => out.extend(v.iter().cloned()),
            Err(p) => out.extend(p.into_inner().iter().cloned()),
        }
        out
    }

    /// Stops the agent on its own, with `why` (see [`Agent::fatal`](crate::agent::Agent::fatal)).
    pub(crate) fn fail(&self, why: String) {
        tracing::error!("{why}");
        *self.fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        self.fatal_signal.cancel();
    }
}

/// How long a starting agent waits for its peers' first answers before it
/// counts as caught up anyway (alone, or timed out) and publishes health
/// records.
pub(crate) fn startup_bound(config: &AgentConfig) -> std::time::Duration {
    (config.pull_interval * 3).max(std::time::Duration::from_millis(500))
}

/// How long an agent whose actor was restored waits for every member live
/// at its start to answer before it takes a fresh actor (unsure).
pub(crate) fn verify_bound(config: &AgentConfig) -> std::time::Duration {
    startup_bound(config) * 5
}
