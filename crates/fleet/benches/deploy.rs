//! A deployment through the library — deploy-core with the JSON registry, the tmux backend, the
//! prompt store and the intent journal, startup grace 0 — against the tmux calls a deployment
//! needs (new-session with its options, one liveness probe) — the backend's own command lines
//! (`TmuxBackend::floor`) — run as processes, in the same run.
//! The cleanup after each iteration (kill, unregister) is not timed. Run by `cargo xtask bench`.

// Bench setup may unwrap: a failed unwrap is a failed benchmark. It constructs the real
// services itself, like `Services::new`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_types,
    missing_docs
)]

use std::process::Command;
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use criterion::{Criterion, criterion_group, criterion_main};
use deploy_core::{
    AgentId, AgentType, DeployRequest, Deployer, FsJournal, FsPromptStore, Layout, Limits,
    Registry, SessionBackend, SessionName, SessionSpec,
};
use registry::{JsonRegistry, NewTask};
use tmux_backend::{Server, TmuxBackend};

const WRAP: &str = env!("CARGO_BIN_EXE_fleet-agent-wrap");

fn benches(c: &mut Criterion) {
    let socket = format!("fleet-bench-deploy-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
    let layout = Layout::new(root.clone());
    let registry = JsonRegistry::new(layout.clone());
    let backend = TmuxBackend::new(Server::Name(socket.clone()), vec![WRAP.into()])
        .with_kill_grace(Duration::from_millis(200));
    let prompts = FsPromptStore;
    let journal = FsJournal::new(&layout);
    let deployer = Deployer {
        adopted: None,
        checkouts: None,
        host: None,
        layout: &layout,
        backend: &backend,
        registry: &registry,
        prompts: &prompts,
        journal: &journal,
    };
    let limits = Limits {
        max_agents: 1_000_000,
        max_concurrent: 1_000_000,
        max_depth: 5,
    };
    let task = registry
        .create_task(&NewTask {
            description: "bench".into(),
            limits,
            ..NewTask::default()
        })
        .unwrap()
        .task_id;
    let tmux = |args: &[&str]| {
        let out = Command::new("tmux")
            .args(["-f", "/dev/null", "-L", &socket])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    tmux(&["new-session", "-d", "-s", "keepalive", "sleep", "3600"]); // the server stays up
    let run = |line: &[std::ffi::OsString]| {
        let out = Command::new(&line[0]).args(&line[1..]).output().unwrap();
        assert!(
            out.status.success(),
            "{line:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    let mut group = c.benchmark_group("deploy");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_millis(500));
    group.bench_function("library_deploy_to_live", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut r = DeployRequest::new(
                    task.clone(),
                    AgentType::parse("bench").unwrap(),
                    "p",
                    vec!["sleep".into(), "300".into()],
                );
                r.startup_grace = Duration::ZERO;
                r.allow_duplicate = true;
                r.workdir = root.clone();
                let start = Instant::now();
                let live = deployer.deploy(r).unwrap();
                total += start.elapsed();
                backend
                    .kill(&live.record().session, &live.record().id)
                    .unwrap();
                registry.unregister(&task, &live.record().id).unwrap();
            }
            total
        });
    });
    let mut n = 0u64;
    group.bench_function("raw_tmux_new_session_and_probe", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let agent = AgentId::parse(&format!("raw-{n}")).unwrap();
                let spec = SessionSpec {
                    session: SessionName::for_agent(&agent).unwrap(),
                    task: task.clone(),
                    argv: vec!["sleep".into(), "300".into()],
                    workdir: root.clone(),
                    env: Vec::new(),
                    prompt_file: root.join("raw-prompt.txt"),
                    log_file: root.join(format!("logs/{agent}_stream.jsonl")),
                    agent,
                };
                // The backend's own command lines: what a deployment asks of tmux.
                let floor = backend.floor(&spec).unwrap();
                let start = Instant::now();
                run(&floor.start);
                run(&floor.probe);
                total += start.elapsed();
                run(&floor.kill);
            }
            total
        });
    });
    group.finish();
    backend.kill_server().unwrap();
    use std::os::unix::fs::MetadataExt;
    let uid = fs_err::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    let tmpdir = std::env::var("TMUX_TMPDIR").unwrap_or_else(|_| "/tmp".into());
    let _ = std::fs::remove_file(format!("{tmpdir}/tmux-{uid}/{socket}"));
}

criterion_group!(all, benches);
criterion_main!(all);
