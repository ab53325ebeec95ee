//! Real processes: the HTTP API of a `healthcheck agent` under load.
//!
//! One `healthcheck agent` process on 127.0.0.1 (or `--agents N`, the load
//! going to the first one's API) with a temporary data dir. 10,000 TCP
//! origins are registered through the API; they all point at one listener in
//! this process that accepts and closes (a check is a connect), every 30 s,
//! so checks cost the agent about 333 connects per second. Once every origin
//! has a health record, open-loop phases (a constant arrival rate, each
//! request sent at its scheduled time whatever happened to the earlier ones):
//!
//! 0. idle: no requests (the cost of the checks alone);
//! 1. 1000 `GET /v1/origins` per second;
//! 2. 200 `PUT /v1/origins/{id}` per second, half new origins and half
//!    updates of registered ones (each persisted before its answer);
//! 3. both at once.
//!
//! The GETs send `Accept-Encoding: gzip` like any real client; the answer
//! size is what came over the wire. Each load has its own client and at most `--connections` requests in
//! flight (keep-alive connections). A request that finds no free connection
//! within 1 s of its scheduled time is not sent and counted as *shed*; a
//! request not answered within 10 s counts as a transport error. Latency is
//! from the scheduled time to the last byte of the answer, so it includes any
//! wait for a connection (no coordinated omission). The agent's CPU time
//! (utime + stime from `/proc/<pid>/stat`) and RSS (`/proc/<pid>/status`,
//! sampled every 100 ms) are taken over each phase, as is this process's CPU
//! (the load generator shares the machine), and the busy time of every
//! other process on the machine (`/proc/stat`), to tell a quiet run from a
//! noisy one (with `--agents 3`, the other two agents count there).
//!
//! Run: `cargo build --release -p healthcheck && cargo run --release -p benches --bin api-load`
//! (`--agents N --origins M --get-rate R --put-rate R --duration S
//! --connections C` change the sizes, `--phases 13` runs only those phases;
//! `HEALTHCHECK_BIN` points at another binary.) Uses ports 17400–17700 on
//! 127.0.0.1.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use benches::procs::{
    Agents, arg, clock_ticks, cpu_seconds, json, machine_busy_seconds, percentile, rss_kib,
    wait_for_one_view,
};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// A request waiting this long for a free connection is not sent.
const SHED_AFTER: Duration = Duration::from_secs(1);
/// A request not answered within this is a transport error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Check interval of the registered origins.
const CHECK_INTERVAL_MS: u64 = 30_000;

fn str_arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

fn api(i: usize) -> String {
    format!("http://127.0.0.1:{}", 17600 + i)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `GET /v1/origins`
    List,
    /// `PUT /v1/origins/{id}`, alternately a new origin and an update.
    Put,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::List => "GET /v1/origins",
            Op::Put => "PUT /v1/origins/{id}",
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    scheduled: u64,
    ok: u64,
    ok_in_window: u64,
    created: u64,
    non_2xx: BTreeMap<u16, u64>,
    transport: u64,
    timeouts: u64,
    shed: u64,
    latencies_ms: Vec<f64>,
    bytes: u64,
    bytes_min: u64,
    bytes_max: u64,
}

impl Tally {
    fn non_2xx_total(&self) -> u64 {
        self.non_2xx.values().sum()
    }
}

struct Load {
    op: Op,
    rate: f64,
}

struct LoadResult {
    op: Op,
    rate: f64,
    tally: Tally,
}

struct PhaseResult {
    name: String,
    secs: f64,
    loads: Vec<LoadResult>,
    agent_cpu: f64,
    agent_rss_start: u64,
    agent_rss_max: u64,
    agent_rss_end: u64,
    generator_cpu: f64,
    machine_busy: f64,
}

/// What the PUTs send: one spec, `timeout_ms` varied so that an update
/// really changes it.
fn spec(target: &str, timeout_ms: u64) -> Value {
    json!({
        "address": target,
        "kind": "tcp",
        "interval_ms": CHECK_INTERVAL_MS,
        "timeout_ms": timeout_ms,
    })
}

struct Ctx {
    target: String,
    /// The API token every request carries.
    token: String,
    origins: usize,
    connections: usize,
    agent_pid: String,
    ticks: f64,
}

