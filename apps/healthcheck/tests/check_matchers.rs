//! Body and header matchers, request bodies, HTTP/2 over TLS, a custom CA
//! and a client certificate, each checked against a real local origin
//! (hyper over rustls on 127.0.0.1) by the real checker; and the `PUT` that
//! refuses each kind of bad value with a 400 naming the field.

use std::{path::Path, sync::Arc};

use healthcheck::{
    checker::{CheckOutcome, Checker, CheckerConfig, MAX_BODY_BYTES},
    fake_origin::{Answer, Behaviour, FakeOrigin},
    spec::{HttpVersion, Kind, OriginSpec, tls_files::TlsDir},
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    server::WebPkiClientVerifier,
};
use testkit::TempDir;

/// A CA of its own.
fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// A certificate for `names` signed by `ca` (for a client if `client`):
/// (certificate PEM, key PEM, certificate DER, key DER).
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    client: bool,
) -> (
    String,
    String,
    CertificateDer<'static>,
    PrivateKeyDer<'static>,
) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params");
    if client {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, ca).expect("signed");
    let der = PrivatePkcs8KeyDer::from(key.serialize_der()).into();
    (cert.pem(), key.serialize_pem(), cert.der().clone(), der)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS origin configuration: a certificate for `localhost` by `ca`,
