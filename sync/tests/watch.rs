//! `Node::watch` over real TCP: every subscriber of a replica gets the keys
//! that joins (a peer's writes) and local writes change, in batches, each on
//! its own queue; removals are reported too; a subscriber opened later sees
//! only later changes; the stream ends when the node stops.

mod support;

use std::{collections::BTreeSet, time::Duration};
use support::{Member, wire};

use crdt::ORMap;
use sync::{Watch, WatchEvent};

type Map = ORMap<String, u64>;
const LIMIT: Duration = Duration::from_secs(20);

async fn start(name: &str, actor: u64) -> Member {
    support::start_kv(support::config(name, "watch"), actor).await
}

/// Collects keys from `watch` until `want` are all seen (bounded).
async fn until_keys(watch: &mut Watch<String>, want: &[&str]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let want: BTreeSet<String> = want.iter().map(|s| (*s).to_owned()).collect();
    tokio::time::timeout(LIMIT, async {
        while !want.is_subset(&seen) {
            match watch.next().await {
                Some(WatchEvent::Changed(keys)) => seen.extend(keys.iter().cloned()),
                Some(WatchEvent::Lagged) => panic!("a subscriber this fast does not lag"),
                None => panic!("the node stopped"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out: saw {seen:?}, want {want:?}"));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_the_keys_joins_and_local_writes_change() {
    let a = start("a", 1).await;
    let b = start("b", 2).await;
    wire(&[&a, &b]);
    let mut first = a.node.watch::<Map>("kv").expect("registered");
    let mut second = a.node.watch::<Map>("kv").expect("registered");

    // b's writes reach a by sync: a's subscribers are told their keys.
    for k in ["x", "y"] {
        b.node
            .write::<Map, _>("kv", |m| m.insert(k.to_owned(), 1))
            .expect("registered");
    }
    let seen = until_keys(&mut first, &["x", "y"]).await;
    assert!(seen.iter().all(|k| k == "x" || k == "y"), "{seen:?}");
    until_keys(&mut second, &["x", "y"]).await;

    // a's own write, and a removal b makes.
    a.node
        .write::<Map, _>("kv", |m| m.insert("z".to_owned(), 3))
        .expect("registered");
    until_keys(&mut first, &["z"]).await;
    until_keys(&mut second, &["z"]).await;
    let mut late = a.node.watch::<Map>("kv").expect("registered");
    b.node
        .write::<Map, _>("kv", |m| m.remove(&"x".to_owned()))
        .expect("registered");
    until_keys(&mut first, &["x"]).await;
    let seen = until_keys(&mut late, &["x"]).await;
    assert!(
        !seen.contains("z"),
        "a later subscriber sees only later changes: {seen:?}"
    );

    // A watch of another type is refused, naming the replica.
    assert!(a.node.watch::<ORMap<u32, u32>>("kv").is_err());
    assert!(a.node.watch::<Map>("nope").is_err());

    a.node.shutdown().await;
    b.node.shutdown().await;
    drop(a);
    let ended = tokio::time::timeout(LIMIT, async {
        loop {
            if first.next().await.is_none() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ends once the node is gone");
}

#[tokio::test]
async fn a_subscriber_too_far_behind_is_told_to_reread() {
    let a = start("lag", 1).await;
    let mut watch = a.node.watch::<Map>("kv").expect("registered");
    // One batch per driver step; let the driver step after each write
    // (four times the capacity: a step that takes two writes at once does
    // not save it).
    for i in 0..(sync::WATCH_CAPACITY * 4) {
        a.node
            .write::<Map, _>("kv", |m| m.insert(format!("k{i}"), 1))
            .expect("registered");
        a.node.flush().await.expect("in memory");
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
    }
    let first = tokio::time::timeout(LIMIT, watch.next())
        .await
        .expect("something is there");
    assert_eq!(first, Some(WatchEvent::Lagged), "told to re-read first");
    a.node.shutdown().await;
}
