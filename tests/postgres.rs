//! The Postgres registry, black-box: `fleet` against a real PostgreSQL server the test starts
//! privately (`testkit::postgres`), with real tmux. Racing deployers in separate processes never
//! break a limit; a database that goes away fails a deployment with one line naming it (never
//! its password) and leaves nothing; after a restart the next command works.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;

use camino::Utf8PathBuf;
use serde_json::Value;
use testkit::postgres::PgServer;

use common::{Fleet, stderr, wait_for};

fn deploy_marking<'a>(task: &'a str, script: &'a str) -> Vec<&'a str> {
    vec![
        "deploy",
        "--task",
        task,
        "--type",
        "racer",
        "--prompt",
        "p",
        "--allow-duplicate",
        "--startup-grace-ms",
        "200",
        "--",
        "sh",
        "-c",
        script,
    ]
}

fn ran(dir: &Utf8PathBuf) -> usize {
    fs_err::read_dir(dir)
        .map(|d| d.filter(|e| e.is_ok()).count())
        .unwrap_or(0)
}

#[test]
fn eight_racing_deployers_under_max_concurrent_3_run_exactly_3() {
    let server = PgServer::start();
    let f = Fleet::on_postgres(&server.new_database());
    let task = f.task(&["--max-concurrent", "3"]);
    let marks = Utf8PathBuf::from_path_buf(f.dir.path().join("marks")).unwrap();
    fs_err::create_dir_all(&marks).unwrap();
    let script = format!("touch \"{marks}/ran-$FLEET_AGENT_ID\" && exec sleep 300");
    let racers: Vec<_> = (0..8)
        .map(|_| {
            f.command(&deploy_marking(&task, &script))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = racers
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(won, 3, "{:?}", outs.iter().map(stderr).collect::<Vec<_>>());
    for lost in outs.iter().filter(|o| !o.status.success()) {
        assert_eq!(lost.status.code(), Some(1));
        let err = stderr(lost);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("max_concurrent"), "{err}");
    }
    wait_for("the 3 winners ran", || ran(&marks) == 3);
    assert_eq!(f.sessions().len(), 3);
    let status: Value = f.json(&["status", "--task", &task]);
    assert_eq!(
        status.to_string().matches("\"agent_id\"").count(),
        3,
        "{status}"
    );
    for winner in outs.iter().filter(|o| o.status.success()) {
        let agent = String::from_utf8_lossy(&winner.stdout).trim().to_owned();
        f.ok(&["kill", "--task", &task, "--agent", &agent]);
    }
    assert!(f.sessions().is_empty());
    assert_eq!(ran(&marks), 3, "a refused deployer's agent ran");
}

#[test]
fn a_stopped_database_fails_a_deployment_in_one_line_leaving_nothing_and_a_restart_heals() {
    let mut server = PgServer::start();
    let url = server.new_database().replace("fleet@", "fleet:hunter2-pw@");
    let f = Fleet::on_postgres(&url);
    let task = f.task(&[]);
    let before = f.files();

    server.stop();
    let out = f.run(&deploy_marking(&task, "exec sleep 300"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("postgres://127.0.0.1:{}/", server.port())),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password was shown: {err}");
    assert!(f.sessions().is_empty(), "a session was left");
    assert_eq!(f.files(), before, "a file was left");

    server.run();
    let agent = f.deploy(&task, "builder", "0", &["sleep", "300"]);
    let status: Value = f.json(&["status", "--task", &task]);
    assert!(status.to_string().contains(&agent), "{status}");
    f.ok(&["kill", "--task", &task, "--agent", &agent]);
    assert!(f.sessions().is_empty());
}
