//! Where an HTTP(S) check goes once its address is resolved and judged: the
//! URL, the `Host` header, and how the URL's authority reaches the judged
//! addresses ([`Route`]). Pure: nothing here resolves or connects.
//!
//! - Plain HTTP, and HTTPS without a TLS server name (an IP-literal address
//!   and no `host` name): one [`Target`] per resolved address, whose URL
//!   holds the address (`http://10.0.0.7:8080/health`).
//! - HTTPS with a TLS server name (the DNS name of `host`, else of the
//!   address): one [`Target`] whose URL holds the name and port
//!   (`https://origin.example:8443/health`, for SNI and the certificate
//!   name), to be connected to one of the judged addresses through the
//!   checker's [`PinTable`](super::pins::PinTable).
//!
//! A URL is parsed here, and refused (`io: …`) unless its authority is
//! exactly the address or name intended: a spec (unvalidated, or a parser
//! reading a name as an IP, like `0x7f.1`) can never aim a request at an
//! address that was not judged.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
};

use reqwest::Url;

use super::{
    failure::{Failure, short},
    keep_alive::Endpoint,
};
use crate::spec::{Kind, OriginSpec};

/// Where one HTTP(S) request of a check goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    /// The URL requested; its authority is the [`Route`]'s.
    pub(super) url: Url,
    /// The `Host` header sent.
    pub(super) host: String,
    /// How the URL's authority reaches a judged address.
    pub(super) route: Route,
}

/// How the authority of a [`Target`]'s URL reaches the addresses judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// The URL holds this address, which is connected to as is.
    Addr(SocketAddr),
    /// The URL holds `name` and `port`; `name` must be pinned to `addrs`
    /// for the request (see [`PinTable`](super::pins::PinTable)).
    Name {
        /// The name as the URL holds it: lowercase (IDNA-encoded), what
        /// the resolver is asked for and the TLS server name.
        name: String,
        /// The port of the URL and of every one of `addrs`.
        port: u16,
        /// The judged addresses, in resolved order (at least one).
        addrs: Vec<SocketAddr>,
    },
}

impl Target {
    /// The authority of the URL, which hyper's pool keys connections by.
    pub(super) fn endpoint(&self) -> Endpoint {
        match &self.route {
            Route::Addr(addr) => Endpoint::Addr(*addr),
            Route::Name { name, port, .. } => Endpoint::Name {
                name: name.clone(),
                port: *port,
            },
        }
    }
}

/// The `Host` header of an HTTP(S) spec: its `host`, else its address as
/// the URL `scheme://address/` writes it (a name lowercase, an IPv6 address
/// compressed, a default port left out) — what reqwest sent when it was
/// given that URL. Pure.
pub(super) fn host_header(spec: &OriginSpec) -> Result<String, Failure> {
    if let Some(host) = &spec.host {
        return Ok(host.clone());
    }
    let scheme = scheme(spec);
    let invalid = |e: &dyn fmt::Display| {
        Failure::Io(short(&format!("invalid address {:?}: {e}", spec.address)))
    };
    let url = Url::parse(&format!("{scheme}://{}/", spec.address)).map_err(|e| invalid(&e))?;
    let host = url.host_str().ok_or_else(|| invalid(&"no host"))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

fn scheme(spec: &OriginSpec) -> &'static str {
    if spec.kind == Kind::Https {
        "https"
    } else {
        "http"
    }
}

