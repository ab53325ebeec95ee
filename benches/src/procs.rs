//! What the real-process benches share: command-line arguments, percentiles,
//! and a set of `healthcheck agent` child processes stopped on drop.

use std::{
    path::PathBuf,
    process::{Child, Command},
};

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
    /// Their configs and data dirs.
    pub dir: PathBuf,
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
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// GETs `url` as JSON; `None` on any failure.
pub async fn json(http: &reqwest::Client, url: &str) -> Option<Value> {
    http.get(url).send().await.ok()?.json().await.ok()
}
