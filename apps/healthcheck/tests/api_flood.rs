//! Issue 12's reproduction: with `RLIMIT_NOFILE` 1024 and 1,100 idle API
//! connections, new API requests timed out and a healthy origin was marked
//! down ("connect: Too many open files"). Here the real binary runs under
//! `ulimit -n 1024`, a flood of idle connections is held open, and the API
//! answers within a second while every check keeps passing.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use healthcheck::fake_origin::{Behaviour, FakeOrigin};
use serde_json::Value;

const ORIGINS: usize = 10;
const FLOOD: usize = 1_100;

/// The agent process, killed on drop; its log lines collected.
struct AgentProcess {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AgentProcess {
    /// Starts the binary under `ulimit -n 1024` and waits for its API
    /// address in the log.
    fn start(config: &std::path::Path) -> (AgentProcess, String) {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 1024 && exec \"$0\" agent --config \"$1\"")
            // HEALTHCHECK_BIN: another build (e.g. the release before
            // the fix, to see this test fail).
            .arg(
                std::env::var_os("HEALTHCHECK_BIN")
                    .unwrap_or(env!("CARGO_BIN_EXE_healthcheck").into()),
            )
            .arg(config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the agent");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("api_addr=").nth(1) {
                    let addr: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect();
                    let _ = addr_tx.send(addr);
                }
                lines.lock().expect("log").push(line);
            }
        });
        let agent = AgentProcess { child, log };
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no api address in {:?}", agent.log.lock()));
        (agent, format!("http://{addr}"))
    }
}

async fn json(http: &reqwest::Client, url: &str) -> Value {
    http.get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .expect("json")
}

fn all_up(origins: &Value) -> bool {
    origins
        .as_array()
        .is_some_and(|a| a.len() == ORIGINS && a.iter().all(|o| o["health"]["status"] == "up"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_flood_leaves_the_api_answering_and_the_origins_up() {
    // The flood itself needs more than 1,024 descriptors in this process.
    let limit = healthcheck::descriptors::raise().expect("descriptor limit");
    assert!(
        limit.soft >= FLOOD as u64 + 200,
        "this test needs a descriptor limit above {} (have {})",
        FLOOD + 200,
        limit.soft
    );
    let origin = FakeOrigin::start(Behaviour::Healthy)
        .await
        .expect("fake origin");
    let dir = testkit::TempDir::new("api-flood");
    let mut config = format!(
        "node = \"flood-1\"\ncluster = \"flood\"\ndata_dir = \"{}\"\n\
         [listen]\ngossip = \"127.0.0.1:0\"\nsync = \"127.0.0.1:0\"\napi = \"127.0.0.1:0\"\n\
         [timings]\npreset = \"local\"\n",
        dir.join("data").display()
    );
    for i in 0..ORIGINS {
        config.push_str(&format!(
            "[[origins]]\nid = \"o{i}\"\naddress = \"{}\"\npath = \"/{i}\"\n\
             interval_ms = 200\ntimeout_ms = 150\nrise = 1\nfall = 2\n",
            origin.addr()
        ));
    }
    let config_path = dir.join("agent.toml");
    std::fs::write(&config_path, config).expect("write config");
    let (agent, api) = AgentProcess::start(&config_path);

    // A client that opens a new connection per request (as a load
    // balancer's probe would).
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !all_up(&json(&http, &format!("{api}/v1/origins")).await) {
        assert!(Instant::now() < deadline, "origins never all up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failed_before = json(&http, &format!("{api}/v1/node")).await["checks_failed"].clone();

    // The flood: idle connections that never send a byte.
    let api_addr: std::net::SocketAddr = api
        .trim_start_matches("http://")
        .parse()
        .expect("api address");
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        match tokio::net::TcpStream::connect(api_addr).await {
            Ok(s) => flood.push(s),
            Err(e) => panic!("flood connection {}: {e}", flood.len()),
        }
    }

    // For 4 s (20 check intervals): the API answers within a second, every
    // origin stays up, and no check fails.
    let window = Instant::now() + Duration::from_secs(4);
    let mut slowest = Duration::ZERO;
    let mut rounds = 0;
    while Instant::now() < window {
        let asked = Instant::now();
        let node = tokio::time::timeout(
            Duration::from_secs(1),
            json(&http, &format!("{api}/v1/node")),
        )
        .await
        .expect("GET /v1/node answered within a second under the flood");
        slowest = slowest.max(asked.elapsed());
        assert_eq!(
            node["checks_failed"], failed_before,
            "a check failed under the flood: {node}"
        );
        let origins = json(&http, &format!("{api}/v1/origins")).await;
        assert!(all_up(&origins), "an origin is not up: {origins}");
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(rounds >= 5, "{rounds} rounds");
    let log = agent.log.lock().expect("log").join("\n");
    assert!(
        !log.contains("Too many open files"),
        "the agent ran out of descriptors:\n{log}"
    );
    eprintln!("flood of {FLOOD}: {rounds} rounds, slowest GET /v1/node {slowest:?}");
    drop(flood);
    drop(agent);
    origin.shutdown().await;
}
