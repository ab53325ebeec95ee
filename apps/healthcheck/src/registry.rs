//! The origin registry: a replicated map of origin specs, and the health map
//! of results, with their types.

use crdt::{LastWriterWins, ORMap, Timestamped};
use serde::{Deserialize, Serialize};

use crate::{priority::RendezvousPriority, record::HealthRecord, spec::OriginSpec};

/// The name of the registry replica in sync.
pub const ORIGINS: &str = "origins";
/// The name of the health replica in sync.
pub const HEALTH: &str = "health";

/// A registered origin: its spec and when it was last set. Concurrent
/// registrations of one id resolve to the later one (last writer wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// What to check.
    pub spec: OriginSpec,
    /// When it was set (ms since the Unix epoch, on the writing agent).
    pub updated_at_ms: u64,
}

impl Timestamped for Registered {
    type Time = u64;
    fn timestamp(&self) -> u64 {
        self.updated_at_ms
    }
}

/// The replicated registry: origin id → spec.
pub type Registry = ORMap<String, Registered, LastWriterWins>;

/// The replicated results: origin id → latest record.
pub type HealthMap = ORMap<String, HealthRecord, RendezvousPriority>;

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
