//! The agent's configuration: [`AgentConfig`], and its TOML form.
//!
//! ```toml
//! node = "hc-1"                    # unique in the cluster
//! cluster = "dc1"                  # agents of other clusters are rejected
//! data_dir = "/var/lib/healthcheck/hc-1"
//! seeds = ["10.0.0.2:7946"]        # gossip addresses of agents to join through
//! key_file = "/etc/healthcheck/keys" # optional: cluster key(s), see `keys`;
//!                                  # without it cluster traffic is plaintext
//! token_file = "/etc/healthcheck/tokens" # optional: API tokens, see `tokens`;
//!                                  # without it the API is open
//!
//! insecure = false                 # true: start with a listener on the network
//!                                  # but no token_file or key_file (logged)
//!
//! [tls]                            # optional: the API over HTTPS (PEM files,
//! cert_file = "/etc/healthcheck/api.crt" # re-read on SIGHUP)
//! key_file = "/etc/healthcheck/api.key"
//!
//! [listen]
//! gossip = "0.0.0.0:7946"          # SWIM, UDP
//! sync = "0.0.0.0:7947"            # replication, TCP
//! api = "127.0.0.1:8080"           # HTTP API, status page, metrics
//!
//! [advertise]                      # optional: what other agents should dial
//! gossip = "10.0.0.1:7946"
//! sync = "10.0.0.1:7947"
//!
//! [timings]                        # optional; defaults shown
//! preset = "lan"                   # SWIM timing: lan | wan | local
//! pull_interval_ms = 1000          # anti-entropy round
//! takeover_grace_ms = 2000         # per rank, see `ownership`
//! record_refresh_ms = 60000        # rewrite of an unchanged health record
//! max_concurrent_checks = 512     # default: 512, or less under a low descriptor limit
//!
//! [api]                            # optional; defaults shown (see `api_server`)
//! max_connections = 512            # default: 512, or less under a low descriptor limit
//! header_timeout_ms = 10000        # a whole request head within this
//! idle_timeout_ms = 60000          # a connection without a request for this long is closed
//!
//! [checks]                         # optional: where checks may go (see `targets`)
//! allow = ["10.0.0.0/8"]           # default: every address not denied
//! deny = ["10.9.0.0/16"]           # added to the built-in ranges (link-local, metadata)
//! default_deny = true              # false gives up the built-in ranges
//! max_idle_connections = 16384     # kept alive between checks; default: what the limit leaves
//! tls_dir = "/etc/healthcheck/check-tls"  # where specs' tls_ca / tls_client_cert / tls_client_key are; default: none
//!
//! [[origins]]                      # registered at start (also settable by the API)
//! id = "web-1"
//! address = "10.0.1.5:80"
//! path = "/healthz"
//! ```
//!
//! # What is refused
//!
//! A value that cannot work is refused at start with a [`ConfigError`]
//! naming the key (`timings.pull_interval_ms: must be between 10 and
//! 3600000`), never clamped:
//!
//! | key | rule |
//! |---|---|
//! | `node`, `cluster` | 1–64 characters of `A-Z a-z 0-9 . _ -` |
//! | `data_dir`, `key_file`, `token_file`, `tls.*` | not empty (`.` is the working directory) |
//! | `listen.sync`, `listen.api` | not the same TCP address (the same port, on the same IP or on an unspecified one); port 0 (any free port) is fine. `listen.gossip` is UDP and may share a port with either |
//! | `advertise.*`, `seeds[i]` | an address another agent can dial: not an unspecified IP (`0.0.0.0`, `[::]`), not port 0 |
//! | `timings.pull_interval_ms` | 10–3600000 (10 ms to an hour) |
//! | `timings.takeover_grace_ms` | 1–3600000 (up to an hour per rank) |
//! | `timings.record_refresh_ms` | 100–86400000 (100 ms to a day) |
//! | `timings.max_concurrent_checks` | 1–65536 |
//! | `api.max_connections` | 1–65536 |
//! | `api.header_timeout_ms` | 100–300000 |
//! | `api.idle_timeout_ms` | 100–86400000 |
//! | `checks.allow[i]`, `checks.deny[i]` | a CIDR range without bits past its prefix, not of IPv4-mapped addresses |
//! | `checks.max_idle_connections` | 0–1000000 |
//! | `checks.tls_dir` | a directory that exists |
//! | all of `api.max_connections`, `timings.max_concurrent_checks`, `checks.max_idle_connections` | fit in the descriptor limit (checked at start, see `descriptors`) |
//! | `origins[i]` | a valid id, given once, and a spec that [validates](OriginSpec::validate), whose TLS files are in `checks.tls_dir` and parse |
//!
//! Seeds may repeat and may include this agent's own gossip address (the
//! same file can then serve every agent of a cluster).

