//! What the real-process benches share: command-line arguments, percentiles,
//! and a set of `healthcheck agent` child processes stopped on drop.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use testkit::TempDir;

use serde_json::Value;

/// The number after `name` on the command line, or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `q`-quantile (0..=1) of ascending `sorted` (nearest rank); NaN if
/// empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Agent processes and their working directory: on drop each gets SIGINT
/// (a graceful leave), is waited for, and the directory is removed.
pub struct Agents {
    /// The processes.
    pub children: Vec<Child>,
    /// Their configs and data dirs (removed after the processes stopped).
    pub dir: TempDir,
}

impl Agents {
    /// No agents yet, and a new working directory `vantage-{name}-…`.
    pub fn new(name: &str) -> Self {
        Agents {
            children: Vec::new(),
            dir: TempDir::new(name),
        }
    }

    /// Writes `config` to `a{i:02}.toml` in the working directory and starts
    /// `bin agent --config` on it (`RUST_LOG=warn`, output discarded).
    ///
    /// # Panics
    /// When the config cannot be written or the process cannot start.
    pub fn spawn(&mut self, bin: &Path, i: usize, config: &str) {
        let path = self.dir.join(format!("a{i:02}.toml"));
        std::fs::write(&path, config).expect("write config");
        let child = Command::new(bin)
            .arg("agent")
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn an agent");
        self.children.push(child);
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(c.id().to_string())
                .status();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}

/// The `healthcheck` binary the real-process benches run: `HEALTHCHECK_BIN`
/// or the workspace's release build. Panics, saying how to build it, if it
/// is missing.
pub fn healthcheck_bin() -> PathBuf {
    let bin = std::env::var("HEALTHCHECK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/healthcheck")
        });
    assert!(
        bin.exists(),
        "{} missing: cargo build --release -p healthcheck",
        bin.display()
    );
    bin
}

/// Writes a token file with one new `write` token into `dir` (for the
/// agents' `token_file`), and returns its path and the token (for the
/// clients: [`auth_headers`]).
pub fn api_token(dir: &Path) -> (PathBuf, String) {
    let token = healthcheck::tokens::generate();
    let path = dir.join("api.tokens");
    std::fs::write(&path, format!("write {token}\n")).expect("write the token file");
    (path, token)
}

/// Default headers that make a client send `token` with every request.
pub fn auth_headers(token: &str) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .expect("a token is printable ASCII");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    headers
}

/// GETs `url` as JSON; `None` on any failure.
pub async fn json(http: &reqwest::Client, url: &str) -> Option<Value> {
    http.get(url).send().await.ok()?.json().await.ok()
}

/// Polls each API in `apis` (`/v1/node`) until every agent reports
/// `apis.len()` alive members; panics after 60 s. Returns the time taken.
pub async fn wait_for_one_view(http: &reqwest::Client, apis: &[String]) -> std::time::Duration {
    let n = apis.len();
    let t = std::time::Instant::now();
    loop {
        let mut ready = 0;
        for api in apis {
            let alive = json(http, &format!("{api}/v1/node"))
                .await
                .and_then(|v| v["members_alive"].as_u64());
            if alive == Some(n as u64) {
                ready += 1;
            }
        }
        if ready == n {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(60),
            "only {ready} of {n} agents up and in one view"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 if unknown).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) used so far by process `pid` ("self" for
/// this one), all threads.
pub fn cpu_seconds(pid: &str, ticks: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // fields after the command name (which is in parentheses)
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after ')'.
    (field(11) + field(12)) / ticks
}

/// CPU seconds all processes on the machine have used so far (busy time of
/// every core, from `/proc/stat`).
pub fn machine_busy_seconds(ticks: f64) -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user)
    let total: f64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0.0) + fields.get(4).copied().unwrap_or(0.0);
    (total - idle) / ticks
}

/// Resident set size of process `pid` in KiB.
pub fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A listener on 127.0.0.1 that accepts every connection and closes it at
/// once (the target of TCP checks that succeed); returns its address.
///
/// # Panics
/// When it cannot bind.
pub async fn accept_and_close() -> String {
    let target = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = target.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((s, _)) = target.accept().await {
            drop(s);
        }
    });
    addr
}
