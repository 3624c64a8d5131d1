//! `fleet deploy --worktree`: each agent in its own git checkout, made and removed inside the
//! transaction, retired at the agent's end — against real git (temporary repositories) and real
//! tmux (a private socket).

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use camino::Utf8PathBuf;
use serde_json::Value;

use common::{Fleet, stderr, wait_for};
use testkit::git::{fleet_branches, git, lists, repo_at};

/// An agent that commits a file, changes another without committing, and stays.
const COMMITS_AND_DIRTIES: &str = "echo work > done.txt && git add done.txt && git -c user.name=a -c user.email=a@a commit -qm 'agent work' && echo more >> README && exec sleep 300";
/// An agent that commits a file and stays.
const COMMITS: &str = "echo work > done.txt && git add done.txt && git -c user.name=a -c user.email=a@a commit -qm 'agent work' && exec sleep 300";

struct Setup {
    f: Fleet,
    task: String,
    repo: Utf8PathBuf,
}

fn setup() -> Setup {
    let f = Fleet::new();
    let task = f.task(&[]);
    let repo = repo_at(&Utf8PathBuf::from_path_buf(f.dir.path().join("repo")).unwrap());
    Setup { f, task, repo }
}

impl Setup {
    fn deploy_args<'a>(&'a self, extra: &[&'a str], script: &'a str) -> Vec<&'a str> {
        let mut args = vec![
            "--json",
            "deploy",
            "--task",
            &self.task,
            "--type",
            "builder",
            "--prompt",
            "p",
            "--allow-duplicate",
            "--startup-grace-ms",
            "0",
            "--worktree",
            "--repo",
            self.repo.as_str(),
        ];
        args.extend_from_slice(extra);
        args.extend(["--", "sh", "-c", script]);
        args
    }

    /// Deploys an agent running `script` in its worktree; returns the deployment's JSON.
    fn deploy(&self, extra: &[&str], script: &str) -> Value {
        serde_json::from_str(&self.f.ok(&self.deploy_args(extra, script))).unwrap()
    }

    /// Deploys, then waits until the agent's script has done its work (its commit is there).
    fn deploy_working(&self, extra: &[&str], script: &str) -> (String, Value) {
        let d = self.deploy(extra, script);
        let agent = d["agent_id"].as_str().unwrap().to_owned();
        let branch = format!("refs/heads/fleet/{agent}");
        let repo = self.repo.clone();
        wait_for("the agent's commit", || {
            git(&repo, &["rev-list", "--count", &format!("main..{branch}")]).trim() == "1"
        });
        (agent, d)
    }

    fn worktrees(&self) -> Vec<Value> {
        self.f
            .json(&["worktrees", "--task", &self.task])
            .as_array()
            .unwrap()
            .clone()
    }

    fn kill(&self, agent: &str) -> Value {
        self.f
            .json(&["kill", "--task", &self.task, "--agent", agent])
    }
}

#[test]
fn an_agent_works_in_its_own_checkout_and_fleet_diff_shows_its_commit() {
    let s = setup();
    let (agent, d) = s.deploy_working(&[], COMMITS_AND_DIRTIES);
    let w = &d["worktree"];
    let path = Utf8PathBuf::from(w["path"].as_str().unwrap());
    assert_eq!(w["branch"], format!("fleet/{agent}"));
    assert_eq!(w["base"], git(&s.repo, &["rev-parse", "main"]).trim());
    assert_eq!(
        path,
        s.f.root().join(&s.task).join("worktrees").join(&agent),
        "under the workspace"
    );
    assert_eq!(
        fs_err::read_to_string(s.repo.join("README")).unwrap(),
        "hello\n",
        "the main checkout is untouched"
    );

    let diff = s.f.ok(&["diff", "--task", &s.task, "--agent", &agent]);
    assert!(
        diff.contains("+++ b/done.txt") && diff.contains("+work"),
        "{diff}"
    );
    assert!(diff.contains("+more"), "uncommitted changes too: {diff}");
    let stat =
        s.f.ok(&["diff", "--task", &s.task, "--agent", &agent, "--stat"]);
    assert!(stat.contains("2 files changed"), "{stat}");

    let listed = s.worktrees();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["state"], "active");
    assert_eq!(listed[0]["path"], path.as_str());
    // `fleet status` shows it too, with the agent.
    let status = s.f.json(&["status", "--task", &s.task]);
    assert_eq!(
        status[0]["agents"][0]["worktree"]["state"], "active",
        "{status}"
    );

    // Killed with uncommitted changes: the worktree is kept, and said so.
    let killed = s.kill(&agent);
    assert_eq!(killed["worktree"]["state"], "kept-dirty", "{killed}");
    assert!(path.join("done.txt").exists());
    assert_eq!(s.worktrees()[0]["state"], "kept-dirty");
}