use std::{
    net::SocketAddr,
    ops::RangeInclusive,
    path::{Path, PathBuf},
    time::Duration,
};

use membership::Preset;
use serde::Deserialize;
use thiserror::Error;

use crate::spec::{self, OriginSpec};

/// An invalid configuration: where, and what is wrong.
#[derive(Debug, Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    /// The file (or `"config"`).
    pub source_name: String,
    /// What is wrong, naming the key.
    pub message: String,
}

/// Everything an agent needs to run.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// This agent's name, unique in the cluster.
    pub node: String,
    /// The cluster name.
    pub cluster: String,
    /// Where the agent's store (`node.redb`: both replicas and its actor) lives.
    pub data_dir: PathBuf,
    /// SWIM (UDP) listen address.
    pub gossip_listen: SocketAddr,
    /// Sync (TCP) listen address.
    pub sync_listen: SocketAddr,
    /// HTTP API listen address.
    pub api_listen: SocketAddr,
    /// Gossip address to advertise, if not the bound one.
    pub gossip_advertise: Option<SocketAddr>,
    /// Sync address to advertise, if not the bound one.
    pub sync_advertise: Option<SocketAddr>,
    /// Gossip addresses of agents to join through.
    pub seeds: Vec<SocketAddr>,
    /// SWIM timing preset.
    pub preset: Preset,
    /// Anti-entropy round interval.
    pub pull_interval: Duration,
    /// Per-rank wait before a stand-in takes over a silent owner's origin.
    pub takeover_grace: Duration,
    /// How often an owner rewrites an unchanged health record.
    pub record_refresh: Duration,
    /// Checks running at once, at most; `None`: 512, or a share of a low
    /// descriptor limit (see [`crate::descriptors`]).
    pub max_concurrent_checks: Option<usize>,
    /// Most API connections; `None`: 512, or a share of a low descriptor
    /// limit.
    pub api_max_connections: Option<usize>,
    /// Time allowed for a whole request head (see [`crate::api_server`]).
    pub api_header_timeout: Duration,
    /// An API connection without a request for this long is closed.
    pub api_idle_timeout: Duration,
    /// Where checks may go (see [`crate::targets`]).
    pub checks: crate::targets::TargetsConfig,
    /// Most connections kept alive between checks; `None`: what the
    /// descriptor limit leaves, at most 16384.
    pub max_idle_connections: Option<usize>,
    /// Where the TLS files that specs name are read from; `None`: a spec
    /// that names one is refused.
    pub check_tls_dir: Option<PathBuf>,
    /// Origins registered at start.
    pub origins: Vec<(String, OriginSpec)>,
    /// The cluster key file (see [`crate::keys`]); `None`: plaintext.
    pub key_file: Option<PathBuf>,
    /// The API token file (see [`crate::tokens`]); `None`: the API is open.
    pub token_file: Option<PathBuf>,
    /// The API's certificate and key (see [`crate::api_tls`]); `None`: HTTP.
    pub tls: Option<TlsFiles>,
    /// Start even though a listener binds a non-loopback address without a
    /// token file and a cluster key (said in the log at every start).
    pub insecure: bool,
}

/// The PEM files of the API's TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, the server's certificate first.
    pub cert_file: PathBuf,
    /// Its private key.
    pub key_file: PathBuf,
}

impl AgentConfig {
    /// What the agent gives up, if it starts with this config: for a
    /// listener bound to a non-loopback address, a missing token file (the
    /// API is open) and a missing cluster key (cluster traffic is plaintext).
    /// Empty when every listener is on loopback or both are configured.
    pub fn exposures(&self) -> Vec<String> {
        let exposed: Vec<String> = [
            ("listen.gossip", self.gossip_listen),
            ("listen.sync", self.sync_listen),
            ("listen.api", self.api_listen),
        ]
        .into_iter()
        .filter(|(_, a)| !a.ip().is_loopback())
        .map(|(k, a)| format!("{k} = {a}"))
        .collect();
        if exposed.is_empty() {
            return Vec::new();
        }
        let on = exposed.join(", ");
        let mut out = Vec::new();
        if self.token_file.is_none() {
            out.push(format!(
                "no token_file: anyone who reaches the API can change the registry ({on})"
            ));
        }
        if self.key_file.is_none() {
            out.push(format!(
                "no key_file: cluster traffic is plaintext and unauthenticated ({on})"
            ));
        }
        out
    }

