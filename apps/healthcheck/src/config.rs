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
//! max_concurrent_checks = 512
//!
//! [[origins]]                      # registered at start (also settable by the API)
//! id = "web-1"
//! address = "10.0.1.5:80"
//! path = "/healthz"
//! ```

use std::{
    net::SocketAddr,
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
    /// Checks running at once, at most.
    pub max_concurrent_checks: usize,
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
            max_concurrent_checks: 512,
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
        if file.node.is_empty() {
            return Err(err("node: must not be empty".into()));
        }
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
        for (key, ms) in [
            ("timings.pull_interval_ms", t.pull_interval_ms),
            ("timings.takeover_grace_ms", t.takeover_grace_ms),
            ("timings.record_refresh_ms", t.record_refresh_ms),
        ] {
            if ms == 0 {
                return Err(err(format!("{key}: must be greater than 0")));
            }
        }
        if t.max_concurrent_checks == 0 {
            return Err(err(
                "timings.max_concurrent_checks: must be greater than 0".into()
            ));
        }
        let mut origins = Vec::new();
        for (i, table) in file.origins.into_iter().enumerate() {
            let mut table = table;
            let id = match table.remove("id") {
                Some(toml::Value::String(id)) => id,
                Some(_) => return Err(err(format!("origins[{i}].id: must be a string"))),
                None => return Err(err(format!("origins[{i}].id: missing"))),
            };
            spec::validate_id(&id).map_err(|e| err(format!("origins[{i}].{e}")))?;
            let spec: OriginSpec =
                toml::Value::Table(table)
                    .try_into()
                    .map_err(|e: toml::de::Error| {
                        err(format!("origins[{i}] ({id}): {}", e.to_string().trim()))
                    })?;
            spec.validate()
                .map_err(|e| err(format!("origins[{i}] ({id}).{e}")))?;
            if origins.iter().any(|(other, _)| *other == id) {
                return Err(err(format!("origins[{i}].id: {id:?} is registered twice")));
            }
            origins.push((id, spec));
        }
        Ok(AgentConfig {
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
            origins,
            key_file: file.key_file,
            token_file: file.token_file,
            tls: file.tls,
            insecure: file.insecure,
        })
    }
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
    max_concurrent_checks: usize,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            preset: "lan".into(),
            pull_interval_ms: 1000,
            takeover_grace_ms: 2000,
            record_refresh_ms: 60_000,
            max_concurrent_checks: 512,
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
}
