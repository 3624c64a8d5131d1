//! Agents' worktrees: where each is in its life (`fleet worktrees`), and what an agent changed
//! (`fleet diff`). The state is the registry's record, checked against the disk: an active or
//! kept worktree whose directory is gone is shown `missing` (reconcile prunes it).
//!
//! Reading a checkout's content is git's own business, not a service of the transaction: these
//! call `git_checkout`'s read-only functions directly.

use camino::Utf8PathBuf;
use deploy_core::{AgentId, AgentStatus, BatchId, Checkout, CheckoutState, TaskId};
use serde::Serialize;

use crate::config::Services;
use crate::error::Error;

/// One agent's checkout.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorktreeView {
    pub(crate) task_id: TaskId,
    pub(crate) agent_id: AgentId,
    pub(crate) agent_status: AgentStatus,
    /// active, kept-dirty, branch-only, kept, removed — or missing (its directory is gone).
    pub(crate) state: String,
    pub(crate) branch: String,
    /// The worktree, while it exists.
    pub(crate) path: Option<Utf8PathBuf>,
    pub(crate) base: String,
    pub(crate) base_ref: String,
    pub(crate) repo: Utf8PathBuf,
}

/// Every checkout fleet made (in `task`, or in every task), removed ones aside.
pub(crate) fn list(services: &Services, task: Option<&TaskId>) -> Result<Vec<WorktreeView>, Error> {
    let tasks = match task {
        Some(t) => vec![t.clone()],
        None => services.registry.task_ids()?,
    };
    let mut out = Vec::new();
    for t in tasks {
        let snap = services.registry.read_task(&t)?;
        for a in &snap.agents {
            let Some(c) = Checkout::of(a) else { continue };
            if c.state == CheckoutState::Removed {
                continue;
            }
            let holds_worktree = !matches!(c.state, CheckoutState::BranchOnly);
            let on_disk = c.path.join(".git").exists();
            let state = if holds_worktree && !on_disk {
                "missing".to_owned()
            } else {
                c.state.to_string()
            };
            out.push(WorktreeView {
                task_id: t.clone(),
                agent_id: a.id.clone(),
                agent_status: a.status.clone(),
                state,
                path: on_disk.then(|| c.path.clone()),
                branch: c.branch,
                base: c.base,
                base_ref: c.base_ref,
                repo: c.repo,
            });
        }
    }
    Ok(out)
}

/// `agent`'s changes against its base, committed and uncommitted (`stat`: a summary).
pub(crate) fn diff(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    stat: bool,
) -> Result<String, Error> {
    let record = super::agent_record(services, task, agent)?;
    let checkout = Checkout::of(&record).ok_or_else(|| {
        Error::Refused(format!(
            "agent {agent} of task {task} has no worktree (it was deployed without --worktree)"
        ))
    })?;
    match services.checkouts.diff(&checkout, stat)? {
        Some(diff) => Ok(diff),
        None => Err(Error::Refused(format!(
            "agent {agent} left no work: its worktree and branch {} are gone ({})",
            checkout.branch, checkout.state
        ))),
    }
}

/// Every member's changes of `batch`, one after another, each under a header naming the member
/// and its branch: what best-of-N compares. A member without work says so under its header.
pub(crate) fn diff_batch(
    services: &Services,
    task: &TaskId,
    batch: &BatchId,
    stat: bool,
) -> Result<String, Error> {
    let mut out = String::new();
    for (_, record) in super::batch_members(services, Some(task), batch)? {
        let branch = Checkout::of(&record).map_or_else(|| "no worktree".to_owned(), |c| c.branch);
        out.push_str(&format!("=== {} ({branch}) ===\n", record.id));
        match diff(services, task, &record.id, stat) {
            Ok(text) if text.is_empty() => out.push_str("(no changes)\n"),
            Ok(text) => out.push_str(&text),
            Err(Error::Refused(why)) => out.push_str(&format!("({why})\n")),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