    /// Defaults for agent `node` on 127.0.0.1 with OS-chosen ports (as in
    /// tests and the demo).
    pub fn local(node: impl Into<String>, data_dir: PathBuf) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        AgentConfig {
            node: node.into(),
            cluster: "vantage".into(),
            data_dir,
            gossip_listen: any,
            sync_listen: any,
            api_listen: any,
            gossip_advertise: None,
            sync_advertise: None,
            seeds: Vec::new(),
            preset: Preset::Lan,
            pull_interval: Duration::from_secs(1),
            takeover_grace: Duration::from_secs(2),
            record_refresh: Duration::from_secs(60),
            max_concurrent_checks: None,
            api_max_connections: None,
            api_header_timeout: Duration::from_millis(DEFAULT_HEADER_TIMEOUT_MS),
            api_idle_timeout: Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS),
            checks: crate::targets::TargetsConfig::default(),
            max_idle_connections: None,
            check_tls_dir: None,
            origins: Vec::new(),
            key_file: None,
            token_file: None,
            tls: None,
            insecure: false,
        }
    }

    /// Reads and validates a TOML file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, the key and the problem.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: name.clone(),
            message: e.to_string(),
        })?;
        Self::from_toml(&text, &name)
    }

    /// Parses and validates TOML text; `name` is used in errors.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key and the problem.
    pub fn from_toml(text: &str, name: &str) -> Result<Self, ConfigError> {
        let err = |message: String| ConfigError {
            source_name: name.to_owned(),
            message,
        };
        let file: FileConfig =
            toml::from_str(text).map_err(|e| err(e.to_string().trim().to_owned()))?;
        let t = file.timings;
        let preset = match t.preset.as_str() {
            "lan" => Preset::Lan,
            "wan" => Preset::Wan,
            "local" => Preset::Local,
            other => {
                return Err(err(format!(
                    "timings.preset: {other:?} is not lan, wan or local"
                )));
            }
        };
        let mut origins = Vec::new();
        for (i, table) in file.origins.into_iter().enumerate() {
            let mut table = table;
            let id = match table.remove("id") {
                Some(toml::Value::String(id)) => id,
                Some(_) => return Err(err(format!("origins[{i}].id: must be a string"))),
                None => return Err(err(format!("origins[{i}].id: missing"))),
            };
            // the id first: the error of a spec names it
            spec::validate_id(&id).map_err(|e| err(format!("origins[{i}].{e}")))?;
            let spec: OriginSpec =
                toml::Value::Table(table)
                    .try_into()
                    .map_err(|e: toml::de::Error| {
                        err(format!("origins[{i}] ({id}): {}", e.to_string().trim()))
                    })?;
            // validated with the rest, below
            origins.push((id, spec));
        }
        let config = AgentConfig {
            node: file.node,
            cluster: file.cluster,
            data_dir: file.data_dir,
            gossip_listen: file.listen.gossip,
            sync_listen: file.listen.sync,
            api_listen: file.listen.api,
            gossip_advertise: file.advertise.gossip,
            sync_advertise: file.advertise.sync,
            seeds: file.seeds,
            preset,
            pull_interval: Duration::from_millis(t.pull_interval_ms),
            takeover_grace: Duration::from_millis(t.takeover_grace_ms),
            record_refresh: Duration::from_millis(t.record_refresh_ms),
            max_concurrent_checks: t.max_concurrent_checks,
            api_max_connections: file.api.max_connections,
            api_header_timeout: Duration::from_millis(file.api.header_timeout_ms),
            api_idle_timeout: Duration::from_millis(file.api.idle_timeout_ms),
            checks: crate::targets::TargetsConfig {
                allow: file.checks.allow,
                deny: file.checks.deny,
                default_deny: file.checks.default_deny,
            },
            max_idle_connections: file.checks.max_idle_connections,
            check_tls_dir: file.checks.tls_dir,
            origins,
            key_file: file.key_file,
            token_file: file.token_file,
            tls: file.tls,
            insecure: file.insecure,
        };
        config.validate().map_err(|e| err(e.message))?;
        Ok(config)
    }

    /// Checks every field against the rules of the [module docs](self)
    /// (what [`from_toml`](Self::from_toml) runs after parsing; a config
    /// built in code can be checked the same way before
    /// [`Agent::start`](crate::agent::Agent::start)). Durations are checked
    /// in whole milliseconds, as the TOML keys hold them.
    ///
    /// # Errors
    /// The first bad field: a [`ConfigError`] whose `source_name` is
    /// `"config"` and whose message starts with the TOML key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |message: String| ConfigError {
            source_name: "config".into(),
            message,
        };
        self.validate_names_and_paths().map_err(err)?;
        self.validate_addresses().map_err(err)?;
        self.validate_limits().map_err(err)?;
        self.validate_checks().map_err(err)
    }

    /// The node and cluster names, and no empty file path.
    fn validate_names_and_paths(&self) -> Result<(), String> {
        name("node", &self.node)?;
        name("cluster", &self.cluster)?;
        let mut paths = vec![("data_dir", Some(&self.data_dir))];
        paths.push(("key_file", self.key_file.as_ref()));
        paths.push(("token_file", self.token_file.as_ref()));
        if let Some(tls) = &self.tls {
            paths.push(("tls.cert_file", Some(&tls.cert_file)));
            paths.push(("tls.key_file", Some(&tls.key_file)));
        }
        for (key, path) in paths {
            if path.is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(format!(
                    "{key}: must not be empty (\".\" is the working directory)"
                ));
            }
        }
        Ok(())
    }

    /// Listeners that can coexist, and advertised and seed addresses that
    /// can be dialled.
    fn validate_addresses(&self) -> Result<(), String> {
        if shares_a_tcp_address(self.sync_listen, self.api_listen) {
            return Err(format!(
                "listen.api: {} is also listen.sync ({}); two TCP listeners cannot share an \
                 address (use another port, or 0 for any free one)",
                self.api_listen, self.sync_listen
            ));
        }
        let mut dialled = vec![
            ("advertise.gossip".to_owned(), self.gossip_advertise),
            ("advertise.sync".to_owned(), self.sync_advertise),
        ];
        dialled.extend(
            self.seeds
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("seeds[{i}]"), Some(*s))),
        );
        for (key, addr) in dialled {
            let Some(addr) = addr else { continue };
            if addr.ip().is_unspecified() {
                return Err(format!(
                    "{key}: {addr} cannot be dialled (an unspecified IP); give the address \
                     other agents reach"
                ));
            }
            if addr.port() == 0 {
                return Err(format!("{key}: {addr} cannot be dialled (port 0)"));
            }
        }
        Ok(())
    }

    /// Every timing, count and timeout within its range.
    fn validate_limits(&self) -> Result<(), String> {
        for (key, duration, range) in [
            (
                "timings.pull_interval_ms",
                self.pull_interval,
                PULL_INTERVAL_MS,
            ),
            (
                "timings.takeover_grace_ms",
                self.takeover_grace,
                TAKEOVER_GRACE_MS,
            ),
            (
                "timings.record_refresh_ms",
                self.record_refresh,
                RECORD_REFRESH_MS,
            ),
        ] {
            let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
            in_range(key, ms, range)?;
        }
        let count = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        for (key, value, range) in [
            (
                "timings.max_concurrent_checks",
                self.max_concurrent_checks,
                MAX_CONCURRENT_CHECKS,
            ),
            (
                "api.max_connections",
                self.api_max_connections,
                API_MAX_CONNECTIONS,
            ),
            (
                "checks.max_idle_connections",
                self.max_idle_connections,
                MAX_IDLE_CONNECTIONS,
            ),
        ] {
            if let Some(v) = value {
                in_range(key, count(v), range)?;
            }
        }
        for (key, duration, range) in [
            (
                "api.header_timeout_ms",
                self.api_header_timeout,
                HEADER_TIMEOUT_MS,
            ),
            (
                "api.idle_timeout_ms",
                self.api_idle_timeout,
                IDLE_TIMEOUT_MS,
            ),
        ] {
            let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
            in_range(key, ms, range)?;
        }
        Ok(())
    }

    /// The `[checks]` policy and the `[[origins]]`.
    fn validate_checks(&self) -> Result<(), String> {
        crate::targets::TargetPolicy::with_local_addresses(&self.checks, &[], &[])
            .map_err(|e| e.to_string())?;
        if let Some(dir) = &self.check_tls_dir
            && !dir.is_dir()
        {
            return Err(format!(
                "checks.tls_dir: {} is not a directory",
                dir.display()
            ));
        }
        let tls_dir = spec::tls_files::TlsDir::new(self.check_tls_dir.clone());
        for (i, (id, spec)) in self.origins.iter().enumerate() {
            spec::validate_id(id).map_err(|e| format!("origins[{i}].{e}"))?;
            spec.validate()
                .and_then(|()| tls_dir.check(spec))
                .map_err(|e| format!("origins[{i}] ({id}).{e}"))?;
            if self.origins[..i].iter().any(|(other, _)| other == id) {
                return Err(format!("origins[{i}].id: {id:?} is registered twice"));
            }
        }
        Ok(())
    }
}