#[test]
fn a_killed_agent_that_committed_keeps_its_branch_and_a_clean_one_leaves_nothing() {
    let s = setup();
    let before = lists(&s.repo);
    let (committed, _) = s.deploy_working(&[], COMMITS);
    let clean = s.deploy(&[], "exec sleep 300")["agent_id"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(s.kill(&committed)["worktree"]["state"], "branch-only");
    assert_eq!(
        fleet_branches(&s.repo),
        [committed.clone(), clean.clone()].into()
    );
    let kept = s.f.ok(&["diff", "--task", &s.task, "--agent", &committed]);
    assert!(
        kept.contains("+work"),
        "the branch still shows the work: {kept}"
    );

    assert_eq!(s.kill(&clean)["worktree"]["state"], "removed");
    assert_eq!(fleet_branches(&s.repo), [committed.clone()].into());
    git(&s.repo, &["branch", "-D", &format!("fleet/{committed}")]);
    assert_eq!(lists(&s.repo), before, "nothing else is left");
    let gone = s.f.run(&["diff", "--task", &s.task, "--agent", &clean]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(stderr(&gone).contains("left no work"), "{}", stderr(&gone));
}

#[test]
fn keep_worktree_keeps_both_and_reconcile_retires_an_agent_that_ended_on_its_own() {
    let s = setup();
    let kept = s.deploy(&["--keep-worktree"], "exec sleep 300")["agent_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.kill(&kept)["worktree"]["state"], "kept");
    assert!(fleet_branches(&s.repo).contains(&kept));

    // Commits, then exits 0 unobserved: reconcile records it completed and retires its
    // checkout — clean with a commit, so the branch stays and the worktree goes.
    let script =
        "sleep 0.3; echo w > f && git add f && git -c user.name=a -c user.email=a@a commit -qm w";
    let ended = s.deploy(&[], script)["agent_id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.f.wait_dead_panes(1);
    let report = s.f.json(&["reconcile"]);
    assert_eq!(report["zombies"][0]["now"], "completed", "{report}");
    let listed = s.worktrees();
    let state = |agent: &str| {
        listed
            .iter()
            .find(|w| w["agent_id"] == agent)
            .map(|w| w["state"].clone())
    };
    assert_eq!(state(&ended), Some("branch-only".into()), "{listed:?}");
    assert!(
        !s.f.root()
            .join(&s.task)
            .join("worktrees")
            .join(&ended)
            .exists()
    );
    assert_eq!(s.f.json(&["reconcile"])["nothing_to_do"], true);
}

/// Every way a `--worktree` deployment can be refused: a one-line error naming the repository
/// or ref, exit 1 (2 for usage), and nothing left anywhere.
#[test]
fn bad_input_is_named_and_leaves_nothing() {
    let s = setup();
    let parent = Utf8PathBuf::from_path_buf(s.f.dir.path().to_owned()).unwrap();
    let empty = parent.join("empty");
    fs_err::create_dir_all(&empty).unwrap();
    git(&empty, &["init", "-q"]);
    let bare = parent.join("bare.git");
    git(&parent, &["init", "-q", "--bare", bare.as_str()]);
    let plain = parent.join("plain");
    fs_err::create_dir_all(&plain).unwrap();

    let before = lists(&s.repo);
    let refuse = |args: &[&str], code: i32, names: &str| {
        let out = s.f.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        // A usage error is clap's message (what was wrong, then the usage); any other, one line.
        let first = err.lines().next().unwrap_or_default();
        if code == 2 {
            assert!(first.starts_with("error: "), "{err}");
        } else {
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        }
        assert!(
            first.contains(names) || code == 2 && err.contains(names),
            "{args:?} should name {names}: {err}"
        );
        assert_eq!(lists(&s.repo), before);
        assert!(s.f.sessions().is_empty());
        let intents = s.f.root().join(".fleet/intents");
        assert!(
            fs_err::read_dir(&intents).map_or(true, |d| d.count() == 0),
            "no intent left"
        );
        assert!(
            !s.f.root().join(&s.task).join("worktrees").exists()
                || fs_err::read_dir(s.f.root().join(&s.task).join("worktrees"))
                    .unwrap()
                    .count()
                    == 0
        );
    };
    let deploy = |repo: &str, more: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "deploy",
            "--task",
            &s.task,
            "--type",
            "t",
            "--prompt",
            "p",
            "--worktree",
            "--repo",
            repo,
        ]
        .map(str::to_owned)
        .to_vec();
        a.extend(more.iter().map(|m| (*m).to_owned()));
        a.extend(["--", "sleep", "300"].map(str::to_owned));
        a
    };
    let run = |args: Vec<String>, code: i32, names: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refuse(&args, code, names);
    };
    run(
        deploy(s.repo.as_str(), &["--base", "no-such-ref"]),
        1,
        "\"no-such-ref\"",
    );
    run(
        deploy(s.repo.as_str(), &["--base=--upload-pack=x"]),
        1,
        "does not name a commit",
    );
    run(deploy(empty.as_str(), &[]), 1, "has no commits");
    run(deploy(bare.as_str(), &[]), 1, "is a bare repository");
    run(
        deploy(plain.as_str(), &[]),
        1,
        &format!("{plain} is not a git repository"),
    );
    run(deploy(parent.join("nowhere").as_str(), &[]), 1, "nowhere");

    // Usage: the worktree's options without it, or beside a workdir.
    refuse(
        &[
            "deploy", "--task", &s.task, "--type", "t", "--prompt", "p", "--repo", "x", "--",
            "true",
        ],
        2,
        "--worktree",
    );
    refuse(
        &[
            "deploy",
            "--task",
            &s.task,
            "--type",
            "t",
            "--prompt",
            "p",
            "--worktree",
            "--workdir",
            ".",
            "--",
            "true",
        ],
        2,
        "--workdir",
    );
    // No repository around the current directory, and none named.
    let mut c = s.f.command(&[
        "deploy",
        "--task",
        &s.task,
        "--type",
        "t",
        "--prompt",
        "p",
        "--worktree",
        "--",
        "true",
    ]);
    let out = c.current_dir(&plain).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("in no git repository; give --repo"),
        "{}",
        stderr(&out)
    );
    let status = s.f.json(&["status", "--task", &s.task]);
    assert_eq!(
        status.to_string().matches("\"agent_id\"").count(),
        0,
        "no agent registered: {status}"
    );
}

