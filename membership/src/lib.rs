//! SWIM membership by driving the `foca` crate over tokio UDP (not built yet).
//!
//! See `DESIGN.md`, section "membership", and the open `membership` issue.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
