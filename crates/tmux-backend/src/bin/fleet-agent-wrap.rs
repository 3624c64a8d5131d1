//! The agent wrapper as a standalone program (see `tmux_backend::wrapper`). The `fleet` binary
//! carries the same wrapper as a hidden subcommand; this one serves the crate's own tests and
//! downstream users of the library.

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match tmux_backend::wrapper::WrapArgs::from_args(&args) {
        Ok(wrap) => tmux_backend::wrapper::run(&wrap),
        Err(e) => {
            eprintln!("fleet-agent-wrap: {e}");
            ExitCode::from(126)
        }
    }
}
