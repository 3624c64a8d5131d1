//! Whole-process benchmarks: `fleet` as people run it, each process timed over repeated runs,
//! beside the raw tmux commands it needs, on a private tmux server and a scratch root.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use deploy_core::{AgentId, SessionName, SessionSpec, TaskId};
use serde_json::{Value, json};
use tmux_backend::{Server, TmuxBackend};

/// Timings in milliseconds.
pub(crate) struct Stats(pub(crate) Vec<f64>);

impl Stats {
    pub(crate) fn mean(&self) -> f64 {
        self.0.iter().sum::<f64>() / self.0.len().max(1) as f64
    }
    pub(crate) fn median(&self) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }
    pub(crate) fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }
    pub(crate) fn show(&self) -> String {
        format!(
            "{:.2} ms (median {:.2}, min {:.2}, n = {})",
            self.mean(),
            self.median(),
            self.min(),
            self.0.len()
        )
    }
}

pub(crate) struct Results {
    pub(crate) deploy_fleet: Stats,
    pub(crate) deploy_raw: Stats,
    /// The new-session alone, raw: the one tmux call a deployment still makes.
    pub(crate) deploy_start_only: Stats,
    /// The one tmux listing of 1,000 sessions, raw: the floor of the looks below.
    pub(crate) list_floor: Stats,
    pub(crate) status_1000: Stats,
    pub(crate) bulk_sequential: Duration,
    pub(crate) bulk_concurrent: Duration,
    pub(crate) reconcile_idle: Stats,
    /// The same on the SQLite registry.
    pub(crate) reconcile_idle_sqlite: Stats,
    pub(crate) reconcile_stale: Stats,
    pub(crate) rss_deploy_kb: u64,
    pub(crate) rss_mcp_kb: u64,
    pub(crate) mcp_status_calls: Duration,
    pub(crate) grace: Vec<(String, Stats)>,
}

/// A private tmux server and a scratch root, removed on drop. Its tmux — fleet's and plain
/// `tmux` alike — lives in a `TMUX_TMPDIR` of its own, so the benchmarks never reach the
/// user's default server (where fleet looks for the Python server's agents).
pub(crate) struct Env {
    fleet: PathBuf,
    pub(crate) socket: String,
    pub(crate) root: PathBuf,
    pub(crate) tmux_tmpdir: PathBuf,
    /// More environment for every fleet command (the remote benchmark's registry and hosts).
    pub(crate) settings: Vec<(String, String)>,
}

impl Env {
    pub(crate) fn new(fleet: &Path, scratch: &Path, name: &str) -> Result<Env, String> {
        let root = scratch.join(name);
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        // Short, whatever the checkout's path: a socket path has at most 107 bytes.
        let tmux_tmpdir =
            std::env::temp_dir().join(format!("fleet-xbench-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&tmux_tmpdir)
            .map_err(|e| format!("{}: {e}", tmux_tmpdir.display()))?;
        Ok(Env {
            fleet: fleet.to_owned(),
            socket: format!("fleet-xbench-{}-{name}", std::process::id()),
            root,
            tmux_tmpdir,
            settings: Vec::new(),
        })
    }

    pub(crate) fn fleet(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.fleet);
        c.args(args)
            .env("FLEET_ROOT", &self.root)
            .env("FLEET_TMUX_SOCKET", &self.socket)
            .env("TMUX_TMPDIR", &self.tmux_tmpdir)
            .env_remove("TMUX")
            .env_remove("FLEET_AGENT_CMD")
            .env_remove("FLEET_AGENT_ID")
            .stdin(Stdio::null());
        for (k, v) in &self.settings {
            c.env(k, v);
        }
        c
    }

    /// What fleet records as the placement of the agents it starts here.
    /// The backend fleet runs here (its command lines are the benchmarks' floors).
    pub(crate) fn backend(&self) -> TmuxBackend {
        TmuxBackend::new(
            Server::Name(self.socket.clone()),
            vec![
                self.fleet
                    .with_file_name("fleet-agent-wrap")
                    .to_string_lossy()
                    .into_owned(),
            ],
        )
    }

    /// The backend's one listing, run raw `n` times: the floor of a look at every session.
    pub(crate) fn list_floor(&self, n: usize) -> Result<Stats, String> {
        let line = self.backend().list_floor();
        let mut runs = Vec::new();
        for _ in 0..n {
            let (ms, ()) = time(|| {
                let out = Command::new(&line[0])
                    .args(&line[1..])
                    .env("TMUX_TMPDIR", &self.tmux_tmpdir)
                    .env_remove("TMUX")
                    .output()
                    .map_err(|e| format!("tmux: {e}"))?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err("raw tmux listing failed".into())
                }
            })?;
            runs.push(ms);
        }
        Ok(Stats(runs))
    }

