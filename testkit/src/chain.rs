//! Assertions on a printed error chain (`error: {:#}`, or
//! `sync::error_chain`): the workspace's errors leave their cause to
//! `source()`, so a chain names what failed and says each cause once.
//!
//! The chain itself is built by `sync::error_chain` (the one walk of
//! `source()`, which the libraries also use for their logs); this crate
//! depends on no crate of the workspace, so it takes the printed line.

/// Asserts that `printed` names `what` (a file, an address, a field) and
/// holds `cause` exactly once.
///
/// # Panics
/// When either does not hold, quoting `printed`.
pub fn assert_reads_once(printed: &str, what: &str, cause: &str) {
    assert!(printed.contains(what), "names {what:?}: {printed}");
    assert_eq!(
        printed.matches(cause).count(),
        1,
        "says {cause:?} once: {printed}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_that_names_its_subject_and_says_its_cause_once_passes() {
        assert_reads_once("cannot bind 127.0.0.1:1: in use", "127.0.0.1:1", "in use");
    }

    #[test]
    #[should_panic(expected = "once")]
    fn a_cause_said_twice_fails() {
        assert_reads_once("bind 127.0.0.1:1: in use: in use", "127.0.0.1:1", "in use");
    }

    #[test]
    #[should_panic(expected = "names")]
    fn a_chain_without_its_subject_fails() {
        assert_reads_once("cannot bind: in use", "127.0.0.1:1", "in use");
    }
}