/// Bounds of `timings.pull_interval_ms`: 10 ms to an hour.
pub const PULL_INTERVAL_MS: RangeInclusive<u64> = 10..=3_600_000;
/// Bounds of `timings.takeover_grace_ms`: 1 ms to an hour per rank.
pub const TAKEOVER_GRACE_MS: RangeInclusive<u64> = 1..=3_600_000;
/// Bounds of `timings.record_refresh_ms`: 100 ms to a day.
pub const RECORD_REFRESH_MS: RangeInclusive<u64> = 100..=86_400_000;
/// Bounds of `timings.max_concurrent_checks`.
pub const MAX_CONCURRENT_CHECKS: RangeInclusive<u64> = 1..=65_536;
/// Bounds of `api.max_connections`.
pub const API_MAX_CONNECTIONS: RangeInclusive<u64> = 1..=65_536;
/// Bounds of `api.header_timeout_ms`: 100 ms to 5 minutes.
pub const HEADER_TIMEOUT_MS: RangeInclusive<u64> = 100..=300_000;
/// Bounds of `api.idle_timeout_ms`: 100 ms to a day.
pub const IDLE_TIMEOUT_MS: RangeInclusive<u64> = 100..=86_400_000;
/// Bounds of `checks.max_idle_connections`.
pub const MAX_IDLE_CONNECTIONS: RangeInclusive<u64> = 0..=1_000_000;
/// Default `api.header_timeout_ms`.
pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;
/// Default `api.idle_timeout_ms`.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 60_000;

