//! Agents on other hosts, black-box, with every engine real: OpenSSH's `sshd` (one per
//! simulated host, on loopback, with the test's own keys and `known_hosts`), the system `ssh`
//! client, tmux (each host its own servers: sshd sets the host's `TMUX_TMPDIR`), and one
//! PostgreSQL registry the hosts share. The controller (host-a) deploys, reads logs and kills
//! on host-b through host-b's own fleet; a controller SIGKILLed mid-deployment leaves nothing
//! there; an unreachable host or an unknown host key is one line within the bound.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;
use testkit::sshd::SshServer;

use common::hosts::{FLEET, Two, remote_deploy};
use common::{Fleet, stderr, tagged, wait_for};

#[test]
fn a_remote_deployment_runs_on_its_host_and_logs_and_kill_act_there() {
    let t = Two::new();
    let (a, b) = (&t.a, &t.b);
    let listed: Value = a.json(&["host", "list"]);
    assert_eq!(listed[0]["name"], "host-b", "{listed}");
    assert_eq!(listed[0]["reachable"], true, "{listed}");
    assert!(listed[0]["rtt_ms"].as_f64().unwrap() > 0.0, "{listed}");

    let task = a.task(&["--max-concurrent", "2"]);
    let script = "echo hello from $FLEET_AGENT_ID; exec sleep 300";
    // The prompt from a file: no command line of this test holds it.
    let secret = format!("a prompt for b only {}", std::process::id());
    let prompt = a.dir.path().join("prompt.txt");
    fs_err::write(&prompt, &secret).unwrap();
    let mut args = remote_deploy(&task, "300", script);
    let at = args.iter().position(|a| *a == "--prompt").unwrap();
    args[at] = "--prompt-file";
    args[at + 1] = prompt.to_str().unwrap();
    let live: Value = a.json(&args);
    let agent = live["agent_id"].as_str().unwrap().to_owned();
    // Host b made and owns it: its session is on b's tmux, none on a's.
    assert_eq!(b.sessions().len(), 1, "{live}");
    assert!(a.sessions().is_empty());
    assert_eq!(a.entry(&task, &agent)["fleet_host"], "host-b");
    assert!(
        !tagged(&[agent.clone()].into()).is_empty(),
        "the agent runs (on host-b)"
    );
    // The prompt never was on a command line: no process's argv holds it.
    for pid in testkit::procs::running() {
        let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&argv).contains(&secret),
            "the prompt is on the command line of {pid}"
        );
    }

    // a's status shows b's agent with its host, as b sees it (alive, its last line); a's logs
    // read them there.
    wait_for("b's view of its agent in a's status", || {
        let status: Value = a.json(&["status", "--task", &task]);
        let view = &status[0]["agents"][0];
        assert_eq!(view["host"], "host-b", "{view}");
        view["liveness"] == "alive"
            && view["last_line"]
                .as_str()
                .is_some_and(|l| l.contains(&format!("hello from {agent}")))
    });
    let text = a.ok(&["status", "--task", &task]);
    let row = text.lines().find(|l| l.contains(&agent)).unwrap();
    assert!(text.contains(" HOST ") && row.contains("host-b"), "{text}");
    wait_for("the agent's line in its log, read from host-a", || {
        let logs = a.run(&["logs", "--task", &task, "--agent", &agent]);
        String::from_utf8_lossy(&logs.stdout).contains(&format!("hello from {agent}"))
    });

    // a attaches a terminal to it over ssh: a terminal of the test's own runs `fleet attach`,
    // and shows b's pane.
    let attached = Terminal::run(a, "attach", &[FLEET, "attach", "--agent", &agent]);
    attached.wait_screen("b's pane on a's terminal", &format!("hello from {agent}"));
    drop(attached);

    // The limit holds across hosts: one here, one there, a third refused.
    a.deploy(&task, "local", "200", &["sleep", "300"]);
    let refused = a.run(&remote_deploy(&task, "200", "exec sleep 300"));
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let err = stderr(&refused);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("on host host-b") && err.contains("max_concurrent"),
        "{err}"
    );
    assert_eq!(
        b.sessions().len(),
        1,
        "the refused deployment left nothing on b"
    );

    // a kills b's agent through b: b's session and processes are gone, it is recorded.
    let killed: Value = a.json(&["kill", "--task", &task, "--agent", &agent]);
    assert_eq!(killed["status"], "terminated", "{killed}");
    assert!(b.sessions().is_empty());
    assert!(tagged(&[agent.clone()].into()).is_empty());
    assert_eq!(a.entry(&task, &agent)["status"], "terminated");
    // An agent in its own worktree on b: a's diff is b's, of b's checkout.
    let repo = testkit::git::repo_at(&b.root().parent().unwrap().join("repo"));
    let mut args = remote_deploy(&task, "100", "echo from-b > made-on-b.txt; exec sleep 300");
    args.splice(1..1, ["--worktree", "--repo", repo.as_str()]);
    let worker: Value = a.json(&args);
    let worker = worker["agent_id"].as_str().unwrap().to_owned();
    wait_for("the file in b's worktree", || {
        a.ok(&["diff", "--task", &task, "--agent", &worker])
            .contains("+from-b")
    });
    a.ok(&["kill", "--task", &task, "--agent", &worker]);
    // a waits for an agent of b's, by b's fleet, which sees it end and records it.
    let brief: Value = a.json(&remote_deploy(&task, "100", "sleep 1; echo bye"));
    let brief = brief["agent_id"].as_str().unwrap().to_owned();
    let waited = a.run(&[
        "wait",
        "--task",
        &task,
        "--agent",
        &brief,
        "--timeout",
        "60",
    ]);
    assert!(waited.status.success(), "{}", stderr(&waited));
    let line = String::from_utf8_lossy(&waited.stdout).into_owned();
    assert!(line.starts_with(&format!("{brief} completed")), "{line}");
    assert_eq!(a.entry(&task, &brief)["status"], "completed");
    a.ok(&[
        "kill",
        "--task",
        &task,
        "--agent",
        &a.sessions()[0].replacen("agent_", "", 1),
    ]);
}

