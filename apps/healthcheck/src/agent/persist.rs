//! The persister: commits the registry to the store in groups. Every request
//! that arrives while a commit runs is served by the next one, so many API
//! writes cost one fsync.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::Shared;
use crate::{
    registry::{ORIGINS, Registry},
    store::Store,
};

/// Why the registry could not be persisted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PersistError {
    /// The store failed; the previous registry stays on disk.
    #[error("persisting the registry: {0}")]
    Store(String),
    /// The agent is shutting down.
    #[error("the agent is stopping")]
    Stopped,
    /// An internal error (a replica missing: a bug).
    #[error("internal: {0}")]
    Internal(String),
}

/// A request to persist the registry as it is now; `done` is told when it is
/// durable.
pub(super) struct Request {
    pub(super) done: Option<oneshot::Sender<Result<(), PersistError>>>,
}

pub(super) async fn run(shared: Arc<Shared>, store: Store, mut requests: mpsc::Receiver<Request>) {
    let store = Arc::new(store);
    loop {
        let first = tokio::select! {
            () = shared.shutdown.cancelled() => None,
            r = requests.recv() => r,
        };
        let stopping = first.is_none();
        let mut waiting: Vec<oneshot::Sender<Result<(), PersistError>>> =
            first.and_then(|r| r.done).into_iter().collect();
        let mut pending = !stopping;
        while let Ok(r) = requests.try_recv() {
            pending = true;
            waiting.extend(r.done);
        }
        if pending {
            let result = commit(&shared, &store).await;
            if let Err(e) = &result {
                tracing::error!(error = %e, "cannot persist the registry");
            }
            for w in waiting {
                let _ = w.send(result.clone());
            }
        }
        if stopping {
            // A last commit so that nothing replicated to us is lost.
            if let Err(e) = commit(&shared, &store).await {
                tracing::error!(error = %e, "cannot persist the registry at shutdown");
            }
            return;
        }
    }
}

async fn commit(shared: &Shared, store: &Arc<Store>) -> Result<(), PersistError> {
    let state = shared
        .node
        .read::<Registry, _>(ORIGINS, |m| m.state())
        .map_err(|e| PersistError::Internal(e.to_string()))?;
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.save_registry(&state))
        .await
        .map_err(|e| PersistError::Internal(e.to_string()))?
        .map_err(|e| PersistError::Store(e.to_string()))
}
