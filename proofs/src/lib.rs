//! Property tests of Vantage's laws live in `tests/`, one file per type.
//! This library holds what they share: an oracle model of the ORMap built
//! from the history of writes, one of every palette type built from the
//! history of operations (`palette_oracle`), and a cluster harness whose
//! pull answers can arrive late, twice, or never.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cluster;
pub mod config;
pub mod mutation;
pub mod oracle;
pub mod palette_oracle;
pub mod sim;
pub mod swim;

use crdt::{CausalContext, ORMap, Tiebreak};

/// Whether two maps hold the same replicated data (entries and causal
/// context). The purge frontier is garbage-collection metadata and is left
/// out: a `delta_since` answer that is not a full state does not carry it.
pub fn same_data<K: Ord + Clone + PartialEq, V: Clone + PartialEq, T: Tiebreak<K, V>>(
    a: &ORMap<K, V, T>,
    b: &ORMap<K, V, T>,
) -> bool {
    a.context() == b.context() && a.entries().eq(b.entries())
}

/// The visible contents of a map, for comparing reads.
pub fn read<K: Ord + Clone, V: Clone, T: Tiebreak<K, V>>(map: &ORMap<K, V, T>) -> Vec<(K, V)> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The meet of a set of digests (the stable context of those replicas).
pub fn meet_all<'a>(digests: impl IntoIterator<Item = &'a CausalContext>) -> CausalContext {
    let mut it = digests.into_iter();
    let first = it.next().cloned().unwrap_or_default();
    it.fold(first, |acc, d| acc.meet(d))
}

/// A one-line rendering of a map for failure messages:
/// `{key: [actor:counter=value | actor:counter=⊥]} ctx=… frontier=…`.
pub fn describe<K, V, T>(map: &ORMap<K, V, T>) -> String
where
    K: Ord + Clone + std::fmt::Debug,
    V: Clone + std::fmt::Debug,
    T: Tiebreak<K, V>,
{
    let entries: Vec<String> = map
        .entries()
        .map(|(k, s)| {
            let s: Vec<String> = s
                .iter()
                .map(|s| match &s.value {
                    Some(v) => format!("{}={v:?}", s.dot),
                    None => format!("{}=⊥", s.dot),
                })
                .collect();
            format!("{k:?}: [{}]", s.join(", "))
        })
        .collect();
    let ctx = map.context();
    format!(
        "actor {} {{{}}} ctx={:?}+{:?} frontier={:?}",
        map.actor(),
        entries.join("; "),
        ctx.version_vector()
            .iter()
            .map(|(a, c)| (a.0, c))
            .collect::<Vec<_>>(),
        ctx.cloud().map(|d| d.to_string()).collect::<Vec<_>>(),
        map.purge_frontier()
            .iter()
            .map(|(a, c)| (a.0, c))
            .collect::<Vec<_>>(),
    )
}

/// The README's Rust examples, compiled and run as doctests so that they stay
/// true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
