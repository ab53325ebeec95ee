//! Registers: a write replaces every write it observed; concurrent writes
//! are all kept. [`MultiValue`] shows them all, [`Lww`] picks one with a
//! [`Tiebreak`] at read time.

use std::{fmt, marker::PhantomData};

use crate::{ActorId, ActorOrder, Candidate, Dot, DotFun, Effect, Embed, Replicated, Tiebreak};

/// The write of a register.
fn write<V: Clone + PartialEq>(store: &DotFun<V>, dot: Dot, value: V) -> Effect<DotFun<V>> {
    Effect {
        add: [(dot, value)].into_iter().collect(),
        removes: store.iter().map(|(d, _)| d).collect(),
    }
}

/// A multi-value register embedded under a key (see [`MVReg`]). Operation:
/// write a value. Its value: every concurrent surviving write, in dot order.
pub struct MultiValue<V>(PhantomData<fn() -> V>);

impl<V: Clone + PartialEq + fmt::Debug> Embed for MultiValue<V> {
    type Store = DotFun<V>;
    type Op = V;
    type Value = Vec<V>;

    fn value(store: &DotFun<V>) -> Vec<V> {
        store.values().cloned().collect()
    }

    fn effect(store: &DotFun<V>, _: ActorId, dot: Dot, value: V) -> Effect<DotFun<V>> {
        write(store, dot, value)
    }
}

/// A last-writer-wins register embedded under a key (see [`LwwReg`]): the
/// concurrent writes are kept as in [`MultiValue`], and a read returns the
/// greatest under the tiebreak `B` (then dot order). With
/// [`LastWriterWins`](crate::LastWriterWins) the value's own timestamp
/// decides; with [`ActorOrder`], the higher actor.
pub struct Lww<V, B = ActorOrder>(PhantomData<fn() -> (V, B)>);

impl<V, B> Embed for Lww<V, B>
where
    V: Clone + PartialEq + fmt::Debug,
    B: Tiebreak<(), V> + Default,
{
    type Store = DotFun<V>;
    type Op = V;
    type Value = Option<V>;

    fn value(store: &DotFun<V>) -> Option<V> {
        winner::<V, B>(store).cloned()
    }

    fn effect(store: &DotFun<V>, _: ActorId, dot: Dot, value: V) -> Effect<DotFun<V>> {
        write(store, dot, value)
    }
}

/// The surviving write the tiebreak `B` ranks greatest, then the higher dot.
fn winner<V, B: Tiebreak<(), V> + Default>(store: &DotFun<V>) -> Option<&V> {
    let tiebreak = B::default();
    store
        .iter()
        .max_by(|(da, va), (db, vb)| {
            tiebreak
                .cmp(
                    &(),
                    Candidate {
                        dot: *da,
                        value: va,
                    },
                    Candidate {
                        dot: *db,
                        value: vb,
                    },
                )
                .then(da.cmp(db))
        })
        .map(|(_, v)| v)
}

/// A replicated multi-value register: a read shows every concurrent write.
///
/// ```
/// use crdt::{ActorId, DeltaCrdt, MVReg};
///
/// let mut a: MVReg<&str> = MVReg::new(ActorId(1));
/// let mut b: MVReg<&str> = MVReg::new(ActorId(2));
/// a.write("red");
/// b.write("blue"); // concurrent
/// a.join_delta(b.delta_since(&a.digest()).expect("news"));
/// assert_eq!(a.values(), vec!["red", "blue"]);
/// a.write("green"); // replaces both
/// assert_eq!(a.values(), vec!["green"]);
/// ```
pub type MVReg<V> = Replicated<(), MultiValue<V>>;

impl<V: Clone + PartialEq + fmt::Debug> Replicated<(), MultiValue<V>> {
    /// Writes `value`, replacing every write observed, and returns the delta.
    pub fn write(&mut self, value: V) -> Option<crate::replicated::Delta<(), DotFun<V>>> {
        self.apply((), value)
    }

    /// Every concurrent surviving write, in dot order; empty if never
    /// written (or cleared with [`remove`](Self::remove)).
    pub fn values(&self) -> Vec<V> {
        self.get(&()).unwrap_or_default()
    }
}

/// A replicated last-writer-wins register, resolved by the tiebreak `B`.
///
/// ```
/// use crdt::{ActorId, DeltaCrdt, LwwReg};
///
/// let mut a: LwwReg<u32> = LwwReg::new(ActorId(1));
/// let mut b: LwwReg<u32> = LwwReg::new(ActorId(2));
/// a.write(1);
/// b.write(2); // concurrent: actor 2 is higher under ActorOrder
/// a.join_delta(b.delta_since(&a.digest()).expect("news"));
/// assert_eq!(a.read(), Some(2));
/// ```
pub type LwwReg<V, B = ActorOrder> = Replicated<(), Lww<V, B>>;

impl<V, B> Replicated<(), Lww<V, B>>
where
    V: Clone + PartialEq + fmt::Debug,
    B: Tiebreak<(), V> + Default,
{
    /// Writes `value`, replacing every write observed, and returns the delta.
    pub fn write(&mut self, value: V) -> Option<crate::replicated::Delta<(), DotFun<V>>> {
        self.apply((), value)
    }

    /// The winning write, `None` if never written (or cleared).
    pub fn read(&self) -> Option<V> {
        self.get(&()).flatten()
    }
}
