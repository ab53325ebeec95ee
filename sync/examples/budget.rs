//! Replicates a per-tenant rate-limit budget (a map of `PNCounter`s)
//! between processes.
//!
//! Terminal 1:
//!     cargo run -p sync --example budget -- --node a --listen 127.0.0.1:7201 --peer b@127.0.0.1:7202
//! Terminal 2:
//!     cargo run -p sync --example budget -- --node b --listen 127.0.0.1:7202 --peer a@127.0.0.1:7201
//!
//! Then type `grant acme 100`, `take acme 3`, `rm acme` or `ls` in either;
//! the other prints each tenant's remaining budget as it changes. Takes on
//! both nodes count, concurrent ones included: none is lost and none is
//! counted twice, whatever the network does. A take is refused when this
//! node's view has less left than it asks for; two nodes taking at once can
//! overdraw by what they took concurrently (a budget without coordination is
//! a soft limit, as in every coordination-free rate limiter).
//!
//! `--grant tenant=N` and `--take tenant=N` write before reading stdin;
//! `--exit-when tenant=N` exits once the tenant's remaining budget is N
//! (handy in scripts). `--data DIR` keeps the budgets (and the node's
//! actor) in `DIR/budget.redb` across restarts; each change is acknowledged
//! once durable.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use crdt::{ActorId, Count, Map, PosNeg};
use sync::{Event, Node, NodeConfig, NodeId, Peer, StaticPeers, storage::RedbStorage};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Per tenant, a counter: grants count up, takes count down.
type Budgets = Map<String, PosNeg>;

struct Args {
    node: String,
    listen: SocketAddr,
    peers: Vec<Peer>,
    ops: Vec<(String, String, u64)>,
    exit_when: Option<(String, i128)>,
    data: Option<std::path::PathBuf>,
}

fn tenant_amount<T: std::str::FromStr>(flag: &str, v: &str) -> Result<(String, T), String> {
    let (tenant, n) = v.split_once('=').ok_or(format!("{flag} takes tenant=N"))?;
    let n = n
        .parse()
        .map_err(|_| format!("{flag} {v}: N must be a number"))?;
    Ok((tenant.to_owned(), n))
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut node, mut listen, mut peers, mut ops, mut exit_when, mut data) =
        (None, None, Vec::new(), Vec::new(), None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--node" => node = Some(value()?),
            "--listen" => listen = Some(value()?.parse().map_err(|e| format!("--listen: {e}"))?),
            "--peer" => {
                let v = value()?;
                let (id, addr) = v.split_once('@').ok_or("--peer takes id@host:port")?;
                let addr = addr.parse().map_err(|e| format!("--peer {v}: {e}"))?;
                peers.push(Peer {
                    id: NodeId(id.into()),
                    addr,
                });
            }
            "--grant" | "--take" => {
                let (tenant, n) = tenant_amount(&flag, &value()?)?;
                ops.push((flag[2..].to_owned(), tenant, n));
            }
            "--exit-when" => exit_when = Some(tenant_amount("--exit-when", &value()?)?),
            "--data" => data = Some(std::path::PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        node: node.ok_or("--node is required")?,
        listen: listen.ok_or("--listen is required")?,
        peers,
        ops,
        exit_when,
        data,
    })
}

fn remaining(node: &Node, tenant: &str) -> Option<i128> {
    node.read::<Budgets, _>("budgets", |m| m.get(&tenant.to_owned()))
        .ok()
        .flatten()
}

fn show(node: &Node) {
    let table = node
        .read::<Budgets, _>("budgets", |m| {
            m.keys()
                .filter_map(|t| m.get(t).map(|left| format!("  {t}: {left} left")))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    println!("{} tenants:", table.len());
    for line in table {
        println!("{line}");
    }
}

/// Applies one command; returns what to print.
fn run(node: &Node, op: &str, tenant: &str, n: u64) -> Result<String, sync::SyncError> {
    match op {
        "grant" => {
            node.write::<Budgets, _>("budgets", |m| m.apply(tenant.to_owned(), Count::Up(n)))?;
        }
        "take" => {
            let left = remaining(node, tenant).unwrap_or(0);
            if left < i128::from(n) {
                return Ok(format!("refused: {tenant} has {left} left, asked for {n}"));
            }
            node.write::<Budgets, _>("budgets", |m| m.apply(tenant.to_owned(), Count::Down(n)))?;
        }
        _ => {
            node.write::<Budgets, _>("budgets", |m| m.remove(&tenant.to_owned()))?;
        }
    }
    Ok(format!(
        "{tenant}: {} left",
        remaining(node, tenant).unwrap_or(0)
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse().map_err(|e| format!("{e}\nusage: budget --node ID --listen ADDR [--peer ID@ADDR]... [--grant TENANT=N]... [--take TENANT=N]... [--exit-when TENANT=N] [--data DIR]"))?;
    let mut config = NodeConfig::new(args.node.clone(), "budget-example", args.listen);
    config.engine.pull_interval = Duration::from_millis(500);
    let builder = Node::builder(config);
    let builder = match &args.data {
        Some(dir) => builder
            .storage(RedbStorage::open(dir.join("budget.redb"))?)?
            .durable("budgets", Budgets::new)?,
        // In memory: a fresh actor per process start (never reuse a dot).
        None => builder.replica("budgets", Budgets::new(ActorId(rand::random())))?,
    };
    let node = builder
        .start(Arc::new(StaticPeers::new(args.peers)))
        .await?;
    node.ready().await;
    println!("node {} listening on {}", args.node, node.local_addr());
    for (op, tenant, n) in &args.ops {
        println!("{}", run(&node, op, tenant, *n)?);
    }
    node.flush().await?;
    let mut events = node.subscribe();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        if let Some((tenant, n)) = &args.exit_when
            && remaining(&node, tenant) == Some(*n)
        {
            show(&node);
            // Keep serving a little so that peers can pull what we have.
            tokio::time::sleep(Duration::from_secs(2)).await;
            break;
        }
        tokio::select! {
            event = events.recv() => {
                if let Ok(Event::Changed { .. }) = event {
                    for tenant in node.take_changes::<Budgets>("budgets")? {
                        match remaining(&node, &tenant) {
                            Some(left) => println!("{tenant}: {left} left"),
                            None => println!("{tenant} was removed"),
                        }
                    }
                }
            }
            line = lines.next_line(), if stdin_open => {
                let Some(line) = line? else {
                    if args.exit_when.is_none() {
                        break;
                    }
                    stdin_open = false;
                    continue;
                };
                let words: Vec<&str> = line.split_whitespace().collect();
                let out = match words.as_slice() {
                    [op @ ("grant" | "take"), tenant, n] => match n.parse::<u64>() {
                        Ok(n) => run(&node, op, tenant, n)?,
                        Err(_) => format!("{n} is not a number"),
                    },
                    ["rm", tenant] => run(&node, "rm", tenant, 0)?,
                    ["ls"] => { show(&node); String::new() }
                    [] => String::new(),
                    _ => "commands: grant TENANT N | take TENANT N | rm TENANT | ls".into(),
                };
                if !out.is_empty() {
                    println!("{out}");
                }
                node.flush().await?;
            }
        }
    }
    node.shutdown().await;
    Ok(())
}
