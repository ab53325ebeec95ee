//! [`Rows`] for [`ORMap`]: a row is a key's siblings; the [`Head`] is the
//! causal context and the purge frontier.

use serde::{Deserialize, Serialize};

use super::{Delta, ORMap, Sibling};
use crate::{ActorId, CausalContext, InvariantError, Rows, Tiebreak, VersionVector};

/// What an [`ORMap`] (or one of its answers) holds besides its rows: every
/// dot it has seen, and its purge frontier. Validated with the rows when
/// they are assembled (a frontier entry outside the context, or a row's dot
/// outside it, is refused then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The causal context.
    pub context: CausalContext,
    /// Per actor, the highest counter among purged tombstones.
    pub frontier: VersionVector,
}

impl<K, V, T> Rows for ORMap<K, V, T>
where
    K: Ord + Clone + Serialize + for<'de> Deserialize<'de> + Send + 'static,
    V: Clone + Serialize + for<'de> Deserialize<'de> + Send + 'static,
    T: Tiebreak<K, V>,
{
    type Row = Vec<Sibling<V>>;
    type Head = Head;

    fn actor(&self) -> ActorId {
        self.actor
    }

    fn set_actor(&mut self, actor: ActorId) {
        self.actor = actor;
    }

    fn max_counter(&self, actor: ActorId) -> u64 {
        self.context.max_counter(actor)
    }

    fn head(&self) -> Head {
        Head {
            context: self.context.clone(),
            frontier: self.frontier.clone(),
        }
    }

    fn row(&self, key: &K) -> Option<Vec<Sibling<V>>> {
        self.entries.get(key).map(|s| s.to_vec())
    }

    fn rows(&self) -> Vec<(K, Vec<Sibling<V>>)> {
        self.entries
            .iter()
            .map(|(k, s)| (k.clone(), s.to_vec()))
            .collect()
    }

    fn track_touched(&mut self, on: bool) {
        match (on, self.touched.is_some()) {
            (true, false) => self.touched = Some(Default::default()),
            (false, true) => self.touched = None,
            _ => {}
        }
    }

    fn take_touched(&mut self) -> Vec<K> {
        self.touched
            .as_mut()
            .map(|t| std::mem::take(t).into_iter().collect())
            .unwrap_or_default()
    }

    fn split(delta: Delta<K, V>) -> (Head, bool, Vec<(K, Vec<Sibling<V>>)>) {
        let (entries, context, frontier, full) = delta.into_parts();
        let rows = entries.into_iter().map(|(k, s)| (k, s.to_vec())).collect();
        (Head { context, frontier }, full, rows)
    }

    fn assemble(
        head: Head,
        full: bool,
        rows: Vec<(K, Vec<Sibling<V>>)>,
    ) -> Result<Delta<K, V>, InvariantError> {
        Delta::from_parts(rows, head.context, head.frontier, full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeltaCrdt;

    type Map = ORMap<u32, u32>;

    #[test]
    fn split_then_assemble_is_the_same_answer_and_restore_the_same_map() {
        let mut a = Map::new(ActorId(1));
        let mut b = Map::new(ActorId(2));
        for i in 0..20 {
            a.insert(i, i);
        }
        a.remove(&3);
        b.insert(5, 50);
        let answer = a.delta_since(&b.digest()).expect("news");
        let (head, full, rows) = Map::split(answer.clone());
        assert_eq!(rows.len(), 20);
        let again = Map::assemble(head, full, rows).expect("valid");
        assert_eq!(again, answer);

        let mut restored = Map::new(ActorId(1));
        restored.restore(a.head(), a.rows()).expect("valid");
        assert_eq!(restored, a);
        assert_eq!(restored.actor(), ActorId(1));
    }

    #[test]
    fn touched_keys_are_recorded_only_while_tracking_and_include_purges() {
        let mut a = Map::new(ActorId(1));
        a.insert(1, 1);
        assert!(a.take_touched().is_empty(), "not tracking yet");
        a.track_touched(true);
        a.insert(2, 2);
        a.insert(3, 3);
        a.remove(&2);
        assert_eq!(a.take_touched(), vec![2, 3]);
        assert!(a.take_touched().is_empty());
        // a join touches what it changes
        let mut b = Map::new(ActorId(2));
        b.insert(9, 9);
        a.join_delta(b.delta_since(&a.digest()).expect("news"));
        assert_eq!(a.take_touched(), vec![9]);
        // a purge removes a row: it is touched (the store deletes it)
        let stable = a.digest();
        assert_eq!(a.purge(&stable), 1);
        assert_eq!(a.take_touched(), vec![2]);
        assert_eq!(a.row(&2), None);
        a.track_touched(false);
        a.insert(4, 4);
        assert!(a.take_touched().is_empty());
    }

    #[test]
    fn assemble_refuses_rows_that_break_an_invariant() {
        let mut a = Map::new(ActorId(1));
        a.insert(1, 1);
        a.insert(2, 2);
        let (head, full, mut rows) = Map::split(a.state());
        rows.reverse();
        assert!(Map::assemble(head.clone(), full, rows).is_err(), "unsorted");
        let foreign = vec![(
            7,
            vec![Sibling {
                dot: crate::Dot::new(ActorId(9), 1).expect("non-zero"),
                value: Some(7),
            }],
        )];
        assert!(
            Map::assemble(head, full, foreign).is_err(),
            "dot outside the context"
        );
    }

    #[test]
    fn set_actor_changes_who_mints_next() {
        let mut a = Map::new(ActorId(1));
        a.insert(1, 1);
        a.set_actor(ActorId(7));
        let d = a.insert(2, 2);
        let dot = d.iter().next().map(|(_, s)| s[0].dot).expect("one key");
        assert_eq!((dot.actor(), dot.counter()), (ActorId(7), 1));
        assert_eq!(a.max_counter(ActorId(1)), 1);
    }
}
