//! What an agent controls never blocks, floods or reaches the terminal raw (issue 29): its log
//! replaced with a FIFO, a line of many megabytes, escape sequences in its output — against
//! real tmux on a private server.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{Fleet, WAIT_BOUND, stderr};

/// Runs `c`, failing the test if it has not ended within [`WAIT_BOUND`] (it is then killed):
/// a command that blocks on an agent's file fails instead of hanging the suite.
fn bounded(mut c: Command) -> Output {
    let child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !waiter.is_finished() {
        if start.elapsed() > WAIT_BOUND {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).unwrap(),
                rustix::process::Signal::KILL,
            );
            panic!("{c:?} blocked for {WAIT_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    waiter.join().unwrap()
}

/// Deploys `sh -c script` into a new task; (task, agent).
fn deploy(f: &Fleet, script: &str) -> (String, String) {
    let task = f.task(&[]);
    let agent = f.deploy(&task, "worker", "0", &["sh", "-c", script]);
    (task, agent)
}

#[test]
fn a_log_replaced_by_a_fifo_blocks_no_command() {
    let f = Fleet::new();
    let (task, agent) = deploy(&f, "exec sleep 300");
    let log = f
        .root()
        .join(&task)
        .join("logs")
        .join(format!("{agent}_stream.jsonl"));
    fs_err::remove_file(&log).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        log.as_std_path(),
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .unwrap();
    for args in [
        &["status", "--task", task.as_str()][..],
        &["--json", "status", "--task", task.as_str()][..],
        &["logs", "--task", task.as_str(), "--agent", agent.as_str()][..],
        &["wait", "--task", task.as_str(), "--timeout", "1"][..],
        &["reconcile"][..],
    ] {
        let out = bounded(f.command(args));
        assert_ne!(out.status.code(), None, "{args:?}");
    }
    let out = bounded(f.command(&["kill", "--task", &task, "--agent", &agent]));
    assert!(out.status.success(), "kill: {}", stderr(&out));
    assert!(f.sessions().is_empty());
}

#[test]
fn a_line_of_many_megabytes_is_skipped_not_held() {
    let f = Fleet::new();
    // 20 MiB without a newline, then a line fleet reads.
    let script = r#"head -c 20971520 /dev/zero | tr '\0' a; printf '\n{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"after the flood"}],"usage":{"input_tokens":1,"output_tokens":1}}}\n'; exec sleep 300"#;
    let (task, agent) = deploy(&f, script);
    let mut last = Value::Null;
    common::wait_for("the line after the flood", || {
        let status = f.json(&["status", "--task", &task]);
        last = status[0]["agents"][0].clone();
        last["last_text"] == "after the flood"
    });
    assert_eq!(last["agent_id"], agent.as_str());
    assert_eq!(last["activity"]["turns"], 1, "{last}");
}

#[test]
fn escape_sequences_never_reach_the_terminal_raw() {
    let f = Fleet::new();
    let evil = r"printf '\033]0;pwned\007\033]52;c;cHduZWQ=\007\033[2Jplain\n'";
    let (task, agent) = deploy(&f, &format!("{evil}; exec sleep 1"));
    common::wait_for("the agent's output", || {
        f.ok(&["logs", "--task", &task, "--agent", &agent, "--raw"])
            .contains("plain")
    });
    let follow = bounded(f.command(&["logs", "--task", &task, "--agent", &agent, "--follow"]));
    let shown = String::from_utf8_lossy(&follow.stdout);
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown:?}"
    );
    assert!(
        shown.contains("\\u{1b}]0;pwned") && shown.contains("plain"),
        "{shown}"
    );
    let raw = f.ok(&["logs", "--task", &task, "--agent", &agent, "--raw"]);
    assert!(
        raw.contains("\u{1b}]0;pwned\u{7}"),
        "--raw passes bytes: {raw:?}"
    );

    // A deployment that fails quotes the agent's last lines: escaped too, on one line.
    let task = f.task(&[]);
    let out = f.run(&common::deploy_args(
        &task,
        "worker",
        "2000",
        &["sh", "-c", &format!("{evil}; exit 3")],
    ));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(err.contains("plain"), "{err}");
    // Bidirectional overrides in a description are shown escaped.
    let task = f.task(&["--description", "abc\u{202e}fed"]);
    let listed = f.ok(&["task", "list"]);
    assert!(
        !listed.contains('\u{202e}') && listed.contains("\\u{202e}"),
        "{listed}"
    );
    assert!(listed.contains(&task));
}