    pub(crate) fn placement(&self) -> String {
        format!("tmux -L {}", self.socket)
    }

    pub(crate) fn ok(&self, args: &[&str]) -> Result<String, String> {
        let out = self.fleet(args).output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "fleet {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub(crate) fn tmux(&self, args: &[&str]) -> Result<Output, String> {
        Command::new("tmux")
            .args(["-f", "/dev/null", "-L", &self.socket])
            .args(args)
            .env("TMUX_TMPDIR", &self.tmux_tmpdir)
            .env_remove("TMUX")
            .output()
            .map_err(|e| format!("tmux: {e}"))
    }

    pub(crate) fn task(&self) -> Result<String, String> {
        Ok(self
            .ok(&[
                "task",
                "create",
                "--description",
                "bench",
                "--max-agents",
                "100000",
                "--max-concurrent",
                "100000",
            ])?
            .trim()
            .to_owned())
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        let _ = std::fs::remove_dir_all(&self.root);
        // tmux leaves its socket file behind, in our own TMUX_TMPDIR.
        let _ = std::fs::remove_dir_all(&self.tmux_tmpdir);
    }
}

/// The tmux calls a deployment needs, run raw: the agent's `new-session` with its options and
/// tags, then one probe — the floor every deployment benchmark compares against. The command
/// lines are the backend's own (`TmuxBackend::floor`), so the floor cannot drift from what fleet
/// asks of tmux. `agent` names the session (`agent_<agent>`).
pub(crate) fn raw_tmux_deploy(env: &Env, agent: &str, cwd: &str) -> Result<(), String> {
    raw_tmux_calls(env, agent, cwd, true)
}

/// The backend's start command line alone, run raw: one `tmux new-session`.
pub(crate) fn raw_tmux_start(env: &Env, agent: &str, cwd: &str) -> Result<(), String> {
    raw_tmux_calls(env, agent, cwd, false)
}

