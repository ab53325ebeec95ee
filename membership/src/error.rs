//! Errors of the membership crate.

use std::{io, net::SocketAddr};

use thiserror::Error;

/// What can go wrong with membership.
#[derive(Debug, Error)]
pub enum MembershipError {
    /// The UDP socket could not be bound or used.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// A datagram was dropped: oversize, undecodable, from ourselves, or
    /// otherwise refused by foca. The membership state is unchanged.
    #[error("datagram from {from} dropped: {reason}")]
    Rejected {
        /// Who sent it.
        from: SocketAddr,
        /// Why it was dropped.
        reason: String,
    },
    /// The driver task has stopped (after `leave` or `shutdown`).
    #[error("membership has stopped")]
    Stopped,
}
