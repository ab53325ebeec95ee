//! "Any accepted spec, PUT and read back, is checked exactly as it reads"
//! (issue 12 item 6, strict specs).
//!
//! The property generates tricky specs (methods such as `M-SEARCH`,
//! `CONNECT` and `get`; paths with dot segments, `%2e`, `#`, `?`,
//! non-ASCII and backslashes; headers in mixed case, repeated, reserved;
//! odd hosts and status entries) and runs them through
//! [`spec::parse_json`], what `PUT /v1/origins/{id}` runs. A refused spec
//! must name one of its fields. An accepted one must read back (its JSON,
//! what `GET` returns, parses to the same spec) and, pointed at a
//! recording HTTP server, be sent exactly as it reads: the request line
//! is `{method} {path} HTTP/1.1`, `Host` is `host` (or the address), and
//! every header is there once with exactly its value.
//!
//! The second test does the same through a real agent's API, with the
//! cases users found, and checks that 400, 405 and 413 are all JSON
//! errors.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use healthcheck::{
    agent::Agent,
    checker::{Checker, CheckerConfig},
    config::AgentConfig,
    spec::{self, Kind, OriginSpec, SpecError},
};
use proptest::{prelude::*, test_runner::RngSeed};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// The fields of a spec, as JSON keys.
const FIELDS: [&str; 13] = [
    "address",
    "kind",
    "path",
    "method",
    "host",
    "headers",
    "expect_status",
    "interval_ms",
    "timeout_ms",
    "rise",
    "fall",
    "initial",
    "tls_verify",
];

/// Whether `field` (of a [`SpecError`]) names a real field of a spec.
fn is_a_field(field: &str) -> bool {
    FIELDS.contains(&field)
        || field == "body"
        || field.starts_with("headers.")
        || field
            .strip_prefix("expect_status[")
            .and_then(|rest| rest.strip_suffix(']'))
            .is_some_and(|i| i.parse::<usize>().is_ok())
}

/// A request head as the recording server saw it.
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn parse(head: &str) -> Seen {
        let mut lines = head.split("\r\n");
        let line = lines.next().unwrap_or_default().to_owned();
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (name, value) = l.split_once(':').unwrap_or((l, ""));
                // `name: value`: hyper writes one space after the colon, and
                // an accepted value has no whitespace of its own at its ends.
                (name.to_owned(), value.trim_matches([' ', '\t']).to_owned())
            })
            .collect();
        Seen { line, headers }
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// An HTTP server on 127.0.0.1 that records each request head and answers
/// `200 OK` with an empty body, closing the connection.
struct Recorder {
    addr: std::net::SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    async fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let record = heads.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 256 * 1024 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let end = head
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .unwrap_or(head.len());
                    let text = String::from_utf8_lossy(&head[..end]).into_owned();
                    record.lock().expect("lock").push(text);
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Recorder { addr, heads }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.heads.lock().expect("lock"))
    }
}

/// A JSON string.
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string encodes")
}

/// The pieces of a generated spec; `json` writes them as a PUT body would
/// hold them (headers as an object that may repeat a key).
#[derive(Debug, Clone)]
struct Case {
    address: String,
    https: bool,
    method: String,
    path: String,
    host: Option<String>,
    headers: Vec<(String, String)>,
    expect_status: Vec<String>,
}

