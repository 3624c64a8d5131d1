//! `cargo xtask bench`: runs every benchmark and writes docs/BENCHMARKS.md with the machine, the
//! figures, and each ratio measured in the same run. Benchmarks measure; tests never time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python server's status update cost at 10 / 1,000 / 10,000 agents (ms), as measured on it
/// and reported in the registry issue; not measured at 100,000.
const PYTHON_STATUS_UPDATE_MS: [(u32, Option<f64>); 4] = [
    (10, Some(0.5)),
    (1_000, Some(20.0)),
    (10_000, Some(204.0)),
    (100_000, None),
];

pub(crate) fn run() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let root = workspace_root()?;
    let status = Command::new(&cargo)
        .args([
            "bench",
            "-p",
            "sqlite-registry",
            "-p",
            "tmux-backend",
            "-p",
            "fleet",
            "--benches",
        ])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    if !status.success() {
        return Err(format!("cargo bench failed ({status})"));
    }
    build_release(&cargo, &root)?;
    eprintln!("xtask bench: whole-process benchmarks (a few minutes)");
    let scratch = root.join("target/xtask-bench");
    let p = crate::procs::run(&root.join("target/release/fleet"), &scratch)?;
    let (status_first, status_later) =
        crate::status_bench::run(&root.join("target/release/fleet"), &scratch)?;
    let (worktree_ours, worktree_floor) =
        crate::worktree_bench::run(&root.join("target/release/fleet"), &scratch)?;
    let batch = crate::batch_bench::run(&root.join("target/release/fleet"), &scratch)?;
    let remote = crate::remote_bench::run(&root.join("target/release/fleet"), &scratch)?;
    let crit = root.join("target/criterion");
    let mut md = String::new();
    md.push_str("# Benchmarks\n\nWritten by `cargo xtask bench` (criterion; mean of the samples, ");
    md.push_str("with the 95% interval's bounds). Do not edit by hand: run it again.\n\n");
    md.push_str("## Machine\n\n");
    for (what, value) in machine() {
        let _ = writeln!(md, "- {what}: {value}");
    }

    let goals = goals_rows(
        &crit,
        &p,
        (&status_first, &status_later),
        (&worktree_ours, &worktree_floor),
        &batch,
        &remote,
    )?;
    md.push_str("\n## Goals\n\nEvery figure with a goal, from this run. Floors are the least the same work can cost: the backend's own tmux command lines run raw (`TmuxBackend::floor`, `list_floor`), the registry file read and replaced whole with no parsing at all, or the database's rows read and each entry parsed with nothing built from it, on one thread (the read itself parses on every core).\n\n");
    let table = crate::goals::table(&goals);
    md.push_str(&table);
    eprint!("{table}");
    let not_met = crate::goals::not_met(&goals);
    if !not_met.is_empty() {
        md.push_str("\nWhere a goal is not met, what stands between the figure and its goal, and what was tried:\n\n");
        md.push_str(&not_met);
        eprint!("{not_met}");
    }

    md.push_str(&registries_section(&crit, &p)?);
    md.push_str(
        "\nReading it: a write takes the two flocks and fsyncs each file it replaces (never its \
         directory: docs/FAULTS.md), so that a crash never leaves a torn or lost registry; the \
         Python server did neither, which is why it is faster at 10 agents. A status update \
         finds its entry by the id's text, parses and writes that entry alone, moves the \
         counters, and copies every other byte; the index is written only when a status in it \
         changes. Its floor is the file itself: the format (the Python server reads the whole \
         file) requires it replaced whole, and the column “JSON file read + replaced” is only that — read, write, \
         fsync, rename, no parsing at all.\n",
    );

    md.push_str("\n## tmux backend (issue 4)\n\n");
    md.push_str("Start + probe + kill of one agent (`sleep 60`) through `TmuxBackend` — one ");
    md.push_str(
        "`new-session` invocation with its options and tags, one `list-panes`, the verified ",
    );
    md.push_str(
        "kill (`list-panes`, a `/proc` scan, `kill-session`, checks) — against the raw tmux ",
    );
    md.push_str("commands that needs, run as processes, on the same server in the same run.\n\n");
    let backend = estimate(&crit, "tmux/backend_start_probe_kill")?;
    let raw = estimate(&crit, "tmux/raw_tmux_start_probe_kill")?;
    md.push_str("| what | time |\n|---|---:|\n");
    let _ = writeln!(md, "| backend: start + probe + kill | {} |", backend.show());
    let _ = writeln!(
        md,
        "| raw tmux: new-session + list-panes + kill-session | {} |",
        raw.show()
    );
    let _ = writeln!(
        md,
        "| ratio backend / raw | {:.2}× |",
        backend.mean / raw.mean
    );

    md.push_str("\n## Deployment overhead (issues 8 and 16)\n\n");
    md.push_str(
        "A deployment to Live with startup grace 0 against its floor: the backend's own tmux \
         command lines (`TmuxBackend::floor`) — `new-session` with its options and tags, and one \
         liveness probe — run raw. fleet makes the probe of a session it started without tmux \
         (its pane process, by PID and start time), so its one tmux call is the `new-session`; \
         the table at the top compares it with that too. What fleet adds — validation, the \
         intent (flocked; synced only with `--worktree`), the prompt file, the gate, the \
         registration (two locks, two atomic writes, two fsyncs), the commit and the \
         confirmation (the task file alone, spliced) — is the difference. docs/FAULTS.md says \
         what each remaining fsync protects.\n\n",
    );
    let lib = estimate(&crit, "deploy/library_deploy_to_live")?;
    let lib_raw = estimate(&crit, "deploy/raw_tmux_new_session_and_probe")?;
    md.push_str("| what | time | ratio |\n|---|---:|---:|\n");
    let _ = writeln!(
        md,
        "| `fleet deploy` as a process (release build) | {} | {:.2}× |",
        p.deploy_fleet.show(),
        p.deploy_fleet.mean() / p.deploy_raw.mean()
    );
    let _ = writeln!(
        md,
        "| raw tmux: `new-session …` + `list-panes`, as processes | {} | 1× |",
        p.deploy_raw.show()
    );
    let _ = writeln!(
        md,
        "| library: `Deployer::deploy` (criterion) | {} | {:.2}× |",
        lib.show(),
        lib.mean / lib_raw.mean
    );
    let _ = writeln!(
        md,
        "| raw tmux, same two calls (criterion, same run) | {} | 1× |",
        lib_raw.show()
    );
    let _ = writeln!(
        md,
        "| raw tmux: `new-session …` alone, as a process | {} | {:.2}× |",
        p.deploy_start_only.show(),
        p.deploy_fleet.mean() / p.deploy_start_only.mean()
    );

    md.push_str(
        "\n## Bulk (issue 8)\n\n100 agents (`sleep 300`) into one task, startup grace 0, each ",
    );
    md.push_str("`fleet deploy` a process.\n\n| how | total | per agent |\n|---|---:|---:|\n");
    for (how, d) in [
        ("one after another", p.bulk_sequential),
        ("8 concurrent deployers", p.bulk_concurrent),
    ] {
        let _ = writeln!(
            md,
            "| {how} | {:.2} s | {:.1} ms |",
            d.as_secs_f64(),
            d.as_secs_f64() * 10.0
        );
    }
    md.push_str(
        "\nThe goal was 100 agents Live within 2 s plus one startup grace: with a grace, each ",
    );
    md.push_str(
        "deployment waits it out, so 8 deployers take about ⌈100/8⌉ graces; 100 concurrent ",
    );
    md.push_str("deployers would take one.\n");

    md.push_str("\n## Reconcile with nothing to do (issue 8)\n\n");
    let _ = writeln!(
        md,
        "1,000 live fleet sessions (listed by one tmux call) and 10,000 registry entries (1,000 running, 9,000 completed): `fleet reconcile` {}.",
        p.reconcile_idle.show()
    );

    md.push_str("\n## Reconcile of 1,000 stale agents (issue 12)\n\n");
    let _ = writeln!(
        md,
        "1,000 running agents of one task whose sessions are gone, recorded by one `fleet reconcile` (one registry transaction, one scan for their processes): {} — goal under 1 s.",
        p.reconcile_stale.show()
    );

    md.push_str("\n## Status of 100 agents with 1 MB logs (issue 14)\n\n");
    md.push_str(&status_section(&status_first, &status_later));
    md.push_str("\n## A batch of 20 (issue 26)\n\n");
    md.push_str(&crate::batch_bench::section(&batch));
    md.push_str("\n## A deployment on another host (issue 28)\n\n");
    md.push_str(&crate::remote_bench::section(&remote));
    md.push_str("\n## Deploying into a worktree (issue 13)\n\n");
    md.push_str(&crate::worktree_bench::section(
        &worktree_ours,
        &worktree_floor,
    ));

    md.push_str("\n## Peak memory (issue 8)\n\n| process | max RSS |\n|---|---:|\n");
    let _ = writeln!(
        md,
        "| `fleet deploy` | {:.1} MiB |",
        p.rss_deploy_kb as f64 / 1024.0
    );
    let _ = writeln!(
        md,
        "| `fleet mcp` answering 1,000 `get_real_task_status` calls ({:.2} ms per call) | {:.1} MiB |",
        p.mcp_status_calls.as_secs_f64(),
        p.rss_mcp_kb as f64 / 1024.0
    );

    md.push_str("\n## The default startup grace\n\n| failing start | time |\n|---|---:|\n");
    for (what, stats) in &p.grace {
        let _ = writeln!(md, "| {what} | {} |", stats.show());
    }
    md.push_str(
        "\nThe default is 1000 ms. A deployment is Live only if its agent is still alive at the \
         end of the window, so the window must outlast the slowest start that fails. ",
    );
    let slowest = p
        .grace
        .iter()
        .filter(|(what, _)| what.contains("run directly"))
        .max_by(|a, b| a.1.mean().total_cmp(&b.1.mean()));
    match slowest {
        Some((what, stats)) => {
            let _ = write!(
                md,
                "The slowest measured here, {what}, dies in {:.0} ms on an idle machine: 1000 ms \
                 leaves {:.1}× that, for a machine busy starting other agents. ",
                stats.mean(),
                1000.0 / stats.mean()
            );
        }
        None => md.push_str(
            "Claude Code is not installed on this machine, so its failing start (the slowest \
             known) is not measured here. ",
        ),
    }
    md.push_str(
        "The window costs a failure nothing — fleet probes the agent at growing intervals within \
         it and reports a death as soon as it sees one (see the `fleet deploy` rows) — and a \
         success pays it once. The Python server slept a fixed 2 s on every deployment. ",
    );
    md.push_str("`--startup-grace-ms` and `FLEET_STARTUP_GRACE_MS` change it.\n");

    let out = root.join("docs/BENCHMARKS.md");
    std::fs::write(&out, md).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!("xtask bench: wrote {}", out.display());
    Ok(())
}

