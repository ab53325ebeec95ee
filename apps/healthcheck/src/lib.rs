//! The distributed health checker (not built yet).
//!
//! N agents in one datacenter share the health checks of many origins:
//! rendezvous hashing picks each origin's checker, SWIM decides who is alive,
//! and results replicate through the delta ORMap. See `DESIGN.md`, section
//! "apps/healthcheck", and the open `apps/healthcheck` issue.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