/// The requests of an HTTP(S) spec whose `address` resolved to `addrs`
/// (every one judged), with `Host: host`, to be tried in order until one
/// connects: one per address, or, for HTTPS with a TLS server name, one per
/// port (one in practice: the addresses of `name:port` share its port)
/// holding all of its addresses. Pure.
///
/// # Errors
///
/// `io: …` if a URL would not go to the address or name intended (a path
/// not starting with `/`, a name that a URL reads as an IP address).
pub(super) fn targets(
    spec: &OriginSpec,
    host: &str,
    addrs: &[SocketAddr],
) -> Result<Vec<Target>, Failure> {
    let server_name = (spec.kind == Kind::Https)
        .then(|| {
            spec.host
                .as_deref()
                .and_then(host_domain)
                .or_else(|| name_of(spec.address_host()))
        })
        .flatten();
    let Some(domain) = server_name else {
        return addrs
            .iter()
            .map(|&addr| {
                let url = url(&format!("{}://{addr}{}", scheme(spec), spec.path))?;
                match url_ip(&url) {
                    Some(ip)
                        if ip == addr.ip() && url.port_or_known_default() == Some(addr.port()) =>
                    {
                        Ok(Target {
                            url,
                            host: host.to_owned(),
                            route: Route::Addr(addr),
                        })
                    }
                    _ => Err(misdirected(&url)),
                }
            })
            .collect();
    };
    let mut targets: Vec<Target> = Vec::new();
    for &addr in addrs {
        let same_port = targets.iter_mut().find_map(|t| match &mut t.route {
            Route::Name { port, addrs, .. } if *port == addr.port() => Some(addrs),
            _ => None,
        });
        if let Some(addrs) = same_port {
            addrs.push(addr);
            continue;
        }
        let port = addr.port();
        let url = url(&format!("https://{domain}:{port}{}", spec.path))?;
        let name = match url.host_str() {
            Some(name) if url_ip(&url).is_none() && url.port_or_known_default() == Some(port) => {
                name.to_owned()
            }
            _ => return Err(misdirected(&url)),
        };
        targets.push(Target {
            url,
            host: host.to_owned(),
            route: Route::Name {
                name,
                port,
                addrs: vec![addr],
            },
        });
    }
    Ok(targets)
}

/// `s` parsed as a URL, or `io: invalid URL …`.
fn url(s: &str) -> Result<Url, Failure> {
    Url::parse(s).map_err(|e| Failure::Io(short(&format!("invalid URL {s:?}: {e}"))))
}

