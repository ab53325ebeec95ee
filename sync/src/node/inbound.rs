//! The listener and inbound sessions: a bounded number of sessions, each
//! opened by a valid handshake and then answering requests in order.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_util::{codec::Framed, task::TaskTracker};

use super::Shared;
use crate::{
    Answer, CodecError, HANDSHAKE_MAX_FRAME_LENGTH, HelloOk, LogThrottle, MAGIC, Message,
    MessageCodec, NodeId, RejectReason, Reply, SyncError, negotiate,
};

/// Most connections being told `Busy` at once.
pub(super) const MAX_REJECTIONS_IN_FLIGHT: usize = 32;

/// "inbound session limit reached" is logged at most once per this
/// interval, with the number of connections refused since the last line.
const BUSY_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) async fn accept(shared: Arc<Shared>, listener: TcpListener, tasks: TaskTracker) {
    let sessions = Arc::new(Semaphore::new(shared.config.max_inbound_sessions));
    // Connections over the limit are told `Busy`, a bounded number at a
    // time; beyond that they are closed at once (a flood holds no
    // descriptors).
    let rejections = Arc::new(Semaphore::new(MAX_REJECTIONS_IN_FLIGHT));
    let mut busy = LogThrottle::new(BUSY_LOG_INTERVAL);
    loop {
        let (stream, addr) = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // e.g. out of file descriptors: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    shared.record_error();
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        match sessions.clone().try_acquire_owned() {
            Ok(permit) => {
                tasks.spawn(async move {
                    if let Err(e) = session(&shared, stream).await {
                        tracing::debug!(%addr, error = %crate::error::chain(&e), "inbound session closed");
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                shared.record_rejection();
                if let Some(suppressed) = busy.allow(std::time::Instant::now()) {
                    tracing::warn!(
                        %addr,
                        limit = shared.config.max_inbound_sessions,
                        suppressed,
                        "inbound session limit reached, rejecting (logged at most once per 10 s; \
                         `suppressed` refused since the last)"
                    );
                }
                let Ok(slot) = rejections.clone().try_acquire_owned() else {
                    drop(stream);
                    continue;
                };
                tasks.spawn(async move {
                    let _slot = slot;
                    let mut framed = Framed::new(
                        stream,
                        shared.codec(shared.config.max_frame_length, seal::Role::Server),
                    );
                    let reject = Message::Reject {
                        reason: RejectReason::Busy,
                    };
                    let _ =
                        tokio::time::timeout(shared.config.handshake_timeout, framed.send(reject))
                            .await;
                });
            }
        }
    }
}

async fn session(shared: &Shared, stream: TcpStream) -> Result<(), SyncError> {
    let config = &shared.config;
    let mut framed = Framed::new(
        stream,
        shared.codec(HANDSHAKE_MAX_FRAME_LENGTH, seal::Role::Server),
    );
    let from = match handshake(shared, &mut framed).await {
        Ok(from) => from,
        Err(e) => {
            shared.record_failure(&e);
            return Err(e);
        }
    };
    framed
        .codec_mut()
        .set_max_frame_length(config.max_frame_length);
    let mut decoded = framed.codec().bytes_decoded();
    loop {
        let next = tokio::select! {
            () = shared.shutdown.cancelled() => return Ok(()),
            next = tokio::time::timeout(config.idle_timeout, framed.next()) => next,
        };
        let request = match next {
            Err(_) => return Ok(()), // idle: the peer reconnects when needed
            Ok(None) => return Ok(()),
            Ok(Some(Ok(request))) => request,
            Ok(Some(Err(e))) => {
                tracing::warn!(peer = %from, error = %crate::error::chain(&e), "closing connection: bad frame");
                let e = SyncError::from(e);
                shared.record_failure(&e);
                return Err(e);
            }
        };
        let size = framed.codec().bytes_decoded() - decoded;
        decoded = framed.codec().bytes_decoded();
        if !matches!(request, Message::Pull { .. } | Message::Notify { .. }) {
            tracing::warn!(peer = %from, kind = request.kind(), "closing connection: not a request");
            shared.record_error();
            return Err(SyncError::Protocol(format!(
                "unexpected {}",
                request.kind()
            )));
        }
        let reply = {
            let mut engine = shared.engine();
            if let Some(replica) = request.replica().filter(|r| engine.is_registered(r)) {
                shared.record_received(replica, size);
            }
            engine.handle_request(std::time::Instant::now(), &from, request, &*shared.peers)
        };
        // A notification may have queued a pull.
        shared.wake.notify_one();
        let answer = match reply {
            Reply::Nothing => continue,
            Reply::Answer(answer) => answer,
            Reply::Parked(id) => parked(shared, id).await?,
        };
        send_answer(shared, &mut framed, answer).await?;
    }
}

/// Waits for parked pull `id`'s answer: taken from the next commit's cut,
/// given once that commit is durable (a commit takes milliseconds; a store
/// that keeps failing makes the session time out).
async fn parked(shared: &Shared, id: u64) -> Result<Answer, SyncError> {
    shared.persist.notify_one();
    let deadline = tokio::time::Instant::now() + shared.config.io_timeout;
    loop {
        let wait = shared.durable_changed.notified();
        tokio::pin!(wait);
        wait.as_mut().enable();
        if let Some(answer) = shared.engine().take_parked(id) {
            return Ok(answer);
        }
        tokio::select! {
            () = shared.shutdown.cancelled() => {
                shared.engine().cancel_parked(id);
                return Err(SyncError::Stopped);
            }
            () = &mut wait => {}
            () = tokio::time::sleep_until(deadline) => {
                shared.engine().cancel_parked(id);
                return Err(SyncError::Timeout);
            }
        }
    }
}

/// Sends every message of `answer`, encoding each part as it goes.
async fn send_answer(
    shared: &Shared,
    framed: &mut Framed<TcpStream, MessageCodec>,
    mut answer: Answer,
) -> Result<(), SyncError> {
    let replica = answer.replica().to_owned();
    let before = framed.codec().bytes_encoded();
    while let Some(message) = answer.next_message() {
        let message = message.inspect_err(|e| {
            tracing::error!(%replica, error = %crate::error::chain(e), "cannot encode an answer");
            shared.record_error();
        })?;
        tokio::time::timeout(shared.config.io_timeout, framed.send(message))
            .await
            .map_err(|_| SyncError::Timeout)??;
    }
    let sent = framed.codec().bytes_encoded() - before;
    let registered = shared.engine().is_registered(&replica);
    if registered {
        shared.record_sent(&replica, sent);
    }
    Ok(())
}

/// Reads the caller's `Hello` and accepts it, or rejects it (sending the
/// reason) and returns an error.
async fn handshake(
    shared: &Shared,
    framed: &mut Framed<TcpStream, MessageCodec>,
) -> Result<NodeId, SyncError> {
    let config = &shared.config;
    let first = tokio::time::timeout(config.handshake_timeout, framed.next())
        .await
        .map_err(|_| SyncError::Timeout)?;
    let rejection = match first {
        None => return Err(SyncError::Protocol("closed before hello".into())),
        Some(Err(e @ CodecError::Rejected(_))) => {
            // Not sealed with our key: no answer, not even a rejection.
            tracing::warn!(error = %crate::error::chain(&e), "closing connection: first frame did not open");
            return Err(e.into());
        }
        Some(Err(e)) => {
            tracing::warn!(error = %crate::error::chain(&e), "closing connection: bad first frame");
            RejectReason::NotAHello
        }
        Some(Ok(Message::Hello(hello))) => {
            let versions = config.versions;
            let chosen = negotiate(versions, (hello.min_version, hello.max_version));
            if hello.magic != MAGIC {
                RejectReason::NotAHello
            } else if hello.cluster != config.cluster {
                tracing::warn!(node = %hello.node, cluster = %hello.cluster, "rejecting a node of another cluster");
                RejectReason::WrongCluster {
                    expected: config.cluster.clone(),
                }
            } else if let Some(version) = chosen {
                let ok = Message::HelloOk(HelloOk {
                    node: config.node.clone(),
                    version,
                });
                tokio::time::timeout(config.io_timeout, framed.send(ok))
                    .await
                    .map_err(|_| SyncError::Timeout)??;
                return Ok(hello.node);
            } else {
                tracing::warn!(node = %hello.node, min = hello.min_version, max = hello.max_version, "rejecting a node with no common protocol version");
                RejectReason::UnsupportedVersion {
                    min: versions.0,
                    max: versions.1,
                }
            }
        }
        Some(Ok(_)) => RejectReason::NotAHello,
    };
    let reject = Message::Reject {
        reason: rejection.clone(),
    };
    let _ = tokio::time::timeout(config.io_timeout, framed.send(reject)).await;
    Err(SyncError::Rejected(rejection))
}
