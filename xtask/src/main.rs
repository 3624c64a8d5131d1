//! fleet's developer tasks: `cargo xtask <task>`. One module per task; `main` is one `match`.

mod bench;
mod ci;
mod procs;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        Some("bench") => bench::run(),
        Some("rss") => procs::rss_main(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask ci|bench\n\n  ci      fmt check, clippy -D warnings, every test (doc tests too), insta in CI mode\n  bench   every benchmark; writes docs/BENCHMARKS.md"
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
