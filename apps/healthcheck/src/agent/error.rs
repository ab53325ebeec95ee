//! [`StartError`]: why an agent could not start.

use std::net::SocketAddr;

use crate::store::StoreError;

/// Why an agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data dir's store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An operating-system call failed (raising the descriptor limit).
    #[error("{what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A listener could not be bound to its address.
    #[error("cannot bind the {what} to {addr}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The sync node could not start.
    #[error("sync")]
    Sync(#[from] sync::SyncError),
    /// The membership could not start.
    #[error("membership")]
    Membership(#[from] membership::MembershipError),
    /// The cluster key file could not be used.
    #[error("cluster key")]
    Keys(#[from] crate::keys::KeyFileError),
    /// The API token file could not be used.
    #[error("api tokens")]
    Tokens(#[from] crate::tokens::TokenFileError),
    /// The API's certificate or key could not be used.
    #[error("api tls")]
    Tls(#[from] crate::api_tls::TlsError),
    /// A listener binds a non-loopback address but a token file or a cluster
    /// key is missing, and the config does not say `insecure = true`.
    #[error(
        "refusing to start: {}; configure them, bind the listeners to loopback, or set insecure = true to accept this",
        .0.join("; ")
    )]
    Insecure(Vec<String>),
    /// Another agent with this agent's name is alive (it answered a sync
    /// handshake under it): names are unique in a cluster. It keeps
    /// running; this one stops.
    #[error(
        "another agent named {name:?} is alive at {theirs} (gossip; sync {their_sync}): this agent \
         (gossip {ours}) refuses to start; give it another name, or stop the other one"
    )]
    DuplicateName {
        /// The name.
        name: String,
        /// This agent's gossip address.
        ours: SocketAddr,
        /// The other agent's gossip address.
        theirs: SocketAddr,
        /// The other agent's sync address.
        their_sync: SocketAddr,
    },
    /// The HTTP client for checks could not be built.
    #[error("checker")]
    Checker(#[from] crate::checker::CheckerError),
    /// The descriptor limit cannot hold the connections the config asks
    /// for.
    #[error(transparent)]
    Descriptors(#[from] crate::descriptors::BudgetError),
    /// The config breaks a rule (a config built in code; a file is
    /// checked as it is read).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The `[checks]` allow or deny lists cannot be used.
    #[error("checks")]
    Targets(#[from] crate::targets::TargetsError),
}
