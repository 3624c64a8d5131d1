//! The Postgres registry, black-box: `fleet` against a real PostgreSQL server the test starts
//! privately (`testkit::postgres`), with real tmux. Racing deployers in separate processes never
//! break a limit; a database that goes away fails a deployment with one line naming it (never
//! its password) and leaves nothing; after a restart the next command works.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;

use camino::Utf8PathBuf;
use serde_json::{Value, json};
use testkit::postgres::PgServer;

use common::{Fleet, stderr, tagged, wait_for};

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

/// 8 `fleet deploy` racers running `script`, spread over `hosts` in turn, all at once; checks
/// that exactly 3 won and each loser said, in one line, that `max_concurrent` refused it.
fn race(hosts: &[&Fleet], task: &str, script: &str) -> Vec<std::process::Output> {
    let racers: Vec<_> = (0..8)
        .map(|i| {
            hosts[i % hosts.len()]
                .command(&deploy_marking(task, script))
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
    outs
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
    let outs = race(&[&f], &task, &script);
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

    server.run();
    assert_eq!(f.files(), before, "a file or a row was left");
    let agent = f.deploy(&task, "builder", "0", &["sleep", "300"]);
    let status: Value = f.json(&["status", "--task", &task]);
    assert!(status.to_string().contains(&agent), "{status}");
    f.ok(&["kill", "--task", &task, "--agent", &agent]);
    assert!(f.sessions().is_empty());
}

/// `fleet mcp` on Postgres answers, then exits cleanly when its client goes away: the
/// connection is closed off the server's async runtime (closing it on the runtime panicked).
#[test]
fn the_mcp_server_on_postgres_answers_and_exits_cleanly() {
    let server = PgServer::start();
    let f = Fleet::on_postgres(&server.new_database());
    let task = f.task(&[]);
    let requests = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "get_real_task_status", "arguments": {"task_id": task}}}),
    ];
    let mut mcp = f
        .command(&["mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = mcp.stdin.take().unwrap();
    let stdout = std::io::BufReader::new(mcp.stdout.take().unwrap());
    let mut lines = std::io::BufRead::lines(stdout);
    let mut send = |v: &Value| {
        use std::io::Write;
        writeln!(stdin, "{v}").unwrap();
    };
    send(&requests[0]);
    let init: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(init["id"], 1, "{init}");
    send(&requests[1]);
    send(&requests[2]);
    let answer: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(answer["id"], 2, "{answer}");
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert_eq!(
        answer["result"]["structuredContent"]["task_id"], task,
        "{answer}"
    );
    drop(stdin); // the client goes away
    let out = mcp.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}: {}", out.status, stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

/// Every `AGENT_REGISTRY.json` under the root and the index, parsed, by path.
fn json_registries(f: &Fleet) -> Vec<(String, Value)> {
    f.files()
        .into_iter()
        .filter(|(p, _)| p.ends_with("REGISTRY.json"))
        .map(|(p, b)| (p, serde_json::from_slice(&b).unwrap()))
        .collect()
}

fn agents_in(url: &str) -> usize {
    testkit::postgres::query(url, "SELECT count(*) FROM fleet_agents")[0]
        .parse()
        .unwrap()
}

/// The Python server's workspace into Postgres and back, losslessly; the workspace names its
/// database, so plain commands use it; an import never lands twice.
#[test]
fn migrate_moves_the_python_servers_files_to_postgres_and_back() {
    let server = PgServer::start();
    let url = server.new_database();
    let f = Fleet::new();
    common::python::python_workspace(&f);
    let before = json_registries(&f);
    let listed = f.json(&["task", "list"]);

    let moved = f.json(&["--database-url", &url, "migrate", "--to", "postgres"]);
    assert_eq!(moved["agents"], 2, "{moved}");
    assert!(
        moved["to"]
            .as_str()
            .unwrap()
            .starts_with("postgres://127.0.0.1:"),
        "{moved}"
    );
    assert_eq!(agents_in(&url), 2);
    assert_eq!(json_registries(&f), before, "the JSON files are only read");
    let named = f.root().join(".fleet/database-url");
    assert_eq!(fs_err::read_to_string(&named).unwrap(), url);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs_err::metadata(&named).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // No registry setting: the workspace's own database.
    assert_eq!(
        f.json(&["task", "list"]),
        listed,
        "the same tasks, from Postgres"
    );
    let again = f.run(&["migrate", "--to", "postgres"]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(stderr(&again).contains("already"), "{}", stderr(&again));

    let back = f.json(&["migrate", "--to", "json"]);
    assert!(
        back["kept"].as_str().unwrap().starts_with("postgres://"),
        "{back}"
    );
    assert!(!named.exists(), "the JSON files are the registry again");
    assert_eq!(
        json_registries(&f),
        before,
        "every task, agent and unknown field"
    );
    assert_eq!(agents_in(&url), 2, "the database's rows are kept");

    // Into the same database again: it holds these tasks exactly, so the import is done.
    f.json(&["--database-url", &url, "migrate", "--to", "postgres"]);
    assert!(named.exists());
    assert_eq!(agents_in(&url), 2);
    f.json(&["migrate", "--to", "json"]);
    // Once the files changed, it holds these tasks otherwise: nothing is imported.
    f.task(&[]);
    let twice = f.run(&["--database-url", &url, "migrate", "--to", "postgres"]);
    assert_eq!(twice.status.code(), Some(1), "{}", stderr(&twice));
    let err = stderr(&twice);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(common::python::TASK) && err.contains("already"),
        "{err}"
    );
    assert!(!named.exists());
    assert_eq!(agents_in(&url), 2);

    // Into a new database: deployments go there, not into the JSON files.
    let fresh = server.new_database();
    let files = json_registries(&f);
    f.json(&["--database-url", &fresh, "migrate", "--to", "postgres"]);
    f.deploy(common::python::TASK, "t", "0", &["sleep", "300"]);
    assert_eq!(agents_in(&fresh), 3);
    assert_eq!(
        json_registries(&f),
        files,
        "the deployment is in Postgres only"
    );
}

/// SQLite to Postgres and back: the database is moved aside, then made again, whole.
#[test]
fn migrate_moves_a_sqlite_registry_to_postgres_and_back() {
    let server = PgServer::start();
    let url = server.new_database();
    let f = Fleet::new();
    let task = f.task(&["--registry", "sqlite"]);
    let agent = f.deploy(&task, "t", "0", &["sleep", "300"]);
    let status = |f: &Fleet| {
        let mut s = f.json(&["status", "--task", &task]);
        s[0].as_object_mut().unwrap().remove("agents");
        s
    };
    let before = status(&f);
    let db = f.root().join("registry/fleet.sqlite3");

    let moved = f.json(&["--database-url", &url, "migrate", "--to", "postgres"]);
    assert!(!db.exists(), "{moved}");
    assert!(
        moved["kept"]
            .as_str()
            .unwrap()
            .contains("fleet.sqlite3.exported-"),
        "{moved}"
    );
    assert_eq!(agents_in(&url), 1);
    assert_eq!(status(&f), before, "from Postgres");

    f.json(&["migrate", "--to", "sqlite"]);
    assert!(db.exists());
    assert!(!f.root().join(".fleet/database-url").exists());
    assert_eq!(status(&f), before, "from SQLite again");
    f.ok(&["kill", "--task", &task, "--agent", &agent]);
}

/// Two hosts — two workspaces, two tmux servers with the same socket name, two `FLEET_HOST`s —
/// share one database: 8 racers across both under `max_concurrent 3` run exactly 3; each host
/// sees the other's agents with their host and never judges, reconciles or kills them.
#[test]
fn two_hosts_share_one_database_and_each_acts_only_on_its_own_agents() {
    let server = PgServer::start();
    let url = server.new_database();
    let on = |host: &str| {
        let mut f = Fleet::on_postgres(&url);
        f.settings.push(("FLEET_HOST".into(), host.into()));
        f
    };
    let a = on("host-a");
    let mut b = on("host-b");
    b.socket = a.socket.clone(); // the same name, on another server (its own TMUX_TMPDIR)
    let task = a.task(&["--max-concurrent", "3"]);
    let marks = Utf8PathBuf::from_path_buf(a.dir.path().join("marks")).unwrap();
    fs_err::create_dir_all(&marks).unwrap();
    let script = format!("touch \"{marks}/ran-$FLEET_AGENT_ID\" && exec sleep 300");
    let outs = race(&[&a, &b], &task, &script);
    let won: Vec<(usize, String)> = outs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.status.success())
        .map(|(i, o)| (i, String::from_utf8_lossy(&o.stdout).trim().to_owned()))
        .collect();
    wait_for("the 3 winners ran", || ran(&marks) == 3);
    assert_eq!(a.sessions().len() + b.sessions().len(), 3);

    // Host a's view: b's agents shown with their host, `elsewhere`; its reconcile leaves them.
    let status: Value = a.json(&["status", "--task", &task]);
    for (i, agent) in &won {
        let view = status[0]["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["agent_id"] == agent.as_str())
            .unwrap()
            .clone();
        let (host, seen) = if i % 2 == 0 {
            ("host-a", "alive")
        } else {
            ("host-b", "elsewhere")
        };
        assert_eq!(view["host"], host, "{view}");
        assert_eq!(view["liveness"], seen, "{view}");
    }
    let reconciled = a.json(&["reconcile"]);
    assert_eq!(reconciled["nothing_to_do"], true, "{reconciled}");
    // Each host kills only its own; asked to kill another's, one line naming its host.
    for (i, agent) in &won {
        let (own, other, host) = if i % 2 == 0 {
            (&a, &b, "host-a")
        } else {
            (&b, &a, "host-b")
        };
        let refused = other.run(&["kill", "--task", &task, "--agent", agent]);
        assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
        let err = stderr(&refused);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(&format!("runs on host {host}")), "{err}");
        let alive = tagged(&[agent.clone()].into());
        assert!(
            !alive.is_empty(),
            "{agent}: its process was killed from the other host"
        );
        assert_eq!(
            own.entry(&task, agent)["status"],
            "running",
            "{agent}: recorded ended from the other host"
        );
        own.ok(&["kill", "--task", &task, "--agent", agent]);
        assert!(tagged(&[agent.clone()].into()).is_empty());
    }
    assert!(a.sessions().is_empty() && b.sessions().is_empty());
    assert_eq!(ran(&marks), 3, "a refused deployer's agent ran");
}
