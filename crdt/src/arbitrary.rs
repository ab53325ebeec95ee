//! Proptest strategies for the crate's types (feature `proptest`).
