//! Replicated structs that grow without breaking the agents of the release
//! before: [`compat_serialize!`](crate::compat_serialize).
//!
//! Specs and records travel between agents (and into the store) as
//! MessagePack arrays, one element per field in declaration order
//! (`rmp_serde`'s default). A field added at the end with
//! `#[serde(default)]` decodes from an older, shorter array as its default;
//! but an agent of the release before refuses a longer array than it knows.
//! So the binary form writes a field added by a later release only when it
//! or a field after it differs from its default: a spec or record that
//! uses none of the new fields is byte for byte what the release before
//! wrote, and a rolling upgrade keeps every agent in sync. The human-readable
//! form (JSON, in the API) writes every field.
//!
//! The rule for whoever adds a field: append it (never insert or reorder),
//! give it `#[serde(default)]` (or a default function) and list it in the
//! `then` part with the predicate that says it is at its default.

/// Implements `Serialize` for a struct whose derived `Deserialize` reads
/// both forms (see the [module docs](self)): `always` lists the fields of
/// the first release in order, `then` the fields added since, in order,
/// each with a predicate `fn(&T) -> bool` that is true at its default.
#[macro_export]
#[doc(hidden)]
macro_rules! compat_serialize {
    ($ty:ident { always: [$($old:ident),* $(,)?], then: [$($new:ident if $skip:expr),* $(,)?] }) => {
        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use ::serde::ser::SerializeStruct;
                let at_default: &[bool] = &[$(($skip)(&self.$new)),*];
                let old: &[&str] = &[$(stringify!($old)),*];
                // Binary: the added fields up to the last one not at its default.
                let keep = if serializer.is_human_readable() {
                    at_default.len()
                } else {
                    at_default.iter().rposition(|d| !d).map_or(0, |i| i + 1)
                };
                let mut st = serializer.serialize_struct(stringify!($ty), old.len() + keep)?;
                $( st.serialize_field(stringify!($old), &self.$old)?; )*
                let mut index = 0usize;
                $(
                    if index < keep {
                        st.serialize_field(stringify!($new), &self.$new)?;
                    }
                    index += 1;
                )*
                let _ = index;
                st.end()
            }
        }
    };
}
