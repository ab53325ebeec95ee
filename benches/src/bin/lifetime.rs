//! Real processes over a cluster's lifetime (issue 11): steady-state sync
//! traffic through restarts, registrations through `kill -9`, and catch-up
//! of state larger than a frame, with time and peak RSS of both sides.
//!
//! Run (release): `cargo build --release -p healthcheck -p benches` then
//! `cargo run --release -p benches --bin lifetime -- MODE [options]`, MODE one of:
//! * `restarts [--restarts 40]`: 3 agents; agent 0's steady-state sync bytes
//!   per second for the `health` replica, fresh and after one agent was
//!   restarted `--restarts` times (SIGTERM and `kill -9` alternately);
//! * `rolling [--agents 16] [--rounds 10]`: mean sync bytes per second per
//!   agent, fresh and after `--rounds` rolling restarts of every agent;
//! * `kills [--registrations 2000] [--kills 3]`: 3 agents; `--kills` times,
//!   `kill -9` of the agent taking `--registrations` registrations in their
//!   middle; then every acknowledged id must be on every agent;
//! * `catch-up [--keys 1000000]`: a sync node holding `--keys` keys in one
//!   process, a fresh one in another: time to catch up and peak RSS of both;
//! * `join [--origins 200000]`: an agent whose store holds `--origins`
//!   registered origins and a new agent joining it: time until the new one
//!   serves them all and peak RSS of both.
//!
//! Uses ports 18000–18400 on 127.0.0.1. `HEALTHCHECK_BIN` points at another
//! agent binary.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};
use testkit::TempDir;

use benches::procs::{arg, json};
use serde_json::{Value, json};

const GOSSIP: u16 = 18000;
const SYNC: u16 = 18100;
const API: u16 = 18200;

fn api(i: usize) -> String {
    format!("http://127.0.0.1:{}", API + i as u16)
}

/// The API token of every agent this bench starts (and of its client).
fn token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(healthcheck::tokens::generate)
}

/// Agent processes by index; each is SIGINTed and waited for on drop.
struct Cluster {
    dir: TempDir,
    n: usize,
    children: Vec<Option<Child>>,
}

impl Cluster {
    fn new(name: &str, n: usize) -> Cluster {
        let dir = TempDir::new(&format!("lifetime-{name}"));
        let mut c = Cluster {
            dir,
            n,
            children: (0..n).map(|_| None).collect(),
        };
        for i in 0..n {
            c.start(i);
        }
        c
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("a{i:02}"))
    }

    fn start(&mut self, i: usize) {
        let seeds: Vec<String> = (0..self.n.min(3))
            .map(|s| format!("\"127.0.0.1:{}\"", GOSSIP + s as u16))
            .collect();
        let config = format!(
            "node = \"a{i:02}\"\ncluster = \"lifetime\"\ndata_dir = \"{}\"\ntoken_file = \"{}\"\nseeds = [{}]\n\
             [listen]\ngossip = \"127.0.0.1:{}\"\nsync = \"127.0.0.1:{}\"\napi = \"127.0.0.1:{}\"\n\
             [timings]\npreset = \"lan\"\n",
            self.data_dir(i).display(),
            self.dir.join("api.tokens").display(),
            seeds.join(", "),
            GOSSIP + i as u16,
            SYNC + i as u16,
            API + i as u16
        );
        let path = self.dir.join(format!("a{i:02}.toml"));
        std::fs::write(&path, config).expect("write config");
        std::fs::write(self.dir.join("api.tokens"), format!("write {}\n", token()))
            .expect("write the token file");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("a{i:02}.log")))
            .expect("log file");
        let child = Command::new(benches::procs::healthcheck_bin())
            .arg("agent")
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn an agent");
        self.children[i] = Some(child);
    }

    /// Stops agent `i`: SIGTERM (a graceful leave) or SIGKILL.
    fn stop(&mut self, i: usize, kill: bool) {
        if let Some(mut c) = self.children[i].take() {
            let signal = if kill { "-KILL" } else { "-TERM" };
            let _ = Command::new("kill")
                .arg(signal)
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }

    /// How many times the agents' logs say a restored actor was replaced,
    /// by reason.
    fn retirements(&self) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for i in 0..self.n {
            let log =
                std::fs::read_to_string(self.dir.join(format!("a{i:02}.log"))).unwrap_or_default();
            for line in log.lines().filter(|l| l.contains("cannot be trusted")) {
                let reason = line
                    .split("reason=")
                    .nth(1)
                    .map(|r| {
                        r.trim_matches('"')
                            .split_whitespace()
                            .next()
                            .unwrap_or("?")
                            .trim_matches('"')
                            .to_owned()
                    })
                    .unwrap_or_else(|| "?".into());
                *out.entry(reason).or_insert(0) += 1;
            }
        }
        out
    }

    fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(Child::id)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.n {
            if let Some(c) = &self.children[i] {
                let _ = Command::new("kill")
                    .arg("-INT")
                    .arg(c.id().to_string())
                    .status();
            }
        }
        for c in self.children.iter_mut().flatten() {
            let _ = c.wait();
        }
    }
}

