//! The palette: counters, sets, flags, registers and maps of any of them,
//! each an [`Embed`](crate::Embed) type over the causal dot-store core and,
//! at the top level, a [`Replicated`](crate::Replicated) replica that
//! `sync::Node` replicates unchanged.
//!
//! | type | top level | nested under a map key | store |
//! |---|---|---|---|
//! | grow-only counter | [`GCounter`] | [`GrowOnly`] | [`DotFun<u64>`](crate::DotFun): one entry per actor |
//! | increment/decrement counter | [`PNCounter`] | [`PosNeg`] | `DotFun<Totals>`: one entry per actor |
//! | add-wins set | [`AWSet<E>`] | [`SetOf<E>`] | [`DotSet`](crate::DotSet) per element |
//! | enable-wins flag | [`EWFlag`] | [`EnableWins`] | `DotFun<bool>` |
//! | disable-wins flag | [`DWFlag`] | [`DisableWins`] | `DotFun<bool>` |
//! | multi-value register | [`MVReg<V>`] | [`MultiValue<V>`] | `DotFun<V>` |
//! | last-writer-wins register | [`LwwReg<V, B>`] | [`Lww<V, B>`] | `DotFun<V>`, read by a [`Tiebreak`](crate::Tiebreak) |
//! | observed-remove map | [`Map<K, T>`] | [`MapOf<K, T>`] | [`DotMap`](crate::DotMap) of the values' stores |

mod counter;
mod flag;
mod map;
mod register;
mod set;

pub use counter::{Count, GCounter, GrowOnly, PNCounter, PosNeg, Totals};
pub use flag::{DWFlag, DisableWins, EWFlag, EnableWins};
pub use map::{Map, MapOf, MapOp};
pub use register::{Lww, LwwReg, MVReg, MultiValue};
pub use set::{AWSet, Presence, SetOf, SetOp};

use crate::{ActorId, Dot, DotFun};

/// The dots of `actor` in `store`, and the value of its latest one.
fn own<V>(store: &DotFun<V>, actor: ActorId) -> (Vec<Dot>, Option<&V>) {
    let mut dots = Vec::new();
    let mut latest = None;
    for (d, v) in store.iter() {
        if d.actor() == actor {
            dots.push(d);
            latest = Some(v);
        }
    }
    (dots, latest)
}

/// Per actor, the value of its latest dot (entries are in dot order).
fn latest_per_actor<V>(store: &DotFun<V>) -> impl Iterator<Item = &V> + '_ {
    let mut entries = store.iter().peekable();
    std::iter::from_fn(move || {
        loop {
            let (d, v) = entries.next()?;
            match entries.peek() {
                Some((next, _)) if next.actor() == d.actor() => continue,
                _ => return Some(v),
            }
        }
    })
}
