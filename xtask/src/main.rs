//! fleet's developer tasks: `cargo xtask <task>`. One module per task; `main` is one `match`.

mod batch_bench;
mod bench;
mod ci;
mod claude;
mod goals;
mod procs;
mod remote_bench;
mod status_bench;
mod worktree_bench;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        Some("bench") => bench::run(),
        Some("claude") => claude::run(),
        Some("rss") => procs::rss_main(&args[1..]),
        Some("bench-status") => bench::status_only(),
        Some("bench-worktree") => bench::worktree_only(),
        Some("bench-batch") => bench::batch_only(),
        Some("bench-deploy") => bench::deploy_only(),
        Some("bench-remote") => bench::remote_only(),
        Some("bench-quick") => bench::quick(),
        _ => {
            eprintln!(
                "usage: cargo xtask ci|claude|bench|bench-status|bench-worktree|bench-batch|bench-deploy|bench-remote|bench-quick\n\n  ci      fmt check, clippy -D warnings, every test (doc tests too), insta in CI mode\n  claude  install the pinned Claude Code the tests run (target/claude-code)\n  bench   every benchmark; writes docs/BENCHMARKS.md\n  bench-status   only `fleet status` of 100 agents with 1 MB logs, printed\n  bench-worktree   only `fleet deploy --worktree` against its floor, printed\n  bench-batch   only `fleet deploy --count 20` against 20 raw starts, printed\n  bench-deploy   only `fleet deploy` against its floor, printed\n  bench-remote   only `fleet deploy --host` against a local one + an ssh round trip, printed\n  bench-quick   deploy, idle reconcile and status of 1,000 agents, printed"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
