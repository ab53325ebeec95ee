//! `GET /v1/origins` from the cached body: this agent's own writes are in
//! the very next answer, and the gzip form decodes to the same JSON.

use std::io::Read;

use healthcheck::{agent::Agent, config::AgentConfig};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_writes_are_in_the_next_list_and_gzip_matches_plain() {
    let dir = testkit::TempDir::new("list");
    let agent = Agent::start(AgentConfig::local("hc-list", dir.to_path_buf()))
        .await
        .expect("agent starts");
    let base = format!("http://{}", agent.api_addr());
    let client = reqwest::Client::new();
    let list = |client: &reqwest::Client| {
        let url = format!("{base}/v1/origins");
        let req = client.get(url);
        async move {
            let body: Value = req.send().await.expect("GET").json().await.expect("json");
            body.as_array()
                .expect("array")
                .iter()
                .map(|o| o["id"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert!(list(&client).await.is_empty());
    for i in 0..5 {
        let id = format!("o{i}");
        let status = client
            .put(format!("{base}/v1/origins/{id}"))
            .body(r#"{"address": "127.0.0.1:9", "kind": "tcp"}"#)
            .send()
            .await
            .expect("PUT")
            .status();
        assert_eq!(status.as_u16(), 201);
        // read-your-writes, with no wait, although the list is cached
        assert!(
            list(&client).await.contains(&id),
            "{id} missing right after its PUT"
        );
    }
    client
        .delete(format!("{base}/v1/origins/o0"))
        .send()
        .await
        .expect("DELETE");
    assert!(!list(&client).await.contains(&"o0".to_owned()));

    let plain = client
        .get(format!("{base}/v1/origins"))
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    let gz = client
        .get(format!("{base}/v1/origins"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("GET gzip");
    assert_eq!(
        gz.headers().get("content-encoding").map(|v| v.as_bytes()),
        Some(&b"gzip"[..])
    );
    let gz = gz.bytes().await.expect("body");
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut unzipped)
        .expect("valid gzip");
    assert_eq!(unzipped, plain.to_vec());
    agent.shutdown().await;
}
