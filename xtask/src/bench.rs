//! `cargo xtask bench`: runs every benchmark and writes docs/BENCHMARKS.md with the machine, the
//! figures, and each ratio measured in the same run. Benchmarks measure; tests never time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python server's status update cost at 10 / 1,000 / 10,000 agents (ms), as measured on it
/// and reported in the registry issue.
const PYTHON_STATUS_UPDATE_MS: [(u32, f64); 3] = [(10, 0.5), (1_000, 20.0), (10_000, 204.0)];

pub(crate) fn run() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let root = workspace_root()?;
    let status = Command::new(&cargo)
        .args(["bench", "-p", "registry", "-p", "tmux-backend", "--benches"])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    if !status.success() {
        return Err(format!("cargo bench failed ({status})"));
    }
    let crit = root.join("target/criterion");
    let mut md = String::new();
    md.push_str("# Benchmarks\n\nWritten by `cargo xtask bench` (criterion; mean of the samples, ");
    md.push_str("with the 95% interval's bounds). Do not edit by hand: run it again.\n\n");
    md.push_str("## Machine\n\n");
    for (what, value) in machine() {
        let _ = writeln!(md, "- {what}: {value}");
    }

    md.push_str("\n## Registry (issue 3)\n\n");
    md.push_str(
        "One `register` (a locked transaction over the task registry and the global index, ",
    );
    md.push_str(
        "both files parsed, limits checked, both rewritten atomically with fsyncs) and one ",
    );
    md.push_str("status update, with N agents already in the task.\n\n");
    md.push_str(
        "| agents in the task | register | status update | Python server, status update |\n",
    );
    md.push_str("|---:|---:|---:|---:|\n");
    for (n, python) in PYTHON_STATUS_UPDATE_MS {
        let reg = estimate(&crit, &format!("registry/register/{n}"))?;
        let upd = estimate(&crit, &format!("registry/status_update/{n}"))?;
        let _ = writeln!(
            md,
            "| {n} | {} | {} | {python} ms |",
            reg.show(),
            upd.show()
        );
    }
    md.push_str(
        "\nReading it: every write here takes two flocks and four fsyncs (each file, then its ",
    );
    md.push_str(
        "directory) so that a crash never leaves a torn or lost registry; the Python server ",
    );
    md.push_str(
        "did neither, which is why it is faster at 10 agents. From 1,000 agents on the cost is ",
    );
    md.push_str("parsing and rewriting the JSON (O(agents) per write), where fleet is ahead.\n");

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
