//! `fleet deploy`: one agent, transactionally, to Live.

use std::io::Read;
use std::time::Duration;

use deploy_core::DeployRequest;
use serde_json::json;

use crate::cli::DeployArgs;
use crate::config::{Config, Services, absolute};
use crate::{Error, emit, ops};

pub(crate) fn run(cfg: &Config, args: DeployArgs, json_mode: bool) -> Result<(), Error> {
    let prompt = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(path)) if path.as_str() == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Error::Usage(format!("cannot read the prompt from stdin: {e}")))?;
            s
        }
        (None, Some(path)) => fs_err::read_to_string(path)
            .map_err(|e| Error::Usage(format!("cannot read prompt file: {e}")))?,
        (None, None) => return Err(Error::Usage("give --prompt or --prompt-file".into())),
    };
    let workdir = match &args.workdir {
        Some(dir) => absolute(dir)?,
        None => absolute(camino::Utf8Path::new("."))?,
    };
    if !workdir.is_dir() {
        return Err(Error::Usage(format!(
            "workdir {workdir} does not exist or is not a directory"
        )));
    }
    let command = if args.command.is_empty() {
        cfg.agent_cmd.clone()
    } else {
        args.command.clone()
    };
    let services = Services::new(cfg)?;
    let mut request = DeployRequest::new(args.task, args.agent_type, prompt, command);
    request.parent = args.parent;
    request.workdir = workdir;
    request.startup_grace = args
        .startup_grace_ms
        .map_or(cfg.startup_grace, Duration::from_millis);
    request.env = args.env;
    request.allow_duplicate = args.allow_duplicate;
    let live = ops::deploy(&services, request)?;
    let r = live.record();
    tracing::info!(agent = %r.id, session = %r.session, "agent is live");
    let value = json!({
        "agent_id": r.id,
        "task_id": live.task(),
        "session": r.session,
        "status": "live",
        "type": r.agent_type,
        "parent": r.parent,
        "depth": r.depth,
        "pane_pid": live.session().pane_pid,
        "prompt_file": live.files().prompt_file,
        "log_file": live.files().log_file,
    });
    emit(json_mode, &value, || format!("{}\n", r.id));
    Ok(())
}
