//! [`Rows`] for [`Replicated`]: a row is a top-level key's [`Entry`]; the
//! head is the causal context and the purge frontier.

use serde::{Deserialize, Serialize};

use super::{Delta, Embed, Entry, Replicated};
use crate::{ActorId, InvariantError, Rows, ormap::Head};

impl<K, T> Rows for Replicated<K, T>
where
    K: Ord + Clone + Serialize + for<'de> Deserialize<'de> + Send + 'static,
    T: Embed,
    T::Store: Serialize + for<'de> Deserialize<'de> + Send + 'static,
{
    type Row = Entry<T::Store>;
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

    fn row(&self, key: &K) -> Option<Entry<T::Store>> {
        self.entries.get(key).cloned()
    }

    fn rows(&self) -> Vec<(K, Entry<T::Store>)> {
        self.entries
            .iter()
            .map(|(k, e)| (k.clone(), e.clone()))
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

    fn split(delta: Delta<K, T::Store>) -> (Head, bool, Vec<(K, Entry<T::Store>)>) {
        let (entries, context, frontier, full) = delta.into_parts();
        (
            Head { context, frontier },
            full,
            entries.into_iter().collect(),
        )
    }

    fn assemble(
        head: Head,
        full: bool,
        rows: Vec<(K, Entry<T::Store>)>,
    ) -> Result<Delta<K, T::Store>, InvariantError> {
        Delta::from_parts(rows, head.context, head.frontier, full)
    }
}
