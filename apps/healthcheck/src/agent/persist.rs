//! The persister: commits registry changes to the store in groups. Every
//! request that arrives while a commit runs is served by the next one, so
//! many API writes cost one fsync. A commit writes the rows of the keys
//! written locally or touched by sync since the last commit, and the
//! registry's context, read under one engine lock (a consistent cut).

use std::{collections::BTreeSet, sync::Arc};

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

/// A request to persist the registry as it is now (with `key`, written
/// locally); `done` is told when it is durable.
pub(super) struct Request {
    pub(super) key: Option<String>,
    pub(super) done: Option<oneshot::Sender<Result<(), PersistError>>>,
}

pub(super) async fn run(shared: Arc<Shared>, store: Store, mut requests: mpsc::Receiver<Request>) {
    let store = Arc::new(store);
    // Keys whose rows are yet to be written (kept across a failed commit).
    let mut keys: BTreeSet<String> = BTreeSet::new();
    loop {
        let first = tokio::select! {
            () = shared.shutdown.cancelled() => None,
            r = requests.recv() => r,
        };
        let stopping = first.is_none();
        let mut waiting: Vec<oneshot::Sender<Result<(), PersistError>>> = Vec::new();
        let mut pending = false;
        for r in first
            .into_iter()
            .chain(std::iter::from_fn(|| requests.try_recv().ok()))
        {
            pending = true;
            keys.extend(r.key);
            waiting.extend(r.done);
        }
        if pending {
            let result = commit(&shared, &store, &mut keys).await;
            if let Err(e) = &result {
                tracing::error!(error = %e, "cannot persist the registry");
            }
            for w in waiting {
                let _ = w.send(result.clone());
            }
        }
        if stopping {
            // A last commit so that nothing replicated to us is lost.
            if let Err(e) = commit(&shared, &store, &mut keys).await {
                tracing::error!(error = %e, "cannot persist the registry at shutdown");
            }
            return;
        }
    }
}

/// Writes the rows of `keys` and of what sync touched, with the context, in
/// one transaction. On failure the keys stay in `keys` for the next commit.
async fn commit(
    shared: &Shared,
    store: &Arc<Store>,
    keys: &mut BTreeSet<String>,
) -> Result<(), PersistError> {
    let snapshot = shared.node.with_engine(|engine| {
        let touched = engine.take_touched::<Registry>(ORIGINS)?;
        keys.extend(touched);
        let registry = engine.replica::<Registry>(ORIGINS)?;
        let rows: Vec<_> = keys
            .iter()
            .map(|k| (k.clone(), registry.siblings(k).to_vec()))
            .collect();
        Ok::<_, sync::SyncError>((
            rows,
            registry.context().clone(),
            registry.purge_frontier().clone(),
        ))
    });
    let (rows, context, frontier) = snapshot.map_err(|e| PersistError::Internal(e.to_string()))?;
    let store = store.clone();
    let written: Vec<String> = rows.iter().map(|(k, _)| k.clone()).collect();
    tokio::task::spawn_blocking(move || store.save_registry_rows(&rows, &context, &frontier))
        .await
        .map_err(|e| PersistError::Internal(e.to_string()))?
        .map_err(|e| PersistError::Store(e.to_string()))?;
    for k in written {
        keys.remove(&k);
    }
    Ok(())
}
