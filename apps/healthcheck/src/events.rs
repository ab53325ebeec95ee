//! [`EventLog`]: what changed, in order, for consumers that follow the
//! cluster instead of polling it (`GET /v1/events`, blocking reads of
//! `GET /v1/origins?index=N`).
//!
//! Events are health *transitions* (an origin's visible status changed, with
//! the record) and registry puts and deletes; a record rewritten with the
//! same status is not an event. Each event has a sequence number, the
//! agent's index; its id is `"{epoch}-{seq}"`, where the epoch is the
//! agent's start (ms since the Unix epoch), so an id from an earlier run of
//! the agent is not mistaken for one of this run. The log keeps the last
//! `capacity` events: a consumer that resumes from an id still in it gets
//! every event after it, any other gets a [`EventBody::Resync`] (re-read
//! everything). Sans-IO: the agent feeds it from `sync`'s watch of both
//! replicas (`agent/events.rs`).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
};

use serde::Serialize;

use crate::{
    maintenance::Maintenance,
    record::{HealthRecord, Status},
    spec::OriginSpec,
};

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EventBody {
    /// An origin's visible status changed (`record` is `None` if its
    /// record is gone: the origin was removed).
    Health {
        /// The origin.
        origin: String,
        /// Its status before.
        from: Status,
        /// Its status now.
        to: Status,
        /// The record now.
        record: Option<HealthRecord>,
    },
    /// An origin was registered or replaced (`spec` is `Some`), or removed.
    Registry {
        /// The origin.
        origin: String,
        /// Its spec now, `None` once removed (boxed: a spec is large).
        spec: Option<Box<OriginSpec>>,
    },
    /// An origin's maintenance began or changed (`maintenance` is `Some`),
    /// or ended (by a `DELETE`, at its expiry, or with the origin).
    Maintenance {
        /// The origin.
        origin: String,
        /// Its maintenance now, `None` once over.
        maintenance: Option<Maintenance>,
    },
    /// The owner's checks of an origin fail but its confirmer's passed: the
    /// record stays up, disputed (one event when it becomes so).
    Disputed {
        /// The origin.
        origin: String,
        /// The record now.
        record: HealthRecord,
    },
    /// Events may have been missed: re-read everything.
    Resync,
    /// The stream starts at `index` (the first event of a stream opened
    /// without `Last-Event-ID`; its id resumes from there).
    Index {
        /// The index at the start.
        index: u64,
    },
}

impl EventBody {
    /// The event's type, as in the SSE `event:` field.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Health { .. } => "health",
            EventBody::Registry { .. } => "registry",
            EventBody::Maintenance { .. } => "maintenance",
            EventBody::Disputed { .. } => "disputed",
            EventBody::Resync => "resync",
            EventBody::Index { .. } => "index",
        }
    }
}

/// One event of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its sequence number (1, 2, …): the index once it is in the log.
    pub seq: u64,
    /// What happened.
    pub body: EventBody,
}

/// One transition of an origin, as this agent saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// When the record that made it was written (the writer's clock, ms
    /// since the Unix epoch); 0 when the record is gone.
    pub at_ms: u64,
    /// The status before.
    pub from: Status,
    /// The status after.
    pub to: Status,
    /// Why the check failed, if it did.
    pub reason: Option<String>,
    /// The agent that wrote the record (empty when the record is gone).
    pub by: String,
}

/// Transitions kept per origin for `GET /v1/origins/{id}/history`.
pub const HISTORY: usize = 32;

/// The agent's event log (see the module docs).
#[derive(Debug)]
pub struct EventLog {
    epoch: u64,
    capacity: usize,
    events: VecDeque<Arc<Event>>,
    seq: u64,
    /// The visible status of every origin with a record, as last told.
    statuses: HashMap<String, Status>,
    /// Per origin: its last [`HISTORY`] transitions, oldest first, and how
    /// many it has had since this agent started.
    history: HashMap<String, (VecDeque<Transition>, u64)>,
    /// The origins whose visible record is disputed, as last told.
    disputed: HashSet<String>,
}

impl EventLog {
    /// An empty log of at most `capacity` events for the run that started
    /// at `epoch` (ms since the Unix epoch), knowing the `statuses` visible
    /// at start (no event for them).
    pub fn new(epoch: u64, capacity: usize, statuses: HashMap<String, Status>) -> Self {
        EventLog {
            epoch,
            capacity: capacity.max(1),
            events: VecDeque::new(),
            seq: 0,
            statuses,
            history: HashMap::new(),
            disputed: HashSet::new(),
        }
    }

