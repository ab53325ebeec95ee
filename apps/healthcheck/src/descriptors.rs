//! The agent's file descriptors: the limit raised at start where the system
//! allows it, and a [`Budget`] that shares it so that the API can never take
//! what the checks and the cluster need.
//!
//! Every descriptor the agent holds belongs to one of four parts, each
//! bounded:
//!
//! | part | bound |
//! |---|---|
//! | base: stdio, listeners, the store, DNS lookups, logs | [`BASE_RESERVE`] |
//! | cluster: sync sessions in and out, SWIM | the caller's `cluster` reserve |
//! | API connections | [`Budget::api`] (the server's cap, see [`crate::api_server`]) |
//! | checks: in flight, and kept alive between checks | [`Budget::checks_in_flight`] + [`Budget::checks_idle`] |
//!
//! Their sum never exceeds the limit: values set in the config are checked
//! (a start error names them and the limit), unset ones take a share of
//! what is left.

use thiserror::Error;

/// Descriptors kept for everything but the cluster, the API and the checks.
pub const BASE_RESERVE: u64 = 64;

/// Default most API connections (when the limit leaves room).
pub const DEFAULT_API: usize = 512;

/// Default most checks in flight (when the limit leaves room).
pub const DEFAULT_IN_FLIGHT: usize = 512;

/// Default most connections kept alive between checks (when the limit
/// leaves room).
pub const DEFAULT_IDLE: usize = 16_384;

/// The descriptor limit (`RLIMIT_NOFILE`) after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The soft limit in force now.
    pub soft: u64,
    /// The soft limit before, if it was raised.
    pub raised_from: Option<u64>,
}

/// Raises the soft descriptor limit to the hard limit (as far as the system
/// allows) and returns it.
///
/// # Errors
/// The limit could not be read; a failure to raise it is not an error (the
/// limit in force is returned).
pub fn raise() -> std::io::Result<Limit> {
    let (before, _) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => soft,
        Err(e) => {
            tracing::debug!(error = %e, "cannot raise the descriptor limit");
            before
        }
    };
    Ok(Limit {
        soft,
        raised_from: (soft > before).then_some(before),
    })
}

/// What the config asks for; `None`: a share of what is left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    /// `api.max_connections`.
    pub api: Option<usize>,
    /// `timings.max_concurrent_checks`.
    pub checks_in_flight: Option<usize>,
    /// `checks.max_idle_connections`.
    pub checks_idle: Option<usize>,
}

/// How the descriptor limit is shared (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The limit shared.
    pub limit: u64,
    /// Kept for the base and the cluster.
    pub reserved: u64,
    /// Most API connections.
    pub api: usize,
    /// Most checks in flight.
    pub checks_in_flight: usize,
    /// Most connections kept alive between checks.
    pub checks_idle: usize,
}

/// The limit cannot hold what the config asks for. Nothing was started.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "the descriptor limit is {limit} (ulimit -n): {parts} need {needed}; raise the limit or lower them"
)]
pub struct BudgetError {
    /// The limit.
    pub limit: u64,
    /// What was asked for, part by part.
    pub parts: String,
    /// Their sum.
    pub needed: u64,
}

impl Budget {
    /// Shares `limit` between [`BASE_RESERVE`], `cluster`, and what
    /// `wanted` asks for; unset parts get a share of the rest (the API and
    /// checks in flight a quarter each, at most their defaults; idle
    /// connections what remains, at most [`DEFAULT_IDLE`]). Every part gets
    /// at least 1 except idle connections (0: no keep-alive).
    ///
    /// # Errors
    /// [`BudgetError`] when the set parts, with at least one descriptor for
    /// each unset part, do not fit.
    pub fn plan(limit: u64, cluster: u64, wanted: Wanted) -> Result<Budget, BudgetError> {
        let reserved = BASE_RESERVE + cluster;
        let fixed = |v: Option<usize>, min: u64| v.map_or(min, |v| v as u64);
        let needed = reserved
            + fixed(wanted.api, 1)
            + fixed(wanted.checks_in_flight, 1)
            + fixed(wanted.checks_idle, 0);
        if needed > limit {
            let part = |name: &str, v: Option<usize>| v.map(|v| format!("{name} {v}"));
            let mut parts: Vec<String> = [
                part("api.max_connections", wanted.api),
                part("timings.max_concurrent_checks", wanted.checks_in_flight),
                part("checks.max_idle_connections", wanted.checks_idle),
            ]
            .into_iter()
            .flatten()
            .collect();
            parts.push(format!("{reserved} kept for the cluster and the store"));
            return Err(BudgetError {
                limit,
                parts: parts.join(" + "),
                needed,
            });
        }
        let rest = limit - reserved;
        let quarter = usize::try_from(rest / 4).unwrap_or(usize::MAX).max(1);
        let api = wanted.api.unwrap_or(DEFAULT_API.min(quarter));
        let checks_in_flight = wanted
            .checks_in_flight
            .unwrap_or(DEFAULT_IN_FLIGHT.min(quarter));
        let left = rest.saturating_sub(api as u64 + checks_in_flight as u64);
        let checks_idle = wanted
            .checks_idle
            .unwrap_or_else(|| DEFAULT_IDLE.min(usize::try_from(left).unwrap_or(usize::MAX)));
        Ok(Budget {
            limit,
            reserved,
            api,
            checks_in_flight,
            checks_idle,
        })
    }

    /// Descriptors the budget hands out in all.
    pub fn total(&self) -> u64 {
        self.reserved + self.api as u64 + self.checks_in_flight as u64 + self.checks_idle as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generous_limit_gives_the_defaults() {
        let b = Budget::plan(65_536, 400, Wanted::default()).expect("fits");
        assert_eq!(
            (b.api, b.checks_in_flight, b.checks_idle),
            (DEFAULT_API, DEFAULT_IN_FLIGHT, DEFAULT_IDLE)
        );
        assert!(b.total() <= 65_536);
    }

    #[test]
    fn a_low_limit_shrinks_the_unset_parts_to_fit() {
        let b = Budget::plan(1024, 400, Wanted::default()).expect("fits");
        assert_eq!(b.reserved, 464);
        assert_eq!((b.api, b.checks_in_flight), (140, 140));
        assert_eq!(b.checks_idle, 1024 - 464 - 280);
        assert_eq!(b.total(), 1024);
    }

    #[test]
    fn set_parts_are_kept_and_the_rest_shares_what_is_left() {
        let wanted = Wanted {
            api: Some(100),
            ..Wanted::default()
        };
        let b = Budget::plan(1024, 400, wanted).expect("fits");
        assert_eq!(b.api, 100);
        assert!(b.total() <= 1024, "{b:?}");
    }

    #[test]
    fn set_parts_that_do_not_fit_are_refused_by_name() {
        let wanted = Wanted {
            api: Some(900),
            checks_in_flight: Some(512),
            checks_idle: None,
        };
        let e = Budget::plan(1024, 400, wanted).expect_err("too much");
        let text = e.to_string();
        assert!(text.contains("descriptor limit is 1024"), "{text}");
        assert!(text.contains("api.max_connections 900"), "{text}");
        assert!(text.contains("timings.max_concurrent_checks 512"), "{text}");
        assert_eq!(e.needed, 464 + 900 + 512);
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        let (before, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("readable");
        let after = raise().expect("readable");
        assert!(after.soft >= before);
    }
}
