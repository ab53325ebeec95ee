//! One persistent outbound connection per peer: connect lazily, say hello,
//! send requests in order, hand answers to the engine; on any failure, drop
//! the connection and reconnect with exponential backoff.

use std::{sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use tokio::{net::TcpStream, sync::mpsc, time::Instant};
use tokio_util::codec::Framed;

use super::Shared;
use crate::{HANDSHAKE_MAX_FRAME_LENGTH, Hello, MAGIC, Message, MessageCodec, Peer, SyncError};

pub(super) async fn run(shared: Arc<Shared>, peer: Peer, mut requests: mpsc::Receiver<Message>) {
    let mut backoff = shared.config.reconnect_backoff_min;
    // A request that could not be sent yet: it is retried after reconnecting.
    let mut unsent: Option<Message> = None;
    loop {
        // Connect only when there is something to send.
        let first = match unsent.take() {
            Some(request) => request,
            None => tokio::select! {
                () = shared.shutdown.cancelled() => return,
                next = requests.recv() => match next {
                    Some(request) => request,
                    None => return, // the peer left
                },
            },
        };
        match connect(&shared, &peer).await {
            Ok(framed) => {
                backoff = shared.config.reconnect_backoff_min;
                shared.peer_verified(&peer.id, true);
                let served = serve(&shared, &peer, framed, first, &mut requests).await;
                shared.engine().handle_connection_lost(&peer.id);
                match served {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::debug!(peer = %peer.id, error = %crate::error::chain(&e), "connection lost");
                        shared.record_failure(&e);
                    }
                }
            }
            Err(e) => {
                shared.peer_verified(&peer.id, false);
                let rejected = matches!(
                    &e,
                    SyncError::Rejected(_) | SyncError::Codec(crate::CodecError::Rejected(_))
                );
                shared.engine().handle_peer_failed(&peer.id, rejected);
                shared.wake.notify_one();
                match &e {
                    SyncError::Rejected(reason) => {
                        tracing::warn!(peer = %peer.id, addr = %peer.addr, %reason, "peer rejected us");
                        shared.record_rejection();
                    }
                    _ => {
                        tracing::debug!(peer = %peer.id, addr = %peer.addr, error = %crate::error::chain(&e), "cannot connect");
                        shared.record_failure(&e);
                    }
                }
                unsent = Some(first);
                tokio::select! {
                    () = shared.shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(shared.config.reconnect_backoff_max);
            }
        }
    }
}

type Connection = Framed<TcpStream, MessageCodec>;

/// Connects and completes the handshake within the handshake timeout.
async fn connect(shared: &Shared, peer: &Peer) -> Result<Connection, SyncError> {
    let (framed, node) = handshake(shared, peer.addr).await?;
    if node != peer.id {
        return Err(SyncError::Protocol(format!(
            "expected node {}, reached {node}",
            peer.id
        )));
    }
    Ok(framed)
}

/// Connects to `addr`, says hello and returns the connection and who
/// answered, within the handshake timeout.
pub(super) async fn handshake(
    shared: &Shared,
    addr: std::net::SocketAddr,
) -> Result<(Connection, crate::NodeId), SyncError> {
    let config = &shared.config;
    let handshake = async {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut framed = Framed::new(
            stream,
            shared.codec(HANDSHAKE_MAX_FRAME_LENGTH, seal::Role::Client),
        );
        framed
            .send(Message::Hello(Hello {
                magic: MAGIC,
                max_version: config.versions.1,
                cluster: config.cluster.clone(),
                node: config.node.clone(),
                min_version: config.versions.0,
            }))
            .await?;
        match framed.next().await {
            Some(Ok(Message::HelloOk(ok))) => {
                if ok.version < config.versions.0 || ok.version > config.versions.1 {
                    return Err(SyncError::Protocol(format!(
                        "peer chose protocol version {}, outside {}..={}",
                        ok.version, config.versions.0, config.versions.1
                    )));
                }
                framed
                    .codec_mut()
                    .set_max_frame_length(config.max_frame_length);
                Ok((framed, ok.node))
            }
            Some(Ok(Message::Reject { reason })) => Err(SyncError::Rejected(reason)),
            Some(Ok(other)) => Err(SyncError::Protocol(format!(
                "expected hello_ok, got {}",
                other.kind()
            ))),
            Some(Err(e)) => Err(e.into()),
            None => Err(SyncError::Protocol("closed during handshake".into())),
        }
    };
    tokio::time::timeout(config.handshake_timeout, handshake)
        .await
        .map_err(|_| SyncError::Timeout)?
}

/// Sends requests and handles answers until the connection fails (`Err`) or
/// the node shuts down or the peer leaves (`Ok`).
async fn serve(
    shared: &Shared,
    peer: &Peer,
    mut framed: Connection,
    first: Message,
    requests: &mut mpsc::Receiver<Message>,
) -> Result<(), SyncError> {
    let io_timeout = shared.config.io_timeout;
    let mut outstanding: usize = 0;
    let mut answer_due = Instant::now();
    // The handshake's frames are not attributed to a replica.
    let mut decoded = framed.codec().bytes_decoded();
    send(
        shared,
        &mut framed,
        first,
        &mut outstanding,
        &mut answer_due,
        io_timeout,
    )
    .await?;
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return Ok(()),
            next = requests.recv() => match next {
                Some(request) => {
                    send(shared, &mut framed, request, &mut outstanding, &mut answer_due, io_timeout).await?;
                }
                None => return Ok(()),
            },
            frame = framed.next() => {
                let answer = match frame {
                    Some(Ok(answer)) => answer,
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(SyncError::Protocol("closed by peer".into())),
                };
                let size = framed.codec().bytes_decoded() - decoded;
                decoded = framed.codec().bytes_decoded();
                // A chunk is part of an answer still coming.
                if !matches!(answer, Message::Chunk { .. }) {
                    outstanding = outstanding.saturating_sub(1);
                }
                answer_due = Instant::now() + io_timeout;
                let result = {
                    let mut engine = shared.engine();
                    if let Some(replica) = answer.replica().filter(|r| engine.is_registered(r)) {
                        shared.record_received(replica, size);
                    }
                    engine.handle_response(&peer.id, answer)
                };
                if let Err(e) = result {
                    tracing::warn!(peer = %peer.id, error = %crate::error::chain(&e), "dropping a bad answer");
                }
                shared.wake.notify_one();
                shared.persist.notify_one();
            }
            () = tokio::time::sleep_until(answer_due), if outstanding > 0 => {
                return Err(SyncError::Timeout);
            }
        }
    }
}

async fn send(
    shared: &Shared,
    framed: &mut Connection,
    request: Message,
    outstanding: &mut usize,
    answer_due: &mut Instant,
    io_timeout: Duration,
) -> Result<(), SyncError> {
    let replica = request.replica().map(str::to_owned);
    let is_pull = matches!(request, Message::Pull { .. });
    let before = framed.codec().bytes_encoded();
    tokio::time::timeout(io_timeout, framed.send(request))
        .await
        .map_err(|_| SyncError::Timeout)??;
    let sent = framed.codec().bytes_encoded() - before;
    if let Some(replica) = replica {
        shared.record_sent(&replica, sent);
    }
    if is_pull {
        if *outstanding == 0 {
            *answer_due = Instant::now() + io_timeout;
        }
        *outstanding += 1;
    }
    Ok(())
}