/// `key: must be between lo and hi` unless `value` is in `range`.
fn in_range(key: &str, value: u64, range: RangeInclusive<u64>) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{key}: must be between {} and {} (got {value})",
            range.start(),
            range.end()
        ))
    }
}

/// `node` and `cluster`: 1–64 characters of `A-Z a-z 0-9 . _ -` (they go
/// into the User-Agent of checks, gossip and logs).
fn name(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 64 {
        return Err(format!(
            "{key}: must be 1-64 characters (got {})",
            value.len()
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        return Err(format!(
            "{key}: {c:?} is not allowed (use A-Z a-z 0-9 . _ -)"
        ));
    }
    Ok(())
}

/// Whether two TCP listeners would fight over one address: the same
/// non-zero port on the same IP, or on any IP when either is unspecified
/// (`0.0.0.0` and `[::]` take the port on every address).
fn shares_a_tcp_address(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    node: String,
    #[serde(default = "default_cluster")]
    cluster: String,
    data_dir: PathBuf,
    listen: Listen,
    #[serde(default)]
    advertise: Advertise,
    #[serde(default)]
    seeds: Vec<SocketAddr>,
    #[serde(default)]
    timings: Timings,
    #[serde(default)]
    origins: Vec<toml::Table>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    tls: Option<TlsFiles>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    api: ApiFile,
    #[serde(default)]
    checks: ChecksFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ApiFile {
    max_connections: Option<usize>,
    header_timeout_ms: u64,
    idle_timeout_ms: u64,
}

impl Default for ApiFile {
    fn default() -> Self {
        ApiFile {
            max_connections: None,
            header_timeout_ms: DEFAULT_HEADER_TIMEOUT_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ChecksFile {
    allow: Vec<ipnet::IpNet>,
    deny: Vec<ipnet::IpNet>,
    default_deny: bool,
    max_idle_connections: Option<usize>,
    tls_dir: Option<PathBuf>,
}

impl Default for ChecksFile {
    fn default() -> Self {
        let d = crate::targets::TargetsConfig::default();
        ChecksFile {
            allow: d.allow,
            deny: d.deny,
            default_deny: d.default_deny,
            max_idle_connections: None,
            tls_dir: None,
        }
    }
}

fn default_cluster() -> String {
    "vantage".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Listen {
    gossip: SocketAddr,
    sync: SocketAddr,
    api: SocketAddr,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Advertise {
    gossip: Option<SocketAddr>,
    sync: Option<SocketAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Timings {
    preset: String,
    pull_interval_ms: u64,
    takeover_grace_ms: u64,
    record_refresh_ms: u64,
    max_concurrent_checks: Option<usize>,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            preset: "lan".into(),
            pull_interval_ms: 1000,
            takeover_grace_ms: 2000,
            record_refresh_ms: 60_000,
            max_concurrent_checks: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
node = "hc-1"
cluster = "dc1"
data_dir = "/tmp/hc-1"
seeds = ["127.0.0.1:7001"]
[listen]
gossip = "127.0.0.1:7000"
sync = "127.0.0.1:7100"
api = "127.0.0.1:8080"
[timings]
preset = "local"
record_refresh_ms = 5000
[[origins]]
id = "web-1"
address = "10.0.0.5:80"
path = "/healthz"
[[origins]]
id = "db"
address = "10.0.0.6:5432"
kind = "tcp"
"#;

    fn error(text: &str) -> String {
        AgentConfig::from_toml(text, "test.toml")
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn a_full_config_parses_with_defaults() {
        let c = AgentConfig::from_toml(GOOD, "test.toml").expect("valid");
        assert_eq!(c.node, "hc-1");
        assert_eq!(c.preset, Preset::Local);
        assert_eq!(c.record_refresh, Duration::from_secs(5));
        assert_eq!(c.pull_interval, Duration::from_secs(1));
        assert_eq!(c.origins.len(), 2);
        assert_eq!(c.origins[1].1.kind, crate::spec::Kind::Tcp);
        assert_eq!(c.origins[0].1.path, "/healthz");
    }

    #[test]
    fn errors_name_the_key() {
        assert!(error(&GOOD.replace("node = \"hc-1\"", "")).contains("node"));
        assert!(
            error(&GOOD.replace("preset = \"local\"", "preset = \"fast\""))
                .contains("timings.preset")
        );
        assert!(error(&GOOD.replace("cluster =", "clustre =")).contains("clustre"));
        assert!(error(&GOOD.replace("\"127.0.0.1:8080\"", "\"nowhere\"")).contains("api"));
        assert!(
            error(&GOOD.replace("path = \"/healthz\"", "path = \"healthz\""))
                .contains("origins[0] (web-1).path")
        );
        assert!(error(&GOOD.replace("kind = \"tcp\"", "kind = \"udp\"")).contains("origins[1]"));
        assert!(error(&GOOD.replace("id = \"db\"", "id = \"web-1\"")).contains("registered twice"));
        assert!(error(&GOOD.replace("id = \"db\"", "id = \"a b\"")).contains("origins[1].id"));
        assert!(
            error(&GOOD.replace("record_refresh_ms = 5000", "record_refresh_ms = 0"))
                .contains("record_refresh_ms")
        );
    }

    /// `checks.tls_dir` must be a directory, and the TLS files of the
    /// `[[origins]]` must be in it and parse: refused at start, naming the
    /// origin and the field.
    #[test]
    fn tls_files_of_configured_origins_are_loaded_at_start() {
        let dir = testkit::TempDir::new("hc-config-tls");
        let with = |tls_dir: &str, ca: &str| {
            let head = GOOD.split("[[origins]]").next().unwrap_or(GOOD);
            format!(
                "{head}[checks]\ntls_dir = {tls_dir:?}\n[[origins]]\nid = \"s\"\n\
                 address = \"10.0.0.5:443\"\nkind = \"https\"\ntls_ca = {ca:?}\n"
            )
        };
        let d = dir.path().display().to_string();
        let missing = dir.path().join("nope").display().to_string();
        assert!(
            error(&with(&missing, "ca.pem")).contains("checks.tls_dir: "),
            "{}",
            error(&with(&missing, "ca.pem"))
        );
        let e = error(&with(&d, "ca.pem"));
        assert!(e.contains("origins[0] (s).tls_ca: cannot read"), "{e}");
        std::fs::write(dir.path().join("ca.pem"), "garbage").expect("write");
        let e = error(&with(&d, "ca.pem"));
        assert!(
            e.contains("origins[0] (s).tls_ca: ") && e.contains("no certificate"),
            "{e}"
        );
        let cert = rcgen::generate_simple_self_signed(vec!["ca".into()]).expect("cert");
        std::fs::write(dir.path().join("ca.pem"), cert.cert.pem()).expect("write");
        let c = AgentConfig::from_toml(&with(&d, "ca.pem"), "test.toml").expect("valid");
        assert_eq!(c.check_tls_dir.as_deref(), Some(dir.path()));
    }

    /// Regression: a `node` with control characters was accepted and failed
    /// later, naming the checker's User-Agent instead of `node`; an empty
    /// `cluster` was accepted.
    #[test]
    fn regression_node_and_cluster_are_plain_names() {
        for bad in ["a\\u0007b", "", "a b", "hc/1", "h\\u00e9", &"n".repeat(65)] {
            let e = error(&GOOD.replace("node = \"hc-1\"", &format!("node = \"{bad}\"")));
            assert!(e.starts_with("test.toml: node: "), "{bad:?}: {e}");
        }
        let e = error(&GOOD.replace("cluster = \"dc1\"", "cluster = \"\""));
        assert!(e.starts_with("test.toml: cluster: "), "{e}");
        assert!(
            error(&GOOD.replace("cluster = \"dc1\"", "cluster = \"d c\"")).contains("cluster: ")
        );
        let name = "a.B_c-9".repeat(10);
        let c = AgentConfig::from_toml(&GOOD.replace("hc-1", &name[..64]), "t").expect("valid");
        assert_eq!(c.node.len(), 64);
    }

    /// Regression: `pull_interval_ms = 18446744073709551615` was accepted.
    /// Every duration and the check concurrency have bounds, named in the
    /// error with the key.
    #[test]
    fn regression_timings_are_bounded() {
        let with = |line: &str| GOOD.replace("record_refresh_ms = 5000", line);
        for (line, says) in [
            (
                "pull_interval_ms = 18446744073709551615",
                "timings.pull_interval_ms: must be between 10 and 3600000",
            ),
            (
                "pull_interval_ms = 9",
                "timings.pull_interval_ms: must be between",
            ),
            (
                "pull_interval_ms = 3600001",
                "timings.pull_interval_ms: must be between",
            ),
            (
                "takeover_grace_ms = 0",
                "timings.takeover_grace_ms: must be between 1 and 3600000",
            ),
            (
                "takeover_grace_ms = 3600001",
                "timings.takeover_grace_ms: must be between",
            ),
            (
                "record_refresh_ms = 99",
                "timings.record_refresh_ms: must be between 100 and 86400000",
            ),
            (
                "record_refresh_ms = 86400001",
                "timings.record_refresh_ms: must be between",
            ),
            (
                "max_concurrent_checks = 0",
                "timings.max_concurrent_checks: must be between 1 and 65536",
            ),
            (
                "max_concurrent_checks = 65537",
                "timings.max_concurrent_checks: must be between",
            ),
            ("pull_interval_ms = -1", "pull_interval_ms"),
        ] {
            let e = error(&with(line));
            assert!(e.contains(says), "{line}: {e}");
        }
        for line in [
            "pull_interval_ms = 10",
            "pull_interval_ms = 3600000",
            "takeover_grace_ms = 1",
            "record_refresh_ms = 100",
            "record_refresh_ms = 86400000",
            "max_concurrent_checks = 1",
            "max_concurrent_checks = 65536",
        ] {
            AgentConfig::from_toml(&with(line), "t").unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    /// Values that parse but cannot work: an empty path, two TCP listeners
    /// on one address, an address nobody can dial.
    #[test]
    fn addresses_and_paths_that_cannot_work_are_refused() {
        for (from, to, says) in [
            (
                "data_dir = \"/tmp/hc-1\"",
                "data_dir = \"\"",
                "data_dir: must not be empty",
            ),
            (
                "data_dir = \"/tmp/hc-1\"",
                "data_dir = \"/tmp/hc-1\"\ntoken_file = \"\"",
                "token_file: must not be empty",
            ),
            (
                "data_dir = \"/tmp/hc-1\"",
                "data_dir = \"/tmp/hc-1\"\nkey_file = \"\"",
                "key_file: must not be empty",
            ),
            (
                "[listen]",
                "[tls]\ncert_file = \"\"\nkey_file = \"k\"\n[listen]",
                "tls.cert_file: must not be empty",
            ),
            (
                "api = \"127.0.0.1:8080\"",
                "api = \"127.0.0.1:7100\"",
                "listen.api: 127.0.0.1:7100 is also listen.sync",
            ),
            (
                "api = \"127.0.0.1:8080\"",
                "api = \"0.0.0.0:7100\"",
                "listen.api",
            ),
            (
                "seeds = [\"127.0.0.1:7001\"]",
                "seeds = [\"127.0.0.1:7001\", \"0.0.0.0:7000\"]",
                "seeds[1]: 0.0.0.0:7000 cannot be dialled",
            ),
            (
                "seeds = [\"127.0.0.1:7001\"]",
                "seeds = [\"127.0.0.1:0\"]",
                "seeds[0]",
            ),
            (
                "[listen]",
                "[advertise]\ngossip = \"[::]:7000\"\n[listen]",
                "advertise.gossip",
            ),
            (
                "[listen]",
                "[advertise]\nsync = \"10.0.0.1:0\"\n[listen]",
                "advertise.sync",
            ),
        ] {
            assert!(GOOD.contains(from), "{from}");
            let e = error(&GOOD.replace(from, to));
            assert!(e.contains(says), "{to}: {e}");
        }
        // UDP gossip may share a port with a TCP listener; port 0 is "any";
        // seeds may repeat and name this agent.
        for (from, to) in [
            ("gossip = \"127.0.0.1:7000\"", "gossip = \"127.0.0.1:7100\""),
            (
                "sync = \"127.0.0.1:7100\"\napi = \"127.0.0.1:8080\"",
                "sync = \"127.0.0.1:0\"\napi = \"127.0.0.1:0\"",
            ),
            (
                "seeds = [\"127.0.0.1:7001\"]",
                "seeds = [\"127.0.0.1:7000\", \"127.0.0.1:7000\"]",
            ),
        ] {
            assert!(GOOD.contains(from), "{from}");
            AgentConfig::from_toml(&GOOD.replace(from, to), "t")
                .unwrap_or_else(|e| panic!("{to}: {e}"));
        }
    }

    /// An origin of the file is held to the rules of a spec from the API,
    /// its errors named under `origins[i] (id)`.
    #[test]
    fn origins_are_strict_specs() {
        let with = |line: &str| GOOD.replace("path = \"/healthz\"", line);
        let c = AgentConfig::from_toml(&with("headers = { X-A = \"1\" }"), "t").expect("valid");
        assert_eq!(c.origins[0].1.headers["X-A"], "1");
        for (line, says) in [
            (
                "headers = { X-A = \"1\", x-a = \"2\" }",
                "origins[0] (web-1).headers.x-a",
            ),
            (
                "headers = { Host = \"h\" }",
                "origins[0] (web-1).headers.Host",
            ),
            ("path = \"/../ok\"", "origins[0] (web-1).path"),
            ("method = \"CONNECT\"", "origins[0] (web-1).method"),
            (
                "expect_status = [\"+200\"]",
                "origins[0] (web-1).expect_status[0]",
            ),
        ] {
            let e = error(&with(line));
            assert!(e.contains(says), "{line}: {e}");
        }
    }

    /// The example configs stay valid under these rules.
    #[test]
    fn the_examples_are_valid() {
        for (name, text) in [
            (
                "hc-1.toml",
                include_str!("../../../examples/three-agents/hc-1.toml"),
            ),
            (
                "hc-2.toml",
                include_str!("../../../examples/three-agents/hc-2.toml"),
            ),
            (
                "hc-3.toml",
                include_str!("../../../examples/three-agents/hc-3.toml"),
            ),
        ] {
            AgentConfig::from_toml(text, name).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// A config built in code is checked by the same rules.
    #[test]
    fn a_config_built_in_code_validates_by_the_same_rules() {
        let mut c = AgentConfig::local("hc-1", "/tmp/hc-1".into());
        assert!(c.validate().is_ok());
        c.node = "hc\n1".into();
        let e = c.validate().expect_err("control character");
        assert!(e.message.starts_with("node: "), "{e}");
        c.node = "hc-1".into();
        c.pull_interval = Duration::from_millis(u64::MAX);
        assert!(
            c.validate()
                .expect_err("too long")
                .message
                .starts_with("timings.pull_interval_ms")
        );
        c.pull_interval = Duration::from_secs(1);
        c.origins = vec![
            ("a".into(), OriginSpec::new("h:1")),
            ("a".into(), OriginSpec::new("h:2")),
        ];
        assert!(
            c.validate()
                .expect_err("twice")
                .message
                .contains("registered twice")
        );
        c.origins = vec![("a".into(), OriginSpec::new("h:0"))];
        assert!(
            c.validate()
                .expect_err("bad spec")
                .message
                .starts_with("origins[0] (a).address")
        );
    }
}
