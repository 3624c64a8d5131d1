//! `fleet attach`.

use std::os::unix::process::CommandExt;
use std::process::Command;

use deploy_core::{Liveness, SessionBackend, SessionName};

use crate::Error;
use crate::cli::AttachArgs;
use crate::config::Config;

pub(crate) fn run(cfg: &Config, args: &AttachArgs) -> Result<(), Error> {
    let session = SessionName::for_agent(&args.agent)?;
    if cfg.backend()?.probe(&session)? == Liveness::Missing {
        return Err(Error::Usage(format!(
            "agent {} has no session on tmux socket {}",
            args.agent, cfg.socket
        )));
    }
    // Replaces this process: the terminal belongs to tmux from here on.
    let err = Command::new("tmux")
        .args(["-L", &cfg.socket, "attach-session", "-t"])
        .arg(format!("={session}"))
        .exec();
    Err(Error::Usage(format!(
        "cannot run tmux attach-session: {err}"
    )))
}
