//! The steps of [`Agent::start`](super::Agent::start), each a concept:
//! the secrets and the safe-defaults rule, the sync node's config and the
//! descriptor budget, the membership, and joining the cluster (refusing a
//! duplicate name) and binding the API.

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock},
};

use membership::{Membership, MembershipConfig, MembershipPeers};
use sync::{Node, NodeConfig, Peer, PeerSource};

use super::StartError;
use crate::{
    checker::{Checker, CheckerConfig},
    config::AgentConfig,
    descriptors::Budget,
    shared::{startup_bound, verify_bound},
    targets::TargetPolicy,
};

/// Descriptors kept for sync connections to peers (dialled; those accepted
/// are bounded by sync's `max_inbound_sessions`) and SWIM.
pub const CLUSTER_OUTBOUND_RESERVE: u64 = 160;

/// What the config's files hold: the cluster keys, the API tokens, the
/// API's certificate. Loading them checks the config first, and refuses a
/// non-loopback listener without them unless `insecure = true`.
pub(super) struct Secrets {
    pub(super) keyring: Option<seal::Keyring>,
    pub(super) tokens: Option<crate::tokens::TokenFile>,
    pub(super) api_tls: Option<crate::api_tls::ApiTls>,
}

impl Secrets {
    pub(super) fn load(config: &AgentConfig) -> Result<Secrets, StartError> {
        config.validate()?;
        refuse_denied_origins(config)?;
        let exposures = config.exposures();
        if !exposures.is_empty() {
            if !config.insecure {
                return Err(StartError::Insecure(exposures));
            }
            for what in &exposures {
                tracing::warn!("insecure = true: {what}");
            }
        }
        let keyring = match &config.key_file {
            Some(path) => Some(crate::keys::KeyFile::read(path)?.keyring()),
            None => None,
        };
        let tokens = match &config.token_file {
            Some(path) => Some(crate::tokens::TokenFile::read(path)?),
            None => None,
        };
        let api_tls = match &config.tls {
            Some(files) => Some(crate::api_tls::ApiTls::load(
                &files.cert_file,
                &files.key_file,
            )?),
            None => None,
        };
        Ok(Secrets {
            keyring,
            tokens,
            api_tls,
        })
    }
}

/// Refuses a config whose `[[origins]]` include a literal address that
/// this agent's `[checks]` policy denies (judged against the configured
/// listen addresses; an OS-chosen port is judged once bound, at check
/// time). Names are judged at check time.
fn refuse_denied_origins(config: &AgentConfig) -> Result<(), StartError> {
    let own: Vec<(&'static str, SocketAddr)> = [
        ("listen.api", config.api_listen),
        ("listen.sync", config.sync_listen),
        ("listen.gossip", config.gossip_listen),
    ]
    .into_iter()
    .filter(|(_, a)| a.port() != 0)
    .collect();
    let policy = crate::targets::TargetPolicy::new(&config.checks, &own)?;
    for (i, (id, spec)) in config.origins.iter().enumerate() {
        if let Some(Err(denied)) = policy.check_literal(&spec.address) {
            return Err(StartError::Config(crate::config::ConfigError {
                source_name: "config".into(),
                message: format!("origins[{i}] ({id}).address: {denied}"),
            }));
        }
    }
    Ok(())
}

/// The sync node's config from the agent's.
pub(super) fn node_config(config: &AgentConfig, secrets: &Secrets) -> NodeConfig {
    let mut sync_config = NodeConfig::new(
        config.node.clone(),
        config.cluster.clone(),
        config.sync_listen,
    );
    sync_config.engine.pull_interval = config.pull_interval;
    sync_config.engine.startup_timeout = startup_bound(config);
    sync_config.engine.verify_timeout = verify_bound(config);
    sync_config.keyring = secrets.keyring.clone();
    sync_config
}

/// Raises the descriptor limit where the system allows it and shares it
/// between the cluster, the API and the checks.
pub(super) fn plan_descriptors(
    config: &AgentConfig,
    sync_config: &NodeConfig,
) -> Result<Budget, StartError> {
    let limit = crate::descriptors::raise().map_err(|source| StartError::Io {
        what: "raising the descriptor limit",
        source,
    })?;
    if let Some(before) = limit.raised_from {
        tracing::info!(
            from = before,
            to = limit.soft,
            "raised the descriptor limit"
        );
    }
    let descriptors = Budget::plan(
        limit.soft,
        sync_config.max_inbound_sessions as u64 + CLUSTER_OUTBOUND_RESERVE,
        crate::descriptors::Wanted {
            api: config.api_max_connections,
            checks_in_flight: config.max_concurrent_checks,
            checks_idle: config.max_idle_connections,
        },
    )?;
    tracing::info!(
        limit = descriptors.limit,
        reserved = descriptors.reserved,
        api = descriptors.api,
        checks_in_flight = descriptors.checks_in_flight,
        checks_idle = descriptors.checks_idle,
        "descriptor budget"
    );
    Ok(descriptors)
}

