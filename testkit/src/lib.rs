//! The one test-support layer of the workspace: what the crates' tests, the
//! proofs and the benches share instead of redeclaring it.
//!
//! - [`wait`]: bounded waits for a condition, re-checked on events where the
//!   caller has an event stream, with a timeout message naming what was
//!   awaited.
//! - [`temp`]: a unique temporary directory removed on drop.
//! - [`chain`]: assertions that a printed error chain names its subject and
//!   says its cause once.
//!
//! This crate depends on no crate of the workspace, so every crate can take
//! it as a dev-dependency without a cycle (a crate that dev-depends on a
//! crate that depends on it builds two copies of itself, whose types do not
//! match). Builders that need a crate's types live with that crate: the
//! healthcheck agent and cluster builders are `healthcheck::testing` (feature
//! `testing`), and the node and member builders of sync's and membership's
//! integration tests are each crate's `tests/support/mod.rs`, as quinn-proto
//! keeps its `tests/util.rs`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::Duration;
//!
//! let dir = testkit::TempDir::new("doc");
//! std::fs::write(dir.join("ready"), b"1").expect("write");
//! testkit::wait::until("the file is written", Duration::from_secs(5), || {
//!     dir.join("ready").exists()
//! })
//! .await;
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod chain;
pub mod temp;
pub mod wait;

pub use chain::assert_reads_once;
pub use temp::TempDir;
