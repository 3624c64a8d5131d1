//! Crash safety: SIGKILL at any instant, then `fleet reconcile`, leaves nothing behind.
//!
//! Built only with `--features failpoints` (`cargo xtask ci` runs it). A failpoint set to
//! `pause` blocks the process where it is; the harness waits for the failpoint's marker file —
//! so it knows the process is exactly there — then SIGKILLs it.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::Instant;

use camino::Utf8PathBuf;
use serde_json::Value;

use common::{Fleet, tagged, tagged_where, wait_for};

/// Every failpoint a deployment passes, in order: deploy-core's steps and, inside
/// registration, the JSON registry's two writes or the SQLite or Postgres registry's commit.
fn deploy_points() -> [&'static str; 9] {
    deploy_points_on(
        std::env::var(common::TEST_REGISTRY)
            .as_deref()
            .unwrap_or("json"),
    )
}

/// [`deploy_points`] on the registry `kind` (`json`, `sqlite` or `postgres`).
fn deploy_points_on(kind: &str) -> [&'static str; 9] {
    let (first, second) = match kind {
        "sqlite" => ("sqlite::before_commit", "sqlite::after_commit"),
        "postgres" => ("postgres::before_commit", "postgres::after_commit"),
        _ => ("registry::after_task_write", "registry::after_global_write"),
    };
    [
        "deploy::after_intent",
        "deploy::after_prompt",
        "deploy::after_session",
        first,
        second,
        "deploy::after_register",
        "deploy::before_commit",
        "deploy::after_commit",
        "deploy::after_confirm",
    ]
}

const RECONCILE_POINTS: [&str; 4] = [
    "reconcile::after_abandoned",
    "reconcile::after_zombie",
    "reconcile::after_orphan",
    "reconcile::after_rebuild",
];