/// Starts SWIM, advertising `node`'s sync address.
pub(super) async fn start_membership(
    config: &AgentConfig,
    secrets: &Secrets,
    node: &Node,
) -> Result<Membership, StartError> {
    let mut m_config = MembershipConfig::new(
        config.node.clone(),
        config.gossip_listen,
        config.sync_advertise.unwrap_or_else(|| node.local_addr()),
    );
    m_config.gossip_advertise = config.gossip_advertise;
    m_config.seeds = config.seeds.clone();
    m_config.preset = config.preset;
    m_config.keyring = secrets.keyring.clone();
    m_config.cluster = config.cluster.clone();
    Ok(Membership::start(m_config).await?)
}

/// What [`join_and_bind`] made: the API listener and its address, the
/// check-target policy and the checker.
pub(super) type Bound = (
    tokio::net::TcpListener,
    SocketAddr,
    Arc<TargetPolicy>,
    Checker,
);

/// Refuses a duplicate name, makes the membership's live members the sync
/// node's peers, binds the API, and builds the check-target policy (denying
/// this agent's own listeners) and the checker. On error the caller stops
/// the node and the membership.
pub(super) async fn join_and_bind(
    config: &AgentConfig,
    node: &Node,
    membership: &Membership,
    peers: &LatePeers,
    descriptors: &Budget,
) -> Result<Bound, StartError> {
    refuse_a_duplicate(config, node, membership).await?;
    peers.set(membership.peers());
    let api_listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .map_err(|source| StartError::Bind {
            what: "api listener",
            addr: config.api_listen,
            source,
        })?;
    let api_addr = api_listener.local_addr().map_err(|source| StartError::Io {
        what: "reading the api listener's address",
        source,
    })?;
    let mut own = vec![
        ("listen.api", api_addr),
        ("listen.sync", node.local_addr()),
        ("listen.gossip", membership.local_addr()),
    ];
    own.extend(config.sync_advertise.map(|a| ("advertise.sync", a)));
    own.extend(config.gossip_advertise.map(|a| ("advertise.gossip", a)));
    let targets = Arc::new(TargetPolicy::new(&config.checks, &own)?);
    let checker = Checker::new(CheckerConfig {
        max_concurrency: descriptors.checks_in_flight,
        user_agent: format!(
            "vantage-healthcheck/{} ({})",
            env!("CARGO_PKG_VERSION"),
            config.node
        ),
        targets: targets.clone(),
        max_idle_connections: descriptors.checks_idle,
        tls_dir: crate::spec::tls_files::TlsDir::new(config.check_tls_dir.clone()),
    })?;
    Ok((api_listener, api_addr, targets, checker))
}

/// A peer source that the membership fills in once it has started (the sync
/// node must start first: its address is part of the SWIM identity).
#[derive(Default)]
pub(super) struct LatePeers(RwLock<Option<MembershipPeers>>);

impl PeerSource for LatePeers {
    fn members(&self) -> Vec<Peer> {
        match self.0.read() {
            Ok(guard) => guard.as_ref().map(|p| p.members()).unwrap_or_default(),
            Err(poisoned) => poisoned
                .into_inner()
                .as_ref()
                .map(|p| p.members())
                .unwrap_or_default(),
        }
    }
}

impl LatePeers {
    /// The membership has started: its live members are the peers now.
    pub(super) fn set(&self, peers: MembershipPeers) {
        match self.0.write() {
            Ok(mut g) => *g = Some(peers),
            Err(p) => *p.into_inner() = Some(peers),
        }
    }
}

/// Refuses to start if another live agent has this agent's name: SWIM
/// shows a member with the name at another address, and it answers a sync
/// handshake under that name (a node restarted at a new address sees its
/// old identity too, until it is declared down, but that one does not
/// answer). Waits, bounded, for SWIM to hear from the seeds first.
async fn refuse_a_duplicate(
    config: &AgentConfig,
    node: &Node,
    membership: &Membership,
) -> Result<(), StartError> {
    if !config.seeds.is_empty() {
        // A seed that is up answers the first announce within a round trip;
        // give it until the first re-announce, then a moment for the rest of
        // the view (it comes in the same few datagrams).
        let bound = config.preset.announce_interval();
        let mut events = membership.subscribe();
        let deadline = tokio::time::Instant::now() + bound;
        while membership.members().is_empty() && tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout_at(deadline, events.recv()).await;
        }
        let settle = std::time::Duration::from_millis(300).min(bound);
        while !membership.members().is_empty()
            && tokio::time::timeout(settle, events.recv()).await.is_ok()
        {}
    }
    let ours = config
        .gossip_advertise
        .unwrap_or_else(|| membership.local_addr());
    for other in membership.name_conflicts() {
        match node.probe(other.sync_addr).await {
            Ok(name) if name.0 == config.node => {
                return Err(StartError::DuplicateName {
                    name: config.node.clone(),
                    ours,
                    theirs: other.gossip_addr,
                    their_sync: other.sync_addr,
                });
            }
            Ok(name) => {
                tracing::warn!(member = %other.gossip_addr, answered_as = %name, "a member with this agent's name answers under another");
            }
            Err(e) => {
                tracing::info!(member = %other.gossip_addr, error = %sync::error_chain(&e), "a member with this agent's name does not answer: a previous run of this agent");
            }
        }
    }
    Ok(())
}
