//! Health checker figures with real sockets on 127.0.0.1.
//!
//! Run: `cargo run --release -p benches --bin healthcheck-load -- [throughput|cluster|all]`
//!
//! * `throughput`: one agent checking 1000–2000 loopback HTTP origins at
//!   rising rates. The origins run in a child process (this binary with
//!   `serve-origins`), so the CPU measured (user + system time of this
//!   process, from /proc/self/stat) is the agent's alone.
//! * `cluster`: 5 agents in this process, 300 origins checked every second:
//!   checks per origin per interval across the cluster in steady state, and
//!   the unchecked gap of the origins of an owner that is killed.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use healthcheck::testing::start_seeded;
use healthcheck::{
    agent::Agent,
    config::AgentConfig,
    fake_origin::{Behaviour, FakeOrigin},
    spec::OriginSpec,
};
use membership::Preset;
use testkit::TempDir;

/// CPU seconds (user + system) used by this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the command name (which is in parentheses)
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// The child: serves `n` healthy origins and prints their addresses, then
/// waits for its stdin to close.
async fn serve_origins(n: usize) {
    let mut origins = Vec::new();
    for _ in 0..n {
        origins.push(
            FakeOrigin::start(Behaviour::Healthy)
                .await
                .expect("bind an origin"),
        );
    }
    let mut out = std::io::stdout().lock();
    for o in &origins {
        let _ = writeln!(out, "{}", o.addr());
    }
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    drop(out);
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await;
}

