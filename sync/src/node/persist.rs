//! The persister: takes the engine's commits and writes them to the store,
//! one at a time, each on a blocking thread. Whatever changes while one is
//! being written goes into the next (group commit: many writes, one fsync).

use std::{sync::Arc, time::Duration};

use super::{Committed, Shared};
use crate::storage::Storage;

/// Longest wait between two attempts after a failed commit.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(super) async fn run(shared: Arc<Shared>, storage: Arc<dyn Storage>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let stopping = tokio::select! {
            () = shared.shutdown.cancelled() => true,
            () = shared.persist.notified() => false,
        };
        loop {
            match commit_once(&shared, &storage).await {
                Ok(true) => backoff = Duration::from_millis(50),
                Ok(false) => break,
                Err(()) => {
                    if stopping {
                        return;
                    }
                    tokio::select! {
                        () = shared.shutdown.cancelled() => {}
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        if stopping {
            return;
        }
    }
}

/// Takes and writes one commit. `Ok(true)` if one was written, `Ok(false)`
/// if there was nothing to write, `Err` if it failed (already reported).
async fn commit_once(shared: &Arc<Shared>, storage: &Arc<dyn Storage>) -> Result<bool, ()> {
    let taken = shared.engine().take_commit();
    let (commit, ticket) = match taken {
        Ok(Some(taken)) => taken,
        Ok(None) => return Ok(false),
        Err(e) => {
            tracing::error!(error = %crate::error::chain(&e), "cannot take a commit");
            shared.record_error();
            return Err(());
        }
    };
    let seq = ticket.seq();
    let written = {
        let storage = storage.clone();
        let commit = commit.clone();
        tokio::task::spawn_blocking(move || storage.commit(&commit)).await
    };
    match written {
        Ok(Ok(())) => {
            {
                let mut engine = shared.engine();
                engine.handle_committed(ticket);
            }
            shared
                .committed
                .send_modify(|c: &mut Committed| c.seq = c.seq.max(seq));
            // Parked pulls are ready; held notifications may go.
            shared.wake.notify_one();
            shared.durable_changed.notify_waiters();
            Ok(true)
        }
        Ok(Err(e)) => {
            tracing::error!(store = %storage.location(), error = %crate::error::chain(&e), "commit failed; retrying");
            {
                let mut engine = shared.engine();
                engine.handle_commit_failed(&commit, ticket);
            }
            let e = Arc::new(e);
            shared
                .committed
                .send_modify(|c: &mut Committed| c.failed = Some((seq, e.clone())));
            Err(())
        }
        Err(join) => {
            tracing::error!(error = %join, "the commit task failed; retrying");
            shared.engine().handle_commit_failed(&commit, ticket);
            Err(())
        }
    }
}
