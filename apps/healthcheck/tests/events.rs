//! `GET /v1/events` with a real client (`curl -N`) and blocking reads of
//! `GET /v1/origins?index=N&wait=…`, against a real agent and origin: a
//! registration and the origin's transitions arrive as events with ids; a
//! client that resumes with `Last-Event-ID` gets what it missed, one with an
//! id of another run gets a `resync`; a blocking read answers when the index
//! passes and not before; the origin's history lists its transitions.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use healthcheck::{
    agent::Agent,
    fake_origin::{Behaviour, FakeOrigin},
    testing::local_config,
};
use serde_json::Value;
use testkit::TempDir;

const LIMIT: Duration = Duration::from_secs(30);

/// An SSE event as curl printed it.
#[derive(Debug, Clone)]
struct Sse {
    id: String,
    kind: String,
    data: Value,
}

/// `curl -N` on the event stream, its events parsed on a thread.
struct Stream {
    child: Child,
    events: mpsc::Receiver<Sse>,
}

impl Stream {
    fn open(url: &str, last_event_id: Option<&str>) -> Stream {
        let mut cmd = Command::new("curl");
        cmd.args(["-N", "-s", url]);
        if let Some(id) = last_event_id {
            cmd.args(["-H", &format!("Last-Event-ID: {id}")]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("curl is needed for this test: {e}"));
        let out = child.stdout.take().expect("piped");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line.is_empty() {
                    if !kind.is_empty() {
                        let parsed = serde_json::from_str(&data).unwrap_or(Value::Null);
                        let event = Sse {
                            id: std::mem::take(&mut id),
                            kind: std::mem::take(&mut kind),
                            data: parsed,
                        };
                        if tx.send(event).is_err() {
                            break;
                        }
                    }
                    data.clear();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("event:") {
                    kind = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
        });
        Stream { child, events }
    }

    /// The next event that `matches`, skipping others (bounded).
    fn until(&self, what: &str, matches: impl Fn(&Sse) -> bool) -> Sse {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if matches(&e) => return e,
                Ok(_) => {}
                Err(_) => panic!("no event: {what}"),
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_health(e: &Sse, to: &str) -> bool {
    e.kind == "health" && e.data["origin"] == "web-1" && e.data["to"] == to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_resume_and_blocking_reads() {
    let dir = TempDir::new("events");
    let agent = Agent::start(local_config("ev-1", dir.join("data"), "events"))
        .await
        .expect("agent starts");
    let api = format!("http://{}", agent.api_addr());
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let http = reqwest::Client::new();
    let stream = Stream::open(&format!("{api}/v1/events"), None);
    let hello = tokio::task::block_in_place(|| stream.until("the index event", |_| true));
    assert_eq!(hello.kind, "index", "a stream starts with the index");
    assert_eq!(hello.data["index"], 0);

    let spec = serde_json::json!({
        "address": origin.addr().to_string(), "interval_ms": 100, "timeout_ms": 80,
        "rise": 1, "fall": 1
    });
    let put = http
        .put(format!("{api}/v1/origins/web-1"))
        .json(&spec)
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status().as_u16(), 201);
    let registered = tokio::task::block_in_place(|| {
        stream.until("the registration", |e| {
            e.kind == "registry" && e.data["origin"] == "web-1"
        })
    });
    assert_eq!(
        registered.data["spec"]["address"],
        origin.addr().to_string()
    );
    let up = tokio::task::block_in_place(|| stream.until("web-1 up", |e| is_health(e, "up")));
    assert_eq!(up.data["from"], "unknown");
    assert_eq!(up.data["record"]["status"], "up");

    // A blocking read at the current index waits for the next change.
    let list = http
        .get(format!("{api}/v1/origins"))
        .send()
        .await
        .expect("GET");
    let index: u64 = list.headers()["x-healthcheck-index"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("a number");
    assert!(index >= 2, "two events so far: {index}");
    let blocked = {
        let http = http.clone();
        let url = format!("{api}/v1/origins?index={index}&wait=20s");
        tokio::spawn(async move {
            let started = Instant::now();
            let r = http.get(url).send().await.expect("blocking GET");
            let index: u64 = r.headers()["x-healthcheck-index"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("a number");
            let body: Value = r.json().await.expect("JSON");
            (started.elapsed(), index, body)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!blocked.is_finished(), "nothing changed yet: it waits");
    origin.set_behaviour(Behaviour::Failing).await;
    let down = tokio::task::block_in_place(|| stream.until("web-1 down", |e| is_health(e, "down")));
    assert_eq!(down.data["from"], "up");
    assert!(
        down.data["record"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("503"))
    );
    let (waited, after, body) = blocked.await.expect("joined");
    assert!(after > index, "the index passed {index}: {after}");
    assert!(
        waited < Duration::from_secs(20),
        "answered on the change: {waited:?}"
    );
    assert_eq!(
        body[0]["health"]["status"], "down",
        "the answer holds the change"
    );
    // The origin's history: what this agent saw, oldest first.
    let h: Value = http
        .get(format!("{api}/v1/origins/web-1/history"))
        .send()
        .await
        .expect("GET history")
        .json()
        .await
        .expect("JSON");
    let t = h["transitions"].as_array().expect("a list");
    assert_eq!(t.len(), 2, "{h}");
    assert_eq!(
        (t[0]["from"].as_str(), t[0]["to"].as_str()),
        (Some("unknown"), Some("up"))
    );
    assert_eq!(
        (t[1]["from"].as_str(), t[1]["to"].as_str()),
        (Some("up"), Some("down"))
    );
    assert_eq!(t[1]["by"], "ev-1");
    assert!(
        t[1]["reason"].as_str().is_some_and(|r| r.contains("503")),
        "{h}"
    );
    assert!(t[1]["at_ms"].as_u64() >= t[0]["at_ms"].as_u64());
    let missing = http
        .get(format!("{api}/v1/origins/nope/history"))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status().as_u16(), 404);
    // An immediate answer when the index is already past.
    let r = http
        .get(format!("{api}/v1/origins?index=0&wait=20s"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status().as_u16(), 200);
    let bad = http
        .get(format!("{api}/v1/origins?index=soon"))
        .send()
        .await
        .expect("GET");
    assert_eq!(bad.status().as_u16(), 400);
    let e: Value = bad.json().await.expect("JSON error");
    assert_eq!(e["field"], "index");

    // Resume after the registration: the transitions are replayed.
    let resumed = Stream::open(&format!("{api}/v1/events"), Some(&registered.id));
    let replay_up =
        tokio::task::block_in_place(|| resumed.until("replayed up", |e| is_health(e, "up")));
    assert_eq!(replay_up.id, up.id);
    tokio::task::block_in_place(|| resumed.until("replayed down", |e| is_health(e, "down")));
    // An id of another run: re-read everything.
    let other = Stream::open(&format!("{api}/v1/events"), Some("1-1"));
    let first = tokio::task::block_in_place(|| other.until("a resync", |_| true));
    assert_eq!(first.kind, "resync");

    // A removal is an event too.
    let r = http
        .delete(format!("{api}/v1/origins/web-1"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 204);
    let removed = tokio::task::block_in_place(|| {
        stream.until("the removal", |e| {
            e.kind == "registry" && e.data["origin"] == "web-1" && e.data["spec"].is_null()
        })
    });
    assert!(!removed.id.is_empty());
    drop((stream, resumed, other));
    agent.shutdown().await;
    origin.shutdown().await;
}
