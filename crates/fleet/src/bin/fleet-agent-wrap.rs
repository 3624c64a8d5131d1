//! The agent wrapper as its own small program (see `tmux_backend::wrapper`). `fleet` starts
//! agents under it when it is installed beside `fleet` — tmux forks and execs it for every
//! agent, and a small binary starts measurably faster than `fleet` itself (docs/BENCHMARKS.md)
//! — and under `fleet agent-wrap` otherwise.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    #[allow(clippy::disallowed_methods)] // this binary is the agent wrapper
    tmux_backend::wrapper::main(&args)
}
