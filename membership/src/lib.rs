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
pub use core::{CoreMetrics, MemberInfo, MemberState, MembershipCore, MembershipEvent};
pub use driver::Membership;
#[cfg(feature = "sync")]
pub use driver::MembershipPeers;
pub use error::MembershipError;
pub use frame::{ClusterTag, PLAINTEXT_OVERHEAD};
pub use identity::MemberId;