/// Issue 29: fleet's own directories replaced with symlinks out of the root (`<task>/logs`,
/// `.fleet/intents`) make a deployment fail, naming the link — fleet never writes through it.
#[test]
fn fleets_directories_replaced_by_symlinks_are_refused() {
    let f = Fleet::new();
    let task = f.task(&[]);
    f.deploy(&task, "worker", "0", &["sleep", "300"]);
    let outside = f.dir.path().join("outside");
    fs_err::create_dir_all(&outside).unwrap();
    for dir in [
        f.root().join(&task).join("logs"),
        f.root().join(".fleet/intents"),
    ] {
        let aside = dir.with_extension("aside");
        fs_err::rename(&dir, &aside).unwrap();
        std::os::unix::fs::symlink(&outside, &dir).unwrap();
        let out = f.run(&common::deploy_args(&task, "other", "0", &["sleep", "300"]));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("is a symlink") && err.contains(dir.as_str()),
            "{err}"
        );
        assert_eq!(
            fs_err::read_dir(&outside).unwrap().count(),
            0,
            "nothing written outside"
        );
        fs_err::remove_file(&dir).unwrap();
        fs_err::rename(&aside, &dir).unwrap();
    }
}

/// Issue 29: what fleet creates is private — 0600 files, 0700 directories — under umask 0 too:
/// the activity cache, the worktrees directory.
#[test]
fn what_fleet_creates_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fleet::new();
    let repo = testkit::git::repo_at(
        &camino::Utf8PathBuf::from_path_buf(f.dir.path().join("repo")).unwrap(),
    );
    let task = f.task(&[]);
    let script = format!(
        "umask 0; \"$0\" deploy --task {task} --type w --prompt p --startup-grace-ms 0 --worktree --repo '{repo}' -- sh -c 'echo {{}}; exec sleep 300' && \"$0\" status --task {task}"
    );
    let out = f.shell(&script).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = |p: &camino::Utf8Path| fs_err::metadata(p).unwrap().permissions().mode() & 0o777;
    let cache = f
        .root()
        .join(".fleet/activity")
        .join(format!("{task}.json"));
    assert_eq!(mode(&cache), 0o600, "{cache}");
    assert_eq!(mode(&f.root().join(&task).join("worktrees")), 0o700);
}

/// Issue 29: a tmux server started by a fleet under `ulimit -Sn 8` does not keep that limit:
/// the deployments after it still run.
#[test]
fn a_server_started_under_a_low_open_files_limit_serves_later_deployments() {
    let f = Fleet::new();
    let task = f.task(&["--max-concurrent", "10"]);
    let out = f
        .shell(&format!(
            "ulimit -Sn 8 && \"$0\" deploy --task {task} --type first --prompt p --startup-grace-ms 0 -- sleep 300"
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for i in 0..6 {
        f.deploy(&task, &format!("later{i}"), "0", &["sleep", "300"]);
    }
    assert_eq!(f.sessions().len(), 7);
}

/// Issue 29: under a process limit (`ulimit -u`), fleet fails with one line, never a panic.
/// Root ignores RLIMIT_NPROC, so as root the commands run as `nobody` (setpriv), in a
/// workspace of their own that `nobody` may write.
#[test]
fn a_process_limit_is_a_one_line_error_not_a_panic() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    fs_err::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let fleet = env!("CARGO_BIN_EXE_fleet");
    let socket = format!("nproc-{}", std::process::id());
    let root = rustix::process::geteuid().is_root();
    let run = |nproc: Option<u32>, args: &[&str]| {
        let mut c = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
            c
        } else {
            Command::new("env")
        };
        if let Some(n) = nproc {
            c.args(["prlimit", &format!("--nproc={n}:{n}")]);
        }
        c.arg(fleet)
            .args(args)
            .env("FLEET_ROOT", dir.path().join("ws"))
            .env("TMUX_TMPDIR", dir.path())
            .env("HOME", dir.path())
            .env("FLEET_TMUX_SOCKET", &socket)
            .env_remove("TMUX")
            .env_remove("FLEET_AGENT_CMD")
            .env_remove("FLEET_REGISTRY")
            .stdin(std::process::Stdio::null());
        c.output().unwrap()
    };
    let out = run(None, &["task", "create", "--description", "d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let task = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let deploy = [
        "deploy",
        "--task",
        &task,
        "--type",
        "w",
        "--prompt",
        "p",
        "--startup-grace-ms",
        "0",
        "--",
        "sleep",
        "300",
    ];
    let out = run(None, &deploy);
    assert!(out.status.success(), "{}", stderr(&out));
    for args in [&["status", "--task", task.as_str()][..], &deploy[..]] {
        let out = run(Some(1), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let mut kill = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "tmux"]);
        c
    } else {
        Command::new("tmux")
    };
    let _ = kill
        .args(["-L", &socket, "kill-server"])
        .env("TMUX_TMPDIR", dir.path())
        .env_remove("TMUX")
        .output();
}
