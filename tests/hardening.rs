//! The breaks of the hostile review (issue 12), each frozen as a black-box test of the built
//! binary on a private tmux server.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;

use common::{Fleet, deploy_args, stderr};
use serde_json::Value;

/// Break 0: concurrent deployers into one workspace. A deployer's intent never looks abandoned
/// to another's pre-deploy cleanup (it was created before it was locked, and deleted by them).
#[test]
fn concurrent_deployers_all_go_live() {
    const DEPLOYERS: usize = 8;
    const EACH: usize = 25;
    let f = Fleet::new();
    let task = f.task(&["--max-agents", "500", "--max-concurrent", "500"]);
    let children: Vec<_> = (0..DEPLOYERS)
        .map(|d| {
            let script = format!(
                "fail=0; for i in $(seq 1 {EACH}); do \"$0\" deploy --task {task} --type t{d}_$i \
                 --prompt p --startup-grace-ms 0 -- sleep 60 >/dev/null || fail=$((fail+1)); done; \
                 exit $fail"
            );
            f.shell(&script)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut failures = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        if !out.status.success() {
            failures.push(stderr(&out));
        }
    }
    assert!(failures.is_empty(), "failed deployments: {failures:#?}");
    let status = f.json(&["status", "--task", &task]);
    let agents = status[0]["agents"].as_array().unwrap();
    assert_eq!(agents.len(), DEPLOYERS * EACH);
    assert!(
        agents
            .iter()
            .all(|a| a["liveness"] == "alive" && a["status"] == "running")
    );
    assert_eq!(f.sessions().len(), DEPLOYERS * EACH);
    let intents = f.root().join(".fleet/intents");
    let left: Vec<_> = fs_err::read_dir(&intents).unwrap().collect();
    assert!(left.is_empty(), "intents left: {left:?}");
    let _: Value = f.json(&["reconcile"]);
}

/// Break 1: intent files are written by fleet, but agents can write in the workspace. An intent
/// naming a path outside it, an intent naming a live agent, and garbage: reconcile (and a
/// deploy's pre-clean) derive every path from validated ids, never roll back a confirmed agent,
/// and move unreadable intents aside without blocking anything.
#[test]
fn forged_or_garbage_intents_cannot_make_fleet_delete_or_kill() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let live = f.deploy(&task, "worker", "0", &["sleep", "60"]);
    let intents = f.root().join(".fleet/intents");
    let outside = f.dir.path().join("precious.txt");
    fs_err::write(&outside, b"keep me").unwrap();
    let forge = |agent: &str, prompt_file: &str, created_at: &str| {
        let record = serde_json::json!({
            "version": 1,
            "task": task,
            "agent": agent,
            "session": format!("agent_{agent}"),
            "prompt_file": prompt_file,
            "pid": 1,
            "created_at": created_at,
        });
        fs_err::write(intents.join(format!("{agent}.json")), record.to_string()).unwrap();
    };
    forge(
        "ghost",
        outside.to_str().unwrap(),
        "2026-01-01T00:00:00.000000",
    );
    forge(
        &live,
        outside.to_str().unwrap(),
        "2026-01-01T00:00:00.000000",
    );
    fs_err::write(intents.join("empty.json"), b"").unwrap();

    // A deploy into the task cleans its abandoned intents first: it must still work.
    let second = f.deploy(&task, "other", "0", &["sleep", "60"]);
    let report = f.json(&["reconcile"]);
    assert_eq!(fs_err::read(&outside).unwrap(), b"keep me", "{report}");
    let status = f.json(&["status", "--task", &task]);
    let by_id = |id: &str| {
        status[0]["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["agent_id"] == id)
            .cloned()
    };
    for agent in [&live, &second] {
        let a = by_id(agent).unwrap_or_else(|| panic!("{agent} was erased: {status}"));
        assert_eq!(a["liveness"], "alive", "{agent}: {status}");
        assert_eq!(a["status"], "running", "{agent}: {status}");
    }
    let left: Vec<String> = fs_err::read_dir(&intents)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        left,
        ["quarantine"],
        "forged intents are gone, garbage set aside"
    );
    let quarantined = fs_err::read_dir(intents.join("quarantine"))
        .unwrap()
        .count();
    assert_eq!(quarantined, 1, "the empty intent");
    assert_eq!(f.json(&["reconcile"])["nothing_to_do"], true);
}

