//! `fleet attach`.

use std::os::unix::process::CommandExt;
use std::process::Command;

use deploy_core::{Liveness, SessionName};

use crate::cli::AttachArgs;
use crate::config::Services;
use crate::error::Error;

pub(crate) fn run(services: &Services, args: &AttachArgs) -> Result<(), Error> {
    if let Some(host) = crate::ops::remote::owner_anywhere(services, &args.agent)? {
        // Replaces this process: the terminal belongs to ssh, then to tmux on that host.
        let err = crate::ops::remote::attach(services, &host, &args.agent)?.exec();
        return Err(Error::Environment(format!("cannot run ssh: {err}")));
    }
    let session = SessionName::for_agent(&args.agent)?;
    let socket = &services.config.socket;
    if services.backend.probe(&session)? == Liveness::Missing {
        return Err(Error::Invalid(format!(
            "agent {} has no session on tmux socket {socket}",
            args.agent
        )));
    }
    // Replaces this process: the terminal belongs to tmux from here on.
    let err = Command::new("tmux")
        .args(["-L", socket, "attach-session", "-t"])
        .arg(format!("={session}"))
        .exec();
    Err(Error::Invalid(format!(
        "cannot run tmux attach-session: {err}"
    )))
}
