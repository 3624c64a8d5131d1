//! The agent wrapper as a standalone program (see `tmux_backend::wrapper`), for this crate's
//! tests and for downstream users of the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    tmux_backend::wrapper::main(&args)
}
