//! The rules of the fields added to a spec after the first release
//! (intervals per state, request body, body and header matchers, HTTP/2 and
//! the TLS files), and the matching of a response against them.

use std::collections::BTreeMap;

use regex::bytes::{Regex, RegexBuilder};

use super::{
    HttpVersion, Kind, MAX_BODY_MATCHER, MAX_REGEX_SIZE, MAX_REQUEST_BODY, OriginSpec, SpecError,
    tls_files, validate_header_map,
};

/// Longest interval, in ms (a day), as for `interval_ms`.
const MAX_INTERVAL_MS: u64 = 86_400_000;

/// Checks the added fields of `spec` (the rest is already checked).
pub(super) fn validate(spec: &OriginSpec) -> Result<(), SpecError> {
    for (field, value) in [
        ("settling_interval_ms", spec.settling_interval_ms),
        ("down_interval_ms", spec.down_interval_ms),
    ] {
        if value.is_some_and(|ms| !(100..=MAX_INTERVAL_MS).contains(&ms)) {
            return Err(SpecError::new(
                field,
                format!("must be between 100 and {MAX_INTERVAL_MS}"),
            ));
        }
    }
    if spec.jitter_percent > 50 {
        return Err(SpecError::new("jitter_percent", "must be between 0 and 50"));
    }
    let http_only = |field: &str| {
        SpecError::new(
            field,
            "applies to kind \"http\" and \"https\" only; a tcp check sends no request",
        )
    };
    let tcp = spec.kind == Kind::Tcp;
    if let Some(body) = &spec.request_body {
        if tcp {
            return Err(http_only("request_body"));
        }
        if body.len() > MAX_REQUEST_BODY {
            return Err(SpecError::new(
                "request_body",
                format!(
                    "is {} bytes; at most {MAX_REQUEST_BODY} are allowed",
                    body.len()
                ),
            ));
        }
    }
    if let Some(text) = &spec.expect_body {
        if tcp {
            return Err(http_only("expect_body"));
        }
        if text.is_empty() || text.len() > MAX_BODY_MATCHER {
            return Err(SpecError::new(
                "expect_body",
                format!("must be 1-{MAX_BODY_MATCHER} bytes"),
            ));
        }
    }
    if let Some(pattern) = &spec.expect_body_regex {
        if tcp {
            return Err(http_only("expect_body_regex"));
        }
        compile(pattern).map_err(|m| SpecError::new("expect_body_regex", m))?;
    }
    if !spec.expect_headers.is_empty() {
        if tcp {
            return Err(http_only("expect_headers"));
        }
        validate_header_map("expect_headers", &spec.expect_headers, false)?;
    }
    if spec.http_version == HttpVersion::Http2 && spec.kind != Kind::Https {
        return Err(SpecError::new(
            "http_version",
            "\"2\" is checked over TLS only (kind \"https\", ALPN h2); cleartext HTTP/2 (h2c) \
             is not supported",
        ));
    }
    tls_files::validate_names(spec)
}

/// Compiles a body regex within the bounds of a spec.
fn compile(pattern: &str) -> Result<Regex, String> {
    if pattern.is_empty() || pattern.len() > MAX_BODY_MATCHER {
        return Err(format!("must be 1-{MAX_BODY_MATCHER} bytes"));
    }
    RegexBuilder::new(pattern)
        .size_limit(MAX_REGEX_SIZE)
        .dfa_size_limit(MAX_REGEX_SIZE)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => {
                format!("compiles to more than {limit} bytes; simplify it")
            }
            // The syntax error spans lines (the pattern, a caret, the
            // cause): one line for the API.
            other => format!(
                "is not a valid regular expression: {}",
                other
                    .to_string()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        })
}

/// The body matchers of a spec, compiled once: a substring and a regex,
/// both of which must match.
#[derive(Debug, Clone)]
pub struct BodyMatcher {
    text: Option<Vec<u8>>,
    regex: Option<Regex>,
}

impl BodyMatcher {
    /// The matchers of `spec`; `None` if it has none (the body need not be
    /// kept). A regex that does not compile (only in a spec that was not
    /// validated) is an error, saying why.
    pub fn of(spec: &OriginSpec) -> Result<Option<BodyMatcher>, String> {
        if spec.expect_body.is_none() && spec.expect_body_regex.is_none() {
            return Ok(None);
        }
        let regex = spec
            .expect_body_regex
            .as_deref()
            .map(compile)
            .transpose()
            .map_err(|m| format!("expect_body_regex {m}"))?;
        Ok(Some(BodyMatcher {
            text: spec.expect_body.as_ref().map(|t| t.as_bytes().to_vec()),
            regex,
        }))
    }