#[test]
fn repository_paths_with_spaces_hashes_quotes_and_a_newline_work() {
    let s = setup();
    let odd = repo_at(
        &Utf8PathBuf::from_path_buf(s.f.dir.path().join("my repo #1 'q' \"dq\"\nnext")).unwrap(),
    );
    let before = lists(&odd);
    let d: Value = serde_json::from_str(&s.f.ok(&[
        "--json",
        "deploy",
        "--task",
        &s.task,
        "--type",
        "t",
        "--prompt",
        "p",
        "--startup-grace-ms",
        "0",
        "--worktree",
        "--repo",
        odd.as_str(),
        "--",
        "sleep",
        "300",
    ]))
    .unwrap();
    assert_eq!(d["worktree"]["repo"], odd.as_str());
    let agent = d["agent_id"].as_str().unwrap();
    assert_eq!(s.kill(agent)["worktree"]["state"], "removed");
    assert_eq!(lists(&odd), before);
}

#[test]
fn eight_concurrent_worktree_deploys_into_one_repository_all_go_live() {
    let s = setup();
    let before = lists(&s.repo);
    let children: Vec<_> = (0..8)
        .map(|_| {
            s.f.command(&s.deploy_args(&[], "exec sleep 300")[1..])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let agents: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        })
        .collect();
    assert_eq!(fleet_branches(&s.repo).len(), 8);
    assert_eq!(
        testkit::git::fleet_worktrees(&s.repo, &s.f.root()),
        agents.iter().cloned().collect()
    );
    for a in &agents {
        assert_eq!(s.kill(a)["worktree"]["state"], "removed");
    }
    assert_eq!(lists(&s.repo), before);
}

