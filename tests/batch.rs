//! Batches, black-box, on real tmux and real git: `fleet deploy --count N` and `--plan FILE`
//! put every member Live or leave nothing; a batch that does not fit is refused before anything
//! exists; `status`, `wait`, `kill` and `diff` take `--batch`.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use camino::Utf8PathBuf;
use serde_json::{Value, json};
use testkit::git::{fleet_branches, lists, repo_at};

use common::{Fleet, stderr, wait_for};

/// A member's command: marks that it ran (a file named after it in `dir`), then stays.
fn marking(dir: &Utf8PathBuf) -> String {
    format!("touch \"{dir}/ran-$FLEET_AGENT_ID\" && exec sleep 300")
}

/// `deploy --count n` of `sh -c script`, with `extra` flags (`f.json` adds `--json`).
fn count_args<'a>(task: &'a str, n: &'a str, extra: &[&'a str], script: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "deploy",
        "--task",
        task,
        "--type",
        "builder",
        "--prompt",
        "p",
        "--count",
        n,
        "--startup-grace-ms",
        "200",
    ];
    args.extend_from_slice(extra);
    args.extend(["--", "sh", "-c", script]);
    args
}

fn ran(dir: &Utf8PathBuf) -> usize {
    fs_err::read_dir(dir)
        .map(|d| d.filter(|e| e.is_ok()).count())
        .unwrap_or(0)
}

#[test]
fn a_batch_over_max_concurrent_is_refused_with_nothing_made_and_no_member_run() {
    let f = Fleet::new();
    let task = f.task(&["--max-concurrent", "3"]);
    let repo = repo_at(&Utf8PathBuf::from_path_buf(f.dir.path().join("repo")).unwrap());
    let marks = Utf8PathBuf::from_path_buf(f.dir.path().join("marks")).unwrap();
    fs_err::create_dir_all(&marks).unwrap();
    let before = (f.files(), lists(&repo));
    let script = marking(&marks);
    let mut args = vec!["--json"];
    args.extend(count_args(
        &task,
        "5",
        &["--worktree", "--repo", repo.as_str()],
        &script,
    ));
    let out = f.run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("a batch of 5 does not fit") && err.contains("leaves room for 3 more"),
        "{err}"
    );
    let failure: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(failure["error"]["step"], "precheck", "{failure}");
    assert!(f.sessions().is_empty(), "a session was made");
    assert_eq!((f.files(), lists(&repo)), before, "something was made");
    assert_eq!(ran(&marks), 0, "a member ran");

    // Three fit: all run, each once.
    let out = f.json(&count_args(&task, "3", &[], &script));
    assert_eq!(out["agent_ids"].as_array().unwrap().len(), 3, "{out}");
    wait_for("every member ran", || ran(&marks) == 3);
    assert_eq!(f.sessions().len(), 3);
}

/// A member that finishes its work inside the startup grace (exit 0, as a real Claude Code
/// agent one reply long can) is no failed start: the batch goes Live, and that member ends
/// completed, its output kept.
#[test]
fn a_batch_whose_members_finish_within_their_grace_goes_live_and_completes() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let out = f.json(&count_args(&task, "2", &[], "echo solved; exit 0"));
    let batch = out["batch_id"].as_str().unwrap();
    f.ok(&["wait", "--batch", batch, "--timeout", "60"]);
    for agent in out["agent_ids"].as_array().unwrap() {
        let e = f.entry(&task, agent.as_str().unwrap());
        assert_eq!(e["status"], "completed", "{e}");
        assert_eq!(e["fleet_batch"], batch, "{e}");
    }
}

