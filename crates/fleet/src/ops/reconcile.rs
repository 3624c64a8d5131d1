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
    let found = reconcile::reconcile(
        &services.deployer(),
        Scope {
            task,
            dry_run,
            zombies: true,
            orphans: true,
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
