//! tmux-backend on real tmux. Every test has its own server (`-L fleet-test-<pid>-<n>`), killed
//! when the test ends; the default server and other sessions are never touched.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use deploy_core::{
    AgentId, ExitStatus, Liveness, SessionBackend, SessionInfo, SessionName, SessionSpec, TaskId,
};
use sha2::{Digest, Sha256};
use tmux_backend::{Server, TmuxBackend};

const WRAP: &str = env!("CARGO_BIN_EXE_tmux-agent-wrap");
/// How long a test waits for the thing itself before it fails: generous, so a busy machine
/// slows a test down but never fails it.
const WAIT_BOUND: Duration = Duration::from_secs(60);

static NEXT: AtomicU32 = AtomicU32::new(0);

struct Tmux {
    backend: TmuxBackend,
    socket: String,
    dir: tempfile::TempDir,
}

impl Tmux {
    fn new() -> Tmux {
        let socket = format!(
            "fleet-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let backend = TmuxBackend::new(Server::Name(socket.clone()), vec![WRAP.to_owned()])
            .with_kill_grace(Duration::from_millis(500));
        Tmux {
            backend,
            socket,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> Utf8PathBuf {
        Utf8PathBuf::from_path_buf(self.dir.path().join(name)).unwrap()
    }

    /// A spec for agent `agent` running `argv`, its prompt file holding `prompt`.
    fn spec(&self, agent: &str, argv: &[&str], prompt: &[u8]) -> SessionSpec {
        let agent_id = AgentId::parse(agent).unwrap();
        let prompt_file = self.path(&format!("prompt_{agent}.txt"));
        fs_err::write(&prompt_file, prompt).unwrap();
        SessionSpec {
            session: SessionName::for_agent(&agent_id).unwrap(),
            agent: agent_id,
            task: TaskId::parse("TASK-T").unwrap(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            workdir: self.path(""),
            env: Vec::new(),
            prompt_file,
            log_file: self.path(&format!("logs/{agent}_stream.jsonl")),
        }
    }

    /// Starts `spec` and lets its agent run, as a deployment does once registered.
    fn start(&self, spec: &SessionSpec) -> SessionInfo {
        let info = self.backend.start(spec).unwrap();
        self.backend.open_gate(&spec.session).unwrap();
        info
    }

    /// A raw tmux call on this test's private server.
    fn raw(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-f", "/dev/null", "-L", &self.socket])
            .args(args)
            .output()
            .unwrap()
    }

    fn wait_exit(&self, session: &SessionName) -> Liveness {
        let start = Instant::now();
        loop {
            let l = self.backend.probe(session).unwrap();
            if l != Liveness::Alive || start.elapsed() > WAIT_BOUND {
                return l;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if let Ok(sessions) = self.backend.list() {
            for s in sessions {
                let _ = self.backend.kill(&s.session, &s.agent);
            }
        }
        let _ = self.backend.kill_server();
        // tmux leaves its socket file behind: remove this test's own (tmux's -L location).
        use std::os::unix::fs::MetadataExt;
        let uid = fs_err::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
        let dir = std::env::var("TMUX_TMPDIR").unwrap_or_else(|_| "/tmp".into());
        let _ = std::fs::remove_file(format!("{dir}/tmux-{uid}/{}", self.socket));
    }
}

fn session(agent: &str) -> SessionName {
    SessionName::parse(&format!("agent_{agent}")).unwrap()
}

/// Processes whose environment carries `agent`'s tag, zombies aside.
fn tagged(agent: &str) -> Vec<u32> {
    testkit::procs::running()
        .into_iter()
        .filter(|pid| testkit::procs::env_var(*pid, "FLEET_AGENT_ID").as_deref() == Some(agent))
        .collect()
}

#[test]
fn exact_targets_never_touch_a_session_whose_name_extends_the_target() {
    let t = Tmux::new();
    let (a1, a10) = (session("a-1"), session("a-10"));
    t.start(&t.spec("a-10", &["sleep", "30"], b"p"));
    // tmux alone would match `agent_a-1` to `agent_a-10` by prefix: it must not exist yet.
    assert_eq!(t.backend.probe(&a1).unwrap(), Liveness::Missing);
    assert!(t.backend.capture(&a1, 10).unwrap().is_empty());
    let report = t
        .backend
        .kill(&a1, &AgentId::parse("a-1").unwrap())
        .unwrap();
    assert!(!report.session_existed && report.killed.is_empty());
    assert_eq!(t.backend.probe(&a10).unwrap(), Liveness::Alive);

    t.start(&t.spec("a-1", &["sleep", "30"], b"p"));
    assert_eq!(t.backend.probe(&a1).unwrap(), Liveness::Alive);
    let report = t
        .backend
        .kill(&a1, &AgentId::parse("a-1").unwrap())
        .unwrap();
    assert!(report.session_existed);
    assert!(
        report.killed.iter().any(|k| k.name == "sleep"),
        "{report:?}"
    );
    assert_eq!(t.backend.probe(&a1).unwrap(), Liveness::Missing);
    assert_eq!(t.backend.probe(&a10).unwrap(), Liveness::Alive);
    let listed: Vec<String> = t
        .backend
        .list()
        .unwrap()
        .into_iter()
        .map(|s| s.session.to_string())
        .collect();
    assert_eq!(listed, ["agent_a-10"]);
    assert!(!tagged("a-10").is_empty());
}

#[test]
fn early_deaths_report_the_agents_own_status_every_time() {
    let t = Tmux::new();
    let cases: [(&str, Vec<&str>, ExitStatus, &str); 3] = [
        (
            "exit",
            vec!["sh", "-c", "echo dying with 7; exit 7"],
            ExitStatus::Code(7),
            "dying with 7",
        ),
        (
            "missing",
            vec!["/nonexistent/agent-binary", "-p"],
            ExitStatus::Code(127),
            "cannot run /nonexistent/agent-binary",
        ),
        (
            "signal",
            vec!["sh", "-c", "echo terminating; kill -TERM $$"],
            ExitStatus::Signal(15),
            "terminating",
        ),
    ];
    const N: usize = 100;
    for (kind, argv, want, line) in &cases {
        let names: Vec<String> = (0..N).map(|i| format!("{kind}-{i}")).collect();
        for name in &names {
            t.start(&t.spec(name, argv, b""));
        }
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for name in &names {
            let got = t.wait_exit(&session(name));
            match &got {
                Liveness::Exited { status, last_lines } if status == want => {
                    assert!(
                        last_lines.iter().any(|l| l.contains(line)),
                        "{name}: {last_lines:?}"
                    );
                    *seen.entry("ok".into()).or_default() += 1;
                }
                other => *seen.entry(format!("{other:?}")).or_default() += 1,
            }
            t.backend
                .kill(&session(name), &AgentId::parse(name).unwrap())
                .unwrap();
        }
        assert_eq!(seen, BTreeMap::from([("ok".to_owned(), N)]), "{kind}");
    }
}

#[test]
fn nothing_in_prompt_workdir_env_or_argv_is_ever_interpreted() {
    let t = Tmux::new();
    let marker = t.path("X");
    let evil = format!(
        "$(touch {marker}) `touch {marker}` '\"; touch {marker};\n#(touch {marker}) #{{host}} ;"
    );
    // The workdir's name carries all of it too (a file name cannot hold '/').
    let workdir = t.path(&evil.replace('/', "_"));
    fs_err::create_dir_all(&workdir).unwrap();
    let prompt = format!("{evil}\n{}", "é".repeat(10));
    let out = t.path("out");
    fs_err::create_dir_all(&out).unwrap();
    let script = r#"cat > "$OUT/prompt"; printf %s "$EVIL" > "$OUT/env"; pwd > "$OUT/pwd"; for a in "$@"; do printf '%s\0' "$a"; done > "$OUT/args""#;
    let mut spec = t.spec(
        "inj",
        &["sh", "-c", script, "sh", &evil, "#{host}", "x;", "\\;"],
        prompt.as_bytes(),
    );
    spec.workdir = workdir.clone();
    spec.env = vec![
        ("EVIL".into(), evil.clone()),
        ("OUT".into(), out.to_string()),
    ];
    t.start(&spec);
    let status = t.wait_exit(&spec.session);
    assert!(
        matches!(
            status,
            Liveness::Exited {
                status: ExitStatus::Code(0),
                ..
            }
        ),
        "{status:?}"
    );
    assert!(!marker.exists(), "a shell or a tmux format ran user text");
    let sha = |b: &[u8]| Sha256::digest(b).to_vec();
    assert_eq!(
        sha(&fs_err::read(out.join("prompt")).unwrap()),
        sha(prompt.as_bytes())
    );
    assert_eq!(fs_err::read_to_string(out.join("env")).unwrap(), evil);
    assert_eq!(
        fs_err::read_to_string(out.join("pwd")).unwrap().trim_end(),
        workdir.as_str()
    );
    let args: Vec<String> = fs_err::read(out.join("args"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8(a.to_vec()).unwrap())
        .collect();
    assert_eq!(args, [evil.as_str(), "#{host}", "x;", "\\;"]);
}

#[test]
fn a_one_mebibyte_prompt_arrives_byte_for_byte_on_stdin_or_as_a_path() {
    let t = Tmux::new();
    let prompt: Vec<u8> = (0..1024 * 1024)
        .map(|i| b"abcdefghij\n$`#;{}"[i % 17])
        .collect();
    let got = t.path("got");
    let spec = t.spec("big", &["sh", "-c", "cat > \"$0\"", got.as_str()], &prompt);
    t.start(&spec);
    let got_status = t.wait_exit(&spec.session);
    assert!(matches!(
        got_status,
        Liveness::Exited {
            status: ExitStatus::Code(0),
            ..
        }
    ));
    assert_eq!(
        Sha256::digest(fs_err::read(&got).unwrap()),
        Sha256::digest(&prompt)
    );

    let got2 = t.path("got2");
    let spec = t.spec(
        "bigpath",
        &[
            "sh",
            "-c",
            "cp \"$1\" \"$0\"; test -t 0 || read -r x || true",
            got2.as_str(),
            "{prompt_file}",
        ],
        &prompt,
    );
    t.start(&spec);
    assert!(matches!(
        t.wait_exit(&spec.session),
        Liveness::Exited {
            status: ExitStatus::Code(0),
            ..
        }
    ));
    assert_eq!(
        Sha256::digest(fs_err::read(&got2).unwrap()),
        Sha256::digest(&prompt)
    );
}

#[test]
fn output_goes_to_the_log_and_the_pane() {
    let t = Tmux::new();
    let spec = t.spec(
        "talk",
        &["sh", "-c", "echo to-stdout; echo to-stderr >&2; sleep 30"],
        b"",
    );
    t.start(&spec);
    let start = Instant::now();
    while t.backend.capture(&spec.session, 10).unwrap().len() < 2 && start.elapsed() < WAIT_BOUND {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        t.backend.capture(&spec.session, 10).unwrap(),
        ["to-stdout", "to-stderr"]
    );
    assert_eq!(
        fs_err::read_to_string(&spec.log_file).unwrap(),
        "to-stdout\nto-stderr\n"
    );
}

#[test]
fn kill_reaches_children_that_ignore_hangup_and_setsid_grandchildren_only() {
    let t = Tmux::new();
    let script =
        r#"(trap '' HUP TERM; exec sleep 300) & setsid sh -c 'trap "" HUP; sleep 300' & sleep 300"#;
    let spec = t.spec("tree", &["sh", "-c", script], b"");
    let wrapper = t.start(&spec).pane_pid;
    let other = t.spec("bystander", &["sleep", "300"], b"");
    t.start(&other);
    let untagged = t.raw(&["new-session", "-d", "-s", "agent_tree-2", "sleep", "300"]);
    assert!(untagged.status.success());
    let mut unrelated = Command::new("sleep").arg("300").spawn().unwrap();
    let start = Instant::now();
    while tagged("tree").len() < 5 && start.elapsed() < WAIT_BOUND {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        tagged("tree").len() >= 5,
        "wrapper, sh, two sleeps, setsid sh, sleep: {:?}",
        tagged("tree")
    );
    let server = t.backend.server_pid().unwrap().unwrap();

    // The wrapper itself may end on its own once its agent is gone: it is not signalled then.
    let before: Vec<u32> = tagged("tree")
        .into_iter()
        .filter(|p| *p != wrapper)
        .collect();
    let report = t.backend.kill(&spec.session, &spec.agent).unwrap();
    assert!(tagged("tree").is_empty(), "left: {:?}", tagged("tree"));
    for pid in &before {
        assert!(
            report.killed.iter().any(|k| k.pid == *pid),
            "{pid} (of {before:?}) is reported: {report:?}"
        );
    }
    assert!(!report.killed.iter().any(|k| k.pid == server));
    assert_eq!(
        t.backend.server_pid().unwrap(),
        Some(server),
        "the tmux server survives"
    );
    assert_eq!(t.backend.probe(&other.session).unwrap(), Liveness::Alive);
    assert!(
        t.raw(&["has-session", "-t", "=agent_tree-2"])
            .status
            .success(),
        "untagged session survives"
    );
    assert!(
        unrelated.try_wait().unwrap().is_none(),
        "an unrelated process survives"
    );
    unrelated.kill().unwrap();
    unrelated.wait().unwrap();
    t.raw(&["kill-session", "-t", "=agent_tree-2"]);
}

/// Processes whose command line contains `marker` (a daemon names itself with it as `$0`).
fn marked(marker: &str) -> Vec<u32> {
    testkit::procs::running()
        .into_iter()
        .filter(|pid| testkit::procs::cmdline(*pid).contains(marker))
        .collect()
}

/// A daemon that leaves the tree (setsid -f), drops its tag and ignores HUP and TERM: the
/// wrapper, a child subreaper, keeps it in the tree, so the kill still ends it — and an agent
/// that exits leaves no such daemon behind either.
#[test]
fn a_daemon_that_leaves_the_tree_and_drops_its_tag_does_not_survive() {
    let t = Tmux::new();
    // The exiting agent waits until the test has seen its daemon (CI under load once looked
    // only after a one-second agent had ended and its daemon with it).
    let go = std::env::temp_dir().join(format!("fleet-daemon-go-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let exit_when_seen = format!(
        "while [ ! -e '{}' ]; do sleep 0.05; done; exit 0",
        go.display()
    );
    for (agent, then) in [
        ("daemon-kill", "sleep 300"),
        ("daemon-exit", exit_when_seen.as_str()),
    ] {
        // The daemon's `$0` is the marker; the agent's own command line holds only its prefix.
        let prefix = format!("fleet-daemon-{}-{agent}", std::process::id());
        let marker = format!("{prefix}-d");
        let script = format!(
            "env -u FLEET_AGENT_ID setsid -f sh -c 'trap \"\" HUP TERM INT; while :; do sleep 0.2; done' \"$0-d\"; {then}"
        );
        let spec = t.spec(agent, &["sh", "-c", &script, &prefix], b"");
        t.start(&spec);
        // The daemon itself, once exec'd: `setsid -f` (gone at once) carries the marker too,
        // and so does its child until its exec — a look then would see a process vanish.
        let daemon_of = |marker: &str| -> Vec<u32> {
            marked(marker)
                .into_iter()
                .filter(|pid| testkit::procs::cmdline(*pid).starts_with("sh\0-c\0trap"))
                .collect()
        };
        let start = Instant::now();
        while daemon_of(&marker).is_empty() && start.elapsed() < WAIT_BOUND {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !daemon_of(&marker).is_empty(),
            "{agent}: the daemon started"
        );
        if agent == "daemon-exit" {
            std::fs::write(&go, "").unwrap();
            assert_eq!(
                t.wait_exit(&spec.session),
                Liveness::Exited {
                    status: ExitStatus::Code(0),
                    last_lines: Vec::new()
                },
                "{agent}"
            );
        } else {
            let daemon = daemon_of(&marker);
            let report = t.backend.kill(&spec.session, &spec.agent).unwrap();
            for pid in &daemon {
                assert!(
                    report.killed.iter().any(|k| k.pid == *pid),
                    "the daemon {pid} is reported: {report:?}"
                );
            }
        }
        assert!(
            marked(&marker).is_empty(),
            "{agent}: the daemon survived: {:?}",
            marked(&marker)
        );
    }
    let _ = std::fs::remove_file(&go);
}

/// An agent started gated does not execute until its gate opens; closed instead — killed, or
/// its deploying process gone — it never runs.
#[test]
fn a_gated_agent_never_runs_unless_its_gate_opens() {
    let t = Tmux::new();
    let ran = t.path("ran");
    let touch = format!("touch {ran}");
    let spec = t.spec("gated", &["sh", "-c", &touch], b"");
    t.backend.start(&spec).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        t.backend.probe(&spec.session).unwrap(),
        Liveness::Alive,
        "waiting"
    );
    assert!(!ran.exists(), "not yet let run");
    t.backend.kill(&spec.session, &spec.agent).unwrap();
    assert!(!ran.exists(), "killed at the gate: never ran");

    // The deploying process dies: its end of the gate closes with it.
    let dropped = TmuxBackend::new(Server::Name(t.socket.clone()), vec![WRAP.to_owned()]);
    let spec = t.spec("orphaned", &["sh", "-c", &touch], b"");
    dropped.start(&spec).unwrap();
    drop(dropped);
    match t.wait_exit(&spec.session) {
        Liveness::Exited { status, last_lines } => {
            assert_eq!(status, ExitStatus::Code(125));
            assert!(
                last_lines.iter().any(|l| l.contains("never ran")),
                "{last_lines:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!ran.exists(), "its deployer gone: never ran");
    let err = t.backend.open_gate(&spec.session).unwrap_err().to_string();
    assert!(err.contains("no gate is held"), "{err}");

    let spec = t.spec("opened", &["sh", "-c", &touch], b"");
    t.start(&spec);
    assert_eq!(
        t.wait_exit(&spec.session),
        Liveness::Exited {
            status: ExitStatus::Code(0),
            last_lines: Vec::new()
        }
    );
    assert!(ran.exists());
}

#[test]
fn kill_refuses_a_session_that_is_not_the_agents() {
    let t = Tmux::new();
    assert!(
        t.raw(&["new-session", "-d", "-s", "agent_x", "sleep", "300"])
            .status
            .success()
    );
    let err = t
        .backend
        .kill(&session("x"), &AgentId::parse("x").unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not x: refusing to kill it"), "{err}");
    assert!(t.raw(&["has-session", "-t", "=agent_x"]).status.success());
    let dup = t
        .backend
        .start(&t.spec("x", &["sleep", "1"], b""))
        .unwrap_err()
        .to_string();
    assert!(dup.contains("duplicate session: agent_x"), "{dup}");
    assert!(
        t.raw(&["has-session", "-t", "=agent_x"]).status.success(),
        "a failed start removes nothing"
    );
    t.raw(&["kill-session", "-t", "=agent_x"]);
}

#[test]
fn list_shows_fleet_sessions_with_tags_and_status_in_one_call() {
    let t = Tmux::new();
    assert!(
        t.backend.list().unwrap().is_empty(),
        "no server means no sessions"
    );
    t.start(&t.spec("live", &["sleep", "30"], b""));
    let dead = t.spec("dead", &["sh", "-c", "exit 3"], b"");
    t.start(&dead);
    t.wait_exit(&dead.session);
    assert!(
        t.raw(&["new-session", "-d", "-s", "not-fleet", "sleep", "30"])
            .status
            .success()
    );
    let list = t.backend.list().unwrap();
    let got: Vec<(String, String, Option<ExitStatus>)> = list
        .iter()
        .map(|s| (s.session.to_string(), s.agent.to_string(), s.exited))
        .collect();
    assert_eq!(
        got,
        [
            (
                "agent_dead".into(),
                "dead".into(),
                Some(ExitStatus::Code(3))
            ),
            ("agent_live".into(), "live".into(), None)
        ]
    );
    assert!(
        list.iter()
            .all(|s| s.task.as_ref().map(TaskId::as_str) == Some("TASK-T") && s.created > 0)
    );
    t.raw(&["kill-session", "-t", "=not-fleet"]);
}

#[test]
fn no_server_is_no_sessions_but_a_missing_tmux_is_an_error() {
    let t = Tmux::new();
    assert_eq!(
        t.backend.probe(&session("nobody")).unwrap(),
        Liveness::Missing
    );
    assert!(t.backend.list().unwrap().is_empty());
    let missing = t.backend.clone().with_tmux_binary("/nonexistent/tmux");
    let err = missing.list().unwrap_err().to_string();
    assert!(err.contains("cannot run tmux (/nonexistent/tmux)"), "{err}");
    assert!(missing.probe(&session("nobody")).is_err());
}

#[test]
fn a_server_exiting_with_its_last_session_is_neither_a_failure_nor_a_lost_start() {
    // A server exits when its last session ends; a client reaching it meanwhile is told
    // "server exited unexpectedly", or "no current target" while it has no session left (CI
    // saw a reconcile fail on the first). An adversary churns the only other session, so the
    // server keeps exiting; every backend call must still answer as if it had not.
    let t = Tmux::new();
    let churn = {
        let socket = t.socket.clone();
        std::thread::spawn(move || {
            let tmux = |args: &[&str]| {
                // The adversary's own calls may hit the exiting server too: not under test.
                let _ = Command::new("tmux")
                    .args(["-f", "/dev/null", "-L", &socket])
                    .args(args)
                    .output();
            };
            for _ in 0..150 {
                tmux(&["new-session", "-d", "-s", "churn", "sleep 60"]);
                tmux(&["kill-session", "-t", "=churn"]);
            }
        })
    };
    let spec = t.spec("b", &["sleep", "60"], b"");
    let mut rounds = 0;
    while !churn.is_finished() {
        for s in t.backend.list().unwrap() {
            assert_eq!(s.session, spec.session, "only b is fleet's");
        }
        assert_eq!(
            t.backend.probe(&session("none")).unwrap(),
            Liveness::Missing
        );
        if rounds % 4 == 0 {
            let info = t.backend.start(&spec).unwrap();
            assert_eq!(t.backend.probe(&spec.session).unwrap(), Liveness::Alive);
            t.backend.kill(&info.session, &spec.agent).unwrap();
        }
        rounds += 1;
    }
    churn.join().unwrap();
    assert!(rounds > 0);
}

#[test]
fn a_workdir_that_does_not_exist_is_refused_before_tmux_runs() {
    let t = Tmux::new();
    let mut spec = t.spec("wd", &["sleep", "1"], b"");
    spec.workdir = t.path("no/such/dir");
    let err = t.backend.start(&spec).unwrap_err().to_string();
    assert!(
        err.contains("workdir") && err.contains("does not exist"),
        "{err}"
    );
    assert_eq!(
        t.backend.server_pid().unwrap(),
        None,
        "tmux was not even started"
    );
}

#[test]
fn no_lock_or_registry_descriptor_leaks_into_the_server_or_the_agent() {
    let t = Tmux::new();
    let lock_path = t.path("AGENT_REGISTRY.json.lock");
    let registry = t.path("AGENT_REGISTRY.json");
    fs_err::write(&registry, b"{}").unwrap();
    let _lock = deploy_core::lock::Flock::open(&lock_path, Duration::from_secs(1)).unwrap();
    let _open = fs_err::File::open(&registry).unwrap();
    let spec = t.spec("fds", &["sleep", "30"], b"");
    let info = t.start(&spec); // starts the server too
    let server = t.backend.server_pid().unwrap().unwrap();
    let start = Instant::now();
    while tagged("fds").len() < 2 && start.elapsed() < WAIT_BOUND {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut pids = tagged("fds");
    pids.push(server);
    pids.push(info.pane_pid);
    assert!(pids.len() >= 3, "{pids:?}");
    for pid in pids {
        let fds: Vec<Utf8PathBuf> = fs_err::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| fs_err::read_link(e.unwrap().path()).ok())
            .filter_map(|p| Utf8PathBuf::from_path_buf(p).ok())
            .collect();
        assert!(!fds.is_empty());
        for leaked in [&lock_path, &registry] {
            assert!(
                !fds.iter().any(|f| f == leaked),
                "pid {pid} holds {leaked}: {fds:?}"
            );
        }
    }
}

/// A session started here is probed through its pane process, without tmux — so that probe
/// must see what tmux would: a session killed behind the backend's back is missing once its
/// pane process is gone, and one whose agent exited reports the agent's status.
#[test]
fn a_probe_without_tmux_sees_what_tmux_would() {
    let t = Tmux::new();
    let spec = t.spec("quick-1", &["sleep", "30"], b"p");
    let info = t.start(&spec);
    assert_eq!(t.backend.probe(&spec.session).unwrap(), Liveness::Alive);
    assert!(
        t.raw(&["kill-session", "-t", "=agent_quick-1"])
            .status
            .success()
    );
    let start = Instant::now();
    while testkit::procs::is_running(info.pane_pid) {
        assert!(
            start.elapsed() < WAIT_BOUND,
            "the pane process outlived its session"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(t.backend.probe(&spec.session).unwrap(), Liveness::Missing);

    let spec = t.spec("quick-2", &["sh", "-c", "exit 7"], b"p");
    t.start(&spec);
    assert!(matches!(
        t.wait_exit(&spec.session),
        Liveness::Exited {
            status: ExitStatus::Code(7),
            ..
        }
    ));
}
