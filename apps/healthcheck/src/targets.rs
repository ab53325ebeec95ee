//! [`TargetPolicy`]: where checks may be aimed — allow and deny lists of
//! address ranges, applied to every address a target resolves to.
//!
//! Anyone with a write token chooses the `address` of a check, and every
//! agent then connects there: without a policy that is a blind SSRF (cf.
//! kubernetes#99425), able to reach a cloud's metadata service at
//! 169.254.169.254 or the agent's own API. The policy is a pure core: it
//! judges socket addresses and never resolves or connects. Its two callers
//! drive it:
//!
//! - the API, at PUT, with [`TargetPolicy::check_spec`]: an IP-literal
//!   address is judged directly, a name is resolved (for at most
//!   [`PUT_RESOLVE_TIMEOUT`]) and each address judged; a denial is a 400
//!   naming the field `address`. A name that does not resolve yet is
//!   accepted: the checks will judge it when it does.
//! - the [`Checker`](crate::checker::Checker), at every check: it resolves
//!   the target itself, judges every address, and connects only to an
//!   address it judged, so a name that later resolves into a denied range
//!   (DNS rebinding included) fails with reason `denied: …` and no
//!   connection.
//!
//! # Rules
//!
//! An address is first normalised (an IPv4-mapped IPv6 address,
//! `::ffff:a.b.c.d`, is judged as `a.b.c.d`), then, in order:
//!
//! 1. one of the agent's own listeners (IP and port; a listener on an
//!    unspecified address matches its port on every local address) is
//!    denied — always, whatever the config says;
//! 2. an address in a denied range (the [`BUILT_IN_DENY`] ranges unless
//!    `default_deny = false`, then `checks.deny`) is denied — deny wins over
//!    allow;
//! 3. with a non-empty `checks.allow`, an address in none of its ranges is
//!    denied;
//! 4. anything else is allowed.
//!
//! A target passes only if **every** address it resolves to passes: a name
//! with one allowed and one denied address is denied (fail closed), since
//! the connection could go to either.

use std::{
    collections::BTreeSet,
    fmt, io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;
use thiserror::Error;

use crate::spec::{OriginSpec, SpecError};

/// How long [`TargetPolicy::check_spec`] waits for a name to resolve; a
/// name that takes longer is accepted (the checks will judge it).
pub const PUT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// A range denied by default, with what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltInRange {
    /// The range.
    pub net: IpNet,
    /// What it is, for messages (`link-local`, `AWS metadata`, …).
    pub what: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix))
}

const fn v6(segments: [u16; 8], prefix: u8) -> IpNet {
    let [a, b, c, d, e, f, g, h] = segments;
    IpNet::V6(Ipv6Net::new_assert(
        Ipv6Addr::new(a, b, c, d, e, f, g, h),
        prefix,
    ))
}

/// The ranges denied unless `default_deny = false`:
///
/// - `169.254.0.0/16`, IPv4 link-local: the metadata service of AWS, GCP,
///   Azure and OpenStack at 169.254.169.254 (instance credentials), and
///   nothing a health check should reach;
/// - `fe80::/10`, IPv6 link-local, for the same reason;
/// - `fd00:ec2::254/128`, the AWS metadata service over IPv6;
/// - `100.100.100.200/32`, the Alibaba Cloud metadata service;
/// - `64:ff9b::a9fe:0/112`, IPv4 link-local through the NAT64 well-known
///   prefix;
/// - `0.0.0.0/8` and `::/128`, unspecified: connecting to them reaches this
///   host, past a deny of its loopback.
pub const BUILT_IN_DENY: &[BuiltInRange] = &[
    BuiltInRange {
        net: v4(169, 254, 0, 0, 16),
        what: "link-local",
    },
    BuiltInRange {
        net: v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        what: "link-local",
    },
    BuiltInRange {
        net: v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128),
        what: "AWS metadata",
    },
    BuiltInRange {
        net: v4(100, 100, 100, 200, 32),
        what: "Alibaba Cloud metadata",
    },
    BuiltInRange {
        net: v6([0x64, 0xff9b, 0, 0, 0, 0, 0xa9fe, 0], 112),
        what: "link-local through NAT64",
    },
    BuiltInRange {
        net: v4(0, 0, 0, 0, 8),
        what: "unspecified",
    },
    BuiltInRange {
        net: v6([0; 8], 128),
        what: "unspecified",
    },
];

