//! `GET /v1/events` followed with a real HTTP client.

use std::sync::{Arc, Mutex};

use serde_json::Value;

/// The text of `GET /v1/events` on `url`, read as it arrives.
pub(crate) fn follow(url: String) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    tokio::spawn(async move {
        let Ok(mut r) = reqwest::get(url).await else {
            return;
        };
        while let Ok(Some(chunk)) = r.chunk().await {
            if let Ok(mut t) = sink.lock() {
                t.push_str(&String::from_utf8_lossy(&chunk));
            }
        }
    });
    text
}

/// The data of the events of `kind` in an SSE text.
pub(crate) fn events_of(text: &Mutex<String>, kind: &str) -> Vec<Value> {
    let text = text.lock().map(|t| t.clone()).unwrap_or_default();
    text.split("\n\n")
        .filter(|e| e.lines().any(|l| l == format!("event: {kind}")))
        .filter_map(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .and_then(|d| serde_json::from_str(d).ok())
        })
        .collect()
}
