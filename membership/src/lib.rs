//! SWIM membership and failure detection: the [`foca`] crate driven over
//! tokio UDP.
//!
//! foca does the protocol (probes, indirect probes, suspicion, dissemination,
//! identity renewal); this crate gives it an identity that carries the
//! node's sync address ([`MemberId`]), timing presets scaled to cluster size
//! ([`Preset`]), a sans-IO core with a deadline heap for its timers
//! ([`MembershipCore`]) and a thin tokio driver ([`Membership`]): one task
//! owns the core, one UDP socket, inputs over a channel.
//!
//! One cluster, unique names: every datagram carries the cluster name,
//! sealed with the cluster key or, without one, as a tag in a small
//! plaintext header ([`ClusterTag`]), so a node configured with another
//! `cluster` never joins. Two live members with one name are reported
//! ([`Membership::name_conflicts`], [`MembershipEvent::NameConflict`]) and
//! listed once as sync peers, the earlier start kept
//! ([`Membership::distinct_members`]).
//!
//! A node is named by [`NodeId`], the type sync's handshakes check, so a
//! member is a sync peer without translation ([`MembershipPeers`]). It
//! lives in `sync` and is re-exported here: membership depends on sync
//! (not the reverse: sync takes its peers from any [`sync::PeerSource`]),
//! which every build of the workspace already did through the former
//! default `sync` feature; a crate of its own for one newtype would be one
//! more crate to version for no gain, and putting it here would make sync
//! depend on SWIM.
//!
//! ```no_run
//! # async fn run() -> Result<(), membership::MembershipError> {
//! use membership::{Membership, MembershipConfig, Preset};
//!
//! let mut config = MembershipConfig::new(
//!     "hc-1",
//!     "127.0.0.1:7946".parse().expect("an address"),
//!     "127.0.0.1:7101".parse().expect("an address"),
//! );
//! config.seeds = vec!["127.0.0.1:7947".parse().expect("an address")];
//! config.preset = Preset::Lan;
//! let members = Membership::start(config).await?;
//! let mut events = members.subscribe();
//! if let Ok(event) = events.recv().await {
//!     println!("{event:?}; live: {:?}", members.members());
//! }
//! members.leave().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod config;
mod core;
mod driver;
mod error;
mod frame;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod identity;

pub use config::{MembershipConfig, Preset};
pub use core::{
    CoreConfig, MemberInfo, MemberState, MembershipCore, MembershipEvent, MembershipStats, Transmit,
};
pub use driver::{Membership, MembershipPeers, MetricsReader};
pub use error::{DatagramError, MembershipError};
pub use frame::{ClusterTag, PLAINTEXT_OVERHEAD};
pub use identity::MemberId;
pub use sync::NodeId;
