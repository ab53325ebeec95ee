//! The `healthcheck` command: run an agent, a demo cluster, or query an
//! agent's status.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
#[cfg(feature = "demo")]
use healthcheck::demo::{self, DemoConfig};
use healthcheck::{
    agent::Agent,
    client::{ApiClient, origin_path},
    config::AgentConfig,
};

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
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print the members a running agent knows, with their state.
    Members {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Follow a running agent's events (health transitions, registry
    /// changes), one line each; reconnects and resumes where it left off.
    Watch {
        #[command(flatten)]
        api: ApiArgs,
        /// Print each event as its JSON, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Read, register or remove the origins of a running agent.
    Origins {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        action: OriginsAction,
    },
}

/// Where the agent's API is and how to be let in.
#[derive(clap::Args)]
struct ApiArgs {
    /// The agent's API, e.g. http://127.0.0.1:8080
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// An API token (read for reading, write for changes; or set
    /// HEALTHCHECK_TOKEN).
    #[arg(long, global = true, env = "HEALTHCHECK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A PEM file of the CA (or certificate) to trust for an https API
    /// with a certificate of its own.
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
}

impl ApiArgs {
    fn client(&self) -> anyhow::Result<ApiClient> {
        Ok(ApiClient::new(
            &self.api,
            self.token.as_deref(),
            self.ca.as_deref(),
        )?)
    }
}

#[derive(Subcommand)]
enum OriginsAction {
    /// Print one origin (its spec and health) as JSON.
    Get {
        /// The origin's id.
        id: String,
    },
    /// Register or replace an origin from a JSON spec (`healthcheck origin`
    /// of the demo feature, or the README, shows one).
    Put {
        /// The origin's id.
        id: String,
        /// The spec: a JSON file, or - for standard input.
        #[arg(long)]
        spec: PathBuf,
    },
    /// Remove an origin.
    Rm {
        /// The origin's id.
        id: String,
    },
    /// Put an origin under maintenance (not checked, shown `maintenance`)
    /// for a while, replacing one in force.
    Maint {
        /// The origin's id.
        id: String,
        /// Why (shown in the API, events, metrics and page).
        #[arg(long)]
        reason: String,
        /// How long, in minutes (it ends by itself then).
        #[arg(long, default_value_t = 60)]
        minutes: u64,
    },
    /// End an origin's maintenance now: it is checked again within a second.
    Unmaint {
        /// The origin's id.
        id: String,
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
            Command::Status { api } => status(&api.client()?).await,
            Command::Members { api } => members(&api.client()?).await,
            Command::Watch { api, json } => watch(&api.client()?, json).await,
            Command::Origins { api, action } => origins(&api.client()?, action).await,
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

async fn status(client: &ApiClient) -> anyhow::Result<()> {
    let origins = client.get("/v1/origins").await?;
    let origins = origins.as_array().cloned().unwrap_or_default();
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
            s(&o["status"]),
            s(&h["checked_by"]),
            h["latency_ms"]
                .as_u64()
                .map_or("-".into(), |l| format!("{l} ms")),
            match (
                o["maintenance"]["reason"].as_str(),
                h["confirmation"]["disputed"]["by"].as_str(),
            ) {
                (Some(why), _) => format!("maintenance: {why}"),
                (None, Some(by)) => format!("disputed: {by} saw it up; {}", s(&h["reason"])),
                (None, None) => s(&h["reason"]),
            },
        );
    }
    Ok(())
}

async fn members(client: &ApiClient) -> anyhow::Result<()> {
    let members = client.get("/v1/members").await?;
    println!("{:<24} {:<8} {:<22} sync", "id", "state", "gossip");
    for m in members.as_array().into_iter().flatten() {
        let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
        println!(
            "{:<24} {:<8} {:<22} {}",
            s(&m["id"]),
            s(&m["state"]),
            s(&m["gossip_addr"]),
            s(&m["sync_addr"])
        );
    }
    Ok(())
}

async fn origins(client: &ApiClient, action: OriginsAction) -> anyhow::Result<()> {
    match action {
        OriginsAction::Get { id } => {
            let origin = client.get(&origin_path(&id)).await?;
            println!("{}", serde_json::to_string_pretty(&origin)?);
        }
        OriginsAction::Put { id, spec } => {
            let text = if spec.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading the spec from stdin")?
            } else {
                std::fs::read_to_string(&spec)
                    .with_context(|| format!("reading {}", spec.display()))?
            };
            let body: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not JSON", spec.display()))?;
            let (status, _) = client.put(&origin_path(&id), &body).await?;
            let done = if status == reqwest::StatusCode::CREATED {
                "registered"
            } else {
                "replaced"
            };
            println!("{id}: {done}");
        }
        OriginsAction::Rm { id } => {
            client.delete(&origin_path(&id)).await?;
            println!("{id}: removed");
        }
        OriginsAction::Maint {
            id,
            reason,
            minutes,
        } => {
            let body = serde_json::json!({
                "reason": reason,
                "duration_ms": minutes.saturating_mul(60_000),
            });
            let path = format!("{}/maintenance", origin_path(&id));
            let (_, m) = client.put(&path, &body).await?;
            println!(
                "{id}: under maintenance for {minutes} min (until_ms {})",
                m["until_ms"]
            );
        }
        OriginsAction::Unmaint { id } => {
            client
                .delete(&format!("{}/maintenance", origin_path(&id)))
                .await?;
            println!("{id}: maintenance ended");
        }
    }
    Ok(())
}

/// Prints one line per event, reconnecting (resuming with the last id)
/// when the stream ends or breaks; a refusal (a bad token) ends it.
async fn watch(client: &ApiClient, json: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut last: Option<String> = None;
    loop {
        let print = |e: &healthcheck::client::StreamEvent| {
            let line = if json {
                serde_json::json!({"id": e.id, "event": e.kind, "data": e.data}).to_string()
            } else {
                describe(e)
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        };
        match client.events(last.as_deref(), print).await {
            Ok(resume) => last = resume.or(last),
            Err(e @ healthcheck::client::ClientError::Refused { .. }) => return Err(e.into()),
            Err(e) => eprintln!("watch: {:#}; reconnecting", anyhow::Error::from(e)),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// An event as one line of text.
fn describe(e: &healthcheck::client::StreamEvent) -> String {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    let d = &e.data;
    match e.kind.as_str() {
        "health" => format!(
            "{} health {} {} -> {} by {}{}",
            e.id,
            s(&d["origin"]),
            s(&d["from"]),
            s(&d["to"]),
            s(&d["record"]["checked_by"]),
            d["record"]["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        "registry" => match d["spec"]["address"].as_str() {
            Some(address) => format!("{} registry {} put {address}", e.id, s(&d["origin"])),
            None => format!("{} registry {} removed", e.id, s(&d["origin"])),
        },
        "maintenance" => match d["maintenance"]["reason"].as_str() {
            Some(why) => format!(
                "{} maintenance {} begins by {} ({why})",
                e.id,
                s(&d["origin"]),
                s(&d["maintenance"]["set_by"])
            ),
            None => format!("{} maintenance {} ended", e.id, s(&d["origin"])),
        },
        "disputed" => format!(
            "{} disputed {}: {} sees it down, {} saw it up",
            e.id,
            s(&d["origin"]),
            s(&d["record"]["checked_by"]),
            s(&d["record"]["confirmation"]["disputed"]["by"])
        ),
        "index" => format!("{} index {}", e.id, d["index"]),
        other => format!("{} {other} (re-read the origins)", e.id),
    }
}