/// Where checks may be aimed: the `[checks]` table of the agent's config.
/// Every field has a default; an unknown field is refused.
///
/// ```toml
/// [checks]
/// allow = ["10.0.0.0/8", "2001:db8::/32"]
/// deny = ["10.9.0.0/16"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetsConfig {
    /// Ranges checks may go to; empty (the default) allows every address
    /// that is not denied.
    pub allow: Vec<IpNet>,
    /// Ranges checks may not go to, in addition to [`BUILT_IN_DENY`];
    /// default empty. Deny wins over allow.
    pub deny: Vec<IpNet>,
    /// Deny the [`BUILT_IN_DENY`] ranges, default true. `false` drops them
    /// and gives up the protection of the cloud metadata service: anyone
    /// with a write token can then make the agents fetch instance
    /// credentials. The agent's own listeners stay denied.
    pub default_deny: bool,
}

impl Default for TargetsConfig {
    /// No allow list, no deny list, the built-in ranges denied.
    fn default() -> Self {
        TargetsConfig {
            allow: Vec::new(),
            deny: Vec::new(),
            default_deny: true,
        }
    }
}

/// Why a [`TargetsConfig`] was refused. No policy was built.
#[derive(Debug, Error)]
pub enum TargetsError {
    /// A range has bits set past its prefix (`10.1.2.3/8`): it is probably
    /// not the range meant.
    #[error("{field}: {net} has bits set past its prefix (the range {net} covers is {trunc})", trunc = net.trunc())]
    HostBits {
        /// The entry, such as `checks.deny[2]`.
        field: String,
        /// The range as written.
        net: IpNet,
    },
    /// A range of IPv4-mapped IPv6 addresses (`::ffff:10.0.0.0/104`):
    /// addresses are judged as IPv4, so it would never match.
    #[error(
        "{field}: {net} is a range of IPv4-mapped addresses, which are judged as IPv4: write it as IPv4"
    )]
    Mapped {
        /// The entry, such as `checks.allow[0]`.
        field: String,
        /// The range as written.
        net: IpNet,
    },
    /// The local interface addresses could not be listed; they are needed
    /// to deny a listener bound to an unspecified address.
    #[error("cannot list the local addresses (to deny {listener} on every one)")]
    Interfaces {
        /// The listener bound to an unspecified address.
        listener: &'static str,
        /// The error of the listing.
        #[source]
        source: io::Error,
    },
}

/// The rule that denied an address. Its [`Display`](fmt::Display) starts
/// with `is`: `is this agent's listen.api`, `is in 169.254.0.0/16
/// (link-local, denied by default)`, `is in checks.deny 10.0.0.0/8`, `is
/// not in checks.allow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// One of the agent's own listeners, by the name given to
    /// [`TargetPolicy::new`].
    Listener(&'static str),
    /// A [`BUILT_IN_DENY`] range.
    BuiltIn(BuiltInRange),
    /// A range of `checks.deny`.
    Deny(IpNet),
    /// In no range of a non-empty `checks.allow`.
    NotAllowed,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Listener(name) => write!(f, "is this agent's {name}"),
            Rule::BuiltIn(range) => {
                write!(f, "is in {} ({}, denied by default)", range.net, range.what)
            }
            Rule::Deny(net) => write!(f, "is in checks.deny {net}"),
            Rule::NotAllowed => f.write_str("is not in checks.allow"),
        }
    }
}

