//! Errors of the membership crate.

use std::{io, net::SocketAddr};

use thiserror::Error;

/// What can go wrong with membership.
#[derive(Debug, Error)]
pub enum MembershipError {
    /// The UDP socket could not be bound to this address (or its bound
    /// address could not be read); nothing was started.
    #[error("binding the SWIM socket to {addr}")]
    Bind {
        /// The address from [`MembershipConfig::gossip_listen`](crate::MembershipConfig::gossip_listen).
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A datagram was dropped (see the source for why). The membership
    /// state is unchanged; the datagram is counted in
    /// [`MembershipStats::garbage_datagrams`](crate::MembershipStats::garbage_datagrams).
    #[error("datagram from {from} dropped")]
    Rejected {
        /// Who sent it.
        from: SocketAddr,
        /// Why it was dropped.
        #[source]
        reason: DatagramError,
    },
    /// The driver task has stopped (after `leave` or `shutdown`).
    #[error("membership has stopped")]
    Stopped,
}

/// Why the core dropped a datagram ([`MembershipError::Rejected`]).
#[derive(Debug, Error)]
pub enum DatagramError {
    /// Larger than the core's datagram budget; foca never saw it.
    #[error("{len} bytes exceed the {max}-byte limit")]
    TooLarge {
        /// The datagram's length.
        len: usize,
        /// The limit ([`CoreConfig::max_datagram`](crate::CoreConfig::max_datagram)).
        max: usize,
    },
    /// foca refused it: undecodable, from ourselves, or otherwise malformed.
    #[error(transparent)]
    Refused(#[from] foca::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Membership, MembershipConfig};

    #[tokio::test]
    async fn a_busy_port_names_the_address_and_its_cause_once() {
        let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("a free port");
        let addr = taken.local_addr().expect("bound");
        let config = MembershipConfig::new("a", addr, "127.0.0.1:1".parse().expect("addr"));
        let error = match Membership::start(config).await {
            Ok(_) => panic!("the port is taken: start must fail"),
            Err(e) => e,
        };
        assert!(matches!(error, MembershipError::Bind { .. }), "{error:?}");
        let cause = std::error::Error::source(&error)
            .expect("the i/o error is the source")
            .to_string();
        testkit::assert_reads_once(&sync::error_chain(&error), &addr.to_string(), &cause);
    }

    #[test]
    fn a_dropped_datagram_says_why_once() {
        let error = MembershipError::Rejected {
            from: "10.0.0.9:1".parse().expect("addr"),
            reason: DatagramError::TooLarge {
                len: 1401,
                max: 1400,
            },
        };
        assert_eq!(
            sync::error_chain(&error),
            "datagram from 10.0.0.9:1 dropped: 1401 bytes exceed the 1400-byte limit"
        );
    }
}
