//! The command line for daily work against a real agent over real HTTP:
//! `healthcheck members`, `healthcheck origins get|put|rm|maint|unmaint`,
//! `healthcheck status` and
//! `healthcheck watch`, with
//! `--api` and `--token`; refusals exit non-zero with the API's message.

use std::process::{Command, Output, Stdio};

use healthcheck::{agent::Agent, testing::local_config};
use testkit::TempDir;

struct Cli {
    api: String,
    token: String,
}

impl Cli {
    /// Runs `healthcheck <args> --api … --token …` (with `stdin` piped in).
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_with_token(args, Some(&self.token), stdin)
    }

    fn run_with_token(&self, args: &[&str], token: Option<&str>, stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_healthcheck"));
        cmd.args(args).arg("--api").arg(&self.api);
        if let Some(token) = token {
            cmd.arg("--token").arg(token);
        }
        cmd.env_remove("HEALTHCHECK_TOKEN")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn healthcheck");
        if let Some(text) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("piped")
                .write_all(text.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("healthcheck ran")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_and_origins_get_put_rm_from_the_command_line() {
    let dir = TempDir::new("cli");
    let token = healthcheck::tokens::generate();
    let tokens = dir.join("api.tokens");
    std::fs::write(&tokens, format!("write {token}\n")).expect("token file");
    let mut config = local_config("cli-1", dir.join("data"), "cli");
    config.token_file = Some(tokens);
    let agent = Agent::start(config).await.expect("agent starts");
    let cli = Cli {
        api: format!("http://{}", agent.api_addr()),
        token,
    };
    // `healthcheck watch`: started first, it prints each event as a line.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_healthcheck"))
        .args(["watch", "--api", &cli.api, "--token", &cli.token])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn healthcheck watch");
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = watch.stdout.take().expect("piped");
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = |what: &str| {
        lines
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("healthcheck watch printed no line: {what}"))
    };
    let first = tokio::task::block_in_place(|| next_line("the index"));
    assert!(first.contains(" index 0"), "{first}");
    let spec =
        r#"{"address": "127.0.0.1:9", "path": "/health", "interval_ms": 1000, "timeout_ms": 500}"#;
    let spec_file = dir.join("web-1.json");
    std::fs::write(&spec_file, spec).expect("spec file");

    let out = tokio::task::block_in_place(|| {
        cli.run(
            &[
                "origins",
                "put",
                "web-1",
                "--spec",
                spec_file.to_str().expect("utf-8"),
            ],
            None,
        )
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "web-1: registered");
    let out = tokio::task::block_in_place(|| {
        cli.run(&["origins", "put", "web-1", "--spec", "-"], Some(spec))
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "web-1: replaced");

    let put = tokio::task::block_in_place(|| next_line("the registration"));
    assert!(put.ends_with("registry web-1 put 127.0.0.1:9"), "{put}");
    let out = tokio::task::block_in_place(|| cli.run(&["origins", "get", "web-1"], None));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(got["id"], "web-1");
    assert_eq!(got["spec"]["address"], "127.0.0.1:9");
    assert_eq!(got["spec"]["path"], "/health");
    assert!(agent.shared().origin("web-1").is_some(), "the agent has it");

    let out = tokio::task::block_in_place(|| cli.run(&["members"], None));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("cli-1") && l.contains("alive")),
        "{listed}"
    );

    // A bad spec is refused, naming the field; nothing changes.
    let out = tokio::task::block_in_place(|| {
        cli.run(
            &["origins", "put", "web-2", "--spec", "-"],
            Some(r#"{"address": "no-port"}"#),
        )
    });
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("400") && err.contains("field address"),
        "{err}"
    );
    assert!(agent.shared().origin("web-2").is_none());

    // Without a token: 401, said so.
    let out = tokio::task::block_in_place(|| cli.run_with_token(&["members"], None, None));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));

    // Maintenance: begun, shown by `status` and `watch`, ended.
    let out = tokio::task::block_in_place(|| {
        cli.run(
            &[
                "origins",
                "maint",
                "web-1",
                "--reason",
                "disk swap",
                "--minutes",
                "30",
            ],
            None,
        )
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("web-1: under maintenance for 30 min"),
        "{}",
        text(&out.stdout)
    );
    let begun = tokio::task::block_in_place(|| {
        std::iter::from_fn(|| Some(next_line("the maintenance")))
            .find(|l| l.contains("maintenance web-1"))
    });
    assert_eq!(
        begun
            .as_deref()
            .and_then(|l| l.split_once(' '))
            .map(|(_, l)| l),
        Some("maintenance web-1 begins by cli-1 (disk swap)")
    );
    let out = tokio::task::block_in_place(|| cli.run(&["status"], None));
    let table = text(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("web-1") && l.contains("maintenance: disk swap")),
        "{table}"
    );
    let out = tokio::task::block_in_place(|| cli.run(&["origins", "unmaint", "web-1"], None));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "web-1: maintenance ended");
    assert!(agent.shared().maintenance("web-1").is_none());
    let out = tokio::task::block_in_place(|| cli.run(&["origins", "unmaint", "web-1"], None));
    assert!(!out.status.success(), "ending it twice is an error");
    assert!(text(&out.stderr).contains("404"), "{}", text(&out.stderr));

    let out = tokio::task::block_in_place(|| cli.run(&["origins", "rm", "web-1"], None));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "web-1: removed");
    assert!(agent.shared().origin("web-1").is_none());
    let removed = tokio::task::block_in_place(|| {
        std::iter::from_fn(|| Some(next_line("the removal")))
            .find(|l| l.contains("registry web-1 removed"))
    });
    assert!(removed.is_some());
    let _ = watch.kill();
    let _ = watch.wait();
    let out = tokio::task::block_in_place(|| cli.run(&["origins", "rm", "web-1"], None));
    assert!(!out.status.success(), "removing it twice is an error");
    assert!(text(&out.stderr).contains("404"), "{}", text(&out.stderr));
    agent.shutdown().await;
}