async fn throughput() {
    let n = 2000;
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .arg("serve-origins")
        .arg(n.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the origins");
    let stdout = child.stdout.take().expect("piped");
    let addrs: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| l != "ready")
        .collect();
    assert_eq!(addrs.len(), n);

    println!(
        "| origins | interval | target checks/s | achieved checks/s | failed | agent CPU (cores) | CPU µs per check |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (origins, interval_ms) in [(1000usize, 1000u64), (1000, 200), (1000, 100), (2000, 100)] {
        let dir = TempDir::new("load-throughput");
        let mut config = AgentConfig::local("load-0", dir.to_path_buf());
        config.max_concurrent_checks = Some(1024);
        config.record_refresh = Duration::from_secs(600);
        let agent = Agent::start(config).await.expect("agent");
        for (i, addr) in addrs.iter().take(origins).enumerate() {
            let mut spec = OriginSpec::new(addr.clone());
            spec.interval_ms = interval_ms;
            spec.timeout_ms = interval_ms.min(1000);
            agent
                .shared()
                .put_origin(&format!("o{i}"), spec)
                .await
                .expect("register");
        }
        // Warm up: every origin checked once, connections pooled.
        tokio::time::sleep(Duration::from_millis(interval_ms * 2 + 500)).await;
        let shared = agent.shared();
        let count = || {
            let s = shared.check_stats();
            s.checks_ok + s.checks_failed
        };
        let (c0, f0, cpu0, t0) = (
            count(),
            shared.check_stats().checks_failed,
            cpu_seconds(),
            Instant::now(),
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        let elapsed = t0.elapsed().as_secs_f64();
        let checks = (count() - c0) as f64;
        let failed = shared.check_stats().checks_failed - f0;
        let cpu = cpu_seconds() - cpu0;
        println!(
            "| {origins} | {interval_ms} ms | {:.0} | {:.0} | {failed} | {:.2} | {:.0} |",
            origins as f64 * 1000.0 / interval_ms as f64,
            checks / elapsed,
            cpu / elapsed,
            cpu * 1e6 / checks.max(1.0),
        );
        agent.shutdown().await;
    }
    drop(child.stdin.take());
    let _ = child.wait();
}

fn checkers(origins: &[(String, FakeOrigin)]) -> BTreeMap<String, BTreeMap<String, u64>> {
    origins
        .iter()
        .map(|(id, o)| {
            let by = o
                .hits_by()
                .into_iter()
                .filter_map(|(ua, k)| {
                    ua.rsplit_once('(')
                        .and_then(|(_, r)| r.strip_suffix(')'))
                        .map(|n| (n.to_owned(), k))
                })
                .collect();
            o.reset_hits();
            (id.clone(), by)
        })
        .collect()
}

async fn cluster() {
    let (nodes, count, interval) = (5usize, 300usize, Duration::from_secs(1));
    let base = TempDir::new("load-cluster");
    let mut origins = Vec::new();
    for i in 0..count {
        origins.push((
            format!("o{i:03}"),
            FakeOrigin::start(Behaviour::Healthy).await.expect("bind"),
        ));
    }
    let mut agents = start_seeded(nodes, |i, seeds| {
        let mut c = AgentConfig::local(format!("hc-{i}"), base.join(format!("hc-{i}")));
        c.preset = Preset::Lan;
        c.seeds = seeds;
        c
    })
    .await;
    for (id, o) in &origins {
        let mut spec = OriginSpec::new(o.addr().to_string());
        spec.interval_ms = interval.as_millis() as u64;
        spec.timeout_ms = 500;
        agents[0]
            .shared()
            .put_origin(id, spec)
            .await
            .expect("register");
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    checkers(&origins);
    let window = Duration::from_secs(30);
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let seen = checkers(&origins);
    let intervals = t0.elapsed().as_secs_f64() / interval.as_secs_f64();
    let per_origin: Vec<f64> = seen
        .values()
        .map(|by| by.values().sum::<u64>() as f64 / intervals)
        .collect();
    let mean = per_origin.iter().sum::<f64>() / per_origin.len() as f64;
    let max = per_origin.iter().copied().fold(0.0, f64::max);
    let multi = seen.values().filter(|by| by.len() > 1).count();
    println!(
        "| agents | origins | window | checks per origin per interval (mean) | max | origins with 2+ checkers |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {nodes} | {count} | {} s | {mean:.3} | {max:.2} | {multi} |",
        window.as_secs()
    );

    // Kill the agent with the most origins; time each orphan's takeover.
    let victim = (1..nodes)
        .max_by_key(|&i| {
            seen.values()
                .filter(|by| by.contains_key(agents[i].node()))
                .count()
        })
        .expect("agents");
    let name = agents[victim].node().to_owned();
    let orphans: Vec<String> = seen
        .iter()
        .filter(|(_, by)| by.contains_key(&name))
        .map(|(id, _)| id.clone())
        .collect();
    checkers(&origins);
    let killed = Instant::now();
    agents.remove(victim).kill().await;
    let mut gaps: BTreeMap<String, Duration> = BTreeMap::new();
    while gaps.len() < orphans.len() && killed.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let seen = checkers(&origins);
        for id in &orphans {
            if !gaps.contains_key(id) && seen[id].keys().any(|n| *n != name) {
                gaps.insert(id.clone(), killed.elapsed());
            }
        }
    }
    let mut g: Vec<f64> = gaps.values().map(Duration::as_secs_f64).collect();
    g.sort_by(f64::total_cmp);
    println!();
    println!(
        "| killed | its origins | taken over | gap median | gap max | LAN suspicion (5 nodes) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| {name} | {} | {} | {:.2} s | {:.2} s | {:.1} s |",
        orphans.len(),
        gaps.len(),
        g.get(g.len() / 2).copied().unwrap_or(f64::NAN),
        g.last().copied().unwrap_or(f64::NAN),
        Preset::Lan
            .foca_config(nodes)
            .suspect_to_down_after
            .as_secs_f64(),
    );
    for a in agents {
        a.shutdown().await;
    }
    for (_, o) in origins {
        o.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve-origins") => {
            let n = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
            serve_origins(n).await;
        }
        Some("throughput") => throughput().await,
        Some("cluster") => cluster().await,
        _ => {
            throughput().await;
            println!();
            cluster().await;
        }
    }
}