/// [`raw_tmux_deploy`], the probe left out when `probe` is false.
fn raw_tmux_calls(env: &Env, agent: &str, cwd: &str, probe: bool) -> Result<(), String> {
    let agent = AgentId::parse(agent).map_err(|e| e.to_string())?;
    let root = camino::Utf8PathBuf::from(env.root.to_string_lossy().into_owned());
    let spec = SessionSpec {
        session: SessionName::for_agent(&agent).map_err(|e| e.to_string())?,
        task: TaskId::parse("TASK-RAW").map_err(|e| e.to_string())?,
        argv: vec!["sleep".into(), "300".into()],
        workdir: cwd.into(),
        env: Vec::new(),
        prompt_file: root.join("raw-prompt.txt"),
        log_file: root.join(format!("logs/{agent}_stream.jsonl")),
        agent,
    };
    let floor = env.backend().floor(&spec).map_err(|e| e.to_string())?;
    let lines = if probe {
        vec![&floor.start, &floor.probe]
    } else {
        vec![&floor.start]
    };
    for line in lines {
        let out = Command::new(&line[0])
            .args(&line[1..])
            .env("TMUX_TMPDIR", &env.tmux_tmpdir)
            .env_remove("TMUX")
            .output()
            .map_err(|e| format!("tmux: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "raw tmux failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

pub(crate) fn time<T>(f: impl FnOnce() -> Result<T, String>) -> Result<(f64, T), String> {
    let start = Instant::now();
    let out = f()?;
    Ok((start.elapsed().as_secs_f64() * 1e3, out))
}

fn deploy_args<'a>(task: &'a str, grace: &'a str) -> Vec<&'a str> {
    vec![
        "deploy",
        "--task",
        task,
        "--type",
        "bench",
        "--prompt",
        "p",
        "--allow-duplicate",
        "--startup-grace-ms",
        grace,
        "--",
        "sleep",
        "300",
    ]
}

/// `fleet deploy` (grace 0) against its floor — the backend's own tmux calls, start and one
/// probe, run raw — interleaved, `runs` of each, in `env`'s task.
pub(crate) fn deploy_overhead(
    env: &Env,
    task: &str,
    runs: usize,
) -> Result<(Stats, Stats, Stats), String> {
    let (mut ours, mut raw, mut start) = (Vec::new(), Vec::new(), Vec::new());
    let root = env.root.to_string_lossy().into_owned();
    for i in 0..runs {
        ours.push(time(|| env.ok(&deploy_args(task, "0")))?.0);
        raw.push(time(|| raw_tmux_deploy(env, &format!("raw-{i}"), &root))?.0);
        start.push(time(|| raw_tmux_start(env, &format!("start-{i}"), &root))?.0);
    }
    Ok((Stats(ours), Stats(raw), Stats(start)))
}

pub(crate) fn run(fleet: &Path, scratch: &Path) -> Result<Results, String> {
    // 1. Deploy overhead: `fleet deploy` (grace 0) against new-session + one probe, interleaved.
    let env = Env::new(fleet, scratch, "deploy")?;
    let task = env.task()?;
    env.tmux(&["new-session", "-d", "-s", "keepalive", "sleep", "3600"])?;
    let (ours, raw, start_only) = deploy_overhead(&env, &task, 40)?;

    // 6a. Peak memory of one `fleet deploy`.
    let rss_deploy_kb = rss(&env, &deploy_args(&task, "0"))?;

    // 6b. `fleet mcp` answering 1,000 status calls (the task holds 40 agents).
    let (mcp_status_calls, rss_mcp_kb) = mcp_status_calls(&env, &task, 1000)?;
    drop(env);

    // 3. Bulk: 100 agents into one task, sequentially and with 8 concurrent deployers.
    let env = Env::new(fleet, scratch, "bulk")?;
    let seq_task = env.task()?;
    let (seq_ms, ()) = time(|| {
        for _ in 0..100 {
            env.ok(&deploy_args(&seq_task, "0"))?;
        }
        Ok(())
    })?;
    let par_task = env.task()?;
    let (par_ms, ()) = time(|| {
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..8)
                .map(|w| {
                    let (env, task) = (&env, &par_task);
                    s.spawn(move || -> Result<(), String> {
                        for _ in (w..100).step_by(8) {
                            env.ok(&deploy_args(task, "0"))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join()
                    .map_err(|_| "a deployer thread panicked".to_owned())?
            })
        })
    })?;
    let live: Value = serde_json::from_str(&env.ok(&["--json", "status", "--task", &par_task])?)
        .map_err(|e| e.to_string())?;
    if live[0]["active_count"] != 100 {
        return Err(format!(
            "concurrent bulk: {} active, not 100",
            live[0]["active_count"]
        ));
    }
    drop(env);

    // 5. Reconcile with nothing to do over 1,000 sessions and 10,000 registry entries.
    let (reconcile_idle, list_floor) = idle_reconcile(fleet, scratch)?;
    let reconcile_idle_sqlite = idle_reconcile_sqlite(fleet, scratch)?;
    let status_1000 = status_1000(fleet, scratch)?;
    // 6. Reconcile recording 1,000 stale agents of one task (their sessions gone).
    let reconcile_stale = stale_reconcile(fleet, scratch)?;

    // The startup grace: how fast do failing agents die?
    let grace = grace(fleet, scratch)?;

    Ok(Results {
        deploy_fleet: ours,
        deploy_raw: raw,
        deploy_start_only: start_only,
        list_floor,
        status_1000,
        bulk_sequential: Duration::from_secs_f64(seq_ms / 1e3),
        bulk_concurrent: Duration::from_secs_f64(par_ms / 1e3),
        reconcile_idle,
        reconcile_idle_sqlite,
        reconcile_stale,
        rss_deploy_kb,
        rss_mcp_kb,
        mcp_status_calls,
        grace,
    })
}

/// Runs `fleet args` under `xtask rss`, which reports the peak RSS of its only child.
fn rss(env: &Env, args: &[&str]) -> Result<u64, String> {
    let xtask = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(xtask)
        .arg("rss")
        .arg(&env.fleet)
        .args(args)
        .env("FLEET_ROOT", &env.root)
        .env("FLEET_TMUX_SOCKET", &env.socket)
        .env("TMUX_TMPDIR", &env.tmux_tmpdir)
        .env_remove("TMUX")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    parse_rss(&String::from_utf8_lossy(&out.stderr))
}

fn parse_rss(stderr: &str) -> Result<u64, String> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kb="))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no maxrss in: {stderr}"))
}

fn mcp_status_calls(env: &Env, task: &str, calls: u64) -> Result<(Duration, u64), String> {
    let xtask = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(xtask)
        .arg("rss")
        .arg(&env.fleet)
        .arg("mcp")
        .env("FLEET_ROOT", &env.root)
        .env("FLEET_TMUX_SOCKET", &env.socket)
        .env("TMUX_TMPDIR", &env.tmux_tmpdir)
        .env_remove("TMUX")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let mut send = |v: Value| {
        writeln!(stdin, "{v}")
            .and_then(|()| stdin.flush())
            .map_err(|e| e.to_string())
    };
    let mut answer = |id: u64| -> Result<Value, String> {
        for line in lines.by_ref() {
            let v: Value = serde_json::from_str(&line.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            if v["id"] == id {
                return Ok(v);
            }
        }
        Err("fleet mcp closed its output".into())
    };
    send(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "xtask", "version": "0"}}}),
    )?;
    answer(0)?;
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
    let start = Instant::now();
    for id in 1..=calls {
        send(
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "get_real_task_status", "arguments": {"task_id": task}}}),
        )?;
        let v = answer(id)?;
        if v["result"]["isError"] == true || v.get("error").is_some() {
            return Err(format!("status call {id} failed: {v}"));
        }
    }
    let elapsed = start.elapsed();
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    Ok((elapsed, parse_rss(&String::from_utf8_lossy(&out.stderr))?))
}

