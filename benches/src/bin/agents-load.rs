//! Real processes: 16 `healthcheck agent` processes on 127.0.0.1 sharing
//! 10,000 origins. Measures how long a registry write on one agent takes to
//! be served by every agent's API (p50, p99 over 100 writes), and the sync
//! bytes per second each agent sends and receives in steady state.
//!
//! Run: `cargo build --release -p healthcheck && cargo run --release -p benches --bin agents-load`
//! (`--agents N --origins M --writes W` change the sizes; `HEALTHCHECK_BIN`
//! points at another binary.) Uses ports 17000–17300 on 127.0.0.1.

use std::time::{Duration, Instant};

use benches::procs::{Agents, arg, json, percentile, wait_for_one_view};
use serde_json::{Value, json};

fn api(i: usize) -> String {
    format!("http://127.0.0.1:{}", 17200 + i)
}

#[tokio::main]
async fn main() {
    let n = arg("--agents", 16);
    let origins = arg("--origins", 10_000);
    let writes = arg("--writes", 100);
    let bin = benches::procs::healthcheck_bin();
    // The origins: one listener that accepts and closes (TCP checks).
    let target = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target_addr = target.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = target.accept().await {
            drop(s);
        }
    });

    let mut agents = Agents::new("agents-load");
    let dir = agents.dir.to_path_buf();
    let (token_file, token) = benches::procs::api_token(&dir);
    for i in 0..n {
        let config = format!(
            "node = \"a{i:02}\"\ncluster = \"load\"\ndata_dir = \"{}\"\ntoken_file = \"{}\"\nseeds = [\"127.0.0.1:17000\", \"127.0.0.1:17001\", \"127.0.0.1:17002\"]\n\
             [listen]\ngossip = \"127.0.0.1:{}\"\nsync = \"127.0.0.1:{}\"\napi = \"127.0.0.1:{}\"\n\
             [timings]\npreset = \"lan\"\nrecord_refresh_ms = 600000\n",
            dir.join(format!("a{i:02}")).display(),
            token_file.display(),
            17000 + i,
            17100 + i,
            17200 + i
        );
        agents.spawn(&bin, i, &config);
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .default_headers(benches::procs::auth_headers(&token))
        .build()
        .expect("client");
    let apis: Vec<String> = (0..n).map(api).collect();
    let formed = wait_for_one_view(&http, &apis).await;
    println!(
        "{n} agents formed one view in {:.1} s",
        formed.as_secs_f64()
    );

    // Register the origins, spread over the agents' APIs, 32 at a time.
    let t = Instant::now();
    let spec = json!({ "address": target_addr.to_string(), "kind": "tcp", "interval_ms": 10000, "timeout_ms": 1000 });
    let mut pending = Vec::new();
    for o in 0..origins {
        let http = http.clone();
        let spec = spec.clone();
        pending.push(tokio::spawn(async move {
            let url = format!("{}/v1/origins/o{o:05}", api(o % n));
            http.put(url)
                .json(&spec)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
        if pending.len() == 32 {
            for p in pending.drain(..) {
                assert_eq!(p.await.expect("task").expect("put"), 201);
            }
        }
    }
    for p in pending.drain(..) {
        assert_eq!(p.await.expect("task").expect("put"), 201);
    }
    let registered = t.elapsed();
    loop {
        let mut all = true;
        for i in 0..n {
            let count = json(&http, &format!("{}/v1/node", api(i)))
                .await
                .and_then(|v| v["origins"].as_u64());
            all &= count == Some(origins as u64);
        }
        if all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{origins} origins registered through the APIs in {:.1} s ({:.0} PUT/s, each persisted before its answer); on every agent after {:.1} s",
        registered.as_secs_f64(),
        origins as f64 / registered.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );

    // Steady state: every origin has had its first check (interval 10 s) and
    // its first record; records are refreshed every 10 minutes.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let sample = |http: reqwest::Client| async move {
        let mut out = Vec::new();
        for i in 0..n {
            let v = json(&http, &format!("{}/v1/node", api(i)))
                .await
                .unwrap_or(Value::Null);
            let sum = |dir: &str| -> u64 {
                v["sync"]["replicas"]
                    .as_object()
                    .map(|m| m.values().filter_map(|r| r[dir].as_u64()).sum())
                    .unwrap_or(0)
            };
            out.push((
                sum("sent"),
                sum("received"),
                v["sync"]["rounds"].as_u64().unwrap_or(0),
            ));
        }
        out
    };
    let before = sample(http.clone()).await;
    let window = Duration::from_secs(30);
    let t = Instant::now();
    tokio::time::sleep(window).await;
    let after = sample(http.clone()).await;
    let secs = t.elapsed().as_secs_f64();
    let mut sent: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.0 - b.0) as f64 / secs)
        .collect();
    let mut received: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.1 - b.1) as f64 / secs)
        .collect();
    let rounds: f64 = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.2 - b.2) as f64)
        .sum::<f64>()
        / (n as f64 * secs);
    sent.sort_by(f64::total_cmp);
    received.sort_by(f64::total_cmp);

    // Registry writes: time until every agent serves them.
    let mut latencies = Vec::new();
    for w in 0..writes {
        let id = format!("probe-{w:03}");
        let writer = w % n;
        let t = Instant::now();
        let r = http
            .put(format!("{}/v1/origins/{id}", api(writer)))
            .json(&spec)
            .send()
            .await
            .expect("put");
        assert_eq!(r.status().as_u16(), 201);
        let mut seen = vec![false; n];
        seen[writer] = true;
        while seen.iter().any(|s| !s) {
            for (i, s) in seen.iter_mut().enumerate() {
                if !*s {
                    *s = http
                        .get(format!("{}/v1/origins/{id}", api(i)))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().as_u16() == 200);
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "write {id} not everywhere after 30 s"
            );
        }
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);

    println!();
    println!(
        "| agents | origins | registry write → served by every agent: p50 | p99 | max | writes |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {n} | {origins} | {:.1} ms | {:.1} ms | {:.1} ms | {writes} |",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!();
    println!("| steady state, per agent | median | max |");
    println!("|---|---:|---:|");
    println!(
        "| sync bytes sent per second | {:.0} | {:.0} |",
        percentile(&sent, 0.5),
        percentile(&sent, 1.0)
    );
    println!(
        "| sync bytes received per second | {:.0} | {:.0} |",
        percentile(&received, 0.5),
        percentile(&received, 1.0)
    );
    println!("| pull rounds per second | {rounds:.2} | |");
}