struct Estimate {
    mean: f64,
    low: f64,
    high: f64,
}

impl Estimate {
    fn show(&self) -> String {
        format!("{} ({}–{})", ms(self.mean), ms(self.low), ms(self.high))
    }
}

fn ms(ns: f64) -> String {
    let ms = ns / 1e6;
    if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn estimate(crit: &Path, id: &str) -> Result<Estimate, String> {
    let path = crit.join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mean = &v["mean"];
    let num = |x: &serde_json::Value| {
        x.as_f64()
            .ok_or_else(|| format!("{}: no mean", path.display()))
    };
    Ok(Estimate {
        mean: num(&mean["point_estimate"])?,
        low: num(&mean["confidence_interval"]["lower_bound"])?,
        high: num(&mean["confidence_interval"]["upper_bound"])?,
    })
}

fn machine() -> Vec<(&'static str, String)> {
    let cmd = |prog: &str, args: &[&str]| {
        Command::new(prog)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".into())
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown".to_owned(), |s| s.trim().to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or("unknown".into(), |kb| format!("{} GiB", kb / 1024 / 1024));
    vec![
        ("CPU", format!("{model}, {cores} cores available")),
        ("memory", mem),
        ("kernel", cmd("uname", &["-r"])),
        ("tmux", cmd("tmux", &["-V"])),
        ("rustc", cmd("rustc", &["-V"])),
        ("date", cmd("date", &["-u", "+%Y-%m-%d %H:%M UTC"])),
    ]
}

fn workspace_root() -> Result<PathBuf, String> {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").map_err(|_| "run through cargo xtask")?;
    Path::new(&manifest)
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "xtask has no parent directory".into())
}

/// The three registries side by side: register, status update and precheck at each size, the
/// reads of a 10,000-agent task, and PostgreSQL's 8 deployers on two hosts.
fn registries_section(crit: &Path, p: &crate::procs::Results) -> Result<String, String> {
    let mut md = String::new();
    md.push_str(
        "\n## Registry: JSON, SQLite and PostgreSQL side by side (issues 3, 15 and 27)\n\n",
    );
    md.push_str(
        "One `register` (JSON: a locked transaction over the task registry and the global \
         index, both files parsed, limits checked, both rewritten atomically with fsyncs; \
         SQLite: one `BEGIN IMMEDIATE` transaction, limits by two indexed queries, one insert; \
         PostgreSQL: one transaction holding the task row's lock (`SELECT … FOR UPDATE`), the \
         same queries, one insert, over TCP on 127.0.0.1 to a private server that flushes every \
         commit to disk) and one status update, with N agents already in the task, all in the \
         same run; and a deployment's precheck, its limit check before anything exists (JSON: \
         the file parsed by a registry made anew, nothing built from it; SQLite and PostgreSQL: \
         counts and indexed lookups).\n\n",
    );
    md.push_str(
        "| agents in the task | JSON register | SQLite register | PostgreSQL register | JSON status update | SQLite status update | PostgreSQL status update | JSON file read + replaced, no parsing | Python server, status update | JSON precheck | SQLite precheck | PostgreSQL precheck |\n",
    );
    md.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (n, python) in PYTHON_STATUS_UPDATE_MS {
        let mut cells = vec![n.to_string()];
        for id in [
            "registry/register",
            "sqlite/register",
            "postgres/register",
            "registry/status_update",
            "sqlite/status_update",
            "postgres/status_update",
            "registry/rewrite_floor",
        ] {
            cells.push(estimate(crit, &format!("{id}/{n}"))?.show());
        }
        cells.push(python.map_or_else(|| "—".to_owned(), |p| format!("{p} ms")));
        for id in ["registry/precheck", "sqlite/precheck", "postgres/precheck"] {
            cells.push(estimate(crit, &format!("{id}/{n}"))?.show());
        }
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    let _ = writeln!(
        md,
        "\nA read of a 10,000-agent task (`read_task`, every agent's record): JSON {}, SQLite {}, PostgreSQL {}. SQLite's rows alone: {}; its rows with every entry parsed, nothing built from it: {}; its rows with every entry built into its typed entry: {}. PostgreSQL's rows alone: {}; with every entry parsed, nothing built: {}. An idle `fleet reconcile` over 1,000 sessions and 10,000 entries: JSON {}, SQLite {}.",
        estimate(crit, "registry/read/10000")?.show(),
        estimate(crit, "sqlite/read/10000")?.show(),
        estimate(crit, "postgres/read/10000")?.show(),
        estimate(crit, "sqlite/read_rows/10000")?.show(),
        estimate(crit, "sqlite/read_floor/10000")?.show(),
        estimate(crit, "sqlite/read_entries/10000")?.show(),
        estimate(crit, "postgres/read_rows/10000")?.show(),
        estimate(crit, "postgres/read_floor/10000")?.show(),
        p.reconcile_idle.show(),
        p.reconcile_idle_sqlite.show(),
    );
    let deployers = estimate(crit, "postgres/deployers")?;
    let registrations = 200.0;
    let _ = writeln!(
        md,
        "\n8 deployers on two hosts (4 each, each with its own connection) registering 25 agents each into one PostgreSQL task at once: the 200 registrations take {} — {:.0} registrations a second; every round the database holds exactly the 200, 100 on each host (none lost).",
        deployers.show(),
        registrations / (deployers.mean / 1e9),
    );
    Ok(md)
}

/// Every figure with a goal.
fn goals_rows(
    crit: &Path,
    p: &crate::procs::Results,
    status: (&crate::procs::Stats, &crate::procs::Stats),
    worktree: (&crate::procs::Stats, &crate::procs::Stats),
    batch: &crate::batch_bench::Batch,
    remote: &crate::remote_bench::Remote,
) -> Result<Vec<crate::goals::Row>, String> {
    use crate::goals::{Goal, Row};
    let ns = |id: &str| estimate(crit, id).map(|e| e.mean / 1e6);
    let lib = ns("deploy/library_deploy_to_live")?;
    let lib_floor = ns("deploy/raw_tmux_new_session_and_probe")?;
    let list = p.list_floor.mean();
    let row = |what: &str, ms: f64, floor: Option<(&str, f64)>, goal: Goal, why: &str| Row {
        what: what.to_owned(),
        ms,
        floor: floor.map(|(w, f)| (w.to_owned(), f)),
        goal,
        why: why.to_owned(),
    };
    let read_why = format!(
        "building the records is the cost. On one thread, the rows alone take {:.2} ms, the \
         rows with every entry parsed {:.2} ms, the rows with every entry built into the \
         registry's typed entry {:.2} ms; the read parses on every core as SQLite steps through \
         the rows. Done, in order (one machine): the fields fleet does not interpret kept as \
         their JSON text, two allocations an agent instead of about 25 (28.8 → 17.3 ms); pages \
         read through a memory map (→ 14.0 ms); entries parsed on every core (→ 11.9 ms); room \
         for a record's fields made once, and keys borrowed from the row (→ 9.6–10.0 ms). Tried \
         and left out: mimalloc as the allocator (→ 7.4 ms, but `fleet deploy` took 17–23 ms \
         instead of 8 and `fleet mcp` peaked at 53 MiB instead of 13)",
        ns("sqlite/read_rows/10000")?,
        ns("sqlite/read_floor/10000")?,
        ns("sqlite/read_entries/10000")?,
    );
    Ok(vec![
        row(
            "`fleet deploy`, whole process (issue 16)",
            p.deploy_fleet.mean(),
            Some(("new-session + probe, raw", p.deploy_raw.mean())),
            Goal::Ratio(1.5),
            "what fleet adds to its tmux calls: its own process, the intent, the prompt file, \
             the gate, the registration (two locks, two atomic writes, two fsyncs) and the \
             confirmation (one spliced write, one fsync); see the deployment section",
        ),
        row(
            "`fleet deploy`, against the one tmux call it still makes",
            p.deploy_fleet.mean(),
            Some(("new-session, raw", p.deploy_start_only.mean())),
            Goal::Ratio(1.5),
            "fleet probes the agent it started from its pane process (`/proc`) rather than by a \
             second tmux call, so the one call left is compared alone here. Above it: fleet's own \
             process start (exec, dynamic linking and argument parsing of a 13 MB binary: about \
             what a tmux client's start costs), the registration's two atomic writes with their \
             fsyncs and the confirmation's one (docs/FAULTS.md says what each protects), the \
             intent and the prompt file. Tried without effect: fat LTO with one codegen unit, \
             packed relative relocations. Left out on purpose: writing the intent while tmux \
             starts — until the intent exists, a session nothing names is an orphan to a \
             concurrent `fleet reconcile`, which would kill a deployment in flight",
        ),
        row(
            "`Deployer::deploy`, library (criterion)",
            lib,
            Some(("new-session + probe, raw", lib_floor)),
            Goal::Ratio(1.5),
            "the intent, the prompt file, the gate and the registration's writes",
        ),
        row(
            "`fleet deploy --worktree`, 10,000 files (issue 13)",
            worktree.0.mean(),
            Some(("git worktree add + raw tmux", worktree.1.mean())),
            Goal::Ratio(1.3),
            "git's own checkout is the floor; fleet adds the branch checks and the registration",
        ),
        row(
            "`fleet deploy --count 20`, a batch (issue 26)",
            batch.batch.mean(),
            Some(("20 × new-session, raw, one after another", batch.raw.mean())),
            Goal::Ratio(crate::batch_bench::GOAL),
            "the members' sessions start in parallel; fleet adds its own process, 20 intents \
             and prompt files, one registration and one confirmation of all members",
        ),
        row(
            "`fleet deploy --host`, over ssh (issue 28)",
            remote.remote.mean(),
            Some((
                "`fleet deploy` here + one ssh round trip + 10 ms",
                remote.local.mean() + remote.round_trip.mean() + crate::remote_bench::GOAL_EXTRA_MS,
            )),
            Goal::Ratio(1.0),
            "the remote fleet's own start and its reading of the request, beyond the round \
             trip's shell",
        ),
        row(
            "idle `fleet reconcile`, 1,000 sessions + 10,000 entries (issue 16)",
            p.reconcile_idle.mean(),
            Some(("its tmux listing, raw", list)),
            Goal::Millis(100.0),
            "tmux's own listing of 1,000 sessions is most of it; the registry is read while \
             tmux lists (`Registry::prefetch`)",
        ),
        row(
            "JSON status update at 10,000 agents (issue 16)",
            ns("registry/status_update/10000")?,
            Some((
                "file read + replaced, no parsing",
                ns("registry/rewrite_floor/10000")?,
            )),
            Goal::Millis(20.0),
            "the floor is the file itself: the Python server's format requires the task \
             registry replaced whole, and the floor is only that (read, write, fsync, rename); \
             fleet adds finding and parsing the one entry, and the locks",
        ),
        row(
            "SQLite status update at 100,000 agents (issue 15)",
            ns("sqlite/status_update/100000")?,
            Some(("JSON, same run", ns("registry/status_update/100000")?)),
            Goal::Millis(1.0),
            "one indexed UPDATE in one transaction",
        ),
        row(
            "SQLite read of a 10,000-agent task (issue 15)",
            ns("sqlite/read/10000")?,
            Some((
                "rows read, entries parsed, nothing built (one thread)",
                ns("sqlite/read_floor/10000")?,
            )),
            Goal::Millis(10.0),
            &read_why,
        ),
        row(
            "PostgreSQL status update at 100,000 agents (issue 27)",
            ns("postgres/status_update/100000")?,
            Some(("SQLite, same run", ns("sqlite/status_update/100000")?)),
            Goal::Millis(2.0),
            "one indexed UPDATE in one transaction, and its commit flushed to disk by the server",
        ),
        row(
            "PostgreSQL read of a 10,000-agent task (issue 27)",
            ns("postgres/read/10000")?,
            Some((
                "rows read, entries parsed, nothing built",
                ns("postgres/read_floor/10000")?,
            )),
            Goal::Millis(20.0),
            &format!(
                "the rows are most of it: the server's rows alone, copied out of the client, \
                 take {:.2} ms, and {:.2} ms with every entry parsed; fleet adds building the \
                 records. Done: the statistics and visibility map brought up to date after an \
                 import (`VACUUM ANALYZE`; 51 → 39 ms on one machine). Not yet tried: parsing \
                 on every core as the SQLite read does",
                ns("postgres/read_rows/10000")?,
                ns("postgres/read_floor/10000")?,
            ),
        ),
        row(
            "SQLite idle `fleet reconcile`, 1,000 sessions + 10,000 entries (issue 15)",
            p.reconcile_idle_sqlite.mean(),
            Some(("its tmux listing, raw", list)),
            Goal::Millis(50.0),
            "tmux's own listing of 1,000 sessions is most of it; the rosters are read while \
             tmux lists",
        ),
        row(
            "`fleet status` of a 1,000-agent task (issue 16)",
            p.status_1000.mean(),
            Some(("its tmux listing, raw", list)),
            Goal::Millis(30.0),
            "tmux's own listing of 1,000 sessions is most of it; the registry is read and the \
             agents' logs are read ahead while tmux lists",
        ),
        row(
            "`fleet status`, 100 agents with 1 MB logs, later look (issue 14)",
            status.1.mean(),
            Some(("the first look", status.0.mean())),
            Goal::Millis(50.0),
            "a later look reads only what each log gained since the last",
        ),
        row(
            "`fleet reconcile` of 1,000 stale agents (issue 12)",
            p.reconcile_stale.mean(),
            None,
            Goal::Millis(1000.0),
            "one registry transaction for the task, one scan of `/proc` for the agents' processes",
        ),
    ])
}

/// The status benchmark's section.
fn status_section(first: &crate::procs::Stats, later: &crate::procs::Stats) -> String {
    format!(
        "`fleet --json status` of a task with 100 live agents, each with a 1 MB stream-json log. The first look reads every log whole: {}. Each later look, after one line was appended to every log, reads only the new lines (the readers' places are kept in `.fleet/activity/<task>.json`): {} — goal under 50 ms, {}.\n",
        first.show(),
        later.show(),
        if later.mean() < 50.0 {
            "met"
        } else {
            "not met"
        }
    )
}

/// `cargo xtask bench-status`: only the status benchmark, printed.
pub(crate) fn status_only() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let root = workspace_root()?;
    build_release(&cargo, &root)?;
    let scratch = root.join("target/xtask-bench");
    let (first, later) = crate::status_bench::run(&root.join("target/release/fleet"), &scratch)?;
    eprint!("{}", status_section(&first, &later));
    Ok(())
}

/// `cargo xtask bench-deploy`: only `fleet deploy` against its floor, printed.
pub(crate) fn deploy_only() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let root = workspace_root()?;
    build_release(&cargo, &root)?;
    let scratch = root.join("target/xtask-bench");
    let env = crate::procs::Env::new(&root.join("target/release/fleet"), &scratch, "deploy")?;
    let task = env.task()?;
    env.tmux(&["new-session", "-d", "-s", "keepalive", "sleep", "3600"])?;
    let (ours, floor, start) = crate::procs::deploy_overhead(&env, &task, 40)?;
    eprintln!(
        "fleet deploy: {}\nfloor (start + probe, raw): {}\nratio {:.2}x (goal 1.5x)\nstart alone, raw: {} (ratio {:.2}x)",
        ours.show(),
        floor.show(),
        ours.mean() / floor.mean(),
        start.show(),
        ours.mean() / start.mean()
    );
    Ok(())
}

