//! Watching a replica: [`Node::watch`](super::Node::watch) gives any number
//! of subscribers the keys whose value changed, from joins and local writes,
//! in batches, each subscriber behind its own bounded queue.
//!
//! The engine collects the keys of a watched replica (sans-IO:
//! `Engine::watch`, `Engine::take_watched`); the driver hands them out after
//! every step, under the engine's lock, as one batch per step on a
//! broadcast channel of [`WATCH_CAPACITY`] batches. A subscriber that falls
//! that far behind is told so ([`WatchEvent::Lagged`]) and re-reads the
//! replica: it misses no change it is not told to re-read.

use std::{any::Any, collections::HashMap, sync::Arc};

use crdt::Rows;
use tokio::sync::broadcast;

use crate::{SyncError, engine::Engine};

/// Batches a subscriber may be behind before it is told to re-read.
pub const WATCH_CAPACITY: usize = 1024;

/// What a [`Watch`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent<K> {
    /// These keys (ascending, each once) changed: re-read them. A key may be
    /// reported whose visible value a concurrent write left as it was.
    Changed(Arc<[K]>),
    /// This subscriber fell more than [`WATCH_CAPACITY`] batches behind and
    /// lost some: re-read the whole replica.
    Lagged,
}

/// A subscription to one replica's changed keys (see the module docs).
pub struct Watch<K> {
    rx: broadcast::Receiver<Arc<[K]>>,
}

impl<K: Clone> Watch<K> {
    /// The next batch, or [`WatchEvent::Lagged`]; `None` once the node has
    /// stopped.
    pub async fn next(&mut self) -> Option<WatchEvent<K>> {
        match self.rx.recv().await {
            Ok(keys) => Some(WatchEvent::Changed(keys)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(WatchEvent::Lagged),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// One watched replica: how to hand its keys out, and the channel.
struct Watched {
    /// Takes the engine's collected keys and sends them as one batch.
    publish: Box<dyn Fn(&mut Engine) + Send + Sync>,
    /// The typed `broadcast::Sender<Arc<[T::Key]>>`, to subscribe again.
    sender: Box<dyn Any + Send + Sync>,
}

/// The watched replicas of a node.
#[derive(Default)]
pub(super) struct Watchers(HashMap<String, Watched>);

impl Watchers {
    /// A new subscriber to replica `name` of type `T`; the first one makes
    /// the engine start collecting.
    pub(super) fn subscribe<T>(
        &mut self,
        engine: &mut Engine,
        name: &str,
    ) -> Result<Watch<T::Key>, SyncError>
    where
        T: Rows + 'static,
        T::Key: Clone + Send + Sync + 'static,
    {
        if let Some(w) = self.0.get(name) {
            let sender = w
                .sender
                .downcast_ref::<broadcast::Sender<Arc<[T::Key]>>>()
                .ok_or_else(|| SyncError::WrongType(name.to_owned()))?;
            return Ok(Watch {
                rx: sender.subscribe(),
            });
        }
        engine.watch::<T>(name)?;
        let (sender, rx) = broadcast::channel::<Arc<[T::Key]>>(WATCH_CAPACITY);
        let tx = sender.clone();
        let replica = name.to_owned();
        let publish = Box::new(move |engine: &mut Engine| {
            let keys = engine.take_watched::<T>(&replica).unwrap_or_default();
            if !keys.is_empty() {
                // No subscriber left is fine.
                let _ = tx.send(Arc::from(keys));
            }
        });
        self.0.insert(
            name.to_owned(),
            Watched {
                publish,
                sender: Box::new(sender),
            },
        );
        Ok(Watch { rx })
    }

    /// Hands out what every watched replica collected.
    pub(super) fn publish(&self, engine: &mut Engine) {
        for w in self.0.values() {
            (w.publish)(engine);
        }
    }
}