/// Processes whose command line contains `marker`, zombies aside.
fn marked(marker: &str) -> Vec<u32> {
    testkit::procs::running()
        .into_iter()
        .filter(|pid| testkit::procs::cmdline(*pid).contains(marker))
        .collect()
}

/// Break 2: a daemon that leaves the agent's tree and drops its tag does not survive `fleet
/// kill`, nor the rollback of a failed deployment.
#[test]
fn a_daemon_that_leaves_the_tree_survives_neither_kill_nor_rollback() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let prefix = format!("fleet-hardening-daemon-{}", std::process::id());
    let daemon = |then: &str| {
        format!(
            "env -u FLEET_AGENT_ID setsid -f sh -c 'trap \"\" HUP TERM INT; while :; do sleep 0.2; done' \"$0-d\"; {then}"
        )
    };
    let script = daemon("sleep 60");
    let agent = f.deploy(
        &task,
        "k",
        "300",
        &["sh", "-c", &script, &format!("{prefix}-kill")],
    );
    common::wait_for("the daemon", || {
        !marked(&format!("{prefix}-kill-d")).is_empty()
    });
    let killed = f.json(&["kill", "--task", &task, "--agent", &agent]);
    assert!(
        marked(&format!("{prefix}-kill-d")).is_empty(),
        "the daemon survived fleet kill: {killed}"
    );

    // Dies inside its startup grace, leaving the daemon: the deployment fails and rolls back.
    let script = daemon("sleep 0.3; exit 1");
    let out = f.run(&deploy_args(
        &task,
        "r",
        "2000",
        &["sh", "-c", &script, &format!("{prefix}-rollback")],
    ));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        marked(&format!("{prefix}-rollback-d")).is_empty(),
        "the daemon survived the rollback"
    );
}

