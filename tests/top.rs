//! `fleet top` in a real terminal: tmux runs it at 80×24 on a private server, `send-keys` types,
//! `capture-pane` reads the screen (insta snapshot, volatile fields masked).

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

use camino::Utf8PathBuf;

use common::{Fleet, wait_for};

const FLEET: &str = env!("CARGO_BIN_EXE_fleet");

/// `fleet top` in a tmux server of its own (killed on drop), 80×24, without colours.
struct Top<'a> {
    f: &'a Fleet,
    socket: String,
}

impl<'a> Top<'a> {
    fn start(f: &'a Fleet) -> Top<'a> {
        let top = Top {
            f,
            socket: format!("{}-top", f.socket),
        };
        let root = format!("FLEET_ROOT={}", f.root());
        let socket = format!("FLEET_TMUX_SOCKET={}", f.socket);
        let out = top.tmux(&[
            "new-session",
            "-d",
            "-x",
            "80",
            "-y",
            "24",
            "-s",
            "top",
            "-e",
            &root,
            "-e",
            &socket,
            "-e",
            "NO_COLOR=1",
            "--",
            FLEET,
            "top",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        top
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let mut c = Command::new("tmux");
        c.args(["-f", "/dev/null", "-L", &self.socket]).args(args);
        self.f.private_tmux(&mut c);
        c.output().unwrap()
    }

    fn screen(&self) -> String {
        String::from_utf8(self.tmux(&["capture-pane", "-p", "-t", "=top:"]).stdout).unwrap()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "=top:"];
        args.extend_from_slice(keys);
        assert!(self.tmux(&args).status.success());
    }

    fn wait_screen(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        wait_for(what, || {
            last = self.screen();
            f(&last)
        });
        last
    }

    fn running(&self) -> bool {
        self.tmux(&["has-session", "-t", "=top"]).status.success()
    }
}

impl Drop for Top<'_> {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

fn fixture(name: &str) -> String {
    Utf8PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../activity/tests/fixtures")
        .join(name)
        .to_string()
}

#[test]
fn top_shows_tasks_and_agents_and_its_keys_work() {
    let f = Fleet::new();
    let task = f.task(&["--description", "dashboard"]);
    let script = format!(
        "cat '{}'; sleep 300",
        fixture("claude_success_with_tools.jsonl")
    );
    let fixer = f.deploy(&task, "fixer", "50", &["sh", "-c", &script]);
    let waiter = f.deploy(
        &task,
        "waiter",
        "50",
        &["sh", "-c", "echo waiting; sleep 300"],
    );
    let top = Top::start(&f);

    let screen = top.wait_screen("both agents, the fixer's result and output", |s| {
        s.contains(&fixer)
            && s.contains(&waiter)
            && s.contains("Fixed: every")
            && s.contains(&format!("{fixer} output"))
            && s.contains("progress and findings")
    });
    let masked = regex::Regex::new(r"(TASK-\d{8}-\d{6}-[0-9a-f]{8}|[a-z]+-\d{6}-[0-9a-f]{6})")
        .unwrap()
        .replace_all(&screen, |c: &regex::Captures<'_>| "#".repeat(c[0].len()));
    insta::assert_snapshot!("top_80x24", masked);
    assert_eq!(screen.lines().count(), 24, "it fits 80×24");
    assert!(
        screen.contains(&format!("{fixer} output")),
        "the first agent is selected"
    );

    top.keys(&["Down"]);
    top.wait_screen("the second agent selected", |s| {
        s.contains(&format!("{waiter} output")) && s.contains("waiting")
    });

    top.keys(&["l"]);
    top.wait_screen("its whole log", |s| s.contains("log — l or Esc: back"));
    top.keys(&["l"]);
    top.wait_screen("back to the table", |s| s.contains("LAST ACTIVITY"));

    top.keys(&["k"]);
    top.wait_screen("the kill asked", |s| {
        s.contains(&format!("kill {waiter}? y / n"))
    });
    top.keys(&["n"]);
    top.wait_screen("the kill cancelled", |s| s.contains("kill cancelled"));
    let status = f.json(&["status", "--task", &task]);
    assert!(
        status[0]["agents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "running")
    );

    top.keys(&["k"]);
    top.wait_screen("the kill asked again", |s| s.contains("y / n"));
    top.keys(&["y"]);
    top.wait_screen("the kill done", |s| {
        s.contains(&format!("{waiter} terminated"))
    });
    let status = f.json(&["status", "--task", &task]);
    let killed = status[0]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent_id"] == waiter.as_str())
        .unwrap();
    assert_eq!(killed["status"], "terminated");

    // Enter attaches to the selected agent's session; detaching comes back.
    top.keys(&["Up"]);
    top.keys(&["Enter"]);
    // The attached client draws the agent's session and its status line (`[agent_…`, the name
    // cut to ten characters): from then on it reads the keys.
    top.wait_screen("the agent's own session", |s| {
        !s.contains("LAST ACTIVITY") && s.contains("Fixed: every") && s.contains("[agent_")
    });
    top.keys(&["C-b", "d"]);
    top.wait_screen("the dashboard again", |s| {
        s.contains(&format!("detached from {fixer}"))
    });

    top.keys(&["q"]);
    wait_for("top to quit", || !top.running());
}
