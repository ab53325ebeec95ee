//! [`RendezvousPriority`]: the tiebreak of the health map.

use std::cmp::Ordering;

use crdt::{Candidate, Tiebreak};

use crate::{record::HealthRecord, rendezvous};

/// Between concurrent health records for an origin, the one written by the
/// agent with the higher rendezvous weight for that origin wins (the owner's
/// view beats a stand-in's); equal weights fall back to dot order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RendezvousPriority;

impl Tiebreak<String, HealthRecord> for RendezvousPriority {
    fn cmp(
        &self,
        origin: &String,
        a: Candidate<'_, HealthRecord>,
        b: Candidate<'_, HealthRecord>,
    ) -> Ordering {
        let wa = rendezvous::weight(&a.value.checked_by, origin);
        let wb = rendezvous::weight(&b.value.checked_by, origin);
        wa.cmp(&wb)
    }
}

#[cfg(test)]
mod tests {
    use crdt::{ActorId, DeltaCrdt, ORMap};

    use super::*;
    use crate::record::Status;

    fn record(by: &str, status: Status) -> HealthRecord {
        HealthRecord {
            status,
            checked_by: by.into(),
            checked_at_ms: 1,
            since_ms: 1,
            latency_ms: Some(3),
            reason: None,
            confirmation: None,
            suspect: None,
        }
    }

    #[test]
    fn the_higher_weight_writer_wins_a_concurrent_write_on_every_replica() {
        let origin = "origin-1".to_string();
        let ranked = rendezvous::rank(&origin, &["hc-1", "hc-2"]);
        let (owner, standin) = (ranked[0], ranked[1]);
        // Give the stand-in the higher actor id, so that ActorOrder would pick it.
        let mut a: ORMap<String, HealthRecord, RendezvousPriority> = ORMap::new(ActorId(1));
        let mut b: ORMap<String, HealthRecord, RendezvousPriority> = ORMap::new(ActorId(2));
        a.insert(origin.clone(), record(owner, Status::Up));
        b.insert(origin.clone(), record(standin, Status::Down));
        let (da, db) = (a.delta_since(&b.digest()), b.delta_since(&a.digest()));
        a.join_delta(db.expect("news"));
        b.join_delta(da.expect("news"));
        assert_eq!(a.siblings(&origin).len(), 2);
        for m in [&a, &b] {
            assert_eq!(m.get(&origin).map(|r| r.checked_by.as_str()), Some(owner));
        }
    }
}
