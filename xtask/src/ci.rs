//! `cargo xtask ci`: what CI runs, and what to run before pushing.

use std::process::Command;
use std::time::Instant;

/// The crash tests, run against each registry: they need the failpoints compiled in (never in
/// release builds).
const CRASH_TESTS: &[&str] = &[
    "test",
    "-p",
    "fleet",
    "--features",
    "failpoints",
    "--test",
    "crash",
];

/// The property tests' case count unless `PROPTEST_CASES` says otherwise.
const PROPTEST_CASES: &str = "2000";

pub(crate) fn run() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let proptest_cases =
        std::env::var("PROPTEST_CASES").unwrap_or_else(|_| PROPTEST_CASES.to_owned());
    // The real client the tests drive: installed now, so no test can find it missing.
    crate::claude::ensure()?;
    let steps: [(&str, &[&str]); 7] = [
        ("format", &["fmt", "--all", "--check"]),
        // --all-features: the failpoint code and the crash tests are linted too.
        (
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ],
        ),
        // Unit and integration tests of every crate (benches run once, as tests).
        (
            "tests",
            &["test", "--workspace", "--all-targets", "--no-fail-fast"],
        ),
        ("crash tests", CRASH_TESTS),
        // The agent loop needs the stand-in for Claude Code (an rmcp client) built.
        (
            "agent loop",
            &[
                "test",
                "-p",
                "fleet",
                "--features",
                "test-agent",
                "--test",
                "agent_loop",
            ],
        ),
        ("doc tests", &["test", "--workspace", "--doc"]),
        // Rustdoc warnings (broken intra-doc links) fail too: RUSTDOCFLAGS is set below.
        ("docs", &["doc", "--workspace", "--no-deps"]),
    ];
    for (name, args) in steps {
        step(name, &cargo, args, &proptest_cases, None)?;
    }
    // The black-box and crash tests again against the other registries (tests/common reads
    // FLEET_TEST_REGISTRY; on Postgres each test starts a PostgreSQL server of its own). Left
    // out everywhere: tests about the JSON files themselves (hardening, coexistence with the
    // Python server's workspace, and the two MCP tests skipped below). On Postgres, the black-box
    // tests whose commands go through the registry; the agent surfaces' tests (activity,
    // worktrees, top, Claude Code) read the same registry calls.
    let others: [(&str, &str, &[&str]); 2] = [
        (
            "sqlite",
            "SQLite",
            &[
                "cli",
                "batch",
                "activity",
                "worktree",
                "top",
                "mcp",
                "claude",
                "agent_files",
            ],
        ),
        (
            "postgres",
            "Postgres",
            &["cli", "batch", "mcp", "agent_files"],
        ),
    ];
    for (kind, name, tests) in others {
        let mut black_box = vec!["test", "-p", "fleet"];
        for test in tests {
            black_box.extend(["--test", test]);
        }
        black_box.extend([
            "--",
            "--skip",
            "beside::python_deployed_agents_and_the_coexistence_setting",
            "--skip",
            "tools::the_python_servers_tools_over_stdio",
        ]);
        let registry = Some(("FLEET_TEST_REGISTRY", kind));
        step(
            &format!("black-box tests, {name} registry"),
            &cargo,
            &black_box,
            &proptest_cases,
            registry,
        )?;
        step(
            &format!("crash tests, {name} registry"),
            &cargo,
            CRASH_TESTS,
            &proptest_cases,
            registry,
        )?;
    }
    Ok(())
}

fn step(
    name: &str,
    cargo: &str,
    args: &[&str],
    proptest_cases: &str,
    env: Option<(&str, &str)>,
) -> Result<(), String> {
    eprintln!("xtask ci: {name}: cargo {}", args.join(" "));
    let start = Instant::now();
    let mut command = Command::new(cargo);
    if let Some((key, value)) = env {
        command.env(key, value);
    }
    let status = command
        .args(args)
        // insta in CI mode: a changed snapshot fails, and nothing is written.
        .env("CI", "true")
        .env("INSTA_UPDATE", "no")
        .env("PROPTEST_CASES", proptest_cases)
        .env("RUSTFLAGS", std::env::var("RUSTFLAGS").unwrap_or_default())
        .env("RUSTDOCFLAGS", "-D warnings")
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    eprintln!(
        "xtask ci: {name}: {} in {:.1} s",
        if status.success() { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status})"))
    }
}
