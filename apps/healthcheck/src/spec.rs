//! [`OriginSpec`]: what to check on an origin, and how; with validation that
//! names the offending field.
//!
//! # A spec is checked exactly as it reads
//!
//! A spec that [`OriginSpec::validate`] accepts is sent as written: the
//! request line is `{method} {path} HTTP/1.1`, the `Host` header is `host`
//! (or the address, its port left out when it is the scheme's default), and
//! every entry of `headers` is sent once with exactly its value. Anything
//! that the HTTP client ([`reqwest`], which parses the URL with the `url`
//! crate, and `hyper`) would change, drop, merge or add on its own is
//! refused instead, with a [`SpecError`] that names the field and says
//! what would have changed:
//!
//! - `address`: `host:port`, where host is an IPv4 literal (`10.0.0.1`), a
//!   bracketed IPv6 literal in its canonical form (`[::1]`, no zone id) or
//!   a lower-case DNS name (RFC 1123 labels of 1–63 letters, digits and
//!   hyphens, not starting or ending with a hyphen; at most 253 characters;
//!   no trailing dot; a last label that is a number must make an IPv4
//!   literal). Port 1–65535, digits only, no leading zero.
//! - `host`: the same host forms (any case: it is sent verbatim), with an
//!   optional `:port`.
//! - `method`: an RFC 9110 token (letters, digits and ``!#$%&'*+-.^_`|~``)
//!   of at most [`MAX_METHOD`] characters, without lower-case letters
//!   (methods are case-sensitive: `get` is not `GET`); not `CONNECT`, which
//!   needs an authority-form target that a check does not send.
//! - `path`: starts with `/`, at most [`MAX_PATH`] bytes of visible ASCII
//!   (no space, no control), no `#` (a fragment is never sent), no `\`
//!   (sent as `/`), no dot segment (`.`, `..`, also as `%2e`; they would be
//!   removed), and nothing the URL parser would percent-encode.
//! - `headers`: at most [`MAX_HEADERS`]; names are RFC 9110 tokens of at
//!   most [`MAX_HEADER_NAME`] bytes, distinct case-insensitively (and given
//!   once in the JSON), none of [`RESERVED_HEADERS`] (`Host` is the `host`
//!   field, `User-Agent` is the agent's, the others are hop-by-hop or
//!   framing headers the client manages); values of at most
//!   [`MAX_HEADER_VALUE`] bytes of visible ASCII, spaces and tabs, without
//!   leading or trailing whitespace.
//! - `expect_status`: entries `NNN` or `NNN-NNN`, exactly three ASCII digits
//!   each (no sign, no spaces), 100–599, low ≤ high; duplicates are allowed.
//!
//! - the fields added since the first release (intervals per state,
//!   `jitter_percent`, `request_body`, `expect_body`, `expect_body_regex`,
//!   `expect_headers`, `http_version`, and the TLS files): see each field
//!   and the `matchers` and [`tls_files`] modules; the ones that only mean
//!   something for HTTP(S) are refused for kind `tcp`.
//!
//! A JSON body must be a JSON object (serde would take an array for a
//! struct); anything else is refused with field `body`.

use std::{
    collections::BTreeMap,
    fmt,
    net::{Ipv4Addr, Ipv6Addr},
};

use serde::{
    Deserialize, Deserializer, Serialize,
    de::{self, DeserializeSeed, MapAccess, Visitor},
};
use thiserror::Error;

use crate::record::Status;

mod matchers;
pub mod tls_files;

pub use self::matchers::{BodyMatcher, header_mismatch};

/// Longest `method`, in characters.
pub const MAX_METHOD: usize = 32;

/// Longest `path`, in bytes.
pub const MAX_PATH: usize = 2048;

/// Most entries in `headers`.
pub const MAX_HEADERS: usize = 32;

/// Longest header name, in bytes.
pub const MAX_HEADER_NAME: usize = 128;

/// Longest header value, in bytes.
pub const MAX_HEADER_VALUE: usize = 4096;

/// Default [`OriginSpec::jitter_percent`].
pub const DEFAULT_JITTER_PERCENT: u8 = 10;

/// Longest `request_body`, in bytes.
pub const MAX_REQUEST_BODY: usize = 16 * 1024;

/// Longest `expect_body` or `expect_body_regex`, in bytes.
pub const MAX_BODY_MATCHER: usize = 1024;

/// Largest compiled `expect_body_regex`, in bytes (the `regex` crate's
/// size limit).
pub const MAX_REGEX_SIZE: usize = 1024 * 1024;

/// Longest DNS name in `address` or `host` (RFC 1123), in characters.
pub const MAX_HOST_NAME: usize = 253;

