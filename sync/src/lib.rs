//! Pull anti-entropy for `crdt::DeltaCrdt` replicas (not built yet).
//!
//! This crate will hold a sans-IO engine that schedules pull rounds (send my
//! causal context, receive a delta) and a tokio transport over a
//! length-delimited TCP codec with rmp-serde messages. See `DESIGN.md`, section
//! "sync", and the open `sync` issue.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
