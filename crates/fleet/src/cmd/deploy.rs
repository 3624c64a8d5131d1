//! `fleet deploy`: one agent, transactionally, to Live.

use std::io::Read;
use std::time::Duration;

use deploy_core::{DeployRequest, reconcile};
use serde_json::json;

use crate::cli::DeployArgs;
use crate::config::{Config, Services, absolute};
use crate::{Error, emit};

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
    let deployer = services.deployer();
    // Leftovers of this task (abandoned deployments, agents that ended unobserved) must not
    // block new work or count against a limit: the same check as `fleet reconcile`, for this
    // task only and without the orphan scan. It costs no tmux call unless the task has active
    // agents to look at.
    let scope = reconcile::Scope {
        task: Some(&args.task),
        dry_run: false,
        orphans: false,
    };
    match reconcile::reconcile(&deployer, scope) {
        Ok(report) if !report.is_empty() => {
            tracing::info!(task = %args.task, "cleaned up before deploying: {}", serde_json::to_string(&report).unwrap_or_default());
        }
        Ok(_) => {}
        // An unknown task is reported by the deployment itself, at its precheck.
        Err(deploy_core::Error::UnknownTask(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let mut request = DeployRequest::new(args.task, args.agent_type, prompt, command);
    request.parent = args.parent;
    request.workdir = workdir;
    request.startup_grace = args
        .startup_grace_ms
        .map_or(cfg.startup_grace, Duration::from_millis);
    request.env = args.env;
    request.allow_duplicate = args.allow_duplicate;
    let live = deployer
        .deploy(request)
        .map_err(|f| Error::Deploy(Box::new(f)))?;
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