    /// Takes `statuses` as what is visible now, without an event (at the
    /// start of the feed, and after a resync).
    pub fn know(&mut self, statuses: HashMap<String, Status>) {
        self.statuses = statuses;
    }

    /// The index: the sequence number of the last event (0 before any).
    pub fn index(&self) -> u64 {
        self.seq
    }

    /// The id of event `seq` of this run.
    pub fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.epoch)
    }

    /// Origin `origin`'s record is now `record` (or gone): an event if its
    /// visible status changed.
    pub fn health(&mut self, origin: &str, record: Option<HealthRecord>) -> Option<Arc<Event>> {
        let to = record.as_ref().map_or(Status::Unknown, |r| r.status);
        let from = match &record {
            Some(_) => self.statuses.insert(origin.to_owned(), to),
            None => self.statuses.remove(origin),
        }
        .unwrap_or(Status::Unknown);
        if from == to {
            return None;
        }
        let (kept, count) = self.history.entry(origin.to_owned()).or_default();
        if kept.len() == HISTORY {
            kept.pop_front();
        }
        kept.push_back(Transition {
            at_ms: record.as_ref().map_or(0, |r| r.checked_at_ms),
            from,
            to,
            reason: record.as_ref().and_then(|r| r.reason.clone()),
            by: record
                .as_ref()
                .map(|r| r.checked_by.clone())
                .unwrap_or_default(),
        });
        *count += 1;
        Some(self.push(EventBody::Health {
            origin: origin.to_owned(),
            from,
            to,
            record,
        }))
    }

    /// Origin `origin`'s record is now `record` (or gone): an event if it
    /// just became disputed.
    pub fn disputed(&mut self, origin: &str, record: Option<&HealthRecord>) -> Option<Arc<Event>> {
        match record.filter(|r| r.disputed()) {
            Some(r) if self.disputed.insert(origin.to_owned()) => {
                Some(self.push(EventBody::Disputed {
                    origin: origin.to_owned(),
                    record: r.clone(),
                }))
            }
            Some(_) => None,
            None => {
                self.disputed.remove(origin);
                None
            }
        }
    }

    /// Origin `origin`'s last transitions, oldest first (empty if none).
    pub fn history(&self, origin: &str) -> Vec<Transition> {
        self.history
            .get(origin)
            .map(|(kept, _)| kept.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many transitions each origin has had since this agent started.
    pub fn transitions(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.history.iter().map(|(o, (_, n))| (o.as_str(), *n))
    }

    /// Forgets the history of an origin that was removed.
    pub fn forget(&mut self, origin: &str) {
        self.history.remove(origin);
    }

    /// Origin `origin` was registered or replaced (`Some`) or removed.
    pub fn registry(&mut self, origin: &str, spec: Option<OriginSpec>) -> Arc<Event> {
        if spec.is_none() {
            self.forget(origin);
        }
        self.push(EventBody::Registry {
            origin: origin.to_owned(),
            spec: spec.map(Box::new),
        })
    }

    /// Origin `origin`'s maintenance is now `maintenance` (`None`: over).
    pub fn maintenance(&mut self, origin: &str, maintenance: Option<Maintenance>) -> Arc<Event> {
        self.push(EventBody::Maintenance {
            origin: origin.to_owned(),
            maintenance,
        })
    }

    /// Events may have been missed (the feed lagged): consumers re-read.
    pub fn resync(&mut self) -> Arc<Event> {
        self.push(EventBody::Resync)
    }

    /// The events after `last_id` (an id of this run still in the log, or
    /// the current index), or `None` when `last_id` cannot be resumed from
    /// (another run, malformed, or too old): the consumer must re-read.
    pub fn since(&self, last_id: &str) -> Option<Vec<Arc<Event>>> {
        let (epoch, seq) = last_id.trim().split_once('-')?;
        if epoch.parse::<u64>().ok()? != self.epoch {
            return None;
        }
        let seq: u64 = seq.parse().ok()?;
        if seq > self.seq {
            return None;
        }
        let oldest = self.events.front().map_or(self.seq + 1, |e| e.seq);
        // Resumable if nothing after `seq` was dropped from the log.
        if seq + 1 < oldest {
            return None;
        }
        Some(
            self.events
                .iter()
                .filter(|e| e.seq > seq)
                .cloned()
                .collect(),
        )
    }

    fn push(&mut self, body: EventBody) -> Arc<Event> {
        self.seq += 1;
        let event = Arc::new(Event {
            seq: self.seq,
            body,
        });
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(event.clone());
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: Status) -> HealthRecord {
        HealthRecord {
            status,
            checked_by: "hc-1".into(),
            checked_at_ms: 1,
            since_ms: 1,
            latency_ms: None,
            reason: None,
            confirmation: None,
            suspect: None,
        }
    }

    #[test]
    fn only_a_change_of_status_is_a_health_event() {
        let mut log = EventLog::new(7, 10, HashMap::from([("a".to_owned(), Status::Up)]));
        assert!(
            log.health("a", Some(record(Status::Up))).is_none(),
            "a refresh"
        );
        let e = log
            .health("a", Some(record(Status::Down)))
            .expect("a transition");
        assert_eq!(e.seq, 1);
        assert!(matches!(
            &e.body,
            EventBody::Health {
                from: Status::Up,
                to: Status::Down,
                ..
            }
        ));
        let e = log
            .health("b", Some(record(Status::Up)))
            .expect("first verdict");
        assert!(matches!(
            &e.body,
            EventBody::Health {
                from: Status::Unknown,
                ..
            }
        ));
        let e = log.health("b", None).expect("removed");
        assert!(matches!(
            &e.body,
            EventBody::Health {
                to: Status::Unknown,
                record: None,
                ..
            }
        ));
        assert_eq!(log.index(), 3);
    }

    #[test]
    fn a_record_that_becomes_disputed_is_one_event() {
        let mut log = EventLog::new(7, 10, HashMap::new());
        let mut r = record(Status::Up);
        assert!(log.disputed("a", Some(&r)).is_none(), "plain up");
        r.confirmation = Some(crate::record::Confirmation::Disputed { by: "hc-2".into() });
        let e = log.disputed("a", Some(&r)).expect("became disputed");
        assert_eq!(e.body.kind(), "disputed");
        assert!(
            log.disputed("a", Some(&r)).is_none(),
            "still disputed: no event"
        );
        r.confirmation = None;
        assert!(log.disputed("a", Some(&r)).is_none());
        r.confirmation = Some(crate::record::Confirmation::Disputed { by: "hc-2".into() });
        assert!(log.disputed("a", Some(&r)).is_some(), "disputed again");
        assert!(log.disputed("a", None).is_none(), "removed");
    }

    #[test]
    fn each_origin_keeps_its_last_transitions_until_it_is_removed() {
        let mut log = EventLog::new(7, 10, HashMap::new());
        for i in 0..(HISTORY + 5) {
            let status = if i % 2 == 0 { Status::Up } else { Status::Down };
            let mut r = record(status);
            r.checked_at_ms = i as u64;
            r.reason = (status == Status::Down).then(|| "refused".to_owned());
            log.health("a", Some(r));
        }
        let h = log.history("a");
        assert_eq!(h.len(), HISTORY, "bounded");
        let last = h.last().expect("some");
        assert_eq!(
            (last.at_ms, last.to, last.by.as_str()),
            ((HISTORY + 4) as u64, Status::Up, "hc-1")
        );
        assert_eq!(h[h.len() - 2].reason.as_deref(), Some("refused"));
        assert_eq!(
            log.transitions().collect::<Vec<_>>(),
            vec![("a", (HISTORY + 5) as u64)]
        );
        log.registry("a", None);
        assert!(log.history("a").is_empty(), "forgotten with the origin");
    }

    #[test]
    fn a_consumer_resumes_from_an_id_in_the_log_and_resyncs_otherwise() {
        let mut log = EventLog::new(7, 3, HashMap::new());
        for i in 0..5 {
            log.registry(&format!("o{i}"), None);
        }
        // the log holds 3, 4, 5
        let seqs =
            |v: Option<Vec<Arc<Event>>>| v.map(|v| v.iter().map(|e| e.seq).collect::<Vec<_>>());
        assert_eq!(
            seqs(log.since("7-2")),
            Some(vec![3, 4, 5]),
            "2 is just before the oldest"
        );
        assert_eq!(seqs(log.since("7-4")), Some(vec![5]));
        assert_eq!(seqs(log.since("7-5")), Some(vec![]), "up to date");
        assert_eq!(seqs(log.since("7-1")), None, "event 2 was dropped");
        assert_eq!(seqs(log.since("6-4")), None, "another run");
        assert_eq!(seqs(log.since("7-9")), None, "from the future");
        assert_eq!(seqs(log.since("garbage")), None);
        assert_eq!(log.id(5), "7-5");
    }
}
