//! `fleet worktrees` and `fleet diff`.

use std::io::Write;

use crate::cli::{DiffArgs, WorktreesArgs};
use crate::config::Services;
use crate::error::Error;
use crate::ops::worktree;
use crate::output::{emit, safe};

pub(crate) fn list(
    services: &Services,
    args: &WorktreesArgs,
    json_mode: bool,
) -> Result<(), Error> {
    let views = worktree::list(services, args.task.as_ref())?;
    emit(json_mode, &views, || {
        if views.is_empty() {
            return "no worktrees\n".to_owned();
        }
        let mut out = format!(
            "{:<30} {:<28} {:<12} {:<11} {}\n",
            "TASK", "AGENT", "STATE", "STATUS", "WHERE"
        );
        for v in &views {
            let place = match &v.path {
                Some(path) => format!("{path} ({})", v.branch),
                None => format!("branch {} in {}", v.branch, v.repo),
            };
            out.push_str(&format!(
                "{:<30} {:<28} {:<12} {:<11} {}\n",
                v.task_id,
                v.agent_id,
                v.state,
                v.agent_status,
                safe(&place)
            ));
        }
        out
    });
    Ok(())
}

pub(crate) fn diff(services: &Services, args: &DiffArgs) -> Result<(), Error> {
    let text = match (&args.agent, &args.batch) {
        (Some(agent), _) => match crate::ops::remote::owner(services, &args.task, agent)? {
            // Its checkout is on its host's disk: that host's fleet diffs it.
            Some(host) => on_host(services, args, &host, ["--agent", agent.as_str()])?,
            None => worktree::diff(services, &args.task, agent, args.stat)?,
        },
        (None, Some(batch)) => {
            // A batch is one host's: when that is another host, its fleet diffs the members.
            let first = crate::ops::batch_members(services, Some(&args.task), batch)?
                .into_iter()
                .next()
                .map(|(_, a)| a.id);
            let host = match &first {
                Some(agent) => crate::ops::remote::owner(services, &args.task, agent)?,
                None => None,
            };
            match host {
                Some(host) => on_host(services, args, &host, ["--batch", batch.as_str()])?,
                None => worktree::diff_batch(services, &args.task, batch, args.stat)?,
            }
        }
        // clap requires one of the two.
        (None, None) => return Err(Error::Invalid("give --agent or --batch".into())),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// `diff` of `which` (`--agent A` or `--batch B`), run on `host`, whose disk holds the
/// checkouts.
fn on_host(
    services: &Services,
    args: &DiffArgs,
    host: &deploy_core::HostName,
    which: [&str; 2],
) -> Result<String, Error> {
    let mut command = vec![
        "diff".to_owned(),
        "--task".to_owned(),
        args.task.to_string(),
    ];
    command.extend(which.map(str::to_owned));
    if args.stat {
        command.push("--stat".to_owned());
    }
    let out = crate::ops::remote::call_for_output(
        &services.config,
        host,
        command,
        None,
        crate::ops::remote::CALL_BOUND,
    )?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
