//! Checkouts nothing accounts for, and checkouts of ended agents never retired.
//!
//! The repositories looked at are those the registry's records and the pending intents name;
//! in each, [`Checkouts::found`] lists the `fleet/` branches and their worktrees under the
//! workspace. A found checkout whose agent no registry entry and no intent names is removed. A
//! recorded checkout still `active` whose agent has ended is retired (a crash between an end
//! and its retirement leaves one). A repository that moved or vanished is a problem reported,
//! never an error.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use camino::Utf8PathBuf;
use serde::Serialize;

use super::{ReconcileReport, Scope, retire};
use crate::checkout::{CHECKOUT_FIELD, CheckoutState};
use crate::deploy::Deployer;
use crate::id::{AgentId, TaskId};
use crate::roster::TaskRoster;
use crate::{Error, failpoint};

/// A checkout reconcile removed or retired.
#[derive(Debug, Clone, Serialize)]
pub struct CheckoutFix {
    /// The agent its branch names.
    pub agent: AgentId,
    /// Its task, if the registry knows the agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskId>,
    /// The repository.
    pub repo: Utf8PathBuf,
    /// Its branch, if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Its worktree, if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Utf8PathBuf>,
    /// `removed` (nothing accounted for it) or the state its retirement left
    /// (`kept-dirty`, `branch-only`, `removed`); in a dry run, `remove` or `retire`.
    pub action: String,
}

pub(super) fn reconcile(
    env: &Deployer<'_>,
    scope: Scope<'_>,
    rosters: &BTreeMap<TaskId, Arc<TaskRoster>>,
    in_flight: &HashSet<AgentId>,
    report: &mut ReconcileReport,
) -> Result<(), Error> {
    let Some(checkouts) = env.checkouts else {
        return Ok(());
    };
    let mut repos: BTreeSet<Utf8PathBuf> = BTreeSet::new();
    let mut to_retire = Vec::new();
    for (task, roster) in rosters {
        // Another host's checkouts are on that host's disk: looked after there.
        for a in roster
            .agents
            .iter()
            .filter(|a| env.other_host(a.host.as_ref()).is_none())
        {
            if let Some(c) = &a.checkout {
                repos.insert(c.repo.clone());
                if c.state == CheckoutState::Active
                    && !a.status.is_active()
                    && !in_flight.contains(&a.id)
                {
                    to_retire.push((task.clone(), a.id.clone(), c.clone()));
                }
            }
        }
    }
    let pending = env.journal.pending()?;
    repos.extend(
        pending
            .iter()
            .filter_map(|r| Some(r.checkout.as_ref()?.repo.clone())),
    );

    for (task, agent, checkout) in to_retire {
        let fix = |action: String| CheckoutFix {
            agent: agent.clone(),
            task: Some(task.clone()),
            repo: checkout.repo.clone(),
            branch: Some(checkout.branch.clone()),
            path: Some(checkout.path.clone()),
            action,
        };
        if scope.dry_run {
            report.checkouts.push(fix("retire".into()));
            continue;
        }
        match retire(env, &task, &agent, &checkout) {
            Some(retired) => {
                let fields = [(CHECKOUT_FIELD.to_owned(), retired.to_value())];
                env.registry
                    .annotate(&task, &agent, &fields.into_iter().collect())?;
                report.checkouts.push(fix(retired.state.to_string()));
            }
            None => report.problems.push(format!(
                "the checkout of {} at {} could not be retired (see the log); it is kept",
                agent, checkout.path
            )),
        }
        failpoint("reconcile::after_checkout");
    }

    // Found first, then the intents read again and the registry asked again: a checkout found
    // was made after its deployment's intent was written, so it is in flight now or was
    // registered since — never taken for an orphan (the order `reconcile` keeps for sessions).
    let mut found = Vec::new();
    for repo in repos {
        match checkouts.found(&repo, env.layout.root()) {
            Ok(list) => found.extend(list.into_iter().map(|f| (repo.clone(), f))),
            Err(e) => report.problems.push(e.to_string()),
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    let known: HashSet<&AgentId> = rosters.values().flat_map(|r| r.ids()).collect();
    let candidates: Vec<_> = found
        .into_iter()
        .filter(|(_, f)| !known.contains(&f.agent) && !in_flight.contains(&f.agent))
        .collect();
    if candidates.is_empty() {
        return Ok(());
    }
    let now_in_flight = super::in_flight(env)?;
    let task_dir = scope.task.map(|t| env.layout.worktrees_dir(t));
    for (repo, f) in candidates {
        if now_in_flight.contains(&f.agent) {
            continue;
        }
        // Scoped to a task: only worktrees under that task's directory are its own; a bare
        // branch names no task.
        let in_scope = match (&task_dir, &f.path) {
            (None, _) => true,
            (Some(dir), Some(path)) => path.starts_with(dir),
            (Some(_), None) => false,
        };
        if !in_scope || !unregistered_anywhere(env, &f.agent)? {
            continue;
        }
        if !scope.dry_run
            && let Err(e) = checkouts.discard(&repo, f.branch.as_deref(), f.path.as_deref())
        {
            report.problems.push(e.to_string());
            continue;
        }
        report.checkouts.push(CheckoutFix {
            agent: f.agent,
            task: None,
            repo: repo.clone(),
            branch: f.branch,
            path: f.path,
            action: if scope.dry_run { "remove" } else { "removed" }.into(),
        });
        failpoint("reconcile::after_checkout");
    }
    Ok(())
}

/// Whether no task of the registry holds `agent`, read now.
fn unregistered_anywhere(env: &Deployer<'_>, agent: &AgentId) -> Result<bool, Error> {
    for task in env.registry.task_ids()? {
        match env.registry.roster(&task) {
            Ok(roster) if roster.holds(agent) => return Ok(false),
            Ok(_) | Err(Error::UnknownTask(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
