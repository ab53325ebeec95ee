//! [`HealthRecord`]: the replicated result of checking an origin.

use serde::{Deserialize, Serialize};

/// An origin's health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Passed its last `rise` checks.
    Up,
    /// Failed its last `fall` checks.
    Down,
    /// No verdict yet.
    #[default]
    Unknown,
}

impl Status {
    /// The lowercase name, as in the API and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::Down => "down",
            Status::Unknown => "unknown",
        }
    }
}

/// What the checking agent found, replicated to every agent. Written on a
/// status change, when an agent takes over an origin, and on a slow refresh.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HealthRecord {
    /// The verdict.
    pub status: Status,
    /// The agent that wrote it.
    pub checked_by: String,
    /// When the check behind this record ran (writer's clock, ms since the
    /// Unix epoch).
    pub checked_at_ms: u64,
    /// When the status last changed (ms since the Unix epoch).
    pub since_ms: u64,
    /// Latency of the last check, if it got an answer.
    pub latency_ms: Option<u64>,
    /// Why the last check failed (`timeout`, `refused`, `status 503`,
    /// `header: …`, `body: …`, `tls: …`, `connect: …`, `io: …`, `denied: …`;
    /// see [`crate::checker::Failure`]).
    pub reason: Option<String>,
}
