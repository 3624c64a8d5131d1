//! Prompt files nothing names: in a task's directory, with no registry entry and no intent for
//! their agent. A crash of the machine can leave one — the prompt file written to disk, the
//! intent that named it not (intents are synced only when they name a checkout: docs/FAULTS.md).
//! A SIGKILL cannot: the page cache keeps the intent.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use camino::Utf8PathBuf;

use super::ReconcileReport;
use crate::deploy::Deployer;
use crate::id::{AgentId, TaskId};
use crate::layout::Layout;
use crate::roster::TaskRoster;
use crate::{Error, failpoint};

/// Removes (unless `dry_run`) the prompt files of the tasks in `rosters` that nothing names.
///
/// The files are listed first, then the intents read again and each task with candidates read
/// again: a prompt file is written after its intent, so one of a deployment in flight is
/// named by an intent then, or by the registry once it has registered.
pub(super) fn reconcile(
    env: &Deployer<'_>,
    dry_run: bool,
    rosters: &BTreeMap<TaskId, Arc<TaskRoster>>,
    report: &mut ReconcileReport,
) -> Result<(), Error> {
    let mut candidates: Vec<(TaskId, AgentId, Utf8PathBuf)> = Vec::new();
    for (task, roster) in rosters {
        let registered: HashSet<&AgentId> = roster.ids();
        for path in env.prompts.found(&env.layout.task_dir(task))? {
            let Some(agent) = path.file_name().and_then(Layout::prompt_owner) else {
                continue;
            };
            if !registered.contains(&agent) {
                candidates.push((task.clone(), agent, path));
            }
        }
    }
    if candidates.is_empty() {
        return Ok(());
    }
    let in_flight = super::in_flight(env)?;
    let mut now: BTreeMap<TaskId, Arc<TaskRoster>> = BTreeMap::new();
    for (task, agent, path) in candidates {
        if in_flight.contains(&agent) {
            continue;
        }
        if !now.contains_key(&task) {
            now.insert(task.clone(), env.registry.roster(&task)?);
        }
        if now.get(&task).is_some_and(|t| t.holds(&agent)) {
            continue;
        }
        if !dry_run {
            env.prompts.remove(&path)?;
        }
        report.prompts.push(path);
        failpoint("reconcile::after_prompt");
    }
    Ok(())
}
