//! `fleet kill`.

use deploy_core::{AgentStatus, PromptStore, Registry, SessionBackend, StatusUpdate};
use serde_json::json;

use crate::cli::KillArgs;
use crate::config::Config;
use crate::{Error, emit};

pub(crate) fn run(cfg: &Config, args: &KillArgs, json_mode: bool) -> Result<(), Error> {
    let registry = cfg.registry();
    let backend = cfg.backend()?;
    let task = registry.read_task_file(&args.task)?;
    let entry = task
        .agent(&args.agent)
        .ok_or_else(|| deploy_core::Error::UnknownAgent {
            task: args.task.clone(),
            agent: args.agent.clone(),
        })?;
    let report = backend.kill(&entry.tmux_session, &args.agent)?;
    let status = if entry.status.is_active() {
        let mut update = StatusUpdate::now(AgentStatus::Terminated);
        update.reason = Some(args.reason.clone());
        registry.update_status(&args.task, &args.agent, &update)?;
        AgentStatus::Terminated
    } else {
        entry.status.clone() // already ended: its record stays as it was
    };
    let prompt = registry
        .layout()
        .tracked_files(&args.task, &args.agent)
        .prompt_file;
    cfg.prompts().remove(&prompt)?;
    let value = json!({
        "agent_id": args.agent,
        "task_id": args.task,
        "session": entry.tmux_session,
        "session_killed": report.session_existed,
        "killed": report.killed,
        "status": status,
        "reason": args.reason,
    });
    emit(json_mode, &value, || {
        format!(
            "{} {} (session {}, {} process(es) ended)\n",
            args.agent,
            status,
            if report.session_existed {
                "killed"
            } else {
                "already gone"
            },
            report.killed.len()
        )
    });
    Ok(())
}