#[test]
fn a_controller_sigkilled_mid_remote_deployment_leaves_nothing_on_the_remote() {
    let t = Two::new();
    let (a, b) = (&t.a, &t.b);
    let task = a.task(&[]);
    // A long grace: the deployment is in flight (registered, not confirmed) when a dies.
    let (mut controller, agent) = t.in_flight(&task);
    assert_eq!(b.sessions().len(), 1);
    // SIGKILL of our own child, by its PID: its ssh goes with it, and the remote's stdin ends.
    controller.kill().unwrap();
    controller.wait().unwrap();
    wait_for("the remote deployment to roll back", || {
        b.sessions().is_empty() && tagged(&[agent.clone()].into()).is_empty()
    });
    wait_for("the registry to forget it", || {
        a.task_registry(&task)["agents"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    // Nothing left for b's reconcile, no prompt file there.
    let reconciled: Value = b.json(&["reconcile"]);
    assert_eq!(reconciled["nothing_to_do"], true, "{reconciled}");
    let prompts: Vec<_> = b
        .files()
        .into_iter()
        .filter(|(p, _)| p.contains("agent_prompt_"))
        .collect();
    assert!(prompts.is_empty(), "{prompts:?}");
}

/// The remote fleet itself SIGKILLed mid-deployment (by its PID: a child of the test's own
/// sshd): the controller reports it failed, in one line, never Live; host-b's reconcile then
/// undoes what it left.
#[test]
fn a_remote_fleet_sigkilled_mid_deployment_is_undone_by_its_hosts_reconcile() {
    let t = Two::new();
    let (a, b) = (&t.a, &t.b);
    let task = a.task(&[]);
    let (controller, _agent) = t.in_flight(&task);
    // host-b's `fleet remote`: the one whose TMUX_TMPDIR is host-b's (sshd set it).
    let remote_fleet: Vec<u32> = testkit::procs::running()
        .into_iter()
        .filter(|pid| {
            let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            argv == format!("{FLEET}\0remote\0").into_bytes()
                && testkit::procs::env_var(*pid, "TMUX_TMPDIR").as_deref()
                    == Some(b.tmux_tmpdir().as_str())
        })
        .collect();
    assert_eq!(remote_fleet.len(), 1, "{remote_fleet:?}");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &remote_fleet[0].to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = controller.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("host host-b (hostb): its fleet ended without answering"),
        "{err}"
    );
    // Its intent is host-b's: b's reconcile rolls the deployment back; a's leaves it alone.
    let on_a: Value = a.json(&["reconcile"]);
    assert_eq!(on_a["nothing_to_do"], true, "{on_a}");
    assert_eq!(b.sessions().len(), 1);
    let on_b: Value = b.json(&["reconcile"]);
    assert_eq!(on_b["nothing_to_do"], false, "{on_b}");
    assert!(b.sessions().is_empty());
    assert!(
        a.task_registry(&task)["agents"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let again: Value = b.json(&["reconcile"]);
    assert_eq!(again["nothing_to_do"], true, "{again}");
}

#[test]
fn an_unreachable_host_or_an_unknown_host_key_is_one_line_and_the_others_work() {
    let mut t = Two::new();
    // host-c: an sshd that is not running any more (nothing listens on its port).
    let mut gone = SshServer::start(&t.client);
    t.client.add("hostc", &gone, true);
    gone.stop();
    // host-d: a running sshd whose host key this client was never told.
    let stranger = SshServer::start(&t.client);
    t.client.add("hostd", &stranger, false);
    for (name, dest) in [("host-c", "hostc"), ("host-d", "hostd")] {
        t.a.ok(&["host", "add", name, "--ssh", dest, "--fleet", FLEET]);
    }
    let task = t.a.task(&[]);
    for (name, says) in [
        (
            "host-c",
            "is unreachable: ssh: connect to host 127.0.0.1 port",
        ),
        ("host-d", "its host key is unknown or has changed"),
    ] {
        let mut args = remote_deploy(&task, "200", "exec sleep 300");
        args[2] = name;
        let out = t.a.run(&args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("host {name} (")) && err.contains(says),
            "{err}"
        );
    }
    // The list shows each as it is, without the unreachable ones holding up the others.
    let listed: Value = t.a.json(&["host", "list"]);
    let reachable: Vec<(String, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_owned(),
                h["reachable"] == true,
            )
        })
        .collect();
    assert_eq!(
        reachable,
        [
            ("host-b".to_owned(), true),
            ("host-c".to_owned(), false),
            ("host-d".to_owned(), false)
        ]
    );
    // host-b still deploys.
    let live: Value = t.a.json(&remote_deploy(&task, "200", "exec sleep 300"));
    let agent = live["agent_id"].as_str().unwrap();
    // Once host-b stops answering (its sshd and a's master connection gone), a's status shows
    // its agent unreachable, as the registry has it, and still answers.
    t.sshd.stop();
    t.a.ok(&["host", "remove", "host-b"]);
    t.add_b();
    let status: Value = t.a.json(&["status", "--task", &task]);
    let view = &status[0]["agents"][0];
    assert_eq!(view["liveness"], "unreachable", "{view}");
    assert_eq!(view["status"], "running", "{view}");
    assert!(
        t.b.sessions().len() == 1,
        "an unreachable host's agent is left alone"
    );
    t.sshd.run();
    t.a.ok(&["kill", "--task", &task, "--agent", agent]);
    assert!(t.b.sessions().is_empty());
    assert!(t.a.task_registry(&task)["agents"].as_array().unwrap().len() == 1);
}

#[test]
fn bad_host_input_gets_one_line_and_leaves_nothing() {
    let f = Fleet::new();
    for (args, code, says) in [
        (
            vec!["host", "add", "b", "--ssh", "-oProxyCommand=touch /tmp/x"],
            1,
            "is not an ssh destination",
        ),
        (vec!["host", "add", "b c", "--ssh", "b"], 2, "invalid value"),
        (vec!["host", "remove", "nowhere"], 1, "no host nowhere"),
    ] {
        let out = f.run(&args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert!(!f.root().join(".fleet/hosts.json").exists());
    assert!(f.ok(&["host", "list"]).starts_with("no other hosts"));
    // Without a shared registry, a remote deployment is refused before anything is made.
    let task = f.task(&[]);
    let out = f.run(&remote_deploy(&task, "200", "sleep 1"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("needs a registry every host shares"),
        "{}",
        stderr(&out)
    );
}

/// A terminal of the test's own (a tmux server of its own, killed on drop) running `argv` with
/// host-a's settings, 160×40.
struct Terminal {
    socket: String,
    tmux_tmpdir: camino::Utf8PathBuf,
}

impl Terminal {
    fn run(a: &Fleet, name: &str, argv: &[&str]) -> Terminal {
        let t = Terminal {
            socket: format!("{}-{name}", a.socket),
            tmux_tmpdir: a.tmux_tmpdir(),
        };
        let mut c = t.tmux(&["new-session", "-d", "-x", "160", "-y", "40"]);
        for (k, v) in &a.settings {
            c.args(["-e", &format!("{k}={v}")]);
        }
        c.args(["-e", &format!("FLEET_ROOT={}", a.root())])
            .args(["-e", &format!("FLEET_TMUX_SOCKET={}", a.socket)])
            .args(["-e", "NO_COLOR=1", "--"])
            .args(argv);
        assert!(c.status().unwrap().success());
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new("tmux");
        c.args(["-f", "/dev/null", "-L", &self.socket])
            .args(args)
            .env("TMUX_TMPDIR", &self.tmux_tmpdir)
            .env_remove("TMUX");
        c
    }

    fn wait_screen(&self, what: &str, needle: &str) -> String {
        let mut screen = String::new();
        wait_for(what, || {
            let out = self.tmux(&["capture-pane", "-p"]).output().unwrap();
            screen = String::from_utf8_lossy(&out.stdout).into_owned();
            screen.contains(needle)
        });
        screen
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]).status();
    }
}

/// `fleet top` on host-a shows both hosts' agents, each with its host, as its host sees it.
#[test]
fn fleet_top_shows_the_agents_of_two_hosts() {
    let t = Two::new();
    let a = &t.a;
    let task = a.task(&[]);
    let here = a.deploy(
        &task,
        "local",
        "100",
        &["sh", "-c", "echo working here; exec sleep 300"],
    );
    let there: Value = a.json(&remote_deploy(
        &task,
        "100",
        "echo working there; exec sleep 300",
    ));
    let there = there["agent_id"].as_str().unwrap().to_owned();
    let top = Terminal::run(a, "top", &[FLEET, "top"]);
    let screen = top.wait_screen(
        "both agents in top, b's with its last line",
        "working there",
    );
    let row = |agent: &str| {
        screen
            .lines()
            .find(|l| l.contains(agent))
            .unwrap_or_else(|| panic!("{agent}: {screen}"))
            .to_owned()
    };
    assert!(
        screen
            .lines()
            .any(|l| l.contains("AGENT") && l.contains("HOST")),
        "{screen}"
    );
    assert!(row(&here).contains("host-a"), "{screen}");
    assert!(row(&there).contains("host-b"), "{screen}");
    drop(top);
    a.ok(&["kill", "--task", &task, "--agent", &here]);
    a.ok(&["kill", "--task", &task, "--agent", &there]);
    assert!(t.b.sessions().is_empty() && a.sessions().is_empty());
}

/// A batch on another host (`--count` with `--host`) is that host's one transaction; the
/// controller's batch commands find it there.
#[test]
fn a_batch_on_another_host_is_live_whole_and_killed_whole_from_the_controller() {
    let t = Two::new();
    let (a, b) = (&t.a, &t.b);
    let task = a.task(&[]);
    let mut args = remote_deploy(&task, "100", "exec sleep 300");
    args.splice(1..1, ["--count", "2"]);
    let batch: Value = a.json(&args);
    let id = batch["batch_id"].as_str().unwrap().to_owned();
    assert_eq!(batch["agent_ids"].as_array().unwrap().len(), 2, "{batch}");
    assert_eq!(b.sessions().len(), 2);
    let status: Value = a.json(&["status", "--task", &task, "--batch", &id]);
    for view in status[0]["agents"].as_array().unwrap() {
        assert_eq!(view["host"], "host-b", "{view}");
        assert_eq!(view["liveness"], "alive", "{view}");
    }
    // The same, each in its own worktree on host-b: a's diff of the batch is b's.
    let repo = testkit::git::repo_at(&b.root().parent().unwrap().join("repo"));
    let mut args = remote_deploy(
        &task,
        "100",
        "echo $FLEET_AGENT_ID > mine.txt; exec sleep 300",
    );
    args.splice(
        1..1,
        [
            "--count",
            "2",
            "--worktree",
            "--repo",
            repo.as_str(),
            "--allow-duplicate",
        ],
    );
    let worktrees: Value = a.json(&args);
    let wid = worktrees["batch_id"].as_str().unwrap().to_owned();
    wait_for("both members' files in a's diff of the batch", || {
        let diff = a.ok(&["diff", "--task", &task, "--batch", &wid]);
        worktrees["agent_ids"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| diff.contains(&format!("+{}", m.as_str().unwrap())))
    });
    a.ok(&["kill", "--task", &task, "--batch", &wid]);
    let killed: Value = a.json(&["kill", "--task", &task, "--batch", &id]);
    assert_eq!(killed.as_array().unwrap().len(), 2, "{killed}");
    assert!(b.sessions().is_empty());
    for agent in batch["agent_ids"].as_array().unwrap() {
        assert_eq!(
            a.entry(&task, agent.as_str().unwrap())["status"],
            "terminated"
        );
    }
    // A plan on host-b: its members' prompts (one from a file here) travel in the request.
    let marks = b.root().join("plan-marks");
    let keep = format!("cat > \"{marks}/$FLEET_AGENT_ID\"; exec sleep 300");
    let prompt_file = a.dir.path().join("second-prompt.txt");
    fs_err::write(&prompt_file, "the second, from a file on host-a").unwrap();
    let plan = a.dir.path().join("plan.json");
    let member = |agent_type: &str, prompt: serde_json::Value| {
        let mut m = serde_json::json!({"type": agent_type, "command": ["sh", "-c", keep]});
        m.as_object_mut()
            .unwrap()
            .extend(prompt.as_object().unwrap().clone());
        m
    };
    let members = serde_json::json!({"members": [
        member("planned-a", serde_json::json!({"prompt": "the first, inline"})),
        member("planned-b", serde_json::json!({"prompt_file": "second-prompt.txt"})),
    ]});
    fs_err::write(&plan, members.to_string()).unwrap();
    fs_err::create_dir_all(&marks).unwrap();
    let planned: Value = a.json(&[
        "deploy",
        "--host",
        "host-b",
        "--task",
        &task,
        "--plan",
        plan.to_str().unwrap(),
        "--startup-grace-ms",
        "100",
    ]);
    let ids: Vec<String> = planned["agent_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{planned}");
    for (id, said) in ids
        .iter()
        .zip(["the first, inline", "the second, from a file on host-a"])
    {
        wait_for("the member's prompt on host-b", || {
            fs_err::read_to_string(marks.join(id)).is_ok_and(|p| p.contains(said))
        });
        assert_eq!(a.entry(&task, id)["fleet_host"], "host-b");
    }
    a.ok(&[
        "kill",
        "--task",
        &task,
        "--batch",
        planned["batch_id"].as_str().unwrap(),
    ]);
    assert!(b.sessions().is_empty());
    // A whole task waited for from the controller: each look asks host-b, whose fleet sees
    // its agents end and records them.
    let short = a.task(&[]);
    let mut args = remote_deploy(&short, "100", "sleep 1; echo done");
    args.splice(1..1, ["--count", "2"]);
    a.json(&args);
    let waited = a.run(&["wait", "--task", &short, "--timeout", "60"]);
    assert!(waited.status.success(), "{}", stderr(&waited));
    for entry in a.task_registry(&short)["agents"].as_array().unwrap() {
        assert_eq!(entry["status"], "completed", "{entry}");
    }
}

/// A master connection that hangs (here: stopped) holds a call only to its bound, which fails
/// in one line; the hung master's socket is removed with it, so the next call makes a new
/// master and works.
#[test]
fn a_hung_master_connection_is_replaced() {
    let t = Two::new();
    let a = &t.a;
    let listed: Value = a.json(&["host", "list"]);
    assert_eq!(listed[0]["reachable"], true, "{listed}");
    let control_dir = a.root().join(".fleet/ssh");
    let masters: Vec<u32> = testkit::procs::running()
        .into_iter()
        .filter(|pid| {
            let line = testkit::procs::cmdline(*pid);
            line.contains("[mux]") && line.contains(control_dir.as_str())
        })
        .collect();
    assert_eq!(masters.len(), 1, "host-b's master: {masters:?}");
    let signal = |sig: &str| {
        let sent = std::process::Command::new("kill")
            .args([sig, &masters[0].to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    signal("-STOP");
    let hung: Value = a.json(&["host", "list"]);
    assert_eq!(hung[0]["reachable"], false, "{hung}");
    let why = hung[0]["error"].as_str().unwrap();
    assert!(why.contains("did not answer within"), "{why}");
    let again: Value = a.json(&["host", "list"]);
    assert_eq!(again[0]["reachable"], true, "a new master: {again}");
    // The stopped master was ours (made for this test's workspace): ended by its PID.
    signal("-KILL");
}
