//! The API over TLS with a real agent and a real client (reqwest, rustls)
//! on 127.0.0.1, against generated certificates: HTTPS works and plain HTTP
//! does not; a reload makes new connections get the new certificate; a
//! certificate and key that do not fit are refused, at start and on reload,
//! and the certificate in force stays.

use std::time::Duration;

use healthcheck::testing::local_config;
use healthcheck::{
    agent::Agent,
    config::{AgentConfig, TlsFiles},
};
use testkit::TempDir;

/// A new self-signed certificate for 127.0.0.1 and localhost: (cert PEM,
/// key PEM).
fn certificate() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("generate");
    (c.cert.pem(), c.signing_key.serialize_pem())
}

fn config(base: &std::path::Path) -> AgentConfig {
    let mut c = local_config("hc-tls", base.join("data"), "tls");
    c.pull_interval = Duration::from_millis(200);
    c.tls = Some(TlsFiles {
        cert_file: base.join("api.crt"),
        key_file: base.join("api.key"),
    });
    c
}

/// A fresh client (no pooled connection) that trusts only `cert`.
async fn get_trusting(cert: &str, url: &str) -> Result<u16, String> {
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).expect("pem"))
        .tls_built_in_root_certs(false)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    client
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_https_and_takes_a_new_certificate_on_reload() {
    let base = TempDir::new("reload");
    let (cert1, key1) = certificate();
    std::fs::write(base.join("api.crt"), &cert1).expect("write");
    std::fs::write(base.join("api.key"), &key1).expect("write");
    let agent = Agent::start(config(&base)).await.expect("starts");
    let addr = agent.api_addr();
    let url = format!("{}/v1/node", agent.shared().api_url(addr));
    assert!(url.starts_with("https://"), "{url}");

    assert_eq!(get_trusting(&cert1, &url).await, Ok(200));
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
        .get(format!("http://{addr}/v1/node"))
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status().as_u16() >= 400));
    // A client that trusts another certificate refuses the connection.
    let (other, _) = certificate();
    assert!(get_trusting(&other, &url).await.is_err());

    // Reload: new connections get the new certificate.
    let (cert2, key2) = certificate();
    std::fs::write(base.join("api.crt"), &cert2).expect("write");
    std::fs::write(base.join("api.key"), &key2).expect("write");
    assert!(
        agent.shared().reload_tls().expect("reloads"),
        "the API has TLS"
    );
    assert_eq!(get_trusting(&cert2, &url).await, Ok(200));
    assert!(
        get_trusting(&cert1, &url).await.is_err(),
        "the old one is gone"
    );

    // A key that does not fit the certificate is refused; cert2 stays.
    std::fs::write(base.join("api.key"), &key1).expect("write");
    let e = agent
        .shared()
        .reload_tls()
        .expect_err("refused")
        .to_string();
    assert!(e.contains("api.key") && e.contains("api.crt"), "{e}");
    assert_eq!(get_trusting(&cert2, &url).await, Ok(200));

    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_certificate_files_stop_the_start_naming_them() {
    let base = TempDir::new("bad");
    let (cert, _) = certificate();
    let (_, other_key) = certificate();
    for (cert_text, key_text, expect) in [
        (String::new(), other_key.clone(), "no certificate"),
        (cert.clone(), "not a key".to_owned(), "api.key"),
        (cert.clone(), other_key.clone(), "does not fit"),
    ] {
        std::fs::write(base.join("api.crt"), &cert_text).expect("write");
        std::fs::write(base.join("api.key"), &key_text).expect("write");
        let err = match Agent::start(config(&base)).await {
            Ok(a) => {
                a.shutdown().await;
                panic!("started with {expect}");
            }
            Err(e) => e,
        };
        let chain = sync::error_chain(&err);
        assert!(chain.contains(expect), "{expect}: {chain}");
    }
}