/// One request, at its scheduled time `at`.
#[allow(clippy::too_many_arguments)]
async fn request(
    ctx: Arc<Ctx>,
    http: reqwest::Client,
    sem: Arc<Semaphore>,
    tally: Arc<Mutex<Tally>>,
    op: Op,
    phase: usize,
    i: u64,
    at: Instant,
    window_end: Instant,
) {
    let permit = match tokio::time::timeout_at((at + SHED_AFTER).into(), sem.acquire_owned()).await
    {
        Ok(Ok(p)) => p,
        _ => {
            tally.lock().expect("tally").shed += 1;
            return;
        }
    };
    let builder = match op {
        // what a real client sends; counted as it arrives (the agent
        // answers plain JSON today)
        Op::List => http
            .get(format!("{}/v1/origins", api(0)))
            .header("accept-encoding", "gzip"),
        Op::Put => {
            let (id, timeout_ms) = if i.is_multiple_of(2) {
                (format!("p{phase}-{i:07}"), 1000)
            } else {
                // an update of a registered origin, spread over all of them
                let o = (i / 2 * 7919) as usize % ctx.origins;
                (format!("o{o:05}"), 1000 + phase as u64 * 10 + i % 10)
            };
            http.put(format!("{}/v1/origins/{id}", api(0)))
                .json(&spec(&ctx.target, timeout_ms))
        }
    };
    let outcome = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut resp = builder.send().await?;
        let status = resp.status().as_u16();
        let mut bytes = 0u64;
        while let Some(chunk) = resp.chunk().await? {
            bytes += chunk.len() as u64;
        }
        Ok::<_, reqwest::Error>((status, bytes))
    })
    .await;
    let done = Instant::now();
    drop(permit);
    let mut t = tally.lock().expect("tally");
    match outcome {
        Ok(Ok((status, bytes))) if (200..300).contains(&status) => {
            t.ok += 1;
            if done <= window_end {
                t.ok_in_window += 1;
            }
            if status == 201 {
                t.created += 1;
            }
            t.latencies_ms
                .push(done.duration_since(at).as_secs_f64() * 1000.0);
            t.bytes += bytes;
            t.bytes_min = if t.ok == 1 {
                bytes
            } else {
                t.bytes_min.min(bytes)
            };
            t.bytes_max = t.bytes_max.max(bytes);
        }
        Ok(Ok((status, _))) => *t.non_2xx.entry(status).or_default() += 1,
        Ok(Err(_)) => t.transport += 1,
        Err(_) => {
            t.transport += 1;
            t.timeouts += 1;
        }
    }
}