/// A task of `total` registry entries, the first `live` running with a live fleet session each
/// (created 50 per tmux invocation), the rest completed.
fn populated(
    fleet: &Path,
    scratch: &Path,
    name: &str,
    live: usize,
    total: usize,
) -> Result<(Env, String), String> {
    let env = Env::new(fleet, scratch, name)?;
    let task = env.task()?;
    for batch in 0..live.div_ceil(50) {
        let mut args: Vec<String> = Vec::new();
        for i in batch * 50..((batch + 1) * 50).min(live) {
            let (agent, session) = (
                format!("idle-{i:06}-000000"),
                format!("agent_idle-{i:06}-000000"),
            );
            let exact = format!("={session}:");
            if !args.is_empty() {
                args.push(";".into());
            }
            args.extend(
                [
                    "new-session",
                    "-d",
                    "-s",
                    &session,
                    "-e",
                    &format!("FLEET_AGENT_ID={agent}"),
                    "sleep",
                    "3600",
                ]
                .map(String::from),
            );
            args.extend(
                [";", "set-option", "-t", &exact, "@fleet_agent_id", &agent].map(String::from),
            );
            args.extend(
                [";", "set-option", "-t", &exact, "@fleet_task_id", &task].map(String::from),
            );
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        if !env.tmux(&refs)?.status.success() {
            return Err("cannot create the idle sessions".into());
        }
    }
    let path = env.root.join(&task).join("AGENT_REGISTRY.json");
    let mut file: Value = serde_json::from_slice(&std::fs::read(&path).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mut agents = Vec::new();
    for i in 0..total {
        let (id, status) = if i < live {
            (format!("idle-{i:06}-000000"), "running")
        } else {
            (format!("done-{i:06}-000000"), "completed")
        };
        let dir = env.root.join(&task);
        agents.push(json!({
            "id": id, "type": if i < live { "idle" } else { "done" }, "tmux_session": format!("agent_{id}"),
            "parent": "orchestrator", "depth": 1, "status": status, "fleet_placement": env.placement(),
            "started_at": "2026-11-24T08:33:01.582508", "progress": 0,
            "last_update": "2026-11-24T08:33:01.582517", "prompt": "Find every unlocked registry write.",
            "tracked_files": {
                "prompt_file": dir.join(format!("agent_prompt_{id}.txt")),
                "log_file": dir.join(format!("logs/{id}_stream.jsonl")),
                "progress_file": dir.join(format!("progress/{id}_progress.jsonl")),
                "findings_file": dir.join(format!("findings/{id}_findings.jsonl")),
                "deploy_log": dir.join(format!("logs/deploy_{id}.json")),
            },
        }));
    }
    file["agents"] = Value::Array(agents);
    file["total_spawned"] = json!(total);
    file["active_count"] = json!(live);
    file["completed_count"] = json!(total - live);
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    env.ok(&["reconcile"])?; // builds the global index once
    Ok((env, task))
}

pub(crate) fn idle_reconcile(fleet: &Path, scratch: &Path) -> Result<(Stats, Stats), String> {
    idle_reconcile_on(fleet, scratch, false)
}

/// [`idle_reconcile`] with the registry moved to SQLite first (`fleet migrate --to sqlite`).
pub(crate) fn idle_reconcile_sqlite(fleet: &Path, scratch: &Path) -> Result<Stats, String> {
    idle_reconcile_on(fleet, scratch, true).map(|(ours, _)| ours)
}

fn idle_reconcile_on(fleet: &Path, scratch: &Path, sqlite: bool) -> Result<(Stats, Stats), String> {
    // 1,000 live fleet sessions; 10,000 registry entries: those 1,000 running, 9,000 completed.
    let name = if sqlite {
        "reconcile-sqlite"
    } else {
        "reconcile"
    };
    let (env, _task) = populated(fleet, scratch, name, 1000, 10_000)?;
    if sqlite {
        env.ok(&["migrate", "--to", "sqlite"])?;
        env.ok(&["reconcile"])?; // the first look, as for JSON in `populated`
    }
    let mut runs = Vec::new();
    for _ in 0..5 {
        let (ms, out) = time(|| env.ok(&["--json", "reconcile"]))?;
        let v: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
        if v["nothing_to_do"] != true {
            return Err(format!("idle reconcile found work: {v}"));
        }
        runs.push(ms);
    }
    Ok((Stats(runs), env.list_floor(5)?))
}

/// One reconcile that records 1,000 running agents of one task whose sessions are gone:
/// one registry transaction for the task, one scan for their processes.
/// `fleet --json status` of a task of 1,000 running agents, each with its live session: the
/// first look (every agent's activity read for the first time) left out, then 10 looks.
pub(crate) fn status_1000(fleet: &Path, scratch: &Path) -> Result<Stats, String> {
    let (env, task) = populated(fleet, scratch, "status1000", 1000, 1000)?;
    env.ok(&["--json", "status", "--task", &task])?;
    let mut runs = Vec::new();
    for _ in 0..10 {
        runs.push(time(|| env.ok(&["--json", "status", "--task", &task]))?.0);
    }
    Ok(Stats(runs))
}

pub(crate) fn stale_reconcile(fleet: &Path, scratch: &Path) -> Result<Stats, String> {
    let mut runs = Vec::new();
    for run in 0..3 {
        let env = Env::new(fleet, scratch, &format!("stale-{run}"))?;
        let task = env.task()?;
        let path = env.root.join(&task).join("AGENT_REGISTRY.json");
        let read = |p: &Path| -> Result<Value, String> {
            serde_json::from_slice(&std::fs::read(p).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())
        };
        let mut file = read(&path)?;
        let index_path = env.root.join("registry/GLOBAL_REGISTRY.json");
        let mut index = read(&index_path)?;
        let mut agents = Vec::new();
        for i in 0..1000 {
            let id = format!("stale-{i:06}-000000");
            agents.push(json!({
                "id": id, "type": "stale", "tmux_session": format!("agent_{id}"),
                "parent": "orchestrator", "depth": 1, "status": "running", "fleet_placement": env.placement(),
                "started_at": "2026-11-24T08:33:01.582508", "progress": 0,
            }));
            index["agents"][&id] = json!({
                "task_id": task, "type": "stale", "parent": "orchestrator",
                "started_at": "2026-11-24T08:33:01.582508", "tmux_session": format!("agent_{id}"),
            });
        }
        file["agents"] = Value::Array(agents);
        // Counters as fleet keeps them (a registry whose counters drifted is `repair`'s case).
        file["total_spawned"] = json!(1000);
        file["active_count"] = json!(1000);
        file["completed_count"] = json!(0);
        index["total_agents_spawned"] = json!(1000);
        index["active_agents"] = json!(1000);
        for (p, v) in [(&path, &file), (&index_path, &index)] {
            std::fs::write(p, serde_json::to_vec_pretty(v).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
        let (ms, out) = time(|| env.ok(&["--json", "reconcile"]))?;
        let v: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
        let recorded = v["zombies"].as_array().map_or(0, Vec::len);
        if recorded != 1000 {
            return Err(format!(
                "stale reconcile recorded {recorded} agents, not 1,000"
            ));
        }
        runs.push(ms);
    }
    Ok(Stats(runs))
}

/// How long failing agents take to die, directly and as fleet reports it.
fn grace(fleet: &Path, scratch: &Path) -> Result<Vec<(String, Stats)>, String> {
    let env = Env::new(fleet, scratch, "grace")?;
    let task = env.task()?;
    let home = env.root.join("empty-home");
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let home = home.to_string_lossy().into_owned();
    let mut out = Vec::new();
    let claude = Command::new("claude")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let deploy_fails = |cmd: &[&str]| -> Result<Stats, String> {
        let mut v = Vec::new();
        for _ in 0..3 {
            let mut args = vec![
                "deploy",
                "--task",
                &task,
                "--type",
                "doomed",
                "--prompt",
                "hello",
                "--allow-duplicate",
                "--startup-grace-ms",
                "5000",
                "--",
            ];
            args.extend_from_slice(cmd);
            let (ms, o) = time(|| env.fleet(&args).output().map_err(|e| e.to_string()))?;
            if o.status.success() {
                return Err(format!("{cmd:?} did not fail"));
            }
            v.push(ms);
        }
        Ok(Stats(v))
    };
    if claude {
        let direct = |args: &[&str]| -> Result<Stats, String> {
            let mut v = Vec::new();
            for _ in 0..3 {
                let (ms, _) = time(|| {
                    let mut c = Command::new("claude");
                    c.args(args)
                        .env("HOME", &home)
                        .env_remove("ANTHROPIC_API_KEY")
                        .stdin(Stdio::piped())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null());
                    let mut child = c.spawn().map_err(|e| e.to_string())?;
                    if let Some(mut i) = child.stdin.take() {
                        let _ = i.write_all(b"hello");
                    }
                    child.wait().map_err(|e| e.to_string())
                })?;
                v.push(ms);
            }
            Ok(Stats(v))
        };
        out.push((
            "`claude --print --output-format stream-json --verbose`, no credentials, run directly"
                .to_owned(),
            direct(&["--print", "--output-format", "stream-json", "--verbose"])?,
        ));
        out.push((
            "`claude --no-such-flag`, run directly".to_owned(),
            direct(&["--no-such-flag"])?,
        ));
        let home_env = format!("HOME={home}");
        out.push((
            "`fleet deploy` of Claude Code without credentials: until the failure is reported"
                .to_owned(),
            deploy_fails(&[
                "env",
                "-u",
                "ANTHROPIC_API_KEY",
                &home_env,
                "claude",
                "--print",
                "--output-format",
                "stream-json",
                "--verbose",
            ])?,
        ));
    }
    out.push((
        "`fleet deploy` of a missing binary: until the failure is reported".to_owned(),
        deploy_fails(&["/nonexistent/agent"])?,
    ));
    Ok(out)
}

/// `xtask rss CMD ARGS...`: runs CMD with this process's stdio, then prints the peak RSS of
/// its only child — CMD — as `maxrss_kb=N` on stderr.
pub(crate) fn rss_main(args: &[String]) -> Result<(), String> {
    let (cmd, rest) = args
        .split_first()
        .ok_or("usage: cargo xtask rss CMD [ARGS...]")?;
    let status = Command::new(cmd)
        .args(rest)
        .status()
        .map_err(|e| format!("{cmd}: {e}"))?;
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_err(|e| e.to_string())?;
    eprintln!("maxrss_kb={}", usage.max_rss());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd} failed: {status}"))
    }
}
