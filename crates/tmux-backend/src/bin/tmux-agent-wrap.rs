//! The agent wrapper as a standalone program (see `tmux_backend::wrapper`), for this crate's
//! tests and benchmarks and for downstream users of the library. (`fleet` ships the same
//! wrapper as `fleet-agent-wrap`; the names differ so the two never collide in `target/`.)

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    tmux_backend::wrapper::main(&args)
}
