//! `GET /metrics` of a real agent checking a real origin passes
//! `promtool check metrics` (Prometheus' own linter: names, units, help
//! text, types) with one documented exception: promtool (2.42, Debian
//! bookworm) lints the Prometheus 0.0.4 text format, and the agent serves
//! OpenMetrics, where a counter family `x` has `# TYPE x counter` and
//! `# HELP x …` and its sample is `x_total`; promtool reads the sample as a
//! metric `x_total` without help and says "x_total no help text". Each such
//! line is accepted only if the family has that TYPE and HELP; any other
//! warning fails. Where promtool is missing the test says so and passes,
//! except under `CI=true`, where a check that cannot run fails (CI installs
//! the Debian package `prometheus`).

use std::{
    io::Write,
    process::{Command, Stdio},
};

use healthcheck::{
    agent::Agent,
    fake_origin::{Behaviour, FakeOrigin},
    spec::OriginSpec,
    testing::{LIMIT, local_config},
};
use testkit::{TempDir, wait::until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_pass_promtool_check_metrics() {
    let dir = TempDir::new("promtool");
    let agent = Agent::start(local_config("prom-1", dir.join("data"), "prom"))
        .await
        .expect("agent starts");
    let origin = FakeOrigin::start(Behaviour::Healthy).await.expect("origin");
    let mut spec = OriginSpec::new(origin.addr().to_string());
    spec.interval_ms = 100;
    spec.timeout_ms = 80;
    spec.rise = 1;
    agent.shared().put_origin("web-1", spec).await.expect("put");
    until("web-1 has a record", LIMIT, || {
        agent.shared().health("web-1").is_some()
    })
    .await;
    let text = reqwest::get(format!("http://{}/metrics", agent.api_addr()))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    assert!(
        text.contains("healthcheck_origin_up{origin=\"web-1\"} 1"),
        "{text}"
    );
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI=true: promtool cannot run ({e}); install the Debian package prometheus"
            );
            eprintln!("skipped: promtool cannot run here ({e})");
            return;
        }
    };
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())
        .expect("write");
    let out = tokio::task::block_in_place(|| child.wait_with_output()).expect("promtool ran");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let unexplained: Vec<&str> = said
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            let counter = l.strip_suffix("_total no help text").filter(|base| {
                text.contains(&format!("# TYPE {base} counter\n"))
                    && text.contains(&format!("# HELP {base} "))
            });
            counter.is_none()
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "promtool warns beyond the OpenMetrics counter naming: {unexplained:#?}"
    );
    agent.shutdown().await;
    origin.shutdown().await;
}