/// `cargo xtask bench-remote`: only `fleet deploy --host` against a local deployment plus one
/// ssh round trip, printed.
pub(crate) fn remote_only() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let root = workspace_root()?;
    build_release(&cargo, &root)?;
    let r = crate::remote_bench::run(
        &root.join("target/release/fleet"),
        &root.join("target/xtask-bench"),
    )?;
    eprint!("{}", crate::remote_bench::section(&r));
    Ok(())
}

/// `cargo xtask bench-quick`: the whole-process figures issue 16 set goals for, printed.
pub(crate) fn quick() -> Result<(), String> {
    deploy_only()?;
    let root = workspace_root()?;
    let fleet = root.join("target/release/fleet");
    let scratch = root.join("target/xtask-bench");
    let (idle, list) = crate::procs::idle_reconcile(&fleet, &scratch)?;
    eprintln!(
        "idle reconcile (1,000 sessions, 10,000 entries): {} (goal 100 ms)\nits tmux listing, raw: {}",
        idle.show(),
        list.show()
    );
    let stale = crate::procs::stale_reconcile(&fleet, &scratch)?;
    eprintln!(
        "reconcile of 1,000 stale agents: {} (goal 1 s)",
        stale.show()
    );
    let status = crate::procs::status_1000(&fleet, &scratch)?;
    eprintln!(
        "status of a 1,000-agent task: {} (goal 30 ms)",
        status.show()
    );
    Ok(())
}

/// `cargo xtask bench-batch`: only the batch benchmark, printed.
pub(crate) fn batch_only() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let root = workspace_root()?;
    build_release(&cargo, &root)?;
    let scratch = root.join("target/xtask-bench");
    let b = crate::batch_bench::run(&root.join("target/release/fleet"), &scratch)?;
    eprint!("{}", crate::batch_bench::section(&b));
    Ok(())
}

/// `cargo xtask bench-worktree`: only the worktree benchmark, printed.
pub(crate) fn worktree_only() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let root = workspace_root()?;
    build_release(&cargo, &root)?;
    let scratch = root.join("target/xtask-bench");
    let (ours, floor) = crate::worktree_bench::run(&root.join("target/release/fleet"), &scratch)?;
    eprint!("{}", crate::worktree_bench::section(&ours, &floor));
    Ok(())
}

/// `cargo build --release -p fleet --bins`: the binaries the whole-process benchmarks run.
fn build_release(cargo: &str, root: &Path) -> Result<(), String> {
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "fleet", "--bins"])
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot build fleet: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --release failed ({status})"));
    }
    Ok(())
}
