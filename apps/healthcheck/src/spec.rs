//! [`OriginSpec`]: what to check on an origin, and how; with validation that
//! names the offending field.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::record::Status;

/// How an origin is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An HTTP request; success is a response whose status is expected.
    #[default]
    Http,
    /// The same over TLS (rustls).
    Https,
    /// A TCP connection that opens.
    Tcp,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Http => "http",
            Kind::Https => "https",
            Kind::Tcp => "tcp",
        })
    }
}

/// An origin to check. Every field but `address` has a default; JSON input
/// with an unknown field is rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginSpec {
    /// `host:port` (a name or an IP; IPv6 in brackets).
    pub address: String,
    /// `http` (default), `https` or `tcp`.
    #[serde(default)]
    pub kind: Kind,
    /// Request path (HTTP/HTTPS), default `/`.
    #[serde(default = "default_path")]
    pub path: String,
    /// Request method, default `GET`.
    #[serde(default = "default_method")]
    pub method: String,
    /// `Host` header (and TLS server name); default: the address's host.
    #[serde(default)]
    pub host: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Expected status codes, each `"NNN"` or `"NNN-MMM"`; default
    /// `["200-299"]`.
    #[serde(default = "default_expect")]
    pub expect_status: Vec<String>,
    /// Time between checks while the status is settled, default 5000.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// Time allowed for one check, default 2000; at most `interval_ms`.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Consecutive successes to become `up`, default 2.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive failures to become `down`, default 3.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Status before the first verdict, default `unknown`.
    #[serde(default)]
    pub initial: Status,
    /// Verify the TLS certificate (HTTPS), default true. An extension of the
    /// contract, like HAProxy's `verify none`, for origins with self-signed
    /// certificates.
    #[serde(default = "default_true")]
    pub tls_verify: bool,
}

fn default_path() -> String {
    "/".into()
}
fn default_method() -> String {
    "GET".into()
}
fn default_expect() -> Vec<String> {
    vec!["200-299".into()]
}
fn default_interval() -> u64 {
    5000
}
fn default_timeout() -> u64 {
    2000
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}
fn default_true() -> bool {
    true
}

/// An invalid spec or origin id: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// The offending field (`address`, `expect_status[1]`, `id`, …).
    pub field: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl SpecError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An inclusive range of HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    /// Lowest accepted code.
    pub lo: u16,
    /// Highest accepted code.
    pub hi: u16,
}

impl StatusRange {
    /// Parses `"NNN"` or `"NNN-MMM"` (100–599, low ≤ high).
    pub fn parse(s: &str) -> Result<Self, String> {
        let code = |t: &str| -> Result<u16, String> {
            let c: u16 = t
                .trim()
                .parse()
                .map_err(|_| format!("{t:?} is not a status code"))?;
            if (100..=599).contains(&c) {
                Ok(c)
            } else {
                Err(format!("{c} is outside 100-599"))
            }
        };
        let (lo, hi) = match s.split_once('-') {
            Some((a, b)) => (code(a)?, code(b)?),
            None => {
                let c = code(s)?;
                (c, c)
            }
        };
        if lo > hi {
            return Err(format!("{lo}-{hi} is an empty range"));
        }
        Ok(StatusRange { lo, hi })
    }

    /// Whether `code` is in the range.
    pub fn contains(&self, code: u16) -> bool {
        (self.lo..=self.hi).contains(&code)
    }
}

/// Parses a JSON spec, naming the offending field on error (a type error, a
/// missing `address`, an unknown field, or a failed validation).
pub fn parse_json(body: &[u8]) -> Result<OriginSpec, SpecError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let spec: OriginSpec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // serde names missing and unknown fields in its message, not its path
        let field = if path == "." || path.is_empty() {
            field_in_message(&message).unwrap_or_else(|| "body".into())
        } else {
            path
        };
        SpecError::new(field, message)
    })?;
    // Nothing may follow the object (`{...} trailing`, `{...}{...}`).
    de.end()
        .map_err(|e| SpecError::new("body", format!("after the JSON object: {e}")))?;
    spec.validate()?;
    Ok(spec)
}

