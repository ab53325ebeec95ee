//! `GET /v1/events`: the event log as Server-Sent Events, and the index
//! header of blocking reads.
//!
//! Each event is `event: health|registry|maintenance|disputed|resync|index`,
//! `id: {epoch}-{seq}` and `data:` its JSON (see [`crate::events::EventBody`]). A stream opened
//! without `Last-Event-ID` starts with an `index` event (the index now: its
//! id resumes from there). A client that
//! reconnects with `Last-Event-ID` gets every event after it if the log
//! still holds them, else a `resync` first (re-read `GET /v1/origins`). A
//! client that falls more than the feed's capacity behind gets a `resync`
//! and continues from there. A comment every [`HEARTBEAT`] keeps idle
//! proxies from closing the stream.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::HeaderMap,
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
};
use futures_util::stream;
use tokio::sync::broadcast;

use crate::{
    events::{Event, EventBody},
    shared::Shared,
};

/// How often an idle stream carries a comment.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// The header that carries the index of a `GET /v1/origins` answer.
pub const INDEX_HEADER: &str = "x-healthcheck-index";

/// The longest a blocking read waits (`wait` is capped to it).
pub const MAX_WAIT: Duration = Duration::from_secs(600);

struct Feed {
    shared: Arc<Shared>,
    /// Events to send first (a replay, or a resync).
    queued: std::collections::VecDeque<Arc<Event>>,
    rx: broadcast::Receiver<Arc<Event>>,
    /// Live events up to this one were replayed (or are older).
    sent: u64,
}

fn sse_event(shared: &Shared, event: &Event) -> SseEvent {
    let id = shared
        .events
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .id(event.seq);
    SseEvent::default()
        .id(id)
        .event(event.body.kind())
        .json_data(&event.body)
        .unwrap_or_else(|_| SseEvent::default().event("resync").data("{}"))
}

/// A `resync` for a client that may have missed events: it carries index
/// `seq` as its id, so a later resume starts from there.
fn resync_at(seq: u64) -> Arc<Event> {
    Arc::new(Event {
        seq,
        body: EventBody::Resync,
    })
}

/// `GET /v1/events`.
pub(crate) async fn events(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    // Subscribe first, then read the log: no event falls between the two.
    let rx = shared.event_feed.subscribe();
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (queued, sent) = {
        let log = shared.events.lock().unwrap_or_else(|p| p.into_inner());
        let index = log.index();
        let queued: std::collections::VecDeque<Arc<Event>> = match last.as_deref() {
            None => [Arc::new(Event {
                seq: index,
                body: EventBody::Index { index },
            })]
            .into(),
            Some(id) => match log.since(id) {
                Some(replay) => replay.into(),
                None => [resync_at(index)].into(),
            },
        };
        (queued, index)
    };
    let feed = Feed {
        shared,
        queued,
        rx,
        sent,
    };
    let stream = stream::unfold(feed, |mut feed| async move {
        if let Some(event) = feed.queued.pop_front() {
            let sse = sse_event(&feed.shared, &event);
            return Some((Ok::<_, Infallible>(sse), feed));
        }
        loop {
            tokio::select! {
                () = feed.shared.shutdown.cancelled() => return None,
                next = feed.rx.recv() => match next {
                    Ok(event) if event.seq <= feed.sent => {}
                    Ok(event) => {
                        feed.sent = event.seq;
                        let sse = sse_event(&feed.shared, &event);
                        return Some((Ok(sse), feed));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let event = resync_at(feed.shared.index());
                        feed.sent = event.seq;
                        let sse = sse_event(&feed.shared, &event);
                        return Some((Ok(sse), feed));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(HEARTBEAT))
        .into_response()
}

/// The `index` and `wait` of a blocking read (`?index=N&wait=30s`), if
/// `index` is given. `wait` is `{n}ms`, `{n}s` or `{n}m`, at most
/// [`MAX_WAIT`] (also its default).
///
/// # Errors
/// The field and why, for a 400.
pub(crate) fn blocking(
    query: Option<&str>,
) -> Result<Option<(u64, Duration)>, (&'static str, String)> {
    let Some(query) = query else {
        return Ok(None);
    };
    let mut index = None;
    let mut wait = MAX_WAIT;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "index" => {
                index = Some(value.parse::<u64>().map_err(|_| {
                    (
                        "index",
                        format!("{value:?} is not an index (a whole number)"),
                    )
                })?);
            }
            "wait" => wait = parse_wait(value).map_err(|m| ("wait", m))?,
            _ => {}
        }
    }
    Ok(index.map(|i| (i, wait.min(MAX_WAIT))))
}

fn parse_wait(value: &str) -> Result<Duration, String> {
    let bad = || format!("{value:?} is not a duration (e.g. 500ms, 30s, 5m)");
    let (digits, unit) = value
        .find(|c: char| !c.is_ascii_digit())
        .map_or((value, ""), |at| value.split_at(at));
    let n: u64 = digits.parse().map_err(|_| bad())?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocking_read_takes_an_index_and_a_wait() {
        assert_eq!(blocking(None), Ok(None));
        assert_eq!(
            blocking(Some("wait=5s")),
            Ok(None),
            "no index: not blocking"
        );
        assert_eq!(
            blocking(Some("index=7&wait=30s")),
            Ok(Some((7, Duration::from_secs(30))))
        );
        assert_eq!(
            blocking(Some("index=7&wait=250ms")),
            Ok(Some((7, Duration::from_millis(250))))
        );
        assert_eq!(blocking(Some("index=7")), Ok(Some((7, MAX_WAIT))));
        assert_eq!(
            blocking(Some("index=7&wait=99m")),
            Ok(Some((7, MAX_WAIT))),
            "capped"
        );
        assert_eq!(blocking(Some("index=x")).map_err(|e| e.0), Err("index"));
        assert_eq!(
            blocking(Some("index=1&wait=5h")).map_err(|e| e.0),
            Err("wait")
        );
    }
}