/// A target that may not be checked: which address, by which rule, and the
/// name it was resolved from, if any. Displays as `169.254.169.254:80 is in
/// 169.254.0.0/16 (link-local, denied by default)`, or `localhost:8080
/// resolves to 127.0.0.1:8080, which is in checks.deny 127.0.0.0/8`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct Denied {
    /// The denied address, as given (before normalisation).
    pub addr: SocketAddr,
    /// The rule that denied it.
    pub rule: Rule,
    /// The `host:port` the address was resolved from, if it was a name.
    pub resolved_from: Option<String>,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.resolved_from {
            Some(name) => write!(f, "{name} resolves to {}, which {}", self.addr, self.rule),
            None => write!(f, "{} {}", self.addr, self.rule),
        }
    }
}

/// Where checks may be aimed: a [`TargetsConfig`] and the agent's own
/// listeners, compiled. Pure: it judges addresses, never resolves or
/// connects. The [`Default`] denies the built-in ranges and knows no
/// listener (what tests of fake origins on 127.0.0.1 need).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPolicy {
    allow: Vec<IpNet>,
    /// Built-in ranges (if `default_deny`), then `checks.deny`.
    deny: Vec<(IpNet, Rule)>,
    /// Listeners bound to one address (normalised).
    listeners: Vec<(&'static str, SocketAddr)>,
    /// Listeners bound to an unspecified address: their port on any local
    /// address.
    any_address: Vec<(&'static str, u16)>,
    /// The local interface addresses (normalised), for `any_address`.
    local: BTreeSet<IpAddr>,
}

impl Default for TargetPolicy {
    fn default() -> Self {
        TargetPolicy::from_parts(&TargetsConfig::default(), &[], BTreeSet::new())
    }
}

impl TargetPolicy {
    /// The policy of `config`, with `own` — the agent's listeners, named
    /// for messages (`("listen.api", 127.0.0.1:8080)`) — always denied.
    ///
    /// If a listener is bound to an unspecified address (`0.0.0.0`, `::`),
    /// the local interface addresses are listed once, now: its port is then
    /// denied on each of them, on the loopback ranges and on the
    /// unspecified addresses (an interface added later is not known).
    ///
    /// # Errors
    ///
    /// A range of the config that is not what it seems ([`TargetsError`]
    /// names it), or the interfaces could not be listed.
    pub fn new(
        config: &TargetsConfig,
        own: &[(&'static str, SocketAddr)],
    ) -> Result<TargetPolicy, TargetsError> {
        let mut local = Vec::new();
        if let Some(&(listener, _)) = own.iter().find(|(_, a)| a.ip().is_unspecified()) {
            let interfaces = if_addrs::get_if_addrs()
                .map_err(|source| TargetsError::Interfaces { listener, source })?;
            local.extend(interfaces.iter().map(if_addrs::Interface::ip));
        }
        TargetPolicy::with_local_addresses(config, own, &local)
    }

    /// As [`new`](TargetPolicy::new), with the local interface addresses
    /// given instead of listed (for tests, and hosts that know better).
    pub fn with_local_addresses(
        config: &TargetsConfig,
        own: &[(&'static str, SocketAddr)],
        local: &[IpAddr],
    ) -> Result<TargetPolicy, TargetsError> {
        for (list, nets) in [("allow", &config.allow), ("deny", &config.deny)] {
            for (i, net) in nets.iter().enumerate() {
                let field = || format!("checks.{list}[{i}]");
                if net.trunc() != *net {
                    return Err(TargetsError::HostBits {
                        field: field(),
                        net: *net,
                    });
                }
                if is_mapped(net) {
                    return Err(TargetsError::Mapped {
                        field: field(),
                        net: *net,
                    });
                }
            }
        }
        let local = local.iter().map(|ip| ip.to_canonical()).collect();
        Ok(TargetPolicy::from_parts(config, own, local))
    }

    fn from_parts(
        config: &TargetsConfig,
        own: &[(&'static str, SocketAddr)],
        local: BTreeSet<IpAddr>,
    ) -> TargetPolicy {
        let built_in = BUILT_IN_DENY
            .iter()
            .filter(|_| config.default_deny)
            .map(|range| (range.net, Rule::BuiltIn(*range)));
        let configured = config.deny.iter().map(|net| (*net, Rule::Deny(*net)));
        let (any, bound): (Vec<_>, Vec<_>) = own.iter().partition(|(_, a)| a.ip().is_unspecified());
        TargetPolicy {
            allow: config.allow.clone(),
            deny: built_in.chain(configured).collect(),
            listeners: bound
                .into_iter()
                .map(|&(name, addr)| (name, normalise(addr)))
                .collect(),
            any_address: any.into_iter().map(|&(name, a)| (name, a.port())).collect(),
            local,
        }
    }

    /// Judges `addrs`, the addresses a target resolved to: `Ok` if every one
    /// may be checked, else the first denied one (see the module doc for
    /// the rules). An empty list passes: there is nothing to connect to,
    /// which the caller reports itself.
    pub fn check(&self, addrs: &[SocketAddr]) -> Result<(), Denied> {
        match addrs.iter().find_map(|a| self.rule(*a).map(|r| (*a, r))) {
            None => Ok(()),
            Some((addr, rule)) => Err(Denied {
                addr,
                rule,
                resolved_from: None,
            }),
        }
    }

    /// As [`check`](TargetPolicy::check), for the addresses that `name` (a
    /// `host:port`) resolved to: a denial names it.
    pub fn check_resolved(&self, name: &str, addrs: &[SocketAddr]) -> Result<(), Denied> {
        self.check(addrs).map_err(|denied| Denied {
            resolved_from: Some(name.to_owned()),
            ..denied
        })
    }

    /// Judges a spec's `address` if it is an IP literal (`10.0.0.1:80`,
    /// `[::1]:80`); `None` if it is a name, which must be resolved first.
    pub fn check_literal(&self, address: &str) -> Option<Result<(), Denied>> {
        let addr = address.parse::<SocketAddr>().ok()?;
        Some(self.check(&[addr]))
    }

    /// The PUT-time check of a validated spec: its IP-literal address is
    /// judged; a name is resolved, for at most [`PUT_RESOLVE_TIMEOUT`], and
    /// every address judged. A name that does not resolve (yet) or in time
    /// is accepted: each check resolves it again and reports `denied` if it
    /// then falls in a denied range.
    ///
    /// # Errors
    ///
    /// A denied target, as a [`SpecError`] of field `address` whose message
    /// is the [`Denied`] text: what the API returns as a 400. Must be called
    /// within a tokio runtime (the resolver runs on its blocking pool).
    pub async fn check_spec(&self, spec: &OriginSpec) -> Result<(), SpecError> {
        let result = match self.check_literal(&spec.address) {
            Some(result) => result,
            None => {
                let lookup = tokio::net::lookup_host(spec.address.as_str());
                match tokio::time::timeout(PUT_RESOLVE_TIMEOUT, lookup).await {
                    Ok(Ok(addrs)) => {
                        let addrs: Vec<SocketAddr> = addrs.collect();
                        self.check_resolved(&spec.address, &addrs)
                    }
                    // Not resolvable now: the checks will judge it later.
                    Ok(Err(_)) | Err(_) => Ok(()),
                }
            }
        };
        result.map_err(|denied| SpecError {
            field: "address".into(),
            message: denied.to_string(),
        })
    }

    /// The rule denying `addr`, if any.
    fn rule(&self, addr: SocketAddr) -> Option<Rule> {
        let addr = normalise(addr);
        let ip = addr.ip();
        if let Some((name, _)) = self.listeners.iter().find(|(_, l)| *l == addr) {
            return Some(Rule::Listener(name));
        }
        // Connecting to an unspecified address reaches this host, so it
        // reaches a listener of that port whatever address it is bound to.
        if ip.is_unspecified()
            && let Some((name, _)) = self.listeners.iter().find(|(_, l)| l.port() == addr.port())
        {
            return Some(Rule::Listener(name));
        }
        if (ip.is_loopback() || ip.is_unspecified() || self.local.contains(&ip))
            && let Some((name, _)) = self.any_address.iter().find(|(_, p)| *p == addr.port())
        {
            return Some(Rule::Listener(name));
        }
        if let Some((_, rule)) = self.deny.iter().find(|(net, _)| net.contains(&ip)) {
            return Some(rule.clone());
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|net| net.contains(&ip)) {
            return Some(Rule::NotAllowed);
        }
        None
    }
}

/// `addr` with an IPv4-mapped IPv6 address made IPv4.
fn normalise(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Whether `net` lies within `::ffff:0:0/96`.
fn is_mapped(net: &IpNet) -> bool {
    match net {
        IpNet::V4(_) => false,
        IpNet::V6(v6) => v6.prefix_len() >= 96 && v6.network().to_ipv4_mapped().is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("range")
    }

    fn config(allow: &[&str], deny: &[&str]) -> TargetsConfig {
        TargetsConfig {
            allow: allow.iter().map(|s| net(s)).collect(),
            deny: deny.iter().map(|s| net(s)).collect(),
            default_deny: true,
        }
    }

    fn policy(config: &TargetsConfig, own: &[(&'static str, SocketAddr)]) -> TargetPolicy {
        TargetPolicy::with_local_addresses(config, own, &["10.0.0.5".parse().expect("ip")])
            .expect("valid")
    }

    /// The message of the denial of `a`, or `None` if it is allowed.
    fn denial(policy: &TargetPolicy, a: &str) -> Option<String> {
        policy.check(&[addr(a)]).err().map(|d| d.to_string())
    }

    #[test]
    fn built_in_ranges_are_denied_by_default() {
        let p = TargetPolicy::default();
        assert_eq!(
            denial(&p, "169.254.169.254:80").as_deref(),
            Some("169.254.169.254:80 is in 169.254.0.0/16 (link-local, denied by default)")
        );
        assert_eq!(
            denial(&p, "[fe80::1]:80").as_deref(),
            Some("[fe80::1]:80 is in fe80::/10 (link-local, denied by default)")
        );
        // IPv4-mapped addresses are judged as IPv4.
        assert_eq!(
            denial(&p, "[::ffff:169.254.169.254]:80").as_deref(),
            Some(
                "[::ffff:169.254.169.254]:80 is in 169.254.0.0/16 (link-local, denied by default)"
            )
        );
        for a in [
            "0.0.0.0:80",
            "[::]:80",
            "[fd00:ec2::254]:80",
            "100.100.100.200:80",
            "[64:ff9b::169.254.169.254]:80",
        ] {
            assert!(denial(&p, a).is_some(), "{a}");
        }
        for a in [
            "127.0.0.1:8080",
            "[::1]:80",
            "10.0.0.1:80",
            "192.0.2.1:443",
            "169.253.255.255:80",
            "[fd00:ec2::253]:80",
        ] {
            assert_eq!(denial(&p, a), None, "{a}");
        }
    }

    #[test]
    fn default_deny_false_drops_the_built_in_ranges_only() {
        let c = TargetsConfig {
            default_deny: false,
            ..config(&[], &["10.0.0.0/8"])
        };
        let p = policy(&c, &[("listen.api", addr("127.0.0.1:8080"))]);
        assert_eq!(denial(&p, "169.254.169.254:80"), None);
        assert_eq!(denial(&p, "0.0.0.0:80"), None);
        assert!(denial(&p, "10.1.2.3:80").is_some());
        assert!(denial(&p, "127.0.0.1:8080").is_some());
    }

    #[test]
    fn own_listeners_are_denied_by_address_and_port() {
        let p = policy(
            &config(&["0.0.0.0/0"], &[]),
            &[
                ("listen.api", addr("127.0.0.1:8080")),
                ("listen.sync", addr("[::1]:7000")),
            ],
        );
        assert_eq!(
            denial(&p, "127.0.0.1:8080").as_deref(),
            Some("127.0.0.1:8080 is this agent's listen.api")
        );
        assert_eq!(
            denial(&p, "[::ffff:127.0.0.1]:8080").as_deref(),
            Some("[::ffff:127.0.0.1]:8080 is this agent's listen.api")
        );
        assert!(denial(&p, "[::1]:7000").is_some());
        // Another port, or another loopback address, reaches something
        // else.
        assert_eq!(denial(&p, "127.0.0.1:8081"), None);
        assert_eq!(denial(&p, "127.0.0.2:8080"), None);
        // Even with the built-in ranges dropped, the unspecified address
        // reaches this host, so every listener's port is denied there.
        let open = TargetsConfig {
            default_deny: false,
            ..TargetsConfig::default()
        };
        let p = policy(&open, &[("listen.api", addr("127.0.0.1:8080"))]);
        assert_eq!(
            denial(&p, "0.0.0.0:8080").as_deref(),
            Some("0.0.0.0:8080 is this agent's listen.api")
        );
        assert_eq!(denial(&p, "0.0.0.0:8081"), None);
    }

    #[test]
    fn a_listener_on_an_unspecified_address_is_denied_on_every_local_address() {
        let p = policy(
            &TargetsConfig::default(),
            &[("listen.gossip", addr("0.0.0.0:7946"))],
        );
        for a in [
            "127.0.0.1:7946",
            "127.3.2.1:7946",
            "[::1]:7946",
            "10.0.0.5:7946",
            "[::ffff:10.0.0.5]:7946",
        ] {
            assert_eq!(
                denial(&p, a),
                Some(format!("{a} is this agent's listen.gossip")),
                "{a}"
            );
        }
        assert_eq!(denial(&p, "10.0.0.6:7946"), None, "not a local address");
        assert_eq!(denial(&p, "127.0.0.1:7947"), None, "another port");
    }

    #[test]
    fn new_lists_the_interfaces_when_a_listener_needs_them() {
        let p = TargetPolicy::new(
            &TargetsConfig::default(),
            &[("listen.api", addr("[::]:8080"))],
        )
        .expect("interfaces");
        assert!(denial(&p, "127.0.0.1:8080").is_some());
        // Every interface address of this host is denied on that port.
        for interface in if_addrs::get_if_addrs().expect("interfaces") {
            let a = SocketAddr::new(interface.ip(), 8080);
            assert!(p.check(&[a]).is_err(), "{a}");
        }
    }

    #[test]
    fn an_allow_list_denies_everything_else() {
        let p = policy(&config(&["10.0.0.0/8", "2001:db8::/32"], &[]), &[]);
        assert_eq!(denial(&p, "10.1.2.3:80"), None);
        assert_eq!(denial(&p, "[2001:db8::1]:443"), None);
        assert_eq!(denial(&p, "[::ffff:10.1.2.3]:80"), None);
        assert_eq!(
            denial(&p, "192.0.2.1:80").as_deref(),
            Some("192.0.2.1:80 is not in checks.allow")
        );
        assert!(denial(&p, "127.0.0.1:80").is_some());
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = policy(
            &config(&["10.0.0.0/8", "169.254.0.0/16"], &["10.9.0.0/16"]),
            &[],
        );
        assert_eq!(denial(&p, "10.1.2.3:80"), None);
        assert_eq!(
            denial(&p, "10.9.2.3:80").as_deref(),
            Some("10.9.2.3:80 is in checks.deny 10.9.0.0/16")
        );
        // The built-in ranges cannot be allowed back, only dropped.
        assert!(denial(&p, "169.254.169.254:80").is_some());
        // Nor can the agent's own listeners.
        let p = policy(
            &TargetsConfig {
                default_deny: false,
                ..config(&["127.0.0.0/8"], &[])
            },
            &[("listen.api", addr("127.0.0.1:8080"))],
        );
        assert!(denial(&p, "127.0.0.1:8080").is_some());
    }

    #[test]
    fn every_resolved_address_must_pass() {
        let p = policy(&config(&[], &["10.0.0.0/8"]), &[]);
        let mixed = [addr("192.0.2.1:80"), addr("10.1.2.3:80")];
        let denied = p.check(&mixed).expect_err("one is denied");
        assert_eq!(denied.addr, mixed[1]);
        assert_eq!(denied.rule, Rule::Deny(net("10.0.0.0/8")));
        assert_eq!(
            p.check_resolved("origin.example:80", &mixed)
                .expect_err("denied")
                .to_string(),
            "origin.example:80 resolves to 10.1.2.3:80, which is in checks.deny 10.0.0.0/8"
        );
        assert_eq!(p.check(&mixed[..1]), Ok(()));
        assert_eq!(p.check(&[]), Ok(()), "nothing to connect to");
    }

    #[test]
    fn literals_are_judged_and_names_left_to_resolve() {
        let p = TargetPolicy::default();
        assert!(matches!(
            p.check_literal("169.254.169.254:80"),
            Some(Err(_))
        ));
        assert!(matches!(p.check_literal("[fe80::1]:80"), Some(Err(_))));
        assert_eq!(p.check_literal("10.0.0.1:80"), Some(Ok(())));
        assert_eq!(p.check_literal("metadata.google.internal:80"), None);
    }

    #[test]
    fn configs_are_read_and_validated() {
        let c: TargetsConfig = toml::from_str("").expect("defaults");
        assert_eq!(c, TargetsConfig::default());
        assert!(c.default_deny);
        let c: TargetsConfig = toml::from_str(
            "allow = [\"10.0.0.0/8\"]\ndeny = [\"10.9.0.0/16\", \"::1/128\"]\ndefault_deny = false",
        )
        .expect("valid");
        assert_eq!(c.deny[1], net("::1/128"));
        assert!(!c.default_deny);
        assert!(toml::from_str::<TargetsConfig>("alow = []").is_err());
        assert!(toml::from_str::<TargetsConfig>("deny = [\"10.0.0.1\"]").is_err());

        let err = TargetPolicy::new(&config(&[], &["10.0.0.0/8", "10.1.2.3/8"]), &[])
            .expect_err("host bits");
        assert_eq!(
            err.to_string(),
            "checks.deny[1]: 10.1.2.3/8 has bits set past its prefix (the range 10.1.2.3/8 covers is 10.0.0.0/8)"
        );
        let err =
            TargetPolicy::new(&config(&["::ffff:10.0.0.0/104"], &[]), &[]).expect_err("mapped");
        assert!(
            err.to_string()
                .starts_with("checks.allow[0]: ::ffff:10.0.0.0/104 is a range of IPv4-mapped"),
            "{err}"
        );
        // A range merely containing the mapped addresses is fine.
        assert!(TargetPolicy::new(&config(&[], &["::/0"]), &[]).is_ok());
    }

    #[tokio::test]
    async fn specs_are_refused_at_put_with_the_field() {
        let p = TargetPolicy::default();
        let err = p
            .check_spec(&OriginSpec::new("169.254.169.254:80"))
            .await
            .expect_err("denied");
        assert_eq!(err.field, "address");
        assert_eq!(
            err.message,
            "169.254.169.254:80 is in 169.254.0.0/16 (link-local, denied by default)"
        );
        assert_eq!(p.check_spec(&OriginSpec::new("10.0.0.1:80")).await, Ok(()));
        let local = policy(&config(&[], &["127.0.0.0/8", "::1/128"]), &[]);
        let err = local
            .check_spec(&OriginSpec::new("localhost:8080"))
            .await
            .expect_err("localhost is denied");
        assert_eq!(err.field, "address");
        assert!(
            err.message.starts_with("localhost:8080 resolves to "),
            "{}",
            err.message
        );
    }
}
