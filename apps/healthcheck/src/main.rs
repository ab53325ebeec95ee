//! The `healthcheck` command: run an agent, a demo cluster, or query an
//! agent's status.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
#[cfg(feature = "demo")]
use healthcheck::demo::{self, DemoConfig};
use healthcheck::{agent::Agent, config::AgentConfig};

/// A distributed health checker: N agents share the checks of many origins.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an agent.
    Agent {
        /// Its TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run a whole cluster in this process, with fake origins, for a while.
    #[cfg(feature = "demo")]
    Demo {
        /// Agents to run.
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Fake origins to check.
        #[arg(long, default_value_t = 40)]
        origins: usize,
        /// How long to run, in seconds (one agent is killed halfway).
        #[arg(long, default_value_t = 30)]
        duration: u64,
    },
    /// Serve a stand-in origin (200 OK to every request, or 503 with
    /// --failing) to point agents at while trying them out.
    #[cfg(feature = "demo")]
    Origin {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: std::net::SocketAddr,
        /// Answer 503 instead of 200.
        #[arg(long)]
        failing: bool,
    },
    /// Print a new random cluster key (base64), for a key file.
    Keygen,
    /// Print a new random API token as a line for a token file.
    Token {
        /// What it allows: read, or write (which includes read).
        #[arg(long, default_value = "write", value_parser = ["read", "write"])]
        scope: String,
    },
    /// Print the origins table of a running agent.
    Status {
        /// The agent's API, e.g. http://127.0.0.1:8080
        #[arg(long)]
        api: String,
        /// An API token with the read scope (or set HEALTHCHECK_TOKEN).
        #[arg(long, env = "HEALTHCHECK_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// A PEM file of the CA (or certificate) to trust for an https API
        /// with a certificate of its own.
        #[arg(long)]
        ca: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error chain only: a backtrace is noise for an operator.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                let level = if matches!(cli.command, Command::Agent { .. }) {
                    "info"
                } else {
                    "error"
                };
                tracing_subscriber::EnvFilter::new(level)
            }),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: a log file or journal gets plain
        // text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Agent { config } => agent(config).await,
            #[cfg(feature = "demo")]
            Command::Demo {
                nodes,
                origins,
                duration,
            } => {
                anyhow::ensure!(nodes >= 1, "--nodes must be at least 1");
                anyhow::ensure!(origins >= 1, "--origins must be at least 1");
                demo::run(DemoConfig {
                    nodes,
                    origins,
                    duration: std::time::Duration::from_secs(duration.max(4)),
                    interval: std::time::Duration::from_secs(1),
                })
                .await
                .map(|_| ())
            }
            Command::Status { api, token, ca } => {
                status(&api, token.as_deref(), ca.as_deref()).await
            }
            Command::Token { scope } => {
                println!("{scope} {}", healthcheck::tokens::generate());
                Ok(())
            }
            Command::Keygen => {
                println!("{}", seal::Key::generate().to_base64());
                Ok(())
            }
            #[cfg(feature = "demo")]
            Command::Origin { listen, failing } => {
                use healthcheck::fake_origin::{Behaviour, FakeOrigin};
                let behaviour = if failing {
                    Behaviour::Failing
                } else {
                    Behaviour::Healthy
                };
                let origin = FakeOrigin::start_at(listen, behaviour)
                    .await
                    .with_context(|| format!("listening on {listen}"))?;
                println!(
                    "a stand-in origin on http://{} answers {}; Ctrl-C to stop",
                    origin.addr(),
                    if failing { 503 } else { 200 }
                );
                tokio::signal::ctrl_c()
                    .await
                    .context("waiting for Ctrl-C")?;
                origin.shutdown().await;
                Ok(())
            }
        }
    })
}

async fn agent(path: PathBuf) -> anyhow::Result<()> {
    let config = AgentConfig::from_file(&path)?;
    let agent = Agent::start(config).await.context("starting the agent")?;
    println!(
        "agent {} up: API {}/",
        agent.node(),
        agent.shared().api_url(agent.api_addr())
    );
    let fatal = tokio::select! {
        stopped = wait_for_stop(&agent) => {
            stopped?;
            None
        }
        why = agent.fatal() => Some(why),
    };
    println!("leaving the cluster …");
    agent.shutdown().await;
    match fatal {
        Some(why) => Err(anyhow::anyhow!(why)),
        None => Ok(()),
    }
}

/// Waits for ctrl-c or SIGTERM; on SIGHUP re-reads the cluster key file.
#[cfg(unix)]
async fn wait_for_stop(agent: &Agent) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => return r.context("waiting for ctrl-c"),
            _ = terminate.recv() => return Ok(()),
            _ = hangup.recv() => {
                match agent.shared().reload_keys() {
                    Ok((primary, removed)) => {
                        let removed: Vec<String> = removed.iter().map(ToString::to_string).collect();
                        tracing::info!(%primary, ?removed, "cluster keys reloaded");
                    }
                    Err(healthcheck::keys::KeyFileError::NotConfigured) => {}
                    Err(e) => tracing::error!(error = %format!("{:#}", anyhow::Error::from(e)), "cluster keys not reloaded; keeping the current ones"),
                }
                match agent.shared().reload_tls() {
                    Ok(true) => tracing::info!("api certificate reloaded"),
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %format!("{:#}", anyhow::Error::from(e)), "api certificate not reloaded; keeping the current one"),
                }
                match agent.shared().reload_tokens() {
                    Ok(n) => tracing::info!(tokens = n, "api tokens reloaded"),
                    Err(healthcheck::tokens::TokenFileError::NotConfigured) => {}
                    Err(e) => tracing::error!(error = %format!("{:#}", anyhow::Error::from(e)), "api tokens not reloaded; keeping the current ones"),
                }
            }
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_stop(_agent: &Agent) -> anyhow::Result<()> {
    tokio::signal::ctrl_c().await.context("waiting for ctrl-c")
}

async fn status(
    api: &str,
    token: Option<&str>,
    ca: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let url = format!("{}/v1/origins", api.trim_end_matches('/'));
    let mut client = reqwest::Client::builder();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{}: not a PEM certificate", ca.display()))?;
        client = client.add_root_certificate(cert);
    }
    let mut request = client
        .build()
        .context("building the HTTP client")?
        .get(&url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let origins: Vec<serde_json::Value> = request
        .send()
        .await
        .with_context(|| format!("GET {url}"))?
        .error_for_status()
        .with_context(|| format!("GET {url}"))?
        .json()
        .await
        .with_context(|| format!("decoding {url}"))?;
    println!(
        "{:<24} {:<24} {:<8} {:<12} {:>8}  reason",
        "id", "address", "status", "checked by", "latency"
    );
    for o in origins {
        let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
        let h = &o["health"];
        println!(
            "{:<24} {:<24} {:<8} {:<12} {:>8}  {}",
            s(&o["id"]),
            s(&o["spec"]["address"]),
            if h.is_null() {
                "unknown".into()
            } else {
                s(&h["status"])
            },
            s(&h["checked_by"]),
            h["latency_ms"]
                .as_u64()
                .map_or("-".into(), |l| format!("{l} ms")),
            s(&h["reason"]),
        );
    }
    Ok(())
}