#[test]
fn a_planned_batch_whose_third_member_exits_at_once_leaves_nothing() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let before = f.files();
    let plan = f.dir.path().join("plan.json");
    let prompt = f.dir.path().join("review.txt");
    fs_err::write(&prompt, "review it").unwrap();
    fs_err::write(
        &plan,
        json!({ "members": [
            { "type": "investigator", "prompt": "look", "command": ["sleep", "300"] },
            { "type": "builder", "prompt": "build", "command": ["sleep", "300"] },
            { "type": "reviewer", "prompt_file": "review.txt",
              "command": ["sh", "-c", "echo no credentials >&2; exit 3"] },
        ]})
        .to_string(),
    )
    .unwrap();
    let out = f.run(&[
        "--json",
        "deploy",
        "--task",
        &task,
        "--plan",
        plan.to_str().unwrap(),
        "--startup-grace-ms",
        "500",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("confirm live") && err.contains("exited with status 3"),
        "{err}"
    );
    let failure: Value = serde_json::from_slice(&out.stdout).unwrap();
    let members = failure["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "each member's cleanup: {failure}");
    for m in members {
        let cleanup = m["cleanup"].as_array().unwrap();
        assert!(
            cleanup.iter().any(|e| e["kind"] == "session"),
            "a member's session rollback is reported: {m}"
        );
        assert!(
            cleanup.iter().all(|e| e["outcome"] == "released"),
            "every resource released: {m}"
        );
    }
    assert!(
        failure["error"]["agent_id"]
            .as_str()
            .unwrap()
            .starts_with("reviewer"),
        "{failure}"
    );
    assert!(f.sessions().is_empty(), "sessions left: {:?}", f.sessions());
    let registry = f.task_registry(&task);
    assert_eq!(registry["agents"], json!([]), "{registry}");
    let mut after = f.files();
    // What stays is what a failure always keeps: the deployments' own logs.
    after.retain(|(path, _)| !path.contains("/logs/"));
    let mut before_kept = before.clone();
    before_kept.retain(|(path, _)| !path.contains("/logs/"));
    assert_eq!(after, before_kept, "files left");
    assert_eq!(f.json(&["reconcile"])["nothing_to_do"], true);
}

#[test]
fn five_worktree_members_on_one_repository_then_diff_status_wait_and_kill_by_batch() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let repo = repo_at(&Utf8PathBuf::from_path_buf(f.dir.path().join("repo")).unwrap());
    // Each member writes its own answer: a file named after it.
    let script =
        "echo \"answer of $FLEET_AGENT_ID\" > \"answer-$FLEET_AGENT_ID.txt\" && exec sleep 300";
    let out = f.json(&count_args(
        &task,
        "5",
        &["--worktree", "--repo", repo.as_str()],
        script,
    ));
    let batch = out["batch_id"].as_str().unwrap().to_owned();
    let agents: Vec<String> = out["agent_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(agents.len(), 5, "{out}");
    assert_eq!(
        fleet_branches(&repo),
        agents.iter().cloned().collect(),
        "one branch each"
    );
    for (agent, d) in agents.iter().zip(out["agents"].as_array().unwrap()) {
        let path = Utf8PathBuf::from(d["worktree"]["path"].as_str().unwrap());
        let answer = path.join(format!("answer-{agent}.txt"));
        wait_for("a member's answer", || answer.exists());
        assert_eq!(f.entry(&task, agent)["fleet_batch"], batch.as_str());
    }

    let stat = f.ok(&["diff", "--task", &task, "--batch", &batch, "--stat"]);
    for agent in &agents {
        assert!(
            stat.contains(&format!("=== {agent} (fleet/{agent}) ===")),
            "{stat}"
        );
        assert!(stat.contains(&format!("answer-{agent}.txt")), "{stat}");
    }
    let status = f.json(&["status", "--batch", &batch]);
    let shown = status[0]["agents"].as_array().unwrap();
    assert_eq!(shown.len(), 5, "{status}");
    assert!(shown.iter().all(|a| a["batch_id"] == batch.as_str()));

    // A sixth agent outside the batch is left alone by the batch's kill.
    let other = f.deploy(&task, "other", "0", &["sleep", "300"]);
    let killed = f.json(&["kill", "--task", &task, "--batch", &batch]);
    assert_eq!(killed.as_array().unwrap().len(), 5, "{killed}");
    assert_eq!(f.sessions().len(), 1, "only the other agent runs");
    let waited = f.run(&["wait", "--batch", &batch, "--timeout", "60"]);
    assert_eq!(
        waited.status.code(),
        Some(1),
        "killed members did not complete"
    );
    assert!(stderr(&waited).contains("5 agent(s) did not complete"));
    // Killed with uncommitted answers: each worktree is kept for its work.
    for agent in &agents {
        let entry = f.entry(&task, agent);
        assert_eq!(entry["fleet_worktree"]["state"], "kept-dirty", "{entry}");
    }
    f.ok(&["kill", "--task", &task, "--agent", &other]);
    let unknown = f.run(&["status", "--batch", "batch-000000-00000000"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no agent of batch batch-000000-00000000"));
}

#[test]
fn wait_by_batch_returns_when_every_member_completed() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let marks = Utf8PathBuf::from_path_buf(f.dir.path().join("marks")).unwrap();
    fs_err::create_dir_all(&marks).unwrap();
    // Each member finishes once the test says so (a file), exit 0.
    let go = marks.join("go");
    let script = format!("while [ ! -e \"{go}\" ]; do sleep 0.05; done; exit 0");
    let out = f.json(&count_args(&task, "3", &[], &script));
    let batch = out["batch_id"].as_str().unwrap().to_owned();
    fs_err::write(&go, "").unwrap();
    let ended = f.json(&["wait", "--batch", &batch, "--timeout", "120"]);
    let ended = ended.as_array().unwrap();
    assert_eq!(ended.len(), 3, "{ended:?}");
    assert!(
        ended.iter().all(|e| e["status"] == "completed"),
        "{ended:?}"
    );
}

#[test]
fn bad_batch_input_is_one_line_and_leaves_nothing() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let before = f.files();
    let plan = f.dir.path().join("plan.json");
    for (content, says) in [
        (
            json!({ "members": [{ "type": "a", "prompt": "p", "colour": "red" }] }),
            "colour",
        ),
        (
            json!({ "members": [{ "type": "a" }] }),
            "member 1: give prompt or prompt_file",
        ),
        (json!({ "members": [] }), "at least one member"),
        (json!([{ "type": "bad type", "prompt": "p" }]), "member 1"),
    ] {
        fs_err::write(&plan, content.to_string()).unwrap();
        let out = f.run(&["deploy", "--task", &task, "--plan", plan.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{content}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(says), "{content}: {err}");
    }
    let usage = f.run(&[
        "deploy", "--task", &task, "--type", "a", "--prompt", "p", "--count", "0",
    ]);
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));
    fs_err::remove_file(&plan).unwrap();
    assert_eq!(f.files(), before);
    assert!(f.sessions().is_empty());
}
