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
/// status change, when an agent takes over an origin, on a slow refresh,
/// and as a second opinion is asked for and comes back (see
/// [`crate::confirm`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
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
    /// How a `down` (or a dispute of one) was reached: confirmed by a
    /// second agent, unconfirmed, or disputed (the owner's checks fail, a
    /// second agent's pass: the record stays up). `None` for a plain
    /// verdict (up, or down with confirmation off).
    #[serde(default)]
    pub confirmation: Option<Confirmation>,
    /// While the owner's checks fail and it waits for a second opinion:
    /// which round, and which agent is asked.
    #[serde(default)]
    pub suspect: Option<Suspect>,
}

crate::compat_serialize!(HealthRecord {
    always: [status, checked_by, checked_at_ms, since_ms, latency_ms, reason],
    then: [
        confirmation if Option::is_none,
        suspect if Option::is_none,
    ]
});

impl HealthRecord {
    /// Whether the record says a second agent saw the origin up while its
    /// owner's checks failed.
    pub fn disputed(&self) -> bool {
        matches!(self.confirmation, Some(Confirmation::Disputed { .. }))
    }
}

/// One request for a second opinion, unique across the asker's restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Round {
    /// Random per start of the asking agent.
    pub start: u64,
    /// Counts the asker's rounds within one start.
    pub seq: u64,
}

/// The owner's checks of an origin turned it down: it asks `confirmer`
/// (the next-ranked live agent) to check it too, in `round`. The asker is
/// the record's `checked_by`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Suspect {
    /// The round the answer must name.
    pub round: Round,
    /// The agent asked.
    pub confirmer: String,
}

/// Why the agent that does not answer a round leaves the owner's verdict
/// standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unconfirmed {
    /// The confirmer did not answer within the bound.
    NoAnswer,
    /// The owner saw no other live agent to ask.
    Alone,
}

/// How a verdict was reached with a second opinion.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confirmation {
    /// Down: the owner's checks failed and so did `by`'s.
    Confirmed {
        /// The agent whose check failed too.
        by: String,
    },
    /// Down on the owner's checks alone.
    Unconfirmed {
        /// Why no second agent confirmed it.
        why: Unconfirmed,
    },
    /// Up: the owner's checks fail, but `by`'s passed.
    Disputed {
        /// The agent whose check passed.
        by: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record of the release before, field for field.
    #[derive(Serialize)]
    struct BeforeConfirmation {
        status: Status,
        checked_by: String,
        checked_at_ms: u64,
        since_ms: u64,
        latency_ms: Option<u64>,
        reason: Option<String>,
    }

    fn plain() -> HealthRecord {
        HealthRecord {
            status: Status::Down,
            checked_by: "hc-1".into(),
            checked_at_ms: 5,
            since_ms: 4,
            latency_ms: Some(3),
            reason: Some("refused".into()),
            confirmation: None,
            suspect: None,
        }
    }

    #[test]
    fn a_record_without_a_second_opinion_is_written_as_the_release_before_wrote_it() {
        let r = plain();
        let before = BeforeConfirmation {
            status: r.status,
            checked_by: r.checked_by.clone(),
            checked_at_ms: r.checked_at_ms,
            since_ms: r.since_ms,
            latency_ms: r.latency_ms,
            reason: r.reason.clone(),
        };
        let bytes = rmp_serde::to_vec(&r).expect("encode");
        assert_eq!(bytes, rmp_serde::to_vec(&before).expect("encode"));
        let back: HealthRecord = rmp_serde::from_slice(&bytes).expect("decode");
        assert_eq!(back, r);
    }

    #[test]
    fn a_second_opinion_round_trips_in_both_forms() {
        let mut r = plain();
        r.confirmation = Some(Confirmation::Confirmed { by: "hc-2".into() });
        r.suspect = Some(Suspect {
            round: Round { start: 9, seq: 2 },
            confirmer: "hc-3".into(),
        });
        let bytes = rmp_serde::to_vec(&r).expect("encode");
        assert_eq!(
            rmp_serde::from_slice::<HealthRecord>(&bytes).expect("decode"),
            r
        );
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(
            json["confirmation"],
            serde_json::json!({"confirmed": {"by": "hc-2"}})
        );
        assert_eq!(json["suspect"]["confirmer"], "hc-3");
        let back: HealthRecord = serde_json::from_value(json).expect("from json");
        assert_eq!(back, r);
        // the release before refuses it: it has to wait for every agent
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Before(Status, String, u64, u64, Option<u64>, Option<String>);
        assert!(rmp_serde::from_slice::<Before>(&bytes).is_err());
    }
}