/// Header names a spec may not set (compared case-insensitively): `host`
/// (use the `host` field), `user-agent` (the agent sets it, naming itself),
/// and the hop-by-hop and framing headers the HTTP client manages.
pub const RESERVED_HEADERS: [&str; 11] = [
    "host",
    "user-agent",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "expect",
];

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
/// with an unknown field is rejected. The rules of each field are in the
/// [module docs](self); a spec that validates is checked exactly as it
/// reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginSpec {
    /// `host:port`: an IPv4 literal, a canonical bracketed IPv6 literal
    /// (`[::1]:80`, no zone id) or a lower-case RFC 1123 DNS name (no
    /// trailing dot), and a port 1–65535 without leading zeros.
    pub address: String,
    /// `http` (default), `https` or `tcp`.
    #[serde(default)]
    pub kind: Kind,
    /// Request path (HTTP/HTTPS), default `/`; sent exactly as written:
    /// starts with `/`, at most [`MAX_PATH`] bytes of visible ASCII, no `#`,
    /// no `\`, no dot segments (also percent-encoded), nothing the URL
    /// parser would percent-encode or change.
    #[serde(default = "default_path")]
    pub path: String,
    /// Request method, default `GET`: an RFC 9110 token of at most
    /// [`MAX_METHOD`] characters without lower-case letters (`M-SEARCH`
    /// is fine, `get` is not); not `CONNECT`.
    #[serde(default = "default_method")]
    pub method: String,
    /// `Host` header, sent verbatim (and TLS server name); default: the
    /// address (its port left out when it is the scheme's default). A DNS
    /// name or an IP literal (IPv6 in brackets) with an optional `:port`.
    #[serde(default)]
    pub host: Option<String>,
    /// Extra request headers, each sent once with exactly its value: at
    /// most [`MAX_HEADERS`], names RFC 9110 tokens distinct
    /// case-insensitively and none of [`RESERVED_HEADERS`]; values of
    /// visible ASCII, spaces and tabs without leading or trailing
    /// whitespace, at most [`MAX_HEADER_VALUE`] bytes.
    #[serde(default, deserialize_with = "headers_given_once")]
    pub headers: BTreeMap<String, String>,
    /// Expected status codes, each `"NNN"` or `"NNN-NNN"` (three ASCII
    /// digits, no spaces or signs, 100–599, low ≤ high); default
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
    // Fields added after the first release: appended, with defaults, and
    // written in the binary form only when used (see `crate::compat`).
    /// Time between checks while a streak settles (HAProxy's `fastinter`);
    /// default: a quarter of `interval_ms`, at least 100.
    #[serde(default)]
    pub settling_interval_ms: Option<u64>,
    /// Time between checks while the origin is settled down (HAProxy's
    /// `downinter`, Envoy's `unhealthy_interval`); default `interval_ms`.
    #[serde(default)]
    pub down_interval_ms: Option<u64>,
    /// Each due time is moved by a random amount within ± this percentage
    /// of its interval, 0–50; default 10.
    #[serde(default = "default_jitter")]
    pub jitter_percent: u8,
    /// A request body (HTTP/HTTPS), sent with a `Content-Length`; at most
    /// [`MAX_REQUEST_BODY`] bytes. Set its `Content-Type` in `headers`.
    #[serde(default)]
    pub request_body: Option<String>,
    /// The response body must contain this text (HTTP/HTTPS), compared
    /// byte for byte within the first [`MAX_BODY_BYTES`](crate::checker::MAX_BODY_BYTES)
    /// of the body; 1–[`MAX_BODY_MATCHER`] bytes.
    #[serde(default)]
    pub expect_body: Option<String>,
    /// The response body must match this regular expression (the `regex`
    /// crate's syntax, no look-around or backreferences: matching is linear
    /// in the body), searched within the first
    /// [`MAX_BODY_BYTES`](crate::checker::MAX_BODY_BYTES) of the body; at
    /// most [`MAX_BODY_MATCHER`] bytes, and its compiled form at most
    /// [`MAX_REGEX_SIZE`].
    #[serde(default)]
    pub expect_body_regex: Option<String>,
    /// Headers the response must carry, each with exactly this value (one
    /// of its values, if the header is repeated); names compared
    /// case-insensitively, at most [`MAX_HEADERS`].
    #[serde(default, deserialize_with = "headers_given_once")]
    pub expect_headers: BTreeMap<String, String>,
    /// `"1.1"` (default) or `"2"`: HTTP/2 over TLS (kind `https`, ALPN
    /// `h2` only: an origin that does not speak it fails the check).
    #[serde(default)]
    pub http_version: HttpVersion,
    /// Trust only this CA (a PEM file of one or more certificates) for the
    /// origin's certificate, instead of the system's roots (kind `https`):
    /// a file name in the agent's `checks.tls_dir`.
    #[serde(default)]
    pub tls_ca: Option<String>,
    /// Present this client certificate (a PEM chain, the client's
    /// certificate first) to the origin (kind `https`): a file name in the
    /// agent's `checks.tls_dir`; needs `tls_client_key`.
    #[serde(default)]
    pub tls_client_cert: Option<String>,
    /// The private key of `tls_client_cert` (PEM: PKCS#8, PKCS#1 or SEC1):
    /// a file name in the agent's `checks.tls_dir`.
    #[serde(default)]
    pub tls_client_key: Option<String>,
    /// Confirm a down with a second agent's check before the record says
    /// so (default `true`; see [`crate::confirm`]). With one agent, or
    /// `false`, the owner's streak alone decides.
    #[serde(default = "default_true")]
    pub confirm: bool,
}

