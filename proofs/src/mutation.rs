//! Byte mutations of a valid encoding, for the decoders' property tests:
//! they get past the first bytes, which purely random input rarely does.
//! One strategy shared by `tests/decode.rs` and `tests/palette_laws.rs`.

use proptest::prelude::*;

/// One mutation of an encoding.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flips bit `bit` of the byte at `at`.
    Flip {
        /// Where.
        at: prop::sample::Index,
        /// Which bit (0–7).
        bit: u8,
    },
    /// Sets the byte at `at` to `byte`.
    Set {
        /// Where.
        at: prop::sample::Index,
        /// The new byte.
        byte: u8,
    },
    /// Inserts `bytes` before the byte at `at`.
    Insert {
        /// Where.
        at: prop::sample::Index,
        /// What.
        bytes: Vec<u8>,
    },
    /// Deletes up to `len` bytes from `at`.
    Delete {
        /// Where.
        at: prop::sample::Index,
        /// How many.
        len: usize,
    },
}

/// Any [`Mutation`].
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<prop::sample::Index>(), any::<u8>())
            .prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..6)
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<prop::sample::Index>(), 1usize..6)
            .prop_map(|(at, len)| Mutation::Delete { at, len }),
    ]
}

/// Applies `m` to `bytes` (nothing to an empty encoding).
pub fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let n = bytes.len();
    match m {
        Mutation::Flip { at, bit } => bytes[at.index(n)] ^= 1 << bit,
        Mutation::Set { at, byte } => bytes[at.index(n)] = *byte,
        Mutation::Insert { at, bytes: extra } => {
            let i = at.index(bytes.len());
            bytes.splice(i..i, extra.iter().copied());
        }
        Mutation::Delete { at, len } => {
            let i = at.index(bytes.len());
            let end = (i + len).min(bytes.len());
            bytes.drain(i..end);
        }
    }
}