#[test]
fn reconcile_removes_what_nothing_accounts_for_and_nothing_else() {
    let s = setup();
    // An agent whose record names the repository, so reconcile looks there.
    let (agent, d) = s.deploy_working(&[], COMMITS);
    // A checkout fleet's names would give, that no registry entry or intent accounts for (an
    // entry removed by hand, say).
    let ghost = s.f.root().join(&s.task).join("worktrees").join("ghost-1");
    git(&s.repo, &["branch", "fleet/ghost-1"]);
    git(
        &s.repo,
        &["worktree", "add", "-q", ghost.as_str(), "fleet/ghost-1"],
    );
    git(&s.repo, &["branch", "fleet/bare-ghost-1"]);
    // Both made by this workspace: they carry its mark, as every branch fleet makes.
    let head = git(&s.repo, &["rev-parse", "HEAD"]);
    for ghost in ["fleet/ghost-1", "fleet/bare-ghost-1"] {
        let key = format!("branch.{ghost}.fleetmark");
        git(
            &s.repo,
            &["config", &key, &format!("{} {}", head.trim(), s.f.root())],
        );
    }
    // The user's own: a branch outside fleet's prefix, a worktree outside the workspace, and a
    // fleet-named branch checked out outside the workspace.
    let mine = Utf8PathBuf::from_path_buf(s.f.dir.path().join("mine")).unwrap();
    git(&s.repo, &["branch", "feature"]);
    git(
        &s.repo,
        &["worktree", "add", "-q", mine.as_str(), "feature"],
    );
    let theirs = Utf8PathBuf::from_path_buf(s.f.dir.path().join("theirs")).unwrap();
    git(&s.repo, &["branch", "fleet/users-1"]);
    git(
        &s.repo,
        &["worktree", "add", "-q", theirs.as_str(), "fleet/users-1"],
    );

    let dry = s.f.json(&["reconcile", "--dry-run"]);
    assert_eq!(dry["checkouts"].as_array().unwrap().len(), 2, "{dry}");
    assert!(ghost.exists(), "a dry run changes nothing");

    let report = s.f.json(&["reconcile"]);
    let fixed: Vec<&str> = report["checkouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["agent"].as_str().unwrap())
        .collect();
    assert_eq!(fixed, ["bare-ghost-1", "ghost-1"], "{report}");
    assert!(!ghost.exists());
    assert_eq!(
        fleet_branches(&s.repo),
        [agent.clone(), "users-1".into()].into()
    );
    assert!(mine.join("README").exists() && theirs.join("README").exists());
    assert!(git(&s.repo, &["branch", "--list", "feature"]).contains("feature"));
    assert_eq!(s.f.json(&["reconcile"])["nothing_to_do"], true);

    // Its worktree deleted by hand: the kill prunes it and judges the branch (it has a commit).
    fs_err::remove_dir_all(d["worktree"]["path"].as_str().unwrap()).unwrap();
    assert_eq!(s.worktrees()[0]["state"], "missing");
    assert_eq!(s.kill(&agent)["worktree"]["state"], "branch-only");
    assert!(!git(&s.repo, &["worktree", "list"]).contains(&agent));
}

#[test]
fn a_repository_that_vanished_is_reported_never_a_crash() {
    let s = setup();
    let agent = s.deploy(&[], "exec sleep 300")["agent_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let moved = Utf8PathBuf::from_path_buf(s.f.dir.path().join("moved")).unwrap();
    fs_err::rename(&s.repo, &moved).unwrap();
    let killed = s.kill(&agent);
    assert_eq!(killed["status"], "terminated");
    assert_eq!(
        killed["worktree"]["state"], "active",
        "kept as it was: {killed}"
    );
    let report = s.f.json(&["reconcile"]);
    let problems = report["problems"].as_array().unwrap();
    assert!(!problems.is_empty(), "{report}");
    assert!(
        problems
            .iter()
            .any(|p| p.as_str().unwrap().contains(s.repo.as_str())),
        "{report}"
    );
    let text = s.f.ok(&["reconcile"]);
    assert!(
        text.contains("problem:") && text.contains(s.repo.as_str()),
        "{text}"
    );
}

/// Issue 29: two workspaces on one repository — `fleet reconcile` in workspace A never touches
/// workspace B's agent branch (B's agent committed and ended: `branch-only`), nor a user's own
/// `fleet/…` branch with unmerged commits.
#[test]
fn reconcile_leaves_another_workspaces_branches_and_the_users_own() {
    let b = setup();
    let (agent, _) = b.deploy_working(&[], COMMITS);
    let killed = b.kill(&agent);
    assert_eq!(killed["worktree"]["state"], "branch-only", "{killed}");
    // The user's own work on a branch named like fleet's.
    git(&b.repo, &["branch", "fleet/my-wip"]);
    let wip = b.repo.with_file_name("wip-tree");
    git(
        &b.repo,
        &["worktree", "add", "-q", wip.as_str(), "fleet/my-wip"],
    );
    fs_err::write(wip.join("mine"), "mine\n").unwrap();
    git(&wip, &["add", "mine"]);
    git(
        &wip,
        &[
            "-c",
            "user.name=u",
            "-c",
            "user.email=u@u",
            "commit",
            "-qm",
            "wip",
        ],
    );
    git(&b.repo, &["worktree", "remove", wip.as_str()]);

    // Workspace A: its own task and agent on the same repository.
    let a = Fleet::new();
    let task = a.task(&[]);
    let out = a.deploy_worktree(&task, b.repo.as_str(), &["sleep", "300"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = fleet_branches(&b.repo);
    let report = a.json(&["reconcile"]);
    assert_eq!(fleet_branches(&b.repo), before, "{report}");
    assert!(
        before.contains(&agent) && before.contains("my-wip"),
        "{before:?}"
    );
}

/// Issue 29: an agent that commits on a detached HEAD keeps its work at its end: the branch is
/// moved up to it.
#[test]
fn commits_on_a_detached_head_are_kept_at_the_agents_end() {
    let s = setup();
    let script = "git checkout -q --detach && echo work > done.txt && git add done.txt && git -c user.name=a -c user.email=a@a commit -qm detached && exec sleep 300";
    let d = s.deploy(&[], script);
    let agent = d["agent_id"].as_str().unwrap().to_owned();
    let path = Utf8PathBuf::from(d["worktree"]["path"].as_str().unwrap());
    wait_for("the detached commit", || {
        git(&path, &["log", "-1", "--format=%s"]).trim() == "detached"
    });
    let head = git(&path, &["rev-parse", "HEAD"]);
    let killed = s.kill(&agent);
    assert_eq!(killed["worktree"]["state"], "branch-only", "{killed}");
    assert_eq!(
        git(&s.repo, &["rev-parse", &format!("fleet/{agent}")]),
        head
    );
}

/// Installs a `post-checkout` hook in `repo` that hangs, as a hostile repository's would; the
/// hook writes its pid first.
fn hanging_hook(repo: &Utf8PathBuf) -> Utf8PathBuf {
    let pidfile = repo.with_file_name("hook.pid");
    let hook = repo.join(".git/hooks/post-checkout");
    fs_err::write(
        &hook,
        format!("#!/bin/sh\necho $$ > '{pidfile}'\nexec sleep 600\n"),
    )
    .unwrap();
    fs_err::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    pidfile
}

/// Issue 29: a hook that hangs never holds a deployment: past the git bound the command and
/// its hook are killed and the deployment rolls back, leaving the repository as it was.
#[test]
fn a_hanging_hook_times_out_and_leaves_nothing() {
    let s = setup();
    let before = lists(&s.repo);
    let pidfile = hanging_hook(&s.repo);
    let out =
        s.f.command(&s.deploy_args(&[], "exec sleep 300"))
            .env("FLEET_GIT_TIMEOUT_MS", "1500")
            .output()
            .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("timed out") && err.contains("hooks were killed"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    fs_err::remove_file(s.repo.join(".git/hooks/post-checkout")).unwrap();
    assert_eq!(lists(&s.repo), before);
    let hook: u32 = fs_err::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("the hook to be gone", || {
        !std::path::Path::new(&format!("/proc/{hook}")).exists()
    });
}

/// Issue 29: SIGTERM while a hook hangs rolls the deployment back and exits 143 at once.
#[test]
fn sigterm_while_a_hook_hangs_rolls_back_and_exits() {
    let s = setup();
    let before = lists(&s.repo);
    let pidfile = hanging_hook(&s.repo);
    let mut child =
        s.f.command(&s.deploy_args(&[], "exec sleep 300"))
            .spawn()
            .unwrap();
    wait_for("the hook to run", || pidfile.exists());
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    fs_err::remove_file(s.repo.join(".git/hooks/post-checkout")).unwrap();
    assert_eq!(lists(&s.repo), before);
    assert!(s.f.sessions().is_empty());
}

/// Issue 29: `fleet diff` never writes through a symlink an agent planted where its scratch
/// index goes (named after fleet's pid: planted for the next few hundred pids).
#[test]
fn fleet_diff_never_writes_through_a_planted_symlink() {
    let s = setup();
    let (agent, _) = s.deploy_working(&[], COMMITS);
    let target = Utf8PathBuf::from_path_buf(s.f.dir.path().join("victim")).unwrap();
    fs_err::write(&target, "untouched").unwrap();
    let index = s.repo.join(".git/worktrees").join(&agent).join("index");
    let last: u32 = fs_err::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for pid in last + 1..last + 400 {
        std::os::unix::fs::symlink(&target, format!("{index}.fleet-diff-{pid}")).unwrap();
    }
    let diff = s.f.ok(&["diff", "--task", &s.task, "--agent", &agent]);
    assert!(diff.contains("+++ b/done.txt"), "{diff}");
    assert_eq!(fs_err::read_to_string(&target).unwrap(), "untouched");
}

/// Issue 29: a hook's daemon that leaves git's session and clears its environment (no tag,
/// not in the process group) does not outlive the command: git runs under a reaper that ends
/// what it left — here under a deployment that then fails and rolls back.
#[test]
fn a_hook_daemon_that_hides_does_not_outlive_the_command() {
    let s = setup();
    let before = lists(&s.repo);
    let pidfile = s.repo.with_file_name("daemon.pid");
    let hook = s.repo.join(".git/hooks/post-checkout");
    fs_err::write(
        &hook,
        format!(
            "#!/bin/sh\nsetsid sh -c 'echo $$ > \"{pidfile}.tmp\" && mv \"{pidfile}.tmp\" \"{pidfile}\"; exec env -i sleep 600' &\nwhile [ ! -s '{pidfile}' ]; do sleep 0.01; done\nexit 0\n"
        ),
    )
    .unwrap();
    fs_err::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The agent dies at start (its deployment waits up to 10 s for that): a rollback.
    let out = s.f.run(&[
        "deploy",
        "--task",
        &s.task,
        "--type",
        "builder",
        "--prompt",
        "p",
        "--startup-grace-ms",
        "10000",
        "--worktree",
        "--repo",
        s.repo.as_str(),
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    wait_for("the daemon to write its pid", || {
        fs_err::read_to_string(&pidfile).is_ok_and(|t| t.ends_with('\n'))
    });
    let daemon: u32 = fs_err::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("the daemon to be gone", || {
        !std::path::Path::new(&format!("/proc/{daemon}")).exists()
    });
    fs_err::remove_file(&hook).unwrap();
    assert_eq!(lists(&s.repo), before);
}
