//! The event feed: a thin driver of [`EventLog`](crate::events::EventLog)
//! over `sync`'s watch of the three replicas. Each changed key is re-read and
//! handed to the log; what it makes an event is broadcast to
//! `GET /v1/events`, raises the index (blocking reads) and invalidates the
//! list cache (a blocking read woken by a change sees it). A lagging watch
//! becomes a `resync` event.

use std::{collections::HashMap, sync::Arc};

use sync::WatchEvent;

use crate::{
    events::Event,
    maintenance::{MAINTENANCE, MaintenanceMap},
    registry::{HEALTH, HealthMap, ORIGINS, Registry},
    shared::Shared,
};

pub(super) async fn run(shared: Arc<Shared>) {
    let (mut health, mut registry, mut maintenance) = match (
        shared.node.watch::<HealthMap>(HEALTH),
        shared.node.watch::<Registry>(ORIGINS),
        shared.node.watch::<MaintenanceMap>(MAINTENANCE),
    ) {
        (Ok(h), Ok(r), Ok(m)) => (h, r, m),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            tracing::error!(error = %sync::error_chain(&e), "no event feed: cannot watch the replicas");
            return;
        }
    };
    know_statuses(&shared);
    loop {
        let made: Vec<Arc<Event>> = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            next = health.next() => match next {
                Some(WatchEvent::Changed(keys)) => {
                    let mut log = shared.events.lock().unwrap_or_else(|p| p.into_inner());
                    keys.iter()
                        .flat_map(|k| {
                            let record = shared.health(k);
                            let disputed = log.disputed(k, record.as_ref());
                            log.health(k, record).into_iter().chain(disputed)
                        })
                        .collect()
                }
                Some(WatchEvent::Lagged) => resync(&shared),
                None => return,
            },
            next = registry.next() => match next {
                Some(WatchEvent::Changed(keys)) => {
                    let mut log = shared.events.lock().unwrap_or_else(|p| p.into_inner());
                    keys.iter()
                        .map(|k| log.registry(k, shared.origin(k)))
                        .collect()
                }
                Some(WatchEvent::Lagged) => resync(&shared),
                None => return,
            },
            next = maintenance.next() => match next {
                Some(WatchEvent::Changed(keys)) => {
                    let mut log = shared.events.lock().unwrap_or_else(|p| p.into_inner());
                    keys.iter()
                        .map(|k| log.maintenance(k, shared.maintenance(k)))
                        .collect()
                }
                Some(WatchEvent::Lagged) => resync(&shared),
                None => return,
            },
        };
        publish(&shared, made);
    }
}

/// The statuses visible now become the log's baseline.
fn know_statuses(shared: &Shared) {
    let statuses: HashMap<String, crate::record::Status> = shared
        .all_health()
        .into_iter()
        .map(|(k, r)| (k, r.status))
        .collect();
    shared
        .events
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .know(statuses);
}

fn resync(shared: &Shared) -> Vec<Arc<Event>> {
    know_statuses(shared);
    vec![
        shared
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .resync(),
    ]
}

fn publish(shared: &Shared, made: Vec<Arc<Event>>) {
    let Some(last) = made.last().map(|e| e.seq) else {
        return;
    };
    shared.list.invalidate();
    for event in made {
        // No subscriber is fine.
        let _ = shared.event_feed.send(event);
    }
    shared.index.send_replace(last);
}