/// Peak resident set of process `pid` (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Waits until agents `ids` each see `n` alive members; panics after 120 s.
async fn one_view(http: &reqwest::Client, ids: &[usize], n: usize) -> Duration {
    let t = Instant::now();
    loop {
        let mut ready = 0;
        for &i in ids {
            let alive = json(http, &format!("{}/v1/node", api(i)))
                .await
                .and_then(|v| v["members_alive"].as_u64());
            if alive == Some(n as u64) {
                ready += 1;
            }
        }
        if ready == ids.len() {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no single view of {n} after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until restarted agent `i` has caught up and every agent in `ids`
/// sees it alive under its new identity (its bump); panics after 120 s.
async fn rejoined(http: &reqwest::Client, i: usize, ids: &[usize]) {
    let t = Instant::now();
    let bump = loop {
        let me = json(http, &format!("{}/v1/members", api(i))).await;
        let node = json(http, &format!("{}/v1/node", api(i))).await;
        // (An agent of the first release reports neither: then a single
        // view is all this can wait for.)
        let caught_up = node
            .as_ref()
            .is_some_and(|v| v["caught_up"].as_bool().unwrap_or(true));
        if let (Some(me), true) = (me, caught_up) {
            match me[0]["bump"].as_u64() {
                Some(b) => break b,
                None => {
                    one_view(http, ids, ids.len()).await;
                    return;
                }
            }
        }
        assert!(t.elapsed() < Duration::from_secs(120), "agent {i} not back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let name = format!("a{i:02}");
    for &j in ids.iter().filter(|&&j| j != i) {
        loop {
            let members = json(http, &format!("{}/v1/members", api(j)))
                .await
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default();
            if members.iter().any(|m| {
                m["id"] == name.as_str()
                    && m["bump"].as_u64() == Some(bump)
                    && m["state"] == "alive"
            }) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "agent {j} does not see agent {i} back"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Sync bytes (sent + received) of agent `i`: for `replica`, or all.
async fn sync_bytes(http: &reqwest::Client, i: usize, replica: Option<&str>) -> u64 {
    let v = json(http, &format!("{}/v1/node", api(i)))
        .await
        .unwrap_or(Value::Null);
    let replicas = v["sync"]["replicas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    replicas
        .iter()
        .filter(|(name, _)| replica.is_none_or(|r| r == name.as_str()))
        .map(|(_, r)| r["sent"].as_u64().unwrap_or(0) + r["received"].as_u64().unwrap_or(0))
        .sum()
}

/// Bytes per second of each agent in `ids` over `window`.
async fn rates(
    http: &reqwest::Client,
    ids: &[usize],
    replica: Option<&str>,
    window: Duration,
) -> Vec<f64> {
    let mut before = Vec::new();
    for &i in ids {
        before.push(sync_bytes(http, i, replica).await);
    }
    let t = Instant::now();
    tokio::time::sleep(window).await;
    let secs = t.elapsed().as_secs_f64();
    let mut out = Vec::new();
    for (k, &i) in ids.iter().enumerate() {
        out.push(sync_bytes(http, i, replica).await.saturating_sub(before[k]) as f64 / secs);
    }
    out
}

async fn context_actors(http: &reqwest::Client, i: usize) -> String {
    json(http, &format!("{}/v1/node", api(i)))
        .await
        .map(|v| v["context_actors"].to_string())
        .unwrap_or_default()
}

/// A TCP listener that accepts and closes (the origins of TCP checks).
async fn target() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    addr
}

async fn register(
    http: &reqwest::Client,
    i: usize,
    id: &str,
    addr: std::net::SocketAddr,
) -> Option<u16> {
    let spec = json!({ "address": addr.to_string(), "kind": "tcp", "interval_ms": 5000, "timeout_ms": 1000 });
    http.put(format!("{}/v1/origins/{id}", api(i)))
        .json(&spec)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

async fn restarts(http: &reqwest::Client) {
    let restarts = arg("--restarts", 40);
    let mut c = Cluster::new("restarts", 3);
    one_view(http, &[0, 1, 2], 3).await;
    let addr = target().await;
    for o in 0..30 {
        assert!(matches!(
            register(http, o % 3, &format!("o{o:02}"), addr).await,
            Some(200 | 201)
        ));
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    let window = Duration::from_secs(arg("--window", 30) as u64);
    let before = rates(http, &[0], Some("health"), window).await[0];
    let actors_before = context_actors(http, 0).await;
    let t = Instant::now();
    for r in 0..restarts {
        c.stop(2, r % 2 == 1);
        c.start(2);
        rejoined(http, 2, &[0, 1, 2]).await;
    }
    let took = t.elapsed();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let after = rates(http, &[0], Some("health"), window).await[0];
    let actors_after = context_actors(http, 0).await;
    println!("| agent 0, `health` replica | sync bytes/s | context actors |");
    println!("|---|---:|---|");
    println!("| fresh cluster of 3 | {before:.0} | {actors_before} |");
    println!(
        "| after {restarts} restarts of agent 2 (SIGTERM and kill -9 alternately, {:.0} s) | {after:.0} | {actors_after} |",
        took.as_secs_f64()
    );
    println!("ratio: {:.2}", after / before);
    println!("restored actors replaced, by reason: {:?}", c.retirements());
}

async fn rolling(http: &reqwest::Client) {
    let n = arg("--agents", 16);
    let rounds = arg("--rounds", 10);
    let mut c = Cluster::new("rolling", n);
    let all: Vec<usize> = (0..n).collect();
    one_view(http, &all, n).await;
    let addr = target().await;
    for o in 0..200 {
        assert!(matches!(
            register(http, o % n, &format!("o{o:03}"), addr).await,
            Some(200 | 201)
        ));
    }
    tokio::time::sleep(Duration::from_secs(20)).await;
    let window = Duration::from_secs(arg("--window", 30) as u64);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let before = rates(http, &all, None, window).await;
    let actors_before = context_actors(http, 0).await;
    let t = Instant::now();
    for _ in 0..rounds {
        for i in 0..n {
            c.stop(i, false);
            c.start(i);
            rejoined(http, i, &all).await;
        }
    }
    let took = t.elapsed();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let after = rates(http, &all, None, window).await;
    let actors_after = context_actors(http, 0).await;
    println!(
        "| {n} agents, all replicas | mean sync bytes/s per agent | max | context actors (agent 0) |"
    );
    println!("|---|---:|---:|---|");
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!(
        "| fresh | {:.0} | {:.0} | {actors_before} |",
        mean(&before),
        max(&before)
    );
    println!(
        "| after {rounds} rolling restarts of all {n} ({} restarts, {:.0} s) | {:.0} | {:.0} | {actors_after} |",
        rounds * n,
        took.as_secs_f64(),
        mean(&after),
        max(&after)
    );
    println!(
        "ratio: {:.2} (target at most 1.2)",
        mean(&after) / mean(&before)
    );
    println!("restored actors replaced, by reason: {:?}", c.retirements());
}

async fn kills(http: &reqwest::Client) {
    let registrations = arg("--registrations", 2000);
    let kills = arg("--kills", 3);
    let mut c = Cluster::new("kills", 3);
    one_view(http, &[0, 1, 2], 3).await;
    let addr = target().await;
    let mut acknowledged: Vec<String> = Vec::new();
    let mut refused = 0usize;
    for k in 0..kills {
        let victim = 1 + k % 2;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Option<u16>)>(64);
        let http2 = http.clone();
        let sender = tokio::spawn(async move {
            let sem = Arc::new(tokio::sync::Semaphore::new(16));
            let mut tasks = Vec::new();
            for j in 0..registrations {
                let permit = sem.clone().acquire_owned().await.expect("semaphore");
                let (tx, http) = (tx.clone(), http2.clone());
                tasks.push(tokio::spawn(async move {
                    let id = format!("k{k}-{j:04}");
                    let status = register(&http, victim, &id, addr).await;
                    let _ = tx.send((id, status)).await;
                    drop(permit);
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        });
        let mut answered = 0;
        let mut killed = false;
        while let Some((id, status)) = rx.recv().await {
            answered += 1;
            match status {
                Some(200 | 201) => acknowledged.push(id),
                _ => refused += 1,
            }
            if !killed && answered >= registrations / 2 {
                c.stop(victim, true);
                killed = true;
            }
        }
        let _ = sender.await;
        c.start(victim);
        rejoined(http, victim, &[0, 1, 2]).await;
        println!(
            "kill {}: agent {victim} killed after {} registrations answered",
            k + 1,
            registrations / 2
        );
    }
    let t = Instant::now();
    let mut missing = Vec::new();
    loop {
        missing.clear();
        for i in 0..3 {
            let have: std::collections::HashSet<String> =
                json(http, &format!("{}/v1/origins", api(i)))
                    .await
                    .and_then(|v| v.as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|o| o["id"].as_str().map(String::from))
                    .collect();
            missing.push(acknowledged.iter().filter(|id| !have.contains(*id)).count());
        }
        if missing.iter().all(|m| *m == 0) || t.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "{kills} kills in the middle of {registrations} registrations each: {} acknowledged, {refused} not (in flight at the kill or sent to the dead agent); acknowledged ids missing per agent: {missing:?}",
        acknowledged.len()
    );
    assert!(missing.iter().all(|m| *m == 0), "acknowledged writes lost");
}

/// The child side of `catch-up`: builds the map, serves it, and when its
/// stdin closes prints its peak RSS.
async fn catch_up_holder() {
    let keys = arg("--keys", 1_000_000) as u64;
    let mut map: crdt::ORMap<String, u64> = crdt::ORMap::new(crdt::ActorId(1));
    for k in 0..keys {
        map.insert(format!("{k:07}"), k);
    }
    let node = sync::Node::builder(sync::NodeConfig::new(
        "holder",
        "catch-up",
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .replica("kv", map)
    .expect("fresh")
    .start(Arc::new(sync::StaticPeers::default()))
    .await
    .expect("binds");
    println!("ready {}", node.local_addr());
    std::io::stdout().flush().expect("stdout");
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await;
    println!("rss {:.0}", peak_rss_mib(std::process::id()));
}

async fn catch_up() {
    let keys = arg("--keys", 1_000_000);
    let mut child = Command::new(std::env::current_exe().expect("self"))
        .arg("catch-up-holder")
        .arg("--keys")
        .arg(keys.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the holder");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("ready line");
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("ready ")
        .and_then(|a| a.parse().ok())
        .expect("ready ADDR");
    let node = sync::Node::builder(sync::NodeConfig::new(
        "fresh",
        "catch-up",
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .replica("kv", crdt::ORMap::<String, u64>::new(crdt::ActorId(2)))
    .expect("fresh")
    .start(Arc::new(sync::StaticPeers::new(vec![sync::Peer {
        id: sync::NodeId("holder".into()),
        addr,
    }])))
    .await
    .expect("binds");
    let t = Instant::now();
    while node
        .read::<crdt::ORMap<String, u64>, _>("kv", |m| m.len())
        .expect("registered")
        < keys
    {
        assert!(t.elapsed() < Duration::from_secs(300), "not caught up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = t.elapsed();
    let m = node.metrics();
    drop(child.stdin.take());
    line.clear();
    out.read_line(&mut line).expect("rss line");
    let holder_rss = line.trim().strip_prefix("rss ").unwrap_or("?").to_owned();
    let _ = child.wait();
    println!(
        "| keys | catch-up time | bytes received | chunks | peak RSS, fresh node | peak RSS, holder |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {keys} | {:.2} s | {} | {} | {:.0} MiB | {holder_rss} MiB |",
        took.as_secs_f64(),
        m.bytes_received(),
        m.chunks_received,
        peak_rss_mib(std::process::id())
    );
    node.shutdown().await;
}

/// Writes a store for agent `a00` holding `origins` registered origins.
fn prebuilt_store(dir: &Path, origins: usize, addr: std::net::SocketAddr) {
    use crdt::Rows;
    use healthcheck::registry::{Registered, Registry};
    let actor = crdt::ActorId(0x5eed);
    let mut registry = Registry::new(actor);
    let mut spec = healthcheck::spec::OriginSpec::new(addr.to_string());
    spec.interval_ms = 86_400_000;
    for o in 0..origins {
        registry.insert(
            format!("origin-{o:06}"),
            Registered {
                spec: spec.clone(),
                updated_at_ms: 1,
            },
        );
    }
    let rows = registry
        .rows()
        .into_iter()
        .map(|(k, r)| {
            (
                rmp_serde::to_vec(&k).expect("encodes"),
                Some(rmp_serde::to_vec(&r).expect("encodes")),
            )
        })
        .collect();
    let storage = sync::storage::RedbStorage::open(healthcheck::store::path(dir)).expect("opens");
    sync::storage::Storage::commit(
        &storage,
        &sync::storage::Commit {
            identity: Some(sync::storage::Identity {
                node: "a00".into(),
                actor,
            }),
            replicas: vec![sync::storage::ReplicaCommit {
                name: healthcheck::registry::ORIGINS.into(),
                head: rmp_serde::to_vec(&registry.head()).expect("encodes"),
                rows,
            }],
        },
    )
    .expect("commits");
}

/// Waits until agent `i` serves `origins` registered origins; the time
/// taken. Panics after 300 s.
async fn serves(http: &reqwest::Client, i: usize, origins: usize) -> Duration {
    let t = Instant::now();
    loop {
        let have = json(http, &format!("{}/v1/node", api(i)))
            .await
            .and_then(|v| v["origins"].as_u64());
        if have == Some(origins as u64) {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "agent {i} has {have:?} of {origins} origins"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn join(http: &reqwest::Client) {
    let origins = arg("--origins", 200_000);
    let dir = TempDir::new("lifetime-join");
    let addr = target().await;
    prebuilt_store(&dir.join("a00"), origins, addr);
    let mut c = Cluster {
        dir,
        n: 2,
        children: vec![None, None],
    };
    c.start(0);
    let loaded = serves(http, 0, origins).await;
    c.start(1);
    let took = serves(http, 1, origins).await;
    let received = json(http, &format!("{}/v1/node", api(1)))
        .await
        .and_then(|v| v["sync"]["replicas"]["origins"]["received"].as_u64())
        .unwrap_or(0);
    println!(
        "| registered origins | agent 0 loads its store | new agent serves them all | registry bytes received | peak RSS, new agent | peak RSS, agent 0 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {origins} | {:.1} s | {:.1} s | {received} | {:.0} MiB | {:.0} MiB |",
        loaded.as_secs_f64(),
        took.as_secs_f64(),
        c.pid(1).map_or(f64::NAN, peak_rss_mib),
        c.pid(0).map_or(f64::NAN, peak_rss_mib)
    );
}

#[tokio::main]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .default_headers(benches::procs::auth_headers(token()))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    match mode.as_str() {
        "restarts" => restarts(&http).await,
        "rolling" => rolling(&http).await,
        "kills" => kills(&http).await,
        "catch-up" => catch_up().await,
        "catch-up-holder" => catch_up_holder().await,
        "join" => join(&http).await,
        _ => eprintln!(
            "usage: lifetime restarts|rolling|kills|catch-up|join [options] (see the module docs)"
        ),
    }
}
