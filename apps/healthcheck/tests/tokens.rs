//! API tokens with a real agent and real HTTP on 127.0.0.1: 401 without a
//! token, 403 for the wrong scope, JSON errors, the page and `/metrics`
//! behind `read`, Basic authentication for browsers, and a reload that
//! replaces the tokens (a bad file keeps the ones in force).
//!
//! Regression for issue 12: `PUT /v1/origins/{id}` had no authentication,
//! so anyone who reached the API could change what the cluster checks.

use std::time::Duration;

use healthcheck::testing::local_config;
use healthcheck::{agent::Agent, config::AgentConfig};
use serde_json::{Value, json};
use testkit::TempDir;

const READ: &str = "read-token-0123456789";
const WRITE: &str = "write-token-0123456789";

fn config(base: &std::path::Path) -> AgentConfig {
    let mut c = local_config("hc-t", base.join("data"), "tokens");
    c.pull_interval = Duration::from_millis(200);
    c.token_file = Some(base.join("tokens"));
    c
}

async fn status(r: reqwest::RequestBuilder) -> (u16, Value, Vec<String>) {
    let r = r.send().await.expect("request");
    let code = r.status().as_u16();
    let challenges = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok().map(String::from))
        .collect();
    let body = r.json().await.unwrap_or(Value::Null);
    (code, body, challenges)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_guard_every_route_by_scope() {
    let base = TempDir::new("scopes");
    std::fs::write(
        base.join("tokens"),
        format!("# api tokens\nread {READ}\nwrite {WRITE}\n"),
    )
    .expect("write tokens");
    let agent = Agent::start(config(&base)).await.expect("starts");
    let api = format!("http://{}", agent.api_addr());
    let http = reqwest::Client::new();
    let spec = json!({ "address": "127.0.0.1:9", "kind": "tcp" });

    // No token: 401, as JSON, with challenges; also for routes that do not
    // exist (nothing is revealed without a token).
    for path in ["/v1/origins", "/v1/node", "/metrics", "/", "/v1/nope"] {
        let (code, body, challenges) = status(http.get(format!("{api}{path}"))).await;
        assert_eq!(code, 401, "{path}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("token")),
            "{path}: {body}"
        );
        assert!(
            challenges.iter().any(|c| c.starts_with("Bearer")),
            "{challenges:?}"
        );
        assert!(
            challenges.iter().any(|c| c.starts_with("Basic")),
            "{challenges:?}"
        );
    }
    let (code, _, _) = status(http.put(format!("{api}/v1/origins/x")).json(&spec)).await;
    assert_eq!(code, 401);
    // An unknown token: 401.
    let (code, body, _) = status(
        http.get(format!("{api}/v1/origins"))
            .bearer_auth("not-a-token-0123456789"),
    )
    .await;
    assert_eq!((code, body["error"].as_str()), (401, Some("unknown token")));

    // read: every GET, the page and the metrics; no write (403).
    for path in ["/v1/origins", "/v1/node", "/v1/members", "/metrics", "/"] {
        let r = http
            .get(format!("{api}{path}"))
            .bearer_auth(READ)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let (code, body, _) = status(
        http.put(format!("{api}/v1/origins/x"))
            .bearer_auth(READ)
            .json(&spec),
    )
    .await;
    assert_eq!(code, 403);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("needs write")),
        "{body}"
    );
    let (code, _, _) = status(http.delete(format!("{api}/v1/origins/x")).bearer_auth(READ)).await;
    assert_eq!(code, 403);
    assert!(agent.shared().origin("x").is_none(), "nothing changed");

    // write: changes, and reads.
    let (code, _, _) = status(
        http.put(format!("{api}/v1/origins/x"))
            .bearer_auth(WRITE)
            .json(&spec),
    )
    .await;
    assert_eq!(code, 201);
    let (code, body, _) = status(http.get(format!("{api}/v1/origins/x")).bearer_auth(WRITE)).await;
    assert_eq!((code, body["id"].as_str()), (200, Some("x")));

    // A browser: the token as the Basic password.
    let r = http
        .get(format!("{api}/"))
        .basic_auth("anyone", Some(READ))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);

    // Reload: the read token is replaced; a broken file keeps what is in force.
    let fresh = "fresh-read-token-0123456789";
    std::fs::write(
        base.join("tokens"),
        format!("read {fresh}\nwrite {WRITE}\n"),
    )
    .expect("write");
    assert_eq!(agent.shared().reload_tokens().expect("reloads"), 2);
    let (old, _, _) = status(http.get(format!("{api}/v1/origins")).bearer_auth(READ)).await;
    let (new, _, _) = status(http.get(format!("{api}/v1/origins")).bearer_auth(fresh)).await;
    assert_eq!((old, new), (401, 200));
    std::fs::write(base.join("tokens"), "read short\n").expect("write");
    let e = agent
        .shared()
        .reload_tokens()
        .expect_err("refused")
        .to_string();
    assert!(e.contains("tokens:1") && e.contains("shorter"), "{e}");
    let (still, _, _) = status(http.get(format!("{api}/v1/origins")).bearer_auth(fresh)).await;
    assert_eq!(still, 200, "the tokens in force are kept");

    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_file_stops_the_start_naming_it() {
    let base = TempDir::new("bad");
    std::fs::write(base.join("tokens"), "admin some-token-0123456789\n").expect("write");
    let err = match Agent::start(config(&base)).await {
        Ok(a) => {
            a.shutdown().await;
            panic!("started with a bad token file");
        }
        Err(e) => e,
    };
    let chain = sync::error_chain(&err);
    assert!(
        chain.contains("tokens:1") && chain.contains("scope"),
        "{chain}"
    );
    assert!(!chain.contains("some-token"), "never the token: {chain}");
}
