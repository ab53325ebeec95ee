//! Bounded waits: re-check a condition until it holds, and panic with what
//! was awaited once the limit has passed. Nothing here sleeps to
//! synchronise: a wait returns as soon as its condition holds.
//!
//! Deadlines are read from tokio's clock, so a test with paused time waits in
//! virtual time.

use std::time::Duration;

use tokio::{sync::broadcast, time::Instant};

/// How often [`until`] re-checks its condition.
pub const POLL: Duration = Duration::from_millis(10);

/// The longest [`until_event`] goes without re-checking its condition, for
/// conditions (counters) that no event announces.
pub const RECHECK: Duration = Duration::from_millis(50);

/// Waits until `done` holds, re-checking every [`POLL`].
///
/// Use it for state no event announces (counters, the API, an origin's
/// hits); where the code under test publishes events, [`until_event`] wakes
/// sooner.
///
/// # Panics
/// When `done` still does not hold after `limit`: the message is
/// `timed out after {limit:?} waiting for: {what}`.
pub async fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `done` holds, re-checking on every event of `events` and at
/// least every [`RECHECK`]. Lagging behind the channel only means an earlier
/// re-check; a closed channel falls back to re-checking every [`RECHECK`].
///
/// Subscribe before the action whose effect is awaited, so that no event is
/// missed between the action and the wait.
///
/// # Panics
/// When `done` still does not hold after `limit`, naming `what` as
/// [`until`] does.
pub async fn until_event<T: Clone>(
    mut events: broadcast::Receiver<T>,
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + limit;
    let mut open = true;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        if open {
            match tokio::time::timeout(RECHECK, events.recv()).await {
                Err(_) | Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => open = false,
            }
        } else {
            tokio::time::sleep(RECHECK).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn until_returns_once_the_condition_holds() {
        let flag = Arc::new(AtomicBool::new(false));
        let set = flag.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            set.store(true, Ordering::SeqCst);
        });
        until("the flag", Duration::from_secs(1), || {
            flag.load(Ordering::SeqCst)
        })
        .await;
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "waiting for: nothing")]
    async fn until_names_what_it_waited_for() {
        until("nothing", Duration::from_millis(100), || false).await;
    }

    #[tokio::test(start_paused = true)]
    async fn until_event_wakes_on_an_event() {
        let (tx, rx) = broadcast::channel(4);
        let flag = Arc::new(AtomicBool::new(false));
        let set = flag.clone();
        tokio::spawn(async move {
            set.store(true, Ordering::SeqCst);
            let _ = tx.send(());
        });
        until_event(rx, "the event", Duration::from_secs(1), || {
            flag.load(Ordering::SeqCst)
        })
        .await;
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "waiting for: a closed channel")]
    async fn until_event_on_a_closed_channel_still_times_out() {
        let (tx, rx) = broadcast::channel::<()>(4);
        drop(tx);
        until_event(rx, "a closed channel", Duration::from_millis(200), || false).await;
    }
}