impl Case {
    fn json(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(n, v)| format!("{}: {}", q(n), q(v)))
            .collect();
        let expect: Vec<String> = self.expect_status.iter().map(|s| q(s)).collect();
        let host = self
            .host
            .as_deref()
            .map_or(String::new(), |h| format!(r#""host": {}, "#, q(h)));
        format!(
            r#"{{"address": {}, "kind": {}, "method": {}, "path": {}, {host}"headers": {{{}}}, "expect_status": [{}], "timeout_ms": 3000}}"#,
            q(&self.address),
            q(if self.https { "https" } else { "http" }),
            q(&self.method),
            q(&self.path),
            headers.join(", "),
            expect.join(", "),
        )
    }
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(&["GET", "HEAD", "POST", "OPTIONS", "M-SEARCH", "PROPFIND"][..])
            .prop_map(str::to_owned),
        2 => "[A-Z][A-Z0-9_-]{0,10}",
        1 => Just("X!#$%&'*+-.^_`|~".to_owned()),
        1 => prop::sample::select(&["CONNECT", "get", "Get", "GE T", "", "G/T", "GÉT"][..])
            .prop_map(str::to_owned),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        20 => "[a-zA-Z0-9_~-]{1,6}",
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => prop::sample::select(&["%2e", "%2E%2e", ".%2E", "a..b", "...", ".well-known"][..])
            .prop_map(str::to_owned),
        1 => prop::sample::select(&["%41", "%zz", "%2f", "!$&()*+,;=:@", "[v6]", "|^"][..])
            .prop_map(str::to_owned),
        1 => prop::sample::select(&["é", "a\\b", "a b", "\"q\"", "{x}", "`", "<>", "\t"][..])
            .prop_map(str::to_owned),
    ];
    let query = prop_oneof![
        4 => "[a-z]{1,4}=[a-z0-9.]{0,4}",
        1 => prop::sample::select(&["", "a=..&b=/../c", "q='x'", "x=%20", "é=1", "a=`{}|^", "a b"][..])
            .prop_map(str::to_owned),
    ];
    (
        prop::bool::weighted(0.95),
        prop::collection::vec(segment, 0..5),
        prop::bool::weighted(0.2),
        prop::option::weighted(0.3, query),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(slash, segments, trailing, query, fragment)| {
            let mut path = if slash { "/".to_owned() } else { String::new() };
            path.push_str(&segments.join("/"));
            if trailing && !segments.is_empty() {
                path.push('/');
            }
            if let Some(q) = query {
                path.push('?');
                path.push_str(&q);
            }
            if fragment {
                path.push_str("#frag");
            }
            path
        })
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        6 => "X-[A-Za-z0-9]{1,8}",
        2 => prop::sample::select(
            &["X-A", "x-a", "Accept", "accept", "Authorization", "Cache-Control", "X-Weird!#$%&'*+.^_`|~"][..]
        )
        .prop_map(str::to_owned),
        1 => prop::sample::select(
            &["Host", "User-Agent", "user-agent", "Connection", "TE", "Content-Length", "Expect", "bad name", "a:b", "é", ""][..]
        )
        .prop_map(str::to_owned),
    ];
    let value = prop_oneof![
        6 => "[!-~]([ -~\t]{0,10}[!-~])?",
        1 => Just(String::new()),
        1 => prop::sample::select(&[" lead", "trail ", "in  side\tx", "é", "a\r\nb", "\u{7f}"][..])
            .prop_map(str::to_owned),
    ];
    prop::collection::vec((name, value), 0..5)
}

fn host() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.5,
        prop_oneof![
            4 => "[a-z][a-z0-9-]{0,6}[a-z0-9](\\.[a-zA-Z][a-z0-9-]{0,6}[a-z0-9]){0,2}(:[1-9][0-9]{0,3})?",
            2 => prop::sample::select(
                &["origin.example", "Origin.Example:8080", "10.0.0.1", "[::1]:8080", "localhost"][..]
            )
            .prop_map(str::to_owned),
            1 => prop::sample::select(&["a/b", "a..b", "h.", "x:0", "", "[::1", "a b", "1.2.3"][..])
                .prop_map(str::to_owned),
        ],
    )
}

fn expect_status() -> impl Strategy<Value = Vec<String>> {
    let entry = prop_oneof![
        6 => prop::sample::select(&["200", "200-299", "100-599", "204-204", "200-200"][..])
            .prop_map(str::to_owned),
        2 => "[1-5][0-9]{2}",
        1 => prop::sample::select(&["+200", " 200 - 204 ", "2xx", "600", "299-200", "200 "][..])
            .prop_map(str::to_owned),
    ];
    prop::collection::vec(entry, 1..3)
}

fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(&["127.0.0.1:80", "origin.example:443", "[::1]:8080", "h:1"][..])
            .prop_map(str::to_owned),
        1 => prop::sample::select(
            &["[::1]]:80", "Example.com:80", "h\u{1}:80", "[0:0::1]:80", "h:+80", "a b:80", "h:0"][..]
        )
        .prop_map(str::to_owned),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        address(),
        any::<bool>(),
        method(),
        path(),
        host(),
        headers(),
        expect_status(),
    )
        .prop_map(
            |(address, https, method, path, host, headers, expect_status)| Case {
                address,
                https,
                method,
                path,
                host,
                headers,
                expect_status,
            },
        )
}

/// Whether the recorded request is `spec`, exactly.
fn assert_sent_exactly(spec: &OriginSpec, heads: &[String]) -> Result<(), TestCaseError> {
    prop_assert_eq!(heads.len(), 1, "one request per check: {:?}", heads);
    let seen = Seen::parse(&heads[0]);
    prop_assert_eq!(
        &seen.line,
        &format!("{} {} HTTP/1.1", spec.method, spec.path),
        "request line of {:?}",
        spec
    );
    let host = spec.host.as_deref().unwrap_or(&spec.address);
    prop_assert_eq!(seen.all("host"), vec![host], "Host of {:?}", spec);
    for (name, value) in &spec.headers {
        prop_assert_eq!(
            seen.all(name),
            vec![value.as_str()],
            "header {} of {:?} in {:?}",
            name,
            spec,
            seen
        );
    }
    Ok(())
}

