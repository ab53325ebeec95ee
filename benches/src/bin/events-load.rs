//! `GET /v1/events` under load: one real agent process (release build) with
//! `--origins` registered origins (10,000 by default; TCP checks every 30 s
//! against a local accept-and-close listener) and `--subscribers` SSE
//! streams (1,000 by default) held open by this process on raw TCP. One
//! more origin, `flip`, is an HTTP stand-in origin in this process that is
//! switched between healthy and failing `--flips` times (rise = fall = 1,
//! checked every 100 ms): each switch is one status change, which must
//! reach every subscriber.
//!
//! Measured per delivery: this machine's wall clock when the event arrived
//! minus the record's `checked_at_ms` (the agent's wall clock when it wrote
//! the record: the same clock, ms resolution). And the agent's CPU (utime +
//! stime from `/proc/<pid>/stat`) and RSS: after every origin's first
//! verdict (each one a transition) without subscribers, with them idle, and
//! across the flips.
//!
//! Run: `cargo build --release -p healthcheck && cargo run --release -p benches --bin events-load`

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use benches::procs::{
    Agents, arg, auth_headers, clock_ticks, cpu_seconds, percentile, rss_kib, wait_for_one_view,
};
use healthcheck::fake_origin::{Behaviour, FakeOrigin};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const API: &str = "127.0.0.1:17650";

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// One subscriber: a raw HTTP/1.1 SSE stream; for each `health` event of
/// `flip`, the delivery latency in µs goes into `seen`.
async fn subscribe(
    token: String,
    seen: Arc<Mutex<Vec<(u64, u64)>>>,
    ready: tokio::sync::mpsc::Sender<()>,
) {
    let mut stream = TcpStream::connect(API).await.expect("connect");
    let request = format!(
        "GET /v1/events HTTP/1.1\r\nHost: {API}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = String::new();
    let mut announced = false;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let at = now_us();
        pending.push_str(&String::from_utf8_lossy(&buf[..n]));
        while let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            if !announced && block.contains("event: index") {
                announced = true;
                let _ = ready.send(()).await;
            }
            if block.contains("event: health") && block.contains("\"origin\":\"flip\"") {
                let checked = block
                    .split("\"checked_at_ms\":")
                    .nth(1)
                    .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                let seq = block
                    .lines()
                    .find_map(|l| l.strip_prefix("id: "))
                    .and_then(|id| id.rsplit('-').next())
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                seen.lock()
                    .expect("lock")
                    .push((seq, at.saturating_sub(checked * 1000)));
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let origins = arg("--origins", 10_000);
    let subscribers = arg("--subscribers", 1_000);
    let flips = arg("--flips", 10);
    let bin = benches::procs::healthcheck_bin();
    let ticks = clock_ticks();
    // The origins: one listener that accepts and closes (TCP checks).
    let target_addr = benches::procs::accept_and_close().await;
    let flip = FakeOrigin::start(Behaviour::Healthy)
        .await
        .expect("flip origin");

    let mut agents = Agents::new("events-load");
    let dir = agents.dir.to_path_buf();
    let (token_file, token) = benches::procs::api_token(&dir);
    let config = format!(
        "node = \"e00\"\ncluster = \"events-load\"\ndata_dir = \"{}\"\ntoken_file = \"{}\"\n\
         [listen]\ngossip = \"127.0.0.1:17450\"\nsync = \"127.0.0.1:17550\"\napi = \"{API}\"\n\
         [api]\nmax_connections = {}\n\
         [timings]\npreset = \"lan\"\nrecord_refresh_ms = 600000\n",
        dir.join("e00").display(),
        token_file.display(),
        subscribers + 64
    );
    agents.spawn(&bin, 0, &config);
    let pid = agents.children[0].id().to_string();
    let http = reqwest::Client::builder()
        .default_headers(auth_headers(&token))
        .build()
        .expect("client");
    wait_for_one_view(&http, &[format!("http://{API}")]).await;
    let t = Instant::now();
    for o in 0..origins {
        let body = json!({"address": target_addr, "kind": "tcp", "interval_ms": 30_000, "timeout_ms": 1000});
        let r = http
            .put(format!("http://{API}/v1/origins/o{o:05}"))
            .json(&body)
            .send()
            .await
            .expect("put");
        assert_eq!(r.status().as_u16(), 201);
    }
    let body = json!({"address": flip.addr().to_string(), "interval_ms": 100, "timeout_ms": 80, "rise": 1, "fall": 1});
    http.put(format!("http://{API}/v1/origins/flip"))
        .json(&body)
        .send()
        .await
        .expect("put flip");
    println!(
        "{origins} origins + flip registered in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Every origin's first verdict is a transition (unknown → up): let them
    // all happen (one check interval) before measuring.
    tokio::time::sleep(Duration::from_secs(35)).await;
    let base_start = (cpu_seconds(&pid, ticks), Instant::now());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let base_cpu = (cpu_seconds(&pid, ticks) - base_start.0) / base_start.1.elapsed().as_secs_f64();
    let rss0 = rss_kib(&pid);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, mut ready) = tokio::sync::mpsc::channel(subscribers.max(1));
    for _ in 0..subscribers {
        tokio::spawn(subscribe(token.clone(), seen.clone(), ready_tx.clone()));
    }
    for _ in 0..subscribers {
        ready.recv().await.expect("every subscriber connects");
    }
    let idle_start = (cpu_seconds(&pid, ticks), Instant::now());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_cpu = (cpu_seconds(&pid, ticks) - idle_start.0) / idle_start.1.elapsed().as_secs_f64();
    let rss_idle = rss_kib(&pid);
    println!("{subscribers} subscribers connected; idle for 10 s");

    let flips_start = (cpu_seconds(&pid, ticks), Instant::now());
    let mut behaviour = Behaviour::Healthy;
    for i in 0..flips {
        behaviour = if matches!(behaviour, Behaviour::Healthy) {
            Behaviour::Failing
        } else {
            Behaviour::Healthy
        };
        flip.set_behaviour(behaviour).await;
        // Wait until every subscriber has this transition (bounded).
        let want = (i + 1) * subscribers;
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.lock().expect("lock").len() < want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let flips_secs = flips_start.1.elapsed().as_secs_f64();
    let flips_cpu = cpu_seconds(&pid, ticks) - flips_start.0;
    let rss_max = rss_kib(&pid);
    let got = seen.lock().expect("lock").clone();
    let mut latencies: Vec<f64> = got.iter().map(|(_, us)| *us as f64 / 1000.0).collect();
    latencies.sort_by(f64::total_cmp);
    let expected = flips * subscribers;
    println!();
    println!(
        "| origins | subscribers | transitions | deliveries (of expected) | p50 | p99 | max |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {origins} | {subscribers} | {flips} | {} ({expected}) | {:.1} ms | {:.1} ms | {:.1} ms |",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    println!();
    println!("| agent | CPU (cores) | RSS |");
    println!("|---|---:|---:|");
    println!(
        "| no subscriber, {origins} origins checked (10 s) | {base_cpu:.3} | {} MiB |",
        rss0 / 1024
    );
    println!(
        "| {subscribers} idle subscribers (10 s) | {idle_cpu:.3} | {} MiB |",
        rss_idle / 1024
    );
    println!(
        "| across the {flips} transitions ({flips_secs:.1} s) | {:.3} | {} MiB |",
        flips_cpu / flips_secs,
        rss_max / 1024
    );
    drop(agents);
    flip.shutdown().await;
}
