//! Planned maintenance of an origin: while it lasts the origin is not
//! checked and shows `maintenance` (in the API, events, metrics and page),
//! and it ends by itself at its expiry (or with a `DELETE`).
//!
//! Maintenance is its own replicated map ([`MAINTENANCE`]: origin id →
//! [`Maintenance`], last writer wins), beside the registry rather than in
//! its entries, so that a maintenance set on one agent and a spec changed
//! on another at the same moment both hold (as Consul keeps a service's
//! maintenance apart from its registration). It is durable like the
//! registry (kept across restarts) and its expiry is a wall-clock time, so
//! every agent sees it end at the same moment whoever set it. At expiry the
//! origin's checker removes the entry (so the map holds only current
//! maintenance); until then every agent already treats an expired entry as
//! over. Removing an origin removes its maintenance.

use crdt::{LastWriterWins, ORMap, Timestamped};
use serde::{Deserialize, Serialize};

use crate::{
    record::{HealthRecord, Status},
    spec::SpecError,
};

/// The name of the maintenance replica in sync.
pub const MAINTENANCE: &str = "maintenance";

/// Longest `reason`, in bytes.
pub const MAX_REASON: usize = 512;

/// Shortest maintenance, in ms.
pub const MIN_DURATION_MS: u64 = 1_000;

/// Longest maintenance, in ms (30 days): an operator who forgets one does
/// not leave an origin unchecked for longer.
pub const MAX_DURATION_MS: u64 = 30 * 24 * 3_600_000;

/// An origin under maintenance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Maintenance {
    /// Why, as the operator said.
    pub reason: String,
    /// When it was set (ms since the Unix epoch, on the agent that took the
    /// `PUT`).
    pub since_ms: u64,
    /// When it ends by itself (ms since the Unix epoch).
    pub until_ms: u64,
    /// The agent that took the `PUT`.
    pub set_by: String,
}

impl Maintenance {
    /// Whether it is still in force at `now_ms`.
    pub fn active(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }
}

impl Timestamped for Maintenance {
    type Time = u64;
    fn timestamp(&self) -> u64 {
        self.since_ms
    }
}

/// What an origin shows: `maintenance` while under maintenance (its last
/// record, if any, is kept beside it), else its record's status, else
/// `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shown {
    /// The record says up.
    Up,
    /// The record says down.
    Down,
    /// No verdict yet.
    Unknown,
    /// Under maintenance: not checked.
    Maintenance,
}

impl Shown {
    /// What an origin with this record and this maintenance in force shows.
    pub fn of(health: Option<&HealthRecord>, maintenance: Option<&Maintenance>) -> Shown {
        match (maintenance, health.map(|r| r.status)) {
            (Some(_), _) => Shown::Maintenance,
            (None, Some(Status::Up)) => Shown::Up,
            (None, Some(Status::Down)) => Shown::Down,
            (None, Some(Status::Unknown) | None) => Shown::Unknown,
        }
    }

    /// The lowercase name, as in the API, metrics and page.
    pub fn as_str(self) -> &'static str {
        match self {
            Shown::Up => "up",
            Shown::Down => "down",
            Shown::Unknown => "unknown",
            Shown::Maintenance => "maintenance",
        }
    }
}

/// The replicated maintenance: origin id → maintenance.
pub type MaintenanceMap = ORMap<String, Maintenance, LastWriterWins>;

/// The body of `PUT /v1/origins/{id}/maintenance`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    /// Why: 1–[`MAX_REASON`] bytes of printable text.
    pub reason: String,
    /// How long, in ms: [`MIN_DURATION_MS`]–[`MAX_DURATION_MS`].
    pub duration_ms: u64,
}