crate::compat_serialize!(OriginSpec {
    always: [
        address, kind, path, method, host, headers, expect_status, interval_ms, timeout_ms,
        rise, fall, initial, tls_verify,
    ],
    then: [
        settling_interval_ms if Option::is_none,
        down_interval_ms if Option::is_none,
        jitter_percent if |j: &u8| *j == DEFAULT_JITTER_PERCENT,
        request_body if Option::is_none,
        expect_body if Option::is_none,
        expect_body_regex if Option::is_none,
        expect_headers if BTreeMap::is_empty,
        http_version if |v: &HttpVersion| *v == HttpVersion::default(),
        tls_ca if Option::is_none,
        tls_client_cert if Option::is_none,
        tls_client_key if Option::is_none,
        confirm if |c: &bool| *c,
    ]
});

/// The HTTP version of a check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HttpVersion {
    /// HTTP/1.1.
    #[default]
    #[serde(rename = "1.1")]
    Http11,
    /// HTTP/2, over TLS only (ALPN `h2`).
    #[serde(rename = "2")]
    Http2,
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
fn default_jitter() -> u8 {
    DEFAULT_JITTER_PERCENT
}

/// Deserializes `headers`, refusing a name given twice (a JSON object may
/// repeat a key; a map would keep only the last value). The error is raised
/// from the repeated entry's value, so that its path names the header.
fn headers_given_once<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct Headers;
    impl<'de> Visitor<'de> for Headers {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of header names to values")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut headers = BTreeMap::new();
            while let Some(name) = map.next_key::<String>()? {
                let repeated = headers.contains_key(&name);
                let value = map.next_value_seed(HeaderValueOnce { repeated })?;
                headers.insert(name, value);
            }
            Ok(headers)
        }
    }
    deserializer.deserialize_map(Headers)
}

/// One header value; an error if its name was already given.
struct HeaderValueOnce {
    repeated: bool,
}

impl<'de> DeserializeSeed<'de> for HeaderValueOnce {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        let value = String::deserialize(deserializer)?;
        if self.repeated {
            return Err(de::Error::custom(
                "this header is given twice; only one value would be kept",
            ));
        }
        Ok(value)
    }
}

/// An invalid spec or origin id: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// The offending field (`address`, `expect_status[1]`, `headers.X-A`,
    /// `id`, `body` for the document as a whole, …).
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
    /// Parses `"NNN"` or `"NNN-NNN"`: exactly three ASCII digits each, no
    /// spaces or signs, 100–599, low ≤ high.
    ///
    /// # Errors
    /// What is wrong with `s`, for a human.
    pub fn parse(s: &str) -> Result<Self, String> {
        let code = |t: &str| -> Result<u16, String> {
            // `u16::from_str` takes a `+` sign: read the digits ourselves.
            if t.len() != 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "{t:?} is not a status code: write NNN or NNN-NNN, three digits each, \
                     without spaces or signs (e.g. \"200\" or \"200-204\")"
                ));
            }
            let c = t.bytes().fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
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

/// Parses a JSON spec, naming the offending field on error (a body that is
/// not a JSON object, a type error, a missing `address`, an unknown or
/// repeated field, or a failed [validation](OriginSpec::validate)).
pub fn parse_json(body: &[u8]) -> Result<OriginSpec, SpecError> {
    // serde takes a sequence for a struct (`["h:1"]` would be a spec).
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        let got = match first {
            None => "an empty body",
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b'-' | b'0'..=b'9') => "a number",
            Some(b't' | b'f') => "a boolean",
            Some(b'n') => "null",
            Some(_) => "not JSON",
        };
        return Err(SpecError::new(
            "body",
            format!("must be a JSON object ({{\"address\": ...}}), got {got}"),
        ));
    }
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

/// The field serde names in "unknown field `x`, expected …", "missing
/// field `x`" or "duplicate field `x`" (a name may itself hold backticks);
/// `None` for an empty name.
pub(crate) fn field_in_message(message: &str) -> Option<String> {
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
            settling_interval_ms: None,
            down_interval_ms: None,
            jitter_percent: DEFAULT_JITTER_PERCENT,
            request_body: None,
            expect_body: None,
            expect_body_regex: None,
            expect_headers: BTreeMap::new(),
            http_version: HttpVersion::Http11,
            tls_ca: None,
            tls_client_cert: None,
            tls_client_key: None,
            confirm: true,
        }
    }

    /// Checks every field against the rules of the [module docs](self); the
    /// error names the first bad field and says why.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_address(&self.address).map_err(|m| SpecError::new("address", m))?;
        validate_path(&self.path).map_err(|m| SpecError::new("path", m))?;
        validate_method(&self.method).map_err(|m| SpecError::new("method", m))?;
        if let Some(h) = &self.host {
            validate_host(h).map_err(|m| SpecError::new("host", m))?;
        }
        validate_headers(&self.headers)?;
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
        matchers::validate(self)
    }

    /// The parsed expected status ranges (invalid entries are skipped; a
    /// validated spec has none).
    pub fn status_ranges(&self) -> Vec<StatusRange> {
        self.expect_status
            .iter()
            .filter_map(|s| StatusRange::parse(s).ok())
            .collect()
    }

    /// The host part of the address (without brackets); empty if the
    /// address is not `host:port`.
    pub fn address_host(&self) -> &str {
        match split_host_port(&self.address) {
            Ok((host, Some(_))) => host
                .strip_prefix('[')
                .map_or(host, |h| h.strip_suffix(']').unwrap_or(h)),
            _ => "",
        }
    }
}

