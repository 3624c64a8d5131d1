//! `fleet resume` with the real Claude Code: the same conversation, the agent's own command
//! line, its worktree gone; and a resume Claude Code refuses.

use super::*;

/// `fleet resume` continues the same conversation — the model is shown the earlier turns —
/// with the ended agent's own command line (its model) plus `--resume`, although its worktree
/// was removed at its end: the continuation gets a worktree from the agent's branch, and
/// Claude Code finds the conversation there. A second continuation while one runs is refused,
/// naming it.
#[test]
fn resume_continues_the_conversation_of_an_agent_whose_worktree_is_gone() {
    let f = Fleet::new();
    let commit = "echo one > one.txt && git add one.txt && git -c user.name=a -c user.email=a@a commit -qm one";
    let script = Script::new().conversation(
        "RESUME-first",
        [
            Reply::tool("Bash", json!({"command": commit, "description": "commit"})),
            Reply::after(Duration::from_millis(500), Reply::text("first done")),
            // The continuation takes its time: a second one is tried meanwhile.
            Reply::after(Duration::from_secs(3), Reply::text("resumed, I remember")),
        ],
    );
    let c = Claude::start(&f, script);
    let task = f.task(&[]);
    let repo = testkit::git::repo_at(
        &camino::Utf8PathBuf::from_path_buf(f.dir.path().join("repo")).unwrap(),
    );
    let bin = claude::bin();
    let first = deploy_live(
        &f,
        &c,
        &task,
        "RESUME-first: commit",
        &[
            "--startup-grace-ms",
            "100",
            "--worktree",
            "--repo",
            repo.as_str(),
            "--",
            bin.as_str(),
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "haiku",
        ],
    );
    c.ok(&f, &["wait", "--task", &task, "--timeout", "60"]);
    let e = f.entry(&task, &first);
    assert_eq!(e["fleet_worktree"]["state"], "branch-only", "{e}");
    assert!(!f.root().join(&task).join("worktrees").join(&first).exists());

    let second = c.ok(
        &f,
        &[
            "resume", "--task", &task, "--agent", &first, "--prompt", "go on",
        ],
    );
    assert_ne!(second, first);

    // One continuation at a time.
    let again = c
        .fleet(
            &f,
            &[
                "resume", "--task", &task, "--agent", &first, "--prompt", "twice",
            ],
        )
        .output()
        .unwrap();
    let err = stderr(&again);
    assert_eq!(again.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("agent {second} already continues agent {first}")),
        "{err}"
    );

    c.ok(&f, &["wait", "--task", &task, "--timeout", "60"]);
    let shown = c.model.conversation("RESUME-first");
    let last = shown.last().unwrap();
    assert_eq!(last.turn(), 2, "the earlier turns are in its history");
    let history = last.history_text();
    assert!(
        history.contains("first done") && history.contains("go on"),
        "{history}"
    );
    assert!(
        last.model().contains("haiku"),
        "its own --model: {}",
        last.model()
    );
    let e = f.entry(&task, &second);
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["fleet_activity"]["result"], "resumed, I remember", "{e}");
    // It continued from the ended agent's commits: its checkout was branched from them.
    let w = &e["fleet_worktree"];
    assert_eq!(w["base_ref"], format!("fleet/{first}").as_str(), "{e}");
    let tip = testkit::git::git(&repo, &["rev-parse", &format!("fleet/{first}")]);
    assert_eq!(w["base"].as_str().unwrap(), tip.trim(), "{e}");
}

/// A resume Claude Code itself refuses fails the deployment quoting what it wrote on stderr,
/// not only its `error_during_execution` result: here its transcript was deleted.
#[test]
fn a_failed_resume_quotes_claude_codes_own_words() {
    let f = Fleet::new();
    let c = Claude::start(
        &f,
        Script::new().conversation(
            "GONE-first",
            [Reply::after(
                Duration::from_millis(500),
                Reply::text("done"),
            )],
        ),
    );
    let task = f.task(&[]);
    let agent = deploy_live(
        &f,
        &c,
        &task,
        "GONE-first: hi",
        &["--startup-grace-ms", "100"],
    );
    c.ok(&f, &["wait", "--task", &task, "--timeout", "60"]);
    let session = f.entry(&task, &agent)["fleet_activity"]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for project in fs_err::read_dir(c.home().join(".claude/projects")).unwrap() {
        let _ = fs_err::remove_file(project.unwrap().path().join(format!("{session}.jsonl")));
    }
    let out = c
        .fleet(
            &f,
            &[
                "resume",
                "--task",
                &task,
                "--agent",
                &agent,
                "--prompt",
                "again",
                // Generous: Claude Code refuses within a second, and the deployment fails then.
                "--startup-grace-ms",
                "20000",
            ],
        )
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("No conversation found with session ID"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