impl MaintenanceRequest {
    /// Parses and checks a JSON body; the error names the field.
    pub fn parse(body: &[u8]) -> Result<MaintenanceRequest, SpecError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let request: MaintenanceRequest =
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = e.path().to_string();
                let message = e.into_inner().to_string();
                // A sequence at the top ("[0]") is no object: the body's fault.
                let field = if path == "." || path.is_empty() || path.starts_with('[') {
                    // "missing field `reason`" names it; "invalid type:
                    // integer `1`" names a value, not a field.
                    message
                        .contains("field `")
                        .then(|| crate::spec::field_in_message(&message))
                        .flatten()
                        .unwrap_or_else(|| "body".into())
                } else {
                    path
                };
                SpecError {
                    field,
                    message: format!(
                        "{message} (expected {{\"reason\": \"...\", \"duration_ms\": N}})"
                    ),
                }
            })?;
        de.end().map_err(|e| SpecError {
            field: "body".into(),
            message: format!("after the JSON object: {e}"),
        })?;
        request.validate()?;
        Ok(request)
    }

    fn validate(&self) -> Result<(), SpecError> {
        let bad = |field: &str, message: String| SpecError {
            field: field.into(),
            message,
        };
        if self.reason.trim().is_empty() || self.reason.len() > MAX_REASON {
            return Err(bad(
                "reason",
                format!("must be 1-{MAX_REASON} bytes, not only spaces"),
            ));
        }
        if let Some(c) = self.reason.chars().find(|c| c.is_control()) {
            return Err(bad(
                "reason",
                format!("{c:?} is not allowed: printable text on one line"),
            ));
        }
        if !(MIN_DURATION_MS..=MAX_DURATION_MS).contains(&self.duration_ms) {
            return Err(bad(
                "duration_ms",
                format!("must be between {MIN_DURATION_MS} and {MAX_DURATION_MS} (30 days)"),
            ));
        }
        Ok(())
    }

    /// The maintenance this request sets at `now_ms` on agent `me`.
    pub fn at(&self, now_ms: u64, me: &str) -> Maintenance {
        Maintenance {
            reason: self.reason.clone(),
            since_ms: now_ms,
            until_ms: now_ms.saturating_add(self.duration_ms),
            set_by: me.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(body: &str) -> String {
        MaintenanceRequest::parse(body.as_bytes())
            .expect_err(body)
            .field
    }

    #[test]
    fn requests_are_checked_naming_the_field() {
        let ok = MaintenanceRequest::parse(br#"{"reason": "kernel 6.12", "duration_ms": 3600000}"#)
            .expect("valid");
        let m = ok.at(1_000, "hc-1");
        assert_eq!(
            (m.since_ms, m.until_ms, m.set_by.as_str()),
            (1_000, 3_601_000, "hc-1")
        );
        assert!(m.active(3_600_999) && !m.active(3_601_000));
        assert_eq!(field(r#"{"duration_ms": 5000}"#), "reason");
        assert_eq!(field(r#"{"reason": "x"}"#), "duration_ms");
        assert_eq!(field(r#"{"reason": " ", "duration_ms": 5000}"#), "reason");
        assert_eq!(
            field(r#"{"reason": "a\nb", "duration_ms": 5000}"#),
            "reason"
        );
        assert_eq!(
            field(r#"{"reason": "x", "duration_ms": 999}"#),
            "duration_ms"
        );
        assert_eq!(
            field(r#"{"reason": "x", "duration_ms": 2592000001}"#),
            "duration_ms"
        );
        assert_eq!(
            field(r#"{"reason": "x", "duration_ms": -1}"#),
            "duration_ms"
        );
        assert_eq!(
            field(r#"{"reason": "x", "duration_ms": 5000, "until": 1}"#),
            "until"
        );
        assert_eq!(field(r#"[1]"#), "body");
        assert_eq!(field(r#"{"reason": "x", "duration_ms": 5000} {}"#), "body");
        let long = format!(
            r#"{{"reason": "{}", "duration_ms": 5000}}"#,
            "r".repeat(513)
        );
        assert_eq!(field(&long), "reason");
    }
}
