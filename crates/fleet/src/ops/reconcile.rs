//! `reconcile`: the generic repairs of deploy-core, then the registry's own.

use deploy_core::reconcile::{self, ReconcileReport, Scope};
use deploy_core::{RepairReport, TaskId};
use serde::Serialize;

use crate::config::Services;
use crate::error::Error;

/// Everything a reconcile found and did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Reconciled {
    pub(crate) dry_run: bool,
    pub(crate) nothing_to_do: bool,
    #[serde(flatten)]
    pub(crate) found: ReconcileReport,
    #[serde(flatten)]
    pub(crate) repaired: RepairReport,
}

/// Abandoned deployments, zombies and orphans; then counters, the index and temp files.
pub(crate) fn run(
    services: &Services,
    task: Option<&TaskId>,
    dry_run: bool,
) -> Result<Reconciled, Error> {
    // A zombie's end is recorded with its activity, as any end is.
    let annotate = |task: &TaskId,
                    record: &deploy_core::AgentRecord,
                    exit: Option<deploy_core::ExitStatus>| {
        super::activity::at_end(
            services,
            task,
            record,
            exit,
            exit.is_some_and(|e| e.success()),
        )
    };
    let found = reconcile::reconcile(
        &services.deployer(),
        Scope {
            task,
            dry_run,
            zombies: true,
            orphans: true,
            annotate: Some(&annotate),
        },
    )?;
    let repaired = services.registry.repair(task, dry_run)?;
    Ok(Reconciled {
        dry_run,
        nothing_to_do: found.is_empty() && repaired.is_empty(),
        found,
        repaired,
    })
}

/// Records the zombies of `task` — active agents whose session is gone or dead — with their
/// activity, as a full reconcile would; deployments in flight are left alone.
pub(crate) fn record_zombies(services: &Services, task: &TaskId) -> Result<(), Error> {
    let annotate = |task: &TaskId,
                    record: &deploy_core::AgentRecord,
                    exit: Option<deploy_core::ExitStatus>| {
        super::activity::at_end(
            services,
            task,
            record,
            exit,
            exit.is_some_and(|e| e.success()),
        )
    };
    reconcile::reconcile(
        &services.deployer(),
        Scope {
            task: Some(task),
            dry_run: false,
            zombies: true,
            orphans: false,
            annotate: Some(&annotate),
        },
    )?;
    Ok(())
}
