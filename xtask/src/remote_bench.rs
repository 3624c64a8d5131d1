//! A deployment on another host (`fleet deploy --host`) against the same deployment here plus
//! one ssh round trip on the warm master connection: host-b is a private `sshd` on loopback
//! (testkit's, the tests' own), both hosts on one private PostgreSQL that flushes every commit.
//! Interleaved, one round after another.

use std::path::Path;
use std::process::{Command, Stdio};

use testkit::postgres::PgServer;
use testkit::sshd::{SshClient, SshServer};

use crate::procs::{Env, Stats, time};

/// Rounds (each: one local deployment, one remote, one round trip).
const RUNS: usize = 20;
/// The goal: at most the local deployment plus one round trip plus this many milliseconds.
pub(crate) const GOAL_EXTRA_MS: f64 = 10.0;

/// What one run measured, in milliseconds.
pub(crate) struct Remote {
    /// `fleet deploy` here.
    pub(crate) local: Stats,
    /// `fleet deploy --host host-b`.
    pub(crate) remote: Stats,
    /// `ssh hostb true` on the warm master connection, with fleet's options.
    pub(crate) round_trip: Stats,
}

fn deploy(task: &str, host: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = vec!["deploy".into()];
    if let Some(h) = host {
        args.extend(["--host".into(), h.into()]);
    }
    args.extend(
        [
            "--task",
            task,
            "--type",
            "bench",
            "--prompt",
            "p",
            "--allow-duplicate",
            "--startup-grace-ms",
            "0",
            "--",
            "sleep",
            "300",
        ]
        .map(String::from),
    );
    args
}

pub(crate) fn run(fleet: &Path, scratch: &Path) -> Result<Remote, String> {
    let pg = PgServer::start_durable();
    let url = pg.new_database();
    let b = Env::new(fleet, scratch, "rb")?;
    let mut client = SshClient::new();
    let tmux_b = b.tmux_tmpdir.to_string_lossy().into_owned();
    let sshd = SshServer::start_with(&client, &[("TMUX_TMPDIR", &tmux_b)]);
    client.add("hostb", &sshd, true);
    let mut a = Env::new(fleet, scratch, "ra")?;
    let config = client.config_file().to_string();
    a.settings = [
        ("FLEET_REGISTRY", "postgres"),
        ("FLEET_DATABASE_URL", url.as_str()),
        ("FLEET_HOST", "host-a"),
        ("FLEET_SSH_CONFIG", config.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let fleet_path = fleet.to_string_lossy().into_owned();
    let b_root = b.root.to_string_lossy().into_owned();
    a.ok(&[
        "host",
        "add",
        "host-b",
        "--ssh",
        "hostb",
        "--remote-root",
        &b_root,
        "--remote-socket",
        &b.socket,
        "--fleet",
        &fleet_path,
    ])?;
    let task = a.task()?;
    // The first call makes the master connection and the remote workspace.
    let first = deploy(&task, Some("host-b"));
    a.ok(&first.iter().map(String::as_str).collect::<Vec<_>>())?;
    // The master's socket, where fleet's ssh client puts it.
    let control = {
        let dir =
            camino::Utf8PathBuf::from(a.root.join(".fleet/ssh").to_string_lossy().into_owned());
        let ssh = ssh_hosts::Ssh::new(dir, None).map_err(|e| e.to_string())?;
        let name = deploy_core::HostName::parse("host-b").map_err(|e| e.to_string())?;
        let entry = ssh_hosts::HostEntry {
            ssh: "hostb".into(),
            root: Some(b_root.clone()),
            socket: Some(b.socket.clone()),
            fleet: Some(fleet_path.clone()),
        };
        ssh.control_path(&name, &entry)
    };
    let (mut local, mut remote, mut round_trip) = (Vec::new(), Vec::new(), Vec::new());
    let here = deploy(&task, None);
    let there = deploy(&task, Some("host-b"));
    for _ in 0..RUNS {
        local.push(time(|| a.ok(&here.iter().map(String::as_str).collect::<Vec<_>>()))?.0);
        remote.push(time(|| a.ok(&there.iter().map(String::as_str).collect::<Vec<_>>()))?.0);
        round_trip.push(time(|| ssh_true(&config, &control))?.0);
    }
    // The master connection ends with the benchmark.
    let _ = a.ok(&["host", "remove", "host-b"]);
    drop(sshd);
    drop(pg);
    Ok(Remote {
        local: Stats(local),
        remote: Stats(remote),
        round_trip: Stats(round_trip),
    })
}

/// One ssh round trip on the master connection fleet made: `ssh hostb true` with fleet's
/// options (the same control socket).
fn ssh_true(config: &str, control: &camino::Utf8Path) -> Result<(), String> {
    let status = Command::new("ssh")
        .args([
            "-F",
            config,
            "-o",
            "BatchMode=yes",
            "-o",
            "ControlMaster=auto",
        ])
        .arg("-o")
        .arg(format!("ControlPath={control}"))
        .args(["-o", "ControlPersist=120", "-T", "--", "hostb", "true"])
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("ssh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("ssh hostb true: {status}"))
    }
}

/// The section of docs/BENCHMARKS.md.
pub(crate) fn section(r: &Remote) -> String {
    let floor = r.local.mean() + r.round_trip.mean() + GOAL_EXTRA_MS;
    format!(
        "`fleet deploy --host host-b --startup-grace-ms 0` — host-b's own fleet run over ssh \
         (its request on stdin), its deployment with its own intent, prompt file, session and \
         registration in the shared PostgreSQL, its answer — against the same `fleet deploy` \
         here, and one `ssh hostb true` on the warm master connection; host-b is a private \
         `sshd` on loopback; interleaved, {RUNS} rounds.\n\n\
         | what | time |\n|---|---:|\n\
         | `fleet deploy --host host-b` | {} |\n\
         | `fleet deploy` here | {} |\n\
         | `ssh hostb true`, warm master | {} |\n\n\
         Goal: at most here + one round trip + {GOAL_EXTRA_MS} ms = {floor:.2} ms; measured \
         {:.2} ms — {}.\n",
        r.remote.show(),
        r.local.show(),
        r.round_trip.show(),
        r.remote.mean(),
        if r.remote.mean() <= floor {
            "met"
        } else {
            "not met"
        }
    )
}