/// Whether `b` is an RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The first character of `s` that is not a `tchar`, quoted for a message.
fn first_non_token(s: &str) -> Option<char> {
    s.chars().find(|c| !(c.is_ascii() && is_tchar(*c as u8)))
}

fn validate_method(method: &str) -> Result<(), String> {
    if method.is_empty() {
        return Err("must not be empty (e.g. GET or HEAD)".into());
    }
    if method.len() > MAX_METHOD {
        return Err(format!("must be at most {MAX_METHOD} characters"));
    }
    if let Some(c) = first_non_token(method) {
        return Err(format!(
            "{c:?} is not allowed in a method (RFC 9110 token characters: letters, digits \
             and !#$%&'*+-.^_`|~)"
        ));
    }
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(format!(
            "methods are case-sensitive and {method:?} has lower-case letters; did you mean {:?}?",
            method.to_ascii_uppercase()
        ));
    }
    if method == "CONNECT" {
        return Err(
            "CONNECT needs an authority-form target (host:port) instead of a path, which a \
             check does not send; use kind \"tcp\" to check that a port opens"
                .into(),
        );
    }
    Ok(())
}

fn validate_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} must start with /"));
    }
    if path.len() > MAX_PATH {
        return Err(format!(
            "is {} bytes; at most {MAX_PATH} are allowed",
            path.len()
        ));
    }
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "{c:?} is not allowed: only visible ASCII (percent-encode anything else, e.g. a \
             space as %20)"
        ));
    }
    if path.contains('#') {
        return Err(
            "a fragment (#...) is never sent; remove it, or percent-encode # as %23".into(),
        );
    }
    if path.contains('\\') {
        return Err("a backslash would be sent as /; percent-encode it as %5C".into());
    }
    let url = reqwest::Url::parse(&format!("http://h{path}"))
        .map_err(|e| format!("{path:?} is not a valid URL path: {e}"))?;
    let mut sent = url.path().to_owned();
    if let Some(q) = url.query() {
        sent.push('?');
        sent.push_str(q);
    }
    let before_query = path.split_once('?').map_or(path, |(p, _)| p);
    if let Some(segment) = before_query.split('/').find(|s| {
        matches!(
            s.to_ascii_lowercase().replace("%2e", ".").as_str(),
            "." | ".."
        )
    }) {
        return Err(format!(
            "the dot segment {segment:?} would be removed (the request would be sent for \
             {sent:?}); write the path without it"
        ));
    }
    if sent != path {
        return Err(format!(
            "would be sent as {sent:?}; write it that way (characters such as \" < > ` {{ }} \
             are percent-encoded, and ' in a query)"
        ));
    }
    Ok(())
}

/// Splits `host:port` / `[v6]:port` / `host` / `[v6]`: the host (brackets
/// kept) and the port text, if any. Checks only the shape.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if s.starts_with('[') {
        let end = s
            .find(']')
            .ok_or_else(|| format!("{s:?}: an IPv6 literal must be closed with ]"))?;
        let (host, rest) = s.split_at(end + 1);
        return match rest {
            "" => Ok((host, None)),
            _ => match rest.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!(
                    "{s:?}: after {host} comes {rest:?}; expected :port"
                )),
            },
        };
    }
    if s.contains(['[', ']']) {
        return Err(format!(
            "{s:?}: brackets may only enclose an IPv6 literal at the start, as in [::1]:80"
        ));
    }
    match s.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Err(format!(
            "{s:?}: an IPv6 address must be in brackets, as in [::1]:80"
        )),
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((s, None)),
    }
}

/// A port: 1–65535, ASCII digits only, no leading zero.
fn parse_port(port: &str) -> Result<u16, String> {
    let bad = || {
        format!("{port:?} is not a port: write 1-65535 in digits, without sign or leading zeros")
    };
    if port.is_empty()
        || port.len() > 5
        || !port.bytes().all(|b| b.is_ascii_digit())
        || port.starts_with('0')
    {
        return Err(if port == "0" {
            "port 0 cannot be checked".into()
        } else {
            bad()
        });
    }
    port.parse::<u16>().map_err(|_| bad())
}

