//! An oracle for the ORMap, computed from the history of writes alone.
//!
//! Every write is an event with the causal context its writer had right after
//! writing. A write is overwritten when another write's context contains its
//! dot. The visible value of a key is, among its writes that no other write
//! overwrote, the greatest live one (tiebreak [`crdt::ActorOrder`], then dot
//! order — for `ActorOrder` that is simply the greatest dot); a key whose
//! surviving writes are all removes is absent.

use std::collections::BTreeMap;

use crdt::{CausalContext, Dot};

/// One write: `value` is `None` for a remove.
#[derive(Debug, Clone)]
pub struct Event<K = u8, V = u8> {
    /// The key written.
    pub key: K,
    /// The write's dot.
    pub dot: Dot,
    /// The value written, `None` for a remove.
    pub value: Option<V>,
    /// What the writer had seen, this write included.
    pub seen: CausalContext,
}

/// The history of writes of a run.
#[derive(Debug, Clone)]
pub struct Oracle<K = u8, V = u8> {
    events: Vec<Event<K, V>>,
}

impl<K, V> Default for Oracle<K, V> {
    fn default() -> Self {
        Oracle { events: Vec::new() }
    }
}

impl<K: Ord + Clone, V: Clone> Oracle<K, V> {
    /// Records a write.
    pub fn record(&mut self, event: Event<K, V>) {
        self.events.push(event);
    }

    /// Forgets the writes whose dot `keep` rejects (e.g. writes lost with a
    /// node that crashed before anyone pulled them).
    pub fn retain(&mut self, mut keep: impl FnMut(&Event<K, V>) -> bool) {
        self.events.retain(|e| keep(e));
    }

    /// The writes recorded, in order.
    pub fn events(&self) -> &[Event<K, V>] {
        &self.events
    }

    /// The number of writes recorded.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// What every replica must read once all writes have reached all of them.
    pub fn read(&self) -> Vec<(K, V)> {
        let mut by_key: BTreeMap<K, Vec<&Event<K, V>>> = BTreeMap::new();
        for e in &self.events {
            by_key.entry(e.key.clone()).or_default().push(e);
        }
        let mut out = Vec::new();
        for (key, events) in by_key {
            let surviving = events.iter().filter(|e| {
                !events
                    .iter()
                    .any(|f| f.dot != e.dot && f.seen.contains(e.dot))
            });
            let winner = surviving
                .filter_map(|e| e.value.clone().map(|v| (e.dot, v)))
                .max_by_key(|(dot, _)| *dot);
            if let Some((_, v)) = winner {
                out.push((key, v));
            }
        }
        out
    }
}