/// client certificates by `clients` required if given, these ALPN
/// protocols.
fn server_config(
    ca: &CertifiedIssuer<'static, KeyPair>,
    clients: Option<&CertifiedIssuer<'static, KeyPair>>,
    alpn: &[&[u8]],
) -> ServerConfig {
    let (_, _, cert, key) = leaf(ca, &["localhost"], false);
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = match clients {
        None => builder.with_no_client_auth(),
        Some(client_ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(client_ca.der().clone()).expect("root");
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .expect("verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(vec![cert], key).expect("cert");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

fn write(dir: &Path, name: &str, contents: &str) {
    std::fs::write(dir.join(name), contents).expect("write");
}

/// An HTTPS spec for `origin` with TLS name `localhost`.
fn https(origin: &FakeOrigin) -> OriginSpec {
    let mut spec = OriginSpec::new(origin.addr().to_string());
    spec.kind = Kind::Https;
    spec.host = Some("localhost".into());
    spec
}

fn checker(tls_dir: Option<&Path>) -> Checker {
    Checker::new(CheckerConfig {
        tls_dir: TlsDir::new(tls_dir.map(Path::to_owned)),
        ..CheckerConfig::default()
    })
    .expect("checker")
}

fn reason(outcome: &CheckOutcome) -> &str {
    outcome.reason.as_deref().unwrap_or("")
}

#[tokio::test]
async fn body_matchers_pass_and_fail_on_what_the_origin_sends() {
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    origin.set_answer(Some(Answer {
        body: r#"{"status": "green", "replicas": 3}"#.into(),
        headers: vec![("content-type".into(), "application/json".into())],
    }));
    let checker = checker(None);
    let mut spec = OriginSpec::new(origin.addr().to_string());
    spec.expect_body = Some(r#""replicas": 3"#.into());
    spec.expect_body_regex = Some(r#""status":\s*"(green|yellow)""#.into());
    let outcome = checker.check(&spec).await;
    assert!(outcome.ok, "{outcome:?}");

    spec.expect_body = Some("red".into());
    let outcome = checker.check(&spec).await;
    assert_eq!(
        (outcome.ok, reason(&outcome), outcome.status_code),
        (false, r#"body: "red" not found in 34 bytes"#, Some(200))
    );
    spec.expect_body = None;
    spec.expect_body_regex = Some(r#""status":\s*"red""#.into());
    let outcome = checker.check(&spec).await;
    assert_eq!(
        reason(&outcome),
        r#"body: no match for /"status":\s*"red"/ in 34 bytes"#
    );

    // Only the first MAX_BODY_BYTES are searched: a needle past them is
    // not found; one just inside is.
    let mut long = "x".repeat(MAX_BODY_BYTES - 6);
    long.push_str("inside");
    long.push_str("outside");
    origin.set_answer(Some(Answer {
        body: long,
        headers: Vec::new(),
    }));
    spec.expect_body_regex = None;
    spec.expect_body = Some("inside".into());
    assert!(checker.check(&spec).await.ok);
    spec.expect_body = Some("outside".into());
    let outcome = checker.check(&spec).await;
    assert_eq!(
        reason(&outcome),
        format!("body: \"outside\" not found in {MAX_BODY_BYTES} bytes")
    );
    origin.shutdown().await;
}

#[tokio::test]
async fn header_matchers_need_every_header_with_its_value() {
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    origin.set_answer(Some(Answer {
        body: "ok".into(),
        headers: vec![
            ("X-Role".into(), "replica".into()),
            ("x-role".into(), "primary".into()),
            ("Content-Type".into(), "text/plain".into()),
        ],
    }));
    let checker = checker(None);
    let mut spec = OriginSpec::new(origin.addr().to_string());
    spec.expect_headers
        .insert("X-ROLE".into(), "primary".into());
    spec.expect_headers
        .insert("content-type".into(), "text/plain".into());
    assert!(checker.check(&spec).await.ok);
    spec.expect_headers.insert("x-role".into(), "leader".into());
    spec.expect_headers.remove("X-ROLE");
    let outcome = checker.check(&spec).await;
    assert_eq!(
        reason(&outcome),
        r#"header: x-role is "replica, primary", expected "leader""#
    );
    spec.expect_headers.clear();
    spec.expect_headers.insert("etag".into(), "1".into());
    assert_eq!(
        reason(&checker.check(&spec).await),
        "header: etag is missing"
    );
    origin.shutdown().await;
}

#[tokio::test]
async fn a_request_body_arrives_with_its_length() {
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let checker = checker(None);
    let mut spec = OriginSpec::new(origin.addr().to_string());
    spec.method = "POST".into();
    spec.path = "/graphql".into();
    spec.headers
        .insert("Content-Type".into(), "application/json".into());
    spec.request_body = Some(r#"{"query": "{ health }"}"#.into());
    assert!(checker.check(&spec).await.ok);
    let seen = origin.last_request().expect("a request");
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.body, br#"{"query": "{ health }"}"#);
    assert_eq!(
        seen.headers.get("content-length").map(String::as_str),
        Some("23")
    );
    assert_eq!(
        seen.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    origin.shutdown().await;
}

#[tokio::test]
async fn http2_over_tls_is_negotiated_and_required() {
    let tls = TempDir::new("hc-h2");
    let root = ca("h2 test CA");
    write(tls.path(), "ca.pem", &root.pem());
    let both = FakeOrigin::start_tls_with(
        Behaviour::Healthy,
        server_config(&root, None, &[b"h2", b"http/1.1"]),
    )
    .await
    .expect("origin");
    let checker = checker(Some(tls.path()));
    let mut spec = https(&both);
    spec.tls_ca = Some("ca.pem".into());
    spec.http_version = HttpVersion::Http2;
    let outcome = checker.check(&spec).await;
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(both.last_request().expect("seen").version, "HTTP/2.0");
    spec.http_version = HttpVersion::Http11;
    assert!(checker.check(&spec).await.ok);
    assert_eq!(both.last_request().expect("seen").version, "HTTP/1.1");

    // An origin that speaks only HTTP/1.1 fails an HTTP/2 check.
    let old = FakeOrigin::start_tls_with(
        Behaviour::Healthy,
        server_config(&root, None, &[b"http/1.1"]),
    )
    .await
    .expect("origin");
    let mut spec = https(&old);
    spec.tls_ca = Some("ca.pem".into());
    spec.http_version = HttpVersion::Http2;
    let outcome = checker.check(&spec).await;
    assert!(!outcome.ok, "{outcome:?}");
    assert!(old.last_request().is_none(), "no HTTP/1.1 request was sent");
    both.shutdown().await;
    old.shutdown().await;
}

#[tokio::test]
async fn a_custom_ca_is_trusted_for_its_origin_only_and_reread_when_it_changes() {
    let tls = TempDir::new("hc-ca");
    let right = ca("the origin's CA");
    let other = ca("another CA");
    let origin = FakeOrigin::start_tls_with(
        Behaviour::Healthy,
        server_config(&right, None, &[b"http/1.1"]),
    )
    .await
    .expect("origin");
    let checker = checker(Some(tls.path()));
    // Without the CA, the system roots do not know it.
    let spec = https(&origin);
    let outcome = checker.check(&spec).await;
    assert!(
        reason(&outcome).starts_with("tls: ") && reason(&outcome).contains("trusted CA"),
        "{outcome:?}"
    );
    // Another CA's file: refused too.
    write(tls.path(), "ca.pem", &other.pem());
    let mut spec = https(&origin);
    spec.tls_ca = Some("ca.pem".into());
    let outcome = checker.check(&spec).await;
    assert!(reason(&outcome).contains("trusted CA"), "{outcome:?}");
    // The right CA written over it (a rotation): used from the next check.
    let mut bundle = other.pem();
    bundle.push_str(&right.pem());
    write(tls.path(), "ca.pem", &bundle);
    let outcome = checker.check(&spec).await;
    assert!(outcome.ok, "{outcome:?}");
    // A file that went away fails the check, naming it.
    std::fs::remove_file(tls.path().join("ca.pem")).expect("rm");
    let outcome = checker.check(&spec).await;
    assert!(
        reason(&outcome).starts_with("tls: tls_ca: cannot read "),
        "{outcome:?}"
    );
    origin.shutdown().await;
}

#[tokio::test]
async fn a_client_certificate_is_presented_to_an_origin_that_requires_one() {
    let tls = TempDir::new("hc-mtls");
    let server_ca = ca("server CA");
    let client_ca = ca("client CA");
    let (cert, key, _, _) = leaf(&client_ca, &["vantage-agent"], true);
    write(tls.path(), "ca.pem", &server_ca.pem());
    write(tls.path(), "client.pem", &cert);
    write(tls.path(), "client.key", &key);
    let origin = FakeOrigin::start_tls_with(
        Behaviour::Healthy,
        server_config(&server_ca, Some(&client_ca), &[b"h2", b"http/1.1"]),
    )
    .await
    .expect("origin");
    let checker = checker(Some(tls.path()));
    let mut spec = https(&origin);
    spec.tls_ca = Some("ca.pem".into());
    // Without a certificate the origin refuses the handshake.
    let outcome = checker.check(&spec).await;
    assert!(!outcome.ok, "{outcome:?}");
    assert!(origin.last_request().is_none());
    spec.tls_client_cert = Some("client.pem".into());
    spec.tls_client_key = Some("client.key".into());
    for version in [HttpVersion::Http11, HttpVersion::Http2] {
        spec.http_version = version;
        let outcome = checker.check(&spec).await;
        assert!(outcome.ok, "{version:?}: {outcome:?}");
    }
    assert_eq!(origin.last_request().expect("seen").version, "HTTP/2.0");
    origin.shutdown().await;
}

/// Each new kind of bad value is refused at `PUT` with a 400 that names
/// the field, by a real agent over real HTTP; good ones are accepted and
/// read back as written.
#[tokio::test]
async fn put_refuses_each_bad_value_naming_its_field() {
    let base = TempDir::new("hc-put-matchers");
    let tls = TempDir::new("hc-put-tls");
    let root = ca("put CA");
    let (cert, key, _, _) = leaf(&root, &["agent"], true);
    let (_, other_key, _, _) = leaf(&root, &["other"], true);
    write(tls.path(), "ca.pem", &root.pem());
    write(tls.path(), "client.pem", &cert);
    write(tls.path(), "client.key", &key);
    write(tls.path(), "other.key", &other_key);
    write(tls.path(), "garbage.pem", "not a certificate\n");
    let mut config = healthcheck::testing::local_config("hc-0", base.path().join("a"), "put");
    config.check_tls_dir = Some(tls.path().to_owned());
    let agent = healthcheck::agent::Agent::start(config)
        .await
        .expect("agent starts");
    let http = reqwest::Client::new();
    let put = |body: String| {
        let http = http.clone();
        let url = format!("http://{}/v1/origins/o1", agent.api_addr());
        async move {
            let response = http.put(url).body(body).send().await.expect("PUT");
            let status = response.status().as_u16();
            let json: serde_json::Value = response.json().await.expect("json");
            (status, json)
        }
    };
    let https = r#""address": "127.0.0.1:8443", "kind": "https""#;
    let cases = [
        (
            r#""expect_body_regex": "(unclosed""#.to_owned(),
            "expect_body_regex",
        ),
        (r#""expect_body": """#.to_owned(), "expect_body"),
        (
            format!(r#""request_body": "{}""#, "x".repeat(16 * 1024 + 1)),
            "request_body",
        ),
        (
            r#""expect_headers": {"bad name": "x"}"#.to_owned(),
            "expect_headers.bad name",
        ),
        (r#""http_version": "2""#.to_owned(), "http_version"),
        (r#""http_version": "3""#.to_owned(), "http_version"),
        (
            r#""settling_interval_ms": 5"#.to_owned(),
            "settling_interval_ms",
        ),
        (
            r#""down_interval_ms": 100000000"#.to_owned(),
            "down_interval_ms",
        ),
        (r#""jitter_percent": 51"#.to_owned(), "jitter_percent"),
        (r#""tls_ca": "ca.pem""#.to_owned(), "tls_ca"),
        (format!(r#"{https}, "tls_ca": "../ca.pem""#), "tls_ca"),
        (format!(r#"{https}, "tls_ca": "missing.pem""#), "tls_ca"),
        (format!(r#"{https}, "tls_ca": "garbage.pem""#), "tls_ca"),
        (
            format!(r#"{https}, "tls_ca": "ca.pem", "tls_verify": false"#),
            "tls_ca",
        ),
        (
            format!(r#"{https}, "tls_client_cert": "client.pem""#),
            "tls_client_key",
        ),
        (
            format!(r#"{https}, "tls_client_cert": "client.pem", "tls_client_key": "other.key""#),
            "tls_client_key",
        ),
    ];
    for (extra, field) in cases {
        let body = if extra.starts_with(r#""address""#) {
            format!("{{{extra}}}")
        } else {
            format!(r#"{{"address": "127.0.0.1:8080", {extra}}}"#)
        };
        let (status, json) = put(body.clone()).await;
        assert_eq!(status, 400, "{body}: {json}");
        assert_eq!(json["field"], field, "{body}: {json}");
    }
    let good = format!(
        r#"{{{https}, "tls_ca": "ca.pem", "tls_client_cert": "client.pem",
            "tls_client_key": "client.key", "http_version": "2",
            "expect_body": "ok", "expect_body_regex": "^o", "expect_headers": {{"X-A": "1"}},
            "request_body": "ping", "method": "POST", "settling_interval_ms": 500,
            "down_interval_ms": 30000, "jitter_percent": 0}}"#
    );
    let (status, json) = put(good).await;
    assert_eq!(status, 201, "{json}");
    let spec: OriginSpec =
        serde_json::from_value(json["spec"].clone()).expect("the spec reads back");
    assert_eq!(spec.tls_client_key.as_deref(), Some("client.key"));
    assert_eq!(spec.http_version, HttpVersion::Http2);
    assert_eq!(spec.down_interval_ms, Some(30_000));
    agent.shutdown().await;
}