/// Checks a host: a bracketed IPv6 literal, an IPv4 literal or an RFC 1123
/// DNS name. Returns whether it is a DNS name.
fn validate_host_part(host: &str) -> Result<bool, String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').unwrap_or(inner);
        if inner.contains('%') {
            return Err(format!(
                "{host}: zone ids (%...) are not supported; use an address without one"
            ));
        }
        inner
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("{host} is not an IPv6 address"))?;
        return Ok(false);
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "{host:?} is not a host: {c:?} is not allowed (a DNS name has letters, digits, \
             hyphens and dots; an IPv6 address goes in brackets)"
        ));
    }
    if host.len() > MAX_HOST_NAME {
        return Err(format!(
            "the host name is {} characters; at most {MAX_HOST_NAME} are allowed",
            host.len()
        ));
    }
    if host.ends_with('.') {
        return Err(format!(
            "{host:?}: a trailing dot is not supported; remove it"
        ));
    }
    let last = host.rsplit('.').next().unwrap_or(host);
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .or_else(|| last.strip_prefix("0X"))
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        // The URL parser reads a name ending in a number as an IPv4 address
        // (`1.2.3` is 1.2.0.3, `010.0.0.1` is octal): only a plain one is
        // taken.
        host.parse::<Ipv4Addr>().map_err(|_| {
            format!(
                "{host:?} ends in a number but is not an IPv4 address (a.b.c.d, each 0-255, \
                 without leading zeros)"
            )
        })?;
        return Ok(false);
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err(format!("{host:?} has an empty label (..)"));
        }
        if label.len() > 63 {
            return Err(format!(
                "{host:?}: the label {label:?} is longer than 63 characters"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "{host:?}: the label {label:?} starts or ends with a hyphen"
            ));
        }
    }
    Ok(true)
}

fn validate_address(address: &str) -> Result<(), String> {
    let (host, port) = split_host_port(address)?;
    let Some(port) = port else {
        return Err(format!("{address:?} must be host:port"));
    };
    let is_name = validate_host_part(host)?;
    parse_port(port)?;
    if is_name && host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "host names are sent in lower case: write {:?}",
            address.to_ascii_lowercase()
        ));
    }
    // What the URL of a check holds: a non-canonical IPv6 literal would be
    // rewritten (and so would anything this function missed).
    let url = reqwest::Url::parse(&format!("http://{address}/"))
        .map_err(|e| format!("{address:?} is not a valid address: {e}"))?;
    if url.host_str() != Some(host) {
        return Err(format!(
            "{host} would be sent as {}; write it that way",
            url.host_str().unwrap_or("nothing")
        ));
    }
    Ok(())
}

fn validate_host(host: &str) -> Result<(), String> {
    let (name, port) = split_host_port(host)?;
    validate_host_part(name)?;
    if let Some(port) = port {
        parse_port(port)?;
    }
    Ok(())
}

fn validate_headers(headers: &BTreeMap<String, String>) -> Result<(), SpecError> {
    validate_header_map("headers", headers, true)
}

