//! The agent's log is plain text when stderr is not a terminal (a file, a
//! pipe, a journal): no ANSI colour codes, whatever `NO_COLOR` says.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

#[test]
fn a_log_that_is_not_a_terminal_has_no_colour_codes() {
    let dir = testkit::TempDir::new("log-format");
    let config = format!(
        "node = \"log-1\"\ncluster = \"log\"\ndata_dir = \"{}\"\n\
         [listen]\ngossip = \"127.0.0.1:0\"\nsync = \"127.0.0.1:0\"\napi = \"127.0.0.1:0\"\n\
         [timings]\npreset = \"local\"\n",
        dir.join("data").display()
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, config).expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_healthcheck"))
        .arg("agent")
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the agent");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let started = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let done = line.contains("agent started");
                lines.push(line);
                if done {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "the agent did not start: {lines:#?}");
    let coloured: Vec<&String> = lines.iter().filter(|l| l.contains('\x1b')).collect();
    assert!(
        coloured.is_empty(),
        "colour codes in a piped log: {coloured:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("INFO")),
        "the log has its levels: {lines:#?}"
    );
}
