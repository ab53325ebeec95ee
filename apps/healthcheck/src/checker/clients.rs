//! [`Clients`]: the checker's four HTTP clients, shared by all its checks:
//! keep-alive or closing, each verifying certificates or not.
//!
//! Four whatever the number of origins: a URL holds either the judged
//! address or a name that the checks pin in the [`PinTable`], the resolver
//! of every one of them; a client never resolves a name any other way.

use std::sync::Arc;

use reqwest::Client;

use super::{POOL_IDLE_TIMEOUT, pins::PinTable};

/// The shared clients of a checker.
#[derive(Debug)]
pub(super) struct Clients {
    pooled_verified: Client,
    pooled_unverified: Client,
    closing_verified: Client,
    closing_unverified: Client,
}

impl Clients {
    /// The four clients, all resolving through `pins`. Loads the root
    /// certificates (once per verifying client).
    pub(super) fn new(pins: &Arc<PinTable>) -> Result<Clients, reqwest::Error> {
        Ok(Clients {
            pooled_verified: build(true, true, pins)?,
            pooled_unverified: build(false, true, pins)?,
            closing_verified: build(true, false, pins)?,
            closing_unverified: build(false, false, pins)?,
        })
    }

    /// The client that keeps its connections alive (`pooled`: for an
    /// admitted [`PoolKey`](super::keep_alive::PoolKey)) or closes each
    /// after its request, verifying certificates or not. Plain HTTP should
    /// always ask for `tls_verify`, so that it has one pool.
    pub(super) fn get(&self, pooled: bool, tls_verify: bool) -> &Client {
        match (pooled, tls_verify) {
            (true, true) => &self.pooled_verified,
            (true, false) => &self.pooled_unverified,
            (false, true) => &self.closing_verified,
            (false, false) => &self.closing_unverified,
        }
    }
}

/// A client: no proxy (checks go straight to the origin), no redirects (a
/// 3xx is a status to judge), names resolved by `pins` only, optionally
/// without certificate verification. `pooled` keeps one idle connection
/// per pool key for [`POOL_IDLE_TIMEOUT`]; otherwise each connection is
/// closed after its request.
fn build(tls_verify: bool, pooled: bool, pins: &Arc<PinTable>) -> Result<Client, reqwest::Error> {
    Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(!tls_verify)
        .tcp_nodelay(true)
        .dns_resolver(Arc::clone(pins))
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(usize::from(pooled))
        .build()
}
