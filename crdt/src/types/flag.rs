//! Flags: enable-wins and disable-wins. Both keep the dots of the last
//! observed writes, each dot with the value it wrote; every write replaces
//! the writes it observed. Concurrent writes are all kept, and the read
//! decides which wins. A flag never written reads disabled.

use crate::{ActorId, Dot, DotFun, Effect, Embed, Replicated};

/// The write of a flag: replace every observed write with `dot → value`.
fn write(store: &DotFun<bool>, dot: Dot, value: bool) -> Effect<DotFun<bool>> {
    Effect {
        add: [(dot, value)].into_iter().collect(),
        removes: store.iter().map(|(d, _)| d).collect(),
    }
}

/// An enable-wins flag embedded under a key (see [`EWFlag`]): enabled if any
/// surviving write enabled it. Operation: `true` enables, `false` disables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnableWins;

impl Embed for EnableWins {
    type Store = DotFun<bool>;
    type Op = bool;
    type Value = bool;

    fn value(store: &DotFun<bool>) -> bool {
        store.values().any(|v| *v)
    }

    fn effect(store: &DotFun<bool>, _: ActorId, dot: Dot, on: bool) -> Effect<DotFun<bool>> {
        write(store, dot, on)
    }
}

/// A disable-wins flag embedded under a key (see [`DWFlag`]): enabled only
/// if it was written and every surviving write enabled it. Operation: `true`
/// enables, `false` disables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DisableWins;

impl Embed for DisableWins {
    type Store = DotFun<bool>;
    type Op = bool;
    type Value = bool;

    fn value(store: &DotFun<bool>) -> bool {
        !store.is_empty() && store.values().all(|v| *v)
    }

    fn effect(store: &DotFun<bool>, _: ActorId, dot: Dot, on: bool) -> Effect<DotFun<bool>> {
        write(store, dot, on)
    }
}

/// A replicated enable-wins flag (a feature flag that must win over a
/// concurrent disable).
///
/// ```
/// use crdt::{ActorId, DeltaCrdt, EWFlag};
///
/// let mut a = EWFlag::new(ActorId(1));
/// let mut b = EWFlag::new(ActorId(2));
/// a.enable();
/// b.disable(); // concurrent
/// a.join_delta(b.delta_since(&a.digest()).expect("news"));
/// assert!(a.is_enabled());
/// ```
pub type EWFlag = Replicated<(), EnableWins>;

/// A replicated disable-wins flag (a kill switch: a concurrent disable wins).
///
/// ```
/// use crdt::{ActorId, DeltaCrdt, DWFlag};
///
/// let mut a = DWFlag::new(ActorId(1));
/// let mut b = DWFlag::new(ActorId(2));
/// a.enable();
/// b.disable(); // concurrent
/// a.join_delta(b.delta_since(&a.digest()).expect("news"));
/// assert!(!a.is_enabled());
/// ```
pub type DWFlag = Replicated<(), DisableWins>;

macro_rules! flag_methods {
    ($kind:ty) => {
        impl Replicated<(), $kind> {
            /// Enables the flag and returns the delta.
            pub fn enable(&mut self) -> Option<crate::replicated::Delta<(), DotFun<bool>>> {
                self.apply((), true)
            }

            /// Disables the flag and returns the delta.
            pub fn disable(&mut self) -> Option<crate::replicated::Delta<(), DotFun<bool>>> {
                self.apply((), false)
            }

            /// Whether the flag is enabled.
            pub fn is_enabled(&self) -> bool {
                self.get(&()).unwrap_or(false)
            }
        }
    };
}

flag_methods!(EnableWins);
flag_methods!(DisableWins);