/// Issues `load` open-loop from `start` for `duration`; returns when every
/// request has been answered, shed or timed out.
async fn drive(
    ctx: Arc<Ctx>,
    load: Load,
    phase: usize,
    start: Instant,
    duration: Duration,
) -> LoadResult {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(ctx.connections)
        .tcp_nodelay(true)
        .default_headers(benches::procs::auth_headers(&ctx.token))
        .build()
        .expect("client");
    let sem = Arc::new(Semaphore::new(ctx.connections));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let total = (load.rate * duration.as_secs_f64()).round() as u64;
    let window_end = start + duration;
    let mut tasks = Vec::with_capacity(total as usize);
    let mut issued = 0u64;
    while issued < total {
        let due = ((start.elapsed().as_secs_f64() * load.rate) as u64 + 1).min(total);
        while issued < due {
            let at = start + Duration::from_secs_f64(issued as f64 / load.rate);
            tasks.push(tokio::spawn(request(
                ctx.clone(),
                http.clone(),
                sem.clone(),
                tally.clone(),
                load.op,
                phase,
                issued,
                at,
                window_end,
            )));
            issued += 1;
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut tally = std::mem::take(&mut *tally.lock().expect("tally"));
    tally.scheduled = total;
    tally.latencies_ms.sort_by(f64::total_cmp);
    LoadResult {
        op: load.op,
        rate: load.rate,
        tally,
    }
}

async fn phase(
    ctx: &Arc<Ctx>,
    index: usize,
    name: &str,
    loads: Vec<Load>,
    secs: u64,
) -> PhaseResult {
    println!(
        "phase {index} ({name}): {secs} s, agent pid {}",
        ctx.agent_pid
    );
    let duration = Duration::from_secs(secs);
    let stop = Arc::new(AtomicBool::new(false));
    let rss_max = Arc::new(AtomicU64::new(0));
    let rss_start = rss_kib(&ctx.agent_pid);
    let sampler = {
        let (stop, rss_max, pid) = (stop.clone(), rss_max.clone(), ctx.agent_pid.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                rss_max.fetch_max(rss_kib(&pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let agent_before = cpu_seconds(&ctx.agent_pid, ctx.ticks);
    let me_before = cpu_seconds("self", ctx.ticks);
    let machine_before = machine_busy_seconds(ctx.ticks);
    let start = Instant::now();
    let drivers: Vec<_> = loads
        .into_iter()
        .map(|l| tokio::spawn(drive(ctx.clone(), l, index, start, duration)))
        .collect();
    if drivers.is_empty() {
        tokio::time::sleep(duration).await;
    }
    let mut results = Vec::new();
    for d in drivers {
        results.push(d.await.expect("driver"));
    }
    // the phase lasts until its last answer (or timeout)
    let elapsed = start.elapsed().as_secs_f64();
    let agent_cpu = cpu_seconds(&ctx.agent_pid, ctx.ticks) - agent_before;
    let generator_cpu = cpu_seconds("self", ctx.ticks) - me_before;
    let machine_busy = machine_busy_seconds(ctx.ticks) - machine_before;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let rss_end = rss_kib(&ctx.agent_pid);
    for r in &results {
        let t = &r.tally;
        println!(
            "  {}: {} scheduled, {} ok ({} in the window), non-2xx {:?}, transport errors {} (timeouts {}), shed {}, p50 {:.1} ms, p99 {:.1} ms, answers {}–{} bytes",
            r.op.name(),
            t.scheduled,
            t.ok,
            t.ok_in_window,
            t.non_2xx,
            t.transport,
            t.timeouts,
            t.shed,
            percentile(&t.latencies_ms, 0.5),
            percentile(&t.latencies_ms, 0.99),
            t.bytes_min,
            t.bytes_max
        );
    }
    println!(
        "  agent CPU {:.2} cores over {elapsed:.1} s, RSS max {} MiB; load generator CPU {:.2} cores; everything else on the machine {:.2} cores",
        agent_cpu / elapsed,
        rss_max.load(Ordering::Relaxed) / 1024,
        generator_cpu / elapsed,
        (machine_busy - agent_cpu - generator_cpu).max(0.0) / elapsed
    );
    PhaseResult {
        name: name.to_owned(),
        secs: elapsed,
        loads: results,
        agent_cpu,
        agent_rss_start: rss_start,
        agent_rss_max: rss_max.load(Ordering::Relaxed).max(rss_end),
        agent_rss_end: rss_end,
        generator_cpu,
        machine_busy,
    }
}

fn size(bytes: f64) -> String {
    if bytes >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", bytes / (1024.0 * 1024.0))
    } else if bytes >= 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else {
        format!("{bytes:.0} B")
    }
}

/// Origins in a `GET /v1/origins` answer, and how many have a health record.
async fn listed(http: &reqwest::Client) -> Option<(usize, usize)> {
    let v = json(http, &format!("{}/v1/origins", api(0))).await?;
    let list = v.as_array()?;
    Some((
        list.len(),
        list.iter().filter(|o| !o["health"].is_null()).count(),
    ))
}

#[tokio::main]
async fn main() {
    let n = arg("--agents", 1);
    let origins = arg("--origins", 10_000);
    let get_rate = arg("--get-rate", 1000) as f64;
    let put_rate = arg("--put-rate", 200) as f64;
    let secs = arg("--duration", 20) as u64;
    let connections = arg("--connections", 128);
    let wanted = str_arg("--phases", "0123");
    let bin = benches::procs::healthcheck_bin();
    // The origins: one listener that accepts and closes (TCP checks).
    let target_addr = benches::procs::accept_and_close().await;

    let mut agents = Agents::new("api-load");
    let dir = agents.dir.to_path_buf();
    let (token_file, token) = benches::procs::api_token(&dir);
    for i in 0..n {
        let seeds = if i == 0 {
            String::new()
        } else {
            "\"127.0.0.1:17400\"".to_owned()
        };
        let config = format!(
            "node = \"a{i:02}\"\ncluster = \"api-load\"\ndata_dir = \"{}\"\ntoken_file = \"{}\"\nseeds = [{seeds}]\n\
             [listen]\ngossip = \"127.0.0.1:{}\"\nsync = \"127.0.0.1:{}\"\napi = \"127.0.0.1:{}\"\n\
             [timings]\npreset = \"lan\"\nrecord_refresh_ms = 600000\n",
            dir.join(format!("a{i:02}")).display(),
            token_file.display(),
            17400 + i,
            17500 + i,
            17600 + i
        );
        agents.spawn(&bin, i, &config);
    }
    let agent_pid = agents.children[0].id().to_string();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .default_headers(benches::procs::auth_headers(&token))
        .build()
        .expect("client");
    let apis: Vec<String> = (0..n).map(api).collect();
    let formed = wait_for_one_view(&http, &apis).await;
    println!(
        "{n} agent(s) up in {:.1} s; load goes to {} (pid {agent_pid})",
        formed.as_secs_f64(),
        api(0)
    );

    // Register the origins, spread over the agents' APIs, 32 at a time.
    let t = Instant::now();
    let mut pending = Vec::new();
    for o in 0..origins {
        let http = http.clone();
        let body = spec(&target_addr, 1000);
        pending.push(tokio::spawn(async move {
            let url = format!("{}/v1/origins/o{o:05}", api(o % n));
            http.put(url)
                .json(&body)
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
    println!(
        "{origins} origins registered in {:.1} s ({:.0} PUT/s, 32 at a time)",
        t.elapsed().as_secs_f64(),
        origins as f64 / t.elapsed().as_secs_f64()
    );
    // Every origin registered on the loaded agent and checked once.
    loop {
        let seen = listed(&http).await;
        if seen == Some((origins, origins)) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "after 300 s, (origins, with health) = {seen:?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!(
        "all {origins} origins listed with a health record after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    let ctx = Arc::new(Ctx {
        target: target_addr,
        token: token.clone(),
        origins,
        connections,
        agent_pid,
        ticks: clock_ticks(),
    });
    let get = || Load {
        op: Op::List,
        rate: get_rate,
    };
    let put = || Load {
        op: Op::Put,
        rate: put_rate,
    };
    let mut phases = Vec::new();
    for p in wanted.chars() {
        let (name, loads, secs) = match p {
            '0' => ("idle", vec![], 10),
            '1' => ("GET", vec![get()], secs),
            '2' => ("PUT", vec![put()], secs),
            '3' => ("GET + PUT", vec![get(), put()], secs),
            other => panic!("--phases: no phase {other:?} (0-3)"),
        };
        phases.push(phase(&ctx, p as usize - '0' as usize, name, loads, secs).await);
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let created: u64 = phases
        .iter()
        .flat_map(|p| &p.loads)
        .map(|l| l.tally.created)
        .sum();
    let count = json(&http, &format!("{}/v1/node", api(0)))
        .await
        .and_then(|v| v["origins"].as_u64());
    println!(
        "origins on the loaded agent at the end: {count:?} ({} registered + {created} created with a 201; a PUT that timed out here may still have been applied)",
        origins
    );

    println!();
    println!(
        "{n} agent(s), {origins} origins (TCP, every {} s, against a local accept-and-close listener); open loop, {secs} s per phase, at most {connections} requests in flight per load",
        CHECK_INTERVAL_MS / 1000
    );
    println!();
    println!(
        "| phase | request | target /s | achieved 2xx /s | 2xx | non-2xx | transport errors | shed | p50 | p99 | max | answer size (mean) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in &phases {
        for l in &p.loads {
            let t = &l.tally;
            println!(
                "| {} | `{}` | {:.0} | {:.0} | {} | {} | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
                p.name,
                l.op.name(),
                l.rate,
                t.ok_in_window as f64 / secs as f64,
                t.ok,
                t.non_2xx_total(),
                t.transport,
                t.shed,
                percentile(&t.latencies_ms, 0.5),
                percentile(&t.latencies_ms, 0.99),
                percentile(&t.latencies_ms, 1.0),
                size(t.bytes as f64 / t.ok.max(1) as f64),
            );
        }
    }
    println!();
    println!(
        "| phase | duration | agent CPU (cores) | agent CPU per 2xx answer | agent RSS start → max → end | load generator CPU (cores) | everything else (cores of {}) |",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for p in &phases {
        let ok: u64 = p.loads.iter().map(|l| l.tally.ok).sum();
        let per = if ok == 0 {
            "–".to_owned()
        } else {
            format!("{:.2} ms", p.agent_cpu * 1000.0 / ok as f64)
        };
        println!(
            "| {} | {:.1} s | {:.2} | {per} | {} → {} → {} MiB | {:.2} | {:.2} |",
            p.name,
            p.secs,
            p.agent_cpu / p.secs,
            p.agent_rss_start / 1024,
            p.agent_rss_max / 1024,
            p.agent_rss_end / 1024,
            p.generator_cpu / p.secs,
            (p.machine_busy - p.agent_cpu - p.generator_cpu).max(0.0) / p.secs,
        );
    }
    drop(agents);
}
