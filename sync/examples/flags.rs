//! Replicates a table of feature flags between processes.
//!
//! Terminal 1:
//!     cargo run -p sync --example flags -- --node a --listen 127.0.0.1:7101 --peer b@127.0.0.1:7102
//! Terminal 2:
//!     cargo run -p sync --example flags -- --node b --listen 127.0.0.1:7102 --peer a@127.0.0.1:7101
//!
//! Then type `on dark-mode`, `off dark-mode`, `rm dark-mode` or `ls` in
//! either; the other prints each change as it arrives. Concurrent writes to
//! one flag resolve by the later timestamp (`LastWriterWins`).
//! `--set name=on|off` writes before reading stdin; `--exit-when N` exits
//! once N flags are visible (handy in scripts). `--data DIR` keeps the flags
//! (and the node's actor) in `DIR/flags.redb` across restarts; each change
//! is acknowledged once durable. Without it they live in memory and a
//! restart takes a fresh actor.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crdt::{ActorId, LastWriterWins, ORMap, Timestamped};
use serde::{Deserialize, Serialize};
use sync::{Event, Node, NodeConfig, NodeId, Peer, StaticPeers, storage::RedbStorage};
use tokio::io::{AsyncBufReadExt, BufReader};

/// One flag: on or off, when, and by whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Flag {
    on: bool,
    at_ms: u64,
    by: String,
}

impl Timestamped for Flag {
    type Time = u64;
    fn timestamp(&self) -> u64 {
        self.at_ms
    }
}

type Flags = ORMap<String, Flag, LastWriterWins>;

struct Args {
    node: String,
    listen: SocketAddr,
    peers: Vec<Peer>,
    set: Vec<(String, bool)>,
    exit_when: Option<usize>,
    data: Option<std::path::PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut node, mut listen, mut peers, mut set, mut exit_when, mut data) =
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
            "--set" => {
                let v = value()?;
                let (name, state) = v.split_once('=').ok_or("--set takes name=on|off")?;
                set.push((name.to_owned(), state == "on"));
            }
            "--exit-when" => {
                exit_when = Some(value()?.parse().map_err(|e| format!("--exit-when: {e}"))?)
            }
            "--data" => data = Some(std::path::PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        node: node.ok_or("--node is required")?,
        listen: listen.ok_or("--listen is required")?,
        peers,
        set,
        exit_when,
        data,
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn show(node: &Node) {
    let table = node
        .read::<Flags, _>("flags", |m| {
            m.iter()
                .map(|(k, f)| format!("  {k} = {} (by {})", if f.on { "on" } else { "off" }, f.by))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    println!("{} flags:", table.len());
    for line in table {
        println!("{line}");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse().map_err(|e| format!("{e}\nusage: flags --node ID --listen ADDR [--peer ID@ADDR]... [--set NAME=on|off]... [--exit-when N] [--data DIR]"))?;
    let mut config = NodeConfig::new(args.node.clone(), "flags-example", args.listen);
    config.engine.pull_interval = Duration::from_millis(500);
    let builder = Node::builder(config);
    let builder = match &args.data {
        // Durable: the store keeps the flags and the node's actor.
        Some(dir) => builder
            .storage(RedbStorage::open(dir.join("flags.redb"))?)?
            .durable("flags", Flags::new)?,
        // In memory: a fresh actor id per process start (a replica must
        // never reuse a dot).
        None => builder.replica("flags", Flags::new(ActorId(rand::random())))?,
    };
    let node = builder
        .start(Arc::new(StaticPeers::new(args.peers)))
        .await?;
    // A restarted node writes once its actor is verified with its peers.
    node.ready().await;
    println!("node {} listening on {}", args.node, node.local_addr());
    let me = args.node.clone();
    let write = |name: String, on: Option<bool>| {
        let by = me.clone();
        node.write::<Flags, _>("flags", |m| match on {
            Some(on) => {
                m.insert(
                    name,
                    Flag {
                        on,
                        at_ms: now_ms(),
                        by,
                    },
                );
            }
            None => {
                m.remove(&name);
            }
        })
    };
    for (name, on) in args.set {
        write(name, Some(on))?;
    }
    node.flush().await?;
    let mut events = node.subscribe();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let visible = |node: &Node| node.read::<Flags, _>("flags", |m| m.len()).unwrap_or(0);
    let mut stdin_open = true;
    loop {
        if args.exit_when.is_some_and(|n| visible(&node) >= n) {
            show(&node);
            // Keep serving a little so that peers can pull what we have.
            tokio::time::sleep(Duration::from_secs(2)).await;
            break;
        }
        tokio::select! {
            event = events.recv() => {
                if let Ok(Event::Changed { .. }) = event {
                    for name in node.take_changes::<Flags>("flags")? {
                        let state = node.read::<Flags, _>("flags", |m| m.get(&name).cloned())?;
                        match state {
                            Some(f) => println!("{name} is now {} (by {})", if f.on { "on" } else { "off" }, f.by),
                            None => println!("{name} was removed"),
                        }
                    }
                }
            }
            line = lines.next_line(), if stdin_open => {
                let Some(line) = line? else {
                    // End of input: stay up only when told to wait for flags.
                    if args.exit_when.is_none() {
                        break;
                    }
                    stdin_open = false;
                    continue;
                };
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    ["on", name] => write((*name).to_owned(), Some(true))?,
                    ["off", name] => write((*name).to_owned(), Some(false))?,
                    ["rm", name] => write((*name).to_owned(), None)?,
                    ["ls"] => show(&node),
                    [] => {}
                    _ => println!("commands: on NAME | off NAME | rm NAME | ls"),
                }
                node.flush().await?;
            }
        }
    }
    node.shutdown().await;
    Ok(())
}