/// Checks a map of header names to values: at most [`MAX_HEADERS`], names
/// RFC 9110 tokens distinct case-insensitively (and not reserved, for
/// request headers), values of visible ASCII, spaces and tabs without
/// leading or trailing whitespace. Errors name `{field}.{name}`.
fn validate_header_map(
    field: &str,
    headers: &BTreeMap<String, String>,
    request: bool,
) -> Result<(), SpecError> {
    if headers.len() > MAX_HEADERS {
        return Err(SpecError::new(
            field,
            format!(
                "{} headers; at most {MAX_HEADERS} are allowed",
                headers.len()
            ),
        ));
    }
    // lower-case name -> the name as given
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (name, value) in headers {
        let err = |m: String| SpecError::new(format!("{field}.{name}"), m);
        if name.is_empty() {
            return Err(err("a header name must not be empty".into()));
        }
        if name.len() > MAX_HEADER_NAME {
            return Err(err(format!(
                "the name is {} bytes; at most {MAX_HEADER_NAME} are allowed",
                name.len()
            )));
        }
        if let Some(c) = first_non_token(name) {
            return Err(err(format!(
                "{c:?} is not allowed in a header name (RFC 9110 token characters: letters, \
                 digits and !#$%&'*+-.^_`|~)"
            )));
        }
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            _ if !request => {}
            "host" => {
                return Err(err(
                    "set the Host header with the `host` field, not in headers".into(),
                ));
            }
            "user-agent" => {
                return Err(err(
                    "the agent sets User-Agent itself (so that an origin can tell which agent \
                     checked it); it cannot be set"
                        .into(),
                ));
            }
            reserved if RESERVED_HEADERS.contains(&reserved) => {
                return Err(err(format!(
                    "{name} is a hop-by-hop or framing header that the HTTP client manages; \
                     it cannot be set"
                )));
            }
            _ => {}
        }
        if let Some(first) = seen.insert(lower, name) {
            return Err(err(format!(
                "duplicates the header {first:?}: header names are case-insensitive and only \
                 one would be sent"
            )));
        }
        if value.len() > MAX_HEADER_VALUE {
            return Err(err(format!(
                "the value is {} bytes; at most {MAX_HEADER_VALUE} are allowed",
                value.len()
            )));
        }
        if let Some(c) = value
            .chars()
            .find(|c| !(*c == '\t' || (' '..='~').contains(c)))
        {
            return Err(err(format!(
                "{c:?} is not allowed in a header value (visible ASCII, spaces and tabs only)"
            )));
        }
        if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
            return Err(err(
                "leading or trailing whitespace would be dropped from the value; remove it".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> String {
        parse_json(body.as_bytes()).expect_err("invalid").field
    }

    /// The error of a spec made from `{"address": "h:1", <extra>}`.
    fn error_of(extra: &str) -> SpecError {
        let body = format!(r#"{{"address": "h:1", {extra}}}"#);
        parse_json(body.as_bytes()).expect_err(&body)
    }

    /// `s` as a JSON string.
    fn q(s: &str) -> String {
        serde_json::to_string(s).expect("a string encodes")
    }

    fn accepted(extra: &str) -> OriginSpec {
        let body = format!(r#"{{"address": "h:1", {extra}}}"#);
        parse_json(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"))
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
        assert_eq!(
            field_of(r#"{"address": "h:1", "path": "/a", "path": "/b"}"#),
            "path"
        );
        assert_eq!(field_of(r#"not json"#), "body");
    }

    #[test]
    fn addresses_and_ids() {
        for good in [
            "example.com:443",
            "10.0.0.1:80",
            "[::1]:8080",
            "h:1",
            "a-b.c0:65535",
            "xn--bcher-kva.example:80",
            "[2001:db8::7]:1",
        ] {
            assert_eq!(OriginSpec::new(good).validate(), Ok(()), "{good}");
        }
        for bad in ["example.com", ":80", "h:0", "h:99999", "::1:80", "a b:80"] {
            assert!(OriginSpec::new(bad).validate().is_err(), "{bad}");
        }
        assert_eq!(OriginSpec::new("[::1]:80").address_host(), "::1");
        assert_eq!(OriginSpec::new("h:1").address_host(), "h");
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

    /// The spec as the first release wrote it (MessagePack array of these
    /// fields, in this order).
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct FirstReleaseSpec {
        address: String,
        kind: Kind,
        path: String,
        method: String,
        host: Option<String>,
        headers: BTreeMap<String, String>,
        expect_status: Vec<String>,
        interval_ms: u64,
        timeout_ms: u64,
        rise: u32,
        fall: u32,
        initial: Status,
        tls_verify: bool,
    }

    fn first_release(spec: &OriginSpec) -> FirstReleaseSpec {
        FirstReleaseSpec {
            address: spec.address.clone(),
            kind: spec.kind,
            path: spec.path.clone(),
            method: spec.method.clone(),
            host: spec.host.clone(),
            headers: spec.headers.clone(),
            expect_status: spec.expect_status.clone(),
            interval_ms: spec.interval_ms,
            timeout_ms: spec.timeout_ms,
            rise: spec.rise,
            fall: spec.fall,
            initial: spec.initial,
            tls_verify: spec.tls_verify,
        }
    }

    /// A spec that uses no field added since the first release is
    /// replicated byte for byte as that release wrote it (so its agents can
    /// read it during a rolling upgrade), and what it wrote reads back with
    /// the defaults of the added fields.
    #[test]
    fn a_spec_without_new_fields_is_encoded_as_the_first_release_did() {
        let mut spec = OriginSpec::new("h:1");
        spec.headers.insert("x-a".into(), "1".into());
        let old = rmp_serde::to_vec(&first_release(&spec)).expect("encode");
        assert_eq!(rmp_serde::to_vec(&spec).expect("encode"), old);
        assert_eq!(
            rmp_serde::from_slice::<OriginSpec>(&old).expect("decode"),
            spec
        );
    }

    /// A spec that uses an added field carries the added fields up to the
    /// last one used (not the ones after it) and reads back whole.
    #[test]
    fn added_fields_are_written_up_to_the_last_one_used() {
        let mut spec = OriginSpec::new("h:1");
        spec.settling_interval_ms = Some(500);
        let one = rmp_serde::to_vec(&spec).expect("encode");
        assert_eq!(
            rmp_serde::from_slice::<OriginSpec>(&one).expect("decode"),
            spec
        );
        spec.tls_client_key = Some("k.pem".into());
        let all = rmp_serde::to_vec(&spec).expect("encode");
        assert!(all.len() > one.len());
        assert_eq!(
            rmp_serde::from_slice::<OriginSpec>(&all).expect("decode"),
            spec
        );
        // The array holds 13 + 1 and 13 + 11 elements.
        assert_eq!(one[0], 0x90 | 14);
        assert_eq!(all[0], 0xdc, "array 16: {:x}", all[0]);
        assert_eq!(u16::from_be_bytes([all[1], all[2]]), 24);
        // JSON always shows every field.
        let json = serde_json::to_value(OriginSpec::new("h:1")).expect("json");
        assert_eq!(json["jitter_percent"], 10);
        assert_eq!(json["http_version"], "1.1");
        assert!(json.as_object().expect("object").contains_key("tls_ca"));
    }

    /// Regression: `method: "CONNECT"` was accepted, then sent with a path
    /// (CONNECT takes `host:port`), so the origin was always down.
    #[test]
    fn regression_connect_is_refused_saying_why() {
        let e = error_of(r#""method": "CONNECT""#);
        assert_eq!(e.field, "method");
        assert!(e.message.contains("authority-form"), "{e}");
    }

    /// Regression: the valid method `M-SEARCH` was refused (only A-Z was
    /// allowed); any RFC 9110 token without lower-case letters is a method.
    #[test]
    fn regression_token_methods_are_accepted_and_lower_case_is_refused() {
        for good in ["M-SEARCH", "GET", "PROPFIND", "X_1!#$%&'*+.^`|~", "BREW"] {
            let spec = accepted(&format!(r#""method": {}"#, q(good)));
            assert_eq!(spec.method, good);
        }
        let e = error_of(r#""method": "get""#);
        assert_eq!(e.field, "method");
        assert!(e.message.contains("\"GET\""), "suggests upper case: {e}");
        for bad in ["", "GE T", "GET/1", "G\u{e9}T", "(GET)", "M-Search"] {
            let e = error_of(&format!(r#""method": {}"#, q(bad)));
            assert_eq!(e.field, "method", "{bad:?}");
        }
        assert_eq!(
            error_of(&format!(r#""method": "{}""#, "A".repeat(33))).field,
            "method"
        );
        accepted(&format!(r#""method": "{}""#, "A".repeat(32)));
    }

    /// Regression: headers `X-A` and `x-a` were both stored and only one was
    /// sent. Names are compared case-insensitively; a name repeated in the
    /// JSON object is refused too (serde kept only the last value).
    #[test]
    fn regression_case_insensitive_duplicate_headers_are_refused() {
        let e = error_of(r#""headers": {"X-A": "1", "x-a": "2"}"#);
        assert_eq!(e.field, "headers.x-a");
        assert!(e.message.contains("\"X-A\""), "says which one: {e}");
        let e = error_of(r#""headers": {"X-A": "1", "X-A": "2"}"#);
        assert_eq!(e.field, "headers.X-A");
        assert!(e.message.contains("twice"), "{e}");
        let spec = accepted(r#""headers": {"X-A": "1", "X-B": "2"}"#);
        assert_eq!(spec.headers.len(), 2);
    }

    /// Header names must be tokens; the checker's own headers, hop-by-hop
    /// and framing headers are refused; values are sent exactly as given.
    #[test]
    fn reserved_and_malformed_headers_are_refused() {
        for name in [
            "Host",
            "HOST",
            "User-Agent",
            "content-length",
            "Transfer-Encoding",
            "Connection",
            "Upgrade",
            "TE",
            "Trailer",
            "Keep-Alive",
            "Proxy-Connection",
            "Expect",
        ] {
            let e = error_of(&format!(r#""headers": {{"{name}": "x"}}"#));
            assert_eq!(e.field, format!("headers.{name}"), "{e}");
        }
        assert!(
            error_of(r#""headers": {"Host": "x"}"#)
                .message
                .contains("`host` field")
        );
        for name in ["", "a b", "a:b", "é", "(x)", "a/b"] {
            let e = error_of(&format!(r#""headers": {{{}: "x"}}"#, q(name)));
            assert_eq!(e.field, format!("headers.{name}"), "{e}");
        }
        for value in [" x", "x ", "\tx", "a\u{7f}", "a\nb", "caf\u{e9}", "a\rb"] {
            let e = error_of(&format!(r#""headers": {{"X-A": {}}}"#, q(value)));
            assert_eq!(e.field, "headers.X-A", "{value:?}: {e}");
        }
        let long = "v".repeat(MAX_HEADER_VALUE + 1);
        assert_eq!(
            error_of(&format!(r#""headers": {{"X-A": "{long}"}}"#)).field,
            "headers.X-A"
        );
        let spec =
            accepted(r#""headers": {"X-Tab": "a\tb  c", "X-Empty": "", "x!#$%&'*+.^_`|~": "1"}"#);
        assert_eq!(spec.headers["X-Tab"], "a\tb  c");
        let many: Vec<String> = (0..=MAX_HEADERS)
            .map(|i| format!(r#""X-{i}": "v""#))
            .collect();
        assert_eq!(
            error_of(&format!(r#""headers": {{{}}}"#, many.join(","))).field,
            "headers"
        );
    }

    /// Regression: expect_status `"+200"` and `" 200 - 204 "` were accepted
    /// (`u16::from_str` takes a sign, and entries were trimmed) and stored
    /// as typed.
    #[test]
    fn regression_status_entries_are_exactly_digits() {
        for bad in [
            "+200",
            " 200 - 204 ",
            "200 ",
            " 200",
            "200 -204",
            "-200",
            "200-",
            "0200",
            "20",
            "2xx",
            "200-204-300",
            "２００",
            "099",
            "600",
            "204-200",
        ] {
            let e = error_of(&format!(r#""expect_status": ["200", {}]"#, q(bad)));
            assert_eq!(e.field, "expect_status[1]", "{bad:?}");
        }
        let spec = accepted(r#""expect_status": ["100", "599", "200-204", "200"]"#);
        assert_eq!(spec.status_ranges().len(), 4);
    }

    /// Regression: `/../../ok` was sent as `/ok` (the URL parser removes dot
    /// segments). A path is sent exactly as given, or refused saying what
    /// would change.
    #[test]
    fn regression_paths_are_sent_exactly_or_refused() {
        for (bad, says) in [
            ("/../../ok", "dot segment"),
            ("/a/./b", "dot segment"),
            ("/a/..", "dot segment"),
            ("/.", "dot segment"),
            ("/%2e%2E/ok", "dot segment"),
            ("/.%2e/ok", "dot segment"),
            ("/%2E", "dot segment"),
            ("/a#frag", "fragment"),
            ("/a\\b", "backslash"),
            ("/caf\u{e9}", "visible ASCII"),
            ("/a b", "visible ASCII"),
            ("/a\tb", "visible ASCII"),
            ("/a\u{0}", "visible ASCII"),
            ("/a\"b", "sent as"),
            ("/a<b>", "sent as"),
            ("/a`b", "sent as"),
            ("/a{b}", "sent as"),
            ("/a?q='x'", "sent as"),
            ("relative", "start with /"),
            ("", "start with /"),
        ] {
            let e = error_of(&format!(r#""path": {}"#, q(bad)));
            assert_eq!(e.field, "path", "{bad:?}");
            assert!(e.message.contains(says), "{bad:?}: {e}");
        }
        let e = error_of(r#""path": "/../../ok""#);
        assert!(
            e.message.contains("\"/ok\""),
            "says what would be sent: {e}"
        );
        for good in [
            "/",
            "/ok",
            "/a/b/",
            "//double",
            "/.well-known/health",
            "/a..b/...",
            "/%2e%2e%2fx",
            "/a%zz",
            "/a?b=c&d=/../e",
            "/a?",
            "/a?x=%20&y=..",
            "/~user/!$&()*+,;=:@[]|^",
        ] {
            assert_eq!(accepted(&format!(r#""path": {}"#, q(good))).path, good);
        }
        let long = format!("/{}", "a".repeat(MAX_PATH));
        assert_eq!(error_of(&format!(r#""path": "{long}""#)).field, "path");
        accepted(&format!(r#""path": "/{}""#, "a".repeat(MAX_PATH - 1)));
    }

    /// Regression: a JSON array was accepted as a spec (serde reads a
    /// sequence into a struct, field by field).
    #[test]
    fn regression_only_a_json_object_is_a_spec() {
        for body in [
            r#"["h:1"]"#,
            r#"  ["h:1", "tcp"]"#,
            r#""h:1""#,
            "1",
            "null",
            "true",
            "",
            "   ",
        ] {
            let e = parse_json(body.as_bytes()).expect_err(body);
            assert_eq!(e.field, "body", "{body:?}");
            assert!(e.message.contains("JSON object"), "{e}");
        }
        parse_json(b" \n{\"address\": \"h:1\"}").expect("leading whitespace is fine");
    }

    /// Regression: addresses with control characters, `[::1]]:80` and a
    /// 300-character host were accepted.
    #[test]
    fn regression_addresses_are_host_and_port() {
        let label = "a".repeat(63);
        let long_ok = format!("{}.{}", [label.as_str(); 3].join("."), "a".repeat(61));
        assert_eq!(long_ok.len(), 253);
        assert_eq!(OriginSpec::new(format!("{long_ok}:80")).validate(), Ok(()));
        let too_long = format!("{}:80", "a".repeat(300));
        for bad in [
            "h\u{0}:80",
            "h\u{7}x:80",
            "h\n:80",
            "[::1]]:80",
            "[::1]x:80",
            "[::1:80",
            "[::1]",
            "]::1[:80",
            &too_long,
            &format!("{}.b:80", "a".repeat(64)),
            "h.:80",
            "-h:80",
            "h-:80",
            "a..b:80",
            "a_b:80",
            "a/b:80",
            "user@h:80",
            "Example.com:80",
            "[fe80::1%eth0]:80",
            "[::ffff:1.2.3.4]:80",
            "[0:0::1]:80",
            "[::G]:80",
            "1.2.3:80",
            "010.0.0.1:80",
            "256.0.0.1:80",
            "a.0x10:80",
            "h:+80",
            "h:080",
            "h:-1",
            "h:",
            "h:0",
            "h:65536",
            "h:8 0",
            ":80",
        ] {
            let e = OriginSpec::new(bad).validate().expect_err(bad);
            assert_eq!(e.field, "address", "{bad:?}");
        }
        let e = OriginSpec::new("[0:0::1]:80")
            .validate()
            .expect_err("long form");
        assert!(e.message.contains("[::1]"), "says the canonical form: {e}");
        let e = OriginSpec::new("Example.com:80")
            .validate()
            .expect_err("case");
        assert!(e.message.contains("example.com:80"), "{e}");
    }

    /// Regression: a `host` of `a/b` was accepted (and sent as the Host
    /// header). `host` is a DNS name or an IP literal with an optional port.
    #[test]
    fn regression_host_is_a_name_or_ip_with_an_optional_port() {
        for bad in [
            "a/b", "", "a b", "a:", "a:0", "a:+1", "a:b", "[::1", "::1", "[::1]]", "a..b", "h.",
            "a@b", "1.2.3", "x\u{7f}",
        ] {
            let e = error_of(&format!(r#""host": {}"#, q(bad)));
            assert_eq!(e.field, "host", "{bad:?}");
        }
        assert_eq!(
            error_of(&format!(r#""host": "{}""#, "a".repeat(300))).field,
            "host"
        );
        for good in [
            "origin.example",
            "Origin.Example",
            "origin.example:8443",
            "10.0.0.1",
            "10.0.0.1:80",
            "[::1]",
            "[::1]:443",
            "localhost",
        ] {
            let spec = accepted(&format!(r#""host": {}"#, q(good)));
            assert_eq!(spec.host.as_deref(), Some(good));
        }
    }
}