#[test]
fn any_accepted_spec_read_back_is_checked_exactly_as_it_reads() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let recorder = rt.block_on(Recorder::start());
    let checker = Checker::new(CheckerConfig::default()).expect("checker");
    let accepted = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    let config = ProptestConfig {
        cases: 128,
        // the named regression tests in spec.rs keep what was found
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(126),
        ..ProptestConfig::default()
    };
    proptest!(config, |(case in case())| {
        let body = case.json();
        let spec = match spec::parse_json(body.as_bytes()) {
            Err(SpecError { field, message }) => {
                prop_assert!(is_a_field(&field), "{field:?} is not a field ({message}) of {body}");
                prop_assert!(!message.is_empty());
                refused.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Ok(spec) => spec,
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        // what GET returns, read back
        let json = serde_json::to_vec(&spec).expect("a spec encodes");
        let again = spec::parse_json(&json);
        prop_assert_eq!(again.as_ref(), Ok(&spec), "read back of {}", body);
        // as written: nothing was trimmed, merged or rewritten on the way in
        prop_assert_eq!(&spec.method, &case.method);
        prop_assert_eq!(&spec.path, &case.path);
        prop_assert_eq!(&spec.host, &case.host);
        prop_assert_eq!(spec.headers.len(), case.headers.len());
        prop_assert_eq!(&spec.expect_status, &case.expect_status);

        let mut target = spec.clone();
        target.address = recorder.addr.to_string();
        target.kind = Kind::Http;
        prop_assert_eq!(target.validate(), Ok(()));
        recorder.take();
        let outcome = rt.block_on(checker.check(&target));
        prop_assert_eq!(outcome.status_code, Some(200), "{:?} for {:?}", outcome, target);
        assert_sent_exactly(&target, &recorder.take())?;
    });
    let (accepted, refused) = (accepted.into_inner(), refused.into_inner());
    assert!(
        accepted >= 24 && refused >= 24,
        "the generator should both pass and fail: {accepted} accepted, {refused} refused"
    );
}

/// The cases users found, and a few tricky valid specs, through a real
/// agent's API: 400 JSON errors naming the field, specs read back as put,
/// and 405 / 413 / undecodable ids as JSON errors too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_with_json_naming_the_field_and_reads_back_what_it_took() {
    let dir = testkit::TempDir::new("spec-exact");
    let agent = Agent::start(AgentConfig::local("hc-exact", dir.to_path_buf()))
        .await
        .expect("agent starts");
    let base = format!("http://{}", agent.api_addr());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");

    async fn answer(r: reqwest::RequestBuilder) -> (u16, String, Value) {
        let r = r.send().await.expect("request");
        let code = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = r.json().await.unwrap_or(Value::Null);
        (code, content_type, body)
    }

    let tricky = [
        r#"{"address": "127.0.0.1:9", "method": "M-SEARCH", "path": "/a..b/%2e%2e%2fx/...?q=..&r=/../s"}"#,
        r#"{"address": "[::1]:9", "method": "X!#$%&'*+-.^_`|~", "path": "//x/~!$&()*+,;=:@[]|^", "host": "Origin.Example:8080", "headers": {"X-A": "1", "Accept": "text/plain", "X-Tab": "a\tb  c", "X-Empty": ""}}"#,
        r#"{"address": "origin.example:443", "kind": "https", "path": "/a?", "expect_status": ["200", "204-299", "200"]}"#,
    ];
    for (i, body) in tricky.iter().enumerate() {
        let expected = spec::parse_json(body.as_bytes()).expect("a tricky spec is valid");
        let url = format!("{base}/v1/origins/tricky-{i}");
        let (code, _, _) = answer(http.put(&url).body(*body)).await;
        assert_eq!(code, 201, "{body}");
        let (code, _, got) = answer(http.get(&url)).await;
        assert_eq!(code, 200);
        let read: OriginSpec = serde_json::from_value(got["spec"].clone()).expect("a spec");
        assert_eq!(read, expected, "read back as put");
        let again = spec::parse_json(&serde_json::to_vec(&got["spec"]).expect("encode"));
        assert_eq!(again, Ok(expected), "and accepted again as read");
    }

    let long_host = format!(r#"{{"address": "{}:80"}}"#, "a".repeat(300));
    let bad: Vec<(&str, &str, &str)> = vec![
        (
            r#"{"address": "h:1", "method": "CONNECT"}"#,
            "method",
            "authority-form",
        ),
        (r#"{"address": "h:1", "method": "get"}"#, "method", "GET"),
        (
            r#"{"address": "h:1", "headers": {"X-A": "1", "x-a": "2"}}"#,
            "headers.x-a",
            "X-A",
        ),
        (
            r#"{"address": "h:1", "headers": {"X-A": "1", "X-A": "2"}}"#,
            "headers.X-A",
            "twice",
        ),
        (
            r#"{"address": "h:1", "headers": {"Host": "x"}}"#,
            "headers.Host",
            "host",
        ),
        (
            r#"{"address": "h:1", "headers": {"User-Agent": "x"}}"#,
            "headers.User-Agent",
            "User-Agent",
        ),
        (
            r#"{"address": "h:1", "headers": {"X-A": " 1"}}"#,
            "headers.X-A",
            "whitespace",
        ),
        (
            r#"{"address": "h:1", "expect_status": ["+200"]}"#,
            "expect_status[0]",
            "digits",
        ),
        (
            r#"{"address": "h:1", "expect_status": [" 200 - 204 "]}"#,
            "expect_status[0]",
            "digits",
        ),
        (r#"{"address": "h:1", "path": "/../../ok"}"#, "path", "/ok"),
        (
            r#"{"address": "h:1", "path": "/%2e%2E/ok"}"#,
            "path",
            "dot segment",
        ),
        (r#"{"address": "h:1", "path": "/a#b"}"#, "path", "fragment"),
        (r#"["h:1"]"#, "body", "JSON object"),
        (r#"{"address": "h\u0007:80"}"#, "address", "not allowed"),
        (r#"{"address": "[::1]]:80"}"#, "address", ":port"),
        (long_host.as_str(), "address", "253"),
        (
            r#"{"address": "h:1", "host": "a/b"}"#,
            "host",
            "not allowed",
        ),
    ];
    let url = format!("{base}/v1/origins/tricky-0");
    let (_, _, before) = answer(http.get(&url)).await;
    for (body, field, says) in &bad {
        let (code, content_type, e) = answer(http.put(&url).body(body.to_string())).await;
        assert_eq!(code, 400, "{body}: {e}");
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        assert_eq!(e["field"], *field, "{body}: {e}");
        let message = e["error"].as_str().unwrap_or_default();
        assert!(message.starts_with(&format!("{field}: ")), "{body}: {e}");
        assert!(
            message.contains(says),
            "{body}: {message:?} should say {says:?}"
        );
    }
    let (_, _, after) = answer(http.get(&url)).await;
    assert_eq!(
        after["spec"], before["spec"],
        "a refused PUT changes nothing"
    );

    // 413, as JSON naming the body and the limit
    let (code, content_type, e) = answer(
        http.put(format!("{base}/v1/origins/big"))
            .body(vec![b' '; 100 * 1024]),
    )
    .await;
    assert_eq!(code, 413);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(e["field"], "body", "{e}");
    assert!(
        e["error"].as_str().is_some_and(|m| m.contains("65536")),
        "{e}"
    );

    // 405 on known routes, as JSON, with the methods the route takes in
    // the Allow header
    for (method, path) in [
        (reqwest::Method::POST, "/v1/origins/x"),
        (reqwest::Method::PATCH, "/v1/node"),
        (reqwest::Method::DELETE, "/v1/members"),
        (reqwest::Method::PUT, "/v1/origins"),
    ] {
        let r = http
            .request(method.clone(), format!("{base}{path}"))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), 405, "{method} {path}");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header("content-type").starts_with("application/json"));
        assert!(header("allow").contains("GET"), "{method} {path}");
        let e: Value = r.json().await.expect("json");
        let message = e["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(method.as_str()) && message.contains(path),
            "{message}"
        );
        assert!(e.get("field").is_none(), "{e}");
    }

    // an id that does not decode, and an unknown route: JSON as well
    let (code, content_type, e) = answer(http.get(format!("{base}/v1/origins/%FF"))).await;
    assert_eq!((code, e["field"].as_str()), (400, Some("id")), "{e}");
    assert!(content_type.starts_with("application/json"));
    let (code, content_type, _) = answer(http.get(format!("{base}/v1/nope"))).await;
    assert_eq!(code, 404);
    assert!(content_type.starts_with("application/json"));

    agent.shutdown().await;
}
