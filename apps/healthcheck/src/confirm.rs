//! Confirm before down: a second vantage point before the cluster says an
//! origin is down.
//!
//! The owner alone decides an origin's verdict, so one agent with a bad
//! route to an origin (or starved of CPU) would take it down for the whole
//! datacenter. Instead, when the owner's streak turns an origin down and it
//! sees another live agent:
//!
//! 1. **Suspect.** The owner keeps the record's status and adds
//!    [`Suspect`] `{round, confirmer}`: the confirmer is the agent ranked
//!    just below it for the origin among the live agents (just above, if
//!    the owner ranks last). A [`Round`] is unique across the owner's
//!    restarts (a random start nonce and a counter).
//! 2. **Confirm.** The confirmer, seeing a suspect naming it in any sibling
//!    of the origin's record for a round it has not answered, checks the
//!    origin at once from where it is and writes an [`Answer`] `{round,
//!    asker, ok, by}` under the origin's key in the [`CONFIRM`] replica.
//! 3. **Decide.** An answer counts only for the asker's open round. Failed:
//!    the record says `down`, [`Confirmation::Confirmed`]. Passed: it stays
//!    `up`, [`Confirmation::Disputed`] (an event and a metric say so). No
//!    answer within the bound (the check's timeout plus the replication
//!    allowance): the owner's verdict stands, `down`,
//!    [`Confirmation::Unconfirmed`]. Seeing no other live agent, the owner
//!    writes `down`, unconfirmed (alone).
//! 4. **Re-ask.** While the owner's streak is down, each failing check with
//!    no round open opens a new one: a disputed origin that really dies is
//!    confirmed, and a down that only the owner still sees is lifted. A
//!    confirmer that leaves the owner's live view is replaced at once.
//!    Rises need no confirmation.
//!
//! The rules were checked first by `proofs/models/confirm_model.py` (random
//! schedules of deaths, a bad route from one agent, crashes, an away agent,
//! slow and duplicated messages), which also catches the broken variants
//! (down at once, any answer counts, no re-ask while disputed, the owner
//! asks itself, round ids that restart with the process, no re-ask while
//! down, a departed confirmer waited for). Per origin, `"confirm": false`
//! in the spec turns it off.
//!
//! **Upgrades.** Records with a second opinion carry two fields the release
//! before cannot read (and a delta holding one would be refused whole).
//! Each agent says in the [`FORMATS`] replica which record format it reads;
//! an owner asks for second opinions only while every live agent reads
//! them ([`all_read_confirmations`]), so a rolling upgrade writes downs as
//! before until its last agent is upgraded.

use crdt::{LastWriterWins, ORMap, Timestamped};
use serde::{Deserialize, Serialize};

pub use crate::record::{Confirmation, Round, Suspect, Unconfirmed};

/// The replica of the answers: origin id → the latest [`Answer`].
pub const CONFIRM: &str = "confirm";

/// A confirmer's answer to a round.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Answer {
    /// The round answered.
    pub round: Round,
    /// The agent that asked (the owner).
    pub asker: String,
    /// Whether the confirmer's check passed.
    pub ok: bool,
    /// The confirmer.
    pub by: String,
    /// When its check ran (its clock, ms since the Unix epoch).
    pub checked_at_ms: u64,
    /// Why its check failed, if it did.
    pub reason: Option<String>,
}

impl Timestamped for Answer {
    type Time = (u64, u64);
    /// The later check wins; a tie goes to the later round.
    fn timestamp(&self) -> (u64, u64) {
        (self.checked_at_ms, self.round.seq)
    }
}

/// The replicated answers.
pub type ConfirmMap = ORMap<String, Answer, LastWriterWins>;

/// The replica in which each agent says which record format it reads:
/// agent name → [`AgentFormat`]. Agents of the release before do not have
/// it (they ignore its pulls), so an agent missing from it reads only the
/// first format.
pub const FORMATS: &str = "formats";

/// The record format of this release: [`crate::record::HealthRecord`] with
/// `confirmation` and `suspect`. Format 1 (the release before) refuses a
/// record that carries them.
pub const RECORD_FORMAT: u32 = 2;

/// What an agent reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgentFormat {
    /// The newest record format it reads.
    pub record: u32,
    /// When it said so (its clock, ms since the Unix epoch).
    pub since_ms: u64,
}

impl Timestamped for AgentFormat {
    type Time = u64;
    fn timestamp(&self) -> u64 {
        self.since_ms
    }
}

/// The replicated formats.
pub type FormatMap = ORMap<String, AgentFormat, LastWriterWins>;

/// Whether every agent of `live` reads records with a second opinion in
/// `formats`: only then does an owner ask for one (a record carrying it
/// would stop the replication of health records to an agent of the release
/// before). During a rolling upgrade, downs are written as before until the
/// last agent runs this release.
pub fn all_read_confirmations<'a>(
    formats: &FormatMap,
    live: impl IntoIterator<Item = &'a str>,
) -> bool {
    live.into_iter().all(|name| {
        formats
            .get(&name.to_owned())
            .is_some_and(|f| f.record >= RECORD_FORMAT)
    })
}
