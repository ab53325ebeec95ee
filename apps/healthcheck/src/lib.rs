//! The distributed health checker.
//!
//! N agents in one datacenter share the health checks of many origins.
//! Rendezvous hashing ([`rendezvous`]) ranks the agents for each origin; the
//! first live one checks it ([`ownership`]); results ([`record`]) replicate
//! to every agent through a delta ORMap whose concurrent writes are resolved
//! by rendezvous priority ([`priority`]); SWIM decides who is alive. No
//! leader, no locks: two checkers for a moment is acceptable, zero is not.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod agent;
pub mod api;
pub mod api_events;
pub mod api_server;
pub mod api_tls;
pub mod check_core;
pub mod checker;
pub mod client;
pub mod compat;
pub mod config;
pub mod confirm;
#[cfg(feature = "demo")]
pub mod demo;
pub mod descriptors;
pub mod events;
#[cfg(feature = "demo")]
pub mod fake_origin;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod keys;
pub mod list_cache;
pub mod maintenance;
pub mod metrics;
pub mod node_view;
pub mod ownership;
pub mod page;
pub mod priority;
pub mod record;
pub mod registry;
pub mod rendezvous;
pub mod schedule;
pub mod shared;
pub mod snapshot;
pub mod spec;
pub mod store;
pub mod targets;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