/// Break 3: refused agents never run. 20 concurrent deploys under `--max-concurrent 3`: every
/// agent writes a file the moment it runs, and exactly 3 files appear.
#[test]
fn agents_refused_by_a_limit_never_run() {
    let f = Fleet::new();
    let task = f.task(&["--max-concurrent", "3"]);
    let ran = f.dir.path().join("ran");
    fs_err::create_dir_all(&ran).unwrap();
    let children: Vec<_> = (0..20)
        .map(|i| {
            let script = format!("touch {}/$$; sleep 60", ran.display());
            f.command(&[
                "deploy",
                "--task",
                &task,
                "--type",
                &format!("t{i}"),
                "--prompt",
                "p",
                "--startup-grace-ms",
                "200",
                "--",
                "sh",
                "-c",
                &script,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    let live = children
        .into_iter()
        .map(|mut c| c.wait().unwrap())
        .filter(|s| s.success())
        .count();
    assert_eq!(live, 3);
    common::wait_for("the live agents to run code", || {
        fs_err::read_dir(&ran).unwrap().count() >= 3
    });
    let count = fs_err::read_dir(&ran).unwrap().count();
    assert_eq!(count, 3, "agents that ran code");
    assert_eq!(f.sessions().len(), 3);
}

/// Break 4: a corrupt global index — derived data — blocks nothing for good. A deploy into a
/// healthy task fails naming the file and `fleet reconcile`; a task create leaves nothing;
/// reconcile moves the index aside and rebuilds it from the task registries.
#[test]
fn a_corrupt_global_index_is_rebuilt_by_reconcile_and_blocks_nothing_for_good() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let first = f.deploy(&task, "a", "0", &["sleep", "60"]);
    let index = f.root().join("registry/GLOBAL_REGISTRY.json");
    fs_err::write(&index, b"{\"tasks\": ").unwrap();
    let before = f.files();

    let out = f.run(&["task", "create", "--description", "another"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(index.as_str()) && err.contains("fleet reconcile"),
        "{err}"
    );
    assert_eq!(f.files(), before, "a failed task create leaves nothing");

    let out = f.run(&deploy_args(&task, "b", "0", &["sleep", "60"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("fleet reconcile"), "{}", stderr(&out));
    assert_eq!(
        f.sessions().len(),
        1,
        "nothing of the failed deploy is left"
    );

    let report = f.json(&["reconcile"]);
    assert!(report["index"]["moved_corrupt"].is_string(), "{report}");
    let rebuilt: Value = serde_json::from_slice(&fs_err::read(&index).unwrap()).unwrap();
    assert!(rebuilt["agents"][&first].is_object(), "{rebuilt}");
    f.deploy(&task, "b", "0", &["sleep", "60"]);
    f.task(&[]);
}

/// Break 5: reconcile of many tasks keeps its open files bounded (it held every task lock at
/// once): 300 tasks under `ulimit -n 128`.
#[test]
fn reconcile_of_many_tasks_keeps_its_open_files_bounded() {
    let f = Fleet::new();
    let template = f.task(&[]);
    let text =
        fs_err::read_to_string(f.root().join(&template).join("AGENT_REGISTRY.json")).unwrap();
    for i in 0..300 {
        let id = format!("TASK-20260101-000000-{i:08x}");
        let dir = f.root().join(&id);
        fs_err::create_dir_all(&dir).unwrap();
        fs_err::write(
            dir.join("AGENT_REGISTRY.json"),
            text.replace(&template, &id),
        )
        .unwrap();
    }
    let out = f
        .shell("ulimit -n 128 && exec \"$0\" --json reconcile")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["index"]["tasks"], 301, "{report}");
}

fn mode(path: &camino::Utf8Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs_err::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Break 6: what fleet creates in the workspace is private (registries hold prompt previews);
/// a file that existed keeps its mode.
#[test]
fn files_fleet_creates_are_private_and_existing_modes_are_kept() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let agent = f.deploy(&task, "a", "0", &["sleep", "60"]);
    let root = f.root();
    let t = root.join(&task);
    for dir in [
        root.clone(),
        t.clone(),
        t.join("logs"),
        root.join("registry"),
        root.join(".fleet/intents"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{dir}");
    }
    for file in [
        t.join("AGENT_REGISTRY.json"),
        t.join("AGENT_REGISTRY.json.lock"),
        root.join("registry/GLOBAL_REGISTRY.json"),
        t.join(format!("agent_prompt_{agent}.txt")),
        t.join(format!("logs/{agent}_stream.jsonl")),
    ] {
        assert_eq!(mode(&file), 0o600, "{file}");
    }
    use std::os::unix::fs::PermissionsExt;
    let registry = t.join("AGENT_REGISTRY.json");
    fs_err::set_permissions(&registry, std::fs::Permissions::from_mode(0o640)).unwrap();
    f.deploy(&task, "b", "0", &["sleep", "60"]);
    assert_eq!(mode(&registry), 0o640, "a rewrite keeps the mode");
}

/// Break 8: an orphan session (its registry entry lost, say to a restore from a backup) goes
/// with its prompt file.
#[test]
fn an_orphan_session_goes_with_its_prompt_file() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let registry = f.root().join(&task).join("AGENT_REGISTRY.json");
    let backup = fs_err::read(&registry).unwrap();
    let agent = f.deploy(&task, "a", "0", &["sleep", "60"]);
    fs_err::write(&registry, &backup).unwrap();
    let prompt = f
        .root()
        .join(&task)
        .join(format!("agent_prompt_{agent}.txt"));
    assert!(prompt.exists());
    let report = f.json(&["reconcile"]);
    assert_eq!(report["orphans"][0]["agent"], agent.as_str(), "{report}");
    assert_eq!(report["orphans"][0]["prompt_removed"], true, "{report}");
    assert!(!prompt.exists());
    assert!(f.sessions().is_empty());
    assert_eq!(f.json(&["reconcile"])["nothing_to_do"], true);
}

/// Break 9: a dry run changes no file, temp files included, and reports what it would do.
#[test]
fn a_dry_run_changes_no_file() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let temp = f.root().join(&task).join(".AGENT_REGISTRY.json.tmp");
    fs_err::write(&temp, b"{").unwrap();
    let before = f.files();
    let report = f.json(&["reconcile", "--dry-run"]);
    assert_eq!(report["temp_files"], 1, "{report}");
    assert_eq!(f.files(), before);
    assert!(temp.exists());
    let report = f.json(&["reconcile"]);
    assert_eq!(report["temp_files"], 1, "{report}");
    assert!(!temp.exists());
}

/// Break 11: control characters from outside (a description set over MCP, say) never reach
/// the terminal raw; JSON stays exact.
#[test]
fn terminal_escapes_in_descriptions_are_shown_escaped() {
    let f = Fleet::new();
    let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2Jred";
    let task = f.task(&["--description", evil]);
    for args in [&["task", "list"][..], &["status"][..]] {
        let out = f.ok(args);
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{7}'),
            "{args:?}: {out:?}"
        );
        assert!(out.contains("\\u{1b}]0;pwned"), "{args:?}: {out}");
    }
    let listed = f.json(&["task", "list"]);
    assert_eq!(listed[0]["description"], evil);
    assert_eq!(listed[0]["task_id"], task.as_str());
}

/// Break 10: a workspace path holding a tab or a newline. tmux's output is tab-separated and
/// line-based; the log path tag is hex in it, so a live agent is seen alive and an orphan is
/// still found.
#[test]
fn a_workspace_path_with_a_tab_or_newline_breaks_nothing() {
    let f = Fleet::new();
    let root = f.dir.path().join("odd\tpath\nhere");
    let run = |args: &[&str]| {
        let out = f.command(args).env("FLEET_ROOT", &root).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let task = run(&["--json", "task", "create", "--description", "d"])["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let registry = root.join(&task).join("AGENT_REGISTRY.json");
    let backup = fs_err::read(&registry).unwrap();
    let agent = run(&[
        "--json",
        "deploy",
        "--task",
        &task,
        "--type",
        "a",
        "--prompt",
        "p",
        "--startup-grace-ms",
        "0",
        "--",
        "sleep",
        "60",
    ])["agent_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = run(&["--json", "status", "--task", &task]);
    assert_eq!(status[0]["agents"][0]["liveness"], "alive", "{status}");
    fs_err::write(&registry, &backup).unwrap();
    let report = run(&["--json", "reconcile"]);
    assert_eq!(report["orphans"][0]["agent"], agent.as_str(), "{report}");
    assert!(f.sessions().is_empty());
}

/// Break 13: Ctrl-C, SIGTERM or SIGHUP (a closed terminal, a lost ssh connection) during
/// `fleet deploy` rolls the deployment back before fleet exits, with 130, 143 or 129, reported
/// like any failed step.
#[test]
fn a_signal_during_deploy_rolls_it_back_before_fleet_exits() {
    for (signal, code, name) in [(2, 130, "SIGINT"), (15, 143, "SIGTERM"), (1, 129, "SIGHUP")] {
        let f = Fleet::new();
        let task = f.task(&[]);
        let before = f.files();
        let child = f
            .command(&deploy_args(&task, "a", "30000", &["sleep", "60"]))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Inside its startup grace: the session exists and the agent runs.
        common::wait_for("the session", || f.sessions().len() == 1);
        let registry = f.root().join(&task).join("AGENT_REGISTRY.json");
        common::wait_for("the registration", || {
            fs_err::read_to_string(&registry).is_ok_and(|t| t.contains("tmux_session"))
        });
        let sent = send_signal(child.id(), signal);
        assert!(sent, "signalled");
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("interrupted by signal {signal} ({name})"))
                && err.contains("failed at step `confirm live`"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(f.sessions().is_empty(), "{name}: the session was killed");
        assert_eq!(f.files(), before, "{name}: nothing left but the logs");
    }
}

/// Sends `signal` to `pid` (a child this test started).
fn send_signal(pid: u32, signal: i32) -> bool {
    std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Also found: a prompt read from a file or pipe had no size cap (`/dev/zero` was read until
/// out of memory). 16 MiB by default, `FLEET_MAX_PROMPT_BYTES` to change it.
#[test]
fn a_prompt_read_from_a_file_or_pipe_is_capped() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let before = f.files();
    let deploy = [
        "deploy",
        "--task",
        &task,
        "--type",
        "a",
        "--prompt-file",
        "/dev/zero",
    ];
    let out = f.run(&deploy);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("prompt file /dev/zero is over 16777216 bytes"),
        "{err}"
    );
    let out = f
        .command(&deploy)
        .env("FLEET_MAX_PROMPT_BYTES", "1000")
        .output()
        .unwrap();
    assert!(stderr(&out).contains("over 1000 bytes"), "{}", stderr(&out));
    assert_eq!(f.files(), before);
    assert!(f.sessions().is_empty());
}

/// Also found: failed deployments left their logs (`<id>_stream.jsonl` and `.exit`) with no
/// registry entry. The rollback removes them; the error already quotes the last lines.
#[test]
fn a_failed_deployment_leaves_no_log() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let out = f.run(&deploy_args(
        &task,
        "a",
        "2000",
        &["sh", "-c", "echo doomed; exit 4"],
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("doomed"), "{}", stderr(&out));
    let logs: Vec<_> = fs_err::read_dir(f.root().join(&task).join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(logs.is_empty(), "{logs:?}");
}

/// Issue 29: a registry entry's `fleet_worktree` naming a path outside the root and the
/// branch `develop` — fields anyone who can write the registry can forge — makes `fleet kill`
/// remove neither: fleet removes only what it derives from the ids and made itself.
#[test]
fn a_forged_checkout_in_the_registry_removes_nothing_of_the_users() {
    use testkit::git::{git, repo_at};
    let f = Fleet::new();
    let task = f.task(&[]);
    let repo = repo_at(&camino::Utf8PathBuf::from_path_buf(f.dir.path().join("repo")).unwrap());
    git(&repo, &["branch", "develop"]);
    let precious = camino::Utf8PathBuf::from_path_buf(f.dir.path().join("precious")).unwrap();
    fs_err::create_dir_all(&precious).unwrap();
    fs_err::write(precious.join("data"), "keep me").unwrap();
    let out = f.deploy_worktree(&task, repo.as_str(), &["sleep", "300"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let agent = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let file = f.root().join(&task).join("AGENT_REGISTRY.json");
    let mut registry: Value = serde_json::from_slice(&fs_err::read(&file).unwrap()).unwrap();
    let entry = registry["agents"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["id"] == agent.as_str())
        .unwrap();
    entry["fleet_worktree"]["path"] = precious.as_str().into();
    entry["fleet_worktree"]["branch"] = "develop".into();
    fs_err::write(&file, serde_json::to_vec_pretty(&registry).unwrap()).unwrap();

    let out = f.run(&["kill", "--task", &task, "--agent", &agent]);
    assert!(out.status.success(), "{}", stderr(&out));
    f.ok(&["reconcile"]);
    assert_eq!(
        fs_err::read_to_string(precious.join("data")).unwrap(),
        "keep me"
    );
    assert!(git(&repo, &["branch", "--list", "develop"]).contains("develop"));
}