fn markers(f: &Fleet) -> Utf8PathBuf {
    let dir = Utf8PathBuf::from_path_buf(f.dir.path().join("markers")).unwrap();
    fs_err::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `fleet args` with `failpoint=action`, and (for `pause`) returns once it is there.
fn start_at(f: &Fleet, failpoint: &str, action: &str, args: &[&str]) -> Child {
    let markers = markers(f);
    let _ = fs_err::remove_file(markers.join(failpoint));
    let child = f
        .command(args)
        .env("FAILPOINTS", format!("{failpoint}={action}"))
        .env("FLEET_FAILPOINT_MARKERS", &markers)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(failpoint, || markers.join(failpoint).exists());
    child
}

fn sigkill(mut child: Child) {
    child.kill().unwrap(); // SIGKILL: no destructor, no rollback in the process
    child.wait().unwrap();
}

fn deploy_args<'a>(task: &'a str, ty: &'a str) -> Vec<&'a str> {
    vec![
        "deploy",
        "--task",
        task,
        "--type",
        ty,
        "--prompt",
        "p",
        "--allow-duplicate",
        "--startup-grace-ms",
        "0",
        "--",
        "sleep",
        "300",
    ]
}

/// The state of the world, checked for consistency: both registries parse and their counters
/// match their lists; returns (registered agents with their status, sessions, intents, prompt
/// files).
struct World {
    registered: Vec<(String, String)>,
    sessions: BTreeSet<String>,
    intents: Vec<String>,
    prompts: Vec<String>,
}

fn world(f: &Fleet, task: &str) -> World {
    let root = f.root();
    let t = f.task_registry(task);
    let g = f.index();
    let agents = t["agents"].as_array().unwrap();
    assert_eq!(t["total_spawned"], agents.len());
    let active = agents
        .iter()
        .filter(|a| ["running", "working", "blocked"].contains(&a["status"].as_str().unwrap()))
        .count();
    assert_eq!(t["active_count"], active);
    let indexed: BTreeSet<&String> = g["agents"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v["task_id"] == task)
        .map(|(k, _)| k)
        .collect();
    let listed: BTreeSet<String> = agents
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        indexed.into_iter().cloned().collect::<BTreeSet<_>>(),
        listed,
        "the index matches the task"
    );
    assert_eq!(
        g["total_agents_spawned"],
        g["agents"].as_object().unwrap().len()
    );
    let list = |dir: Utf8PathBuf, keep: &dyn Fn(&str) -> bool| -> Vec<String> {
        fs_err::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().into_string().unwrap())
                    .filter(|n| keep(n))
                    .collect()
            })
            .unwrap_or_default()
    };
    World {
        registered: agents
            .iter()
            .map(|a| {
                (
                    a["id"].as_str().unwrap().to_owned(),
                    a["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect(),
        sessions: f.sessions().into_iter().collect(),
        intents: list(root.join(".fleet/intents"), &|_| true),
        prompts: list(root.join(task), &|n| n.starts_with("agent_prompt_")),
    }
}

fn reconcile(f: &Fleet) -> Value {
    f.json(&["reconcile"])
}

fn intent_agents(f: &Fleet) -> BTreeSet<String> {
    fs_err::read_dir(f.root().join(".fleet/intents"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .into_string()
                        .ok()?
                        .strip_suffix(".json")
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sigkill_at_every_deploy_failpoint_then_reconcile_leaves_nothing() {
    for point in deploy_points() {
        let f = Fleet::new();
        let task = f.task(&[]);
        let deploying = start_at(&f, point, "pause", &deploy_args(&task, "victim"));
        let mut agents = intent_agents(&f);
        agents.extend(
            f.sessions()
                .iter()
                .filter_map(|s| s.strip_prefix("agent_").map(str::to_owned)),
        );
        sigkill(deploying);

        let report = reconcile(&f);
        let w = world(&f, &task);
        if point == "deploy::after_commit" || point == "deploy::after_confirm" {
            // Committed before the kill: a complete Live agent, which reconcile leaves alone.
            assert_eq!(w.registered.len(), 1, "{point}");
            assert_eq!(w.registered[0].1, "running");
            assert_eq!(w.sessions.len(), 1, "{point}");
            assert!(w.intents.is_empty() && w.prompts.len() == 1, "{point}");
            assert_eq!(report["nothing_to_do"], true, "{point}: {report}");
        } else {
            assert!(!agents.is_empty(), "{point}: the deployment had begun");
            assert_eq!(
                report["abandoned"].as_array().unwrap().len(),
                1,
                "{point}: {report}"
            );
            assert!(w.registered.is_empty(), "{point}: {:?}", w.registered);
            assert!(w.sessions.is_empty(), "{point}: {:?}", w.sessions);
            assert!(w.intents.is_empty(), "{point}: {:?}", w.intents);
            assert!(w.prompts.is_empty(), "{point}: {:?}", w.prompts);
            assert!(tagged(&agents).is_empty(), "{point}: agent processes left");
        }
        assert_eq!(
            reconcile(&f)["nothing_to_do"],
            true,
            "{point}: a second reconcile has nothing to do"
        );
    }
}

/// Every failpoint a batch of three passes, in order: its own steps, a member's session (in
/// its thread) and the registry's first write inside the one registration of all members.
fn batch_points() -> [&'static str; 9] {
    let registered = match std::env::var(common::TEST_REGISTRY).as_deref() {
        Ok("sqlite") => "sqlite::before_commit",
        Ok("postgres") => "postgres::before_commit",
        _ => "registry::after_task_write",
    };
    [
        "batch::after_prompts",
        "deploy::after_session",
        "batch::after_sessions",
        registered,
        "batch::after_register",
        "batch::after_gates",
        "batch::before_confirm",
        "batch::after_confirm",
        "batch::after_commit",
    ]
}

#[test]
fn sigkill_at_every_batch_failpoint_then_reconcile_leaves_the_whole_batch_or_nothing() {
    for point in batch_points() {
        let f = Fleet::new();
        let task = f.task(&[]);
        let args = [
            "deploy",
            "--task",
            &task,
            "--type",
            "member",
            "--prompt",
            "p",
            "--count",
            "3",
            "--startup-grace-ms",
            "0",
            "--",
            "sleep",
            "300",
        ];
        let deploying = start_at(&f, point, "pause", &args);
        let mut agents = intent_agents(&f);
        agents.extend(
            f.sessions()
                .iter()
                .filter_map(|s| s.strip_prefix("agent_").map(str::to_owned)),
        );
        sigkill(deploying);

        reconcile(&f);
        let w = world(&f, &task);
        if point == "batch::after_confirm" || point == "batch::after_commit" {
            // Confirmed in one registry transaction before the kill: every member is Live.
            assert_eq!(w.registered.len(), 3, "{point}: {:?}", w.registered);
            assert!(w.registered.iter().all(|(_, s)| s == "running"), "{point}");
            assert_eq!(w.sessions.len(), 3, "{point}");
            assert_eq!(w.prompts.len(), 3, "{point}");
            let t = f.task_registry(&task);
            for a in t["agents"].as_array().unwrap() {
                assert_eq!(a["fleet_confirmed"], true, "{point}: {a}");
            }
        } else {
            assert_eq!(
                agents.len(),
                3,
                "{point}: every member had begun: {agents:?}"
            );
            assert!(w.registered.is_empty(), "{point}: {:?}", w.registered);
            assert!(w.sessions.is_empty(), "{point}: {:?}", w.sessions);
            assert!(w.prompts.is_empty(), "{point}: {:?}", w.prompts);
            assert!(tagged(&agents).is_empty(), "{point}: agent processes left");
        }
        assert!(w.intents.is_empty(), "{point}: {:?}", w.intents);
        assert_eq!(
            reconcile(&f)["nothing_to_do"],
            true,
            "{point}: a second reconcile has nothing to do"
        );
    }
}

/// Leaves one of each kind of leftover in `task`: an abandoned deployment, a zombie (an agent
/// that ended unobserved) and an orphan session.
fn leftovers(f: &Fleet, task: &str, other: &str) {
    f.deploy(task, "zombie", "0", &["sh", "-c", "sleep 0.2; exit 4"]);
    f.wait_dead_panes(1);
    let tag = |k: &str, v: &str| f.tmux(&["set-option", "-t", "=agent_orphan-1:", k, v]);
    assert!(
        f.tmux(&[
            "new-session",
            "-d",
            "-s",
            "agent_orphan-1",
            "-e",
            "FLEET_AGENT_ID=orphan-1",
            "sleep",
            "300"
        ])
        .status
        .success()
    );
    assert!(tag("@fleet_agent_id", "orphan-1").status.success());
    assert!(tag("@fleet_task_id", task).status.success());
    // In another task: a `fleet deploy` first cleans up its own task's leftovers.
    sigkill(start_at(
        f,
        "deploy::after_register",
        "pause",
        &deploy_args(other, "abandoned"),
    ));
}

fn assert_converged(f: &Fleet, task: &str, other: &str, context: &str) {
    let o = world(f, other);
    assert!(
        o.registered.is_empty() && o.prompts.is_empty(),
        "{context}: the abandoned deployment is gone"
    );
    let w = world(f, task);
    let statuses: Vec<&str> = w.registered.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        statuses,
        ["error"],
        "{context}: only the zombie remains, recorded as error"
    );
    assert!(w.sessions.is_empty(), "{context}: {:?}", w.sessions);
    assert!(w.intents.is_empty() && w.prompts.is_empty(), "{context}");
    assert!(
        tagged(&["orphan-1".to_owned()].into()).is_empty(),
        "{context}: the orphan's process"
    );
}

#[test]
fn sigkill_inside_reconcile_then_a_second_converges_and_a_third_has_nothing_to_do() {
    for point in RECONCILE_POINTS {
        let f = Fleet::new();
        let task = f.task(&[]);
        let other = f.task(&[]);
        leftovers(&f, &task, &other);
        sigkill(start_at(&f, point, "pause", &["reconcile"]));
        reconcile(&f);
        assert_converged(&f, &task, &other, point);
        let third = reconcile(&f);
        assert_eq!(third["nothing_to_do"], true, "{point}: {third}");
    }
}

#[test]
fn a_reconcile_beside_a_live_deployment_never_touches_it() {
    let f = Fleet::new();
    let task = f.task(&[]);
    // Paused after its session started, before registration: the session is in no registry,
    // but the intent is held.
    let paused = start_at(
        &f,
        "deploy::after_session",
        "pause",
        &deploy_args(&task, "inflight"),
    );
    let report = reconcile(&f);
    assert_eq!(report["nothing_to_do"], true, "{report}");
    assert_eq!(f.sessions().len(), 1, "the in-flight session survives");
    assert_eq!(intent_agents(&f).len(), 1);
    sigkill(paused);
    assert_eq!(
        reconcile(&f)["abandoned"].as_array().unwrap().len(),
        1,
        "once its owner is dead, it is rolled back"
    );
    assert!(f.sessions().is_empty());

    // Slowed down inside registration: reconcile runs beside it and the deployment still ends
    // Live.
    let slow = start_at(
        &f,
        "deploy::after_register",
        "sleep(1500)",
        &deploy_args(&task, "slow"),
    );
    let report = reconcile(&f);
    assert_eq!(report["nothing_to_do"], true, "{report}");
    let out = slow.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let w = world(&f, &task);
    assert_eq!(w.registered.len(), 1);
    assert_eq!(w.registered[0].1, "running");
    assert_eq!(w.sessions.len(), 1);
}

/// Starts `fleet args` `n` times, each SIGKILLed after a delay from a fixed, evenly spread
/// sequence in [0, `duration`]: reproducible.
fn kill_at_spread_instants(f: &Fleet, args: &[&str], duration: std::time::Duration, n: u32) {
    for i in 0..n {
        let delay = duration.mul_f64(f64::from((i * 83) % n) / f64::from(n - 1));
        let child = f
            .command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        sigkill(child);
    }
}

#[test]
fn two_hundred_deployments_killed_at_random_instants_end_live_or_gone() {
    let f = Fleet::new();
    let task = f.task(&["--max-agents", "1000", "--max-concurrent", "1000"]);
    // How long one deployment takes here, to spread the kills over it — measured as in the
    // loop below, where each deployment first rolls back its killed predecessor.
    sigkill(start_at(
        &f,
        "deploy::after_session",
        "pause",
        &deploy_args(&task, "calibrate"),
    ));
    let start = Instant::now();
    f.ok(&deploy_args(&task, "probe"));
    let duration = start.elapsed();
    let n: u32 = 200;
    kill_at_spread_instants(&f, &deploy_args(&task, "racer"), duration, n);
    reconcile(&f);
    let w = world(&f, &task);
    let registered: BTreeSet<String> = w.registered.iter().map(|(id, _)| id.clone()).collect();
    let sessions: BTreeSet<String> = w
        .sessions
        .iter()
        .filter_map(|s| s.strip_prefix("agent_").map(str::to_owned))
        .collect();
    assert_eq!(
        registered, sessions,
        "every registered agent has its session, and no other session exists"
    );
    assert!(
        w.registered.iter().all(|(_, s)| s == "running"),
        "{:?}",
        w.registered
    );
    assert!(w.intents.is_empty(), "{:?}", w.intents);
    let prompts: BTreeSet<String> = w
        .prompts
        .iter()
        .map(|p| {
            p.trim_start_matches("agent_prompt_")
                .trim_end_matches(".txt")
                .to_owned()
        })
        .collect();
    assert_eq!(
        prompts, registered,
        "a prompt file exactly for each live agent"
    );
    let strays = tagged_where(|tag| tag.starts_with("racer-") && !registered.contains(tag));
    assert!(
        strays.is_empty(),
        "processes of rolled-back deployments: {strays:?}"
    );
    let live = w
        .registered
        .iter()
        .filter(|(id, _)| id.starts_with("racer-"))
        .count();
    eprintln!(
        "{n} deployments killed at instants spread over {} ms: {live} ended live, {} rolled back",
        duration.as_millis(),
        n as usize - live
    );
    assert_eq!(reconcile(&f)["nothing_to_do"], true);
}

/// A deployment killed on one socket is not rolled back by a reconcile that looks at another —
/// it would report a running session gone — but kept, and rolled back by one on its own socket.
#[test]
fn an_abandoned_deployment_is_rolled_back_only_where_it_was_placed() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let markers = markers(&f);
    let child = f
        .command(&deploy_args(&task, "t"))
        .env("FLEET_TMUX_SOCKET", "default")
        .env("FAILPOINTS", "deploy::after_session=pause")
        .env("FLEET_FAILPOINT_MARKERS", &markers)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the session", || {
        markers.join("deploy::after_session").exists()
    });
    sigkill(child);
    let agents = intent_agents(&f);
    assert_eq!(agents.len(), 1);
    let agent = agents.iter().next().unwrap().clone();
    let session = format!("agent_{agent}");
    let on_default = |args: &[&str]| f.default_tmux(args).status.success();

    let elsewhere = reconcile(&f);
    let kept = &elsewhere["abandoned"][0]["cleanup"][0];
    assert_eq!(kept["outcome"], "not_released", "{elsewhere}");
    assert!(
        kept["error"].as_str().unwrap().contains("tmux -L default"),
        "{elsewhere}"
    );
    assert_eq!(intent_agents(&f), agents, "the intent is kept");
    assert!(on_default(&["has-session", "-t", &format!("={session}")]));

    let mut c = f.command(&["--json", "reconcile"]);
    c.env("FLEET_TMUX_SOCKET", "default");
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["abandoned"][0]["agent"], agent.as_str(), "{done}");
    assert!(intent_agents(&f).is_empty());
    assert!(!on_default(&["has-session", "-t", &format!("={session}")]));
    assert!(tagged(&agents).is_empty(), "no process of it is left");
}

// ---- migrations ----------------------------------------------------------------------------

/// The Python server's JSON files as (path, bytes), and the registry directory's other files.
fn json_files(f: &Fleet) -> (Vec<(String, Vec<u8>)>, Vec<String>) {
    let all: Vec<(String, Vec<u8>)> = f.files();
    let registry_dir = f.root().join("registry").to_string();
    let others = all
        .iter()
        .filter(|(p, _)| p.starts_with(&registry_dir) && !p.ends_with("GLOBAL_REGISTRY.json"))
        .map(|(p, _)| p.clone())
        .collect();
    let json = all
        .into_iter()
        .filter(|(p, _)| p.ends_with("REGISTRY.json"))
        .collect();
    (json, others)
}

/// `fleet --json args` choosing its registry as a user's would: from what the workspace holds.
fn chosen(f: &Fleet, args: &[&str]) -> Value {
    let out = f
        .command(&[&["--json"][..], args].concat())
        .env_remove("FLEET_REGISTRY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", common::stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A migration killed half-way, either way, leaves its source the registry, whole and usable;
/// the next one completes and leaves no temp database behind.
#[test]
fn a_killed_migration_leaves_its_source_intact_and_usable() {
    let f = Fleet::new();
    common::python::python_workspace(&f);
    let (json_before, _) = json_files(&f);
    let listed = chosen(&f, &["task", "list"]);
    let db = f.root().join("registry/fleet.sqlite3");

    for point in ["migrate::after_task", "migrate::before_rename"] {
        sigkill(start_at(&f, point, "pause", &["migrate", "--to", "sqlite"]));
        assert!(!db.exists(), "{point}: no database was placed");
        assert_eq!(
            json_files(&f).0,
            json_before,
            "{point}: the JSON files are untouched"
        );
        assert_eq!(
            chosen(&f, &["task", "list"]),
            listed,
            "{point}: still the registry"
        );
    }
    f.ok(&["migrate", "--to", "sqlite"]);
    let (_, others) = json_files(&f);
    assert!(
        others
            .iter()
            .all(|p| p.contains("fleet.sqlite3 (what it holds)") || p.ends_with(".lock")),
        "no temp database is left: {others:?}"
    );
    assert_eq!(
        chosen(&f, &["task", "list"]),
        listed,
        "the same tasks, from SQLite"
    );

    sigkill(start_at(
        &f,
        "migrate::after_task",
        "pause",
        &["migrate", "--to", "json"],
    ));
    assert!(db.exists(), "the database is still in place");
    assert_eq!(
        chosen(&f, &["task", "list"]),
        listed,
        "and still the registry"
    );
    f.ok(&["migrate", "--to", "json"]);
    assert!(!db.exists());
    let parsed = |files: Vec<(String, Vec<u8>)>| -> Vec<(String, Value)> {
        files
            .into_iter()
            .map(|(p, b)| (p, serde_json::from_slice(&b).unwrap()))
            .collect()
    };
    assert_eq!(
        parsed(json_files(&f).0),
        parsed(json_before),
        "every task and the index as the Python server wrote them"
    );
}

// ---- worktrees -----------------------------------------------------------------------------

/// Every failpoint a `--worktree` deployment passes before it commits: the checkout's git steps
/// among deploy-core's.
const WORKTREE_POINTS: [&str; 10] = [
    "deploy::after_intent",
    "checkout::before_branch",
    "checkout::after_branch",
    "checkout::after_worktree",
    "deploy::after_checkout",
    "deploy::after_prompt",
    "deploy::after_session",
    "deploy::after_register",
    "deploy::before_commit",
    "deploy::after_commit",
];

fn worktree_args<'a>(task: &'a str, repo: &'a str) -> Vec<&'a str> {
    let mut args = deploy_args(task, "wt");
    let at = args.iter().position(|a| *a == "--").unwrap();
    args.splice(at..at, ["--worktree", "--repo", repo]);
    args
}

fn repo_of(f: &Fleet, files: usize) -> Utf8PathBuf {
    let repo =
        testkit::git::repo_at(&Utf8PathBuf::from_path_buf(f.dir.path().join("repo")).unwrap());
    for i in 0..files {
        fs_err::write(repo.join(format!("f{i}.txt")), format!("{i}\n")).unwrap();
    }
    testkit::git::git(&repo, &["add", "-A"]);
    testkit::git::git(&repo, &["commit", "-q", "-m", "files", "--allow-empty"]);
    repo
}

#[test]
fn a_worktree_deployment_failing_or_killed_at_each_step_leaves_the_repository_as_it_was() {
    for point in WORKTREE_POINTS {
        for action in ["panic", "pause"] {
            let f = Fleet::new();
            let task = f.task(&[]);
            let repo = repo_of(&f, 3);
            let before = testkit::git::lists(&repo);
            let args = worktree_args(&task, repo.as_str());
            let child = start_at(&f, point, action, &args);
            let context = format!("{point}={action}");
            if action == "pause" {
                sigkill(child);
                reconcile(&f);
            } else {
                let out = child.wait_with_output().unwrap();
                assert!(!out.status.success(), "{context}");
            }
            let w = world(&f, &task);
            if point == "deploy::after_commit" {
                // Committed first: a Live agent, with its worktree.
                assert_eq!(w.registered.len(), 1, "{context}");
                assert_eq!(testkit::git::fleet_branches(&repo).len(), 1, "{context}");
                assert_eq!(
                    testkit::git::fleet_worktrees(&repo, &f.root()).len(),
                    1,
                    "{context}"
                );
            } else {
                assert_eq!(testkit::git::lists(&repo), before, "{context}");
                assert!(w.registered.is_empty(), "{context}: {:?}", w.registered);
                assert!(w.sessions.is_empty() && w.intents.is_empty(), "{context}");
                let worktrees = f.root().join(&task).join("worktrees");
                assert!(
                    fs_err::read_dir(&worktrees).map_or(true, |d| d.count() == 0),
                    "{context}: a directory left under {worktrees}"
                );
            }
            assert_eq!(reconcile(&f)["nothing_to_do"], true, "{context}");
        }
    }
}

#[test]
fn two_hundred_worktree_deployments_killed_at_random_instants_leave_only_what_the_registry_holds() {
    let f = Fleet::new();
    let task = f.task(&["--max-agents", "1000", "--max-concurrent", "1000"]);
    // Enough files that checking them out is a real part of a deployment (where creating a
    // file costs ~0.2 ms, as on CI's disks, 500 take 0.3 s of it). The kills spread over one
    // deployment's time, so the test takes ~100 deployments: more files only make it longer.
    let repo = repo_of(&f, 500);
    let args = worktree_args(&task, repo.as_str());
    let start = Instant::now();
    f.ok(&args);
    let duration = start.elapsed();
    let n: u32 = 200;
    kill_at_spread_instants(&f, &args, duration, n);
    let report = reconcile(&f);
    let w = world(&f, &task);
    let registered: BTreeSet<String> = w.registered.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        testkit::git::fleet_branches(&repo),
        registered,
        "a fleet branch exactly for each registered agent; reconcile said {report}"
    );
    assert_eq!(
        testkit::git::fleet_worktrees(&repo, &f.root()),
        registered,
        "a worktree exactly for each registered agent; reconcile said {report}"
    );
    let dirs: BTreeSet<String> = fs_err::read_dir(f.root().join(&task).join("worktrees"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        dirs, registered,
        "no directory of a rolled-back checkout is left"
    );
    assert!(w.intents.is_empty(), "{:?}", w.intents);
    eprintln!(
        "{n} --worktree deployments killed at instants spread over {} ms: {} ended live",
        duration.as_millis(),
        registered.len() - 1
    );
    assert_eq!(reconcile(&f)["nothing_to_do"], true);
}

/// A migration to Postgres and back killed half-way leaves its source the registry; the same
/// migration run again completes — also after the import committed and before the switch.
#[test]
fn a_killed_migration_to_postgres_and_back_leaves_its_source_the_registry() {
    let server = testkit::postgres::PgServer::start();
    let url = server.new_database();
    let mut f = Fleet::new();
    f.settings.clear(); // no database but the one the migration names, whatever the run's registry
    common::python::python_workspace(&f);
    let (json_before, _) = json_files(&f);
    let listed = chosen(&f, &["task", "list"]);
    let named = f.root().join(".fleet/database-url");
    let to_postgres = [
        "--database-url",
        url.as_str(),
        "migrate",
        "--to",
        "postgres",
    ];

    for point in [
        "migrate::after_task",
        "postgres::before_commit",
        "migrate::before_switch",
    ] {
        sigkill(start_at(&f, point, "pause", &to_postgres));
        assert!(!named.exists(), "{point}: the workspace was not switched");
        assert_eq!(json_files(&f).0, json_before, "{point}: the JSON files");
        assert_eq!(
            chosen(&f, &["task", "list"]),
            listed,
            "{point}: still the registry"
        );
    }
    // Killed after its commit: the database holds the tasks as they are, and the import is done.
    f.ok(&to_postgres);
    assert!(named.exists());
    assert_eq!(chosen(&f, &["task", "list"]), listed, "from Postgres");

    for point in ["migrate::after_task", "migrate::before_switch"] {
        sigkill(start_at(&f, point, "pause", &["migrate", "--to", "json"]));
        assert!(named.exists(), "{point}: still on Postgres");
        assert_eq!(chosen(&f, &["task", "list"]), listed, "{point}");
    }
    f.ok(&["migrate", "--to", "json"]);
    assert!(!named.exists());
    let parsed = |files: Vec<(String, Vec<u8>)>| -> Vec<(String, Value)> {
        files
            .into_iter()
            .map(|(p, b)| (p, serde_json::from_slice(&b).unwrap()))
            .collect()
    };
    assert_eq!(parsed(json_files(&f).0), parsed(json_before));
}

/// Two hosts share one Postgres database. Host a is SIGKILLed at each failpoint of a deployment,
/// then reconciled: a is left clean (or with its one Live agent), and host b's agent — whose
/// session a cannot see — is untouched: still running, recorded running, never rolled back.
#[test]
fn sigkill_on_one_host_then_its_reconcile_leaves_the_other_hosts_agents_alone() {
    let server = testkit::postgres::PgServer::start();
    let url = server.new_database();
    let on = |host: &str| {
        let mut f = Fleet::new();
        f.settings = vec![
            ("FLEET_REGISTRY".into(), "postgres".into()),
            ("FLEET_DATABASE_URL".into(), url.clone()),
            ("FLEET_HOST".into(), host.into()),
        ];
        f
    };
    let a = on("host-a");
    let mut b = on("host-b");
    b.socket = a.socket.clone(); // the same name, on another server (its own TMUX_TMPDIR)
    let task = a.task(&[]);
    let theirs = b.deploy(&task, "other", "0", &["sleep", "300"]);
    let untouched = |context: &str| {
        assert_eq!(
            b.entry(&task, &theirs)["status"],
            "running",
            "{context}: b's agent recorded ended"
        );
        assert!(
            !tagged(&[theirs.clone()].into()).is_empty(),
            "{context}: b's agent was killed"
        );
        assert_eq!(b.sessions().len(), 1, "{context}: b's session");
    };
    for point in deploy_points_on("postgres") {
        let deploying = start_at(&a, point, "pause", &deploy_args(&task, "victim"));
        let mut mine = intent_agents(&a);
        mine.extend(
            a.sessions()
                .iter()
                .filter_map(|s| s.strip_prefix("agent_").map(str::to_owned)),
        );
        sigkill(deploying);
        let report = reconcile(&a);
        untouched(point);
        assert!(
            report["zombies"].as_array().is_none_or(Vec::is_empty),
            "{point}: {report}"
        );
        // a's agents of this round (those of earlier rounds were killed: terminated).
        let registered: Vec<Value> = a.task_registry(&task)["agents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["id"] != theirs.as_str() && e["status"] != "terminated")
            .cloned()
            .collect();
        if point == "deploy::after_commit" || point == "deploy::after_confirm" {
            assert_eq!(registered.len(), 1, "{point}: a's Live agent");
            assert_eq!(registered[0]["status"], "running", "{point}");
            let id = registered[0]["id"].as_str().unwrap().to_owned();
            a.ok(&["kill", "--task", &task, "--agent", &id]);
        } else {
            assert!(registered.is_empty(), "{point}: {registered:?}");
            assert!(
                tagged(&mine).is_empty(),
                "{point}: a's agent processes left"
            );
        }
        assert!(a.sessions().is_empty(), "{point}: a's sessions");
        assert!(intent_agents(&a).is_empty(), "{point}: a's intents");
        untouched(point);
    }
    b.ok(&["kill", "--task", &task, "--agent", &theirs]);
}
