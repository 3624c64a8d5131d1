//! Start + probe + kill of one agent through the backend, against the raw tmux commands the
//! backend needs (new-session with its options, one list-panes, kill-session) — taken from the
//! backend itself (`TmuxBackend::floor`) and run as processes in the same run. Run through
//! `cargo xtask bench`.

// Bench setup may unwrap: a failed unwrap is a failed benchmark.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use camino::Utf8PathBuf;
use criterion::{Criterion, criterion_group, criterion_main};
use deploy_core::{AgentId, Liveness, SessionBackend, SessionName, SessionSpec, TaskId};
use tmux_backend::{Server, TmuxBackend};

const WRAP: &str = env!("CARGO_BIN_EXE_tmux-agent-wrap");

/// One agent's session: `sleep 60`, its prompt and log under `root`.
fn spec_of(root: &Utf8PathBuf, prompt: &Utf8PathBuf, agent: &AgentId) -> SessionSpec {
    SessionSpec {
        session: SessionName::for_agent(agent).unwrap(),
        agent: agent.clone(),
        task: TaskId::parse("TASK-BENCH").unwrap(),
        argv: vec!["sleep".into(), "60".into()],
        workdir: root.clone(),
        env: Vec::new(),
        prompt_file: prompt.clone(),
        log_file: root.join(format!("logs/{agent}_stream.jsonl")),
    }
}

fn benches(c: &mut Criterion) {
    let socket = format!("fleet-bench-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
    let backend = TmuxBackend::new(Server::Name(socket.clone()), vec![WRAP.to_owned()])
        .with_kill_grace(Duration::from_millis(200));
    let prompt = root.join("prompt.txt");
    fs_err::write(&prompt, "bench").unwrap();
    // A long-lived session keeps the server up, as in real use (and both sides pay no start).
    let keep = Command::new("tmux")
        .args([
            "-f",
            "/dev/null",
            "-L",
            &socket,
            "new-session",
            "-d",
            "-s",
            "keepalive",
            "sleep",
            "3600",
        ])
        .status()
        .unwrap();
    assert!(keep.success());
    let n = AtomicU32::new(0);

    let mut group = c.benchmark_group("tmux");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_millis(500));
    group.bench_function("backend_start_probe_kill", |b| {
        b.iter(|| {
            let agent =
                AgentId::parse(&format!("bench-{}", n.fetch_add(1, Ordering::Relaxed))).unwrap();
            let spec = spec_of(&root, &prompt, &agent);
            backend.start(&spec).unwrap();
            backend.open_gate(&spec.session).unwrap();
            assert_eq!(backend.probe(&spec.session).unwrap(), Liveness::Alive);
            backend.kill(&spec.session, &agent).unwrap();
        });
    });
    group.bench_function("raw_tmux_start_probe_kill", |b| {
        b.iter(|| {
            let agent =
                AgentId::parse(&format!("raw-{}", n.fetch_add(1, Ordering::Relaxed))).unwrap();
            // The backend's own command lines, run raw: the floor cannot drift from them.
            let floor = backend.floor(&spec_of(&root, &prompt, &agent)).unwrap();
            for line in [&floor.start, &floor.probe, &floor.kill] {
                let ok = Command::new(&line[0]).args(&line[1..]).output().unwrap();
                assert!(ok.status.success(), "{line:?}");
            }
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