/// The IP address a URL's host is, if it is one.
fn url_ip(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// The failure of a URL whose authority is not the one intended.
fn misdirected(url: &Url) -> Failure {
    Failure::Io(short(&format!(
        "the URL {:?} would not go to the resolved address",
        url.as_str()
    )))
}

/// The DNS name of a `Host` value (a trailing `:port` removed), or `None`
/// if it is an IP literal (which cannot be a TLS server name).
fn host_domain(host: &str) -> Option<&str> {
    if host.starts_with('[') {
        return None;
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    name_of(name)
}

/// `name` if it is a DNS name (not empty, not an IP literal).
fn name_of(name: &str) -> Option<&str> {
    if name.is_empty() || name.parse::<IpAddr>().is_ok() {
        None
    } else {
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: Kind, address: &str, host: Option<&str>) -> OriginSpec {
        let mut spec = OriginSpec::new(address);
        spec.kind = kind;
        spec.path = "/health?x=1".into();
        spec.host = host.map(str::to_owned);
        spec
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    /// The targets of `spec` resolved to `to`.
    fn targets_of(spec: &OriginSpec, to: &[&str]) -> Vec<Target> {
        let host = host_header(spec).expect("a valid host");
        let addrs: Vec<SocketAddr> = to.iter().map(|a| addr(a)).collect();
        targets(spec, &host, &addrs).expect("valid targets")
    }

    /// The only target of `spec` resolved to `to`.
    fn target_of(spec: &OriginSpec, to: &str) -> Target {
        let mut targets = targets_of(spec, &[to]);
        assert_eq!(targets.len(), 1, "{targets:?}");
        targets.remove(0)
    }

    fn by_name(name: &str, addrs: &[&str]) -> Route {
        let addrs: Vec<SocketAddr> = addrs.iter().map(|a| addr(a)).collect();
        Route::Name {
            name: name.into(),
            port: addrs[0].port(),
            addrs,
        }
    }

    #[test]
    fn urls_go_to_the_resolved_address() {
        let t = target_of(
            &spec(Kind::Http, "10.0.0.1:8080", Some("example.com")),
            "10.0.0.1:8080",
        );
        assert_eq!(t.url.as_str(), "http://10.0.0.1:8080/health?x=1");
        assert_eq!(t.host, "example.com");
        assert_eq!(t.route, Route::Addr(addr("10.0.0.1:8080")));
        // A name is never in the URL of plain HTTP: the resolved address is.
        let t = target_of(&spec(Kind::Http, "origin.internal:80", None), "[::1]:80");
        assert_eq!(t.url.as_str(), "http://[::1]/health?x=1");
        assert_eq!(t.host, "origin.internal");
        assert_eq!(t.route, Route::Addr(addr("[::1]:80")));
        assert_eq!(
            target_of(&spec(Kind::Https, "[::1]:8443", None), "[::1]:8443")
                .url
                .as_str(),
            "https://[::1]:8443/health?x=1"
        );
        // One target per address, tried in order.
        let all = targets_of(
            &spec(Kind::Http, "origin.internal:80", None),
            &["10.0.0.1:80", "[::ffff:10.0.0.2]:80"],
        );
        let routes: Vec<Route> = all.into_iter().map(|t| t.route).collect();
        assert_eq!(
            routes,
            [
                Route::Addr(addr("10.0.0.1:80")),
                Route::Addr(addr("[::ffff:10.0.0.2]:80"))
            ]
        );
    }

    #[test]
    fn host_headers_are_what_the_url_of_the_address_gave() {
        let host = |kind, address: &str| host_header(&spec(kind, address, None)).expect("valid");
        assert_eq!(
            host(Kind::Http, "origin.internal:8080"),
            "origin.internal:8080"
        );
        assert_eq!(host(Kind::Http, "Origin.Internal:80"), "origin.internal");
        assert_eq!(host(Kind::Http, "10.0.0.1:443"), "10.0.0.1:443");
        assert_eq!(host(Kind::Https, "10.0.0.1:443"), "10.0.0.1");
        assert_eq!(host(Kind::Https, "[0:0::1]:8443"), "[::1]:8443");
        assert_eq!(
            host_header(&spec(Kind::Http, "10.0.0.1:80", Some("Example.com:8080"))),
            Ok("Example.com:8080".into()),
            "a host is sent as written"
        );
        assert!(matches!(
            host_header(&spec(Kind::Http, "exa mple:80", None)),
            Err(Failure::Io(_))
        ));
    }

    #[test]
    fn https_keeps_its_server_name_routed_to_the_resolved_addresses() {
        let t = target_of(
            &spec(Kind::Https, "10.0.0.1:8443", Some("Example.COM:8443")),
            "10.0.0.1:8443",
        );
        assert_eq!(t.url.as_str(), "https://example.com:8443/health?x=1");
        assert_eq!(t.host, "Example.COM:8443");
        assert_eq!(t.route, by_name("example.com", &["10.0.0.1:8443"]));
        assert_eq!(
            t.endpoint(),
            Endpoint::Name {
                name: "example.com".into(),
                port: 8443
            }
        );
        // A name in the address is the server name when `host` has none,
        // routed to every address it resolved to, in one target.
        for host in [None, Some("10.0.0.2"), Some("[::1]:443")] {
            let all = targets_of(
                &spec(Kind::Https, "origin.internal:443", host),
                &["10.0.0.9:443", "[::1]:443"],
            );
            assert_eq!(all.len(), 1, "{host:?}");
            assert_eq!(
                all[0].url.as_str(),
                "https://origin.internal/health?x=1",
                "{host:?}"
            );
            assert_eq!(
                all[0].route,
                by_name("origin.internal", &["10.0.0.9:443", "[::1]:443"]),
                "{host:?}"
            );
        }
        // `host`'s name wins over the address's.
        let t = target_of(
            &spec(Kind::Https, "origin.internal:443", Some("example.com")),
            "10.0.0.9:443",
        );
        assert_eq!(t.route, by_name("example.com", &["10.0.0.9:443"]));
        // No name anywhere: the URL holds the address.
        for host in [None, Some("10.0.0.2"), Some("[::1]:443")] {
            let t = target_of(&spec(Kind::Https, "10.0.0.1:443", host), "10.0.0.1:443");
            assert_eq!(t.url.as_str(), "https://10.0.0.1/health?x=1");
            assert_eq!(t.route, Route::Addr(addr("10.0.0.1:443")));
        }
    }

    #[test]
    fn a_url_that_would_go_elsewhere_is_refused() {
        let to = [addr("10.0.0.1:80")];
        // A path that moves the authority (never valid in a checked spec).
        let mut moved = spec(Kind::Http, "10.0.0.1:80", None);
        moved.path = "@169.254.169.254/".into();
        assert!(matches!(
            targets(&moved, "10.0.0.1", &to),
            Err(Failure::Io(_))
        ));
        // A `host` that is not an IP literal, yet that a URL reads as one.
        for host in ["0xa9.0xfe.0xa9.0xfe", "2852039166"] {
            let odd = spec(Kind::Https, "10.0.0.1:443", Some(host));
            assert!(
                matches!(
                    targets(&odd, host, &[addr("10.0.0.1:443")]),
                    Err(Failure::Io(_))
                ),
                "{host}"
            );
        }
    }
}
