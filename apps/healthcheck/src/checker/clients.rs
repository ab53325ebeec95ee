//! [`Clients`]: the checker's HTTP clients, shared by all its checks:
//! keep-alive or closing, verifying certificates or not, HTTP/1.1 or
//! HTTP/2; and, for specs that name TLS files, one set per version of
//! those files on disk.
//!
//! Eight base clients whatever the number of origins: a URL holds either
//! the judged address or a name that the checks pin in the [`PinTable`],
//! the resolver of every one of them; a client never resolves a name any
//! other way. A spec with a CA file or a client certificate needs clients
//! of its own (the roots and the identity are set per client): they are
//! built when first needed and kept for the files' current stamp, at most
//! [`MAX_TLS_CLIENTS`] of them (the least recently used go first; a check
//! in flight keeps its client alive).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use reqwest::Client;

use super::{POOL_IDLE_TIMEOUT, pins::PinTable};
use crate::spec::tls_files::{TlsMaterial, TlsStamp};

/// Most clients kept for specs that name TLS files.
pub(super) const MAX_TLS_CLIENTS: usize = 256;

/// How a client is configured, besides its TLS files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Flavour {
    /// Keeps one idle connection per pool key (for an admitted
    /// [`PoolKey`](super::keep_alive::PoolKey)), or closes each after its
    /// request.
    pub(super) pooled: bool,
    /// Verifies certificates. Plain HTTP always asks for `true`, so that it
    /// has one pool.
    pub(super) tls_verify: bool,
    /// HTTP/2 only (ALPN `h2`), or HTTP/1.1 only.
    pub(super) http2: bool,
}

impl Flavour {
    fn index(self) -> usize {
        usize::from(self.pooled) << 2 | usize::from(self.tls_verify) << 1 | usize::from(self.http2)
    }
}

/// Clients for TLS files: by stamp and flavour, each with when it was last
/// used (a counter).
type FileClients = HashMap<(TlsStamp, Flavour), (u64, Client)>;

/// The shared clients of a checker.
#[derive(Debug)]
pub(super) struct Clients {
    pins: Arc<PinTable>,
    base: Vec<Client>,
    /// Clients for TLS files, by stamp and flavour, with a use counter for
    /// the eviction of the least recently used.
    with_files: Mutex<(u64, FileClients)>,
}

impl Clients {
    /// The base clients, all resolving through `pins`. Loads the root
    /// certificates (once per verifying client).
    pub(super) fn new(pins: &Arc<PinTable>) -> Result<Clients, reqwest::Error> {
        let mut base = Vec::with_capacity(8);
        for index in 0..8usize {
            let flavour = Flavour {
                pooled: index & 4 != 0,
                tls_verify: index & 2 != 0,
                http2: index & 1 != 0,
            };
            debug_assert_eq!(flavour.index(), index);
            base.push(build(flavour, None, pins)?);
        }
        Ok(Clients {
            pins: Arc::clone(pins),
            base,
            with_files: Mutex::new((0, HashMap::new())),
        })
    }

    /// The base client of `flavour`.
    pub(super) fn get(&self, flavour: Flavour) -> &Client {
        &self.base[flavour.index()]
    }

    /// The client of `flavour` for the TLS files stamped `stamp`; built with
    /// `material()` if there is none yet (an error is the reason the check
    /// fails).
    pub(super) fn with_files(
        &self,
        stamp: &TlsStamp,
        flavour: Flavour,
        material: impl FnOnce() -> Result<TlsMaterial, String>,
    ) -> Result<Client, String> {
        let key = (stamp.clone(), flavour);
        {
            let mut guard = self
                .with_files
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let (clock, clients) = &mut *guard;
            *clock += 1;
            if let Some((used, client)) = clients.get_mut(&key) {
                *used = *clock;
                return Ok(client.clone());
            }
        }
        // Built outside the lock: reading files and roots takes a while.
        let material = material()?;
        let client = build(flavour, Some(&material), &self.pins)
            .map_err(|e| format!("cannot use the TLS files: {e}"))?;
        let mut guard = self
            .with_files
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (clock, clients) = &mut *guard;
        while clients.len() >= MAX_TLS_CLIENTS {
            let Some(oldest) = clients
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            clients.remove(&oldest);
        }
        clients.insert(key, (*clock, client.clone()));
        Ok(client)
    }

    /// How many clients for TLS files are kept.
    #[cfg(test)]
    pub(super) fn with_files_len(&self) -> usize {
        self.with_files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .len()
    }
}

/// A client: no proxy (checks go straight to the origin), no redirects (a
/// 3xx is a status to judge), names resolved by `pins` only, optionally
/// without certificate verification, HTTP/1.1 only or HTTP/2 only. `pooled`
/// keeps one idle connection per pool key for [`POOL_IDLE_TIMEOUT`];
/// otherwise each connection is closed after its request. With `material`,
/// only its CA is trusted (if it has one) and its identity is presented.
fn build(
    flavour: Flavour,
    material: Option<&TlsMaterial>,
    pins: &Arc<PinTable>,
) -> Result<Client, reqwest::Error> {
    let mut builder = Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(!flavour.tls_verify)
        .tcp_nodelay(true)
        .dns_resolver(Arc::clone(pins))
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(usize::from(flavour.pooled));
    builder = if flavour.http2 {
        builder.http2_prior_knowledge()
    } else {
        builder.http1_only()
    };
    if let Some(material) = material {
        if let Some(ca) = &material.ca {
            builder = builder.tls_built_in_root_certs(false);
            for cert in ca {
                builder = builder.add_root_certificate(reqwest::Certificate::from_der(cert)?);
            }
        }
        if let Some(pem) = &material.identity_pem {
            builder = builder.identity(reqwest::Identity::from_pem(pem)?);
        }
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::TargetPolicy;

    /// However many versions of TLS files checks see, at most
    /// MAX_TLS_CLIENTS clients are kept; the most recently used stay.
    #[test]
    fn clients_for_tls_files_are_bounded() {
        let pins = Arc::new(PinTable::new(Arc::new(TargetPolicy::default())));
        let clients = Clients::new(&pins).expect("clients");
        let flavour = Flavour {
            pooled: true,
            tls_verify: true,
            http2: false,
        };
        let none = || {
            Ok(TlsMaterial {
                ca: None,
                identity_pem: None,
            })
        };
        let first = TlsStamp::of("ca.pem", 0);
        clients.with_files(&first, flavour, none).expect("built");
        for len in 1..=(MAX_TLS_CLIENTS as u64 + 10) {
            clients
                .with_files(&TlsStamp::of("ca.pem", len), flavour, none)
                .expect("built");
            // The first stays in use: it is never the least recent.
            clients
                .with_files(&first, flavour, || Err("rebuilt".into()))
                .expect("kept");
        }
        assert_eq!(clients.with_files_len(), MAX_TLS_CLIENTS);
        // A stamp evicted long ago is built again.
        let rebuilt =
            clients.with_files(
                &TlsStamp::of("ca.pem", 1),
                flavour,
                || Err("rebuilt".into()),
            );
        assert_eq!(rebuilt.err().as_deref(), Some("rebuilt"));
    }
}