    /// Why `body` does not match, for the record's reason (`None`: it
    /// matches).
    pub fn mismatch(&self, body: &[u8]) -> Option<String> {
        if let Some(text) = &self.text
            && memchr::memmem::find(body, text).is_none()
        {
            return Some(format!(
                "{:?} not found in {} bytes",
                String::from_utf8_lossy(text),
                body.len()
            ));
        }
        if let Some(regex) = &self.regex
            && !regex.is_match(body)
        {
            return Some(format!(
                "no match for /{}/ in {} bytes",
                regex.as_str(),
                body.len()
            ));
        }
        None
    }
}

/// Why the response headers do not carry `expected` (name → exact value,
/// names case-insensitive; any one of a repeated header's values may
/// match), for the record's reason; `None` when they do. `values(name)`
/// gives the values of a (lower-case) header name.
pub fn header_mismatch<'a, F, I>(expected: &BTreeMap<String, String>, values: F) -> Option<String>
where
    F: Fn(&str) -> I,
    I: Iterator<Item = &'a [u8]>,
{
    for (name, want) in expected {
        let lower = name.to_ascii_lowercase();
        let mut got = values(&lower).peekable();
        if got.peek().is_none() {
            return Some(format!("{lower} is missing"));
        }
        let mut seen = Vec::new();
        for value in got {
            if value == want.as_bytes() {
                seen.clear();
                break;
            }
            seen.push(String::from_utf8_lossy(value).into_owned());
        }
        if !seen.is_empty() {
            return Some(format!(
                "{lower} is {:?}, expected {want:?}",
                seen.join(", ")
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> OriginSpec {
        OriginSpec::new("127.0.0.1:80")
    }

    #[test]
    fn body_matchers_need_both_to_match() {
        let mut s = spec();
        assert!(BodyMatcher::of(&s).expect("none").is_none());
        s.expect_body = Some("ok".into());
        s.expect_body_regex = Some(r#""status":\s*"(up|green)""#.into());
        let m = BodyMatcher::of(&s).expect("valid").expect("some");
        assert_eq!(m.mismatch(br#"{"status": "green", "ok": 1}"#), None);
        assert_eq!(
            m.mismatch(br#"{"status": "red"}"#).as_deref(),
            Some(r#""ok" not found in 17 bytes"#)
        );
        assert_eq!(
            m.mismatch(br#"{"status": "red", "ok": 1}"#).as_deref(),
            Some(r#"no match for /"status":\s*"(up|green)"/ in 26 bytes"#)
        );
        // Bytes that are not UTF-8 are searched too.
        s.expect_body_regex = None;
        let m = BodyMatcher::of(&s).expect("valid").expect("some");
        assert_eq!(m.mismatch(b"\xff\xfeok\xff"), None);
    }

    #[test]
    fn header_matchers_compare_exact_values_of_case_insensitive_names() {
        let headers: Vec<(&str, &[u8])> = vec![
            ("content-type", b"application/json"),
            ("x-role", b"replica"),
            ("x-role", b"primary"),
        ];
        let values = |name: &str| {
            let name = name.to_owned();
            headers
                .clone()
                .into_iter()
                .filter(move |(n, _)| *n == name)
                .map(|(_, v)| v)
        };
        let want = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            header_mismatch(
                &want(&[("Content-Type", "application/json"), ("X-Role", "primary")]),
                values
            ),
            None
        );
        assert_eq!(
            header_mismatch(&want(&[("X-Role", "leader")]), values).as_deref(),
            Some(r#"x-role is "replica, primary", expected "leader""#)
        );
        assert_eq!(
            header_mismatch(&want(&[("ETag", "1")]), values).as_deref(),
            Some("etag is missing")
        );
    }

    #[test]
    fn a_regex_too_big_to_compile_is_refused_saying_so() {
        let mut s = spec();
        // Small to write, huge compiled: bounded by the size limit.
        s.expect_body_regex = Some(r"\w{1000}\w{1000}\w{1000}".into());
        let e = s.validate().expect_err("too big");
        assert_eq!(e.field, "expect_body_regex");
        assert!(e.message.contains("compiles to more than"), "{e}");
        s.expect_body_regex = Some("(unclosed".into());
        let e = s.validate().expect_err("syntax");
        assert_eq!(e.field, "expect_body_regex");
        assert!(
            e.message.starts_with("is not a valid regular expression:")
                && !e.message.contains('\n'),
            "{e}"
        );
    }
}