/// The field serde names in "unknown field `x`, expected …" or "missing
/// field `x`" (a name may itself hold backticks); `None` for an empty name.
fn field_in_message(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let rest = &message[start..];
    let end = rest.find("`, expected").or_else(|| rest.rfind('`'))?;
    let name = &rest[..end];
    (!name.is_empty()).then(|| name.to_owned())
}

/// Checks an origin id: 1–128 characters of `A-Z a-z 0-9 . _ -`.
pub fn validate_id(id: &str) -> Result<(), SpecError> {
    if id.is_empty() || id.len() > 128 {
        return Err(SpecError::new("id", "must be 1-128 characters"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        return Err(SpecError::new(
            "id",
            format!("{c:?} is not allowed (use A-Z a-z 0-9 . _ -)"),
        ));
    }
    Ok(())
}

impl OriginSpec {
    /// A spec with every default and this address.
    pub fn new(address: impl Into<String>) -> Self {
        OriginSpec {
            address: address.into(),
            kind: Kind::Http,
            path: default_path(),
            method: default_method(),
            host: None,
            headers: BTreeMap::new(),
            expect_status: default_expect(),
            interval_ms: default_interval(),
            timeout_ms: default_timeout(),
            rise: default_rise(),
            fall: default_fall(),
            initial: Status::Unknown,
            tls_verify: true,
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), SpecError> {
        let (host, port) =
            split_address(&self.address).map_err(|m| SpecError::new("address", m))?;
        if host.is_empty() {
            return Err(SpecError::new("address", "the host is empty"));
        }
        if port == 0 {
            return Err(SpecError::new("address", "port 0 cannot be checked"));
        }
        if !self.path.starts_with('/') || self.path.chars().any(|c| c.is_control() || c == ' ') {
            return Err(SpecError::new(
                "path",
                "must start with / and contain no spaces or control characters",
            ));
        }
        if self.method.is_empty()
            || self.method.len() > 16
            || !self.method.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Err(SpecError::new(
                "method",
                "must be an upper-case HTTP method such as GET or HEAD",
            ));
        }
        if let Some(h) = &self.host
            && (h.is_empty() || !valid_header_value(h) || h.contains(' '))
        {
            return Err(SpecError::new(
                "host",
                "must be a non-empty host name without spaces",
            ));
        }
        for (name, value) in &self.headers {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            {
                return Err(SpecError::new(
                    format!("headers.{name}"),
                    "is not a valid header name",
                ));
            }
            if !valid_header_value(value) {
                return Err(SpecError::new(
                    format!("headers.{name}"),
                    "has an invalid value",
                ));
            }
        }
        if self.expect_status.is_empty() {
            return Err(SpecError::new(
                "expect_status",
                "must list at least one status or range",
            ));
        }
        for (i, s) in self.expect_status.iter().enumerate() {
            StatusRange::parse(s).map_err(|m| SpecError::new(format!("expect_status[{i}]"), m))?;
        }
        if !(100..=86_400_000).contains(&self.interval_ms) {
            return Err(SpecError::new(
                "interval_ms",
                "must be between 100 and 86400000",
            ));
        }
        if self.timeout_ms < 10 || self.timeout_ms > self.interval_ms {
            return Err(SpecError::new(
                "timeout_ms",
                "must be at least 10 and at most interval_ms",
            ));
        }
        if !(1..=100).contains(&self.rise) {
            return Err(SpecError::new("rise", "must be between 1 and 100"));
        }
        if !(1..=100).contains(&self.fall) {
            return Err(SpecError::new("fall", "must be between 1 and 100"));
        }
        Ok(())
    }

    /// The parsed expected status ranges (invalid entries are skipped; a
    /// validated spec has none).
    pub fn status_ranges(&self) -> Vec<StatusRange> {
        self.expect_status
            .iter()
            .filter_map(|s| StatusRange::parse(s).ok())
            .collect()
    }

    /// The host part of the address (without brackets).
    pub fn address_host(&self) -> &str {
        split_address(&self.address).map_or("", |(h, _)| h)
    }
}

fn valid_header_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// Splits `host:port` / `[v6]:port`.
fn split_address(address: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| "an IPv6 address must look like [::1]:80".to_string())?;
        (h, p)
    } else {
        address
            .rsplit_once(':')
            .ok_or_else(|| format!("{address:?} must be host:port"))?
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port"))?;
    if host.contains(':') && !address.starts_with('[') {
        return Err("an IPv6 address must be in brackets".into());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == '@')
    {
        return Err(format!("{host:?} is not a host"));
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> String {
        parse_json(body.as_bytes()).expect_err("invalid").field
    }

    #[test]
    fn defaults_fill_everything_but_the_address() {
        let spec = parse_json(br#"{"address": "127.0.0.1:8080"}"#).expect("valid");
        assert_eq!(spec, OriginSpec::new("127.0.0.1:8080"));
        assert_eq!(spec.kind, Kind::Http);
        assert_eq!(spec.status_ranges(), vec![StatusRange { lo: 200, hi: 299 }]);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(r#"{}"#), "address");
        assert_eq!(field_of(r#"{"address": "x"}"#), "address");
        assert_eq!(
            field_of(r#"{"address": "h:1", "interval_ms": "soon"}"#),
            "interval_ms"
        );
        assert_eq!(field_of(r#"{"address": "h:1", "colour": 1}"#), "colour");
        assert_eq!(field_of(r#"{"address": "h:1", "kind": "ftp"}"#), "kind");
        assert_eq!(
            field_of(r#"{"address": "h:1", "expect_status": ["200", "abc"]}"#),
            "expect_status[1]"
        );
        assert_eq!(
            field_of(r#"{"address": "h:1", "expect_status": ["300-200"]}"#),
            "expect_status[0]"
        );
        assert_eq!(
            field_of(r#"{"address": "h:1", "timeout_ms": 9000}"#),
            "timeout_ms"
        );
        assert_eq!(field_of(r#"{"address": "h:1", "rise": 0}"#), "rise");
        assert_eq!(
            field_of(r#"{"address": "h:1", "path": "no-slash"}"#),
            "path"
        );
        assert_eq!(field_of(r#"{"address": "h:1", "method": "get"}"#), "method");
        assert_eq!(
            field_of(r#"{"address": "h:1", "headers": {"bad name": "x"}}"#),
            "headers.bad name"
        );
        assert_eq!(field_of(r#"not json"#), "body");
    }

    #[test]
    fn addresses_and_ids() {
        for good in ["example.com:443", "10.0.0.1:80", "[::1]:8080"] {
            assert!(OriginSpec::new(good).validate().is_ok(), "{good}");
        }
        for bad in ["example.com", ":80", "h:0", "h:99999", "::1:80", "a b:80"] {
            assert!(OriginSpec::new(bad).validate().is_err(), "{bad}");
        }
        assert_eq!(OriginSpec::new("[::1]:80").address_host(), "::1");
        assert!(validate_id("origin-1.eu_west").is_ok());
        assert!(validate_id("").is_err());
        assert!(validate_id("a/b").is_err());
        assert!(validate_id(&"x".repeat(129)).is_err());
    }

    #[test]
    fn status_ranges_match() {
        let r = StatusRange::parse("200-204").expect("valid");
        assert!(r.contains(200) && r.contains(204) && !r.contains(205));
        assert_eq!(
            StatusRange::parse("404"),
            Ok(StatusRange { lo: 404, hi: 404 })
        );
        assert!(StatusRange::parse("99").is_err());
        assert!(StatusRange::parse("600").is_err());
    }

    #[test]
    fn specs_round_trip_through_msgpack_as_replicated() {
        let mut spec = OriginSpec::new("h:1");
        spec.headers.insert("x-a".into(), "1".into());
        spec.kind = Kind::Https;
        let bytes = rmp_serde::to_vec(&spec).expect("encode");
        assert_eq!(
            rmp_serde::from_slice::<OriginSpec>(&bytes).expect("decode"),
            spec
        );
    }
}
